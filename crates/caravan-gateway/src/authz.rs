//! Enforcement of the route table's capabilities (ACL.md §6): the [`Authorizer`] resolves a
//! request's secret through the server and keeps what it learned until the server says the ACL
//! state changed; [`authorize`] is the one layer that checks each route's declared capability.
//!
//! - **Resolution** asks the server (`Acl.ResolveToken`) and compiles the token's policies
//!   with `caravan-acl`. Answers are cached per secret while the server's `WatchAcl` stream is
//!   up; every change to tokens, policies or roles clears the cache, so a deleted token or a
//!   narrowed policy stops working on every gateway at once. With the stream down nothing is
//!   cached (each request asks the server), and an unreachable server refuses (503), never
//!   allows.
//! - **Checks** happen here for every route but the object-namespace ones (allocations and
//!   what runs in them), whose namespace is known only once the object is: the layer hands
//!   those handlers an [`Authz`] and they call [`Authz::object_namespace`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use caravan_acl::{Acl, Policy};
use caravan_proto::v1;
use caravan_proto::v1::resolve_token_response::Outcome;
use caravan_structs::ErrorCode;
use http::request::Parts;

use crate::AppState;
use crate::acl::Capability;
use crate::error::ApiError;

pub const PERMISSION_DENIED: &str = "Permission denied";
pub const TOKEN_EXPIRED: &str = "ACL token expired";

/// Entries kept at most; beyond, the cache starts over (secrets are cheap to resolve again).
const MAX_CACHED: usize = 16_384;

/// What a secret grants.
#[derive(Debug)]
pub struct Resolved {
    /// ACLs are off: everything is allowed.
    pub disabled: bool,
    pub acl: Acl,
    pub accessor: String,
    /// Unix nanoseconds; 0: never.
    expires_at: i64,
}

impl Resolved {
    fn expired(&self) -> bool {
        self.expires_at != 0 && self.expires_at < now_nanos()
    }

    pub fn is_management(&self) -> bool {
        self.disabled || self.acl.is_management()
    }

    pub fn allow_namespace_operation(&self, namespace: &str, capability: &str) -> bool {
        self.disabled || self.acl.allow_namespace_operation(namespace, capability)
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The answer for every caller while ACLs are off.
fn disabled() -> Arc<Resolved> {
    static DISABLED: OnceLock<Arc<Resolved>> = OnceLock::new();
    DISABLED
        .get_or_init(|| {
            Arc::new(Resolved {
                disabled: true,
                acl: Acl::management(),
                accessor: String::new(),
                expires_at: 0,
            })
        })
        .clone()
}

fn denied() -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, PERMISSION_DENIED)
}

/// Resolves secrets, caching answers while the server's change stream is up.
pub struct Authorizer {
    /// Bumped whenever what was resolved may have changed (long-lived streams re-check then).
    changes: tokio::sync::watch::Sender<u64>,
    cache: Mutex<HashMap<String, Arc<Resolved>>>,
    /// The change stream is connected: cached answers are current.
    live: AtomicBool,
    /// The ACL index of the last change the stream reported.
    seen_index: AtomicU64,
    /// The server last said ACLs are off (a setting of the server, not of the state): requests
    /// need no resolution, even while the server cannot be reached.
    known_disabled: AtomicBool,
    watch: OnceLock<()>,
}

impl Default for Authorizer {
    fn default() -> Self {
        Authorizer {
            changes: tokio::sync::watch::Sender::new(0),
            cache: Mutex::default(),
            live: AtomicBool::default(),
            seen_index: AtomicU64::default(),
            known_disabled: AtomicBool::default(),
            watch: OnceLock::new(),
        }
    }
}

