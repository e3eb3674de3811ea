-- Namespaces, keyed by name (the built-in "default" is stored only once an operator changes it).
CREATE TABLE namespaces (
    key          TEXT PRIMARY KEY,
    doc          JSONB NOT NULL,
    create_index BIGINT NOT NULL,
    modify_index BIGINT NOT NULL
);
