//! The client agent's configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Servers' gRPC addresses (host:port).
    pub servers: Vec<String>,
    /// Where the agent keeps its node identity, allocation directories (`alloc/`) and local
    /// state (`client/`).
    pub data_dir: PathBuf,
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub node_class: String,
    /// The node pool the node registers in (`default` when empty); a pool that does not
    /// exist yet is created by the registration.
    pub node_pool: String,
    pub meta: BTreeMap<String, String>,
    /// The HTTP address that serves this node's `/v1/client/...` endpoints (`HTTPAddr`).
    pub http_advertise: String,
    pub network_interface: Option<String>,
    /// Nomad's `client.nomad_service_discovery`: whether this node offers Nomad's native
    /// service discovery (the `nomad.service_discovery` attribute nomad services need).
    pub nomad_service_discovery: bool,
    /// The agent's gRPC address (fs, logs, exec, lifecycle requests from gateways).
    pub rpc_bind: std::net::SocketAddr,
    /// The address gateways use to reach `rpc_bind` (registered with the node).
    pub rpc_advertise: String,
    /// The program run as each task's executor: the `caravan` binary itself.
    pub executor: PathBuf,
    /// Tasks live no longer than the agent: stopped when it shuts down, killed by their
    /// executors when it dies (dev mode, whose data directory goes away, and tests). Otherwise
    /// tasks keep running and a restarted agent re-attaches to them.
    pub ephemeral_tasks: bool,
    /// When the agent collects terminal allocations by itself.
    pub gc: crate::allocs::manager::GcLimits,
}
