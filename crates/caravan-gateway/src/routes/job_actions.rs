//! `/v1/job/:job_id/revert`, `/stable`, `/dispatch` and `/scale`: the job writes beside
//! registration. Bodies are Nomad's `JobRevertRequest`, `JobStabilityRequest`,
//! `JobDispatchRequest` and `ScalingRequest`,
//! decoded as Go decodes them.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use caravan_proto::v1;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::body::GoJson;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(super) struct RevertBody {
    #[serde(rename = "JobID")]
    job_id: String,
    job_version: u64,
    enforce_prior_version: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(super) struct StableBody {
    #[serde(rename = "JobID")]
    job_id: String,
    job_version: u64,
    stable: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(super) struct DispatchBody {
    #[serde(rename = "JobID")]
    job_id: String,
    /// Base64, as Go encodes `[]byte`.
    payload: String,
    meta: Option<BTreeMap<String, String>>,
    id_prefix_template: String,
    /// Nomad reads it from the query (`idempotency_token`); the Go package's write options
    /// put it there, python-nomad puts it in the body as `idempotency_token`.
    idempotency_token: String,
    #[serde(rename = "idempotency_token")]
    idempotency_token_snake: String,
}

/// The body's `JobID` must be the path's (Nomad's agent checks).
fn check_job_id(body_id: &str, path_id: &str) -> Result<(), ApiError> {
    if body_id.is_empty() {
        return Err(ApiError::bad_request("JobID must be specified"));
    }
    if body_id != path_id {
        return Err(ApiError::bad_request("Job ID does not match"));
    }
    Ok(())
}

pub(super) async fn revert(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    GoJson(body): GoJson<RevertBody>,
) -> Result<Response, ApiError> {
    check_job_id(&body.job_id, &job_id)?;
    let resp = state
        .jobs()
        .revert_job(v1::RevertJobRequest {
            job_id,
            job_version: body.job_version,
            enforce_prior_version: body.enforce_prior_version,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    super::jobs::write_response(resp, false, q.pretty)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IndexBody {
    index: u64,
}

pub(super) async fn stable(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    GoJson(body): GoJson<StableBody>,
) -> Result<Response, ApiError> {
    check_job_id(&body.job_id, &job_id)?;
    let resp = state
        .jobs()
        .set_job_stability(v1::SetJobStabilityRequest {
            job_id,
            job_version: body.job_version,
            stable: body.stable,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::value(&IndexBody { index: resp.index })?
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}

/// Nomad's JobDispatchResponse.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DispatchResponseBody {
    #[serde(rename = "DispatchedJobID")]
    dispatched_job_id: String,
    eval_create_index: u64,
    #[serde(rename = "EvalID")]
    eval_id: String,
    index: u64,
    job_create_index: u64,
}

pub(super) async fn dispatch(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    GoJson(body): GoJson<DispatchBody>,
) -> Result<Response, ApiError> {
    if !body.job_id.is_empty() && body.job_id != job_id {
        return Err(ApiError::bad_request("Job ID does not match"));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(body.payload.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("Payload must be base64-encoded bytes: {e}")))?;
    let mut write = q.to_write_proto();
    let token = [
        std::mem::take(&mut write.idempotency_token),
        body.idempotency_token,
        body.idempotency_token_snake,
    ]
    .into_iter()
    .find(|t| !t.is_empty())
    .unwrap_or_default();
    let meta: HashMap<String, String> = body.meta.unwrap_or_default().into_iter().collect();
    let resp = state
        .jobs()
        .dispatch_job(v1::DispatchJobRequest {
            job_id,
            payload: payload.into(),
            meta,
            idempotency_token: token,
            id_prefix_template: body.id_prefix_template,
            write: Some(write),
        })
        .await?
        .into_inner();
    let out = DispatchResponseBody {
        dispatched_job_id: resp.dispatched_job_id,
        eval_create_index: resp.eval_create_index,
        eval_id: resp.eval_id,
        index: resp.index,
        job_create_index: resp.job_create_index,
    };
    Ok(JsonResponse::value(&out)?
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}

/// Nomad's `ScalingRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(super) struct ScaleBody {
    count: Option<i64>,
    target: Option<BTreeMap<String, String>>,
    message: String,
    error: bool,
    meta: Option<serde_json::Map<String, serde_json::Value>>,
    enforce_index: bool,
    job_modify_index: u64,
}

pub(super) async fn scale(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    GoJson(body): GoJson<ScaleBody>,
) -> Result<Response, ApiError> {
    let target = body.target.unwrap_or_default();
    if target
        .get("Job")
        .is_some_and(|j| !j.is_empty() && *j != job_id)
    {
        return Err(ApiError::bad_request("job ID in payload did not match URL"));
    }
    let write = q.to_write_proto();
    if target.get("Namespace").is_some_and(|ns| {
        !ns.is_empty() && *ns != write.namespace && !(write.namespace.is_empty() && ns == "default")
    }) {
        return Err(ApiError::bad_request(
            "namespace in payload did not match header",
        ));
    }
    let group = target.get("Group").cloned().unwrap_or_default();
    if group.is_empty() {
        return Err(ApiError::bad_request(
            "missing task group name for scaling action",
        ));
    }
    if let Some(count) = body.count {
        if count < 0 {
            return Err(ApiError::bad_request(
                "scaling action count can't be negative",
            ));
        }
        if body.error {
            return Err(ApiError::bad_request(
                "scaling action should not contain count if error is true",
            ));
        }
        if i32::try_from(count).is_err() {
            return Err(ApiError::bad_request(format!(
                "new scaling count is too large for TaskGroup.Count (int): {count}"
            )));
        }
    }
    let meta_json = match body.meta {
        Some(meta) => serde_json::to_vec(&meta)
            .map_err(|e| ApiError::internal(format!("failed to encode meta: {e}")))?,
        None => Vec::new(),
    };
    let resp = state
        .jobs()
        .scale_job(v1::ScaleJobRequest {
            job_id,
            group,
            count: body.count,
            message: body.message,
            error: body.error,
            meta_json: meta_json.into(),
            enforce_index: body.enforce_index,
            job_modify_index: body.job_modify_index,
            write: Some(write),
        })
        .await?
        .into_inner();
    super::jobs::write_response(resp, false, q.pretty)
}

pub(super) async fn scale_status(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_scale_status(v1::GetJobRequest {
            job_id,
            query: Some(q.to_proto()),
            all: false,
            diffs: false,
        })
        .await?
        .into_inner();
    if resp.json.is_empty() {
        return Err(ApiError::not_found("job not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
