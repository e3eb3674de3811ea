//! `GET|POST /v1/job/:id/scale` over HTTP on PostgreSQL (Nomad's `Job.Scale` and
//! `Job.ScaleStatus`): counts change through a new job version and a `job-scaling`
//! evaluation, events are kept newest first, and every bad input has its message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::*;
use serde_json::{Value, json};

async fn post(client: &Client, path: &str, body: &Value) -> RawResponse {
    send(client, Method::POST, path, &body.to_string())
        .await
        .unwrap()
}

/// A batch job (no deployment, so scaling is never blocked) with a scaling block 1..=3.
fn job(id: &str, job_type: &str) -> Value {
    json!({"Job": {"ID": id, "Type": job_type, "TaskGroups": [{"Name": "g", "Count": 1,
        "Scaling": {"Min": 1, "Max": 3, "Enabled": true},
        "Tasks": [{"Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}}]}]}})
}

async fn status(client: &Client, id: &str) -> Value {
    get_json(client, &format!("/v1/job/{id}/scale"))
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn scale_changes_counts_and_keeps_events() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let resp = send(
        client,
        Method::PUT,
        "/v1/jobs",
        &job("b", "batch").to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    let out = post(
        client,
        "/v1/job/b/scale",
        &json!({"Count": 3, "Target": {"Group": "g"},
        "Message": "more", "Meta": {"by": "test"}, "PolicyOverride": null}),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    let out: Value = out.json().unwrap();
    assert_eq!(out["EvalID"].as_str().unwrap().len(), 36, "{out}");
    let (eval, _) = get_json(
        client,
        &format!("/v1/evaluation/{}", out["EvalID"].as_str().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(eval["TriggeredBy"], "job-scaling");
    let (doc, _) = get_json(client, "/v1/job/b").await.unwrap();
    assert_eq!(doc["TaskGroups"][0]["Count"], 3);
    assert_eq!(doc["Version"], 1);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(client, "b").await;
        if s["TaskGroups"]["g"]["Running"] == 3 {
            assert_eq!(s["TaskGroups"]["g"]["Desired"], 3);
            assert_eq!(s["TaskGroups"]["g"]["Placed"], 3);
            assert_eq!(s["JobStopped"], false);
            break;
        }
        assert!(Instant::now() < deadline, "never 3 running: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An event without a count changes nothing but is kept, newest first.
    let out = post(
        client,
        "/v1/job/b/scale",
        &json!({"Target": {"Group": "g"},
        "Message": "autoscaler failed", "Error": true}),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text());
    let out: Value = out.json().unwrap();
    assert_eq!(out["EvalID"], "");
    let s = status(client, "b").await;
    let events = s["TaskGroups"]["g"]["Events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["Message"], "autoscaler failed");
    assert_eq!(events[0]["Error"], true);
    assert_eq!(events[0]["Count"], Value::Null);
    assert_eq!(events[1]["Count"], 3);
    assert_eq!(events[1]["PreviousCount"], 1);
    assert_eq!(events[1]["Meta"], json!({"by": "test"}));
    assert!(events[1]["EvalID"].is_string());

    // At most 20 events per group.
    for i in 0..25 {
        let out = post(
            client,
            "/v1/job/b/scale",
            &json!({"Target": {"Group": "g"},
            "Message": format!("note {i}")}),
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.text());
    }
    let s = status(client, "b").await;
    let events = s["TaskGroups"]["g"]["Events"].as_array().unwrap();
    assert_eq!(events.len(), 20);
    assert_eq!(events[0]["Message"], "note 24");

    let resp = send(client, Method::DELETE, "/v1/job/b?purge=true", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn scale_bad_inputs() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    for (id, t) in [("b", "batch"), ("sys", "system"), ("svc", "service")] {
        let mut body = job(id, t);
        if t == "system" {
            // System groups take no scaling block.
            body["Job"]["TaskGroups"][0]
                .as_object_mut()
                .unwrap()
                .remove("Scaling");
        }
        let resp = send(client, Method::PUT, "/v1/jobs", &body.to_string())
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let cases = [
        (
            "b",
            json!({"Count": 2}),
            400,
            "missing task group name for scaling action",
        ),
        (
            "b",
            json!({"Count": -1, "Target": {"Group": "g"}}),
            400,
            "scaling action count can't be negative",
        ),
        (
            "b",
            json!({"Count": 2, "Error": true, "Target": {"Group": "g"}}),
            400,
            "scaling action should not contain count if error is true",
        ),
        (
            "b",
            json!({"Count": 2, "Target": {"Group": "nope"}}),
            400,
            "task group \"nope\" specified for scaling does not exist in job",
        ),
        (
            "b",
            json!({"Count": 9, "Target": {"Group": "g"}}),
            400,
            "group count was greater than scaling policy maximum: 9 > 3",
        ),
        (
            "b",
            json!({"Count": 0, "Target": {"Group": "g"}}),
            400,
            "group count was less than scaling policy minimum: 0 < 1",
        ),
        (
            "b",
            json!({"Count": 2, "Target": {"Group": "g", "Job": "other"}}),
            400,
            "job ID in payload did not match URL",
        ),
        (
            "b",
            json!({"Count": "2", "Target": {"Group": "g"}}),
            400,
            "Count: invalid type",
        ),
        (
            "b",
            json!({"Count": 5_000_000_000_i64, "Target": {"Group": "g"}}),
            400,
            "new scaling count is too large",
        ),
        (
            "sys",
            json!({"Count": 2, "Target": {"Group": "g"}}),
            400,
            "jobs of type \"system\" can only be scaled between 0 and 1",
        ),
        (
            "missing",
            json!({"Count": 2, "Target": {"Group": "g"}}),
            404,
            "job \"missing\" not found",
        ),
        // A service job's first deployment is still running.
        (
            "svc",
            json!({"Count": 2, "Target": {"Group": "g"}}),
            400,
            "job scaling blocked due to active deployment",
        ),
    ];
    for (id, body, code, text) in cases {
        let resp = post(client, &format!("/v1/job/{id}/scale"), &body).await;
        assert_eq!(resp.status, code, "{body}: {}", resp.text());
        assert!(
            resp.text().contains(text),
            "{body}: {:?} lacks {text:?}",
            resp.text()
        );
    }
    let resp = send(client, Method::GET, "/v1/job/missing/scale", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 404);
    // Nothing above changed the job.
    let (doc, _) = get_json(client, "/v1/job/b").await.unwrap();
    assert_eq!(doc["Version"], 0);
    assert_eq!(doc["TaskGroups"][0]["Count"], 1);
}

#[tokio::test]
async fn scaling_policies_come_from_the_jobs_scaling_blocks() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let register = |body: Value| async move {
        let resp = send(client, Method::PUT, "/v1/jobs", &body.to_string())
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    };
    register(job("b", "batch")).await;
    let (list, _) = get_json(client, "/v1/scaling/policies").await.unwrap();
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let stub = &list[0];
    assert_eq!(stub["Type"], "horizontal");
    assert_eq!(stub["Enabled"], true);
    assert_eq!(
        stub["Target"],
        json!({"Namespace": "default", "Job": "b", "Group": "g"})
    );
    let id = stub["ID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);

    let (policy, _) = get_json(client, &format!("/v1/scaling/policy/{id}"))
        .await
        .unwrap();
    assert_eq!(policy["Min"], 1);
    assert_eq!(policy["Max"], 3);
    assert_eq!(policy["ID"], json!(id));

    // The same spec again: the same policy and no new job version.
    register(job("b", "batch")).await;
    let (doc, _) = get_json(client, "/v1/job/b").await.unwrap();
    assert_eq!(doc["Version"], 0);
    assert_eq!(doc["TaskGroups"][0]["Scaling"]["ID"], json!(id));
    // A changed bound keeps the ID.
    let mut bigger = job("b", "batch");
    bigger["Job"]["TaskGroups"][0]["Scaling"]["Max"] = json!(5);
    register(bigger).await;
    let (policy, _) = get_json(client, &format!("/v1/scaling/policy/{id}"))
        .await
        .unwrap();
    assert_eq!(policy["Max"], 5);

    register(job("other", "batch")).await;
    let (list, _) = get_json(client, "/v1/scaling/policies").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (list, _) = get_json(client, "/v1/scaling/policies?job=other")
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["Target"]["Job"], "other");
    let (list, _) = get_json(client, "/v1/scaling/policies?type=vertical_cpu")
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let (list, _) = get_json(client, "/v1/scaling/policies?namespace=elsewhere")
        .await
        .unwrap();
    assert_eq!(list, json!([]));

    let resp = send(client, Method::GET, "/v1/scaling/policy/nope", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.text(), "policy not found");
}
