//! The working context of one scheduling pass: the state snapshot, the plan being built, and
//! what has been learned so far — each looked-at node's usage (built lazily from the node's
//! allocations and kept in step with the plan), feasibility memos and parsed constraints.
//!
//! Every change to the plan goes through [`EvalContext`] so that node usage and the plan log
//! (which property sets and spreads replay) never disagree with the plan.

use std::collections::HashMap;

use caravan_structs::{Allocation, Node};
use rand::rngs::StdRng;

use crate::feasible::{ConstraintCache, Eligibility};
use crate::fit::{Amounts, alloc_amounts};
use crate::interfaces::{SchedContext, SchedulerConfig, State};
use crate::network::{PortUsage, alloc_ports, node_reserved_ports};
use crate::plan::Plan;

/// What one live allocation contributes to its node.
#[derive(Debug, Clone)]
struct Counted {
    amounts: Amounts,
    ports: Vec<i64>,
    /// The group, when the allocation belongs to the job being scheduled.
    job_group: Option<String>,
}

/// The load on one node: existing live allocations, adjusted by the plan.
#[derive(Debug, Clone, Default)]
pub struct NodeUsage {
    pub used: Amounts,
    pub ports: PortUsage,
    /// Live allocations already hold a port twice (or a reserved one).
    pub port_collision: bool,
    /// The node's reserved ports do not parse.
    pub invalid_node: bool,
    /// Live allocations of the job being scheduled, per group.
    pub job_groups: HashMap<String, u32>,
    counted: HashMap<String, Counted>,
}

impl NodeUsage {
    /// Live allocations of the job on the node (any group).
    pub fn job_total(&self) -> u32 {
        self.job_groups.values().sum()
    }

    fn add(&mut self, id: &str, c: Counted) {
        self.used.add(c.amounts);
        if !self.ports.add(&c.ports).is_empty() {
            self.port_collision = true;
        }
        if let Some(g) = &c.job_group {
            *self.job_groups.entry(g.clone()).or_insert(0) += 1;
        }
        self.counted.insert(id.to_owned(), c);
    }

    fn remove(&mut self, id: &str) {
        let Some(c) = self.counted.remove(id) else {
            return;
        };
        self.used.sub(c.amounts);
        self.ports.remove(&c.ports);
        if let Some(g) = &c.job_group
            && let Some(n) = self.job_groups.get_mut(g)
        {
            *n = n.saturating_sub(1);
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
    usage: HashMap<String, NodeUsage>,
}

impl<'s, 'c> EvalContext<'s, 'c> {
    pub fn new(
        state: &'s dyn State,
        sched: &'c mut SchedContext,
        plan: Plan,
        namespace: &str,
        job_id: &str,
    ) -> EvalContext<'s, 'c> {
        EvalContext {
            config: state.scheduler_config(),
            state,
            sched,
            plan,
            namespace: namespace.to_owned(),
            job_id: job_id.to_owned(),
            eligibility: Eligibility::default(),
            constraints: ConstraintCache::default(),
            plan_log: Vec::new(),
            usage: HashMap::new(),
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

    fn counted(&self, a: &Allocation) -> Counted {
        Counted {
            amounts: alloc_amounts(a),
            ports: alloc_ports(a),
            job_group: self.is_job(a).then(|| a.task_group.clone()),
        }
    }

    /// The node's usage, built on first use from its live allocations and the plan.
    pub fn usage(&mut self, node: &Node) -> &NodeUsage {
        self.usage_and_rng(node).0
    }

    /// The node's usage together with the random generator (port picks need both).
    pub fn usage_and_rng(&mut self, node: &Node) -> (&NodeUsage, &mut StdRng) {
        if !self.usage.contains_key(&node.id) {
            let u = self.build_usage(node);
            self.usage.insert(node.id.clone(), u);
        }
        let usage = self
            .usage
            .get(&node.id)
            .unwrap_or_else(|| unreachable_usage());
        (usage, &mut self.sched.rng)
    }

    fn build_usage(&self, node: &Node) -> NodeUsage {
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
        let mut seen = std::collections::HashSet::new();
        for a in self.state.allocs_by_node(&node.id) {
            seen.insert(a.id.as_str());
            if is_stopped(&a.id) {
                continue;
            }
            let a = planned_version(&a.id).unwrap_or(a);
            if !a.terminal_status() {
                u.add(&a.id, self.counted(a));
            }
        }
        for a in planned.into_iter().flatten() {
            if !seen.contains(a.id.as_str()) && !a.terminal_status() && !is_stopped(&a.id) {
                u.add(&a.id, self.counted(a));
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
        if let Some(u) = self.usage.get_mut(&alloc.node_id) {
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

    /// Takes back a staged stop of `alloc`.
    pub fn pop_stop(&mut self, alloc: &Allocation) {
        if !self.plan.pop_update(&alloc.node_id, &alloc.id) {
            return;
        }
        if alloc.terminal_status() {
            return;
        }
        let c = self.counted(alloc);
        if let Some(u) = self.usage.get_mut(&alloc.node_id) {
            u.remove(&alloc.id);
            u.add(&alloc.id, c);
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
        let c = self.counted(&alloc);
        if let Some(u) = self.usage.get_mut(&alloc.node_id) {
            u.add(&alloc.id, c);
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

    /// Stages a changed copy of an existing allocation (in-place or attribute update).
    pub fn update_alloc(&mut self, alloc: Allocation) {
        let c = (!alloc.terminal_status()).then(|| self.counted(&alloc));
        if let Some(u) = self.usage.get_mut(&alloc.node_id) {
            u.remove(&alloc.id);
            if let Some(c) = c {
                u.add(&alloc.id, c);
            }
        }
        self.plan.append_alloc(alloc);
    }
}

/// `usage_and_rng` inserts before it looks up, so the lookup cannot miss; this keeps the
/// code free of `expect` all the same.
fn unreachable_usage() -> &'static NodeUsage {
    static EMPTY: std::sync::OnceLock<NodeUsage> = std::sync::OnceLock::new();
    EMPTY.get_or_init(NodeUsage::default)
}
