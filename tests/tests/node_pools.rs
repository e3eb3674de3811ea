//! Node pools over HTTP: the built-ins `all` and `default`, upsert/read/list/delete with
//! Nomad's texts, pools created by the nodes that register in them, a pool's nodes and jobs,
//! pools in use that cannot be deleted, jobs refused in a pool that does not exist, and the
//! scheduler placing a job only on its pool's nodes. The reference is Nomad's
//! `command/agent/node_pool_endpoint.go` and `nomad/node_pool_endpoint.go`; where Caravan
//! answers a 4xx for what Nomad answers 500 (a pool in use: 409, unknown pool: 404, a
//! built-in: 400), it is on purpose.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::sim::{SimConfig, Simulator};
use caravan_tests::*;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

async fn req(client: &Client, method: Method, path: &str, body: &Value) -> RawResponse {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    send(client, method, path, &body).await.unwrap()
}

async fn get(client: &Client, path: &str) -> RawResponse {
    client.get(path, &QueryOptions::new()).await.unwrap()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect()
}

fn index_of(resp: &RawResponse) -> u64 {
    resp.header("x-nomad-index").unwrap().parse().unwrap()
}

/// A service job (one task) in `pool` and datacenter `dc`, with `count` allocations.
fn job(id: &str, pool: Option<&str>, dc: &str, count: i64) -> Value {
    let mut j = json!({
        "ID": id,
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
    });
    if let Some(pool) = pool {
        j["NodePool"] = json!(pool);
    }
    j
}

/// A job in `pool` that no node can run (so it stays pending and nothing is placed).
fn unplaceable(id: &str, pool: &str) -> Value {
    let mut j = job(id, Some(pool), "dc1", 1);
    j["Constraints"] =
        json!([{"LTarget": "${attr.kernel.name}", "RTarget": "no-such-kernel", "Operand": "="}]);
    j
}

async fn register(client: &Client, job: &Value) -> RawResponse {
    req(client, Method::PUT, "/v1/jobs", &json!({ "Job": job })).await
}

