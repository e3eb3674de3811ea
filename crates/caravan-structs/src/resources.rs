//! Resource shapes shared by jobs, allocations and nodes: the legacy `Resources` block (task
//! asks, `Node.Resources`/`Node.Reserved`, `Allocation.Resources`), `NetworkResource`, `Port`,
//! `DNSConfig` and `RequestedDevice`. The newer node and allocation resource trees live with
//! their nouns (`node.rs`, `alloc.rs`).

use serde::{Deserialize, Serialize};

use crate::job::{Affinity, Constraint};

/// A task's resource ask, and the legacy resource block of nodes and allocations.
/// JSON keys in Nomad's (byte-sorted) order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Resources {
    /// CPU in MHz.
    #[serde(rename = "CPU")]
    pub cpu: i64,
    /// Whole reserved cores; excludes `CPU` when set.
    pub cores: i64,
    pub devices: Option<Vec<RequestedDevice>>,
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    /// Deprecated since Nomad 0.9; still on the wire of old documents.
    #[serde(rename = "IOPS")]
    pub iops: i64,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
    pub networks: Option<Vec<NetworkResource>>,
}

/// A network ask or offer: mode, device, addresses, bandwidth and ports.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkResource {
    #[serde(rename = "CIDR")]
    pub cidr: String,
    #[serde(rename = "DNS")]
    pub dns: Option<DNSConfig>,
    pub device: String,
    pub dynamic_ports: Option<Vec<Port>>,
    pub hostname: String,
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "MBits")]
    pub mbits: i64,
    /// `host`, `bridge`, `none`, `cni/<name>`; empty means host.
    pub mode: String,
    pub reserved_ports: Option<Vec<Port>>,
}

/// A labelled port: `Value` is the host port (0 until a dynamic port is assigned), `To` the
/// port inside the task's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Port {
    pub host_network: String,
    pub label: String,
    pub to: i64,
    pub value: i64,
}

/// DNS settings for a group network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DNSConfig {
    pub options: Option<Vec<String>>,
    pub searches: Option<Vec<String>>,
    pub servers: Option<Vec<String>>,
}

/// A device ask (`device "nvidia/gpu" { count = 2 }`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestedDevice {
    pub affinities: Option<Vec<Affinity>>,
    pub constraints: Option<Vec<Constraint>>,
    pub count: u64,
    /// `vendor/type/name`, `vendor/type` or `type`.
    pub name: String,
}
