//! The scheduler's view of the world: a read-only [`State`] snapshot, a [`Planner`] that
//! commits plans and writes evaluations, the scheduler configuration and the per-call
//! [`SchedContext`] (clock and randomness, injected so runs are reproducible).

use std::sync::Arc;

use caravan_structs::{Allocation, Deployment, Evaluation, Job, Node};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::SchedulerError;
use crate::plan::{Plan, PlanResult};

/// A consistent, read-only snapshot of the cluster, as of [`State::index`].
///
/// Nodes must carry a current `ComputedClass` (`Node::set_computed_class` whenever what it
/// hashes changes): feasibility answers are memoised per class within an evaluation and
/// recorded on blocked evals. A node with an empty class has it computed on the fly.
pub trait State: Send + Sync {
    /// The index the snapshot is at.
    fn index(&self) -> u64;
    /// The current version of a job (possibly `Stop = true`); `None` once purged.
    fn job(&self, namespace: &str, id: &str) -> Option<&Job>;
    /// One version of a job.
    fn job_version(&self, namespace: &str, id: &str, version: u64) -> Option<&Job>;
    /// Every node, whatever its status.
    fn nodes(&self) -> Vec<&Node>;
    fn node(&self, id: &str) -> Option<&Node>;
    /// Every allocation of a job, terminal ones included. Allocations carry `job: None` and
    /// their version in `job_version`.
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation>;
    /// Every allocation on a node, terminal ones included.
    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation>;
    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<&Deployment>;
    /// The configuration that schedules the jobs of `node_pool`: the cluster's, with what the
    /// pool sets for itself (algorithm, memory oversubscription) taking precedence.
    fn scheduler_config(&self, node_pool: &str) -> SchedulerConfig;
}

/// Commits plans and writes evaluations on the scheduler's behalf (the leader's plan applier
/// and eval writes, or the test harness).
pub trait Planner {
    /// Submits a plan. The applier re-checks every node and may commit only part of it; the
    /// returned state is `Some` (and at least `PlanResult::refresh_index` new) when the
    /// scheduler must re-plan on newer data.
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedulerError>;
    /// Writes the evaluation being processed with its final status.
    fn update_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError>;
    /// Creates a new evaluation: a blocked eval, or a delayed follow-up.
    fn create_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError>;
    /// Puts a blocked evaluation that still cannot place everything back into the blocked set.
    fn reblock_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError>;
}

/// How nodes are scored for fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedulerAlgorithm {
    /// Prefer the fullest node that fits (best fit).
    #[default]
    Binpack,
    /// Prefer the emptiest node (worst fit).
    Spread,
}

impl SchedulerAlgorithm {
    /// Nomad's configuration value (`binpack`, `spread`); anything else is binpack.
    pub fn from_name(name: &str) -> SchedulerAlgorithm {
        if name == "spread" {
            SchedulerAlgorithm::Spread
        } else {
            SchedulerAlgorithm::Binpack
        }
    }
}

/// The parts of Nomad's `SchedulerConfiguration` the scheduler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerConfig {
    pub algorithm: SchedulerAlgorithm,
    /// Reserve `MemoryMaxMB` as well as `MemoryMB` for tasks that ask for it.
    pub memory_oversubscription_enabled: bool,
}

/// What a scheduler run may not take from the environment: the time and the randomness
/// (node shuffle, dynamic ports, IDs). Same state, eval, seed and `now` give the same plans —
/// and the same IDs, so production callers seed every run from a random source.
#[derive(Debug, Clone)]
pub struct SchedContext {
    /// Unix nanoseconds: create/modify times, reschedule arithmetic.
    pub now: i64,
    pub rng: StdRng,
}

impl SchedContext {
    pub fn new(now: i64, seed: u64) -> SchedContext {
        SchedContext {
            now,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A fresh random (v4) UUID from the context's generator.
    pub fn uuid(&mut self) -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}
