//! Rescheduling failed allocations by the group's reschedule policy: now, later through a
//! follow-up eval, or never once the attempts are spent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use caravan_scheduler::State;
use caravan_scheduler::testing::*;
use caravan_structs::{
    ALLOC_CLIENT_STATUS_FAILED, Allocation, Evaluation, Job, RescheduleEvent, ReschedulePolicy,
    RescheduleTracker,
};

const S: i64 = 1_000_000_000;

fn policy(attempts: i64, delay: i64, function: &str, unlimited: bool) -> ReschedulePolicy {
    ReschedulePolicy {
        attempts,
        delay: delay * S,
        delay_function: function.into(),
        interval: 3600 * S,
        max_delay: 600 * S,
        unlimited,
    }
}

/// Three nodes, a job of one with `p`, placed; returns the harness, job and the alloc.
fn setup(p: ReschedulePolicy) -> (Harness, Job, Allocation) {
    let mut h = Harness::new();
    for i in 0..3 {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    job.task_groups.as_mut().unwrap()[0].reschedule_policy = Some(p);
    // No deployment in the way.
    job.task_groups.as_mut().unwrap()[0].update = None;
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "place")).unwrap();
    let a = h.live_allocs("default", "web")[0].clone();
    (h, job, a)
}

/// Marks the allocation failed `ago` seconds before the harness clock.
fn fail(h: &mut Harness, a: &Allocation, ago: i64, tracker: Option<RescheduleTracker>) {
    let mut f = a.clone();
    f.client_status = ALLOC_CLIENT_STATUS_FAILED.into();
    f.modify_time = h.now - ago * S;
    f.reschedule_tracker = tracker;
    h.state.upsert_alloc(f);
}

fn failure_eval(job: &Job, id: &str) -> Evaluation {
    let mut e = mock_eval(job, id);
    e.triggered_by = "alloc-failure".into();
    e
}

#[test]
fn eligible_now_places_a_replacement_with_tracker() {
    let (mut h, job, a) = setup(policy(2, 5, "constant", false));
    fail(&mut h, &a, 10, None);
    h.process(&failure_eval(&job, "resched")).unwrap();
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 1);
    let r = live[0];
    assert_eq!(r.previous_allocation, a.id);
    assert_eq!(r.name, a.name);
    assert_ne!(r.node_id, a.node_id, "the failed node is penalised");
    let ev = r
        .reschedule_tracker
        .as_ref()
        .unwrap()
        .events
        .as_ref()
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0],
        RescheduleEvent {
            delay: 5 * S,
            prev_alloc_id: a.id.clone(),
            prev_node_id: a.node_id.clone(),
            reschedule_time: h.now,
        }
    );
    let old = h.state.alloc(&a.id).unwrap();
    assert_eq!(old.desired_status, "stop");
    assert_eq!(
        old.desired_description,
        "alloc was rescheduled because it failed"
    );
    assert_eq!(old.client_status, ALLOC_CLIENT_STATUS_FAILED);
    assert_eq!(old.next_allocation, r.id);
    let scores = r
        .metrics
        .as_ref()
        .unwrap()
        .score_meta_data
        .as_ref()
        .unwrap();
    assert!(scores.iter().all(|s| {
        s.scores
            .as_ref()
            .unwrap()
            .contains_key("node-reschedule-penalty")
    }));

    // The replacement fails too: the second attempt carries both events.
    let r = r.clone();
    fail(&mut h, &r, 10, r.reschedule_tracker.clone());
    h.now += 20 * S;
    h.process(&failure_eval(&job, "resched-2")).unwrap();
    let r2 = h.live_allocs("default", "web")[0].clone();
    assert_eq!(r2.previous_allocation, r.id);
    let ev = r2.reschedule_tracker.clone().unwrap().events.unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1].prev_alloc_id, r.id);

    // Two attempts within the hour are spent: the third failure stays failed.
    let tracker = h.state.alloc(&r2.id).unwrap().reschedule_tracker.clone();
    fail(&mut h, &r2, 10, tracker);
    h.now += 20 * S;
    let before = h.state.allocs_by_job("default", "web").len();
    h.process(&failure_eval(&job, "resched-3")).unwrap();
    assert_eq!(h.state.allocs_by_job("default", "web").len(), before);
    assert_eq!(h.state.alloc(&r2.id).unwrap().desired_status, "run");
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, "complete");
    assert!(e.blocked_eval.is_empty());
    assert!(
        h.created_evals
            .iter()
            .all(|e| e.triggered_by != "alloc-failure")
    );
}

