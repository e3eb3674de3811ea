//! Rescheduling of failed allocations by their group's `ReschedulePolicy`: when the next
//! attempt is due (delay functions, max delay), whether attempts remain in the interval, and
//! the `RescheduleTracker` a replacement carries.

use caravan_structs::{
    ALLOC_CLIENT_STATUS_FAILED, ALLOC_CLIENT_STATUS_LOST, ALLOC_DESIRED_STATUS_STOP, Allocation,
    Deployment, JOB_TYPE_BATCH, RescheduleEvent, ReschedulePolicy, RescheduleTracker,
};

/// An allocation due within this long is rescheduled now.
pub const RESCHEDULE_WINDOW: i64 = 1_000_000_000;
/// Allocations due within this long of each other share one follow-up eval.
pub const BATCHED_FAILED_ALLOC_WINDOW: i64 = 5_000_000_000;
/// With unlimited rescheduling, only the last few events are carried.
pub const MAX_PAST_RESCHEDULE_EVENTS: usize = 5;
/// `RescheduleTracker.LastReschedule` values.
pub const LAST_RESCHEDULE_SUCCESS: &str = "ok";
pub const LAST_RESCHEDULE_FAILED_TO_PLACE: &str = "no placement";

/// Nomad gates the rescheduling of failed allocations of an active deployment on the
/// deployment watcher marking them (`DesiredTransition.Reschedule`). Caravan has no
/// deployment watcher yet, so the gate is off: such allocations reschedule like any other.
const GATE_RESCHEDULE_ON_DEPLOYMENT: bool = false;

/// When the allocation failed: the latest task finish, else its modify time.
pub fn last_event_time(alloc: &Allocation) -> i64 {
    alloc
        .task_states
        .iter()
        .flat_map(|s| s.values())
        .filter(|s| !s.finished_at.is_zero())
        .map(|s| s.finished_at.unix_nanos())
        .max()
        .unwrap_or(alloc.modify_time)
}

/// A previous reschedule was attempted but found no node.
pub fn last_reschedule_failed(alloc: &Allocation) -> bool {
    alloc.reschedule_tracker.as_ref().is_some_and(|t| {
        !t.last_reschedule.is_empty() && t.last_reschedule != LAST_RESCHEDULE_SUCCESS
    })
}

fn events(alloc: &Allocation) -> &[RescheduleEvent] {
    alloc
        .reschedule_tracker
        .as_ref()
        .and_then(|t| t.events.as_deref())
        .unwrap_or(&[])
}

/// How long after failing the allocation may be rescheduled (the delay function applied to
/// the previous attempts).
pub fn next_delay(alloc: &Allocation, policy: Option<&ReschedulePolicy>) -> i64 {
    let Some(policy) = policy else { return 0 };
    let evs = events(alloc);
    let Some(last) = evs.last() else {
        return policy.delay;
    };
    let mut delay = match policy.delay_function.as_str() {
        "exponential" => last.delay.saturating_mul(2),
        "fibonacci" => {
            if evs.len() >= 2 {
                let n1 = last.delay;
                let n2 = evs[evs.len() - 2].delay;
                // A series restarts after the ceiling was reset.
                if n2 == policy.max_delay && n1 == policy.delay {
                    n1
                } else {
                    n1.saturating_add(n2)
                }
            } else {
                policy.delay
            }
        }
        _ => return policy.delay,
    };
    if policy.max_delay > 0 && delay > policy.max_delay {
        delay = policy.max_delay;
        // Back to the base delay once the allocation ran longer than the ceiling.
        if last_event_time(alloc) - last.reschedule_time > delay {
            delay = policy.delay;
        }
    }
    delay
}

/// Attempts made within the policy's interval before `fail_time`, and attempts allowed.
fn reschedule_info(alloc: &Allocation, policy: &ReschedulePolicy, fail_time: i64) -> (i64, i64) {
    let mut attempted = 0;
    if policy.attempts > 0 {
        attempted = events(alloc)
            .iter()
            .filter(|e| fail_time - e.reschedule_time < policy.interval)
            .count() as i64;
    }
    (attempted, policy.attempts)
}

/// When the allocation may next be rescheduled and whether it may be at all (Nomad's
/// `NextRescheduleTime`).
pub fn next_reschedule_time(
    alloc: &Allocation,
    policy: Option<&ReschedulePolicy>,
    job_type: &str,
) -> (i64, bool) {
    let Some(p) = policy else { return (0, false) };
    if p.attempts == 0 && !p.unlimited {
        return (0, false);
    }
    let fail_time = last_event_time(alloc);
    let rescheduled_batch =
        job_type == JOB_TYPE_BATCH && alloc.desired_transition.reschedule == Some(true);
    if (alloc.desired_status == ALLOC_DESIRED_STATUS_STOP && !last_reschedule_failed(alloc))
        || (!rescheduled_batch
            && alloc.client_status != ALLOC_CLIENT_STATUS_FAILED
            && alloc.client_status != ALLOC_CLIENT_STATUS_LOST)
        || fail_time == 0
    {
        return (0, false);
    }
    let delay = next_delay(alloc, policy);
    let at = fail_time.saturating_add(delay);
    let tracker = alloc.reschedule_tracker.as_ref();
    let mut eligible = p.unlimited || (p.attempts > 0 && tracker.is_none());
    if p.attempts > 0 && tracker.is_some_and(|t| t.events.is_some()) {
        let (attempted, attempts) = reschedule_info(alloc, p, fail_time);
        eligible = attempted < attempts && delay < p.interval;
    }
    (at, eligible)
}

