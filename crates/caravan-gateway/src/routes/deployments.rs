//! `/v1/deployments`, `/v1/deployment/:deployment_id` and its allocations (reads only; the
//! deployment actions come with the rolling-update engine).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;

use crate::AppState;
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::JsonResponse;

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let query = q.to_proto_uuid_prefix("deployment")?;
    let resp = state
        .deployments()
        .list_deployments(v1::ListDeploymentsRequest { query: Some(query) })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(UuidPath(deployment_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&deployment_id, "deployment")?;
    let resp = state
        .deployments()
        .get_deployment(v1::GetDeploymentRequest {
            deployment_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.deployment_json.is_empty() {
        return Err(ApiError::not_found("deployment not found").with_meta(resp.meta));
    }
    // Nomad checks read-job in the request's namespace (the layer did) and in the
    // deployment's own.
    crate::authz::check_also(&resp.namespace, "read-job")?;
    Ok(JsonResponse::raw(resp.deployment_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn allocations(
    State(state): State<AppState>,
    Path(UuidPath(deployment_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&deployment_id, "deployment")?;
    let resp = state
        .deployments()
        .get_deployment_allocs(v1::GetDeploymentRequest {
            deployment_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
