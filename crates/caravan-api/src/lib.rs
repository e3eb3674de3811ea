//! A Rust HTTP client for the Nomad API, as an outside user would import it.
//!
//! It speaks to Caravan (or Nomad) over HTTP only and depends on no other Caravan crate. One
//! [`Client`] holds the address and the defaults (token, region, namespace); the endpoints are
//! grouped per noun:
//!
//! - [`Client::nodes`] — `/v1/nodes`, `/v1/node/:id/...` ([`nodes`])
//! - [`Client::status`] — `/v1/status/leader`, `/v1/status/peers`, `/v1/regions` ([`status`])
//! - [`Client::agent`] — `/v1/agent/self`, `/v1/agent/members` ([`agent`])
//!
//! Reads take [`QueryOptions`] (prefix, filter, pagination, blocking `index`/`wait`, ...) and
//! return the decoded body with the [`QueryMeta`] of the `X-Nomad-*` response headers. Writes
//! take [`WriteOptions`] and return a [`WriteMeta`]. For exact bytes and headers there is a raw
//! escape hatch: [`Client::get`] and [`Client::raw`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), caravan_api::ApiError> {
//! use caravan_api::{Client, QueryOptions};
//! let client = Client::new("http://127.0.0.1:4646")?;
//! let (nodes, meta) = client.nodes().list(&QueryOptions::default()).await?;
//! // Wait up to 10 s for any node to change.
//! let q = QueryOptions::default().index(meta.last_index).wait(std::time::Duration::from_secs(10));
//! let (_changed, _meta) = client.nodes().list(&q).await?;
//! # let _ = nodes;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod error;
pub mod nodes;
pub mod status;

use std::time::Duration;

pub use error::ApiError;
pub use reqwest::Method;
pub use reqwest::header::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The default address of a local agent.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// A client for one Nomad API address. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    /// Decompresses gzip answers transparently (and asks for them).
    http: reqwest::Client,
    /// Leaves the body and `Content-Encoding` as sent, for raw requests that check them.
    http_plain: reqwest::Client,
    address: String,
    token: String,
    region: String,
    namespace: String,
    timeout: Option<Duration>,
}

impl Client {
    /// A client for `address`, e.g. `http://127.0.0.1:4646` (a trailing `/` is ignored).
    pub fn new(address: impl Into<String>) -> Result<Client, ApiError> {
        let address = address.into().trim_end_matches('/').to_owned();
        let invalid = |message: String| ApiError::InvalidAddress {
            address: address.clone(),
            message,
        };
        let url = reqwest::Url::parse(&address).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid("the scheme must be http or https".to_owned()));
        }
        if url.query().is_some() {
            return Err(invalid("the address must not carry a query".to_owned()));
        }
        let build = |gzip: bool| {
            reqwest::Client::builder()
                .gzip(gzip)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))
        };
        Ok(Client {
            http: build(true)?,
            http_plain: build(false)?,
            address,
            token: String::new(),
            region: String::new(),
            namespace: String::new(),
            timeout: None,
        })
    }

    /// Sends `token` as `X-Nomad-Token` on every request (unless a request sets its own).
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = token.into();
        self
    }

    /// The default `region` of every request.
    pub fn with_region(mut self, region: impl Into<String>) -> Client {
        self.region = region.into();
        self
    }

    /// The default `namespace` of every request.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Client {
        self.namespace = namespace.into();
        self
    }

    /// A client-side limit on every request. Blocking queries need more than their `wait`.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// The address this client talks to, without a trailing `/`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `/v1/nodes` and `/v1/node/:id/...`.
    pub fn nodes(&self) -> nodes::Nodes<'_> {
        nodes::Nodes::new(self)
    }

    /// `/v1/status/*` and `/v1/regions`.
    pub fn status(&self) -> status::Status<'_> {
        status::Status::new(self)
    }

    /// `/v1/agent/*`.
    pub fn agent(&self) -> agent::Agent<'_> {
        agent::Agent::new(self)
    }

    /// A raw request to `path` (which may carry its own query string, e.g. `/v1/nodes?pretty`).
    /// Any status is returned as is; only transport failures are errors.
    pub fn raw(&self, method: Method, path: &str) -> RawRequest<'_> {
        RawRequest {
            client: self,
            method,
            path: path.to_owned(),
            query: QueryOptions::default(),
            write: None,
            body: None,
            headers: Vec::new(),
            timeout: None,
            decompress: true,
        }
    }

    /// A raw GET of `path` with `q`: status, headers and the body bytes, whatever the status.
    pub async fn get(&self, path: &str, q: &QueryOptions) -> Result<RawResponse, ApiError> {
        self.raw(Method::GET, path).query(q).send().await
    }

    /// GET `path` and decode its JSON body, with the query metadata of its headers.
    pub async fn query<T: DeserializeOwned>(
        &self,
        path: &str,
        q: &QueryOptions,
    ) -> Result<(T, QueryMeta), ApiError> {
        let resp = self.get(path, q).await?.error_for_status()?;
        let meta = resp.query_meta();
        Ok((resp.json()?, meta))
    }

    /// Sends a write (`PUT`/`POST`) with an optional JSON body and decodes the JSON answer.
    pub async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        w: &WriteOptions,
    ) -> Result<(T, WriteMeta), ApiError> {
        let mut req = self.raw(method, path).write_options(w);
        if let Some(body) = body {
            req = req.body(serde_json::to_vec(body).map_err(ApiError::Encode)?);
        }
        let resp = req.send().await?.error_for_status()?;
        let meta = WriteMeta {
            last_index: resp.header_u64("x-nomad-index").unwrap_or(0),
        };
        Ok((resp.json()?, meta))
    }

    fn url(&self, path: &str, params: &[(String, String)]) -> Result<reqwest::Url, ApiError> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let full = format!("{}{path}", self.address);
        let mut url = reqwest::Url::parse(&full).map_err(|e| ApiError::InvalidAddress {
            address: full.clone(),
            message: e.to_string(),
        })?;
        if !params.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

