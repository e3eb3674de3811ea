//! The service and batch schedulers end to end on the in-memory harness: counts and names,
//! scaling, stops, updates, lost and migrating allocations, deployments, blocked evals and
//! plan conflicts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use caravan_scheduler::testing::*;
use caravan_structs::{
    ALLOC_CLIENT_STATUS_COMPLETE, ALLOC_CLIENT_STATUS_LOST, Allocation, DesiredTransition,
    EVAL_STATUS_BLOCKED, EVAL_STATUS_COMPLETE, EVAL_STATUS_FAILED, Job, NODE_STATUS_DOWN,
    TASK_STATE_DEAD, TaskState, eval_trigger,
};

fn cluster(n: usize) -> Harness {
    let mut h = Harness::new();
    for i in 0..n {
        h.state.upsert_node(mock_node(&format!("node-{i:02}")));
    }
    h
}

fn register(h: &mut Harness, job: Job) -> Job {
    let job = h.state.upsert_job(job);
    let eval = mock_eval(&job, &format!("eval-{}-{}", job.id, job.version));
    h.process(&eval).unwrap();
    job
}

fn names(h: &Harness, job: &str) -> Vec<String> {
    let mut n: Vec<String> = h
        .live_allocs("default", job)
        .iter()
        .map(|a| a.name.clone())
        .collect();
    n.sort_by_key(|n| {
        n.rsplit('[')
            .next()
            .unwrap()
            .trim_end_matches(']')
            .parse::<u64>()
            .unwrap()
    });
    n
}

fn set_count(job: &Job, count: i64) -> Job {
    let mut j = job.clone();
    j.task_groups.as_mut().unwrap()[0].count = count;
    j
}

#[test]
fn places_count_with_lowest_names_and_completes_eval() {
    let mut h = cluster(10);
    register(&mut h, mock_job("web"));
    let expected: Vec<String> = (0..10).map(|i| format!("web.web[{i}]")).collect();
    assert_eq!(names(&h, "web"), expected);
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, EVAL_STATUS_COMPLETE);
    assert_eq!(e.queued_allocations.as_ref().unwrap()["web"], 0);
    assert!(e.failed_tg_allocs.is_none());
    assert!(e.blocked_eval.is_empty());
    for a in h.live_allocs("default", "web") {
        assert_eq!(a.desired_status, "run");
        assert_eq!(a.client_status, "pending");
        assert_eq!(a.eval_id, "eval-web-0");
        assert_eq!(a.job_version, 0);
        assert!(a.job.is_none());
        assert_eq!(a.node_name, format!("node-{}", a.node_id));
        let m = a.metrics.as_ref().unwrap();
        assert!(m.nodes_evaluated > 0);
        assert_eq!(m.nodes_available.as_ref().unwrap()["dc1"], 10);
        let top = m.score_meta_data.as_ref().unwrap();
        assert!(!top.is_empty() && top.len() <= 5);
        assert!(top.windows(2).all(|w| w[0].norm_score >= w[1].norm_score));
        assert!(top[0].scores.as_ref().unwrap().contains_key("binpack"));
        let r = a.allocated_resources.as_ref().unwrap();
        assert_eq!(r.tasks.as_ref().unwrap()["web"].cpu.cpu_shares, 500);
        assert_eq!(r.tasks.as_ref().unwrap()["web"].memory.memory_mb, 256);
        assert_eq!(r.shared.disk_mb, 150);
        assert_eq!(a.task_resources.as_ref().unwrap()["web"].cpu, 500);
        assert_eq!(a.shared_resources.as_ref().unwrap().disk_mb, 150);
        assert_eq!(a.create_time, h.now);
    }
    // A second eval with nothing to do submits nothing.
    let plans = h.plans.len();
    let job = h.state.job_version("default", "web", 0).cloned().unwrap();
    h.process(&mock_eval(&job, "again")).unwrap();
    assert_eq!(h.plans.len(), plans);
    assert_eq!(h.last_eval().unwrap().status, EVAL_STATUS_COMPLETE);
}

use caravan_scheduler::State;

