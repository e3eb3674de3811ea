//! `/v1/agent/self`, `/v1/agent/members`, `/v1/agent/health`: the agent this gateway fronts.
//! `/v1/agent/host` and `/v1/agent/monitor`: the machine and the live log lines of an agent —
//! this gateway's own process when neither `node_id` nor `server_id` is given, else the client
//! agent of `node_id` or the server the gateway reaches (`server_id`: `leader`, its name or its
//! member name), both over their `Agent` gRPC service.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use caravan_proto::agent::log_level_to_proto;
use caravan_proto::v1;
use caravan_proto::v1::agent_client::AgentClient;
use caravan_structs::LogLevel;
use caravan_telemetry::host::HostError;
use caravan_telemetry::{Monitor, MonitorOptions};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::client_fs::{frame_json, streaming, untrusted};
use crate::AppState;
use crate::agents::{self, AgentTarget, agent_error};
use crate::error::ApiError;
use crate::framer::log_frames;
use crate::query::{Query, parse_go_bool, validate_uuid};
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

/// A query parameter; empty counts as absent, as Go's `Query().Get` reads it.
fn param<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The client agent of `node_id`: a malformed ID is a 400, an unknown node Nomad's 404.
async fn node_agent(state: &AppState, node_id: &str) -> Result<AgentTarget, ApiError> {
    validate_uuid(node_id, "node")?;
    agents::node_agent(state, node_id).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::not_found(format!("Unknown node {node_id:?}"))
        } else {
            e
        }
    })
}

fn host_error(e: HostError) -> ApiError {
    let code = match e {
        HostError::Timeout(_) => caravan_proto::ErrorCode::Timeout,
        HostError::Failed(_) => caravan_proto::ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

/// `{"AgentID": ..., "HostData": ...}` around the document the agent serialized.
fn host_response(resp: v1::AgentHostResponse, pretty: bool) -> Result<Response, ApiError> {
    let agent_id = serde_json::to_vec(&resp.agent_id)
        .map_err(|e| ApiError::internal(format!("failed to encode response: {e}")))?;
    let mut body = Vec::with_capacity(resp.host_data_json.len() + agent_id.len() + 32);
    body.extend_from_slice(b"{\"AgentID\":");
    body.extend_from_slice(&agent_id);
    body.extend_from_slice(b",\"HostData\":");
    if resp.host_data_json.is_empty() {
        body.extend_from_slice(b"null");
    } else {
        body.extend_from_slice(&resp.host_data_json);
    }
    body.push(b'}');
    Ok(JsonResponse::raw(body).pretty(pretty).into_response())
}

/// `GET /v1/agent/host`. Without `node_id` or `server_id` Nomad answers the bare `HostData` of
/// the agent that answers; for another agent, the `HostDataResponse` around it.
pub(super) async fn host(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    match (param(&q, "node_id"), param(&q, "server_id")) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "Can only forward to either client node or server",
        )),
        (None, None) => {
            let data = caravan_telemetry::host::gather_async()
                .await
                .map_err(host_error)?;
            Ok(JsonResponse::value(&data)?.pretty(q.pretty).into_response())
        }
        (Some(node_id), None) => {
            let target = node_agent(&state, node_id).await?;
            let resp = AgentClient::new(state.agent(&target.addr)?)
                .host(v1::AgentHostRequest::default())
                .await
                .map_err(|s| agent_error(&target, s))?
                .into_inner();
            host_response(resp, q.pretty)
        }
        (None, Some(server_id)) => {
            let resp = state
                .server_agent()
                .host(v1::AgentHostRequest {
                    server_id: server_id.to_owned(),
                })
                .await?
                .into_inner();
            host_response(resp, q.pretty)
        }
    }
}

/// A Go `strconv.ParseBool` parameter; `what` names it in Nomad's error.
fn go_bool(q: &Query, name: &str, what: &str) -> Result<bool, ApiError> {
    match param(q, name) {
        None => Ok(false),
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unknown option for {what}: strconv.ParseBool: parsing {v:?}: invalid syntax"
            ))
        }),
    }
}

/// `GET /v1/agent/monitor`: log lines from now on at `log_level` (default info), as
/// StreamFrames (or the bare text with `plain=true`), until the client goes away.
pub(super) async fn monitor(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    // Nomad's order of checks: level, log_json, plain, log_include_location, then the target.
    let raw_level = param(&q, "log_level").unwrap_or("INFO");
    let level = LogLevel::parse(raw_level)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {raw_level}")))?;
    let json = go_bool(&q, "log_json", "log json")?;
    let plain = go_bool(&q, "plain", "plain")?;
    let include_location = go_bool(&q, "log_include_location", "log_include_location")?;
    let request = |server_id: &str| v1::AgentMonitorRequest {
        log_level: log_level_to_proto(level),
        log_json: json,
        log_include_location: include_location,
        server_id: server_id.to_owned(),
    };
    let lines: BoxStream<'static, Bytes> = match (param(&q, "node_id"), param(&q, "server_id")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Cannot target node and server simultaneously",
            ));
        }
        (None, None) => Monitor::global()
            .subscribe(MonitorOptions {
                level,
                json,
                include_location,
            })
            .map_err(|e| ApiError::new(caravan_proto::ErrorCode::TooManyRequests, e.to_string()))?
            .into_stream()
            .boxed(),
        (Some(node_id), None) => {
            let target = node_agent(&state, node_id).await?;
            let chunks = AgentClient::new(state.agent(&target.addr)?)
                .monitor(request(""))
                .await
                .map_err(|s| agent_error(&target, s))?
                .into_inner();
            chunk_bytes(chunks)
        }
        (None, Some(server_id)) => {
            let chunks = state
                .server_agent()
                .monitor(request(server_id))
                .await?
                .into_inner();
            chunk_bytes(chunks)
        }
    };
    // A stopping gateway ends its monitors instead of waiting out its grace for them.
    let lines = lines.take_until(state.stopping()).boxed();
    Ok(frames_response(lines, plain))
}

/// The bytes of an agent's chunks; an error after the start can only end the stream.
fn chunk_bytes(chunks: tonic::Streaming<v1::AgentMonitorChunk>) -> BoxStream<'static, Bytes> {
    chunks
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(|r| futures::future::ready(r.ok().map(|c| c.data)))
        .boxed()
}

/// Framed lines as a streamed response: Nomad's JSON frames with heartbeats, or with `plain`
/// only the text, as untrusted content.
fn frames_response(lines: BoxStream<'static, Bytes>, plain: bool) -> Response {
    let body = log_frames(lines).filter_map(move |f| {
        let out = if plain {
            (!f.data.is_empty()).then(|| f.data.clone())
        } else {
            Some(frame_json(&f))
        };
        futures::future::ready(out.map(Ok::<Bytes, std::io::Error>))
    });
    let mut resp = Response::new(Body::from_stream(body));
    if plain {
        streaming(&mut resp, "text/plain");
        untrusted(&mut resp);
    } else {
        streaming(&mut resp, "application/json");
    }
    resp
}
