//! `/v1/client/allocation/:alloc_id/{signal,restart,gc}` and `/v1/client/gc`: lifecycle
//! requests served by the client agent that holds the allocation (or the `node_id` asked for).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_proto::v1::client_allocs_client::ClientAllocsClient;
use caravan_structs::GenericResponse;
use serde_json::Value;

use crate::AppState;
use crate::agents::{self, AgentTarget, agent_error};
use crate::body::{JsonObject, get_ci, wrong_type};
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::JsonResponse;

/// The agent running an allocation, once the caller may act on it (the route's capability in
/// the allocation's namespace).
pub(super) async fn alloc_target(
    state: &AppState,
    alloc_id: &str,
) -> Result<AgentTarget, ApiError> {
    Ok(alloc_and_target(state, alloc_id).await?.1)
}

/// The allocation and its agent, once the caller may act on it.
pub(super) async fn alloc_and_target(
    state: &AppState,
    alloc_id: &str,
) -> Result<(caravan_structs::Allocation, AgentTarget), ApiError> {
    validate_uuid(alloc_id, "alloc")?;
    let alloc = agents::alloc(state, alloc_id).await?;
    crate::authz::check_object_namespace(&alloc.namespace)?;
    let target = agents::node_agent(state, &alloc.node_id).await?;
    Ok((alloc, target))
}

/// The node a node-scoped request is for: `node_id` (query, else `body_node_id`), else the
/// gateway's local node; a standalone gateway needs one.
pub(super) async fn node_target(
    state: &AppState,
    q: &Query,
    body_node_id: Option<String>,
) -> Result<AgentTarget, ApiError> {
    let given = q
        .params
        .get("node_id")
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            body_node_id
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
        });
    let node_id = match given {
        Some(id) => id,
        None => state
            .config()
            .local_node_id
            .get()
            .cloned()
            .ok_or_else(|| ApiError::bad_request("No local Node and node_id not provided"))?,
    };
    validate_uuid(&node_id, "node")?;
    agents::node_agent(state, &node_id).await
}

fn client(
    state: &AppState,
    target: &AgentTarget,
) -> Result<ClientAllocsClient<tonic::transport::Channel>, ApiError> {
    Ok(ClientAllocsClient::new(state.agent(&target.addr)?))
}

fn string_field(body: &JsonObject, field: &str) -> Result<String, ApiError> {
    match get_ci(&body.0, field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(field, "string", other)),
    }
}

/// `{"Index":0}`, what Nomad answers to signal and restart.
fn index_zero(pretty: bool) -> Result<Response, ApiError> {
    Ok(JsonResponse::value(&GenericResponse::default())?
        .pretty(pretty)
        .into_response())
}

pub(super) async fn signal(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
    body: Option<JsonObject>,
) -> Result<Response, ApiError> {
    let body =
        body.ok_or_else(|| ApiError::bad_request("Failed to decode body: Request body is empty"))?;
    let signal = string_field(&body, "Signal")?;
    let task = string_field(&body, "Task")?;
    if signal.trim().is_empty() {
        return Err(ApiError::bad_request(
            "missing signal: give Signal, e.g. \"SIGHUP\"",
        ));
    }
    let target = alloc_target(&state, &alloc_id).await?;
    client(&state, &target)?
        .signal_alloc(v1::SignalAllocRequest {
            alloc_id,
            task,
            signal,
        })
        .await
        .map_err(|s| agent_error(&target, s))?;
    index_zero(q.pretty)
}

pub(super) async fn restart(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
    body: Option<JsonObject>,
) -> Result<Response, ApiError> {
    let (task, all_tasks) = match &body {
        None => (String::new(), false),
        Some(b) => (
            string_field(b, "TaskName")?,
            match get_ci(&b.0, "AllTasks") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(v)) => *v,
                Some(other) => return Err(wrong_type("AllTasks", "bool", other)),
            },
        ),
    };
    if all_tasks && !task.is_empty() {
        return Err(ApiError::bad_request(
            "task name cannot be set when restarting all tasks",
        ));
    }
    let target = alloc_target(&state, &alloc_id).await?;
    client(&state, &target)?
        .restart_alloc(v1::RestartAllocRequest {
            alloc_id,
            task,
            all_tasks,
        })
        .await
        .map_err(|s| agent_error(&target, s))?;
    index_zero(q.pretty)
}

/// Nomad answers a successful client GC with 200 and an empty body.
fn empty_ok() -> Response {
    http::StatusCode::OK.into_response()
}

/// `{"Index":0}` rather than Nomad's empty body: the Go package's `Allocations.GC` decodes the
/// answer into a struct, and Go's decoder refuses an empty body.
pub(super) async fn gc(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let target = alloc_target(&state, &alloc_id).await?;
    client(&state, &target)?
        .collect_alloc(v1::CollectAllocRequest { alloc_id })
        .await
        .map_err(|s| agent_error(&target, s))?;
    index_zero(q.pretty)
}

pub(super) async fn gc_all(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let target = node_target(&state, &q, None).await?;
    client(&state, &target)?
        .collect_all_allocs(v1::CollectAllAllocsRequest {})
        .await
        .map_err(|s| agent_error(&target, s))?;
    Ok(empty_ok())
}
