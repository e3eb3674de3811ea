//! `/v1/job/:job_id/periodic/force`: launches a child of a periodic job now (Nomad's
//! `periodicForceRequest`); the answer is Nomad's `PeriodicForceResponse`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

/// Nomad's PeriodicForceResponse.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ForceResponseBody {
    eval_create_index: u64,
    #[serde(rename = "EvalID")]
    eval_id: String,
    index: u64,
}

pub(super) async fn force(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .periodic_force(v1::PeriodicForceRequest {
            job_id,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    let out = ForceResponseBody {
        eval_create_index: resp.eval_create_index,
        eval_id: resp.eval_id,
        index: resp.index,
    };
    Ok(JsonResponse::value(&out)?
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}
