//! The evaluation broker: pending evaluations wait here, highest priority first (then oldest),
//! for a scheduler worker. One evaluation per job is in flight at a time; when more pile up
//! for a job, the newest runs next and the older ones are cancelled (it sees everything they
//! would have). Evaluations with a `WaitUntil` wait for their time. Blocked evaluations (the
//! scheduler could not place everything) are kept aside until capacity appears — a node
//! becomes ready and eligible, or an allocation stops — then run again.
//!
//! The broker is fed from the store's change stream, so every evaluation committed by any
//! write path reaches it, and rebuilt from the snapshot at start-up or after falling behind.
//! While the scheduler configuration sets `PauseEvalBroker`, it keeps taking evaluations in
//! but hands none to the workers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use caravan_state::{Snapshot, Store, TableId};
use caravan_structs::{EVAL_STATUS_BLOCKED, EVAL_STATUS_PENDING, Evaluation};
use tokio::sync::{Notify, broadcast};

type JobKey = (String, String);

/// A queued evaluation: ordered by priority, then age.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: i64,
    age: Reverse<u64>,
    id: String,
}

#[derive(Default)]
struct Inner {
    ready: BinaryHeap<Ready>,
    /// Every evaluation the broker holds, by ID (queued, waiting, in flight or delayed).
    evals: HashMap<String, Evaluation>,
    /// Jobs with an evaluation queued or in flight.
    busy_jobs: HashSet<JobKey>,
    /// Evaluations that arrived while their job was busy, oldest first.
    waiting: HashMap<JobKey, Vec<String>>,
    /// Evaluations whose `WaitUntil` is in the future, by that time (Unix nanoseconds).
    delayed: BTreeMap<(i64, String), ()>,
    /// Blocked evaluations, one per job (the newest).
    blocked: HashMap<JobKey, Evaluation>,
    /// The scheduler configuration pauses the broker: nothing is dequeued.
    paused: bool,
}

pub struct Broker {
    inner: Mutex<Inner>,
    ready: Notify,
    /// Evaluations cancelled because a newer one of their job ran; written by the workers.
    cancelled: Mutex<Vec<Evaluation>>,
}

fn job_key(e: &Evaluation) -> JobKey {
    (e.namespace.clone(), e.job_id.clone())
}

