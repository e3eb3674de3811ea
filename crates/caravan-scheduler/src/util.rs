//! Helpers shared by the schedulers: allocation names, ready and tainted nodes, the
//! destructive-change test between job versions, and the eval bookkeeping (final status,
//! blocked evals).

use std::collections::{BTreeMap, HashMap};

use caravan_structs::{
    ALLOC_CLIENT_STATUS_LOST, ALLOC_CLIENT_STATUS_PENDING, ALLOC_CLIENT_STATUS_RUNNING,
    ALLOC_DESIRED_STATUS_EVICT, ALLOC_DESIRED_STATUS_STOP, AllocMetric, Allocation,
    EVAL_STATUS_BLOCKED, Evaluation, Job, NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN, Node, Task,
    TaskGroup, eval_trigger,
};

use crate::context::EvalContext;
use crate::feasible::{in_datacenters, in_pool};
use crate::interfaces::State;

/// `DesiredDescription`s of stopped allocations (Nomad's wording).
pub const ALLOC_NOT_NEEDED: &str = "alloc not needed due to job update";
pub const ALLOC_MIGRATING: &str = "alloc is being migrated";
pub const ALLOC_UPDATING: &str = "alloc is being updated due to job update";
pub const ALLOC_LOST: &str = "alloc is lost since its node is down";
pub const ALLOC_IN_PLACE: &str = "alloc updating in-place";
pub const ALLOC_NODE_TAINTED: &str = "alloc not needed as node is tainted";
pub const ALLOC_RESCHEDULED: &str = "alloc was rescheduled because it failed";
/// `StatusDescription`s of evals the schedulers create.
pub const BLOCKED_EVAL_MAX_PLAN_DESC: &str = "created due to placement conflicts";
pub const BLOCKED_EVAL_FAILED_PLACEMENTS: &str = "created to place remaining allocations";
pub const RESCHEDULING_FOLLOWUP_EVAL_DESC: &str = "created for delayed rescheduling";

