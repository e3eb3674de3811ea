//! `placements`: how fast Caravan places allocations on a large cluster, measured black-box.
//!
//! It starts `caravan server` on a fresh PostgreSQL database (from `CARAVAN_TEST_DATABASE_URL`,
//! as the tests; `scripts/bench.sh` starts a throwaway cluster) and `caravan gateway` in front
//! of it, registers simulated nodes ([`caravan_tests::sim`]) and then measures
//!
//! 1. **throughput**: `--jobs` service jobs of `--count` allocations each, registered at once
//!    over HTTP (`PUT /v1/jobs`); placements per second from the first PUT until every
//!    allocation exists (the job summaries count them all as starting or running). The server
//!    publishes allocations only after PostgreSQL committed them, so a counted allocation is
//!    durable. With `--auto-run` (the default) the nodes report every allocation `running`, as
//!    live clients would, while the rest is placed; the time until all run is shown too.
//! 2. **latency**: then, on the idle cluster, `--latency-jobs` jobs of one allocation,
//!    registered one after another; for each, the time from sending the PUT to the allocation
//!    showing in `/v1/job/:id/allocations`, learnt with a blocking query (no polling).
//! 3. **plan**: then `--plans` calls of `PUT /v1/job/bulk-0/plan` with `Diff: true`, one after
//!    another, each asking for one allocation more than the job has (the scheduler reconciles
//!    all `--count` allocations of the job on the full cluster; nothing is committed).
//!
//! A plain `main` (no test harness): `cargo bench -p caravan-tests --bench placements --
//! --nodes 500 --jobs 4 --count 500` for a quick run; `--help` lists the flags.
//!
//! Everything runs on one machine: the simulator's nodes, the server, the gateway and
//! PostgreSQL share its cores, so the figures are a floor for the server alone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use caravan_test_utils::DATABASE_URL_ENV;
use caravan_tests::sim::{SimConfig, Simulator};
use caravan_tests::{
    Client, Process, QueryOptions, TestDatabase, api, free_port, now_nanos, wait_for,
};
use serde_json::{Value, json};

const USAGE: &str = "\
placements: allocations placed per second, and the latency of one placement

usage: placements [flags]

  --nodes N          simulated nodes (default 5000)
  --jobs N           jobs registered at once in the throughput run (default 20)
  --count N          allocations per job (default 5000)
  --latency-jobs N   one-allocation jobs in the latency run, one at a time (default 200; 0: skip)
  --plans N          plans of a bulk job with one more allocation, one at a time (default 100; 0: skip)
  --ask-cpu MHZ      cpu of each task (default 20)
  --ask-memory MB    memory of each task (default 16)
  --allocs-per-node N  node size, in allocations of the ask (default: 1.5x the mean, at least 25)
  --auto-run BOOL    nodes report every allocation running (default true)
  --channels N       gRPC connections of the simulator (default: one per 2,000 nodes)
  --timeout SECS     give up on the throughput run after this long (default 1800)
  --summary FILE     append the result rows to FILE as tab-separated lines (scripts/bench.sh)

Needs CARAVAN_TEST_DATABASE_URL (a PostgreSQL superuser URL) and a built caravan binary
(CARAVAN_BIN, or target/<profile>/caravan next to this benchmark).";

