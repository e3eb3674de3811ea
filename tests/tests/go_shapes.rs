//! Every JSON response Caravan serves decodes into the struct HashiCorp's Go `api` package
//! (v1.9.7) decodes it into: a cluster on PostgreSQL is driven until each kind of object exists
//! (a running service job with a deployment and a scaling policy, a parameterized job and its
//! child, a periodic job and its child, a node pool, a fake node to drain and purge), then each
//! endpoint of the gateway's route table is called and its answer checked with
//! [`caravan_tests::go_shapes`]. A route that is neither checked nor named in [`NOT_JSON`]
//! fails the test, so a new endpoint cannot go unchecked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use caravan_tests::api::Method;
use caravan_tests::go_shapes::GoShapes;
use caravan_tests::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Routes whose answers are not JSON for Go to decode: (method, route, why).
const NOT_JSON: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/v1/client/fs/cat/{alloc_id}",
        "the file's raw bytes",
    ),
    (
        "GET",
        "/v1/client/fs/readat/{alloc_id}",
        "the file's raw bytes",
    ),
    ("GET", "/v1/client/fs/{*rest}", "a 404 for unknown fs paths"),
    ("GET", "/v1/service/", "a 400 for a missing service name"),
    (
        "DELETE",
        "/v1/service/{service_name}/",
        "a 400 for a missing service ID",
    ),
    (
        "GET",
        "/v1/service/{service_name}/{service_id}/{*rest}",
        "a 400 for extra path segments",
    ),
    (
        "DELETE",
        "/v1/service/{service_name}/{service_id}",
        "an empty body, as Nomad's (Go decodes nothing); tests/tests/services.rs deletes",
    ),
    (
        "GET",
        "/v1/agent/monitor",
        "an endless stream of log frames; tests/tests/agent_monitor.rs checks its frames",
    ),
];

/// Keys Caravan sends, as Nomad does, that Go's `api` structs do not have, so Go drops them:
/// (`Type.Key`, where `*` stands for any type or any key; why they are sent).
const IGNORED_BY_GO: &[(&str, &str)] = &[
    // Nomad's server responses embed QueryMeta/WriteMeta; the Go client reads them from headers.
    ("*.Index", "the server response's own index"),
    ("*.KnownLeader", "the server response's QueryMeta"),
    ("*.LastContact", "the server response's QueryMeta"),
    ("*.NextToken", "the server response's QueryMeta"),
    (
        "EmptyStruct.*",
        "Go decodes restart and GC answers into struct{}",
    ),
    // Nomad's NodeUpdateResponse answers evaluate and purge; the Go client keeps little of it.
    (
        "nodeEvalResponse.*",
        "the whole of Nomad's NodeUpdateResponse",
    ),
    (
        "NodePurgeResponse.*",
        "the whole of Nomad's NodeUpdateResponse",
    ),
    (
        "periodicForceResponse.EvalCreateIndex",
        "Nomad's PeriodicForceResponse",
    ),
    (
        "JobDeregisterResponse.VolumeEvalID",
        "Nomad's JobDeregisterResponse",
    ),
    (
        "JobDeregisterResponse.VolumeEvalIndex",
        "Nomad's JobDeregisterResponse",
    ),
    // Fields of Nomad's server structs that the api package's structs lack.
    ("Allocation.AllocStates", "server-side Allocation field"),
    ("Allocation.SharedResources", "server-side Allocation field"),
    ("Allocation.SigningKeyID", "server-side Allocation field"),
    (
        "AllocationListStub.DesiredTransition",
        "server-side AllocListStub field",
    ),
    ("AllocationMetric.NodePool", "server-side AllocMetric field"),
    ("AllocatedCpuResources.ReservedCores", "server-side field"),
    ("AllocatedResources.TaskLifecycles", "server-side field"),
    (
        "DesiredTransition.ForceReschedule",
        "server-side DesiredTransition field",
    ),
    (
        "DesiredTransition.MigrateDisablePlacement",
        "server-side DesiredTransition field",
    ),
    (
        "DesiredTransition.NoShutdownDelay",
        "server-side DesiredTransition field",
    ),
    ("Deployment.EvalPriority", "server-side Deployment field"),
    (
        "DeploymentState.AutoPromote",
        "server-side DeploymentState field",
    ),
    ("JobListStub.Multiregion", "server-side JobListStub field"),
    ("JobListStub.NodePool", "server-side JobListStub field"),
    ("JobListStub.Version", "server-side JobListStub field"),
    ("JobSubmission.JobID", "server-side JobSubmission field"),
    (
        "JobSubmission.JobModifyIndex",
        "server-side JobSubmission field",
    ),
    ("JobSubmission.Namespace", "server-side JobSubmission field"),
    ("JobSubmission.Version", "server-side JobSubmission field"),
    ("Node.ComputedClass", "server-side Node field"),
    ("Node.GCVolumesOnNodeGC", "server-side Node field"),
    ("Node.IdentitySigningKeyID", "server-side Node field"),
    ("Node.LastAllocUpdateIndex", "server-side Node field"),
    ("Node.LastMissedHeartbeatIndex", "server-side Node field"),
    ("Node.NodeMaxAllocs", "server-side Node field"),
    (
        "Node.SecretID",
        "server-side Node field, always empty in answers",
    ),
    ("NodeListStub.HostVolumes", "server-side NodeListStub field"),
    ("NodePool.Hash", "server-side NodePool field"),
    (
        "NodeReservedCpuResources.ReservedCpuCores",
        "server-side field",
    ),
    (
        "NodeResources.NodeNetworks",
        "server-side NodeResources field",
    ),
    ("Task.Spreads", "server-side Task field"),
    ("RescheduleEvent.Delay", "server-side RescheduleEvent field"),
    ("Template.Once", "newer than the v1.9.7 api structs"),
    ("VolumeRequest.Sticky", "newer than the v1.9.7 api structs"),
    ("TaskState.Paused", "server-side TaskState field"),
    // The client agent's stats structs have more than the api's copies of them.
    ("HostStats.Timestamp", "the client's HostStats"),
    ("HostCPUStats.TotalPercent", "the client's HostCPUStats"),
    ("HostCPUStats.TotalTicks", "the client's HostCPUStats"),
    ("MemoryStats.MappedFile", "the client's MemoryStats"),
    // Nomad answers a local /v1/agent/host with the bare HostData; Go's Agent().Host() decodes
    // it into HostDataResponse and so keeps none of it (the answer is also checked as HostData).
    (
        "HostDataResponse.OS",
        "Nomad's local answer is the bare HostData",
    ),
    (
        "HostDataResponse.Network",
        "Nomad's local answer is the bare HostData",
    ),
    (
        "HostDataResponse.ResolvConf",
        "Nomad's local answer is the bare HostData",
    ),
    (
        "HostDataResponse.Hosts",
        "Nomad's local answer is the bare HostData",
    ),
    (
        "HostDataResponse.Environment",
        "Nomad's local answer is the bare HostData",
    ),
    (
        "HostDataResponse.Disk",
        "Nomad's local answer is the bare HostData",
    ),
    // Nomad's server ACL and namespace structs carry their content hash; the api's do not.
    ("ACLToken.Hash", "server-side ACLToken field"),
    (
        "ACLTokenListStub.Hash",
        "server-side ACLTokenListStub field",
    ),
    ("ACLPolicy.Hash", "server-side ACLPolicy field"),
    (
        "ACLPolicyListStub.Hash",
        "server-side ACLPolicyListStub field",
    ),
    ("ACLRole.Hash", "server-side ACLRole field"),
    ("ACLRoleListStub.Hash", "server-side ACLRoleListStub field"),
    ("Namespace.Hash", "server-side Namespace field"),
    (
        "ACLPolicy.RulesJSON",
        "server-side ACLPolicy field: the parsed rules",
    ),
];