/// FNV-1a: a fast hash for the scheduler's internal maps, keyed by short IDs and names it
/// built itself (no untrusted keys, so no need for SipHash's flood resistance).
#[derive(Debug, Clone, Copy)]
pub struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FnvHasher`].
pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FnvHasher>>;

/// `<job>.<group>[<index>]`.
pub fn alloc_name(job: &str, group: &str, idx: u64) -> String {
    format!("{job}.{group}[{idx}]")
}

/// The index in an allocation name (0 when it has none).
pub fn alloc_index(name: &str) -> u64 {
    name.rsplit_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The ready nodes in the job's datacenters and pool, the count per datacenter, and the IDs
/// of the nodes there that are not ready.
pub struct ReadyNodes<'s> {
    pub nodes: Vec<&'s Node>,
    pub by_dc: BTreeMap<String, i64>,
    pub not_ready: std::collections::HashSet<String>,
}

pub fn ready_nodes<'s>(state: &'s dyn State, job: &Job) -> ReadyNodes<'s> {
    let dcs = job.datacenters.clone().unwrap_or_default();
    let mut out = ReadyNodes {
        nodes: Vec::new(),
        by_dc: BTreeMap::new(),
        not_ready: Default::default(),
    };
    let mut all = state.nodes();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    for node in all {
        if !in_datacenters(node, &dcs) || !in_pool(node, job) {
            continue;
        }
        if !node.ready() {
            out.not_ready.insert(node.id.clone());
            continue;
        }
        *out.by_dc.entry(node.datacenter.clone()).or_insert(0) += 1;
        out.nodes.push(node);
    }
    out
}

/// The nodes of `allocs` that are gone (`None`), down, disconnected or draining.
pub fn tainted_nodes<'s>(
    state: &'s dyn State,
    allocs: &[&Allocation],
) -> HashMap<String, Option<&'s Node>> {
    let mut out = HashMap::new();
    for a in allocs {
        if out.contains_key(&a.node_id) {
            continue;
        }
        match state.node(&a.node_id) {
            None => {
                out.insert(a.node_id.clone(), None);
            }
            Some(n)
                if n.status == NODE_STATUS_DOWN
                    || n.status == NODE_STATUS_DISCONNECTED
                    || n.drain_strategy.is_some() =>
            {
                out.insert(a.node_id.clone(), Some(n));
            }
            Some(_) => {}
        }
    }
    out
}

/// Allocations the server already stopped but whose down node never confirmed are marked
/// lost.
pub fn update_non_terminal_allocs_to_lost(
    ctx: &mut EvalContext<'_, '_>,
    tainted: &HashMap<String, Option<&Node>>,
    allocs: &[&Allocation],
) {
    for a in allocs {
        let Some(node) = tainted.get(&a.node_id) else {
            continue;
        };
        if node.is_some_and(|n| n.status != NODE_STATUS_DOWN) {
            continue;
        }
        let server_stopped = a.desired_status == ALLOC_DESIRED_STATUS_STOP
            || a.desired_status == ALLOC_DESIRED_STATUS_EVICT;
        let client_live = a.client_status == ALLOC_CLIENT_STATUS_RUNNING
            || a.client_status == ALLOC_CLIENT_STATUS_PENDING;
        if server_stopped && client_live {
            ctx.stop_alloc(a, ALLOC_LOST, ALLOC_CLIENT_STATUS_LOST, "");
        }
    }
}

/// Job, group and task meta merged, task winning (what a task sees as `NOMAD_META_*`).
fn combined_meta(job: &Job, tg: &TaskGroup, task: &Task) -> BTreeMap<String, String> {
    let mut m = job.meta.clone().unwrap_or_default();
    m.extend(tg.meta.clone().unwrap_or_default());
    m.extend(task.meta.clone().unwrap_or_default());
    m
}

/// Whether moving group `tg` from job version `old` to `new` needs new allocations (Nomad's
/// `tasksUpdated`): anything that changes how tasks run or what they reserve. Scheduling
/// fields (count, constraints, affinities, spreads, policies, services) update in place.
pub fn tasks_updated(old: &Job, new: &Job, tg: &str) -> bool {
    let (Some(a), Some(b)) = (old.lookup_task_group(tg), new.lookup_task_group(tg)) else {
        return true;
    };
    let (ta, tb) = (
        a.tasks.as_deref().unwrap_or(&[]),
        b.tasks.as_deref().unwrap_or(&[]),
    );
    if ta.len() != tb.len()
        || a.networks != b.networks
        || a.ephemeral_disk != b.ephemeral_disk
        || a.volumes != b.volumes
        || a.consul != b.consul
    {
        return true;
    }
    let connect = |tg: &TaskGroup| -> Vec<Option<serde_json::Value>> {
        tg.services
            .iter()
            .flatten()
            .map(|s| s.connect.clone())
            .collect()
    };
    if connect(a) != connect(b) {
        return true;
    }
    for at in ta {
        let Some(bt) = b.lookup_task(&at.name) else {
            return true;
        };
        let (ra, rb) = (
            at.resources.clone().unwrap_or_default(),
            bt.resources.clone().unwrap_or_default(),
        );
        if at.driver != bt.driver
            || at.user != bt.user
            || at.lifecycle != bt.lifecycle
            || at.config != bt.config
            || at.env != bt.env
            || at.artifacts != bt.artifacts
            || at.vault != bt.vault
            || at.templates != bt.templates
            || at.dispatch_payload != bt.dispatch_payload
            || at.csi_plugin_config != bt.csi_plugin_config
            || at.identities != bt.identities
            || at.identity != bt.identity
            || at.volume_mounts != bt.volume_mounts
            || at.log_config != bt.log_config
            || combined_meta(old, a, at) != combined_meta(new, b, bt)
            || ra.cpu != rb.cpu
            || ra.cores != rb.cores
            || ra.memory_mb != rb.memory_mb
            || ra.memory_max_mb != rb.memory_max_mb
            || ra.devices != rb.devices
            || ra.networks != rb.networks
        {
            return true;
        }
    }
    false
}

/// The blocked eval that retries the placements `eval` could not make.
pub fn blocked_eval(
    eval: &Evaluation,
    id: String,
    now: i64,
    class_eligibility: Option<BTreeMap<String, bool>>,
    escaped: bool,
    failed: Option<BTreeMap<String, AllocMetric>>,
    plan_failure: bool,
) -> Evaluation {
    Evaluation {
        id,
        namespace: eval.namespace.clone(),
        priority: eval.priority,
        r#type: eval.r#type.clone(),
        triggered_by: if plan_failure {
            eval_trigger::MAX_PLANS.to_owned()
        } else {
            eval_trigger::QUEUED_ALLOCS.to_owned()
        },
        job_id: eval.job_id.clone(),
        job_modify_index: eval.job_modify_index,
        status: EVAL_STATUS_BLOCKED.to_owned(),
        status_description: if plan_failure {
            BLOCKED_EVAL_MAX_PLAN_DESC
        } else {
            BLOCKED_EVAL_FAILED_PLACEMENTS
        }
        .to_owned(),
        previous_eval: eval.id.clone(),
        failed_tg_allocs: failed,
        class_eligibility,
        escaped_computed_class: escaped,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

/// The final form of the processed eval (Nomad's `setStatus`).
#[allow(clippy::too_many_arguments)]
pub fn final_eval(
    eval: &Evaluation,
    status: &str,
    desc: &str,
    now: i64,
    next_eval: Option<&str>,
    blocked: Option<&str>,
    failed: Option<BTreeMap<String, AllocMetric>>,
    queued: Option<BTreeMap<String, i64>>,
    deployment_id: &str,
) -> Evaluation {
    let mut e = eval.clone();
    e.status = status.to_owned();
    e.status_description = desc.to_owned();
    e.deployment_id = deployment_id.to_owned();
    e.failed_tg_allocs = failed;
    if let Some(n) = next_eval {
        e.next_eval = n.to_owned();
    }
    if let Some(b) = blocked {
        e.blocked_eval = b.to_owned();
    }
    if queued.is_some() {
        e.queued_allocations = queued;
    }
    e.modify_time = now;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(alloc_name("web", "api", 3), "web.api[3]");
        assert_eq!(alloc_index("web.api[12]"), 12);
        assert_eq!(alloc_index("a.b[c][4]"), 4);
        assert_eq!(alloc_index("junk"), 0);
    }
}
