//! `/v1/acl/*`: bootstrap, policies, tokens (with `self` and one-time tokens) and roles. The
//! server decides what the caller may do; these handlers carry bodies and answers in Nomad's
//! shapes (ACL.md §2–§4).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::{AclPolicy, AclRole, AclToken};
use serde_json::{Value, json};

use crate::AppState;
use crate::body::{GoJson, JsonObject};
use crate::error::ApiError;
use crate::query::Query;
use crate::response::{JsonResponse, written};

fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("failed to encode {what}: {e}")))
}

/// One object, or 404 with `missing` when the server found none.
fn one(resp: v1::AclDocResponse, q: &Query, missing: &str) -> Result<Response, ApiError> {
    if resp.json.is_empty() {
        return Err(ApiError::not_found(missing).with_meta(resp.meta));
    }
    Ok(JsonResponse::raw(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response())
}

fn many(resp: v1::AclDocsResponse, q: &Query) -> Response {
    JsonResponse::array(resp.json)
        .meta(resp.meta)
        .pretty(q.pretty)
        .into_response()
}

fn get_request(key: String, by_name: bool, q: &Query) -> v1::AclGetRequest {
    v1::AclGetRequest {
        key,
        by_name,
        query: Some(q.to_proto()),
    }
}

fn list_request(q: &Query) -> v1::AclListRequest {
    v1::AclListRequest {
        query: Some(q.to_proto()),
    }
}

/// PUT/POST `/v1/acl/bootstrap`: the body is read only when sent; only `BootstrapSecret`
/// counts.
pub(super) async fn bootstrap(
    State(state): State<AppState>,
    q: Query,
    body: Option<JsonObject>,
) -> Result<Response, ApiError> {
    let secret = match body.as_ref().and_then(|JsonObject(m)| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("BootstrapSecret"))
            .map(|(_, v)| v)
    }) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "failed to decode request body: BootstrapSecret: expected a string, got {other}"
            )));
        }
    };
    let resp = state
        .acl()
        .bootstrap(v1::AclBootstrapRequest {
            bootstrap_secret: secret,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    one(resp, &q, "ACL token not found")
}

pub(super) async fn list_policies(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .list_policies(list_request(&q))
        .await?
        .into_inner();
    Ok(many(resp, &q))
}

pub(super) async fn read_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .get_policy(get_request(name, false, &q))
        .await?
        .into_inner();
    one(resp, &q, "ACL policy not found")
}

pub(super) async fn upsert_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
    GoJson(policy): GoJson<AclPolicy>,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .upsert_policy(v1::AclUpsertRequest {
            json: encode(&policy, "policy")?.into(),
            path_key: name,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    Ok(written(resp.index))
}

pub(super) async fn delete_policy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .delete_policy(v1::AclDeleteRequest {
            key: name,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    Ok(written(resp.index))
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .list_tokens(list_request(&q))
        .await?
        .into_inner();
    Ok(many(resp, &q))
}

pub(super) async fn read_token(
    State(state): State<AppState>,
    Path(accessor): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .get_token(get_request(accessor, false, &q))
        .await?
        .into_inner();
    one(resp, &q, "ACL token not found")
}

pub(super) async fn token_self(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .get_token_self(get_request(String::new(), false, &q))
        .await?
        .into_inner();
    one(resp, &q, "ACL token not found")
}

async fn upsert_token(
    state: &AppState,
    q: &Query,
    token: AclToken,
    path_key: String,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .upsert_token(v1::AclUpsertRequest {
            json: encode(&token, "token")?.into(),
            path_key,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    one(resp, q, "ACL token not found")
}

/// PUT/POST `/v1/acl/token`: creates a token.
pub(super) async fn create_token(
    State(state): State<AppState>,
    q: Query,
    GoJson(token): GoJson<AclToken>,
) -> Result<Response, ApiError> {
    upsert_token(&state, &q, token, String::new()).await
}

/// PUT/POST `/v1/acl/token/:accessor`: updates it (the body must name it).
pub(super) async fn update_token(
    State(state): State<AppState>,
    Path(accessor): Path<String>,
    q: Query,
    GoJson(token): GoJson<AclToken>,
) -> Result<Response, ApiError> {
    upsert_token(&state, &q, token, accessor).await
}

pub(super) async fn delete_token(
    State(state): State<AppState>,
    Path(accessor): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .delete_token(v1::AclDeleteRequest {
            key: accessor,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    Ok(written(resp.index))
}

/// PUT/POST `/v1/acl/token/onetime`: `{"OneTimeToken": {...}, "Index": N}`.
pub(super) async fn create_one_time_token(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .create_one_time_token(v1::AclOneTimeRequest {
            one_time_secret: String::new(),
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    wrapped("OneTimeToken", resp, &q)
}

/// PUT/POST `/v1/acl/token/onetime/exchange` with `{"OneTimeSecretID"}`: `{"Token", "Index"}`.
pub(super) async fn exchange_one_time_token(
    State(state): State<AppState>,
    q: Query,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let secret = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("OneTimeSecretID"))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let resp = state
        .acl()
        .exchange_one_time_token(v1::AclOneTimeRequest {
            one_time_secret: secret,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    wrapped("Token", resp, &q)
}

/// `{"<key>": <object>, "Index": N}`.
fn wrapped(key: &str, resp: v1::AclDocResponse, q: &Query) -> Result<Response, ApiError> {
    let object: Value = serde_json::from_slice(&resp.json)
        .map_err(|e| ApiError::internal(format!("failed to decode {key}: {e}")))?;
    let index = resp.meta.as_ref().map_or(0, |m| m.index);
    Ok(
        JsonResponse::value(&json!({ key: object, "Index": index }))?
            .meta(resp.meta)
            .pretty(q.pretty)
            .into_response(),
    )
}

pub(super) async fn list_roles(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state.acl().list_roles(list_request(&q)).await?.into_inner();
    Ok(many(resp, &q))
}

pub(super) async fn read_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .get_role(get_request(id, false, &q))
        .await?
        .into_inner();
    one(resp, &q, "ACL role not found")
}

pub(super) async fn read_role_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .get_role(get_request(name, true, &q))
        .await?
        .into_inner();
    one(resp, &q, "ACL role not found")
}

async fn upsert_role(
    state: &AppState,
    q: &Query,
    role: AclRole,
    path_key: String,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .upsert_role(v1::AclUpsertRequest {
            json: encode(&role, "role")?.into(),
            path_key,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    one(resp, q, "ACL role not found")
}

/// PUT/POST `/v1/acl/role`: creates a role.
pub(super) async fn create_role(
    State(state): State<AppState>,
    q: Query,
    GoJson(role): GoJson<AclRole>,
) -> Result<Response, ApiError> {
    upsert_role(&state, &q, role, String::new()).await
}

/// PUT/POST `/v1/acl/role/:id`: updates it (the body must name it).
pub(super) async fn update_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Query,
    GoJson(role): GoJson<AclRole>,
) -> Result<Response, ApiError> {
    upsert_role(&state, &q, role, id).await
}

pub(super) async fn delete_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .acl()
        .delete_role(v1::AclDeleteRequest {
            key: id,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    state.authorizer().forget_all();
    Ok(written(resp.index))
}
