//! The working context of one scheduling pass: the state snapshot, the plan being built, and
//! what has been learned so far — each looked-at node's usage (built lazily from the node's
//! allocations and kept in step with the plan), feasibility memos and parsed constraints.
//!
//! Every change to the plan goes through [`EvalContext`] so that node usage and the plan log
//! (which property sets and spreads replay) never disagree with the plan.

use caravan_structs::{Allocation, Node};
use rand::rngs::StdRng;

use crate::feasible::{ConstraintCache, Eligibility};
use crate::fit::{Amounts, alloc_amounts};
use crate::interfaces::{SchedContext, SchedulerConfig, State};
use crate::network::{PortUsage, alloc_ports, node_reserved_ports};
use crate::plan::Plan;
use crate::util::FastMap;

/// What one live allocation contributes to its node.
#[derive(Debug, Clone)]
struct Counted<'s> {
    /// The ID of an allocation from the state (new allocations are never taken back).
    id: Option<&'s str>,
    amounts: Amounts,
    ports: Vec<i64>,
    /// The group, when the allocation belongs to the job being scheduled.
    job_group: Option<String>,
}

/// The load on one node: existing live allocations, adjusted by the plan.
#[derive(Debug, Clone, Default)]
pub struct NodeUsage<'s> {
    pub used: Amounts,
    pub ports: PortUsage,
    /// Live allocations already hold a port twice (or a reserved one).
    pub port_collision: bool,
    /// The node's reserved ports do not parse.
    pub invalid_node: bool,
    counted: Vec<Counted<'s>>,
    /// Live allocations of the job being scheduled, per group (few entries).
    job_groups: Vec<(String, u32)>,
}

impl<'s> NodeUsage<'s> {
    /// Live allocations of the job being scheduled in group `tg`.
    pub fn job_group_count(&self, tg: &str) -> u32 {
        self.job_groups
            .iter()
            .find(|(g, _)| g == tg)
            .map_or(0, |(_, n)| *n)
    }

    /// Live allocations of the job being scheduled (any group).
    pub fn job_total(&self) -> u32 {
        self.job_groups.iter().map(|(_, n)| n).sum()
    }

    fn count_job_group(&mut self, group: &str, delta: i64) {
        match self.job_groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, n)) => *n = u32::try_from(i64::from(*n) + delta).unwrap_or(0),
            None if delta > 0 => self.job_groups.push((group.to_owned(), 1)),
            None => {}
        }
    }

    fn add(&mut self, c: Counted<'s>) {
        self.used.add(c.amounts);
        if !self.ports.add(&c.ports).is_empty() {
            self.port_collision = true;
        }
        if let Some(g) = &c.job_group {
            let g = g.clone();
            self.count_job_group(&g, 1);
        }
        self.counted.push(c);
    }

    fn remove(&mut self, id: &str) {
        let Some(pos) = self.counted.iter().position(|c| c.id == Some(id)) else {
            return;
        };
        let c = self.counted.swap_remove(pos);
        self.used.sub(c.amounts);
        self.ports.remove(&c.ports);
        if let Some(g) = &c.job_group {
            self.count_job_group(g, -1);
        }
    }
}

/// A change the plan made to the live allocations of the job, replayed by property sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEvent {
    pub node_id: String,
    pub task_group: String,
    /// +1: a new allocation, or a staged stop taken back; -1: a live allocation stopped.
    pub delta: i32,
}

/// See the module docs.
pub struct EvalContext<'s, 'c> {
    pub state: &'s dyn State,
    pub sched: &'c mut SchedContext,
    pub plan: Plan,
    pub config: SchedulerConfig,
    pub namespace: String,
    pub job_id: String,
    pub eligibility: Eligibility,
    pub constraints: ConstraintCache,
    pub plan_log: Vec<PlanEvent>,
    usage: FastMap<&'s str, NodeUsage<'s>>,
}

impl<'s, 'c> EvalContext<'s, 'c> {
    pub fn new(
        state: &'s dyn State,
        sched: &'c mut SchedContext,
        plan: Plan,
        namespace: &str,
        job_id: &str,
    ) -> EvalContext<'s, 'c> {
        let node_pool = state
            .job(namespace, job_id)
            .map_or("", |job| job.node_pool.as_str());
        EvalContext {
            config: state.scheduler_config(node_pool),
            state,
            sched,
            plan,
            namespace: namespace.to_owned(),
            job_id: job_id.to_owned(),
            eligibility: Eligibility::default(),
            constraints: ConstraintCache::default(),
            plan_log: Vec::new(),
            usage: FastMap::default(),
        }
    }

    pub fn now(&self) -> i64 {
        self.sched.now
    }

    pub fn uuid(&mut self) -> String {
        self.sched.uuid()
    }

    fn is_job(&self, a: &Allocation) -> bool {
        a.job_id == self.job_id && a.namespace == self.namespace
    }