#[test]
fn eligible_later_creates_one_followup_eval() {
    let (mut h, job, a) = setup(policy(3, 30, "constant", false));
    fail(&mut h, &a, 0, None);
    let eval = failure_eval(&job, "resched");
    h.process(&eval).unwrap();
    assert!(
        h.live_allocs("default", "web").is_empty(),
        "nothing placed yet"
    );
    let followups: Vec<&Evaluation> = h
        .created_evals
        .iter()
        .filter(|e| e.triggered_by == "alloc-failure")
        .collect();
    assert_eq!(followups.len(), 1);
    let f = followups[0].clone();
    assert_eq!(f.status, "pending");
    assert_eq!(f.previous_eval, eval.id);
    assert_eq!(f.job_id, "web");
    assert_eq!(f.r#type, "service");
    assert_eq!(f.status_description, "created for delayed rescheduling");
    assert_eq!(f.wait_until.unix_nanos(), h.now + 30 * S);
    let marked = h.state.alloc(&a.id).unwrap();
    assert_eq!(marked.followup_eval_id, f.id);
    assert_eq!(marked.desired_status, "run");
    assert!(h.created_evals.iter().all(|e| e.status != "blocked"));

    // Re-processing before the time creates no second follow-up.
    h.process(&failure_eval(&job, "again")).unwrap();
    assert_eq!(
        h.created_evals
            .iter()
            .filter(|e| e.triggered_by == "alloc-failure")
            .count(),
        1
    );

    // The follow-up eval reschedules.
    h.now += 30 * S;
    h.process(&f).unwrap();
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].previous_allocation, a.id);
}

#[test]
fn exponential_delay_grows_with_attempts() {
    let (mut h, job, a) = setup(policy(0, 5, "exponential", true));
    let tracker = RescheduleTracker {
        events: Some(vec![
            RescheduleEvent {
                delay: 5 * S,
                prev_alloc_id: "x".into(),
                prev_node_id: "n9".into(),
                reschedule_time: h.now - 100 * S,
            },
            RescheduleEvent {
                delay: 10 * S,
                prev_alloc_id: "y".into(),
                prev_node_id: "n9".into(),
                reschedule_time: h.now - 50 * S,
            },
        ]),
        last_reschedule: String::new(),
    };
    fail(&mut h, &a, 0, Some(tracker));
    h.process(&failure_eval(&job, "resched")).unwrap();
    let f = h
        .created_evals
        .iter()
        .find(|e| e.triggered_by == "alloc-failure")
        .unwrap()
        .clone();
    assert_eq!(f.wait_until.unix_nanos(), h.now + 20 * S);
    h.now += 20 * S;
    h.process(&f).unwrap();
    let r = h.live_allocs("default", "web")[0].clone();
    let ev = r.reschedule_tracker.unwrap().events.unwrap();
    assert_eq!(ev.len(), 3, "unlimited keeps the last events");
    assert_eq!(ev[2].delay, 20 * S);
}

#[test]
fn no_policy_or_zero_attempts_never_reschedules() {
    let (mut h, job, a) = setup(policy(0, 5, "constant", false));
    fail(&mut h, &a, 100, None);
    h.process(&failure_eval(&job, "resched")).unwrap();
    assert!(h.live_allocs("default", "web").is_empty());
    assert_eq!(h.state.allocs_by_job("default", "web").len(), 1);
}

#[test]
fn unplaceable_reschedule_keeps_the_failed_alloc_and_notes_it() {
    let (mut h, job, a) = setup(policy(2, 5, "constant", false));
    fail(&mut h, &a, 10, None);
    for n in ["n0", "n1", "n2"] {
        let mut node = h.state.node(n).cloned().unwrap();
        node.scheduling_eligibility = "ineligible".into();
        h.state.upsert_node(node);
    }
    h.process(&failure_eval(&job, "resched")).unwrap();
    let old = h.state.alloc(&a.id).unwrap();
    assert_eq!(old.desired_status, "run");
    assert_eq!(
        old.reschedule_tracker.as_ref().unwrap().last_reschedule,
        "no placement"
    );
    let e = h.last_eval().unwrap();
    assert!(e.failed_tg_allocs.is_some());
    assert!(!e.blocked_eval.is_empty());
}

#[test]
fn batch_default_policy_reschedules_once() {
    let mut h = Harness::new();
    for i in 0..2 {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
    let mut job = mock_batch_job("b");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "place")).unwrap();
    let a = h.live_allocs("default", "b")[0].clone();
    fail(&mut h, &a, 60, None);
    h.process(&failure_eval(&job, "r1")).unwrap();
    let r = h.live_allocs("default", "b")[0].clone();
    assert_eq!(r.previous_allocation, a.id);
    fail(&mut h, &r, 60, r.reschedule_tracker.clone());
    h.process(&failure_eval(&job, "r2")).unwrap();
    assert!(
        h.live_allocs("default", "b").is_empty(),
        "one attempt in 24h"
    );
}
