-- The global index (the analogue of the Raft index) and the leadership fencing epoch.
CREATE TABLE cluster_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    current_index BIGINT NOT NULL,
    epoch         BIGINT NOT NULL
);
INSERT INTO cluster_state (id, current_index, epoch) VALUES (1, 0, 0);

-- The index of each table's last change: the X-Nomad-Index of list endpoints.
CREATE TABLE table_indexes (
    tbl TEXT PRIMARY KEY,
    idx BIGINT NOT NULL
);

-- Every committed change, written in the same transaction; kept for a bounded window.
CREATE TABLE changelog (
    idx BIGINT NOT NULL,
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    op  TEXT NOT NULL CHECK (op IN ('put', 'delete')),
    PRIMARY KEY (idx, tbl, key)
);

-- One table per noun: the object's JSON document plus the columns queries need.
CREATE TABLE nodes (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    name         TEXT NOT NULL,
    datacenter   TEXT NOT NULL,
    status       TEXT NOT NULL
);

CREATE TABLE jobs (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    id           TEXT NOT NULL,
    status       TEXT NOT NULL
);

CREATE TABLE evals (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    status       TEXT NOT NULL
);

CREATE TABLE allocs (
    key          TEXT PRIMARY KEY,
    doc          TEXT NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL,
    namespace    TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    node_id      TEXT NOT NULL,
    client_status TEXT NOT NULL
);
CREATE INDEX allocs_node_id ON allocs (node_id);
CREATE INDEX allocs_job ON allocs (namespace, job_id);
