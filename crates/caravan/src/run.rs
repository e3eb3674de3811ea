//! Starting each command: resolve the settings (flag > env > config file > default), open what
//! is needed, serve until SIGINT/SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use caravan_agent::AgentConfig;
use caravan_gateway::duration::parse_go_duration;
use caravan_gateway::{AppState, GatewayConfig};
use caravan_server::{Server, ServerConfig};
use caravan_state::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::FileConfig;
use crate::{AgentArgs, Common, GatewayArgs, MigrateArgs, ServerArgs};

const DEFAULT_HTTP_PORT: u16 = 4646;
const DEFAULT_RPC_PORT: u16 = 4647;
const DEFAULT_AGENT_PORT: u16 = 4648;

fn gc_limits(args: &AgentArgs) -> caravan_agent::GcLimits {
    let defaults = caravan_agent::GcLimits::default();
    caravan_agent::GcLimits {
        max_allocs: args.gc_max_allocs.unwrap_or(defaults.max_allocs),
        disk_usage_threshold: args
            .gc_disk_usage_threshold
            .unwrap_or(defaults.disk_usage_threshold),
    }
}

/// Tasks are supervised by this very binary (`caravan executor`).
fn executor_program() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the caravan binary to run task executors")
}

fn init_logging(common: &Common) {
    let filter = common
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    // stderr at `filter`; `/v1/agent/monitor` subscribers at the level each asks for.
    caravan_telemetry::init_logging(&filter);
}

fn load_file(common: &Common) -> anyhow::Result<FileConfig> {
    match &common.config {
        Some(path) => FileConfig::load(path),
        None => Ok(FileConfig::default()),
    }
}

fn duration_setting(
    name: &str,
    flag: &Option<String>,
    file: &Option<String>,
) -> anyhow::Result<Option<Duration>> {
    match flag.as_ref().or(file.as_ref()) {
        None => Ok(None),
        Some(v) => parse_go_duration(v)
            .map(Some)
            .with_context(|| format!("invalid -{name} {v:?}: want a duration such as 10s")),
    }
}

/// The heartbeat durations of the server: `[min TTL, grace, failover TTL]` from the flags, else
/// the config file's `server` block, else the defaults.
fn apply_heartbeat_settings(
    cfg: &mut ServerConfig,
    [min_ttl, grace, failover]: [&Option<String>; 3],
    file: &FileConfig,
) -> anyhow::Result<()> {
    if let Some(d) = duration_setting("min-heartbeat-ttl", min_ttl, &file.server.min_heartbeat_ttl)?
    {
        cfg.min_heartbeat_ttl = d;
    }
    if let Some(d) = duration_setting("heartbeat-grace", grace, &file.server.heartbeat_grace)? {
        cfg.heartbeat_grace = d;
    }
    if let Some(d) = duration_setting("failover-heartbeat-ttl", failover, &None)? {
        cfg.failover_heartbeat_ttl = d;
    }
    Ok(())
}

/// The garbage collector's thresholds and intervals from the config file's `server` block.
fn apply_gc_settings(cfg: &mut ServerConfig, file: &FileConfig) -> anyhow::Result<()> {
    let server = &file.server;
    let gc = &mut cfg.gc;
    for (name, value, slot) in [
        (
            "eval_gc_threshold",
            &server.eval_gc_threshold,
            &mut gc.eval_threshold,
        ),
        (
            "batch_eval_gc_threshold",
            &server.batch_eval_gc_threshold,
            &mut gc.batch_eval_threshold,
        ),
        (
            "job_gc_threshold",
            &server.job_gc_threshold,
            &mut gc.job_threshold,
        ),
        (
            "deployment_gc_threshold",
            &server.deployment_gc_threshold,
            &mut gc.deployment_threshold,
        ),
        (
            "node_gc_threshold",
            &server.node_gc_threshold,
            &mut gc.node_threshold,
        ),
        (
            "eval_gc_interval",
            &server.eval_gc_interval,
            &mut gc.eval_interval,
        ),
        (
            "job_gc_interval",
            &server.job_gc_interval,
            &mut gc.job_interval,
        ),
        (
            "deployment_gc_interval",
            &server.deployment_gc_interval,
            &mut gc.deployment_interval,
        ),
        (
            "node_gc_interval",
            &server.node_gc_interval,
            &mut gc.node_interval,
        ),
    ] {
        if let Some(d) = duration_setting(name, &None, value)? {
            *slot = d;
        }
    }
    Ok(())
}

