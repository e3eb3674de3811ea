//! What the agent benchmarks (`tests/benches/tasks.rs`, `fs.rs`) share: a cluster of separate
//! processes — `caravan server` (on a fresh PostgreSQL database when
//! `CARAVAN_TEST_DATABASE_URL` is set, else SQLite), `caravan gateway` and one `caravan agent`
//! whose cost can be measured alone — and the resident memory and CPU time of a process.

use std::time::Duration;

use anyhow::Context;
use caravan_test_utils::DATABASE_URL_ENV;

use crate::{Client, Process, QueryOptions, TempDir, TestDatabase, free_port, wait_for};

pub struct AgentCluster {
    pub client: Client,
    pub url: String,
    pub server: Process,
    pub gateway: Process,
    pub agent: Process,
    pub agent_dir: TempDir,
    _server_dir: TempDir,
    /// Dropped last: the database outlives the processes using it.
    _db: Option<TestDatabase>,
}

fn spawn(args: &[&str]) -> anyhow::Result<Process> {
    Process::spawn(args, &[("RUST_LOG", "warn"), ("NO_COLOR", "1")])
}

impl AgentCluster {
    /// Starts the three processes on free ports; returns once the node is ready.
    pub async fn start() -> anyhow::Result<AgentCluster> {
        let rpc_addr = format!("127.0.0.1:{}", free_port());
        let http_port = free_port().to_string();
        let http_addr = format!("127.0.0.1:{http_port}");
        let server_dir = TempDir::new("bench-server")?;
        let db = match std::env::var(DATABASE_URL_ENV) {
            Ok(_) => Some(TestDatabase::create().await?),
            Err(_) => None,
        };
        let rpc_port = rpc_addr.rsplit(':').next().unwrap_or_default().to_owned();
        let data_dir = server_dir.path_str();
        let mut server_args = vec!["server", "-bind", "127.0.0.1", "-rpc-port", &rpc_port];
        match &db {
            Some(db) => server_args.extend(["-database-url", db.url.as_str()]),
            None => server_args.extend(["-data-dir", data_dir.as_str()]),
        }
        let server = spawn(&server_args)?;
        let gateway = spawn(&[
            "gateway",
            "-servers",
            &rpc_addr,
            "-bind",
            "127.0.0.1",
            "-http-port",
            &http_port,
        ])?;
        let agent_dir = TempDir::new("bench-agent")?;
        let agent_port = free_port().to_string();
        let agent = spawn(&[
            "agent",
            "-servers",
            &rpc_addr,
            "-data-dir",
            &agent_dir.path_str(),
            "-bind",
            "127.0.0.1",
            "-agent-port",
            &agent_port,
            "-http-advertise",
            &http_addr,
            "-ephemeral-tasks",
            "-gc-disk-usage-threshold",
            "100",
        ])?;
        let url = format!("http://{http_addr}");
        let client = Client::new(url.clone())?;
        wait_for("the node to be ready", Duration::from_secs(60), || async {
            let (nodes, _) = client.nodes().list(&QueryOptions::new()).await?;
            Ok(nodes.iter().any(|n| n.status == "ready"))
        })
        .await?;
        Ok(AgentCluster {
            client,
            url,
            server,
            gateway,
            agent,
            agent_dir,
            _server_dir: server_dir,
            _db: db,
        })
    }
}

/// Resident memory (KiB) and CPU time (user + system, in clock ticks of 1/100 s) of a process.
pub fn usage(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat[stat.rfind(')').context("stat")? + 2..]
        .split(' ')
        .collect();
    let ticks = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok((rss, ticks))
}
