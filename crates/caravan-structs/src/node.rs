//! Client nodes: `Node` (GET /v1/node/:id), `NodeListStub` (GET /v1/nodes), their parts, and the
//! request/response bodies of the node write endpoints (NOMAD-BEHAVIOR §2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resources::{NetworkResource, Resources};
use crate::time::Time;

/// `Node.Status`: registered, not yet heartbeating normally.
/// The node attribute holding the client agent's gRPC address: where gateways send the node's
/// `/v1/client/...` requests (`unique.`, so it stays out of the computed class).
pub const AGENT_ADDRESS_ATTRIBUTE: &str = "unique.caravan.agent.address";

pub const NODE_STATUS_INIT: &str = "initializing";
/// `Node.Status`: heartbeating.
pub const NODE_STATUS_READY: &str = "ready";
/// `Node.Status`: missed its heartbeat TTL.
pub const NODE_STATUS_DOWN: &str = "down";
/// `Node.Status`: lost contact but inside its `disconnect` window.
pub const NODE_STATUS_DISCONNECTED: &str = "disconnected";

/// `Node.SchedulingEligibility`: may receive new allocations.
pub const NODE_SCHEDULING_ELIGIBLE: &str = "eligible";
/// `Node.SchedulingEligibility`: receives no new allocations (set by drain or by hand).
pub const NODE_SCHEDULING_INELIGIBLE: &str = "ineligible";

/// `DrainMetadata.Status` values.
pub const DRAIN_STATUS_DRAINING: &str = "draining";
pub const DRAIN_STATUS_COMPLETE: &str = "complete";
pub const DRAIN_STATUS_CANCELED: &str = "canceled";

/// `NodeEvent.Subsystem` values Nomad uses.
pub const NODE_EVENT_SUBSYSTEM_CLUSTER: &str = "Cluster";
pub const NODE_EVENT_SUBSYSTEM_DRAIN: &str = "Drain";
pub const NODE_EVENT_SUBSYSTEM_DRIVER: &str = "Driver";
pub const NODE_EVENT_SUBSYSTEM_HEARTBEAT: &str = "Heartbeat";
pub const NODE_EVENT_SUBSYSTEM_STORAGE: &str = "Storage";

/// At most this many events are kept on a node (`MaxRetainedNodeEvents`).
pub const MAX_RETAINED_NODE_EVENTS: usize = 10;

/// The attribute whose value becomes `NodeListStub.Version`.
pub const ATTR_NOMAD_VERSION: &str = "nomad.version";
/// The Nomad version whose HTTP API Caravan implements, reported as `nomad.version` so that
/// version constraints written for Nomad (and Nomad's implicit ones) hold on Caravan nodes.
pub const NOMAD_API_VERSION: &str = "1.9.7";
/// The attribute carrying Caravan's own version.
pub const ATTR_CARAVAN_VERSION: &str = "caravan.version";
/// The attribute `NodeListStub.Attributes` carries when `os=true`.
pub const ATTR_OS_NAME: &str = "os.name";

/// A client node, as GET /v1/node/:id returns it (NOMAD-BEHAVIOR 2.2). Fields are declared in
/// the byte order of their JSON names, which is the order Nomad writes them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Node {
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(rename = "CSIControllerPlugins")]
    pub csi_controller_plugins: Option<BTreeMap<String, CSIInfo>>,
    #[serde(rename = "CSINodePlugins")]
    pub csi_node_plugins: Option<BTreeMap<String, CSIInfo>>,
    pub cgroup_parent: String,
    /// `v1:<u64>`, see [`Node::compute_class`].
    pub computed_class: String,
    pub create_index: u64,
    pub datacenter: String,
    /// Written as two keys: the legacy `Drain` bool (true iff a strategy is set, Nomad's
    /// `nodeExt` encoding extension) followed by `DrainStrategy`. An incoming `Drain` is ignored:
    /// it is always derived, so it can never disagree with the strategy.
    #[serde(flatten, with = "drain_keys")]
    pub drain_strategy: Option<DrainStrategy>,
    pub drivers: Option<BTreeMap<String, DriverInfo>>,
    pub events: Option<Vec<NodeEvent>>,
    #[serde(rename = "GCVolumesOnNodeGC")]
    pub gc_volumes_on_node_gc: bool,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    pub host_networks: Option<BTreeMap<String, HostNetworkInfo>>,
    pub host_volumes: Option<BTreeMap<String, HostVolumeInfo>>,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "IdentitySigningKeyID")]
    pub identity_signing_key_id: String,
    pub last_alloc_update_index: u64,
    pub last_drain: Option<DrainMetadata>,
    pub last_missed_heartbeat_index: u64,
    pub links: Option<BTreeMap<String, String>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub modify_index: u64,
    pub name: String,
    pub node_class: String,
    /// Upper bound on allocations placed on the node; 0 means no limit.
    pub node_max_allocs: i64,
    pub node_pool: String,
    pub node_resources: Option<NodeResources>,
    /// Legacy (pre-0.9) view of `ReservedResources`.
    pub reserved: Option<Resources>,
    pub reserved_resources: Option<NodeReservedResources>,
    /// Legacy (pre-0.9) view of `NodeResources`.
    pub resources: Option<Resources>,
    pub scheduling_eligibility: String,
    /// Blanked by `sanitize` before the node leaves the server; the key stays as `""`.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub status: String,
    pub status_description: String,
    /// Unix seconds of the last status change.
    pub status_updated_at: i64,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
}

