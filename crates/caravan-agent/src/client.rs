//! The agent's life with its servers: fingerprint, register, mark the node ready, heartbeat
//! within the TTL the server hands out, and register again whenever the server no longer
//! knows the node (a wiped or restarted store).

use std::future::Future;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use caravan_proto::v1::nodes_client::NodesClient;
use caravan_proto::v1::{RegisterNodeRequest, UpdateNodeStatusRequest};
use caravan_proto::{ErrorCode, error_code_of};
use caravan_structs::node::NODE_STATUS_READY;
use rand::Rng;
use tonic::transport::{Channel, Endpoint};

use caravan_drivers::Drivers;
use caravan_proto::v1::agent_server::AgentServer;
use caravan_proto::v1::client_allocs_server::ClientAllocsServer;
use caravan_proto::v1::client_fs_server::ClientFsServer;
use caravan_proto::v1::client_stats_server::ClientStatsServer;
use caravan_structs::Node;

use crate::agent_service::AgentService;
use crate::allocs::manager::AllocManager;
use crate::allocs::reporter::Reporter;
use crate::allocs::runner::RunnerContext;
use crate::allocs::service::ClientAllocsService;
use crate::allocs::services::ServiceClient;
use crate::allocs::store::LocalState;
use crate::config::AgentConfig;
use crate::fingerprint::{self, FingerprintConfig};
use crate::fs::ClientFsService;
use crate::identity::{self, Identity};
use crate::node::{build_node, driver_probes};
use crate::stats_service::ClientStatsService;
use crate::{metadata, stats};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("node identity in {dir}: {source}")]
    Identity { dir: String, source: std::io::Error },
    #[error("fingerprinting failed: {0}")]
    Fingerprint(#[from] fingerprint::FingerprintError),
    #[error("invalid server address {addr:?}: {source}")]
    ServerAddress {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("no servers configured")]
    NoServers,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Serve(String),
}

