//! `acl`: what enforcing ACLs costs on the hot read path, and how fast a revoked token stops
//! working on another gateway.
//!
//! - Cost: two dev agents, one with `-acl-enabled` (read with a client token whose policy
//!   grants `read` on `default`) and one without, each running one allocation. Rounds of
//!   `GET /v1/allocation/:id` on C keep-alive connections alternate between them, so both see
//!   the same machine conditions; the figures are the totals over all rounds of each.
//! - Revocation: a standalone `caravan gateway` in front of the ACL agent's server. For each
//!   sample a fresh token reads through that gateway in a closed loop while the token is deleted
//!   through the agent's own HTTP API; the figure is the time from the delete's response to the
//!   first 403 on the other gateway.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use http::StatusCode;
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::agent::{DevAgent, default_caravan_bin, free_port};
use crate::http::{Conn, closed_loop};
use crate::stats::{Row, Summary, parse_duration};

#[derive(Debug, Clone, clap::Args)]
pub struct AclArgs {
    /// Concurrent keep-alive connections of the read rounds.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Rounds per agent (they alternate: on, off, on, off, ...).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Length of one round.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub round: Duration,
    /// Revocation samples.
    #[arg(long, default_value_t = 50)]
    pub revocations: usize,
    /// The caravan binary [default: `caravan` next to this binary].
    #[arg(long, env = "CARAVAN_BIN")]
    pub caravan_bin: Option<PathBuf>,
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: &AclArgs) -> anyhow::Result<Vec<Row>> {
    if args.connections == 0 || args.rounds == 0 {
        bail!("--connections and --rounds must be at least 1");
    }
    let bin = match &args.caravan_bin {
        Some(bin) => bin.clone(),
        None => default_caravan_bin()?,
    };
    let on = DevAgent::spawn(&bin, &["-acl-enabled"]).await?;
    let off = DevAgent::spawn(&bin, &[]).await?;
    wait_up(on.http).await?;
    wait_up(off.http).await?;

    let root = bootstrap(on.http).await?;
    let mut admin = Conn::connect(on.http).await?.with_token(&root);
    admin
        .post(
            "/v1/acl/policy/reader",
            &json!({"Name": "reader", "Rules": "namespace \"default\" { policy = \"read\" }"}),
        )
        .await?
        .ok()?;
    let reader = create_token(on.http, &root).await?.0;
    let alloc_on = run_job(on.http, Some(&root)).await?;
    let alloc_off = run_job(off.http, None).await?;
    let path_on = format!("/v1/allocation/{alloc_on}");
    let path_off = format!("/v1/allocation/{alloc_off}");
    println!(
        "acl: GET /v1/allocation/:id, {} connections, {} rounds of {:?} per agent, alternating ...",
        args.connections, args.rounds, args.round
    );

    let mut samples_on = Vec::new();
    let mut samples_off = Vec::new();
    let mut errors = 0u64;
    for _ in 0..args.rounds {
        let (s, e) = closed_loop(
            on.http,
            &path_on,
            Some(&reader),
            args.connections,
            args.round,
        )
        .await?;
        samples_on.extend(s);
        errors += e;
        let (s, e) = closed_loop(off.http, &path_off, None, args.connections, args.round).await?;
        samples_off.extend(s);
        errors += e;
    }
    let measured = args.round.as_secs_f64() * args.rounds as f64;
    let rate_on = samples_on.len() as f64 / measured;
    let rate_off = samples_off.len() as f64 / measured;
    let cost = (1.0 - rate_on / rate_off) * 100.0;
    let setup = format!("GET /v1/allocation/:id c={}", args.connections);
    let mut rows = vec![
        Row::new(
            "acl",
            format!("{setup}, ACL on (client token)"),
            Summary::of(&mut samples_on),
        )
        .rate(format!("{rate_on:.0} req/s"))
        .note(format!(
            "cost vs off: {cost:.1} % of throughput; {errors} errors in all"
        )),
        Row::new(
            "acl",
            format!("{setup}, ACL off"),
            Summary::of(&mut samples_off),
        )
        .rate(format!("{rate_off:.0} req/s")),
    ];

    if args.revocations > 0 {
        let gateway = Gateway::spawn(&bin, on.rpc).await?;
        wait_up(gateway.http).await?;
        let mut delays = Vec::with_capacity(args.revocations);
        for _ in 0..args.revocations {
            delays.push(revocation(on.http, gateway.http, &root, &path_on).await?);
        }
        println!("acl: {} revocations measured", delays.len());
        rows.push(
            Row::new(
                "acl",
                "token deleted on one gateway -> 403 on another",
                Summary::of(&mut delays),
            )
            .note(format!("{} samples", args.revocations)),
        );
    }
    drop((on, off));
    Ok(rows)
}

