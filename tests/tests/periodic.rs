//! Periodic jobs over HTTP on PostgreSQL (Nomad's `PeriodicDispatch` and `Periodic.Force`):
//! children launched on a seconds cron on time and once each, across a server restart too;
//! `prohibit_overlap`; forced launches; the parent's children counts; stops; and every bad
//! input with Nomad's message.
//!
//! Nomad's cron dialect has seconds only in 7-field specs (`sec min hour dom month dow year`):
//! a 6-field spec ends with the year.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

/// Every two seconds.
const EVERY_2S: &str = "*/2 * * * * * *";

fn escaped(id: &str) -> String {
    id.replace('/', "%2F")
}

/// A periodic batch job whose task runs `script`.
fn periodic_job(id: &str, periodic: Value, script: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": "batch",
        "Periodic": periodic,
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c", script]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

/// The children of `parent` the periodic launcher made, oldest first.
async fn children(client: &Client, parent: &str) -> Vec<Value> {
    let prefix = format!("{parent}/periodic-");
    let (jobs, _) = get_json(client, &format!("/v1/jobs?prefix={}", escaped(&prefix)))
        .await
        .unwrap();
    let mut out: Vec<Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["ParentID"] == parent)
        .cloned()
        .collect();
    out.sort_by_key(launch_secs);
    out
}

/// The launch second in a child's ID.
fn launch_secs(child: &Value) -> i64 {
    let id = child["ID"].as_str().unwrap();
    let (_, secs) = id.rsplit_once("/periodic-").unwrap();
    secs.parse().unwrap()
}

async fn wait_children(client: &Client, parent: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let kids = children(client, parent).await;
        if kids.len() >= n {
            return kids;
        }
        assert!(
            Instant::now() < deadline,
            "{parent}: {} children after {within:?}",
            kids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each child registered once (version 0) with exactly one `periodic-job` evaluation.
async fn assert_launched_once(client: &Client, kids: &[Value]) {
    for child in kids {
        let id = child["ID"].as_str().unwrap();
        let (doc, _) = get_json(client, &format!("/v1/job/{}", escaped(id)))
            .await
            .unwrap();
        assert_eq!(doc["Version"], 0, "{id} registered more than once");
        assert_eq!(doc["Periodic"], Value::Null, "{id}");
        let (evals, _) = get_json(client, &format!("/v1/job/{}/evaluations", escaped(id)))
            .await
            .unwrap();
        let evals = evals.as_array().unwrap();
        assert_eq!(evals.len(), 1, "{id}: {evals:?}");
        assert_eq!(evals[0]["TriggeredBy"], "periodic-job");
    }
}

#[tokio::test]
async fn children_launch_on_time_once_each_and_stop_with_the_parent() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &periodic_job("tick", json!({"Spec": EVERY_2S}), "true"),
        )
        .await,
    );
    // The parent has no evaluation of its own; Nomad's defaults are filled in.
    let (parent, _) = get_json(client, "/v1/job/tick").await.unwrap();
    assert_eq!(
        parent["Periodic"],
        json!({"Enabled": true, "ProhibitOverlap": false, "Spec": EVERY_2S,
               "SpecType": "cron", "Specs": [], "TimeZone": "UTC"})
    );
    assert_eq!(parent["Status"], "running");
    let (evals, _) = get_json(client, "/v1/job/tick/evaluations").await.unwrap();
    assert_eq!(evals, json!([]));

    let kids = wait_children(client, "tick", 3, Duration::from_secs(20)).await;
    let mut worst = 0i128;
    for child in &kids {
        let secs = launch_secs(child);
        assert_eq!(secs % 2, 0, "{child}");
        let late = child["SubmitTime"].as_i64().unwrap() as i128 - secs as i128 * 1_000_000_000;
        assert!(late >= 0, "launched before its time: {child}");
        worst = worst.max(late);
    }
    eprintln!("latest launch: {} ms late", worst / 1_000_000);
    assert!(worst < 1_000_000_000, "a launch was {worst} ns late");
    // Consecutive launches, none missing.
    for pair in kids.windows(2) {
        assert_eq!(launch_secs(&pair[1]) - launch_secs(&pair[0]), 2, "{pair:?}");
    }
    assert_launched_once(client, &kids).await;

    // A child: the parent's spec under a derived ID, reachable URL-escaped.
    let first = kids[0]["ID"].as_str().unwrap();
    let (doc, _) = get_json(client, &format!("/v1/job/{}", escaped(first)))
        .await
        .unwrap();
    assert_eq!(doc["ParentID"], "tick");
    assert_eq!(doc["Name"], json!(first));
    assert_eq!(doc["Type"], "batch");

    // The parent's summary counts them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (summary, _) = get_json(client, "/v1/job/tick/summary").await.unwrap();
        let ch = &summary["Children"];
        let total = ch["Pending"].as_i64().unwrap()
            + ch["Running"].as_i64().unwrap()
            + ch["Dead"].as_i64().unwrap();
        if total >= 3 && ch["Dead"].as_i64().unwrap() >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "summary: {summary}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stopping the parent stops the launches.
    expect_ok(&json_call(client, Method::DELETE, "/v1/job/tick", &json!(null)).await);
    let stopped_at = children(client, "tick").await.len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = children(client, "tick").await.len();
    assert!(
        later <= stopped_at + 1,
        "launched after the stop: {stopped_at} → {later}"
    );
    let again = children(client, "tick").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(children(client, "tick").await.len(), again);
}

