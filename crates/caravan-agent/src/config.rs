//! The client agent's configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Servers' gRPC addresses (host:port).
    pub servers: Vec<String>,
    /// Where the agent keeps its node identity (and, later, allocation directories).
    pub data_dir: PathBuf,
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub node_class: String,
    pub meta: BTreeMap<String, String>,
    /// The HTTP address that serves this node's `/v1/client/...` endpoints (`HTTPAddr`).
    pub http_advertise: String,
    pub network_interface: Option<String>,
}
