//! The Search service: Nomad's prefix search (`/v1/search`) and fuzzy search
//! (`/v1/search/fuzzy`), answered from the in-memory snapshot (never the database).
//!
//! Both follow Nomad 1.9's server closely, quirks included, because the `nomad` CLI resolves
//! IDs through them:
//! - Prefix search walks each context's objects in ID order starting at the prefix, looks at
//!   the first [`TRUNCATE_LIMIT`] of them, and reports more as a truncation. UUID contexts
//!   (allocations, evaluations, nodes, deployments) are walked by the prefix rounded down to
//!   an even number of hex digits — for jobs too when the context is `all` — and a prefix
//!   that is no UUID prefix leaves those contexts out of the answer.
//! - Fuzzy search looks at the first [`FuzzyLimits::limit_query`] objects of each context,
//!   matches names case-insensitively anywhere, expands jobs into their groups, services,
//!   tasks and driver commands/images/classes (with their `Scope`), and sorts each context by
//!   match position, then length, then name. Evaluations and deployments are matched by UUID
//!   prefix, walked from the request's `prefix` query option.
//!
//! Node pools are the built-ins `all` and `default` and the stored ones; namespaces the built-in
//! `default` and the stored ones. Caravan has no tables yet for CSI plugins and volumes, scaling
//! policies or variables: they are searched and always empty, as on a Nomad cluster without
//! them.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_proto::v1::{self, search_server};
use caravan_state::{Document, Row, Snapshot, Store, Table};
use caravan_structs::{Job, SearchContext};
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::query::query_meta;

/// Matches returned per context by a prefix search (Nomad's `truncateLimit`).
pub const TRUNCATE_LIMIT: usize = 20;

/// The fuzzy search settings of Nomad's `search` server block, at their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuzzyLimits {
    /// Objects looked at per context (`limit_query`).
    pub limit_query: usize,
    /// Matches kept per context (`limit_results`).
    pub limit_results: usize,
    /// Shortest `Text` accepted, in bytes (`min_term_length`).
    pub min_term_length: usize,
}

impl Default for FuzzyLimits {
    fn default() -> Self {
        FuzzyLimits {
            limit_query: 20,
            limit_results: 100,
            min_term_length: 2,
        }
    }
}

/// Node pools every cluster has. They come from the node pool table once it exists.
const BUILT_IN_NODE_POOLS: [&str; 2] = ["all", "default"];

/// The namespace every cluster has.
const DEFAULT_NAMESPACE: &str = "default";

/// Nomad's rule for walking UUID indexes with a prefix of odd length: drop the last byte
/// (hyphens do not count). The job context keeps its prefix as it is.
fn round_down_if_odd<'p>(prefix: &'p str, request_context: &str) -> &'p [u8] {
    let bytes = prefix.as_bytes();
    if request_context == SearchContext::Jobs.name() {
        return bytes;
    }
    let hyphens = bytes.iter().filter(|b| **b == b'-').count();
    if (bytes.len() - hyphens).is_multiple_of(2) {
        bytes
    } else {
        &bytes[..bytes.len() - 1]
    }
}

/// The canonical (lower-case, hyphenated) form of a UUID prefix, which walks a table keyed by
/// UUIDs; `None` where Nomad's UUID index refuses the prefix (too long, too many hyphens, an
/// odd number of digits, not hexadecimal) — Nomad then leaves that context out.
fn uuid_walk_prefix(prefix: &[u8]) -> Option<String> {
    if prefix.len() > 36 || prefix.iter().filter(|b| **b == b'-').count() > 4 {
        return None;
    }
    let hex: Vec<u8> = prefix.iter().copied().filter(|b| *b != b'-').collect();
    if !hex.len().is_multiple_of(2) || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = String::with_capacity(hex.len() + 4);
    for (i, b) in hex.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(char::from(b.to_ascii_lowercase()));
    }
    Some(out)
}

