//! GET /v1/node/:id: the Node document as the spec's sample shows it, on both stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::*;
use serde_json::Value;

/// The spec's sample Node (seeds/004), trimmed where it repeats itself.
const SAMPLE_NODE: &str = r#"{ "Attributes": { "cpu.arch": "amd64" }, "ComputedClass": "v1:390058673753570317",
  "CreateIndex": 6, "Datacenter": "dc1", "Drain": false, "DrainStrategy": null,
  "Drivers": { "raw_exec": { "Attributes": { "driver.raw_exec": "true" }, "Detected": true,
  "HealthDescription": "Healthy", "Healthy": true, "UpdateTime": "2019-08-26T12:22:50.687733347+02:00" } },
  "Events": [ { "CreateIndex": 0, "Details": null, "Message": "Node registered", "Subsystem": "Cluster",
  "Timestamp": "2019-08-26T12:22:50+02:00" } ], "HTTPAddr": "127.0.0.1:4646",
  "HostVolumes": { "certificates": { "Name": "certificates", "Path": "/etc/ssl/certs", "ReadOnly": true } },
  "ID": "1ac61e33-a465-2ace-f63f-cffa1285e7eb", "Links": { "consul": "dc1.mew" },
  "Meta": { "connect.log_level": "info" }, "ModifyIndex": 9, "Name": "mew", "NodeClass": "",
  "NodeResources": { "Cpu": { "CpuShares": 32000 }, "Devices": null, "Disk": { "DiskMB": 7890 },
  "Memory": { "MemoryMB": 15803 }, "Networks": [ { "CIDR": "127.0.0.1/32", "Device": "lo",
  "DynamicPorts": null, "IP": "127.0.0.1", "MBits": 1000, "Mode": "", "ReservedPorts": null } ] },
  "Reserved": { "CPU": 0, "Devices": null, "DiskMB": 0, "IOPS": 0, "MemoryMB": 0, "Networks": null },
  "ReservedResources": { "Cpu": { "CpuShares": 0 }, "Disk": { "DiskMB": 0 }, "Memory": { "MemoryMB": 0 },
  "Networks": { "ReservedHostPorts": "" } },
  "Resources": { "CPU": 32000, "Devices": null, "DiskMB": 7890, "IOPS": 0, "MemoryMB": 15803,
  "Networks": [ { "CIDR": "127.0.0.1/32", "Device": "lo", "DynamicPorts": null, "IP": "127.0.0.1",
  "MBits": 1000, "Mode": "", "ReservedPorts": null } ] },
  "SchedulingEligibility": "eligible", "SecretID": "", "Status": "ready", "StatusDescription": "",
  "StatusUpdatedAt": 1566814982, "TLSEnabled": false }"#;

const REQUIRED_ATTRIBUTES: &[&str] = &[
    "cpu.arch",
    "cpu.numcores",
    "cpu.frequency",
    "cpu.modelname",
    "cpu.totalcompute",
    "memory.totalbytes",
    "kernel.name",
    "kernel.version",
    "kernel.arch",
    "os.name",
    "os.version",
    "unique.hostname",
    "unique.network.ip-address",
    "unique.storage.volume",
    "unique.storage.bytestotal",
    "unique.storage.bytesfree",
    "nomad.version",
    "nomad.advertise.address",
    "driver.raw_exec",
];

fn positive(v: &Value, what: &str) {
    assert!(v.as_i64().is_some_and(|n| n > 0), "{what} = {v}");
}

