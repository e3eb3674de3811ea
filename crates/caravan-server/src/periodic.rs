//! The periodic launcher (Nomad's `PeriodicDispatch`): on the leader, every enabled periodic
//! job that is not stopped has a next launch computed from its spec(s) in its time zone; at
//! that time a child `<id>/periodic-<unix seconds>` (the parent's spec, `ParentID` set,
//! `Periodic` cleared) is registered with its evaluation, in one write transaction that also
//! records the launch (`PeriodicLaunch`).
//!
//! - **Once per launch.** The transaction re-reads the recorded launch and refuses a scheduled
//!   launch at or before it, so neither a retry nor a new leader launches it twice.
//! - **After downtime** (leader start), as Nomad's `restorePeriodicDispatcher`: a job whose next
//!   launch after its recorded one has passed is launched once, now; the missed launches in
//!   between are not made up.
//! - **`prohibit_overlap`**: a launch is skipped while an earlier child has an evaluation or
//!   allocation that is not terminal.
//! - **Updates**: a job change (new spec, stop, purge, disable) reschedules the job from now or
//!   drops it; the launcher learns of them from the store's change stream.
//! - **Force** (`POST /v1/job/:id/periodic/force`): a child now, whatever the overlap.
//!
//! Time comes from a [`Clock`], so the queue logic is tested without waiting.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use caravan_state::{Snapshot, Store, TableId, Txn, job_key};
use caravan_structs::{Job, PERIODIC_LAUNCH_SUFFIX, PeriodicLaunch, eval_trigger};
use jiff::Timestamp;

use crate::error::ServerError;
use crate::jobs::{job_eval, refresh_job_status, upsert_job};

/// The wall clock the launcher reads.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Nanoseconds since the Unix epoch.
fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

/// Whether a job is one the launcher runs (Nomad's `IsPeriodicActive`).
pub fn is_periodic_active(job: &Job) -> bool {
    job.periodic.as_ref().is_some_and(|p| p.enabled) && !job.stop && !job.is_parameterized()
}

/// Why a launch is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchKind {
    /// The spec's time came; skipped if already launched or (with `prohibit_overlap`) while
    /// a child runs.
    Scheduled,
    /// Asked for through the API: always launches.
    Forced,
}

/// What a launch wrote.
#[derive(Debug, Clone)]
pub struct Launched {
    pub job_id: String,
    pub eval_id: String,
}

/// Whether a child of `parent` launched by the periodic launcher still runs (an evaluation
/// or allocation that is not terminal).
pub fn running_children(snap: &Snapshot, parent: &Job) -> bool {
    let start = format!(
        "{}{PERIODIC_LAUNCH_SUFFIX}",
        job_key(&parent.namespace, &parent.id)
    );
    snap.jobs()
        .range_from(&start)
        .take_while(|(key, _)| key.starts_with(&start))
        .map(|(_, row)| &row.value)
        .filter(|child| child.parent_id == parent.id)
        .any(|child| {
            snap.evals_by_job(&child.namespace, &child.id)
                .any(|e| !e.value.terminal_status())
                || snap
                    .allocs_by_job(&child.namespace, &child.id)
                    .any(|a| !a.value.terminal_status())
        })
}