/// The options of a read: Nomad's shared query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// `region`; empty: the client's default.
    pub region: String,
    /// `namespace`; empty: the client's default.
    pub namespace: String,
    /// `prefix`: an ID prefix (for UUIDs, an even number of hex characters).
    pub prefix: String,
    /// `filter`: a filter expression, evaluated by the server.
    pub filter: String,
    /// `per_page`; 0: not sent (no limit).
    pub per_page: u32,
    /// `next_token`: where the next page starts (the previous page's `QueryMeta::next_token`).
    pub next_token: String,
    /// `reverse=true`.
    pub reverse: bool,
    /// `index`: block until the result's index is greater than this; 0: answer at once.
    pub index: u64,
    /// `wait`: the longest a blocking query waits, sent in Go duration syntax (`10s`).
    pub wait: Option<Duration>,
    /// `stale`: any server may answer.
    pub stale: bool,
    /// `pretty`: indented JSON.
    pub pretty: bool,
    /// `X-Nomad-Token` for this request only; empty: the client's token.
    pub token: String,
    /// Any other parameters (`resources=true`, ...), sent after the ones above, in order.
    pub params: Vec<(String, String)>,
}

impl QueryOptions {
    pub fn new() -> QueryOptions {
        QueryOptions::default()
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = filter.into();
        self
    }

    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = per_page;
        self
    }

    pub fn next_token(mut self, token: impl Into<String>) -> Self {
        self.next_token = token.into();
        self
    }

    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }

    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    pub fn index(mut self, index: u64) -> Self {
        self.index = index;
        self
    }

    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    pub fn stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    pub fn pretty(mut self, pretty: bool) -> Self {
        self.pretty = pretty;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// Adds a parameter that has no field of its own.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// The query string pairs, in the order they are sent, with `client`'s defaults applied.
    fn pairs(&self, client: &Client) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |k: &str, v: String| out.push((k.to_owned(), v));
        let region = if self.region.is_empty() {
            &client.region
        } else {
            &self.region
        };
        if !region.is_empty() {
            push("region", region.clone());
        }
        let namespace = if self.namespace.is_empty() {
            &client.namespace
        } else {
            &self.namespace
        };
        if !namespace.is_empty() {
            push("namespace", namespace.clone());
        }
        if self.stale {
            push("stale", String::new());
        }
        if !self.prefix.is_empty() {
            push("prefix", self.prefix.clone());
        }
        if !self.filter.is_empty() {
            push("filter", self.filter.clone());
        }
        if self.per_page > 0 {
            push("per_page", self.per_page.to_string());
        }
        if !self.next_token.is_empty() {
            push("next_token", self.next_token.clone());
        }
        if self.reverse {
            push("reverse", "true".to_owned());
        }
        if self.index > 0 {
            push("index", self.index.to_string());
        }
        if let Some(wait) = self.wait {
            push("wait", go_duration(wait));
        }
        if self.pretty {
            push("pretty", String::new());
        }
        out.extend(self.params.iter().cloned());
        out
    }
}