/// How long a stopping agent waits for its tasks to die (dev mode).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Retry delays after failures grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn channel(servers: &[String]) -> Result<Channel, AgentError> {
    let mut endpoints = Vec::new();
    for addr in servers {
        let e = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| AgentError::ServerAddress {
                addr: addr.clone(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        endpoints.push(e);
    }
    match endpoints.len() {
        0 => Err(AgentError::NoServers),
        1 => Ok(endpoints.remove(0).connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1 << attempt.min(6));
    base.min(MAX_BACKOFF)
}

/// A heartbeat comfortably inside the TTL: between a third and a half of it.
fn heartbeat_interval(ttl: Duration) -> Duration {
    let ttl = if ttl.is_zero() {
        Duration::from_secs(10)
    } else {
        ttl
    };
    let low = ttl / 3;
    let spread = (ttl / 2).saturating_sub(low).as_millis().max(1) as u64;
    low + Duration::from_millis(rand::rng().random_range(0..spread))
}

/// Runs the agent until `shutdown` resolves. `node_id` is set once the node is known.
pub async fn run(
    cfg: AgentConfig,
    node_id: Arc<OnceLock<String>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    let identity =
        identity::load_or_create(&cfg.data_dir).map_err(|source| AgentError::Identity {
            dir: cfg.data_dir.display().to_string(),
            source,
        })?;
    let _ = node_id.set(identity.node_id.clone());
    let inherited = caravan_isolation::cloexec_inherited_fds();
    if inherited > 0 {
        tracing::debug!(inherited, "inherited descriptors kept from tasks");
    }
    let channel = channel(&cfg.servers)?;
    let listener = tokio::net::TcpListener::bind(cfg.rpc_bind)
        .await
        .map_err(|source| AgentError::Listen {
            addr: cfg.rpc_bind.to_string(),
            source,
        })?;
    let mut cfg = cfg;
    if cfg.rpc_advertise.is_empty() {
        let local = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: cfg.rpc_bind.to_string(),
            source,
        })?;
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            local.ip().to_string()
        };
        cfg.rpc_advertise = format!("{host}:{}", local.port());
    }
    let drivers = Drivers::builtin(cfg.executor.clone(), cfg.ephemeral_tasks);
    let fp_cfg = FingerprintConfig {
        data_dir: cfg.data_dir.clone(),
        advertise_http: cfg.http_advertise.clone(),
        network_interface: cfg.network_interface.clone(),
        version: caravan_structs::NOMAD_API_VERSION.to_owned(),
        service_discovery: cfg.nomad_service_discovery,
        drivers: driver_probes(&drivers),
    };
    // The node is known before anything runs: restored tasks that restart need its attributes.
    let node = Arc::new(RwLock::new(
        fingerprint_node(&cfg, &identity, &fp_cfg).await?,
    ));
    let reporter = Reporter::default();
    let manager = AllocManager::new(RunnerContext {
        drivers,
        node: node.clone(),
        region: cfg.region.clone(),
        alloc_base: cfg.data_dir.join("alloc"),
        local: LocalState::new(&cfg.data_dir),
        reporter: reporter.clone(),
        terminal: Arc::new(tokio::sync::Notify::new()),
        gc: cfg.gc,
        services: ServiceClient::new(channel.clone(), &identity),
    });
    let exec_sessions = crate::exec::ExecSessions::new(&cfg.data_dir);
    let leftovers = exec_sessions.kill_leftovers();
    if leftovers > 0 {
        tracing::info!(
            leftovers,
            "killed exec sessions a previous agent left running"
        );
    }
    let restored = manager.restore();
    if restored > 0 {
        tracing::info!(restored, "restored allocations from the local state");
    }
    let node_meta = metadata::NodeMeta::load(&cfg.data_dir, cfg.meta.clone());
    let stats_service = ClientStatsService::new(
        manager.clone(),
        stats::HostSampler::start(node.clone(), cfg.data_dir.join("alloc")),
        stats::AllocStats::new(node.clone()),
        node_meta.clone(),
    );
    let meta_sync = tokio::spawn(metadata::sync(node_meta, channel.clone(), node.clone()));
    let rpc = tonic::transport::Server::builder()
        .add_service(ClientAllocsServer::new(ClientAllocsService::new(
            manager.clone(),
            exec_sessions,
        )))
        .add_service(ClientFsServer::new(ClientFsService::new(manager.clone())))
        .add_service(ClientStatsServer::new(stats_service))
        .add_service(AgentServer::new(AgentService::new(
            identity.node_id.clone(),
            caravan_telemetry::Monitor::global().clone(),
        )))
        .serve_with_incoming(
            // Accepted sockets get TCP_NODELAY only from the incoming stream itself: without it
            // an exec session's small frames wait ~40 ms for Nagle.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        );
    let background = tokio::spawn(reporter.clone().run(channel.clone(), identity.clone()));
    let result = tokio::select! {
        () = shutdown => Ok(()),
        result = lifecycle(&cfg, &identity, channel, node, fp_cfg, manager.clone()) => result,
        served = rpc => served.map_err(|e| AgentError::Serve(e.to_string())),
    };
    if cfg.ephemeral_tasks {
        stop_all(&manager, &reporter).await;
    }
    background.abort();
    meta_sync.abort();
    result
}

/// Stops every allocation and waits (bounded) for the tasks to die and the reports to leave.
async fn stop_all(manager: &AllocManager, reporter: &Reporter) {
    let runners = manager.runners();
    for r in &runners {
        r.stop();
    }
    let all = futures::future::join_all(runners.iter().map(|r| r.wait_terminal()));
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("tasks still running after the shutdown grace period");
    }
    let drained = async {
        while !reporter.is_idle() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
}

async fn fingerprint_node(
    cfg: &AgentConfig,
    identity: &Identity,
    fp_cfg: &FingerprintConfig,
) -> Result<Node, AgentError> {
    let probe_cfg = fp_cfg.clone();
    // Fingerprinting reads /proc, /sys and statvfs: keep it off the async workers.
    let fp = tokio::task::spawn_blocking(move || fingerprint::fingerprint(&probe_cfg))
        .await
        .map_err(|e| AgentError::Serve(format!("fingerprinting task failed: {e}")))??;
    let mut node = build_node(cfg, identity, &fp);
    metadata::overlay(&mut node, &cfg.data_dir);
    Ok(node)
}