/// Which optional parts `Node::stub` fills (the `resources` and `os` query parameters of
/// GET /v1/nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStubFields {
    pub resources: bool,
    pub os: bool,
}

/// One element of GET /v1/nodes (NOMAD-BEHAVIOR 2.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeListStub {
    /// Host part of `HTTPAddr`.
    pub address: String,
    /// Only with `os=true`, then exactly `{"os.name": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    pub create_index: u64,
    pub datacenter: String,
    /// True iff the node has a drain strategy.
    pub drain: bool,
    pub drivers: Option<BTreeMap<String, DriverInfo>>,
    pub host_volumes: Option<BTreeMap<String, HostVolumeInfo>>,
    #[serde(rename = "ID")]
    pub id: String,
    pub last_drain: Option<DrainMetadata>,
    pub modify_index: u64,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_resources: Option<NodeResources>,
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_resources: Option<NodeReservedResources>,
    pub scheduling_eligibility: String,
    pub status: String,
    pub status_description: String,
    /// `Attributes["nomad.version"]`.
    pub version: String,
}

/// An entry of `Node.Events`: something that happened to the node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeEvent {
    pub create_index: u64,
    pub details: Option<BTreeMap<String, String>>,
    pub message: String,
    pub subsystem: String,
    pub timestamp: Time,
}

/// Fingerprint and health of one task driver on a node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverInfo {
    pub attributes: Option<BTreeMap<String, String>>,
    pub detected: bool,
    pub health_description: String,
    pub healthy: bool,
    pub update_time: Time,
}