/// Registers the child of `parent_id` for the launch at `launch_nanos` with its evaluation,
/// and records the launch. `Ok(None)`: a scheduled launch that is not to happen (the job is
/// gone or inactive, the launch was already made, or an earlier child still runs).
pub fn launch(
    txn: &mut Txn<'_>,
    ns: &str,
    parent_id: &str,
    launch_nanos: i64,
    kind: LaunchKind,
) -> Result<Option<Launched>, ServerError> {
    let parent = txn.snapshot().job(ns, parent_id).map(|r| r.value.clone());
    let parent = match (parent, kind) {
        (Some(job), _) if is_periodic_active(&job) => job,
        (_, LaunchKind::Scheduled) => return Ok(None),
        (None, LaunchKind::Forced) => {
            return Err(ServerError::NotFound("job not found".to_owned()));
        }
        (Some(job), LaunchKind::Forced) if !job.is_periodic() => {
            return Err(ServerError::BadRequest(
                "can't force launch non-periodic job".to_owned(),
            ));
        }
        (Some(_), LaunchKind::Forced) => {
            return Err(ServerError::BadRequest(format!(
                "force launch for job {parent_id:?} failed: can't force run non-tracked job {parent_id:?} ({ns})"
            )));
        }
    };
    if kind == LaunchKind::Scheduled {
        let recorded = txn.snapshot().periodic_launch(ns, parent_id);
        if recorded.is_some_and(|l| l.launch >= launch_nanos) {
            return Ok(None);
        }
        let prohibit = parent.periodic.as_ref().is_some_and(|p| p.prohibit_overlap);
        if prohibit && running_children(txn.snapshot(), &parent) {
            tracing::debug!(
                job_id = %parent_id, namespace = %ns,
                "skipping launch of periodic job because job prohibits overlap"
            );
            return Ok(None);
        }
    }

    let mut child = parent.clone();
    child.id = caravan_structs::periodic_child_id(&parent.id, launch_nanos);
    child.name = child.id.clone();
    child.parent_id = parent.id.clone();
    child.periodic = None;
    child.status = String::new();
    child.status_description = String::new();
    child.stable = false;
    let existing = txn.snapshot().job(ns, &child.id).map(|r| r.value.clone());
    let child = upsert_job(txn, child, existing.as_ref())?;
    let Some(eval) = job_eval(&child, eval_trigger::PERIODIC_JOB, None) else {
        return Err(ServerError::Internal(format!(
            "periodic child {:?} has no evaluation",
            child.id
        )));
    };
    let eval_id = eval.id.clone();
    txn.put(eval)?;
    refresh_job_status(txn, ns, &child.id)?;
    // The launch second, as in the child's ID (Nomad reads it back from there): a forced
    // launch then holds back no scheduled launch of a later second.
    txn.put(PeriodicLaunch {
        id: parent.id.clone(),
        namespace: ns.to_owned(),
        launch: launch_nanos.div_euclid(NANOS_PER_SEC) * NANOS_PER_SEC,
        ..PeriodicLaunch::default()
    })?;
    Ok(Some(Launched {
        job_id: child.id,
        eval_id,
    }))
}

/// On registration of an active periodic job that has no recorded launch, records "now":
/// what a new leader computes missed launches from (Nomad's `applyUpsertJob`).
pub fn record_first_launch(
    txn: &mut Txn<'_>,
    job: &Job,
    now_nanos: i64,
) -> Result<(), ServerError> {
    if !is_periodic_active(job)
        || txn
            .snapshot()
            .periodic_launch(&job.namespace, &job.id)
            .is_some()
    {
        return Ok(());
    }
    txn.put(PeriodicLaunch {
        id: job.id.clone(),
        namespace: job.namespace.clone(),
        launch: now_nanos,
        ..PeriodicLaunch::default()
    })?;
    Ok(())
}

/// The tracked jobs by next launch: the launcher's timer heap.
#[derive(Debug, Default)]
pub struct LaunchQueue {
    /// (next launch, job key).
    queue: BTreeSet<(Timestamp, String)>,
    /// Job key → (namespace, id, job modify index, next launch).
    tracked: HashMap<String, Tracked>,
}

#[derive(Debug, Clone)]
struct Tracked {
    namespace: String,
    id: String,
    job_modify_index: u64,
    next: Timestamp,
}

/// One launch that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub namespace: String,
    pub id: String,
    pub scheduled: Timestamp,
}

impl LaunchQueue {
    /// Tracks `job` (its next launch after `now`), or drops it when it is not active or never
    /// launches again. A job whose spec did not change since it was tracked keeps its timer.
    pub fn sync(&mut self, key: &str, job: Option<&Job>, now: Timestamp) {
        let job = job.filter(|j| is_periodic_active(j));
        let Some(job) = job else {
            self.remove(key);
            return;
        };
        if self
            .tracked
            .get(key)
            .is_some_and(|t| t.job_modify_index == job.job_modify_index)
        {
            return;
        }
        self.remove(key);
        let next = job.periodic.as_ref().and_then(|p| p.next_launch(now));
        let Some(next) = next else {
            return;
        };
        self.queue.insert((next, key.to_owned()));
        self.tracked.insert(
            key.to_owned(),
            Tracked {
                namespace: job.namespace.clone(),
                id: job.id.clone(),
                job_modify_index: job.job_modify_index,
                next,
            },
        );
    }

