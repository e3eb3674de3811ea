//! DESIGN.md's dependency rules, checked over `cargo metadata` so a violation fails CI:
//! - caravan-structs depends on no workspace crate and on no tokio/tonic/sqlx/axum;
//! - caravan-scheduler depends on caravan-structs only;
//! - caravan-state is the only crate with sqlx (test fixtures aside); the gateway and the agent
//!   never reach it, even transitively;
//! - caravan-gateway reaches the server and agents only through caravan-proto (it also uses
//!   the structs model, the pure jobspec parser, the pure ACL language and caravan-telemetry
//!   for itself);
//! - caravan-acl is pure: no workspace crate, no tokio/tonic/sqlx/axum;
//! - caravan-telemetry, shared by every process, depends on caravan-structs only;
//! - caravan-isolation and caravan-api depend on no workspace crate;
//! - every crate takes the workspace lints (`unsafe_code = "forbid"`), except caravan-isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

struct Workspace {
    /// package name -> (normal deps, dev deps), by package name.
    deps: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    /// package name -> manifest path.
    manifests: BTreeMap<String, PathBuf>,
    /// Resolved graph: package id -> normal/build dependency ids, and id -> name.
    graph: BTreeMap<String, Vec<String>>,
    names: BTreeMap<String, String>,
    members: BTreeMap<String, String>,
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_owned()
}

fn workspace() -> Workspace {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Only this platform's packages: a Linux build never downloads the Windows-only crates in
    // Cargo.lock, and an offline `cargo metadata` of every platform would need them.
    let host = host_triple();
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(&host)
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let member_ids: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut ws = Workspace {
        deps: BTreeMap::new(),
        manifests: BTreeMap::new(),
        graph: BTreeMap::new(),
        names: BTreeMap::new(),
        members: BTreeMap::new(),
    };
    for pkg in meta["packages"].as_array().expect("packages") {
        let id = pkg["id"].as_str().unwrap_or_default().to_owned();
        let name = pkg["name"].as_str().unwrap_or_default().to_owned();
        ws.names.insert(id.clone(), name.clone());
        if !member_ids.contains(id.as_str()) {
            continue;
        }
        ws.members.insert(name.clone(), id);
        let mut normal = BTreeSet::new();
        let mut dev = BTreeSet::new();
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default().to_owned();
            if dep["kind"].as_str() == Some("dev") {
                dev.insert(dep_name);
            } else {
                normal.insert(dep_name);
            }
        }
        ws.deps.insert(name.clone(), (normal, dev));
        ws.manifests.insert(
            name,
            PathBuf::from(pkg["manifest_path"].as_str().unwrap_or_default()),
        );
    }
    for node in meta["resolve"]["nodes"].as_array().expect("resolve graph") {
        let id = node["id"].as_str().unwrap_or_default().to_owned();
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_owned))
            .collect();
        ws.graph.insert(id, deps);
    }
    ws
}

impl Workspace {
    fn normal(&self, krate: &str) -> BTreeSet<String> {
        self.deps
            .get(krate)
            .map(|d| d.0.clone())
            .unwrap_or_default()
    }

    fn workspace_deps(&self, krate: &str) -> BTreeSet<String> {
        self.normal(krate)
            .into_iter()
            .filter(|d| self.deps.contains_key(d))
            .collect()
    }

    /// Every package `krate` reaches through normal and build dependencies.
    fn reaches(&self, krate: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = self.members.get(krate).into_iter().cloned().collect();
        while let Some(id) = stack.pop() {
            for dep in self.graph.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen.iter()
            .filter_map(|id| self.names.get(id).cloned())
            .collect()
    }
}

#[test]
fn structs_is_a_leaf_without_io() {
    let ws = workspace();
    assert!(ws.workspace_deps("caravan-structs").is_empty());
    let reach = ws.reaches("caravan-structs");
    for banned in ["tokio", "tonic", "sqlx", "axum"] {
        assert!(!reach.contains(banned), "caravan-structs reaches {banned}");
    }
}

#[test]
fn scheduler_depends_on_structs_only() {
    let ws = workspace();
    if ws.deps.contains_key("caravan-scheduler") {
        let deps = ws.workspace_deps("caravan-scheduler");
        assert!(deps.iter().all(|d| d == "caravan-structs"), "{deps:?}");
    }
}

#[test]
fn only_state_speaks_sql() {
    let ws = workspace();
    for (krate, (normal, _)) in &ws.deps {
        if normal.contains("sqlx") {
            assert!(
                ["caravan-state", "caravan-test-utils", "caravan-bench"].contains(&krate.as_str()),
                "{krate} depends on sqlx"
            );
        }
    }
    for krate in [
        "caravan-gateway",
        "caravan-agent",
        "caravan-proto",
        "caravan-structs",
    ] {
        assert!(!ws.reaches(krate).contains("sqlx"), "{krate} reaches sqlx");
    }
}

#[test]
fn gateway_talks_only_through_proto() {
    let ws = workspace();
    let deps = ws.workspace_deps("caravan-gateway");
    for d in &deps {
        assert!(
            // The jobspec parser is pure (structs only): the gateway parses HCL itself, as
            // Nomad's HTTP agent does. The ACL language is pure too: it enforces routes.
            // Telemetry is the gateway's own process (its log lines, its host), not a path
            // to another service.
            [
                "caravan-proto",
                "caravan-structs",
                "caravan-jobspec",
                "caravan-acl",
                "caravan-telemetry",
            ]
            .contains(&d.as_str()),
            "gateway depends on {d}"
        );
    }
}

#[test]
fn acl_is_pure() {
    let ws = workspace();
    if ws.deps.contains_key("caravan-acl") {
        assert!(ws.workspace_deps("caravan-acl").is_empty());
        let reach = ws.reaches("caravan-acl");
        for banned in ["tokio", "tonic", "sqlx", "axum"] {
            assert!(!reach.contains(banned), "caravan-acl reaches {banned}");
        }
    }
}

#[test]
fn telemetry_depends_on_structs_only() {
    let ws = workspace();
    if ws.deps.contains_key("caravan-telemetry") {
        let deps = ws.workspace_deps("caravan-telemetry");
        assert!(deps.iter().all(|d| d == "caravan-structs"), "{deps:?}");
    }
}

#[test]
fn api_and_isolation_stand_alone() {
    let ws = workspace();
    for krate in ["caravan-api", "caravan-isolation"] {
        if ws.deps.contains_key(krate) {
            assert!(
                ws.workspace_deps(krate).is_empty(),
                "{krate} depends on workspace crates"
            );
        }
    }
}

#[test]
fn every_crate_takes_the_workspace_lints() {
    let ws = workspace();
    for (krate, manifest) in &ws.manifests {
        if krate == "caravan-isolation" {
            continue;
        }
        let text = std::fs::read_to_string(manifest).expect("manifest readable");
        let normalized: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            normalized.contains("[lints] workspace = true"),
            "{krate} does not take the workspace lints (unsafe_code = forbid)"
        );
        assert!(text.contains("description"), "{krate} has no description");
    }
}