    fn counted(&self, a: &Allocation, id: Option<&'s str>) -> Counted<'s> {
        Counted {
            id,
            amounts: alloc_amounts(a),
            ports: alloc_ports(a),
            job_group: self.is_job(a).then(|| a.task_group.clone()),
        }
    }

    /// The node's usage, built on first use from its live allocations and the plan.
    pub fn usage(&mut self, node: &'s Node) -> &NodeUsage<'s> {
        self.usage_and_rng(node).0
    }

    /// The node's usage together with the random generator (port picks need both).
    pub fn usage_and_rng(&mut self, node: &'s Node) -> (&NodeUsage<'s>, &mut StdRng) {
        if !self.usage.contains_key(node.id.as_str()) {
            let u = self.build_usage(node);
            self.usage.insert(&node.id, u);
        }
        let usage = self
            .usage
            .get(node.id.as_str())
            .unwrap_or_else(|| empty_usage());
        (usage, &mut self.sched.rng)
    }

    fn build_usage(&self, node: &Node) -> NodeUsage<'s> {
        let (reserved, invalid_node) = match node_reserved_ports(node) {
            Ok(r) => (r, false),
            Err(_) => (Vec::new(), true),
        };
        let mut u = NodeUsage {
            ports: PortUsage::new(reserved),
            invalid_node,
            ..NodeUsage::default()
        };
        let stopped = self.plan.node_update.get(&node.id);
        let planned = self.plan.node_allocation.get(&node.id);
        let is_stopped = |id: &str| stopped.is_some_and(|s| s.iter().any(|a| a.id == id));
        let planned_version = |id: &str| planned.and_then(|p| p.iter().find(|a| a.id == id));
        let state_allocs = self.state.allocs_by_node(&node.id);
        for a in &state_allocs {
            if is_stopped(&a.id) {
                continue;
            }
            let current = planned_version(&a.id).unwrap_or(a);
            if !current.terminal_status() {
                u.add(self.counted(current, Some(&a.id)));
            }
        }
        for a in planned.into_iter().flatten() {
            let known = state_allocs.iter().any(|s| s.id == a.id);
            if !known && !a.terminal_status() && !is_stopped(&a.id) {
                u.add(self.counted(a, None));
            }
        }
        u
    }

    /// Stages a stop of `alloc` (see [`Plan::append_stopped_alloc`]).
    pub fn stop_alloc(
        &mut self,
        alloc: &Allocation,
        desc: &str,
        client_status: &str,
        followup_eval_id: &str,
    ) {
        let now = self.now();
        self.plan
            .append_stopped_alloc(alloc, desc, client_status, followup_eval_id, now);
        if let Some(u) = self.usage.get_mut(alloc.node_id.as_str()) {
            u.remove(&alloc.id);
        }
        if !alloc.terminal_status() && self.is_job(alloc) {
            self.plan_log.push(PlanEvent {
                node_id: alloc.node_id.clone(),
                task_group: alloc.task_group.clone(),
                delta: -1,
            });
        }
    }

    /// Takes back a staged stop of `alloc` (an allocation of the state).
    pub fn pop_stop(&mut self, alloc: &'s Allocation) {
        if !self.plan.pop_update(&alloc.node_id, &alloc.id) {
            return;
        }
        if alloc.terminal_status() {
            return;
        }
        let c = self.counted(alloc, Some(&alloc.id));
        if let Some(u) = self.usage.get_mut(alloc.node_id.as_str()) {
            u.remove(&alloc.id);
            u.add(c);
        }
        if self.is_job(alloc) {
            self.plan_log.push(PlanEvent {
                node_id: alloc.node_id.clone(),
                task_group: alloc.task_group.clone(),
                delta: 1,
            });
        }
    }

    /// Stages a new allocation.
    pub fn place_alloc(&mut self, alloc: Allocation) {
        let c = self.counted(&alloc, None);
        if let Some(u) = self.usage.get_mut(alloc.node_id.as_str()) {
            u.add(c);
        }
        if self.is_job(&alloc) {
            self.plan_log.push(PlanEvent {
                node_id: alloc.node_id.clone(),
                task_group: alloc.task_group.clone(),
                delta: 1,
            });
        }
        self.plan.append_alloc(alloc);
    }

    /// Stages a changed copy of `existing`, an allocation of the state (in-place or
    /// attribute update).
    pub fn update_alloc(&mut self, existing: &'s Allocation, updated: Allocation) {
        let c = (!updated.terminal_status()).then(|| self.counted(&updated, Some(&existing.id)));
        if let Some(u) = self.usage.get_mut(existing.node_id.as_str()) {
            u.remove(&existing.id);
            if let Some(c) = c {
                u.add(c);
            }
        }
        self.plan.append_alloc(updated);
    }
}

/// `usage_and_rng` inserts before it looks up, so the lookup cannot miss; this keeps the
/// code free of `expect` all the same.
fn empty_usage() -> &'static NodeUsage<'static> {
    static EMPTY: std::sync::OnceLock<NodeUsage<'static>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(NodeUsage::default)
}
