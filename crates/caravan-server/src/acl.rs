//! The Acl service and token resolution (ACL.md §1–§4): bootstrap (once, or again through the
//! reset file), policies, tokens, roles and one-time tokens with Nomad's rules and texts, and
//! what a secret grants ([`resolve`]) for the gateways' enforcement layer and for the server's
//! own checks.
//!
//! Secrets are looked up by their SHA-256 digest (the state's index) and never logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use caravan_acl::{Acl, JobAcl as PolicyJobAcl, Policy};
use caravan_proto::v1::{self, acl_server};
use caravan_state::{Snapshot, Store, TableId, Txn, WatchKey};
use caravan_structs::time::format_go_duration;
use caravan_structs::{
    ACL_ANONYMOUS_POLICY, ACL_BOOTSTRAP_TOKEN_NAME, ACL_TOKEN_TYPE_CLIENT,
    ACL_TOKEN_TYPE_MANAGEMENT, AclBootstrap, AclPolicy, AclRole, AclRolePolicyLink, AclToken,
    AclTokenRoleLink, OneTimeToken, Time, format_multierror,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::paginate::{Pager, create_index_token};
use crate::query::{query_meta, wait_of};

/// The ACL settings of the server (Nomad's `acl` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclConfig {
    pub enabled: bool,
    pub token_min_expiration_ttl: Duration,
    pub token_max_expiration_ttl: Duration,
    /// `<data_dir>/server/acl-bootstrap-reset`: an operator writes the last bootstrap's index
    /// into it to allow one more bootstrap.
    pub bootstrap_reset_file: Option<PathBuf>,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            token_min_expiration_ttl: Duration::from_secs(60),
            token_max_expiration_ttl: Duration::from_secs(24 * 60 * 60),
            bootstrap_reset_file: None,
        }
    }
}

pub const ACL_DISABLED: &str = "ACL support disabled";
pub const PERMISSION_DENIED: &str = "Permission denied";
pub const TOKEN_NOT_FOUND: &str = "ACL token not found";
pub const TOKEN_EXPIRED: &str = "ACL token expired";
/// How long a one-time token may be exchanged.
const ONE_TIME_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);

static POLICY_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;

fn denied() -> ServerError {
    ServerError::PermissionDenied(PERMISSION_DENIED.to_owned())
}

fn disabled() -> ServerError {
    ServerError::BadRequest(ACL_DISABLED.to_owned())
}

fn now() -> Time {
    Time::from_system_time(std::time::SystemTime::now()).to_utc()
}

/// Who a secret is and what it may do.
#[derive(Clone)]
pub struct Caller {
    /// The token; the anonymous pseudo-token for an empty secret, `None` for a node's secret.
    pub token: Option<AclToken>,
    pub acl: Arc<Acl>,
}

impl Caller {
    pub fn is_management(&self) -> bool {
        self.acl.is_management()
    }

    /// The names of the policies the caller holds, directly or through its roles.
    fn policy_names(&self, snap: &Snapshot) -> Vec<String> {
        self.token
            .as_ref()
            .map(|t| token_policy_names(snap, t))
            .unwrap_or_default()
    }
}

/// Why a secret grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    NotFound,
    Expired,
}

impl Unresolved {
    /// Caravan answers every unknown, malformed or expired token with 403 (ACL.md §1.3).
    pub fn error(self) -> ServerError {
        match self {
            Unresolved::NotFound => denied(),
            Unresolved::Expired => ServerError::PermissionDenied(TOKEN_EXPIRED.to_owned()),
        }
    }
}

/// The caller without a token.
pub fn anonymous_token() -> AclToken {
    AclToken {
        accessor_id: "anonymous".to_owned(),
        name: "Anonymous Token".to_owned(),
        policies: Some(vec![ACL_ANONYMOUS_POLICY.to_owned()]),
        r#type: ACL_TOKEN_TYPE_CLIENT.to_owned(),
        ..AclToken::default()
    }
}

