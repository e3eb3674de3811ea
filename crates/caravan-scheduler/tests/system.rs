//! The system and sysbatch schedulers: one allocation per feasible ready node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use caravan_scheduler::State;
use caravan_scheduler::testing::*;
use caravan_structs::{Constraint, Job, Node, TASK_STATE_DEAD, TaskState};

fn cluster(h: &mut Harness, n: usize) {
    for i in 0..n {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
}

fn run(h: &mut Harness, job: &Job, id: &str) {
    let mut e = mock_eval(job, id);
    e.triggered_by = "node-update".into();
    h.process(&e).unwrap();
}

fn nodes_of(h: &Harness, job: &str) -> BTreeSet<String> {
    h.live_allocs("default", job)
        .iter()
        .map(|a| a.node_id.clone())
        .collect()
}

#[test]
fn one_alloc_per_ready_node_in_the_datacenters() {
    let mut h = Harness::new();
    cluster(&mut h, 3);
    let mut ineligible = mock_node("inel");
    ineligible.scheduling_eligibility = "ineligible".into();
    h.state.upsert_node(ineligible);
    let mut elsewhere = mock_node("far");
    elsewhere.datacenter = "dc9".into();
    h.state.upsert_node(elsewhere);
    let job = h.state.upsert_job(mock_system_job("agent"));
    run(&mut h, &job, "e1");
    assert_eq!(
        nodes_of(&h, "agent"),
        ["n0", "n1", "n2"].map(String::from).into()
    );
    for a in h.live_allocs("default", "agent") {
        assert_eq!(a.name, "agent.web[0]");
        assert_eq!(a.metrics.as_ref().unwrap().nodes_evaluated, 1);
        assert!(a.deployment_id.is_empty());
    }
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, "complete");
    assert_eq!(e.queued_allocations.as_ref().unwrap()["web"], 0);

    // A new node gets one; nothing else changes.
    h.state.upsert_node(mock_node("n3"));
    let before = h.plans.len();
    run(&mut h, &job, "e2");
    assert_eq!(h.plans.len(), before + 1);
    let plan = h.plans.last().unwrap();
    assert_eq!(plan.node_allocation.keys().collect::<Vec<_>>(), vec!["n3"]);
    assert!(plan.node_update.is_empty());
}

#[test]
fn down_nodes_lose_and_infeasible_nodes_stop() {
    let mut h = Harness::new();
    cluster(&mut h, 3);
    let mut job = mock_system_job("agent");
    job.constraints = Some(vec![Constraint {
        l_target: "${meta.role}".into(),
        operand: "!=".into(),
        r_target: "db".into(),
    }]);
    let job = h.state.upsert_job(job);
    run(&mut h, &job, "e1");
    assert_eq!(h.live_allocs("default", "agent").len(), 3);

    let mut down: Node = h.state.node("n0").cloned().unwrap();
    down.status = "down".into();
    h.state.upsert_node(down);
    let mut db: Node = h.state.node("n1").cloned().unwrap();
    db.meta.as_mut().unwrap().insert("role".into(), "db".into());
    db.set_computed_class();
    h.state.upsert_node(db);
    run(&mut h, &job, "e2");
    assert_eq!(nodes_of(&h, "agent"), ["n2"].map(String::from).into());
    let all = h.state.allocs_by_job("default", "agent");
    let lost = all.iter().find(|a| a.node_id == "n0").unwrap();
    assert_eq!(lost.client_status, "lost");
    assert_eq!(
        lost.desired_description,
        "alloc is lost since its node is down"
    );
    let gone = all.iter().find(|a| a.node_id == "n1").unwrap();
    assert_eq!(gone.desired_status, "stop");
    assert_eq!(
        gone.desired_description,
        "alloc not needed as node is tainted"
    );
    assert_eq!(all.len(), 3, "no replacements for system allocations");
}

