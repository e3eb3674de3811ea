//! The query conventions every endpoint shares (seeds/002 and Nomad's `parse()` step): region,
//! token, stale, prefix, namespace, pagination, filter, reverse, blocking `wait`/`index`,
//! `pretty`. Parsed once per request by the [`Query`] extractor, in Nomad's order, so the first
//! bad parameter is the one reported.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::FromRequestParts;
use http::HeaderMap;
use http::request::Parts;
use rand::Rng;

use crate::AppState;
use crate::duration::parse_go_duration;
use crate::error::ApiError;

/// Blocking queries wait this long when `wait` is absent or zero.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// And never longer than this (seeds/002: "limited to 10 minutes").
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub region: String,
    pub token: String,
    pub stale: bool,
    pub prefix: String,
    pub namespace: String,
    pub per_page: u32,
    pub next_token: String,
    pub filter: String,
    pub reverse: bool,
    /// Blocking: the index the caller has seen (0: do not block).
    pub index: u64,
    /// Blocking: how long to wait at most, before jitter.
    pub wait: Duration,
    pub pretty: bool,
    /// Every parameter, for the ones only some endpoints read.
    pub params: HashMap<String, String>,
    /// With `namespace=*`: the namespaces the caller's token may read (set by the enforcement
    /// layer; empty: all).
    pub allowed_namespaces: Vec<String>,
}

impl Query {
    /// Parses a raw query string and the request headers.
    pub fn parse(raw: &str, headers: &HeaderMap) -> Result<Query, ApiError> {
        let mut params: HashMap<String, String> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            // The first value wins, as Go's url.Values.Get.
            params
                .entry(k.into_owned())
                .or_insert_with(|| v.into_owned());
        }
        // Like Go's `query.Get(k) != ""`: an empty value is the same as no value.
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let mut q = Query {
            region: get("region").unwrap_or_default().to_owned(),
            token: token_from_headers(headers),
            ..Query::default()
        };
        if let Some(v) = params.get("stale").map(String::as_str) {
            // A bare `?stale` means true.
            q.stale = v.is_empty()
                || parse_go_bool(v).ok_or_else(|| {
                    ApiError::bad_request(
                        "Expect `true` or `false` for `stale` query string parameter",
                    )
                })?;
        }
        q.prefix = get("prefix").unwrap_or_default().to_owned();
        q.namespace = match get("namespace") {
            Some(ns) if !ns.is_empty() => ns.to_owned(),
            _ => "default".to_owned(),
        };
        if let Some(v) = get("per_page") {
            let n: i64 = v.parse().map_err(|_| {
                ApiError::bad_request("Expect a number for `per_page` query string parameter")
            })?;
            if n < 0 {
                return Err(ApiError::bad_request(
                    "Expect a non-negative number for `per_page` query string parameter",
                ));
            }
            q.per_page = u32::try_from(n).map_err(|_| {
                ApiError::bad_request("`per_page` query string parameter is too large")
            })?;
        }
        q.next_token = get("next_token").unwrap_or_default().to_owned();
        q.filter = get("filter").unwrap_or_default().to_owned();
        q.reverse = get("reverse") == Some("true");
        q.wait = match get("wait") {
            Some(v) => {
                let d =
                    parse_go_duration(v).map_err(|_| ApiError::bad_request("Invalid wait time"))?;
                if d.is_zero() {
                    DEFAULT_WAIT
                } else {
                    d.min(MAX_WAIT)
                }
            }
            None => DEFAULT_WAIT,
        };
        if let Some(v) = get("index") {
            q.index = v
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid index"))?;
        }
        q.pretty = matches!(params.get("pretty").map(String::as_str), Some(v) if v != "0");
        q.params = params;
        Ok(q)
    }

    /// A boolean parameter of one endpoint (`resources`, `os`, `follow`, ...): absent is
    /// `default`; otherwise Go's ParseBool.
    pub fn bool_param(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.params.get(name) {
            // An empty value is "not given", as in Nomad.
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => parse_go_bool(v).ok_or_else(|| {
                format!(
                    "Failed to parse value of {name:?} ({v}) as a bool: strconv.ParseBool: parsing {v:?}: invalid syntax"
                )
            }),
        }
    }

    /// The longest a blocking call may take: `wait` plus a random jitter of up to wait/16, so
    /// many waiters do not wake at once.
    pub fn wait_with_jitter(&self) -> Duration {
        let jitter_max = self.wait / 16;
        if jitter_max.is_zero() {
            return self.wait;
        }
        let jitter_ns = rand::rng().random_range(0..jitter_max.as_nanos().max(1)) as u64;
        self.wait + Duration::from_nanos(jitter_ns)
    }

    /// The gRPC form of these options.
    pub fn to_proto(&self) -> caravan_proto::v1::QueryOptions {
        caravan_proto::v1::QueryOptions {
            region: self.region.clone(),
            namespace: self.namespace.clone(),
            prefix: self.prefix.clone(),
            filter: self.filter.clone(),
            per_page: self.per_page,
            next_token: self.next_token.clone(),
            reverse: self.reverse,
            min_index: self.index,
            max_wait_ms: u64::try_from(self.wait_with_jitter().as_millis()).unwrap_or(u64::MAX),
            allow_stale: self.stale,
            auth_token: self.token.clone(),
            namespaces: self.allowed_namespaces.clone(),
        }
    }

    /// Write options for write endpoints.
    pub fn to_write_proto(&self) -> caravan_proto::v1::WriteOptions {
        caravan_proto::v1::WriteOptions {
            region: self.region.clone(),
            namespace: self.namespace.clone(),
            auth_token: self.token.clone(),
            idempotency_token: self
                .params
                .get("idempotency_token")
                .cloned()
                .unwrap_or_default(),
        }
    }
}