/// Whether `key` (`Type.Key`) matches an [`IGNORED_BY_GO`] pattern.
fn ignored_by_go(key: &str) -> bool {
    let (ty, field) = key.split_once('.').unwrap_or((key, ""));
    IGNORED_BY_GO.iter().any(|(pattern, _)| {
        let (pt, pf) = pattern.split_once('.').unwrap_or((pattern, ""));
        (pt == "*" || pt == ty) && (pf == "*" || pf == field)
    })
}

/// The checker and what it found, across the whole run.
struct Shapes {
    go: GoShapes,
    /// (method, route) pairs checked.
    checked: BTreeSet<(String, String)>,
    failures: Vec<String>,
    /// `Type.Key` -> the first endpoint that sent it.
    unknown: BTreeMap<String, String>,
}

impl Shapes {
    fn new() -> Shapes {
        Shapes {
            go: GoShapes::load().unwrap(),
            checked: BTreeSet::new(),
            failures: Vec::new(),
            unknown: BTreeMap::new(),
        }
    }

    /// Checks one decoded value against `go_type`.
    fn value(&mut self, what: &str, go_type: &str, v: &Value) {
        let report = self.go.check(go_type, v).unwrap();
        for e in report.errors {
            self.failures.push(format!("{what}: {e}"));
        }
        for key in report.unknown {
            self.unknown.entry(key).or_insert_with(|| what.to_owned());
        }
    }

    /// `method path` (an instance of `route`) must answer 200 with JSON that Go decodes into
    /// `go_type`; `-` for the calls whose answer the Go client does not decode (any JSON or
    /// nothing). Returns the answer (`null` when it is not JSON).
    async fn call(
        &mut self,
        client: &Client,
        method: Method,
        route: &str,
        path: &str,
        body: &Value,
        go_type: &str,
    ) -> Value {
        let what = format!("{method} {path}");
        self.checked.insert((method.to_string(), route.to_owned()));
        let resp = json_call(client, method, path, body).await;
        if resp.status != 200 {
            self.failures
                .push(format!("{what}: status {}: {}", resp.status, resp.text()));
            return Value::Null;
        }
        if go_type == "-" {
            if !resp.text().is_empty() && resp.json::<Value>().is_err() {
                self.failures
                    .push(format!("{what}: not JSON: {}", resp.text()));
            }
            return resp.json().unwrap_or(Value::Null);
        }
        // Go's decoder refuses an empty body when it has something to decode into.
        match resp.json::<Value>() {
            Ok(v) => {
                self.value(&what, go_type, &v);
                v
            }
            Err(e) => {
                let text = resp.text();
                self.failures
                    .push(format!("{what}: not JSON ({e}): {text:?}"));
                Value::Null
            }
        }
    }

    async fn get(&mut self, client: &Client, route: &str, path: &str, go_type: &str) -> Value {
        self.call(client, Method::GET, route, path, &Value::Null, go_type)
            .await
    }

    /// A stream of JSON frames (fs stream and logs without `follow`): each frame is checked.
    async fn frames(&mut self, client: &Client, route: &str, path: &str, go_type: &str) -> usize {
        let what = format!("GET {path}");
        self.checked.insert(("GET".to_owned(), route.to_owned()));
        let resp = json_call(client, Method::GET, path, &Value::Null).await;
        if resp.status != 200 {
            self.failures
                .push(format!("{what}: status {}: {}", resp.status, resp.text()));
            return 0;
        }
        let text = resp.text();
        let mut n = 0;
        for frame in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            match frame {
                Ok(v) => {
                    self.value(&what, go_type, &v);
                    n += 1;
                }
                Err(e) => {
                    self.failures
                        .push(format!("{what}: bad frame ({e}): {text:?}"));
                    break;
                }
            }
        }
        n
    }
}

/// A service job (the Go package's rich job, adapted): update block (so a deployment),
/// network, services, meta, env; its task runs until stopped.
fn web_job() -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/go-api/job-register-rich.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut body: Value = serde_json::from_str(&text).unwrap();
    let job = &mut body["Job"];
    job["ID"] = json!("web");
    job["Name"] = json!("web");
    job["Datacenters"] = json!(["*"]);
    // Health from task states: the services' checks are not run.
    job["Update"]["HealthCheck"] = json!("task_states");
    let tg = &mut job["TaskGroups"][0];
    tg["Count"] = json!(1);
    tg["Tasks"][0]["Config"] = json!({"command": "/bin/sh",
        "args": ["-c", "echo hi; echo oops >&2; while :; do sleep 1; done"]});
    body["Submission"] = json!({"Source": "job \"web\" {}", "Format": "hcl2",
        "VariableFlags": {"a": "1"}, "Variables": "x = 1"});
    body
}

/// A batch job with a scaling block: no deployment blocks its scaling.
fn scaled_job() -> Value {
    json!({"Job": {
        "ID": "scaled", "Type": "batch", "Datacenters": ["*"],
        "TaskGroups": [{"Name": "g", "Count": 1,
            "Scaling": {"Min": 1, "Max": 3, "Enabled": true, "Policy": {"cooldown": "1m"}},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "while :; do sleep 1; done"]},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]}]
    }})
}

/// A batch job whose task fails at once: rescheduled once, after the shortest delay (5 s).
fn flaky_job() -> Value {
    json!({"Job": {
        "ID": "flaky", "Type": "batch", "Datacenters": ["*"],
        "TaskGroups": [{"Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 1, "Interval": 3_600_000_000_000_i64,
                "Delay": 5_000_000_000_i64, "DelayFunction": "constant", "Unlimited": false},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "echo failing >&2; exit 3"]},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]}]
    }})
}

