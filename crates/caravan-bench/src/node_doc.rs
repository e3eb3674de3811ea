//! The node document every benchmark writes: a `caravan_structs::Node` shaped like what a client
//! agent registers (attributes, drivers, resources), at least 2 KB of JSON (padded when smaller)
//! so that the Store, pgbench and the API all move documents of a realistic size.

use anyhow::Context;
use caravan_structs::Node;
use serde_json::{Map, Value, json};

/// The least JSON size of the document, in bytes (it is padded up to this when smaller).
pub const TARGET_BYTES: usize = 2048;

/// A ready, eligible node in `dc1` with the given ID and name and a fresh secret.
pub fn node(id: &str, name: &str) -> anyhow::Result<Node> {
    let mut attributes = Map::new();
    for (key, value) in [
        ("arch", "amd64"),
        ("cpu.arch", "amd64"),
        ("cpu.frequency", "2500"),
        (
            "cpu.modelname",
            "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz",
        ),
        ("cpu.numcores", "4"),
        ("cpu.reservablecores", "4"),
        ("cpu.totalcompute", "10000"),
        ("cpu.usablecompute", "10000"),
        ("driver.exec", "1"),
        ("driver.raw_exec", "1"),
        ("kernel.arch", "x86_64"),
        ("kernel.name", "linux"),
        ("kernel.version", "6.1.0-18-amd64"),
        ("memory.totalbytes", "16777216000"),
        ("nomad.advertise.address", "127.0.0.1:4646"),
        ("nomad.bridge.hairpin_mode", "false"),
        ("nomad.revision", "caravan"),
        ("nomad.version", "1.10.0"),
        ("os.name", "debian"),
        (
            "os.signals",
            "SIGABRT,SIGALRM,SIGBUS,SIGCHLD,SIGCONT,SIGFPE,SIGHUP,SIGILL,SIGINT",
        ),
        ("os.version", "12"),
        ("unique.cgroup.mountpoint", "/sys/fs/cgroup"),
        ("unique.cgroup.version", "v2"),
        ("unique.hostname", name),
        ("unique.network.ip-address", "127.0.0.1"),
        ("unique.storage.bytesfree", "52428800000"),
        ("unique.storage.bytestotal", "107374182400"),
        ("unique.storage.volume", "/dev/nvme0n1p1"),
    ] {
        attributes.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    let driver = |name: &str| {
        json!({
            "Attributes": { format!("driver.{name}"): "true" },
            "Detected": true,
            "HealthDescription": "Healthy",
            "Healthy": true,
        })
    };
    let mut doc = json!({
        "ID": id,
        "SecretID": uuid::Uuid::new_v4().to_string(),
        "Name": name,
        "Datacenter": "dc1",
        "NodePool": "default",
        "Status": "ready",
        "SchedulingEligibility": "eligible",
        "HTTPAddr": "127.0.0.1:4646",
        "Attributes": Value::Object(attributes),
        "Drivers": { "exec": driver("exec"), "raw_exec": driver("raw_exec") },
        "Meta": { "rack": "r1", "zone": "a" },
        "NodeResources": {
            "Cpu": { "CpuShares": 10000, "TotalCpuCores": 4 },
            "Memory": { "MemoryMB": 16000 },
            "Disk": { "DiskMB": 100000 },
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
    });
    let node: Node = serde_json::from_value(doc.clone()).context("decoding the node template")?;
    // Pad with host-specific attributes (as fingerprinting adds) until the document, as the
    // state encodes it, reaches the target size.
    let size = serde_json::to_vec(&node)
        .context("encoding the node")?
        .len();
    if size < TARGET_BYTES {
        let pad = TARGET_BYTES - size;
        if let Some(attrs) = doc.get_mut("Attributes").and_then(Value::as_object_mut) {
            // `,"unique.platform.pad":"…"` costs 24 bytes besides the value itself.
            attrs.insert(
                "unique.platform.pad".to_owned(),
                Value::String("x".repeat(pad.saturating_sub(24).max(1))),
            );
        }
        return serde_json::from_value(doc).context("decoding the padded node template");
    }
    Ok(node)
}

/// The node as JSON bytes.
pub fn node_json(node: &Node) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(node).context("encoding the node")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_about_two_kilobytes_and_keeps_its_identity() {
        let id = uuid::Uuid::new_v4().to_string();
        let node = node(&id, "bench-1").unwrap();
        let len = node_json(&node).unwrap().len();
        assert!(
            (TARGET_BYTES - 16..TARGET_BYTES + 512).contains(&len),
            "{len}"
        );
        assert_eq!(node.id, id);
        assert_eq!(node.name, "bench-1");
        assert_eq!(node.status, "ready");
        assert!(!node.secret_id.is_empty());
    }
}
