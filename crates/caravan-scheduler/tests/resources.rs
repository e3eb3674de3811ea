//! Room and ranking: cpu, memory and disk exhaustion, static and dynamic ports, the binpack
//! and spread algorithms, job anti-affinity, affinities and spread blocks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use caravan_scheduler::testing::*;
use caravan_scheduler::{SchedulerAlgorithm, State};
use caravan_structs::{
    Affinity, AllocMetric, Job, NetworkResource, Node, Port, Resources, Spread, SpreadTarget,
};

fn resources(job: &mut Job) -> &mut Resources {
    job.task_groups.as_mut().unwrap()[0].tasks.as_mut().unwrap()[0]
        .resources
        .as_mut()
        .unwrap()
}

fn failed_metric(h: &Harness) -> AllocMetric {
    h.last_eval().unwrap().failed_tg_allocs.as_ref().unwrap()["web"].clone()
}

fn run(h: &mut Harness, job: Job) -> Job {
    let job = h.state.upsert_job(job);
    let eval = mock_eval(&job, &format!("e-{}-{}", job.id, job.version));
    h.process(&eval).unwrap();
    job
}

fn one_node() -> Harness {
    let mut h = Harness::new();
    h.state.upsert_node(mock_node("n"));
    h
}

#[test]
fn memory_and_disk_exhaustion() {
    let mut h = one_node();
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 3;
    resources(&mut job).memory_mb = 3000;
    run(&mut h, job);
    assert_eq!(h.live_allocs("default", "web").len(), 2);
    let m = failed_metric(&h);
    assert_eq!(m.dimension_exhausted.as_ref().unwrap()["memory"], 1);
    assert_eq!(
        m.resources_exhausted.as_ref().unwrap()["web"].memory_mb,
        3000
    );

    let mut h = one_node();
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 3;
    job.task_groups.as_mut().unwrap()[0]
        .ephemeral_disk
        .as_mut()
        .unwrap()
        .size_mb = 40 * 1024;
    run(&mut h, job);
    assert_eq!(h.live_allocs("default", "web").len(), 2);
    assert_eq!(failed_metric(&h).dimension_exhausted.unwrap()["disk"], 1);
}

#[test]
fn reserved_resources_and_existing_allocations_count() {
    let mut h = Harness::new();
    let mut n = mock_node("n");
    n.reserved_resources.as_mut().unwrap().cpu.cpu_shares = 1000;
    h.state.upsert_node(n.clone());
    // Another job already uses 1000 MHz.
    let other = h.state.upsert_job(mock_job("other"));
    let mut a = mock_alloc(&other, &n, 0, "existing");
    a.allocated_resources
        .as_mut()
        .unwrap()
        .tasks
        .as_mut()
        .unwrap()
        .get_mut("web")
        .unwrap()
        .cpu
        .cpu_shares = 1000;
    h.state.upsert_alloc(a);
    // A finished one does not.
    let mut done = mock_alloc(&other, &n, 1, "done");
    done.client_status = "complete".into();
    h.state.upsert_alloc(done);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 5;
    run(&mut h, job);
    // 4000 - 1000 reserved - 1000 used = 2000 MHz: four of 500.
    assert_eq!(h.live_allocs("default", "web").len(), 4);
    assert_eq!(failed_metric(&h).dimension_exhausted.unwrap()["cpu"], 1);
}

