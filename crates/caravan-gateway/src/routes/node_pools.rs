//! `/v1/node/pools` and `/v1/node/pool/:name` with its `nodes` and `jobs`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::NodePool;

use crate::AppState;
use crate::body::GoJson;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::{JsonResponse, written};

/// These lists take no `prefix`: it would be ambiguous between the pool and what it holds.
fn refuse_prefix(q: &Query) -> Result<(), ApiError> {
    if q.prefix.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request("prefix argument not allowed"))
    }
}

pub(super) async fn list(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .node_pools()
        .list_node_pools(v1::ListNodePoolsRequest {
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    // Only the pools the token may read (Nomad filters the list the same way).
    let visible = crate::authz::visible_by_name(resp.json, |acl, name| {
        acl.allow_node_pool_operation(name, "read")
    });
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
        .node_pools()
        .get_node_pool(v1::GetNodePoolRequest {
            name,
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    if resp.pool_json.is_empty() {
        return Err(ApiError::not_found("node pool not found").with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.pool_json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

async fn upsert_pool(state: &AppState, q: &Query, pool: NodePool) -> Result<Response, ApiError> {
    let pool_json = serde_json::to_vec(&pool)
        .map_err(|e| ApiError::internal(format!("failed to encode node pool: {e}")))?;
    let resp = state
        .node_pools()
        .upsert_node_pool(v1::UpsertNodePoolRequest {
            pool_json: pool_json.into(),
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(written(resp.index))
}

/// PUT/POST `/v1/node/pools`: the pool is named by its body.
pub(super) async fn upsert(
    State(state): State<AppState>,
    q: Query,
    GoJson(pool): GoJson<NodePool>,
) -> Result<Response, ApiError> {
    upsert_pool(&state, &q, pool).await
}

/// PUT/POST `/v1/node/pool/:name`: the body must name the same pool.
pub(super) async fn upsert_at(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
    GoJson(pool): GoJson<NodePool>,
) -> Result<Response, ApiError> {
    if pool.name != name {
        return Err(ApiError::bad_request(
            "Node pool name does not match request path",
        ));
    }
    upsert_pool(&state, &q, pool).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .node_pools()
        .delete_node_pool(v1::DeleteNodePoolRequest {
            name,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(written(resp.index))
}

pub(super) async fn nodes(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let fields = |field| {
        q.bool_param(field, false)
            .map_err(|e| ApiError::bad_request(format!("Failed to parse node list fields: {e}")))
    };
    let resources = fields("resources")?;
    let os = fields("os")?;
    refuse_prefix(&q)?;
    let resp = state
        .node_pools()
        .get_node_pool_nodes(v1::GetNodePoolNodesRequest {
            name,
            query: Some(q.to_proto()),
            resources,
            os,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn jobs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    refuse_prefix(&q)?;
    let meta = q.bool_param("meta", false).map_err(ApiError::bad_request)?;
    let resp = state
        .node_pools()
        .get_node_pool_jobs(v1::GetNodePoolJobsRequest {
            name,
            query: Some(q.to_proto()),
            meta,
        })
        .await?
        .into_inner();
    Ok(JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}
