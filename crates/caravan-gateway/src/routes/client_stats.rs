//! `/v1/client/stats`, `/v1/client/allocation/:alloc_id/stats` and `/v1/client/metadata`:
//! resource usage and node metadata, served by the client agent of the node asked for (the
//! `node_id` parameter, else the gateway's local node in `-dev`) or of the node that holds the
//! allocation.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_proto::v1::client_stats_client::ClientStatsClient;
use caravan_structs::stats::NodeMetaResponse;
use serde_json::Value;

use crate::AppState;
use crate::agents::{AgentTarget, agent_error};
use crate::body::{JsonObject, get_ci, wrong_type};
use crate::error::ApiError;
use crate::query::{Query, UuidPath};
use crate::response::JsonResponse;
use crate::routes::client_allocs::{alloc_target, node_target};

fn client(
    state: &AppState,
    target: &AgentTarget,
) -> Result<ClientStatsClient<tonic::transport::Channel>, ApiError> {
    Ok(ClientStatsClient::new(state.agent(&target.addr)?))
}

pub(super) async fn host_stats(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let target = node_target(&state, &q, None).await?;
    let resp = client(&state, &target)?
        .host_stats(v1::HostStatsRequest {})
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    // Before the agent's first sample Nomad answers `null`.
    let body = if resp.stats_json.is_empty() {
        b"null".to_vec()
    } else {
        resp.stats_json.to_vec()
    };
    Ok(JsonResponse::raw(body).pretty(q.pretty).into_response())
}

pub(super) async fn alloc_stats(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let target = alloc_target(&state, &alloc_id).await?;
    let task = q.params.get("task").cloned().unwrap_or_default();
    let resp = client(&state, &target)?
        .alloc_stats(v1::AllocStatsRequest { alloc_id, task })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    Ok(JsonResponse::raw(resp.usage_json.to_vec())
        .pretty(q.pretty)
        .into_response())
}

fn render_metadata(resp: v1::MetadataResponse, pretty: bool) -> Result<Response, ApiError> {
    let doc = NodeMetaResponse {
        dynamic: resp
            .dynamic_meta
            .into_iter()
            .map(|(k, v)| (k, (!v.unset).then_some(v.value)))
            .collect(),
        meta: resp.meta.into_iter().collect(),
        r#static: resp.static_meta.into_iter().collect(),
    };
    Ok(JsonResponse::value(&doc)?.pretty(pretty).into_response())
}

pub(super) async fn read_metadata(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let target = node_target(&state, &q, None).await?;
    let resp = client(&state, &target)?
        .get_metadata(v1::GetMetadataRequest {})
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    render_metadata(resp, q.pretty)
}

/// The `Meta` object of an update: string values set, `null` unsets.
fn meta_updates(body: &JsonObject) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    let meta = match get_ci(&body.0, "Meta") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("missing required Meta object"));
        }
        Some(Value::Object(m)) => m,
        Some(other) => return Err(wrong_type("Meta", "object", other)),
    };
    if meta.is_empty() {
        return Err(ApiError::bad_request("missing required Meta object"));
    }
    meta.iter()
        .map(|(k, v)| match v {
            Value::Null => Ok((k.clone(), None)),
            Value::String(s) => Ok((k.clone(), Some(s.clone()))),
            other => Err(ApiError::bad_request(format!(
                "Meta[{k:?}] must be a string or null, not {}",
                match other {
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::Array(_) => "an array",
                    _ => "an object",
                }
            ))),
        })
        .collect()
}

pub(super) async fn update_metadata(
    State(state): State<AppState>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let body_node_id = match get_ci(&body.0, "NodeID") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong_type("NodeID", "string", other)),
    };
    let updates = meta_updates(&body)?;
    let target = node_target(&state, &q, body_node_id).await?;
    let meta = updates
        .into_iter()
        .map(|(k, v)| {
            let value = v1::MetaValue {
                unset: v.is_none(),
                value: v.unwrap_or_default(),
            };
            (k, value)
        })
        .collect();
    let resp = client(&state, &target)?
        .update_metadata(v1::UpdateMetadataRequest { meta })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    render_metadata(resp, q.pretty)
}