#[test]
fn scale_down_stops_highest_indexes_and_scale_up_fills_gaps() {
    let mut h = cluster(5);
    let job = register(&mut h, mock_job("web"));
    register(&mut h, set_count(&job, 4));
    assert_eq!(
        names(&h, "web"),
        vec!["web.web[0]", "web.web[1]", "web.web[2]", "web.web[3]"]
    );
    let stops: Vec<&Allocation> = h
        .plans
        .last()
        .unwrap()
        .node_update
        .values()
        .flatten()
        .collect();
    assert_eq!(stops.len(), 6);
    assert!(
        stops
            .iter()
            .all(|a| a.desired_description == "alloc not needed due to job update")
    );

    // Stop one in the middle (as if it completed); scaling up refills index 1 first.
    let one = h
        .live_allocs("default", "web")
        .into_iter()
        .find(|a| a.name == "web.web[1]")
        .unwrap()
        .id
        .clone();
    h.set_client_status(&one, ALLOC_CLIENT_STATUS_COMPLETE);
    let job = h.state.job("default", "web").cloned().unwrap();
    register(&mut h, set_count(&job, 6));
    assert_eq!(
        names(&h, "web"),
        vec![
            "web.web[0]",
            "web.web[1]",
            "web.web[2]",
            "web.web[3]",
            "web.web[4]",
            "web.web[5]"
        ]
    );
}

#[test]
fn stopped_or_purged_job_stops_everything() {
    let mut h = cluster(3);
    let job = register(&mut h, mock_job("web"));
    let mut stopped = job.clone();
    stopped.stop = true;
    register(&mut h, stopped);
    assert!(h.live_allocs("default", "web").is_empty());
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, EVAL_STATUS_COMPLETE);

    let job2 = register(&mut h, mock_job("api"));
    h.state.purge_job("default", "api");
    let mut eval = mock_eval(&job2, "purge");
    eval.triggered_by = eval_trigger::JOB_DEREGISTER.into();
    h.process(&eval).unwrap();
    assert!(h.live_allocs("default", "api").is_empty());
    let plan = h.plans.last().unwrap();
    assert!(plan.job.is_none());
    assert_eq!(plan.node_update.values().flatten().count(), 10);
}

#[test]
fn destructive_update_replaces_with_previous_allocation_link() {
    let mut h = cluster(5);
    let job = register(&mut h, mock_job("web"));
    let old: Vec<String> = h
        .live_allocs("default", "web")
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let mut v2 = job.clone();
    v2.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0].config =
        Some([("command".to_owned(), serde_json::json!("/bin/true"))].into());
    register(&mut h, v2);
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 10);
    for a in &live {
        assert_eq!(a.job_version, 1);
        assert!(
            old.contains(&a.previous_allocation),
            "{}",
            a.previous_allocation
        );
        let prev = h.state.alloc(&a.previous_allocation).unwrap();
        assert_eq!(prev.desired_status, "stop");
        assert_eq!(
            prev.desired_description,
            "alloc is being updated due to job update"
        );
        assert_eq!(prev.next_allocation, a.id);
        assert_eq!(prev.name, a.name);
    }
}

#[test]
fn non_task_change_updates_in_place() {
    let mut h = cluster(5);
    let job = register(&mut h, mock_job("web"));
    let before: Vec<String> = h
        .live_allocs("default", "web")
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let mut v2 = job.clone();
    v2.priority = 70;
    v2.task_groups.as_mut().unwrap()[0].constraints = Some(vec![caravan_structs::Constraint {
        l_target: "${attr.kernel.name}".into(),
        operand: "=".into(),
        r_target: "linux".into(),
    }]);
    register(&mut h, v2);
    let live = h.live_allocs("default", "web");
    let after: Vec<String> = live.iter().map(|a| a.id.clone()).collect();
    let mut b = before.clone();
    b.sort();
    let mut a2 = after.clone();
    a2.sort();
    assert_eq!(b, a2, "same allocations, updated in place");
    assert!(live.iter().all(|a| a.job_version == 1));
    let plan = h.plans.last().unwrap();
    assert!(plan.node_update.is_empty());
    assert_eq!(plan.node_allocation.values().flatten().count(), 10);
}

