-- The built-in service catalogue, keyed by "<namespace>/<registration ID>".
CREATE TABLE service_registrations (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    service_name TEXT NOT NULL,
    alloc_id     TEXT NOT NULL
);
