//! The route table: every path, its methods, its handler and the ACL capability the spec names
//! for it. One file per noun below.

mod acl;
mod agent;
mod allocs;
mod client_allocs;
mod client_exec;
mod client_fs;
mod client_stats;
mod deployments;
mod evals;
mod job_actions;
mod jobs;
mod jobs_parse;
mod namespaces;
mod node_pools;
mod nodes;
mod operator;
mod periodic;
mod scaling;
mod search;
mod services;
mod status;

use axum::RequestExt;
use axum::Router;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use http::{Method, StatusCode, Uri};

use crate::AppState;
use crate::acl::{Capability, RequiredCapability};

/// One declared route.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub path: &'static str,
    pub methods: &'static [Method],
    pub capability: Capability,
}

const GET: &[Method] = &[Method::GET];
const PUT_POST: &[Method] = &[Method::PUT, Method::POST];
const DELETE: &[Method] = &[Method::DELETE];
/// Only POST (PUT is refused, as by Nomad's metadata endpoint).
const POST: &[Method] = &[Method::POST];
/// Endpoints Nomad serves on any method.
const GET_PUT_POST: &[Method] = &[Method::GET, Method::PUT, Method::POST];
const GET_PUT_POST_DELETE: &[Method] = &[Method::GET, Method::PUT, Method::POST, Method::DELETE];

