//! Scheduling on the server: the workers that take evaluations from the broker and run the
//! scheduler (`caravan-scheduler`) on a snapshot, the scheduler's view of a snapshot, and the
//! plan applier. The applier runs as a write on the state's single writer, so each plan is
//! checked against the latest committed state and no other write can slip in between the
//! check and the commit: a node is never oversubscribed (optimistic concurrency, as Nomad's
//! plan applier).

use std::collections::BTreeSet;
use std::sync::Arc;

use caravan_scheduler::{
    Plan, PlanResult, Planner, SchedContext, SchedulerConfig, SchedulerError, State, allocs_fit,
    process_eval,
};
use caravan_state::{Snapshot, Store, Txn};
use caravan_structs::{
    Allocation, Deployment, EVAL_STATUS_CANCELLED, Evaluation, Job, Node, SchedulerConfiguration,
};
use tokio::runtime::Handle;

use crate::broker::Broker;
use crate::error::ServerError;
use crate::jobs::refresh_job_status;
use crate::nodes::unix_nanos;

/// The scheduler's read-only view of one snapshot, with the scheduler configuration it holds
/// (`defaults` until an operator wrote one).
pub struct SnapshotState {
    snap: Arc<Snapshot>,
    defaults: Arc<SchedulerConfiguration>,
}

impl SnapshotState {
    pub fn new(snap: Arc<Snapshot>, defaults: Arc<SchedulerConfiguration>) -> SnapshotState {
        SnapshotState { snap, defaults }
    }
}

impl State for SnapshotState {
    fn index(&self) -> u64 {
        self.snap.index()
    }

    fn job(&self, namespace: &str, id: &str) -> Option<&Job> {
        self.snap.job(namespace, id).map(|r| &r.value)
    }

    fn job_version(&self, namespace: &str, id: &str, version: u64) -> Option<&Job> {
        self.snap.job_version(namespace, id, version)
    }

    fn nodes(&self) -> Vec<&Node> {
        self.snap.nodes().iter().map(|(_, r)| &r.value).collect()
    }

    fn node(&self, id: &str) -> Option<&Node> {
        self.snap.nodes().get(id).map(|r| &r.value)
    }

    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.snap
            .allocs_by_job(namespace, job_id)
            .map(|r| &r.value)
            .collect()
    }

    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.snap
            .allocs_by_node(node_id)
            .map(|r| &r.value)
            .collect()
    }

    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<&Deployment> {
        self.snap
            .latest_deployment(namespace, job_id)
            .map(|r| &r.value)
    }

    fn scheduler_config(&self, node_pool: &str) -> SchedulerConfig {
        crate::operator::scheduler_config_for_pool(&self.snap, &self.defaults, node_pool)
    }
}

/// Why a node of a plan was refused.
fn node_refusal(
    snap: &Snapshot,
    node_id: &str,
    proposed: &[&Allocation],
    places: bool,
) -> Option<String> {
    let Some(node) = snap.nodes().get(node_id) else {
        return places.then(|| "node does not exist".to_owned());
    };
    let node = &node.value;
    if places {
        if node.status != "ready" {
            return Some(format!("node is {}", node.status));
        }
        if node.drain_strategy.is_some() {
            return Some("node is draining".to_owned());
        }
        if node.scheduling_eligibility != "eligible" {
            return Some("node is not eligible".to_owned());
        }
    }
    allocs_fit(node, proposed).err().map(|e| e.to_string())
}

