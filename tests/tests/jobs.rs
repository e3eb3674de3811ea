//! The Jobs API over HTTP: register (both endpoints, Nomad's defaults, versions, EnforceIndex),
//! list (prefix, namespaces, filter, pages, reverse, meta, blocking), reads, stop and purge,
//! evaluate, validate, and the bad inputs with their messages. The reference is Nomad's
//! `command/agent/job_endpoint.go` and `nomad/job_endpoint.go`; where Caravan answers a 4xx
//! for what Nomad answers 500 (EnforceIndex conflicts: 409, validation errors: 400), it is on
//! purpose.
//!
//! Placement is not tested here: every job carries a constraint no node meets, so the
//! scheduler places nothing and blocks its evaluation. A job stays `pending` that way (its
//! blocked evaluation is not terminal), no task ever runs, and once its evaluations are
//! processed (see [`settle`]) nothing changes on its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::*;
use serde_json::{Value, json};

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// A constraint no node meets.
fn unplaceable() -> Value {
    json!([{"LTarget": "${attr.kernel.name}", "RTarget": "no-such-kernel", "Operand": "="}])
}

/// A minimal service job that is never placed: one group `web` with one raw_exec task `app`.
fn job(id: &str) -> Value {
    json!({
        "ID": id,
        "Constraints": unplaceable(),
        "TaskGroups": [{
            "Name": "web",
            "Tasks": [{
                "Name": "app",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["60"]}
            }]
        }]
    })
}

/// `job(id)` with `Type` set.
fn typed_job(id: &str, job_type: &str) -> Value {
    let mut j = job(id);
    j["Type"] = json!(job_type);
    j
}

/// A periodic batch job: Nomad creates no evaluation for it on register.
fn periodic_job(id: &str) -> Value {
    let mut j = typed_job(id, "batch");
    j["Periodic"] = json!({"Enabled": true, "Spec": "*/5 * * * *", "SpecType": "cron"});
    j
}

async fn put(client: &Client, path: &str, body: &Value) -> RawResponse {
    send(client, Method::PUT, path, &body.to_string())
        .await
        .unwrap()
}

/// PUT /v1/jobs with `{"Job": job}`; must succeed; the response body.
async fn register(client: &Client, job: &Value) -> Value {
    let resp = put(client, "/v1/jobs", &json!({ "Job": job })).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json().unwrap()
}

async fn get(client: &Client, path: &str) -> RawResponse {
    client.get(path, &QueryOptions::new()).await.unwrap()
}

async fn job_doc(client: &Client, id: &str) -> Value {
    get_json(client, &format!("/v1/job/{id}")).await.unwrap().0
}

async fn evals_of(client: &Client, id: &str) -> Vec<Value> {
    let (evals, _) = get_json(client, &format!("/v1/job/{id}/evaluations"))
        .await
        .unwrap();
    evals.as_array().unwrap().clone()
}

/// The evaluations the Jobs API created for job `id` (not the scheduler's blocked ones).
async fn register_evals_of(client: &Client, id: &str) -> Vec<Value> {
    let mut evals = evals_of(client, id).await;
    evals.retain(|e| e["TriggeredBy"] == "job-register");
    evals
}

/// The statuses an evaluation a request created may have by the time it is read: not taken
/// up yet, processed, or superseded by a newer one of the same job.
const REQUESTED_EVAL_STATUSES: [&str; 3] = ["pending", "complete", "canceled"];

#[track_caller]
fn assert_requested_eval_status(eval: &Value) {
    let status = eval["Status"].as_str().unwrap();
    assert!(REQUESTED_EVAL_STATUSES.contains(&status), "{eval}");
}

/// Waits until the scheduler has taken up every evaluation of job `id` (none is `pending`).
async fn settle(client: &Client, id: &str) {
    wait_for("the job's evaluations to be processed", WAIT, || async {
        let evals = evals_of(client, id).await;
        Ok(evals.iter().all(|e| e["Status"] != "pending"))
    })
    .await
    .unwrap();
}

