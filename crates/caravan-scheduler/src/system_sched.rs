//! The system and sysbatch schedulers (Nomad's `SystemScheduler`): one allocation per group
//! on every ready, feasible node of the job's datacenters and pool. Allocations on nodes that
//! left are stopped (or marked lost), stale versions are updated in place or replaced on the
//! same node, and sysbatch allocations that ran are not run again for the same job version.
//! A node without room is reported in `FailedTGAllocs` but does not block the eval.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use caravan_structs::{
    ALLOC_CLIENT_STATUS_LOST, ALLOC_CLIENT_STATUS_PENDING, ALLOC_DESIRED_STATUS_RUN, AllocMetric,
    Allocation, EVAL_STATUS_COMPLETE, EVAL_STATUS_FAILED, Evaluation, Job, NODE_STATUS_READY, Node,
    Resources, TaskGroup,
};

use crate::context::EvalContext;
use crate::error::SchedulerError;
use crate::feasible::{in_datacenters, in_pool};
use crate::interfaces::{Planner, SchedContext, State};
use crate::plan::Plan;
use crate::rank::exhaust_resources;
use crate::stack::{SelectOptions, Stack, old_task_resources};
use crate::util::{
    ALLOC_IN_PLACE, ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NODE_TAINTED, ALLOC_NOT_NEEDED,
    ALLOC_UPDATING, alloc_name, final_eval, ready_nodes, tainted_nodes, tasks_updated,
    update_non_terminal_allocs_to_lost,
};

const MAX_SYSTEM_SCHEDULE_ATTEMPTS: usize = 5;

struct SystemScheduler<'e> {
    eval: &'e Evaluation,
    sysbatch: bool,
    state: Arc<dyn State>,
    failed: Option<BTreeMap<String, AllocMetric>>,
    queued: BTreeMap<String, i64>,
    progress: bool,
}

/// One placement on one node.
struct SystemPlace<'s> {
    node: &'s Node,
    tg: &'s TaskGroup,
    name: String,
    previous: Option<&'s Allocation>,
    /// Replaces `previous` (a stale version): its stop is undone if the node has no room.
    destructive: bool,
}

/// Processes a system (`sysbatch = false`) or sysbatch evaluation.
pub fn process(
    eval: &Evaluation,
    state: Arc<dyn State>,
    planner: &mut dyn Planner,
    sched: &mut SchedContext,
    sysbatch: bool,
) -> Result<(), SchedulerError> {
    let mut s = SystemScheduler {
        eval,
        sysbatch,
        state,
        failed: None,
        queued: BTreeMap::new(),
        progress: false,
    };
    let mut attempts = 0;
    loop {
        if attempts >= MAX_SYSTEM_SCHEDULE_ATTEMPTS {
            let desc = format!("maximum attempts reached ({MAX_SYSTEM_SCHEDULE_ATTEMPTS})");
            let e = final_eval(
                eval,
                EVAL_STATUS_FAILED,
                &desc,
                sched.now,
                None,
                None,
                s.failed.clone(),
                Some(s.queued.clone()),
                "",
            );
            return planner.update_eval(&e);
        }
        if s.attempt(planner, sched)? {
            break;
        }
        if s.progress {
            attempts = 0;
        } else {
            attempts += 1;
        }
    }
    let e = final_eval(
        eval,
        EVAL_STATUS_COMPLETE,
        "",
        sched.now,
        None,
        None,
        s.failed.clone(),
        Some(s.queued.clone()),
        "",
    );
    planner.update_eval(&e)
}