/// What a node offers to the scheduler.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeResources {
    pub cpu: NodeCpuResources,
    pub devices: Option<Vec<NodeDeviceResource>>,
    pub disk: NodeDiskResources,
    pub max_dynamic_port: i64,
    pub memory: NodeMemoryResources,
    pub min_dynamic_port: i64,
    pub networks: Option<Vec<NetworkResource>>,
    pub node_networks: Option<Vec<NodeNetworkResource>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeCpuResources {
    /// Total compute in MHz.
    pub cpu_shares: i64,
    pub reservable_cpu_cores: Option<Vec<u16>>,
    pub total_cpu_cores: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

/// A host network interface as fingerprinted (`NodeResources.NodeNetworks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeNetworkResource {
    pub addresses: Option<Vec<NodeNetworkAddress>>,
    pub device: String,
    pub mac_address: String,
    pub mode: String,
    pub speed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeNetworkAddress {
    pub address: String,
    pub alias: String,
    pub family: String,
    pub gateway: String,
    pub reserved_ports: String,
}

/// A group of identical devices (same vendor/type/name) on a node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDeviceResource {
    pub attributes: Option<BTreeMap<String, Attribute>>,
    pub instances: Option<Vec<NodeDevice>>,
    pub name: String,
    pub r#type: String,
    pub vendor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDevice {
    pub health_description: String,
    pub healthy: bool,
    #[serde(rename = "ID")]
    pub id: String,
    pub locality: Option<NodeDeviceLocality>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeDeviceLocality {
    #[serde(rename = "PciBusID")]
    pub pci_bus_id: String,
}

/// A typed device attribute: exactly one of the values is set, with an optional unit.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Attribute {
    pub bool: Option<bool>,
    pub float: Option<f64>,
    pub int: Option<i64>,
    pub string: Option<String>,
    pub unit: String,
}

/// What the operator holds back from the scheduler on a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedResources {
    pub cpu: NodeReservedCpuResources,
    pub disk: NodeReservedDiskResources,
    pub memory: NodeReservedMemoryResources,
    pub networks: NodeReservedNetworkResources,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedCpuResources {
    pub cpu_shares: i64,
    pub reserved_cpu_cores: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedDiskResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeReservedNetworkResources {
    /// Port list/ranges, e.g. `"22,80,8000-8100"`.
    pub reserved_host_ports: String,
}

/// A node's drain: `DrainSpec` (embedded in Go, so its keys are flattened here) plus when it
/// started and the moment it turns forced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainStrategy {
    /// Nanoseconds; 0 means no deadline, negative means drain now (force).
    pub deadline: i64,
    /// When remaining allocations are stopped regardless; zero (null) when `Deadline <= 0`.
    pub force_deadline: Time,
    pub ignore_system_jobs: bool,
    pub started_at: Time,
}

impl DrainStrategy {
    /// A strategy started at `now` from a request's spec. `Deadline > 0` sets `ForceDeadline`
    /// to `now + Deadline`; 0 (no deadline) and negative (force now) leave it zero.
    pub fn new(spec: DrainSpec, now: Time) -> DrainStrategy {
        let force_deadline = if spec.deadline > 0 {
            now.add_nanos(spec.deadline)
        } else {
            Time::ZERO
        };
        DrainStrategy {
            deadline: spec.deadline,
            force_deadline,
            ignore_system_jobs: spec.ignore_system_jobs,
            started_at: now,
        }
    }

    /// The embedded spec.
    pub fn spec(&self) -> DrainSpec {
        DrainSpec {
            deadline: self.deadline,
            ignore_system_jobs: self.ignore_system_jobs,
        }
    }

    /// A negative deadline: drain immediately.
    pub fn is_forced(&self) -> bool {
        self.deadline < 0
    }

    /// Deadline 0: wait for allocations to migrate for as long as it takes.
    pub fn has_no_deadline(&self) -> bool {
        self.deadline == 0
    }
}

/// The operator's drain request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainSpec {
    /// Nanoseconds; see [`DrainStrategy::deadline`].
    pub deadline: i64,
    pub ignore_system_jobs: bool,
}

/// `Node.LastDrain`: who drained the node, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainMetadata {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub started_at: Time,
    /// `draining`, `complete` or `canceled`.
    pub status: String,
    pub updated_at: Time,
}

/// A host volume the node exposes (`client { host_volume "name" { ... } }`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostVolumeInfo {
    /// Set for dynamic host volumes; empty for static ones.
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub path: String,
    pub read_only: bool,
}

/// A host network the node exposes (`client { host_network "name" { ... } }`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostNetworkInfo {
    #[serde(rename = "CIDR")]
    pub cidr: String,
    pub interface: String,
    pub name: String,
    pub reserved_ports: String,
}

/// A CSI plugin instance running on the node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CSIInfo {
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    pub controller_info: Option<CSIControllerInfo>,
    pub health_description: String,
    pub healthy: bool,
    pub node_info: Option<CSINodeInfo>,
    #[serde(rename = "PluginID")]
    pub plugin_id: String,
    pub requires_controller_plugin: bool,
    pub requires_topologies: bool,
    pub update_time: Time,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CSIControllerInfo {
    pub supports_attach_detach: bool,
    pub supports_clone: bool,
    pub supports_condition: bool,
    pub supports_create_delete: bool,
    pub supports_create_delete_snapshot: bool,
    pub supports_expand: bool,
    pub supports_get: bool,
    pub supports_get_capacity: bool,
    pub supports_list_snapshots: bool,
    pub supports_list_volumes: bool,
    pub supports_list_volumes_attached_nodes: bool,
    pub supports_read_only_attach: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CSINodeInfo {
    pub accessible_topology: Option<CSITopology>,
    #[serde(rename = "ID")]
    pub id: String,
    pub max_volumes: i64,
    pub requires_node_stage_volume: bool,
    pub supports_condition: bool,
    pub supports_expand: bool,
    pub supports_stats: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CSITopology {
    pub segments: Option<BTreeMap<String, String>>,
}

/// Body of POST /v1/node/:id/drain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateDrainRequest {
    /// `null` or absent disables the drain.
    pub drain_spec: Option<DrainSpec>,
    pub mark_eligible: bool,
    pub meta: Option<BTreeMap<String, String>>,
    /// Ignored by the endpoint: the path wins.
    #[serde(rename = "NodeID")]
    pub node_id: String,
}

/// Body of POST /v1/node/:id/eligibility.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateEligibilityRequest {
    /// `eligible` or `ineligible`.
    pub eligibility: String,
    /// A non-empty value overrides the path ID.
    #[serde(rename = "NodeID")]
    pub node_id: String,
}

