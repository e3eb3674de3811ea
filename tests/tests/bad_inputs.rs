//! Every bad input gets a 4xx that says what is wrong, and never harms the service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::Method;
use caravan_tests::*;

const TEXT: &str = "text/plain; charset=utf-8";
const FILTER_PARSE: &str = "failed to create result paginator: failed to read filter expression: ";

/// `(method, path, body, status, a piece of the message)`; an empty piece checks only that the
/// message is not empty.
type Case = (Method, String, &'static str, u16, &'static str);

async fn check(c: &DevCluster, cases: Vec<Case>) {
    for (method, path, body, status, needle) in cases {
        let resp = send(&c.client, method.clone(), &path, body).await.unwrap();
        let text = resp.text();
        assert_eq!(resp.status, status, "{method} {path} {body:?}: {text}");
        assert_eq!(resp.header("content-type"), Some(TEXT), "{method} {path}");
        assert!(!text.is_empty(), "{method} {path}: empty message");
        assert!(
            text.contains(needle),
            "{method} {path} {body:?}: {text:?} does not mention {needle:?}"
        );
    }
    // The service is unharmed.
    let (nodes, _) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].status, "ready");
    assert_eq!(nodes[0].scheduling_eligibility, "eligible");
    assert!(!nodes[0].drain);
}

