//! The exact request bodies HashiCorp's Go `api` package sends (`tests/go-api/`, with every
//! unset pointer as `null`) against a cluster on PostgreSQL: each is accepted and has the
//! effect of the same body with the `null` fields left out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/go-api/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The body with every `null` object entry left out.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A stored job without what differs between two registrations of the same spec.
fn spec_of(mut job: Value) -> Value {
    for key in [
        "ID",
        "Name",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "SubmitTime",
        "Status",
        "Version",
        "Stable",
    ] {
        job.as_object_mut().unwrap().remove(key);
    }
    job
}

async fn put(client: &Client, path: &str, body: &Value) -> (u16, Value) {
    let resp = send(client, Method::PUT, path, &body.to_string())
        .await
        .unwrap();
    let value = resp.json().unwrap_or(Value::Null);
    (resp.status, value)
}

#[tokio::test]
async fn go_register_bodies_store_what_their_null_free_forms_store() {
    let c = PgCluster::start().await.unwrap();
    for name in [
        "job-register-minimal",
        "job-register-rich",
        "job-register-rich-canonicalized",
        "job-register-parameterized",
    ] {
        let body = fixture(name);
        let id = body["Job"]["ID"].as_str().unwrap().to_owned();
        let (status, resp) = put(&c.client, "/v1/jobs", &body).await;
        assert_eq!(status, 200, "{name}: {resp}");
        assert!(
            resp["JobModifyIndex"].as_u64().unwrap() > 0,
            "{name}: {resp}"
        );

        let mut null_free = without_nulls(&body);
        let other_id = format!("{id}-null-free");
        null_free["Job"]["ID"] = json!(other_id);
        null_free["Job"]["Name"] = json!(other_id);
        let (status, resp) = put(&c.client, "/v1/jobs", &null_free).await;
        assert_eq!(status, 200, "{name} without nulls: {resp}");

        let (with_nulls, _) = get_json(&c.client, &format!("/v1/job/{id}")).await.unwrap();
        let (left_out, _) = get_json(&c.client, &format!("/v1/job/{other_id}"))
            .await
            .unwrap();
        assert_eq!(spec_of(with_nulls.clone()), spec_of(left_out), "{name}");
        assert_eq!(with_nulls["Name"], json!(id));
    }

    // The service jobs are placed like any other: two allocations of the rich job run.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (allocs, _) = get_json(&c.client, "/v1/job/go-rich/allocations")
            .await
            .unwrap();
        let running = allocs
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["ClientStatus"] == "running")
            .count();
        if running == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "go-rich never ran: {allocs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in [
        "go-rich",
        "go-rich-null-free",
        "go-rich-canonical",
        "go-rich-canonical-null-free",
        "go-minimal",
        "go-minimal-null-free",
    ] {
        let resp = send(
            &c.client,
            Method::DELETE,
            &format!("/v1/job/{id}?purge=true"),
            "",
        )
        .await
        .unwrap();
        assert_eq!(resp.status, 200, "{id}: {}", resp.text());
    }
}

#[tokio::test]
async fn go_node_bodies_drain_and_mark_eligibility() {
    let c = PgCluster::start().await.unwrap();
    let node = c.node_id.clone();
    let with_node = |name: &str| {
        let text = fixture(name).to_string().replace("NODE", &node);
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let node_doc = || async {
        get_json(&c.client, &format!("/v1/node/{node}"))
            .await
            .unwrap()
            .0
    };

    let (status, resp) = put(
        &c.client,
        &format!("/v1/node/{node}/eligibility"),
        &with_node("node-eligibility"),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(node_doc().await["SchedulingEligibility"], "ineligible");

    let (status, resp) = put(
        &c.client,
        &format!("/v1/node/{node}/drain"),
        &with_node("node-drain"),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    // The node runs nothing, so the drain may already be complete: either it is still
    // draining with the one-hour deadline, or its last drain is recorded.
    let doc = node_doc().await;
    let draining = doc["DrainStrategy"]["Deadline"] == 3_600_000_000_000_i64
        && doc["DrainStrategy"]["IgnoreSystemJobs"] == false;
    let drained = doc["LastDrain"]["Status"] == "complete"
        && doc["Events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["Message"] == "Node drain strategy set");
    assert!(draining || drained, "{doc}");

    // Off: `DrainSpec: null` with `MarkEligible: true`.
    let (status, resp) = put(
        &c.client,
        &format!("/v1/node/{node}/drain"),
        &with_node("node-drain-off"),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let doc = node_doc().await;
    assert_eq!(doc["DrainStrategy"], Value::Null, "{doc}");
    assert_eq!(doc["SchedulingEligibility"], "eligible");
}
