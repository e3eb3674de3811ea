//! `tasks`: what running tasks costs a client agent, measured black-box on real processes.
//!
//! It starts `caravan server` (on a fresh PostgreSQL database when `CARAVAN_TEST_DATABASE_URL`
//! is set, as `scripts/bench.sh` does; else on SQLite), `caravan gateway` and one `caravan
//! agent`, then measures
//!
//! 1. **start latency** (`--latency-jobs`, one after another): a one-task `raw_exec` job is
//!    registered; *placed → running* is the task's `StartedAt` minus the allocation's
//!    `CreateTime` (the commit of the placement; same host clock), and *PUT → running seen* is
//!    the time until a blocking query on the job's allocations shows `running`.
//! 2. **cost per task**: `--mock` concurrent `mock_driver` tasks, then `--raw` concurrent
//!    `raw_exec` tasks (`sleep`); for each, the agent's resident memory and CPU time before and
//!    after, its CPU use over `--steady` seconds once all run, and for raw_exec the resident
//!    memory of the per-task executor processes.
//!
//! `cargo bench -p caravan-tests --bench tasks -- --latency-jobs 20 --mock 200 --raw 50` for a
//! quick run; `--help` lists the flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use caravan_tests::bench::{AgentCluster, usage};
use caravan_tests::{Client, QueryOptions, api, wait_for};
use serde_json::{Value, json};

const USAGE: &str = "\
tasks: start latency of raw_exec tasks, and agent CPU and memory per running task

usage: tasks [flags]

  --latency-jobs N   one-task raw_exec jobs started one after another (default 200)
  --mock N           concurrent mock_driver tasks (default 1000)
  --raw N            concurrent raw_exec tasks (default 200)
  --steady SECS      CPU sampling window once all tasks run (default 10)
  --summary FILE     append the result rows to FILE as tab-separated lines (scripts/bench.sh)";

