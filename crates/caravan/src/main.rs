//! The `caravan` binary: wiring only. `caravan agent -dev` runs server, gateway and one client
//! agent in one process with an embedded SQLite store; `server`, `agent` and `gateway` run the
//! parts separately; `migrate` runs the database migrations; `alloc exec` runs a command inside
//! a running task, as `nomad alloc exec` does (`cli/`).

mod cli;
mod config;
mod flags;
mod run;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "caravan",
    version,
    about = "A workload orchestrator that speaks the Nomad HTTP API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a client agent (`-servers`), or everything in one process with `-dev`.
    Agent(AgentArgs),
    /// Run a server against PostgreSQL (or SQLite).
    Server(ServerArgs),
    /// Run the HTTP gateway in front of the servers.
    Gateway(GatewayArgs),
    /// Run the database migrations and exit.
    Migrate(MigrateArgs),
    /// Interact with allocations (exec).
    #[command(subcommand)]
    Alloc(cli::AllocCommand),
    /// Internal: supervise one task for a client agent (started by the agent).
    #[command(hide = true)]
    Executor(ExecutorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// The launch spec written by the agent.
    pub spec: PathBuf,
}

/// Options every command shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Agent configuration file (HCL, or JSON with a .json extension).
    #[arg(long, env = "CARAVAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Region of this agent.
    #[arg(long, env = "CARAVAN_REGION")]
    pub region: Option<String>,
    /// Datacenter of this agent.
    #[arg(long = "dc", env = "CARAVAN_DC")]
    pub datacenter: Option<String>,
    /// Address to bind the listeners to.
    #[arg(long, env = "CARAVAN_BIND")]
    pub bind: Option<String>,
    /// Directory for state (the node ID, the embedded store).
    #[arg(long = "data-dir", env = "CARAVAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter (e.g. info, debug, caravan_server=debug).
    #[arg(long = "log-level", env = "CARAVAN_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Enforce ACLs (tokens, policies); off unless set here or in the config file.
    #[arg(long = "acl-enabled", env = "CARAVAN_ACL_ENABLED")]
    pub acl_enabled: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub common: Common,
    /// Development mode: server, gateway and client in one process, embedded store in a
    /// temporary directory, HTTP on 127.0.0.1:4646.
    #[arg(long, env = "CARAVAN_DEV")]
    pub dev: bool,
    /// Node name (the host name by default).
    #[arg(long = "node", env = "CARAVAN_NODE")]
    pub node: Option<String>,
    /// Node class.
    #[arg(long = "node-class", env = "CARAVAN_NODE_CLASS")]
    pub node_class: Option<String>,
    /// Node pool the node registers in (`default` by default; created if missing).
    #[arg(long = "node-pool", env = "CARAVAN_NODE_POOL")]
    pub node_pool: Option<String>,
    /// HTTP port of the gateway (-dev).
    #[arg(long = "http-port", env = "CARAVAN_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// gRPC port of the server (-dev); free port when absent.
    #[arg(long = "rpc-port", env = "CARAVAN_RPC_PORT")]
    pub rpc_port: Option<u16>,
    /// Servers to join (host:port, comma separated).
    #[arg(long, env = "CARAVAN_SERVERS", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// gRPC port of the client agent (4648 by default; a free port in -dev).
    #[arg(long = "agent-port", env = "CARAVAN_AGENT_PORT")]
    pub agent_port: Option<u16>,
    /// Tasks stop when the agent stops and die when it dies, instead of outliving it to be
    /// re-attached (always so in -dev).
    #[arg(long = "ephemeral-tasks", env = "CARAVAN_EPHEMERAL_TASKS")]
    pub ephemeral_tasks: bool,
    /// Collect terminal allocations beyond this many (Nomad's gc_max_allocs; default 50).
    #[arg(long = "gc-max-allocs", env = "CARAVAN_GC_MAX_ALLOCS")]
    pub gc_max_allocs: Option<usize>,
    /// Collect terminal allocations while the data directory's disk is fuller than this
    /// percentage (Nomad's gc_disk_usage_threshold; default 80).
    #[arg(
        long = "gc-disk-usage-threshold",
        env = "CARAVAN_GC_DISK_USAGE_THRESHOLD"
    )]
    pub gc_disk_usage_threshold: Option<f64>,
    /// Address gateways use to reach this agent's gRPC port (host:port).
    #[arg(long = "agent-advertise", env = "CARAVAN_AGENT_ADVERTISE")]
    pub agent_advertise: Option<String>,
    /// HTTP address this node advertises for its /v1/client endpoints.
    #[arg(long = "http-advertise", env = "CARAVAN_HTTP_ADVERTISE")]
    pub http_advertise: Option<String>,
    /// Network interface to fingerprint (the default route's when absent).
    #[arg(long = "network-interface", env = "CARAVAN_NETWORK_INTERFACE")]
    pub network_interface: Option<String>,
    /// Database for -dev instead of the embedded temporary SQLite.
    #[arg(long = "database-url", env = "CARAVAN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Minimum heartbeat TTL of the server in -dev (Go duration).
    #[arg(long = "min-heartbeat-ttl", env = "CARAVAN_MIN_HEARTBEAT_TTL")]
    pub min_heartbeat_ttl: Option<String>,
    /// Grace after a missed heartbeat TTL before a node is marked down (Go duration).
    #[arg(long = "heartbeat-grace", env = "CARAVAN_HEARTBEAT_GRACE")]
    pub heartbeat_grace: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long = "max-body-bytes", env = "CARAVAN_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub common: Common,
    /// postgres://… or sqlite://…
    #[arg(long = "database-url", env = "CARAVAN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// gRPC port (4647 by default).
    #[arg(long = "rpc-port", env = "CARAVAN_RPC_PORT")]
    pub rpc_port: Option<u16>,
    /// Address advertised to agents and gateways (host:port).
    #[arg(long = "advertise", env = "CARAVAN_ADVERTISE")]
    pub advertise: Option<String>,
    /// Server name (the host name by default).
    #[arg(long = "node", env = "CARAVAN_NODE")]
    pub name: Option<String>,
    #[arg(long = "min-heartbeat-ttl", env = "CARAVAN_MIN_HEARTBEAT_TTL")]
    pub min_heartbeat_ttl: Option<String>,
    #[arg(long = "heartbeat-grace", env = "CARAVAN_HEARTBEAT_GRACE")]
    pub heartbeat_grace: Option<String>,
    #[arg(
        long = "failover-heartbeat-ttl",
        env = "CARAVAN_FAILOVER_HEARTBEAT_TTL"
    )]
    pub failover_heartbeat_ttl: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub common: Common,
    /// Servers (host:port, comma separated).
    #[arg(long, env = "CARAVAN_SERVERS", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// HTTP port (4646 by default).
    #[arg(long = "http-port", env = "CARAVAN_HTTP_PORT")]
    pub http_port: Option<u16>,
    #[arg(long = "max-body-bytes", env = "CARAVAN_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// postgres://… or sqlite://…
    #[arg(long = "database-url", env = "CARAVAN_DATABASE_URL")]
    pub database_url: String,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_from(flags::normalize(std::env::args(), &Cli::command()));
    // The executor stays synchronous and single-threaded until its task is started: isolation
    // (namespaces) needs that, and it keeps the per-task process small.
    if let Command::Executor(args) = &cli.command {
        let code = caravan_drivers::executor::main(&args.spec);
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("caravan: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Command::Alloc(cli::AllocCommand::Exec(args)) = cli.command {
        return runtime.block_on(cli::alloc_exec::run(args));
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Agent(args) => run::agent(args).await,
            Command::Server(args) => run::server(args).await,
            Command::Gateway(args) => run::gateway(args).await,
            Command::Migrate(args) => run::migrate(args).await,
            Command::Executor(_) | Command::Alloc(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("caravan: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