impl Broker {
    pub fn new() -> Arc<Broker> {
        Arc::new(Broker {
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
            cancelled: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a pending evaluation into the queue (once; again only after it was acked).
    pub fn enqueue(&self, eval: &Evaluation, now: i64) {
        let mut inner = self.lock();
        if inner.evals.contains_key(&eval.id) {
            return;
        }
        inner.evals.insert(eval.id.clone(), eval.clone());
        let wait_until = if eval.wait_until.is_zero() {
            0
        } else {
            eval.wait_until.unix_nanos()
        };
        if wait_until > now {
            inner.delayed.insert((wait_until, eval.id.clone()), ());
            drop(inner);
            self.ready.notify_waiters();
            return;
        }
        Self::admit(&mut inner, eval.id.clone());
        drop(inner);
        self.ready.notify_one();
    }

    /// Queues `id` or parks it behind its job's evaluation in flight.
    fn admit(inner: &mut Inner, id: String) {
        let Some(eval) = inner.evals.get(&id) else {
            return;
        };
        let key = job_key(eval);
        if inner.busy_jobs.contains(&key) {
            inner.waiting.entry(key).or_default().push(id);
            return;
        }
        let ready = Ready {
            priority: eval.priority,
            age: Reverse(eval.create_index),
            id,
        };
        inner.busy_jobs.insert(key);
        inner.ready.push(ready);
    }

    /// Keeps a blocked evaluation until capacity appears (the newest per job).
    pub fn block(&self, eval: &Evaluation) {
        let mut inner = self.lock();
        let key = job_key(eval);
        let newer = inner
            .blocked
            .get(&key)
            .is_none_or(|old| old.create_index <= eval.create_index);
        if newer {
            inner.blocked.insert(key, eval.clone());
        }
    }

    /// Forgets a blocked evaluation that is no longer blocked.
    pub fn unblocked(&self, eval: &Evaluation) {
        let mut inner = self.lock();
        let key = job_key(eval);
        if inner.blocked.get(&key).is_some_and(|b| b.id == eval.id) {
            inner.blocked.remove(&key);
        }
    }

    /// Capacity appeared: every blocked evaluation runs again.
    pub fn unblock_all(&self, now: i64) {
        let blocked: Vec<Evaluation> = {
            let mut inner = self.lock();
            inner.blocked.drain().map(|(_, e)| e).collect()
        };
        for eval in blocked {
            self.enqueue(&eval, now);
        }
    }

    /// Moves delayed evaluations whose time has come into the queue; returns when the next
    /// one is due.
    pub fn promote_delayed(&self, now: i64) -> Option<i64> {
        let mut inner = self.lock();
        let due: Vec<(i64, String)> = inner
            .delayed
            .range(..(now + 1, String::new()))
            .map(|(k, _)| k.clone())
            .collect();
        let promoted = !due.is_empty();
        for key in due {
            inner.delayed.remove(&key);
            Self::admit(&mut inner, key.1);
        }
        let next = inner.delayed.keys().next().map(|(t, _)| *t);
        drop(inner);
        if promoted {
            self.ready.notify_waiters();
        }
        next
    }

    /// Pauses or resumes handing evaluations to workers (`PauseEvalBroker`).
    pub fn set_paused(&self, paused: bool) {
        let mut inner = self.lock();
        if inner.paused == paused {
            return;
        }
        inner.paused = paused;
        drop(inner);
        tracing::info!(paused, "evaluation broker");
        if !paused {
            self.ready.notify_waiters();
        }
    }

    pub fn paused(&self) -> bool {
        self.lock().paused
    }

    /// Waits for the next evaluation to schedule (while paused, none comes).
    pub async fn dequeue(&self) -> Evaluation {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                while !inner.paused
                    && let Some(r) = inner.ready.pop()
                {
                    if let Some(eval) = inner.evals.get(&r.id) {
                        return eval.clone();
                    }
                }
            }
            notified.await;
        }
    }

    /// The worker is done with `eval`: its job may run its next evaluation. Evaluations that
    /// piled up meanwhile collapse into the newest.
    pub fn ack(&self, eval: &Evaluation) {
        let mut inner = self.lock();
        inner.evals.remove(&eval.id);
        let key = job_key(eval);
        inner.busy_jobs.remove(&key);
        if let Some(mut ids) = inner.waiting.remove(&key)
            && let Some(next) = ids.pop()
        {
            let mut cancelled = Vec::new();
            for id in ids {
                if let Some(old) = inner.evals.remove(&id) {
                    cancelled.push(old);
                }
            }
            Self::admit(&mut inner, next);
            drop(inner);
            if !cancelled.is_empty() {
                self.cancelled
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(cancelled);
            }
            self.ready.notify_one();
        }
    }

    /// Evaluations cancelled since the last call.
    pub fn take_cancelled(&self) -> Vec<Evaluation> {
        std::mem::take(&mut *self.cancelled.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many evaluations wait (queued, parked, delayed) and how many are blocked.
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.evals.len(), inner.blocked.len())
    }

    /// Takes every pending and blocked evaluation of `snap` (start-up, or after lagging), and
    /// its pause switch.
    pub fn load(&self, snap: &Snapshot, now: i64) {
        self.set_paused(snap.scheduler_config().is_some_and(|c| c.pause_eval_broker));
        for (_, row) in snap.evals().iter() {
            self.observe_eval(&row.value, now);
        }
    }

    fn observe_eval(&self, eval: &Evaluation, now: i64) {
        match eval.status.as_str() {
            EVAL_STATUS_PENDING => self.enqueue(eval, now),
            EVAL_STATUS_BLOCKED => self.block(eval),
            _ => self.unblocked(eval),
        }
    }
}

/// Feeds the broker from the store: new evaluations, and the changes that may unblock the
/// blocked ones. Runs until the store closes.
pub async fn feed(broker: Arc<Broker>, store: Store) {
    let mut changes = store.changes();
    broker.load(&store.snapshot(), crate::nodes::unix_nanos());
    loop {
        match changes.recv().await {
            Ok(batch) => {
                let snap = store.snapshot();
                let now = crate::nodes::unix_nanos();
                let mut capacity = false;
                for (table, key) in &batch.keys {
                    match table {
                        TableId::Evals => {
                            if let Some(row) = snap.evals().get(key) {
                                broker.observe_eval(&row.value, now);
                            }
                        }
                        TableId::Nodes => {
                            capacity |= snap.nodes().get(key).is_some_and(|n| {
                                n.value.status == "ready"
                                    && n.value.scheduling_eligibility == "eligible"
                                    && n.value.drain_strategy.is_none()
                            });
                        }
                        TableId::SchedulerConfig => {
                            broker.set_paused(
                                snap.scheduler_config().is_some_and(|c| c.pause_eval_broker),
                            );
                        }
                        TableId::Allocs => {
                            capacity |= snap
                                .allocs()
                                .get(key)
                                .is_none_or(|a| a.value.terminal_status());
                        }
                        _ => {}
                    }
                }
                if capacity {
                    broker.unblock_all(now);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                broker.load(&store.snapshot(), crate::nodes::unix_nanos());
                broker.unblock_all(crate::nodes::unix_nanos());
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Moves delayed evaluations into the queue when their time comes.
pub async fn run_delayed(broker: Arc<Broker>) {
    loop {
        let now = crate::nodes::unix_nanos();
        let next = broker.promote_delayed(now);
        let sleep_ns = next
            .map(|t| (t - now).clamp(1_000_000, 1_000_000_000))
            .unwrap_or(1_000_000_000);
        tokio::time::sleep(std::time::Duration::from_nanos(sleep_ns as u64)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(id: &str, job: &str, priority: i64, create_index: u64) -> Evaluation {
        Evaluation {
            id: id.to_owned(),
            namespace: "default".to_owned(),
            job_id: job.to_owned(),
            priority,
            create_index,
            status: EVAL_STATUS_PENDING.to_owned(),
            ..Evaluation::default()
        }
    }

    #[tokio::test]
    async fn highest_priority_then_oldest_first() {
        let b = Broker::new();
        b.enqueue(&eval("a", "j1", 50, 1), 0);
        b.enqueue(&eval("b", "j2", 70, 2), 0);
        b.enqueue(&eval("c", "j3", 50, 3), 0);
        assert_eq!(b.dequeue().await.id, "b");
        assert_eq!(b.dequeue().await.id, "a");
        assert_eq!(b.dequeue().await.id, "c");
    }

    #[tokio::test]
    async fn one_eval_per_job_in_flight_and_piled_up_ones_collapse() {
        let b = Broker::new();
        let first = eval("a", "j", 50, 1);
        b.enqueue(&first, 0);
        let got = b.dequeue().await;
        b.enqueue(&eval("b", "j", 50, 2), 0);
        b.enqueue(&eval("c", "j", 50, 3), 0);
        b.enqueue(&eval("b", "j", 50, 2), 0); // duplicates are ignored
        assert_eq!(b.stats().0, 3);
        b.ack(&got);
        assert_eq!(b.dequeue().await.id, "c");
        let cancelled: Vec<String> = b.take_cancelled().into_iter().map(|e| e.id).collect();
        assert_eq!(cancelled, ["b"]);
    }

    #[tokio::test]
    async fn a_paused_broker_hands_out_nothing_until_resumed() {
        let b = Broker::new();
        b.set_paused(true);
        b.enqueue(&eval("a", "j", 50, 1), 0);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), b.dequeue()).await;
        assert!(waited.is_err(), "a paused broker dequeued");
        let worker = {
            let b = b.clone();
            tokio::spawn(async move { b.dequeue().await })
        };
        tokio::task::yield_now().await;
        b.set_paused(false);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), worker).await;
        assert_eq!(
            got.ok().and_then(Result::ok).map(|e| e.id).as_deref(),
            Some("a")
        );
    }

    #[tokio::test]
    async fn delayed_evals_wait_for_their_time() {
        let b = Broker::new();
        let mut e = eval("a", "j", 50, 1);
        e.wait_until = caravan_structs::Time::from_unix_nanos(1_000);
        b.enqueue(&e, 0);
        assert_eq!(b.promote_delayed(500), Some(1_000));
        assert_eq!(b.promote_delayed(1_000), None);
        assert_eq!(b.dequeue().await.id, "a");
    }

    #[tokio::test]
    async fn blocked_evals_run_again_when_capacity_appears() {
        let b = Broker::new();
        let mut e = eval("a", "j", 50, 1);
        e.status = EVAL_STATUS_BLOCKED.to_owned();
        b.block(&e);
        let mut newer = eval("b", "j", 50, 2);
        newer.status = EVAL_STATUS_BLOCKED.to_owned();
        b.block(&newer);
        assert_eq!(b.stats(), (0, 1));
        b.unblock_all(0);
        assert_eq!(b.dequeue().await.id, "b");
    }
}