/// Response of POST /v1/node/:id/drain and /eligibility.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDrainUpdateResponse {
    pub eval_create_index: u64,
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Option<Vec<String>>,
    pub index: u64,
    pub node_modify_index: u64,
}

/// Response of POST /v1/node/:id/eligibility: the same shape as the drain response.
pub type NodeEligibilityUpdateResponse = NodeDrainUpdateResponse;

/// Response of POST /v1/node/:id/evaluate and /purge (and of client register/update RPCs in
/// Nomad), with the embedded `QueryMeta` keys flattened in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateResponse {
    pub eval_create_index: u64,
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Option<Vec<String>>,
    pub features: u64,
    /// Nanoseconds.
    #[serde(rename = "HeartbeatTTL")]
    pub heartbeat_ttl: i64,
    pub index: u64,
    pub known_leader: bool,
    /// Nanoseconds.
    pub last_contact: i64,
    #[serde(rename = "LeaderRPCAddr")]
    pub leader_rpc_addr: String,
    pub next_token: String,
    pub node_modify_index: u64,
    pub num_nodes: i64,
    pub scheduling_eligibility: String,
    pub servers: Option<Vec<NodeServerInfo>>,
    pub signed_identity: Option<String>,
}

/// A server a client may talk to, in `NodeUpdateResponse.Servers`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeServerInfo {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "RPCAdvertiseAddr")]
    pub rpc_advertise_addr: String,
    #[serde(rename = "RPCMajorVersion")]
    pub rpc_major_version: i32,
    #[serde(rename = "RPCMinorVersion")]
    pub rpc_minor_version: i32,
}

impl Node {
    /// The objects of a Node's JSON that are maps (every other object is a struct), for filter
    /// expressions: a selector may name any key of a map but only the fields of a struct. `*`
    /// stands for a map value or an array element. A test keeps this in step with the type.
    pub const MAP_PATHS: &'static [&'static [&'static str]] = &[
        &["Attributes"],
        &["CSIControllerPlugins"],
        &["CSINodePlugins"],
        &[
            "CSIControllerPlugins",
            "*",
            "NodeInfo",
            "AccessibleTopology",
            "Segments",
        ],
        &[
            "CSINodePlugins",
            "*",
            "NodeInfo",
            "AccessibleTopology",
            "Segments",
        ],
        &["Drivers"],
        &["Drivers", "*", "Attributes"],
        &["Events", "*", "Details"],
        &["HostNetworks"],
        &["HostVolumes"],
        &["LastDrain", "Meta"],
        &["Links"],
        &["Meta"],
        &["NodeResources", "Devices", "*", "Attributes"],
    ];

    /// True iff the node has a drain strategy (the legacy `Drain` key).
    pub fn drain(&self) -> bool {
        self.drain_strategy.is_some()
    }

    /// `ready` nodes are the only ones the scheduler places on.
    pub fn ready(&self) -> bool {
        self.status == NODE_STATUS_READY
            && self.drain_strategy.is_none()
            && self.scheduling_eligibility == NODE_SCHEDULING_ELIGIBLE
    }

    /// `down` is the only terminal status.
    pub fn terminal_status(&self) -> bool {
        self.status == NODE_STATUS_DOWN
    }

    /// A copy safe to show to API callers: the secret is blanked (the key stays, as `""`).
    pub fn sanitize(&self) -> Node {
        Node {
            secret_id: String::new(),
            ..self.clone()
        }
    }

    /// Appends an event, keeping the newest [`MAX_RETAINED_NODE_EVENTS`].
    pub fn add_event(&mut self, event: NodeEvent) {
        let events = self.events.get_or_insert_with(Vec::new);
        events.push(event);
        if events.len() > MAX_RETAINED_NODE_EVENTS {
            let excess = events.len() - MAX_RETAINED_NODE_EVENTS;
            events.drain(..excess);
        }
    }

