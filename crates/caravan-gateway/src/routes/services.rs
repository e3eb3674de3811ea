//! The built-in service catalogue: `/v1/services`, `/v1/service/:name` (read, and delete of one
//! registration), `/v1/allocation/:id/services`, `/v1/job/:id/services`, and the check results
//! the allocation's agent keeps (`/v1/client/allocation/:id/checks`, also under
//! `/v1/allocation/`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_proto::v1::client_allocs_client::ClientAllocsClient;

use crate::AppState;
use crate::agents::agent_error;
use crate::error::ApiError;
use crate::query::{Query, UuidPath, validate_uuid};
use crate::response::{JsonResponse, written};
use crate::routes::client_allocs::alloc_and_target;

/// GET `/v1/services`: the services of the namespace (or of every readable one with `*`),
/// grouped. Nomad ignores `filter` and paging here; so does this.
pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let mut query = q.to_proto();
    query.filter.clear();
    query.per_page = 0;
    query.next_token.clear();
    let resp = state
        .services()
        .list_services(v1::ListServicesRequest { query: Some(query) })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

/// GET `/v1/service/:name`: its registrations, with `filter`, `per_page`/`next_token`,
/// `reverse` and `choose=<n>|<key>`.
pub(super) async fn read(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let choose = q.params.get("choose").cloned().unwrap_or_default();
    let resp = state
        .services()
        .get_service(v1::GetServiceRequest {
            service_name: name,
            query: Some(q.to_proto()),
            choose,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

/// `/v1/service/` with no name.
pub(super) async fn missing_name() -> ApiError {
    ApiError::bad_request("missing service name")
}

/// DELETE `/v1/service/:name/` with no ID.
pub(super) async fn missing_id() -> ApiError {
    ApiError::bad_request("missing service id")
}

/// More path segments than name and ID.
pub(super) async fn invalid_uri() -> ApiError {
    ApiError::bad_request("invalid URI")
}

/// DELETE `/v1/service/:name/:id`: by the request's namespace and the ID (the name is not
/// used, as in Nomad). An unknown ID is a 404 and writes nothing.
pub(super) async fn delete(
    State(state): State<AppState>,
    Path((_name, id)): Path<(String, String)>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .services()
        .delete_service(v1::DeleteServiceRequest {
            service_id: id,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    let mut response = written(resp.index);
    // Nomad answers a delete with an empty body.
    *response.body_mut() = axum::body::Body::empty();
    response.headers_mut().remove(http::header::CONTENT_TYPE);
    Ok(response)
}

/// GET `/v1/allocation/:id/services`.
pub(super) async fn alloc_services(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .services()
        .alloc_services(v1::AllocServicesRequest {
            alloc_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    crate::authz::check_object_namespace(&resp.namespace)?;
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

/// GET `/v1/job/:id/services`.
pub(super) async fn job_services(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .services()
        .job_services(v1::JobServicesRequest {
            job_id,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

/// `/v1/client/allocation/:id/checks`: the latest result of each check, from the agent that
/// runs the allocation; `{}` when it has none (Nomad sends `null`).
pub(super) async fn checks(
    State(state): State<AppState>,
    Path(alloc_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    validate_uuid(&alloc_id, "alloc")?;
    let (_, target) = alloc_and_target(&state, &alloc_id).await?;
    let resp = ClientAllocsClient::new(state.agent(&target.addr)?)
        .alloc_checks(v1::AllocChecksRequest { alloc_id })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    let body = if resp.results_json.is_empty() {
        b"{}".to_vec()
    } else {
        resp.results_json.to_vec()
    };
    Ok(JsonResponse::raw(body).pretty(q.pretty).into_response())
}