    fn remove(&mut self, key: &str) {
        if let Some(t) = self.tracked.remove(key) {
            self.queue.remove(&(t.next, key.to_owned()));
        }
    }

    /// Tracks every job of the snapshot and forgets jobs it no longer has.
    pub fn sync_all(&mut self, snap: &Snapshot, now: Timestamp) {
        let gone: Vec<String> = self
            .tracked
            .keys()
            .filter(|k| snap.jobs().get(k).is_none())
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
        for (key, row) in snap.jobs().iter() {
            if row.value.periodic.is_some() || self.tracked.contains_key(key) {
                self.sync(key, Some(&row.value), now);
            }
        }
    }

    /// The earliest next launch.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.queue.first().map(|(t, _)| *t)
    }

    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }

    /// Takes the launches due at `now` and moves each job's timer to its following launch
    /// (computed from the launch time, as Nomad does).
    pub fn take_due(&mut self, snap: &Snapshot, now: Timestamp) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some((at, key)) = self.queue.first().cloned() {
            if at > now {
                break;
            }
            self.queue.remove(&(at, key.clone()));
            let Some(t) = self.tracked.get_mut(&key) else {
                continue;
            };
            due.push(Due {
                namespace: t.namespace.clone(),
                id: t.id.clone(),
                scheduled: at,
            });
            let following = snap
                .jobs()
                .get(&key)
                .and_then(|row| row.value.periodic.as_ref())
                .and_then(|p| p.next_launch(at));
            match following {
                Some(next) => {
                    t.next = next;
                    self.queue.insert((next, key));
                }
                None => {
                    self.tracked.remove(&key);
                }
            }
        }
        due
    }
}

/// The launches missed while no leader ran: for each active job whose next launch after its
/// recorded one has passed, one launch now (if its overlap rule allows it).
pub fn missed_launches(snap: &Snapshot, now: Timestamp) -> Vec<Due> {
    let mut out = Vec::new();
    for (_, row) in snap.jobs().iter() {
        let job = &row.value;
        if !is_periodic_active(job) {
            continue;
        }
        let Some(recorded) = snap.periodic_launch(&job.namespace, &job.id) else {
            continue;
        };
        let Ok(last) = Timestamp::from_nanosecond(i128::from(recorded.launch)) else {
            continue;
        };
        let next = job.periodic.as_ref().and_then(|p| p.next_launch(last));
        if next.is_none_or(|n| n >= now) {
            continue;
        }
        let prohibit = job.periodic.as_ref().is_some_and(|p| p.prohibit_overlap);
        if prohibit && running_children(snap, job) {
            continue;
        }
        out.push(Due {
            namespace: job.namespace.clone(),
            id: job.id.clone(),
            scheduled: now,
        });
    }
    out
}

/// Launches each due job, concurrently (the store batches the writes).
async fn launch_all(store: &Store, due: Vec<Due>) {
    let writes = due.into_iter().map(|d| {
        let store = store.clone();
        async move {
            let at = nanos(d.scheduled);
            let (ns, id) = (d.namespace.clone(), d.id.clone());
            let result = store
                .write(move |txn| launch(txn, &ns, &id, at, LaunchKind::Scheduled))
                .await;
            match result {
                Ok(written) => {
                    if let Some(l) = written.value {
                        tracing::debug!(
                            job_id = %d.id, namespace = %d.namespace, child = %l.job_id,
                            eval_id = %l.eval_id, "launched periodic job"
                        );
                    }
                }
                Err(e) => tracing::error!(
                    job_id = %d.id, namespace = %d.namespace, error = %e,
                    "failed to launch periodic job"
                ),
            }
        }
    });
    futures::future::join_all(writes).await;
}

