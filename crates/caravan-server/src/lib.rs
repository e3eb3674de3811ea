//! caravan-server: owns the cluster state and serves it over gRPC to the gateway and to client
//! agents. Writes go through the state store's single writer; reads and blocking queries are
//! answered from in-memory snapshots.
//!
//! Layout:
//! - [`acl`]: the Acl service (bootstrap, policies, tokens, roles, one-time tokens) and token
//!   resolution.
//! - [`agent`]: the Agent service: this server's host data and live log lines (`server_id`).
//! - [`nodes`]: the Nodes service and the node rules (registration, heartbeats, eligibility,
//!   drain, purge, node evaluations).
//! - [`allocs`]: the Allocs service: list, read, stop; client agents' watch, fetch and status
//!   updates.
//! - [`broker`]: the evaluation broker (priority queue, one eval per job in flight, delayed
//!   and blocked evaluations), fed from the store's change stream.
//! - [`deployments`]: the Deployments service (list, read, a deployment's allocations).
//! - [`drainer`]: moves allocations off draining nodes within `max_parallel` and the deadline.
//! - [`evals`]: the Evals service (list, read, an evaluation's allocations).
//! - [`jobs`]: the Jobs service and the job rules (register, versions, status, summary, stop).
//! - [`namespaces`]: the Namespaces service and the namespace rules (the built-in `default`,
//!   deletion only when unused, what job admission asks of a namespace).
//! - [`node_pools`]: the NodePools service and the pool rules (built-ins, implicit creation by
//!   nodes, deletion only when unused).
//! - [`operator`]: the Operator service: the scheduler configuration and what obeys it.
//! - [`gc`]: the garbage collector of terminal evaluations, allocations, deployments, dead
//!   jobs and down nodes, periodic and forced.
//! - [`heartbeat`]: heartbeat timers that mark silent nodes down.
//! - [`services`]: the Services service: the built-in service catalogue (reads, agents'
//!   registrations, deletes).
//! - [`search`]: the Search service (prefix and fuzzy search over the snapshot).
//! - [`periodic`]: the periodic launcher (children of periodic jobs at their cron times, the
//!   launch record, catch-up after downtime, forced launches).
//! - [`scheduling`]: scheduler workers, the scheduler's view of a snapshot, the plan applier.
//! - [`status`]: leader, peers, regions, server identity.
//! - [`paginate`]: pagination and filtering shared by list queries.
//! - [`query`]: query meta and wait of every read.
//! - [`cache`]: rendered results shared by the blocking queries a change wakes together.
//! - [`error`]: typed errors and their ErrorCode.
//! - [`config`]: server configuration.

pub mod acl;
pub mod agent;
pub mod allocs;
pub mod broker;
pub mod cache;
pub mod config;
pub mod deployments;
pub mod drainer;
pub mod error;
pub mod evals;
pub mod gc;
pub mod heartbeat;
pub mod job_actions;
pub mod job_plan;
pub mod jobs;
pub mod namespaces;
pub mod node_pools;
pub mod nodes;
pub mod operator;
pub mod paginate;
pub mod periodic;
pub mod query;
pub mod scheduling;
pub mod search;
pub mod services;
pub mod status;

use std::future::Future;
use std::sync::Arc;

use caravan_proto::v1::acl_server::AclServer;
use caravan_proto::v1::agent_server::AgentServer;
use caravan_proto::v1::allocs_server::AllocsServer;
use caravan_proto::v1::deployments_server::DeploymentsServer;
use caravan_proto::v1::evals_server::EvalsServer;
use caravan_proto::v1::jobs_server::JobsServer;
use caravan_proto::v1::namespaces_server::NamespacesServer;
use caravan_proto::v1::node_pools_server::NodePoolsServer;
use caravan_proto::v1::nodes_server::NodesServer;
use caravan_proto::v1::operator_server::OperatorServer;
use caravan_proto::v1::search_server::SearchServer;
use caravan_proto::v1::services_server::ServicesServer;
use caravan_proto::v1::status_server::StatusServer;
use caravan_state::Store;
use caravan_structs::SchedulerConfiguration;
use tokio::net::TcpListener;