/// The options of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `region`; empty: the client's default.
    pub region: String,
    /// `namespace`; empty: the client's default.
    pub namespace: String,
    /// `X-Nomad-Token` for this request only; empty: the client's token.
    pub token: String,
    /// `idempotency_token`.
    pub idempotency_token: String,
}

impl WriteOptions {
    fn pairs(&self, client: &Client) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let region = if self.region.is_empty() {
            &client.region
        } else {
            &self.region
        };
        if !region.is_empty() {
            out.push(("region".to_owned(), region.clone()));
        }
        let namespace = if self.namespace.is_empty() {
            &client.namespace
        } else {
            &self.namespace
        };
        if !namespace.is_empty() {
            out.push(("namespace".to_owned(), namespace.clone()));
        }
        if !self.idempotency_token.is_empty() {
            out.push((
                "idempotency_token".to_owned(),
                self.idempotency_token.clone(),
            ));
        }
        out
    }
}

/// What the `X-Nomad-*` headers of a read say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryMeta {
    /// `X-Nomad-Index`: pass it as `QueryOptions::index` to wait for a change. 0 if absent.
    pub last_index: u64,
    /// `X-Nomad-KnownLeader`.
    pub known_leader: bool,
    /// `X-Nomad-LastContact`, in milliseconds.
    pub last_contact_ms: u64,
    /// `X-Nomad-NextToken`: where the next page starts; empty on the last page.
    pub next_token: String,
}

impl QueryMeta {
    /// Reads the headers (header names are matched case-insensitively).
    pub fn from_headers(headers: &HeaderMap) -> QueryMeta {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        QueryMeta {
            last_index: get("x-nomad-index")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            known_leader: get("x-nomad-knownleader").is_some_and(|v| v.trim() == "true"),
            last_contact_ms: get("x-nomad-lastcontact")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            next_token: get("x-nomad-nexttoken").unwrap_or_default().to_owned(),
        }
    }
}

/// What the headers of a write say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteMeta {
    /// `X-Nomad-Index`: the index of the write (0 when nothing was written).
    pub last_index: u64,
}

/// A request under construction, see [`Client::raw`].
#[derive(Debug)]
pub struct RawRequest<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    query: QueryOptions,
    write: Option<WriteOptions>,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    decompress: bool,
}

impl<'a> RawRequest<'a> {
    /// The query parameters (added after any query string already in the path).
    pub fn query(mut self, q: &QueryOptions) -> Self {
        self.query = q.clone();
        self.write = None;
        self
    }

    /// Write options instead of query options (a write's `region`, `namespace`, token and
    /// `idempotency_token`).
    pub fn write_options(mut self, w: &WriteOptions) -> Self {
        self.write = Some(w.clone());
        self
    }

    /// The request body, sent as is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A JSON request body.
    pub fn json<B: Serialize>(self, body: &B) -> Result<Self, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(ApiError::Encode)?;
        Ok(self.body(bytes))
    }

    /// An extra request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A client-side limit on this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether a gzip answer is decompressed (true, the default; it also asks for gzip) or
    /// handed back exactly as sent, `Content-Encoding` and all (false; ask for it with
    /// `.header("Accept-Encoding", "gzip")`).
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.decompress = decompress;
        self
    }

    /// Sends the request. Any HTTP status is an `Ok`; see [`RawResponse::error_for_status`].
    pub async fn send(self) -> Result<RawResponse, ApiError> {
        let client = self.client;
        let (params, request_token) = match &self.write {
            Some(w) => (w.pairs(client), w.token.as_str()),
            None => (self.query.pairs(client), self.query.token.as_str()),
        };
        let url = client.url(&self.path, &params)?;
        let url_text = url.to_string();
        let http = if self.decompress {
            &client.http
        } else {
            &client.http_plain
        };
        let mut req = http.request(self.method, url);
        let token = if request_token.is_empty() {
            client.token.as_str()
        } else {
            request_token
        };
        if !token.is_empty() {
            req = req.header("X-Nomad-Token", token);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(body) = self.body {
            req = req.body(body);
        }
        if let Some(t) = self.timeout.or(client.timeout) {
            req = req.timeout(t);
        }
        let transport = |source| ApiError::Transport {
            url: url_text.clone(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        Ok(RawResponse {
            url: url_text,
            status,
            headers,
            body,
        })
    }
}

/// An answer exactly as received: status, headers, body bytes (decompressed unless asked not
/// to be, see [`RawRequest::decompress`]).
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The URL the request went to.
    pub url: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value (names are case-insensitive); None if absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|source| ApiError::Decode {
            url: self.url.clone(),
            source,
        })
    }

    /// The `X-Nomad-*` headers.
    pub fn query_meta(&self) -> QueryMeta {
        QueryMeta::from_headers(&self.headers)
    }

    /// `Err(ApiError::Status)` unless the status is 2xx.
    pub fn error_for_status(self) -> Result<RawResponse, ApiError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(ApiError::Status {
                status: self.status,
                body: self.text(),
            })
        }
    }
}