#[tokio::test]
async fn a_server_restart_launches_no_launch_twice() {
    let mut c = PgCluster::start().await.unwrap();
    expect_ok(
        &json_call(
            &c.client,
            Method::PUT,
            "/v1/jobs",
            &periodic_job("every", json!({"Spec": EVERY_2S}), "true"),
        )
        .await,
    );
    let before = wait_children(&c.client, "every", 2, Duration::from_secs(20)).await;
    c.restart_server().await.unwrap();
    let n = before.len() + 3;
    let kids = wait_children(&c.client, "every", n, Duration::from_secs(30)).await;
    assert_launched_once(&c.client, &kids).await;
    // Besides the launches on even seconds, at most one catch-up launch for what the downtime
    // missed (launched at the new leader's start, as Nomad does).
    let off_schedule = kids.iter().filter(|k| launch_secs(k) % 2 != 0).count();
    assert!(off_schedule <= 1, "{kids:?}");
    let mut secs: Vec<i64> = kids.iter().map(launch_secs).collect();
    secs.dedup();
    assert_eq!(secs.len(), kids.len());
    expect_ok(&json_call(&c.client, Method::DELETE, "/v1/job/every", &json!(null)).await);
}

#[tokio::test]
async fn prohibit_overlap_skips_launches_while_a_child_runs_and_force_launches_now() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &periodic_job(
                "slow",
                json!({"Spec": EVERY_2S, "ProhibitOverlap": true}),
                "sleep 60",
            ),
        )
        .await,
    );
    let kids = wait_children(client, "slow", 1, Duration::from_secs(20)).await;
    let first = kids[0]["ID"].as_str().unwrap().to_owned();
    // Three more launch times pass while the first child runs: none launches.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let kids = children(client, "slow").await;
    assert_eq!(kids.len(), 1, "{kids:?}");

    // Force launches regardless.
    let resp = expect_ok(
        &json_call(
            client,
            Method::POST,
            "/v1/job/slow/periodic/force",
            &json!(null),
        )
        .await,
    );
    let eval_id = resp["EvalID"].as_str().unwrap().to_owned();
    assert_eq!(eval_id.len(), 36, "{resp}");
    assert_eq!(resp["EvalCreateIndex"], resp["Index"]);
    assert!(resp["Index"].as_u64().unwrap() > 0);
    let (eval, _) = get_json(client, &format!("/v1/evaluation/{eval_id}"))
        .await
        .unwrap();
    assert_eq!(eval["TriggeredBy"], "periodic-job");
    let forced = eval["JobID"].as_str().unwrap();
    assert!(forced.starts_with("slow/periodic-"), "{forced}");
    assert_ne!(forced, first);
    let kids = children(client, "slow").await;
    assert_eq!(kids.len(), 2, "{kids:?}");

    // Once the running children are stopped, launches resume.
    for child in &kids {
        let id = child["ID"].as_str().unwrap();
        expect_ok(
            &json_call(
                client,
                Method::DELETE,
                &format!("/v1/job/{}", escaped(id)),
                &json!(null),
            )
            .await,
        );
    }
    wait_children(client, "slow", 3, Duration::from_secs(30)).await;
    expect_ok(
        &json_call(
            client,
            Method::DELETE,
            "/v1/job/slow?purge=true",
            &json!(null),
        )
        .await,
    );
}