pub use config::ServerConfig;
pub use error::ServerError;

/// Reported as `nomad.version`-compatible version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// HTTP/2 streams one gateway or agent connection may hold open at once.
pub const MAX_CONCURRENT_STREAMS: u32 = 65_536;
/// HTTP/2 flow-control windows (the defaults are 64 KiB).
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;

/// Largest gRPC message accepted (node documents with many attributes, big allocation lists).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Shared by every service of one server.
pub struct Server {
    pub store: Store,
    pub broker: Arc<broker::Broker>,
    pub config: Arc<ServerConfig>,
    pub heartbeats: Arc<heartbeat::Heartbeats>,
    /// The scheduler configuration until an operator writes one.
    pub scheduler_defaults: Arc<SchedulerConfiguration>,
    pub started_at: i64,
}

impl Server {
    /// Starts the background loops (heartbeat timers, drainer, periodic launcher, scheduler
    /// workers) over an opened store.
    pub fn start(store: Store, config: ServerConfig) -> Arc<Server> {
        let config = Arc::new(config);
        let heartbeats = heartbeat::Heartbeats::new(config.clone());
        heartbeats.initialize(&store);
        tokio::spawn(heartbeats.clone().run(store.clone()));
        tokio::spawn(drainer::run(store.clone()));
        tokio::spawn(periodic::run(store.clone(), periodic::system_clock()));
        gc::start(&store, &config.gc);
        let scheduler_defaults = Arc::new(config.scheduler_defaults());
        let broker =
            scheduling::start(&store, config.scheduler_workers, scheduler_defaults.clone());
        let started_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Arc::new(Server {
            store,
            broker,
            config,
            heartbeats,
            scheduler_defaults,
            started_at,
        })
    }

    /// The gRPC services of this server.
    pub fn routes(self: &Arc<Self>) -> tonic::service::Routes {
        let nodes = NodesServer::new(nodes::NodesService::new(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let evals = EvalsServer::new(evals::EvalsService::new(self.clone()))
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let jobs = JobsServer::new(jobs::JobsService::new(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let allocs = AllocsServer::new(allocs::AllocsService::new(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let deployments =
            DeploymentsServer::new(deployments::DeploymentsService::new(self.clone()))
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let status = StatusServer::new(status::StatusService::new(self.clone()));
        let node_pools = NodePoolsServer::new(node_pools::NodePoolsService::new(self.clone()))
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let operator = OperatorServer::new(operator::OperatorService::new(self.clone()));
        let search = SearchServer::new(search::SearchService::new(self.clone()));
        let agent = AgentServer::new(agent::AgentService::new(
            self.clone(),
            caravan_telemetry::Monitor::global().clone(),
        ));
        let namespaces = NamespacesServer::new(namespaces::NamespacesService::new(self.clone()));
        let services = ServicesServer::new(services::ServicesService::new(self.clone()));
        let acl = AclServer::new(acl::AclService::new(self.clone()))
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        tonic::service::Routes::new(nodes)
            .add_service(agent)
            .add_service(node_pools)
            .add_service(operator)
            .add_service(deployments)
            .add_service(allocs)
            .add_service(evals)
            .add_service(jobs)
            .add_service(status)
            .add_service(search)
            .add_service(namespaces)
            .add_service(services)
            .add_service(acl)
    }

    /// Serves gRPC on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let store = self.store.clone();
        // In-flight blocking reads answer at once, so the graceful stop does not wait out
        // their waits.
        let shutdown = async move {
            shutdown.await;
            store.release_waiters();
        };
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            // Every blocking query of every gateway is one stream: allow many, but a bounded
            // number, and windows large enough that thousands of answers at once flow freely.
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW)
            .add_routes(self.routes())
            .serve_with_incoming_shutdown(
                // The builder's tcp_nodelay does not reach sockets of an incoming stream.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
    }
}
