//! Cluster state: PostgreSQL or SQLite storage, the global index, the change log, in-memory snapshots and watches.
