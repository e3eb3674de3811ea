//! `/v1/nodes` and `/v1/node/:node_id/...` (seeds/004).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::{NodeDrainUpdateResponse, NodeServerInfo, NodeUpdateResponse};
use serde_json::Value;

use crate::AppState;
use crate::body::{JsonObject, bool_field, get_ci, int_field, wrong_type};
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::JsonResponse;

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let fields = |name| {
        q.bool_param(name, false)
            .map_err(|e| ApiError::bad_request(format!("Failed to parse node list fields: {e}")))
    };
    let resources = fields("resources")?;
    let os = fields("os")?;
    let query = q.to_proto_uuid_prefix("node")?;
    let resp = state
        .nodes()
        .list_nodes(v1::ListNodesRequest {
            query: Some(query),
            resources,
            os,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.stubs_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(UuidPath(node_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&node_id, "node")?;
    let resp = state
        .nodes()
        .get_node(v1::GetNodeRequest {
            node_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.node_json.is_empty() {
        return Err(ApiError::not_found("node not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.node_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn allocations(
    State(state): State<AppState>,
    Path(UuidPath(node_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&node_id, "node")?;
    let resp = state
        .nodes()
        .get_node_allocs(v1::GetNodeAllocsRequest {
            node_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.allocs_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

fn eval_ids(ids: Vec<String>) -> Option<Vec<String>> {
    if ids.is_empty() { None } else { Some(ids) }
}

fn nanos(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

fn node_update_response(r: v1::NodeUpdateResponse, pretty: bool) -> Result<Response, ApiError> {
    let index = r.index;
    let meta = r.meta.unwrap_or_default();
    let body = NodeUpdateResponse {
        eval_create_index: r.eval_create_index,
        eval_ids: eval_ids(r.eval_ids),
        heartbeat_ttl: nanos(r.heartbeat_ttl_ms),
        index,
        known_leader: meta.known_leader,
        last_contact: nanos(meta.last_contact_ms),
        leader_rpc_addr: r.leader_rpc_addr,
        node_modify_index: r.node_modify_index,
        num_nodes: i64::from(r.num_nodes),
        scheduling_eligibility: r.scheduling_eligibility,
        servers: if r.servers.is_empty() {
            None
        } else {
            Some(
                r.servers
                    .into_iter()
                    .map(|s| NodeServerInfo {
                        datacenter: s.datacenter,
                        rpc_advertise_addr: s.rpc_advertise_addr,
                        rpc_major_version: s.rpc_major_version,
                        rpc_minor_version: s.rpc_minor_version,
                    })
                    .collect(),
            )
        },
        ..NodeUpdateResponse::default()
    };
    Ok(JsonResponse::value(&body)?
        .index(index)
        .pretty(pretty)
        .into_response())
}

fn drain_update_response(
    r: v1::NodeDrainUpdateResponse,
    pretty: bool,
) -> Result<Response, ApiError> {
    let body = NodeDrainUpdateResponse {
        eval_create_index: r.eval_create_index,
        eval_ids: eval_ids(r.eval_ids),
        index: r.index,
        node_modify_index: r.node_modify_index,
    };
    Ok(JsonResponse::value(&body)?
        .index(r.index)
        .pretty(pretty)
        .into_response())
}

pub(super) async fn evaluate(
    State(state): State<AppState>,
    Path(UuidPath(node_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&node_id, "node")?;
    let resp = state
        .nodes()
        .evaluate(v1::NodeSpecificRequest {
            node_id,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    node_update_response(resp, q.pretty)
}

pub(super) async fn purge(
    State(state): State<AppState>,
    Path(UuidPath(node_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&node_id, "node")?;
    let mut resp = state
        .nodes()
        .purge(v1::NodeSpecificRequest {
            node_id,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    // Purge fills only the eval and index fields (NOMAD-BEHAVIOR 2.7).
    resp.servers.clear();
    resp.num_nodes = 0;
    resp.leader_rpc_addr.clear();
    resp.heartbeat_ttl_ms = 0;
    node_update_response(resp, q.pretty)
}

pub(super) async fn drain(
    State(state): State<AppState>,
    Path(UuidPath(node_id)): Path<UuidPath>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    validate_uuid(&node_id, "node")?;
    let drain_spec = match body.get("DrainSpec") {
        None | Some(Value::Null) => None,
        Some(Value::Object(spec)) => Some(v1::DrainSpec {
            deadline_ns: int_field(spec, "Deadline")?.unwrap_or(0),
            ignore_system_jobs: bool_field(spec, "IgnoreSystemJobs")?.unwrap_or(false),
        }),
        Some(other) => return Err(wrong_type("DrainSpec", "api.DrainSpec", other)),
    };
    let mark_eligible = body.bool("MarkEligible")?.unwrap_or(false);
    let meta = match body.get("Meta") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(wrong_type(&format!("Meta.{k}"), "string", other)),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("Meta", "map[string]string", other)),
    };
    let resp = state
        .nodes()
        .update_drain(v1::UpdateDrainRequest {
            node_id,
            drain_spec,
            mark_eligible,
            meta,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    drain_update_response(resp, q.pretty)
}

pub(super) async fn eligibility(
    State(state): State<AppState>,
    Path(UuidPath(path_id)): Path<UuidPath>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    // A non-empty NodeID in the body wins over the path, as in Nomad.
    let node_id = match body.string("NodeID")? {
        Some(id) if !id.is_empty() => id.to_ascii_lowercase(),
        _ => path_id,
    };
    validate_uuid(&node_id, "node")?;
    let eligibility = match get_ci(&body.0, "Eligibility") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => return Err(wrong_type("Eligibility", "string", other)),
    };
    let resp = state
        .nodes()
        .update_eligibility(v1::UpdateEligibilityRequest {
            node_id,
            eligibility,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    drain_update_response(resp, q.pretty)
}
