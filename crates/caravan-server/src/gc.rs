//! The server's garbage collector (Nomad's core scheduler GC): terminal evaluations with their
//! allocations, dead jobs, finished deployments and down nodes are removed once they are older
//! than their threshold, so a cluster that runs for months does not grow without bound.
//!
//! Each kind runs on its own interval; `PUT /v1/system/gc` runs all of them at once with the
//! thresholds ignored (Nomad's `forceGC`), and answers when they are done.
//!
//! The rules are Nomad's (`nomad/core_sched.go`):
//! - **evaluations**: terminal and unmodified for `eval_gc_threshold` (`batch_eval_gc_threshold`
//!   for batch jobs), and every allocation of theirs collectable; their collectable allocations
//!   go with them. A batch job still alive keeps its current allocations (collecting them would
//!   make the scheduler run them again); only terminal allocations of older job versions go.
//! - **allocations** are collectable when terminal, not running on the client, old enough, and
//!   not a failed allocation still waiting for a reschedule its policy allows.
//! - **jobs**: stopped, or dead batch/sysbatch jobs (periodic and parameterized parents only when
//!   stopped), submitted longer ago than `job_gc_threshold`, all of whose evaluations are
//!   collectable. The job goes with its versions, submissions, scaling events and launch record.
//! - **deployments**: not active, unmodified for `deployment_gc_threshold`, and no allocation
//!   of theirs still running.
//! - **nodes**: down for `node_gc_threshold`, with no allocation that is not terminal.
//!
//! Finding what to collect reads a snapshot without holding the writer; each removal then
//! happens in a write transaction that removes an object only if it has not changed since
//! (same modify index), in batches so one transaction stays small.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use caravan_state::{Store, Txn, job_key};
use caravan_structs::{
    ALLOC_CLIENT_STATUS_FAILED, ALLOC_CLIENT_STATUS_RUNNING, ALLOC_DESIRED_STATUS_STOP, Allocation,
    Deployment, Evaluation, JOB_STATUS_DEAD, JOB_STATUS_PENDING, JOB_TYPE_BATCH, JOB_TYPE_SYSBATCH,
    Job, Node,
};

use crate::error::ServerError;
use crate::jobs::{derive_job_status, purge_job};

/// How old each kind of object must be before it is collected, and how often each collector
/// runs (Nomad's `*_gc_threshold` and `*_gc_interval` server settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcConfig {
    pub eval_threshold: Duration,
    pub batch_eval_threshold: Duration,
    pub job_threshold: Duration,
    pub deployment_threshold: Duration,
    pub node_threshold: Duration,
    pub eval_interval: Duration,
    pub job_interval: Duration,
    pub deployment_interval: Duration,
    pub node_interval: Duration,
}

impl Default for GcConfig {
    /// Nomad's defaults.
    fn default() -> Self {
        const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
        const HOUR: Duration = Duration::from_secs(60 * 60);
        GcConfig {
            eval_threshold: HOUR,
            batch_eval_threshold: 24 * HOUR,
            job_threshold: 4 * HOUR,
            deployment_threshold: HOUR,
            node_threshold: 24 * HOUR,
            eval_interval: FIVE_MINUTES,
            job_interval: FIVE_MINUTES,
            deployment_interval: FIVE_MINUTES,
            node_interval: FIVE_MINUTES,
        }
    }
}

/// One collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcKind {
    Jobs,
    Evals,
    Deployments,
    Nodes,
}

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub jobs: usize,
    pub evals: usize,
    pub allocs: usize,
    pub deployments: usize,
    pub nodes: usize,
}

impl GcReport {
    fn add(&mut self, other: &GcReport) {
        self.jobs += other.jobs;
        self.evals += other.evals;
        self.allocs += other.allocs;
        self.deployments += other.deployments;
        self.nodes += other.nodes;
    }
}

/// Objects removed per write transaction.
const BATCH: usize = 2_000;

/// An object found collectable, with the modify index it had then.
#[derive(Debug, Clone)]
struct Found {
    key: String,
    modify_index: u64,
}

/// What one collector found on a snapshot.
#[derive(Debug, Default)]
struct Plan {
    /// Jobs with the evaluations and allocations that go with them.
    jobs: Vec<(Found, Vec<Found>, Vec<Found>)>,
    evals: Vec<Found>,
    allocs: Vec<Found>,
    deployments: Vec<Found>,
    nodes: Vec<Found>,
}

