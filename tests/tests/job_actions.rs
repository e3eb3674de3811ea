//! Dispatch, revert and stable over HTTP on PostgreSQL (Nomad's `Job.Dispatch`, `Job.Revert`,
//! `Job.Stable`): the child jobs, their payload file and meta, idempotency tokens, the
//! parent's children counts, versions, and every bad input with its message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

/// A parameterized batch job whose task prints its payload file and its meta.
fn parameterized(id: &str, payload: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": "batch",
        "ParameterizedJob": {"Payload": payload, "MetaRequired": ["time"], "MetaOptional": ["who"]},
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "DispatchPayload": {"File": "in/payload.txt"},
            "Config": {"command": "/bin/sh",
                "args": ["-c", "cat local/in/payload.txt 2>/dev/null; echo; echo time=$NOMAD_META_time"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

fn escaped(id: &str) -> String {
    id.replace('/', "%2F")
}

#[tokio::test]
async fn dispatch_runs_children_with_payload_and_meta() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &parameterized("param", "optional"),
        )
        .await,
    );
    // The parent itself is never placed: no evaluation, no allocation.
    let (evals, _) = get_json(client, "/v1/job/param/evaluations").await.unwrap();
    assert_eq!(evals, json!([]));

    let first = expect_ok(
        &json_call(
            client,
            Method::POST,
            "/v1/job/param/dispatch",
            &json!({"Payload": "aGVsbG8=", "Meta": {"time": "5"}, "IdempotencyToken": "t-1"}),
        )
        .await,
    );
    let child = first["DispatchedJobID"].as_str().unwrap().to_owned();
    let suffix = child.strip_prefix("param/dispatch-").unwrap();
    let (secs, hex) = suffix.split_once('-').unwrap();
    assert!(secs.parse::<u64>().is_ok() && hex.len() == 8, "{child}");
    assert!(first["EvalID"].as_str().unwrap().len() == 36, "{first}");
    assert_eq!(first["EvalCreateIndex"], first["Index"]);
    assert!(first["JobCreateIndex"].as_u64().unwrap() > 0);

    // The same token again: the first child, and no new job.
    let again = expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/job/param/dispatch?idempotency_token=t-1",
            &json!({"Meta": {"time": "9"}}),
        )
        .await,
    );
    assert_eq!(again["DispatchedJobID"], json!(child));
    assert_eq!(again["EvalID"], "");

    let (doc, _) = get_json(client, &format!("/v1/job/{}", escaped(&child)))
        .await
        .unwrap();
    assert_eq!(doc["ParentID"], "param");
    assert_eq!(doc["Dispatched"], true);
    assert_eq!(doc["Name"], json!(child));
    assert_eq!(doc["Meta"]["time"], "5");
    assert_eq!(doc["DispatchIdempotencyToken"], "t-1");

    // The task read its payload file and its meta.
    let deadline = Instant::now() + Duration::from_secs(60);
    let alloc = loop {
        let (allocs, _) = get_json(client, &format!("/v1/job/{}/allocations", escaped(&child)))
            .await
            .unwrap();
        if let Some(a) = allocs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["ClientStatus"] == "complete")
        {
            break a["ID"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "child never completed: {allocs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let resp = json_call(
        client,
        Method::GET,
        &format!("/v1/client/fs/cat/{alloc}?path=alloc/logs/t.stdout.0"),
        &Value::Null,
    )
    .await;
    assert_eq!(resp.text(), "hello\ntime=5\n");
    let resp = json_call(
        client,
        Method::GET,
        &format!("/v1/client/fs/cat/{alloc}?path=t/local/in/payload.txt"),
        &Value::Null,
    )
    .await;
    assert_eq!(resp.text(), "hello");

    // A second child; the parent counts both once they finished.
    expect_ok(
        &json_call(
            client,
            Method::POST,
            "/v1/job/param/dispatch",
            &json!({"Meta": {"time": "1"}}),
        )
        .await,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (summary, _) = get_json(client, "/v1/job/param/summary").await.unwrap();
        if summary["Children"] == json!({"Dead": 2, "Pending": 0, "Running": 0}) {
            break;
        }
        assert!(Instant::now() < deadline, "children not counted: {summary}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dispatch_bad_inputs() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &parameterized("req", "required"),
        )
        .await,
    );
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &parameterized("forbid", "forbidden"),
        )
        .await,
    );
    let plain = json!({"Job": {"ID": "plain", "Type": "batch", "Constraints": [
        {"LTarget": "${attr.kernel.name}", "RTarget": "none", "Operand": "="}],
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec",
        "Config": {"command": "/bin/true"}}]}]}});
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &plain).await);

    let dispatch = |id: &'static str, body: Value| async move {
        json_call(
            client,
            Method::POST,
            &format!("/v1/job/{id}/dispatch"),
            &body,
        )
        .await
    };
    expect_error(
        &dispatch("plain", json!({})).await,
        400,
        "Specified job \"plain\" is not a parameterized job",
    );
    expect_error(
        &dispatch("nope", json!({})).await,
        404,
        "parameterized job not found",
    );
    expect_error(
        &dispatch("req", json!({"Meta": {"time": "1"}})).await,
        400,
        "Payload is not provided but required by parameterized job",
    );
    expect_error(
        &dispatch("forbid", json!({"Meta": {"time": "1"}, "Payload": "aGk="})).await,
        400,
        "Payload provided but forbidden by parameterized job",
    );
    let big = base64_of(&vec![b'x'; 16 * 1024 + 1]);
    expect_error(
        &dispatch("req", json!({"Meta": {"time": "1"}, "Payload": big})).await,
        400,
        "Payload exceeds maximum size; 16385 > 16384",
    );
    expect_error(
        &dispatch("req", json!({"Payload": "aGk="})).await,
        400,
        "Dispatch did not provide required meta keys: [time]",
    );
    expect_error(
        &dispatch(
            "req",
            json!({"Payload": "aGk=", "Meta": {"time": "1", "z": "2", "a": "3"}}),
        )
        .await,
        400,
        "Dispatch request included unpermitted metadata keys: [a z]",
    );
    expect_error(
        &dispatch(
            "req",
            json!({"Payload": "not base64!", "Meta": {"time": "1"}}),
        )
        .await,
        400,
        "Payload must be base64-encoded bytes",
    );
    expect_error(
        &dispatch("req", json!({"JobID": "other"})).await,
        400,
        "Job ID does not match",
    );
    expect_error(
        &dispatch("req", json!({"Meta": "time"})).await,
        400,
        "Request decode failed: Meta: invalid type",
    );
    // A stopped parameterized job takes no more dispatches.
    expect_ok(&json_call(client, Method::DELETE, "/v1/job/req", &Value::Null).await);
    expect_error(
        &dispatch("req", json!({"Payload": "aGk=", "Meta": {"time": "1"}})).await,
        400,
        "Specified job \"req\" is stopped",
    );
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A service job that is never placed (no node has this kernel), with `args` as its spec.
fn service(id: &str, args: &str) -> Value {
    json!({"Job": {"ID": id, "Constraints": [
        {"LTarget": "${attr.kernel.name}", "RTarget": "none", "Operand": "="}],
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec",
        "Config": {"command": "/bin/sleep", "args": [args]}}]}]}})
}