/// Applies a plan inside a write: every node is checked against the state as it is now and
/// committed or refused whole. Returns what was committed.
pub fn apply_plan(txn: &mut Txn<'_>, plan: &Plan, now: i64) -> Result<PlanResult, ServerError> {
    let snap = txn.snapshot().clone();
    let mut result = PlanResult::default();
    let nodes: BTreeSet<&String> = plan
        .node_update
        .keys()
        .chain(plan.node_allocation.keys())
        .collect();
    let mut accepted = Vec::new();
    for node_id in nodes {
        let stops = plan
            .node_update
            .get(node_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let places = plan
            .node_allocation
            .get(node_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let removed: BTreeSet<&str> = stops.iter().chain(places).map(|a| a.id.as_str()).collect();
        let mut proposed: Vec<&Allocation> = snap
            .allocs_by_node(node_id)
            .map(|r| &r.value)
            .filter(|a| !a.terminal_status() && !removed.contains(a.id.as_str()))
            .collect();
        proposed.extend(places.iter().filter(|a| !a.terminal_status()));
        let new_placements = places.iter().any(|a| snap.allocs().get(&a.id).is_none());
        match node_refusal(&snap, node_id, &proposed, new_placements) {
            None => accepted.push((node_id.clone(), stops, places)),
            Some(reason) => {
                tracing::debug!(node = %node_id, %reason, eval = %plan.eval_id, "plan refused on node");
                result.refresh_index = snap.index().max(1);
            }
        }
    }
    if plan.all_at_once && result.refresh_index != 0 {
        return Ok(result);
    }
    let index = txn.index();
    let mut touched_jobs = BTreeSet::new();
    for (node_id, stops, places) in accepted {
        for stop in stops {
            // Read through the transaction: an earlier node of this plan may have linked it.
            let Some(row) = txn.snapshot().allocs().get(&stop.id).cloned() else {
                continue;
            };
            let mut alloc = row.value.clone();
            alloc.desired_status = stop.desired_status.clone();
            alloc.desired_description = stop.desired_description.clone();
            if !stop.client_status.is_empty() && stop.client_status != alloc.client_status {
                alloc.client_status = stop.client_status.clone();
                alloc.alloc_states = stop.alloc_states.clone();
            }
            if !stop.followup_eval_id.is_empty() {
                alloc.followup_eval_id = stop.followup_eval_id.clone();
            }
            alloc.alloc_modify_index = index;
            alloc.modify_time = now;
            touched_jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
            txn.put(alloc.clone())?;
            result
                .node_update
                .entry(node_id.clone())
                .or_default()
                .push(alloc);
        }
        for place in places {
            let mut alloc = place.clone();
            if let Some(row) = txn.snapshot().allocs().get(&place.id).cloned() {
                // What the client reported since the plan was made stays.
                let current = &row.value;
                alloc.client_status = current.client_status.clone();
                alloc.client_description = current.client_description.clone();
                alloc.task_states = current.task_states.clone();
                alloc.network_status = current.network_status.clone();
                alloc.deployment_status = current
                    .deployment_status
                    .clone()
                    .or(alloc.deployment_status);
            } else if alloc.create_time == 0 {
                alloc.create_time = now;
            }
            alloc.alloc_modify_index = index;
            alloc.modify_time = now;
            touched_jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
            // The allocation this one replaces points at it.
            if !alloc.previous_allocation.is_empty()
                && let Some(prev) = txn
                    .snapshot()
                    .allocs()
                    .get(&alloc.previous_allocation)
                    .cloned()
                && prev.value.next_allocation != alloc.id
            {
                let mut prev = prev.value.clone();
                prev.next_allocation = alloc.id.clone();
                prev.modify_time = now;
                txn.put(prev)?;
            }
            txn.put(alloc.clone())?;
            result
                .node_allocation
                .entry(node_id.clone())
                .or_default()
                .push(alloc);
        }
    }
    if let Some(d) = &plan.deployment {
        txn.put(d.clone())?;
        result.deployment = Some(d.clone());
    }
    for update in &plan.deployment_updates {
        if let Some(row) = snap.deployments().get(&update.deployment_id) {
            let mut d = row.value.clone();
            d.status = update.status.clone();
            d.status_description = update.status_description.clone();
            d.modify_time = now;
            txn.put(d)?;
            result.deployment_updates.push(update.clone());
        }
    }
    for (ns, job_id) in touched_jobs {
        refresh_job_status(txn, &ns, &job_id)?;
    }
    result.alloc_index = index;
    Ok(result)
}

/// Writes an evaluation the scheduler produced (final status, blocked, follow-up).
fn put_eval(txn: &mut Txn<'_>, eval: &Evaluation, now: i64) -> Result<(), ServerError> {
    let mut eval = eval.clone();
    if eval.create_time == 0 {
        eval.create_time = now;
    }
    eval.modify_time = now;
    let (ns, job_id) = (eval.namespace.clone(), eval.job_id.clone());
    txn.put(eval)?;
    refresh_job_status(txn, &ns, &job_id)
}

/// The scheduler's side door into the server: plans and evaluation writes go through the
/// store's writer; the worker thread blocks on them (it runs outside the async runtime).
struct ServerPlanner {
    store: Store,
    handle: Handle,
    defaults: Arc<SchedulerConfiguration>,
}

fn sched_err(e: ServerError) -> SchedulerError {
    SchedulerError::Planner(e.to_string())
}

impl ServerPlanner {
    fn write_eval(&self, eval: &Evaluation) -> Result<(), SchedulerError> {
        let eval = eval.clone();
        self.handle
            .block_on(
                self.store
                    .write(move |txn| put_eval(txn, &eval, unix_nanos())),
            )
            .map(|_| ())
            .map_err(sched_err)
    }
}

impl Planner for ServerPlanner {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedulerError> {
        let written = self
            .handle
            .block_on(
                self.store
                    .write(move |txn| apply_plan(txn, &plan, unix_nanos())),
            )
            .map_err(sched_err)?;
        let result = written.value;
        let refreshed: Option<Arc<dyn State>> = if result.refresh_index != 0 {
            Some(Arc::new(SnapshotState::new(
                self.store.snapshot(),
                self.defaults.clone(),
            )))
        } else {
            None
        };
        Ok((result, refreshed))
    }

    fn update_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.write_eval(eval)
    }

    fn create_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.write_eval(eval)
    }

    fn reblock_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.write_eval(eval)
    }
}