impl Authorizer {
    /// What `secret` grants: 403 for an unknown or expired token, 503 when the server cannot
    /// be asked.
    pub async fn resolve(&self, state: &AppState, secret: &str) -> Result<Arc<Resolved>, ApiError> {
        self.watch.get_or_init(|| {
            tokio::spawn(watch_changes(state.clone()));
        });
        let live = self.live.load(Ordering::Acquire);
        if live && self.known_disabled.load(Ordering::Acquire) {
            return Ok(disabled());
        }
        if live && let Some(hit) = self.cache_get(secret) {
            return if hit.expired() {
                Err(ApiError::new(ErrorCode::PermissionDenied, TOKEN_EXPIRED))
            } else {
                Ok(hit)
            };
        }
        let resp = match state
            .acl()
            .resolve_token(v1::ResolveTokenRequest {
                secret: secret.to_owned(),
            })
            .await
        {
            Ok(resp) => resp.into_inner(),
            // The server cannot be asked: with ACLs off (as it last said) the gateway still
            // serves what it can alone (its own logs, say); with them on it refuses.
            Err(_) if self.known_disabled.load(Ordering::Acquire) => return Ok(disabled()),
            Err(status) => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "No cluster leader: cannot resolve ACL token: {}",
                        status.message()
                    ),
                ));
            }
        };
        let resolved = match resp.outcome() {
            Outcome::Disabled => {
                self.known_disabled.store(true, Ordering::Release);
                return Ok(disabled());
            }
            Outcome::NotFound => return Err(denied()),
            Outcome::Expired => {
                return Err(ApiError::new(ErrorCode::PermissionDenied, TOKEN_EXPIRED));
            }
            Outcome::Resolved => {
                let acl = if resp.management {
                    Acl::management()
                } else if resp.client_node {
                    Acl::client_node()
                } else {
                    let policies: Vec<Policy> = resp
                        .policy_rules
                        .iter()
                        .filter_map(|rules| caravan_acl::parse_policy(rules).ok())
                        .collect();
                    let refs: Vec<&Policy> = policies.iter().collect();
                    Acl::new(&refs)
                };
                Resolved {
                    disabled: false,
                    acl,
                    accessor: resp.accessor_id.clone(),
                    expires_at: resp.expiration_unix_nanos,
                }
            }
        };
        let resolved = Arc::new(resolved);
        // The server is ahead of the change stream: what was cached may be stale.
        if resp.index > self.seen_index.load(Ordering::Acquire) {
            self.seen_index.fetch_max(resp.index, Ordering::AcqRel);
            self.forget_all();
        }
        // Cached only if no change came in since the server answered.
        if self.live.load(Ordering::Acquire)
            && resp.index >= self.seen_index.load(Ordering::Acquire)
        {
            self.cache_put(secret, resolved.clone());
        }
        Ok(resolved)
    }

    fn cache_get(&self, secret: &str) -> Option<Arc<Resolved>> {
        self.cache.lock().ok()?.get(secret).cloned()
    }

    fn cache_put(&self, secret: &str, resolved: Arc<Resolved>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(secret.to_owned(), resolved);
        }
    }

    /// Drops everything resolved: an ACL write went through this gateway (the change stream
    /// may tell us a moment later).
    pub fn forget_all(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

/// Follows the server's ACL changes for as long as the gateway runs; reconnects after a
/// second when the stream breaks (and caches nothing meanwhile).
async fn watch_changes(state: AppState) {
    let authz = state.authorizer();
    loop {
        match state.acl().watch_acl(v1::WatchAclRequest {}).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                while let Ok(Some(change)) = stream.message().await {
                    authz
                        .known_disabled
                        .store(!change.acl_enabled, Ordering::Release);
                    authz.seen_index.store(change.index, Ordering::Release);
                    authz.forget_all();
                    authz.live.store(true, Ordering::Release);
                }
            }
            Err(e) => tracing::debug!(error = %e, "ACL change stream unavailable"),
        }
        authz.live.store(false, Ordering::Release);
        authz.forget_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The request's namespace for capability checks: `?namespace=`, else `default`.
fn request_namespace(parts: &http::Uri) -> String {
    parts
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "namespace")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

tokio::task_local! {
    /// The authorization of the request being handled.
    static REQUEST_AUTHZ: Authz;
}

/// Checks the current request's route capability against the namespace of the allocation it
/// acts on (the lookups of allocations call this). Outside a request nothing is allowed.
pub fn check_object_namespace(namespace: &str) -> Result<(), ApiError> {
    REQUEST_AUTHZ
        .try_with(|authz| authz.object_namespace(namespace))
        .unwrap_or_else(|_| Err(denied()))
}

/// Also needs `capability` in `namespace` (beyond the route's own).
pub fn check_also(namespace: &str, capability: &str) -> Result<(), ApiError> {
    REQUEST_AUTHZ
        .try_with(|authz| authz.also(namespace, capability))
        .unwrap_or_else(|_| Err(denied()))
}

/// Runs `fut` as part of a request authorized by `authz` (work a request hands to another
/// task, such as an exec session after the WebSocket handshake).
pub async fn scope<F: std::future::Future>(authz: Authz, fut: F) -> F::Output {
    REQUEST_AUTHZ.scope(authz, fut).await
}

/// The authorization of `secret` for a route needing `capability` (a token that arrives after
/// the request, as exec's handshake frame does).
pub async fn for_token(
    state: &AppState,
    secret: &str,
    capability: Capability,
) -> Result<Authz, ApiError> {
    let resolved = state.authorizer().resolve(state, secret).await?;
    Ok(Authz {
        resolved,
        capability,
        secret: Arc::from(secret),
    })
}

/// Keeps the JSON documents whose `Name` passes `visible` under the current request's token
/// (lists Nomad filters by what the caller may see: namespaces, node pools); all of them with
/// ACLs off or a management token.
pub fn visible_by_name(
    docs: Vec<bytes::Bytes>,
    visible: impl Fn(&Acl, &str) -> bool,
) -> Vec<bytes::Bytes> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(rename = "Name", default)]
        name: String,
    }
    let Some(authz) = current() else {
        return Vec::new();
    };
    if authz.resolved.is_management() {
        return docs;
    }
    docs.into_iter()
        .filter(|doc| {
            serde_json::from_slice::<Named>(doc)
                .is_ok_and(|n| visible(&authz.resolved.acl, &n.name))
        })
        .collect()
}

