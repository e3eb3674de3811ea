//! Reaching client agents: `/v1/client/...` requests go to the agent of the node that holds the
//! allocation (or the `node_id` asked for). Allocation → node → agent address (the node's
//! `unique.caravan.agent.address` attribute) is resolved through the server; channels to agents
//! are pooled by address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caravan_proto::ErrorCode;
use caravan_proto::v1;
use caravan_structs::node::{AGENT_ADDRESS_ATTRIBUTE, NODE_STATUS_DOWN};
use caravan_structs::{Allocation, Node};
use tonic::transport::{Channel, Endpoint};

use crate::AppState;
use crate::error::ApiError;

#[derive(Clone, Default)]
pub struct AgentPool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl AgentPool {
    pub fn channel(&self, addr: &str) -> Result<Channel, ApiError> {
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| ApiError::internal("agent channel pool poisoned"))?;
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ApiError::internal(format!("invalid agent address {addr:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Where a node's agent listens.
pub struct AgentTarget {
    pub node_id: String,
    pub addr: String,
}

/// The allocation, for routing: `Unknown allocation "<id>"` (404) when the server has none.
pub async fn alloc(state: &AppState, alloc_id: &str) -> Result<Allocation, ApiError> {
    let resp = state
        .allocs()
        .get_alloc(v1::GetAllocRequest {
            alloc_id: alloc_id.to_owned(),
            query: None,
        })
        .await?
        .into_inner();
    if resp.alloc_json.is_empty() {
        return Err(ApiError::not_found(format!(
            "Unknown allocation {alloc_id:?}"
        )));
    }
    serde_json::from_slice(&resp.alloc_json)
        .map_err(|e| ApiError::internal(format!("undecodable allocation: {e}")))
}

/// The agent of `node_id`: 404 for an unknown node, 503 when it is down or has no agent
/// address.
pub async fn node_agent(state: &AppState, node_id: &str) -> Result<AgentTarget, ApiError> {
    let resp = state
        .nodes()
        .get_node(v1::GetNodeRequest {
            node_id: node_id.to_owned(),
            query: None,
        })
        .await?
        .into_inner();
    if resp.node_json.is_empty() {
        return Err(ApiError::not_found(format!("Unknown node {node_id}")));
    }
    let node: Node = serde_json::from_slice(&resp.node_json)
        .map_err(|e| ApiError::internal(format!("undecodable node: {e}")))?;
    if node.status == NODE_STATUS_DOWN {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("No path to node: node {node_id} is down"),
        ));
    }
    let addr = node
        .attributes
        .as_ref()
        .and_then(|a| a.get(AGENT_ADDRESS_ATTRIBUTE))
        .filter(|a| !a.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "No path to node: node {node_id} does not advertise a client agent address"
                ),
            )
        })?;
    Ok(AgentTarget {
        node_id: node_id.to_owned(),
        addr,
    })
}

/// Maps an agent's answer: its own errors keep their code and text; a transport failure says
/// which node could not be reached.
pub fn agent_error(target: &AgentTarget, status: tonic::Status) -> ApiError {
    if status
        .metadata()
        .contains_key(caravan_proto::status::ERROR_CODE_KEY)
    {
        return ApiError::from(status);
    }
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "No path to node: the client agent of node {} at {} is unreachable: {}",
            target.node_id,
            target.addr,
            status.message()
        ),
    )
}
