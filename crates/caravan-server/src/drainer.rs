//! The node drainer: moves allocations off draining nodes. Per task group, at most the group's
//! `migrate.max_parallel` allocations are migrating at a time (marked `Migrate`, not yet
//! stopped by their client or not yet replaced by a running allocation); at the drain's
//! deadline every remaining allocation is marked at once. System and sysbatch allocations go
//! last, once everything else has left, unless the drain ignores system jobs. When nothing is
//! left the drain is complete: the strategy is cleared, `LastDrain` says `complete`, and the
//! node stays ineligible.
//!
//! It wakes on changes to nodes and allocations, and every second for deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use caravan_state::{Snapshot, Store, TableId, Txn};
use caravan_structs::{Allocation, Evaluation, Job, Node, NodeEvent, eval_trigger};

use crate::error::ServerError;
use crate::jobs::refresh_job_status;
use crate::nodes::{now, unix_nanos};

pub const EVENT_DRAIN_COMPLETE: &str = "Node drain complete";

fn is_system(job: Option<&Job>) -> bool {
    job.is_some_and(|j| j.r#type == "system" || j.r#type == "sysbatch")
}

fn job_of<'a>(snap: &'a Snapshot, alloc: &Allocation) -> Option<&'a Job> {
    snap.job_version(&alloc.namespace, &alloc.job_id, alloc.job_version)
        .or_else(|| snap.job(&alloc.namespace, &alloc.job_id).map(|r| &r.value))
}

/// Still holds its place on the node.
fn live(alloc: &Allocation) -> bool {
    !alloc.terminal_status()
}

fn marked(alloc: &Allocation) -> bool {
    alloc.desired_transition.migrate == Some(true)
}

/// A migration still under way: the allocation was marked but its client has not stopped
/// it, or its replacement does not run yet.
fn migrating(snap: &Snapshot, alloc: &Allocation) -> bool {
    if !marked(alloc) {
        return false;
    }
    if !alloc.client_terminal_status() {
        return true;
    }
    match snap.allocs().get(&alloc.next_allocation) {
        Some(next) => next.value.client_status == "pending",
        None => false,
    }
}

