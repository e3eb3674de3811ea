//! `/v1/jobs`, `/v1/job/:job_id` and its sub-resources (allocations, evaluations, deployments,
//! summary, versions, evaluate), `/v1/validate/job`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::AppState;
use crate::body::{JsonObject, get_ci, int_field, wrong_type};
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

/// Nomad's JobRegisterResponse / JobDeregisterResponse, query meta included.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct JobWriteBody {
    eval_create_index: u64,
    #[serde(rename = "EvalID")]
    eval_id: String,
    index: u64,
    job_modify_index: u64,
    known_leader: bool,
    last_contact: u64,
    next_token: String,
    #[serde(skip_serializing_if = "Option::is_none", rename = "VolumeEvalID")]
    volume_eval_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_eval_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<String>,
}

pub(super) fn write_response(
    r: v1::JobWriteResponse,
    deregister: bool,
    pretty: bool,
) -> Result<Response, ApiError> {
    let body = JobWriteBody {
        eval_create_index: r.eval_create_index,
        eval_id: r.eval_id,
        index: r.index,
        job_modify_index: r.job_modify_index,
        known_leader: false,
        last_contact: 0,
        next_token: String::new(),
        volume_eval_id: deregister.then(String::new),
        volume_eval_index: deregister.then_some(0),
        warnings: (!deregister).then_some(r.warnings),
    };
    Ok(JsonResponse::value(&body)?
        .index(r.index)
        .pretty(pretty)
        .into_response())
}

/// The `Job` object of a register or validate body.
fn job_of(body: &JsonObject) -> Result<&Map<String, Value>, ApiError> {
    match body.get("Job") {
        None | Some(Value::Null) => Err(ApiError::bad_request("Job must be specified")),
        Some(Value::Object(job)) => Ok(job),
        Some(other) => Err(wrong_type("Job", "api.Job", other)),
    }
}

/// The body's `Submission` (the job's source) as JSON; empty when there is none.
fn submission_of(body: &JsonObject) -> Result<Vec<u8>, ApiError> {
    match body.get("Submission") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v @ Value::Object(_)) => serde_json::to_vec(v)
            .map_err(|e| ApiError::internal(format!("failed to encode submission: {e}"))),
        Some(other) => Err(wrong_type("Submission", "api.JobSubmission", other)),
    }
}

fn encode_job(job: &Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(job).map_err(|e| ApiError::internal(format!("failed to encode job: {e}")))
}

/// A non-empty string field of a JSON object (any other value reads as absent).
fn nonempty_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    get_ci(obj, field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The namespace a registered job lands in, as Nomad chooses it (`namespaceForJob`): the
/// `namespace` query parameter, else the body's `Namespace`, else the job's, else `default`.
fn namespace_for_job<'a>(
    q: &'a Query,
    body: &'a JsonObject,
    job: &'a Map<String, Value>,
) -> &'a str {
    q.params
        .get("namespace")
        .map(String::as_str)
        .filter(|ns| !ns.is_empty())
        .or_else(|| nonempty_str(&body.0, "Namespace"))
        .or_else(|| nonempty_str(job, "Namespace"))
        .unwrap_or("default")
}

/// The job with the namespace it lands in (`namespace_for_job`) set, and the write options of
/// that namespace.
fn in_namespace(
    q: &Query,
    body: &JsonObject,
    job: &Map<String, Value>,
) -> (Map<String, Value>, v1::WriteOptions) {
    let namespace = namespace_for_job(q, body, job).to_owned();
    let mut job = job.clone();
    job.retain(|k, _| !k.eq_ignore_ascii_case("Namespace"));
    job.insert("Namespace".to_owned(), Value::from(namespace.clone()));
    let mut write = q.to_write_proto();
    write.namespace = namespace;
    (job, write)
}

/// Nomad's agent-side check of an evaluation priority override.
fn check_eval_priority(priority: i64) -> Result<(), ApiError> {
    if (1..=100).contains(&priority) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Eval priority must be between 1 and 100 inclusively",
        ))
    }
}

