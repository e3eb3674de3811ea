//! The state crate's one error type.

/// What can go wrong below the domain logic: the database, encoding, leadership.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored document in table {table} key {key:?} is not valid: {source}")]
    Decode {
        table: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("failed to encode document: {0}")]
    Encode(#[from] serde_json::Error),
    /// Another server took over: this one must stop writing (the fencing epoch moved on).
    #[error("leadership lost: the cluster state was written by a newer leader")]
    Fenced,
    #[error("another server holds the leadership lock on this database")]
    LeadershipHeld,
    #[error("unsupported database url {0:?}: use postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    /// The batch this write was part of did not commit; nothing of it is stored.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    #[error("the state store is shut down")]
    Closed,
}
