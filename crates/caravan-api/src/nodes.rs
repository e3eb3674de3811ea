//! `/v1/nodes` and `/v1/node/:node_id/...`: list, read, allocations, evaluate, drain,
//! eligibility, purge.
//!
//! The typed structs carry the fields clients usually act on; everything else a server sends is
//! kept in their `other` map, so nothing is lost and no full data model is duplicated here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiError, Client, Method, QueryMeta, QueryOptions, WriteMeta, WriteOptions};

/// `SchedulingEligibility` values.
pub const ELIGIBLE: &str = "eligible";
pub const INELIGIBLE: &str = "ineligible";

/// One element of `GET /v1/nodes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeListStub {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// The host of the node's HTTP address.
    pub address: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    pub status: String,
    pub status_description: String,
    pub scheduling_eligibility: String,
    pub drain: bool,
    /// The node's `nomad.version` attribute.
    pub version: String,
    pub create_index: u64,
    pub modify_index: u64,
    /// Only with `os=true`: `{"os.name": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    pub drivers: Option<BTreeMap<String, DriverInfo>>,
    pub last_drain: Option<DrainMetadata>,
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_resources: Option<Value>,
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_resources: Option<Value>,
    /// Every other key.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `GET /v1/node/:node_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    /// Always `""` over the API.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub name: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    pub status: String,
    pub status_description: String,
    /// Unix seconds.
    pub status_updated_at: i64,
    pub scheduling_eligibility: String,
    /// True iff `drain_strategy` is set.
    pub drain: bool,
    pub drain_strategy: Option<DrainStrategy>,
    pub last_drain: Option<DrainMetadata>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub meta: Option<BTreeMap<String, String>>,
    pub drivers: Option<BTreeMap<String, DriverInfo>>,
    /// The last few events, oldest first.
    pub events: Option<Vec<NodeEvent>>,
    pub node_resources: Option<Value>,
    pub reserved_resources: Option<Value>,
    pub resources: Option<Value>,
    pub reserved: Option<Value>,
    pub computed_class: String,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
    pub create_index: u64,
    pub modify_index: u64,
    /// Every other key.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Node {
    /// An attribute's value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .as_ref()
            .and_then(|a| a.get(name))
            .map(String::as_str)
    }

    /// The events, oldest first (empty if none).
    pub fn events(&self) -> &[NodeEvent] {
        self.events.as_deref().unwrap_or(&[])
    }
}

/// A task driver's fingerprint and health on a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverInfo {
    pub attributes: Option<BTreeMap<String, String>>,
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    /// RFC 3339.
    pub update_time: Option<String>,
}

/// Something that happened to a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeEvent {
    pub message: String,
    /// `Cluster`, `Drain`, `Driver`, `Heartbeat`, ...
    pub subsystem: String,
    pub details: Option<BTreeMap<String, String>>,
    /// RFC 3339.
    pub timestamp: Option<String>,
    pub create_index: u64,
}

/// A node's current drain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainStrategy {
    /// Nanoseconds; 0: no deadline; negative: forced.
    pub deadline: i64,
    /// RFC 3339; None without a deadline.
    pub force_deadline: Option<String>,
    pub ignore_system_jobs: bool,
    /// RFC 3339.
    pub started_at: Option<String>,
}

/// `LastDrain`: the most recent drain and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainMetadata {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub meta: Option<BTreeMap<String, String>>,
    pub started_at: Option<String>,
    /// `draining`, `complete` or `canceled`.
    pub status: String,
    pub updated_at: Option<String>,
}

/// What to drain with (`DrainSpec` of `POST /v1/node/:id/drain`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DrainSpec {
    /// Nanoseconds allocations get to migrate before they are stopped; 0: no deadline;
    /// negative: stop them now.
    pub deadline: i64,
    pub ignore_system_jobs: bool,
}

