//! ACL enforcement over HTTP (ACL.md §6, §9, §10): tokens from either header, the anonymous
//! policy, bad and expired tokens, namespace rules and their precedence, node rules, the
//! object namespace of allocation routes (CVE-2019-16742), logs versus fs, exec into tasks
//! without isolation, and a deleted token refused at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

fn sleeper(id: &str, namespace: &str) -> Value {
    json!({"Job": {
        "ID": id, "Namespace": namespace, "Type": "service",
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c", "echo hello; sleep 600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }})
}

async fn status(client: &Client, method: Method, path: &str) -> u16 {
    json_call(client, method, path, &Value::Null).await.status
}

async fn client_token(c: &impl Cluster, root: &Client, policies: &[&str]) -> Client {
    let token = acl_token(root, json!({"Type": "client", "Policies": policies})).await;
    with_token(c, token["SecretID"].as_str().unwrap())
}

#[tokio::test]
async fn tokens_come_from_either_header_and_bad_ones_are_refused() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let anon = &c.client;
    let boot = acl_bootstrap(anon).await;
    let secret = boot["SecretID"].as_str().unwrap().to_owned();

    // No token and no anonymous policy: refused; the status probes need none.
    expect_error(
        &json_call(anon, Method::GET, "/v1/jobs", &Value::Null).await,
        403,
        "Permission denied",
    );
    let junk = with_token(&c, "junk");
    for path in [
        "/v1/status/leader",
        "/v1/status/peers",
        "/v1/regions",
        "/v1/agent/health",
    ] {
        assert_eq!(status(anon, Method::GET, path).await, 200, "{path}");
        assert_eq!(
            status(&junk, Method::GET, path).await,
            200,
            "{path} with junk"
        );
    }
    // Unknown UUIDs and junk get the same answer.
    for bad in ["junk", "7c4f1e8a-1b2c-4d3e-8f90-123456789abc"] {
        expect_error(
            &json_call(&with_token(&c, bad), Method::GET, "/v1/jobs", &Value::Null).await,
            403,
            "Permission denied",
        );
    }

    // Bearer works; X-Nomad-Token wins over it; Basic is anonymous.
    let bearer = |auth: String, x_token: Option<&str>| {
        let mut req = anon
            .raw(Method::GET, "/v1/jobs")
            .header("Authorization", auth);
        if let Some(t) = x_token {
            req = req.header("X-Nomad-Token", t);
        }
        req.send()
    };
    assert_eq!(
        bearer(format!("Bearer {secret}"), None)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        bearer(format!("bearer {secret}"), None)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        bearer(format!("Bearer {secret}"), Some("junk"))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        bearer(format!("Basic {secret}"), None)
            .await
            .unwrap()
            .status,
        403
    );

    // The anonymous policy is what the token-less caller gets.
    let root = with_token(&c, &secret);
    acl_policy(
        &root,
        "anonymous",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    assert_eq!(status(anon, Method::GET, "/v1/jobs").await, 200);
    assert_eq!(status(anon, Method::GET, "/v1/nodes").await, 403);
    // Management-only endpoints stay closed to it.
    assert_eq!(status(anon, Method::GET, "/v1/acl/tokens").await, 403);
    assert_eq!(status(anon, Method::PUT, "/v1/system/gc").await, 403);
    assert_eq!(status(&root, Method::PUT, "/v1/system/gc").await, 200);
}

