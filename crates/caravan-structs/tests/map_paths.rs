//! `Node::MAP_PATHS` must name every map of a Node's JSON: walk a populated node (the spec's
//! sample, plus the maps the sample leaves empty) and check that every object not listed has
//! only struct field names (PascalCase) as keys.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use caravan_structs::Node;
use serde_json::{Value, json};

fn walk(value: &Value, path: &mut Vec<String>, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let is_map = Node::MAP_PATHS
                .iter()
                .any(|p| p.len() == path.len() && p.iter().zip(path.iter()).all(|(a, b)| a == b));
            for (k, v) in map {
                if is_map {
                    path.push("*".into());
                } else {
                    if !k.starts_with(|c: char| c.is_ascii_uppercase()) {
                        problems.push(format!(
                            "{}: key {k:?} looks like a map key",
                            path.join(".")
                        ));
                    }
                    path.push(k.clone());
                }
                walk(v, path, problems);
                path.pop();
            }
        }
        Value::Array(items) => {
            path.push("*".into());
            for item in items {
                walk(item, path, problems);
            }
            path.pop();
        }
        _ => {}
    }
}

#[test]
fn map_paths_cover_every_map_of_a_node() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/node_read.json"
    ))
    .unwrap();
    let mut node: Node = serde_json::from_str(&text).unwrap();
    node.events.get_or_insert_with(Vec::new).push(
        serde_json::from_value(
            json!({"Message": "m", "Subsystem": "Drain", "Details": {"a.b": "c"}}),
        )
        .unwrap(),
    );
    node.last_drain =
        Some(serde_json::from_value(json!({"Status": "draining", "Meta": {"msg": "x"}})).unwrap());
    node.host_networks =
        Some(serde_json::from_value(json!({"public": {"Name": "public"}})).unwrap());
    node.csi_node_plugins = Some(
        serde_json::from_value(json!({"ebs": {"PluginID": "ebs", "NodeInfo": {"AccessibleTopology": {"Segments": {"zone": "a"}}}}}))
            .unwrap(),
    );
    node.csi_controller_plugins = node.csi_node_plugins.clone();
    let json = serde_json::to_value(&node).unwrap();
    let mut problems = Vec::new();
    walk(&json, &mut Vec::new(), &mut problems);
    assert!(
        problems.is_empty(),
        "Node::MAP_PATHS misses maps:\n{}",
        problems.join("\n")
    );
}
