//! Every route of the gateway's route table, with ACLs on: a token whose policy grants nothing
//! is refused (403), and a token holding exactly the route's declared capability is not
//! (whatever else the route then says of the placeholder input).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_gateway::acl::Capability;
use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

/// The policy rules that grant exactly `capability` (in namespace `default`, for namespace
/// capabilities); `None` for what no client token can hold.
fn rules_granting(capability: Capability) -> Option<String> {
    Some(match capability {
        Capability::NodeRead => r#"node { policy = "read" }"#.to_owned(),
        Capability::NodeWrite => r#"node { policy = "write" }"#.to_owned(),
        Capability::AgentRead => r#"agent { policy = "read" }"#.to_owned(),
        Capability::OperatorRead => r#"operator { policy = "read" }"#.to_owned(),
        Capability::OperatorWrite => r#"operator { policy = "write" }"#.to_owned(),
        Capability::NodePool(cap) => format!(r#"node_pool "*" {{ capabilities = ["{cap}"] }}"#),
        Capability::Namespace(cap) => {
            format!(r#"namespace "default" {{ capabilities = ["{cap}"] }}"#)
        }
        Capability::NamespaceAnyOf(caps) | Capability::ObjectNamespace(caps) => format!(
            r#"namespace "default" {{ capabilities = ["{}"] }}"#,
            caps.first().copied().unwrap_or("deny")
        ),
        Capability::NamespaceAny => r#"namespace "default" { policy = "read" }"#.to_owned(),
        Capability::None
        | Capability::Authenticated
        | Capability::AclEndpoint
        | Capability::Management => return None,
    })
}

/// A concrete path for a route: parameters filled with `alloc` (allocation IDs), `node`
/// (node IDs), `default` (names) or a fixed UUID, plus the query a route needs to get as far
/// as its capability check.
fn concrete(route: &str, alloc: &str, node: &str) -> String {
    let mut out = String::new();
    for part in route.split('/') {
        if part.is_empty() {
            continue;
        }
        out.push('/');
        match part {
            "{alloc_id}" => out.push_str(alloc),
            "{node_id}" => out.push_str(node),
            "{name}" | "{pool_name}" | "{job_id}" => out.push_str("default"),
            p if p.starts_with("{*") => out.push_str("ls"),
            p if p.starts_with('{') => out.push_str("7c4f1e8a-1b2c-4d3e-8f90-123456789abc"),
            p => out.push_str(p),
        }
    }
    if route.starts_with("/v1/client/fs/") {
        out.push_str("?path=/&task=t&type=stdout&plain=true&follow=false&offset=0&limit=1");
    }
    out
}

#[tokio::test]
async fn every_route_refuses_a_token_without_its_capability_and_serves_one_with_it() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    let root = with_token(
        &c,
        acl_bootstrap(&c.client).await["SecretID"].as_str().unwrap(),
    );
    let node = acl_wait_node_ready(&root).await;
    expect_ok(
        &json_call(
            &root,
            Method::PUT,
            "/v1/jobs",
            &json!({"Job": {"ID": "web", "Type": "service",
                "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec",
                    "Config": {"command": "/bin/sleep", "args": ["600"]},
                    "Resources": {"CPU": 20, "MemoryMB": 16}}]}]}}),
        )
        .await,
    );
    let alloc = running_alloc_id(&root, "web", WAIT).await.unwrap();
    acl_policy(&root, "nothing", "").await;
    let token = acl_token(&root, json!({"Type": "client", "Policies": ["nothing"]})).await;
    let nobody = with_token(&c, token["SecretID"].as_str().unwrap());

    let mut failures = Vec::new();
    let mut checked = 0;
    for spec in caravan_gateway::routes::specs() {
        // The exec WebSocket is refused before its upgrade is read only with upgrade headers;
        // acl_enforcement.rs covers it.
        if spec.path.ends_with("/exec") {
            continue;
        }
        // An endless stream; agent_monitor.rs covers it.
        if spec.path == "/v1/agent/monitor" {
            continue;
        }
        let Some(rules) = rules_granting(spec.capability) else {
            continue;
        };
        let method = spec.methods[0].clone();
        let path = concrete(spec.path, &alloc, &node);
        // Writes that would change what later routes see are only refused, never served.
        let destructive = method == Method::DELETE
            || path.ends_with("/stop")
            || path.ends_with("/purge")
            || path.ends_with("/gc")
            || path.ends_with("/drain")
            || path.ends_with("/eligibility")
            || path.ends_with("/signal")
            || path.ends_with("/restart");
        let body = if method == Method::GET {
            Value::Null
        } else if path.ends_with("/signal") {
            json!({"Signal": "SIGHUP"})
        } else {
            json!({})
        };
        let refused = json_call(&nobody, method.clone(), &path, &body).await;
        if refused.status != 403 {
            failures.push(format!(
                "{method} {path} ({:?}) without the capability: {} {}",
                spec.capability,
                refused.status,
                refused.text()
            ));
        }
        if !destructive {
            let name = format!("p{checked}");
            acl_policy(&root, &name, &rules).await;
            let granted = acl_token(&root, json!({"Type": "client", "Policies": [name]})).await;
            let holder = with_token(&c, granted["SecretID"].as_str().unwrap());
            let served = json_call(&holder, method.clone(), &path, &body).await;
            if served.status == 403 {
                failures.push(format!(
                    "{method} {path} ({:?}) with `{rules}`: 403 {}",
                    spec.capability,
                    served.text()
                ));
            }
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} routes checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