/// One sample: a fresh token reads through `gateway` until it is refused; the time from the
/// delete's response (through `agent`) to that first 403.
async fn revocation(
    agent: SocketAddr,
    gateway: SocketAddr,
    root: &str,
    path: &str,
) -> anyhow::Result<Duration> {
    let (secret, accessor) = create_token(agent, root).await?;
    let mut reader = Conn::connect(gateway).await?.with_token(&secret);
    // Read until it works there (the gateway has resolved and cached it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.get(path).await?.status != StatusCode::OK {
        if Instant::now() > deadline {
            bail!("a new token never worked on the second gateway");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let path = path.to_owned();
    let refused = tokio::spawn(async move {
        loop {
            let reply = reader.get(&path).await?;
            if reply.status == StatusCode::FORBIDDEN {
                return anyhow::Ok(Instant::now());
            }
        }
    });
    let mut admin = Conn::connect(agent).await?.with_token(root);
    admin
        .delete(&format!("/v1/acl/token/{accessor}"))
        .await?
        .ok()?;
    let deleted = Instant::now();
    let refused_at = tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .context("the deleted token kept working for 30 s")?
        .context("the reader panicked")??;
    Ok(refused_at.saturating_duration_since(deleted))
}

/// Waits until the HTTP API answers.
async fn wait_up(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut c) = Conn::connect(addr).await
            && let Ok(reply) = c.get("/v1/status/leader").await
            && reply.status.is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{addr} did not answer within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The bootstrap token's secret.
async fn bootstrap(addr: SocketAddr) -> anyhow::Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let reply = Conn::connect(addr)
            .await?
            .request(http::Method::POST, "/v1/acl/bootstrap", None, false)
            .await?;
        if reply.status.is_success() {
            return reply.json()?["SecretID"]
                .as_str()
                .map(str::to_owned)
                .context("bootstrap answered without SecretID");
        }
        if Instant::now() > deadline {
            bail!(
                "ACL bootstrap failed: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client token with the `reader` policy: (secret, accessor).
async fn create_token(addr: SocketAddr, root: &str) -> anyhow::Result<(String, String)> {
    let reply = Conn::connect(addr)
        .await?
        .with_token(root)
        .post(
            "/v1/acl/token",
            &json!({"Type": "client", "Policies": ["reader"]}),
        )
        .await?
        .ok()?;
    let token = reply.json()?;
    let field = |k: &str| {
        token[k]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("token without {k}"))
    };
    Ok((field("SecretID")?, field("AccessorID")?))
}

/// Registers a one-task raw_exec job and returns its allocation's ID once placed.
async fn run_job(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<String> {
    let connect = || async {
        let c = Conn::connect(addr).await?;
        anyhow::Ok(match token {
            Some(t) => c.with_token(t),
            None => c,
        })
    };
    let job = json!({"Job": {
        "ID": "acl-bench", "Type": "service",
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["3600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }});
    connect().await?.post("/v1/jobs", &job).await?.ok()?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let reply = connect()
            .await?
            .get("/v1/job/acl-bench/allocations")
            .await?
            .ok()?;
        if let Some(id) = reply.json()?[0]["ID"].as_str() {
            return Ok(id.to_owned());
        }
        if Instant::now() > deadline {
            bail!("the benchmark job was not placed within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A standalone `caravan gateway` process (killed on drop).
struct Gateway {
    _child: Child,
    http: SocketAddr,
}

impl Gateway {
    async fn spawn(bin: &std::path::Path, server: SocketAddr) -> anyhow::Result<Gateway> {
        let http = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let child = Command::new(bin)
            .args(["gateway", "-bind", "127.0.0.1", "-log-level", "warn"])
            .args(["-http-port", &http.port().to_string()])
            .args(["-servers", &server.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} gateway", bin.display()))?;
        Ok(Gateway {
            _child: child,
            http,
        })
    }
}
