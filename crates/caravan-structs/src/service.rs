//! Service registrations of the built-in (`provider = "nomad"`) service catalogue
//! (GET /v1/allocation/:id/services, /v1/service/:name).

use serde::{Deserialize, Serialize};

/// One registered instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistration {
    pub address: String,
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    pub create_index: u64,
    pub datacenter: String,
    /// `_nomad-task-<alloc>-<task or group>-<service>-<port label>`.
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub modify_index: u64,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub port: i64,
    pub service_name: String,
    pub tags: Option<Vec<String>>,
}
