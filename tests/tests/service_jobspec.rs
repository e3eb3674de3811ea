//! Services in job specs over HTTP (SERVICES.md §5, checklist items 28, 34–39): bad service
//! blocks are refused at submit with Nomad's texts, nomad-provider services get their implicit
//! constraints, and the dev agent fingerprints what those constraints ask for, so such a job
//! is placed and runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

const SECOND: i64 = 1_000_000_000;

/// A service job `id`: group `web` with a dynamic port `http` and `services`, one raw_exec
/// task `app` that sleeps.
fn job(id: &str, services: Value) -> Value {
    json!({
        "ID": id,
        "TaskGroups": [{
            "Name": "web",
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": services,
            "Tasks": [{
                "Name": "app",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["300"]}
            }]
        }]
    })
}

fn nomad_service(check: Value) -> Value {
    json!([{"Name": "api", "Provider": "nomad", "PortLabel": "http", "Checks": [check]}])
}

fn http_check() -> Value {
    json!({"Name": "alive", "Type": "http", "Path": "/health",
        "Interval": 10 * SECOND, "Timeout": 2 * SECOND})
}

async fn submit(client: &Client, job: &Value) -> api::RawResponse {
    json_call(client, Method::PUT, "/v1/jobs", &json!({ "Job": job })).await
}

#[tokio::test]
async fn bad_service_blocks_are_refused_with_nomads_texts() {
    let c = DevCluster::start().await.unwrap();
    let with_check = |extra: Value| {
        let mut check = http_check();
        for (k, v) in extra.as_object().unwrap() {
            check[k] = v.clone();
        }
        nomad_service(check)
    };
    let cases = [
        // 28
        (
            json!([{"Name": "api", "Provider": "nomad", "PortLabel": "http",
                "Address": "10.0.0.1", "AddressMode": "host"}]),
            "Service address_mode must be \"auto\" if address is set",
        ),
        // 34
        (
            json!([{"Name": "api", "Provider": "grpc"}]),
            "Service provider must be \"consul\", or \"nomad\"; not \"grpc\"",
        ),
        // 36
        (
            with_check(json!({"Type": "script", "Command": "/bin/true"})),
            "invalid check type (\"script\"), must be one of tcp, http",
        ),
        (
            with_check(json!({"Type": "grpc"})),
            "invalid check type (\"grpc\"), must be one of tcp, http",
        ),
        // 37
        (
            with_check(json!({"SuccessBeforePassing": 2})),
            "success_before_passing may only be set for Consul service checks",
        ),
        // 38
        (
            with_check(json!({"Path": "http://example.com/health"})),
            "http type must have relative http path",
        ),
        (
            json!([{"Name": "api", "Provider": "nomad", "PortLabel": "http"},
                {"Name": "api", "Provider": "nomad", "PortLabel": "http"}]),
            "Services are not unique: [group->api:http]",
        ),
    ];
    for (i, (services, text)) in cases.into_iter().enumerate() {
        let resp = submit(&c.client, &job(&format!("bad-{i}"), services)).await;
        expect_error(&resp, 400, text);
    }

    // 35: a group mixing providers (group and task services together).
    let mut mixed = job("bad-mixed", json!([{"Name": "api", "Provider": "nomad"}]));
    mixed["TaskGroups"][0]["Tasks"][0]["Services"] = json!([{"Name": "task-api"}]);
    expect_error(
        &submit(&c.client, &mixed).await,
        400,
        "Multiple service providers used: task group services must use the same provider",
    );

    // The validate endpoint reports the same text.
    let resp = json_call(
        &c.client,
        Method::PUT,
        "/v1/validate/job",
        &json!({"Job": job("bad-validate", json!([{"Name": "api", "Provider": "grpc"}]))}),
    )
    .await;
    let body = expect_ok(&resp);
    assert!(
        body["Error"]
            .as_str()
            .unwrap()
            .contains("Service provider must be \"consul\", or \"nomad\"; not \"grpc\""),
        "{body}"
    );
}

#[tokio::test]
async fn nomad_service_job_gets_its_constraints_and_runs_on_the_dev_agent() {
    let c = DevCluster::start().await.unwrap();

    // The node offers what the constraints ask for.
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Attributes"]["nomad.service_discovery"], "true");
    assert_eq!(node["Attributes"]["nomad.version"], "1.9.7");
    assert!(node["Attributes"]["caravan.version"].is_string(), "{node}");

    let spec = job("svc", nomad_service(http_check()));
    register_job(&c.client, &spec).await.unwrap();
    let (doc, _) = get_json(&c.client, "/v1/job/svc").await.unwrap();
    let group = &doc["TaskGroups"][0];
    let want = json!([
        {"LTarget": "${attr.nomad.service_discovery}", "Operand": "=", "RTarget": "true"},
        {"LTarget": "${attr.nomad.version}", "Operand": "semver", "RTarget": ">= 1.4.0"},
    ]);
    assert_eq!(group["Constraints"], want);
    let service = &group["Services"][0];
    assert_eq!(service["Provider"], "nomad");
    assert_eq!(service["AddressMode"], "auto");
    assert_eq!(service["OnUpdate"], "require_healthy");
    assert_eq!(service["Checks"][0]["OnUpdate"], "require_healthy");

    running_alloc_id(&c.client, "svc", Duration::from_secs(60))
        .await
        .unwrap();

    // Re-registering the job as read back (constraints included) adds none twice.
    let mut again = doc.clone();
    again["Meta"] = json!({"v": "2"});
    register_job(&c.client, &again).await.unwrap();
    let (doc, _) = get_json(&c.client, "/v1/job/svc").await.unwrap();
    assert_eq!(doc["TaskGroups"][0]["Constraints"], want);

    // A service that forgot `provider` is a consul one: it carries the consul constraint and
    // cannot be placed on a node without consul.
    let consul = job("svc-consul", json!([{"Name": "api", "PortLabel": "http"}]));
    register_job(&c.client, &consul).await.unwrap();
    let (doc, _) = get_json(&c.client, "/v1/job/svc-consul").await.unwrap();
    assert_eq!(
        doc["TaskGroups"][0]["Constraints"],
        json!([{"LTarget": "${attr.consul.version}", "Operand": "semver", "RTarget": ">= 1.8.0"}])
    );
}
