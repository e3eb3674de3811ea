-- The source each job version was registered from (GET /v1/job/:id/submission), keyed like the version.
CREATE TABLE job_submissions (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);