impl SystemScheduler<'_> {
    fn attempt(
        &mut self,
        planner: &mut dyn Planner,
        sched: &mut SchedContext,
    ) -> Result<bool, SchedulerError> {
        let state = Arc::clone(&self.state);
        let st: &dyn State = &*state;
        let eval = self.eval;
        let (ns, job_id) = (eval.namespace.as_str(), eval.job_id.as_str());
        let job = st.job(ns, job_id);
        let live_job = job.filter(|j| !j.stop);
        self.queued = BTreeMap::new();
        self.failed = None;
        self.progress = false;

        let plan = Plan::for_eval(eval, job, st.index());
        let mut ctx = EvalContext::new(st, sched, plan, ns, job_id);
        let mut stack = live_job.map(|j| Stack::new(&mut ctx, j, false, true));
        let ready = live_job.map(|j| ready_nodes(st, j));

        let allocs = st.allocs_by_job(ns, job_id);
        let tainted = tainted_nodes(st, &allocs);
        update_non_terminal_allocs_to_lost(&mut ctx, &tainted, &allocs);

        // Live allocations by node and name; the newest terminal one per node and name.
        let mut live: BTreeMap<&str, BTreeMap<&str, Vec<&Allocation>>> = BTreeMap::new();
        let mut terminal: HashMap<(&str, &str), &Allocation> = HashMap::new();
        for a in &allocs {
            if a.terminal_status() {
                let slot = terminal.entry((&a.node_id, &a.name)).or_insert(a);
                if slot.create_index < a.create_index {
                    *slot = a;
                }
            } else {
                live.entry(&a.node_id)
                    .or_default()
                    .entry(&a.name)
                    .or_default()
                    .push(a);
            }
        }
        let required: BTreeMap<String, &TaskGroup> = live_job
            .iter()
            .flat_map(|j| j.task_groups.iter().flatten().map(move |tg| (j, tg)))
            .map(|(j, tg)| (alloc_name(&j.id, &tg.name, 0), tg))
            .collect();
        let eligible: BTreeMap<&str, &Node> = ready
            .iter()
            .flat_map(|r| r.nodes.iter())
            .map(|n| (n.id.as_str(), *n))
            .collect();
        let not_ready = ready.as_ref().map(|r| &r.not_ready);

        let mut node_ids: BTreeSet<&str> = eligible.keys().copied().collect();
        node_ids.extend(live.keys().copied());

        let mut places: Vec<SystemPlace> = Vec::new();
        let mut updates: Vec<(&Allocation, &TaskGroup, &Node)> = Vec::new();
        for node_id in node_ids {
            let here = live.get(node_id);
            for (name, allocs_here) in here.into_iter().flatten() {
                for (i, &a) in allocs_here.iter().enumerate() {
                    let (Some(job), Some(tg)) = (live_job, required.get(*name)) else {
                        ctx.stop_alloc(a, ALLOC_NOT_NEEDED, "", "");
                        continue;
                    };
                    if i > 0 {
                        // Only one allocation per group and node.
                        ctx.stop_alloc(a, ALLOC_NOT_NEEDED, "", "");
                        continue;
                    }
                    if a.desired_transition.migrate == Some(true) {
                        ctx.stop_alloc(a, ALLOC_MIGRATING, "", "");
                        continue;
                    }
                    if let Some(node) = tainted.get(node_id) {
                        match node {
                            Some(n) if n.status == NODE_STATUS_READY => {}
                            _ => {
                                ctx.stop_alloc(a, ALLOC_LOST, ALLOC_CLIENT_STATUS_LOST, "");
                                continue;
                            }
                        }
                    }
                    if not_ready.is_some_and(|nr| nr.contains(node_id)) {
                        continue;
                    }
                    let Some(node) = eligible.get(node_id).copied() else {
                        ctx.stop_alloc(a, ALLOC_NOT_NEEDED, "", "");
                        continue;
                    };
                    if a.job_version != job.version {
                        updates.push((a, tg, node));
                    } else if let Some(stack) = stack.as_mut()
                        && !stack.constraints_hold(&mut ctx, tg, node)
                    {
                        ctx.stop_alloc(a, ALLOC_NODE_TAINTED, "", "");
                    }
                }
            }
            let (Some(job), Some(node)) = (live_job, eligible.get(node_id).copied()) else {
                continue;
            };
            for (name, tg) in &required {
                if here.is_some_and(|h| h.contains_key(name.as_str())) {
                    continue;
                }
                let previous = terminal.get(&(node_id, name.as_str())).copied();
                if self.sysbatch && previous.is_some_and(|p| p.job_version == job.version) {
                    // A sysbatch allocation runs once per job version.
                    continue;
                }
                places.push(SystemPlace {
                    node,
                    tg,
                    name: name.clone(),
                    previous,
                    destructive: false,
                });
            }
        }

        if let (Some(job), Some(stack)) = (live_job, stack.as_mut()) {
            for (a, tg, node) in updates {
                match in_place(&mut ctx, stack, job, a, tg, node) {
                    Some(updated) => ctx.update_alloc(a, updated),
                    None => {
                        ctx.stop_alloc(a, ALLOC_UPDATING, "", "");
                        places.push(SystemPlace {
                            node,
                            tg,
                            name: a.name.clone(),
                            previous: Some(a),
                            destructive: true,
                        });
                    }
                }
            }
            if places.is_empty() {
                for tg in job.task_groups.iter().flatten() {
                    self.queued.insert(tg.name.clone(), 0);
                }
            }
            let by_dc = ready.as_ref().map(|r| r.by_dc.clone()).unwrap_or_default();
            let in_pool = eligible.len() as i64;
            let mut failed: BTreeMap<String, AllocMetric> = BTreeMap::new();
            let mut new_ids = BTreeSet::new();
            for p in &places {
                *self.queued.entry(p.tg.name.clone()).or_insert(0) += 1;
            }
            for p in places {
                let (option, mut metric) =
                    stack.select_on(&mut ctx, p.tg, &[p.node], &SelectOptions::default());
                metric.nodes_available = Some(by_dc.clone());
                metric.node_pool = job.node_pool.clone();
                metric.nodes_in_pool = in_pool;
                let Some(option) = option else {
                    if metric.nodes_filtered > 0 {
                        // The node does not qualify: nothing is owed there.
                        if let Some(q) = self.queued.get_mut(&p.tg.name) {
                            *q -= 1;
                        }
                        continue;
                    }
                    if p.destructive
                        && let Some(prev) = p.previous
                    {
                        ctx.pop_stop(prev);
                    }
                    match failed.get_mut(&p.tg.name) {
                        Some(m) => {
                            m.coalesced_failures += 1;
                            exhaust_resources(m, p.tg);
                        }
                        None => {
                            exhaust_resources(&mut metric, p.tg);
                            failed.insert(p.tg.name.clone(), metric);
                        }
                    }
                    continue;
                };
                let now = ctx.now();
                let resources = stack.resources(p.tg, &option);
                let alloc = Allocation {
                    id: ctx.uuid(),
                    namespace: job.namespace.clone(),
                    eval_id: eval.id.clone(),
                    name: p.name.clone(),
                    job_id: job.id.clone(),
                    job_version: job.version,
                    task_group: p.tg.name.clone(),
                    metrics: Some(metric),
                    node_id: option.node.id.clone(),
                    node_name: option.node.name.clone(),
                    task_resources: Some(old_task_resources(&resources)),
                    shared_resources: Some(Resources {
                        disk_mb: resources.shared.disk_mb,
                        networks: resources.shared.networks.clone(),
                        ..Resources::default()
                    }),
                    allocated_resources: Some(resources),
                    desired_status: ALLOC_DESIRED_STATUS_RUN.to_owned(),
                    client_status: ALLOC_CLIENT_STATUS_PENDING.to_owned(),
                    previous_allocation: p.previous.map(|a| a.id.clone()).unwrap_or_default(),
                    create_time: now,
                    modify_time: now,
                    ..Allocation::default()
                };
                if let Some(prev) = p.previous
                    && let Some(stopped) = ctx.plan.update_mut(&prev.node_id, &prev.id)
                {
                    stopped.next_allocation = alloc.id.clone();
                }
                new_ids.insert(alloc.id.clone());
                ctx.place_alloc(alloc);
            }
            if !failed.is_empty() {
                self.failed = Some(failed);
            }
            return self.submit(planner, ctx, &new_ids);
        }
        self.submit(planner, ctx, &BTreeSet::new())
    }

    fn submit(
        &mut self,
        planner: &mut dyn Planner,
        mut ctx: EvalContext<'_, '_>,
        new_ids: &BTreeSet<String>,
    ) -> Result<bool, SchedulerError> {
        if ctx.plan.is_no_op() && !self.eval.annotate_plan {
            return Ok(true);
        }
        let plan = std::mem::take(&mut ctx.plan);
        drop(ctx);
        let expected: usize = plan.node_allocation.values().map(Vec::len).sum();
        let (result, new_state) = planner.submit_plan(plan)?;
        self.progress = result.progress_made();
        for (tg, n) in result.placed_per_group(new_ids) {
            if let Some(q) = self.queued.get_mut(&tg) {
                *q -= n;
            }
        }
        if let Some(newer) = new_state {
            self.state = newer;
            return Ok(false);
        }
        let committed: usize = result.node_allocation.values().map(Vec::len).sum();
        if committed != expected {
            return Err(SchedulerError::MissingStateRefresh);
        }
        Ok(true)
    }
}

