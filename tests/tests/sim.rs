//! The node simulator (`caravan_tests::sim`) against a real server: its nodes register and
//! stay ready, go down when their heartbeats stop, register again when the server forgets
//! them, and run the allocations the scheduler places on them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::collections::BTreeMap;

use caravan_tests::sim::{AllocStatus, SimConfig, Simulator};
use caravan_tests::*;
use serde_json::{Value, json};

const HEARTBEAT_FLAGS: [&str; 4] = ["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"];

async fn status_of(c: &impl Cluster, id: &str) -> anyhow::Result<String> {
    Ok(c.client()
        .nodes()
        .info(id, &QueryOptions::new())
        .await?
        .0
        .status)
}

#[tokio::test]
async fn fifty_simulated_nodes_register_and_are_ready() {
    let c = DevCluster::start().await.unwrap();
    let sim = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            node_class: "sim".into(),
            meta: BTreeMap::from([("rack".into(), "r1".into())]),
            ..SimConfig::new(50)
        },
    )
    .await
    .unwrap();
    assert_eq!(sim.node_ids().len(), 50);

    let (nodes, _) = get_json(c.client(), "/v1/nodes").await.unwrap();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 51, "50 simulated + the dev agent's node");
    assert!(
        nodes.iter().all(|n| n["Status"] == "ready"),
        "{:?}",
        nodes.iter().map(|n| &n["Status"]).collect::<Vec<_>>()
    );
    let ids: Vec<&str> = nodes.iter().map(|n| n["ID"].as_str().unwrap()).collect();
    for id in sim.node_ids() {
        assert!(ids.contains(&id.as_str()), "{id} missing from /v1/nodes");
    }

    // A simulated node reads like a fingerprinted one.
    let node = node_doc(c.client(), &sim.node_ids()[7]).await.unwrap();
    assert_eq!(node["Status"], "ready");
    assert_eq!(node["SchedulingEligibility"], "eligible");
    assert_eq!(node["Datacenter"], "dc1");
    assert_eq!(node["NodeClass"], "sim");
    assert_eq!(node["NodePool"], "default");
    assert_eq!(node["Meta"]["rack"], "r1");
    assert_eq!(node["Attributes"]["kernel.name"], "linux");
    assert_eq!(node["Attributes"]["driver.raw_exec"], "1");
    assert_eq!(
        node["Attributes"]["unique.hostname"].as_str().unwrap(),
        node["Name"].as_str().unwrap()
    );
    assert!(node["Attributes"]["nomad.version"].is_string());
    assert_eq!(node["Drivers"]["raw_exec"]["Detected"], true);
    assert_eq!(node["Drivers"]["mock_driver"]["Healthy"], true);
    assert_eq!(node["NodeResources"]["Cpu"]["CpuShares"], 4000);
    assert_eq!(node["NodeResources"]["Memory"]["MemoryMB"], 8192);
    assert_eq!(node["NodeResources"]["MinDynamicPort"], 20000);
    assert!(
        node["NodeResources"]["Networks"][0]["IP"]
            .as_str()
            .unwrap()
            .starts_with("10.")
    );
    let msgs = event_messages(c.client(), &sim.node_ids()[7])
        .await
        .unwrap();
    assert_eq!(msgs[0].0, "Node registered");

    let stats = sim.stats();
    assert_eq!(stats.registrations, 50);
    assert!(stats.heartbeats >= 50, "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_node_whose_heartbeats_stop_goes_down_and_comes_back() {
    let c = DevCluster::start_with(&HEARTBEAT_FLAGS).await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), SimConfig::new(5))
        .await
        .unwrap();
    let ids = sim.node_ids();
    let silent = &ids[2];
    sim.stop_heartbeats(silent).unwrap();
    wait_for("the silent node to be marked down", WAIT, || async {
        Ok(status_of(&c, silent).await? == "down")
    })
    .await
    .unwrap();
    let events = event_messages(c.client(), silent).await.unwrap();
    assert_eq!(events.last().unwrap().0, "Node heartbeat missed");
    // The others kept heartbeating within their 1-2 s TTLs.
    for id in ids.iter().filter(|id| *id != silent) {
        assert_eq!(status_of(&c, id).await.unwrap(), "ready", "{id}");
    }

    sim.resume_heartbeats(silent).unwrap();
    wait_for("the node to be ready again", WAIT, || async {
        Ok(status_of(&c, silent).await? == "ready")
    })
    .await
    .unwrap();
    let stats = sim.stats();
    assert_eq!(stats.reregistrations, 0, "{stats:?}");
}