/// The longest leading part of `bytes` that is valid UTF-8 (a prefix rounded down may end in
/// the middle of a character).
fn utf8_part(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Nomad's `getPrefixMatches`: of the first [`TRUNCATE_LIMIT`] IDs walked, those that start
/// with `prefix`; truncated when the walk had more.
fn take_prefix_matches<'a>(
    walk: impl IntoIterator<Item = &'a str>,
    prefix: &str,
) -> (Vec<String>, bool) {
    let mut walk = walk.into_iter();
    let matches = walk
        .by_ref()
        .take(TRUNCATE_LIMIT)
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    (matches, walk.next().is_some())
}

/// The cluster's namespaces, `default` included, sorted.
fn namespaces(snap: &Snapshot) -> Vec<String> {
    crate::namespaces::all_namespaces(snap)
        .into_iter()
        .map(|ns| ns.name)
        .collect()
}

/// Jobs in `namespace` (`*`: all) whose ID starts with `prefix`, in Nomad's order (namespace,
/// then ID).
fn jobs_from<'a>(snap: &'a Snapshot, namespace: &str, prefix: &[u8]) -> Vec<&'a Job> {
    if namespace == "*" {
        let mut jobs: Vec<&Job> = snap
            .jobs()
            .iter()
            .map(|(_, row)| &row.value)
            .filter(|j| j.id.as_bytes().starts_with(prefix))
            .collect();
        jobs.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        return jobs;
    }
    let key = caravan_state::job_key(namespace, utf8_part(prefix));
    keyed_from(snap.jobs(), &key)
        .map(|row| &row.value)
        .filter(|j| j.namespace == namespace && j.id.as_bytes().starts_with(prefix))
        .collect()
}

/// Rows of `table` whose key starts with `prefix`, ascending; unlike `Table::prefixed`, the
/// rows outlive the prefix.
fn keyed_from<'t, T: Document>(
    table: &'t Table<T>,
    prefix: &str,
) -> impl Iterator<Item = &'t Arc<Row<T>>> {
    table
        .range_from(prefix)
        .take_while(move |(key, _)| key.starts_with(prefix))
        .map(|(_, row)| row)
}

/// What one search reads: the snapshot, the namespace searched, the namespaces known.
struct View<'a> {
    snap: &'a Snapshot,
    /// The namespace searched; `*` for all.
    namespace: &'a str,
    /// Namespaces known to the cluster (only filled when the namespace context is searched).
    namespaces: Vec<String>,
    /// Node pools: the built-ins and the stored ones, by name.
    node_pools: Vec<String>,
    /// With `*`: the namespaces the caller may read (empty: all).
    allowed: &'a [String],
}

impl<'a> View<'a> {
    fn new(
        snap: &'a Snapshot,
        namespace: &'a str,
        allowed: &'a [String],
        contexts: &[SearchContext],
    ) -> Self {
        let namespaces = if contexts.contains(&SearchContext::Namespaces) {
            // Only those the caller may read, when the gateway said which.
            namespaces(snap)
                .into_iter()
                .filter(|n| allowed.is_empty() || allowed.contains(n))
                .collect()
        } else {
            Vec::new()
        };
        let mut node_pools: Vec<String> = BUILT_IN_NODE_POOLS
            .iter()
            .map(|p| (*p).to_owned())
            .chain(snap.node_pools().iter().map(|(name, _)| name.clone()))
            .collect();
        node_pools.sort();
        node_pools.dedup();
        View {
            snap,
            namespace,
            namespaces,
            node_pools,
            allowed,
        }
    }

    fn in_namespace(&self, namespace: &str) -> bool {
        (self.namespace == "*" || self.namespace == namespace)
            && (self.allowed.is_empty() || self.allowed.iter().any(|n| n == namespace))
    }