async fn register_with(
    state: AppState,
    q: Query,
    body: JsonObject,
    path_job_id: String,
) -> Result<Response, ApiError> {
    let job = job_of(&body)?;
    // A job without an ID is refused here; an empty ID is left to the validation ("Missing job
    // ID"), as in Nomad, whose agent only checks that the ID is present.
    match get_ci(job, "ID") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("Job ID hasn't been provided"));
        }
        Some(Value::String(_)) => {}
        Some(other) => return Err(wrong_type("Job.ID", "string", other)),
    }
    if get_ci(job, "Type").and_then(Value::as_str) == Some("system")
        && get_ci(job, "TaskGroups")
            .and_then(Value::as_array)
            .is_some_and(|groups| {
                groups
                    .iter()
                    .filter_map(Value::as_object)
                    .any(|tg| get_ci(tg, "Scaling").is_some_and(|s| !s.is_null()))
            })
    {
        return Err(ApiError::bad_request(
            "Task groups with job type system do not support scaling blocks",
        ));
    }
    let job_modify_index = int_field(&body.0, "JobModifyIndex")?.unwrap_or(0);
    if job_modify_index < 0 {
        return Err(ApiError::bad_request("JobModifyIndex must not be negative"));
    }
    // Checked as Nomad checks it; 0 means the job's priority.
    let eval_priority = int_field(&body.0, "EvalPriority")?.unwrap_or(0);
    if eval_priority != 0 {
        check_eval_priority(eval_priority)?;
    }
    let (job, write) = in_namespace(&q, &body, job);
    let resp = state
        .jobs()
        .register_job(v1::RegisterJobRequest {
            job_json: encode_job(&job)?.into(),
            path_job_id,
            enforce_index: body.bool("EnforceIndex")?.unwrap_or(false),
            job_modify_index: job_modify_index as u64,
            preserve_counts: body.bool("PreserveCounts")?.unwrap_or(false),
            write: Some(write),
            eval_priority,
            submission_json: submission_of(&body)?.into(),
        })
        .await?
        .into_inner();
    write_response(resp, false, q.pretty)
}

pub(super) async fn register(
    State(state): State<AppState>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    register_with(state, q, body, String::new()).await
}