async fn lifecycle(
    cfg: &AgentConfig,
    identity: &Identity,
    channel: Channel,
    node: Arc<RwLock<Node>>,
    fp_cfg: FingerprintConfig,
    manager: AllocManager,
) -> Result<(), AgentError> {
    let mut client = NodesClient::new(channel.clone());
    let mut watching = false;
    loop {
        let ttl = register(cfg, identity, &mut client, &node, &fp_cfg).await?;
        if !watching {
            // Allocations are followed once the server knows the node.
            tokio::spawn(manager.clone().watch(channel.clone(), identity.clone()));
            watching = true;
        }
        heartbeat_until_unknown(identity, &mut client, ttl).await;
        tracing::warn!(node_id = %identity.node_id, "server does not know this node; registering again");
    }
}

/// Fingerprints and registers until the server accepts, then marks the node ready.
async fn register(
    cfg: &AgentConfig,
    identity: &Identity,
    client: &mut NodesClient<Channel>,
    node_cell: &Arc<RwLock<Node>>,
    fp_cfg: &FingerprintConfig,
) -> Result<Duration, AgentError> {
    let mut attempt = 0;
    loop {
        let node = match fingerprint_node(cfg, identity, fp_cfg).await {
            Ok(node) => node,
            Err(e) => {
                tracing::error!(error = %e, "fingerprinting failed");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        if let Ok(mut cell) = node_cell.write() {
            *cell = node.clone();
        }
        let node_json = match serde_json::to_vec(&node) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the node");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        let registered = client
            .register(RegisterNodeRequest {
                node_json: node_json.into(),
                write: None,
            })
            .await;
        match registered {
            Ok(_) => match update_status(identity, client).await {
                Ok(ttl) => {
                    tracing::info!(node_id = %identity.node_id, name = %cfg.node_name, "node registered and ready");
                    return Ok(ttl);
                }
                Err(status) => {
                    tracing::warn!(error = %status.message(), "marking the node ready failed");
                }
            },
            Err(status) => {
                tracing::warn!(code = ?status.code(), error = %status.message(), servers = ?cfg.servers, "registration failed; retrying");
            }
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

async fn update_status(
    identity: &Identity,
    client: &mut NodesClient<Channel>,
) -> Result<Duration, tonic::Status> {
    let resp = client
        .update_status(UpdateNodeStatusRequest {
            node_id: identity.node_id.clone(),
            secret_id: identity.secret_id.clone(),
            status: NODE_STATUS_READY.to_owned(),
            write: None,
        })
        .await?
        .into_inner();
    Ok(Duration::from_millis(resp.heartbeat_ttl_ms))
}

/// Heartbeats until the server answers that the node does not exist.
async fn heartbeat_until_unknown(
    identity: &Identity,
    client: &mut NodesClient<Channel>,
    mut ttl: Duration,
) {
    let mut failures = 0;
    loop {
        let wait = if failures == 0 {
            heartbeat_interval(ttl)
        } else {
            backoff(failures).min(heartbeat_interval(ttl))
        };
        tokio::time::sleep(wait).await;
        match update_status(identity, client).await {
            Ok(new_ttl) => {
                if failures > 0 {
                    tracing::info!("heartbeats reach the server again");
                }
                failures = 0;
                ttl = new_ttl;
            }
            Err(status) if error_code_of(&status) == ErrorCode::NotFound => return,
            Err(status) => {
                failures += 1;
                tracing::warn!(code = ?status.code(), error = %status.message(), failures, "heartbeat failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_land_inside_the_ttl() {
        for _ in 0..200 {
            let i = heartbeat_interval(Duration::from_secs(10));
            assert!(
                i >= Duration::from_millis(3333) && i <= Duration::from_secs(5),
                "{i:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert!(backoff(0) < backoff(3));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