    /// The IDs (names for jobs, namespaces and node pools) of context `ctx` from `prefix` on,
    /// as Nomad's state store walks them, at most `max`; `None` when the prefix cannot walk a
    /// UUID index.
    fn prefix_walk(&self, ctx: SearchContext, prefix: &[u8], max: usize) -> Option<Vec<&str>> {
        let snap = self.snap;
        let uuid = || uuid_walk_prefix(prefix);
        let ids: Vec<&str> = match ctx {
            SearchContext::Jobs => jobs_from(snap, self.namespace, prefix)
                .into_iter()
                .filter(|j| self.in_namespace(&j.namespace))
                .take(max)
                .map(|j| j.id.as_str())
                .collect(),
            SearchContext::Evals => {
                let p = uuid()?;
                keyed_from(snap.evals(), &p)
                    .filter(|r| self.in_namespace(&r.value.namespace))
                    .take(max)
                    .map(|r| r.value.id.as_str())
                    .collect()
            }
            SearchContext::Allocs => {
                let p = uuid()?;
                keyed_from(snap.allocs(), &p)
                    .filter(|r| self.in_namespace(&r.value.namespace))
                    .take(max)
                    .map(|r| r.value.id.as_str())
                    .collect()
            }
            SearchContext::Deployments => {
                let p = uuid()?;
                keyed_from(snap.deployments(), &p)
                    .filter(|r| self.in_namespace(&r.value.namespace))
                    .take(max)
                    .map(|r| r.value.id.as_str())
                    .collect()
            }
            SearchContext::Nodes => {
                let p = uuid()?;
                keyed_from(snap.nodes(), &p)
                    .take(max)
                    .map(|r| r.value.id.as_str())
                    .collect()
            }
            SearchContext::Namespaces => self
                .namespaces
                .iter()
                .map(String::as_str)
                .filter(|n| n.as_bytes().starts_with(prefix))
                .take(max)
                .collect(),
            SearchContext::NodePools => self
                .node_pools
                .iter()
                .map(String::as_str)
                .filter(|n| n.as_bytes().starts_with(prefix))
                .take(max)
                .collect(),
            // No such objects in Caravan yet.
            _ => Vec::new(),
        };
        Some(ids)
    }

    /// The index of the table behind a context (0 for contexts without one).
    fn index_of(&self, ctx: SearchContext) -> u64 {
        match ctx {
            SearchContext::Jobs => self.snap.jobs().index(),
            SearchContext::Evals => self.snap.evals().index(),
            SearchContext::Allocs => self.snap.allocs().index(),
            SearchContext::Nodes => self.snap.nodes().index(),
            SearchContext::Deployments => self.snap.deployments().index(),
            _ => 0,
        }
    }

    /// The fuzzy search of one context that Nomad matches by name, into `acc`.
    fn fuzzy(&self, ctx: SearchContext, text: &str, acc: &mut FuzzyAccumulator) {
        let snap = self.snap;
        match ctx {
            SearchContext::Jobs => {
                let jobs: Vec<&Job> = jobs_from(snap, self.namespace, b"")
                    .into_iter()
                    .filter(|j| self.in_namespace(&j.namespace))
                    .collect();
                acc.scan(jobs, |job| job_matches(job, text));
            }
            SearchContext::Allocs => {
                let allocs = snap
                    .allocs()
                    .iter()
                    .map(|(_, r)| &r.value)
                    .filter(|a| self.in_namespace(&a.namespace));
                acc.scan(allocs, |a| {
                    single(ctx, &a.name, text, || {
                        vec![a.namespace.clone(), a.id.clone()]
                    })
                });
            }
            SearchContext::Nodes => {
                let nodes = snap.nodes().iter().map(|(_, r)| &r.value);
                acc.scan(nodes, |n| single(ctx, &n.name, text, || vec![n.id.clone()]));
            }
            SearchContext::NodePools => {
                acc.scan(&self.node_pools, |p| {
                    single(ctx, p, text, || vec![p.to_owned()])
                });
            }
            SearchContext::Namespaces => {
                acc.scan(&self.namespaces, |n| single(ctx, n, text, Vec::new));
            }
            // No such objects in Caravan yet.
            _ => {}
        }
    }
}

/// A fuzzy match before sorting: the position of the text in the name is its score.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scored {
    id: String,
    scope: Vec<String>,
    score: usize,
}

/// Matches grouped by context.
type MatchSet = Vec<(SearchContext, Vec<Scored>)>;

/// Where `text` (lower case) occurs in `name`, ignoring case.
fn fuzzy_index(name: &str, text: &str) -> Option<usize> {
    name.to_lowercase().find(text)
}

