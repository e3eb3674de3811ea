//! Namespaces over HTTP on PostgreSQL (ACL.md §7): the built-in `default`, create, read, list,
//! update, delete with Nomad's refusals, and what job admission asks of a namespace (that it
//! exists, the task drivers it allows).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

fn sleeper(id: &str, namespace: &str) -> Value {
    json!({"Job": {
        "ID": id, "Namespace": namespace, "Type": "service",
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

async fn names(client: &Client, path: &str) -> Vec<String> {
    let (list, _) = get_json(client, path).await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn namespaces_are_created_read_listed_updated_and_deleted() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;

    // A new cluster has `default`, as Nomad creates it.
    let (list, meta) = get_json(client, "/v1/namespaces").await.unwrap();
    assert_eq!(
        list,
        json!([{"Capabilities": null, "ConsulConfiguration": null, "CreateIndex": 1,
            "Description": "Default shared namespace", "Hash": null, "Meta": null,
            "ModifyIndex": 1, "Name": "default", "NodePoolConfiguration": null, "Quota": "",
            "VaultConfiguration": null}])
    );
    assert!(meta.last_index >= 1);

    let resp = json_call(
        client,
        Method::PUT,
        "/v1/namespace/prod",
        &json!({"Name": "prod", "Description": "production", "Meta": {"team": "ops"},
            "Capabilities": {"DisabledTaskDrivers": ["exec"]}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "");
    let index: u64 = resp.header("x-nomad-index").unwrap().parse().unwrap();
    // The Go api writes to /v1/namespace, naming the namespace in the body.
    let resp = json_call(
        client,
        Method::POST,
        "/v1/namespace",
        &json!({"Name": "dev", "Description": null, "Meta": null}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let (prod, _) = get_json(client, "/v1/namespace/prod").await.unwrap();
    assert_eq!(prod["Description"], "production");
    assert_eq!(prod["Meta"], json!({"team": "ops"}));
    assert_eq!(prod["Capabilities"]["DisabledTaskDrivers"], json!(["exec"]));
    assert_eq!(prod["CreateIndex"], index);
    assert_eq!(
        names(client, "/v1/namespaces").await,
        ["default", "dev", "prod"]
    );
    assert_eq!(names(client, "/v1/namespaces?prefix=pr").await, ["prod"]);

    // An update keeps CreateIndex; `default` may be changed too.
    expect_ok_empty(
        &json_call(
            client,
            Method::PUT,
            "/v1/namespace/prod",
            &json!({"Name": "prod", "Description": "changed"}),
        )
        .await,
    );
    let (prod, _) = get_json(client, "/v1/namespace/prod").await.unwrap();
    assert_eq!(prod["Description"], "changed");
    assert_eq!(prod["CreateIndex"], index);
    assert!(prod["ModifyIndex"].as_u64().unwrap() > index);
    expect_ok_empty(
        &json_call(
            client,
            Method::PUT,
            "/v1/namespace/default",
            &json!({"Name": "default", "Description": "ours"}),
        )
        .await,
    );
    let (default, _) = get_json(client, "/v1/namespace/default").await.unwrap();
    assert_eq!(default["Description"], "ours");

    expect_ok_empty(&json_call(client, Method::DELETE, "/v1/namespace/dev", &Value::Null).await);
    assert_eq!(names(client, "/v1/namespaces").await, ["default", "prod"]);
    expect_error(
        &json_call(client, Method::GET, "/v1/namespace/dev", &Value::Null).await,
        404,
        "Namespace not found",
    );
}

fn expect_ok_empty(resp: &api::RawResponse) {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "");
}

#[tokio::test]
async fn bad_namespaces_are_refused_with_nomads_texts() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let put = |path: &'static str, body: Value| async move {
        json_call(client, Method::PUT, path, &body).await
    };
    expect_error(
        &put("/v1/namespace/prod", json!({"Name": "dev"})).await,
        400,
        "Namespace name does not match request path",
    );
    expect_error(
        &send(client, Method::PUT, "/v1/namespace/prod", "")
            .await
            .unwrap(),
        400,
        "Request body is empty",
    );
    expect_error(
        &put("/v1/namespace", json!({"Description": "x"})).await,
        400,
        "Missing Namespace Name",
    );
    expect_error(
        &put("/v1/namespace/bad_name", json!({"Name": "bad_name"})).await,
        400,
        "Invalid namespace \"bad_name\": 1 error occurred:\n\t* invalid name \"bad_name\". \
         Must match regex ^[a-zA-Z0-9-]{1,128}$",
    );
    expect_error(
        &put(
            "/v1/namespace/prod",
            json!({"Name": "prod", "Description": "x".repeat(300)}),
        )
        .await,
        400,
        "description longer than 256",
    );
    expect_error(
        &put(
            "/v1/namespace/prod",
            json!({"Name": "prod", "NodePoolConfiguration": {"Default": "gpu"}}),
        )
        .await,
        400,
        "invalid node pool configuration: Node Pools Governance is unlicensed.",
    );
    expect_error(
        &put("/v1/namespace/prod", json!({"Name": 7})).await,
        400,
        "Name",
    );
    let resp = json_call(client, Method::PATCH, "/v1/namespace/prod", &Value::Null).await;
    assert_eq!(resp.status, 405);
    expect_error(
        &json_call(
            client,
            Method::DELETE,
            "/v1/namespace/default",
            &Value::Null,
        )
        .await,
        400,
        "can not delete default namespace",
    );
    expect_error(
        &json_call(client, Method::DELETE, "/v1/namespace/ghost", &Value::Null).await,
        404,
        "namespace not found",
    );
    expect_error(
        &json_call(client, Method::GET, "/v1/namespace/ghost", &Value::Null).await,
        404,
        "Namespace not found",
    );
    // Lists of a namespace that does not exist are empty, not errors.
    let (jobs, _) = get_json(client, "/v1/jobs?namespace=ghost").await.unwrap();
    assert_eq!(jobs, json!([]));
}

#[tokio::test]
async fn jobs_need_an_existing_namespace_that_allows_their_drivers() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    expect_error(
        &json_call(client, Method::PUT, "/v1/jobs", &sleeper("web", "ghost")).await,
        400,
        "job \"web\" is in nonexistent namespace \"ghost\"",
    );
    expect_error(
        &json_call(
            client,
            Method::PUT,
            "/v1/job/web/plan",
            &sleeper("web", "ghost"),
        )
        .await,
        400,
        "job \"web\" is in nonexistent namespace \"ghost\"",
    );
    create_namespace(client, "ghost").await.unwrap();
    expect_ok(&json_call(client, Method::PUT, "/v1/jobs", &sleeper("web", "ghost")).await);

    expect_ok_empty(
        &json_call(
            client,
            Method::PUT,
            "/v1/namespace/locked",
            &json!({"Name": "locked", "Capabilities": {"DisabledTaskDrivers": ["raw_exec"]}}),
        )
        .await,
    );
    expect_error(
        &json_call(client, Method::PUT, "/v1/jobs", &sleeper("web", "locked")).await,
        400,
        "used task driver \"raw_exec\" is not allowed in namespace \"locked\"",
    );

    // A namespace with a live job cannot go; once the job is dead it can.
    wait_for("the job in ghost to run", WAIT, || async {
        let (job, _) = get_json(client, "/v1/job/web?namespace=ghost").await?;
        Ok(job["Status"] == "running")
    })
    .await
    .unwrap();
    let resp = json_call(client, Method::DELETE, "/v1/namespace/ghost", &Value::Null).await;
    expect_error(
        &resp,
        409,
        "namespace \"ghost\" has non-terminal jobs in regions: [global]",
    );
    assert!(
        resp.text().contains("has non-terminal allocations"),
        "{}",
        resp.text()
    );
    expect_ok(
        &json_call(
            client,
            Method::DELETE,
            "/v1/job/web?namespace=ghost",
            &Value::Null,
        )
        .await,
    );
    wait_for("the namespace to be deletable", WAIT, || async {
        let resp = json_call(client, Method::DELETE, "/v1/namespace/ghost", &Value::Null).await;
        Ok(resp.status == 200)
    })
    .await
    .unwrap();
    let (search, _) = {
        let resp = json_call(
            client,
            Method::POST,
            "/v1/search",
            &json!({"Prefix": "", "Context": "namespaces"}),
        )
        .await;
        (expect_ok(&resp), ())
    };
    assert_eq!(
        search["Matches"]["namespaces"],
        json!(["default", "locked"])
    );
}
