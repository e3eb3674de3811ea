//! The scheduler end to end, over HTTP, with simulated nodes (tests/src/sim.rs): placements
//! with names, resources, ports and metrics; blocked evaluations and unblocking; constraints;
//! stops and replacements; lost nodes; rescheduling of failed allocations; drains; system
//! jobs; job stop and update. Runs on PostgreSQL, with the basic placement also on the
//! embedded store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::sim::{AllocStatus, SimConfig, Simulator};
use caravan_tests::*;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

/// A job of `type` with one group `g` of `count` tasks `t` (raw_exec, small asks) that runs
/// only in datacenter `dc`.
fn job(id: &str, job_type: &str, count: i64, dc: &str) -> Value {
    json!({
        "ID": id,
        "Type": job_type,
        "Datacenters": [dc],
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["1000"]},
                "Resources": {"CPU": 100, "MemoryMB": 64}
            }]
        }]
    })
}

async fn register(c: &impl Cluster, job: &Value) -> Value {
    let body = json!({ "Job": job }).to_string();
    let r = send(c.client(), api::Method::PUT, "/v1/jobs", &body)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "register: {}", r.text());
    r.json().unwrap()
}

/// The job's allocations once `done` holds for them (blocking queries, no sleeps).
async fn wait_allocs(
    c: &impl Cluster,
    job_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    let mut index = 0;
    loop {
        let path = format!("/v1/job/{job_id}/allocations?index={index}&wait=2s");
        let (v, meta) = get_json(c.client(), &path).await.unwrap();
        let allocs = v.as_array().cloned().unwrap_or_default();
        if done(&allocs) {
            return allocs;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "allocations of {job_id} never settled: {}",
            serde_json::to_string_pretty(&allocs).unwrap()
        );
        index = meta.last_index;
    }
}

/// Polls `path` until `done` holds for its JSON.
async fn wait_json(c: &impl Cluster, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    let mut index = 0;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (v, meta) = get_json(c.client(), &format!("{path}{sep}index={index}&wait=2s"))
            .await
            .unwrap();
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "{path} never settled: {v}");
        index = meta.last_index;
    }
}

fn live(allocs: &[Value]) -> Vec<&Value> {
    allocs
        .iter()
        .filter(|a| {
            a["DesiredStatus"] == "run"
                && !matches!(
                    a["ClientStatus"].as_str(),
                    Some("complete" | "failed" | "lost")
                )
        })
        .collect()
}

async fn alloc_doc(c: &impl Cluster, id: &str) -> Value {
    get_json(c.client(), &format!("/v1/allocation/{id}"))
        .await
        .unwrap()
        .0
}