fn scored(name: &str, text: &str, scope: impl FnOnce() -> Vec<String>) -> Option<Scored> {
    fuzzy_index(name, text).map(|score| Scored {
        id: name.to_owned(),
        scope: scope(),
        score,
    })
}

/// The match of an object searched by its one name.
fn single(
    ctx: SearchContext,
    name: &str,
    text: &str,
    scope: impl FnOnce() -> Vec<String>,
) -> MatchSet {
    match scored(name, text, scope) {
        Some(m) => vec![(ctx, vec![m])],
        None => Vec::new(),
    }
}

/// A string driver option of a task (`command`, `image`, `class`); empty otherwise.
fn config_str<'a>(
    config: Option<&'a std::collections::BTreeMap<String, Value>>,
    key: &str,
) -> &'a str {
    config
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The matches inside one job, grouped by context in a fixed order: the job's name, its
/// groups, services (group and task level), tasks, and the task's docker image, exec or
/// raw_exec command, or java class. Scopes run from the namespace down to the parent.
fn job_matches(job: &Job, text: &str) -> MatchSet {
    let ns = &job.namespace;
    let mut by_ctx: MatchSet = [
        SearchContext::Jobs,
        SearchContext::Groups,
        SearchContext::Services,
        SearchContext::Tasks,
        SearchContext::Images,
        SearchContext::Commands,
        SearchContext::Classes,
    ]
    .into_iter()
    .map(|c| (c, Vec::new()))
    .collect();
    let mut add = |ctx: SearchContext, name: &str, parents: &[&str]| {
        let scope = || {
            std::iter::once(ns.as_str())
                .chain(parents.iter().copied())
                .map(str::to_owned)
                .collect()
        };
        if let Some(m) = scored(name, text, scope)
            && let Some((_, list)) = by_ctx.iter_mut().find(|(c, _)| *c == ctx)
        {
            list.push(m);
        }
    };
    let id = job.id.as_str();
    add(SearchContext::Jobs, &job.name, &[id]);
    for group in job.task_groups.iter().flatten() {
        let g = group.name.as_str();
        add(SearchContext::Groups, g, &[id]);
        for service in group.services.iter().flatten() {
            add(SearchContext::Services, &service.name, &[id, g]);
        }
        for task in group.tasks.iter().flatten() {
            let t = task.name.as_str();
            add(SearchContext::Tasks, t, &[id, g]);
            for service in task.services.iter().flatten() {
                add(SearchContext::Services, &service.name, &[id, g, t]);
            }
            let config = task.config.as_ref();
            match task.driver.as_str() {
                "docker" => add(
                    SearchContext::Images,
                    config_str(config, "image"),
                    &[id, g, t],
                ),
                "exec" | "raw_exec" => add(
                    SearchContext::Commands,
                    config_str(config, "command"),
                    &[id, g, t],
                ),
                "java" => add(
                    SearchContext::Classes,
                    config_str(config, "class"),
                    &[id, g, t],
                ),
                _ => {}
            }
        }
    }
    by_ctx.retain(|(_, list)| !list.is_empty());
    by_ctx
}

/// Nomad's `getFuzzyMatches`: matches per context up to `limit_results`, truncations where a
/// context hit that limit or where the last object looked at matched with more left unread.
struct FuzzyAccumulator {
    limits: FuzzyLimits,
    matches: HashMap<SearchContext, Vec<Scored>>,
    truncations: HashMap<SearchContext, bool>,
}

impl FuzzyAccumulator {
    fn new(limits: FuzzyLimits) -> Self {
        FuzzyAccumulator {
            limits,
            matches: HashMap::new(),
            truncations: HashMap::new(),
        }
    }

    /// Looks at the first `limit_query` objects of `objects`.
    fn scan<T>(
        &mut self,
        objects: impl IntoIterator<Item = T>,
        mut matcher: impl FnMut(T) -> MatchSet,
    ) {
        let mut objects = objects.into_iter().peekable();
        for i in 0..self.limits.limit_query {
            let Some(object) = objects.next() else {
                break;
            };
            let limited = i + 1 == self.limits.limit_query && objects.peek().is_some();
            self.accumulate(limited, matcher(object));
        }
    }

