//! `/v1/namespaces` and `/v1/namespace/:name` (and `/v1/namespace`, which the Go api writes to).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::Namespace;

use crate::AppState;
use crate::body::GoJson;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::{JsonResponse, written};

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .namespaces()
        .list_namespaces(v1::ListNamespacesRequest {
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    // Only the namespaces the token holds something in (Nomad's AllowNamespace).
    let visible = crate::authz::visible_by_name(resp.json, |acl, name| acl.allow_namespace(name));
    Ok(JsonResponse::array(visible)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn read(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .namespaces()
        .get_namespace(v1::GetNamespaceRequest {
            name,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.namespace_json.is_empty() {
        return Err(ApiError::not_found("Namespace not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.namespace_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

async fn upsert_namespace(
    state: &AppState,
    q: &Query,
    ns: Namespace,
) -> Result<Response, ApiError> {
    if ns.name.is_empty() {
        return Err(ApiError::bad_request("Missing Namespace Name"));
    }
    let namespace_json = serde_json::to_vec(&ns)
        .map_err(|e| ApiError::internal(format!("failed to encode namespace: {e}")))?;
    let resp = state
        .namespaces()
        .upsert_namespace(v1::UpsertNamespaceRequest {
            namespace_json: namespace_json.into(),
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(written(resp.index))
}

/// PUT/POST `/v1/namespace`: named by its body.
pub(super) async fn upsert(
    State(state): State<AppState>,
    q: Query,
    GoJson(ns): GoJson<Namespace>,
) -> Result<Response, ApiError> {
    upsert_namespace(&state, &q, ns).await
}

/// PUT/POST `/v1/namespace/:name`: the body must name the same namespace.
pub(super) async fn upsert_at(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
    GoJson(ns): GoJson<Namespace>,
) -> Result<Response, ApiError> {
    if ns.name != name {
        return Err(ApiError::bad_request(
            "Namespace name does not match request path",
        ));
    }
    upsert_namespace(&state, &q, ns).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .namespaces()
        .delete_namespace(v1::DeleteNamespaceRequest {
            name,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(written(resp.index))
}
