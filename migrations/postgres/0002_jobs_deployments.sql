-- Every tracked version of each job (the jobs table holds the current one).
CREATE TABLE job_versions (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    version      TEXT NOT NULL
);
CREATE INDEX job_versions_job ON job_versions (namespace, job_id);

CREATE TABLE deployments (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    status       TEXT NOT NULL
);
CREATE INDEX deployments_job ON deployments (namespace, job_id);

CREATE INDEX evals_job ON evals (namespace, job_id);