#[tokio::test]
async fn a_node_the_server_forgot_registers_again() {
    let c = DevCluster::start_with(&HEARTBEAT_FLAGS).await.unwrap();
    let sim = Simulator::start(c.rpc_addr(), SimConfig::new(3))
        .await
        .unwrap();
    let id = sim.node_ids()[0].clone();
    let r = send(
        c.client(),
        api::Method::PUT,
        &format!("/v1/node/{id}/purge"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for("the purged node to register again", WAIT, || async {
        let r = c
            .client()
            .get(&format!("/v1/node/{id}"), &QueryOptions::new())
            .await?;
        Ok(r.status == 200 && status_of(&c, &id).await? == "ready")
    })
    .await
    .unwrap();
    assert!(sim.stats().reregistrations >= 1, "{:?}", sim.stats());
}

// ---------------------------------------------------------------------------------------------
// With the scheduler: allocations on simulated nodes
// ---------------------------------------------------------------------------------------------

/// A service job of `count` `raw_exec` tasks in datacenter `dc` (the simulated nodes' own, so
/// nothing lands on the dev agent's node).
fn service_job(id: &str, dc: &str, count: u64) -> Value {
    json!({"Job": {
        "ID": id,
        "Name": id,
        "Type": "service",
        "Datacenters": [dc],
        "TaskGroups": [{
            "Name": "web",
            "Count": count,
            "Tasks": [{
                "Name": "server",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["3600"]},
                "Resources": {"CPU": 100, "MemoryMB": 64},
            }],
        }],
    }})
}

async fn register_job(c: &impl Cluster, job: &Value) {
    let r = send(c.client(), api::Method::PUT, "/v1/jobs", &job.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The job summary of group `web`: `(Queued, Starting, Running, Complete, Failed, Lost)`.
async fn web_summary(c: &impl Cluster, job: &str) -> anyhow::Result<[u64; 6]> {
    let (s, _) = get_json(c.client(), &format!("/v1/job/{job}/summary")).await?;
    let g = &s["Summary"]["web"];
    let n = |k: &str| g[k].as_u64().unwrap_or(0);
    Ok([
        n("Queued"),
        n("Starting"),
        n("Running"),
        n("Complete"),
        n("Failed"),
        n("Lost"),
    ])
}

#[tokio::test]
async fn auto_run_reports_every_placed_alloc_running() {
    let c = DevCluster::start().await.unwrap();
    let sim = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            datacenter: "sim".into(),
            auto_run: true,
            ..SimConfig::new(5)
        },
    )
    .await
    .unwrap();
    register_job(&c, &service_job("web", "sim", 10)).await;
    wait_for(
        "10 allocations running on the simulated nodes",
        WAIT,
        || async {
            let allocs = sim.allocs();
            Ok(allocs.len() == 10 && allocs.iter().all(|a| a.client_status == "running"))
        },
    )
    .await
    .unwrap();
    wait_for("the summary to count 10 running", WAIT, || async {
        Ok(web_summary(&c, "web").await? == [0, 0, 10, 0, 0, 0])
    })
    .await
    .unwrap();
    // The server has what the node reported.
    let a = &sim.allocs()[0];
    assert!(sim.node_ids().contains(&a.node_id));
    let (doc, _) = get_json(c.client(), &format!("/v1/allocation/{}", a.id))
        .await
        .unwrap();
    assert_eq!(doc["ClientStatus"], "running");
    let task = &doc["TaskStates"]["server"];
    assert_eq!(task["State"], "running");
    assert_eq!(task["Failed"], false);
    let events: Vec<&str> = task["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["Received", "Task Setup", "Started"]);
    parse_rfc3339(task["StartedAt"].as_str().unwrap()).unwrap();
    assert_eq!(sim.stats().update_errors, 0);
}

#[tokio::test]
async fn statuses_set_by_hand_reach_the_server() {
    let c = DevCluster::start().await.unwrap();
    let sim = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            datacenter: "sim".into(),
            ..SimConfig::new(3)
        },
    )
    .await
    .unwrap();
    register_job(&c, &service_job("api", "sim", 3)).await;
    wait_for(
        "3 pending allocations on the simulated nodes",
        WAIT,
        || async {
            let allocs = sim.allocs();
            Ok(allocs.len() == 3 && allocs.iter().all(|a| a.client_status == "pending"))
        },
    )
    .await
    .unwrap();
    let ids: Vec<String> = sim.allocs().into_iter().map(|a| a.id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    sim.set_statuses(&refs, AllocStatus::Running).await.unwrap();
    assert_eq!(web_summary(&c, "api").await.unwrap(), [0, 0, 3, 0, 0, 0]);

    sim.set_status(&ids[0], AllocStatus::Complete)
        .await
        .unwrap();
    let (doc, _) = get_json(c.client(), &format!("/v1/allocation/{}", ids[0]))
        .await
        .unwrap();
    assert_eq!(doc["ClientStatus"], "complete");
    let task = &doc["TaskStates"]["server"];
    assert_eq!(task["State"], "dead");
    assert_eq!(task["Failed"], false);
    parse_rfc3339(task["FinishedAt"].as_str().unwrap()).unwrap();

    sim.set_status(&ids[1], AllocStatus::Failed).await.unwrap();
    let (doc, _) = get_json(c.client(), &format!("/v1/allocation/{}", ids[1]))
        .await
        .unwrap();
    assert_eq!(doc["ClientStatus"], "failed");
    assert_eq!(doc["TaskStates"]["server"]["Failed"], true);
    let summary = web_summary(&c, "api").await.unwrap();
    assert_eq!((summary[3], summary[4]), (1, 1), "{summary:?}");

    // Stopping the job: the nodes report their remaining allocations complete.
    let r = send(c.client(), api::Method::DELETE, "/v1/job/api", "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the stopped job's allocations to be complete",
        WAIT,
        || async {
            Ok(sim
                .alloc(&ids[2])
                .is_some_and(|a| a.client_status == "complete"))
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn allocations_of_a_node_that_goes_down_are_lost_and_replaced() {
    let c = DevCluster::start_with(&HEARTBEAT_FLAGS).await.unwrap();
    let sim = Simulator::start(
        c.rpc_addr(),
        SimConfig {
            datacenter: "sim".into(),
            auto_run: true,
            ..SimConfig::new(3)
        },
    )
    .await
    .unwrap();
    register_job(&c, &service_job("cache", "sim", 4)).await;
    wait_for("4 allocations running", WAIT, || async {
        Ok(web_summary(&c, "cache").await? == [0, 0, 4, 0, 0, 0])
    })
    .await
    .unwrap();
    let victim = sim
        .node_ids()
        .into_iter()
        .max_by_key(|id| sim.allocs_of(id).unwrap().len())
        .unwrap();
    let lost = sim.allocs_of(&victim).unwrap().len() as u64;
    assert!(lost > 0);
    sim.stop_heartbeats(&victim).unwrap();
    wait_for(
        "the node's allocations to be lost and replaced",
        WAIT,
        || async { Ok(web_summary(&c, "cache").await? == [0, 0, 4, 0, 0, lost]) },
    )
    .await
    .unwrap();
    // The replacements run on the nodes still alive.
    let running: Vec<_> = sim
        .allocs()
        .into_iter()
        .filter(|a| a.client_status == "running")
        .collect();
    assert_eq!(running.len(), 4);
    assert!(running.iter().all(|a| a.node_id != victim));
}