/// Marks evaluations the broker collapsed into a newer one as cancelled.
async fn write_cancelled(store: &Store, cancelled: Vec<Evaluation>) {
    if cancelled.is_empty() {
        return;
    }
    let result = store
        .write(move |txn| -> Result<(), ServerError> {
            let now = unix_nanos();
            for eval in cancelled {
                let Some(row) = txn.snapshot().evals().get(&eval.id).cloned() else {
                    continue;
                };
                if row.value.terminal_status() {
                    continue;
                }
                let mut e = row.value.clone();
                e.status = EVAL_STATUS_CANCELLED.to_owned();
                e.status_description = "canceled after more recent eval was processed".to_owned();
                put_eval(txn, &e, now)?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cancelling superseded evaluations failed");
    }
}

/// One scheduler worker: takes evaluations from the broker until the process ends.
pub async fn run_worker(broker: Arc<Broker>, store: Store, defaults: Arc<SchedulerConfiguration>) {
    loop {
        let queued = broker.dequeue().await;
        let snap = store.snapshot();
        // The stored evaluation is the truth; one finished meanwhile needs nothing more.
        let eval = match snap.evals().get(&queued.id) {
            Some(row) if !row.value.terminal_status() => row.value.clone(),
            _ => {
                broker.ack(&queued);
                continue;
            }
        };
        let handle = Handle::current();
        let worker_store = store.clone();
        let eval_for_run = eval.clone();
        let defaults = defaults.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let state: Arc<dyn State> = Arc::new(SnapshotState::new(snap, defaults.clone()));
            let mut planner = ServerPlanner {
                store: worker_store,
                handle,
                defaults,
            };
            // Fresh randomness per run: IDs must never repeat across runs, workers, restarts.
            let mut ctx = SchedContext::new(unix_nanos(), uuid::Uuid::new_v4().as_u64_pair().0);
            process_eval(&eval_for_run, state, &mut planner, &mut ctx)
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(eval = %eval.id, job = %eval.job_id, error = %e, "scheduling failed");
                let mut failed = eval.clone();
                failed.status = "failed".to_owned();
                failed.status_description = format!("scheduling failed: {e}");
                let written = store
                    .write(move |txn| put_eval(txn, &failed, unix_nanos()))
                    .await;
                if let Err(e) = written {
                    tracing::warn!(error = %e, "recording a failed evaluation failed");
                }
            }
            Err(e) => tracing::error!(eval = %eval.id, error = %e, "scheduler worker panicked"),
        }
        broker.ack(&eval);
        write_cancelled(&store, broker.take_cancelled()).await;
    }
}

/// Starts the broker feed, the delayed-evaluation timer and `workers` scheduler workers
/// (none: this server schedules nothing).
pub fn start(store: &Store, workers: usize, defaults: Arc<SchedulerConfiguration>) -> Arc<Broker> {
    let broker = Broker::new();
    tokio::spawn(crate::broker::feed(broker.clone(), store.clone()));
    tokio::spawn(crate::broker::run_delayed(broker.clone()));
    // No workers (Nomad's `num_schedulers = 0`): evaluations queue but nothing schedules them.
    for _ in 0..workers {
        tokio::spawn(run_worker(broker.clone(), store.clone(), defaults.clone()));
    }
    broker
}