#[derive(Debug, Clone)]
struct Args {
    nodes: usize,
    jobs: usize,
    count: usize,
    latency_jobs: usize,
    plans: usize,
    ask_cpu: i64,
    ask_memory: i64,
    allocs_per_node: Option<usize>,
    auto_run: bool,
    channels: usize,
    timeout: Duration,
    summary: Option<PathBuf>,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut args = Args {
            nodes: 5000,
            jobs: 20,
            count: 5000,
            latency_jobs: 200,
            plans: 100,
            ask_cpu: 20,
            ask_memory: 16,
            allocs_per_node: None,
            auto_run: true,
            channels: 0,
            timeout: Duration::from_secs(1800),
            summary: None,
        };
        fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> anyhow::Result<T> {
            let v = v.ok_or_else(|| anyhow!("{flag} needs a value"))?;
            v.parse()
                .map_err(|_| anyhow!("{flag}: {v:?} is not a valid number"))
        }
        while let Some(arg) = argv.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| argv.next());
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                // `cargo bench` passes `--bench` to every benchmark binary.
                "--bench" => {}
                "--nodes" => args.nodes = num(&flag, value())?,
                "--jobs" => args.jobs = num(&flag, value())?,
                "--count" => args.count = num(&flag, value())?,
                "--latency-jobs" => args.latency_jobs = num(&flag, value())?,
                "--plans" => args.plans = num(&flag, value())?,
                "--ask-cpu" => args.ask_cpu = num(&flag, value())?,
                "--ask-memory" => args.ask_memory = num(&flag, value())?,
                "--allocs-per-node" => args.allocs_per_node = Some(num(&flag, value())?),
                "--auto-run" => {
                    args.auto_run = match value().as_deref() {
                        Some("true" | "1" | "on") => true,
                        Some("false" | "0" | "off") => false,
                        other => bail!("--auto-run wants true or false, got {other:?}"),
                    }
                }
                "--channels" => args.channels = num(&flag, value())?,
                "--timeout" => args.timeout = Duration::from_secs(num(&flag, value())?),
                "--summary" => {
                    args.summary = Some(PathBuf::from(
                        value().ok_or_else(|| anyhow!("--summary needs a file"))?,
                    ))
                }
                other => bail!("unknown flag {other:?} (see --help)"),
            }
        }
        if args.nodes == 0 || args.jobs == 0 || args.count == 0 {
            bail!("--nodes, --jobs and --count must be at least 1");
        }
        if args.ask_cpu <= 0 || args.ask_memory <= 0 {
            bail!("--ask-cpu and --ask-memory must be positive");
        }
        Ok(Some(args))
    }

    fn total(&self) -> usize {
        self.jobs * self.count
    }

    /// How many allocations of the ask one node holds.
    fn node_capacity(&self) -> usize {
        self.allocs_per_node
            .unwrap_or_else(|| (self.total() * 3).div_ceil(self.nodes * 2).max(25))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("placements: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(rows) => match publish(&rows, args.summary.as_ref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("placements: {e:#}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("placements: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster: server on PostgreSQL, gateway
// ---------------------------------------------------------------------------------------------

struct Cluster {
    client: Client,
    rpc_addr: String,
    server: Process,
    gateway: Process,
    /// Dropped last: the database outlives the processes using it.
    _db: TestDatabase,
}

impl Cluster {
    async fn start() -> anyhow::Result<Cluster> {
        if std::env::var_os(DATABASE_URL_ENV).is_none() {
            bail!(
                "{DATABASE_URL_ENV} is not set: point it at a PostgreSQL superuser URL \
                 (scripts/bench.sh starts a throwaway cluster and sets it)"
            );
        }
        let db = TestDatabase::create().await?;
        let rpc_port = free_port().to_string();
        let http_port = free_port().to_string();
        let rpc_addr = format!("127.0.0.1:{rpc_port}");
        // Warnings only: the benchmark measures the work, not the logging of it.
        let env = [("RUST_LOG", "warn"), ("NO_COLOR", "1")];
        let server = Process::spawn(
            &[
                "server",
                "-database-url",
                &db.url,
                "-bind",
                "127.0.0.1",
                "-rpc-port",
                &rpc_port,
            ],
            &env,
        )?;
        let gateway = Process::spawn(
            &[
                "gateway",
                "-servers",
                &rpc_addr,
                "-bind",
                "127.0.0.1",
                "-http-port",
                &http_port,
            ],
            &env,
        )?;
        let client = Client::new(format!("http://127.0.0.1:{http_port}"))?;
        let cluster = Cluster {
            client,
            rpc_addr,
            server,
            gateway,
            _db: db,
        };
        wait_for("the API to answer", Duration::from_secs(60), || async {
            let r = cluster
                .client
                .get("/v1/status/leader", &QueryOptions::new())
                .await?;
            Ok(r.status == 200)
        })
        .await
        .with_context(|| cluster.logs())?;
        Ok(cluster)
    }

    fn logs(&self) -> String {
        format!(
            "----- server -----\n{}\n----- gateway -----\n{}",
            tail(&self.server.logs(), 40),
            tail(&self.gateway.logs(), 40)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

/// A service job of `count` small `raw_exec` tasks.
fn job(id: &str, count: usize, args: &Args) -> Value {
    json!({"Job": {
        "ID": id,
        "Name": id,
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "EphemeralDisk": {"SizeMB": 150},
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["3600"]},
                "Resources": {"CPU": args.ask_cpu, "MemoryMB": args.ask_memory},
            }],
        }],
    }})
}

/// PUT /v1/jobs; returns the JSON answer.
async fn register(client: &Client, job: &Value) -> anyhow::Result<Value> {
    let r = client
        .raw(api::Method::PUT, "/v1/jobs")
        .body(job.to_string().into_bytes())
        .send()
        .await?;
    if r.status != 200 {
        bail!("PUT /v1/jobs: {} {}", r.status, r.text());
    }
    Ok(r.json()?)
}

/// Whether every job's registration evaluation completed with nothing left queued; blocks
/// (up to a second) until the evaluations change past `index`. Returns the new index.
async fn registrations_done(
    client: &Client,
    ids: &[String],
    index: u64,
) -> anyhow::Result<(bool, u64)> {
    let r = client
        .get(
            &format!("/v1/evaluations?index={index}&wait=1s"),
            &QueryOptions::new(),
        )
        .await?;
    if r.status != 200 {
        bail!("GET /v1/evaluations: {} {}", r.status, r.text());
    }
    let next = r.query_meta().last_index;
    let evals: Vec<Value> = r.json()?;
    let done = ids.iter().all(|id| {
        evals.iter().any(|e| {
            e["JobID"] == id.as_str()
                && e["TriggeredBy"] == "job-register"
                && e["Status"] == "complete"
                && e["QueuedAllocations"]
                    .as_object()
                    .is_some_and(|q| q.values().all(|v| v.as_i64() == Some(0)))
        })
    });
    Ok((done, next))
}

/// Of group `g` of the job: (placed, running), placed counting every allocation that exists.
async fn summary(client: &Client, job_id: &str) -> anyhow::Result<(u64, u64)> {
    let r = client
        .get(&format!("/v1/job/{job_id}/summary"), &QueryOptions::new())
        .await?;
    if r.status != 200 {
        bail!("GET /v1/job/{job_id}/summary: {} {}", r.status, r.text());
    }
    let s: Value = r.json()?;
    let g = &s["Summary"]["g"];
    let n = |k: &str| g[k].as_u64().unwrap_or(0);
    let placed = [
        "Starting", "Running", "Complete", "Failed", "Lost", "Unknown",
    ]
    .iter()
    .map(|k| n(k))
    .sum();
    Ok((placed, n("Running")))
}

async fn run(args: &Args) -> anyhow::Result<Vec<Row>> {
    let cluster = Cluster::start().await?;
    let result = measure(args, &cluster).await;
    if result.is_err() {
        eprintln!("{}", cluster.logs());
    }
    result
}

async fn measure(args: &Args, cluster: &Cluster) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let cap = args.node_capacity() as i64;
    println!(
        "placements: {} nodes (room for {cap} allocations each), {} jobs x {} allocations, auto-run {}",
        args.nodes, args.jobs, args.count, args.auto_run
    );

    // Nodes.
    let config = SimConfig {
        auto_run: args.auto_run,
        channels: args.channels,
        cpu_mhz: cap * args.ask_cpu,
        memory_mb: cap * args.ask_memory,
        disk_mb: cap * 150 + 10_000,
        ..SimConfig::new(args.nodes)
    };
    let started = Instant::now();
    let sim = Simulator::start(&cluster.rpc_addr, config).await?;
    let took = started.elapsed();
    println!(
        "registered {} nodes in {:.2} s ({:.0} nodes/s)",
        args.nodes,
        took.as_secs_f64(),
        args.nodes as f64 / took.as_secs_f64()
    );
    rows.push(Row {
        bench: "placements".into(),
        setup: format!("register {} simulated nodes", args.nodes),
        rate: format!("{:.0} nodes/s", args.nodes as f64 / took.as_secs_f64()),
        note: format!("{:.2} s, Register + UpdateStatus each", took.as_secs_f64()),
        ..Row::default()
    });

    // Throughput.
    let client = &cluster.client;
    let total = args.total() as u64;
    let ids: Vec<String> = (0..args.jobs).map(|i| format!("bulk-{i}")).collect();
    let started = Instant::now();
    let puts = ids
        .iter()
        .map(|id| async move { register(client, &job(id, args.count, args)).await });
    for r in futures::future::join_all(puts).await {
        r?;
    }
    let puts_took = started.elapsed();
    let poll = Duration::from_millis(250);
    let mut placed_at = None;
    let mut running_at = None;
    let mut last_report = Instant::now();
    let mut evals_index = 0;
    loop {
        // Until everything is placed, watch the evaluations (a blocking query on a short
        // list): a job's registration evaluation completes with nothing queued only after its
        // plans committed. Summaries (a walk over every allocation of a job) are read only to
        // confirm, so the measuring costs the server little.
        if placed_at.is_none() {
            let (done, index) = registrations_done(client, &ids, evals_index).await?;
            evals_index = index;
            if !done && started.elapsed() <= args.timeout {
                continue;
            }
        }
        let sums = futures::future::join_all(ids.iter().map(|id| summary(client, id))).await;
        let (mut placed, mut running) = (0, 0);
        for s in sums {
            let (p, r) = s?;
            placed += p;
            running += r;
        }
        let now = started.elapsed();
        if placed >= total && placed_at.is_none() {
            placed_at = Some(now);
            println!(
                "all {total} allocations placed after {:.2} s",
                now.as_secs_f64()
            );
        }
        if running >= total && running_at.is_none() {
            running_at = Some(now);
        }
        if placed_at.is_some() && (running_at.is_some() || !args.auto_run) {
            break;
        }
        if now > args.timeout {
            bail!(
                "gave up after {:.0} s: {placed} of {total} placed, {running} running",
                now.as_secs_f64()
            );
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            println!(
                "  {:6.1} s: {placed} placed, {running} running ({} held by the nodes)",
                now.as_secs_f64(),
                sim.alloc_count()
            );
        }
        tokio::time::sleep(poll).await;
    }
    let placed_at = placed_at.unwrap_or_default();
    let rate = total as f64 / placed_at.as_secs_f64();
    let mut note = format!(
        "{total} allocs in {:.2} s; PUTs answered in {:.2} s",
        placed_at.as_secs_f64(),
        puts_took.as_secs_f64()
    );
    if let Some(r) = running_at {
        note.push_str(&format!(
            "; all running (reported by the nodes) at {:.2} s",
            r.as_secs_f64()
        ));
    }
    rows.push(Row {
        bench: "placements".into(),
        setup: format!(
            "{} jobs x {} at once, {} nodes{}",
            args.jobs,
            args.count,
            args.nodes,
            if args.auto_run { ", auto-run" } else { "" }
        ),
        rate: format!("{rate:.0} placements/s"),
        note,
        ..Row::default()
    });

    // Latency, on the idle cluster.
    if args.latency_jobs > 0 {
        if args.auto_run {
            wait_for(
                "the nodes to report every allocation",
                Duration::from_secs(120),
                || async { Ok(sim.allocs().iter().all(|a| a.client_status == "running")) },
            )
            .await?;
        }
        let mut placements = Vec::with_capacity(args.latency_jobs);
        let started = Instant::now();
        for i in 0..args.latency_jobs {
            placements.push(one_placement(client, &format!("single-{i}"), args).await?);
        }
        let took = started.elapsed();
        let mut samples: Vec<Duration> = placements.iter().map(|p| p.latency).collect();
        let s = Summary::of(&mut samples).context("no latency samples")?;
        // Afterwards (not timed): where the time went, by the server's timestamps.
        let mut parts = Vec::with_capacity(placements.len());
        for p in &placements {
            parts.push(breakdown(client, p).await?);
        }
        let p50 = |f: fn(&Breakdown) -> Duration| {
            let mut v: Vec<Duration> = parts.iter().map(f).collect();
            Summary::of(&mut v).map_or_else(|| "-".to_owned(), |s| ms(s.p50))
        };
        let parts_note = format!(
            "p50 parts: PUT to eval {}, eval to worker {}, worker to alloc seen {} \
             (AllocationTime {})",
            p50(|b| b.registered),
            p50(|b| b.queued),
            p50(|b| b.applied),
            p50(|b| b.allocation)
        );
        println!("{parts_note}");
        println!(
            "latency of one placement over {} jobs: p50 {} p99 {}",
            s.count,
            ms(s.p50),
            ms(s.p99)
        );
        rows.push(Row {
            bench: "placements".into(),
            setup: format!(
                "PUT /v1/jobs count=1 -> alloc visible, one at a time, {} jobs",
                args.latency_jobs
            ),
            rate: format!(
                "{:.0} jobs/s",
                args.latency_jobs as f64 / took.as_secs_f64()
            ),
            p50: ms(s.p50),
            p90: ms(s.p90),
            p99: ms(s.p99),
            max: ms(s.max),
            note: format!("idle cluster holding {total} allocations; {parts_note}"),
        });
    }
    if args.plans > 0 {
        rows.push(plan_latency(client, args, total).await?);
    }
    let stats = sim.stats();
    println!("simulator: {stats:?}");
    sim.shutdown().await;
    Ok(rows)
}

