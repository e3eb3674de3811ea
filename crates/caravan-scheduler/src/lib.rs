//! caravan-scheduler: pure placement logic over a read-only [`State`] and a [`Planner`].
//!
//! This crate owns the scheduling decisions of Caravan: given an evaluation, a snapshot of
//! the cluster and a planner, [`process_eval`] reconciles the job with its allocations,
//! places what is missing, stops what is not needed, reschedules what failed, submits plans
//! (re-planning when the plan applier rejects nodes) and records the evaluation's outcome. It
//! also owns [`allocs_fit`], the fit check the plan applier re-runs on every node. It does no
//! I/O and no async: the server calls it from a blocking thread.
//!
//! Behaviour follows Nomad's scheduler (`scheduler/` in hashicorp/nomad); the comments say
//! where Caravan differs.
//!
//! # Layout
//!
//! - [`interfaces`]: the [`State`] snapshot and [`Planner`] traits, [`SchedulerConfig`],
//!   [`SchedContext`] (injected clock and randomness).
//! - [`plan`]: [`Plan`] and [`PlanResult`].
//! - `generic_sched`: service and batch evals; `reconcile`: what to stop, update, place and
//!   reschedule per group; `reschedule`: reschedule policy arithmetic.
//! - `system_sched`: system and sysbatch evals.
//! - `stack`: picking a node for one allocation (feasibility, fit, scores, limits);
//!   `feasible`: constraints, drivers, networks, datacenters, class memo; `rank`: metrics,
//!   affinity and spread scores; `propertyset`: distinct_property and spread counting;
//!   `version`: `version`/`semver` constraints.
//! - [`fit`]: resource accounting and [`allocs_fit`]; `network`: ports.
//! - `context`: the per-pass working context (lazy per-node usage kept in step with the
//!   plan).
//! - `testing` (feature `testing`): an in-memory `State` + `Planner` harness and builders.
//!
//! # Determinism
//!
//! Given the same state, evaluation, `SchedContext::now` and seed, the decisions (nodes,
//! names, ports, IDs) are the same; only `AllocMetric.AllocationTime` (measured) varies.
//!
//! # Contract with the plan applier
//!
//! - Stops (`Plan::node_update`) are copies of the allocation with the changed fields; a
//!   stopped allocation that was replaced carries `NextAllocation`.
//! - `Plan::deployment` is the whole deployment to store: a new one, or the current one
//!   with `PlacedAllocs` already counting this plan's placements.
//! - Nodes the applier rejects must be reported through `PlanResult::refresh_index` with a
//!   newer state; the scheduler re-plans (5 attempts for services and system jobs, 2 for
//!   batch, reset whenever a plan makes progress).
//!
//! # Differences from Nomad, and what is not here yet
//!
//! - The rolling-update engine (`max_parallel` gating, canaries, promotion, auto-revert) is
//!   a later piece: deployments are created, cancelled and completed, but every placement
//!   and destructive update is made at once. Failed allocations of an active deployment are
//!   rescheduled without waiting for a deployment watcher to mark them.
//! - No preemption, quotas, devices, reserved cores/NUMA, CSI volumes, dynamic host volume
//!   claims, per-allocation volume names or plan annotations. Allocations on disconnected
//!   nodes are treated as lost (no `disconnect` / `max_client_disconnect` handling).
//! - Ports are tracked per node, not per address: a host port is held by at most one live
//!   allocation on a node. Nodes that fingerprint no networks still offer `host` mode.
//! - The deprecated `AllocMetric.Scores` map is left null (as in Nomad since 0.9); scores
//!   are in `ScoreMetaData`.

mod context;
mod feasible;
mod generic_sched;
mod network;
mod propertyset;
mod rank;
mod reconcile;
mod reschedule;
mod stack;
mod system_sched;
mod util;
mod version;

pub mod error;
pub mod fit;
pub mod interfaces;
pub mod plan;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::sync::Arc;

use caravan_structs::{
    Evaluation, JOB_TYPE_BATCH, JOB_TYPE_SERVICE, JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM,
};

pub use error::SchedulerError;
pub use fit::{FitError, allocs_fit};
pub use interfaces::{Planner, SchedContext, SchedulerAlgorithm, SchedulerConfig, State};
pub use plan::{DeploymentStatusUpdate, Plan, PlanResult};
pub use version::{Version, VersionConstraints};

/// Processes one evaluation with the scheduler of its type (`service`, `batch`, `system`,
/// `sysbatch`), ending with `Planner::update_eval` (or `reblock_eval` for a blocked eval that
/// still cannot place everything).
pub fn process_eval(
    eval: &Evaluation,
    state: Arc<dyn State>,
    planner: &mut dyn Planner,
    ctx: &mut SchedContext,
) -> Result<(), SchedulerError> {
    match eval.r#type.as_str() {
        JOB_TYPE_SERVICE => generic_sched::process(eval, state, planner, ctx, false),
        JOB_TYPE_BATCH => generic_sched::process(eval, state, planner, ctx, true),
        JOB_TYPE_SYSTEM => system_sched::process(eval, state, planner, ctx, false),
        JOB_TYPE_SYSBATCH => system_sched::process(eval, state, planner, ctx, true),
        other => Err(SchedulerError::UnknownJobType(other.to_owned())),
    }
}
