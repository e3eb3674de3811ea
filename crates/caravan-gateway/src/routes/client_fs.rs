//! `/v1/client/fs/{ls,stat,cat,readat,stream,logs}/:alloc_id`: the files and logs of an
//! allocation, served by the agent that holds it. Listings and stats are JSON; cat and readat
//! are the raw bytes (never sniffed into HTML by a browser); stream and logs are Nomad's
//! StreamFrame objects back to back (or raw text with `plain=true` on logs), streamed with
//! back-pressure from the agent and unbuffered by proxies.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use caravan_proto::v1;
use caravan_proto::v1::client_fs_client::ClientFsClient;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};

use super::client_allocs::{alloc_and_target, alloc_target};
use crate::AppState;
use crate::agents::{AgentTarget, agent_error};
use crate::error::ApiError;
use crate::query::{Query, UuidPath, parse_go_bool};
use crate::response::JsonResponse;

fn client(
    state: &AppState,
    target: &AgentTarget,
) -> Result<ClientFsClient<tonic::transport::Channel>, ApiError> {
    Ok(ClientFsClient::new(state.agent(&target.addr)?))
}

fn param<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.params.get(name).map(String::as_str)
}

fn required_path(q: &Query) -> Result<String, ApiError> {
    match param(q, "path") {
        Some(p) if !p.is_empty() => Ok(p.to_owned()),
        _ => Err(ApiError::bad_request("must provide a file name")),
    }
}

fn int_param(q: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    match param(q, name) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("error parsing {name}: {v:?} is not an integer"))
        }),
    }
}

fn offset_param(q: &Query) -> Result<i64, ApiError> {
    let offset = int_param(q, "offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request(format!(
            "error parsing offset: {offset} is negative"
        )));
    }
    Ok(offset)
}

fn bool_param(q: &Query, name: &str, default: bool) -> Result<bool, ApiError> {
    match param(q, name) {
        None | Some("") => Ok(default),
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "failed to parse {name} field to boolean: {v:?} is not true or false"
            ))
        }),
    }
}

/// `origin`: `start` (default) or `end`; true for end.
fn origin_end(q: &Query) -> Result<bool, ApiError> {
    match param(q, "origin") {
        None | Some("") | Some("start") => Ok(false),
        Some("end") => Ok(true),
        Some(_) => Err(ApiError::bad_request("origin must be start or end")),
    }
}

fn file_json(f: &v1::FileInfo, with_type: bool) -> Value {
    let mut m = Map::new();
    if with_type {
        m.insert("ContentType".into(), f.content_type.clone().into());
    }
    m.insert("FileMode".into(), f.file_mode.clone().into());
    m.insert("IsDir".into(), f.is_dir.into());
    m.insert("ModTime".into(), f.mod_time.clone().into());
    m.insert("Name".into(), f.name.clone().into());
    m.insert("Size".into(), f.size.into());
    Value::Object(m)
}

pub(super) async fn ls(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let path = param(&q, "path")
        .filter(|p| !p.is_empty())
        .unwrap_or("/")
        .to_owned();
    let target = alloc_target(&state, &alloc_id).await?;
    let resp = client(&state, &target)?
        .list_files(v1::FsPathRequest { alloc_id, path })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    let files: Vec<Value> = resp.files.iter().map(|f| file_json(f, false)).collect();
    Ok(JsonResponse::value(&files)?
        .pretty(q.pretty)
        .into_response())
}

pub(super) async fn stat(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let path = required_path(&q)?;
    let target = alloc_target(&state, &alloc_id).await?;
    let resp = client(&state, &target)?
        .stat_file(v1::FsPathRequest { alloc_id, path })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    let file = resp
        .file
        .ok_or_else(|| ApiError::internal("the agent answered no file"))?;
    Ok(JsonResponse::value(&file_json(&file, true))?
        .pretty(q.pretty)
        .into_response())
}

/// Headers of untrusted file content: no sniffing, no scripts (Nomad's noxssrw).
pub(super) fn untrusted(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_XSS_PROTECTION,
        HeaderValue::from_static("1; mode=block"),
    );
}

/// Streamed responses: reverse proxies must pass them through as they come.
pub(super) fn streaming(resp: &mut Response, content_type: &'static str) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("X-Accel-Buffering", HeaderValue::from_static("no"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

async fn read(
    state: &AppState,
    alloc_id: &str,
    path: String,
    offset: i64,
    limit: i64,
) -> Result<Response, ApiError> {
    let target = alloc_target(state, alloc_id).await?;
    let mut stream = client(state, &target)?
        .read_file(v1::ReadFileRequest {
            alloc_id: alloc_id.to_owned(),
            path,
            offset,
            limit,
        })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    // The first chunk carries the content type; errors before it are plain HTTP errors.
    let first = stream
        .message()
        .await
        .map_err(|s| agent_error(&target, s))?;
    let content_type = first
        .as_ref()
        .map(|c| c.content_type.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "text/plain; charset=utf-8".to_owned());
    let head = futures::stream::iter(first.map(|c| Ok::<Bytes, std::io::Error>(c.data)));
    let rest = stream
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(|r| {
            futures::future::ready(r.ok().map(|c| Ok::<Bytes, std::io::Error>(c.data)))
        });
    let mut resp = Response::new(Body::from_stream(head.chain(rest)));
    let ct = HeaderValue::from_str(&content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    resp.headers_mut()
        .insert("X-Accel-Buffering", HeaderValue::from_static("no"));
    untrusted(&mut resp);
    Ok(resp)
}

pub(super) async fn cat(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let path = required_path(&q)?;
    read(&state, &alloc_id, path, 0, 0).await
}

pub(super) async fn readat(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let path = required_path(&q)?;
    let offset = match int_param(&q, "offset")? {
        Some(o) if o >= 0 => o,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "error parsing offset: {o} is negative"
            )));
        }
        None => return Err(ApiError::bad_request("must provide offset")),
    };
    let limit = match int_param(&q, "limit")? {
        Some(l) if l >= 0 => l,
        Some(l) => {
            return Err(ApiError::bad_request(format!(
                "error parsing limit: {l} is negative"
            )));
        }
        None => return Err(ApiError::bad_request("must provide limit")),
    };
    read(&state, &alloc_id, path, offset, limit).await
}