/// The versions of a job, as `/versions` lists them (newest first).
async fn versions_of(client: &Client, id: &str) -> Vec<u64> {
    let (body, _) = get_json(client, &format!("/v1/job/{id}/versions"))
        .await
        .unwrap();
    body["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_u64().unwrap())
        .collect()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The response is `status` and its body contains `want`.
#[track_caller]
fn assert_refused(resp: &RawResponse, status: u16, want: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert!(
        resp.text().contains(want),
        "want {want:?} in {:?}",
        resp.text()
    );
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|j| j["ID"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Register, read, versions, EnforceIndex, stop, purge: on both stores
// ---------------------------------------------------------------------------------------------

async fn lifecycle(c: &impl Cluster) {
    let client = c.client();

    // Register through PUT /v1/jobs.
    let resp = put(client, "/v1/jobs", &json!({ "Job": job("web") })).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let first: Value = resp.json().unwrap();
    assert_eq!(
        keys(&first),
        [
            "EvalCreateIndex",
            "EvalID",
            "Index",
            "JobModifyIndex",
            "KnownLeader",
            "LastContact",
            "NextToken",
            "Warnings"
        ],
        "{first}"
    );
    let jmi = u64_of(&first, "JobModifyIndex");
    assert!(jmi >= 1);
    assert_eq!(u64_of(&first, "Index"), jmi, "{first}");
    assert_eq!(u64_of(&first, "EvalCreateIndex"), jmi, "{first}");
    assert_eq!(first["EvalID"].as_str().unwrap().len(), 36, "{first}");
    assert_eq!(first["Warnings"], "");
    assert_eq!(resp.header("X-Nomad-Index"), Some(jmi.to_string().as_str()));

    // The stored job has Nomad's defaults.
    let resp = get(client, "/v1/job/web").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let job_v0: Value = resp.json().unwrap();
    assert_eq!(resp.query_meta().last_index, u64_of(&job_v0, "ModifyIndex"));
    assert_service_defaults(&job_v0);
    assert_eq!(u64_of(&job_v0, "CreateIndex"), jmi);
    assert_eq!(u64_of(&job_v0, "JobModifyIndex"), jmi);
    assert!(u64_of(&job_v0, "ModifyIndex") >= jmi);
    assert!(job_v0["SubmitTime"].as_i64().unwrap() > 1_600_000_000 * SECOND);

    // Its evaluation.
    let evals = register_evals_of(client, "web").await;
    assert_eq!(evals.len(), 1, "{evals:?}");
    let eval = &evals[0];
    assert_eq!(eval["ID"], first["EvalID"]);
    assert_eq!(eval["JobID"], "web");
    assert_eq!(eval["Namespace"], "default");
    assert_eq!(eval["TriggeredBy"], "job-register");
    assert_requested_eval_status(eval);
    assert_eq!(eval["Type"], "service");
    assert_eq!(eval["Priority"], 50);
    assert_eq!(u64_of(eval, "JobModifyIndex"), jmi);
    assert_eq!(u64_of(eval, "CreateIndex"), jmi);

    // The same job again, through POST /v1/job/:id: no new version, a new evaluation.
    let resp = send(
        client,
        Method::POST,
        "/v1/job/web",
        &json!({ "Job": job("web") }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let same: Value = resp.json().unwrap();
    assert_eq!(u64_of(&same, "JobModifyIndex"), jmi, "{same}");
    assert!(u64_of(&same, "Index") > jmi, "{same}");
    assert_eq!(same["EvalCreateIndex"], same["Index"]);
    assert_ne!(same["EvalID"], first["EvalID"]);
    let job_again = job_doc(client, "web").await;
    assert_eq!(job_again["Version"], 0);
    assert_eq!(u64_of(&job_again, "JobModifyIndex"), jmi);
    assert_eq!(versions_of(client, "web").await, [0]);
    let evals = register_evals_of(client, "web").await;
    assert_eq!(evals.len(), 2);
    let second_eval = evals.iter().find(|e| e["ID"] == same["EvalID"]).unwrap();
    assert_eq!(u64_of(second_eval, "JobModifyIndex"), jmi);

    // A changed job, through PUT /v1/job/:id: version 1, listed first.
    let mut changed = job("web");
    changed["Priority"] = json!(70);
    let resp = put(client, "/v1/job/web", &json!({ "Job": changed })).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v1: Value = resp.json().unwrap();
    let jmi1 = u64_of(&v1, "JobModifyIndex");
    assert!(jmi1 > u64_of(&same, "Index"));
    assert_eq!(u64_of(&v1, "Index"), jmi1);
    let job_v1 = job_doc(client, "web").await;
    assert_eq!(job_v1["Version"], 1);
    assert_eq!(job_v1["Priority"], 70);
    assert_eq!(u64_of(&job_v1, "JobModifyIndex"), jmi1);
    assert_eq!(
        u64_of(&job_v1, "CreateIndex"),
        jmi,
        "the job keeps its CreateIndex"
    );
    let resp = get(client, "/v1/job/web/versions").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let versions: Value = resp.json().unwrap();
    assert_eq!(
        keys(&versions),
        [
            "Diffs",
            "Index",
            "KnownLeader",
            "LastContact",
            "NextToken",
            "Versions"
        ]
    );
    assert!(versions["Diffs"].is_null());
    assert_eq!(versions_of(client, "web").await, [1, 0]);
    assert_eq!(versions["Versions"][0]["Priority"], 70);
    assert_eq!(versions["Versions"][1]["Priority"], 50);
    assert_eq!(u64_of(&versions["Versions"][1], "JobModifyIndex"), jmi);

    // EnforceIndex: Nomad's three messages, as 409.
    let enforce = |job: Value, index: u64| json!({ "Job": job, "EnforceIndex": true, "JobModifyIndex": index });
    let resp = put(client, "/v1/jobs", &enforce(job("web"), 0)).await;
    assert_eq!(
        (resp.status, resp.text()),
        (
            409,
            "Enforcing job modify index 0: job already exists".to_owned()
        )
    );
    let resp = put(client, "/v1/jobs", &enforce(job("web"), jmi)).await;
    assert_eq!(
        (resp.status, resp.text()),
        (
            409,
            format!(
                "Enforcing job modify index {jmi}: job exists with conflicting job modify index: {jmi1}"
            )
        )
    );
    let resp = put(client, "/v1/jobs", &enforce(job("fresh"), 5)).await;
    assert_eq!(
        (resp.status, resp.text()),
        (
            409,
            "Enforcing job modify index 5: job does not exist".to_owned()
        )
    );
    assert_eq!(get(client, "/v1/job/fresh").await.status, 404);
    assert_eq!(
        job_doc(client, "web").await["Version"],
        1,
        "nothing changed"
    );
    // The right index succeeds, and 0 creates a job that does not exist yet.
    let mut v2 = job("web");
    v2["Priority"] = json!(80);
    let resp = put(client, "/v1/job/web", &enforce(v2, jmi1)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(job_doc(client, "web").await["Version"], 2);
    let resp = put(client, "/v1/jobs", &enforce(job("fresh"), 0)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(job_doc(client, "fresh").await["Version"], 0);

    // Stop: a new version with Stop, and a job-deregister evaluation.
    let resp = send(client, Method::DELETE, "/v1/job/web", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stop: Value = resp.json().unwrap();
    assert_eq!(
        keys(&stop),
        [
            "EvalCreateIndex",
            "EvalID",
            "Index",
            "JobModifyIndex",
            "KnownLeader",
            "LastContact",
            "NextToken",
            "VolumeEvalID",
            "VolumeEvalIndex"
        ],
        "{stop}"
    );
    let stop_index = u64_of(&stop, "Index");
    assert_eq!(u64_of(&stop, "JobModifyIndex"), stop_index);
    assert_eq!(u64_of(&stop, "EvalCreateIndex"), stop_index);
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(stop_index.to_string().as_str())
    );
    let stopped = job_doc(client, "web").await;
    assert_eq!(stopped["Stop"], true);
    assert_eq!(stopped["Version"], 3);
    assert_eq!(u64_of(&stopped, "JobModifyIndex"), stop_index);
    assert_eq!(versions_of(client, "web").await, [3, 2, 1, 0]);
    let evals = evals_of(client, "web").await;
    let dereg = evals.iter().find(|e| e["ID"] == stop["EvalID"]).unwrap();
    assert_eq!(dereg["TriggeredBy"], "job-deregister");
    assert_requested_eval_status(dereg);
    assert_eq!(dereg["Priority"], 80, "the job's priority");
    assert_eq!(u64_of(dereg, "CreateIndex"), stop_index);

    // Purge: gone from every read, the other job stays.
    let resp = send(client, Method::DELETE, "/v1/job/web?purge=true", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let purge: Value = resp.json().unwrap();
    let purge_index = u64_of(&purge, "Index");
    assert!(purge_index > stop_index);
    assert_eq!(purge["EvalID"].as_str().unwrap().len(), 36);
    for (path, want) in [
        ("/v1/job/web", "job not found"),
        ("/v1/job/web/summary", "job not found"),
        ("/v1/job/web/versions", "job versions not found"),
    ] {
        let resp = get(client, path).await;
        assert_eq!((resp.status, resp.text()), (404, want.to_owned()), "{path}");
        assert!(
            resp.query_meta().last_index >= purge_index,
            "{path}: a read after the purge reports its index"
        );
    }
    let (list, _) = get_json(client, "/v1/jobs").await.unwrap();
    assert_eq!(ids(&list), ["fresh"]);
    let resp = send(client, Method::DELETE, "/v1/job/web", "")
        .await
        .unwrap();
    assert_eq!(
        (resp.status, resp.text()),
        (404, "job not found".to_owned())
    );
}

/// The defaults Nomad gives a service job registered as `job("web")`.
#[track_caller]
fn assert_service_defaults(j: &Value) {
    assert_eq!(j["ID"], "web");
    assert_eq!(j["Name"], "web", "Name defaults to the ID");
    assert_eq!(j["Region"], "global");
    assert_eq!(j["Namespace"], "default");
    assert_eq!(j["Priority"], 50);
    assert_eq!(j["Type"], "service");
    assert_eq!(j["Datacenters"], json!(["*"]));
    assert_eq!(j["NodePool"], "default");
    assert_eq!(j["Status"], "pending");
    assert_eq!(j["Version"], 0);
    assert_eq!(j["Stop"], false);
    assert_eq!(j["Stable"], false);
    assert_eq!(j["Update"]["MaxParallel"], 1);
    assert_eq!(j["Update"]["Stagger"], 30 * SECOND);

    let tg = &j["TaskGroups"][0];
    assert_eq!(tg["Name"], "web");
    assert_eq!(tg["Count"], 1, "a group without Count runs once");
    assert_eq!(
        tg["RestartPolicy"],
        json!({"Attempts": 2, "Delay": 15 * SECOND, "Interval": 30 * MINUTE, "Mode": "fail",
               "RenderTemplates": false})
    );
    assert_eq!(
        tg["ReschedulePolicy"],
        json!({"Attempts": 0, "Delay": 30 * SECOND, "DelayFunction": "exponential",
               "Interval": 0, "MaxDelay": HOUR, "Unlimited": true})
    );
    assert_eq!(
        tg["EphemeralDisk"],
        json!({"Migrate": false, "SizeMB": 300, "Sticky": false})
    );
    assert_eq!(
        tg["Migrate"],
        json!({"HealthCheck": "checks", "HealthyDeadline": 5 * MINUTE, "MaxParallel": 1,
               "MinHealthyTime": 10 * SECOND})
    );
    assert_eq!(
        tg["Update"],
        json!({"AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "checks",
               "HealthyDeadline": 5 * MINUTE, "MaxParallel": 1, "MinHealthyTime": 10 * SECOND,
               "ProgressDeadline": 10 * MINUTE, "Stagger": 30 * SECOND})
    );

    let task = &tg["Tasks"][0];
    assert_eq!(task["Name"], "app");
    assert_eq!(task["Driver"], "raw_exec");
    assert_eq!(
        task["Config"],
        json!({"command": "/bin/sleep", "args": ["60"]})
    );
    assert_eq!(task["Resources"]["CPU"], 100);
    assert_eq!(task["Resources"]["MemoryMB"], 300);
    assert_eq!(
        task["LogConfig"],
        json!({"Disabled": false, "MaxFileSizeMB": 10, "MaxFiles": 10})
    );
    assert_eq!(task["KillTimeout"], 5 * SECOND);
    assert_eq!(task["RestartPolicy"], tg["RestartPolicy"]);
}

#[tokio::test]
async fn job_lifecycle_sqlite() {
    lifecycle(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn job_lifecycle_postgres() {
    lifecycle(&PgCluster::start().await.unwrap()).await;
}

// ---------------------------------------------------------------------------------------------
// Register: defaults per type, counts, versions kept, namespaces
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn batch_jobs_get_the_batch_defaults_and_counts_are_kept() {
    let c = DevCluster::start().await.unwrap();
    let mut j = typed_job("nightly", "batch");
    j["TaskGroups"][0]["Count"] = json!(3);
    let mut zero = j["TaskGroups"][0].clone();
    zero["Name"] = json!("idle");
    zero["Count"] = json!(0);
    j["TaskGroups"].as_array_mut().unwrap().push(zero);
    register(&c.client, &j).await;

    let j = job_doc(&c.client, "nightly").await;
    assert_eq!(j["Type"], "batch");
    assert_eq!(
        j["Update"]["MaxParallel"], 0,
        "batch jobs get no update block"
    );
    let web = &j["TaskGroups"][0];
    assert_eq!(web["Count"], 3);
    assert_eq!(j["TaskGroups"][1]["Count"], 0, "an explicit 0 stays 0");
    assert_eq!(
        web["RestartPolicy"],
        json!({"Attempts": 3, "Delay": 15 * SECOND, "Interval": 24 * HOUR, "Mode": "fail",
               "RenderTemplates": false})
    );
    assert_eq!(
        web["ReschedulePolicy"],
        json!({"Attempts": 1, "Delay": 5 * SECOND, "DelayFunction": "constant",
               "Interval": 24 * HOUR, "MaxDelay": 0, "Unlimited": false})
    );
    assert!(web["Update"].is_null(), "{}", web["Update"]);
    assert!(web["Migrate"].is_null(), "{}", web["Migrate"]);
    assert_eq!(web["EphemeralDisk"]["SizeMB"], 300);
    assert_eq!(web["Tasks"][0]["Resources"]["CPU"], 100);
    assert_eq!(web["Tasks"][0]["Resources"]["MemoryMB"], 300);
    assert_eq!(web["Tasks"][0]["LogConfig"]["MaxFiles"], 10);
    let evals = register_evals_of(&c.client, "nightly").await;
    assert_eq!(evals[0]["Type"], "batch");

    // PreserveCounts keeps the stored counts of the groups that exist.
    let mut again = typed_job("nightly", "batch");
    again["TaskGroups"][0]["Count"] = json!(1);
    again["Meta"] = json!({"run": "2"});
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({"Job": again, "PreserveCounts": true}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let j = job_doc(&c.client, "nightly").await;
    assert_eq!(j["Version"], 1);
    assert_eq!(j["TaskGroups"][0]["Count"], 3);
    assert_eq!(j["TaskGroups"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn more_than_six_registrations_keep_six_versions() {
    let c = DevCluster::start().await.unwrap();
    for run in 0..8 {
        let mut j = job("web");
        j["Meta"] = json!({ "run": run.to_string() });
        register(&c.client, &j).await;
    }
    let j = job_doc(&c.client, "web").await;
    assert_eq!(j["Version"], 7);
    assert_eq!(versions_of(&c.client, "web").await, [7, 6, 5, 4, 3, 2]);
    let (body, _) = get_json(&c.client, "/v1/job/web/versions").await.unwrap();
    assert_eq!(body["Versions"][0]["Meta"], json!({"run": "7"}));
    assert_eq!(body["Versions"][5]["Meta"], json!({"run": "2"}));
}

#[tokio::test]
async fn a_job_lands_in_the_namespace_nomad_picks() {
    let c = DevCluster::start().await.unwrap();
    for ns in ["prod", "qa", "staging"] {
        create_namespace(&c.client, ns).await.unwrap();
    }
    // The job's own namespace when the request names none.
    let mut j = job("api");
    j["Namespace"] = json!("prod");
    register(&c.client, &j).await;
    assert_eq!(get(&c.client, "/v1/job/api").await.status, 404);
    let (doc, _) = get_json(&c.client, "/v1/job/api?namespace=prod")
        .await
        .unwrap();
    assert_eq!(doc["Namespace"], "prod");
    let evals = get_json(&c.client, "/v1/job/api/evaluations?namespace=prod")
        .await
        .unwrap()
        .0;
    assert_eq!(evals[0]["Namespace"], "prod");

    // The query parameter wins over the job's namespace (Nomad's namespaceForJob), the body's
    // `Namespace` over the job's.
    let resp = put(&c.client, "/v1/jobs?namespace=qa", &json!({ "Job": j })).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (doc, _) = get_json(&c.client, "/v1/job/api?namespace=qa")
        .await
        .unwrap();
    assert_eq!(doc["Namespace"], "qa");
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({ "Job": j, "Namespace": "staging" }),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (doc, _) = get_json(&c.client, "/v1/job/api?namespace=staging")
        .await
        .unwrap();
    assert_eq!(doc["Namespace"], "staging");
    assert_eq!(get(&c.client, "/v1/job/api").await.status, 404);
}

// ---------------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------------

/// Registers api-a, api-b (service), web-a (batch), web-b (service) in `default` and ops-a in
/// `prod`; every job has a Meta.
async fn register_list_fixture(client: &Client) {
    for (id, job_type) in [
        ("web-b", "service"),
        ("api-a", "service"),
        ("web-a", "batch"),
        ("api-b", "service"),
    ] {
        let mut j = typed_job(id, job_type);
        j["Meta"] = json!({ "owner": id });
        register(client, &j).await;
    }
    let mut ops = job("ops-a");
    ops["Meta"] = json!({"owner": "ops-a"});
    create_namespace(client, "prod").await.unwrap();
    let resp = put(client, "/v1/jobs?namespace=prod", &json!({ "Job": ops })).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn list_prefix_namespaces_filter_meta_and_summaries() {
    let c = DevCluster::start().await.unwrap();
    register_list_fixture(&c.client).await;
    let list = |q: &'static str| {
        let client = c.client.clone();
        async move { get_json(&client, &format!("/v1/jobs{q}")).await.unwrap().0 }
    };

    let all = list("").await;
    assert_eq!(ids(&all), ["api-a", "api-b", "web-a", "web-b"]);
    let stub = &all[0];
    assert_eq!(stub["Name"], "api-a");
    assert_eq!(stub["Namespace"], "default");
    assert_eq!(stub["Type"], "service");
    assert_eq!(stub["Priority"], 50);
    assert_eq!(stub["Status"], "pending");
    assert_eq!(stub["Periodic"], false);
    assert_eq!(stub["ParameterizedJob"], false);
    assert_eq!(stub["Stop"], false);
    assert_eq!(stub["Datacenters"], json!(["*"]));
    assert!(u64_of(stub, "JobModifyIndex") >= 1);
    assert!(stub.get("TaskGroups").is_none(), "a stub, not the job");
    assert!(
        stub.get("Meta").is_none_or(Value::is_null),
        "Meta only with meta=true: {stub}"
    );
    let summary = &stub["JobSummary"];
    assert_eq!(summary["JobID"], "api-a");
    assert_eq!(summary["Namespace"], "default");
    assert_eq!(summary["CreateIndex"], stub["CreateIndex"]);
    assert!(summary["Children"].is_null());
    assert_nothing_placed(&summary["Summary"]);

    assert_eq!(ids(&list("?prefix=api-").await), ["api-a", "api-b"]);
    assert_eq!(ids(&list("?prefix=nope").await), Vec::<String>::new());
    assert_eq!(ids(&list("?namespace=prod").await), ["ops-a"]);
    let every = list("?namespace=*").await;
    assert_eq!(ids(&every), ["api-a", "api-b", "web-a", "web-b", "ops-a"]);
    assert_eq!(every[4]["Namespace"], "prod");
    assert_eq!(
        ids(&list("?namespace=*&prefix=ops").await),
        ["ops-a"],
        "prefix across namespaces"
    );

    let batch = list("?filter=Type%20%3D%3D%20%22batch%22").await;
    assert_eq!(ids(&batch), ["web-a"]);
    let by_meta = list("?filter=Meta.owner%20%3D%3D%20%22web-b%22").await;
    assert_eq!(ids(&by_meta), ["web-b"]);

    let with_meta = list("?meta=true").await;
    assert_eq!(with_meta[0]["Meta"], json!({"owner": "api-a"}));
    assert_eq!(with_meta[3]["Meta"], json!({"owner": "web-b"}));

    assert_eq!(
        ids(&list("?reverse=true").await),
        ["web-b", "web-a", "api-b", "api-a"]
    );

    // Bad list parameters.
    for (q, want) in [
        ("?per_page=-1", "per_page"),
        ("?per_page=abc", "per_page"),
        ("?filter=Type%20%3D%3D", "failed to create result paginator"),
        ("?meta=maybe", "meta"),
    ] {
        let resp = get(&c.client, &format!("/v1/jobs{q}")).await;
        assert_refused(&resp, 400, want);
    }
}

/// Follows `next_token` from the first page; the IDs of every page and the tokens seen.
async fn walk(client: &Client, query: &str, per_page: u32) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut tokens = Vec::new();
    let mut token = String::new();
    loop {
        let path = format!("/v1/jobs?per_page={per_page}&next_token={token}{query}");
        let (page, meta) = get_json(client, &path).await.unwrap();
        pages.push(ids(&page));
        if meta.next_token.is_empty() {
            return (pages, tokens);
        }
        token = meta.next_token.clone();
        tokens.push(meta.next_token);
        assert!(pages.len() < 10, "the walk does not end: {pages:?}");
    }
}

#[tokio::test]
async fn list_pages_with_namespace_dot_id_tokens() {
    let c = DevCluster::start().await.unwrap();
    register_list_fixture(&c.client).await;

    let (pages, tokens) = walk(&c.client, "", 2).await;
    assert_eq!(pages, [["api-a", "api-b"], ["web-a", "web-b"]]);
    assert_eq!(tokens, ["default.web-a"]);

    let (pages, tokens) = walk(&c.client, "&namespace=*", 2).await;
    assert_eq!(
        pages,
        [
            vec!["api-a", "api-b"],
            vec!["web-a", "web-b"],
            vec!["ops-a"]
        ]
    );
    assert_eq!(tokens, ["default.web-a", "prod.ops-a"]);

    let (pages, tokens) = walk(&c.client, "&reverse=true", 3).await;
    assert_eq!(pages, [vec!["web-b", "web-a", "api-b"], vec!["api-a"]]);
    assert_eq!(tokens, ["default.api-a"]);

    // With a filter, pages hold matching jobs only.
    let (pages, _) = walk(&c.client, "&filter=Type%20%3D%3D%20%22service%22", 2).await;
    assert_eq!(pages, [vec!["api-a", "api-b"], vec!["web-b"]]);

    // A token that is no job's: the page starts after where it would be, as in Nomad.
    let page = |token: &'static str| {
        let client = c.client.clone();
        async move {
            let (list, _) = get_json(&client, &format!("/v1/jobs?next_token={token}"))
                .await
                .unwrap();
            ids(&list)
        }
    };
    assert_eq!(page("default.b").await, ["web-a", "web-b"]);
    assert_eq!(page("zzz").await, Vec::<String>::new());
    assert_eq!(
        page("%21garbage").await,
        ["api-a", "api-b", "web-a", "web-b"]
    );
}

#[tokio::test]
async fn blocking_list_wakes_on_a_new_job() {
    let c = DevCluster::start().await.unwrap();
    register(&c.client, &job("first")).await;
    settle(&c.client, "first").await;
    let (_, meta) = get_json(&c.client, "/v1/jobs").await.unwrap();
    let index = meta.last_index;
    assert!(index >= 1);

    let client = c.client.clone();
    let started = Instant::now();
    let mut blocked = tokio::spawn(async move {
        client
            .get(
                "/v1/jobs",
                &QueryOptions::new()
                    .index(index)
                    .wait(Duration::from_secs(5)),
            )
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut blocked)
            .await
            .is_err(),
        "a blocking list with the current index returned at once"
    );
    let written = register(&c.client, &job("second")).await;
    let resp = tokio::time::timeout(Duration::from_secs(4), blocked)
        .await
        .expect("the blocking list did not wake on the register")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.query_meta().last_index >= u64_of(&written, "Index"));
    let list: Value = resp.json().unwrap();
    assert_eq!(ids(&list), ["first", "second"]);

    // A blocking read of one job wakes on its change too.
    settle(&c.client, "second").await;
    let (doc, meta) = get_json(&c.client, "/v1/job/first").await.unwrap();
    assert_eq!(meta.last_index, u64_of(&doc, "ModifyIndex"));
    let client = c.client.clone();
    let blocked = tokio::spawn(async move {
        client
            .get(
                "/v1/job/first",
                &QueryOptions::new()
                    .index(meta.last_index)
                    .wait(Duration::from_secs(5)),
            )
            .await
    });
    let mut changed = job("first");
    changed["Priority"] = json!(60);
    register(&c.client, &changed).await;
    let resp = tokio::time::timeout(Duration::from_secs(4), blocked)
        .await
        .expect("the blocking read did not wake on the change")
        .unwrap()
        .unwrap();
    let doc: Value = resp.json().unwrap();
    assert_eq!(doc["Priority"], 60);
    assert!(resp.query_meta().last_index > meta.last_index);
}

/// The summary of group `web` of a job that was never placed: every count 0 but `Queued`.
#[track_caller]
fn assert_nothing_placed(summary: &Value) {
    assert_eq!(keys(summary), ["web"], "{summary}");
    let web = &summary["web"];
    assert_eq!(
        keys(web),
        [
            "Complete", "Failed", "Lost", "Queued", "Running", "Starting", "Unknown"
        ]
    );
    for key in [
        "Complete", "Failed", "Lost", "Running", "Starting", "Unknown",
    ] {
        assert_eq!(web[key], 0, "{key}: {web}");
    }
    assert!(u64_of(web, "Queued") <= 1, "{web}");
}

// ---------------------------------------------------------------------------------------------
// Reads of one job
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reads_of_a_job_and_of_an_unknown_one() {
    let c = DevCluster::start().await.unwrap();
    for (path, want) in [
        ("/v1/job/nope", "job not found"),
        ("/v1/job/nope/summary", "job not found"),
        ("/v1/job/nope/versions", "job versions not found"),
    ] {
        let resp = get(&c.client, path).await;
        assert_eq!((resp.status, resp.text()), (404, want.to_owned()), "{path}");
        assert!(resp.query_meta().last_index >= 1, "{path}");
    }
    for (path, want) in [
        ("/v1/job/nope/evaluations", "[]"),
        ("/v1/job/nope/allocations", "[]"),
        ("/v1/job/nope/deployments", "[]"),
        ("/v1/job/nope/deployment", "null"),
    ] {
        let resp = get(&c.client, path).await;
        assert_eq!((resp.status, resp.text()), (200, want.to_owned()), "{path}");
    }

    // A batch job: no update block, so no deployment.
    let written = register(&c.client, &typed_job("web", "batch")).await;
    let (summary, meta) = get_json(&c.client, "/v1/job/web/summary").await.unwrap();
    assert_eq!(
        keys(&summary),
        [
            "Children",
            "CreateIndex",
            "JobID",
            "ModifyIndex",
            "Namespace",
            "Summary"
        ]
    );
    assert_eq!(summary["JobID"], "web");
    assert_eq!(summary["Namespace"], "default");
    assert!(summary["Children"].is_null());
    assert_nothing_placed(&summary["Summary"]);
    assert_eq!(u64_of(&summary, "CreateIndex"), u64_of(&written, "Index"));
    assert!(meta.last_index >= 1);
    for path in [
        "/v1/job/web/allocations",
        "/v1/job/web/allocations?all=true",
        "/v1/job/web/deployments",
    ] {
        let resp = get(&c.client, path).await;
        assert_eq!((resp.status, resp.text()), (200, "[]".to_owned()), "{path}");
    }
    let resp = get(&c.client, "/v1/job/web/deployment").await;
    assert_eq!((resp.status, resp.text()), (200, "null".to_owned()));
    for path in [
        "/v1/job/web/allocations?all=maybe",
        "/v1/job/web/deployments?all=maybe",
        "/v1/job/web/versions?diffs=maybe",
    ] {
        assert_refused(&get(&c.client, path).await, 400, "as a bool");
    }
    for (method, path) in [
        (Method::PATCH, "/v1/jobs"),
        (Method::DELETE, "/v1/jobs"),
        (Method::POST, "/v1/job/web/summary"),
        (Method::GET, "/v1/job/web/evaluate"),
        (Method::GET, "/v1/validate/job"),
    ] {
        let resp = send(&c.client, method.clone(), path, "").await.unwrap();
        assert_eq!(resp.status, 405, "{method} {path}: {}", resp.text());
    }
}

// ---------------------------------------------------------------------------------------------
// Stop, evaluate, periodic jobs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stop_takes_an_eval_priority_and_refuses_bad_ones() {
    let c = DevCluster::start().await.unwrap();
    register(&c.client, &job("web")).await;
    for (q, want) in [
        (
            "eval_priority=garbage",
            "Failed to parse value of \"eval_priority\" (garbage) as a int",
        ),
        (
            "eval_priority=101",
            "Eval priority must be between 1 and 100 inclusively",
        ),
        (
            "eval_priority=-1",
            "Eval priority must be between 1 and 100 inclusively",
        ),
        (
            "purge=maybe",
            "Failed to parse value of \"purge\" (maybe) as a bool",
        ),
        (
            "global=maybe",
            "Failed to parse value of \"global\" (maybe) as a bool",
        ),
    ] {
        let resp = send(&c.client, Method::DELETE, &format!("/v1/job/web?{q}"), "")
            .await
            .unwrap();
        assert_refused(&resp, 400, want);
    }
    assert_eq!(
        job_doc(&c.client, "web").await["Stop"],
        false,
        "nothing stopped"
    );

    let resp = send(
        &c.client,
        Method::DELETE,
        "/v1/job/web?eval_priority=90",
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stop: Value = resp.json().unwrap();
    let evals = evals_of(&c.client, "web").await;
    let dereg = evals.iter().find(|e| e["ID"] == stop["EvalID"]).unwrap();
    assert_eq!(dereg["Priority"], 90);
    assert_eq!(dereg["TriggeredBy"], "job-deregister");

    // eval_priority=0 means the job's priority, as in Nomad.
    register(&c.client, &job("api")).await;
    let resp = send(&c.client, Method::DELETE, "/v1/job/api?eval_priority=0", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stop: Value = resp.json().unwrap();
    let evals = evals_of(&c.client, "api").await;
    let dereg = evals.iter().find(|e| e["ID"] == stop["EvalID"]).unwrap();
    assert_eq!(dereg["Priority"], 50);

    let resp = send(&c.client, Method::DELETE, "/v1/job/nope", "")
        .await
        .unwrap();
    assert_eq!(
        (resp.status, resp.text()),
        (404, "job not found".to_owned())
    );
}

#[tokio::test]
async fn evaluate_creates_an_evaluation() {
    let c = DevCluster::start().await.unwrap();
    let written = register(&c.client, &job("web")).await;
    let jmi = u64_of(&written, "JobModifyIndex");

    // Without a body.
    let resp = post(&c.client, "/v1/job/web/evaluate", "").await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let forced: Value = resp.json().unwrap();
    assert_ne!(forced["EvalID"], written["EvalID"]);
    let index = u64_of(&forced, "Index");
    assert!(index > jmi);
    assert_eq!(u64_of(&forced, "EvalCreateIndex"), index);
    assert_eq!(u64_of(&forced, "JobModifyIndex"), jmi);
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(index.to_string().as_str())
    );
    let evals = register_evals_of(&c.client, "web").await;
    assert_eq!(evals.len(), 2);
    let eval = evals.iter().find(|e| e["ID"] == forced["EvalID"]).unwrap();
    assert_eq!(eval["TriggeredBy"], "job-register");
    assert_requested_eval_status(eval);
    assert_eq!(u64_of(eval, "CreateIndex"), index);

    // With the body the Go api package sends (PUT works as POST).
    let resp = send(
        &c.client,
        Method::PUT,
        "/v1/job/web/evaluate",
        r#"{"JobID":"web","EvalOptions":{"ForceReschedule":true}}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(register_evals_of(&c.client, "web").await.len(), 3);

    for (path, body, status, want) in [
        ("/v1/job/nope/evaluate", "", 404, "job not found"),
        (
            "/v1/job/web/evaluate",
            r#"{"EvalOptions":{"ForceReschedule":true}}"#,
            400,
            "Job ID must be specified",
        ),
        (
            "/v1/job/web/evaluate",
            r#"{"JobID":"api"}"#,
            400,
            "JobID not same as job name",
        ),
        (
            "/v1/job/web/evaluate",
            r#"{"JobID":"web","EvalOptions":{"ForceReschedule":"yes"}}"#,
            400,
            "ForceReschedule",
        ),
        ("/v1/job/web/evaluate", "[1]", 400, "JSON object"),
    ] {
        let resp = post(&c.client, path, body).await.unwrap();
        assert_refused(&resp, status, want);
    }
    assert_eq!(
        register_evals_of(&c.client, "web").await.len(),
        3,
        "no more evaluations"
    );
}

#[tokio::test]
async fn periodic_jobs_get_no_evaluation() {
    let c = DevCluster::start().await.unwrap();
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({ "Job": periodic_job("cron") }),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let written: Value = resp.json().unwrap();
    assert_eq!(written["EvalID"], "");
    assert_eq!(written["EvalCreateIndex"], 0);
    assert!(u64_of(&written, "JobModifyIndex") >= 1);
    assert_eq!(evals_of(&c.client, "cron").await.len(), 0);

    let j = job_doc(&c.client, "cron").await;
    assert_eq!(j["Periodic"]["Spec"], "*/5 * * * *");
    assert_eq!(j["Status"], "running", "a periodic job runs until stopped");
    let (list, _) = get_json(&c.client, "/v1/jobs").await.unwrap();
    assert_eq!(list[0]["Periodic"], true);
    let (summary, _) = get_json(&c.client, "/v1/job/cron/summary").await.unwrap();
    assert_eq!(
        summary["Children"],
        json!({"Dead": 0, "Pending": 0, "Running": 0})
    );

    let resp = post(&c.client, "/v1/job/cron/evaluate", "").await.unwrap();
    assert_eq!(
        (resp.status, resp.text()),
        (400, "can't evaluate periodic job".to_owned())
    );

    // A periodic job stays periodic, a non-periodic one never becomes periodic.
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({ "Job": typed_job("cron", "batch") }),
    )
    .await;
    assert_eq!(
        (resp.status, resp.text()),
        (
            400,
            "cannot update periodic job to being non-periodic".to_owned()
        )
    );
    register(&c.client, &typed_job("once", "batch")).await;
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({ "Job": periodic_job("once") }),
    )
    .await;
    assert_eq!(
        (resp.status, resp.text()),
        (
            400,
            "cannot update non-periodic job to being periodic".to_owned()
        )
    );

    // Stopping it makes no evaluation either.
    let resp = send(&c.client, Method::DELETE, "/v1/job/cron", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stop: Value = resp.json().unwrap();
    assert_eq!(stop["EvalID"], "");
    let j = job_doc(&c.client, "cron").await;
    assert_eq!(j["Stop"], true);
    assert_eq!(j["Status"], "dead");
}

// ---------------------------------------------------------------------------------------------
// Validate
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn validate_reports_every_problem_without_storing() {
    let c = DevCluster::start().await.unwrap();
    let resp = post(
        &c.client,
        "/v1/validate/job",
        &json!({ "Job": job("web") }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let valid: Value = resp.json().unwrap();
    assert_eq!(
        valid,
        json!({"DriverConfigValidated": true, "Error": "", "ValidationErrors": null,
               "Warnings": ""})
    );

    let mut bad = job("web");
    bad["Priority"] = json!(500);
    bad["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("");
    let resp = send(
        &c.client,
        Method::PUT,
        "/v1/validate/job",
        &json!({ "Job": bad }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let invalid: Value = resp.json().unwrap();
    let errors: Vec<&str> = invalid["ValidationErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.contains(&"job priority must be between [1, 100]"),
        "{errors:?}"
    );
    let group = errors
        .iter()
        .find(|e| e.starts_with("Task group web"))
        .unwrap();
    assert!(group.contains("Missing task driver"), "{group}");
    let text = invalid["Error"].as_str().unwrap();
    assert!(text.starts_with("2 errors occurred:\n\t* "), "{text:?}");
    assert!(text.ends_with("\n\n"), "{text:?}");
    for e in &errors {
        assert!(text.contains(&format!("\t* {e}")), "{text:?}");
    }

    let resp = post(
        &c.client,
        "/v1/validate/job",
        &json!({ "Job": {"ID": "x"} }).to_string(),
    )
    .await
    .unwrap();
    let one: Value = resp.json().unwrap();
    assert_eq!(one["ValidationErrors"], json!(["Missing job task groups"]));
    assert_eq!(
        one["Error"],
        "1 error occurred:\n\t* Missing job task groups\n\n"
    );

    for (body, want) in [
        ("{}", "Job must be specified"),
        (r#"{"Job":"web"}"#, "cannot unmarshal string into field Job"),
        ("", "Request body is empty"),
    ] {
        let resp = post(&c.client, "/v1/validate/job", body).await.unwrap();
        assert_refused(&resp, 400, want);
    }
    assert_eq!(
        get(&c.client, "/v1/job/web").await.status,
        404,
        "nothing stored"
    );
}

// ---------------------------------------------------------------------------------------------
// Bad register bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_registrations_are_refused_with_nomads_messages() {
    let c = DevCluster::start().await.unwrap();
    register(&c.client, &job("web")).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut j = job("web");
        f(&mut j);
        json!({ "Job": j }).to_string()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "/v1/jobs",
            "notjson".into(),
            400,
            "Request body is not valid JSON",
        ),
        ("/v1/jobs", String::new(), 400, "Request body is empty"),
        ("/v1/jobs", "[]".into(), 400, "must be a JSON object"),
        ("/v1/jobs", "{}".into(), 400, "Job must be specified"),
        (
            "/v1/jobs",
            r#"{"Job":null}"#.into(),
            400,
            "Job must be specified",
        ),
        (
            "/v1/jobs",
            r#"{"Job":5}"#.into(),
            400,
            "cannot unmarshal number into field Job of type api.Job",
        ),
        (
            "/v1/jobs",
            r#"{"Job":{}}"#.into(),
            400,
            "Job ID hasn't been provided",
        ),
        (
            "/v1/jobs",
            r#"{"Job":{"ID":null}}"#.into(),
            400,
            "Job ID hasn't been provided",
        ),
        (
            "/v1/jobs",
            r#"{"Job":{"ID":7}}"#.into(),
            400,
            "cannot unmarshal number into field Job.ID",
        ),
        (
            "/v1/jobs",
            with(&|j| j["ID"] = json!("")),
            400,
            "Missing job ID",
        ),
        (
            "/v1/job/other",
            with(&|_| {}),
            400,
            "Job ID does not match name",
        ),
        (
            "/v1/jobs",
            with(&|j| j["TaskGroups"] = json!([])),
            400,
            "Missing job task groups",
        ),
        (
            "/v1/jobs",
            with(&|j| j["TaskGroups"][0]["Count"] = json!(-1)),
            400,
            "Task group count can't be negative",
        ),
        (
            "/v1/jobs",
            with(&|j| j["TaskGroups"][0]["Tasks"][0]["Driver"] = json!("")),
            400,
            "Missing task driver",
        ),
        (
            "/v1/jobs",
            with(&|j| {
                j["Constraints"] = json!([{"LTarget": "${attr.os.name}", "RTarget": "linux",
                                           "Operand": "~"}])
            }),
            400,
            "Unknown constraint type \"~\"",
        ),
        (
            "/v1/jobs",
            with(&|j| j["Type"] = json!("batch")),
            400,
            "cannot update job from type \"service\" to \"batch\"",
        ),
        (
            "/v1/jobs",
            with(&|j| j["Type"] = json!("cron")),
            400,
            "Invalid job type: \"cron\"",
        ),
        (
            "/v1/jobs",
            with(&|j| j["Priority"] = json!(101)),
            400,
            "job priority must be between [1, 100]",
        ),
        (
            "/v1/jobs",
            json!({"Job": job("web"), "JobModifyIndex": -1}).to_string(),
            400,
            "JobModifyIndex",
        ),
        (
            "/v1/jobs",
            json!({"Job": job("web"), "EnforceIndex": "yes"}).to_string(),
            400,
            "cannot unmarshal string into field EnforceIndex of type bool",
        ),
        (
            "/v1/jobs",
            json!({"Job": job("web"), "EvalPriority": 500}).to_string(),
            400,
            "Eval priority must be between 1 and 100 inclusively",
        ),
        (
            "/v1/jobs",
            {
                let mut j = typed_job("sys", "system");
                j["TaskGroups"][0]["Scaling"] = json!({"Min": 1, "Max": 1});
                json!({ "Job": j }).to_string()
            },
            400,
            "Task groups with job type system do not support scaling blocks",
        ),
        (
            "/v1/jobs",
            with(&|j| j["TaskGroups"][0]["Count"] = json!("three")),
            400,
            "failed to decode job",
        ),
    ];
    for (path, body, status, want) in &cases {
        let resp = send(&c.client, Method::PUT, path, body).await.unwrap();
        assert_eq!(resp.status, *status, "{path} {body}: {}", resp.text());
        assert!(
            resp.text().contains(want),
            "{path} {body}: want {want:?} in {:?}",
            resp.text()
        );
    }

    // A validation failure is Nomad's multierror text.
    let resp = send(
        &c.client,
        Method::PUT,
        "/v1/jobs",
        &with(&|j| j["TaskGroups"] = json!([])),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.text(),
        "1 error occurred:\n\t* Missing job task groups\n\n"
    );
    let resp = send(
        &c.client,
        Method::PUT,
        "/v1/jobs",
        &with(&|j| j["TaskGroups"][0]["Count"] = json!(-1)),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.text(),
        "1 error occurred:\n\t* Task group web validation failed: 1 error occurred:\n\t* Task group count can't be negative\n\n\n\n"
    );

    // Nothing of that was stored.
    let (list, _) = get_json(&c.client, "/v1/jobs").await.unwrap();
    assert_eq!(ids(&list), ["web"]);
    let j = job_doc(&c.client, "web").await;
    assert_eq!(j["Version"], 0);
    assert_eq!(j["Type"], "service");
    assert_eq!(versions_of(&c.client, "web").await, [0]);
}

/// Nomad compiles a `regexp` constraint's RTarget when validating the job
/// (`Constraint.Validate`: "Regular expression failed to compile: ...").
#[tokio::test]
async fn a_constraint_with_a_bad_regexp_is_refused() {
    let c = DevCluster::start().await.unwrap();
    let mut j = job("web");
    j["Constraints"] = json!([{"LTarget": "${attr.os.name}", "RTarget": "[", "Operand": "regexp"}]);
    let resp = put(&c.client, "/v1/jobs", &json!({ "Job": j })).await;
    assert_refused(&resp, 400, "Regular expression failed to compile");
    assert_eq!(get(&c.client, "/v1/job/web").await.status, 404);
}

/// `EvalPriority` in the register body sets the priority of the evaluation it creates.
#[tokio::test]
async fn register_eval_priority_overrides_the_jobs() {
    let c = DevCluster::start().await.unwrap();
    let resp = put(
        &c.client,
        "/v1/jobs",
        &json!({"Job": job("web"), "EvalPriority": 80}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json().unwrap();
    let eval_id = body["EvalID"].as_str().unwrap();
    let eval: Value = get(&c.client, &format!("/v1/evaluation/{eval_id}"))
        .await
        .json()
        .unwrap();
    assert_eq!(eval["Priority"], 80);
    let job: Value = get(&c.client, "/v1/job/web").await.json().unwrap();
    assert_eq!(job["Priority"], 50, "the job keeps its own priority");
}