    /// The list stub GET /v1/nodes returns, with the optional parts `fields` asks for.
    pub fn stub(&self, fields: NodeStubFields) -> NodeListStub {
        let attr = |k: &str| {
            self.attributes
                .as_ref()
                .and_then(|a| a.get(k))
                .cloned()
                .unwrap_or_default()
        };
        NodeListStub {
            address: host_of(&self.http_addr),
            attributes: fields
                .os
                .then(|| BTreeMap::from([(ATTR_OS_NAME.to_owned(), attr(ATTR_OS_NAME))])),
            create_index: self.create_index,
            datacenter: self.datacenter.clone(),
            drain: self.drain(),
            drivers: self.drivers.clone(),
            host_volumes: self.host_volumes.clone(),
            id: self.id.clone(),
            last_drain: self.last_drain.clone(),
            modify_index: self.modify_index,
            name: self.name.clone(),
            node_class: self.node_class.clone(),
            node_pool: self.node_pool.clone(),
            node_resources: if fields.resources {
                self.node_resources.clone()
            } else {
                None
            },
            reserved_resources: if fields.resources {
                self.reserved_resources.clone()
            } else {
                None
            },
            scheduling_eligibility: self.scheduling_eligibility.clone(),
            status: self.status.clone(),
            status_description: self.status_description.clone(),
            version: attr(ATTR_NOMAD_VERSION),
        }
    }

    /// The node's computed class, `v1:<u64>`: a stable hash of what makes nodes
    /// interchangeable for the scheduler — datacenter, class, pool, the attributes and meta
    /// that are not `unique.*`, and the drivers with their detected/healthy flags. Two nodes
    /// with the same class give the same feasibility answer for any constraint that does not
    /// read `unique.*` values, so the scheduler can cache per class.
    pub fn compute_class(&self) -> String {
        let mut h = Fnv64::new();
        h.field("datacenter", &self.datacenter);
        h.field("node_class", &self.node_class);
        h.field("node_pool", &self.node_pool);
        for (tag, map) in [("attr", &self.attributes), ("meta", &self.meta)] {
            for (k, v) in map.iter().flatten() {
                if !is_unique_key(k) {
                    h.field(tag, k);
                    h.bytes(v.as_bytes());
                }
            }
        }
        for (name, d) in self.drivers.iter().flatten() {
            h.field("driver", name);
            h.bytes(&[u8::from(d.detected), u8::from(d.healthy)]);
        }
        format!("v1:{}", h.finish())
    }

    /// Sets `ComputedClass` from [`Node::compute_class`].
    pub fn set_computed_class(&mut self) {
        self.computed_class = self.compute_class();
    }
}

/// `unique.*` attributes and meta keys identify one node and are left out of the class.
fn is_unique_key(k: &str) -> bool {
    k.starts_with("unique.")
}

/// The host part of a `host:port` address, as Go's `net.SplitHostPort`; "" when it does not
/// parse (no port, too many colons, bad brackets).
pub fn host_of(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        // "[host]:port"; the host may contain colons (IPv6).
        return match rest.split_once(']') {
            Some((host, tail)) if tail.starts_with(':') && !tail[1..].contains(':') => {
                if host.contains('[') || host.contains(']') {
                    String::new()
                } else {
                    host.to_owned()
                }
            }
            _ => String::new(),
        };
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') && !host.contains('[') && !host.contains(']') => {
            host.to_owned()
        }
        _ => String::new(),
    }
}

