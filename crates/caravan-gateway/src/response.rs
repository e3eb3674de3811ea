//! Successful responses: JSON bodies (spliced from the documents the server serialized, or
//! encoded here), `pretty` formatting, and the blocking-query headers.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use caravan_proto::v1::QueryMeta;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::error::ApiError;

/// A JSON response under construction.
#[derive(Debug, Default)]
pub struct JsonResponse {
    body: Vec<u8>,
    meta: Option<QueryMeta>,
    index_only: Option<u64>,
    pretty: bool,
}

impl JsonResponse {
    /// A body that is already JSON.
    pub fn raw(body: impl Into<Vec<u8>>) -> Self {
        JsonResponse {
            body: body.into(),
            ..JsonResponse::default()
        }
    }

    /// A JSON array made of documents that are each already JSON.
    pub fn array<I, D>(items: I) -> Self
    where
        I: IntoIterator<Item = D>,
        D: AsRef<[u8]>,
    {
        let mut body = Vec::with_capacity(256);
        body.push(b'[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item.as_ref());
        }
        body.push(b']');
        JsonResponse::raw(body)
    }

    /// A value encoded here.
    pub fn value<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| ApiError::internal(format!("failed to encode response: {e}")))?;
        Ok(JsonResponse::raw(body))
    }

    /// The blocking-query headers: X-Nomad-Index, -KnownLeader, -LastContact, -NextToken.
    pub fn meta(mut self, meta: Option<QueryMeta>) -> Self {
        self.meta = meta;
        self
    }

    /// Only X-Nomad-Index (write endpoints).
    pub fn index(mut self, index: u64) -> Self {
        self.index_only = Some(index);
        self
    }

    pub fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }
}

/// Re-indents JSON by four spaces with a trailing newline, as Nomad's `?pretty`.
fn prettify(body: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut out = Vec::with_capacity(body.len() * 2);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).ok()?;
    out.push(b'\n');
    Some(out)
}

/// A write answered as Nomad does for its "empty" writes: 200, no body, the index in
/// `X-Nomad-Index`.
pub fn written(index: u64) -> axum::response::Response {
    let mut resp = axum::response::IntoResponse::into_response(http::StatusCode::OK);
    resp.headers_mut()
        .insert("x-nomad-index", http::HeaderValue::from(index));
    resp
}

/// Writes the blocking-query headers of `meta`.
pub fn set_meta_headers(headers: &mut http::HeaderMap, meta: &QueryMeta) {
    headers.insert("x-nomad-index", HeaderValue::from(meta.index));
    headers.insert(
        "x-nomad-knownleader",
        HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
    );
    headers.insert(
        "x-nomad-lastcontact",
        HeaderValue::from(meta.last_contact_ms),
    );
    if !meta.next_token.is_empty()
        && let Ok(v) = HeaderValue::from_str(&meta.next_token)
    {
        headers.insert("x-nomad-nexttoken", v);
    }
}

impl IntoResponse for JsonResponse {
    fn into_response(self) -> Response {
        let body = if self.pretty {
            prettify(&self.body).unwrap_or(self.body)
        } else {
            self.body
        };
        let mut resp = (StatusCode::OK, Bytes::from(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(meta) = &self.meta {
            set_meta_headers(headers, meta);
        } else if let Some(index) = self.index_only {
            headers.insert("x-nomad-index", HeaderValue::from(index));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_spliced() {
        let r = JsonResponse::array([b"{\"A\":1}".as_slice(), b"{\"A\":2}"]);
        assert_eq!(r.body, b"[{\"A\":1},{\"A\":2}]");
        assert_eq!(JsonResponse::array(Vec::<Vec<u8>>::new()).body, b"[]");
    }

    #[test]
    fn pretty_is_four_spaces_and_newline() {
        let out = prettify(b"{\"A\":[1]}").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"A\": [\n        1\n    ]\n}\n"
        );
    }
}