#[test]
fn lost_allocations_on_down_or_missing_nodes_are_replaced() {
    let mut h = cluster(4);
    let job = register(&mut h, mock_job("web"));
    let victim_node = h.live_allocs("default", "web")[0].node_id.clone();
    let on_victim: Vec<String> = h
        .live_allocs("default", "web")
        .iter()
        .filter(|a| a.node_id == victim_node)
        .map(|a| a.id.clone())
        .collect();
    let mut n = h.state.node(&victim_node).cloned().unwrap();
    n.status = NODE_STATUS_DOWN.into();
    h.state.upsert_node(n);
    let mut eval = mock_eval(&job, "node-down");
    eval.triggered_by = eval_trigger::NODE_UPDATE.into();
    h.process(&eval).unwrap();
    for id in &on_victim {
        let a = h.state.alloc(id).unwrap();
        assert_eq!(a.client_status, ALLOC_CLIENT_STATUS_LOST);
        assert_eq!(a.desired_status, "stop");
        assert_eq!(
            a.desired_description,
            "alloc is lost since its node is down"
        );
        assert!(!a.next_allocation.is_empty());
    }
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 10);
    assert!(live.iter().all(|a| a.node_id != victim_node));
    assert_eq!(
        live.iter()
            .filter(|a| on_victim.contains(&a.previous_allocation))
            .count(),
        on_victim.len()
    );
}

#[test]
fn migrate_transition_stops_and_replaces() {
    let mut h = cluster(3);
    let job = register(&mut h, mock_job("web"));
    let target = h.live_allocs("default", "web")[0].clone();
    let mut a = target.clone();
    a.desired_transition = DesiredTransition {
        migrate: Some(true),
        ..Default::default()
    };
    h.state.upsert_alloc(a);
    // Drain its node so the replacement goes elsewhere.
    let mut n = h.state.node(&target.node_id).cloned().unwrap();
    n.scheduling_eligibility = "ineligible".into();
    h.state.upsert_node(n);
    let mut eval = mock_eval(&job, "migrate");
    eval.triggered_by = eval_trigger::ALLOC_STOP.into();
    h.process(&eval).unwrap();
    let old = h.state.alloc(&target.id).unwrap();
    assert_eq!(old.desired_status, "stop");
    assert_eq!(old.desired_description, "alloc is being migrated");
    let repl = h
        .live_allocs("default", "web")
        .into_iter()
        .find(|a| a.previous_allocation == target.id)
        .unwrap();
    assert_eq!(repl.name, target.name);
    assert_ne!(repl.node_id, target.node_id);
    assert_eq!(h.live_allocs("default", "web").len(), 10);
}

#[test]
fn batch_allocations_that_completed_are_not_replaced() {
    let mut h = cluster(3);
    let mut job = mock_batch_job("report");
    job.task_groups.as_mut().unwrap()[0].count = 3;
    let job = register(&mut h, job);
    let done = h.live_allocs("default", "report")[0].clone();
    let mut a = done.clone();
    a.client_status = ALLOC_CLIENT_STATUS_COMPLETE.into();
    a.task_states = Some(
        [(
            "web".to_owned(),
            TaskState {
                state: TASK_STATE_DEAD.into(),
                failed: false,
                ..Default::default()
            },
        )]
        .into(),
    );
    h.state.upsert_alloc(a);
    h.process(&mock_eval(&job, "again")).unwrap();
    assert_eq!(h.live_allocs("default", "report").len(), 2);
    let all = h.state.allocs_by_job("default", "report");
    assert_eq!(all.len(), 3, "no replacement for the completed allocation");
    assert!(h.last_eval().unwrap().blocked_eval.is_empty());
}

