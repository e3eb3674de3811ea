//! The node writes: eligibility, drain, evaluate, purge (seeds/004, NOMAD-BEHAVIOR 2.4-2.7).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::nodes::DrainSpec;
use caravan_tests::*;
use serde_json::{Value, json};

const SECOND: i128 = 1_000_000_000;

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

async fn eligibility_toggles(c: &impl Cluster) {
    let client = c.client();
    let id = c.node_id();
    let path = format!("/v1/node/{id}/eligibility");
    let before = node_doc(client, id).await.unwrap();

    let resp = post(client, &path, r#"{"Eligibility":"ineligible"}"#)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body: Value = resp.json().unwrap();
    assert_eq!(
        keys(&body),
        ["EvalCreateIndex", "EvalIDs", "Index", "NodeModifyIndex"],
        "{body}"
    );
    let index = body["Index"].as_u64().unwrap();
    assert!(index > before["ModifyIndex"].as_u64().unwrap());
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(index.to_string().as_str())
    );
    assert_eq!(body["EvalCreateIndex"], 0);
    assert!(body["EvalIDs"].is_null(), "{body}");

    let node = node_doc(client, id).await.unwrap();
    assert_eq!(node["SchedulingEligibility"], "ineligible");
    assert_eq!(node["ModifyIndex"].as_u64().unwrap(), index);
    let last = node["Events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["Message"], "Node marked as ineligible for scheduling");
    assert_eq!(last["Subsystem"], "Cluster");
    assert_eq!(last["CreateIndex"].as_u64().unwrap(), index);
    let (list, _) = get_json(client, "/v1/nodes").await.unwrap();
    let stub = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ID"] == id)
        .unwrap();
    assert_eq!(stub["SchedulingEligibility"], "ineligible");

    // A no-op writes nothing: Index 0, X-Nomad-Index 0, no event.
    let resp = post(client, &path, r#"{"Eligibility":"ineligible"}"#)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json().unwrap();
    assert_eq!(body["Index"], 0, "{body}");
    assert_eq!(resp.header("X-Nomad-Index"), Some("0"));
    let again = node_doc(client, id).await.unwrap();
    assert_eq!(again["ModifyIndex"], node["ModifyIndex"]);
    assert_eq!(again["Events"], node["Events"]);

    // And back, through the typed client (PUT works as POST).
    let resp = send(
        client,
        api::Method::PUT,
        &path,
        r#"{"Eligibility":"eligible"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let back: Value = resp.json().unwrap();
    assert!(back["Index"].as_u64().unwrap() > index);
    let events = event_messages(client, id).await.unwrap();
    assert_eq!(
        events.last().unwrap(),
        &(
            "Node marked as eligible for scheduling".to_owned(),
            "Cluster".to_owned()
        )
    );
    let (resp, meta) = client
        .nodes()
        .eligibility(id, false, &WriteOptions::default())
        .await
        .unwrap();
    assert!(resp.index > back["Index"].as_u64().unwrap());
    assert_eq!(meta.last_index, resp.index);
    let (node, _) = client.nodes().info(id, &QueryOptions::new()).await.unwrap();
    assert_eq!(node.scheduling_eligibility, "ineligible");
    // Events: registered, ineligible, eligible, ineligible, in order, indexes growing.
    let events = node.events();
    let msgs: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        &msgs[msgs.len() - 3..],
        [
            "Node marked as ineligible for scheduling",
            "Node marked as eligible for scheduling",
            "Node marked as ineligible for scheduling"
        ]
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].create_index <= w[1].create_index)
    );
}