/// Resolves once the current request's token may no longer act on an object of `namespace`
/// (deleted, expired, or its policies narrowed): long-lived answers (log follows, file
/// streams, exec sessions) end then. Never resolves with ACLs off.
pub fn revocation(
    state: &AppState,
    namespace: &str,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let namespace = namespace.to_owned();
    let authz = current();
    let state = state.clone();
    async move {
        let Some(authz) = authz else {
            return;
        };
        until_revoked(state, authz, move |still| {
            still.object_namespace(&namespace).is_ok()
        })
        .await;
    }
}

/// Resolves once `authz`'s token no longer passes `allowed` (deleted, expired, or its policies
/// narrowed), re-resolving it whenever the ACL state changes and at least every
/// [`RECHECK_EVERY`]. Never resolves with ACLs off.
async fn until_revoked(state: AppState, authz: Authz, allowed: impl Fn(&Authz) -> bool) {
    if authz.resolved.disabled {
        return futures::future::pending().await;
    }
    let authorizer = state.authorizer();
    let mut changes = authorizer.changes.subscribe();
    loop {
        let until_expiry = match authz.resolved.expires_at {
            0 => RECHECK_EVERY,
            at => Duration::from_nanos(u64::try_from(at - now_nanos()).unwrap_or(0))
                .min(RECHECK_EVERY),
        };
        tokio::select! {
            _ = changes.changed() => {}
            () = tokio::time::sleep(until_expiry) => {}
        }
        let still = match authorizer.resolve(&state, &authz.secret).await {
            Ok(resolved) => allowed(&Authz {
                resolved,
                capability: authz.capability,
                secret: authz.secret.clone(),
            }),
            // The server being away is not a revocation; the next round tries again.
            Err(e) if e.status == http::StatusCode::SERVICE_UNAVAILABLE => true,
            Err(_) => false,
        };
        if !still {
            return;
        }
    }
}

/// How often a long-lived answer re-checks its token when nothing said it changed (the change
/// stream may be down).
const RECHECK_EVERY: Duration = Duration::from_secs(5);

/// The authorization of the current request, if there is one.
pub fn current() -> Option<Authz> {
    REQUEST_AUTHZ.try_with(Clone::clone).ok()
}

/// The authorization of one request, for handlers that check an object's namespace.
#[derive(Clone)]
pub struct Authz {
    resolved: Arc<Resolved>,
    capability: Capability,
    /// The secret it was resolved from, to resolve again for long-lived streams.
    secret: Arc<str>,
}

impl Authz {
    /// Everything allowed (requests that reach a handler without the layer, in tests).
    fn open() -> Authz {
        Authz {
            resolved: disabled(),
            capability: Capability::None,
            secret: Arc::from(""),
        }
    }

    /// Checks the route's capability against the namespace of the object it acts on.
    pub fn object_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let allowed = match self.capability {
            Capability::ObjectNamespace(caps) => caps
                .iter()
                .any(|cap| self.resolved.allow_namespace_operation(namespace, cap)),
            _ => true,
        };
        if allowed { Ok(()) } else { Err(denied()) }
    }

    /// Also needs `cap` in the object's namespace (exec into a task without isolation needs
    /// `alloc-node-exec` too).
    pub fn also(&self, namespace: &str, cap: &str) -> Result<(), ApiError> {
        if self.resolved.allow_namespace_operation(namespace, cap) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    pub fn resolved(&self) -> &Arc<Resolved> {
        &self.resolved
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authz {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Authz>()
            .cloned()
            .unwrap_or_else(Authz::open))
    }
}

/// With `namespace=*`, the namespaces a limited token may read, for the server to filter on.
#[derive(Debug, Clone)]
pub struct AllowedNamespaces(pub Vec<String>);

/// Stands for "no namespace" (an invalid name): the token may read none that exists.
const NO_NAMESPACE: &str = "\u{0}none";

