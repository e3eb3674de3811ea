//! Plans: what one scheduling pass wants changed ([`Plan`]), and what the plan applier
//! committed of it ([`PlanResult`]).

use std::collections::{BTreeMap, BTreeSet};

use caravan_structs::{
    ALLOC_DESIRED_STATUS_STOP, AllocState, Allocation, Deployment, Evaluation, Job, Time,
};

/// A change of a deployment's status, applied with the plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentStatusUpdate {
    pub deployment_id: String,
    pub status: String,
    pub status_description: String,
}

/// The changes one scheduling pass asks for. Allocations carry `job: None`; new ones and
/// in-place updates carry the version they run in `job_version` (that version is `job`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub eval_id: String,
    pub priority: i64,
    /// The job the placements run; `None` when the job was purged.
    pub job: Option<Job>,
    /// Per node: allocations to stop, evict or mark lost, each a copy of the allocation with
    /// `DesiredStatus`, `DesiredDescription` (and `ClientStatus` when lost) changed.
    pub node_update: BTreeMap<String, Vec<Allocation>>,
    /// Per node: new allocations, in-place updates and attribute updates (an existing
    /// allocation with, e.g., `FollowupEvalID` or `NextAllocation` set).
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    /// A deployment to create or replace whole (new deployments, placement counts).
    pub deployment: Option<Deployment>,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// The index of the state snapshot the plan was made on.
    pub snapshot_index: u64,
    /// All placements must commit, or none.
    pub all_at_once: bool,
}

/// What the plan applier committed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanResult {
    pub node_update: BTreeMap<String, Vec<Allocation>>,
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    pub deployment: Option<Deployment>,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// Non-zero when some nodes were rejected: re-plan on a state at least this new.
    pub refresh_index: u64,
    /// The index the allocations were written at.
    pub alloc_index: u64,
}

impl Plan {
    /// An empty plan for `eval`.
    pub fn for_eval(eval: &Evaluation, job: Option<&Job>, snapshot_index: u64) -> Plan {
        Plan {
            eval_id: eval.id.clone(),
            priority: eval.priority,
            all_at_once: job.is_some_and(|j| j.all_at_once),
            job: job.cloned(),
            snapshot_index,
            ..Plan::default()
        }
    }

    /// Nothing to change.
    pub fn is_no_op(&self) -> bool {
        self.node_update.values().all(Vec::is_empty)
            && self.node_allocation.values().all(Vec::is_empty)
            && self.deployment.is_none()
            && self.deployment_updates.is_empty()
    }

    /// Stages a stop of `alloc` (Nomad's `AppendStoppedAlloc`): desired `stop` with the
    /// description, the client status when given (e.g. `lost`, recorded in `AllocStates`),
    /// and the follow-up eval when given.
    pub fn append_stopped_alloc(
        &mut self,
        alloc: &Allocation,
        desired_description: &str,
        client_status: &str,
        followup_eval_id: &str,
        now: i64,
    ) {
        let mut stopped = alloc.clone();
        stopped.job = None;
        stopped.resources = None;
        stopped.desired_status = ALLOC_DESIRED_STATUS_STOP.to_owned();
        stopped.desired_description = desired_description.to_owned();
        if !client_status.is_empty() {
            stopped.client_status = client_status.to_owned();
            stopped
                .alloc_states
                .get_or_insert_with(Vec::new)
                .push(AllocState {
                    field: "ClientStatus".to_owned(),
                    time: Time::from_unix_nanos(now),
                    value: client_status.to_owned(),
                });
        }
        if !followup_eval_id.is_empty() {
            stopped.followup_eval_id = followup_eval_id.to_owned();
        }
        self.node_update
            .entry(alloc.node_id.clone())
            .or_default()
            .push(stopped);
    }

    /// Removes a staged stop of `alloc_id` on `node_id`; returns whether there was one.
    pub fn pop_update(&mut self, node_id: &str, alloc_id: &str) -> bool {
        let Some(updates) = self.node_update.get_mut(node_id) else {
            return false;
        };
        let Some(pos) = updates.iter().rposition(|a| a.id == alloc_id) else {
            return false;
        };
        updates.remove(pos);
        if updates.is_empty() {
            self.node_update.remove(node_id);
        }
        true
    }

    /// The staged stop of `alloc_id` on `node_id`, if any.
    pub fn update_mut(&mut self, node_id: &str, alloc_id: &str) -> Option<&mut Allocation> {
        self.node_update
            .get_mut(node_id)?
            .iter_mut()
            .rev()
            .find(|a| a.id == alloc_id)
    }

    /// Stages a new allocation or an update of an existing one; a second update of the same
    /// allocation replaces the first.
    pub fn append_alloc(&mut self, mut alloc: Allocation) {
        alloc.job = None;
        let allocs = self
            .node_allocation
            .entry(alloc.node_id.clone())
            .or_default();
        if let Some(existing) = allocs.iter_mut().find(|a| a.id == alloc.id) {
            *existing = alloc;
        } else {
            allocs.push(alloc);
        }
    }

    /// Every allocation the plan places or updates.
    pub fn allocs(&self) -> impl Iterator<Item = &Allocation> {
        self.node_allocation.values().flatten()
    }
}

impl PlanResult {
    /// Whether every allocation of `plan` was committed: (full, expected, committed).
    pub fn full_commit(&self, plan: &Plan) -> (bool, usize, usize) {
        let expected: usize = plan.node_allocation.values().map(Vec::len).sum();
        let actual: usize = self.node_allocation.values().map(Vec::len).sum();
        (expected == actual, expected, actual)
    }

    /// Whether anything was committed (the retry budget restarts when so).
    pub fn progress_made(&self) -> bool {
        self.node_update.values().any(|v| !v.is_empty())
            || self.node_allocation.values().any(|v| !v.is_empty())
            || self.deployment.is_some()
            || !self.deployment_updates.is_empty()
    }

    /// The committed allocations whose IDs are in `new_ids`, counted per task group.
    pub(crate) fn placed_per_group(&self, new_ids: &BTreeSet<String>) -> BTreeMap<String, i64> {
        let mut placed = BTreeMap::new();
        for a in self.node_allocation.values().flatten() {
            if new_ids.contains(&a.id) {
                *placed.entry(a.task_group.clone()).or_insert(0) += 1;
            }
        }
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_pop_and_no_op() {
        let mut p = Plan::default();
        assert!(p.is_no_op());
        let a = Allocation {
            id: "a".into(),
            node_id: "n".into(),
            ..Default::default()
        };
        p.append_stopped_alloc(&a, "gone", "lost", "", 7);
        let s = &p.node_update["n"][0];
        assert_eq!(
            (s.desired_status.as_str(), s.client_status.as_str()),
            ("stop", "lost")
        );
        assert_eq!(s.alloc_states.as_ref().map(Vec::len), Some(1));
        assert!(!p.is_no_op());
        assert!(p.pop_update("n", "a"));
        assert!(p.is_no_op());
        assert!(!p.pop_update("n", "a"));
    }
}
