//! Garbage collection over HTTP (Nomad's core scheduler GC): `PUT /v1/system/gc` removes dead
//! jobs, terminal evaluations and allocations and down nodes while leaving what still runs;
//! the periodic collectors do the same by themselves once objects pass their thresholds;
//! `PUT /v1/system/reconcile/summaries`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

fn job(id: &str, kind: &str, script: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": kind,
        "TaskGroups": [{"Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", script]},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]}]
    }})
}

async fn register(client: &Client, body: &Value) {
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", body).await);
}

async fn job_status(client: &Client, id: &str) -> Option<String> {
    let resp = json_call(client, Method::GET, &format!("/v1/job/{id}"), &Value::Null).await;
    if resp.status == 404 {
        return None;
    }
    Some(expect_ok(&resp)["Status"].as_str().unwrap().to_owned())
}

async fn wait_status(client: &Client, id: &str, want: &str) {
    wait_for(&format!("job {id} to be {want}"), WAIT, || async {
        Ok(job_status(client, id).await.as_deref() == Some(want))
    })
    .await
    .unwrap();
}

async fn ids(client: &Client, path: &str) -> Vec<(String, String)> {
    let (list, _) = get_json(client, path).await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["JobID"].as_str().unwrap_or_default().to_owned(),
                v["ID"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn all_allocs_terminal(client: &Client, id: &str) -> bool {
    let (allocs, _) = get_json(client, &format!("/v1/job/{id}/allocations"))
        .await
        .unwrap();
    let allocs = allocs.as_array().unwrap();
    !allocs.is_empty()
        && allocs.iter().all(|a| {
            matches!(
                a["ClientStatus"].as_str(),
                Some("complete" | "failed" | "lost")
            )
        })
}

#[tokio::test]
async fn forced_gc_removes_what_is_finished_and_keeps_what_runs() {
    let c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"], &[])
        .await
        .unwrap();
    let client = &c.client;
    register(client, &job("done", "batch", "exit 0")).await;
    register(client, &job("broken", "batch", "exit 3")).await;
    register(client, &job("keep", "service", "sleep 600")).await;
    register(client, &job("stopped", "service", "sleep 600")).await;
    wait_status(client, "done", "dead").await;
    wait_status(client, "broken", "dead").await;
    wait_status(client, "keep", "running").await;
    wait_status(client, "stopped", "running").await;
    expect_ok(&json_call(client, Method::DELETE, "/v1/job/stopped", &Value::Null).await);
    wait_for("stopped's allocation to finish", WAIT, || async {
        Ok(all_allocs_terminal(client, "stopped").await)
    })
    .await
    .unwrap();
    wait_status(client, "stopped", "dead").await;

    // A node that went down with nothing left on it.
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc.register_fake("gone", "", &[]).await.unwrap();
    wait_for("the fake node to be down", WAIT, || async {
        Ok(node_doc(client, &fake.id).await?["Status"] == "down")
    })
    .await
    .unwrap();

    let resp = json_call(client, Method::PUT, "/v1/system/gc", &Value::Null).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "");

    // The answer comes when the collection is done.
    for id in ["done", "broken", "stopped"] {
        assert_eq!(job_status(client, id).await, None, "{id} survived");
        let resp = json_call(
            client,
            Method::GET,
            &format!("/v1/job/{id}/versions"),
            &Value::Null,
        )
        .await;
        assert_eq!(resp.status, 404, "{id}'s versions survived");
    }
    assert_eq!(job_status(client, "keep").await.as_deref(), Some("running"));
    let evals = ids(client, "/v1/evaluations").await;
    assert!(!evals.is_empty());
    assert!(evals.iter().all(|(job, _)| job == "keep"), "{evals:?}");
    let allocs = ids(client, "/v1/allocations").await;
    assert_eq!(allocs.len(), 1, "{allocs:?}");
    assert_eq!(allocs[0].0, "keep");
    let resp = json_call(
        client,
        Method::GET,
        &format!("/v1/node/{}", fake.id),
        &Value::Null,
    )
    .await;
    assert_eq!(resp.status, 404, "the down node survived: {}", resp.text());
    assert_eq!(
        node_doc(client, &c.node_id).await.unwrap()["Status"],
        "ready"
    );

    // A second run finds nothing more; the running job is untouched.
    let resp = json_call(client, Method::PUT, "/v1/system/gc", &Value::Null).await;
    assert_eq!(resp.status, 200);
    assert_eq!(ids(client, "/v1/allocations").await, allocs);

    // The IDs are free again: a purged-by-GC job registers anew at version 0.
    register(client, &job("done", "batch", "exit 0")).await;
    let (doc, _) = get_json(client, "/v1/job/done").await.unwrap();
    assert_eq!(doc["Version"], 0);
}

#[tokio::test]
async fn system_endpoints_refuse_other_methods() {
    let c = DevCluster::start().await.unwrap();
    for path in ["/v1/system/gc", "/v1/system/reconcile/summaries"] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let resp = json_call(&c.client, method.clone(), path, &Value::Null).await;
            assert_eq!(resp.status, 405, "{method:?} {path}: {}", resp.text());
        }
    }
}

#[tokio::test]
async fn reconcile_summaries_answers_with_an_index_and_keeps_statuses() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    register(client, &job("done", "batch", "exit 0")).await;
    wait_status(client, "done", "dead").await;
    let (before, _) = get_json(client, "/v1/job/done/summary").await.unwrap();
    let resp = json_call(
        client,
        Method::PUT,
        "/v1/system/reconcile/summaries",
        &Value::Null,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "");
    let index: u64 = resp
        .header("x-nomad-index")
        .expect("X-Nomad-Index")
        .parse()
        .unwrap();
    assert!(index > 0);
    let (after, _) = get_json(client, "/v1/job/done/summary").await.unwrap();
    assert_eq!(before["Summary"], after["Summary"]);
    assert_eq!(job_status(client, "done").await.as_deref(), Some("dead"));
}

#[tokio::test]
async fn the_collectors_run_by_themselves_past_their_thresholds() {
    let dir = TempDir::new("caravan-gc-config").unwrap();
    let config = dir.path().join("agent.hcl");
    std::fs::write(
        &config,
        r#"
        server {
          eval_gc_interval        = "1s"
          eval_gc_threshold       = "1s"
          batch_eval_gc_threshold = "1s"
          job_gc_interval         = "1s"
          job_gc_threshold        = "1s"
        }
        "#,
    )
    .unwrap();
    let c = DevCluster::start_with(&["-config", config.to_str().unwrap()])
        .await
        .unwrap();
    let client = &c.client;
    register(client, &job("keep", "service", "sleep 600")).await;
    register(client, &job("done", "batch", "exit 0")).await;
    wait_for("the finished batch job to be collected", WAIT, || async {
        Ok(job_status(client, "done").await.is_none())
    })
    .await
    .unwrap();
    assert_eq!(job_status(client, "keep").await.as_deref(), Some("running"));
    let allocs = ids(client, "/v1/allocations").await;
    assert!(allocs.iter().all(|(job, _)| job == "keep"), "{allocs:?}");
}
