//! `/v1/agent/self`, `/v1/agent/members`, `/v1/agent/health`: the agent this gateway fronts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

/// Nomad's `AgentMember` (Serf member) shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AgentMember {
    addr: String,
    delegate_cur: u8,
    delegate_max: u8,
    delegate_min: u8,
    name: String,
    port: u16,
    protocol_cur: u8,
    protocol_max: u8,
    protocol_min: u8,
    status: &'static str,
    tags: BTreeMap<&'static str, String>,
}

fn member(state: &AppState, server: &v1::ServerSelfResponse) -> AgentMember {
    let (host, port) = split_host_port(&server.rpc_addr);
    let mut tags = BTreeMap::new();
    tags.insert("build", server.version.clone());
    tags.insert("dc", server.datacenter.clone());
    tags.insert("expect", "1".to_owned());
    tags.insert("id", server.name.clone());
    tags.insert("mvn", "1".to_owned());
    tags.insert("port", port.to_string());
    tags.insert("raft_vsn", "3".to_owned());
    tags.insert("region", server.region.clone());
    tags.insert("role", "nomad".to_owned());
    tags.insert("rpc_addr", host.clone());
    tags.insert("vsn", "1".to_owned());
    let _ = state;
    AgentMember {
        addr: host,
        delegate_cur: 4,
        delegate_max: 5,
        delegate_min: 2,
        name: format!("{}.{}", server.name, server.region),
        port,
        protocol_cur: 2,
        protocol_max: 5,
        protocol_min: 1,
        status: "alive",
        tags,
    }
}

fn split_host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse().unwrap_or(0),
        ),
        None => (addr.to_owned(), 0),
    }
}

pub(super) async fn self_(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let server = state
        .status()
        .server_self(v1::ServerSelfRequest {})
        .await?
        .into_inner();
    let cfg = state.config();
    let node_id = cfg.local_node_id.get().cloned().unwrap_or_default();
    let member = member(&state, &server);
    let body = json!({
        "config": {
            "Region": server.region,
            "Datacenter": cfg.datacenter,
            "NodeName": cfg.node_name,
            "DataDir": cfg.data_dir,
            "Version": {
                "Version": server.version,
                "VersionPrerelease": "",
                "VersionMetadata": "",
                "Revision": "caravan",
            },
            "Server": { "Enabled": cfg.server_enabled },
            "Client": { "Enabled": !node_id.is_empty() },
            "ACL": { "Enabled": false },
            "Addresses": { "HTTP": cfg.http_advertise.clone() },
        },
        "member": member,
        "stats": {
            "nomad": {
                "server": cfg.server_enabled.to_string(),
                "leader": server.leader.to_string(),
                "known_regions": "1",
            },
            "raft": {
                "last_log_index": server.last_index.to_string(),
                "applied_index": server.last_index.to_string(),
            },
            "client": {
                "node_id": node_id,
                "known_servers": server.rpc_addr,
                "num_allocations": "0",
            },
        },
    });
    Ok(JsonResponse::value(&body)?.pretty(q.pretty).into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServerMembers {
    members: Vec<AgentMember>,
    #[serde(rename = "ServerDC")]
    server_dc: String,
    server_name: String,
    server_region: String,
}

pub(super) async fn members(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let server = state
        .status()
        .server_self(v1::ServerSelfRequest {})
        .await?
        .into_inner();
    let body = ServerMembers {
        members: vec![member(&state, &server)],
        server_dc: server.datacenter.clone(),
        server_name: server.name.clone(),
        server_region: server.region.clone(),
    };
    Ok(JsonResponse::value(&body)?.pretty(q.pretty).into_response())
}

/// Liveness: this gateway answers and its server answers.
pub(super) async fn health(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let server = state.status().leader(v1::LeaderRequest {}).await;
    let ok = server.is_ok();
    let body = json!({
        "server": { "ok": ok, "message": if ok { "ok" } else { "server unreachable" } },
    });
    if !ok {
        return Err(ApiError::new(
            caravan_proto::ErrorCode::Unavailable,
            "server unreachable",
        ));
    }
    Ok(JsonResponse::value(&body)?.pretty(q.pretty).into_response())
}