#[tokio::test]
async fn force_errors_and_bad_specs_in_nomads_words() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    // A job that launches only through force (once a year), with several specs in New York.
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &periodic_job(
                "yearly",
                json!({"Specs": ["@yearly", "0 0 0 1 7 * *"], "TimeZone": "America/New_York"}),
                "true",
            ),
        )
        .await,
    );
    let resp = expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/job/yearly/periodic/force",
            &json!(null),
        )
        .await,
    );
    let (eval, _) = get_json(
        client,
        &format!("/v1/evaluation/{}", resp["EvalID"].as_str().unwrap()),
    )
    .await
    .unwrap();
    let child = eval["JobID"].as_str().unwrap().to_owned();
    let (doc, _) = get_json(client, &format!("/v1/job/{}", escaped(&child)))
        .await
        .unwrap();
    assert_eq!(doc["ParentID"], "yearly");
    let (summary, _) = get_json(client, "/v1/job/yearly/summary").await.unwrap();
    let ch = &summary["Children"];
    assert_eq!(
        ch["Pending"].as_i64().unwrap()
            + ch["Running"].as_i64().unwrap()
            + ch["Dead"].as_i64().unwrap(),
        1,
        "{summary}"
    );

    // Force on what is not a running periodic job.
    expect_error(
        &json_call(
            client,
            Method::POST,
            "/v1/job/nope/periodic/force",
            &json!(null),
        )
        .await,
        404,
        "job not found",
    );
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &json!({"Job": {"ID": "plain", "Type": "batch", "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
            "Resources": {"CPU": 20, "MemoryMB": 16}}]}]}}),
        )
        .await,
    );
    expect_error(
        &json_call(
            client,
            Method::POST,
            "/v1/job/plain/periodic/force",
            &json!(null),
        )
        .await,
        400,
        "can't force launch non-periodic job",
    );
    expect_ok(&json_call(client, Method::DELETE, "/v1/job/yearly", &json!(null)).await);
    expect_error(
        &json_call(
            client,
            Method::POST,
            "/v1/job/yearly/periodic/force",
            &json!(null),
        )
        .await,
        400,
        "can't force run non-tracked job \"yearly\" (default)",
    );
    expect_ok(
        &json_call(
            client,
            Method::PUT,
            "/v1/jobs",
            &periodic_job("off", json!({"Spec": "@daily", "Enabled": false}), "true"),
        )
        .await,
    );
    expect_error(
        &json_call(
            client,
            Method::POST,
            "/v1/job/off/periodic/force",
            &json!(null),
        )
        .await,
        400,
        "can't force run non-tracked job",
    );

    // Bad blocks at registration.
    let cases = [
        (
            json!({"Spec": "not a cron"}),
            "Invalid cron spec \"not a cron\": missing field(s)",
        ),
        (
            json!({"Spec": "61 * * * *"}),
            "Invalid cron spec \"61 * * * *\": syntax error in minute field: '61'",
        ),
        (
            json!({"Specs": ["@hourly", "* * * * * * 1900"]}),
            "Invalid cron spec \"* * * * * * 1900\": syntax error in year field",
        ),
        (
            json!({"Spec": "@daily", "TimeZone": "Mars/Olympus"}),
            "Invalid time zone \"Mars/Olympus\": unknown time zone Mars/Olympus",
        ),
        (
            json!({"Spec": "@daily", "Specs": ["@hourly"]}),
            "Only cron or crons may be used",
        ),
        (json!({"Spec": ""}), "Must specify a spec"),
        (
            json!({"Spec": "@daily", "SpecType": "interval"}),
            "Unknown periodic specification type \"interval\"",
        ),
    ];
    for (periodic, text) in cases {
        expect_error(
            &json_call(
                client,
                Method::PUT,
                "/v1/jobs",
                &periodic_job("badcron", periodic.clone(), "true"),
            )
            .await,
            400,
            text,
        );
    }
    let mut service = periodic_job("svc", json!({"Spec": "@daily"}), "true");
    service["Job"]["Type"] = json!("service");
    expect_error(
        &json_call(client, Method::PUT, "/v1/jobs", &service).await,
        400,
        "Periodic can only be used with \"batch\" or \"sysbatch\" scheduler",
    );
}