struct Args {
    latency_jobs: usize,
    mock: usize,
    raw: usize,
    steady: u64,
    summary: Option<PathBuf>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut a = Args {
            latency_jobs: 200,
            mock: 1000,
            raw: 200,
            steady: 10,
            summary: None,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--latency-jobs" => a.latency_jobs = value()?.parse()?,
                "--mock" => a.mock = value()?.parse()?,
                "--raw" => a.raw = value()?.parse()?,
                "--steady" => a.steady = value()?.parse()?,
                "--summary" => a.summary = Some(PathBuf::from(value()?)),
                // cargo bench passes --bench.
                "--bench" => {}
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(Some(a))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tasks: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(rows) => {
            publish(&rows, args.summary.as_ref());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tasks: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type Cluster = AgentCluster;

async fn start() -> anyhow::Result<Cluster> {
    AgentCluster::start().await
}

async fn put_job(client: &Client, job: Value) -> anyhow::Result<()> {
    let r = client
        .raw(api::Method::PUT, "/v1/jobs")
        .body(json!({ "Job": job }).to_string().into_bytes())
        .send()
        .await?;
    if r.status != 200 {
        bail!("PUT /v1/jobs: {} {}", r.status, r.text());
    }
    Ok(())
}

async fn get(client: &Client, path: &str) -> anyhow::Result<(Value, u64)> {
    let r = client.get(path, &QueryOptions::new()).await?;
    if r.status != 200 {
        bail!("GET {path}: {} {}", r.status, r.text());
    }
    let index = r.query_meta().last_index;
    Ok((r.json()?, index))
}

fn job(id: &str, count: usize, task: Value) -> Value {
    json!({
        "ID": id,
        "Type": "service",
        "Datacenters": ["*"],
        // Small disks: the default 300 MB each would fill the node's disk before its memory.
        "TaskGroups": [{"Name": "g", "Count": count, "EphemeralDisk": {"SizeMB": 10}, "Tasks": [with_small_logs(task)]}]
    })
}

fn with_small_logs(mut task: Value) -> Value {
    task["LogConfig"] = json!({"MaxFiles": 1, "MaxFileSizeMB": 5});
    task
}

fn raw_task() -> Value {
    json!({"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sleep", "args": ["3600"]},
           "Resources": {"CPU": 1, "MemoryMB": 10}})
}

/// Proportional set size (KiB): resident memory with shared pages (the binary's code) divided
/// among the processes sharing them.
fn pss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Count, summed resident memory and summed PSS (KiB) of the executor processes.
fn executors_rss() -> (usize, u64, u64) {
    let mut n = 0;
    let mut total = 0;
    let mut total_pss = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.get(1) == Some(&&b"executor"[..])
            && let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>()
            && let Ok((rss, _)) = usage(pid)
        {
            n += 1;
            total += rss;
            total_pss += pss(pid);
        }
    }
    (n, total, total_pss)
}

fn ticks_per_sec() -> f64 {
    100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Row([String; 8]);

async fn run(args: &Args) -> anyhow::Result<Vec<Row>> {
    let c = start().await?;
    let mut rows = Vec::new();
    if args.latency_jobs > 0 {
        rows.extend(latency(&c, args.latency_jobs).await?);
    }
    if args.mock > 0 {
        let task = json!({"Name": "t", "Driver": "mock_driver", "Config": {}, "Resources": {"CPU": 1, "MemoryMB": 10}});
        rows.push(cost(&c, "mock_driver", "mock", args.mock, task, args.steady).await?);
    }
    if args.raw > 0 {
        rows.push(cost(&c, "raw_exec", "raw", args.raw, raw_task(), args.steady).await?);
    }
    Ok(rows)
}

async fn latency(c: &Cluster, n: usize) -> anyhow::Result<Vec<Row>> {
    let mut placed = Vec::new();
    let mut seen = Vec::new();
    for i in 0..n {
        let id = format!("lat-{i}");
        let sent = Instant::now();
        put_job(&c.client, job(&id, 1, raw_task())).await?;
        let mut index = 0;
        let alloc = loop {
            let r = c
                .client
                .get(
                    &format!("/v1/job/{id}/allocations?index={index}&wait=10s"),
                    &QueryOptions::new(),
                )
                .await?;
            index = r.query_meta().last_index;
            let v: Value = r.json()?;
            if let Some(a) = v
                .as_array()
                .and_then(|a| a.iter().find(|a| a["ClientStatus"] == "running"))
            {
                break a.clone();
            }
            if sent.elapsed() > Duration::from_secs(60) {
                bail!("{id} did not run within 60s");
            }
        };
        seen.push(sent.elapsed().as_secs_f64() * 1000.0);
        let (full, _) = get(
            &c.client,
            &format!(
                "/v1/allocation/{}",
                alloc["ID"].as_str().unwrap_or_default()
            ),
        )
        .await?;
        let created = full["CreateTime"].as_i64().unwrap_or(0);
        let started = caravan_tests::parse_rfc3339(
            full["TaskStates"]["t"]["StartedAt"]
                .as_str()
                .unwrap_or_default(),
        )?;
        placed.push((started - i128::from(created)) as f64 / 1e6);
        let _ = c
            .client
            .raw(api::Method::DELETE, &format!("/v1/job/{id}?purge=true"))
            .send()
            .await;
    }
    let row = |name: &str, mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        Row([
            format!("tasks: {name}"),
            format!("{} raw_exec jobs, one at a time", v.len()),
            "-".into(),
            format!("{:.1} ms", percentile(&v, 0.5)),
            format!("{:.1} ms", percentile(&v, 0.9)),
            format!("{:.1} ms", percentile(&v, 0.99)),
            format!("{:.1} ms", v.last().copied().unwrap_or(0.0)),
            String::new(),
        ])
    };
    Ok(vec![
        row("placed -> running", placed),
        row("PUT -> running seen", seen),
    ])
}

async fn cost(
    c: &Cluster,
    driver: &str,
    id: &str,
    n: usize,
    task: Value,
    steady: u64,
) -> anyhow::Result<Row> {
    let pid = c.agent.pid();
    let (rss0, cpu0) = usage(pid)?;
    let (_, exec_rss0, exec_pss0) = executors_rss();
    let started = Instant::now();
    put_job(&c.client, job(id, n, task)).await?;
    wait_for(
        &format!("{n} {driver} tasks to run"),
        Duration::from_secs(600),
        || async {
            let (s, _) = get(&c.client, &format!("/v1/job/{id}/summary")).await?;
            Ok(s["Summary"]["g"]["Running"].as_u64() == Some(n as u64))
        },
    )
    .await?;
    let to_run = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss1, cpu1) = usage(pid)?;
    tokio::time::sleep(Duration::from_secs(steady)).await;
    let (rss2, cpu2) = usage(pid)?;
    let (executors, exec_rss, exec_pss) = executors_rss();
    let start_cpu_ms = (cpu1 - cpu0) as f64 / ticks_per_sec() * 1000.0;
    let steady_pct = (cpu2 - cpu1) as f64 / ticks_per_sec() / steady as f64 * 100.0;
    let per_task_kib = (rss2.saturating_sub(rss0)) as f64 / n as f64;
    let mut note = format!(
        "agent RSS {:.1} -> {:.1} MiB ({per_task_kib:.1} KiB/task); agent CPU {:.2} ms/task to start, {steady_pct:.1}% of a core while {n} run",
        rss0 as f64 / 1024.0,
        rss2 as f64 / 1024.0,
        start_cpu_ms / n as f64,
    );
    let _ = rss1;
    if driver == "raw_exec" {
        let extra = exec_rss.saturating_sub(exec_rss0);
        let extra_pss = exec_pss.saturating_sub(exec_pss0);
        note.push_str(&format!(
            "; {executors} executors, {:.1} MiB RSS / {:.2} MiB PSS each",
            extra as f64 / 1024.0 / n.max(1) as f64,
            extra_pss as f64 / 1024.0 / n.max(1) as f64
        ));
    }
    let _ = c
        .client
        .raw(api::Method::DELETE, &format!("/v1/job/{id}?purge=true"))
        .send()
        .await;
    Ok(Row([
        format!("tasks: {n} {driver}"),
        "one agent, all at once".into(),
        format!("{:.1} tasks/s", n as f64 / to_run.as_secs_f64()),
        "-".into(),
        "-".into(),
        "-".into(),
        format!("{:.1} s to all running", to_run.as_secs_f64()),
        note,
    ]))
}

fn publish(rows: &[Row], summary: Option<&PathBuf>) {
    for r in rows {
        println!("{}", r.0.join("  |  "));
    }
    if let Some(path) = summary {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            for r in rows {
                let _ = writeln!(f, "{}", r.0.join("\t"));
            }
        }
    }
}