/// Waits until the simulated node holding `alloc_id` has fetched it.
async fn sim_sees(sim: &Simulator, alloc_id: &str) {
    let start = Instant::now();
    while sim.alloc(alloc_id).is_none() {
        assert!(
            start.elapsed() < DEADLINE,
            "the simulator never saw {alloc_id}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sim_config(nodes: usize, dc: &str) -> SimConfig {
    SimConfig {
        datacenter: dc.to_owned(),
        ..SimConfig::new(nodes)
    }
}

async fn placements_have_names_resources_ports_and_metrics(c: &impl Cluster) {
    let sim = Simulator::start(c.rpc_addr(), sim_config(3, "dc-place"))
        .await
        .unwrap();
    let mut spec = job("web", "service", 3, "dc-place");
    spec["TaskGroups"][0]["Networks"] = json!([{
        "DynamicPorts": [{"Label": "http", "To": 8080}],
        "ReservedPorts": [{"Label": "admin", "Value": 9090}]
    }]);
    let resp = register(c, &spec).await;
    assert!(
        resp["EvalID"].as_str().is_some_and(|s| s.len() == 36),
        "{resp}"
    );
    let allocs = wait_allocs(c, "web", |a| a.len() == 3).await;
    let mut names: Vec<&str> = allocs.iter().map(|a| a["Name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["web.g[0]", "web.g[1]", "web.g[2]"]);
    // The static port forces one allocation per node.
    let mut nodes: Vec<&str> = allocs
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(
        nodes.len(),
        3,
        "a static port is never used twice on a node"
    );
    for stub in &allocs {
        assert_eq!(stub["EvalID"], resp["EvalID"]);
        assert_eq!(stub["JobVersion"], 0);
        assert_eq!(stub["JobType"], "service");
        let a = alloc_doc(c, stub["ID"].as_str().unwrap()).await;
        assert_eq!(a["Job"]["ID"], "web", "the allocation carries its job");
        assert_eq!(a["DesiredStatus"], "run");
        let task = &a["AllocatedResources"]["Tasks"]["t"];
        assert_eq!(task["Cpu"]["CpuShares"], 100);
        assert_eq!(task["Memory"]["MemoryMB"], 64);
        assert_eq!(a["AllocatedResources"]["Shared"]["DiskMB"], 300);
        let ports = a["AllocatedResources"]["Shared"]["Ports"]
            .as_array()
            .unwrap();
        let port = |label: &str| {
            ports
                .iter()
                .find(|p| p["Label"] == label)
                .unwrap_or_else(|| panic!("no port {label}: {ports:?}"))
        };
        let http = port("http")["Value"].as_i64().unwrap();
        assert!((20000..=32000).contains(&http), "dynamic port {http}");
        assert_eq!(port("http")["To"], 8080);
        assert_eq!(port("admin")["Value"], 9090);
        let m = &a["Metrics"];
        assert!(m["NodesEvaluated"].as_i64().unwrap() >= 1, "{m}");
        assert_eq!(m["NodesAvailable"]["dc-place"], 3, "{m}");
        assert!(
            m["ScoreMetaData"].as_array().is_some_and(|s| !s.is_empty()),
            "{m}"
        );
        assert!(m["AllocationTime"].as_i64().unwrap() > 0, "{m}");
    }
    // The evaluation completed and the summary counts the allocations as starting.
    let eval_id = resp["EvalID"].as_str().unwrap();
    let eval = wait_json(c, &format!("/v1/evaluation/{eval_id}"), |e| {
        e["Status"] == "complete"
    })
    .await;
    assert_eq!(eval["QueuedAllocations"]["g"], 0);
    let summary = get_json(c.client(), "/v1/job/web/summary").await.unwrap().0;
    assert_eq!(summary["Summary"]["g"]["Starting"], 3, "{summary}");
    // /v1/allocations lists them; the evaluation's allocations are the same.
    let (listed, _) = get_json(
        c.client(),
        "/v1/allocations?filter=JobID%20%3D%3D%20%22web%22",
    )
    .await
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let (by_eval, _) = get_json(c.client(), &format!("/v1/evaluation/{eval_id}/allocations"))
        .await
        .unwrap();
    assert_eq!(by_eval.as_array().unwrap().len(), 3);
    // Reported running, the summary follows.
    let ids: Vec<String> = allocs
        .iter()
        .map(|a| a["ID"].as_str().unwrap().to_owned())
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for id in &ids {
        sim_sees(&sim, id).await;
    }
    sim.set_statuses(&ids, AllocStatus::Running).await.unwrap();
    wait_json(c, "/v1/job/web/summary", |s| {
        s["Summary"]["g"]["Running"] == 3
    })
    .await;
    let job = get_json(c.client(), "/v1/job/web").await.unwrap().0;
    assert_eq!(job["Status"], "running");
}

#[tokio::test]
async fn placements_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    placements_have_names_resources_ports_and_metrics(&c).await;
}

#[tokio::test]
async fn placements_on_sqlite() {
    let c = DevCluster::start().await.unwrap();
    placements_have_names_resources_ports_and_metrics(&c).await;
}

#[tokio::test]
async fn nothing_fits_blocks_until_capacity_appears() {
    let c = PgCluster::start().await.unwrap();
    let small = SimConfig {
        memory_mb: 1000,
        ..sim_config(1, "dc-block")
    };
    let _first = Simulator::start(c.rpc_addr(), small.clone()).await.unwrap();
    let mut spec = job("big", "service", 3, "dc-block");
    spec["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = json!(400);
    let resp = register(&c, &spec).await;
    let eval_id = resp["EvalID"].as_str().unwrap();
    let eval = wait_json(&c, &format!("/v1/evaluation/{eval_id}"), |e| {
        e["Status"] == "complete"
    })
    .await;
    assert_eq!(eval["QueuedAllocations"]["g"], 1, "{eval}");
    let failed = &eval["FailedTGAllocs"]["g"];
    assert_eq!(failed["DimensionExhausted"]["memory"], 1, "{failed}");
    assert!(failed["NodesExhausted"].as_i64().unwrap() >= 1, "{failed}");
    let blocked = eval["BlockedEval"].as_str().unwrap();
    assert_eq!(blocked.len(), 36, "{eval}");
    let b = get_json(c.client(), &format!("/v1/evaluation/{blocked}"))
        .await
        .unwrap()
        .0;
    assert_eq!(b["Status"], "blocked");
    assert_eq!(b["PreviousEval"], eval_id);
    wait_allocs(&c, "big", |a| a.len() == 2).await;
    let summary = get_json(c.client(), "/v1/job/big/summary").await.unwrap().0;
    assert_eq!(summary["Summary"]["g"]["Queued"], 1, "{summary}");
    // A new node: the blocked evaluation runs again and places the third.
    let _second = Simulator::start(c.rpc_addr(), small).await.unwrap();
    wait_allocs(&c, "big", |a| a.len() == 3).await;
    wait_json(&c, "/v1/job/big/summary", |s| {
        s["Summary"]["g"]["Queued"] == 0
    })
    .await;
    wait_json(&c, &format!("/v1/evaluation/{blocked}"), |e| {
        e["Status"] == "complete"
    })
    .await;
}

#[tokio::test]
async fn constraints_and_drivers_filter_nodes() {
    let c = PgCluster::start().await.unwrap();
    let rack = |r: &str, n: usize| SimConfig {
        meta: [("rack".to_owned(), r.to_owned())].into(),
        ..sim_config(n, "dc-cons")
    };
    let _r1 = Simulator::start(c.rpc_addr(), rack("r1", 3)).await.unwrap();
    let r2 = Simulator::start(c.rpc_addr(), rack("r2", 1)).await.unwrap();
    let mut spec = job("pinned", "service", 4, "dc-cons");
    spec["Constraints"] = json!([{"LTarget": "${meta.rack}", "Operand": "=", "RTarget": "r2"}]);
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "pinned", |a| a.len() == 4).await;
    let r2_nodes = r2.node_ids();
    for a in &allocs {
        assert!(r2_nodes.iter().any(|n| a["NodeID"] == n.as_str()), "{a}");
    }
    let a = alloc_doc(&c, allocs[0]["ID"].as_str().unwrap()).await;
    // One feasible node: the scheduler looked at all four and filtered three (nodes of a
    // class found ineligible once are filtered as such).
    let filtered = a["Metrics"]["ConstraintFiltered"].as_object().unwrap();
    assert_eq!(
        filtered.values().map(|v| v.as_i64().unwrap()).sum::<i64>(),
        3,
        "{filtered:?}"
    );
    assert!(
        filtered
            .keys()
            .all(|k| k == "${meta.rack} = r2" || k == "computed class ineligible"),
        "{filtered:?}"
    );
    // Regexp and version operators.
    let mut spec = job("regexp", "batch", 1, "dc-cons");
    spec["Constraints"] = json!([
        {"LTarget": "${meta.rack}", "Operand": "regexp", "RTarget": "^r[1]$"},
        {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"}
    ]);
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "regexp", |a| a.len() == 1).await;
    assert!(!r2_nodes.iter().any(|n| allocs[0]["NodeID"] == n.as_str()));
    // A driver no node has: nothing is placed, the metric says why.
    let mut spec = job("nodriver", "service", 1, "dc-cons");
    spec["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("no-such-driver");
    let resp = register(&c, &spec).await;
    let eval_id = resp["EvalID"].as_str().unwrap();
    let eval = wait_json(&c, &format!("/v1/evaluation/{eval_id}"), |e| {
        e["Status"] == "complete"
    })
    .await;
    let failed = &eval["FailedTGAllocs"]["g"];
    let filtered = failed["ConstraintFiltered"].as_object().unwrap();
    assert!(
        filtered.keys().any(|k| k.contains("missing drivers")),
        "{failed}"
    );
}

#[tokio::test]
async fn stopped_allocation_is_replaced_and_linked() {
    let c = PgCluster::start().await.unwrap();
    let _sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-stop"))
        .await
        .unwrap();
    register(&c, &job("svc", "service", 1, "dc-stop")).await;
    let allocs = wait_allocs(&c, "svc", |a| a.len() == 1).await;
    let old = allocs[0]["ID"].as_str().unwrap().to_owned();
    let r = post(c.client(), &format!("/v1/allocation/{old}/stop"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json().unwrap();
    assert_eq!(body["EvalID"].as_str().unwrap().len(), 36);
    assert!(body["Index"].as_u64().unwrap() > 0);
    let allocs = wait_allocs(&c, "svc", |a| a.len() == 2).await;
    let new = allocs.iter().find(|a| a["ID"] != old.as_str()).unwrap();
    let new_doc = alloc_doc(&c, new["ID"].as_str().unwrap()).await;
    assert_eq!(new_doc["PreviousAllocation"], old.as_str());
    let old_doc = alloc_doc(&c, &old).await;
    assert_eq!(old_doc["NextAllocation"], new["ID"]);
    assert_eq!(old_doc["DesiredStatus"], "stop");
    assert_eq!(old_doc["DesiredTransition"]["Migrate"], true);
    // Unknown and malformed allocations.
    let r = post(
        c.client(),
        "/v1/allocation/00000000-0000-0000-0000-000000000000/stop",
        "",
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.text()),
        (404, "allocation not found".to_owned())
    );
    let r = c
        .client()
        .get(
            "/v1/allocation/00000000-0000-0000-0000-000000000000",
            &QueryOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.text()), (404, "alloc not found".to_owned()));
    let r = post(c.client(), "/v1/allocation/xyz/stop", "")
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn lost_node_allocations_are_replaced_elsewhere() {
    let c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"], &[])
        .await
        .unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-lost"))
        .await
        .unwrap();
    register(&c, &job("keep", "service", 1, "dc-lost")).await;
    let allocs = wait_allocs(&c, "keep", |a| a.len() == 1).await;
    let first = allocs[0].clone();
    sim.stop_heartbeats(first["NodeID"].as_str().unwrap())
        .unwrap();
    let allocs = wait_allocs(&c, "keep", |a| live(a).len() == 1 && a.len() == 2).await;
    let lost = allocs.iter().find(|a| a["ID"] == first["ID"]).unwrap();
    assert_eq!(lost["ClientStatus"], "lost", "{lost}");
    assert_eq!(lost["DesiredStatus"], "stop");
    let replacement = allocs.iter().find(|a| a["ID"] != first["ID"]).unwrap();
    assert_ne!(replacement["NodeID"], first["NodeID"]);
    let doc = alloc_doc(&c, replacement["ID"].as_str().unwrap()).await;
    assert_eq!(doc["PreviousAllocation"], first["ID"]);
}

#[tokio::test]
async fn failed_allocations_follow_the_reschedule_policy() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-resched"))
        .await
        .unwrap();
    let mut spec = job("flaky", "batch", 1, "dc-resched");
    spec["TaskGroups"][0]["ReschedulePolicy"] = json!({
        "Attempts": 1, "Interval": 3_600_000_000_000_i64, "Delay": 5_000_000_000_i64,
        "DelayFunction": "constant", "MaxDelay": 0, "Unlimited": false
    });
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "flaky", |a| a.len() == 1).await;
    let first = allocs[0]["ID"].as_str().unwrap().to_owned();
    sim_sees(&sim, &first).await;
    sim.set_status(&first, AllocStatus::Failed).await.unwrap();
    // After the delay a replacement carries the reschedule history.
    let allocs = wait_allocs(&c, "flaky", |a| a.len() == 2).await;
    let second = allocs.iter().find(|a| a["ID"] != first.as_str()).unwrap();
    let doc = alloc_doc(&c, second["ID"].as_str().unwrap()).await;
    assert_eq!(doc["PreviousAllocation"], first.as_str());
    let events = doc["RescheduleTracker"]["Events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{doc}");
    assert_eq!(events[0]["PrevAllocID"], first.as_str());
    let first_doc = alloc_doc(&c, &first).await;
    assert_eq!(first_doc["NextAllocation"], second["ID"]);
    let evals = get_json(c.client(), "/v1/job/flaky/evaluations")
        .await
        .unwrap()
        .0;
    assert!(
        evals
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["TriggeredBy"] == "alloc-failure"),
        "{evals}"
    );
    // The one allowed attempt is used: another failure stays failed.
    sim.set_status(second["ID"].as_str().unwrap(), AllocStatus::Failed)
        .await
        .unwrap();
    wait_json(&c, "/v1/job/flaky/summary", |s| {
        s["Summary"]["g"]["Failed"] == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let allocs = get_json(c.client(), "/v1/job/flaky/allocations")
        .await
        .unwrap()
        .0;
    assert_eq!(
        allocs.as_array().unwrap().len(),
        2,
        "no third attempt: {allocs}"
    );
}

#[tokio::test]
async fn drain_moves_allocations_within_max_parallel() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            auto_run: true,
            ..sim_config(1, "dc-drain")
        },
    )
    .await
    .unwrap();
    let mut spec = job("movable", "service", 3, "dc-drain");
    spec["TaskGroups"][0]["Migrate"] = json!({"MaxParallel": 1});
    register(&c, &spec).await;
    wait_allocs(&c, "movable", |a| {
        a.iter().filter(|x| x["ClientStatus"] == "running").count() == 3
    })
    .await;
    let node = sim.node_ids()[0].clone();
    let target = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            auto_run: true,
            ..sim_config(1, "dc-drain")
        },
    )
    .await
    .unwrap();
    let r = post(
        c.client(),
        &format!("/v1/node/{node}/drain"),
        &json!({"DrainSpec": {"Deadline": 3_600_000_000_000_i64}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // One at a time: never more than one allocation marked and still running on the node.
    let start = Instant::now();
    loop {
        let allocs = get_json(c.client(), "/v1/job/movable/allocations")
            .await
            .unwrap()
            .0;
        let allocs = allocs.as_array().unwrap();
        let migrating = allocs
            .iter()
            .filter(|a| {
                a["NodeID"] == node.as_str()
                    && a["DesiredTransition"]["Migrate"] == true
                    && a["ClientStatus"] == "running"
            })
            .count();
        assert!(migrating <= 1, "max_parallel 1 exceeded: {allocs:?}");
        let moved = allocs
            .iter()
            .filter(|a| {
                target.node_ids().iter().any(|n| a["NodeID"] == n.as_str())
                    && a["ClientStatus"] == "running"
            })
            .count();
        if moved == 3 {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "drain never finished: {allocs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let doc = wait_json(&c, &format!("/v1/node/{node}"), |n| {
        n["DrainStrategy"].is_null()
    })
    .await;
    assert_eq!(
        doc["LastDrain"]["Status"], "complete",
        "{}",
        doc["LastDrain"]
    );
    assert_eq!(doc["SchedulingEligibility"], "ineligible");
}

#[tokio::test]
async fn ineligible_nodes_keep_their_allocations_but_get_no_new_ones() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(1, "dc-elig"))
        .await
        .unwrap();
    register(&c, &job("stay", "service", 1, "dc-elig")).await;
    wait_allocs(&c, "stay", |a| a.len() == 1).await;
    let node = sim.node_ids()[0].clone();
    let r = post(
        c.client(),
        &format!("/v1/node/{node}/eligibility"),
        r#"{"Eligibility": "ineligible"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let resp = register(&c, &job("stay", "service", 2, "dc-elig")).await;
    let eval_id = resp["EvalID"].as_str().unwrap();
    let eval = wait_json(&c, &format!("/v1/evaluation/{eval_id}"), |e| {
        e["Status"] == "complete"
    })
    .await;
    assert_eq!(eval["QueuedAllocations"]["g"], 1, "{eval}");
    let allocs = get_json(c.client(), "/v1/job/stay/allocations")
        .await
        .unwrap()
        .0;
    assert_eq!(live(allocs.as_array().unwrap()).len(), 1, "{allocs}");
}

#[tokio::test]
async fn system_jobs_run_one_allocation_per_node() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(3, "dc-sys"))
        .await
        .unwrap();
    let mut spec = job("agentd", "system", 1, "dc-sys");
    spec["TaskGroups"][0]
        .as_object_mut()
        .unwrap()
        .remove("Count");
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "agentd", |a| a.len() == 3).await;
    let mut nodes: Vec<&str> = allocs
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap())
        .collect();
    nodes.sort();
    let mut want: Vec<String> = sim.node_ids();
    want.sort();
    assert_eq!(nodes, want);
    // A new node gets one too.
    let _more = Simulator::start(c.rpc_addr(), sim_config(1, "dc-sys"))
        .await
        .unwrap();
    wait_allocs(&c, "agentd", |a| a.len() == 4).await;
}