struct RouteTable {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl RouteTable {
    fn new() -> Self {
        RouteTable {
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    fn route(
        mut self,
        methods: &'static [Method],
        path: &'static str,
        capability: Capability,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        self.specs.push(RouteSpec {
            path,
            methods,
            capability,
        });
        self
    }
}

fn filter(methods: &[Method]) -> MethodFilter {
    methods
        .iter()
        .filter_map(|m| MethodFilter::try_from(m.clone()).ok())
        .reduce(MethodFilter::or)
        .unwrap_or(MethodFilter::GET)
}

macro_rules! handler {
    ($methods:expr, $h:expr) => {
        on(filter($methods), $h)
    };
}

fn table() -> RouteTable {
    use Capability::*;
    RouteTable::new()
        // Nodes (seeds/004).
        .route(GET, "/v1/nodes", NodeRead, handler!(GET, nodes::list))
        // Node pools: literal paths, so they win over `/v1/node/{node_id}`.
        .route(
            GET,
            "/v1/node/pools",
            Authenticated,
            handler!(GET, node_pools::list),
        )
        .route(
            PUT_POST,
            "/v1/node/pools",
            NodePool("write"),
            handler!(PUT_POST, node_pools::upsert),
        )
        .route(
            GET,
            "/v1/node/pool/{pool_name}",
            NodePool("read"),
            handler!(GET, node_pools::read),
        )
        .route(
            PUT_POST,
            "/v1/node/pool/{pool_name}",
            NodePool("write"),
            handler!(PUT_POST, node_pools::upsert_at),
        )
        .route(
            DELETE,
            "/v1/node/pool/{pool_name}",
            NodePool("delete"),
            handler!(DELETE, node_pools::delete),
        )
        .route(
            GET,
            "/v1/node/pool/{pool_name}/nodes",
            NodeRead,
            handler!(GET, node_pools::nodes),
        )
        .route(
            GET,
            "/v1/node/pool/{pool_name}/jobs",
            NodePool("read"),
            handler!(GET, node_pools::jobs),
        )
        .route(
            GET,
            "/v1/node/{node_id}",
            NodeRead,
            handler!(GET, nodes::read),
        )
        .route(
            GET,
            "/v1/node/{node_id}/allocations",
            NodeRead,
            handler!(GET, nodes::allocations),
        )
        .route(
            PUT_POST,
            "/v1/node/{node_id}/evaluate",
            NodeWrite,
            handler!(PUT_POST, nodes::evaluate),
        )
        .route(
            PUT_POST,
            "/v1/node/{node_id}/drain",
            NodeWrite,
            handler!(PUT_POST, nodes::drain),
        )
        .route(
            PUT_POST,
            "/v1/node/{node_id}/eligibility",
            NodeWrite,
            handler!(PUT_POST, nodes::eligibility),
        )
        .route(
            PUT_POST,
            "/v1/node/{node_id}/purge",
            NodeWrite,
            handler!(PUT_POST, nodes::purge),
        )
        // Evaluations.
        .route(
            GET,
            "/v1/evaluations",
            Namespace("read-job"),
            handler!(GET, evals::list),
        )
        .route(
            GET,
            "/v1/evaluation/{eval_id}",
            Namespace("read-job"),
            handler!(GET, evals::read),
        )
        .route(
            GET,
            "/v1/evaluation/{eval_id}/allocations",
            Namespace("read-job"),
            handler!(GET, evals::allocations),
        )
        // Allocations (seeds/001).
        .route(
            GET,
            "/v1/allocations",
            Namespace("read-job"),
            handler!(GET, allocs::list),
        )
        .route(
            GET,
            "/v1/allocation/{alloc_id}",
            ObjectNamespace(&["read-job"]),
            handler!(GET, allocs::read),
        )
        .route(
            PUT_POST,
            "/v1/allocation/{alloc_id}/stop",
            ObjectNamespace(&["alloc-lifecycle"]),
            handler!(PUT_POST, allocs::stop),
        )
        .route(
            GET,
            "/v1/allocation/{alloc_id}/services",
            ObjectNamespace(&["read-job"]),
            handler!(GET, services::alloc_services),
        )
        .route(
            GET_PUT_POST,
            "/v1/allocation/{alloc_id}/checks",
            ObjectNamespace(&["read-job"]),
            handler!(GET_PUT_POST, services::checks),
        )
        // The built-in service catalogue (SERVICES.md §2).
        .route(
            GET,
            "/v1/services",
            Namespace("read-job"),
            handler!(GET, services::list),
        )
        // Malformed paths: refused before any object is reached, token or not (as Nomad's
        // handler does before its RPC).
        .route(
            GET,
            "/v1/service/",
            None,
            handler!(GET, services::missing_name),
        )
        .route(
            GET,
            "/v1/service/{service_name}",
            Namespace("read-job"),
            handler!(GET, services::read),
        )
        .route(
            DELETE,
            "/v1/service/{service_name}/",
            None,
            handler!(DELETE, services::missing_id),
        )
        .route(
            DELETE,
            "/v1/service/{service_name}/{service_id}",
            Namespace("submit-job"),
            handler!(DELETE, services::delete),
        )
        .route(
            GET_PUT_POST_DELETE,
            "/v1/service/{service_name}/{service_id}/{*rest}",
            None,
            handler!(GET_PUT_POST_DELETE, services::invalid_uri),
        )
        // Deployments.
        .route(
            GET,
            "/v1/deployments",
            Namespace("read-job"),
            handler!(GET, deployments::list),
        )
        .route(
            GET,
            "/v1/deployment/{deployment_id}",
            Namespace("read-job"),
            handler!(GET, deployments::read),
        )
        .route(
            GET,
            "/v1/deployment/allocations/{deployment_id}",
            Namespace("read-job"),
            handler!(GET, deployments::allocations),
        )
        // Jobs.
        .route(
            GET,
            "/v1/jobs",
            Namespace("list-jobs"),
            handler!(GET, jobs::list),
        )
        .route(
            PUT_POST,
            "/v1/jobs",
            Namespace("submit-job"),
            handler!(PUT_POST, jobs::register),
        )
        .route(
            GET,
            "/v1/job/{job_id}",
            Namespace("read-job"),
            handler!(GET, jobs::read),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}",
            Namespace("submit-job"),
            handler!(PUT_POST, jobs::register_at),
        )
        .route(
            DELETE,
            "/v1/job/{job_id}",
            Namespace("submit-job"),
            handler!(DELETE, jobs::deregister),
        )
        .route(
            GET,
            "/v1/job/{job_id}/summary",
            Namespace("read-job"),
            handler!(GET, jobs::summary),
        )
        .route(
            GET,
            "/v1/job/{job_id}/versions",
            Namespace("read-job"),
            handler!(GET, jobs::versions),
        )
        .route(
            GET,
            "/v1/job/{job_id}/allocations",
            Namespace("read-job"),
            handler!(GET, jobs::allocations),
        )
        .route(
            GET,
            "/v1/job/{job_id}/evaluations",
            Namespace("read-job"),
            handler!(GET, jobs::evaluations),
        )
        .route(
            GET,
            "/v1/job/{job_id}/services",
            Namespace("read-job"),
            handler!(GET, services::job_services),
        )
        .route(
            GET,
            "/v1/job/{job_id}/deployments",
            Namespace("read-job"),
            handler!(GET, jobs::deployments),
        )
        .route(
            GET,
            "/v1/job/{job_id}/deployment",
            Namespace("read-job"),
            handler!(GET, jobs::latest_deployment),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/evaluate",
            Namespace("read-job"),
            handler!(PUT_POST, jobs::evaluate),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/plan",
            Namespace("submit-job"),
            handler!(PUT_POST, jobs::plan),
        )
        .route(
            GET,
            "/v1/job/{job_id}/scale",
            Namespace("read-job-scaling"),
            handler!(GET, job_actions::scale_status),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/scale",
            Namespace("scale-job"),
            handler!(PUT_POST, job_actions::scale),
        )
        .route(
            GET,
            "/v1/job/{job_id}/submission",
            Namespace("read-job"),
            handler!(GET, jobs::submission),
        )
        .route(
            GET,
            "/v1/scaling/policies",
            Namespace("list-scaling-policies"),
            handler!(GET, scaling::list),
        )
        .route(
            GET,
            "/v1/scaling/policy/{policy_id}",
            Namespace("read-scaling-policy"),
            handler!(GET, scaling::read),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/revert",
            Namespace("submit-job"),
            handler!(PUT_POST, job_actions::revert),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/stable",
            Namespace("submit-job"),
            handler!(PUT_POST, job_actions::stable),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/dispatch",
            Namespace("dispatch-job"),
            handler!(PUT_POST, job_actions::dispatch),
        )
        .route(
            PUT_POST,
            "/v1/job/{job_id}/periodic/force",
            Namespace("submit-job"),
            handler!(PUT_POST, periodic::force),
        )
        .route(
            PUT_POST,
            "/v1/jobs/parse",
            Namespace("parse-job"),
            handler!(PUT_POST, jobs_parse::parse_job),
        )
        .route(
            PUT_POST,
            "/v1/validate/job",
            Namespace("read-job"),
            handler!(PUT_POST, jobs::validate),
        )
        // Lifecycle requests served by the agent holding the allocation (seeds/001, 003).
        .route(
            PUT_POST,
            "/v1/client/allocation/{alloc_id}/signal",
            ObjectNamespace(&["alloc-lifecycle"]),
            handler!(PUT_POST, client_allocs::signal),
        )
        .route(
            GET_PUT_POST,
            "/v1/client/allocation/{alloc_id}/restart",
            ObjectNamespace(&["alloc-lifecycle"]),
            handler!(GET_PUT_POST, client_allocs::restart),
        )
        .route(
            GET_PUT_POST,
            "/v1/client/allocation/{alloc_id}/gc",
            ObjectNamespace(&["submit-job"]),
            handler!(GET_PUT_POST, client_allocs::gc),
        )
        // An interactive command in a task, over a WebSocket (seeds/001 "Exec Allocation").
        .route(
            GET,
            "/v1/client/allocation/{alloc_id}/exec",
            ObjectNamespace(&["alloc-exec"]),
            handler!(GET, client_exec::exec),
        )
        .route(
            GET_PUT_POST,
            "/v1/client/gc",
            NodeWrite,
            handler!(GET_PUT_POST, client_allocs::gc_all),
        )
        // Resource usage and node metadata, served by the node's agent (seeds/003).
        .route(
            GET_PUT_POST,
            "/v1/client/stats",
            NodeRead,
            handler!(GET_PUT_POST, client_stats::host_stats),
        )
        .route(
            GET_PUT_POST,
            "/v1/client/allocation/{alloc_id}/checks",
            ObjectNamespace(&["read-job"]),
            handler!(GET_PUT_POST, services::checks),
        )
        .route(
            GET_PUT_POST,
            "/v1/client/allocation/{alloc_id}/stats",
            ObjectNamespace(&["read-job"]),
            handler!(GET_PUT_POST, client_stats::alloc_stats),
        )
        .route(
            GET,
            "/v1/client/metadata",
            NodeRead,
            handler!(GET, client_stats::read_metadata),
        )
        .route(
            POST,
            "/v1/client/metadata",
            NodeWrite,
            handler!(POST, client_stats::update_metadata),
        )
        // Allocation files and logs (seeds/003), served by the agent holding the allocation.
        .route(
            GET,
            "/v1/client/fs/ls/{alloc_id}",
            ObjectNamespace(&["read-fs"]),
            handler!(GET, client_fs::ls),
        )
        .route(
            GET,
            "/v1/client/fs/stat/{alloc_id}",
            ObjectNamespace(&["read-fs"]),
            handler!(GET, client_fs::stat),
        )
        .route(
            GET,
            "/v1/client/fs/cat/{alloc_id}",
            ObjectNamespace(&["read-fs"]),
            handler!(GET, client_fs::cat),
        )
        .route(
            GET,
            "/v1/client/fs/readat/{alloc_id}",
            ObjectNamespace(&["read-fs"]),
            handler!(GET, client_fs::readat),
        )
        .route(
            GET,
            "/v1/client/fs/stream/{alloc_id}",
            ObjectNamespace(&["read-fs"]),
            handler!(GET, client_fs::stream),
        )
        .route(
            GET,
            "/v1/client/fs/logs/{alloc_id}",
            ObjectNamespace(&["read-logs", "read-fs"]),
            handler!(GET, client_fs::logs),
        )
        .route(
            GET,
            "/v1/client/fs/{*rest}",
            Namespace("read-fs"),
            handler!(GET, client_fs::unknown),
        )
        // The scheduler configuration.
        .route(
            GET,
            "/v1/operator/scheduler/configuration",
            OperatorRead,
            handler!(GET, operator::read),
        )
        .route(
            PUT_POST,
            "/v1/operator/scheduler/configuration",
            OperatorWrite,
            handler!(PUT_POST, operator::update),
        )
        // ACLs: the server decides what each caller may do.
        .route(
            PUT_POST,
            "/v1/acl/bootstrap",
            AclEndpoint,
            handler!(PUT_POST, acl::bootstrap),
        )
        .route(
            GET,
            "/v1/acl/policies",
            AclEndpoint,
            handler!(GET, acl::list_policies),
        )
        .route(
            GET,
            "/v1/acl/policy/{name}",
            AclEndpoint,
            handler!(GET, acl::read_policy),
        )
        .route(
            PUT_POST,
            "/v1/acl/policy/{name}",
            AclEndpoint,
            handler!(PUT_POST, acl::upsert_policy),
        )
        .route(
            DELETE,
            "/v1/acl/policy/{name}",
            AclEndpoint,
            handler!(DELETE, acl::delete_policy),
        )
        .route(
            GET,
            "/v1/acl/tokens",
            AclEndpoint,
            handler!(GET, acl::list_tokens),
        )
        .route(
            PUT_POST,
            "/v1/acl/token",
            AclEndpoint,
            handler!(PUT_POST, acl::create_token),
        )
        .route(
            GET,
            "/v1/acl/token/self",
            AclEndpoint,
            handler!(GET, acl::token_self),
        )
        .route(
            PUT_POST,
            "/v1/acl/token/onetime",
            AclEndpoint,
            handler!(PUT_POST, acl::create_one_time_token),
        )
        .route(
            PUT_POST,
            "/v1/acl/token/onetime/exchange",
            AclEndpoint,
            handler!(PUT_POST, acl::exchange_one_time_token),
        )
        .route(
            GET,
            "/v1/acl/token/{accessor_id}",
            AclEndpoint,
            handler!(GET, acl::read_token),
        )
        .route(
            PUT_POST,
            "/v1/acl/token/{accessor_id}",
            AclEndpoint,
            handler!(PUT_POST, acl::update_token),
        )
        .route(
            DELETE,
            "/v1/acl/token/{accessor_id}",
            AclEndpoint,
            handler!(DELETE, acl::delete_token),
        )
        .route(
            GET,
            "/v1/acl/roles",
            AclEndpoint,
            handler!(GET, acl::list_roles),
        )
        .route(
            PUT_POST,
            "/v1/acl/role",
            AclEndpoint,
            handler!(PUT_POST, acl::create_role),
        )
        .route(
            GET,
            "/v1/acl/role/name/{name}",
            AclEndpoint,
            handler!(GET, acl::read_role_by_name),
        )
        .route(
            GET,
            "/v1/acl/role/{role_id}",
            AclEndpoint,
            handler!(GET, acl::read_role),
        )
        .route(
            PUT_POST,
            "/v1/acl/role/{role_id}",
            AclEndpoint,
            handler!(PUT_POST, acl::update_role),
        )
        .route(
            DELETE,
            "/v1/acl/role/{role_id}",
            AclEndpoint,
            handler!(DELETE, acl::delete_role),
        )
        // Namespaces.
        .route(
            GET,
            "/v1/namespaces",
            Authenticated,
            handler!(GET, namespaces::list),
        )
        .route(
            PUT_POST,
            "/v1/namespace",
            Management,
            handler!(PUT_POST, namespaces::upsert),
        )
        .route(
            GET,
            "/v1/namespace/{name}",
            NamespaceAny,
            handler!(GET, namespaces::read),
        )
        .route(
            PUT_POST,
            "/v1/namespace/{name}",
            Management,
            handler!(PUT_POST, namespaces::upsert_at),
        )
        .route(
            DELETE,
            "/v1/namespace/{name}",
            Management,
            handler!(DELETE, namespaces::delete),
        )
        // Cluster maintenance.
        .route(
            &[Method::PUT],
            "/v1/system/gc",
            Management,
            handler!(&[Method::PUT], operator::system_gc),
        )
        .route(
            &[Method::PUT],
            "/v1/system/reconcile/summaries",
            Management,
            handler!(&[Method::PUT], operator::reconcile_summaries),
        )
        // Search (the CLI resolves ID prefixes with it). Nomad checks the capability of each
        // context searched (node:read for nodes, read-job for jobs and their objects, ...);
        // the route declares the one most contexts need.
        .route(
            PUT_POST,
            "/v1/search",
            Namespace("read-job"),
            handler!(PUT_POST, search::prefix),
        )
        .route(
            PUT_POST,
            "/v1/search/fuzzy",
            Namespace("read-job"),
            handler!(PUT_POST, search::fuzzy),
        )
        // What clients probe first.
        .route(
            GET,
            "/v1/status/leader",
            None,
            handler!(GET, status::leader),
        )
        .route(GET, "/v1/status/peers", None, handler!(GET, status::peers))
        .route(GET, "/v1/regions", None, handler!(GET, status::regions))
        .route(
            GET,
            "/v1/agent/self",
            AgentRead,
            handler!(GET, agent::self_),
        )
        .route(
            GET,
            "/v1/agent/members",
            NodeRead,
            handler!(GET, agent::members),
        )
        .route(GET, "/v1/agent/health", None, handler!(GET, agent::health))
        .route(GET, "/v1/agent/host", AgentRead, handler!(GET, agent::host))
        .route(
            GET,
            "/v1/agent/monitor",
            AgentRead,
            handler!(GET, agent::monitor),
        )
}

/// Every declared route (for tests and documentation).
pub fn specs() -> Vec<RouteSpec> {
    table().specs
}

/// The API router with its conventions: capability declarations, Nomad's 404/405 answers and
/// the `/` redirect.
pub fn router(state: AppState) -> Router {
    let RouteTable { router, specs } = table();
    let specs = std::sync::Arc::new(specs);
    let routed: Router = router
        .route("/", axum::routing::any(root_redirect))
        .method_not_allowed_fallback(invalid_method)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<AppState>, req: Request, next: Next| {
                let specs = specs.clone();
                async move { enforce(&specs, state, req, next).await }
            },
        ))
        .with_state(state);
    let inner = routed.clone();
    routed.fallback(move |req: Request| {
        let inner = inner.clone();
        async move {
            match escape_job_id_slashes(req.uri()) {
                Some(uri) => {
                    let mut req = req;
                    *req.uri_mut() = uri;
                    match tower::ServiceExt::oneshot(inner, req).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    }
                }
                None => not_found().await.into_response(),
            }
        }
    })
}