/// A frame as Nomad's JSON (keys sorted, empty ones left out; a heartbeat is `{}`).
pub(super) fn frame_json(f: &v1::StreamFrame) -> Bytes {
    let mut m = Map::new();
    if !f.data.is_empty() {
        m.insert(
            "Data".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&f.data)
                .into(),
        );
    }
    if !f.file.is_empty() {
        m.insert("File".into(), f.file.clone().into());
    }
    if !f.file_event.is_empty() {
        m.insert("FileEvent".into(), f.file_event.clone().into());
    }
    if f.offset != 0 {
        m.insert("Offset".into(), f.offset.into());
    }
    Bytes::from(Value::Object(m).to_string())
}

/// The frames of an agent stream as a streamed response: JSON frames, or with `plain` only the
/// data, as untrusted text. An error after the first byte can only end the stream.
/// The frames as the HTTP answer; it ends early once `revoked` resolves (the caller's token
/// lost the right to read them).
fn frames_response(
    stream: tonic::Streaming<v1::StreamFrame>,
    plain: bool,
    revoked: impl std::future::Future<Output = ()> + Send + 'static,
) -> Response {
    let bytes = stream
        .take_until(revoked)
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(move |r| {
            let out = match r {
                Ok(f) if plain => (!f.data.is_empty()).then(|| f.data.clone()),
                Ok(f) => Some(frame_json(&f)),
                Err(_) => None,
            };
            futures::future::ready(out.map(Ok::<Bytes, std::io::Error>))
        });
    let mut resp = Response::new(Body::from_stream(bytes));
    if plain {
        streaming(&mut resp, "text/plain");
        untrusted(&mut resp);
    } else {
        streaming(&mut resp, "application/json");
    }
    resp
}

pub(super) async fn stream(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    let path = required_path(&q)?;
    let follow = bool_param(&q, "follow", true)?;
    let offset = offset_param(&q)?;
    let origin_end = origin_end(&q)?;
    let (alloc, target) = alloc_and_target(&state, &alloc_id).await?;
    let revoked = crate::authz::revocation(&state, &alloc.namespace);
    let frames = client(&state, &target)?
        .stream_file(v1::StreamFileRequest {
            alloc_id,
            path,
            offset,
            origin_end,
            follow,
        })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    Ok(frames_response(frames, false, revoked))
}

pub(super) async fn logs(
    State(state): State<AppState>,
    Path(UuidPath(alloc_id)): Path<UuidPath>,
    q: Query,
) -> Result<Response, ApiError> {
    // Nomad's order: task, then type, then the rest; all before looking the allocation up.
    let task = match param(&q, "task") {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => return Err(ApiError::bad_request("must provide task name")),
    };
    let log_type = match param(&q, "type") {
        Some(t @ ("stdout" | "stderr")) => t.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "must provide log type (stdout/stderr)",
            ));
        }
    };
    let follow = bool_param(&q, "follow", false)?;
    let plain = bool_param(&q, "plain", false)?;
    let offset = offset_param(&q)?;
    let origin_end = origin_end(&q)?;
    let (alloc, target) = alloc_and_target(&state, &alloc_id).await?;
    let revoked = crate::authz::revocation(&state, &alloc.namespace);
    let frames = client(&state, &target)?
        .stream_logs(v1::StreamLogsRequest {
            alloc_id,
            task,
            log_type,
            offset,
            origin_end,
            follow,
        })
        .await
        .map_err(|s| agent_error(&target, s))?
        .into_inner();
    Ok(frames_response(frames, plain, revoked))
}

/// Any other `/v1/client/fs/...` path: Nomad's 404 "Invalid method", or a 400 when the
/// allocation ID is missing.
pub(super) async fn unknown(Path(rest): Path<String>) -> Response {
    let known = ["ls", "stat", "cat", "readat", "stream", "logs"];
    match rest.split_once('/') {
        Some((kind, id)) if known.contains(&kind) && id.is_empty() => {
            (StatusCode::BAD_REQUEST, "must provide a valid alloc id").into_response()
        }
        _ => (StatusCode::NOT_FOUND, "Invalid method").into_response(),
    }
}