/// The in-place update of a stale system allocation, when only scheduling fields changed
/// and the new version fits on its node.
fn in_place<'s>(
    ctx: &mut EvalContext<'s, '_>,
    stack: &mut Stack<'s>,
    job: &'s Job,
    existing: &'s Allocation,
    tg: &'s TaskGroup,
    node: &'s Node,
) -> Option<Allocation> {
    let old = ctx
        .state
        .job_version(&existing.namespace, &existing.job_id, existing.job_version)?;
    if tasks_updated(old, job, &tg.name)
        || !in_datacenters(node, job.datacenters.as_deref().unwrap_or(&[]))
        || !in_pool(node, job)
    {
        return None;
    }
    ctx.stop_alloc(existing, ALLOC_IN_PLACE, "", "");
    let (option, _) = stack.select_on(ctx, tg, &[node], &SelectOptions::default());
    ctx.pop_stop(existing);
    let option = option?;
    let mut resources = stack.resources(tg, &option);
    let prev = existing.allocated_resources.as_ref();
    for (name, t) in resources.tasks.iter_mut().flatten() {
        t.networks = prev
            .and_then(|o| o.tasks.as_ref())
            .and_then(|ts| ts.get(name))
            .and_then(|o| o.networks.clone());
    }
    resources.shared.networks = prev.and_then(|o| o.shared.networks.clone());
    resources.shared.ports = prev.and_then(|o| o.shared.ports.clone());
    let mut updated = existing.clone();
    updated.eval_id = ctx.plan.eval_id.clone();
    updated.job = None;
    updated.resources = None;
    updated.job_version = job.version;
    updated.task_resources = Some(old_task_resources(&resources));
    updated.allocated_resources = Some(resources);
    updated.modify_time = ctx.now();
    Some(updated)
}