#[test]
fn service_job_with_update_block_gets_a_deployment() {
    let mut h = cluster(3);
    let job = register(&mut h, mock_job("web"));
    let plan = &h.plans[0];
    let d = plan.deployment.as_ref().expect("deployment");
    assert_eq!(d.status, "running");
    assert_eq!(d.status_description, "Deployment is running");
    assert_eq!(d.job_version, 0);
    assert_eq!(d.job_create_index, job.create_index);
    assert_eq!(d.job_modify_index, job.modify_index);
    assert_eq!(d.job_spec_modify_index, job.job_modify_index);
    assert_eq!(d.eval_priority, 50);
    let ds = &d.task_groups.as_ref().unwrap()["web"];
    assert_eq!(ds.desired_total, 10);
    assert_eq!(ds.placed_allocs, 10);
    assert_eq!(
        ds.progress_deadline,
        job.task_groups.as_ref().unwrap()[0]
            .update
            .as_ref()
            .unwrap()
            .progress_deadline
    );
    assert!(
        h.live_allocs("default", "web")
            .iter()
            .all(|a| a.deployment_id == d.id)
    );
    assert_eq!(h.last_eval().unwrap().deployment_id, d.id);

    // A new version cancels it and starts another.
    let first = d.id.clone();
    let mut v2 = job.clone();
    v2.meta = Some([("rev".to_owned(), "2".to_owned())].into());
    register(&mut h, v2);
    let plan = h.plans.last().unwrap();
    assert_eq!(plan.deployment_updates[0].deployment_id, first);
    assert_eq!(plan.deployment_updates[0].status, "cancelled");
    assert_eq!(
        plan.deployment_updates[0].status_description,
        "Cancelled due to newer version of job"
    );
    let d2 = plan.deployment.as_ref().unwrap();
    assert_ne!(d2.id, first);
    assert_eq!(d2.job_version, 1);

    // Batch jobs never get one.
    let mut h = cluster(2);
    register(&mut h, mock_batch_job("b"));
    assert!(h.plans[0].deployment.is_none());
}

#[test]
fn unplaceable_allocations_block_with_metrics_and_queue() {
    let mut h = cluster(2);
    let mut job = mock_job("big");
    job.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0]
        .resources
        .as_mut()
        .unwrap()
        .cpu = 1500;
    let job = register(&mut h, job);
    // 2 nodes × 4000 MHz fit 2 × 2 = 4 allocations of 1500 MHz.
    assert_eq!(h.live_allocs("default", "big").len(), 4);
    let e = h.last_eval().unwrap().clone();
    assert_eq!(e.status, EVAL_STATUS_COMPLETE);
    assert_eq!(e.queued_allocations.as_ref().unwrap()["web"], 6);
    let m = &e.failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.coalesced_failures, 5);
    assert_eq!(m.nodes_exhausted, 2);
    assert_eq!(m.dimension_exhausted.as_ref().unwrap()["cpu"], 2);
    assert_eq!(m.resources_exhausted.as_ref().unwrap()["web"].cpu, 1500 * 6);
    assert_eq!(m.nodes_available.as_ref().unwrap()["dc1"], 2);
    let blocked = h.created_evals.last().unwrap().clone();
    assert_eq!(e.blocked_eval, blocked.id);
    assert_eq!(blocked.status, EVAL_STATUS_BLOCKED);
    assert_eq!(blocked.triggered_by, "queued-allocs");
    assert_eq!(blocked.previous_eval, e.id);
    assert_eq!(
        blocked.status_description,
        "created to place remaining allocations"
    );
    assert!(!blocked.escaped_computed_class);
    let classes = blocked.class_eligibility.as_ref().unwrap();
    assert_eq!(classes.len(), 1);
    assert!(classes.values().all(|v| *v));

    // The blocked eval re-runs after a node joins: still short, so it is re-blocked.
    h.state.upsert_node(mock_node("node-extra"));
    h.process(&blocked).unwrap();
    assert_eq!(h.live_allocs("default", "big").len(), 6);
    assert_eq!(h.reblocked_evals.len(), 1);
    assert_eq!(h.reblocked_evals[0].id, blocked.id);
    let creates = h.created_evals.len();

    // Enough capacity: the blocked eval completes.
    h.state.upsert_node(mock_node("node-x1"));
    h.state.upsert_node(mock_node("node-x2"));
    h.process(&blocked).unwrap();
    assert_eq!(h.live_allocs("default", "big").len(), 10);
    let done = h.last_eval().unwrap();
    assert_eq!(done.id, blocked.id);
    assert_eq!(done.status, EVAL_STATUS_COMPLETE);
    assert_eq!(h.created_evals.len(), creates, "no new blocked eval");
    let _ = job;
}