pub(super) async fn register_at(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    register_with(state, q, body, job_id).await
}

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let meta = q.bool_param("meta", false).map_err(ApiError::bad_request)?;
    let resp = state
        .jobs()
        .list_jobs(v1::ListJobsRequest {
            query: Some(q.to_proto()),
            meta,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.jobs_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

fn get_request(job_id: String, q: &Query) -> Result<v1::GetJobRequest, ApiError> {
    Ok(v1::GetJobRequest {
        job_id,
        query: Some(q.to_proto()),
        all: q.bool_param("all", false).map_err(ApiError::bad_request)?,
        diffs: q
            .bool_param("diffs", false)
            .map_err(ApiError::bad_request)?,
    })
}

fn job_not_found(meta: Option<v1::QueryMeta>) -> ApiError {
    ApiError::not_found("job not found").with_meta(meta)
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job(get_request(job_id, &q)?)
        .await?
        .into_inner();
    if resp.json.is_empty() {
        return Err(job_not_found(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn summary(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_summary(get_request(job_id, &q)?)
        .await?
        .into_inner();
    if resp.json.is_empty() {
        return Err(job_not_found(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn versions(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_versions(get_request(job_id, &q)?)
        .await?
        .into_inner();
    if !resp.found {
        return Err(ApiError::not_found("job versions not found").with_meta(resp.meta));
    }
    let meta = resp.meta.unwrap_or_default();
    // {"Diffs":null,"Index":…,"KnownLeader":…,"LastContact":…,"NextToken":"","Versions":[…]}
    let diffs = if resp.diffs_json.is_empty() {
        "null".to_owned()
    } else {
        String::from_utf8_lossy(&resp.diffs_json).into_owned()
    };
    let mut body = format!(
        "{{\"Diffs\":{diffs},\"Index\":{},\"KnownLeader\":{},\"LastContact\":{},\"NextToken\":\"\",\"Versions\":[",
        meta.index, meta.known_leader, meta.last_contact_ms
    )
    .into_bytes();
    for (i, v) in resp.versions_json.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(v);
    }
    body.extend_from_slice(b"]}");
    Ok(JsonResponse::raw(body)
        .meta(Some(meta))
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn allocations(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_allocs(get_request(job_id, &q)?)
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn evaluations(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_evals(get_request(job_id, &q)?)
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn deployments(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_deployments(get_request(job_id, &q)?)
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

/// GET /v1/job/:id/deployment: the newest deployment, `null` when there is none.
pub(super) async fn latest_deployment(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .jobs()
        .get_job_deployments(get_request(job_id, &q)?)
        .await?
        .into_inner();
    let body = resp
        .json
        .into_iter()
        .next()
        .map(|b| b.to_vec())
        .unwrap_or_else(|| b"null".to_vec());
    Ok(JsonResponse::raw(body)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn deregister(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let purge = q
        .bool_param("purge", false)
        .map_err(ApiError::bad_request)?;
    // `global` matters for multi-region jobs only; still a bool.
    q.bool_param("global", false)
        .map_err(ApiError::bad_request)?;
    // As in Nomad, 0 (or no value) means "the job's priority"; Nomad ignores a negative value
    // too, we refuse it.
    let eval_priority = match q.params.get("eval_priority").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(0) => 0,
            Ok(p) => {
                check_eval_priority(p)?;
                p
            }
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "Failed to parse value of \"eval_priority\" ({v}) as a int: strconv.Atoi: parsing {v:?}: invalid syntax"
                )));
            }
        },
    };
    let resp = state
        .jobs()
        .deregister_job(v1::DeregisterJobRequest {
            job_id,
            purge,
            eval_priority,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    write_response(resp, true, q.pretty)
}

pub(super) async fn evaluate(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
    body: Option<JsonObject>,
) -> Result<Response, ApiError> {
    // Nomad reads a body only when one is sent; it must then name the job (the Go `api`
    // package sends {"JobID": ..., "EvalOptions": ...}).
    if let Some(body) = &body {
        match body.string("JobID")? {
            None => return Err(ApiError::bad_request("Job ID must be specified")),
            Some(id) if id.is_empty() => {
                return Err(ApiError::bad_request("Job ID must be specified"));
            }
            Some(id) if id != job_id => {
                return Err(ApiError::bad_request("JobID not same as job name"));
            }
            Some(_) => {}
        }
    }
    let force_reschedule = match body.as_ref().and_then(|b| b.get("EvalOptions")) {
        None | Some(Value::Null) => false,
        Some(Value::Object(opts)) => match get_ci(opts, "ForceReschedule") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(wrong_type("EvalOptions.ForceReschedule", "bool", other)),
        },
        Some(other) => return Err(wrong_type("EvalOptions", "api.EvalOptions", other)),
    };
    let resp = state
        .jobs()
        .evaluate_job(v1::EvaluateJobRequest {
            job_id,
            force_reschedule,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    write_response(resp, false, q.pretty)
}

/// Nomad's JobValidateResponse.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ValidateBody {
    driver_config_validated: bool,
    error: String,
    validation_errors: Option<Vec<String>>,
    warnings: String,
}

pub(super) async fn validate(
    State(state): State<AppState>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let job_json = encode_job(job_of(&body)?)?;
    let resp = state
        .jobs()
        .validate_job(v1::ValidateJobRequest {
            job_json: job_json.into(),
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    let body = ValidateBody {
        driver_config_validated: true,
        error: resp.error,
        validation_errors: if resp.validation_errors.is_empty() {
            None
        } else {
            Some(resp.validation_errors)
        },
        warnings: resp.warnings,
    };
    Ok(JsonResponse::value(&body)?.pretty(q.pretty).into_response())
}

/// `PUT|POST /v1/job/:job_id/plan`: what registering the body's job would do.
pub(super) async fn plan(
    State(state): State<AppState>,
    Path(path_job_id): Path<String>,
    q: Query,
    body: JsonObject,
) -> Result<Response, ApiError> {
    let job = job_of(&body)?;
    match get_ci(job, "ID") {
        Some(Value::String(id)) if !id.is_empty() => {
            if *id != path_job_id {
                return Err(ApiError::bad_request("Job ID does not match"));
            }
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(ApiError::bad_request("Job must have a valid ID"));
        }
        Some(other) => return Err(wrong_type("Job.ID", "string", other)),
    }
    let (job, write) = in_namespace(&q, &body, job);
    let resp = state
        .jobs()
        .plan_job(v1::PlanJobRequest {
            job_json: encode_job(&job)?.into(),
            path_job_id,
            diff: body.bool("Diff")?.unwrap_or(false),
            write: Some(write),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::raw(resp.json)
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}

/// `GET /v1/job/:job_id/submission?version=N`: the source that version was registered from.
pub(super) async fn submission(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let version = q
        .params
        .get("version")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_request("Unable to parse job submission version parameter"))?;
    let resp = state
        .jobs()
        .get_job_submission(v1::GetJobSubmissionRequest {
            job_id,
            version,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.json.is_empty() {
        return Err(ApiError::not_found("job source not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