#[tokio::test]
async fn a_deleted_token_or_a_narrowed_policy_stops_working_at_once() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    acl_policy(
        &root,
        "reader",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    let token = acl_token(&root, json!({"Type": "client", "Policies": ["reader"]})).await;
    let user = with_token(&c, token["SecretID"].as_str().unwrap());
    assert_eq!(status(&user, Method::GET, "/v1/jobs").await, 200);
    // Narrowed: the next request sees it.
    acl_policy(&root, "reader", r#"node { policy = "read" }"#).await;
    assert_eq!(status(&user, Method::GET, "/v1/jobs").await, 403);
    assert_eq!(status(&user, Method::GET, "/v1/nodes").await, 200);
    // Deleted.
    let path = format!("/v1/acl/token/{}", token["AccessorID"].as_str().unwrap());
    assert_eq!(status(&root, Method::DELETE, &path).await, 200);
    expect_error(
        &json_call(&user, Method::GET, "/v1/nodes", &Value::Null).await,
        403,
        "Permission denied",
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let dir = TempDir::new("caravan-acl-config").unwrap();
    let config = dir.path().join("agent.hcl");
    std::fs::write(
        &config,
        "acl {\n  enabled = true\n  token_min_expiration_ttl = \"1s\"\n}\n",
    )
    .unwrap();
    let c = DevCluster::start_with(&["-config", config.to_str().unwrap()])
        .await
        .unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    acl_policy(
        &root,
        "reader",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    let token = acl_token(
        &root,
        json!({"Type": "client", "Policies": ["reader"], "ExpirationTTL": "2s"}),
    )
    .await;
    let user = with_token(&c, token["SecretID"].as_str().unwrap());
    assert_eq!(status(&user, Method::GET, "/v1/jobs").await, 200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    expect_error(
        &json_call(&user, Method::GET, "/v1/jobs", &Value::Null).await,
        403,
        "ACL token expired",
    );
}

#[tokio::test]
async fn namespace_rules_and_their_precedence_decide_job_writes() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    for ns in ["prod", "dev"] {
        create_namespace(&root, ns).await.unwrap();
    }
    acl_policy(
        &root,
        "mixed",
        r#"
        namespace "*" { policy = "write" }
        namespace "prod" { policy = "read" }
        node { policy = "read" }
        node { policy = "deny" }
        "#,
    )
    .await;
    let user = client_token(&c, &root, &["mixed"]).await;
    // The exact label wins over the glob: prod is read-only.
    expect_error(
        &json_call(
            &user,
            Method::PUT,
            "/v1/jobs?namespace=prod",
            &sleeper("a", "prod"),
        )
        .await,
        403,
        "Permission denied",
    );
    expect_ok(
        &json_call(
            &user,
            Method::PUT,
            "/v1/jobs?namespace=dev",
            &sleeper("a", "dev"),
        )
        .await,
    );
    assert_eq!(
        status(&user, Method::GET, "/v1/jobs?namespace=prod").await,
        200
    );
    // Deny wins on its label.
    assert_eq!(status(&user, Method::GET, "/v1/nodes").await, 403);
    // Namespaces are listed only where the token holds something (here: all, through `*`).
    let (list, _) = get_json(&user, "/v1/namespaces").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(status(&user, Method::GET, "/v1/namespace/prod").await, 200);
    // Namespace writes are management's.
    let resp = json_call(
        &user,
        Method::PUT,
        "/v1/namespace/qa",
        &json!({"Name": "qa"}),
    )
    .await;
    assert_eq!(resp.status, 403);

    // `*` lists show a limited token only the namespaces it may read (CVE-2025-0937).
    expect_ok(
        &json_call(
            &root,
            Method::PUT,
            "/v1/jobs?namespace=prod",
            &sleeper("p", "prod"),
        )
        .await,
    );
    acl_policy(&root, "dev-only", r#"namespace "dev" { policy = "read" }"#).await;
    let dev = client_token(&c, &root, &["dev-only"]).await;
    let namespaces_of = |list: &Value| -> Vec<String> {
        let mut out: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["Namespace"].as_str().unwrap().to_owned())
            .collect();
        out.dedup();
        out
    };
    let (jobs, _) = get_json(&dev, "/v1/jobs?namespace=*").await.unwrap();
    assert_eq!(namespaces_of(&jobs), ["dev"]);
    for path in ["/v1/allocations?namespace=*", "/v1/evaluations?namespace=*"] {
        let (list, _) = get_json(&dev, path).await.unwrap();
        assert!(
            namespaces_of(&list).iter().all(|ns| ns == "dev"),
            "{path}: {list}"
        );
    }
    let (all, _) = get_json(&root, "/v1/jobs?namespace=*").await.unwrap();
    assert_eq!(namespaces_of(&all), ["dev", "prod"]);
    assert_eq!(
        status(&dev, Method::GET, "/v1/jobs?namespace=prod").await,
        403
    );
    assert_eq!(
        status(&dev, Method::GET, "/v1/jobs?namespace=dev").await,
        200
    );
    assert_eq!(status(&dev, Method::GET, "/v1/namespace/prod").await, 403);
    // The namespace list shows only what the token holds something in.
    let (visible, _) = get_json(&dev, "/v1/namespaces").await.unwrap();
    let names: Vec<&str> = visible
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev"]);
    // Node pools likewise: none without a node_pool rule; the built-ins with one.
    let (pools, _) = get_json(&dev, "/v1/node/pools").await.unwrap();
    assert_eq!(pools, json!([]));
    acl_policy(&root, "pools", r#"node_pool "def*" { policy = "read" }"#).await;
    let pool_reader = client_token(&c, &root, &["pools"]).await;
    let (pools, _) = get_json(&pool_reader, "/v1/node/pools").await.unwrap();
    assert_eq!(pools[0]["Name"], "default");
    assert_eq!(pools.as_array().unwrap().len(), 1);
    // A token with no namespace rule at all is refused `*` outright.
    acl_policy(&root, "nodes-only", r#"node { policy = "read" }"#).await;
    let nodes = client_token(&c, &root, &["nodes-only"]).await;
    assert_eq!(
        status(&nodes, Method::GET, "/v1/jobs?namespace=*").await,
        403
    );
    // A `*` rule that matches no existing namespace shows nothing.
    acl_policy(
        &root,
        "ghosts",
        r#"namespace "ghost-*" { policy = "read" }"#,
    )
    .await;
    let ghosts = client_token(&c, &root, &["ghosts"]).await;
    let (none, _) = get_json(&ghosts, "/v1/jobs?namespace=*").await.unwrap();
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn allocation_routes_check_the_allocations_namespace() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    create_namespace(&root, "b").await.unwrap();
    acl_wait_node_ready(&root).await;
    expect_ok(
        &json_call(
            &root,
            Method::PUT,
            "/v1/jobs?namespace=b",
            &sleeper("web", "b"),
        )
        .await,
    );
    let alloc = std::sync::Mutex::new(String::new());
    wait_for("web's allocation to run", WAIT, || async {
        let (stubs, _) = get_json(&root, "/v1/job/web/allocations?namespace=b").await?;
        let running = stubs
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["ClientStatus"] == "running");
        if let (Some(a), Ok(mut id)) = (running, alloc.lock()) {
            *id = a["ID"].as_str().unwrap_or_default().to_owned();
        }
        Ok(running.is_some())
    })
    .await
    .unwrap();
    let alloc = alloc.into_inner().unwrap();

    // A token for namespace `default` may not reach b's allocation, whatever ?namespace says
    // (CVE-2019-16742).
    acl_policy(
        &root,
        "default-all",
        r#"namespace "default" { policy = "write" capabilities = ["alloc-node-exec"] }"#,
    )
    .await;
    let other = client_token(&c, &root, &["default-all"]).await;
    let none = Value::Null;
    let signal = json!({"Signal": "SIGHUP"});
    let restart = json!({});
    let denied = [
        (
            Method::GET,
            format!("/v1/allocation/{alloc}?namespace=default"),
            &none,
        ),
        (
            Method::POST,
            format!("/v1/allocation/{alloc}/stop?namespace=default"),
            &none,
        ),
        (
            Method::POST,
            format!("/v1/client/allocation/{alloc}/signal?namespace=default"),
            &signal,
        ),
        (
            Method::POST,
            format!("/v1/client/allocation/{alloc}/restart?namespace=default"),
            &restart,
        ),
        (
            Method::GET,
            format!("/v1/client/allocation/{alloc}/stats?namespace=default"),
            &none,
        ),
        (
            Method::GET,
            format!("/v1/client/fs/ls/{alloc}?path=/&namespace=default"),
            &none,
        ),
        (
            Method::GET,
            format!("/v1/client/fs/cat/{alloc}?path=alloc/logs/t.stdout.0"),
            &none,
        ),
        (
            Method::GET,
            format!("/v1/client/fs/logs/{alloc}?task=t&type=stdout&namespace=default"),
            &none,
        ),
    ];
    for (method, path, body) in denied {
        expect_error(
            &json_call(&other, method, &path, body).await,
            403,
            "Permission denied",
        );
    }

    // read-logs alone: logs yes, cat no.
    acl_policy(
        &root,
        "logs",
        r#"namespace "b" { capabilities = ["read-logs"] }"#,
    )
    .await;
    let logs = client_token(&c, &root, &["logs"]).await;
    let resp = json_call(
        &logs,
        Method::GET,
        &format!("/v1/client/fs/logs/{alloc}?task=t&type=stdout&plain=true"),
        &Value::Null,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        status(
            &logs,
            Method::GET,
            &format!("/v1/client/fs/cat/{alloc}?path=alloc/logs/t.stdout.0")
        )
        .await,
        403
    );
    assert_eq!(
        status(&logs, Method::GET, &format!("/v1/allocation/{alloc}")).await,
        403
    );

    // Evaluations check the request's namespace and their own.
    let (evals, _) = get_json(&root, "/v1/job/web/evaluations?namespace=b")
        .await
        .unwrap();
    let eval = evals[0]["ID"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&other, Method::GET, &format!("/v1/evaluation/{eval}")).await,
        403
    );
    acl_policy(&root, "b-read", r#"namespace "b" { policy = "read" }"#).await;
    let b_reader = client_token(&c, &root, &["b-read"]).await;
    assert_eq!(
        status(&b_reader, Method::GET, &format!("/v1/evaluation/{eval}")).await,
        403,
        "the request's namespace (default) is not b's"
    );
    assert_eq!(
        status(
            &b_reader,
            Method::GET,
            &format!("/v1/evaluation/{eval}?namespace=b")
        )
        .await,
        200
    );

    // write in b: the allocation reads, but exec into raw_exec also needs alloc-node-exec.
    acl_policy(&root, "b-write", r#"namespace "b" { policy = "write" }"#).await;
    let writer = client_token(&c, &root, &["b-write"]).await;
    assert_eq!(
        status(&writer, Method::GET, &format!("/v1/allocation/{alloc}")).await,
        200
    );
    let exec =
        format!("/v1/client/allocation/{alloc}/exec?task=t&command=%5B%22echo%22%2C%22hi%22%5D");
    let resp = writer
        .raw(Method::GET, &exec)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    expect_error(&resp, 403, "Permission denied");
}

#[tokio::test]
async fn a_following_log_stream_ends_when_its_token_is_deleted() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    acl_wait_node_ready(&root).await;
    expect_ok(&json_call(&root, Method::PUT, "/v1/jobs", &sleeper("web", "default")).await);
    let alloc = running_alloc_id(&root, "web", WAIT).await.unwrap();
    acl_policy(
        &root,
        "logs",
        r#"namespace "default" { capabilities = ["read-logs"] }"#,
    )
    .await;
    let token = acl_token(&root, json!({"Type": "client", "Policies": ["logs"]})).await;
    let reader = with_token(&c, token["SecretID"].as_str().unwrap());
    let path = format!("/v1/client/fs/logs/{alloc}?task=t&type=stdout&follow=true&plain=true");
    let follow =
        tokio::spawn(async move { json_call(&reader, Method::GET, &path, &Value::Null).await });
    // The follow is open (it would run for the task's 600 s).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!follow.is_finished());
    let accessor = token["AccessorID"].as_str().unwrap();
    assert_eq!(
        status(&root, Method::DELETE, &format!("/v1/acl/token/{accessor}")).await,
        200
    );
    let resp = tokio::time::timeout(Duration::from_secs(5), follow)
        .await
        .expect("the stream outlived its token")
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.text().contains("hello"), "{}", resp.text());
}

/// A blocking query does not outlive its token: it answers 403 when the token is deleted,
/// instead of waking later with data for a token that no longer exists.
#[tokio::test]
async fn a_blocking_query_answers_403_when_its_token_is_deleted() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    acl_policy(
        &root,
        "reader",
        r#"namespace "default" { policy = "read" }"#,
    )
    .await;
    let token = acl_token(&root, json!({"Type": "client", "Policies": ["reader"]})).await;
    let reader = with_token(&c, token["SecretID"].as_str().unwrap());
    let first = json_call(&reader, Method::GET, "/v1/jobs", &Value::Null).await;
    expect_ok(&first);
    let index = first.header("x-nomad-index").unwrap().to_owned();
    let path = format!("/v1/jobs?index={index}&wait=60s");
    let blocked =
        tokio::spawn(async move { json_call(&reader, Method::GET, &path, &Value::Null).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!blocked.is_finished(), "the query did not block");
    let accessor = token["AccessorID"].as_str().unwrap();
    assert_eq!(
        status(&root, Method::DELETE, &format!("/v1/acl/token/{accessor}")).await,
        200
    );
    let resp = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the blocking query outlived its token")
        .unwrap();
    expect_error(&resp, 403, "Permission denied");
}

/// ACL.md §9: the parse endpoint needs a token (CVE-2022-24685); a node's secret grants node
/// reads and nothing of a user's (CVE-2023-1782); `/v1/agent/self` needs agent:read.
#[tokio::test]
async fn parse_node_secrets_and_agent_self_follow_their_rules() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let anon = &c.client;
    let root = with_token(&c, acl_bootstrap(anon).await["SecretID"].as_str().unwrap());
    let hcl = json!({"JobHCL": "job \"p\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      config { command = \"/bin/true\" }\n    }\n  }\n}\n"});
    expect_error(
        &json_call(anon, Method::POST, "/v1/jobs/parse", &hcl).await,
        403,
        "Permission denied",
    );
    acl_policy(
        &root,
        "parser",
        r#"namespace "default" { capabilities = ["parse-job"] }"#,
    )
    .await;
    let parser = client_token(&c, &root, &["parser"]).await;
    let parsed = expect_ok(&json_call(&parser, Method::POST, "/v1/jobs/parse", &hcl).await);
    assert_eq!(parsed["ID"], "p");
    assert_eq!(status(&parser, Method::GET, "/v1/jobs").await, 403);

    // A node's own secret: node reads, not jobs, not ACLs.
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc.register_fake("fake", "", &[]).await.unwrap();
    let node = with_token(&c, &fake.secret_id);
    assert_eq!(status(&node, Method::GET, "/v1/nodes").await, 200);
    assert_eq!(status(&node, Method::GET, "/v1/jobs").await, 403);
    assert_eq!(status(&node, Method::GET, "/v1/acl/tokens").await, 403);
    // And node listings never show secrets.
    let (nodes, _) = get_json(&root, "/v1/nodes").await.unwrap();
    assert!(!nodes.to_string().contains(&fake.secret_id));

    assert_eq!(status(&parser, Method::GET, "/v1/agent/self").await, 403);
    acl_policy(&root, "agent", r#"agent { policy = "read" }"#).await;
    let agent = client_token(&c, &root, &["agent"]).await;
    assert_eq!(status(&agent, Method::GET, "/v1/agent/self").await, 200);
}

/// ACL.md §9: a body naming another namespace than the request never writes there
/// (CVE-2024-10975, CVE-2019-16742's request side); search over every namespace shows nothing
/// of namespaces the token cannot read (CVE-2023-3300).
#[tokio::test]
async fn the_request_namespace_wins_over_the_body_and_search_is_filtered() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    for ns in ["prod", "dev"] {
        create_namespace(&root, ns).await.unwrap();
    }
    expect_ok(
        &json_call(
            &root,
            Method::PUT,
            "/v1/jobs?namespace=prod",
            &sleeper("prod-job", "prod"),
        )
        .await,
    );
    acl_policy(
        &root,
        "dev-write",
        r#"namespace "dev" { policy = "write" }"#,
    )
    .await;
    let dev = client_token(&c, &root, &["dev-write"]).await;
    // The body says prod, the request dev: the job lands in dev.
    let mut body = sleeper("sneaky", "prod");
    body["Namespace"] = json!("prod");
    expect_ok(&json_call(&dev, Method::PUT, "/v1/jobs?namespace=dev", &body).await);
    let (in_dev, _) = get_json(&root, "/v1/job/sneaky?namespace=dev")
        .await
        .unwrap();
    assert_eq!(in_dev["Namespace"], "dev");
    assert_eq!(
        status(&root, Method::GET, "/v1/job/sneaky?namespace=prod").await,
        404
    );
    // Without ?namespace the request's namespace is the job's own (prod): refused.
    assert_eq!(
        json_call(&dev, Method::PUT, "/v1/jobs", &sleeper("sneaky2", "prod"))
            .await
            .status,
        403
    );

    let search = expect_ok(
        &json_call(
            &dev,
            Method::POST,
            "/v1/search?namespace=*",
            &json!({"Prefix": "", "Context": "jobs", "Namespace": "*"}),
        )
        .await,
    );
    assert_eq!(search["Matches"]["jobs"], json!(["sneaky"]), "{search}");
    let all = expect_ok(
        &json_call(
            &root,
            Method::POST,
            "/v1/search?namespace=*",
            &json!({"Prefix": "", "Context": "jobs", "Namespace": "*"}),
        )
        .await,
    );
    assert_eq!(all["Matches"]["jobs"].as_array().unwrap().len(), 2, "{all}");
    let fuzzy = expect_ok(
        &json_call(
            &dev,
            Method::POST,
            "/v1/search/fuzzy?namespace=*",
            &json!({"Text": "job", "Context": "jobs", "Namespace": "*"}),
        )
        .await,
    );
    assert!(!fuzzy.to_string().contains("prod-job"), "{fuzzy}");
    let namespaces = expect_ok(
        &json_call(
            &dev,
            Method::POST,
            "/v1/search?namespace=*",
            &json!({"Prefix": "", "Context": "namespaces", "Namespace": "*"}),
        )
        .await,
    );
    assert_eq!(
        namespaces["Matches"]["namespaces"],
        json!(["dev"]),
        "{namespaces}"
    );
    // Nodes and node pools need their own rules, even through search.
    let everything = expect_ok(
        &json_call(
            &dev,
            Method::POST,
            "/v1/search?namespace=*",
            &json!({"Prefix": "", "Context": "all", "Namespace": "*"}),
        )
        .await,
    );
    assert_eq!(everything["Matches"]["nodes"], Value::Null, "{everything}");
    assert_eq!(
        everything["Matches"]["node_pools"],
        Value::Null,
        "{everything}"
    );
    let all = expect_ok(
        &json_call(
            &root,
            Method::POST,
            "/v1/search?namespace=*",
            &json!({"Prefix": "", "Context": "all", "Namespace": "*"}),
        )
        .await,
    );
    assert!(all["Matches"]["node_pools"].is_array(), "{all}");
}
