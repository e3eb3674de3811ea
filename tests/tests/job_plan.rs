//! `PUT /v1/job/:id/plan` and `GET /v1/job/:id/versions?diffs=true` over HTTP on PostgreSQL:
//! the scheduler's annotations per group, the annotated job diff, failed placements, nothing
//! committed, the `-check-index` round trip, and the bad inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::*;
use serde_json::{Value, json};

async fn put(client: &Client, path: &str, body: &Value) -> RawResponse {
    send(client, Method::PUT, path, &body.to_string())
        .await
        .unwrap()
}

fn ok(resp: &RawResponse) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json().unwrap()
}

fn web(count: i64, args: &str) -> Value {
    json!({
        "ID": "web",
        "TaskGroups": [{"Name": "g", "Count": count, "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": [args]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    })
}

async fn running(client: &Client, job: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (allocs, _) = get_json(client, &format!("/v1/job/{job}/allocations"))
            .await
            .unwrap();
        let up = allocs
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["ClientStatus"] == "running")
            .count();
        if up == n {
            return;
        }
        assert!(Instant::now() < deadline, "{job}: {allocs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn plan_annotates_and_commits_nothing() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;

    // A new job: everything is placed, the diff is Added.
    let plan = ok(&put(
        client,
        "/v1/job/web/plan",
        &json!({"Job": web(2, "600"), "Diff": true}),
    )
    .await);
    assert_eq!(
        plan["Annotations"]["DesiredTGUpdates"]["g"],
        json!({"Canary": 0, "DestructiveUpdate": 0, "Ignore": 0, "InPlaceUpdate": 0,
            "Migrate": 0, "Place": 2, "Preemptions": 0, "Stop": 0})
    );
    assert_eq!(plan["Diff"]["Type"], "Added");
    assert_eq!(
        plan["Diff"]["TaskGroups"][0]["Updates"],
        json!({"create": 2})
    );
    assert_eq!(plan["JobModifyIndex"], 0);
    assert_eq!(plan["FailedTGAllocs"], Value::Null);
    // Nothing was written.
    let resp = send(client, Method::GET, "/v1/job/web", "").await.unwrap();
    assert_eq!(resp.status, 404);
    let (evals, _) = get_json(client, "/v1/evaluations").await.unwrap();
    assert_eq!(evals, json!([]));

    // Register, then plan a change: the count grows and the task changes destructively.
    ok(&put(client, "/v1/jobs", &json!({"Job": web(2, "600")})).await);
    // One version: nothing to compare, `Diffs` is null as in Nomad.
    let (versions, _) = get_json(client, "/v1/job/web/versions?diffs=true")
        .await
        .unwrap();
    assert_eq!(versions["Diffs"], Value::Null);
    running(client, "web", 2).await;
    let (job, _) = get_json(client, "/v1/job/web").await.unwrap();
    let plan = ok(&put(
        client,
        "/v1/job/web/plan",
        &json!({"Job": web(3, "601"), "Diff": true}),
    )
    .await);
    let updates = &plan["Annotations"]["DesiredTGUpdates"]["g"];
    assert_eq!(updates["DestructiveUpdate"], 2, "{plan}");
    assert_eq!(updates["Place"], 1, "{plan}");
    assert_eq!(plan["JobModifyIndex"], job["JobModifyIndex"]);
    let group = &plan["Diff"]["TaskGroups"][0];
    assert_eq!(group["Type"], "Edited");
    assert_eq!(
        group["Updates"],
        json!({"create": 1, "create/destroy update": 2})
    );
    assert_eq!(
        group["Fields"][0],
        json!({"Annotations": ["forces create"], "Name": "Count", "New": "3", "Old": "2",
            "Type": "Edited"})
    );
    let task = &group["Tasks"][0];
    assert_eq!(task["Annotations"], json!(["forces create/destroy update"]));
    assert_eq!(task["Objects"][0]["Name"], "Config");
    assert_eq!(task["Objects"][0]["Fields"][0]["Name"], "args[0]");

    // The same spec again: nothing to do, every allocation ignored.
    let plan = ok(&put(
        client,
        "/v1/job/web/plan",
        &json!({"Job": web(2, "600"), "Diff": true}),
    )
    .await);
    assert_eq!(
        plan["Annotations"]["DesiredTGUpdates"]["g"]["Ignore"], 2,
        "{plan}"
    );
    assert_eq!(plan["Diff"]["Type"], "None");
    // Without `Diff`, no diff.
    let plan = ok(&put(client, "/v1/job/web/plan", &json!({"Job": web(1, "600")})).await);
    assert_eq!(plan["Diff"], Value::Null);
    assert_eq!(
        plan["Annotations"]["DesiredTGUpdates"]["g"]["Stop"], 1,
        "{plan}"
    );
    let (still, _) = get_json(client, "/v1/job/web").await.unwrap();
    assert_eq!(still["JobModifyIndex"], job["JobModifyIndex"]);
    assert_eq!(still["Version"], 0);

    // `nomad job run -check-index`: the plan's index as EnforceIndex.
    let index = plan["JobModifyIndex"].as_u64().unwrap();
    ok(&put(
        client,
        "/v1/jobs",
        &json!({"Job": web(1, "600"), "EnforceIndex": true,
        "JobModifyIndex": index}),
    )
    .await);
    let stale = put(
        client,
        "/v1/jobs",
        &json!({"Job": web(2, "600"), "EnforceIndex": true,
        "JobModifyIndex": index}),
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.text());

    // Versions with their diffs, newest first.
    let (versions, _) = get_json(client, "/v1/job/web/versions?diffs=true")
        .await
        .unwrap();
    let diffs = versions["Diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{versions}");
    assert_eq!(diffs[0]["Type"], "Edited");
    assert_eq!(diffs[0]["TaskGroups"][0]["Fields"][0]["Name"], "Count");
    let (versions, _) = get_json(client, "/v1/job/web/versions").await.unwrap();
    assert_eq!(versions["Diffs"], Value::Null);

    let resp = send(client, Method::DELETE, "/v1/job/web?purge=true", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn plan_reports_what_cannot_be_placed_and_bad_inputs() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let mut job = web(1, "600");
    job["Constraints"] =
        json!([{"LTarget": "${attr.kernel.name}", "RTarget": "plan9", "Operand": "="}]);
    let plan = ok(&put(client, "/v1/job/web/plan", &json!({"Job": job})).await);
    let failed = &plan["FailedTGAllocs"]["g"];
    assert!(failed["NodesEvaluated"].as_u64().unwrap() >= 1, "{plan}");
    assert!(failed["ConstraintFiltered"].is_object(), "{plan}");
    assert_eq!(
        plan["CreatedEvals"].as_array().map(Vec::len),
        Some(1),
        "{plan}"
    );
    assert_eq!(plan["CreatedEvals"][0]["Status"], "blocked");

    // The Go api package's own plan body, nulls and all.
    let body: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/go-api/job-plan.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let plan = ok(&put(client, "/v1/job/go-plan/plan", &body).await);
    assert_eq!(
        plan["Annotations"]["DesiredTGUpdates"]["g"]["Place"], 2,
        "{plan}"
    );
    assert_eq!(plan["Diff"]["Type"], "Added");

    let bad = |resp: RawResponse, text: &str| {
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert!(
            resp.text().contains(text),
            "{:?} lacks {text:?}",
            resp.text()
        );
    };
    bad(
        put(client, "/v1/job/web/plan", &json!({"Diff": true})).await,
        "Job must be specified",
    );
    bad(
        put(
            client,
            "/v1/job/web/plan",
            &json!({"Job": {"TaskGroups": []}}),
        )
        .await,
        "Job must have a valid ID",
    );
    bad(
        put(client, "/v1/job/other/plan", &json!({"Job": web(1, "1")})).await,
        "Job ID does not match",
    );
    // The same validation errors as a register.
    let invalid = json!({"Job": {"ID": "web", "Priority": 1000, "TaskGroups": [{"Name": "g",
        "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}});
    let planned = put(client, "/v1/job/web/plan", &invalid).await;
    let registered = put(client, "/v1/jobs", &invalid).await;
    assert_eq!(planned.status, 400, "{}", planned.text());
    assert_eq!(planned.text(), registered.text());
    bad(
        put(
            client,
            "/v1/job/web/plan",
            &json!({"Job": web(1, "1"), "Diff": "yes"}),
        )
        .await,
        "Diff",
    );
    bad(
        put(client, "/v1/job/web/plan", &json!([1])).await,
        "JSON object",
    );
}