/// The longest the launcher sleeps without looking at the clock again (the wall clock may
/// jump; the timer is monotonic).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs the launcher until the store closes.
pub async fn run(store: Store, clock: Clock) {
    let mut changes = store.changes();
    let mut queue = LaunchQueue::default();
    let now = clock();
    let snap = store.snapshot();
    launch_all(&store, missed_launches(&snap, now)).await;
    queue.sync_all(&store.snapshot(), clock());
    loop {
        let now = clock();
        let snap = store.snapshot();
        let due = queue.take_due(&snap, now);
        if !due.is_empty() {
            launch_all(&store, due).await;
            continue;
        }
        let sleep = match queue.next_wakeup() {
            Some(at) => Duration::try_from(at.duration_since(now))
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            batch = changes.recv() => match batch {
                Ok(batch) => {
                    let snap = store.snapshot();
                    let now = clock();
                    for (table, key) in &batch.keys {
                        if *table == TableId::Jobs {
                            queue.sync(key, snap.jobs().get(key).map(|r| &r.value), now);
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    queue.sync_all(&store.snapshot(), clock());
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::PeriodicConfig;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn job(id: &str, spec: &str, modify: u64) -> Job {
        Job {
            id: id.into(),
            namespace: "default".into(),
            r#type: "batch".into(),
            job_modify_index: modify,
            periodic: Some(PeriodicConfig {
                enabled: true,
                spec: spec.into(),
                spec_type: "cron".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_queue_launches_each_job_at_its_times_and_follows_updates() {
        let snap = Snapshot::default();
        let mut q = LaunchQueue::default();
        let every_2s = job("a", "*/2 * * * * * *", 1);
        let t0 = ts("2026-01-01T00:00:00.5Z");
        q.sync("default/a", Some(&every_2s), t0);
        assert_eq!(q.next_wakeup(), Some(ts("2026-01-01T00:00:02Z")));
        assert!(q.take_due(&snap, ts("2026-01-01T00:00:01.9Z")).is_empty());
        // The snapshot does not hold the job: the job is launched once and dropped.
        let due = q.take_due(&snap, ts("2026-01-01T00:00:02.001Z"));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].scheduled, ts("2026-01-01T00:00:02Z"));
        assert!(q.is_empty());

        // An unchanged job keeps its timer; a changed spec reschedules; a stop drops it.
        q.sync("default/a", Some(&every_2s), t0);
        q.sync("default/a", Some(&every_2s), ts("2026-01-01T00:00:01.5Z"));
        assert_eq!(q.next_wakeup(), Some(ts("2026-01-01T00:00:02Z")));
        let hourly = job("a", "@hourly", 2);
        q.sync("default/a", Some(&hourly), t0);
        assert_eq!(q.next_wakeup(), Some(ts("2026-01-01T01:00:00Z")));
        assert_eq!(q.len(), 1);
        let mut stopped = hourly.clone();
        stopped.stop = true;
        stopped.job_modify_index = 3;
        q.sync("default/a", Some(&stopped), t0);
        assert!(q.is_empty() && q.next_wakeup().is_none());
        // Disabled and purged jobs are not tracked either.
        let mut disabled = job("b", "@hourly", 4);
        if let Some(p) = disabled.periodic.as_mut() {
            p.enabled = false;
        }
        q.sync("default/b", Some(&disabled), t0);
        q.sync("default/c", None, t0);
        assert!(q.is_empty());
    }

    #[test]
    fn several_jobs_come_due_in_order() {
        let snap = Snapshot::default();
        let mut q = LaunchQueue::default();
        let t0 = ts("2026-01-01T00:00:00Z");
        q.sync("default/m", Some(&job("m", "* * * * *", 1)), t0);
        q.sync("default/s", Some(&job("s", "*/10 * * * * * *", 1)), t0);
        assert_eq!(q.next_wakeup(), Some(ts("2026-01-01T00:00:10Z")));
        let due = q.take_due(&snap, ts("2026-01-01T00:01:00Z"));
        let names: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
        // `s` at :10 (then dropped: not in the snapshot), `m` at :60.
        assert_eq!(names, vec!["s", "m"]);
    }
}