#[tokio::test]
async fn revert_and_stable() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &service("web", "1")).await);
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &service("web", "2")).await);
    let revert = |body: Value| async move {
        json_call(client, Method::POST, "/v1/job/web/revert", &body).await
    };
    expect_error(
        &revert(json!({"JobID": "web", "JobVersion": 1})).await,
        400,
        "can't revert to current version",
    );
    expect_error(
        &revert(json!({"JobID": "web", "JobVersion": 7})).await,
        404,
        "job \"web\" in namespace \"default\" at version 7 not found",
    );
    expect_error(
        &revert(json!({"JobID": "web", "JobVersion": 0, "EnforcePriorVersion": 0})).await,
        409,
        "Current job has version 1; enforcing version 0",
    );
    expect_error(
        &revert(json!({"JobVersion": 0})).await,
        400,
        "JobID must be specified",
    );
    expect_error(
        &revert(json!({"JobID": "other", "JobVersion": 0})).await,
        400,
        "Job ID does not match",
    );
    expect_error(
        &revert(json!({"JobID": "web", "JobVersion": "zero"})).await,
        400,
        "JobVersion: invalid type",
    );
    expect_error(
        &json_call(
            client,
            Method::POST,
            "/v1/job/gone/revert",
            &json!({"JobID": "gone"}),
        )
        .await,
        404,
        "job \"gone\" not found",
    );

    // Go's body: EnforcePriorVersion null is no check.
    let out = expect_ok(
        &revert(
            json!({"JobID": "web", "JobVersion": 0, "EnforcePriorVersion": null,
        "ConsulToken": null, "VaultToken": null}),
        )
        .await,
    );
    assert!(out["EvalID"].as_str().unwrap().len() == 36, "{out}");
    let (job, _) = get_json(client, "/v1/job/web").await.unwrap();
    assert_eq!(job["Version"], 2);
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["args"],
        json!(["1"])
    );
    let out = expect_ok(
        &revert(json!({"JobID": "web", "JobVersion": 1, "EnforcePriorVersion": 2})).await,
    );
    assert_eq!(out["JobModifyIndex"], out["Index"]);

    // Stable: the version and, for the current one, the job.
    let stable = |body: Value| async move {
        json_call(client, Method::POST, "/v1/job/web/stable", &body).await
    };
    let out = expect_ok(&stable(json!({"JobID": "web", "JobVersion": 3, "Stable": true})).await);
    assert!(out["Index"].as_u64().unwrap() > 0, "{out}");
    let (job, _) = get_json(client, "/v1/job/web").await.unwrap();
    assert_eq!(job["Stable"], true);
    expect_ok(&stable(json!({"JobID": "web", "JobVersion": 1, "Stable": true})).await);
    let (versions, _) = get_json(client, "/v1/job/web/versions").await.unwrap();
    let flags: Vec<(u64, bool)> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["Version"].as_u64().unwrap(),
                v["Stable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(flags, [(3, true), (2, false), (1, true), (0, false)]);
    expect_error(
        &stable(json!({"JobID": "web", "JobVersion": 9, "Stable": true})).await,
        404,
        "at version 9 not found",
    );
    expect_error(
        &stable(json!({"Stable": true})).await,
        400,
        "JobID must be specified",
    );
    expect_error(
        &stable(json!({"JobID": "web", "Stable": "yes"})).await,
        400,
        "Stable: invalid type",
    );
}