impl DrainSpec {
    /// A drain with a deadline.
    pub fn with_deadline(deadline: std::time::Duration) -> DrainSpec {
        DrainSpec {
            deadline: i64::try_from(deadline.as_nanos()).unwrap_or(i64::MAX),
            ignore_system_jobs: false,
        }
    }

    /// A drain that stops allocations at once.
    pub fn force() -> DrainSpec {
        DrainSpec {
            deadline: -1,
            ignore_system_jobs: false,
        }
    }
}

/// The body of `POST /v1/node/:id/drain`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateDrainRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// None disables a drain.
    pub drain_spec: Option<DrainSpec>,
    /// When disabling: make the node eligible again.
    pub mark_eligible: bool,
    /// Recorded in `LastDrain.Meta`.
    pub meta: Option<BTreeMap<String, String>>,
}

/// The body of `POST /v1/node/:id/eligibility`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateEligibilityRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub eligibility: String,
}

/// The answer of drain and eligibility writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeDrainUpdateResponse {
    pub eval_create_index: u64,
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Option<Vec<String>>,
    pub index: u64,
    pub node_modify_index: u64,
}

/// The answer of evaluate and purge (`NodeUpdateResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeUpdateResponse {
    pub eval_create_index: u64,
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Option<Vec<String>>,
    /// Nanoseconds.
    #[serde(rename = "HeartbeatTTL")]
    pub heartbeat_ttl: u64,
    pub index: u64,
    pub known_leader: bool,
    pub last_contact: u64,
    #[serde(rename = "LeaderRPCAddr")]
    pub leader_rpc_addr: String,
    pub node_modify_index: u64,
    pub num_nodes: i64,
    pub servers: Option<Vec<Value>>,
    /// Every other key.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The node endpoints of one [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Nodes<'a> {
    client: &'a Client,
}

fn node_path(node_id: &str, suffix: &str) -> String {
    format!("/v1/node/{}{suffix}", crate::escape_segment(node_id))
}