/// Whether a failed allocation is rescheduled now, later (with the time), or not at all.
pub fn reschedule_decision(
    alloc: &Allocation,
    policy: Option<&ReschedulePolicy>,
    job_type: &str,
    now: i64,
    eval_id: &str,
    deployment: Option<&Deployment>,
) -> (bool, bool, i64) {
    if GATE_RESCHEDULE_ON_DEPLOYMENT
        && deployment.is_some_and(|d| d.id == alloc.deployment_id && d.active())
        && alloc.desired_transition.reschedule != Some(true)
    {
        return (false, false, 0);
    }
    let forced = alloc.desired_transition.force_reschedule == Some(true);
    let (at, eligible) = next_reschedule_time(alloc, policy, job_type);
    if eligible && (alloc.followup_eval_id == eval_id || at - now <= RESCHEDULE_WINDOW) {
        return (true, false, at);
    }
    let later = eligible && alloc.followup_eval_id.is_empty();
    (forced, later && !forced, at)
}

/// The tracker of a replacement for `prev`: the previous events still relevant, plus this
/// reschedule.
pub fn new_tracker(
    prev: &Allocation,
    policy: Option<&ReschedulePolicy>,
    now: i64,
) -> RescheduleTracker {
    let prev_events = events(prev);
    let mut kept: Vec<RescheduleEvent> = Vec::new();
    let attempts = policy.map_or(0, |p| p.attempts);
    let interval = policy.map_or(0, |p| p.interval);
    if attempts > 0 {
        kept.extend(
            prev_events
                .iter()
                .filter(|e| interval > 0 && now - e.reschedule_time <= interval)
                .cloned(),
        );
    } else {
        let start = prev_events.len().saturating_sub(MAX_PAST_RESCHEDULE_EVENTS);
        kept.extend(prev_events[start..].iter().cloned());
    }
    kept.push(RescheduleEvent {
        delay: next_delay(prev, policy),
        prev_alloc_id: prev.id.clone(),
        prev_node_id: prev.node_id.clone(),
        reschedule_time: now,
    });
    RescheduleTracker {
        events: Some(kept),
        last_reschedule: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn failed(events: &[(i64, i64)]) -> Allocation {
        Allocation {
            id: "a".into(),
            client_status: ALLOC_CLIENT_STATUS_FAILED.into(),
            desired_status: "run".into(),
            modify_time: 100 * S,
            reschedule_tracker: (!events.is_empty()).then(|| RescheduleTracker {
                events: Some(
                    events
                        .iter()
                        .map(|(t, d)| RescheduleEvent {
                            reschedule_time: *t,
                            delay: *d,
                            ..Default::default()
                        })
                        .collect(),
                ),
                last_reschedule: String::new(),
            }),
            ..Default::default()
        }
    }

    fn policy(f: &str, attempts: i64, unlimited: bool) -> ReschedulePolicy {
        ReschedulePolicy {
            attempts,
            delay: 5 * S,
            delay_function: f.into(),
            interval: 3600 * S,
            max_delay: 60 * S,
            unlimited,
        }
    }

    #[test]
    fn delay_functions() {
        let p = policy("exponential", 0, true);
        assert_eq!(next_delay(&failed(&[]), Some(&p)), 5 * S);
        assert_eq!(next_delay(&failed(&[(90 * S, 5 * S)]), Some(&p)), 10 * S);
        assert_eq!(next_delay(&failed(&[(90 * S, 40 * S)]), Some(&p)), 60 * S);
        let p = policy("fibonacci", 0, true);
        assert_eq!(
            next_delay(&failed(&[(80 * S, 5 * S), (90 * S, 5 * S)]), Some(&p)),
            10 * S
        );
        assert_eq!(
            next_delay(&failed(&[(80 * S, 5 * S), (90 * S, 10 * S)]), Some(&p)),
            15 * S
        );
        let p = policy("constant", 0, true);
        assert_eq!(next_delay(&failed(&[(90 * S, 5 * S)]), Some(&p)), 5 * S);
    }

    #[test]
    fn attempts_within_interval() {
        let p = policy("constant", 1, false);
        let (at, ok) = next_reschedule_time(&failed(&[]), Some(&p), "service");
        assert!(ok);
        assert_eq!(at, 105 * S);
        let (_, ok) = next_reschedule_time(&failed(&[(90 * S, 5 * S)]), Some(&p), "service");
        assert!(!ok);
        // An attempt outside the interval does not count.
        let old = failed(&[(100 * S - 7200 * S, 5 * S)]);
        assert!(next_reschedule_time(&old, Some(&p), "service").1);
        let (now, later, _) =
            reschedule_decision(&failed(&[]), Some(&p), "service", 100 * S, "e", None);
        assert!(!now && later);
        let (now, _, _) =
            reschedule_decision(&failed(&[]), Some(&p), "service", 105 * S, "e", None);
        assert!(now);
    }
}