/// 64-bit FNV-1a: tiny, dependency-free, and stable across Rust versions and platforms (unlike
/// `std`'s `DefaultHasher`), so a class computed by one process matches another's.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, b: &[u8]) {
        // Length-prefixed so ("ab","c") and ("a","bc") hash differently.
        for &x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn field(&mut self, tag: &str, value: &str) {
        self.bytes(tag.as_bytes());
        self.bytes(value.as_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Writes `Node.drain_strategy` as the adjacent `Drain` + `DrainStrategy` keys.
mod drain_keys {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::DrainStrategy;

    pub fn serialize<S: Serializer>(v: &Option<DrainStrategy>, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("Drain", &v.is_some())?;
        m.serialize_entry("DrainStrategy", v)?;
        m.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DrainStrategy>, D::Error> {
        #[derive(Deserialize)]
        struct Keys {
            #[serde(rename = "DrainStrategy", default)]
            drain_strategy: Option<DrainStrategy>,
        }
        Ok(Keys::deserialize(d)?.drain_strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn sample_node() -> Node {
        Node {
            id: "1ac61e33-a465-2ace-f63f-cffa1285e7eb".into(),
            secret_id: "s3cret".into(),
            name: "mew".into(),
            datacenter: "dc1".into(),
            node_pool: "default".into(),
            http_addr: "127.0.0.1:4646".into(),
            status: NODE_STATUS_READY.into(),
            scheduling_eligibility: NODE_SCHEDULING_ELIGIBLE.into(),
            attributes: Some(BTreeMap::from([
                ("os.name".into(), "ubuntu".into()),
                ("nomad.version".into(), "1.9.0".into()),
                ("kernel.name".into(), "linux".into()),
                ("unique.hostname".into(), "mew".into()),
            ])),
            drivers: Some(BTreeMap::from([(
                "raw_exec".into(),
                DriverInfo {
                    detected: true,
                    healthy: true,
                    ..Default::default()
                },
            )])),
            node_resources: Some(NodeResources::default()),
            reserved_resources: Some(NodeReservedResources::default()),
            ..Default::default()
        }
    }

    #[test]
    fn stub_derives_address_version_and_drain() {
        let mut n = sample_node();
        let s = n.stub(NodeStubFields::default());
        assert_eq!(s.address, "127.0.0.1");
        assert_eq!(s.version, "1.9.0");
        assert!(!s.drain);
        assert_eq!(s.attributes, None);
        assert_eq!(s.node_resources, None);
        let v = serde_json::to_value(&s).unwrap();
        for k in ["Attributes", "NodeResources", "ReservedResources"] {
            assert!(v.get(k).is_none(), "{k} must be omitted");
        }

        n.drain_strategy = Some(DrainStrategy::default());
        let s = n.stub(NodeStubFields {
            resources: true,
            os: true,
        });
        assert!(s.drain);
        assert_eq!(
            s.attributes,
            Some(BTreeMap::from([("os.name".into(), "ubuntu".into())]))
        );
        assert!(s.node_resources.is_some() && s.reserved_resources.is_some());

        n.attributes = None;
        let s = n.stub(NodeStubFields {
            resources: false,
            os: true,
        });
        assert_eq!(
            s.attributes,
            Some(BTreeMap::from([("os.name".into(), String::new())]))
        );
        assert_eq!(s.version, "");
    }

    #[test]
    fn stub_keys_in_wire_order() {
        let s = sample_node().stub(NodeStubFields {
            resources: true,
            os: true,
        });
        let v = serde_json::to_value(&s).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Address",
                "Attributes",
                "CreateIndex",
                "Datacenter",
                "Drain",
                "Drivers",
                "HostVolumes",
                "ID",
                "LastDrain",
                "ModifyIndex",
                "Name",
                "NodeClass",
                "NodePool",
                "NodeResources",
                "ReservedResources",
                "SchedulingEligibility",
                "Status",
                "StatusDescription",
                "Version"
            ]
        );
    }

    #[test]
    fn host_of_follows_split_host_port() {
        for (addr, host) in [
            ("127.0.0.1:4646", "127.0.0.1"),
            ("example.com:80", "example.com"),
            ("[::1]:4646", "::1"),
            ("host:", "host"),
            (":4646", ""),
            ("127.0.0.1", ""),
            ("::1:4646", ""),
            ("[::1]", ""),
            ("[::1]:80:90", ""),
            ("", ""),
        ] {
            assert_eq!(host_of(addr), host, "{addr}");
        }
    }

    #[test]
    fn node_serializes_every_key_of_nomad_behavior_2_2_in_order() {
        let v = serde_json::to_value(Node::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "ID",
            "SecretID",
            "Datacenter",
            "Name",
            "CgroupParent",
            "HTTPAddr",
            "TLSEnabled",
            "Attributes",
            "NodeResources",
            "ReservedResources",
            "Links",
            "Meta",
            "NodeClass",
            "NodePool",
            "ComputedClass",
            "DrainStrategy",
            "SchedulingEligibility",
            "Status",
            "StatusDescription",
            "IdentitySigningKeyID",
            "StatusUpdatedAt",
            "Events",
            "Drivers",
            "CSIControllerPlugins",
            "CSINodePlugins",
            "HostVolumes",
            "GCVolumesOnNodeGC",
            "HostNetworks",
            "LastDrain",
            "NodeMaxAllocs",
            "LastMissedHeartbeatIndex",
            "LastAllocUpdateIndex",
            "CreateIndex",
            "ModifyIndex",
            // The encoding extension and the legacy resource views.
            "Drain",
            "Reserved",
            "Resources",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["Drain"], json!(false));
        assert_eq!(v["DrainStrategy"], Value::Null);
        assert_eq!(v["SecretID"], json!(""));
    }

    #[test]
    fn drain_key_follows_strategy_and_incoming_drain_is_ignored() {
        let mut n = sample_node();
        n.drain_strategy = Some(DrainStrategy::new(
            DrainSpec {
                deadline: 3_600_000_000_000,
                ignore_system_jobs: true,
            },
            Time::parse_rfc3339("2024-01-01T00:00:00Z").unwrap(),
        ));
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["Drain"], json!(true));
        assert_eq!(
            v["DrainStrategy"],
            json!({
                "Deadline": 3_600_000_000_000i64,
                "ForceDeadline": "2024-01-01T01:00:00Z",
                "IgnoreSystemJobs": true,
                "StartedAt": "2024-01-01T00:00:00Z"
            })
        );
        let back: Node = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);

        let lying: Node = serde_json::from_value(json!({"Drain": true, "ID": "x"})).unwrap();
        assert!(lying.drain_strategy.is_none());
        assert_eq!(serde_json::to_value(&lying).unwrap()["Drain"], json!(false));
    }

    #[test]
    fn drain_strategy_deadlines() {
        let now = Time::parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        let forced = DrainStrategy::new(
            DrainSpec {
                deadline: -1,
                ignore_system_jobs: false,
            },
            now,
        );
        assert!(forced.is_forced() && forced.force_deadline.is_zero());
        let open = DrainStrategy::new(DrainSpec::default(), now);
        assert!(open.has_no_deadline() && open.force_deadline.is_zero());
        assert_eq!(open.spec(), DrainSpec::default());
    }

    #[test]
    fn compute_class_is_stable_and_ignores_unique_keys() {
        let a = sample_node();
        let class = a.compute_class();
        assert!(class.starts_with("v1:"));
        assert!(class[3..].parse::<u64>().is_ok());
        // Same input, same class, every time and in every process (FNV, not RandomState).
        assert_eq!(a.compute_class(), class);
        assert_eq!(a.clone().compute_class(), class);

        let mut b = a.clone();
        b.id = "other".into();
        b.name = "other".into();
        b.http_addr = "10.0.0.1:4646".into();
        b.attributes
            .as_mut()
            .unwrap()
            .insert("unique.hostname".into(), "other".into());
        b.meta = Some(BTreeMap::from([("unique.rack".into(), "r2".into())]));
        b.drivers
            .as_mut()
            .unwrap()
            .get_mut("raw_exec")
            .unwrap()
            .update_time = Time::from_unix_nanos(1);
        assert_eq!(b.compute_class(), class);

        for change in [
            |n: &mut Node| n.datacenter = "dc2".into(),
            |n: &mut Node| n.node_class = "gpu".into(),
            |n: &mut Node| n.node_pool = "batch".into(),
            |n: &mut Node| {
                n.attributes
                    .as_mut()
                    .unwrap()
                    .insert("kernel.name".into(), "darwin".into());
            },
            |n: &mut Node| n.meta = Some(BTreeMap::from([("rack".into(), "r1".into())])),
            |n: &mut Node| {
                n.drivers
                    .as_mut()
                    .unwrap()
                    .get_mut("raw_exec")
                    .unwrap()
                    .healthy = false;
            },
        ] {
            let mut c = a.clone();
            change(&mut c);
            assert_ne!(c.compute_class(), class);
        }
        // Pinned: changing the hash changes every stored node's class; do it deliberately.
        assert_eq!(a.compute_class(), "v1:951698745945403965");
    }

    #[test]
    fn sanitize_blanks_secret_but_keeps_key() {
        let v = serde_json::to_value(sample_node().sanitize()).unwrap();
        assert_eq!(v["SecretID"], json!(""));
    }

    #[test]
    fn events_are_capped() {
        let mut n = Node::default();
        for i in 0..15 {
            n.add_event(NodeEvent {
                create_index: i,
                ..Default::default()
            });
        }
        let ev = n.events.unwrap();
        assert_eq!(ev.len(), MAX_RETAINED_NODE_EVENTS);
        assert_eq!(ev[0].create_index, 5);
    }
}