impl<'a> Nodes<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Nodes { client }
    }

    /// `GET /v1/nodes`.
    pub async fn list(&self, q: &QueryOptions) -> Result<(Vec<NodeListStub>, QueryMeta), ApiError> {
        self.client.query("/v1/nodes", q).await
    }

    /// `GET /v1/nodes?resources=..&os=..`: the stubs with `NodeResources`/`ReservedResources`
    /// and/or `Attributes["os.name"]`.
    pub async fn list_with_fields(
        &self,
        q: &QueryOptions,
        resources: bool,
        os: bool,
    ) -> Result<(Vec<NodeListStub>, QueryMeta), ApiError> {
        let mut q = q.clone();
        if resources {
            q.params.push(("resources".to_owned(), "true".to_owned()));
        }
        if os {
            q.params.push(("os".to_owned(), "true".to_owned()));
        }
        self.client.query("/v1/nodes", &q).await
    }

    /// Every node, following `X-Nomad-NextToken` page by page (`q.per_page` per page).
    pub async fn list_all(&self, q: &QueryOptions) -> Result<Vec<NodeListStub>, ApiError> {
        let mut q = q.clone();
        let mut out = Vec::new();
        loop {
            let (page, meta) = self.list(&q).await?;
            out.extend(page);
            if meta.next_token.is_empty() {
                return Ok(out);
            }
            q.next_token = meta.next_token;
        }
    }

    /// `GET /v1/node/:node_id`.
    pub async fn info(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<(Node, QueryMeta), ApiError> {
        self.client.query(&node_path(node_id, ""), q).await
    }

    /// `GET /v1/node/:node_id/allocations`: full allocations.
    pub async fn allocations(
        &self,
        node_id: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<Value>, QueryMeta), ApiError> {
        self.client
            .query(&node_path(node_id, "/allocations"), q)
            .await
    }

    /// `POST /v1/node/:node_id/evaluate`.
    pub async fn evaluate(
        &self,
        node_id: &str,
        w: &WriteOptions,
    ) -> Result<(NodeUpdateResponse, WriteMeta), ApiError> {
        self.client
            .write::<(), _>(Method::POST, &node_path(node_id, "/evaluate"), None, w)
            .await
    }

    /// `POST /v1/node/:node_id/drain`: `spec` Some starts or updates a drain, None disables it
    /// (with `mark_eligible`, the node becomes eligible again). `meta` goes to `LastDrain.Meta`.
    pub async fn drain(
        &self,
        node_id: &str,
        spec: Option<DrainSpec>,
        mark_eligible: bool,
        meta: Option<BTreeMap<String, String>>,
        w: &WriteOptions,
    ) -> Result<(NodeDrainUpdateResponse, WriteMeta), ApiError> {
        let body = NodeUpdateDrainRequest {
            node_id: node_id.to_owned(),
            drain_spec: spec,
            mark_eligible,
            meta,
        };
        self.client
            .write(Method::POST, &node_path(node_id, "/drain"), Some(&body), w)
            .await
    }

    /// `POST /v1/node/:node_id/eligibility`.
    pub async fn eligibility(
        &self,
        node_id: &str,
        eligible: bool,
        w: &WriteOptions,
    ) -> Result<(NodeDrainUpdateResponse, WriteMeta), ApiError> {
        let body = NodeUpdateEligibilityRequest {
            node_id: node_id.to_owned(),
            eligibility: if eligible { ELIGIBLE } else { INELIGIBLE }.to_owned(),
        };
        self.client
            .write(
                Method::POST,
                &node_path(node_id, "/eligibility"),
                Some(&body),
                w,
            )
            .await
    }

    /// `POST /v1/node/:node_id/purge`.
    pub async fn purge(
        &self,
        node_id: &str,
        w: &WriteOptions,
    ) -> Result<(NodeUpdateResponse, WriteMeta), ApiError> {
        self.client
            .write::<(), _>(Method::POST, &node_path(node_id, "/purge"), None, w)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_spec_sample_stub_and_keeps_unknown_keys() -> Result<(), serde_json::Error> {
        let stub: NodeListStub = serde_json::from_str(
            r#"{"Address":"10.138.0.5","CreateIndex":6,"Datacenter":"dc1","Drain":false,
            "Drivers":{"qemu":{"Attributes":null,"Detected":false,"HealthDescription":"",
            "Healthy":false,"UpdateTime":"2018-04-11T23:33:48.7819898Z"}},
            "ID":"f7476465-4d6e-c0de-26d0-e383c49be941","ModifyIndex":2526,"Name":"nomad-4",
            "NodeClass":"","SchedulingEligibility":"eligible","Status":"ready",
            "StatusDescription":"","Version":"0.8.0-rc1","HostVolumes":{}}"#,
        )?;
        assert_eq!(stub.id, "f7476465-4d6e-c0de-26d0-e383c49be941");
        assert_eq!(stub.modify_index, 2526);
        assert!(stub.drivers.as_ref().is_some_and(|d| !d["qemu"].detected));
        assert_eq!(stub.other.get("HostVolumes"), Some(&serde_json::json!({})));
        Ok(())
    }

    #[test]
    fn drain_body_shape() -> Result<(), serde_json::Error> {
        let body = NodeUpdateDrainRequest {
            node_id: "n".to_owned(),
            drain_spec: Some(DrainSpec::with_deadline(std::time::Duration::from_secs(
                3600,
            ))),
            mark_eligible: false,
            meta: None,
        };
        assert_eq!(
            serde_json::to_value(&body)?,
            serde_json::json!({"NodeID":"n","DrainSpec":{"Deadline":3_600_000_000_000_i64,
                "IgnoreSystemJobs":false},"MarkEligible":false,"Meta":null})
        );
        Ok(())
    }

    #[test]
    fn paths_escape_ids() {
        assert_eq!(node_path("a/b", "/drain"), "/v1/node/a%2Fb/drain");
    }
}