fn found_eval(e: &Evaluation) -> Found {
    Found {
        key: e.id.clone(),
        modify_index: e.modify_index,
    }
}

fn found_alloc(a: &Allocation) -> Found {
    Found {
        key: a.id.clone(),
        modify_index: a.modify_index,
    }
}

/// Unix nanoseconds `threshold` before `now`.
fn cutoff(now_nanos: i64, threshold: Duration) -> i64 {
    now_nanos.saturating_sub(i64::try_from(threshold.as_nanos()).unwrap_or(i64::MAX))
}

/// Runs the periodic collectors until the process ends.
pub fn start(store: &Store, config: &GcConfig) {
    for (kind, interval) in [
        (GcKind::Jobs, config.job_interval),
        (GcKind::Evals, config.eval_interval),
        (GcKind::Deployments, config.deployment_interval),
        (GcKind::Nodes, config.node_interval),
    ] {
        let store = store.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match collect(&store, kind, &config, now_nanos()).await {
                    Ok(report) if report != GcReport::default() => {
                        tracing::debug!(?kind, ?report, "garbage collected");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(?kind, error = %e, "garbage collection failed"),
                }
            }
        });
    }
}

/// Everything collectable now, thresholds ignored (`PUT /v1/system/gc`). Nodes go last, once
/// the allocations on them are gone.
pub async fn force(store: &Store) -> Result<GcReport, ServerError> {
    // Nomad's forced run uses one millisecond for every threshold.
    let ms = Duration::from_millis(1);
    let config = GcConfig {
        eval_threshold: ms,
        batch_eval_threshold: ms,
        job_threshold: ms,
        deployment_threshold: ms,
        node_threshold: ms,
        ..GcConfig::default()
    };
    let now = now_nanos();
    let mut report = GcReport::default();
    for kind in [
        GcKind::Jobs,
        GcKind::Evals,
        GcKind::Deployments,
        GcKind::Nodes,
    ] {
        report.add(&collect(store, kind, &config, now).await?);
    }
    Ok(report)
}

/// Runs one collector as of `now_nanos`.
pub async fn collect(
    store: &Store,
    kind: GcKind,
    config: &GcConfig,
    now_nanos: i64,
) -> Result<GcReport, ServerError> {
    let snap = store.snapshot();
    let plan = match kind {
        GcKind::Jobs => plan_jobs(&snap, config, now_nanos),
        GcKind::Evals => plan_evals(&snap, config, now_nanos),
        GcKind::Deployments => plan_deployments(&snap, config, now_nanos),
        GcKind::Nodes => plan_nodes(&snap, config, now_nanos),
    };
    drop(snap);
    apply(store, plan).await
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Whether a job may be collected at all, whatever its age (Nomad's `jobIsGCable`).
fn job_collectable(job: &Job) -> bool {
    let periodic = job.periodic.as_ref().is_some_and(|p| p.enabled);
    if periodic || job.is_parameterized() {
        return job.stop;
    }
    if job.status != JOB_STATUS_DEAD {
        return false;
    }
    job.stop || job.r#type == JOB_TYPE_BATCH || job.r#type == JOB_TYPE_SYSBATCH
}

fn plan_jobs(snap: &caravan_state::Snapshot, config: &GcConfig, now: i64) -> Plan {
    let cutoff = cutoff(now, config.job_threshold);
    let mut plan = Plan::default();
    'jobs: for (_, row) in snap.jobs().iter() {
        let job = &row.value;
        if !job_collectable(job) || job.submit_time > cutoff {
            continue;
        }
        let mut evals = Vec::new();
        let mut allocs = Vec::new();
        for eval in snap.evals_by_job(&job.namespace, &job.id) {
            match eval_verdict(snap, &eval.value, Some(job), cutoff, true, now) {
                Some(collectable) => {
                    evals.push(found_eval(&eval.value));
                    allocs.extend(collectable);
                }
                None => continue 'jobs,
            }
        }
        // Allocations without an evaluation (theirs was collected earlier) go too, once
        // collectable.
        let listed: HashSet<&str> = allocs.iter().map(|f| f.key.as_str()).collect();
        let mut orphans = Vec::new();
        for alloc in snap.allocs_by_job(&job.namespace, &job.id) {
            if listed.contains(alloc.value.id.as_str()) {
                continue;
            }
            if !alloc_collectable(&alloc.value, Some(job), now, cutoff) {
                continue 'jobs;
            }
            orphans.push(found_alloc(&alloc.value));
        }
        allocs.extend(orphans);
        plan.jobs.push((
            Found {
                key: job_key(&job.namespace, &job.id),
                modify_index: job.modify_index,
            },
            evals,
            allocs,
        ));
    }
    plan
}

fn plan_evals(snap: &caravan_state::Snapshot, config: &GcConfig, now: i64) -> Plan {
    let cutoff_service = cutoff(now, config.eval_threshold);
    let cutoff_batch = cutoff(now, config.batch_eval_threshold);
    let mut plan = Plan::default();
    for (_, row) in snap.evals().iter() {
        let eval = &row.value;
        let cutoff = if eval.r#type == JOB_TYPE_BATCH {
            cutoff_batch
        } else {
            cutoff_service
        };
        let job = snap.job(&eval.namespace, &eval.job_id).map(|r| &r.value);
        let (collect_eval, allocs) = eval_gc(snap, eval, job, cutoff, false, now);
        if collect_eval {
            plan.evals.push(found_eval(eval));
        }
        plan.allocs.extend(allocs);
    }
    plan
}

