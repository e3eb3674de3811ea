//! `/v1/status/leader`, `/v1/status/peers`, `/v1/regions`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;

use crate::AppState;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

pub(super) async fn leader(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .status()
        .leader(v1::LeaderRequest {})
        .await?
        .into_inner();
    Ok(JsonResponse::value(&resp.leader_addr)?
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn peers(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .status()
        .peers(v1::PeersRequest {})
        .await?
        .into_inner();
    Ok(JsonResponse::value(&resp.peers)?
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn regions(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .status()
        .regions(v1::RegionsRequest {})
        .await?
        .into_inner();
    Ok(JsonResponse::value(&resp.regions)?
        .pretty(q.pretty)
        .into_response())
}
