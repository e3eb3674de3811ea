-- Node pools, keyed by name (the built-ins "all" and "default" are not stored: they always
-- exist and never change).
CREATE TABLE node_pools (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);

-- The scheduler configuration: one row, key 'config' (absent: the server's default).
CREATE TABLE scheduler_config (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);