/// `Some(allocations)` when the evaluation may go, with the allocations that go with it.
fn eval_verdict(
    snap: &caravan_state::Snapshot,
    eval: &Evaluation,
    job: Option<&Job>,
    cutoff: i64,
    allow_batch: bool,
    now: i64,
) -> Option<Vec<Found>> {
    let (collect, allocs) = eval_gc(snap, eval, job, cutoff, allow_batch, now);
    collect.then_some(allocs)
}

/// Whether the evaluation may be collected, and which of its allocations may (Nomad's
/// `gcEval`): allocations may go even when their evaluation stays.
fn eval_gc(
    snap: &caravan_state::Snapshot,
    eval: &Evaluation,
    job: Option<&Job>,
    cutoff: i64,
    allow_batch: bool,
    now: i64,
) -> (bool, Vec<Found>) {
    if !eval.terminal_status() || eval.modify_time > cutoff {
        return (false, Vec::new());
    }
    let allocs: Vec<&Allocation> = snap
        .allocs_by_job(&eval.namespace, &eval.job_id)
        .map(|r| &r.value)
        .filter(|a| a.eval_id == eval.id)
        .collect();
    if eval.r#type == JOB_TYPE_BATCH {
        let collect_all = match job {
            None => true,
            Some(job) => job.status == JOB_STATUS_DEAD && (job.stop || allow_batch),
        };
        if !collect_all {
            // A live batch job keeps its current allocations; terminal ones of older
            // versions may go.
            let job_modify_index = job.map(|j| j.job_modify_index).unwrap_or(0);
            let old: Vec<Found> = allocs
                .iter()
                .filter(|a| {
                    a.create_index < job_modify_index
                        && a.modify_time < cutoff
                        && a.terminal_status()
                })
                .map(|a| found_alloc(a))
                .collect();
            return (old.len() == allocs.len(), old);
        }
    }
    let mut collect_eval = true;
    let mut collectable = Vec::new();
    for alloc in allocs {
        if alloc_collectable(alloc, job, now, cutoff) {
            collectable.push(found_alloc(alloc));
        } else {
            collect_eval = false;
        }
    }
    (collect_eval, collectable)
}

