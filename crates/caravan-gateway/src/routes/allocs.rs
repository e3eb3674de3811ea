//! `/v1/allocations`, `/v1/allocation/:alloc_id` and `/v1/allocation/:alloc_id/stop`
//! (NOMAD-BEHAVIOR 1.1–1.3).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::AllocStopResponse;

use crate::AppState;
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::JsonResponse;

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let query = q.to_proto_uuid_prefix("alloc")?;
    // Nomad answers 500 for a bad bool here; a 400 says better whose mistake it is.
    let resources = q
        .bool_param("resources", false)
        .map_err(ApiError::bad_request)?;
    let task_states = q
        .bool_param("task_states", true)
        .map_err(ApiError::bad_request)?;
    let resp = state
        .allocs()
        .list_allocs(v1::ListAllocsRequest {
            query: Some(query),
            resources,
            task_states,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.allocs_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&alloc_id, "alloc")?;
    let resp = state
        .allocs()
        .get_alloc(v1::GetAllocRequest {
            alloc_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.alloc_json.is_empty() {
        return Err(ApiError::not_found("alloc not found").with_meta(resp.meta));
    }
    crate::authz::check_object_namespace(&resp.namespace)?;
    Ok(JsonResponse::raw(resp.alloc_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn stop(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&alloc_id, "alloc")?;
    let no_shutdown_delay = q
        .bool_param("no_shutdown_delay", false)
        .map_err(ApiError::bad_request)?;
    let reschedule = q
        .bool_param("reschedule", false)
        .map_err(ApiError::bad_request)?;
    let found = state
        .allocs()
        .get_alloc(v1::GetAllocRequest {
            alloc_id: alloc_id.clone(),
            query: None,
        })
        .await?
        .into_inner();
    if found.alloc_json.is_empty() {
        return Err(ApiError::not_found("allocation not found"));
    }
    crate::authz::check_object_namespace(&found.namespace)?;
    let resp = state
        .allocs()
        .stop_alloc(v1::StopAllocRequest {
            alloc_id,
            no_shutdown_delay,
            reschedule,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    let body = AllocStopResponse {
        eval_id: resp.eval_id,
        index: resp.index,
    };
    Ok(JsonResponse::value(&body)?
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}