#[test]
fn rejected_nodes_are_replanned_on_fresh_state() {
    let mut h = cluster(4);
    let job = h.state.upsert_job(mock_job("web"));
    h.reject_nodes_once = ["node-00".to_owned(), "node-01".to_owned()].into();
    h.process(&mock_eval(&job, "e")).unwrap();
    assert!(h.plans.len() >= 2, "re-planned after the rejection");
    assert!(h.results[0].refresh_index > 0);
    assert_eq!(h.live_allocs("default", "web").len(), 10);
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, EVAL_STATUS_COMPLETE);
    assert_eq!(e.queued_allocations.as_ref().unwrap()["web"], 0);
}

/// A planner that rejects every plan.
struct Stubborn(Harness);

impl caravan_scheduler::Planner for Stubborn {
    fn submit_plan(
        &mut self,
        plan: caravan_scheduler::Plan,
    ) -> Result<
        (
            caravan_scheduler::PlanResult,
            Option<std::sync::Arc<dyn caravan_scheduler::State>>,
        ),
        caravan_scheduler::SchedulerError,
    > {
        self.0.plans.push(plan);
        let r = caravan_scheduler::PlanResult {
            refresh_index: self.0.state.index,
            ..Default::default()
        };
        Ok((r, Some(self.0.snapshot())))
    }
    fn update_eval(
        &mut self,
        e: &caravan_structs::Evaluation,
    ) -> Result<(), caravan_scheduler::SchedulerError> {
        self.0.update_eval(e)
    }
    fn create_eval(
        &mut self,
        e: &caravan_structs::Evaluation,
    ) -> Result<(), caravan_scheduler::SchedulerError> {
        self.0.create_eval(e)
    }
    fn reblock_eval(
        &mut self,
        e: &caravan_structs::Evaluation,
    ) -> Result<(), caravan_scheduler::SchedulerError> {
        self.0.reblock_eval(e)
    }
}

#[test]
fn max_plan_attempts_fail_the_eval_and_block() {
    let mut h = cluster(2);
    let job = h.state.upsert_job(mock_job("web"));
    let state = h.snapshot();
    let mut p = Stubborn(h);
    let mut ctx = caravan_scheduler::SchedContext::new(1, 1);
    caravan_scheduler::process_eval(&mock_eval(&job, "e"), state, &mut p, &mut ctx).unwrap();
    assert_eq!(p.0.plans.len(), 5);
    let e = p.0.last_eval().unwrap();
    assert_eq!(e.status, EVAL_STATUS_FAILED);
    assert_eq!(e.status_description, "maximum attempts reached (5)");
    let blocked = p.0.created_evals.last().unwrap();
    assert_eq!(blocked.triggered_by, "max-plan-attempts");
    assert_eq!(
        blocked.status_description,
        "created due to placement conflicts"
    );
    assert_eq!(e.blocked_eval, blocked.id);

    // Batch jobs try twice.
    let mut h = cluster(2);
    let job = h.state.upsert_job(mock_batch_job("b"));
    let state = h.snapshot();
    let mut p = Stubborn(h);
    caravan_scheduler::process_eval(&mock_eval(&job, "e"), state, &mut p, &mut ctx).unwrap();
    assert_eq!(p.0.plans.len(), 2);
}

#[test]
fn unknown_trigger_fails_the_eval() {
    let mut h = cluster(1);
    let job = h.state.upsert_job(mock_job("web"));
    let mut eval = mock_eval(&job, "e");
    eval.triggered_by = "mystery".into();
    h.process(&eval).unwrap();
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, EVAL_STATUS_FAILED);
    assert_eq!(
        e.status_description,
        "scheduler cannot handle 'mystery' evaluation reason"
    );
    assert!(h.plans.is_empty());
    let mut eval = mock_eval(&job, "e2");
    eval.r#type = "_core".into();
    assert!(h.process(&eval).is_err());
}

#[test]
fn same_seed_same_decisions() {
    let run = || {
        let mut h = cluster(20);
        let mut job = mock_job("web");
        job.task_groups.as_mut().unwrap()[0].networks =
            Some(vec![caravan_structs::NetworkResource {
                dynamic_ports: Some(vec![caravan_structs::Port {
                    label: "http".into(),
                    to: -1,
                    ..Default::default()
                }]),
                ..Default::default()
            }]);
        register(&mut h, job);
        let mut plan = h.plans[0].clone();
        for a in plan.node_allocation.values_mut().flatten() {
            a.metrics.as_mut().unwrap().allocation_time = 0;
        }
        plan
    };
    assert_eq!(run(), run());
}