impl FromRequestParts<AppState> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut q = Query::parse(parts.uri.query().unwrap_or(""), &parts.headers)?;
        if let Some(crate::authz::AllowedNamespaces(list)) = parts.extensions.get() {
            q.allowed_namespaces = list.clone();
        }
        // One region per cluster for now: a request for another one has nowhere to go.
        let region = &state.config().region;
        if q.region.is_empty() {
            q.region = region.clone();
        } else if &q.region != region {
            return Err(ApiError::bad_request(format!(
                "No path to region {:?}",
                q.region
            )));
        }
        Ok(q)
    }
}

/// Go's strconv.ParseBool.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The ACL token: `X-Nomad-Token` (trimmed), else `Authorization: Bearer <token>`.
pub fn token_from_headers(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get("x-nomad-token").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if !v.is_empty() {
            return v.to_owned();
        }
    }
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = v.split_whitespace();
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return token.to_owned();
        }
    }
    String::new()
}

/// Nomad's rule for ID prefixes: the prefix is decoded to bytes, so it must have an even number
/// of hexadecimal characters (dashes ignored).
pub fn validate_uuid_prefix(prefix: &str, what: &str) -> Result<(), ApiError> {
    let hex: String = prefix.chars().filter(|c| *c != '-').collect();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "{what} lookup failed: index error: prefix {prefix:?} must contain only hexadecimal characters"
        )));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(ApiError::bad_request(format!(
            "{what} lookup failed: index error: Input (without hyphens) must be even length"
        )));
    }
    if hex.len() > 32 {
        return Err(ApiError::bad_request(format!(
            "{what} lookup failed: index error: prefix {prefix:?} is longer than a UUID"
        )));
    }
    Ok(())
}

/// A UUID from the path (`:node_id`, `:eval_id`), lower-cased: UUIDs match whatever their case,
/// as in Nomad.
#[derive(Debug, serde::Deserialize)]
#[serde(from = "String")]
pub struct UuidPath(pub String);

impl From<String> for UuidPath {
    fn from(id: String) -> Self {
        UuidPath(id.to_ascii_lowercase())
    }
}

impl Query {
    /// The gRPC options of a list keyed by UUIDs: the prefix checked by Nomad's rule and
    /// lower-cased.
    pub fn to_proto_uuid_prefix(
        &self,
        what: &str,
    ) -> Result<caravan_proto::v1::QueryOptions, ApiError> {
        validate_uuid_prefix(&self.prefix, what)?;
        let mut query = self.to_proto();
        query.prefix = query.prefix.to_ascii_lowercase();
        Ok(query)
    }
}

