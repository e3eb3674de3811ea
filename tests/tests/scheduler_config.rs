//! The scheduler configuration over HTTP (`/v1/operator/scheduler/configuration`): Nomad's
//! defaults, replace and check-and-set with Nomad's response shapes, durability, the bad
//! inputs, and that the cluster obeys it: binpack or spread placement (globally and per node
//! pool), refused registrations, memory oversubscription, a paused evaluation broker. The
//! reference is Nomad's `command/agent/operator_endpoint.go` and `nomad/operator_endpoint.go`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::sim::{SimConfig, Simulator};
use caravan_tests::*;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const PATH: &str = "/v1/operator/scheduler/configuration";

async fn put_config(client: &Client, query: &str, body: &Value) -> RawResponse {
    send(
        client,
        Method::PUT,
        &format!("{PATH}{query}"),
        &body.to_string(),
    )
    .await
    .unwrap()
}

async fn config(client: &Client) -> Value {
    get_json(client, PATH).await.unwrap().0
}

async fn register(client: &Client, job: &Value) -> RawResponse {
    send(
        client,
        Method::PUT,
        "/v1/jobs",
        &json!({ "Job": job }).to_string(),
    )
    .await
    .unwrap()
}

/// A service job with one allocation of a small task, in datacenter `dc`.
fn job(id: &str, dc: &str) -> Value {
    json!({
        "ID": id,
        "Datacenters": [dc],
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["1000"]},
                "Resources": {"CPU": 100, "MemoryMB": 64}
            }]
        }]
    })
}

/// A job that loads `node_id` with half of a simulated node.
fn load(id: &str, dc: &str, node_id: &str) -> Value {
    let mut j = job(id, dc);
    j["Constraints"] =
        json!([{"LTarget": "${node.unique.id}", "Operand": "=", "RTarget": node_id}]);
    j["TaskGroups"][0]["Tasks"][0]["Resources"] = json!({"CPU": 2000, "MemoryMB": 4096});
    j
}

/// The node the single allocation of `job_id` was placed on.
async fn placed_on(client: &Client, job_id: &str) -> String {
    let start = Instant::now();
    let mut index = 0;
    loop {
        let path = format!("/v1/job/{job_id}/allocations?index={index}&wait=2s");
        let (v, meta) = get_json(client, &path).await.unwrap();
        if let Some(node) = v[0]["NodeID"].as_str() {
            return node.to_owned();
        }
        assert!(start.elapsed() < DEADLINE, "{job_id} was never placed");
        index = meta.last_index;
    }
}

