-- The last launch of each periodic job (Nomad's PeriodicLaunch), keyed like the job.
CREATE TABLE periodic_launches (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    job_id       TEXT NOT NULL
);