#[tokio::test]
async fn malformed_and_unknown_node_ids() {
    let c = DevCluster::start().await.unwrap();
    let missing = uuid_with_prefix("");
    let not_hex = "g7476465-4d6e-c0de-26d0-e383c49be941";
    let long = format!("{}0", c.node_id);
    let mut cases: Vec<Case> = vec![
        (
            Method::GET,
            format!("/v1/node/{missing}"),
            "",
            404,
            "node not found",
        ),
        (Method::GET, "/v1/node/not-a-uuid".into(), "", 400, "UUID"),
        (
            Method::GET,
            format!("/v1/node/{}", &c.node_id[..8]),
            "",
            400,
            "UUID",
        ),
        (Method::GET, format!("/v1/node/{not_hex}"), "", 400, "UUID"),
        (Method::GET, format!("/v1/node/{long}"), "", 400, "UUID"),
        (
            Method::GET,
            "/v1/node/not-a-uuid/allocations".into(),
            "",
            400,
            "UUID",
        ),
    ];
    for (suffix, body) in [
        ("eligibility", r#"{"Eligibility":"ineligible"}"#),
        ("drain", r#"{"DrainSpec":{"Deadline":1}}"#),
        ("evaluate", ""),
        ("purge", ""),
    ] {
        cases.push((
            Method::POST,
            format!("/v1/node/{missing}/{suffix}"),
            body,
            404,
            "node not found",
        ));
        cases.push((
            Method::POST,
            format!("/v1/node/not-a-uuid/{suffix}"),
            body,
            400,
            "UUID",
        ));
    }
    check(&c, cases).await;
}

#[tokio::test]
async fn bad_query_parameters() {
    let c = DevCluster::start().await.unwrap();
    let g = |q: &str| format!("/v1/nodes?{q}");
    let cases: Vec<Case> = vec![
        (Method::GET, g("prefix=abc"), "", 400, "even length"),
        (Method::GET, g("prefix=a"), "", 400, "even length"),
        (Method::GET, g("prefix=zz"), "", 400, "hexadecimal"),
        (Method::GET, g("prefix=ab-z1"), "", 400, "hexadecimal"),
        (Method::GET, g("per_page=-1"), "", 400, "per_page"),
        (Method::GET, g("per_page=abc"), "", 400, "per_page"),
        (Method::GET, g("per_page=1.5"), "", 400, "per_page"),
        (Method::GET, g("per_page=99999999999"), "", 400, "per_page"),
        (Method::GET, g("index=abc"), "", 400, "Invalid index"),
        (Method::GET, g("index=-1"), "", 400, "Invalid index"),
        (Method::GET, g("index=1.5"), "", 400, "Invalid index"),
        (Method::GET, g("wait=abc"), "", 400, "Invalid wait time"),
        (Method::GET, g("wait=10"), "", 400, "Invalid wait time"),
        (Method::GET, g("wait=10x"), "", 400, "Invalid wait time"),
        (Method::GET, g("stale=maybe"), "", 400, "stale"),
        (Method::GET, g("resources=x"), "", 400, "resources"),
        (Method::GET, g("os=nope"), "", 400, "\"os\""),
        (
            Method::GET,
            format!("/v1/node/{}?index=abc", c.node_id),
            "",
            400,
            "Invalid index",
        ),
        (
            Method::GET,
            format!("/v1/node/{}?wait=1y", c.node_id),
            "",
            400,
            "Invalid wait time",
        ),
    ];
    check(&c, cases).await;
    let resp = c
        .client
        .get(&g("resources=x"), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        resp.text(),
        "Failed to parse node list fields: Failed to parse value of \"resources\" (x) as a bool: strconv.ParseBool: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        c.client
            .get(&g("per_page=abc"), &QueryOptions::new())
            .await
            .unwrap()
            .text(),
        "Expect a number for `per_page` query string parameter"
    );
    // Accepted: a capped wait, valid Go durations, a zero per_page (no limit).
    for q in [
        "wait=1h",
        "wait=1h30m",
        "wait=250ms",
        "per_page=0",
        "prefix=",
        "stale",
    ] {
        let resp = c.client.get(&g(q), &QueryOptions::new()).await.unwrap();
        assert_eq!(resp.status, 200, "{q}: {}", resp.text());
    }
}

/// Nomad's `parse()` only parses `index` and `wait` when they are non-empty
/// (`if idx := query.Get("index"); idx != ""`), so `?index=&wait=` is a plain read.
#[tokio::test]
async fn empty_parameter_values_are_ignored() {
    let c = DevCluster::start().await.unwrap();
    for q in ["index=", "wait=", "per_page=", "index=&wait="] {
        let resp = c
            .client
            .get(&format!("/v1/nodes?{q}"), &QueryOptions::new())
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{q}: {}", resp.text());
    }
}

#[tokio::test]
async fn bad_filter_expressions() {
    let c = DevCluster::start().await.unwrap();
    let f = |expr: &str| {
        let mut q = String::from("/v1/nodes?filter=");
        for b in expr.bytes() {
            if b.is_ascii_alphanumeric() {
                q.push(b as char);
            } else {
                q.push_str(&format!("%{b:02X}"));
            }
        }
        q
    };
    let cases: Vec<(&str, &str)> = vec![
        (r#"Status =="#, "position"),
        (r#"Status == "ready" and"#, "position"),
        (r#"Status == "ready"#, "unterminated"),
        (r#"(Status == "ready""#, "position"),
        (r#"Status == "ready")"#, "position"),
        (r#"Status"#, "operator"),
        (r#"Status <> "x""#, "<>"),
        (r#"Status === "x""#, "="),
        (r#"Status equals "x""#, "equals"),
        (r#"Status is ready"#, "ready"),
        (r#"Meta[rack] == "x""#, "index"),
        (r#"Name matches "[""#, "regular expression"),
        (r#"== "ready""#, "position"),
        (r#"Status == "ready" xor Name == "a""#, "xor"),
    ];
    for (expr, needle) in &cases {
        let resp = c.client.get(&f(expr), &QueryOptions::new()).await.unwrap();
        let text = resp.text();
        assert_eq!(resp.status, 400, "{expr}: {text}");
        assert!(text.starts_with(FILTER_PARSE), "{expr}: {text}");
        assert!(
            text.contains(needle),
            "{expr}: {text:?} does not name {needle:?}"
        );
        assert_eq!(resp.header("content-type"), Some(TEXT));
    }
    // An expression that parses but cannot be evaluated on a node.
    for expr in [r#"CreateIndex == "x""#, r#"Drivers == "raw_exec""#] {
        let resp = c
            .client
            .get("/v1/nodes", &QueryOptions::new().filter(expr))
            .await
            .unwrap();
        assert_eq!(resp.status, 400, "{expr}: {}", resp.text());
        assert!(
            resp.text().starts_with("failed to read result page: "),
            "{expr}: {}",
            resp.text()
        );
    }
    // Bounded: very long or deeply nested expressions are refused, not crashes.
    let deep = format!(
        "{}Status == \"ready\"{}",
        "(".repeat(4000),
        ")".repeat(4000)
    );
    let resp = c.client.get(&f(&deep), &QueryOptions::new()).await.unwrap();
    assert!(resp.status == 400 || resp.status == 414, "{}", resp.status);
    let nots = format!("{}Status == \"ready\"", "not ".repeat(1500));
    let resp = c
        .client
        .get("/v1/nodes", &QueryOptions::new().filter(nots))
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    let long = vec![r#"Status == "ready""#; 600].join(" or ");
    let resp = c
        .client
        .get("/v1/nodes", &QueryOptions::new().filter(long))
        .await
        .unwrap();
    assert!(resp.status == 400 || resp.status == 414, "{}", resp.status);
    // A backtracking-prone regular expression is harmless (RE2 semantics).
    let resp = c
        .client
        .raw(Method::GET, "/v1/nodes")
        .query(&QueryOptions::new().filter(r#"Name matches "(a+)+$""#))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    check(&c, Vec::new()).await;
}

/// go-bexpr fails on a field the Node struct does not have (NOMAD-BEHAVIOR 8.5: "Missing struct
/// fields are errors", giving 400 `failed to read result page: ...`). A typo such as
/// `status == "ready"` then tells the user, instead of silently matching nothing.
#[tokio::test]
async fn filter_on_an_unknown_field_is_an_error() {
    let c = DevCluster::start().await.unwrap();
    for expr in [r#"Foo == "x""#, r#"status == "ready""#] {
        let resp = c
            .client
            .get("/v1/nodes", &QueryOptions::new().filter(expr))
            .await
            .unwrap();
        assert_eq!(resp.status, 400, "{expr}: {}", resp.text());
        assert!(
            resp.text().starts_with("failed to read result page: "),
            "{}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn bad_write_bodies() {
    let c = DevCluster::start().await.unwrap();
    let drain = format!("/v1/node/{}/drain", c.node_id);
    let elig = format!("/v1/node/{}/eligibility", c.node_id);
    let p = |path: &String, body: &'static str, needle: &'static str| -> Case {
        (Method::POST, path.clone(), body, 400, needle)
    };
    let cases: Vec<Case> = vec![
        p(&drain, "", "Request body is empty"),
        p(&drain, "not json", ""),
        p(&drain, "{\"DrainSpec\":", ""),
        p(&drain, r#""DrainSpec""#, ""),
        p(&drain, r#"{"DrainSpec":"soon"}"#, "DrainSpec"),
        p(&drain, r#"{"DrainSpec":[]}"#, "DrainSpec"),
        p(&drain, r#"{"DrainSpec":{"Deadline":"1h"}}"#, "Deadline"),
        p(&drain, r#"{"DrainSpec":{"Deadline":true}}"#, "Deadline"),
        p(&drain, r#"{"DrainSpec":{"Deadline":1e30}}"#, "Deadline"),
        p(
            &drain,
            r#"{"DrainSpec":{"IgnoreSystemJobs":1}}"#,
            "IgnoreSystemJobs",
        ),
        p(&drain, r#"{"MarkEligible":"yes"}"#, "MarkEligible"),
        p(&drain, r#"{"Meta":"x"}"#, "Meta"),
        p(&elig, "", "Request body is empty"),
        p(&elig, "nope", ""),
        p(&elig, "null", ""),
        p(&elig, r#"{"Eligibility":"maybe"}"#, "maybe"),
        p(&elig, r#"{"Eligibility":"ELIGIBLE"}"#, "ELIGIBLE"),
        p(&elig, r#"{"Eligibility":1}"#, "Eligibility"),
        p(&elig, r#"{"Eligibility":null}"#, "eligibility"),
        p(&elig, r#"{"Eligibility":{"v":"eligible"}}"#, "Eligibility"),
    ];
    check(&c, cases).await;
    // Field names match case-insensitively, as Go's encoding/json does; unknown fields are
    // ignored.
    let resp = post(
        &c.client,
        &elig,
        r#"{"eligibility":"ineligible","Extra":[1]}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["SchedulingEligibility"], "ineligible");
}