/// What may follow a job ID under `/v1/job/`, in the order Nomad tries them.
const JOB_PATH_SUFFIXES: &[&str] = &[
    "/evaluate",
    "/allocations",
    "/evaluations",
    "/periodic/force",
    "/plan",
    "/summary",
    "/dispatch",
    "/versions",
    "/revert",
    "/deployments",
    "/deployment",
    "/stable",
    "/scale",
    "/services",
    "/submission",
];

/// Job IDs may hold `/` (dispatched and periodic children), and clients such as python-nomad
/// send them unescaped. Nomad reads the ID as everything between `/v1/job/` and a known
/// suffix; this rewrites such a path to the escaped ID (`a%2Fb`) the routes match.
fn escape_job_id_slashes(uri: &Uri) -> Option<Uri> {
    let rest = uri.path().strip_prefix("/v1/job/")?;
    let (id, suffix) = JOB_PATH_SUFFIXES
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix).map(|id| (id, *suffix)))
        .unwrap_or((rest, ""));
    if !id.contains('/') || id.starts_with('/') || id.ends_with('/') {
        return None;
    }
    let mut path = format!("/v1/job/{}{suffix}", id.replace('/', "%2F"));
    if let Some(q) = uri.query() {
        path.push('?');
        path.push_str(q);
    }
    path.parse().ok()
}

