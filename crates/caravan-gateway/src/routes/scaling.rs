//! `/v1/scaling/policies` and `/v1/scaling/policy/:id`: the scaling blocks of the jobs' groups,
//! as the Nomad Autoscaler reads them.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;

use crate::AppState;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let param = |name: &str| q.params.get(name).cloned().unwrap_or_default();
    let resp = state
        .jobs()
        .list_scaling_policies(v1::ListScalingPoliciesRequest {
            query: Some(q.to_proto()),
            job: param("job"),
            r#type: param("type"),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(policy_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_scaling_policy(v1::GetScalingPolicyRequest {
            id: policy_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.json.is_empty() {
        return Err(ApiError::not_found("policy not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