    /// Adds the matches of one object. As in Nomad, the first match that does not fit, or
    /// the first match of the last object looked at (when more were left), ends the object.
    fn accumulate(&mut self, limited: bool, set: MatchSet) {
        for (ctx, list) in set {
            for m in list {
                let kept = self.matches.entry(ctx).or_default();
                if kept.len() < self.limits.limit_results {
                    kept.push(m);
                } else {
                    self.truncations.insert(ctx, true);
                    return;
                }
                if limited {
                    self.truncations.insert(ctx, true);
                    return;
                }
            }
        }
    }

    /// Each context's matches, best first: earliest match, then shortest name, then by name.
    fn sorted(self) -> (MatchSet, HashMap<SearchContext, bool>) {
        let mut out: Vec<_> = self.matches.into_iter().collect();
        for (_, list) in &mut out {
            list.sort_by(|a, b| (a.score, a.id.len(), &a.id).cmp(&(b.score, b.id.len(), &b.id)));
        }
        out.sort_by_key(|(ctx, _)| *ctx);
        (out, self.truncations)
    }
}

/// The contexts fuzzy search matches by UUID prefix instead of by name.
fn fuzzy_by_prefix(ctx: SearchContext) -> bool {
    matches!(
        ctx,
        SearchContext::Evals
            | SearchContext::Deployments
            | SearchContext::ScalingPolicies
            | SearchContext::Volumes
    )
}

fn namespace_of(q: &v1::QueryOptions) -> &str {
    if q.namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        &q.namespace
    }
}

#[derive(Clone)]
pub struct SearchService {
    store: Store,
    limits: FuzzyLimits,
}

impl SearchService {
    pub fn new(server: Arc<Server>) -> Self {
        SearchService {
            store: server.store.clone(),
            limits: FuzzyLimits::default(),
        }
    }
}