/// One pass over every draining node; returns whether it wrote anything.
fn drain_pass(txn: &mut Txn<'_>) -> Result<bool, ServerError> {
    let snap = txn.snapshot().clone();
    let now_ns = unix_nanos();
    let draining: Vec<&Node> = snap
        .nodes()
        .iter()
        .map(|(_, r)| &r.value)
        .filter(|n| n.drain_strategy.is_some())
        .collect();
    if draining.is_empty() {
        return Ok(false);
    }
    let draining_ids: BTreeSet<&str> = draining.iter().map(|n| n.id.as_str()).collect();
    let mut to_mark: Vec<Allocation> = Vec::new();
    let mut completed: Vec<Node> = Vec::new();
    // Migrations in flight per (namespace, job, group), over every draining node.
    let mut in_flight: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for node in &draining {
        for row in snap.allocs_by_node(&node.id) {
            let a = &row.value;
            if migrating(&snap, a) {
                *in_flight
                    .entry((a.namespace.clone(), a.job_id.clone(), a.task_group.clone()))
                    .or_default() += 1;
            }
        }
    }
    for node in &draining {
        let Some(strategy) = &node.drain_strategy else {
            continue;
        };
        let forced = strategy.is_forced()
            || (!strategy.force_deadline.is_zero()
                && strategy.force_deadline.unix_nanos() <= now_ns);
        // Done only once the clients report everything stopped (what the scheduler stopped
        // still runs until then), as Nomad's drainer.
        let allocs: Vec<&Allocation> = snap
            .allocs_by_node(&node.id)
            .map(|r| &r.value)
            .filter(|a| !a.client_terminal_status())
            .collect();
        let (system, others): (Vec<&Allocation>, Vec<&Allocation>) = allocs
            .into_iter()
            .partition(|a| is_system(job_of(&snap, a)));
        let others_left = !others.is_empty();
        for a in &others {
            if marked(a) || !live(a) {
                continue;
            }
            if forced {
                to_mark.push((*a).clone());
                continue;
            }
            let group_key = (a.namespace.clone(), a.job_id.clone(), a.task_group.clone());
            let max_parallel = job_of(&snap, a)
                .and_then(|j| j.lookup_task_group(&a.task_group))
                .and_then(|tg| tg.migrate.as_ref())
                .map(|m| m.max_parallel)
                .filter(|m| *m > 0)
                .unwrap_or(1);
            let count = in_flight.entry(group_key).or_default();
            if *count < max_parallel {
                *count += 1;
                to_mark.push((*a).clone());
            }
        }
        let system_left = !strategy.ignore_system_jobs && !system.is_empty();
        if !others_left && system_left {
            for a in &system {
                if !marked(a) && live(a) {
                    to_mark.push((*a).clone());
                }
            }
        }
        if !others_left && !system_left {
            completed.push((*node).clone());
        }
    }
    let wrote = !to_mark.is_empty() || !completed.is_empty();
    let mut jobs: BTreeSet<(String, String)> = BTreeSet::new();
    for mut alloc in to_mark {
        alloc.desired_transition.migrate = Some(true);
        alloc.modify_time = now_ns;
        jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
        txn.put(alloc)?;
    }
    for (ns, job_id) in &jobs {
        let Some(job) = snap.job(ns, job_id) else {
            continue;
        };
        let eval = Evaluation {
            id: uuid::Uuid::new_v4().to_string(),
            namespace: ns.clone(),
            priority: job.value.priority,
            r#type: job.value.r#type.clone(),
            triggered_by: eval_trigger::NODE_DRAIN.to_owned(),
            job_id: job_id.clone(),
            job_modify_index: job.value.job_modify_index,
            status: "pending".to_owned(),
            create_time: now_ns,
            modify_time: now_ns,
            ..Evaluation::default()
        };
        txn.put(eval)?;
        refresh_job_status(txn, ns, job_id)?;
    }
    let index = txn.index();
    for mut node in completed {
        if !draining_ids.contains(node.id.as_str()) {
            continue;
        }
        let t = now();
        node.drain_strategy = None;
        if let Some(last) = node.last_drain.as_mut() {
            last.status = "complete".to_owned();
            last.updated_at = t;
        }
        node.add_event(NodeEvent {
            create_index: index,
            details: None,
            message: EVENT_DRAIN_COMPLETE.to_owned(),
            subsystem: "Drain".to_owned(),
            timestamp: t,
        });
        txn.put(node)?;
    }
    Ok(wrote)
}

/// Runs the drainer until the store closes.
pub async fn run(store: Store) {
    let mut changes = store.changes();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether some node drains, re-read only when nodes change (or on the tick), so the
    // stream of allocation writes of a large cluster costs nothing while no node drains.
    let mut draining = any_draining(&store);
    loop {
        let relevant = tokio::select! {
            batch = changes.recv() => match batch {
                Ok(batch) => {
                    let nodes_changed = batch.keys.iter().any(|(t, _)| *t == TableId::Nodes);
                    if nodes_changed {
                        draining = any_draining(&store);
                    }
                    draining
                        && (nodes_changed
                            || batch.keys.iter().any(|(t, _)| *t == TableId::Allocs))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    draining = any_draining(&store);
                    draining
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                draining = any_draining(&store);
                draining
            }
        };
        if !relevant {
            continue;
        }
        if let Err(e) = store.write(drain_pass).await {
            tracing::warn!(error = %e, "node drain pass failed");
        }
    }
}

fn any_draining(store: &Store) -> bool {
    store
        .snapshot()
        .nodes()
        .iter()
        .any(|(_, n)| n.value.drain_strategy.is_some())
}
