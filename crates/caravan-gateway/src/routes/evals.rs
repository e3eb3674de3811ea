//! `/v1/evaluations`, `/v1/evaluation/:eval_id`, `/v1/evaluation/:eval_id/allocations`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;

use crate::AppState;
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::JsonResponse;

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let query = q.to_proto_uuid_prefix("eval")?;
    let param = |name: &str| q.params.get(name).cloned().unwrap_or_default();
    let resp = state
        .evals()
        .list_evals(v1::ListEvalsRequest {
            query: Some(query),
            job_id: param("job"),
            status: param("status"),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.evals_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(UuidPath(eval_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&eval_id, "eval")?;
    let related = q
        .bool_param("related", false)
        .map_err(ApiError::bad_request)?;
    let resp = state
        .evals()
        .get_eval(v1::GetEvalRequest {
            eval_id,
            query: Some(q.to_proto()),
            related,
        })
        .await?
        .into_inner();
    if resp.eval_json.is_empty() {
        return Err(ApiError::not_found("eval not found").with_meta(resp.meta));
    }
    // Nomad checks read-job in the request's namespace (the layer did) and in the
    // evaluation's own.
    crate::authz::check_also(&resp.namespace, "read-job")?;
    Ok(JsonResponse::raw(resp.eval_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn allocations(
    State(state): State<AppState>,
    Path(UuidPath(eval_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&eval_id, "eval")?;
    let resp = state
        .evals()
        .get_eval_allocs(v1::GetEvalRequest {
            eval_id,
            query: Some(q.to_proto()),
            related: false,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.allocs_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