#[tokio::test]
async fn eligibility_toggles_sqlite() {
    eligibility_toggles(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn eligibility_toggles_postgres() {
    eligibility_toggles(&PgCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn eligibility_refuses_bad_requests() {
    let c = DevCluster::start().await.unwrap();
    let path = format!("/v1/node/{}/eligibility", c.node_id);
    let cases: &[(&str, &str)] = &[
        (r#"{"Eligibility":"maybe"}"#, "maybe"),
        (r#"{"Eligibility":""}"#, "eligibility"),
        ("{}", "eligibility"),
        ("not json", ""),
        ("", "Request body is empty"),
        ("[1,2]", ""),
        (r#"{"Eligibility":5}"#, "Eligibility"),
        (r#"{"Eligibility":true}"#, "Eligibility"),
        (r#"{"Eligibility":["eligible"]}"#, "Eligibility"),
    ];
    for (body, needle) in cases {
        let resp = post(&c.client, &path, body).await.unwrap();
        assert_eq!(resp.status, 400, "body {body:?}: {}", resp.text());
        assert!(
            resp.text().contains(needle),
            "body {body:?}: {:?} does not name {needle:?}",
            resp.text()
        );
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
    let resp = post(&c.client, &path, r#"{"Eligibility":"maybe"}"#)
        .await
        .unwrap();
    assert_eq!(resp.text(), r#"invalid scheduling eligibility "maybe""#);
    // Nothing was written.
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["SchedulingEligibility"], "eligible");
    assert_eq!(node["Events"].as_array().unwrap().len(), 1);
    // Unknown node.
    let missing = uuid_with_prefix("");
    let resp = post(
        &c.client,
        &format!("/v1/node/{missing}/eligibility"),
        r#"{"Eligibility":"ineligible"}"#,
    )
    .await
    .unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (404, "node not found"));
    let err = c
        .client
        .nodes()
        .eligibility(&missing, false, &WriteOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

async fn drain_lifecycle(c: &impl Cluster) {
    let client = c.client();
    let id = c.node_id();
    hold_node(client, id).await.unwrap();
    let path = format!("/v1/node/{id}/drain");
    let hour: i64 = 3_600_000_000_000;

    // Start: the spec's sample payload.
    let sent_at = now_nanos();
    let resp = post(
        client,
        &path,
        &json!({"DrainSpec": {"Deadline": hour, "IgnoreSystemJobs": true}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json().unwrap();
    assert_eq!(
        keys(&body),
        ["EvalCreateIndex", "EvalIDs", "Index", "NodeModifyIndex"]
    );
    let index = body["Index"].as_u64().unwrap();
    assert!(index > 0);
    assert_eq!(body["NodeModifyIndex"].as_u64().unwrap(), index);
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(index.to_string().as_str())
    );

    let node = node_doc(client, id).await.unwrap();
    assert_eq!(node["Drain"], true);
    assert_eq!(node["SchedulingEligibility"], "ineligible");
    assert_eq!(node["ModifyIndex"].as_u64().unwrap(), index);
    let strategy = &node["DrainStrategy"];
    assert_eq!(
        keys(strategy),
        ["Deadline", "ForceDeadline", "IgnoreSystemJobs", "StartedAt"],
        "{strategy}"
    );
    assert_eq!(strategy["Deadline"].as_i64().unwrap(), hour);
    assert_eq!(strategy["IgnoreSystemJobs"], true);
    let started = parse_rfc3339(strategy["StartedAt"].as_str().unwrap()).unwrap();
    assert!(
        (started - sent_at).abs() < 30 * SECOND,
        "StartedAt {strategy}"
    );
    let force = parse_rfc3339(strategy["ForceDeadline"].as_str().unwrap()).unwrap();
    let expected = started + hour as i128;
    assert!(
        (force - expected).abs() < 5 * SECOND,
        "ForceDeadline is not StartedAt + Deadline: {strategy}"
    );
    let last_drain = &node["LastDrain"];
    assert_eq!(last_drain["Status"], "draining", "{last_drain}");
    assert_eq!(last_drain["StartedAt"], strategy["StartedAt"]);
    let event = node["Events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(event["Message"], "Node drain strategy set");
    assert_eq!(event["Subsystem"], "Drain");
    let (list, _) = get_json(client, "/v1/nodes").await.unwrap();
    let stub = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ID"] == id)
        .unwrap()
        .clone();
    assert_eq!(stub["Drain"], true);
    assert_eq!(stub["LastDrain"]["Status"], "draining");

    // Eligible while draining is refused, with the reason.
    let resp = post(
        client,
        &format!("/v1/node/{id}/eligibility"),
        r#"{"Eligibility":"eligible"}"#,
    )
    .await
    .unwrap();
    assert!(
        (400..500).contains(&resp.status),
        "{} {}",
        resp.status,
        resp.text()
    );
    assert_eq!(
        resp.text(),
        "can not set node's scheduling eligibility to eligible while it is draining"
    );
    assert_eq!(
        node_doc(client, id).await.unwrap()["SchedulingEligibility"],
        "ineligible"
    );

    // Update: a new deadline, StartedAt kept.
    let (updated, meta) = client
        .nodes()
        .drain(
            id,
            Some(DrainSpec::with_deadline(Duration::from_secs(120))),
            false,
            None,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(updated.index > index);
    assert_eq!(meta.last_index, updated.index);
    let (node, _) = client.nodes().info(id, &QueryOptions::new()).await.unwrap();
    let strategy = node.drain_strategy.clone().unwrap();
    assert_eq!(strategy.deadline, 120_000_000_000);
    assert!(!strategy.ignore_system_jobs);
    assert_eq!(
        parse_rfc3339(strategy.started_at.as_deref().unwrap()).unwrap(),
        started,
        "an update must keep StartedAt"
    );
    let force = parse_rfc3339(strategy.force_deadline.as_deref().unwrap()).unwrap();
    assert!(
        force < expected - 1000 * SECOND,
        "ForceDeadline not moved: {strategy:?}"
    );
    let last = node.events().last().unwrap();
    assert_eq!(
        (last.message.as_str(), last.subsystem.as_str()),
        ("Node drain strategy updated", "Drain")
    );

    // Disable with MarkEligible: eligible again, LastDrain canceled, meta recorded.
    let meta_in = std::collections::BTreeMap::from([("reason".to_owned(), "done".to_owned())]);
    let (disabled, _) = client
        .nodes()
        .drain(
            id,
            None,
            true,
            Some(meta_in.clone()),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(disabled.index > updated.index);
    let (node, _) = client.nodes().info(id, &QueryOptions::new()).await.unwrap();
    assert!(!node.drain);
    assert!(node.drain_strategy.is_none());
    assert_eq!(node.scheduling_eligibility, "eligible");
    let last_drain = node.last_drain.clone().unwrap();
    assert_eq!(last_drain.status, "canceled");
    assert_eq!(last_drain.meta.as_ref(), Some(&meta_in));
    assert_eq!(
        parse_rfc3339(last_drain.started_at.as_deref().unwrap()).unwrap(),
        started
    );
    let last = node.events().last().unwrap();
    assert_eq!(
        (last.message.as_str(), last.subsystem.as_str()),
        ("Node drain disabled", "Drain")
    );
    let msgs: Vec<&str> = node.events().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        &msgs[msgs.len() - 3..],
        [
            "Node drain strategy set",
            "Node drain strategy updated",
            "Node drain disabled"
        ]
    );
}

#[tokio::test]
async fn drain_lifecycle_sqlite() {
    drain_lifecycle(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn drain_lifecycle_postgres() {
    drain_lifecycle(&PgCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn drain_without_deadline_or_forced_has_no_force_deadline() {
    let c = DevCluster::start().await.unwrap();
    hold_node(&c.client, &c.node_id).await.unwrap();
    let nodes = c.client.nodes();
    let w = WriteOptions::default();
    nodes
        .drain(&c.node_id, Some(DrainSpec::default()), false, None, &w)
        .await
        .unwrap();
    let (node, _) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    let s = node.drain_strategy.unwrap();
    assert_eq!(s.deadline, 0);
    assert_eq!(s.force_deadline, None, "no deadline means no ForceDeadline");
    nodes
        .drain(&c.node_id, Some(DrainSpec::force()), false, None, &w)
        .await
        .unwrap();
    let (node, _) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    let s = node.drain_strategy.unwrap();
    assert_eq!(s.deadline, -1);
    assert_eq!(s.force_deadline, None);
    // Disable without MarkEligible: the drain ends, the node stays ineligible.
    nodes
        .drain(&c.node_id, None, false, None, &w)
        .await
        .unwrap();
    let (node, _) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    assert!(!node.drain && node.drain_strategy.is_none());
    assert_eq!(node.scheduling_eligibility, "ineligible");
    assert_eq!(node.last_drain.as_ref().unwrap().status, "canceled");
    // Disabling again is not another "drain disabled" event.
    let before = node.events().len();
    nodes
        .drain(&c.node_id, None, false, None, &w)
        .await
        .unwrap();
    let (node, _) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    assert_eq!(node.events().len(), before, "{:?}", node.events);
}

#[tokio::test]
async fn drain_refuses_bad_bodies() {
    let c = DevCluster::start().await.unwrap();
    let path = format!("/v1/node/{}/drain", c.node_id);
    let cases: &[(&str, &str)] = &[
        ("", "Request body is empty"),
        ("not json", ""),
        ("{", ""),
        ("[]", ""),
        (r#"{"DrainSpec":"x"}"#, "DrainSpec"),
        (r#"{"DrainSpec":5}"#, "DrainSpec"),
        (r#"{"DrainSpec":{"Deadline":"1h"}}"#, "Deadline"),
        (r#"{"DrainSpec":{"Deadline":1.5}}"#, "Deadline"),
        (
            r#"{"DrainSpec":{"Deadline":60,"IgnoreSystemJobs":"yes"}}"#,
            "IgnoreSystemJobs",
        ),
        (
            r#"{"DrainSpec":null,"MarkEligible":"true"}"#,
            "MarkEligible",
        ),
        (r#"{"DrainSpec":{"Deadline":60},"Meta":{"k":1}}"#, "Meta"),
    ];
    for (body, needle) in cases {
        let resp = post(&c.client, &path, body).await.unwrap();
        assert_eq!(resp.status, 400, "body {body:?}: {}", resp.text());
        assert!(
            resp.text().contains(needle),
            "body {body:?}: {:?} does not name {needle:?}",
            resp.text()
        );
    }
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Drain"], false);
    assert_eq!(
        node["Events"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );
    // Unknown node.
    let missing = uuid_with_prefix("");
    let resp = post(
        &c.client,
        &format!("/v1/node/{missing}/drain"),
        r#"{"DrainSpec":{"Deadline":1}}"#,
    )
    .await
    .unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (404, "node not found"));
}

#[tokio::test]
async fn evaluate_a_node_without_allocations() {
    let c = DevCluster::start().await.unwrap();
    let resp = post(&c.client, &format!("/v1/node/{}/evaluate", c.node_id), "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json().unwrap();
    // The keys of the spec's sample response.
    let sample: Value = serde_json::from_str(
        r#"{ "EvalCreateIndex": 3671, "EvalIDs": [ "4dfc2db7-b481-c53b-3072-14479aa44be3" ],
        "HeartbeatTTL": 0, "Index": 3671, "KnownLeader": false, "LastContact": 0,
        "LeaderRPCAddr": "10.138.0.2:4647", "NodeModifyIndex": 0, "NumNodes": 3,
        "Servers": [ { "Datacenter": "dc1", "RPCAdvertiseAddr": "10.138.0.2:4647",
        "RPCMajorVersion": 1, "RPCMinorVersion": 1 } ] }"#,
    )
    .unwrap();
    let mut sample_no_evals = sample.clone();
    sample_no_evals["EvalIDs"] = Value::Null;
    let problems = shape_mismatches(&sample_no_evals, &body);
    assert!(problems.is_empty(), "{problems:?}\n{body:#}");
    assert!(body["EvalIDs"].is_null(), "{body}");
    assert_eq!(body["EvalCreateIndex"], 0);
    assert_eq!(body["Index"], 0);
    assert_eq!(resp.header("X-Nomad-Index"), Some("0"));
    assert_eq!(body["NumNodes"], 1);
    assert_eq!(body["LeaderRPCAddr"], c.rpc_addr.as_str());
    let servers = body["Servers"].as_array().unwrap();
    assert_eq!(servers[0]["RPCAdvertiseAddr"], c.rpc_addr.as_str());
    let problems = shape_mismatches(&sample["Servers"][0], &servers[0]);
    assert!(problems.is_empty(), "{problems:?}");
    // PUT works the same; the typed client reads it.
    let resp = send(
        &c.client,
        api::Method::PUT,
        &format!("/v1/node/{}/evaluate", c.node_id),
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    let (typed, meta) = c
        .client
        .nodes()
        .evaluate(&c.node_id, &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(typed.eval_ids, None);
    assert_eq!(meta.last_index, 0);
    // Nothing changed on the node.
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Events"].as_array().unwrap().len(), 1);
    // Unknown node.
    let missing = uuid_with_prefix("");
    let resp = post(&c.client, &format!("/v1/node/{missing}/evaluate"), "")
        .await
        .unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (404, "node not found"));
}

async fn purge_and_reregister(c: &impl Cluster) {
    let client = c.client();
    let id = c.node_id();
    let before = node_doc(client, id).await.unwrap();
    // A fake node too: with no agent behind it, it stays gone.
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc.register_fake("ghost", "", &[]).await.unwrap();

    let resp = post(client, &format!("/v1/node/{}/purge", fake.id), "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json().unwrap();
    let index = body["Index"].as_u64().unwrap();
    assert!(index > 0, "{body}");
    assert_eq!(body["NodeModifyIndex"].as_u64().unwrap(), index);
    assert!(body["EvalIDs"].is_null());
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(index.to_string().as_str())
    );
    let (list, meta) = client.nodes().list(&QueryOptions::new()).await.unwrap();
    assert!(list.iter().all(|n| n.id != fake.id));
    assert!(meta.last_index >= index);
    let resp = client
        .get(&format!("/v1/node/{}", fake.id), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (404, "node not found"));
    // Purging it again: not found.
    let err = client
        .nodes()
        .purge(&fake.id, &WriteOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // The agent's node: purged, then registered again by its live agent.
    let (purged, _) = client
        .nodes()
        .purge(id, &WriteOptions::default())
        .await
        .unwrap();
    assert!(purged.index > index);
    wait_for("the purged node to register again", WAIT, || async {
        let (list, _) = client.nodes().list(&QueryOptions::new()).await?;
        Ok(list.iter().any(|n| n.id == id && n.status == "ready"))
    })
    .await
    .unwrap();
    let after = node_doc(client, id).await.unwrap();
    assert!(
        after["CreateIndex"].as_u64().unwrap() > purged.index,
        "registered anew after the purge: {} vs {}",
        after["CreateIndex"],
        purged.index
    );
    assert!(after["CreateIndex"].as_u64().unwrap() > before["CreateIndex"].as_u64().unwrap());
    assert_eq!(after["Events"][0]["Message"], "Node registered");
    assert_eq!(after["Name"], before["Name"]);
    // The fake node never comes back.
    let (list, _) = client.nodes().list(&QueryOptions::new()).await.unwrap();
    assert!(list.iter().all(|n| n.id != fake.id));
}

#[tokio::test]
async fn purge_removes_and_a_live_agent_registers_again_sqlite() {
    let c = DevCluster::start_with(&["-min-heartbeat-ttl", "1s"])
        .await
        .unwrap();
    purge_and_reregister(&c).await;
}

#[tokio::test]
async fn purge_removes_and_a_live_agent_registers_again_postgres() {
    let c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s"], &[])
        .await
        .unwrap();
    purge_and_reregister(&c).await;
}

#[tokio::test]
async fn node_events_keep_the_last_ten() {
    let c = DevCluster::start().await.unwrap();
    let nodes = c.client.nodes();
    let w = WriteOptions::default();
    let mut indexes = Vec::new();
    for i in 0..12 {
        let (r, _) = nodes.eligibility(&c.node_id, i % 2 == 1, &w).await.unwrap();
        indexes.push(r.index);
    }
    let (node, _) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    let events = node.events();
    assert_eq!(events.len(), 10, "{events:?}");
    // The oldest (including "Node registered") are dropped; the newest is last.
    assert!(events.iter().all(|e| e.message != "Node registered"));
    let got: Vec<u64> = events.iter().map(|e| e.create_index).collect();
    assert_eq!(got, indexes[2..]);
    assert_eq!(
        events.last().unwrap().message,
        "Node marked as eligible for scheduling"
    );
}

#[tokio::test]
async fn eligibility_body_node_id_wins_while_drain_uses_the_path() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc.register_fake("target", "", &[]).await.unwrap();
    // NOMAD-BEHAVIOR 2.6: a non-empty NodeID in the eligibility body overrides the path.
    let resp = post(
        &c.client,
        &format!("/v1/node/{}/eligibility", c.node_id),
        &json!({"NodeID": fake.id, "Eligibility": "ineligible"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        node_doc(&c.client, &fake.id).await.unwrap()["SchedulingEligibility"],
        "ineligible"
    );
    assert_eq!(
        node_doc(&c.client, &c.node_id).await.unwrap()["SchedulingEligibility"],
        "eligible"
    );
    // NOMAD-BEHAVIOR 2.5: the drain body's NodeID is ignored; the path wins. (An allocation
    // on the node keeps the drain in progress; an empty node's drain completes at once.)
    hold_node(&c.client, &c.node_id).await.unwrap();
    let resp = post(
        &c.client,
        &format!("/v1/node/{}/drain", c.node_id),
        &json!({"NodeID": fake.id, "DrainSpec": {"Deadline": 1_000_000_000}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        node_doc(&c.client, &c.node_id).await.unwrap()["Drain"],
        true
    );
    assert_eq!(node_doc(&c.client, &fake.id).await.unwrap()["Drain"], false);
}

async fn concurrent_writes_serialize(c: &impl Cluster) {
    hold_node(c.client(), c.node_id()).await.unwrap();
    let mut futs = Vec::new();
    for i in 0..20u64 {
        let client = c.client().clone();
        let id = c.node_id().to_owned();
        futs.push(async move {
            let meta = std::collections::BTreeMap::from([("i".to_owned(), i.to_string())]);
            let (r, _) = client
                .nodes()
                .drain(
                    &id,
                    Some(DrainSpec::with_deadline(Duration::from_secs(60 + i))),
                    false,
                    Some(meta),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            (r.index, i)
        });
    }
    let mut acks = futures::future::join_all(futs).await;
    acks.sort();
    let indexes: Vec<u64> = acks.iter().map(|a| a.0).collect();
    let mut unique = indexes.clone();
    unique.dedup();
    assert_eq!(unique.len(), 20, "two writes share an index: {indexes:?}");
    // The node shows the write with the highest index, and one event per write.
    let (last_index, last_i) = *acks.last().unwrap();
    let (node, meta) = c
        .client()
        .nodes()
        .info(c.node_id(), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(meta.last_index, last_index);
    assert_eq!(node.modify_index, last_index);
    assert_eq!(
        node.drain_strategy.as_ref().unwrap().deadline,
        ((60 + last_i) * 1_000_000_000) as i64
    );
    assert_eq!(
        node.last_drain.as_ref().unwrap().meta.as_ref().unwrap()["i"],
        last_i.to_string()
    );
    let event_indexes: Vec<u64> = node.events().iter().map(|e| e.create_index).collect();
    assert_eq!(
        event_indexes,
        indexes[10..],
        "one event per write, the last ten kept"
    );
}

#[tokio::test]
async fn concurrent_writes_to_one_node_serialize_sqlite() {
    concurrent_writes_serialize(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn concurrent_writes_to_one_node_serialize_postgres() {
    concurrent_writes_serialize(&PgCluster::start().await.unwrap()).await;
}