/// Nomad's `allocGCEligible`.
fn alloc_collectable(alloc: &Allocation, job: Option<&Job>, now: i64, cutoff: i64) -> bool {
    if !alloc.terminal_status() || alloc.modify_time > cutoff {
        return false;
    }
    if alloc.client_status == ALLOC_CLIENT_STATUS_RUNNING {
        return false;
    }
    let Some(job) = job else {
        return true;
    };
    if job.stop || job.status == JOB_STATUS_DEAD {
        return true;
    }
    if alloc.desired_status == ALLOC_DESIRED_STATUS_STOP {
        return true;
    }
    if alloc.client_status != ALLOC_CLIENT_STATUS_FAILED {
        return true;
    }
    // A failed allocation is kept while a reschedule its policy allows may still copy its
    // history forward.
    let Some(policy) = job
        .lookup_task_group(&alloc.task_group)
        .and_then(|tg| tg.reschedule_policy.as_ref())
    else {
        return true;
    };
    if !policy.unlimited && policy.attempts == 0 {
        return true;
    }
    if !alloc.next_allocation.is_empty() {
        return true;
    }
    if policy.unlimited {
        return false;
    }
    let Some(last) = alloc
        .reschedule_tracker
        .as_ref()
        .and_then(|t| t.events.as_ref())
        .and_then(|events| events.last())
    else {
        return false;
    };
    now.saturating_sub(last.reschedule_time) > policy.interval
}

fn plan_deployments(snap: &caravan_state::Snapshot, config: &GcConfig, now: i64) -> Plan {
    let cutoff = cutoff(now, config.deployment_threshold);
    let mut plan = Plan::default();
    for (_, row) in snap.deployments().iter() {
        let d = &row.value;
        if d.active() || d.modify_time > cutoff {
            continue;
        }
        let in_use = snap
            .allocs_by_job(&d.namespace, &d.job_id)
            .any(|a| a.value.deployment_id == d.id && !a.value.terminal_status());
        if !in_use {
            plan.deployments.push(Found {
                key: d.id.clone(),
                modify_index: d.modify_index,
            });
        }
    }
    plan
}

fn plan_nodes(snap: &caravan_state::Snapshot, config: &GcConfig, now: i64) -> Plan {
    let cutoff_secs = cutoff(now, config.node_threshold) / 1_000_000_000;
    let mut plan = Plan::default();
    for (_, row) in snap.nodes().iter() {
        let node = &row.value;
        if !node.terminal_status() || node.status_updated_at > cutoff_secs {
            continue;
        }
        if snap
            .allocs_by_node(&node.id)
            .any(|a| !a.value.terminal_status())
        {
            continue;
        }
        plan.nodes.push(Found {
            key: node.id.clone(),
            modify_index: node.modify_index,
        });
    }
    plan
}

/// One removal, done only if the object is unchanged since it was found.
enum Removal {
    /// A job with the evaluations and allocations that go with it: all or nothing.
    Job(Found, Vec<Found>, Vec<Found>),
    Eval(Found),
    Alloc(Found),
    Deployment(Found),
    Node(Found),
}

impl Removal {
    fn weight(&self) -> usize {
        match self {
            Removal::Job(_, evals, allocs) => 1 + evals.len() + allocs.len(),
            _ => 1,
        }
    }
}