/// A full UUID as Nomad requires for `:node_id` and friends.
pub fn validate_uuid(id: &str, what: &str) -> Result<(), ApiError> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(())
    } else if id.len() != 36 {
        Err(ApiError::bad_request(format!(
            "{what} lookup failed: index error: UUID must be 36 characters"
        )))
    } else {
        Err(ApiError::bad_request(format!(
            "{what} lookup failed: index error: {id:?} is not a valid UUID"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Query, ApiError> {
        Query::parse(raw, &HeaderMap::new())
    }

    #[test]
    fn defaults() {
        let q = parse("").unwrap();
        assert_eq!(q.namespace, "default");
        assert_eq!(q.wait, DEFAULT_WAIT);
        assert_eq!(q.index, 0);
        assert!(!q.stale && !q.reverse && !q.pretty);
    }

    #[test]
    fn parses_everything() {
        let q = parse("stale&prefix=ab&namespace=*&per_page=5&next_token=x&filter=Status%20%3D%3D%20%22ready%22&reverse=true&wait=10s&index=42&pretty").unwrap();
        assert!(q.stale);
        assert_eq!(q.prefix, "ab");
        assert_eq!(q.namespace, "*");
        assert_eq!(q.per_page, 5);
        assert_eq!(q.next_token, "x");
        assert_eq!(q.filter, "Status == \"ready\"");
        assert!(q.reverse);
        assert_eq!(q.wait, Duration::from_secs(10));
        assert_eq!(q.index, 42);
        assert!(q.pretty);
    }

    #[test]
    fn wait_is_capped_and_defaults() {
        assert_eq!(parse("wait=1h").unwrap().wait, MAX_WAIT);
        assert_eq!(parse("wait=0s").unwrap().wait, DEFAULT_WAIT);
        let q = parse("wait=16s").unwrap();
        for _ in 0..100 {
            let w = q.wait_with_jitter();
            assert!(w >= Duration::from_secs(16) && w < Duration::from_secs(17));
        }
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let msg = |raw: &str| parse(raw).unwrap_err().message;
        assert_eq!(
            msg("per_page=abc"),
            "Expect a number for `per_page` query string parameter"
        );
        assert!(msg("per_page=-1").contains("per_page"));
        assert_eq!(msg("index=abc"), "Invalid index");
        assert_eq!(msg("index=-1"), "Invalid index");
        assert_eq!(msg("wait=abc"), "Invalid wait time");
        assert_eq!(msg("wait=10"), "Invalid wait time");
        assert_eq!(
            msg("stale=maybe"),
            "Expect `true` or `false` for `stale` query string parameter"
        );
        // Nomad's order: stale is checked before per_page.
        assert!(msg("per_page=x&stale=x").contains("stale"));
    }

    #[test]
    fn empty_values_are_absent() {
        let q = parse("index=&wait=&per_page=&prefix=&namespace=").unwrap();
        assert_eq!((q.index, q.wait, q.per_page), (0, DEFAULT_WAIT, 0));
        assert_eq!(q.namespace, "default");
    }

    #[test]
    fn reverse_only_for_exact_true() {
        assert!(!parse("reverse=1").unwrap().reverse);
    }

    #[test]
    fn tokens_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc def".parse().unwrap());
        assert_eq!(token_from_headers(&h), "abc");
        h.insert("x-nomad-token", " xyz ".parse().unwrap());
        assert_eq!(token_from_headers(&h), "xyz");
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(token_from_headers(&h), "");
    }

    #[test]
    fn prefixes_and_uuids() {
        assert!(validate_uuid_prefix("", "node").is_ok());
        assert!(validate_uuid_prefix("f747", "node").is_ok());
        assert!(validate_uuid_prefix("f7476465-4d", "node").is_ok());
        assert!(
            validate_uuid_prefix("f74", "node")
                .unwrap_err()
                .message
                .contains("even length")
        );
        assert!(
            validate_uuid_prefix("zz", "node")
                .unwrap_err()
                .message
                .contains("hexadecimal")
        );
        assert!(validate_uuid("f7476465-4d6e-c0de-26d0-e383c49be941", "node").is_ok());
        assert!(
            validate_uuid("f7476465", "node")
                .unwrap_err()
                .message
                .contains("36 characters")
        );
        assert!(validate_uuid("g7476465-4d6e-c0de-26d0-e383c49be941", "node").is_err());
    }
}
