//! caravan-gateway: the HTTP edge of Caravan. It speaks the Nomad HTTP API and keeps no state:
//! every request is parsed, checked and forwarded over gRPC to the server (or a node's agent),
//! and the answer rendered exactly as Nomad renders it.
//!
//! Layout:
//! - [`query`]: the shared query conventions (blocking, consistency, pagination, filter,
//!   namespace, region, token, pretty), parsed once per request.
//! - [`body`]: JSON request bodies, read as Go's encoding/json reads them.
//! - [`response`]: JSON responses and the `X-Nomad-*` headers.
//! - [`error`]: errors as Nomad renders them (plain text + status from the ErrorCode).
//! - [`acl`]: the capability each route declares.
//! - [`routes`]: the route table, one file per noun.
//! - [`duration`]: Go duration syntax.
//! - [`request_log`]: the debug line of every request.
//! - [`framer`]: Nomad's stream framing of `/v1/agent/monitor` (batches, heartbeats).

pub mod acl;
pub mod agents;
pub mod authz;
pub mod body;
pub mod duration;
pub mod error;
pub mod framer;
pub mod query;
pub mod request_log;
pub mod response;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use caravan_proto::v1::acl_client::AclClient;
use caravan_proto::v1::agent_client::AgentClient;
use caravan_proto::v1::allocs_client::AllocsClient;
use caravan_proto::v1::deployments_client::DeploymentsClient;
use caravan_proto::v1::evals_client::EvalsClient;
use caravan_proto::v1::jobs_client::JobsClient;
use caravan_proto::v1::namespaces_client::NamespacesClient;
use caravan_proto::v1::node_pools_client::NodePoolsClient;
use caravan_proto::v1::nodes_client::NodesClient;
use caravan_proto::v1::operator_client::OperatorClient;
use caravan_proto::v1::search_client::SearchClient;
use caravan_proto::v1::services_client::ServicesClient;
use caravan_proto::v1::status_client::StatusClient;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::Predicate as _;
use tower_http::compression::predicate::SizeAbove;

/// Request bodies larger than this are refused with 413 unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub region: String,
    pub datacenter: String,
    pub node_name: String,
    pub data_dir: String,
    /// The address clients reach this gateway at (host:port).
    pub http_advertise: String,
    pub max_body_bytes: usize,
    /// Whether a server runs in this process (`agent -dev`), for `/v1/agent/self`.
    pub server_enabled: bool,
    /// The node ID of the client agent in this process, once it registered.
    pub local_node_id: Arc<OnceLock<String>>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            region: "global".to_owned(),
            datacenter: "dc1".to_owned(),
            node_name: String::new(),
            data_dir: String::new(),
            http_advertise: "127.0.0.1:4646".to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            server_enabled: false,
            local_node_id: Arc::new(OnceLock::new()),
        }
    }
}

/// What every handler gets: gRPC clients and the configuration. Clones share the channels.
/// Largest gRPC message taken from or sent to the server (big job and allocation lists).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    channel: Channel,
    config: Arc<GatewayConfig>,
    agents: agents::AgentPool,
    authorizer: Arc<authz::Authorizer>,
    /// Set when [`serve`] starts stopping: endless streams (monitors) end then.
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    pub fn new(channel: Channel, config: GatewayConfig) -> Self {
        AppState {
            channel,
            config: Arc::new(config),
            agents: agents::AgentPool::default(),
            authorizer: Arc::new(authz::Authorizer::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Resolves once the gateway is stopping.
    pub fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// Resolves and caches the callers' tokens.
    pub fn authorizer(&self) -> Arc<authz::Authorizer> {
        self.authorizer.clone()
    }

    /// The channel to a client agent's gRPC address (pooled).
    pub fn agent(&self, addr: &str) -> Result<Channel, error::ApiError> {
        self.agents.channel(addr)
    }

    pub fn nodes(&self) -> NodesClient<Channel> {
        NodesClient::new(self.channel.clone())
    }

    pub fn evals(&self) -> EvalsClient<Channel> {
        EvalsClient::new(self.channel.clone())
    }

    pub fn allocs(&self) -> AllocsClient<Channel> {
        AllocsClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn deployments(&self) -> DeploymentsClient<Channel> {
        DeploymentsClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn jobs(&self) -> JobsClient<Channel> {
        JobsClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn acl(&self) -> AclClient<Channel> {
        AclClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn namespaces(&self) -> NamespacesClient<Channel> {
        NamespacesClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn services(&self) -> ServicesClient<Channel> {
        ServicesClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn node_pools(&self) -> NodePoolsClient<Channel> {
        NodePoolsClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn operator(&self) -> OperatorClient<Channel> {
        OperatorClient::new(self.channel.clone())
    }

    pub fn search(&self) -> SearchClient<Channel> {
        SearchClient::new(self.channel.clone())
    }

    /// The server's Agent service (`server_id` requests).
    pub fn server_agent(&self) -> AgentClient<Channel> {
        AgentClient::new(self.channel.clone())
    }

    pub fn status(&self) -> StatusClient<Channel> {
        StatusClient::new(self.channel.clone())
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }
}

/// A lazily connecting channel to the servers at `addrs` (host:port each).
pub fn server_channel(addrs: &[String]) -> Result<Channel, tonic::transport::Error> {
    let endpoints = addrs
        .iter()
        .map(|a| {
            Endpoint::from_shared(format!("http://{a}")).map(|e| {
                e.connect_timeout(std::time::Duration::from_secs(5))
                    .tcp_nodelay(true)
                    // Many blocking queries share this connection; see the server's windows.
                    .initial_connection_window_size(16 * 1024 * 1024)
                    .initial_stream_window_size(2 * 1024 * 1024)
                    .http2_keep_alive_interval(std::time::Duration::from_secs(30))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match endpoints.as_slice() {
        [one] => one.connect_lazy(),
        _ => Channel::balance_list(endpoints.into_iter()),
    })
}

/// The whole HTTP application: routes plus the conventions every response shares.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    routes::router(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(request_log::log_request))
        // Nomad gzips every response the client accepts gzip for, however small, and always
        // answers with `Vary: Accept-Encoding`.
        .layer(
            CompressionLayer::new()
                .gzip(true)
                // JSON compresses well even at the fastest level, which costs far less CPU.
                .quality(CompressionLevel::Fastest)
                // Streams (marked for proxies with X-Accel-Buffering) would be held back
                // by the encoder's buffer: they go out as they come.
                .compress_when(SizeAbove::new(0).and(
                    |_: http::StatusCode,
                     _: http::Version,
                     h: &http::HeaderMap,
                     _: &http::Extensions| {
                        !h.contains_key("x-accel-buffering")
                    },
                )),
        )
}

/// How long a stopping gateway lets in-flight requests finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves the API on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for at most [`SHUTDOWN_GRACE`] (a blocking query held open by a remote server must not hold
/// the process for minutes).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping_tx = state.stopping.clone();
    let stopping = state.stopping();
    let app = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let signal = async move {
        shutdown.await;
        stopping_tx.send_replace(true);
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let deadline = async move {
        stopping.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("in-flight requests still running after the shutdown grace; closing");
            Ok(())
        }
    }
}
