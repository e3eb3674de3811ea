//! Which nodes a group may run on: every constraint operand, target interpolation, bad
//! regexps, datacenter globs, node pools, drivers, node readiness, distinct hosts and
//! properties — and the filter metrics they leave.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use caravan_scheduler::testing::*;
use caravan_structs::{AllocMetric, Constraint, DrainStrategy, Job, Node};

fn constraint(l: &str, op: &str, r: &str) -> Constraint {
    Constraint {
        l_target: l.into(),
        operand: op.into(),
        r_target: r.into(),
    }
}

/// Two nodes, `good` and `bad`, differing as `tweak` says; a job of 2 with `c`.
fn placed_on(c: Constraint, tweak: impl Fn(&mut Node, bool)) -> (Vec<String>, AllocMetric) {
    let mut h = Harness::new();
    for (id, good) in [("good", true), ("bad", false)] {
        let mut n = mock_node(id);
        tweak(&mut n, good);
        n.set_computed_class();
        h.state.upsert_node(n);
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 2;
    job.constraints = Some(vec![c]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let mut nodes: Vec<String> = h
        .live_allocs("default", "web")
        .iter()
        .map(|a| a.node_id.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    let metric = h
        .live_allocs("default", "web")
        .first()
        .and_then(|a| a.metrics.clone())
        .unwrap_or_default();
    (nodes, metric)
}

fn attr(n: &mut Node, k: &str, v: &str) {
    n.attributes.as_mut().unwrap().insert(k.into(), v.into());
}

fn only_good(c: Constraint, tweak: impl Fn(&mut Node, bool)) {
    let key = format!("{} {} {}", c.l_target, c.operand, c.r_target);
    let (nodes, m) = placed_on(c, tweak);
    assert_eq!(nodes, vec!["good"], "{key}");
    assert_eq!(m.nodes_filtered, 1, "{key}: {m:?}");
    let filtered = m.constraint_filtered.unwrap();
    assert!(
        filtered.contains_key(&key) || filtered.contains_key("computed class ineligible"),
        "{key}: {filtered:?}"
    );
}

#[test]
fn equality_operators() {
    for op in ["=", "==", "is"] {
        only_good(constraint("${attr.kernel.name}", op, "linux"), |n, good| {
            if !good {
                attr(n, "kernel.name", "windows");
            }
        });
    }
    for op in ["!=", "not"] {
        only_good(
            constraint("${attr.kernel.name}", op, "windows"),
            |n, good| {
                if !good {
                    attr(n, "kernel.name", "windows");
                }
            },
        );
    }
}

#[test]
fn ordering_is_numeric_when_both_parse_else_lexical() {
    let cores = |n: &mut Node, good: bool| attr(n, "cpu.numcores", if good { "16" } else { "8" });
    only_good(constraint("${attr.cpu.numcores}", ">", "9"), cores);
    only_good(constraint("${attr.cpu.numcores}", ">=", "16"), cores);
    let cores_lo =
        |n: &mut Node, good: bool| attr(n, "cpu.numcores", if good { "8" } else { "16" });
    only_good(constraint("${attr.cpu.numcores}", "<", "9"), cores_lo);
    only_good(constraint("${attr.cpu.numcores}", "<=", "8"), cores_lo);
    // "16" < "9" lexically, but numerically not.
    let (nodes, _) = placed_on(constraint("${attr.cpu.numcores}", "<", "9"), cores);
    assert_eq!(nodes, vec!["bad"]);
    only_good(constraint("${meta.zone}", ">", "b"), |n, good| {
        n.meta
            .as_mut()
            .unwrap()
            .insert("zone".into(), if good { "c" } else { "a" }.into());
    });
}

#[test]
fn regexp_version_semver_and_sets() {
    let kernel = |n: &mut Node, good: bool| {
        attr(n, "kernel.version", if good { "5.15.0" } else { "4.4.0" });
    };
    only_good(
        constraint("${attr.kernel.version}", "regexp", "^5\\."),
        kernel,
    );
    only_good(
        constraint("${attr.kernel.version}", "version", ">= 5.0, < 6"),
        kernel,
    );
    only_good(
        constraint("${attr.kernel.version}", "semver", ">= 5.0.0"),
        kernel,
    );
    let tags = |n: &mut Node, good: bool| {
        n.meta.as_mut().unwrap().insert(
            "tags".into(),
            if good { "ssd, gpu,fast" } else { "hdd" }.into(),
        );
    };
    only_good(constraint("${meta.tags}", "set_contains", "ssd,gpu"), tags);
    only_good(
        constraint("${meta.tags}", "set_contains_any", "nvme,gpu"),
        tags,
    );
    let gpu = |n: &mut Node, good: bool| {
        if good {
            attr(n, "gpu.model", "a100");
        }
    };
    only_good(constraint("${attr.gpu.model}", "is_set", ""), gpu);
    let no_gpu = |n: &mut Node, good: bool| {
        if !good {
            attr(n, "gpu.model", "a100");
        }
    };
    only_good(constraint("${attr.gpu.model}", "is_not_set", ""), no_gpu);
}

#[test]
fn node_targets_interpolate() {
    only_good(constraint("${node.unique.id}", "=", "good"), |_, _| {});
    only_good(
        constraint("${node.unique.name}", "=", "node-good"),
        |_, _| {},
    );
    // Datacenter and pool: both nodes are candidates of a job spanning them.
    for (target, value) in [("${node.datacenter}", "dc2"), ("${node.pool}", "blue")] {
        let mut h = Harness::new();
        for (id, good) in [("good", true), ("bad", false)] {
            let mut n = mock_node(id);
            if good {
                n.datacenter = "dc2".into();
                n.node_pool = "blue".into();
            }
            n.set_computed_class();
            h.state.upsert_node(n);
        }
        let mut job = mock_job("web");
        job.datacenters = Some(vec!["dc1".into(), "dc2".into()]);
        job.node_pool = "all".into();
        job.task_groups.as_mut().unwrap()[0].count = 2;
        job.constraints = Some(vec![constraint(target, "=", value)]);
        let job = h.state.upsert_job(job);
        h.process(&mock_eval(&job, "e")).unwrap();
        let live = h.live_allocs("default", "web");
        assert_eq!(live.len(), 2, "{target}");
        assert!(live.iter().all(|a| a.node_id == "good"), "{target}");
    }
    // Right-hand side interpolates too.
    only_good(constraint("${meta.a}", "=", "${meta.b}"), |n, good| {
        let m = n.meta.as_mut().unwrap();
        m.insert("a".into(), "x".into());
        m.insert("b".into(), if good { "x" } else { "y" }.into());
    });
}

#[test]
fn bad_regexp_filters_instead_of_failing() {
    let (nodes, m) = placed_on(constraint("${attr.kernel.name}", "regexp", "(["), |_, _| {});
    assert!(nodes.is_empty());
    let _ = m;
    let mut h = Harness::new();
    h.state.upsert_node(mock_node("a"));
    let mut job = mock_job("web");
    job.constraints = Some(vec![constraint("${attr.kernel.name}", "regexp", "([")]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let e = h.last_eval().unwrap();
    let m = &e.failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.nodes_filtered, 1);
    assert_eq!(
        m.constraint_filtered.as_ref().unwrap()["${attr.kernel.name} regexp (["],
        1
    );
    assert_eq!(m.coalesced_failures, 9);
}

#[test]
fn class_filtered_and_constraint_keys() {
    let mut h = Harness::new();
    let mut n = mock_node("win");
    n.node_class = "windows-box".into();
    attr(&mut n, "kernel.name", "windows");
    h.state.upsert_node(n);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    job.constraints = Some(vec![constraint("${attr.kernel.name}", "=", "linux")]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let e = h.last_eval().unwrap();
    let m = &e.failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.nodes_evaluated, 1);
    assert_eq!(m.nodes_filtered, 1);
    assert_eq!(m.class_filtered.as_ref().unwrap()["windows-box"], 1);
    assert_eq!(
        m.constraint_filtered.as_ref().unwrap()["${attr.kernel.name} = linux"],
        1
    );
}

#[test]
fn datacenter_globs_pools_and_readiness() {
    let mut h = Harness::new();
    for (id, dc) in [("a", "us-east-1"), ("b", "us-west-2"), ("c", "eu-west-1")] {
        let mut n = mock_node(id);
        n.datacenter = dc.into();
        h.state.upsert_node(n);
    }
    let mut not_ready = mock_node("d");
    not_ready.datacenter = "us-east-2".into();
    not_ready.status = "initializing".into();
    h.state.upsert_node(not_ready);
    let mut draining = mock_node("e");
    draining.datacenter = "us-east-3".into();
    draining.drain_strategy = Some(DrainStrategy::default());
    h.state.upsert_node(draining);
    let mut other_pool = mock_node("f");
    other_pool.datacenter = "us-east-4".into();
    other_pool.node_pool = "gpu".into();
    h.state.upsert_node(other_pool);

    let mut job = mock_job("web");
    job.datacenters = Some(vec!["us-*".into()]);
    job.task_groups.as_mut().unwrap()[0].count = 4;
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let mut nodes: Vec<String> = h
        .live_allocs("default", "web")
        .iter()
        .map(|a| a.node_id.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes, vec!["a", "b"]);
    let m = h.live_allocs("default", "web")[0].metrics.clone().unwrap();
    assert_eq!(
        m.nodes_available.unwrap(),
        BTreeMap::from([("us-east-1".to_owned(), 1), ("us-west-2".to_owned(), 1)])
    );
    assert_eq!(m.nodes_in_pool, 2);

    let mut gpu = mock_job("gpu");
    gpu.datacenters = Some(vec!["*".into()]);
    gpu.node_pool = "gpu".into();
    gpu.task_groups.as_mut().unwrap()[0].count = 1;
    let gpu = h.state.upsert_job(gpu);
    h.process(&mock_eval(&gpu, "g")).unwrap();
    assert_eq!(h.live_allocs("default", "gpu")[0].node_id, "f");
}

#[test]
fn drivers_must_be_detected_and_healthy() {
    let driver = |n: &mut Node, good: bool| {
        let d = n.drivers.as_mut().unwrap();
        d.get_mut("exec").unwrap().healthy = good;
    };
    let (nodes, m) = placed_on(constraint("${attr.kernel.name}", "=", "linux"), driver);
    assert_eq!(nodes, vec!["good"]);
    assert_eq!(m.constraint_filtered.unwrap()["missing drivers"], 1);

    // Without driver info, the `driver.<name>` attribute decides.
    let legacy = |n: &mut Node, good: bool| {
        n.drivers = None;
        attr(n, "driver.exec", if good { "1" } else { "0" });
    };
    let (nodes, _) = placed_on(constraint("${attr.kernel.name}", "=", "linux"), legacy);
    assert_eq!(nodes, vec!["good"]);
}

#[test]
fn distinct_hosts_spreads_one_per_node() {
    let mut h = Harness::new();
    for i in 0..3 {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 4;
    job.task_groups.as_mut().unwrap()[0].constraints =
        Some(vec![constraint("", "distinct_hosts", "true")]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 3);
    let mut nodes: Vec<&str> = live.iter().map(|a| a.node_id.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 3);
    let m = &h.last_eval().unwrap().failed_tg_allocs.as_ref().unwrap()["web"];
    assert_eq!(m.constraint_filtered.as_ref().unwrap()["distinct_hosts"], 3);
}

#[test]
fn distinct_property_limits_per_value() {
    let mut h = Harness::new();
    for (i, rack) in ["r1", "r1", "r2", "r2", "r3"].iter().enumerate() {
        let mut n = mock_node(&format!("n{i}"));
        n.meta
            .as_mut()
            .unwrap()
            .insert("rack".into(), (*rack).into());
        h.state.upsert_node(n);
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 6;
    job.constraints = Some(vec![constraint("${meta.rack}", "distinct_property", "2")]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    let live = h.live_allocs("default", "web");
    let mut per_rack: BTreeMap<String, usize> = BTreeMap::new();
    for a in &live {
        let rack = h.state.node(&a.node_id).unwrap().meta.as_ref().unwrap()["rack"].clone();
        *per_rack.entry(rack).or_default() += 1;
    }
    assert_eq!(live.len(), 6);
    assert!(per_rack.values().all(|n| *n <= 2), "{per_rack:?}");

    // One more does not fit anywhere.
    let mut more = job.clone();
    more.task_groups.as_mut().unwrap()[0].count = 7;
    let more = h.state.upsert_job(more);
    h.process(&mock_eval(&more, "e2")).unwrap();
    let m = &h.last_eval().unwrap().failed_tg_allocs.as_ref().unwrap()["web"];
    assert!(
        m.constraint_filtered
            .as_ref()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("distinct_property: ${meta.rack}="))
    );
    use caravan_scheduler::State;
    let _ = h.state.job("default", "web");
}

#[test]
fn task_and_group_constraints_apply() {
    let mut h = Harness::new();
    let mut a = mock_node("amd");
    attr(&mut a, "cpu.arch", "amd64");
    let mut b = mock_node("arm");
    attr(&mut b, "cpu.arch", "arm64");
    // The class memo relies on nodes' computed class being current.
    b.set_computed_class();
    h.state.upsert_node(a);
    h.state.upsert_node(b);
    let mut job: Job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 2;
    job.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0].constraints =
        Some(vec![constraint("${attr.cpu.arch}", "=", "arm64")]);
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    assert!(
        h.live_allocs("default", "web")
            .iter()
            .all(|a| a.node_id == "arm")
    );
}

#[test]
fn host_volumes_must_exist_and_be_writable_when_asked() {
    let mut h = Harness::new();
    for (id, vol, ro) in [
        ("rw", Some("data"), false),
        ("ro", Some("data"), true),
        ("none", None, false),
    ] {
        let mut n = mock_node(id);
        if let Some(v) = vol {
            n.host_volumes = Some(BTreeMap::from([(
                v.to_owned(),
                caravan_structs::HostVolumeInfo {
                    name: v.into(),
                    path: "/srv/data".into(),
                    read_only: ro,
                    ..Default::default()
                },
            )]));
        }
        h.state.upsert_node(n);
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 9;
    job.task_groups.as_mut().unwrap()[0].volumes = Some(BTreeMap::from([(
        "data".to_owned(),
        caravan_structs::VolumeRequest {
            name: "data".into(),
            r#type: "host".into(),
            source: "data".into(),
            ..Default::default()
        },
    )]));
    let job = h.state.upsert_job(job);
    h.process(&mock_eval(&job, "e")).unwrap();
    assert!(
        h.live_allocs("default", "web")
            .iter()
            .all(|a| a.node_id == "rw")
    );
    let m = &h.last_eval().unwrap().failed_tg_allocs.as_ref().unwrap()["web"];
    assert!(m.constraint_filtered.as_ref().unwrap()["missing compatible host volumes"] >= 2);
}
