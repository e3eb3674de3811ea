//! The HTTP conventions every endpoint shares (seeds/002, NOMAD-BEHAVIOR 8): compression,
//! `pretty`, error bodies, unknown routes, methods, body limits, the `/` redirect, tokens, and
//! the status/agent endpoints clients probe first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::Value;

const TEXT: &str = "text/plain; charset=utf-8";

/// Go's `json.MarshalIndent(v, "", "    ")` plus the newline Nomad appends.
fn go_pretty(v: &Value) -> String {
    fn write(v: &Value, depth: usize, out: &mut String) {
        let pad = |d: usize| "    ".repeat(d);
        match v {
            Value::Array(items) if !items.is_empty() => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    write(item, depth + 1, out);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Value::Object(map) if !map.is_empty() => {
                out.push_str("{\n");
                for (i, (k, item)) in map.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    write(item, depth + 1, out);
                    out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, 0, &mut out);
    out.push('\n');
    out
}

#[tokio::test]
async fn responses_are_gzipped_when_asked() {
    let c = DevCluster::start().await.unwrap();
    for path in ["/v1/nodes".to_owned(), format!("/v1/node/{}", c.node_id)] {
        let plain = c
            .client
            .raw(Method::GET, &path)
            .decompress(false)
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-encoding"), None);
        let plain_json: Value = plain.json().unwrap();

        let gz = c
            .client
            .raw(Method::GET, &path)
            .header("Accept-Encoding", "gzip")
            .decompress(false)
            .send()
            .await
            .unwrap();
        assert_eq!(gz.status, 200);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(&gz.body[..2], &[0x1f, 0x8b], "{path}: not a gzip stream");
        assert_ne!(gz.body, plain.body);
        assert!(
            gz.header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{:?}",
            gz.headers
        );
        assert_eq!(gz.header("content-type"), Some("application/json"));
        assert!(gz.header("x-nomad-index").is_some());

        // The decompressing client asks for gzip and reads the same JSON.
        let decoded = c.client.get(&path, &QueryOptions::new()).await.unwrap();
        assert_eq!(decoded.status, 200);
        let decoded_json: Value = decoded.json().unwrap();
        assert_eq!(decoded_json, plain_json, "{path}");
    }
}

/// Nomad's gorilla CompressHandler compresses every response when asked (NOMAD-BEHAVIOR 8.7,
/// seeds/002 "Compressed Responses"); small bodies are no exception.
#[tokio::test]
async fn small_responses_are_gzipped_too() {
    let c = DevCluster::start().await.unwrap();
    for path in ["/v1/regions", "/v1/status/leader"] {
        let gz = c
            .client
            .raw(Method::GET, path)
            .header("Accept-Encoding", "gzip")
            .decompress(false)
            .send()
            .await
            .unwrap();
        assert_eq!(gz.status, 200);
        assert_eq!(
            gz.header("content-encoding"),
            Some("gzip"),
            "{path}: {:?}",
            gz.headers
        );
        assert!(gz.header("vary").is_some(), "{path}: {:?}", gz.headers);
    }
}

#[tokio::test]
async fn pretty_indents_by_four_spaces_with_a_final_newline() {
    let c = DevCluster::start().await.unwrap();
    for path in [
        "/v1/nodes".to_owned(),
        format!("/v1/node/{}", c.node_id),
        "/v1/regions".to_owned(),
        "/v1/agent/self".to_owned(),
    ] {
        let plain = c.client.get(&path, &QueryOptions::new()).await.unwrap();
        let text = plain.text();
        assert!(
            !text.ends_with('\n'),
            "{path}: compact output ends with a newline"
        );
        assert!(!text.contains('\n'), "{path}: compact output has newlines");
        let value: Value = plain.json().unwrap();
        for query in ["pretty", "pretty=", "pretty=1", "pretty=true"] {
            let resp = c
                .client
                .get(&format!("{path}?{query}"), &QueryOptions::new())
                .await
                .unwrap();
            assert_eq!(resp.status, 200);
            let pretty = resp.text();
            assert_eq!(pretty, go_pretty(&value), "{path}?{query}");
            assert!(pretty.contains("\n    "), "{path}?{query}");
        }
        let resp = c
            .client
            .get(&format!("{path}?pretty=0"), &QueryOptions::new())
            .await
            .unwrap();
        assert!(!resp.text().contains('\n'), "{path}?pretty=0 is not pretty");
    }
    // Writes too.
    let resp = post(
        &c.client,
        &format!("/v1/node/{}/eligibility?pretty", c.node_id),
        r#"{"Eligibility":"ineligible"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200);
    let value: Value = resp.json().unwrap();
    assert_eq!(resp.text(), go_pretty(&value));
    // The typed option sends it the same way.
    let resp = c
        .client
        .get("/v1/regions", &QueryOptions::new().pretty(true))
        .await
        .unwrap();
    assert_eq!(resp.text(), "[\n    \"global\"\n]\n");
}

#[tokio::test]
async fn errors_are_plain_text_and_unknown_routes_are_empty_404s() {
    let c = DevCluster::start().await.unwrap();
    let missing = uuid_with_prefix("");
    let cases = [
        (
            Method::GET,
            format!("/v1/node/{missing}"),
            404,
            "node not found",
        ),
        (Method::GET, "/v1/node/nope".to_owned(), 400, "UUID"),
        (Method::GET, "/v1/nodes?prefix=abc".to_owned(), 400, "even"),
        (
            Method::POST,
            format!("/v1/node/{}/eligibility", c.node_id),
            400,
            "Request body is empty",
        ),
    ];
    for (method, path, status, needle) in cases {
        let resp = send(&c.client, method, &path, "").await.unwrap();
        assert_eq!(resp.status, status, "{path}: {}", resp.text());
        assert_eq!(resp.header("content-type"), Some(TEXT), "{path}");
        assert!(resp.text().contains(needle), "{path}: {}", resp.text());
    }
    for path in [
        "/v1/bogus",
        "/v1/nodes/extra",
        "/v2/nodes",
        "/ui",
        "/v1/node",
        "/v1/node/",
        "/v1/status",
    ] {
        let resp = c.client.get(path, &QueryOptions::new()).await.unwrap();
        assert_eq!(resp.status, 404, "{path}");
        assert!(resp.body.is_empty(), "{path}: {:?}", resp.text());
    }
}

#[tokio::test]
async fn wrong_methods_are_405_invalid_method() {
    let c = DevCluster::start().await.unwrap();
    let id = &c.node_id;
    let cases = [
        (Method::DELETE, "/v1/nodes".to_owned()),
        (Method::POST, "/v1/nodes".to_owned()),
        (Method::PUT, "/v1/nodes".to_owned()),
        (Method::DELETE, format!("/v1/node/{id}")),
        (Method::POST, format!("/v1/node/{id}")),
        (Method::GET, format!("/v1/node/{id}/drain")),
        (Method::GET, format!("/v1/node/{id}/eligibility")),
        (Method::GET, format!("/v1/node/{id}/purge")),
        (Method::GET, format!("/v1/node/{id}/evaluate")),
        (Method::DELETE, format!("/v1/node/{id}/drain")),
        (Method::POST, format!("/v1/node/{id}/allocations")),
        (Method::POST, "/v1/status/leader".to_owned()),
        (Method::DELETE, "/v1/regions".to_owned()),
        (Method::PUT, "/v1/agent/self".to_owned()),
    ];
    for (method, path) in cases {
        let resp = send(&c.client, method.clone(), &path, "").await.unwrap();
        assert_eq!(resp.status, 405, "{method} {path}: {}", resp.text());
        assert_eq!(resp.text(), "Invalid method", "{method} {path}");
        assert_eq!(resp.header("content-type"), Some(TEXT), "{method} {path}");
    }
    // Nothing was changed by the refused calls.
    let node = node_doc(&c.client, id).await.unwrap();
    assert_eq!(node["Drain"], false);
    assert_eq!(node["Events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let c = DevCluster::start_with(&["-max-body-bytes", "1024"])
        .await
        .unwrap();
    let pad = "x".repeat(4096);
    let big = format!(r#"{{"DrainSpec":{{"Deadline":1}},"Meta":{{"pad":"{pad}"}}}}"#);
    for suffix in ["drain", "eligibility"] {
        let resp = post(&c.client, &format!("/v1/node/{}/{suffix}", c.node_id), &big)
            .await
            .unwrap();
        assert_eq!(resp.status, 413, "{suffix}: {}", resp.text());
        assert_eq!(resp.header("content-type"), Some(TEXT));
        assert!(!resp.text().is_empty());
    }
    // Streamed without a Content-Length: still refused.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.as_bytes().chunks(512).map(|c| Ok(c.to_vec())).collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/node/{}/drain", c.url, c.node_id))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // Nothing was applied.
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Drain"], false);
    // Under the limit it works.
    let small = format!(
        r#"{{"DrainSpec":{{"Deadline":1000000000}},"Meta":{{"pad":"{}"}}}}"#,
        "x".repeat(900)
    );
    assert!(small.len() < 1024);
    // An allocation keeps the drain in progress (an empty node's drain completes at once).
    hold_node(&c.client, &c.node_id).await.unwrap();
    let resp = post(&c.client, &format!("/v1/node/{}/drain", c.node_id), &small)
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Drain"], true);
}

#[tokio::test]
async fn root_redirects_to_the_ui() {
    let c = DevCluster::start().await.unwrap();
    let resp = c.client.get("/", &QueryOptions::new()).await.unwrap();
    assert_eq!(resp.status, 307);
    assert_eq!(resp.header("location"), Some("/ui/"));
    let resp = c
        .client
        .get("/?region=global&x=1", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.status, 307);
    assert_eq!(resp.header("location"), Some("/ui/?region=global&x=1"));
}

#[tokio::test]
async fn tokens_in_either_header_are_accepted_without_acls() {
    let c = DevCluster::start().await.unwrap();
    let token = uuid_with_prefix("");
    for (name, value) in [
        ("X-Nomad-Token", token.clone()),
        ("Authorization", format!("Bearer {token}")),
    ] {
        for path in ["/v1/nodes".to_owned(), format!("/v1/node/{}", c.node_id)] {
            let resp = c
                .client
                .raw(Method::GET, &path)
                .header(name, &value)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status, 200, "{name} on {path}: {}", resp.text());
        }
        let resp = c
            .client
            .raw(Method::POST, &format!("/v1/node/{}/evaluate", c.node_id))
            .header(name, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{name} on evaluate: {}", resp.text());
    }
    // The client's own token setting.
    let with_token = Client::new(c.url.clone()).unwrap().with_token(token);
    let (nodes, _) = with_token.nodes().list(&QueryOptions::new()).await.unwrap();
    assert_eq!(nodes.len(), 1);
    let (r, _) = with_token
        .nodes()
        .eligibility(&c.node_id, false, &WriteOptions::default())
        .await
        .unwrap();
    assert!(r.index > 0);
}

#[tokio::test]
async fn agent_and_status_endpoints() {
    let c = DevCluster::start().await.unwrap();
    let me = c.client.agent().self_().await.unwrap();
    assert_eq!(me.pointer("/config/Region"), Some("global"));
    assert_eq!(me.pointer("/config/Datacenter"), Some("dc1"));
    let member_name = me.pointer("/member/Name").unwrap();
    assert!(!member_name.is_empty());
    assert_eq!(
        me.pointer("/stats/client/node_id"),
        Some(c.node_id.as_str())
    );
    assert_eq!(me.member["Status"], "alive");

    let members = c.client.agent().members().await.unwrap();
    assert_eq!(members.members.len(), 1, "{members:?}");
    assert_eq!(members.members[0].name, member_name);
    assert_eq!(members.members[0].status, "alive");
    assert_eq!(members.server_region, "global");
    assert_eq!(members.server_dc, "dc1");

    // The leader is a JSON string host:port: the server's RPC address.
    let resp = c
        .client
        .get("/v1/status/leader", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.text(), format!("\"{}\"", c.rpc_addr));
    let leader = c.client.status().leader().await.unwrap();
    let (host, port) = leader.rsplit_once(':').unwrap();
    assert!(host.parse::<std::net::IpAddr>().is_ok(), "{leader}");
    assert!(port.parse::<u16>().unwrap() > 0);
    assert_eq!(c.client.status().peers().await.unwrap(), [leader]);
    let resp = c
        .client
        .get("/v1/regions", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.text(), r#"["global"]"#);
    assert_eq!(c.client.status().regions().await.unwrap(), ["global"]);
}

#[tokio::test]
async fn region_flag_names_the_region() {
    let c = DevCluster::start_with(&["-region", "eu"]).await.unwrap();
    assert_eq!(c.client.status().regions().await.unwrap(), ["eu"]);
    let me = c.client.agent().self_().await.unwrap();
    assert_eq!(me.pointer("/config/Region"), Some("eu"));
    // Asking for the agent's own region explicitly works; another region does not.
    let ok = c
        .client
        .get("/v1/nodes?region=eu", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    let other = c
        .client
        .get("/v1/nodes?region=mars", &QueryOptions::new())
        .await
        .unwrap();
    assert!(other.status >= 400, "{}", other.text());
    assert!(other.text().contains("region"), "{}", other.text());
}

#[tokio::test]
async fn a_dead_server_gives_prompt_5xx_answers_not_hangs() {
    let mut c = PgCluster::start().await.unwrap();
    let (_, meta) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(std::time::Duration::from_secs(60));
    let reader = c.client.clone();
    let mut blocked = tokio::spawn(async move { reader.get("/v1/nodes", &q).await });
    let still = std::time::Duration::from_millis(400);
    assert!(tokio::time::timeout(still, &mut blocked).await.is_err());
    c.server.kill_hard();
    let limit = std::time::Duration::from_secs(15);
    let resp = tokio::time::timeout(limit, blocked)
        .await
        .expect("a blocking query hung after its server died")
        .unwrap()
        .unwrap();
    assert!(resp.status >= 500, "{} {}", resp.status, resp.text());
    assert_eq!(resp.header("content-type"), Some(TEXT));
    assert!(!resp.text().is_empty());
    for path in ["/v1/nodes".to_owned(), format!("/v1/node/{}", c.node_id)] {
        let resp = c
            .client
            .raw(Method::GET, &path)
            .timeout(limit)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status >= 500,
            "{path}: {} {}",
            resp.status,
            resp.text()
        );
        assert_eq!(resp.header("content-type"), Some(TEXT));
        assert!(!resp.text().is_empty());
    }
    let resp = c
        .client
        .raw(Method::POST, &format!("/v1/node/{}/eligibility", c.node_id))
        .body(r#"{"Eligibility":"ineligible"}"#)
        .timeout(limit)
        .send()
        .await
        .unwrap();
    assert!(resp.status >= 500, "{} {}", resp.status, resp.text());
}