#[tokio::test]
async fn job_stop_and_update_change_allocations() {
    let c = PgCluster::start().await.unwrap();
    let _sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-upd"))
        .await
        .unwrap();
    register(&c, &job("evolve", "service", 2, "dc-upd")).await;
    let v0 = wait_allocs(&c, "evolve", |a| a.len() == 2).await;
    // A task change is a destructive update: new allocations for version 1.
    let mut spec = job("evolve", "service", 2, "dc-upd");
    spec["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = json!(["2000"]);
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "evolve", |a| {
        live(a).len() == 2 && live(a).iter().all(|x| x["JobVersion"] == 1)
    })
    .await;
    for old in &v0 {
        let doc = allocs.iter().find(|a| a["ID"] == old["ID"]).unwrap();
        assert_eq!(doc["DesiredStatus"], "stop", "{doc}");
    }
    // Scale down stops the highest index.
    let mut spec = job("evolve", "service", 1, "dc-upd");
    spec["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = json!(["2000"]);
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "evolve", |a| live(a).len() == 1).await;
    assert_eq!(live(&allocs)[0]["Name"], "evolve.g[0]");
    // Stop: everything stops, the job is dead once its allocations are.
    let r = send(c.client(), api::Method::DELETE, "/v1/job/evolve", "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_allocs(&c, "evolve", |a| live(a).is_empty()).await;
}

#[tokio::test]
async fn allocation_list_parameters_and_bad_input() {
    let c = PgCluster::start().await.unwrap();
    let _sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-list"))
        .await
        .unwrap();
    register(&c, &job("lister", "service", 5, "dc-list")).await;
    let allocs = wait_allocs(&c, "lister", |a| a.len() == 5).await;
    // Pagination walks every allocation once, in creation order.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path = format!("/v1/allocations?per_page=2&next_token={token}");
        let (page, meta) = get_json(c.client(), &path).await.unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|a| a["ID"].as_str().unwrap().to_owned()),
        );
        if meta.next_token.is_empty() {
            break;
        }
        token = meta.next_token;
    }
    assert_eq!(seen.len(), 5);
    let (rev, _) = get_json(c.client(), "/v1/allocations?reverse=true")
        .await
        .unwrap();
    let rev: Vec<&str> = rev
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ID"].as_str().unwrap())
        .collect();
    let mut fwd: Vec<&str> = seen.iter().map(String::as_str).collect();
    fwd.reverse();
    assert_eq!(rev, fwd);
    // Prefix, resources, task_states, namespace.
    let id = allocs[0]["ID"].as_str().unwrap();
    let (p, _) = get_json(c.client(), &format!("/v1/allocations?prefix={}", &id[..4]))
        .await
        .unwrap();
    assert!(p.as_array().unwrap().iter().any(|a| a["ID"] == id));
    let (r, _) = get_json(
        c.client(),
        "/v1/allocations?resources=true&task_states=false",
    )
    .await
    .unwrap();
    assert!(r[0]["AllocatedResources"].is_object(), "{}", r[0]);
    assert!(r[0]["TaskStates"].is_null());
    let (r, _) = get_json(c.client(), "/v1/allocations").await.unwrap();
    assert!(r[0].get("AllocatedResources").is_none(), "{}", r[0]);
    let (all, _) = get_json(c.client(), "/v1/allocations?namespace=*")
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5);
    let (other, _) = get_json(c.client(), "/v1/allocations?namespace=other")
        .await
        .unwrap();
    assert_eq!(other.as_array().unwrap().len(), 0);
    for (path, want) in [
        ("/v1/allocations?per_page=-1", "per_page"),
        ("/v1/allocations?per_page=abc", "per_page"),
        ("/v1/allocations?prefix=abc", "even length"),
        ("/v1/allocations?resources=maybe", "resources"),
        (
            "/v1/allocations?filter=ID%20%3D%3D",
            "failed to create result paginator",
        ),
        ("/v1/allocation/xyz", "UUID must be 36 characters"),
    ] {
        let r = c.client().get(path, &QueryOptions::new()).await.unwrap();
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(want), "{path}: {}", r.text());
    }
    // A garbage next_token is a position like any other: the walk starts after it.
    let (g, _) = get_json(c.client(), "/v1/allocations?next_token=zzzz")
        .await
        .unwrap();
    assert!(g.as_array().is_some());
    // The node's allocations are real now.
    let node = allocs[0]["NodeID"].as_str().unwrap();
    let (on_node, _) = get_json(c.client(), &format!("/v1/node/{node}/allocations"))
        .await
        .unwrap();
    assert!(
        on_node
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["NodeID"] == node && a["Job"]["ID"] == "lister")
    );
}