/// `--plans` plans of `bulk-0` with one allocation more, one at a time, timed from sending the
/// PUT to the whole answer read.
async fn plan_latency(client: &Client, args: &Args, total: u64) -> anyhow::Result<Row> {
    let body = {
        let mut b = job("bulk-0", args.count + 1, args);
        b["Diff"] = json!(true);
        b.to_string()
    };
    let mut samples = Vec::with_capacity(args.plans);
    let started = Instant::now();
    for _ in 0..args.plans {
        let sent = Instant::now();
        let resp = client
            .raw(api::Method::PUT, "/v1/job/bulk-0/plan")
            .body(body.clone().into_bytes())
            .send()
            .await?;
        if resp.status != 200 {
            bail!("plan: {} {}", resp.status, resp.text());
        }
        let plan: Value = resp.json()?;
        samples.push(sent.elapsed());
        let place = &plan["Annotations"]["DesiredTGUpdates"]["g"]["Place"];
        if place != 1 {
            bail!("plan placed {place}, not 1: {}", tail(&plan.to_string(), 5));
        }
    }
    let took = started.elapsed();
    let s = Summary::of(&mut samples).context("no plan samples")?;
    println!(
        "plan of a {}-allocation job on the full cluster over {} calls: p50 {} p99 {}",
        args.count,
        s.count,
        ms(s.p50),
        ms(s.p99)
    );
    Ok(Row {
        bench: "placements".into(),
        setup: format!(
            "PUT /v1/job/bulk-0/plan (count {} -> {}, Diff), one at a time, {} calls",
            args.count,
            args.count + 1,
            args.plans
        ),
        rate: format!("{:.1} plans/s", args.plans as f64 / took.as_secs_f64()),
        p50: ms(s.p50),
        p90: ms(s.p90),
        p99: ms(s.p99),
        max: ms(s.max),
        note: format!("cluster holding {total} allocations; nothing committed"),
    })
}