#[tokio::test]
async fn submissions_are_kept_per_version() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let mut body = service("src", "1");
    body["Submission"] = json!({"Source": "job \"src\" {}", "Format": "hcl2",
        "VariableFlags": {"a": "1"}, "Variables": "x = 1", "Namespace": null, "JobID": null});
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &body).await);
    let mut body = service("src", "2");
    body["Submission"] = json!({"Source": "job \"src\" { v2 }", "Format": "hcl2"});
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &body).await);
    // A register without a source keeps none for its version.
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &service("src", "3")).await);

    let (v0, _) = get_json(client, "/v1/job/src/submission?version=0")
        .await
        .unwrap();
    assert_eq!(v0["Source"], "job \"src\" {}");
    assert_eq!(v0["Format"], "hcl2");
    assert_eq!(v0["VariableFlags"], json!({"a": "1"}));
    assert_eq!(v0["Variables"], "x = 1");
    assert_eq!(v0["JobID"], "src");
    assert_eq!(v0["Namespace"], "default");
    assert_eq!(v0["Version"], 0);
    let (v1, _) = get_json(client, "/v1/job/src/submission?version=1")
        .await
        .unwrap();
    assert_eq!(v1["Source"], "job \"src\" { v2 }");
    assert_eq!(v1["VariableFlags"], Value::Null);

    let get = |path: &'static str| async move {
        json_call(client, Method::GET, path, &Value::Null).await
    };
    expect_error(
        &get("/v1/job/src/submission?version=2").await,
        404,
        "job source not found",
    );
    expect_error(
        &get("/v1/job/src/submission").await,
        400,
        "Unable to parse job submission version parameter",
    );
    expect_error(
        &get("/v1/job/src/submission?version=-1").await,
        400,
        "Unable to parse job submission version parameter",
    );
    let mut body = service("src", "4");
    body["Submission"] = json!("job {}");
    expect_error(
        &json_call(client, Method::PUT, "/v1/jobs", &body).await,
        400,
        "Submission",
    );

    // Purged with the job.
    expect_ok(
        &json_call(
            client,
            Method::DELETE,
            "/v1/job/src?purge=true",
            &Value::Null,
        )
        .await,
    );
    expect_error(
        &get("/v1/job/src/submission?version=0").await,
        404,
        "job source not found",
    );
}
