//! `/v1/search` (ID prefix search) and `/v1/search/fuzzy` (name search), on `POST` and `PUT`.
//!
//! The body carries the search and, as in Nomad, query options: `Namespace` and `Region`
//! apply unless the query string sets them; for fuzzy search `Prefix` too (where the UUID
//! contexts start). Neither endpoint blocks.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::{
    FuzzyMatch, FuzzySearchRequest, FuzzySearchResponse, SearchRequest, SearchResponse,
};

use crate::AppState;
use crate::body::GoJson;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

/// A query parameter that was given a value (Nomad ignores empty ones).
fn param<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The query options of a search: the body's namespace (and region) where the query string
/// has none.
fn options(
    state: &AppState,
    q: &Query,
    body_namespace: &str,
    body_region: &str,
) -> Result<v1::QueryOptions, ApiError> {
    let region = &state.config().region;
    if param(q, "region").is_none() && !body_region.is_empty() && body_region != region.as_str() {
        return Err(ApiError::bad_request(format!(
            "No path to region {body_region:?}"
        )));
    }
    let mut query = q.to_proto();
    if param(q, "namespace").is_none() && !body_namespace.is_empty() {
        query.namespace = body_namespace.to_owned();
    }
    // Searches answer at once: Nomad runs them as blocking queries without an index.
    query.min_index = 0;
    query.max_wait_ms = 0;
    Ok(query)
}

fn nanos(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

fn sorted(truncations: HashMap<String, bool>) -> BTreeMap<String, bool> {
    truncations.into_iter().collect()
}

/// Whether the caller may see the object `id` of search context `ctx`. Namespaced contexts are
/// filtered by the server (the request's namespaces); nodes need `node:read` and node pools a
/// pool rule, as Nomad's search skips what the token cannot read.
fn visible(ctx: &str, id: &str) -> bool {
    let Some(authz) = crate::authz::current() else {
        return false;
    };
    let resolved = authz.resolved();
    if resolved.is_management() {
        return true;
    }
    match ctx {
        "nodes" => resolved.acl.allow_node_read(),
        "node_pools" => resolved.acl.allow_node_pool_operation(id, "read"),
        _ => true,
    }
}

pub(super) async fn prefix(
    State(state): State<AppState>,
    q: Query,
    GoJson(body): GoJson<SearchRequest>,
) -> Result<Response, ApiError> {
    let query = options(&state, &q, &body.namespace, &body.region)?;
    let resp = state
        .search()
        .prefix_search(v1::PrefixSearchRequest {
            prefix: body.prefix,
            context: body.context,
            query: Some(query),
        })
        .await?
        .into_inner();
    let meta = resp.meta.unwrap_or_default();
    let out = SearchResponse {
        index: meta.index,
        known_leader: meta.known_leader,
        last_contact: nanos(meta.last_contact_ms),
        // No match is Nomad's nil slice: `null`.
        matches: resp
            .matches
            .into_iter()
            .map(|m| {
                let ids: Vec<String> = m
                    .ids
                    .into_iter()
                    .filter(|id| visible(&m.context, id))
                    .collect();
                (m.context, (!ids.is_empty()).then_some(ids))
            })
            .collect(),
        next_token: String::new(),
        truncations: sorted(resp.truncations),
    };
    Ok(JsonResponse::value(&out)?
        .meta(Some(meta))
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn fuzzy(
    State(state): State<AppState>,
    q: Query,
    GoJson(body): GoJson<FuzzySearchRequest>,
) -> Result<Response, ApiError> {
    let mut query = options(&state, &q, &body.namespace, &body.region)?;
    if param(&q, "prefix").is_none() {
        query.prefix = body.prefix;
    }
    let resp = state
        .search()
        .fuzzy_search(v1::FuzzySearchRequest {
            text: body.text,
            context: body.context,
            query: Some(query),
        })
        .await?
        .into_inner();
    let meta = resp.meta.unwrap_or_default();
    let out = FuzzySearchResponse {
        index: meta.index,
        known_leader: meta.known_leader,
        last_contact: nanos(meta.last_contact_ms),
        matches: resp
            .matches
            .into_iter()
            .map(|m| {
                let list = m
                    .matches
                    .into_iter()
                    .filter(|f| visible(&m.context, &f.id))
                    .map(|f| FuzzyMatch {
                        id: f.id,
                        scope: f.scope,
                    })
                    .collect();
                (m.context, list)
            })
            .collect(),
        next_token: String::new(),
        truncations: sorted(resp.truncations),
    };
    Ok(JsonResponse::value(&out)?
        .meta(Some(meta))
        .pretty(q.pretty)
        .into_response())
}
