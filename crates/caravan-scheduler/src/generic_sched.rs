//! The service and batch scheduler (Nomad's `GenericScheduler`): reconcile the job with its
//! allocations, stage stops and updates, place what is missing through the stack, submit the
//! plan (re-planning on conflicts), then record the eval's outcome — blocked evals for what
//! could not be placed, follow-up evals for delayed reschedules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use caravan_structs::{
    ALLOC_CLIENT_STATUS_FAILED, ALLOC_CLIENT_STATUS_PENDING, ALLOC_DESIRED_STATUS_RUN, AllocMetric,
    AllocatedResources, AllocatedSharedResources, Allocation, EVAL_STATUS_BLOCKED,
    EVAL_STATUS_COMPLETE, EVAL_STATUS_FAILED, Evaluation, Job, RescheduleTracker, Resources,
    TASK_STATE_PENDING, TaskGroup, TaskState, eval_trigger,
};

use crate::context::EvalContext;
use crate::error::SchedulerError;
use crate::feasible::{in_datacenters, in_pool};
use crate::interfaces::{Planner, SchedContext, State};
use crate::plan::Plan;
use crate::rank::exhaust_resources;
use crate::reconcile::{NameIndex, PlaceRequest, ReconcileHost, Reconciler, UpdateKind};
use crate::reschedule::{LAST_RESCHEDULE_FAILED_TO_PLACE, new_tracker};
use crate::stack::{RankedOption, SelectOptions, Stack, old_task_resources};
use crate::util::{
    ALLOC_IN_PLACE, ALLOC_RESCHEDULED, alloc_index, blocked_eval, final_eval, ready_nodes,
    tainted_nodes, tasks_updated, update_non_terminal_allocs_to_lost,
};

/// Plan attempts before giving up (services, batch).
const MAX_SERVICE_SCHEDULE_ATTEMPTS: usize = 5;
const MAX_BATCH_SCHEDULE_ATTEMPTS: usize = 2;

/// The triggers the generic scheduler handles.
const TRIGGERS: &[&str] = &[
    eval_trigger::JOB_REGISTER,
    eval_trigger::JOB_DEREGISTER,
    eval_trigger::NODE_DRAIN,
    eval_trigger::NODE_UPDATE,
    eval_trigger::ALLOC_STOP,
    eval_trigger::ROLLING_UPDATE,
    eval_trigger::QUEUED_ALLOCS,
    eval_trigger::PERIODIC_JOB,
    eval_trigger::MAX_PLANS,
    eval_trigger::DEPLOYMENT_WATCHER,
    eval_trigger::RETRY_FAILED_ALLOC,
    eval_trigger::FAILED_FOLLOW_UP,
    eval_trigger::PREEMPTION,
    eval_trigger::JOB_SCALING,
    eval_trigger::MAX_DISCONNECT_TIMEOUT,
    eval_trigger::RECONNECT,
];

/// What survives between plan attempts.
struct GenericScheduler<'e> {
    eval: &'e Evaluation,
    batch: bool,
    state: Arc<dyn State>,
    blocked: Option<Evaluation>,
    failed: Option<BTreeMap<String, AllocMetric>>,
    queued: BTreeMap<String, i64>,
    deployment_id: String,
    classes: BTreeMap<String, bool>,
    escaped: bool,
    progress: bool,
}

