-- The scaling events of each job (POST /v1/job/:id/scale), one row per job keyed like it.
CREATE TABLE job_scaling_events (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);