#[test]
fn full_nodes_are_reported_but_do_not_block() {
    let mut h = Harness::new();
    cluster(&mut h, 2);
    let mut small = mock_node("small");
    small.node_resources.as_mut().unwrap().cpu.cpu_shares = 100;
    h.state.upsert_node(small);
    let mut filtered = mock_node("win");
    filtered
        .attributes
        .as_mut()
        .unwrap()
        .insert("kernel.name".into(), "windows".into());
    filtered.set_computed_class();
    h.state.upsert_node(filtered);
    let mut job = mock_system_job("agent");
    job.constraints = Some(vec![Constraint {
        l_target: "${attr.kernel.name}".into(),
        operand: "=".into(),
        r_target: "linux".into(),
    }]);
    let job = h.state.upsert_job(job);
    run(&mut h, &job, "e1");
    assert_eq!(nodes_of(&h, "agent"), ["n0", "n1"].map(String::from).into());
    let e = h.last_eval().unwrap();
    assert_eq!(e.status, "complete");
    let m = &e.failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.dimension_exhausted.as_ref().unwrap()["cpu"], 1);
    assert_eq!(m.coalesced_failures, 0);
    assert!(e.blocked_eval.is_empty());
    assert!(h.created_evals.is_empty());
    // The filtered node is not owed an allocation; the full one is.
    assert_eq!(e.queued_allocations.as_ref().unwrap()["web"], 1);
}

#[test]
fn job_updates_replace_or_update_in_place_on_the_same_node() {
    let mut h = Harness::new();
    cluster(&mut h, 2);
    let job = h.state.upsert_job(mock_system_job("agent"));
    run(&mut h, &job, "e1");
    let before: BTreeSet<String> = h
        .live_allocs("default", "agent")
        .iter()
        .map(|a| a.id.clone())
        .collect();

    let mut v2 = job.clone();
    v2.priority = 80;
    let v2 = h.state.upsert_job(v2);
    run(&mut h, &v2, "e2");
    let after: BTreeSet<String> = h
        .live_allocs("default", "agent")
        .iter()
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(before, after, "in place");
    assert!(
        h.live_allocs("default", "agent")
            .iter()
            .all(|a| a.job_version == 1)
    );

    let mut v3 = v2.clone();
    v3.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0].env =
        Some([("A".to_owned(), "1".to_owned())].into());
    let v3 = h.state.upsert_job(v3);
    run(&mut h, &v3, "e3");
    let live = h.live_allocs("default", "agent");
    assert_eq!(live.len(), 2);
    for a in &live {
        assert!(before.contains(&a.previous_allocation));
        let prev = h.state.alloc(&a.previous_allocation).unwrap();
        assert_eq!(prev.node_id, a.node_id);
        assert_eq!(
            prev.desired_description,
            "alloc is being updated due to job update"
        );
        assert_eq!(a.job_version, 2);
    }

    let mut stopped = v3.clone();
    stopped.stop = true;
    let stopped = h.state.upsert_job(stopped);
    run(&mut h, &stopped, "e4");
    assert!(h.live_allocs("default", "agent").is_empty());
}

#[test]
fn sysbatch_runs_once_per_version() {
    let mut h = Harness::new();
    cluster(&mut h, 2);
    let job = h.state.upsert_job(mock_sysbatch_job("sweep"));
    run(&mut h, &job, "e1");
    assert_eq!(h.live_allocs("default", "sweep").len(), 2);
    let placed: Vec<_> = h
        .live_allocs("default", "sweep")
        .into_iter()
        .cloned()
        .collect();
    for a in placed {
        let mut done = a;
        done.client_status = "complete".into();
        done.task_states = Some(
            [(
                "web".to_owned(),
                TaskState {
                    state: TASK_STATE_DEAD.into(),
                    ..Default::default()
                },
            )]
            .into(),
        );
        h.state.upsert_alloc(done);
    }
    let plans = h.plans.len();
    run(&mut h, &job, "e2");
    assert_eq!(
        h.plans.len(),
        plans,
        "completed sysbatch allocations are not run again"
    );
    assert!(h.live_allocs("default", "sweep").is_empty());

    // A new version runs again, once per node.
    let mut v2 = job.clone();
    v2.meta = Some([("run".to_owned(), "2".to_owned())].into());
    let v2 = h.state.upsert_job(v2);
    run(&mut h, &v2, "e3");
    let live = h.live_allocs("default", "sweep");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|a| !a.previous_allocation.is_empty()));

    // Plain system jobs do re-run a finished allocation.
    let mut h = Harness::new();
    cluster(&mut h, 1);
    let job = h.state.upsert_job(mock_system_job("agent"));
    run(&mut h, &job, "s1");
    let a = h.live_allocs("default", "agent")[0].id.clone();
    h.set_client_status(&a, "failed");
    run(&mut h, &job, "s2");
    let live = h.live_allocs("default", "agent");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].previous_allocation, a);
}