#[tokio::test]
async fn pools_are_created_read_listed_updated_and_deleted() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;

    // A new cluster has the built-ins, with Nomad's descriptions.
    let (list, meta) = get_json(client, "/v1/node/pools").await.unwrap();
    assert_eq!(names(&list), ["all", "default"]);
    assert!(meta.last_index >= 1);
    let (default, _) = get_json(client, "/v1/node/pool/default").await.unwrap();
    assert_eq!(
        default,
        json!({"CreateIndex": 1, "Description": "Default node pool.", "Hash": null,
               "Meta": null, "ModifyIndex": 1, "Name": "default",
               "SchedulerConfiguration": null})
    );
    let (all, _) = get_json(client, "/v1/node/pool/all").await.unwrap();
    assert_eq!(
        all["Description"],
        "Node pool with all nodes in the cluster."
    );

    // A pool that does not exist.
    let r = get(client, "/v1/node/pool/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "node pool not found");

    // Create by name, then through the collection.
    let r = req(
        client,
        Method::PUT,
        "/v1/node/pool/prod",
        &json!({"Name": "prod", "Description": "Production", "Meta": {"team": "infra"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().is_empty(), "{}", r.text());
    let created = index_of(&r);
    let (prod, meta) = get_json(client, "/v1/node/pool/prod").await.unwrap();
    assert_eq!(prod["Description"], "Production");
    assert_eq!(prod["Meta"], json!({"team": "infra"}));
    assert_eq!(prod["CreateIndex"], created);
    assert_eq!(prod["ModifyIndex"], created);
    assert_eq!(meta.last_index, created);
    let r = req(
        client,
        Method::POST,
        "/v1/node/pools",
        &json!({"Name": "staging", "SchedulerConfiguration": {"SchedulerAlgorithm": "spread"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (staging, _) = get_json(client, "/v1/node/pool/staging").await.unwrap();
    assert_eq!(
        staging["SchedulerConfiguration"],
        json!({"MemoryOversubscriptionEnabled": null, "SchedulerAlgorithm": "spread"})
    );

    // An update keeps the create index.
    let r = req(
        client,
        Method::POST,
        "/v1/node/pool/prod",
        &json!({"Name": "prod", "Description": "Prod"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let updated = index_of(&r);
    assert!(updated > created);
    let (prod, _) = get_json(client, "/v1/node/pool/prod").await.unwrap();
    assert_eq!(prod["Description"], "Prod");
    assert_eq!(prod["Meta"], Value::Null, "an upsert replaces the pool");
    assert_eq!(prod["CreateIndex"], created);
    assert_eq!(prod["ModifyIndex"], updated);

    // Lists: by name, prefix, pages, reverse, filter.
    let (list, meta) = get_json(client, "/v1/node/pools").await.unwrap();
    assert_eq!(names(&list), ["all", "default", "prod", "staging"]);
    assert_eq!(meta.last_index, updated);
    let (list, _) = get_json(client, "/v1/node/pools?prefix=st").await.unwrap();
    assert_eq!(names(&list), ["staging"]);
    let r = get(client, "/v1/node/pools?per_page=2").await;
    assert_eq!(names(&r.json::<Value>().unwrap()), ["all", "default"]);
    assert_eq!(r.header("x-nomad-nexttoken"), Some("prod"));
    let (list, _) = get_json(client, "/v1/node/pools?per_page=2&next_token=prod")
        .await
        .unwrap();
    assert_eq!(names(&list), ["prod", "staging"]);
    let (list, _) = get_json(client, "/v1/node/pools?reverse=true")
        .await
        .unwrap();
    assert_eq!(names(&list), ["staging", "prod", "default", "all"]);
    let (list, _) = get_json(
        client,
        "/v1/node/pools?filter=Description%20%3D%3D%20%22Prod%22",
    )
    .await
    .unwrap();
    assert_eq!(names(&list), ["prod"]);
    let r = get(client, "/v1/node/pools?filter=Name%20%3D%3D").await;
    assert_eq!(r.status, 400, "{}", r.text());

    // A blocking list wakes on a write.
    let waiter = {
        let client = client.clone();
        let path = format!("/v1/node/pools?index={updated}&wait=20s");
        tokio::spawn(async move { get_json(&client, &path).await.unwrap() })
    };
    let r = req(
        client,
        Method::PUT,
        "/v1/node/pool/qa",
        &json!({"Name": "qa"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let (list, meta) = tokio::time::timeout(DEADLINE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.last_index, index_of(&r));
    assert!(names(&list).contains(&"qa"));

    // Delete: gone afterwards; a blocking read of it wakes with the deletion.
    let r = req(
        client,
        Method::DELETE,
        "/v1/node/pool/staging",
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(index_of(&r) > meta.last_index);
    let r = get(client, "/v1/node/pool/staging").await;
    assert_eq!(r.status, 404);
    let r = req(
        client,
        Method::DELETE,
        "/v1/node/pool/staging",
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.text(), "node pool staging not found");

    // Survives a server restart (PostgreSQL).
    let mut c = c;
    c.restart_server().await.unwrap();
    let (list, _) = get_json(&c.client, "/v1/node/pools").await.unwrap();
    assert_eq!(names(&list), ["all", "default", "prod", "qa"]);
}

#[tokio::test]
async fn bad_inputs_and_built_ins_are_refused_with_nomads_texts() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let put = |path: &'static str, body: Value| async move {
        req(client, Method::PUT, path, &body).await
    };

    // Names.
    let r = put("/v1/node/pools", json!({"Name": "bad name"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "invalid node pool \"bad name\": 1 error occurred:\n\t* invalid name \"bad name\", \
         must match regex ^[a-zA-Z0-9-_]{1,128}$\n\n"
    );
    let r = put("/v1/node/pools", json!({})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid name \"\""), "{}", r.text());
    let long = "x".repeat(129);
    let r = req(
        client,
        Method::PUT,
        "/v1/node/pools",
        &json!({"Name": long}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = put(
        "/v1/node/pools",
        json!({"Name": "ok", "Description": "d".repeat(257)}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("description longer than 256"),
        "{}",
        r.text()
    );
    let r = put(
        "/v1/node/pools",
        json!({"Name": "ok", "SchedulerConfiguration": {"SchedulerAlgorithm": "random"}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("invalid scheduler algorithm: random"),
        "{}",
        r.text()
    );
    let r = put("/v1/node/pool/one", json!({"Name": "two"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Node pool name does not match request path");

    // Wrong types name the field; bodies that are not objects or empty.
    let r = put("/v1/node/pools", json!({"Name": 5})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Name"), "{}", r.text());
    let r = put("/v1/node/pools", json!({"Name": "ok", "Meta": ["a"]})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Meta"), "{}", r.text());
    let r = put(
        "/v1/node/pools",
        json!({"Name": "ok", "SchedulerConfiguration": {"MemoryOversubscriptionEnabled": "yes"}}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("MemoryOversubscriptionEnabled"),
        "{}",
        r.text()
    );
    let r = send(client, Method::PUT, "/v1/node/pools", "{not json")
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let r = send(client, Method::PUT, "/v1/node/pools", "")
        .await
        .unwrap();
    assert_eq!(r.status, 400);

    // The built-ins can be neither modified nor deleted.
    for name in ["default", "all"] {
        let path = format!("/v1/node/pool/{name}");
        let r = req(
            client,
            Method::PUT,
            &path,
            &json!({"Name": name, "Description": "x"}),
        )
        .await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            format!("modifying node pool \"{name}\" is not allowed")
        );
    }
    let r = req(client, Method::DELETE, "/v1/node/pool/all", &Value::Null).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "deleting node pool \"all\" is not allowed");
    // `default` holds the cluster's node, which Nomad reports first.
    let r = req(
        client,
        Method::DELETE,
        "/v1/node/pool/default",
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.text(),
        "1 error occurred:\n\t* node pool \"default\" has nodes in regions: [global]\n\n"
    );

    // Methods the routes do not take; the list takes no prefix for nodes and jobs.
    let r = req(client, Method::DELETE, "/v1/node/pools", &Value::Null).await;
    assert_eq!(r.status, 405);
    let r = req(
        client,
        Method::PUT,
        "/v1/node/pool/default/nodes",
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 405);
    let r = get(client, "/v1/node/pool/default/nodes?prefix=ab").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "prefix argument not allowed");
    let r = get(client, "/v1/node/pool/default/jobs?prefix=ab").await;
    assert_eq!(r.status, 400);
    let r = get(client, "/v1/node/pool/default/jobs?meta=maybe").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("meta"), "{}", r.text());
    let r = get(client, "/v1/node/pool/default/nodes?resources=maybe").await;
    assert_eq!(r.status, 400);

    // Nothing was written.
    let (list, _) = get_json(client, "/v1/node/pools").await.unwrap();
    assert_eq!(names(&list), ["all", "default"]);
}

#[tokio::test]
async fn nodes_create_their_pools_and_pools_in_use_stay() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let sim = Simulator::start(
        &c.rpc_addr,
        SimConfig {
            node_pool: "edge".to_owned(),
            datacenter: "dc-edge".to_owned(),
            ..SimConfig::new(2)
        },
    )
    .await
    .unwrap();
    let edge_nodes = sim.node_ids();

    // The pool the nodes named exists now, with nothing but its name.
    let (edge, _) = get_json(client, "/v1/node/pool/edge").await.unwrap();
    assert_eq!(edge["Name"], "edge");
    assert_eq!(edge["Description"], "");

    // A pool's nodes: stubs of its members; `all` has every node; unknown pools none.
    let (nodes, meta) = get_json(client, "/v1/node/pool/edge/nodes").await.unwrap();
    let mut ids: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ID"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want: Vec<&str> = edge_nodes.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(meta.last_index >= 1);
    for n in nodes.as_array().unwrap() {
        assert_eq!(n["NodePool"], "edge");
        assert_eq!(n["Datacenter"], "dc-edge");
        assert!(n.get("NodeResources").is_none(), "a stub: {n}");
    }
    let (with_res, _) = get_json(client, "/v1/node/pool/edge/nodes?resources=true")
        .await
        .unwrap();
    assert!(with_res[0]["NodeResources"].is_object(), "{with_res}");
    let (all, _) = get_json(client, "/v1/node/pool/all/nodes").await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (default, _) = get_json(client, "/v1/node/pool/default/nodes")
        .await
        .unwrap();
    assert_eq!(default.as_array().unwrap().len(), 1);
    assert_eq!(default[0]["ID"], c.node_id.as_str());
    let (none, _) = get_json(client, "/v1/node/pool/nope/nodes").await.unwrap();
    assert_eq!(none, json!([]));
    let (page, _) = get_json(client, "/v1/node/pool/all/nodes?per_page=1")
        .await
        .unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);

    // In use by nodes: refused.
    let r = req(client, Method::DELETE, "/v1/node/pool/edge", &Value::Null).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.text(),
        "1 error occurred:\n\t* node pool \"edge\" has nodes in regions: [global]\n\n"
    );

    // A job in a pool that does not exist is refused; in one that exists it is listed.
    let r = register(client, &unplaceable("lost", "nowhere")).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "1 error occurred:\n\t* job \"lost\" is in nonexistent node pool \"nowhere\"\n\n"
    );
    // With the job's own errors after it, as Nomad's admission lists them.
    let mut bad = unplaceable("lost", "nowhere");
    bad["TaskGroups"][0]["Count"] = json!(-1);
    let r = register(client, &bad).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with(
            "2 errors occurred:\n\t* job \"lost\" is in nonexistent node pool \"nowhere\"\n\t* "
        ),
        "{}",
        r.text()
    );
    // /v1/validate/job reports it the same way, as a validation error.
    let r = req(
        client,
        Method::PUT,
        "/v1/validate/job",
        &json!({"Job": unplaceable("lost", "nowhere")}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(
        v["ValidationErrors"],
        json!(["job \"lost\" is in nonexistent node pool \"nowhere\""])
    );
    let r = get(client, "/v1/job/lost").await;
    assert_eq!(r.status, 404);
    let r = req(
        client,
        Method::PUT,
        "/v1/node/pool/batchy",
        &json!({"Name": "batchy"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut j = unplaceable("cruncher", "batchy");
    j["Meta"] = json!({"owner": "data"});
    let r = register(client, &j).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (jobs, _) = get_json(client, "/v1/node/pool/batchy/jobs").await.unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["ID"], "cruncher");
    assert_eq!(jobs[0]["NodePool"], "batchy");
    assert_eq!(jobs[0]["Meta"], Value::Null);
    assert!(jobs[0]["JobSummary"].is_object(), "{jobs}");
    let (jobs, _) = get_json(client, "/v1/node/pool/batchy/jobs?meta=true")
        .await
        .unwrap();
    assert_eq!(jobs[0]["Meta"], json!({"owner": "data"}));
    let (jobs, _) = get_json(client, "/v1/node/pool/default/jobs")
        .await
        .unwrap();
    assert_eq!(jobs, json!([]));
    let (jobs, _) = get_json(client, "/v1/node/pool/batchy/jobs?namespace=other")
        .await
        .unwrap();
    assert_eq!(jobs, json!([]));
    let (jobs, _) = get_json(client, "/v1/node/pool/batchy/jobs?namespace=*")
        .await
        .unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 1);

    // In use by a live job: refused; once the job is purged, the pool goes.
    let r = req(client, Method::DELETE, "/v1/node/pool/batchy", &Value::Null).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.text(),
        "1 error occurred:\n\t* node pool \"batchy\" has non-terminal jobs in regions: [global]\n\n"
    );
    let r = req(
        client,
        Method::DELETE,
        "/v1/job/cruncher?purge=true",
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = req(client, Method::DELETE, "/v1/node/pool/batchy", &Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Nodes may not register in `all` or in a pool with a bad name.
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let node = FakeNode {
        id: uuid_with_prefix(""),
        secret_id: uuid_with_prefix(""),
        name: "fake-all".to_owned(),
    };
    let mut doc = fake_node_json(&node, &[]);
    doc["NodePool"] = json!("all");
    let err = grpc.register(&doc).await.unwrap_err().to_string();
    assert!(
        err.contains("node is not allowed to register in node pool \"all\""),
        "{err}"
    );
    doc["NodePool"] = json!("no good");
    let err = grpc.register(&doc).await.unwrap_err().to_string();
    assert!(
        err.contains("invalid node pool: invalid name \"no good\""),
        "{err}"
    );
    let (list, _) = get_json(client, "/v1/node/pools").await.unwrap();
    assert_eq!(names(&list), ["all", "default", "edge"]);
    sim.shutdown().await;
}

/// The job's allocations once there are `n` of them.
async fn wait_allocs(client: &Client, job_id: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    let mut index = 0;
    loop {
        let path = format!("/v1/job/{job_id}/allocations?index={index}&wait=2s");
        let (v, meta) = get_json(client, &path).await.unwrap();
        let allocs = v.as_array().cloned().unwrap_or_default();
        if allocs.len() >= n {
            return allocs;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{job_id} never got {n} allocations: {v}"
        );
        index = meta.last_index;
    }
}

#[tokio::test]
async fn jobs_are_placed_only_on_the_nodes_of_their_pool() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let sim_in = |pool: &str| SimConfig {
        node_pool: pool.to_owned(),
        datacenter: "dc-pools".to_owned(),
        ..SimConfig::new(3)
    };
    let gpu = Simulator::start(&c.rpc_addr, sim_in("gpu")).await.unwrap();
    let plain = Simulator::start(&c.rpc_addr, sim_in("default"))
        .await
        .unwrap();

    let r = register(client, &job("trainer", Some("gpu"), "dc-pools", 6)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &job("web", None, "dc-pools", 6)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = register(client, &job("everywhere", Some("all"), "dc-pools", 6)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let gpu_nodes = gpu.node_ids();
    let plain_nodes = plain.node_ids();
    for a in wait_allocs(client, "trainer", 6).await {
        let node = a["NodeID"].as_str().unwrap().to_owned();
        assert!(gpu_nodes.contains(&node), "trainer placed outside gpu: {a}");
    }
    for a in wait_allocs(client, "web", 6).await {
        let node = a["NodeID"].as_str().unwrap().to_owned();
        assert!(
            plain_nodes.contains(&node),
            "web placed outside default: {a}"
        );
    }
    // `all` spans both pools.
    let mut pools_used = std::collections::BTreeSet::new();
    for a in wait_allocs(client, "everywhere", 6).await {
        let node = a["NodeID"].as_str().unwrap().to_owned();
        pools_used.insert(gpu_nodes.contains(&node));
    }
    assert_eq!(pools_used.len(), 2, "a job in `all` uses both pools");
    let (trainer, _) = get_json(client, "/v1/job/trainer/allocations")
        .await
        .unwrap();
    let alloc_id = trainer[0]["ID"].as_str().unwrap();
    let (alloc, _) = get_json(client, &format!("/v1/allocation/{alloc_id}"))
        .await
        .unwrap();
    assert_eq!(alloc["Metrics"]["NodePool"], "gpu", "{}", alloc["Metrics"]);
    gpu.shutdown().await;
    plain.shutdown().await;
}

#[tokio::test]
async fn an_agent_registers_in_the_pool_it_is_given() {
    let c = PgCluster::start_with(&[], &["-node-pool", "blue"])
        .await
        .unwrap();
    let client = &c.client;
    let node = node_doc(client, &c.node_id).await.unwrap();
    assert_eq!(node["NodePool"], "blue");
    let (pool, _) = get_json(client, "/v1/node/pool/blue").await.unwrap();
    assert_eq!(pool["Name"], "blue");
    let (nodes, _) = get_json(client, "/v1/node/pool/blue/nodes").await.unwrap();
    assert_eq!(nodes[0]["ID"], c.node_id.as_str());
    let (nodes, _) = get_json(client, "/v1/node/pool/default/nodes")
        .await
        .unwrap();
    assert_eq!(nodes, json!([]));
}