#[test]
fn blocked_eval_of_per_node_constraints_escapes_the_class_memo() {
    let mut h = cluster(2);
    let mut job = mock_job("web");
    job.constraints = Some(vec![caravan_structs::Constraint {
        l_target: "${node.unique.id}".into(),
        operand: "=".into(),
        r_target: "node-99".into(),
    }]);
    register(&mut h, job);
    let blocked = h.created_evals.last().unwrap();
    assert!(blocked.escaped_computed_class);
    assert!(blocked.class_eligibility.is_none());
    let m = &blocked.failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.nodes_filtered, 2, "each node checked on its own");
}

#[test]
fn deployment_completes_when_groups_are_healthy() {
    let mut h = cluster(2);
    let job = register(&mut h, mock_job("web"));
    let d = h.plans[0].deployment.clone().unwrap();
    let mut healthy = h.state.deployment(&d.id).unwrap().clone();
    healthy
        .task_groups
        .as_mut()
        .unwrap()
        .get_mut("web")
        .unwrap()
        .healthy_allocs = 10;
    h.state.upsert_deployment(healthy);
    let mut eval = mock_eval(&job, "watch");
    eval.triggered_by = eval_trigger::DEPLOYMENT_WATCHER.into();
    h.process(&eval).unwrap();
    let plan = h.plans.last().unwrap();
    assert_eq!(plan.deployment_updates.len(), 1);
    assert_eq!(plan.deployment_updates[0].status, "successful");
    assert_eq!(
        plan.deployment_updates[0].status_description,
        "Deployment completed successfully"
    );
    assert_eq!(h.state.deployment(&d.id).unwrap().status, "successful");
}

#[test]
fn paused_deployment_holds_new_placements_but_replaces_lost() {
    let mut h = cluster(3);
    let job = register(&mut h, mock_job("web"));
    let d = h.plans[0].deployment.clone().unwrap();
    let mut paused = h.state.deployment(&d.id).unwrap().clone();
    paused.status = "paused".into();
    h.state.upsert_deployment(paused);
    // One allocation finished (needs a new one, held while paused) and a node died (its
    // allocations are lost and replaced all the same).
    let live = h.live_allocs("default", "web");
    let done = live[0].id.clone();
    let dead_node = live
        .iter()
        .find(|a| a.node_id != live[0].node_id)
        .unwrap()
        .node_id
        .clone();
    let lost: Vec<String> = live
        .iter()
        .filter(|a| a.node_id == dead_node)
        .map(|a| a.id.clone())
        .collect();
    h.set_client_status(&done, "complete");
    let mut n = h.state.node(&dead_node).cloned().unwrap();
    n.status = NODE_STATUS_DOWN.into();
    h.state.upsert_node(n);
    let mut eval = mock_eval(&job, "paused");
    eval.triggered_by = eval_trigger::NODE_UPDATE.into();
    h.process(&eval).unwrap();
    let live = h.live_allocs("default", "web");
    assert_eq!(
        live.len(),
        9,
        "the finished one is not replaced while paused"
    );
    assert_eq!(
        live.iter()
            .filter(|a| lost.contains(&a.previous_allocation))
            .count(),
        lost.len()
    );
}

#[test]
fn memory_max_is_reserved_only_with_oversubscription() {
    for enabled in [false, true] {
        let mut h = cluster(1);
        h.state.config.memory_oversubscription_enabled = enabled;
        let mut job = mock_job("web");
        job.task_groups.as_mut().unwrap()[0].count = 1;
        job.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0]
            .resources
            .as_mut()
            .unwrap()
            .memory_max_mb = 1024;
        register(&mut h, job);
        let a = &h.live_allocs("default", "web")[0];
        let mem = &a
            .allocated_resources
            .as_ref()
            .unwrap()
            .tasks
            .as_ref()
            .unwrap()["web"]
            .memory;
        assert_eq!(mem.memory_mb, 256);
        assert_eq!(mem.memory_max_mb, if enabled { 1024 } else { 0 });
    }
}