async fn node_matches_the_spec(c: &impl Cluster) {
    let resp = c
        .client()
        .get(&format!("/v1/node/{}", c.node_id()), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let node: Value = resp.json().unwrap();
    let sample: Value = serde_json::from_str(SAMPLE_NODE).unwrap();
    let problems = shape_mismatches(&sample, &node);
    assert!(problems.is_empty(), "{problems:?}\n{node:#}");

    assert_eq!(node["ID"], c.node_id());
    assert_eq!(
        node["SecretID"], "",
        "the secret must never leave the server"
    );
    assert_eq!(node["Status"], "ready");
    assert_eq!(node["SchedulingEligibility"], "eligible");
    assert_eq!(node["Datacenter"], "dc1");
    assert_eq!(node["Drain"], false);
    assert!(node["DrainStrategy"].is_null());
    assert_eq!(node["NodePool"], "default");
    assert_eq!(node["TLSEnabled"], false);
    assert!(node["ComputedClass"].as_str().unwrap().starts_with("v1:"));
    // HTTPAddr is where this node's /v1/client endpoints are served: the gateway.
    assert_eq!(node["HTTPAddr"], c.http_addr());
    assert!(node["StatusUpdatedAt"].as_i64().unwrap() > 1_600_000_000);
    let index = resp.query_meta().last_index;
    assert_eq!(index, node["ModifyIndex"].as_u64().unwrap());
    assert!(node["CreateIndex"].as_u64().unwrap() >= 1);
    assert!(node["ModifyIndex"].as_u64().unwrap() >= node["CreateIndex"].as_u64().unwrap());

    let attrs = node["Attributes"].as_object().unwrap();
    for key in REQUIRED_ATTRIBUTES {
        let v = attrs.get(*key).and_then(Value::as_str);
        assert!(
            v.is_some_and(|v| !v.is_empty()),
            "attribute {key} missing or empty: {attrs:#?}"
        );
    }
    for key in [
        "cpu.numcores",
        "cpu.frequency",
        "cpu.totalcompute",
        "memory.totalbytes",
        "unique.storage.bytestotal",
        "unique.storage.bytesfree",
    ] {
        let n: u64 = attrs[key].as_str().unwrap().parse().unwrap_or_else(|_| {
            panic!("attribute {key} is not a number: {}", attrs[key]);
        });
        assert!(n > 0, "attribute {key} = {n}");
    }
    assert_eq!(attrs["nomad.advertise.address"], c.http_addr());
    assert_eq!(attrs["driver.raw_exec"], "1");
    assert_eq!(attrs["kernel.name"], std::env::consts::OS);

    let res = &node["NodeResources"];
    positive(&res["Cpu"]["CpuShares"], "NodeResources.Cpu.CpuShares");
    positive(&res["Memory"]["MemoryMB"], "NodeResources.Memory.MemoryMB");
    positive(&res["Disk"]["DiskMB"], "NodeResources.Disk.DiskMB");
    let legacy = &node["Resources"];
    positive(&legacy["CPU"], "Resources.CPU");
    positive(&legacy["MemoryMB"], "Resources.MemoryMB");
    positive(&legacy["DiskMB"], "Resources.DiskMB");
    assert_eq!(legacy["CPU"], res["Cpu"]["CpuShares"]);
    assert_eq!(legacy["MemoryMB"], res["Memory"]["MemoryMB"]);
    let total: u64 = attrs["cpu.totalcompute"].as_str().unwrap().parse().unwrap();
    assert_eq!(res["Cpu"]["CpuShares"].as_u64().unwrap(), total);

    let drivers = node["Drivers"].as_object().unwrap();
    for (name, d) in drivers {
        for key in [
            "Detected",
            "Healthy",
            "HealthDescription",
            "UpdateTime",
            "Attributes",
        ] {
            assert!(d.get(key).is_some(), "driver {name} lacks {key}: {d}");
        }
        assert!(d["Detected"].is_boolean() && d["Healthy"].is_boolean());
        assert!(d["HealthDescription"].is_string());
        parse_rfc3339(d["UpdateTime"].as_str().unwrap()).unwrap();
    }
    assert_eq!(drivers["raw_exec"]["Detected"], true);
    assert_eq!(drivers["raw_exec"]["Healthy"], true);

    let events = node["Events"].as_array().unwrap();
    assert_eq!(events[0]["Message"], "Node registered");
    assert_eq!(events[0]["Subsystem"], "Cluster");
    let registered = parse_rfc3339(events[0]["Timestamp"].as_str().unwrap()).unwrap();
    assert!((now_nanos() - registered).abs() < 600 * 1_000_000_000);
    assert!(events.len() <= 10);

    // The typed client reads the same document.
    let (typed, meta) = c
        .client()
        .nodes()
        .info(c.node_id(), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(typed.id, c.node_id());
    assert_eq!(typed.attribute("os.name"), attrs["os.name"].as_str());
    assert_eq!(meta.last_index, index);
    assert!(meta.known_leader);
}

#[tokio::test]
async fn node_read_matches_the_spec_sqlite() {
    node_matches_the_spec(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn node_read_matches_the_spec_postgres() {
    node_matches_the_spec(&PgCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn node_datacenter_follows_the_dc_flag() {
    let c = DevCluster::start_with(&["-dc", "east", "-node", "edge-1"])
        .await
        .unwrap();
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Datacenter"], "east");
    assert_eq!(node["Name"], "edge-1");
    let (list, _) = get_json(&c.client, "/v1/nodes").await.unwrap();
    assert_eq!(list[0]["Datacenter"], "east");
    assert_eq!(list[0]["Name"], "edge-1");
    let me = c.client.agent().self_().await.unwrap();
    assert_eq!(me.pointer("/config/Datacenter"), Some("east"));
}

#[tokio::test]
async fn node_allocations_of_a_node_without_any_is_an_empty_array() {
    let c = DevCluster::start().await.unwrap();
    let (allocs, meta) = c
        .client
        .nodes()
        .allocations(&c.node_id, &QueryOptions::new())
        .await
        .unwrap();
    assert!(allocs.is_empty());
    assert!(meta.last_index >= 1, "{meta:?}");
    let resp = c
        .client
        .get(
            &format!("/v1/node/{}/allocations", c.node_id),
            &QueryOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(resp.text(), "[]");
}
