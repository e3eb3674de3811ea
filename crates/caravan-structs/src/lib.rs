//! The Nomad JSON data model (serde) and the ErrorCode table; no I/O, no async.
//!
//! This crate owns the shapes Caravan puts on the wire: every document the HTTP API returns or
//! accepts (nodes, allocations, jobs, evaluations, deployments and the small request/response
//! bodies around them), encoded exactly as Nomad encodes them — PascalCase keys in ascending
//! byte order, Go zero values (`""`, `0`, `false`), `null` for nil slices, maps and pointers,
//! times and durations as NOMAD-BEHAVIOR §7.2 describes. It also owns the one `ErrorCode` table
//! every other crate maps its errors to.
//!
//! # Layout
//!
//! - [`acl`]: `AclPolicy`, `AclToken`, `AclRole`, `OneTimeToken`, their stubs, and the
//!   bootstrap record.
//! - [`agent`]: `HostData` (`/v1/agent/host`) and `LogLevel` (`/v1/agent/monitor`).
//! - [`node`]: `Node`, `NodeListStub`, drain, driver and node resource types, and the node
//!   endpoints' request/response bodies.
//! - [`alloc`]: `Allocation`, `AllocListStub`, `TaskState`/`TaskEvent` (with display
//!   messages), `AllocMetric`, allocated resources, and the allocation endpoints' bodies.
//! - [`job`]: `Job`, `TaskGroup`, `Task` and their policies, services and checks,
//!   `JobListStub`, `JobSummary`.
//! - [`job_defaults`]: `Job::canonicalize` (Nomad's registration defaults) and `Job::validate`
//!   (Nomad's checks and messages, `JobValidationError`).
//! - [`job_diff`]: `JobDiff` (Nomad's job diff, for plans and version diffs).
//! - [`eval`]: `Evaluation`, `EvaluationStub`.
//! - [`deployment`]: `Deployment`, `DeploymentState`.
//! - [`namespace`]: `Namespace` (the built-in `default`, name rules, the drivers and network
//!   modes a namespace allows).
//! - [`node_pool`]: `NodePool` (the built-ins `all` and `default`, Nomad's name rule).
//! - [`operator`]: `SchedulerConfiguration` (`/v1/operator/scheduler/configuration`).
//! - [`scaling`]: `ScalingEvent`, `JobScalingEvents`, `JobScaleStatus`.
//! - [`search`]: the search contexts (`SearchContext`) and the `/v1/search` and
//!   `/v1/search/fuzzy` bodies.
//! - [`periodic`]: Nomad's cron dialect for periodic jobs (validation, next launch in the
//!   job's time zone) and `PeriodicLaunch`, the record of a periodic job's last launch.
//! - [`submission`]: `JobSubmission` (a job version's source).
//! - [`service`]: `ServiceRegistration` (the built-in service catalogue).
//! - [`services_spec`]: the job side of services and checks: their defaults, Nomad's
//!   validation, and the implicit constraints a group with services gets.
//! - [`stats`]: `HostStats`, `AllocResourceUsage`, `NodeMetaResponse` (client endpoints; not
//!   re-exported at the root).
//! - [`resources`]: resource shapes shared by jobs, allocations and nodes (`Resources`,
//!   `NetworkResource`, `Port`).
//! - [`go_json`]: request bodies decoded as Go's `encoding/json` does (`null` is "not set",
//!   keys match case-insensitively); every body a client sends goes through it.
//! - [`go_shape`]: the Go types of the job blocks kept as opaque JSON (Connect, identities,
//!   scaling, ...), checked when a job is registered so Go clients can read it back.
//! - [`error`]: `ErrorCode`, the one table of error kinds → HTTP status and wire name.
//! - [`time`]: `Time` (Go `time.Time`; zero is `null`), lenient duration reading, Go duration
//!   formatting.
//!
//! Everything public is re-exported at the crate root, so `caravan_structs::Node` works.
//!
//! # Conventions
//!
//! - Struct fields are declared in the byte order of their JSON names, so serde writes keys in
//!   Nomad's order (NOMAD-BEHAVIOR 8.9). Maps are `BTreeMap`, so theirs are sorted too.
//! - Every struct is `#[serde(default)]` and ignores unknown keys: partial input deserializes,
//!   as it does in Nomad.
//! - Nil-able Go slices, maps and pointers are `Option<...>` and serialize as `null`.
//! - Go `time.Time` fields are [`Time`] (RFC 3339, zero → `null`); Unix-nanosecond stamps and
//!   `time.Duration`s are plain `i64` nanoseconds, documented on the field.
//! - Statuses and other enumerations are `String` fields with `pub const` values (Nomad's
//!   names), so an unknown value from a newer client still round-trips.
//! - `Allocation` and `Evaluation` write every key, as the spec's samples show, although Nomad
//!   at HEAD leaves their empty fields out (NOMAD-BEHAVIOR 1.2, 8.9).
//!
//! # Tests
//!
//! `tests/seed_roundtrip.rs` round-trips every sample JSON of the spec (`tests/fixtures/`)
//! with a short, per-type allow-list of keys newer than the samples; `tests/key_order.rs`
//! checks every wire type's key order; `tests/roundtrip_props.rs` round-trips random values.

pub mod acl;
pub mod agent;
pub mod alloc;
pub mod deployment;
pub mod error;
pub mod eval;
pub mod go_json;
pub mod go_shape;
pub mod job;
pub mod job_defaults;
pub mod job_diff;
pub mod namespace;
pub mod node;
pub mod node_pool;
pub mod operator;
pub mod periodic;
pub mod resources;
pub mod scaling;
pub mod search;
pub mod service;
pub mod services_spec;
pub mod stats;
pub mod submission;
pub mod time;

pub use acl::*;
pub use agent::*;
pub use alloc::*;
pub use deployment::*;
pub use error::{ErrorCode, UnknownErrorCode};
pub use eval::*;
pub use job::*;
pub use job_defaults::*;
pub use job_diff::*;
pub use namespace::*;
pub use node::*;
pub use node_pool::*;
pub use operator::*;
pub use periodic::{
    CronSpec, CronSpecError, PERIODIC_LAUNCH_SUFFIX, PERIODIC_SPEC_CRON, PeriodicLaunch,
    periodic_child_id,
};
pub use resources::*;
pub use scaling::*;
pub use search::*;
pub use service::*;
pub use services_spec::*;
pub use submission::*;
pub use time::{Time, TimeParseError};
