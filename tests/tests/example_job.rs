//! The README's example job (`example.nomad.hcl` at the repository root), so the file cannot
//! rot: parsed by `POST /v1/jobs/parse` exactly as the README's jq pipeline sends it,
//! registered, running on a dev agent, printing its lines, and answering SIGHUP as it says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use caravan_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn example_hcl() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../example.nomad.hcl");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The task's stdout so far.
async fn stdout(c: &DevCluster, alloc: &str) -> String {
    let r = send(
        &c.client,
        api::Method::GET,
        &format!("/v1/client/fs/logs/{alloc}?task=server&type=stdout&plain=true"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[tokio::test]
async fn the_example_job_parses_registers_and_runs() {
    let c = DevCluster::start().await.unwrap();

    // jq -Rs '{JobHCL: ., Canonicalize: true}' example.nomad.hcl | curl -XPOST -d @- .../parse
    let body = json!({"JobHCL": example_hcl(), "Canonicalize": true});
    let r = post(&c.client, "/v1/jobs/parse", &body.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let job: Value = r.json().unwrap();
    assert_eq!(job["ID"], "example");
    assert_eq!(job["Type"], "service");
    let task = &job["TaskGroups"][0]["Tasks"][0];
    assert_eq!(task["Name"], "server");
    assert_eq!(task["Driver"], "raw_exec");

    // jq '{Job: .}' job.json | curl -XPUT -d @- .../v1/jobs
    register_job(&c.client, &job).await.unwrap();
    let alloc = running_alloc_id(&c.client, "example", WAIT).await.unwrap();
    wait_for("the first tick", WAIT, || async {
        Ok(stdout(&c, &alloc).await.contains("tick 1\n"))
    })
    .await
    .unwrap();

    let r = post(
        &c.client,
        &format!("/v1/client/allocation/{alloc}/signal"),
        r#"{"Signal":"SIGHUP"}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for("the task to answer SIGHUP", WAIT, || async {
        Ok(stdout(&c, &alloc).await.contains("got SIGHUP\n"))
    })
    .await
    .unwrap();
    let (doc, _) = get_json(&c.client, &format!("/v1/allocation/{alloc}"))
        .await
        .unwrap();
    assert_eq!(doc["ClientStatus"], "running", "{}", doc["TaskStates"]);
}
