//! `wakeups`: how fast one write reaches thousands of parked blocking queries.
//!
//! 1. Start a dev agent (or use `--addr`) and register `--nodes` extra nodes over gRPC so the
//!    list is not trivially small.
//! 2. Read the current `X-Nomad-Index` of `GET /v1/nodes`, then open `--waiters` HTTP/1.1
//!    connections, one blocking query `GET /v1/nodes?index=<X>&wait=5m` on each.
//! 3. Wait until they are parked. The server does not expose how many queries wait, so: every
//!    request has been handed to its connection, at least `--settle` has passed, and (when this
//!    benchmark started the agent) the agent's CPU time has gone quiet (under 5 clock ticks in
//!    half a second), which it does once every query has subscribed and sleeps. A query that
//!    returns before the write is reported as early.
//! 4. Change one node (`POST /v1/node/<id>/eligibility`) and take, for every query, the time
//!    from the write's response to that query's complete response (and, second row, from the
//!    write's request). A query counts as woken when it answers 200 with an index at or past
//!    the write's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use caravan_proto::v1::{self, nodes_client::NodesClient};
use http::StatusCode;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::agent::{Target, TargetArgs, cpu_ticks, open_files_limit};
use crate::http::Conn;
use crate::node_doc;
use crate::stats::{Row, Summary, ms, parse_duration};

/// File descriptors this process needs besides one per waiter.
const SPARE_FDS: u64 = 256;

/// CPU ticks in half a second under which the agent counts as idle (about 10% of one core at
/// the usual 100 ticks per second).
const QUIET_TICKS: u64 = 5;

