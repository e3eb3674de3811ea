//! The system under test for the HTTP benchmarks: a real `caravan agent -dev` process (server,
//! gateway and client agent in one, embedded SQLite) on free loopback ports, or an agent that is
//! already running at `--addr`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::http::Conn;

/// How long a fresh dev agent may take to serve its own node as ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to find the `caravan` binary and how to reach the agent.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The caravan binary to start with `agent -dev` [default: `caravan` next to this binary,
    /// i.e. target/release/caravan].
    #[arg(long, env = "CARAVAN_BIN")]
    pub caravan_bin: Option<PathBuf>,
    /// Use the agent already serving HTTP here (host:port) instead of starting one.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Its gRPC address (host:port), to register extra nodes; only with --addr.
    #[arg(long, requires = "addr")]
    pub rpc_addr: Option<SocketAddr>,
}

/// A running agent to benchmark.
pub struct Target {
    pub http: SocketAddr,
    pub rpc: Option<SocketAddr>,
    /// The agent process when this benchmark started it (killed on drop).
    pub process: Option<DevAgent>,
}

impl Target {
    /// Starts a dev agent, or connects to `--addr`; either way waits until a node is ready.
    pub async fn start(args: &TargetArgs) -> anyhow::Result<Target> {
        let mut target = match args.addr {
            Some(http) => Target {
                http,
                rpc: args.rpc_addr,
                process: None,
            },
            None => {
                let bin = match &args.caravan_bin {
                    Some(bin) => bin.clone(),
                    None => default_caravan_bin()?,
                };
                let agent = DevAgent::spawn(&bin, &[]).await?;
                Target {
                    http: agent.http,
                    rpc: Some(agent.rpc),
                    process: Some(agent),
                }
            }
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let status = match target.ready_node().await {
                Ok(Some(_)) => return Ok(target),
                Ok(None) => "no ready node yet".to_owned(),
                Err(e) => format!("{e:#}"),
            };
            if let Some(agent) = &mut target.process {
                agent.check_alive()?;
            }
            if Instant::now() >= deadline {
                let logs = target
                    .process
                    .as_ref()
                    .map(DevAgent::log_tail)
                    .unwrap_or_default();
                bail!(
                    "the agent at {} is not ready after {START_TIMEOUT:?}: {status}\n{logs}",
                    target.http
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ID of a ready node, if the agent lists one.
    pub async fn ready_node(&self) -> anyhow::Result<Option<String>> {
        let mut conn = Conn::connect(self.http).await?;
        let nodes = conn.get("/v1/nodes").await?.ok()?.json()?;
        Ok(nodes.as_array().into_iter().flatten().find_map(|node| {
            let ready = node.get("Status").and_then(|s| s.as_str()) == Some("ready");
            let id = node.get("ID").and_then(|s| s.as_str());
            if ready { id.map(str::to_owned) } else { None }
        }))
    }

    /// The agent's process ID when this benchmark started it.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(|p| p.child.id())
    }
}

/// `caravan` next to the running executable: `cargo build --release` puts both in
/// target/release.
pub fn default_caravan_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let bin = dir.join(format!("caravan{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!(
            "no caravan binary at {}: build it (cargo build --release -p caravan) or pass --caravan-bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// A `caravan agent -dev` child process with its output in a log file.
pub struct DevAgent {
    child: Child,
    pub http: SocketAddr,
    pub rpc: SocketAddr,
    log_path: PathBuf,
    // Holds the data dir and the log; removed when the agent is dropped.
    _dir: tempfile::TempDir,
}

impl DevAgent {
    /// Starts `caravan agent -dev` with `extra` flags (e.g. `-acl-enabled`).
    pub async fn spawn(bin: &Path, extra: &[&str]) -> anyhow::Result<DevAgent> {
        let dir = tempfile::Builder::new()
            .prefix("caravan-bench-")
            .tempdir()
            .context("creating a temp dir for the agent")?;
        let log_path = dir.path().join("agent.log");
        let log = std::fs::File::create(&log_path).context("creating the agent log")?;
        let log_err = log.try_clone().context("duplicating the agent log")?;
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let rpc = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let data_dir = dir.path().join("data");
        let child = Command::new(bin)
            .args(["agent", "-dev", "-bind", "127.0.0.1", "-log-level", "warn"])
            .args(["-http-port", &http.port().to_string()])
            .args(["-rpc-port", &rpc.port().to_string()])
            .arg("-data-dir")
            .arg(&data_dir)
            // Nodes registered by the benchmark never heartbeat: a long TTL keeps the heartbeat
            // timers from marking them down (a write that would wake every waiter early).
            .args(["-min-heartbeat-ttl", "1h", "-heartbeat-grace", "1h"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} agent -dev", bin.display()))?;
        println!(
            "started {} agent -dev (pid {}), HTTP {http}, gRPC {rpc}",
            bin.display(),
            child.id().unwrap_or(0)
        );
        Ok(DevAgent {
            child,
            http,
            rpc,
            log_path,
            _dir: dir,
        })
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait().context("checking on the agent")? {
            None => Ok(()),
            Some(status) => bail!("the agent exited ({status}):\n{}", self.log_tail()),
        }
    }

    /// The end of the agent's output, for error messages.
    pub fn log_tail(&self) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let start = text.len().saturating_sub(4000);
                let start = (start..text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("----- agent log -----\n{}", &text[start..])
            }
            Err(e) => format!("<cannot read {}: {e}>", self.log_path.display()),
        }
    }
}

/// CPU time (user + system, in clock ticks) the process has used, from /proc/<pid>/stat.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The soft limit on open files of this process, from /proc/self/limits.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time_and_fd_limit() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}
