//! caravan-state: the only crate that speaks SQL. It owns the cluster state:
//!
//! - **Durable**: PostgreSQL (deployments) or SQLite (embedded, `agent -dev`), one table per
//!   noun holding each object's JSON document plus the columns queries need, the change log
//!   and the per-table indexes, all written in one transaction per batch of writes.
//! - **One global index**: every committed write gets the next value; objects carry their
//!   create/modify indexes and each table the index of its last change.
//! - **Reads from memory**: the state is loaded at start-up into persistent (copy-on-write)
//!   maps; every read works on an immutable [`Snapshot`], and blocking queries wait on
//!   per-row or per-table watches, never on the database.
//! - **Group commit**: a single writer runs write closures against a working snapshot, commits
//!   the batch, then publishes the new snapshot and wakes the watchers of what changed. An
//!   acknowledged write is durable and visible to every later read.
//! - **Fencing**: each write transaction checks the leader's epoch, so a deposed leader can
//!   never commit.
//!
//! Layout: [`store`] (open, write, block), [`snapshot`], [`table`], [`txn`], [`watch`],
//! `backend/` (PostgreSQL and SQLite), and one file per noun with its `Document` impl.

mod acl;
mod allocs;
mod backend;
mod deployments;
mod error;
mod evals;
mod jobs;
mod node_pools;
mod nodes;
mod periodic;
mod services;
mod snapshot;
mod store;
mod table;
mod txn;
mod watch;

pub use acl::{ACL_BOOTSTRAP_KEY, secret_digest};
pub use error::StateError;
pub use jobs::{JobVersion, job_key, job_version_key};
pub use node_pools::SCHEDULER_CONFIG_KEY;
pub use services::service_key;
pub use snapshot::{HasTable, Snapshot};
pub use store::{Changes, Store, Written};
pub use table::{Document, Row, Table, TableId};
pub use txn::Txn;
pub use watch::WatchKey;