/// Finds the route's declared capability and has the enforcement layer check it.
async fn enforce(specs: &[RouteSpec], state: AppState, mut req: Request, next: Next) -> Response {
    let capability = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| {
            specs
                .iter()
                .find(|s| s.path == p.as_str() && s.methods.contains(req.method()))
        })
        .map(|s| s.capability);
    if let Some(cap) = capability {
        req.extensions_mut().insert(RequiredCapability(cap));
    }
    // The first path parameter names the pool or namespace the route acts on.
    let path_name = match req.extract_parts::<RawPathParams>().await {
        Ok(params) => params.iter().next().map(|(_, v)| v.to_owned()),
        Err(_) => None,
    };
    crate::authz::authorize(state, capability, path_name, req, next).await
}

async fn root_redirect(uri: Uri) -> Redirect {
    match uri.query() {
        Some(q) => Redirect::temporary(&format!("/ui/?{q}")),
        None => Redirect::temporary("/ui/"),
    }
}

async fn invalid_method() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Invalid method",
    )
        .into_response()
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_declares_the_spec_capability() {
        let specs = specs();
        let cap = |path: &str| {
            specs
                .iter()
                .find(|s| s.path == path)
                .map(|s| s.capability)
                .unwrap()
        };
        assert_eq!(cap("/v1/nodes"), Capability::NodeRead);
        assert_eq!(cap("/v1/node/{node_id}"), Capability::NodeRead);
        assert_eq!(cap("/v1/node/{node_id}/allocations"), Capability::NodeRead);
        for p in ["evaluate", "drain", "eligibility", "purge"] {
            assert_eq!(
                cap(&format!("/v1/node/{{node_id}}/{p}")),
                Capability::NodeWrite
            );
        }
        assert_eq!(cap("/v1/jobs"), Capability::Namespace("list-jobs"));
        // The pool list is filtered to the pools the token may read, not refused.
        assert_eq!(cap("/v1/node/pools"), Capability::Authenticated);
        assert_eq!(
            cap("/v1/node/pool/{pool_name}"),
            Capability::NodePool("read")
        );
        let op = |m: Method| {
            specs
                .iter()
                .find(|s| {
                    s.path == "/v1/operator/scheduler/configuration" && s.methods.contains(&m)
                })
                .map(|s| s.capability)
        };
        assert_eq!(op(Method::GET), Some(Capability::OperatorRead));
        assert_eq!(op(Method::PUT), Some(Capability::OperatorWrite));
        assert_eq!(cap("/v1/search"), Capability::Namespace("read-job"));
        assert_eq!(cap("/v1/search/fuzzy"), Capability::Namespace("read-job"));
        assert_eq!(cap("/v1/client/stats"), Capability::NodeRead);
        assert_eq!(cap("/v1/agent/host"), Capability::AgentRead);
        assert_eq!(cap("/v1/agent/monitor"), Capability::AgentRead);
        assert_eq!(
            cap("/v1/client/allocation/{alloc_id}/stats"),
            Capability::ObjectNamespace(&["read-job"])
        );
        let meta = |m: Method| {
            specs
                .iter()
                .find(|s| s.path == "/v1/client/metadata" && s.methods.contains(&m))
                .map(|s| s.capability)
        };
        assert_eq!(meta(Method::GET), Some(Capability::NodeRead));
        assert_eq!(meta(Method::POST), Some(Capability::NodeWrite));
        assert_eq!(meta(Method::PUT), None);
        let mut routes: Vec<_> = specs
            .iter()
            .flat_map(|s| s.methods.iter().map(move |m| (s.path, m.as_str())))
            .collect();
        let declared = routes.len();
        routes.sort();
        routes.dedup();
        assert_eq!(
            routes.len(),
            declared,
            "a path and method are declared twice"
        );
    }

    #[test]
    fn unescaped_job_ids_are_read_up_to_the_suffix() {
        let rewrite = |p: &str| escape_job_id_slashes(&p.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(
            rewrite("/v1/job/p/dispatch-1-ab"),
            Some("/v1/job/p%2Fdispatch-1-ab".to_owned())
        );
        assert_eq!(
            rewrite("/v1/job/p/dispatch-1-ab/allocations?all=true"),
            Some("/v1/job/p%2Fdispatch-1-ab/allocations?all=true".to_owned())
        );
        assert_eq!(
            rewrite("/v1/job/a/b/c/periodic/force"),
            Some("/v1/job/a%2Fb%2Fc/periodic/force".to_owned())
        );
        // Nothing to escape, or not a job path: no rewrite (a plain 404).
        assert_eq!(
            rewrite("/v1/job/a/nope"),
            Some("/v1/job/a%2Fnope".to_owned())
        );
        assert_eq!(rewrite("/v1/job/a"), None);
        assert_eq!(rewrite("/v1/job//x"), None);
        assert_eq!(rewrite("/v1/jobs/a/b"), None);
    }
}
