//! The Search API over HTTP on PostgreSQL: `/v1/search` (ID prefixes of every context, `all`,
//! the even-length rule of UUID prefixes, truncation at 20, namespaces) and `/v1/search/fuzzy`
//! (names with their scopes, the order of matches, Nomad's limits), and the bad inputs with
//! their messages. The reference is Nomad 1.9's `nomad/search_endpoint.go`; where Nomad answers
//! a client's mistake with a 500 (an unknown context, a short text), Caravan answers 400.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::api::{Method, RawResponse};
use caravan_tests::*;
use serde_json::{Value, json};

/// A constraint no node meets: the job is never placed.
fn unplaceable() -> Value {
    json!([{"LTarget": "${attr.kernel.name}", "RTarget": "no-such-kernel", "Operand": "="}])
}

/// A job that is never placed, with one group `g` and one raw_exec task `t`.
fn idle_job(id: &str) -> Value {
    json!({
        "ID": id,
        "Constraints": unplaceable(),
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["60"]}
        }]}]
    })
}

async fn register_in(client: &Client, namespace: &str, job: &Value) {
    create_namespace(client, namespace).await.unwrap();
    let resp = send(
        client,
        Method::PUT,
        &format!("/v1/jobs?namespace={namespace}"),
        &json!({ "Job": job }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
}

async fn search_raw(client: &Client, path: &str, body: &Value) -> RawResponse {
    post(client, path, &body.to_string()).await.unwrap()
}

/// POST `path` with `body`; must answer 200 with JSON whose Index is the X-Nomad-Index.
async fn search(client: &Client, path: &str, body: &Value) -> Value {
    let resp = search_raw(client, path, body).await;
    assert_eq!(resp.status, 200, "{path} {body}: {}", resp.text());
    let v: Value = resp.json().unwrap();
    let header = resp.header("X-Nomad-Index").unwrap();
    assert_eq!(header, v["Index"].to_string(), "{v}");
    assert!(v["Index"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(resp.header("X-Nomad-KnownLeader"), Some("true"));
    v
}

async fn prefix(client: &Client, prefix: &str, context: &str) -> Value {
    search(
        client,
        "/v1/search",
        &json!({"Prefix": prefix, "Context": context}),
    )
    .await
}

async fn fuzzy(client: &Client, text: &str, context: &str) -> Value {
    search(
        client,
        "/v1/search/fuzzy",
        &json!({"Text": text, "Context": context}),
    )
    .await
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

const ALL: [&str; 11] = [
    "allocs",
    "deployment",
    "evals",
    "jobs",
    "namespaces",
    "node_pools",
    "nodes",
    "plugins",
    "scaling_policy",
    "vars",
    "volumes",
];

/// The first value of `field` in the JSON array at `path` (waiting until there is one).
async fn first_of(client: &Client, path: &str, field: &str) -> String {
    let found = std::sync::Mutex::new(String::new());
    wait_for(&format!("an entry in {path}"), WAIT, || async {
        let (v, _) = get_json(client, path).await?;
        let first = v
            .as_array()
            .and_then(|a| a.first())
            .and_then(|x| x[field].as_str());
        if let (Some(id), Ok(mut found)) = (first, found.lock()) {
            *found = id.to_owned();
        }
        Ok(first.is_some())
    })
    .await
    .unwrap();
    found.into_inner().unwrap()
}

#[tokio::test]
async fn prefix_and_fuzzy_search_over_every_context() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;

    // A service job placed on the cluster's node: an evaluation, an allocation, a deployment.
    let web = json!({
        "ID": "search-web",
        "Datacenters": ["*"],
        "Update": {"MaxParallel": 1},
        "TaskGroups": [{"Name": "web", "Tasks": [{
            "Name": "server", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    });
    register_in(client, "default", &web).await;
    // Jobs that are never placed: names to find, 25 in namespace `bulk` to truncate.
    let fuzzy_app = json!({
        "ID": "fuzzy-app",
        "Constraints": unplaceable(),
        "TaskGroups": [{
            "Name": "frontend",
            "Services": [{"Name": "front-svc", "Provider": "nomad"}],
            "Tasks": [
                {"Name": "front-task", "Driver": "raw_exec",
                 "Config": {"command": "/bin/frontend-server"},
                 "Services": [{"Name": "front-task-svc", "Provider": "nomad"}]},
                {"Name": "img", "Driver": "docker", "Config": {"image": "example/frontend:1"}}
            ]
        }]
    });
    register_in(client, "default", &fuzzy_app).await;
    for id in ["app", "app-z", "zz-app"] {
        register_in(client, "default", &idle_job(id)).await;
    }
    register_in(client, "prod", &idle_job("other")).await;
    for i in 0..25 {
        register_in(client, "bulk", &idle_job(&format!("bulk-{i:02}"))).await;
    }
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc
        .register_fake("fuzz-node-a", "c0ffee", &[])
        .await
        .unwrap();

    let eval_id = first_of(client, "/v1/job/search-web/evaluations", "ID").await;
    let alloc_id = first_of(client, "/v1/job/search-web/allocations", "ID").await;
    let deployment_id = first_of(client, "/v1/job/search-web/deployments", "ID").await;
    let node_id = c.node_id.clone();

    // ---- Prefix search, one context at a time.
    let r = prefix(client, "search-", "jobs").await;
    assert_eq!(r["Matches"], json!({"jobs": ["search-web"]}), "{r}");
    assert_eq!(r["Truncations"], json!({"jobs": false}), "{r}");
    assert_eq!(
        keys(&r),
        [
            "Index",
            "KnownLeader",
            "LastContact",
            "Matches",
            "NextToken",
            "Truncations"
        ]
    );
    assert_eq!(
        (&r["KnownLeader"], &r["LastContact"], &r["NextToken"]),
        (&json!(true), &json!(0), &json!(""))
    );
    // Jobs keep an odd prefix as it is.
    let r = prefix(client, "search-w", "jobs").await;
    assert_eq!(r["Matches"]["jobs"], json!(["search-web"]), "{r}");
    // No match is Nomad's nil list.
    let r = prefix(client, "nothing", "jobs").await;
    assert_eq!(r["Matches"], json!({"jobs": null}), "{r}");

    for (context, id) in [
        ("evals", &eval_id),
        ("allocs", &alloc_id),
        ("deployment", &deployment_id),
        ("nodes", &node_id),
    ] {
        for len in [8, 7, 11, 36] {
            let r = prefix(client, &id[..len], context).await;
            assert!(
                ids(&r["Matches"][context]).contains(&id.as_str()),
                "{context} {}: {r}",
                &id[..len]
            );
            assert_eq!(keys(&r["Matches"]), [context], "{r}");
            assert_eq!(r["Truncations"][context], false, "{r}");
        }
        // Not a UUID prefix: Nomad leaves the context out of the answer.
        let r = prefix(client, "zz", context).await;
        assert_eq!(r["Matches"], json!({}), "{context}: {r}");
        assert_eq!(r["Truncations"], json!({}), "{context}: {r}");
        // Upper case walks the same IDs but matches none of them.
        let upper = id[..8].to_uppercase();
        if upper != id[..8] {
            let r = prefix(client, &upper, context).await;
            assert_eq!(r["Matches"], json!({ context: null }), "{context}: {r}");
        }
    }
    let r = prefix(client, "c0ffee", "nodes").await;
    assert_eq!(r["Matches"]["nodes"], json!([fake.id]), "{r}");

    let r = prefix(client, "", "namespaces").await;
    assert_eq!(
        r["Matches"]["namespaces"],
        json!(["bulk", "default", "prod"]),
        "{r}"
    );
    let r = prefix(client, "pr", "namespaces").await;
    assert_eq!(r["Matches"]["namespaces"], json!(["prod"]), "{r}");
    let r = prefix(client, "", "node_pools").await;
    assert_eq!(r["Matches"]["node_pools"], json!(["all", "default"]), "{r}");
    let r = prefix(client, "de", "node_pools").await;
    assert_eq!(r["Matches"]["node_pools"], json!(["default"]), "{r}");
    for context in ["plugins", "volumes", "scaling_policy", "vars"] {
        let r = prefix(client, "", context).await;
        assert_eq!(r["Matches"], json!({ context: null }), "{r}");
        assert_eq!(r["Truncations"], json!({ context: false }), "{r}");
    }

    // ---- Namespaces: the query parameter, then the body, then `default`; `*` for all.
    let r = prefix(client, "oth", "jobs").await;
    assert_eq!(r["Matches"]["jobs"], Value::Null, "{r}");
    let body = json!({"Prefix": "oth", "Context": "jobs"});
    let r = search(client, "/v1/search?namespace=prod", &body).await;
    assert_eq!(r["Matches"]["jobs"], json!(["other"]), "{r}");
    let body = json!({"Prefix": "oth", "Context": "jobs", "Namespace": "prod"});
    let r = search(client, "/v1/search", &body).await;
    assert_eq!(r["Matches"]["jobs"], json!(["other"]), "{r}");
    let r = search(client, "/v1/search?namespace=default", &body).await;
    assert_eq!(r["Matches"]["jobs"], Value::Null, "{r}");
    let body = json!({"Prefix": "", "Context": "jobs", "Namespace": "*"});
    let r = search(client, "/v1/search", &body).await;
    // Every namespace, in namespace then ID order: bulk's 25 jobs come first.
    let all_ns = ids(&r["Matches"]["jobs"]);
    assert_eq!(all_ns.len(), 20, "{r}");
    assert_eq!(all_ns[0], "bulk-00", "{r}");
    assert_eq!(r["Truncations"]["jobs"], true, "{r}");
    let body = json!({"Prefix": &eval_id[..8], "Context": "evals"});
    let r = search(client, "/v1/search?namespace=prod", &body).await;
    assert_eq!(r["Matches"]["evals"], Value::Null, "{r}");

    // ---- Truncation at 20, in ID order.
    let body = json!({"Prefix": "bulk-", "Context": "jobs"});
    let r = search(client, "/v1/search?namespace=bulk", &body).await;
    let expected: Vec<String> = (0..20).map(|i| format!("bulk-{i:02}")).collect();
    assert_eq!(r["Matches"]["jobs"], json!(expected), "{r}");
    assert_eq!(r["Truncations"]["jobs"], true, "{r}");
    let body = json!({"Prefix": "bulk-2", "Context": "jobs"});
    let r = search(client, "/v1/search?namespace=bulk", &body).await;
    assert_eq!(
        r["Matches"]["jobs"],
        json!(["bulk-20", "bulk-21", "bulk-22", "bulk-23", "bulk-24"]),
        "{r}"
    );
    assert_eq!(r["Truncations"]["jobs"], false, "{r}");
    let body = json!({"Prefix": "", "Context": "evals"});
    let r = search(client, "/v1/search?namespace=bulk", &body).await;
    let evals = ids(&r["Matches"]["evals"]);
    assert_eq!(evals.len(), 20, "{r}");
    assert!(evals.windows(2).all(|w| w[0] < w[1]), "{r}");
    assert_eq!(r["Truncations"]["evals"], true, "{r}");

    // ---- `all`.
    let r = prefix(client, &alloc_id[..8], "all").await;
    assert_eq!(keys(&r["Matches"]), ALL, "{r}");
    assert_eq!(keys(&r["Truncations"]), ALL, "{r}");
    assert!(
        ids(&r["Matches"]["allocs"]).contains(&alloc_id.as_str()),
        "{r}"
    );
    // A name: the UUID contexts cannot take it and are left out.
    let r = prefix(client, "search-", "all").await;
    assert_eq!(
        keys(&r["Matches"]),
        [
            "jobs",
            "namespaces",
            "node_pools",
            "plugins",
            "scaling_policy",
            "vars",
            "volumes"
        ],
        "{r}"
    );
    assert_eq!(r["Matches"]["jobs"], json!(["search-web"]), "{r}");
    // With `all`, an odd prefix is rounded down for jobs too: "zz-" walks from "zz".
    let r = prefix(client, "zz-", "all").await;
    assert_eq!(r["Matches"]["jobs"], json!(["zz-app"]), "{r}");
    let r = prefix(client, "", "all").await;
    assert_eq!(keys(&r["Matches"]), ALL, "{r}");
    assert_eq!(r["Matches"]["node_pools"], json!(["all", "default"]), "{r}");
    // The index is the highest of the searched tables'.
    let (_, meta) = get_json(client, "/v1/jobs?namespace=*").await.unwrap();
    assert!(r["Index"].as_u64().unwrap() >= meta.last_index, "{r}");
    // PUT answers as POST does.
    let resp = send(
        client,
        Method::PUT,
        "/v1/search",
        &json!({"Prefix": "search-", "Context": "jobs"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    // ---- Fuzzy search.
    let r = fuzzy(client, "front", "jobs").await;
    let scope = |parts: &[&str]| json!(parts);
    assert_eq!(
        r["Matches"],
        json!({
            "commands": [{"ID": "/bin/frontend-server",
                          "Scope": scope(&["default", "fuzzy-app", "frontend", "front-task"])}],
            "groups": [{"ID": "frontend", "Scope": scope(&["default", "fuzzy-app"])}],
            "images": [{"ID": "example/frontend:1",
                        "Scope": scope(&["default", "fuzzy-app", "frontend", "img"])}],
            "services": [
                {"ID": "front-svc", "Scope": scope(&["default", "fuzzy-app", "frontend"])},
                {"ID": "front-task-svc",
                 "Scope": scope(&["default", "fuzzy-app", "frontend", "front-task"])}
            ],
            "tasks": [{"ID": "front-task", "Scope": scope(&["default", "fuzzy-app", "frontend"])}]
        }),
        "{r}"
    );
    assert_eq!(r["Truncations"], json!({"jobs": false}), "{r}");
    // Case does not matter; matches sort by position, then length, then name.
    let r = fuzzy(client, "APP", "jobs").await;
    let names: Vec<&Value> = r["Matches"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["ID"])
        .collect();
    assert_eq!(names, ["app", "app-z", "zz-app", "fuzzy-app"], "{r}");
    assert_eq!(
        r["Matches"]["jobs"][3],
        json!({"ID": "fuzzy-app", "Scope": ["default", "fuzzy-app"]})
    );

    let r = fuzzy(client, "search-web", "allocs").await;
    assert_eq!(
        r["Matches"]["allocs"],
        json!([{"ID": "search-web.web[0]", "Scope": ["default", alloc_id]}]),
        "{r}"
    );
    assert_eq!(r["Truncations"], json!({"allocs": false}), "{r}");
    let r = fuzzy(client, "Fuzz-Node", "nodes").await;
    assert_eq!(
        r["Matches"]["nodes"],
        json!([{"ID": "fuzz-node-a", "Scope": [fake.id]}]),
        "{r}"
    );
    let r = fuzzy(client, "efau", "namespaces").await;
    assert_eq!(
        r["Matches"],
        json!({"namespaces": [{"ID": "default"}]}),
        "{r}"
    );
    let r = fuzzy(client, "al", "node_pools").await;
    assert_eq!(
        r["Matches"],
        json!({"node_pools": [{"ID": "all", "Scope": ["all"]}]}),
        "{r}"
    );
    // Evaluations and deployments match by UUID prefix.
    let r = fuzzy(client, &eval_id[..8], "evals").await;
    assert_eq!(r["Matches"], json!({"evals": [{"ID": eval_id}]}), "{r}");
    let r = fuzzy(client, &deployment_id[..6], "deployment").await;
    assert_eq!(
        r["Matches"],
        json!({"deployment": [{"ID": deployment_id}]}),
        "{r}"
    );

    // `all`: every context reports a truncation; those matched by prefix always list.
    let r = fuzzy(client, "no-such-thing", "all").await;
    assert_eq!(
        r["Matches"],
        json!({"deployment": [], "evals": [], "scaling_policy": [], "volumes": []}),
        "{r}"
    );
    assert_eq!(keys(&r["Truncations"]), ALL, "{r}");
    let r = fuzzy(client, "fuzz", "all").await;
    assert_eq!(
        r["Matches"]["jobs"],
        json!([{"ID": "fuzzy-app", "Scope": ["default", "fuzzy-app"]}]),
        "{r}"
    );
    assert_eq!(r["Matches"]["nodes"][0]["ID"], "fuzz-node-a", "{r}");

    // Nomad looks at the first 20 objects of a context (limit_query): the 20th matched and
    // more were left, so the jobs are truncated.
    let body = json!({"Text": "bulk", "Context": "jobs"});
    let r = search(client, "/v1/search/fuzzy?namespace=bulk", &body).await;
    assert_eq!(r["Matches"]["jobs"].as_array().unwrap().len(), 20, "{r}");
    assert_eq!(r["Matches"]["jobs"][0]["ID"], "bulk-00", "{r}");
    assert_eq!(r["Truncations"]["jobs"], true, "{r}");
    let body = json!({"Text": "bulk", "Context": "jobs", "Namespace": "*"});
    let r = search(client, "/v1/search/fuzzy", &body).await;
    assert_eq!(r["Matches"]["jobs"].as_array().unwrap().len(), 20, "{r}");
}

#[tokio::test]
async fn search_bad_inputs_are_400s_that_say_what_is_wrong() {
    let c = PgCluster::start().await.unwrap();
    let client = &c.client;
    let contexts = "[allocs jobs nodes node_pools evals deployment plugins volumes \
                    scaling_policy vars namespaces] or 'all' for all contexts";
    let bad = |path: &'static str, body: &'static str| async move {
        let resp = post(client, path, body).await.unwrap();
        assert_eq!(resp.status, 400, "{path} {body}: {}", resp.text());
        resp.text()
    };

    for path in ["/v1/search", "/v1/search/fuzzy"] {
        let unknown = bad(
            path,
            r#"{"Prefix": "ab", "Text": "ab", "Context": "tasks"}"#,
        )
        .await;
        assert_eq!(
            unknown,
            format!("context must be one of {contexts}; got \"tasks\"")
        );
        // Nomad's name is singular.
        let plural = bad(path, r#"{"Text": "ab", "Context": "deployments"}"#).await;
        assert!(plural.ends_with("got \"deployments\""), "{plural}");
        // Enterprise contexts do not exist here.
        let quotas = bad(path, r#"{"Text": "ab", "Context": "quotas"}"#).await;
        assert!(quotas.starts_with("context must be one of"), "{quotas}");
        let missing = bad(path, r#"{"Text": "ab"}"#).await;
        assert!(missing.ends_with("got \"\""), "{missing}");

        assert_eq!(bad(path, "").await, "Request body is empty");
        assert!(bad(path, "{").await.contains("not valid JSON"));
        assert!(bad(path, "[]").await.contains("must be a JSON object"));
        let wrong = bad(path, r#"{"Context": ["jobs"]}"#).await;
        assert!(wrong.contains("Context"), "{wrong}");
        let wrong = bad(path, r#"{"Context": "all", "Namespace": 5}"#).await;
        assert!(wrong.contains("Namespace"), "{wrong}");
        let region = bad(
            path,
            r#"{"Text": "ab", "Context": "all", "Region": "mars"}"#,
        )
        .await;
        assert_eq!(region, "No path to region \"mars\"");

        let resp = send(client, Method::GET, path, "").await.unwrap();
        assert_eq!(resp.status, 405, "{}", resp.text());
        let resp = post(
            client,
            &format!("{path}?stale=maybe"),
            r#"{"Text": "ab", "Context": "all"}"#,
        )
        .await
        .unwrap();
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert!(resp.text().contains("stale"), "{}", resp.text());
    }

    let wrong = bad("/v1/search", r#"{"Prefix": 5, "Context": "jobs"}"#).await;
    assert!(wrong.contains("Prefix"), "{wrong}");
    let wrong = bad("/v1/search/fuzzy", r#"{"Text": 12, "Context": "jobs"}"#).await;
    assert!(wrong.contains("Text"), "{wrong}");

    // Fuzzy search needs at least two bytes of text (Nomad's min_term_length), checked first.
    let short = bad("/v1/search/fuzzy", r#"{"Context": "all"}"#).await;
    assert_eq!(
        short,
        "fuzzy search query must be at least 2 characters, got 0"
    );
    let short = bad("/v1/search/fuzzy", r#"{"Text": "a", "Context": "nope"}"#).await;
    assert_eq!(
        short,
        "fuzzy search query must be at least 2 characters, got 1"
    );
    // Prefix search takes any prefix, the empty one included.
    let resp = post(client, "/v1/search", r#"{"Context": "jobs"}"#)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v: Value = resp.json().unwrap();
    assert_eq!(v["Matches"], json!({"jobs": null}), "{v}");
    assert_eq!(v["Index"], 1, "{v}");
}