/// Processes a service (`batch = false`) or batch evaluation.
pub fn process(
    eval: &Evaluation,
    state: Arc<dyn State>,
    planner: &mut dyn Planner,
    sched: &mut SchedContext,
    batch: bool,
) -> Result<(), SchedulerError> {
    let now = sched.now;
    if !TRIGGERS.contains(&eval.triggered_by.as_str()) {
        let desc = format!(
            "scheduler cannot handle '{}' evaluation reason",
            eval.triggered_by
        );
        let e = final_eval(
            eval,
            EVAL_STATUS_FAILED,
            &desc,
            now,
            None,
            None,
            None,
            None,
            "",
        );
        return planner.update_eval(&e);
    }
    let mut s = GenericScheduler {
        eval,
        batch,
        state,
        blocked: None,
        failed: None,
        queued: BTreeMap::new(),
        deployment_id: String::new(),
        classes: BTreeMap::new(),
        escaped: false,
        progress: false,
    };
    let limit = if batch {
        MAX_BATCH_SCHEDULE_ATTEMPTS
    } else {
        MAX_SERVICE_SCHEDULE_ATTEMPTS
    };
    let mut attempts = 0;
    loop {
        if attempts >= limit {
            // No forward progress: retry once resources or state change.
            let blocked = s.new_blocked_eval(sched, true);
            planner.create_eval(&blocked)?;
            let desc = format!("maximum attempts reached ({limit})");
            let e = final_eval(
                eval,
                EVAL_STATUS_FAILED,
                &desc,
                sched.now,
                None,
                Some(&blocked.id),
                s.failed.clone(),
                Some(s.queued.clone()),
                &s.deployment_id,
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

    if eval.status == EVAL_STATUS_BLOCKED && s.failed.is_some() {
        let mut e = eval.clone();
        e.escaped_computed_class = s.escaped;
        e.class_eligibility = Some(s.classes.clone());
        e.modify_time = sched.now;
        return planner.reblock_eval(&e);
    }
    let e = final_eval(
        eval,
        EVAL_STATUS_COMPLETE,
        "",
        sched.now,
        None,
        s.blocked.as_ref().map(|b| b.id.as_str()),
        s.failed.clone(),
        Some(s.queued.clone()),
        &s.deployment_id,
    );
    planner.update_eval(&e)
}

impl GenericScheduler<'_> {
    fn new_blocked_eval(&mut self, sched: &mut SchedContext, plan_failure: bool) -> Evaluation {
        let classes = (!self.escaped).then(|| self.classes.clone());
        blocked_eval(
            self.eval,
            sched.uuid(),
            sched.now,
            classes,
            self.escaped,
            self.failed.clone(),
            plan_failure,
        )
    }

    /// One plan attempt; `Ok(true)` when done.
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
        let deployment = if self.batch {
            None
        } else {
            st.latest_deployment(ns, job_id).cloned()
        };

        let plan = Plan::for_eval(eval, job, st.index());
        let mut ctx = EvalContext::new(st, sched, plan, ns, job_id);
        let mut stack = live_job.map(|j| Stack::new(&mut ctx, j, self.batch, false));

        let allocs = st.allocs_by_job(ns, job_id);
        let tainted = tainted_nodes(st, &allocs);
        update_non_terminal_allocs_to_lost(&mut ctx, &tainted, &allocs);

        let now = ctx.now();
        let results = {
            let mut host = Host {
                ctx: &mut ctx,
                stack: stack.as_mut(),
                job: live_job,
            };
            Reconciler::new(
                st,
                &mut host,
                job,
                ns,
                job_id,
                self.batch,
                deployment,
                &tainted,
                &eval.id,
                eval.priority,
                now,
            )
            .compute(allocs)
        };

        let mut deployment = results.deployment.clone();
        if results.deployment_created {
            ctx.plan.deployment = deployment.clone();
        }
        ctx.plan.deployment_updates = results.deployment_updates.clone();
        self.deployment_id = deployment
            .as_ref()
            .map(|d| d.id.clone())
            .unwrap_or_default();
        for s in &results.stop {
            ctx.stop_alloc(s.alloc, s.desc, s.client_status, "");
        }
        for (existing, mut u) in results.inplace {
            if u.deployment_id != self.deployment_id {
                u.deployment_id = self.deployment_id.clone();
                u.deployment_status = None;
            }
            ctx.update_alloc(existing, u);
        }
        for (existing, u) in results.attribute_updates {
            ctx.update_alloc(existing, u);
        }

        let mut new_ids = BTreeSet::new();
        if results.place.is_empty() && results.destructive.is_empty() {
            for tg in live_job.iter().flat_map(|j| j.task_groups.iter().flatten()) {
                self.queued.insert(tg.name.clone(), 0);
            }
        } else if let (Some(job), Some(stack)) = (live_job, stack.as_mut()) {
            for p in results.destructive.iter().chain(&results.place) {
                *self.queued.entry(p.tg.name.clone()).or_insert(0) += 1;
            }
            let mut names = results.name_indexes;
            let mut placer = Placer {
                eval,
                job,
                deployment: deployment.as_mut(),
                placed_in_deployment: BTreeMap::new(),
                names: &mut names,
                failed: BTreeMap::new(),
                new_ids: &mut new_ids,
            };
            placer.place_all(&mut ctx, stack, &results.destructive, &results.place);
            let placed = std::mem::take(&mut placer.placed_in_deployment);
            if !placer.failed.is_empty() {
                self.failed = Some(std::mem::take(&mut placer.failed));
            }
            if let Some(d) = deployment.as_mut().filter(|_| !placed.is_empty()) {
                for (tg, n) in placed {
                    if let Some(ds) = d.task_groups.as_mut().and_then(|g| g.get_mut(&tg)) {
                        ds.placed_allocs += n;
                    }
                }
                ctx.plan.deployment = Some(d.clone());
            }
        }

        self.classes = ctx.eligibility.classes();
        self.escaped = ctx.eligibility.has_escaped();

        let delay_instead = !results.followup_evals.is_empty() && eval.wait_until.is_zero();
        if eval.status != EVAL_STATUS_BLOCKED
            && self.failed.is_some()
            && self.blocked.is_none()
            && !delay_instead
        {
            let blocked = self.new_blocked_eval(ctx.sched, false);
            planner.create_eval(&blocked)?;
            self.blocked = Some(blocked);
        }

        if ctx.plan.is_no_op() && !eval.annotate_plan {
            return Ok(true);
        }
        // Nomad creates follow-ups only when this eval is not itself a delayed one, yet
        // marks the waiting allocations either way; creating them always means no
        // allocation ever waits on an eval that does not exist.
        if !results.followup_evals.is_empty() {
            for mut e in results.followup_evals {
                e.previous_eval = eval.id.clone();
                planner.create_eval(&e)?;
            }
        }

        let plan = std::mem::take(&mut ctx.plan);
        drop(ctx);
        let expected: usize = plan.node_allocation.values().map(Vec::len).sum();
        let (result, new_state) = planner.submit_plan(plan)?;
        self.progress = result.progress_made();
        for (tg, n) in result.placed_per_group(&new_ids) {
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

/// In-place update checks for the reconciler.
struct Host<'a, 's, 'c> {
    ctx: &'a mut EvalContext<'s, 'c>,
    stack: Option<&'a mut Stack<'s>>,
    job: Option<&'s Job>,
}

impl<'s> ReconcileHost<'s> for Host<'_, 's, '_> {
    fn uuid(&mut self) -> String {
        self.ctx.uuid()
    }

    fn update(&mut self, existing: &'s Allocation, tg: &'s TaskGroup) -> UpdateKind {
        let (Some(job), Some(stack)) = (self.job, self.stack.as_deref_mut()) else {
            return UpdateKind::Ignore;
        };
        let state = self.ctx.state;
        match state.job_version(&existing.namespace, &existing.job_id, existing.job_version) {
            Some(old) if !tasks_updated(old, job, &tg.name) => {}
            _ => return UpdateKind::Destructive,
        }
        if existing.terminal_status() {
            return UpdateKind::Ignore;
        }
        let Some(node) = state.node(&existing.node_id) else {
            return UpdateKind::Destructive;
        };
        if !in_datacenters(node, job.datacenters.as_deref().unwrap_or(&[])) || !in_pool(node, job) {
            return UpdateKind::Destructive;
        }
        // Discount the allocation itself while checking that the new version fits.
        self.ctx.stop_alloc(existing, ALLOC_IN_PLACE, "", "");
        let (option, _) = stack.select_on(self.ctx, tg, &[node], &SelectOptions::default());
        self.ctx.pop_stop(existing);
        let Some(option) = option else {
            return UpdateKind::Destructive;
        };
        let mut resources = stack.resources(tg, &option);
        let old = existing.allocated_resources.as_ref();
        // Ports are never changed by an in-place update.
        for (name, t) in resources.tasks.iter_mut().flatten() {
            t.networks = old
                .and_then(|o| o.tasks.as_ref())
                .and_then(|ts| ts.get(name))
                .and_then(|o| o.networks.clone());
        }
        resources.shared = AllocatedSharedResources {
            disk_mb: tg.ephemeral_disk.as_ref().map_or(0, |d| d.size_mb),
            networks: old.and_then(|o| o.shared.networks.clone()),
            ports: old.and_then(|o| o.shared.ports.clone()),
        };
        let mut updated = existing.clone();
        updated.eval_id = self.ctx.plan.eval_id.clone();
        updated.job = None;
        updated.resources = None;
        updated.job_version = job.version;
        updated.task_resources = Some(old_task_resources(&resources));
        updated.allocated_resources = Some(resources);
        updated.modify_time = self.ctx.now();
        UpdateKind::InPlace(Box::new(updated))
    }
}

/// Places the reconciler's placements one by one.
struct Placer<'a, 'e, 's> {
    eval: &'e Evaluation,
    job: &'s Job,
    deployment: Option<&'a mut caravan_structs::Deployment>,
    placed_in_deployment: BTreeMap<String, i64>,
    names: &'a mut HashMap<String, NameIndex>,
    failed: BTreeMap<String, AllocMetric>,
    new_ids: &'a mut BTreeSet<String>,
}

impl<'s> Placer<'_, '_, 's> {
    fn place_all(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        stack: &mut Stack<'s>,
        destructive: &[PlaceRequest<'s>],
        place: &[PlaceRequest<'s>],
    ) {
        let st = ctx.state;
        let ready = ready_nodes(st, self.job);
        let nodes_in_pool = ready.nodes.len() as i64;
        stack.set_nodes(ctx, ready.nodes);
        let deployment_id = self
            .deployment
            .as_ref()
            .filter(|d| d.active())
            .map(|d| d.id.clone())
            .unwrap_or_default();

        // Destructive updates first: they free the resources of what they replace.
        for missing in destructive.iter().chain(place) {
            let tg = missing.tg;
            if let Some(metric) = self.failed.get_mut(&tg.name) {
                metric.coalesced_failures += 1;
                exhaust_resources(metric, tg);
                if missing.reschedule
                    && let Some(prev) = missing.previous
                {
                    mark_failed_to_reschedule(ctx, prev);
                }
                continue;
            }
            let preferred = missing.previous.and_then(|prev| {
                let disk = tg.ephemeral_disk.as_ref()?;
                if !(disk.sticky || disk.migrate) {
                    return None;
                }
                st.node(&prev.node_id).filter(|n| n.ready())
            });
            if let (Some(desc), Some(prev)) = (missing.stop_previous, missing.previous) {
                ctx.stop_alloc(prev, desc, "", "");
            }
            let mut opts = SelectOptions {
                preferred,
                ..SelectOptions::default()
            };
            if let Some(prev) = missing.previous {
                if prev.client_status == ALLOC_CLIENT_STATUS_FAILED {
                    opts.penalty_nodes.insert(prev.node_id.clone());
                }
                for e in prev
                    .reschedule_tracker
                    .iter()
                    .flat_map(|t| t.events.iter().flatten())
                {
                    opts.penalty_nodes.insert(e.prev_node_id.clone());
                }
            }
            let (option, mut metric) = stack.select(ctx, tg, &opts);
            metric.nodes_available = Some(ready.by_dc.clone());
            metric.node_pool = self.job.node_pool.clone();
            metric.nodes_in_pool = nodes_in_pool;
            match option {
                Some(option) => {
                    let alloc = self.new_alloc(ctx, stack, missing, option, metric, &deployment_id);
                    if let Some(prev) = missing.previous {
                        if missing.reschedule {
                            ctx.stop_alloc(prev, ALLOC_RESCHEDULED, "", "");
                        }
                        if let Some(stopped) = ctx.plan.update_mut(&prev.node_id, &prev.id) {
                            stopped.next_allocation = alloc.id.clone();
                        }
                    }
                    if !deployment_id.is_empty() {
                        *self
                            .placed_in_deployment
                            .entry(tg.name.clone())
                            .or_insert(0) += 1;
                    }
                    self.new_ids.insert(alloc.id.clone());
                    ctx.place_alloc(alloc);
                }
                None => {
                    exhaust_resources(&mut metric, tg);
                    self.failed.insert(tg.name.clone(), metric);
                    if let (Some(_), Some(prev)) = (missing.stop_previous, missing.previous) {
                        ctx.pop_stop(prev);
                    }
                    if missing.reschedule
                        && let Some(prev) = missing.previous
                    {
                        mark_failed_to_reschedule(ctx, prev);
                    }
                }
            }
        }
    }

    fn new_alloc(
        &mut self,
        ctx: &mut EvalContext<'s, '_>,
        stack: &Stack<'s>,
        missing: &PlaceRequest<'s>,
        option: RankedOption<'s>,
        metric: AllocMetric,
        deployment_id: &str,
    ) -> Allocation {
        let tg = missing.tg;
        let job = self.job;
        let mut name = missing.name.clone();
        if let Some(names) = self.names.get_mut(&tg.name) {
            let idx = alloc_index(&name);
            if names.is_duplicate(idx) {
                if let Some(n) = names.next(1).into_iter().next() {
                    name = n;
                }
                names.unset(idx);
            }
        }
        let now = ctx.now();
        let resources: AllocatedResources = stack.resources(tg, &option);
        let mut alloc = Allocation {
            id: ctx.uuid(),
            namespace: job.namespace.clone(),
            eval_id: self.eval.id.clone(),
            name,
            job_id: job.id.clone(),
            job_version: job.version,
            task_group: tg.name.clone(),
            metrics: Some(metric),
            node_id: option.node.id.clone(),
            node_name: option.node.name.clone(),
            deployment_id: deployment_id.to_owned(),
            task_resources: Some(old_task_resources(&resources)),
            shared_resources: Some(Resources {
                disk_mb: resources.shared.disk_mb,
                networks: resources.shared.networks.clone(),
                ..Resources::default()
            }),
            allocated_resources: Some(resources),
            desired_status: ALLOC_DESIRED_STATUS_RUN.to_owned(),
            client_status: ALLOC_CLIENT_STATUS_PENDING.to_owned(),
            create_time: now,
            modify_time: now,
            ..Allocation::default()
        };
        if let Some(prev) = missing.previous {
            alloc.previous_allocation = prev.id.clone();
            if missing.reschedule {
                let policy = ctx
                    .state
                    .job_version(&prev.namespace, &prev.job_id, prev.job_version)
                    .unwrap_or(job)
                    .lookup_task_group(&prev.task_group)
                    .and_then(|g| g.reschedule_policy.as_ref());
                alloc.reschedule_tracker = Some(new_tracker(prev, policy, now));
            }
            propagate_task_handles(&mut alloc, prev, missing.lost);
        }
        alloc
    }
}

/// A replacement for a lost or migrating allocation inherits its tasks' driver handles, so
/// remote drivers can re-attach.
fn propagate_task_handles(alloc: &mut Allocation, prev: &Allocation, prev_lost: bool) {
    if prev.client_terminal_status() {
        return;
    }
    if !prev_lost && prev.desired_transition.migrate != Some(true) {
        return;
    }
    let tasks = alloc
        .allocated_resources
        .as_ref()
        .and_then(|r| r.tasks.as_ref());
    let mut states = BTreeMap::new();
    for (name, s) in prev.task_states.iter().flatten() {
        let Some(handle) = &s.task_handle else {
            continue;
        };
        if !tasks.is_some_and(|t| t.contains_key(name)) {
            continue;
        }
        states.insert(
            name.clone(),
            TaskState {
                state: TASK_STATE_PENDING.to_owned(),
                task_handle: Some(handle.clone()),
                ..TaskState::default()
            },
        );
    }
    if !states.is_empty() {
        alloc.task_states = Some(states);
    }
}

/// A failed allocation that found no node stays as it is, noting the failed attempt.
fn mark_failed_to_reschedule<'s>(ctx: &mut EvalContext<'s, '_>, prev: &'s Allocation) {
    let mut updated = prev.clone();
    updated
        .reschedule_tracker
        .get_or_insert_with(RescheduleTracker::default)
        .last_reschedule = LAST_RESCHEDULE_FAILED_TO_PLACE.to_owned();
    ctx.update_alloc(prev, updated);
}