/// A service job no node can take: a blocked evaluation with its failed placements.
fn unplaceable_job() -> Value {
    json!({"Job": {
        "ID": "unplaceable", "Type": "service", "Datacenters": ["*"],
        "Constraints": [{"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "plan9"}],
        "TaskGroups": [{"Name": "g", "Count": 2,
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/true"},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]}]
    }})
}

/// A parameterized batch job: its children print their payload.
fn param_job() -> Value {
    json!({"Job": {
        "ID": "param", "Type": "batch", "Datacenters": ["*"],
        "ParameterizedJob": {"Payload": "optional", "MetaRequired": ["time"]},
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "DispatchPayload": {"File": "in.txt"},
            "Config": {"command": "/bin/sh", "args": ["-c", "cat local/in.txt"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

/// A periodic batch job that would launch once a year; forced launches run at once.
fn cron_job() -> Value {
    json!({"Job": {
        "ID": "cron", "Type": "batch", "Datacenters": ["*"],
        "Periodic": {"Enabled": true, "Spec": "0 0 1 1 *", "SpecType": "cron",
            "ProhibitOverlap": true, "TimeZone": "UTC"},
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/true"},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

/// A fixture of `tests/go-shapes/`.
fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/go-shapes/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A job with nearly every field of Go's `Job`, `TaskGroup` and `Task` set (templates,
/// artifacts, identities, actions, volumes, lifecycle, services with checks, scaling, ...).
/// Its constraint matches no node: it stays blocked, so its artifact is never fetched.
fn kitchen_sink_job() -> Value {
    serde_json::from_str(&fixture("job-kitchen-sink.json")).unwrap()
}

/// Waits until `path` answers a non-empty array; returns it.
async fn wait_items(client: &Client, path: &str, what: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (v, _) = get_json(client, path).await.unwrap();
        let items = v.as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            return items;
        }
        assert!(Instant::now() < deadline, "{what} never appeared at {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until an allocation of `job` is `status` on its client; returns its ID.
async fn alloc_with_status(client: &Client, job: &str, status: &str) -> String {
    let path = format!("/v1/job/{}/allocations", job.replace('/', "%2F"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (allocs, _) = get_json(client, &path).await.unwrap();
        if let Some(a) = allocs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["ClientStatus"] == status)
        {
            return a["ID"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {status} allocation of {job}: {allocs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The frames of one exec session running `echo hi`, each checked as Go's exec output.
async fn exec_frames(s: &mut Shapes, c: &PgCluster, alloc: &str) {
    let route = "/v1/client/allocation/{alloc_id}/exec";
    s.checked.insert(("GET".to_owned(), route.to_owned()));
    let command = r#"["/bin/sh","-c","echo hi; exit 3"]"#;
    let url = format!(
        "ws://{}/v1/client/allocation/{alloc}/exec?task=web&tty=false&command={}",
        c.http_addr(),
        command.replace('"', "%22").replace(' ', "%20")
    );
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap()
        .unwrap();
    let what = format!("exec in {alloc}");
    let mut exited = false;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, ws.next()).await {
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                exited |= v["exited"] == true;
                s.value(&what, "ExecStreamingOutput", &v);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(exited, "the exec session never reported its exit");
}

/// Every `/v1/acl/*` route, on a cluster with ACLs on: bootstrap, policies, tokens (with and
/// without an expiry, one-time ones), roles.
async fn acl_routes(s: &mut Shapes) {
    let acl = DevCluster::start_with(&["-acl-enabled"]).await.unwrap();
    let put = Method::PUT;
    let post = Method::POST;
    let boot = s
        .call(
            &acl.client,
            post.clone(),
            "/v1/acl/bootstrap",
            "/v1/acl/bootstrap",
            &Value::Null,
            "ACLToken",
        )
        .await;
    let client = &with_token(&acl, boot["SecretID"].as_str().unwrap());
    let policy = json!({"Name": "readers", "Description": "d",
        "Rules": "namespace \"default\" { policy = \"read\" }"});
    s.call(
        client,
        put.clone(),
        "/v1/acl/policy/{name}",
        "/v1/acl/policy/readers",
        &policy,
        "-",
    )
    .await;
    let workload = json!({"Name": "job-reader", "Description": "for a job",
        "Rules": "namespace \"default\" { policy = \"read\" }",
        "JobACL": {"Namespace": "default", "JobID": "web", "Group": "g", "Task": "t"}});
    s.call(
        client,
        post.clone(),
        "/v1/acl/policy/{name}",
        "/v1/acl/policy/job-reader",
        &workload,
        "-",
    )
    .await;
    s.get(
        client,
        "/v1/acl/policy/{name}",
        "/v1/acl/policy/readers",
        "ACLPolicy",
    )
    .await;
    s.get(
        client,
        "/v1/acl/policy/{name}",
        "/v1/acl/policy/job-reader",
        "ACLPolicy",
    )
    .await;
    s.get(
        client,
        "/v1/acl/policies",
        "/v1/acl/policies",
        "[]ACLPolicyListStub",
    )
    .await;

    let role = s
        .call(
            client,
            put.clone(),
            "/v1/acl/role",
            "/v1/acl/role",
            &json!({"Name": "ops", "Description": "d", "Policies": [{"Name": "readers"}]}),
            "ACLRole",
        )
        .await;
    let role_id = role["ID"].as_str().unwrap().to_owned();
    s.call(
        client,
        post.clone(),
        "/v1/acl/role/{role_id}",
        &format!("/v1/acl/role/{role_id}"),
        &json!({"ID": role_id, "Name": "ops", "Description": "d2",
            "Policies": [{"Name": "readers"}, {"Name": "job-reader"}]}),
        "ACLRole",
    )
    .await;
    s.get(
        client,
        "/v1/acl/role/{role_id}",
        &format!("/v1/acl/role/{role_id}"),
        "ACLRole",
    )
    .await;
    s.get(
        client,
        "/v1/acl/role/name/{name}",
        "/v1/acl/role/name/ops",
        "ACLRole",
    )
    .await;
    s.get(
        client,
        "/v1/acl/roles",
        "/v1/acl/roles",
        "[]ACLRoleListStub",
    )
    .await;

    // Tokens: one that expires (ExpirationTTL and ExpirationTime set), one with a role, a
    // management one.
    let expiring = s
        .call(
            client,
            put.clone(),
            "/v1/acl/token",
            "/v1/acl/token",
            &json!({"Name": "expiring", "Type": "client", "Policies": ["readers"],
                "ExpirationTTL": "1h"}),
            "ACLToken",
        )
        .await;
    let with_role = s
        .call(
            client,
            post.clone(),
            "/v1/acl/token",
            "/v1/acl/token",
            &json!({"Name": "with-role", "Type": "client", "Roles": [{"Name": "ops"}]}),
            "ACLToken",
        )
        .await;
    s.call(
        client,
        post.clone(),
        "/v1/acl/token",
        "/v1/acl/token",
        &json!({"Name": "admin", "Type": "management", "Global": true}),
        "ACLToken",
    )
    .await;
    let accessor = with_role["AccessorID"].as_str().unwrap().to_owned();
    let mut update = with_role.clone();
    update["Name"] = json!("renamed");
    update["Policies"] = json!(["readers"]);
    s.call(
        client,
        put.clone(),
        "/v1/acl/token/{accessor_id}",
        &format!("/v1/acl/token/{accessor}"),
        &update,
        "ACLToken",
    )
    .await;
    for token in [&expiring, &with_role] {
        s.get(
            client,
            "/v1/acl/token/{accessor_id}",
            &format!("/v1/acl/token/{}", token["AccessorID"].as_str().unwrap()),
            "ACLToken",
        )
        .await;
    }
    s.get(
        client,
        "/v1/acl/tokens",
        "/v1/acl/tokens",
        "[]ACLTokenListStub",
    )
    .await;
    s.get(
        client,
        "/v1/acl/token/self",
        "/v1/acl/token/self",
        "ACLToken",
    )
    .await;
    let expiring_client = with_token(&acl, expiring["SecretID"].as_str().unwrap());
    s.get(
        &expiring_client,
        "/v1/acl/token/self",
        "/v1/acl/token/self",
        "ACLToken",
    )
    .await;
    let one_time = s
        .call(
            &expiring_client,
            put.clone(),
            "/v1/acl/token/onetime",
            "/v1/acl/token/onetime",
            &Value::Null,
            "OneTimeTokenUpsertResponse",
        )
        .await;
    s.call(
        &acl.client,
        put.clone(),
        "/v1/acl/token/onetime/exchange",
        "/v1/acl/token/onetime/exchange",
        &json!({"OneTimeSecretID": one_time["OneTimeToken"]["OneTimeSecretID"]}),
        "OneTimeTokenExchangeResponse",
    )
    .await;

    // Deletions.
    s.call(
        client,
        Method::DELETE,
        "/v1/acl/token/{accessor_id}",
        &format!("/v1/acl/token/{accessor}"),
        &Value::Null,
        "-",
    )
    .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/acl/role/{role_id}",
        &format!("/v1/acl/role/{role_id}"),
        &Value::Null,
        "-",
    )
    .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/acl/policy/{name}",
        "/v1/acl/policy/job-reader",
        &Value::Null,
        "-",
    )
    .await;
}

#[tokio::test]
async fn every_response_decodes_into_the_go_api_structs() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client.clone();
    let node = c.node_id().to_owned();
    let mut s = Shapes::new();
    let put = Method::PUT;
    let post = Method::POST;

    // ---- Objects: jobs of each kind, allocations, evaluations, a deployment.
    let web = web_job();
    s.call(
        client,
        put.clone(),
        "/v1/jobs",
        "/v1/jobs",
        &web,
        "JobRegisterResponse",
    )
    .await;
    let web_alloc = alloc_with_status(client, "web", "running").await;
    s.call(
        client,
        put.clone(),
        "/v1/jobs",
        "/v1/jobs",
        &scaled_job(),
        "JobRegisterResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/jobs",
        "/v1/jobs",
        &param_job(),
        "JobRegisterResponse",
    )
    .await;
    let dispatched = s
        .call(
            client,
            post.clone(),
            "/v1/job/{job_id}/dispatch",
            "/v1/job/param/dispatch",
            &json!({"Payload": "aGVsbG8=", "Meta": {"time": "5"}}),
            "JobDispatchResponse",
        )
        .await;
    let child = dispatched["DispatchedJobID"].as_str().unwrap().to_owned();
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}",
        "/v1/job/cron",
        &cron_job(),
        "JobRegisterResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/periodic/force",
        "/v1/job/cron/periodic/force",
        &Value::Null,
        "periodicForceResponse",
    )
    .await;
    let child_alloc = alloc_with_status(client, &child, "complete").await;
    for job in [flaky_job(), unplaceable_job()] {
        s.call(
            client,
            put.clone(),
            "/v1/jobs",
            "/v1/jobs",
            &job,
            "JobRegisterResponse",
        )
        .await;
    }
    // The failed allocation and its replacement, which carries the reschedule history.
    wait_for(
        "the failed allocation's replacement",
        Duration::from_secs(60),
        || async {
            let (allocs, _) = get_json(client, "/v1/job/flaky/allocations").await?;
            Ok(allocs.as_array().is_some_and(|a| a.len() == 2))
        },
    )
    .await
    .unwrap();
    let blocked = wait_items(
        client,
        "/v1/evaluations?filter=Status%20%3D%3D%20%22blocked%22",
        "a blocked evaluation",
    )
    .await;
    let deployments = wait_items(client, "/v1/job/web/deployments", "a deployment").await;
    let deployment = deployments[0]["ID"].as_str().unwrap().to_owned();
    // The allocation's deployment health is set (task states, after MinHealthyTime).
    wait_for(
        "the deployment to see a healthy allocation",
        WAIT,
        || async {
            let (a, _) = get_json(client, &format!("/v1/allocation/{web_alloc}")).await?;
            Ok(a["DeploymentStatus"]["Healthy"] == true)
        },
    )
    .await
    .unwrap();

    // ---- Jobs.
    s.get(client, "/v1/jobs", "/v1/jobs", "[]JobListStub").await;
    s.get(client, "/v1/jobs", "/v1/jobs?meta=true", "[]JobListStub")
        .await;
    s.get(client, "/v1/job/{job_id}", "/v1/job/web", "Job")
        .await;
    s.get(client, "/v1/job/{job_id}", "/v1/job/param", "Job")
        .await;
    s.get(
        client,
        "/v1/job/{job_id}",
        &format!("/v1/job/{}", child.replace('/', "%2F")),
        "Job",
    )
    .await;
    s.get(client, "/v1/job/{job_id}", "/v1/job/cron", "Job")
        .await;
    s.get(
        client,
        "/v1/job/{job_id}/summary",
        "/v1/job/web/summary",
        "JobSummary",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/summary",
        "/v1/job/param/summary",
        "JobSummary",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/allocations",
        "/v1/job/web/allocations",
        "[]AllocationListStub",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/evaluations",
        "/v1/job/web/evaluations",
        "[]Evaluation",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/deployments",
        "/v1/job/web/deployments",
        "[]Deployment",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/deployment",
        "/v1/job/web/deployment",
        "Deployment",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/submission",
        "/v1/job/web/submission?version=0",
        "JobSubmission",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/evaluate",
        "/v1/job/web/evaluate",
        &json!({"JobID": "web", "EvalOptions": {"ForceReschedule": false}}),
        "JobRegisterResponse",
    )
    .await;
    let mut plan = web.clone();
    plan["Diff"] = json!(true);
    plan["Job"]["TaskGroups"][0]["Count"] = json!(2);
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/plan",
        "/v1/job/web/plan",
        &plan,
        "JobPlanResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/validate/job",
        "/v1/validate/job",
        &web,
        "JobValidateResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/jobs/parse",
        "/v1/jobs/parse",
        &json!({"JobHCL": fixture("rich.nomad.hcl"), "Canonicalize": true}),
        "Job",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/jobs/parse",
        "/v1/jobs/parse",
        &json!({"JobHCL": fixture("rich.nomad.hcl"), "Canonicalize": false}),
        "Job",
    )
    .await;

    // Scaling: a new count (a new version), its status and events, the policy from the
    // scaling block; versions, stability and a revert to the first version.
    s.call(
        client,
        post.clone(),
        "/v1/job/{job_id}/scale",
        "/v1/job/scaled/scale",
        &json!({"Count": 2, "Target": {"Group": "g"}, "Message": "shapes", "Meta": {"by": "test"}}),
        "JobRegisterResponse",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/scale",
        "/v1/job/scaled/scale",
        "JobScaleStatusResponse",
    )
    .await;
    let policies = s
        .get(
            client,
            "/v1/scaling/policies",
            "/v1/scaling/policies",
            "[]ScalingPolicyListStub",
        )
        .await;
    let policy = policies[0]["ID"].as_str().unwrap().to_owned();
    s.get(
        client,
        "/v1/scaling/policy/{policy_id}",
        &format!("/v1/scaling/policy/{policy}"),
        "ScalingPolicy",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/versions",
        "/v1/job/scaled/versions",
        "JobVersionsResponse",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/versions",
        "/v1/job/scaled/versions?diffs=true",
        "JobVersionsResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/stable",
        "/v1/job/scaled/stable",
        &json!({"JobID": "scaled", "JobVersion": 0, "Stable": true}),
        "JobStabilityResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/revert",
        "/v1/job/scaled/revert",
        &json!({"JobID": "scaled", "JobVersion": 0}),
        "JobRegisterResponse",
    )
    .await;

    // The kitchen-sink job, twice (so its versions differ), read back every way.
    let sink = kitchen_sink_job();
    s.call(
        client,
        put.clone(),
        "/v1/jobs",
        "/v1/jobs",
        &sink,
        "JobRegisterResponse",
    )
    .await;
    let mut changed = sink.clone();
    changed["Job"]["TaskGroups"][0]["Count"] = json!(3);
    changed["Job"]["TaskGroups"][0]["Tasks"][0]["Env"] = json!({"E": "2"});
    changed["Job"]["Meta"]["c"] = json!("d");
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}",
        "/v1/job/sink",
        &changed,
        "JobRegisterResponse",
    )
    .await;
    s.get(client, "/v1/job/{job_id}", "/v1/job/sink", "Job")
        .await;
    s.get(
        client,
        "/v1/job/{job_id}/versions",
        "/v1/job/sink/versions?diffs=true",
        "JobVersionsResponse",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/summary",
        "/v1/job/sink/summary",
        "JobSummary",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/scale",
        "/v1/job/sink/scale",
        "JobScaleStatusResponse",
    )
    .await;
    let mut plan = changed.clone();
    plan["Diff"] = json!(true);
    plan["Job"]["TaskGroups"][0]["Count"] = json!(4);
    plan["Job"]["TaskGroups"][0]["Tasks"][1]["Env"] = json!({"X": "y"});
    s.call(
        client,
        put.clone(),
        "/v1/job/{job_id}/plan",
        "/v1/job/sink/plan",
        &plan,
        "JobPlanResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/validate/job",
        "/v1/validate/job",
        &sink,
        "JobValidateResponse",
    )
    .await;

    // ---- Evaluations, allocations, deployments.
    let evals = s
        .get(client, "/v1/evaluations", "/v1/evaluations", "[]Evaluation")
        .await;
    let eval = evals
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["JobID"] == "web")
        .map(|e| e["ID"].as_str().unwrap().to_owned())
        .unwrap();
    s.get(
        client,
        "/v1/evaluation/{eval_id}",
        &format!("/v1/evaluation/{eval}"),
        "Evaluation",
    )
    .await;
    s.get(
        client,
        "/v1/evaluation/{eval_id}",
        &format!("/v1/evaluation/{eval}?related=true"),
        "Evaluation",
    )
    .await;
    s.get(
        client,
        "/v1/evaluation/{eval_id}/allocations",
        &format!("/v1/evaluation/{eval}/allocations"),
        "[]AllocationListStub",
    )
    .await;
    for e in &blocked {
        s.get(
            client,
            "/v1/evaluation/{eval_id}",
            &format!("/v1/evaluation/{}", e["ID"].as_str().unwrap()),
            "Evaluation",
        )
        .await;
    }
    for job in ["flaky", "unplaceable"] {
        s.get(
            client,
            "/v1/job/{job_id}/evaluations",
            &format!("/v1/job/{job}/evaluations"),
            "[]Evaluation",
        )
        .await;
        s.get(
            client,
            "/v1/job/{job_id}/summary",
            &format!("/v1/job/{job}/summary"),
            "JobSummary",
        )
        .await;
        let allocs = s
            .get(
                client,
                "/v1/job/{job_id}/allocations",
                &format!("/v1/job/{job}/allocations?all=true"),
                "[]AllocationListStub",
            )
            .await;
        for a in allocs.as_array().unwrap() {
            s.get(
                client,
                "/v1/allocation/{alloc_id}",
                &format!("/v1/allocation/{}", a["ID"].as_str().unwrap()),
                "Allocation",
            )
            .await;
        }
    }
    s.get(
        client,
        "/v1/allocations",
        "/v1/allocations",
        "[]AllocationListStub",
    )
    .await;
    s.get(
        client,
        "/v1/allocations",
        "/v1/allocations?resources=true&task_states=false",
        "[]AllocationListStub",
    )
    .await;
    for id in [&web_alloc, &child_alloc] {
        s.get(
            client,
            "/v1/allocation/{alloc_id}",
            &format!("/v1/allocation/{id}"),
            "Allocation",
        )
        .await;
    }
    s.get(client, "/v1/deployments", "/v1/deployments", "[]Deployment")
        .await;
    s.get(
        client,
        "/v1/deployment/{deployment_id}",
        &format!("/v1/deployment/{deployment}"),
        "Deployment",
    )
    .await;
    s.get(
        client,
        "/v1/deployment/allocations/{deployment_id}",
        &format!("/v1/deployment/allocations/{deployment}"),
        "[]AllocationListStub",
    )
    .await;

    // ---- Node pools.
    let pool = json!({"Name": "gpu", "Description": "machines with GPUs", "Meta": {"a": "b"},
        "SchedulerConfiguration": {"SchedulerAlgorithm": "spread"}});
    s.call(
        client,
        put.clone(),
        "/v1/node/pools",
        "/v1/node/pools",
        &pool,
        "-",
    )
    .await;
    s.call(
        client,
        post.clone(),
        "/v1/node/pool/{pool_name}",
        "/v1/node/pool/gpu",
        &pool,
        "-",
    )
    .await;
    s.get(client, "/v1/node/pools", "/v1/node/pools", "[]NodePool")
        .await;
    for name in ["gpu", "default", "all"] {
        s.get(
            client,
            "/v1/node/pool/{pool_name}",
            &format!("/v1/node/pool/{name}"),
            "NodePool",
        )
        .await;
    }
    s.get(
        client,
        "/v1/node/pool/{pool_name}/nodes",
        "/v1/node/pool/default/nodes",
        "[]NodeListStub",
    )
    .await;
    s.get(
        client,
        "/v1/node/pool/{pool_name}/jobs",
        "/v1/node/pool/default/jobs",
        "[]JobListStub",
    )
    .await;

    // ---- Nodes: the agent's node, and a fake one to drain and purge.
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc.register_fake("fake", "", &[("k", "v")]).await.unwrap();
    s.get(client, "/v1/nodes", "/v1/nodes", "[]NodeListStub")
        .await;
    s.get(
        client,
        "/v1/nodes",
        "/v1/nodes?resources=true&os=true",
        "[]NodeListStub",
    )
    .await;
    for id in [&node, &fake.id] {
        s.get(
            client,
            "/v1/node/{node_id}",
            &format!("/v1/node/{id}"),
            "Node",
        )
        .await;
    }
    s.get(
        client,
        "/v1/node/{node_id}/allocations",
        &format!("/v1/node/{node}/allocations"),
        "[]Allocation",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/node/{node_id}/evaluate",
        &format!("/v1/node/{node}/evaluate"),
        &Value::Null,
        "nodeEvalResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/node/{node_id}/eligibility",
        &format!("/v1/node/{}/eligibility", fake.id),
        &json!({"NodeID": fake.id, "Eligibility": "ineligible"}),
        "NodeEligibilityUpdateResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/node/{node_id}/drain",
        &format!("/v1/node/{}/drain", fake.id),
        &json!({"NodeID": fake.id, "DrainSpec": {"Deadline": 3_600_000_000_000_i64,
            "IgnoreSystemJobs": false}, "MarkEligible": false, "Meta": {"why": "test"}}),
        "NodeDrainUpdateResponse",
    )
    .await;
    s.get(
        client,
        "/v1/node/{node_id}",
        &format!("/v1/node/{}", fake.id),
        "Node",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/node/{node_id}/drain",
        &format!("/v1/node/{}/drain", fake.id),
        &json!({"NodeID": fake.id, "DrainSpec": null, "MarkEligible": true}),
        "NodeDrainUpdateResponse",
    )
    .await;
    // After the drain: its metadata (LastDrain) and the node's events.
    s.get(
        client,
        "/v1/node/{node_id}",
        &format!("/v1/node/{}", fake.id),
        "Node",
    )
    .await;
    s.get(client, "/v1/nodes", "/v1/nodes", "[]NodeListStub")
        .await;

    // ---- The client agent: stats, metadata, files, logs, exec, lifecycle.
    s.get(
        client,
        "/v1/client/stats",
        &format!("/v1/client/stats?node_id={node}"),
        "HostStats",
    )
    .await;
    s.get(
        client,
        "/v1/client/allocation/{alloc_id}/stats",
        &format!("/v1/client/allocation/{web_alloc}/stats"),
        "AllocResourceUsage",
    )
    .await;
    s.get(
        client,
        "/v1/client/metadata",
        &format!("/v1/client/metadata?node_id={node}"),
        "NodeMetaResponse",
    )
    .await;
    // The service catalogue and the checks the agent runs.
    for route in [
        "/v1/client/allocation/{alloc_id}/checks",
        "/v1/allocation/{alloc_id}/checks",
    ] {
        let path = route.replace("{alloc_id}", &web_alloc);
        s.get(client, route, &path, "map[string]AllocCheckStatus")
            .await;
    }
    s.get(
        client,
        "/v1/allocation/{alloc_id}/services",
        &format!("/v1/allocation/{web_alloc}/services"),
        "[]ServiceRegistration",
    )
    .await;
    s.get(
        client,
        "/v1/services",
        "/v1/services?namespace=*",
        "[]ServiceRegistrationListStub",
    )
    .await;
    s.get(
        client,
        "/v1/service/{service_name}",
        "/v1/service/web",
        "[]ServiceRegistration",
    )
    .await;
    s.get(
        client,
        "/v1/job/{job_id}/services",
        "/v1/job/web/services",
        "[]ServiceRegistration",
    )
    .await;
    s.call(
        client,
        post.clone(),
        "/v1/client/metadata",
        &format!("/v1/client/metadata?node_id={node}"),
        &json!({"Meta": {"shapes": "yes", "gone": null}}),
        "NodeMetaResponse",
    )
    .await;
    s.get(
        client,
        "/v1/client/fs/ls/{alloc_id}",
        &format!("/v1/client/fs/ls/{web_alloc}?path=/alloc/logs"),
        "[]AllocFileInfo",
    )
    .await;
    s.get(
        client,
        "/v1/client/fs/stat/{alloc_id}",
        &format!("/v1/client/fs/stat/{web_alloc}?path=/alloc/logs/web.stdout.0"),
        "AllocFileInfo",
    )
    .await;
    let n = s
        .frames(
            client,
            "/v1/client/fs/stream/{alloc_id}",
            &format!(
                "/v1/client/fs/stream/{web_alloc}?path=alloc/logs/web.stdout.0&offset=0&follow=false"
            ),
            "StreamFrame",
        )
        .await;
    assert!(n > 0, "no frames from fs/stream");
    for kind in ["stdout", "stderr"] {
        let n = s
            .frames(
                client,
                "/v1/client/fs/logs/{alloc_id}",
                &format!(
                    "/v1/client/fs/logs/{web_alloc}?task=web&type={kind}&origin=start&offset=0&follow=false"
                ),
                "StreamFrame",
            )
            .await;
        assert!(n > 0, "no frames from fs/logs ({kind})");
    }
    exec_frames(&mut s, &c, &web_alloc).await;
    s.call(
        client,
        put.clone(),
        "/v1/client/allocation/{alloc_id}/signal",
        &format!("/v1/client/allocation/{web_alloc}/signal"),
        &json!({"Signal": "SIGCONT", "Task": "web"}),
        "GenericResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/client/allocation/{alloc_id}/restart",
        &format!("/v1/client/allocation/{web_alloc}/restart"),
        &json!({"TaskName": "web"}),
        "EmptyStruct",
    )
    .await;
    s.get(
        client,
        "/v1/client/allocation/{alloc_id}/gc",
        &format!("/v1/client/allocation/{child_alloc}/gc"),
        "EmptyStruct",
    )
    .await;
    s.get(
        client,
        "/v1/client/gc",
        &format!("/v1/client/gc?node_id={node}"),
        "-",
    )
    .await;

    // ---- Operator, search, status, agent.
    let config = s
        .get(
            client,
            "/v1/operator/scheduler/configuration",
            "/v1/operator/scheduler/configuration",
            "SchedulerConfigurationResponse",
        )
        .await;
    s.call(
        client,
        put.clone(),
        "/v1/operator/scheduler/configuration",
        "/v1/operator/scheduler/configuration",
        &config["SchedulerConfig"],
        "SchedulerSetConfigurationResponse",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/operator/scheduler/configuration",
        "/v1/operator/scheduler/configuration?cas=1",
        &config["SchedulerConfig"],
        "SchedulerSetConfigurationResponse",
    )
    .await;
    for context in [
        "all",
        "jobs",
        "nodes",
        "allocs",
        "evals",
        "deployment",
        "node_pools",
    ] {
        s.call(
            client,
            put.clone(),
            "/v1/search",
            "/v1/search",
            &json!({"Prefix": "", "Context": context}),
            "SearchResponse",
        )
        .await;
    }
    for context in ["all", "jobs", "nodes", "allocs", "node_pools"] {
        s.call(
            client,
            put.clone(),
            "/v1/search/fuzzy",
            "/v1/search/fuzzy",
            &json!({"Text": "web", "Context": context}),
            "FuzzySearchResponse",
        )
        .await;
    }
    s.get(client, "/v1/status/leader", "/v1/status/leader", "string")
        .await;
    s.get(client, "/v1/status/peers", "/v1/status/peers", "[]string")
        .await;
    s.get(client, "/v1/regions", "/v1/regions", "[]string")
        .await;
    s.get(client, "/v1/agent/self", "/v1/agent/self", "AgentSelf")
        .await;
    s.get(
        client,
        "/v1/agent/members",
        "/v1/agent/members",
        "ServerMembers",
    )
    .await;
    s.get(
        client,
        "/v1/agent/health",
        "/v1/agent/health",
        "AgentHealthResponse",
    )
    .await;
    let host = s
        .get(
            client,
            "/v1/agent/host",
            "/v1/agent/host",
            "HostDataResponse",
        )
        .await;
    s.value("GET /v1/agent/host", "HostData", &host);
    s.call(
        client,
        put.clone(),
        "/v1/system/gc",
        "/v1/system/gc",
        &Value::Null,
        "-",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/system/reconcile/summaries",
        "/v1/system/reconcile/summaries",
        &Value::Null,
        "-",
    )
    .await;

    // ---- Namespaces (node pool, Vault and Consul configurations are Enterprise: refused).
    let namespace = json!({"Name": "shapes", "Description": "d", "Quota": "",
        "Meta": {"team": "a"},
        "Capabilities": {"EnabledTaskDrivers": ["raw_exec"], "DisabledTaskDrivers": ["docker"],
            "EnabledNetworkModes": ["host"], "DisabledNetworkModes": ["bridge"]}});
    s.call(
        client,
        put.clone(),
        "/v1/namespace",
        "/v1/namespace",
        &namespace,
        "-",
    )
    .await;
    s.call(
        client,
        post.clone(),
        "/v1/namespace/{name}",
        "/v1/namespace/shapes",
        &namespace,
        "-",
    )
    .await;
    s.get(
        client,
        "/v1/namespace/{name}",
        "/v1/namespace/shapes",
        "Namespace",
    )
    .await;
    s.get(client, "/v1/namespaces", "/v1/namespaces", "[]Namespace")
        .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/namespace/{name}",
        "/v1/namespace/shapes",
        &Value::Null,
        "-",
    )
    .await;

    // ---- ACLs answer 400 while they are off: a second cluster has them on.
    acl_routes(&mut s).await;

    // Pretty answers are encoded again: the same shapes.
    for (route, path, go_type) in [
        (
            "/v1/job/{job_id}",
            "/v1/job/sink?pretty=true".to_owned(),
            "Job",
        ),
        (
            "/v1/jobs",
            "/v1/jobs?pretty=true".to_owned(),
            "[]JobListStub",
        ),
        (
            "/v1/allocation/{alloc_id}",
            format!("/v1/allocation/{web_alloc}?pretty=true"),
            "Allocation",
        ),
        (
            "/v1/node/{node_id}",
            format!("/v1/node/{node}?pretty=true"),
            "Node",
        ),
        (
            "/v1/client/stats",
            format!("/v1/client/stats?node_id={node}&pretty=true"),
            "HostStats",
        ),
        (
            "/v1/agent/self",
            "/v1/agent/self?pretty=true".to_owned(),
            "AgentSelf",
        ),
    ] {
        s.get(client, route, &path, go_type).await;
    }

    // ---- Writes that end things: an allocation stop, a purge, deregistrations, a deletion.
    s.call(
        client,
        post.clone(),
        "/v1/allocation/{alloc_id}/stop",
        &format!("/v1/allocation/{web_alloc}/stop"),
        &Value::Null,
        "AllocStopResponse",
    )
    .await;
    // The stopped allocation links its replacement.
    wait_for("the stopped allocation's replacement", WAIT, || async {
        let (a, _) = get_json(client, &format!("/v1/allocation/{web_alloc}")).await?;
        Ok(a["NextAllocation"].as_str().is_some_and(|n| !n.is_empty()))
    })
    .await
    .unwrap();
    let stopped = s
        .get(
            client,
            "/v1/allocation/{alloc_id}",
            &format!("/v1/allocation/{web_alloc}"),
            "Allocation",
        )
        .await;
    s.get(
        client,
        "/v1/allocation/{alloc_id}",
        &format!(
            "/v1/allocation/{}",
            stopped["NextAllocation"].as_str().unwrap()
        ),
        "Allocation",
    )
    .await;
    s.call(
        client,
        put.clone(),
        "/v1/node/{node_id}/purge",
        &format!("/v1/node/{}/purge", fake.id),
        &Value::Null,
        "NodePurgeResponse",
    )
    .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/job/{job_id}",
        "/v1/job/cron",
        &Value::Null,
        "JobDeregisterResponse",
    )
    .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/job/{job_id}",
        "/v1/job/param?purge=true",
        &Value::Null,
        "JobDeregisterResponse",
    )
    .await;
    s.call(
        client,
        Method::DELETE,
        "/v1/node/pool/{pool_name}",
        "/v1/node/pool/gpu",
        &Value::Null,
        "-",
    )
    .await;

    // ---- Every route of the gateway was checked or is named in NOT_JSON.
    // A route's methods are one endpoint (PUT and POST alike): any of them covers it.
    let mut unchecked = Vec::new();
    for spec in caravan_gateway::routes::specs() {
        let methods: Vec<String> = spec.methods.iter().map(ToString::to_string).collect();
        let covered = methods.iter().any(|m| {
            s.checked.contains(&(m.clone(), spec.path.to_owned()))
                || NOT_JSON.iter().any(|(nm, p, _)| nm == m && *p == spec.path)
        });
        if !covered {
            unchecked.push(format!("{} {}", methods.join("|"), spec.path));
        }
    }
    let unexpected: Vec<String> = s
        .unknown
        .iter()
        .filter(|(k, _)| !ignored_by_go(k))
        .map(|(k, at)| format!("{k} (first in {at})"))
        .collect();
    eprintln!(
        "checked {} routes: {:#?}",
        s.checked.len(),
        s.checked
            .iter()
            .map(|(m, p)| format!("{m} {p}"))
            .collect::<Vec<_>>()
    );
    assert!(
        s.failures.is_empty() && unchecked.is_empty() && unexpected.is_empty(),
        "Go could not decode {} answers:\n{}\n\nroutes not checked: {unchecked:#?}\n\n\
         keys Go's structs do not have (add them to go_shapes::FIELDS if Go has them, \
         else to IGNORED_BY_GO): {unexpected:#?}",
        s.failures.len(),
        s.failures.join("\n"),
    );
}

/// The job blocks Caravan keeps as opaque JSON (Connect, identities, scaling, Vault, ...) and
/// the payload are served back as they were registered, so a value Go's structs cannot hold is
/// refused at registration (as Nomad's decoder refuses it); a well-shaped one reads back.
#[tokio::test]
async fn opaque_job_blocks_keep_go_shapes() {
    let c = DevCluster::start().await.unwrap();
    let client = &c.client;
    let go = GoShapes::load().unwrap();
    let job = |group: Value, task: Value| {
        let mut t = json!({"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
            "Resources": {"CPU": 20, "MemoryMB": 16}});
        let mut g = json!({"Name": "g", "Tasks": []});
        for (k, v) in task.as_object().unwrap() {
            t[k] = v.clone();
        }
        for (k, v) in group.as_object().unwrap() {
            g[k] = v.clone();
        }
        g["Tasks"] = json!([t]);
        // No node matches: nothing runs.
        json!({"Job": {"ID": "opaque", "Type": "batch", "Datacenters": ["*"],
            "Constraints": [{"LTarget": "${node.class}", "RTarget": "nowhere", "Operand": "="}],
            "TaskGroups": [g]}})
    };
    let refused = [
        (
            json!({"Consul": {"Namespace": 5}}),
            json!({}),
            "TaskGroups[0].Consul.Namespace",
        ),
        (
            json!({"Scaling": {"Min": "1", "Max": 3}}),
            json!({}),
            "TaskGroups[0].Scaling.Min",
        ),
        (
            json!({"Disconnect": {"LostAfter": "1m"}}),
            json!({}),
            "TaskGroups[0].Disconnect.LostAfter",
        ),
        (
            json!({"Services": [{"Name": "s", "Provider": "consul", "Connect": {"Native": "yes"}}]}),
            json!({}),
            "TaskGroups[0].Services[0].Connect.Native",
        ),
        (
            json!({"Volumes": {"v": {"Type": "csi", "Source": "s", "MountOptions": {"FSType": 1}}}}),
            json!({}),
            "TaskGroups[0].Volumes.v.MountOptions.FSType",
        ),
        (
            json!({}),
            json!({"Vault": {"Policies": "x"}}),
            "TaskGroups[0].Tasks[0].Vault.Policies",
        ),
        (
            json!({}),
            json!({"Identity": {"TTL": "1h"}}),
            "TaskGroups[0].Tasks[0].Identity.TTL",
        ),
        (
            json!({}),
            json!({"Identities": [{"Name": "x", "Audience": "a"}]}),
            "TaskGroups[0].Tasks[0].Identities[0].Audience",
        ),
        (
            json!({}),
            json!({"CSIPluginConfig": {"ID": 5}}),
            "TaskGroups[0].Tasks[0].CSIPluginConfig.ID",
        ),
        (
            json!({}),
            json!({"Consul": {"Cluster": 7}}),
            "TaskGroups[0].Tasks[0].Consul.Cluster",
        ),
        (
            json!({}),
            json!({"Templates": [{"DestPath": "local/x", "EmbeddedTmpl": "x",
                "Wait": {"Min": "5s"}}]}),
            "TaskGroups[0].Tasks[0].Templates[0].Wait.Min",
        ),
        (
            json!({}),
            json!({"Templates": [{"DestPath": "local/x", "EmbeddedTmpl": "x",
                "ChangeScript": {"Timeout": "5s"}}]}),
            "TaskGroups[0].Tasks[0].Templates[0].ChangeScript.Timeout",
        ),
    ];
    for (group, task, path) in refused {
        let body = job(group, task);
        for route in ["/v1/jobs", "/v1/validate/job", "/v1/job/opaque/plan"] {
            let resp = json_call(client, Method::PUT, route, &body).await;
            assert_eq!(resp.status, 400, "{route} {body}: {}", resp.text());
            assert!(
                resp.text().contains(path),
                "{route}: want {path:?} in {:?}",
                resp.text()
            );
        }
    }
    let mut multiregion = job(json!({}), json!({}));
    multiregion["Job"]["Multiregion"] = json!([]);
    let resp = json_call(client, Method::PUT, "/v1/jobs", &multiregion).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("Multiregion"), "{}", resp.text());
    // The payload is a Go []byte: base64.
    let mut payload = job(json!({}), json!({}));
    payload["Job"]["Payload"] = json!("not base64!");
    let resp = json_call(client, Method::PUT, "/v1/jobs", &payload).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("Payload"), "{}", resp.text());

    // Well-shaped blocks are kept and read back in shapes Go decodes.
    let body = job(
        json!({
            "Consul": {"Namespace": "ns"},
            "Disconnect": {"LostAfter": 60_000_000_000_i64, "Replace": true},
            "Services": [{"Name": "s", "Provider": "consul", "Connect": {"Native": false,
                "SidecarService": {"Port": "8080", "Proxy": {"Upstreams": [
                    {"DestinationName": "db", "LocalBindPort": 5432}]}},
                "SidecarTask": {"KillTimeout": 5_000_000_000_i64, "Resources": {"CPU": 50}}}}]
        }),
        json!({
            "Vault": {"Policies": ["p"], "Role": "r"},
            "Identities": [{"Name": "vault_default", "Audience": ["vault.io"],
                "TTL": 3_600_000_000_000_i64}],
            "Templates": [{"DestPath": "local/x", "EmbeddedTmpl": "x",
                "Wait": {"Min": 1_000_000_000, "Max": 5_000_000_000_i64}}]
        }),
    );
    let mut body = body;
    body["Job"]["Payload"] = json!("aGk=");
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &body).await);
    let (read, _) = get_json(client, "/v1/job/opaque").await.unwrap();
    let report = go.check("Job", &read).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let tg = &read["TaskGroups"][0];
    assert_eq!(
        tg["Services"][0]["Connect"]["SidecarService"]["Proxy"]["Upstreams"][0]["LocalBindPort"],
        5432
    );
    assert_eq!(tg["Tasks"][0]["Vault"]["Policies"], json!(["p"]));
}