#[tonic::async_trait]
impl search_server::Search for SearchService {
    async fn prefix_search(
        &self,
        request: Request<v1::PrefixSearchRequest>,
    ) -> Result<Response<v1::PrefixSearchResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let contexts = SearchContext::expand(&req.context)
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let snap = self.store.snapshot();
        let view = View::new(&snap, namespace_of(&q), &q.namespaces, &contexts);
        let walk_prefix = round_down_if_odd(&req.prefix, &req.context);
        let mut matches = Vec::new();
        let mut truncations = HashMap::new();
        for &ctx in &contexts {
            let Some(walk) = view.prefix_walk(ctx, walk_prefix, TRUNCATE_LIMIT + 1) else {
                continue;
            };
            let (ids, truncated) = take_prefix_matches(walk, &req.prefix);
            matches.push(v1::ContextIds {
                context: ctx.name().to_owned(),
                ids,
            });
            truncations.insert(ctx.name().to_owned(), truncated);
        }
        let index = contexts.iter().map(|c| view.index_of(*c)).max();
        Ok(Response::new(v1::PrefixSearchResponse {
            matches,
            truncations,
            meta: Some(query_meta(index.unwrap_or_default(), String::new())),
        }))
    }

    async fn fuzzy_search(
        &self,
        request: Request<v1::FuzzySearchRequest>,
    ) -> Result<Response<v1::FuzzySearchResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let min = self.limits.min_term_length;
        if req.text.len() < min {
            return Err(ServerError::BadRequest(format!(
                "fuzzy search query must be at least {min} characters, got {}",
                req.text.len()
            ))
            .into());
        }
        let contexts = SearchContext::expand(&req.context)
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let text = req.text.to_lowercase();
        let snap = self.store.snapshot();
        let view = View::new(&snap, namespace_of(&q), &q.namespaces, &contexts);
        let walk_prefix = round_down_if_odd(&q.prefix, &req.context);
        let mut matches = Vec::new();
        let mut truncations: HashMap<String, bool> = HashMap::new();
        let mut acc = FuzzyAccumulator::new(self.limits);
        for &ctx in &contexts {
            if fuzzy_by_prefix(ctx) {
                // Matched by the text as a UUID prefix, among the IDs walked from the
                // request's prefix option.
                let Some(walk) = view.prefix_walk(ctx, walk_prefix, TRUNCATE_LIMIT + 1) else {
                    continue;
                };
                let (ids, truncated) = take_prefix_matches(walk, &req.text);
                matches.push(v1::ContextFuzzyMatches {
                    context: ctx.name().to_owned(),
                    matches: ids
                        .into_iter()
                        .map(|id| v1::FuzzyMatch {
                            id,
                            scope: Vec::new(),
                        })
                        .collect(),
                });
                truncations.insert(ctx.name().to_owned(), truncated);
            } else {
                // Every context searched by name reports a truncation, matched or not.
                truncations.insert(ctx.name().to_owned(), false);
                view.fuzzy(ctx, &text, &mut acc);
            }
        }
        let (found, truncated) = acc.sorted();
        for (ctx, list) in found {
            matches.push(v1::ContextFuzzyMatches {
                context: ctx.name().to_owned(),
                matches: list
                    .into_iter()
                    .map(|m| v1::FuzzyMatch {
                        id: m.id,
                        scope: m.scope,
                    })
                    .collect(),
            });
        }
        for (ctx, t) in truncated {
            truncations.insert(ctx.name().to_owned(), t);
        }
        let index = contexts.iter().map(|c| view.index_of(*c)).max();
        Ok(Response::new(v1::FuzzySearchResponse {
            matches,
            truncations,
            meta: Some(query_meta(index.unwrap_or_default(), String::new())),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn odd_prefixes_round_down_except_for_jobs() {
        assert_eq!(round_down_if_odd("abc", "allocs"), b"ab");
        assert_eq!(round_down_if_odd("abc", "all"), b"ab");
        assert_eq!(round_down_if_odd("abc", "jobs"), b"abc");
        assert_eq!(round_down_if_odd("ab", "evals"), b"ab");
        // Hyphens do not count.
        assert_eq!(round_down_if_odd("e3671fa4-2", "nodes"), b"e3671fa4-");
        assert_eq!(round_down_if_odd("e3671fa4-21", "nodes"), b"e3671fa4-21");
        assert_eq!(round_down_if_odd("", "all"), b"");
    }

    #[test]
    fn uuid_prefixes_walk_canonical_ids() {
        assert_eq!(uuid_walk_prefix(b"").as_deref(), Some(""));
        assert_eq!(uuid_walk_prefix(b"AB").as_deref(), Some("ab"));
        assert_eq!(
            uuid_walk_prefix(b"e3671fa4-21").as_deref(),
            Some("e3671fa4-21")
        );
        assert_eq!(
            uuid_walk_prefix(b"e3671fa421").as_deref(),
            Some("e3671fa4-21")
        );
        assert_eq!(uuid_walk_prefix(b"abc"), None);
        assert_eq!(uuid_walk_prefix(b"zz"), None);
        assert_eq!(uuid_walk_prefix(b"a-b-c-d-e-f1"), None);
        assert_eq!(uuid_walk_prefix(&[b'a'; 38]), None);
    }

    #[test]
    fn prefix_matches_look_at_twenty_ids() {
        let ids: Vec<String> = (0..25).map(|i| format!("job-{i:02}")).collect();
        let (m, t) = take_prefix_matches(ids.iter().map(String::as_str), "job-");
        assert_eq!((m.len(), t), (20, true));
        let (m, t) = take_prefix_matches(ids.iter().take(20).map(String::as_str), "job-1");
        assert_eq!((m.len(), t), (10, false));
        // Only the first twenty walked are looked at (a rounded-down walk).
        let (m, t) = take_prefix_matches(ids.iter().map(String::as_str), "job-2");
        assert_eq!((m.len(), t), (0, true));
    }

    #[test]
    fn fuzzy_matches_sort_by_position_length_and_name() {
        let mut acc = FuzzyAccumulator::new(FuzzyLimits::default());
        for name in ["my-web", "web-b", "web", "web-a", "awebz"] {
            acc.accumulate(false, single(SearchContext::Nodes, name, "web", Vec::new));
        }
        let (out, trunc) = acc.sorted();
        let names: Vec<&str> = out[0].1.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(names, ["web", "web-a", "web-b", "awebz", "my-web"]);
        assert!(trunc.is_empty());
    }

    #[test]
    fn fuzzy_truncates_at_the_query_and_result_limits() {
        let limits = FuzzyLimits {
            limit_query: 3,
            limit_results: 2,
            min_term_length: 2,
        };
        // Results limit: the third match does not fit.
        let mut acc = FuzzyAccumulator::new(limits);
        acc.scan(["aa", "ab", "ac"], |n| {
            single(SearchContext::Nodes, n, "a", Vec::new)
        });
        let (out, trunc) = acc.sorted();
        assert_eq!(out[0].1.len(), 2);
        assert_eq!(trunc.get(&SearchContext::Nodes), Some(&true));
        // Query limit: the last object looked at matched and more were left.
        let limits = FuzzyLimits {
            limit_results: 100,
            ..limits
        };
        let mut acc = FuzzyAccumulator::new(limits);
        acc.scan(["aa", "ab", "ac", "ad"], |n| {
            single(SearchContext::Nodes, n, "a", Vec::new)
        });
        let (out, trunc) = acc.sorted();
        assert_eq!(out[0].1.len(), 3);
        assert_eq!(trunc.get(&SearchContext::Nodes), Some(&true));
        // ... but not when that last object did not match.
        let mut acc = FuzzyAccumulator::new(limits);
        acc.scan(["aa", "ab", "zz", "ad"], |n| {
            single(SearchContext::Nodes, n, "a", Vec::new)
        });
        assert!(acc.sorted().1.is_empty());
    }

    #[test]
    fn jobs_expand_into_their_parts_with_scopes() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "ID": "web-job", "Name": "web-job", "Namespace": "default",
            "TaskGroups": [{
                "Name": "webgroup",
                "Services": [{"Name": "web-svc"}],
                "Tasks": [
                    {"Name": "webtask", "Driver": "raw_exec", "Config": {"command": "/bin/web"},
                     "Services": [{"Name": "task-web"}]},
                    {"Name": "img", "Driver": "docker", "Config": {"image": "web:1"}},
                    {"Name": "cls", "Driver": "java", "Config": {"class": "Web"}},
                    {"Name": "odd", "Driver": "exec", "Config": {"command": 5}}
                ]
            }]
        }))
        .unwrap();
        let got: HashMap<SearchContext, Vec<(String, Vec<String>)>> = job_matches(&job, "web")
            .into_iter()
            .map(|(c, l)| (c, l.into_iter().map(|s| (s.id, s.scope)).collect()))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got[&SearchContext::Jobs],
            [("web-job".to_string(), s(&["default", "web-job"]))]
        );
        assert_eq!(
            got[&SearchContext::Groups],
            [("webgroup".to_string(), s(&["default", "web-job"]))]
        );
        assert_eq!(
            got[&SearchContext::Services],
            [
                (
                    "web-svc".to_string(),
                    s(&["default", "web-job", "webgroup"])
                ),
                (
                    "task-web".to_string(),
                    s(&["default", "web-job", "webgroup", "webtask"])
                )
            ]
        );
        assert_eq!(
            got[&SearchContext::Tasks],
            [(
                "webtask".to_string(),
                s(&["default", "web-job", "webgroup"])
            )]
        );
        assert_eq!(
            got[&SearchContext::Commands],
            [(
                "/bin/web".to_string(),
                s(&["default", "web-job", "webgroup", "webtask"])
            )]
        );
        assert_eq!(
            got[&SearchContext::Images],
            [(
                "web:1".to_string(),
                s(&["default", "web-job", "webgroup", "img"])
            )]
        );
        assert_eq!(
            got[&SearchContext::Classes],
            [(
                "Web".to_string(),
                s(&["default", "web-job", "webgroup", "cls"])
            )]
        );
    }
}