/// One placement of the latency run.
struct Placement {
    /// From sending the PUT to the allocation listed.
    latency: Duration,
    /// Unix nanoseconds (this machine's clock, as the server's) of sending the PUT and of
    /// seeing the allocation.
    sent_at: i128,
    seen_at: i128,
    eval_id: String,
    alloc_id: String,
}

/// Where one placement's time went, from the server's own timestamps (`CreateTime` of the
/// evaluation and of the allocation, which the scheduler stamps when it starts on the
/// evaluation) and the scheduler's `Metrics.AllocationTime`.
struct Breakdown {
    /// Sending the PUT to the evaluation created (the registration's commit).
    registered: Duration,
    /// Evaluation created to a scheduler worker starting on it (broker queue, dequeue).
    queued: Duration,
    /// The scheduler's time placing the allocation.
    allocation: Duration,
    /// Worker start to the allocation seen (scheduling, plan apply and commit, publication,
    /// the blocking query's answer).
    applied: Duration,
}

/// Registers a one-allocation job and waits, with blocking queries, until its allocation is
/// listed.
async fn one_placement(client: &Client, id: &str, args: &Args) -> anyhow::Result<Placement> {
    let started = Instant::now();
    let sent_at = now_nanos();
    let written = register(client, &job(id, 1, args)).await?;
    let eval_id = written["EvalID"].as_str().unwrap_or_default().to_owned();
    let mut index = written["JobModifyIndex"].as_u64().unwrap_or(0);
    let path = format!("/v1/job/{id}/allocations");
    loop {
        let q = QueryOptions::new()
            .index(index)
            .wait(Duration::from_secs(30));
        let r = client.get(&path, &q).await?;
        if r.status != 200 {
            bail!("GET {path}: {} {}", r.status, r.text());
        }
        let allocs: Vec<Value> = r.json()?;
        if let Some(alloc) = allocs.first() {
            return Ok(Placement {
                latency: started.elapsed(),
                sent_at,
                seen_at: now_nanos(),
                eval_id,
                alloc_id: alloc["ID"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("job {id}: no allocation after 60 s");
        }
        index = r.query_meta().last_index.max(index);
    }
}

async fn get_value(client: &Client, path: &str) -> anyhow::Result<Value> {
    let r = client.get(path, &QueryOptions::new()).await?;
    if r.status != 200 {
        bail!("GET {path}: {} {}", r.status, r.text());
    }
    Ok(r.json()?)
}

/// The placement's [`Breakdown`], read from the evaluation and the allocation.
async fn breakdown(client: &Client, p: &Placement) -> anyhow::Result<Breakdown> {
    let eval = get_value(client, &format!("/v1/evaluation/{}", p.eval_id)).await?;
    let alloc = get_value(client, &format!("/v1/allocation/{}", p.alloc_id)).await?;
    let nanos = |v: &Value| i128::from(v.as_i64().unwrap_or(0));
    let eval_created = nanos(&eval["CreateTime"]);
    let alloc_created = nanos(&alloc["CreateTime"]);
    let span = |from: i128, to: i128| Duration::from_nanos((to - from).max(0) as u64);
    Ok(Breakdown {
        registered: span(p.sent_at, eval_created),
        queued: span(eval_created, alloc_created),
        allocation: Duration::from_nanos(alloc["Metrics"]["AllocationTime"].as_u64().unwrap_or(0)),
        applied: span(alloc_created, p.seen_at),
    })
}

// ---------------------------------------------------------------------------------------------
// Figures and the table (the format of caravan-bench, so scripts/bench.sh shows one table)
// ---------------------------------------------------------------------------------------------

struct Summary {
    count: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Summary {
    fn of(samples: &mut [Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        // Nearest rank: the smallest value with at least q% of the samples at or below it.
        let at = |q: f64| {
            let rank = ((q / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Some(Summary {
            count: samples.len(),
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: samples[samples.len() - 1],
        })
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[derive(Debug, Clone)]
struct Row {
    bench: String,
    setup: String,
    rate: String,
    p50: String,
    p90: String,
    p99: String,
    max: String,
    note: String,
}

impl Default for Row {
    fn default() -> Self {
        let dash = || "-".to_owned();
        Row {
            bench: String::new(),
            setup: String::new(),
            rate: String::new(),
            p50: dash(),
            p90: dash(),
            p99: dash(),
            max: dash(),
            note: String::new(),
        }
    }
}

impl Row {
    fn cells(&self) -> [&str; 8] {
        [
            &self.bench,
            &self.setup,
            &self.rate,
            &self.p50,
            &self.p90,
            &self.p99,
            &self.max,
            &self.note,
        ]
    }
}

/// Prints the rows as a table and appends them to `summary` as tab-separated lines.
fn publish(rows: &[Row], summary: Option<&PathBuf>) -> anyhow::Result<()> {
    const HEADER: [&str; 8] = ["bench", "setup", "rate", "p50", "p90", "p99", "max", "note"];
    let mut widths = HEADER.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.cells()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.join("  ").trim_end().to_owned()
    };
    println!("\n{}", line(HEADER));
    for row in rows {
        println!("{}", line(row.cells()));
    }
    if let Some(path) = summary {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        for row in rows {
            let cells: Vec<String> = row
                .cells()
                .iter()
                .map(|c| c.replace(['\t', '\n'], " "))
                .collect();
            writeln!(file, "{}", cells.join("\t"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