fn group_network(reserved: &[(&str, i64)], dynamic: &[&str]) -> NetworkResource {
    NetworkResource {
        mode: "host".into(),
        reserved_ports: Some(
            reserved
                .iter()
                .map(|(l, v)| Port {
                    label: (*l).into(),
                    value: *v,
                    to: 0,
                    host_network: String::new(),
                })
                .collect(),
        ),
        dynamic_ports: Some(
            dynamic
                .iter()
                .map(|l| Port {
                    label: (*l).into(),
                    to: -1,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn static_port_collides_once_per_node() {
    let mut h = Harness::new();
    for i in 0..3 {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 4;
    job.task_groups.as_mut().unwrap()[0].networks =
        Some(vec![group_network(&[("http", 8080)], &[])]);
    run(&mut h, job);
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 3);
    let nodes: BTreeSet<&str> = live.iter().map(|a| a.node_id.as_str()).collect();
    assert_eq!(nodes.len(), 3);
    for a in &live {
        let shared = &a.allocated_resources.as_ref().unwrap().shared;
        let ports = shared.ports.as_ref().unwrap();
        assert_eq!(ports[0].label, "http");
        assert_eq!(ports[0].value, 8080);
        assert_eq!(ports[0].host_ip, "192.168.0.100");
        let net = &shared.networks.as_ref().unwrap()[0];
        assert_eq!(net.ip, "192.168.0.100");
        assert_eq!(net.reserved_ports.as_ref().unwrap()[0].value, 8080);
    }
    let m = failed_metric(&h);
    assert_eq!(
        m.dimension_exhausted.unwrap()["network: reserved port collision http=8080"],
        3
    );

    // A port the node reserves is never given out.
    let mut h = Harness::new();
    let mut n = mock_node("n");
    n.reserved_resources
        .as_mut()
        .unwrap()
        .networks
        .reserved_host_ports = "22,8000-8100".into();
    h.state.upsert_node(n);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    job.task_groups.as_mut().unwrap()[0].networks =
        Some(vec![group_network(&[("http", 8080)], &[])]);
    run(&mut h, job);
    assert!(h.live_allocs("default", "web").is_empty());
}

#[test]
fn dynamic_ports_are_unique_per_node_and_in_range() {
    let mut h = Harness::new();
    let mut n = mock_node("n");
    let r = n.node_resources.as_mut().unwrap();
    r.min_dynamic_port = 25000;
    r.max_dynamic_port = 25011;
    h.state.upsert_node(n);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 6;
    resources(&mut job).cpu = 100;
    job.task_groups.as_mut().unwrap()[0].networks =
        Some(vec![group_network(&[], &["http", "admin"])]);
    run(&mut h, job.clone());
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 6);
    let mut seen = BTreeSet::new();
    for a in &live {
        let shared = &a.allocated_resources.as_ref().unwrap().shared;
        for p in shared.ports.as_ref().unwrap() {
            assert!((25000..=25011).contains(&p.value), "{}", p.value);
            assert_eq!(p.to, p.value, "to = -1 maps to the host port");
            assert!(seen.insert(p.value), "port {} given twice", p.value);
        }
        let dynamic = shared.networks.as_ref().unwrap()[0]
            .dynamic_ports
            .as_ref()
            .unwrap();
        assert!(dynamic.iter().all(|p| (25000..=25011).contains(&p.value)));
    }
    assert_eq!(seen.len(), 12);

    // The range is exhausted: the next one fails on ports, and a later eval still never
    // reuses a held port.
    let mut more = h.state.job("default", "web").cloned().unwrap();
    more.task_groups.as_mut().unwrap()[0].count = 7;
    run(&mut h, more);
    let m = failed_metric(&h);
    assert_eq!(
        m.dimension_exhausted.unwrap()["network: dynamic port selection failed"],
        1
    );

    // Ports of a stopped allocation become free again.
    let first = h.live_allocs("default", "web")[0].id.clone();
    h.set_client_status(&first, "complete");
    let job = h.state.job("default", "web").cloned().unwrap();
    h.process(&mock_eval(&job, "again")).unwrap();
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 6);
    let mut seen = BTreeSet::new();
    for a in &live {
        for p in a
            .allocated_resources
            .as_ref()
            .unwrap()
            .shared
            .ports
            .as_ref()
            .unwrap()
        {
            assert!(seen.insert(p.value));
        }
    }
}

#[test]
fn task_level_network_gets_ports_on_the_node_device() {
    let mut h = one_node();
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 2;
    resources(&mut job).networks = Some(vec![NetworkResource {
        mbits: 10,
        reserved_ports: Some(vec![Port {
            label: "db".into(),
            value: 5432,
            ..Default::default()
        }]),
        dynamic_ports: Some(vec![Port {
            label: "http".into(),
            ..Default::default()
        }]),
        ..Default::default()
    }]);
    run(&mut h, job);
    let live = h.live_allocs("default", "web");
    assert_eq!(live.len(), 1, "the static port fits once");
    let net = &live[0]
        .allocated_resources
        .as_ref()
        .unwrap()
        .tasks
        .as_ref()
        .unwrap()["web"]
        .networks
        .as_ref()
        .unwrap()[0];
    assert_eq!(net.device, "eth0");
    assert_eq!(net.ip, "192.168.0.100");
    let dynamic = net.dynamic_ports.as_ref().unwrap()[0].value;
    assert!((20000..=32000).contains(&dynamic));
    assert_eq!(
        live[0].task_resources.as_ref().unwrap()["web"]
            .networks
            .as_ref()
            .unwrap()[0]
            .device,
        "eth0"
    );
}

fn two_nodes_one_busy(algorithm: SchedulerAlgorithm) -> Harness {
    let mut h = Harness::new();
    h.state.config.algorithm = algorithm;
    let busy = mock_node("busy");
    h.state.upsert_node(busy.clone());
    h.state.upsert_node(mock_node("idle"));
    let other = h.state.upsert_job(mock_job("other"));
    let mut a = mock_alloc(&other, &busy, 0, "load");
    let t = a
        .allocated_resources
        .as_mut()
        .unwrap()
        .tasks
        .as_mut()
        .unwrap()
        .get_mut("web")
        .unwrap();
    t.cpu.cpu_shares = 2000;
    t.memory.memory_mb = 4096;
    h.state.upsert_alloc(a);
    h
}

#[test]
fn binpack_prefers_the_fuller_node_and_spread_the_emptier() {
    let mut h = two_nodes_one_busy(SchedulerAlgorithm::Binpack);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    run(&mut h, job.clone());
    let a = &h.live_allocs("default", "web")[0];
    assert_eq!(a.node_id, "busy");
    let top = a
        .metrics
        .as_ref()
        .unwrap()
        .score_meta_data
        .as_ref()
        .unwrap();
    assert_eq!(top[0].node_id, "busy");
    assert!(
        top[0].scores.as_ref().unwrap()["binpack"] > top[1].scores.as_ref().unwrap()["binpack"]
    );

    let mut h = two_nodes_one_busy(SchedulerAlgorithm::Spread);
    run(&mut h, job);
    assert_eq!(h.live_allocs("default", "web")[0].node_id, "idle");
}

#[test]
fn a_node_pool_configuration_overrides_the_clusters_algorithm() {
    // The cluster binpacks; the jobs of pool "wide" are spread.
    let mut h = two_nodes_one_busy(SchedulerAlgorithm::Binpack);
    for id in ["busy", "idle"] {
        let mut n = h.state.node(id).unwrap().clone();
        n.node_pool = "wide".into();
        n.set_computed_class();
        h.state.upsert_node(n);
    }
    let spread = caravan_scheduler::SchedulerConfig {
        algorithm: SchedulerAlgorithm::Spread,
        ..Default::default()
    };
    h.state.pool_configs.insert("wide".into(), spread);
    let mut job = mock_job("web");
    job.node_pool = "wide".into();
    job.task_groups.as_mut().unwrap()[0].count = 1;
    run(&mut h, job);
    assert_eq!(h.live_allocs("default", "web")[0].node_id, "idle");
}

#[test]
fn job_anti_affinity_spreads_a_group_over_equal_nodes() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.state.upsert_node(mock_node(&format!("n{i}")));
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 5;
    resources(&mut job).cpu = 100;
    run(&mut h, job);
    let nodes: BTreeSet<String> = h
        .live_allocs("default", "web")
        .iter()
        .map(|a| a.node_id.clone())
        .collect();
    assert!(nodes.len() >= 4, "{nodes:?}");
}

#[test]
fn affinities_attract_and_repel() {
    let mut h = Harness::new();
    for (id, class) in [("a", "fast"), ("b", "slow"), ("c", "slow")] {
        let mut n = mock_node(id);
        n.node_class = class.into();
        n.set_computed_class();
        h.state.upsert_node(n);
    }
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    job.affinities = Some(vec![Affinity {
        l_target: "${node.class}".into(),
        operand: "=".into(),
        r_target: "fast".into(),
        weight: 100,
    }]);
    run(&mut h, job);
    let a = &h.live_allocs("default", "web")[0];
    assert_eq!(a.node_id, "a");
    let top = a
        .metrics
        .as_ref()
        .unwrap()
        .score_meta_data
        .as_ref()
        .unwrap();
    assert_eq!(top[0].scores.as_ref().unwrap()["node-affinity"], 1.0);
    assert_eq!(
        a.metrics.as_ref().unwrap().nodes_evaluated,
        3,
        "affinities lift the limit"
    );

    let mut h2 = Harness::new();
    for (id, class) in [("a", "fast"), ("b", "slow")] {
        let mut n = mock_node(id);
        n.node_class = class.into();
        n.set_computed_class();
        h2.state.upsert_node(n);
    }
    let mut job = mock_job("api");
    job.task_groups.as_mut().unwrap()[0].count = 1;
    job.task_groups.as_mut().unwrap()[0].affinities = Some(vec![Affinity {
        l_target: "${node.class}".into(),
        operand: "=".into(),
        r_target: "fast".into(),
        weight: -50,
    }]);
    run(&mut h2, job);
    assert_eq!(h2.live_allocs("default", "api")[0].node_id, "b");
}

fn rack_cluster(racks: &[&str]) -> Harness {
    let mut h = Harness::new();
    for (i, rack) in racks.iter().enumerate() {
        let mut n = mock_node(&format!("n{i}"));
        n.meta
            .as_mut()
            .unwrap()
            .insert("rack".into(), (*rack).into());
        n.set_computed_class();
        h.state.upsert_node(n);
    }
    h
}

fn per_rack(h: &Harness, job: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in h.live_allocs("default", job) {
        let n: &Node = h.state.node(&a.node_id).unwrap();
        *out.entry(n.meta.as_ref().unwrap()["rack"].clone())
            .or_default() += 1;
    }
    out
}

#[test]
fn spread_targets_set_the_shares() {
    let mut h = rack_cluster(&["r1", "r1", "r1", "r2", "r2", "r2"]);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 10;
    resources(&mut job).cpu = 100;
    job.spreads = Some(vec![Spread {
        attribute: "${meta.rack}".into(),
        weight: 100,
        spread_target: Some(vec![
            SpreadTarget {
                value: "r1".into(),
                percent: 80,
            },
            SpreadTarget {
                value: "r2".into(),
                percent: 20,
            },
        ]),
    }]);
    run(&mut h, job);
    let racks = per_rack(&h, "web");
    assert_eq!(racks["r1"], 8, "{racks:?}");
    assert_eq!(racks["r2"], 2, "{racks:?}");
    let a = &h.live_allocs("default", "web")[0];
    let top = a
        .metrics
        .as_ref()
        .unwrap()
        .score_meta_data
        .as_ref()
        .unwrap();
    assert!(
        top.iter()
            .any(|m| m.scores.as_ref().unwrap().contains_key("allocation-spread"))
    );
}

#[test]
fn spread_without_targets_is_even() {
    let mut h = rack_cluster(&["r1", "r1", "r1", "r1", "r2", "r3"]);
    let mut job = mock_job("web");
    job.task_groups.as_mut().unwrap()[0].count = 9;
    resources(&mut job).cpu = 100;
    job.task_groups.as_mut().unwrap()[0].spreads = Some(vec![Spread {
        attribute: "${meta.rack}".into(),
        weight: 50,
        spread_target: None,
    }]);
    run(&mut h, job);
    let racks = per_rack(&h, "web");
    assert_eq!(
        racks.values().copied().collect::<Vec<_>>(),
        vec![3, 3, 3],
        "{racks:?}"
    );
}