#[tokio::test]
async fn defaults_replace_check_and_set_and_bad_inputs() {
    let mut c = PgCluster::start().await.unwrap();
    let client = &c.client;

    // Nomad's server defaults, in Nomad's response shape.
    let r = client.get(PATH, &QueryOptions::new()).await.unwrap();
    assert_eq!(r.status, 200);
    let body: Value = r.json().unwrap();
    let index = r.query_meta().last_index;
    assert!(index >= 1);
    assert_eq!(
        body,
        json!({
            "Index": index, "KnownLeader": true, "LastContact": 0, "NextToken": "",
            "SchedulerConfig": {
                "CreateIndex": 0, "MemoryOversubscriptionEnabled": false, "ModifyIndex": 0,
                "PauseEvalBroker": false,
                "PreemptionConfig": {
                    "BatchSchedulerEnabled": false, "ServiceSchedulerEnabled": false,
                    "SysBatchSchedulerEnabled": false, "SystemSchedulerEnabled": true
                },
                "RejectJobRegistration": false, "SchedulerAlgorithm": "binpack"
            }
        })
    );

    // A PUT replaces the whole configuration: what it leaves out takes Go's zero values.
    let r = put_config(
        client,
        "",
        &json!({"SchedulerAlgorithm": "spread", "MemoryOversubscriptionEnabled": true,
                "PreemptionConfig": {"BatchSchedulerEnabled": true}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let written: Value = r.json().unwrap();
    let first = written["Index"].as_u64().unwrap();
    assert_eq!(written, json!({"Index": first, "Updated": true}));
    assert_eq!(r.header("x-nomad-index"), Some(first.to_string().as_str()));
    let got = config(client).await;
    assert_eq!(got["Index"], first);
    let sc = &got["SchedulerConfig"];
    assert_eq!(sc["SchedulerAlgorithm"], "spread");
    assert_eq!(sc["MemoryOversubscriptionEnabled"], true);
    assert_eq!(
        sc["PreemptionConfig"],
        json!({"BatchSchedulerEnabled": true, "ServiceSchedulerEnabled": false,
               "SysBatchSchedulerEnabled": false, "SystemSchedulerEnabled": false})
    );
    assert_eq!(sc["CreateIndex"], first);
    assert_eq!(sc["ModifyIndex"], first);

    // Check-and-set: a stale index changes nothing; the current one writes (POST as well).
    let r = put_config(
        client,
        &format!("?cas={}", first - 1),
        &json!({"SchedulerAlgorithm": "binpack"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let not_written: Value = r.json().unwrap();
    assert_eq!(not_written["Updated"], false);
    assert_eq!(
        config(client).await["SchedulerConfig"]["SchedulerAlgorithm"],
        "spread"
    );
    let r = send(
        client,
        Method::POST,
        &format!("{PATH}?cas={first}"),
        &json!({"SchedulerAlgorithm": "binpack", "RejectJobRegistration": false}).to_string(),
    )
    .await
    .unwrap();
    let cas_written: Value = r.json().unwrap();
    assert_eq!(cas_written["Updated"], true, "{cas_written}");
    let second = cas_written["Index"].as_u64().unwrap();
    assert!(second > first);
    let sc = config(client).await["SchedulerConfig"].clone();
    assert_eq!(sc["SchedulerAlgorithm"], "binpack");
    assert_eq!(sc["CreateIndex"], first, "the create index stays");
    assert_eq!(sc["ModifyIndex"], second);

    // A blocking read wakes on a write.
    let waiter = {
        let client = client.clone();
        let path = format!("{PATH}?index={second}&wait=20s");
        tokio::spawn(async move { get_json(&client, &path).await.unwrap() })
    };
    let r = put_config(client, "", &json!({"SchedulerAlgorithm": "spread"})).await;
    assert_eq!(r.status, 200);
    let (woken, _) = tokio::time::timeout(DEADLINE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woken["SchedulerConfig"]["SchedulerAlgorithm"], "spread");

    // Bad inputs: each a 400 that says what is wrong; nothing is written.
    let before = config(client).await["SchedulerConfig"].clone();
    let r = put_config(client, "", &json!({"SchedulerAlgorithm": "roundrobin"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "invalid scheduler algorithm: roundrobin");
    let r = put_config(client, "?cas=abc", &json!({"SchedulerAlgorithm": "spread"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "Error parsing cas value: strconv.ParseUint: parsing \"abc\": invalid syntax"
    );
    let r = put_config(client, "?cas=-3", &json!({})).await;
    assert_eq!(r.status, 400);
    let r = put_config(client, "", &json!({"RejectJobRegistration": "yes"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with("Error parsing scheduler config: ")
            && r.text().contains("RejectJobRegistration"),
        "{}",
        r.text()
    );
    let r = put_config(
        client,
        "",
        &json!({"PreemptionConfig": {"SystemSchedulerEnabled": 1}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SystemSchedulerEnabled"), "{}", r.text());
    let r = put_config(client, "", &json!({"SchedulerAlgorithm": 7})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SchedulerAlgorithm"), "{}", r.text());
    let r = send(client, Method::PUT, PATH, "[1, 2]").await.unwrap();
    assert_eq!(r.status, 400);
    let r = send(client, Method::PUT, PATH, "").await.unwrap();
    assert_eq!(r.status, 400);
    let r = send(client, Method::DELETE, PATH, "").await.unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(config(client).await["SchedulerConfig"], before);

    // Durable: a restarted server still has it.
    c.restart_server().await.unwrap();
    assert_eq!(config(&c.client).await["SchedulerConfig"], before);
}

#[tokio::test]
async fn registrations_are_refused_while_the_configuration_rejects_them() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let r = put_config(client, "", &json!({"RejectJobRegistration": true})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &job("refused", "dc-none")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        "Job registration, dispatch, and scale are disabled by the scheduler configuration"
    );
    // Also through /v1/job/:id, and before the job is even looked at.
    let r = send(
        client,
        Method::PUT,
        "/v1/job/refused",
        &json!({"Job": {"ID": "refused"}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = client
        .get("/v1/job/refused", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    let r = put_config(client, "", &json!({"RejectJobRegistration": false})).await;
    assert_eq!(r.status, 200);
    let r = register(client, &job("accepted", "dc-none")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn placement_follows_binpack_or_spread_globally_and_per_pool() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let cluster = Simulator::start(
        &c.rpc_addr,
        SimConfig {
            datacenter: "dc-algo".to_owned(),
            ..SimConfig::new(2)
        },
    )
    .await
    .unwrap();
    // A pool that spreads although the cluster binpacks.
    let r = send(
        client,
        Method::PUT,
        "/v1/node/pool/spready",
        &json!({"Name": "spready", "SchedulerConfiguration": {"SchedulerAlgorithm": "spread"}})
            .to_string(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let pool = Simulator::start(
        &c.rpc_addr,
        SimConfig {
            datacenter: "dc-algo-pool".to_owned(),
            node_pool: "spready".to_owned(),
            ..SimConfig::new(2)
        },
    )
    .await
    .unwrap();

    // One node of each pair is half full.
    let ids = cluster.node_ids();
    let (busy, idle) = (ids[0].clone(), ids[1].clone());
    let r = register(client, &load("load", "dc-algo", &busy)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(placed_on(client, "load").await, busy);
    let pool_ids = pool.node_ids();
    let (pool_busy, pool_idle) = (pool_ids[0].clone(), pool_ids[1].clone());
    let mut pool_load = load("pool-load", "dc-algo-pool", &pool_busy);
    pool_load["NodePool"] = json!("spready");
    let r = register(client, &pool_load).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(placed_on(client, "pool-load").await, pool_busy);

    // Binpack (the default) fills the busy node.
    let r = register(client, &job("packed", "dc-algo")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(placed_on(client, "packed").await, busy, "binpack");

    // The pool's own algorithm wins for its jobs.
    let mut in_pool = job("pool-spread", "dc-algo-pool");
    in_pool["NodePool"] = json!("spready");
    let r = register(client, &in_pool).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        placed_on(client, "pool-spread").await,
        pool_idle,
        "pool spread"
    );

    // Spread, set cluster-wide, takes the emptier node.
    let r = put_config(client, "", &json!({"SchedulerAlgorithm": "spread"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &job("spread", "dc-algo")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(placed_on(client, "spread").await, idle, "spread");
    let (alloc, _) = get_json(client, "/v1/job/spread/allocations")
        .await
        .unwrap();
    let id = alloc[0]["ID"].as_str().unwrap();
    let (doc, _) = get_json(client, &format!("/v1/allocation/{id}"))
        .await
        .unwrap();
    assert!(
        doc["Metrics"]["ScoreMetaData"][0]["Scores"]["binpack"].is_number(),
        "{}",
        doc["Metrics"]
    );
    cluster.shutdown().await;
    pool.shutdown().await;
}

#[tokio::test]
async fn memory_oversubscription_gates_memory_max() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let sim = Simulator::start(
        &c.rpc_addr,
        SimConfig {
            datacenter: "dc-mem".to_owned(),
            ..SimConfig::new(1)
        },
    )
    .await
    .unwrap();
    let with_max = |id: &str| {
        let mut j = job(id, "dc-mem");
        j["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMaxMB"] = json!(512);
        j
    };
    let memory_of = |alloc: &Value| alloc["AllocatedResources"]["Tasks"]["t"]["Memory"].clone();

    // Off (the default): a warning, and the allocation reserves no maximum.
    let r = register(client, &with_max("capped")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json().unwrap();
    assert_eq!(
        body["Warnings"],
        "1 warning:\n\n* Memory oversubscription is not enabled; Task \"g.t\" memory_max value \
         will be ignored. Update the Scheduler Configuration to allow oversubscription."
    );
    let r = send(
        client,
        Method::PUT,
        "/v1/validate/job",
        &json!({"Job": with_max("capped")}).to_string(),
    )
    .await
    .unwrap();
    let validated: Value = r.json().unwrap();
    assert_eq!(validated["Warnings"], body["Warnings"], "{validated}");
    placed_on(client, "capped").await;
    let docs = job_alloc_docs(client, "capped").await.unwrap();
    assert_eq!(
        memory_of(&docs[0])["MemoryMaxMB"],
        0,
        "{}",
        memory_of(&docs[0])
    );

    // On: no warning, the maximum is reserved.
    let r = put_config(client, "", &json!({"MemoryOversubscriptionEnabled": true})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &with_max("oversubscribed")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json().unwrap();
    assert_eq!(body["Warnings"], "", "{body}");
    placed_on(client, "oversubscribed").await;
    let docs = job_alloc_docs(client, "oversubscribed").await.unwrap();
    assert_eq!(
        memory_of(&docs[0])["MemoryMaxMB"],
        512,
        "{}",
        memory_of(&docs[0])
    );
    assert_eq!(memory_of(&docs[0])["MemoryMB"], 64);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_paused_broker_schedules_nothing_until_resumed() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let sim = Simulator::start(
        &c.rpc_addr,
        SimConfig {
            datacenter: "dc-pause".to_owned(),
            ..SimConfig::new(1)
        },
    )
    .await
    .unwrap();
    let r = put_config(client, "", &json!({"PauseEvalBroker": true})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &job("waiting", "dc-pause")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = r.json().unwrap();
    let eval_id = body["EvalID"].as_str().unwrap().to_owned();
    let eval_path = format!("/v1/evaluation/{eval_id}");
    let (eval, meta) = get_json(client, &eval_path).await.unwrap();
    assert_eq!(eval["Status"], "pending");
    // A blocking read of the evaluation sees no change for a while: nothing dequeues it.
    let (eval, _) = get_json(
        client,
        &format!("{eval_path}?index={}&wait=1500ms", meta.last_index),
    )
    .await
    .unwrap();
    assert_eq!(eval["Status"], "pending", "{eval}");
    let (allocs, _) = get_json(client, "/v1/job/waiting/allocations")
        .await
        .unwrap();
    assert_eq!(allocs, json!([]));

    let r = put_config(client, "", &json!({"PauseEvalBroker": false})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    placed_on(client, "waiting").await;
    let start = Instant::now();
    let mut index = 0;
    loop {
        let (eval, meta) = get_json(client, &format!("{eval_path}?index={index}&wait=2s"))
            .await
            .unwrap();
        if eval["Status"] == "complete" {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the evaluation never completed: {eval}"
        );
        index = meta.last_index;
    }
    sim.shutdown().await;
}