/// Policy names of a token and of its roles, in order, without repeats.
fn token_policy_names(snap: &Snapshot, token: &AclToken) -> Vec<String> {
    let mut names: Vec<String> = token.policies.clone().unwrap_or_default();
    for link in token.roles.iter().flatten() {
        if let Some(role) = snap.acl_roles().get(&link.id) {
            names.extend(role.value.policies.iter().flatten().map(|p| p.name.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The parsed rules of the existing policies among `names` (missing ones are skipped, as in
/// Nomad).
fn policies_named(snap: &Snapshot, names: &[String]) -> Vec<(String, Policy)> {
    names
        .iter()
        .filter_map(|n| snap.acl_policies().get(n))
        .filter_map(|row| {
            caravan_acl::parse_policy(&row.value.rules)
                .ok()
                .map(|p| (row.value.rules.clone(), p))
        })
        .collect()
}

/// What `secret` grants on `snap`. With ACLs off everything is allowed.
pub fn resolve(snap: &Snapshot, config: &AclConfig, secret: &str) -> Result<Caller, Unresolved> {
    if !config.enabled {
        return Ok(Caller {
            token: None,
            acl: Arc::new(Acl::management()),
        });
    }
    let secret = secret.trim();
    if secret.is_empty() {
        let token = anonymous_token();
        let policies = policies_named(snap, &token_policy_names(snap, &token));
        let refs: Vec<&Policy> = policies.iter().map(|(_, p)| p).collect();
        return Ok(Caller {
            token: Some(token),
            acl: Arc::new(Acl::new(&refs)),
        });
    }
    if let Some(row) = snap.acl_token_by_secret(secret) {
        let token = row.value.clone();
        if token.is_expired(now()) {
            return Err(Unresolved::Expired);
        }
        let acl = if token.is_management() {
            Acl::management()
        } else {
            let policies = policies_named(snap, &token_policy_names(snap, &token));
            let refs: Vec<&Policy> = policies.iter().map(|(_, p)| p).collect();
            Acl::new(&refs)
        };
        return Ok(Caller {
            token: Some(token),
            acl: Arc::new(acl),
        });
    }
    // A node's own secret: the agent's calls on behalf of its node.
    if snap
        .nodes()
        .iter()
        .any(|(_, r)| !r.value.secret_id.is_empty() && r.value.secret_id == secret)
    {
        return Ok(Caller {
            token: None,
            acl: Arc::new(Acl::client_node()),
        });
    }
    Err(Unresolved::NotFound)
}

/// Whether `s` reads as a UUID (what Nomad requires of secrets it was handed).
fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// The ACL state's index: the last change to tokens, policies or roles.
pub fn acl_index(snap: &Snapshot) -> u64 {
    snap.acl_tokens()
        .index()
        .max(snap.acl_policies().index())
        .max(snap.acl_roles().index())
        .max(1)
}

/// The token `Hash`: base64 BLAKE2b-256 of what the token grants.
fn token_hash(token: &AclToken) -> String {
    let roles: Vec<&str> = token
        .roles
        .iter()
        .flatten()
        .map(|r| r.id.as_str())
        .collect();
    caravan_acl::token_hash(
        &token.name,
        &token.r#type,
        token.policies.as_deref().unwrap_or_default(),
        token.global,
        &roles,
    )
}

fn to_bytes<T: serde::Serialize>(value: &T, what: &str) -> Result<Bytes, ServerError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding {what}: {e}")))
}

/// One object (none: the gateway answers 404) at `index`.
fn doc_response<T: serde::Serialize>(
    found: Option<&T>,
    what: &str,
    index: u64,
) -> Result<Response<v1::AclDocResponse>, Status> {
    let json = found
        .map(|v| to_bytes(v, what))
        .transpose()?
        .unwrap_or_default();
    Ok(Response::new(v1::AclDocResponse {
        json,
        meta: Some(query_meta(index, String::new())),
    }))
}

fn decode<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, ServerError> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode {what}: {e}")))?;
    caravan_structs::go_json::from_value(value)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode {what}: {e}")))
}

/// A policy as read: with its expanded rules (`RulesJSON`).
fn policy_with_rules_json(policy: &AclPolicy) -> AclPolicy {
    let mut out = policy.clone();
    out.rules_json = caravan_acl::parse_policy(&policy.rules)
        .ok()
        .map(|p| p.rules_json());
    out
}

/// A token as read: role links carry the roles' current names; deleted roles are dropped.
fn token_with_role_names(snap: &Snapshot, token: &AclToken) -> AclToken {
    let mut out = token.clone();
    if let Some(links) = &token.roles {
        let named: Vec<AclTokenRoleLink> = links
            .iter()
            .filter_map(|l| {
                snap.acl_roles().get(&l.id).map(|r| AclTokenRoleLink {
                    id: l.id.clone(),
                    name: r.value.name.clone(),
                })
            })
            .collect();
        out.roles = (!named.is_empty()).then_some(named);
    }
    out
}

/// Nomad's checks of a token write: the shape (every write), then expiry (creates).
fn validate_token(token: &AclToken, config: &AclConfig, creating: bool) -> Vec<String> {
    let mut errors = Vec::new();
    if token.name.len() > 256 {
        errors.push("token name too long".to_owned());
    }
    let has_links = token.policies.as_ref().is_some_and(|p| !p.is_empty())
        || token.roles.as_ref().is_some_and(|r| !r.is_empty());
    match token.r#type.as_str() {
        ACL_TOKEN_TYPE_CLIENT if !has_links => {
            errors.push("client token missing policies or roles".to_owned());
        }
        ACL_TOKEN_TYPE_MANAGEMENT if has_links => {
            errors.push("management token cannot be associated with policies or roles".to_owned());
        }
        ACL_TOKEN_TYPE_CLIENT | ACL_TOKEN_TYPE_MANAGEMENT => {}
        _ => errors.push("token type must be client or management".to_owned()),
    }
    if creating {
        if token.expiration_ttl < 0 {
            errors.push(format!(
                "token expiration TTL '{}' should not be negative",
                format_go_duration(token.expiration_ttl)
            ));
        }
        if !token.expiration_time.is_zero() {
            let ahead = token.expiration_time.nanos_since(&token.create_time);
            let max = i64::try_from(config.token_max_expiration_ttl.as_nanos()).unwrap_or(i64::MAX);
            let min = i64::try_from(config.token_min_expiration_ttl.as_nanos()).unwrap_or(0);
            if ahead < 0 {
                errors.push("expiration time cannot be before create time".to_owned());
            }
            if ahead > max {
                errors.push(format!(
                    "expiration time cannot be more than {} in the future (was {})",
                    format_go_duration(max),
                    format_go_duration(ahead)
                ));
            }
            if ahead < min {
                errors.push(format!(
                    "expiration time cannot be less than {} in the future (was {})",
                    format_go_duration(min),
                    format_go_duration(ahead)
                ));
            }
        }
    }
    errors
}

/// Role links resolved to IDs (by ID or by name), de-duplicated; unknown → Nomad's text.
fn resolve_role_links(
    snap: &Snapshot,
    links: Option<Vec<AclTokenRoleLink>>,
) -> Result<Option<Vec<AclTokenRoleLink>>, ServerError> {
    let Some(links) = links else {
        return Ok(None);
    };
    let mut out: Vec<AclTokenRoleLink> = Vec::new();
    for link in links {
        let role = if !link.id.is_empty() {
            snap.acl_roles().get(&link.id)
        } else {
            snap.acl_role_by_name(&link.name)
        };
        let Some(role) = role else {
            let which = if link.id.is_empty() {
                link.name
            } else {
                link.id
            };
            return Err(ServerError::BadRequest(format!("cannot find role {which}")));
        };
        if !out.iter().any(|l| l.id == role.value.id) {
            out.push(AclTokenRoleLink {
                id: role.value.id.clone(),
                name: String::new(),
            });
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Creates or updates a token inside a write (ACL.md §4.3).
fn upsert_token(
    txn: &mut Txn<'_>,
    mut token: AclToken,
    config: &AclConfig,
) -> Result<AclToken, ServerError> {
    let snap = txn.snapshot();
    let now = now();
    let existing = if token.accessor_id.is_empty() {
        None
    } else {
        match snap.acl_tokens().get(&token.accessor_id) {
            Some(row) => Some(row.value.clone()),
            None => {
                return Err(ServerError::BadRequest(format!(
                    "cannot find token {}",
                    token.accessor_id
                )));
            }
        }
    };
    if token.r#type.is_empty() {
        token.r#type = ACL_TOKEN_TYPE_CLIENT.to_owned();
    }
    token.roles = resolve_role_links(snap, token.roles.take())?;
    let mut errors = match &existing {
        None => {
            token.accessor_id = uuid::Uuid::new_v4().to_string();
            // A secret in the body is ignored: the server picks it.
            token.secret_id = uuid::Uuid::new_v4().to_string();
            token.create_time = now;
            if token.expiration_time.is_zero() && token.expiration_ttl > 0 {
                token.expiration_time = now.add_nanos(token.expiration_ttl);
            }
            validate_token(&token, config, true)
        }
        Some(old) => {
            let mut errors = validate_token(&token, config, false);
            if old.global != token.global {
                errors.push("cannot toggle global mode".to_owned());
            }
            if old.expiration_ttl != token.expiration_ttl {
                errors.push("cannot update expiration TTL".to_owned());
            }
            if !token.expiration_time.is_zero() && token.expiration_time != old.expiration_time {
                errors.push("cannot update expiration time".to_owned());
            }
            // Caravan keeps the stored expiry when an update leaves it out (Nomad drops it).
            token.expiration_time = old.expiration_time;
            token.secret_id = old.secret_id.clone();
            token.create_time = old.create_time;
            errors
        }
    };
    if !errors.is_empty() {
        errors.dedup();
        return Err(ServerError::BadRequest(format!(
            "token 0 invalid: {}",
            format_multierror(&errors)
        )));
    }
    token.hash = Some(token_hash(&token));
    let row = txn.put(token)?;
    Ok(row.value.clone())
}

/// The bootstrap: once, unless the reset file names the last bootstrap's index.
fn bootstrap(
    txn: &mut Txn<'_>,
    secret: String,
    reset_file: Option<&PathBuf>,
) -> Result<AclToken, ServerError> {
    if let Some(done) = txn.snapshot().acl_bootstrap() {
        let index = done.modify_index;
        let reset = reset_file
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| text.trim().parse::<u64>().ok());
        match reset {
            Some(asked) if asked == index => {}
            Some(asked) => {
                return Err(ServerError::BadRequest(format!(
                    "Invalid bootstrap reset index (specified {asked}, reset index: {index})"
                )));
            }
            None => {
                return Err(ServerError::BadRequest(format!(
                    "ACL bootstrap already done (reset index: {index})"
                )));
            }
        }
    }
    let mut token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: if secret.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            secret
        },
        name: ACL_BOOTSTRAP_TOKEN_NAME.to_owned(),
        r#type: ACL_TOKEN_TYPE_MANAGEMENT.to_owned(),
        global: true,
        create_time: now(),
        ..AclToken::default()
    };
    token.hash = Some(token_hash(&token));
    let row = txn.put(token)?;
    txn.put(AclBootstrap::default())?;
    Ok(row.value.clone())
}

/// Checks and stores a role (ACL.md §4.4); answers the stored role.
fn upsert_role(txn: &mut Txn<'_>, mut role: AclRole) -> Result<AclRole, ServerError> {
    let snap = txn.snapshot();
    let mut errors = Vec::new();
    if caravan_acl::validate_policy_name(&role.name).is_err() {
        errors.push(format!("invalid name '{}'", role.name));
    }
    if role.description.len() > 256 {
        errors.push("description longer than 256".to_owned());
    }
    if role.policies.as_ref().is_none_or(|p| p.is_empty()) {
        errors.push("at least one policy should be specified".to_owned());
    }
    if !errors.is_empty() {
        return Err(ServerError::BadRequest(format!(
            "role 0 invalid: {}",
            format_multierror(&errors)
        )));
    }
    if role.id.is_empty() {
        role.id = uuid::Uuid::new_v4().to_string();
    } else if snap.acl_roles().get(&role.id).is_none() {
        return Err(ServerError::BadRequest(format!(
            "cannot find role {}",
            role.id
        )));
    }
    for link in role.policies.iter().flatten() {
        if snap.acl_policies().get(&link.name).is_none() {
            return Err(ServerError::BadRequest(format!(
                "cannot find policy {}",
                link.name
            )));
        }
    }
    if let Some(other) = snap.acl_role_by_name(&role.name)
        && other.value.id != role.id
    {
        return Err(ServerError::BadRequest(format!(
            "role with name {} already exists",
            role.name
        )));
    }
    let mut seen = std::collections::HashSet::new();
    role.policies = role.policies.map(|links| {
        links
            .into_iter()
            .filter(|l| seen.insert(l.name.clone()))
            .map(|l| AclRolePolicyLink { name: l.name })
            .collect()
    });
    let names: Vec<&str> = role
        .policies
        .iter()
        .flatten()
        .map(|p| p.name.as_str())
        .collect();
    role.hash = Some(caravan_acl::role_hash(
        &role.name,
        &role.description,
        &names,
    ));
    let row = txn.put(role)?;
    Ok(row.value.clone())
}

#[derive(Clone)]
pub struct AclService {
    server: Arc<Server>,
}

impl AclService {
    pub fn new(server: Arc<Server>) -> Self {
        AclService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    fn config(&self) -> &AclConfig {
        &self.server.config.acl
    }

    /// The caller of an ACL endpoint: ACLs must be on, the secret must resolve.
    fn caller(&self, secret: &str) -> Result<Caller, ServerError> {
        if !self.config().enabled {
            return Err(disabled());
        }
        resolve(&self.store().snapshot(), self.config(), secret).map_err(Unresolved::error)
    }

    fn management(&self, secret: &str) -> Result<Caller, ServerError> {
        let caller = self.caller(secret)?;
        if caller.is_management() {
            Ok(caller)
        } else {
            Err(denied())
        }
    }
}

fn write_secret(w: &Option<v1::WriteOptions>) -> String {
    w.as_ref().map(|w| w.auth_token.clone()).unwrap_or_default()
}

type WatchStream = std::pin::Pin<Box<dyn Stream<Item = Result<v1::AclChange, Status>> + Send>>;

#[tonic::async_trait]
impl acl_server::Acl for AclService {
    async fn bootstrap(
        &self,
        request: Request<v1::AclBootstrapRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        if !self.config().enabled {
            return Err(disabled().into());
        }
        let req = request.into_inner();
        if !req.bootstrap_secret.is_empty() && !is_uuid(&req.bootstrap_secret) {
            return Err(ServerError::BadRequest("invalid acl token".to_owned()).into());
        }
        let reset_file = self.config().bootstrap_reset_file.clone();
        let written = self
            .store()
            .write(move |txn| bootstrap(txn, req.bootstrap_secret, reset_file.as_ref()))
            .await?;
        tracing::info!(accessor = %written.value.accessor_id, "ACL bootstrap token created");
        doc_response(Some(&written.value), "token", written.index)
    }

    async fn list_policies(
        &self,
        request: Request<v1::AclListRequest>,
    ) -> Result<Response<v1::AclDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let caller = self.caller(&q.auth_token)?;
        let pager = Pager::new(&q, &POLICY_SCHEMA)?.with_plain_tokens();
        let keys = [WatchKey::Table(TableId::AclPolicies)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = snap.acl_policies().index().max(1);
                let visible = (!caller.is_management()).then(|| caller.policy_names(snap));
                let mut stubs: Vec<(String, Bytes, String)> = Vec::new();
                for (_, row) in snap.acl_policies().iter() {
                    let p = &row.value;
                    if !p.name.starts_with(&q.prefix)
                        || visible.as_ref().is_some_and(|v| !v.contains(&p.name))
                    {
                        continue;
                    }
                    match to_bytes(&p.stub(), "policy") {
                        Ok(b) => stubs.push((p.name.clone(), b, row.json.to_string())),
                        Err(e) => return ((Err(e), index), index),
                    }
                }
                if pager.reverse() {
                    stubs.reverse();
                }
                let page = pager.page(
                    stubs.iter(),
                    |s: &&(String, Bytes, String)| s.0.clone(),
                    |s: &&(String, Bytes, String)| s.2.as_str(),
                    |s: &&(String, Bytes, String)| Ok(s.1.clone()),
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::AclDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_policy(
        &self,
        request: Request<v1::AclGetRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let caller = self.caller(&q.auth_token)?;
        if !caller.is_management()
            && req.key != ACL_ANONYMOUS_POLICY
            && !caller
                .policy_names(&self.store().snapshot())
                .contains(&req.key)
        {
            return Err(denied().into());
        }
        let keys = [WatchKey::Row(TableId::AclPolicies, req.key.clone())];
        let (found, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let found = snap.acl_policies().get(&req.key).map(|r| r.value.clone());
                let index = found
                    .as_ref()
                    .map_or_else(|| snap.acl_policies().index().max(1), |p| p.modify_index);
                ((found, index), index)
            })
            .await;
        let found = found.map(|p| policy_with_rules_json(&p));
        doc_response(found.as_ref(), "policy", index)
    }

    async fn upsert_policy(
        &self,
        request: Request<v1::AclUpsertRequest>,
    ) -> Result<Response<v1::AclWriteResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let mut policy: AclPolicy = decode(&req.json, "policy")?;
        if !req.path_key.is_empty() && policy.name != req.path_key {
            return Err(ServerError::BadRequest(
                "ACL policy name does not match request path".to_owned(),
            )
            .into());
        }
        let job_acl = policy.job_acl.as_ref().map(|j| PolicyJobAcl {
            namespace: j.namespace.clone(),
            job_id: j.job_id.clone(),
            group: j.group.clone(),
            task: j.task.clone(),
        });
        caravan_acl::validate_policy(
            &policy.name,
            &policy.description,
            &policy.rules,
            job_acl.as_ref(),
        )
        .map_err(|e| ServerError::BadRequest(format!("policy 0 invalid: {e}")))?;
        policy.hash = Some(caravan_acl::policy_hash(
            &policy.name,
            &policy.description,
            &policy.rules,
            job_acl.as_ref(),
        ));
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                txn.put(policy)?;
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::AclWriteResponse {
            index: written.index,
        }))
    }

    async fn delete_policy(
        &self,
        request: Request<v1::AclDeleteRequest>,
    ) -> Result<Response<v1::AclWriteResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                // A missing policy is no error; tokens keep the dangling name.
                txn.delete::<AclPolicy>(&req.key);
                Ok(())
            })
            .await?;
        let index = if written.index == 0 {
            acl_index(&self.store().snapshot())
        } else {
            written.index
        };
        Ok(Response::new(v1::AclWriteResponse { index }))
    }

    async fn list_tokens(
        &self,
        request: Request<v1::AclListRequest>,
    ) -> Result<Response<v1::AclDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        self.management(&q.auth_token)?;
        let mut pager = Pager::new(&q, &POLICY_SCHEMA)?;
        if !q.prefix.is_empty() {
            pager = pager.with_plain_tokens();
        }
        let keys = [WatchKey::Table(TableId::AclTokens)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = snap.acl_tokens().index().max(1);
                let mut tokens: Vec<(String, AclToken, String)> = snap
                    .acl_tokens()
                    .iter()
                    .filter(|(_, r)| r.value.accessor_id.starts_with(&q.prefix))
                    .map(|(_, r)| {
                        let token = if q.prefix.is_empty() {
                            create_index_token(r.value.create_index, &r.value.accessor_id)
                        } else {
                            r.value.accessor_id.clone()
                        };
                        let stub_json = serde_json::to_string(&r.value.stub()).unwrap_or_default();
                        (token, r.value.clone(), stub_json)
                    })
                    .collect();
                if q.prefix.is_empty() {
                    tokens.sort_by(|a, b| {
                        (a.1.create_index, &a.1.accessor_id)
                            .cmp(&(b.1.create_index, &b.1.accessor_id))
                    });
                }
                if pager.reverse() {
                    tokens.reverse();
                }
                let page = pager.page(
                    tokens.iter(),
                    |t: &&(String, AclToken, String)| t.0.clone(),
                    |t: &&(String, AclToken, String)| t.2.as_str(),
                    |t: &&(String, AclToken, String)| to_bytes(&t.1.stub(), "token"),
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::AclDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_token(
        &self,
        request: Request<v1::AclGetRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let caller = self.caller(&q.auth_token)?;
        let own = caller
            .token
            .as_ref()
            .is_some_and(|t| t.accessor_id == req.key);
        if !caller.is_management() && !own {
            return Err(denied().into());
        }
        let keys = [WatchKey::Row(TableId::AclTokens, req.key.clone())];
        let (found, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let found = snap
                    .acl_tokens()
                    .get(&req.key)
                    .map(|r| token_with_role_names(snap, &r.value));
                let index = found
                    .as_ref()
                    .map_or_else(|| snap.acl_tokens().index().max(1), |t| t.modify_index);
                ((found, index), index)
            })
            .await;
        doc_response(found.as_ref(), "token", index)
    }

    async fn get_token_self(
        &self,
        request: Request<v1::AclGetRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        if !self.config().enabled {
            return Err(disabled().into());
        }
        let q = request.into_inner().query.unwrap_or_default();
        let secret = q.auth_token.trim();
        if secret.is_empty() {
            return Err(ServerError::BadRequest(
                "acl token lookup failed: missing secret id".to_owned(),
            )
            .into());
        }
        let snap = self.store().snapshot();
        let Some(row) = snap.acl_token_by_secret(secret) else {
            return Err(ServerError::NotFound(TOKEN_NOT_FOUND.to_owned()).into());
        };
        if row.value.is_expired(now()) {
            return Err(Unresolved::Expired.error().into());
        }
        let token = token_with_role_names(&snap, &row.value);
        doc_response(Some(&token), "token", token.modify_index)
    }

    async fn upsert_token(
        &self,
        request: Request<v1::AclUpsertRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let token: AclToken = decode(&req.json, "token")?;
        if !req.path_key.is_empty() && token.accessor_id != req.path_key {
            return Err(ServerError::BadRequest(
                "ACL token accessor does not match request path".to_owned(),
            )
            .into());
        }
        let config = self.config().clone();
        let written = self
            .store()
            .write(move |txn| upsert_token(txn, token, &config))
            .await?;
        let token = token_with_role_names(&self.store().snapshot(), &written.value);
        doc_response(Some(&token), "token", written.index)
    }

    async fn delete_token(
        &self,
        request: Request<v1::AclDeleteRequest>,
    ) -> Result<Response<v1::AclWriteResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                if !txn.delete::<AclToken>(&req.key) {
                    return Err(ServerError::BadRequest(format!(
                        "Cannot delete nonexistent tokens: {}",
                        req.key
                    )));
                }
                let ott: Vec<String> = txn
                    .snapshot()
                    .one_time_tokens_of(&req.key)
                    .map(|r| caravan_state::secret_digest(&r.value.one_time_secret_id))
                    .collect();
                for key in ott {
                    txn.delete::<OneTimeToken>(&key);
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::AclWriteResponse {
            index: written.index,
        }))
    }

    async fn list_roles(
        &self,
        request: Request<v1::AclListRequest>,
    ) -> Result<Response<v1::AclDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let caller = self.caller(&q.auth_token)?;
        let pager = Pager::new(&q, &POLICY_SCHEMA)?.with_plain_tokens();
        let keys = [WatchKey::Table(TableId::AclRoles)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = snap.acl_roles().index().max(1);
                let linked: Option<Vec<String>> = (!caller.is_management()).then(|| {
                    caller
                        .token
                        .iter()
                        .flat_map(|t| t.roles.iter().flatten())
                        .map(|l| l.id.clone())
                        .collect()
                });
                let mut roles: Vec<&Arc<caravan_state::Row<AclRole>>> = snap
                    .acl_roles()
                    .iter()
                    .map(|(_, r)| r)
                    .filter(|r| r.value.id.starts_with(&q.prefix))
                    .filter(|r| linked.as_ref().is_none_or(|l| l.contains(&r.value.id)))
                    .collect();
                if pager.reverse() {
                    roles.reverse();
                }
                let page = pager.page(
                    roles.into_iter(),
                    |r: &&Arc<caravan_state::Row<AclRole>>| r.value.id.clone(),
                    |r: &&Arc<caravan_state::Row<AclRole>>| &r.json,
                    |r: &&Arc<caravan_state::Row<AclRole>>| {
                        Ok(Bytes::copy_from_slice(r.json.as_bytes()))
                    },
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::AclDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_role(
        &self,
        request: Request<v1::AclGetRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let caller = self.caller(&q.auth_token)?;
        let snap = self.store().snapshot();
        let found = if req.by_name {
            snap.acl_role_by_name(&req.key)
        } else {
            snap.acl_roles().get(&req.key)
        }
        .map(|r| r.value.clone());
        if !caller.is_management() {
            let linked = found.as_ref().is_some_and(|role| {
                caller
                    .token
                    .iter()
                    .flat_map(|t| t.roles.iter().flatten())
                    .any(|l| l.id == role.id)
            });
            if !linked {
                return Err(denied().into());
            }
        }
        let index = found
            .as_ref()
            .map_or_else(|| snap.acl_roles().index().max(1), |r| r.modify_index);
        doc_response(found.as_ref(), "role", index)
    }

    async fn upsert_role(
        &self,
        request: Request<v1::AclUpsertRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let role: AclRole = decode(&req.json, "role")?;
        if !req.path_key.is_empty() && role.id != req.path_key {
            return Err(ServerError::BadRequest(
                "ACL role ID does not match request path".to_owned(),
            )
            .into());
        }
        let written = self
            .store()
            .write(move |txn| upsert_role(txn, role))
            .await?;
        doc_response(Some(&written.value), "role", written.index)
    }

    async fn delete_role(
        &self,
        request: Request<v1::AclDeleteRequest>,
    ) -> Result<Response<v1::AclWriteResponse>, Status> {
        let req = request.into_inner();
        self.management(&write_secret(&req.write))?;
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                if !txn.delete::<AclRole>(&req.key) {
                    return Err(ServerError::NotFound("ACL role not found".to_owned()));
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::AclWriteResponse {
            index: written.index,
        }))
    }

    async fn create_one_time_token(
        &self,
        request: Request<v1::AclOneTimeRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        let req = request.into_inner();
        let secret = write_secret(&req.write);
        if self.config().enabled && secret.trim().is_empty() {
            return Err(ServerError::BadRequest(
                "acl token lookup failed: missing secret id".to_owned(),
            )
            .into());
        }
        let caller = self.caller(&secret)?;
        let Some(parent) = caller.token.filter(|t| !t.secret_id.is_empty()) else {
            return Err(denied().into());
        };
        let ott = OneTimeToken {
            accessor_id: parent.accessor_id,
            one_time_secret_id: uuid::Uuid::new_v4().to_string(),
            expires_at: now()
                .add_nanos(i64::try_from(ONE_TIME_TOKEN_TTL.as_nanos()).unwrap_or(i64::MAX)),
            ..OneTimeToken::default()
        };
        let written = self
            .store()
            .write(move |txn| -> Result<OneTimeToken, ServerError> {
                Ok(txn.put(ott)?.value.clone())
            })
            .await?;
        doc_response(Some(&written.value), "one-time token", written.index)
    }

    async fn exchange_one_time_token(
        &self,
        request: Request<v1::AclOneTimeRequest>,
    ) -> Result<Response<v1::AclDocResponse>, Status> {
        if !self.config().enabled {
            return Err(disabled().into());
        }
        let req = request.into_inner();
        let written = self
            .store()
            .write(move |txn| -> Result<AclToken, ServerError> {
                let key = caravan_state::secret_digest(&req.one_time_secret);
                let Some(ott) = txn.snapshot().one_time_tokens().get(&key).cloned() else {
                    return Err(denied());
                };
                if ott.value.expires_at.unix_nanos() < now().unix_nanos() {
                    txn.delete::<OneTimeToken>(&key);
                    return Err(denied());
                }
                let Some(parent) = txn
                    .snapshot()
                    .acl_tokens()
                    .get(&ott.value.accessor_id)
                    .cloned()
                else {
                    return Err(denied());
                };
                let all: Vec<String> = txn
                    .snapshot()
                    .one_time_tokens_of(&ott.value.accessor_id)
                    .map(|r| caravan_state::secret_digest(&r.value.one_time_secret_id))
                    .collect();
                for k in all {
                    txn.delete::<OneTimeToken>(&k);
                }
                Ok(parent.value.clone())
            })
            .await?;
        let token = token_with_role_names(&self.store().snapshot(), &written.value);
        doc_response(Some(&token), "token", written.index)
    }

    async fn resolve_token(
        &self,
        request: Request<v1::ResolveTokenRequest>,
    ) -> Result<Response<v1::ResolveTokenResponse>, Status> {
        use v1::resolve_token_response::Outcome;
        let secret = request.into_inner().secret;
        let snap = self.store().snapshot();
        let index = acl_index(&snap);
        let config = self.config();
        let mut resp = v1::ResolveTokenResponse {
            index,
            ..Default::default()
        };
        if !config.enabled {
            resp.set_outcome(Outcome::Disabled);
            return Ok(Response::new(resp));
        }
        match resolve(&snap, config, &secret) {
            Err(Unresolved::NotFound) => resp.set_outcome(Outcome::NotFound),
            Err(Unresolved::Expired) => resp.set_outcome(Outcome::Expired),
            Ok(caller) => {
                resp.set_outcome(Outcome::Resolved);
                resp.management = caller.is_management();
                match &caller.token {
                    Some(token) => {
                        resp.accessor_id = token.accessor_id.clone();
                        resp.expiration_unix_nanos = if token.expiration_time.is_zero() {
                            0
                        } else {
                            token.expiration_time.unix_nanos()
                        };
                        resp.policy_rules =
                            policies_named(&snap, &token_policy_names(&snap, token))
                                .into_iter()
                                .map(|(rules, _)| rules)
                                .collect();
                    }
                    None => resp.client_node = true,
                }
            }
        }
        Ok(Response::new(resp))
    }

    type WatchAclStream = WatchStream;

    async fn watch_acl(
        &self,
        _request: Request<v1::WatchAclRequest>,
    ) -> Result<Response<Self::WatchAclStream>, Status> {
        let enabled = self.config().enabled;
        let snapshots = self.store().subscribe();
        let released = self.store().released();
        // Every change of the ACL index, starting with the current one; the stream ends when
        // the server stops (a graceful stop waits for open streams).
        let stream = futures::stream::unfold(
            (snapshots, 0u64, true, Box::pin(released)),
            move |(mut rx, last, mut first, mut released)| async move {
                loop {
                    if !first {
                        tokio::select! {
                            changed = rx.changed() => {
                                if changed.is_err() {
                                    return None;
                                }
                            }
                            () = &mut released => return None,
                        }
                    }
                    first = false;
                    let index = acl_index(&rx.borrow_and_update());
                    if index != last {
                        let change = v1::AclChange {
                            index,
                            acl_enabled: enabled,
                        };
                        return Some((Ok(change), (rx, index, false, released)));
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