#[derive(Debug, Clone, clap::Args)]
pub struct WakeupsArgs {
    /// Concurrent blocking queries, one connection each.
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,
    /// Extra nodes to register over gRPC before the queries start (needs the gRPC address).
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Least time to wait after the last query was sent before writing.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Most time to wait for the queries to be sent and parked.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub park_timeout: Duration,
    /// Most time to wait for the queries to answer after the write.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub wake_timeout: Duration,
    /// Connections being opened at once (the listen backlog is finite).
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// What one blocking query saw.
enum Outcome {
    Answered {
        at: Instant,
        status: StatusCode,
        index: Option<u64>,
    },
    Failed(String),
}

pub async fn run(args: &WakeupsArgs) -> anyhow::Result<Vec<Row>> {
    if args.waiters == 0 || args.connect_concurrency == 0 {
        bail!("--waiters and --connect-concurrency must be at least 1");
    }
    let needed = args.waiters as u64 + SPARE_FDS;
    match open_files_limit() {
        Some(limit) if limit < needed => bail!(
            "{} waiters need about {needed} open files but the limit is {limit}: raise it \
             (ulimit -n {needed}; scripts/bench.sh does) or pass fewer --waiters. The agent \
             started from here inherits the same limit and needs as many.",
            args.waiters
        ),
        _ => {}
    }

    let target = Target::start(&args.target).await?;
    if args.nodes > 0 {
        match target.rpc {
            Some(rpc) => register_nodes(rpc, args.nodes).await?,
            None => println!("no --rpc-addr: not registering extra nodes"),
        }
    }
    let node_id = target
        .ready_node()
        .await?
        .context("the agent lists no ready node")?;
    let mut control = Conn::connect(target.http).await?;
    let list = control.get("/v1/nodes").await?.ok()?;
    let index = list.index.context("GET /v1/nodes has no X-Nomad-Index")?;
    let listed = list.json()?.as_array().map_or(0, Vec::len);
    let path = format!("/v1/nodes?index={index}&wait=5m");
    println!(
        "wakeups: {} waiters on GET {path} ({listed} nodes, {} bytes per answer) ...",
        args.waiters,
        list.body.len()
    );

    let sent = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let connects = Arc::new(Semaphore::new(args.connect_concurrency));
    let started = Instant::now();
    let handles: Vec<_> = (0..args.waiters)
        .map(|_| {
            tokio::spawn(waiter(
                target.http,
                path.clone(),
                connects.clone(),
                sent.clone(),
                finished.clone(),
            ))
        })
        .collect();

    // Parked: all sent, then the settle time, then a quiet agent.
    let park_deadline = started + args.park_timeout;
    while sent.load(Ordering::Relaxed) + finished.load(Ordering::Relaxed) < args.waiters {
        if Instant::now() >= park_deadline {
            bail!(
                "only {} of {} queries sent after {:?}",
                sent.load(Ordering::Relaxed),
                args.waiters,
                args.park_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_sent = started.elapsed();
    tokio::time::sleep(args.settle).await;
    let quiet = match target.pid() {
        Some(pid) => wait_quiet(pid, park_deadline).await,
        None => "not checked (external agent)".to_owned(),
    };
    let early = finished.load(Ordering::Relaxed);
    println!(
        "all {} queries sent in {}; parked after {} more ({quiet}); {early} returned before the write",
        args.waiters,
        ms(all_sent),
        ms(started.elapsed() - all_sent)
    );

    // The one write.
    let write_sent = Instant::now();
    let write = control
        .post(
            &format!("/v1/node/{node_id}/eligibility"),
            &json!({ "Eligibility": "ineligible" }),
        )
        .await?
        .ok()?;
    let write_done = Instant::now();
    let write_index = match write.index {
        Some(i) => i,
        None => write
            .json()?
            .get("Index")
            .and_then(|i| i.as_u64())
            .context("no index in the write's response")?,
    };
    println!(
        "write: eligibility of {node_id} at index {write_index}, answered in {}",
        ms(write_done - write_sent)
    );

    let wake_deadline = write_done + args.wake_timeout;
    let mut from_response = Vec::with_capacity(args.waiters);
    let mut from_request = Vec::with_capacity(args.waiters);
    let (mut before_response, mut stale, mut errors, mut timeouts) =
        (0usize, 0usize, 0usize, 0usize);
    let mut first_error = None;
    for mut handle in handles {
        let outcome = match tokio::time::timeout_at(wake_deadline, &mut handle).await {
            Ok(joined) => joined.context("a waiter task panicked")?,
            Err(_) => {
                handle.abort();
                timeouts += 1;
                continue;
            }
        };
        match outcome {
            Outcome::Answered { at, status, index } => {
                let woke = status == StatusCode::OK && index.is_some_and(|i| i >= write_index);
                if !woke {
                    stale += 1;
                    first_error.get_or_insert_with(|| format!("HTTP {status}, index {index:?}"));
                    continue;
                }
                if at < write_done {
                    before_response += 1;
                }
                from_response.push(at.saturating_duration_since(write_done));
                from_request.push(at.saturating_duration_since(write_sent));
            }
            Outcome::Failed(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    drop(control);
    drop(target);

    let woke = from_response.len();
    let last = from_response.iter().max().copied().unwrap_or_default();
    let mut note = format!(
        "woke {woke}/{}; {early} early, {stale} stale, {errors} errors, {timeouts} timed out; \
         write took {}",
        args.waiters,
        ms(write_done - write_sent)
    );
    if woke > 0 && !last.is_zero() {
        note.push_str(&format!(
            ", {:.0} wakes/s",
            woke as f64 / last.as_secs_f64()
        ));
    }
    if before_response > 0 {
        note.push_str(&format!(
            ", {before_response} answered before the write's response (0)"
        ));
    }
    if let Some(e) = first_error {
        note.push_str(&format!("; first problem: {e}"));
    }
    let setup = format!("{} waiters, {listed} nodes", args.waiters);
    Ok(vec![
        Row::new(
            "wakeups",
            format!("{setup}, from write response"),
            Summary::of(&mut from_response),
        )
        .rate(format!("{woke} woke"))
        .note(note),
        Row::new(
            "wakeups",
            format!("{setup}, from write request"),
            Summary::of(&mut from_request),
        )
        .rate(format!("{woke} woke")),
    ])
}

/// One blocking query on its own connection.
async fn waiter(
    addr: SocketAddr,
    path: String,
    connects: Arc<Semaphore>,
    sent: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> Outcome {
    let outcome = async {
        let mut conn = {
            // Closed only when the whole benchmark fails, and then nothing waits on it.
            let _permit = connects
                .acquire()
                .await
                .context("the connect limiter closed")?;
            Conn::connect(addr).await?
        };
        sent.fetch_add(1, Ordering::Relaxed);
        let reply = conn.get(&path).await;
        sent.fetch_sub(1, Ordering::Relaxed);
        reply
    }
    .await;
    let at = Instant::now();
    finished.fetch_add(1, Ordering::Relaxed);
    match outcome {
        Ok(reply) => Outcome::Answered {
            at,
            status: reply.status,
            index: reply.index,
        },
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

/// Waits until the process uses less than [`QUIET_TICKS`] of CPU in half a second, or
/// `deadline`; says which.
async fn wait_quiet(pid: u32, deadline: Instant) -> String {
    let mut last = cpu_ticks(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_ticks(pid);
        match (last, now) {
            (Some(a), Some(b)) if b.saturating_sub(a) < QUIET_TICKS => {
                return format!("agent idle: {} ticks in 0.5 s", b - a);
            }
            (_, None) => return "agent CPU unreadable".to_owned(),
            _ => {}
        }
        if Instant::now() >= deadline {
            return "agent still busy at the park timeout".to_owned();
        }
        last = now;
    }
}

/// Registers `count` ready nodes with the server at `rpc`.
async fn register_nodes(rpc: SocketAddr, count: usize) -> anyhow::Result<()> {
    let mut client = NodesClient::connect(format!("http://{rpc}"))
        .await
        .with_context(|| format!("connecting to the gRPC server at {rpc}"))?;
    for i in 0..count {
        let node = node_doc::node(
            &uuid::Uuid::new_v4().to_string(),
            &format!("bench-node-{i}"),
        )?;
        client
            .register(v1::RegisterNodeRequest {
                node_json: node_doc::node_json(&node)?.into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("registering node {i}"))?;
    }
    println!("registered {count} extra nodes over gRPC");
    Ok(())
}