fn unchanged<T: caravan_state::Document>(txn: &Txn<'_>, found: &Found) -> bool
where
    caravan_state::Snapshot: caravan_state::HasTable<T>,
{
    caravan_state::HasTable::<T>::table(txn.snapshot())
        .get(&found.key)
        .is_some_and(|row| row.value.modify_index() == found.modify_index)
}

/// Removes a job found collectable, if neither it nor its evaluations and allocations changed
/// and nothing new belongs to it.
fn remove_job(txn: &mut Txn<'_>, job: &Found, evals: &[Found], allocs: &[Found]) -> bool {
    let Some(row) = txn.snapshot().jobs().get(&job.key).cloned() else {
        return false;
    };
    if row.value.modify_index != job.modify_index
        || !evals.iter().all(|f| unchanged::<Evaluation>(txn, f))
        || !allocs.iter().all(|f| unchanged::<Allocation>(txn, f))
    {
        return false;
    }
    let (ns, id) = (&row.value.namespace, &row.value.id);
    let eval_keys: HashSet<&str> = evals.iter().map(|f| f.key.as_str()).collect();
    let alloc_keys: HashSet<&str> = allocs.iter().map(|f| f.key.as_str()).collect();
    let snap = txn.snapshot();
    if snap
        .evals_by_job(ns, id)
        .any(|e| !eval_keys.contains(e.value.id.as_str()))
        || snap
            .allocs_by_job(ns, id)
            .any(|a| !alloc_keys.contains(a.value.id.as_str()))
    {
        return false;
    }
    for f in allocs {
        txn.delete::<Allocation>(&f.key);
    }
    for f in evals {
        txn.delete::<Evaluation>(&f.key);
    }
    purge_job(txn, ns, id);
    true
}

async fn apply(store: &Store, plan: Plan) -> Result<GcReport, ServerError> {
    let mut removals: Vec<Removal> = Vec::new();
    removals.extend(
        plan.jobs
            .into_iter()
            .map(|(job, evals, allocs)| Removal::Job(job, evals, allocs)),
    );
    removals.extend(plan.allocs.into_iter().map(Removal::Alloc));
    removals.extend(plan.evals.into_iter().map(Removal::Eval));
    removals.extend(plan.deployments.into_iter().map(Removal::Deployment));
    removals.extend(plan.nodes.into_iter().map(Removal::Node));

    let mut report = GcReport::default();
    let mut pending = removals.into_iter().peekable();
    while pending.peek().is_some() {
        let mut batch = Vec::new();
        let mut weight = 0;
        while let Some(next) = pending.next_if(|_| weight < BATCH) {
            weight += next.weight();
            batch.push(next);
        }
        let written = store
            .write(move |txn| -> Result<GcReport, ServerError> {
                let mut report = GcReport::default();
                let mut touched_jobs: BTreeSet<(String, String)> = BTreeSet::new();
                for removal in &batch {
                    match removal {
                        Removal::Job(job, evals, allocs) => {
                            if remove_job(txn, job, evals, allocs) {
                                report.jobs += 1;
                                report.evals += evals.len();
                                report.allocs += allocs.len();
                            }
                        }
                        Removal::Eval(f) => {
                            if let Some(row) = txn.snapshot().evals().get(&f.key).cloned()
                                && row.value.modify_index == f.modify_index
                            {
                                txn.delete::<Evaluation>(&f.key);
                                touched_jobs.insert((
                                    row.value.namespace.clone(),
                                    row.value.job_id.clone(),
                                ));
                                report.evals += 1;
                            }
                        }
                        Removal::Alloc(f) => {
                            if let Some(row) = txn.snapshot().allocs().get(&f.key).cloned()
                                && row.value.modify_index == f.modify_index
                            {
                                txn.delete::<Allocation>(&f.key);
                                touched_jobs.insert((
                                    row.value.namespace.clone(),
                                    row.value.job_id.clone(),
                                ));
                                report.allocs += 1;
                            }
                        }
                        Removal::Deployment(f) => {
                            if unchanged::<Deployment>(txn, f) {
                                txn.delete::<Deployment>(&f.key);
                                report.deployments += 1;
                            }
                        }
                        Removal::Node(f) => {
                            let still_idle = txn
                                .snapshot()
                                .allocs_by_node(&f.key)
                                .all(|a| a.value.terminal_status());
                            if unchanged::<Node>(txn, f) && still_idle {
                                txn.delete::<Node>(&f.key);
                                report.nodes += 1;
                            }
                        }
                    }
                }
                for (ns, id) in touched_jobs {
                    settle_job_status(txn, &ns, &id)?;
                }
                Ok(report)
            })
            .await?;
        report.add(&written.value);
    }
    Ok(report)
}

/// A job whose evaluations and allocations were all collected is dead, as in Nomad (which
/// otherwise would read "pending": nothing evaluated it yet).
fn settle_job_status(txn: &mut Txn<'_>, ns: &str, id: &str) -> Result<(), ServerError> {
    let Some(row) = txn.snapshot().job(ns, id).cloned() else {
        return Ok(());
    };
    let snap = txn.snapshot();
    let mut status = derive_job_status(snap, &row.value);
    if status == JOB_STATUS_PENDING
        && snap.evals_by_job(ns, id).next().is_none()
        && snap.allocs_by_job(ns, id).next().is_none()
    {
        status = JOB_STATUS_DEAD;
    }
    if row.value.status != status {
        let mut job = row.value.clone();
        job.status = status.to_owned();
        txn.put(job)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::{
        JOB_STATUS_RUNNING, RescheduleEvent, ReschedulePolicy, RescheduleTracker, TaskGroup,
    };

    const SEC: i64 = 1_000_000_000;

    fn failed_alloc() -> Allocation {
        Allocation {
            id: "a".into(),
            task_group: "g".into(),
            client_status: ALLOC_CLIENT_STATUS_FAILED.into(),
            desired_status: "run".into(),
            modify_time: 10 * SEC,
            ..Allocation::default()
        }
    }

    fn running_job(policy: ReschedulePolicy) -> Job {
        Job {
            id: "j".into(),
            status: JOB_STATUS_RUNNING.into(),
            task_groups: Some(vec![TaskGroup {
                name: "g".into(),
                reschedule_policy: Some(policy),
                ..TaskGroup::default()
            }]),
            ..Job::default()
        }
    }

    #[test]
    fn young_running_or_live_allocations_stay() {
        let job = running_job(ReschedulePolicy::default());
        let mut alloc = failed_alloc();
        // Younger than the cutoff.
        assert!(!alloc_collectable(&alloc, Some(&job), 100 * SEC, 5 * SEC));
        alloc.client_status = "pending".into();
        assert!(!alloc_collectable(&alloc, Some(&job), 100 * SEC, 50 * SEC));
        // Stopped by the server but still running on the client.
        alloc.desired_status = ALLOC_DESIRED_STATUS_STOP.into();
        alloc.client_status = ALLOC_CLIENT_STATUS_RUNNING.into();
        assert!(!alloc_collectable(&alloc, Some(&job), 100 * SEC, 50 * SEC));
        alloc.client_status = "complete".into();
        assert!(alloc_collectable(&alloc, Some(&job), 100 * SEC, 50 * SEC));
    }

    #[test]
    fn failed_allocations_wait_for_the_reschedules_their_policy_allows() {
        let now = 100 * SEC;
        let cutoff = 50 * SEC;
        // No rescheduling: collectable.
        let none = running_job(ReschedulePolicy::default());
        assert!(alloc_collectable(&failed_alloc(), Some(&none), now, cutoff));
        // Unlimited and not yet replaced: kept.
        let unlimited = running_job(ReschedulePolicy {
            unlimited: true,
            ..ReschedulePolicy::default()
        });
        assert!(!alloc_collectable(
            &failed_alloc(),
            Some(&unlimited),
            now,
            cutoff
        ));
        // Replaced: its history moved on.
        let mut replaced = failed_alloc();
        replaced.next_allocation = "b".into();
        assert!(alloc_collectable(&replaced, Some(&unlimited), now, cutoff));
        // Limited attempts: kept until the last reschedule is older than the interval.
        let limited = running_job(ReschedulePolicy {
            attempts: 2,
            interval: 30 * SEC,
            ..ReschedulePolicy::default()
        });
        let mut alloc = failed_alloc();
        assert!(!alloc_collectable(&alloc, Some(&limited), now, cutoff));
        alloc.reschedule_tracker = Some(RescheduleTracker {
            events: Some(vec![RescheduleEvent {
                reschedule_time: 80 * SEC,
                ..RescheduleEvent::default()
            }]),
            ..RescheduleTracker::default()
        });
        assert!(!alloc_collectable(&alloc, Some(&limited), now, cutoff));
        assert!(alloc_collectable(&alloc, Some(&limited), 111 * SEC, cutoff));
        // The job is gone or dead: everything terminal goes.
        assert!(alloc_collectable(&failed_alloc(), None, now, cutoff));
        let mut dead = unlimited.clone();
        dead.status = JOB_STATUS_DEAD.into();
        assert!(alloc_collectable(&failed_alloc(), Some(&dead), now, cutoff));
    }

    #[test]
    fn which_jobs_may_be_collected() {
        let mut job = Job {
            r#type: JOB_TYPE_BATCH.into(),
            status: JOB_STATUS_DEAD.into(),
            ..Job::default()
        };
        assert!(job_collectable(&job));
        job.r#type = "service".into();
        assert!(!job_collectable(&job));
        job.stop = true;
        assert!(job_collectable(&job));
        job.stop = false;
        job.r#type = JOB_TYPE_BATCH.into();
        job.status = JOB_STATUS_RUNNING.into();
        assert!(!job_collectable(&job));
        // A periodic parent only once stopped, whatever its status.
        job.periodic = Some(caravan_structs::PeriodicConfig {
            enabled: true,
            ..Default::default()
        });
        job.status = JOB_STATUS_DEAD.into();
        assert!(!job_collectable(&job));
        job.stop = true;
        assert!(job_collectable(&job));
    }
}