/// The existing namespaces where `resolved` holds any of `caps`.
async fn readable_namespaces(
    state: &AppState,
    resolved: &Resolved,
    caps: &[&str],
) -> Result<Vec<String>, ApiError> {
    let resp = state
        .namespaces()
        .list_namespaces(v1::ListNamespacesRequest {
            query: Some(v1::QueryOptions::default()),
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    for json in resp.json {
        let ns: caravan_structs::Namespace = serde_json::from_slice(&json)
            .map_err(|e| ApiError::internal(format!("undecodable namespace: {e}")))?;
        if caps
            .iter()
            .any(|cap| resolved.acl.allow_namespace_operation(&ns.name, cap))
        {
            out.push(ns.name);
        }
    }
    if out.is_empty() {
        out.push(NO_NAMESPACE.to_owned());
    }
    Ok(out)
}

/// Whether `resolved` may use a route that needs `capability` (object-namespace routes are
/// checked later, by their handler).
fn allowed(
    resolved: &Resolved,
    capability: Capability,
    uri: &http::Uri,
    path_name: Option<&str>,
) -> bool {
    if resolved.disabled {
        return true;
    }
    let acl = &resolved.acl;
    match capability {
        Capability::None | Capability::AclEndpoint | Capability::Authenticated => true,
        Capability::ObjectNamespace(_) => true,
        Capability::NodeRead => acl.allow_node_read(),
        Capability::NodeWrite => acl.allow_node_write(),
        Capability::AgentRead => acl.allow_agent_read(),
        Capability::OperatorRead => acl.allow_operator_read(),
        Capability::OperatorWrite => acl.allow_operator_write(),
        Capability::Management => acl.is_management(),
        Capability::NodePool(cap) => match path_name {
            Some(pool) => acl.allow_node_pool_operation(pool, cap),
            // The pool list: any pool rule (what it shows is not filtered yet).
            None => acl.allow_node_pool_operation("*", cap),
        },
        Capability::NamespaceAny => path_name.is_some_and(|ns| acl.allow_namespace(ns)),
        // With `*`: allowed if any rule holds it; the answer is then filtered to the
        // namespaces where it does (CVE-2025-0937).
        Capability::Namespace(cap) => acl.allow_namespace_operation(&request_namespace(uri), cap),
        Capability::NamespaceAnyOf(caps) => {
            let ns = request_namespace(uri);
            caps.iter()
                .any(|cap| acl.allow_namespace_operation(&ns, cap))
        }
    }
}

/// The enforcement layer: resolves the caller and checks the route's capability.
pub async fn authorize(
    state: AppState,
    capability: Option<Capability>,
    path_name: Option<String>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(capability) = capability else {
        // No route matched: the 404 or 405 needs no token, and reaches no object.
        return next.run(req).await;
    };
    // The ACL endpoints judge the caller themselves (a bootstrap ignores any token; a token
    // reading itself gets Nomad's own answers).
    if matches!(capability, Capability::None | Capability::AclEndpoint) {
        return REQUEST_AUTHZ.scope(Authz::open(), next.run(req)).await;
    }
    let secret = crate::query::token_from_headers(req.headers());
    let resolved = match state.authorizer().resolve(&state, &secret).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if !allowed(&resolved, capability, req.uri(), path_name.as_deref()) {
        return denied().into_response();
    }
    let caps: &[&str] = match &capability {
        Capability::Namespace(cap) => std::slice::from_ref(cap),
        Capability::NamespaceAnyOf(caps) => caps,
        _ => &[],
    };
    if !caps.is_empty() && !resolved.is_management() && request_namespace(req.uri()) == "*" {
        match readable_namespaces(&state, &resolved, caps).await {
            Ok(list) => {
                req.extensions_mut().insert(AllowedNamespaces(list));
            }
            Err(e) => return e.into_response(),
        }
    }
    let authz = Authz {
        resolved,
        capability,
        secret: Arc::from(secret.as_str()),
    };
    req.extensions_mut().insert(authz.clone());
    if !is_blocking_query(req.uri()) {
        return REQUEST_AUTHZ.scope(authz.clone(), next.run(req)).await;
    }
    // A blocking query may wait minutes: it answers 403 as soon as its token stops granting
    // the route, instead of serving data to a revoked token when it wakes.
    let uri = req.uri().clone();
    let revoked = until_revoked(state, authz.clone(), move |still| {
        allowed(&still.resolved, capability, &uri, path_name.as_deref())
    });
    tokio::select! {
        response = REQUEST_AUTHZ.scope(authz, next.run(req)) => response,
        () = revoked => denied().into_response(),
    }
}

/// Whether the request waits for a change (`?index=` above 0).
fn is_blocking_query(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == "index" && v.parse::<u64>().is_ok_and(|i| i > 0))
    })
}