/// A duration in Go's syntax, as the `wait` parameter takes it: `10s`, `250ms`, `1500us`,
/// `7ns` (the largest unit that represents it exactly; `0s` for zero).
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_owned()
    } else if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// Percent-encodes one path segment (an ID), leaving RFC 3986 unreserved characters as they are.
pub fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "3600s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1500us");
        assert_eq!(go_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(escape_segment("abc-DEF_1.~"), "abc-DEF_1.~");
        assert_eq!(escape_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn query_pairs_in_order_with_defaults() -> Result<(), ApiError> {
        let client = Client::new("http://127.0.0.1:4646/")?
            .with_region("r1")
            .with_namespace("ns");
        assert_eq!(client.address(), "http://127.0.0.1:4646");
        let q = QueryOptions::new()
            .prefix("ab")
            .filter("Status == \"ready\"")
            .per_page(5)
            .next_token("t")
            .reverse(true)
            .index(7)
            .wait(Duration::from_millis(250))
            .stale(true)
            .pretty(true)
            .param("resources", "true");
        let pairs = q.pairs(&client);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "region",
                "namespace",
                "stale",
                "prefix",
                "filter",
                "per_page",
                "next_token",
                "reverse",
                "index",
                "wait",
                "pretty",
                "resources"
            ]
        );
        assert_eq!(pairs[9].1, "250ms");
        let url = client.url("/v1/nodes", &pairs)?;
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:4646/v1/nodes?region=r1&namespace=ns&stale=&")
        );
        assert!(url.as_str().contains("filter=Status+%3D%3D+%22ready%22"));
        let q = QueryOptions::new().region("r2").namespace("*");
        assert_eq!(
            q.pairs(&client),
            [
                ("region".to_owned(), "r2".to_owned()),
                ("namespace".to_owned(), "*".to_owned())
            ]
        );
        Ok(())
    }

    #[test]
    fn paths_keep_their_own_query() -> Result<(), ApiError> {
        let client = Client::new("http://127.0.0.1:4646")?;
        assert_eq!(
            client.url("/v1/nodes?pretty", &[])?.as_str(),
            "http://127.0.0.1:4646/v1/nodes?pretty"
        );
        assert_eq!(
            client
                .url("v1/nodes?pretty", &[("a".into(), "b".into())])?
                .as_str(),
            "http://127.0.0.1:4646/v1/nodes?pretty&a=b"
        );
        Ok(())
    }

    #[test]
    fn meta_from_headers_any_case() {
        let mut h = HeaderMap::new();
        h.insert(
            "X-Nomad-Index",
            "42".parse().unwrap_or_else(|_| unreachable!()),
        );
        h.insert(
            "x-nomad-knownleader",
            "true".parse().unwrap_or_else(|_| unreachable!()),
        );
        h.insert(
            "X-NOMAD-LASTCONTACT",
            "12".parse().unwrap_or_else(|_| unreachable!()),
        );
        h.insert(
            "X-Nomad-Nexttoken",
            "abc".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            QueryMeta::from_headers(&h),
            QueryMeta {
                last_index: 42,
                known_leader: true,
                last_contact_ms: 12,
                next_token: "abc".to_owned()
            }
        );
        assert_eq!(
            QueryMeta::from_headers(&HeaderMap::new()),
            QueryMeta::default()
        );
    }

    #[test]
    fn bad_addresses() {
        assert!(Client::new("127.0.0.1:4646").is_err());
        assert!(Client::new("ftp://h").is_err());
        assert!(Client::new("http://h?x=1").is_err());
    }
}