#[tokio::test]
async fn service_jobs_with_an_update_block_get_a_deployment() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-deploy"))
        .await
        .unwrap();
    let mut spec = job("rolling", "service", 2, "dc-deploy");
    spec["Update"] = json!({"MaxParallel": 1, "MinHealthyTime": 1_000_000_000_i64});
    register(&c, &spec).await;
    let allocs = wait_allocs(&c, "rolling", |a| a.len() == 2).await;
    let d = wait_json(&c, "/v1/job/rolling/deployment", |d| d.is_object()).await;
    let id = d["ID"].as_str().unwrap().to_owned();
    assert_eq!(d["Status"], "running", "{d}");
    assert_eq!(d["JobVersion"], 0);
    assert_eq!(d["TaskGroups"]["g"]["DesiredTotal"], 2, "{d}");
    assert_eq!(d["TaskGroups"]["g"]["PlacedAllocs"], 2, "{d}");
    for a in &allocs {
        let doc = alloc_doc(&c, a["ID"].as_str().unwrap()).await;
        assert_eq!(doc["DeploymentID"], id.as_str());
    }
    // What the client reports of the allocation's health is kept with it.
    let first = allocs[0]["ID"].as_str().unwrap();
    sim_sees(&sim, first).await;
    sim.set_status(first, AllocStatus::Running).await.unwrap();
    let doc = wait_json(&c, &format!("/v1/allocation/{first}"), |a| {
        a["ClientStatus"] == "running"
    })
    .await;
    assert_eq!(
        doc["DeploymentStatus"]["Healthy"], true,
        "{}",
        doc["DeploymentStatus"]
    );
    // The deployment endpoints.
    let (one, _) = get_json(c.client(), &format!("/v1/deployment/{id}"))
        .await
        .unwrap();
    assert_eq!(one["ID"], id.as_str());
    let (list, meta) = get_json(c.client(), "/v1/deployments").await.unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["ID"] == id.as_str())
    );
    assert!(meta.last_index >= 1);
    let (by_prefix, _) = get_json(c.client(), &format!("/v1/deployments?prefix={}", &id[..4]))
        .await
        .unwrap();
    assert_eq!(by_prefix[0]["ID"], id.as_str());
    let (its_allocs, _) = get_json(c.client(), &format!("/v1/deployment/allocations/{id}"))
        .await
        .unwrap();
    assert_eq!(its_allocs.as_array().unwrap().len(), 2);
    let (job_deps, _) = get_json(c.client(), "/v1/job/rolling/deployments")
        .await
        .unwrap();
    assert_eq!(job_deps.as_array().unwrap().len(), 1);
    for (path, status) in [
        ("/v1/deployment/00000000-0000-0000-0000-000000000000", 404),
        ("/v1/deployment/xyz", 400),
        ("/v1/deployments?prefix=abc", 400),
        ("/v1/deployments?per_page=-5", 400),
    ] {
        let r = c.client().get(path, &QueryOptions::new()).await.unwrap();
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
    // A batch job gets none.
    register(&c, &job("oneshot", "batch", 1, "dc-deploy")).await;
    wait_allocs(&c, "oneshot", |a| a.len() == 1).await;
    let (none, _) = get_json(c.client(), "/v1/job/oneshot/deployment")
        .await
        .unwrap();
    assert!(none.is_null(), "{none}");
}