/// The ACL settings: `-acl-enabled` or the config file's `acl` block; the bootstrap reset file
/// lives in `<data_dir>/server/`.
fn acl_config(
    common: &Common,
    file: &FileConfig,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<caravan_server::acl::AclConfig> {
    let mut acl = caravan_server::acl::AclConfig {
        enabled: common.acl_enabled || file.acl.enabled.unwrap_or(false),
        bootstrap_reset_file: data_dir.map(|d| d.join("server").join("acl-bootstrap-reset")),
        ..caravan_server::acl::AclConfig::default()
    };
    // Nomad takes the bounds only when non-zero.
    if let Some(d) = duration_setting(
        "token_min_expiration_ttl",
        &None,
        &file.acl.token_min_expiration_ttl,
    )?
    .filter(|d| !d.is_zero())
    {
        acl.token_min_expiration_ttl = d;
    }
    if let Some(d) = duration_setting(
        "token_max_expiration_ttl",
        &None,
        &file.acl.token_max_expiration_ttl,
    )?
    .filter(|d| !d.is_zero())
    {
        acl.token_max_expiration_ttl = d;
    }
    Ok(acl)
}

/// Each setting below: the flag (or its `CARAVAN_*` variable), else the config file, else the
/// default.
fn region(common: &Common, file: &FileConfig) -> String {
    common
        .region
        .clone()
        .or(file.region.clone())
        .unwrap_or_else(|| "global".into())
}

fn datacenter(common: &Common, file: &FileConfig) -> String {
    common
        .datacenter
        .clone()
        .or(file.datacenter.clone())
        .unwrap_or_else(|| "dc1".into())
}

fn data_dir(common: &Common, file: &FileConfig) -> Option<PathBuf> {
    common
        .data_dir
        .clone()
        .or(file.data_dir.clone().map(PathBuf::from))
}

fn servers(flag: &[String], file: &FileConfig) -> Vec<String> {
    if flag.is_empty() {
        file.client.servers.clone().unwrap_or_default()
    } else {
        flag.to_vec()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

fn bind_ip(common: &Common, file: &FileConfig, default: &str) -> anyhow::Result<IpAddr> {
    let raw = common
        .bind
        .clone()
        .or_else(|| file.bind_addr.clone())
        .unwrap_or_else(|| default.to_owned());
    raw.parse()
        .with_context(|| format!("invalid -bind {raw:?}: want an IP address"))
}

/// Pending connections the kernel may queue per listener: bursts of clients (thousands of
/// blocking queries opening at once) must not be dropped at the door. tokio's default is 128.
const LISTEN_BACKLOG: u32 = 4096;

fn listen_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn listen(ip: IpAddr, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    listen_socket(SocketAddr::new(ip, port))
        .with_context(|| format!("cannot listen for {what} on {ip}:{port}"))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A shutdown broadcast every component listens to.
fn shutdown_channel() -> (
    watch::Sender<bool>,
    impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    let (tx, rx) = watch::channel(false);
    let make = move || {
        let mut rx = rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    (tx, make)
}

fn sqlite_url(dir: &Path) -> anyhow::Result<String> {
    let server_dir = dir.join("server");
    std::fs::create_dir_all(&server_dir)
        .with_context(|| format!("cannot create {}", server_dir.display()))?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        server_dir.join("caravan.db").display()
    ))
}

async fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the state store at {}", redact(url)))
}

/// Hides a password in a database URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    init_logging(&args.common);
    let file = load_file(&args.common)?;
    if args.dev {
        dev(args, file).await
    } else {
        client(args, file).await
    }
}

/// Server, gateway and one client agent in one process.
async fn dev(args: AgentArgs, file: FileConfig) -> anyhow::Result<()> {
    let common = &args.common;
    let region = region(common, &file);
    let datacenter = datacenter(common, &file);
    let node_name = args
        .node
        .clone()
        .or(file.name.clone())
        .unwrap_or_else(hostname);
    let ip = bind_ip(common, &file, "127.0.0.1")?;
    // The temporary directory lives as long as the agent and is removed on exit.
    let mut _temp = None;
    let data_dir: PathBuf = match data_dir(common, &file) {
        Some(dir) => dir,
        None => {
            let t = tempfile::Builder::new().prefix("caravan-dev-").tempdir()?;
            let path = t.path().to_owned();
            _temp = Some(t);
            path
        }
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let db_url = match args.database_url.clone().or(file.database_url.clone()) {
        Some(url) => url,
        None => sqlite_url(&data_dir)?,
    };
    let store = open_store(&db_url).await?;

    let rpc_listener = listen(ip, args.rpc_port.or(file.ports.rpc).unwrap_or(0), "gRPC").await?;
    let rpc_addr = rpc_listener.local_addr()?;
    let mut server_cfg = ServerConfig {
        region: region.clone(),
        datacenter: datacenter.clone(),
        name: node_name.clone(),
        rpc_advertise: rpc_addr.to_string(),
        ..ServerConfig::default()
    };
    apply_heartbeat_settings(
        &mut server_cfg,
        [&args.min_heartbeat_ttl, &args.heartbeat_grace, &None],
        &file,
    )?;
    apply_gc_settings(&mut server_cfg, &file)?;
    server_cfg.acl = acl_config(common, &file, Some(&data_dir))?;
    let (stop, stopped) = shutdown_channel();
    let server = Server::start(store, server_cfg);
    let server_task = tokio::spawn(server.serve(rpc_listener, stopped()));

    let http_port = args
        .http_port
        .or(file.ports.http)
        .unwrap_or(DEFAULT_HTTP_PORT);
    let http_listener = listen(ip, http_port, "HTTP").await?;
    let http_addr = http_listener.local_addr()?;
    let local_node_id = Arc::new(OnceLock::new());
    let gateway_cfg = GatewayConfig {
        region: region.clone(),
        datacenter: datacenter.clone(),
        node_name: node_name.clone(),
        data_dir: data_dir.display().to_string(),
        http_advertise: http_addr.to_string(),
        max_body_bytes: args
            .max_body_bytes
            .unwrap_or(caravan_gateway::DEFAULT_MAX_BODY_BYTES),
        server_enabled: true,
        local_node_id: local_node_id.clone(),
    };
    let channel = caravan_gateway::server_channel(&[rpc_addr.to_string()])?;
    let gateway_task = tokio::spawn(caravan_gateway::serve(
        http_listener,
        AppState::new(channel, gateway_cfg),
        stopped(),
    ));

    let agent_cfg = AgentConfig {
        servers: vec![rpc_addr.to_string()],
        data_dir: data_dir.join("client"),
        node_name: node_name.clone(),
        datacenter: datacenter.clone(),
        region: region.clone(),
        node_class: args
            .node_class
            .clone()
            .or(file.client.node_class.clone())
            .unwrap_or_default(),
        node_pool: args
            .node_pool
            .clone()
            .or(file.client.node_pool.clone())
            .unwrap_or_default(),
        meta: file.client.meta.clone().unwrap_or_default(),
        http_advertise: args
            .http_advertise
            .clone()
            .unwrap_or_else(|| http_addr.to_string()),
        network_interface: args
            .network_interface
            .clone()
            .or(file.client.network_interface.clone()),
        nomad_service_discovery: file.client.nomad_service_discovery.unwrap_or(true),
        rpc_bind: SocketAddr::new(ip, args.agent_port.unwrap_or(0)),
        rpc_advertise: args.agent_advertise.clone().unwrap_or_default(),
        executor: executor_program()?,
        // The dev data directory is throwaway: its tasks go with the agent.
        ephemeral_tasks: true,
        gc: gc_limits(&args),
    };
    let agent_task = tokio::spawn(caravan_agent::run(agent_cfg, local_node_id, stopped()));

    println!("==> Caravan agent started in -dev mode");
    println!("    HTTP API: http://{http_addr}");
    println!("    gRPC:     {rpc_addr}");
    println!("    Node:     {node_name} (datacenter {datacenter}, region {region})");
    println!("    Data dir: {}", data_dir.display());

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = agent_task.await;
    let _ = gateway_task.await;
    let _ = server_task.await;
    Ok(())
}

/// A client agent joining existing servers.
async fn client(args: AgentArgs, file: FileConfig) -> anyhow::Result<()> {
    let common = &args.common;
    let servers = servers(&args.servers, &file);
    if servers.is_empty() {
        bail!("no servers to join: give -servers HOST:4647 (or -dev to run everything here)");
    }
    let data_dir = data_dir(common, &file)
        .context("a client agent needs -data-dir to keep its node ID across restarts")?;
    let ip = bind_ip(common, &file, "0.0.0.0")?;
    let http_advertise = match args.http_advertise.clone() {
        Some(a) => a,
        None => {
            let host = if ip.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                ip.to_string()
            };
            format!(
                "{host}:{}",
                args.http_port
                    .or(file.ports.http)
                    .unwrap_or(DEFAULT_HTTP_PORT)
            )
        }
    };
    let cfg = AgentConfig {
        servers,
        data_dir,
        node_name: args
            .node
            .clone()
            .or(file.name.clone())
            .unwrap_or_else(hostname),
        datacenter: datacenter(common, &file),
        region: region(common, &file),
        node_class: args
            .node_class
            .clone()
            .or(file.client.node_class.clone())
            .unwrap_or_default(),
        node_pool: args
            .node_pool
            .clone()
            .or(file.client.node_pool.clone())
            .unwrap_or_default(),
        meta: file.client.meta.clone().unwrap_or_default(),
        http_advertise,
        network_interface: args
            .network_interface
            .clone()
            .or(file.client.network_interface.clone()),
        nomad_service_discovery: file.client.nomad_service_discovery.unwrap_or(true),
        rpc_bind: SocketAddr::new(ip, args.agent_port.unwrap_or(DEFAULT_AGENT_PORT)),
        rpc_advertise: args.agent_advertise.clone().unwrap_or_default(),
        executor: executor_program()?,
        ephemeral_tasks: args.ephemeral_tasks,
        gc: gc_limits(&args),
    };
    let (stop, stopped) = shutdown_channel();
    let task = tokio::spawn(caravan_agent::run(
        cfg,
        Arc::new(OnceLock::new()),
        stopped(),
    ));
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    init_logging(&args.common);
    let file = load_file(&args.common)?;
    let common = &args.common;
    let db_url = match args.database_url.clone().or(file.database_url.clone()) {
        Some(url) => url,
        None => match data_dir(common, &file) {
            Some(dir) => sqlite_url(&dir)?,
            None => bail!(
                "no store: give -database-url postgres://… (or -data-dir for an embedded SQLite store)"
            ),
        },
    };
    let ip = bind_ip(common, &file, "0.0.0.0")?;
    let port = args.rpc_port.or(file.ports.rpc).unwrap_or(DEFAULT_RPC_PORT);
    let listener = listen(ip, port, "gRPC").await?;
    let local = listener.local_addr()?;
    let advertise = args.advertise.clone().unwrap_or_else(|| {
        if ip.is_unspecified() {
            format!("127.0.0.1:{}", local.port())
        } else {
            local.to_string()
        }
    });
    let name = args
        .name
        .clone()
        .or(file.name.clone())
        .unwrap_or_else(hostname);
    let mut cfg = ServerConfig {
        region: region(common, &file),
        datacenter: datacenter(common, &file),
        name,
        rpc_advertise: advertise.clone(),
        ..ServerConfig::default()
    };
    apply_heartbeat_settings(
        &mut cfg,
        [
            &args.min_heartbeat_ttl,
            &args.heartbeat_grace,
            &args.failover_heartbeat_ttl,
        ],
        &file,
    )?;
    apply_gc_settings(&mut cfg, &file)?;
    cfg.acl = acl_config(common, &file, data_dir(common, &file).as_deref())?;
    let store = open_store(&db_url).await?;
    tracing::info!(database = %redact(&db_url), rpc = %local, advertise = %advertise, "server started");
    println!("==> Caravan server started; gRPC on {local}");
    let server = Server::start(store, cfg);
    server.serve(listener, shutdown_signal()).await?;
    Ok(())
}

pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    init_logging(&args.common);
    let file = load_file(&args.common)?;
    let common = &args.common;
    let servers = servers(&args.servers, &file);
    if servers.is_empty() {
        bail!("no servers: give -servers HOST:4647");
    }
    let ip = bind_ip(common, &file, "0.0.0.0")?;
    let port = args
        .http_port
        .or(file.ports.http)
        .unwrap_or(DEFAULT_HTTP_PORT);
    let listener = listen(ip, port, "HTTP").await?;
    let local = listener.local_addr()?;
    let cfg = GatewayConfig {
        region: region(common, &file),
        datacenter: datacenter(common, &file),
        node_name: file.name.clone().unwrap_or_else(hostname),
        data_dir: String::new(),
        http_advertise: local.to_string(),
        max_body_bytes: args
            .max_body_bytes
            .unwrap_or(caravan_gateway::DEFAULT_MAX_BODY_BYTES),
        server_enabled: false,
        local_node_id: Arc::new(OnceLock::new()),
    };
    let channel = caravan_gateway::server_channel(&servers)?;
    println!("==> Caravan gateway started; HTTP API on http://{local}");
    caravan_gateway::serve(listener, AppState::new(channel, cfg), shutdown_signal()).await?;
    Ok(())
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    Store::migrate(&args.database_url)
        .await
        .with_context(|| format!("migrating {}", redact(&args.database_url)))?;
    println!("==> migrations applied to {}", redact(&args.database_url));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
