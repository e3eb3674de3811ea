-- The ACL system: policies (by name), tokens (by accessor ID), roles (by ID), one-time tokens
-- (by the SHA-256 digest of their secret) and the record of the last bootstrap (one row).
CREATE TABLE acl_policies (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);

CREATE TABLE acl_tokens (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);

CREATE TABLE acl_roles (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);

CREATE TABLE acl_one_time_tokens (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);

CREATE TABLE acl_bootstrap (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);