#[tokio::test]
async fn drain_deadline_marks_every_allocation() {
    let c = PgCluster::start().await.unwrap();
    // This node never reports its allocations stopped: the one migration under way never
    // finishes, so only the deadline moves the rest.
    let stuck = Simulator::start(c.rpc_addr(), sim_config(1, "dc-deadline"))
        .await
        .unwrap();
    let mut spec = job("pinned", "service", 3, "dc-deadline");
    spec["TaskGroups"][0]["Migrate"] = json!({"MaxParallel": 1});
    register(&c, &spec).await;
    wait_allocs(&c, "pinned", |a| a.len() == 3).await;
    let node = stuck.node_ids()[0].clone();
    let _target = Simulator::start(c.rpc_addr(), sim_config(1, "dc-deadline"))
        .await
        .unwrap();
    let r = post(
        c.client(),
        &format!("/v1/node/{node}/drain"),
        &json!({"DrainSpec": {"Deadline": 2_000_000_000_i64}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let marked = |a: &[Value]| {
        a.iter()
            .filter(|x| x["NodeID"] == node.as_str() && x["DesiredTransition"]["Migrate"] == true)
            .count()
    };
    // Before the deadline: one at a time.
    let allocs = wait_allocs(&c, "pinned", |a| marked(a) >= 1).await;
    assert_eq!(marked(&allocs), 1, "max_parallel 1 before the deadline");
    // At the deadline: all of them.
    wait_allocs(&c, "pinned", |a| marked(a) == 3).await;
}

#[tokio::test]
async fn purged_node_allocations_are_lost_and_replaced() {
    let c = PgCluster::start().await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), sim_config(2, "dc-purge"))
        .await
        .unwrap();
    register(&c, &job("survivor", "service", 1, "dc-purge")).await;
    let allocs = wait_allocs(&c, "survivor", |a| a.len() == 1).await;
    let first = allocs[0].clone();
    let node = first["NodeID"].as_str().unwrap().to_owned();
    // Silence the node first, so it does not register again after the purge.
    sim.stop_heartbeats(&node).unwrap();
    let r = post(c.client(), &format!("/v1/node/{node}/purge"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let allocs = wait_allocs(&c, "survivor", |a| a.len() == 2 && live(a).len() == 1).await;
    let lost = allocs.iter().find(|a| a["ID"] == first["ID"]).unwrap();
    assert_eq!(lost["ClientStatus"], "lost", "{lost}");
    let replacement = live(&allocs)[0].clone();
    assert_ne!(replacement["NodeID"], node.as_str());
}
