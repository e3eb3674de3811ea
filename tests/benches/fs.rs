//! `fs`: allocation files and logs served through the gateway, measured black-box.
//!
//! It starts `caravan server` (PostgreSQL when `CARAVAN_TEST_DATABASE_URL` is set, else SQLite),
//! `caravan gateway` and one `caravan agent`, runs a task that writes a `--size` MiB file and
//! as many MiB of stdout (rotated in 100 MiB files), and measures
//!
//! 1. **throughput**: `fs/cat` of the file and `fs/logs?plain=true` of the logs, in MB/s, next
//!    to `cat FILE > /dev/null` on the same file in the same run (page cache warm for all);
//! 2. **follow latency**: bytes appended to a file in the allocation directory → delivered to a
//!    client following it with `fs/stream` (`--writes` appends, p50/p99);
//! 3. **many followers**: `--followers` clients following one task's log for `--hold` seconds;
//!    resident memory and CPU of the agent and the gateway;
//! 4. **a slow reader**: `fs/cat` of the file read at `--slow-rate` MiB/s for 5 s; the agent's
//!    and gateway's resident memory before and after (back-pressure keeps it flat).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use caravan_tests::bench::{AgentCluster, usage};
use caravan_tests::{QueryOptions, api, wait_for};
use futures::StreamExt;
use serde_json::{Value, json};

const USAGE: &str = "\
fs: allocation file and log throughput, follow latency, many followers, a slow reader

usage: fs [flags]

  --size MIB        size of the file and of the logs (default 1024)
  --writes N        appends timed in the follow latency run (default 200)
  --followers N     concurrent log followers (default 500)
  --hold SECS       how long the followers follow (default 10)
  --slow-rate MIBS  read rate of the slow reader (default 1)
  --summary FILE    append the result rows to FILE as tab-separated lines (scripts/bench.sh)";

struct Args {
    size_mib: u64,
    writes: usize,
    followers: usize,
    hold: u64,
    slow_rate: u64,
    summary: Option<std::path::PathBuf>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut a = Args {
            size_mib: 1024,
            writes: 200,
            followers: 500,
            hold: 10,
            slow_rate: 1,
            summary: None,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--size" => a.size_mib = value()?.parse()?,
                "--writes" => a.writes = value()?.parse()?,
                "--followers" => a.followers = value()?.parse()?,
                "--hold" => a.hold = value()?.parse()?,
                "--slow-rate" => a.slow_rate = value()?.parse()?,
                "--summary" => a.summary = Some(value()?.into()),
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
            eprintln!("fs: {e:#}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(rows) => {
            for r in &rows {
                println!("{}", r.join("  |  "));
            }
            if let Some(path) = &args.summary
                && let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
            {
                for r in &rows {
                    let _ = writeln!(f, "{}", r.join("\t"));
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type Cluster = AgentCluster;

async fn start() -> anyhow::Result<Cluster> {
    AgentCluster::start().await
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len().max(1) as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Reads a URL to the end; returns bytes and seconds.
async fn drain(url: &str) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let resp = reqwest::get(url).await?;
    if !resp.status().is_success() {
        bail!("GET {url}: {}", resp.status());
    }
    let mut body = resp.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        n += chunk?.len() as u64;
    }
    Ok((n, started.elapsed().as_secs_f64()))
}

async fn run(args: &Args) -> anyhow::Result<Vec<Vec<String>>> {
    let c = start().await?;
    let size = args.size_mib * 1024 * 1024;
    let script = format!(
        "head -c {size} /dev/zero > $NOMAD_ALLOC_DIR/data/big; head -c {size} /dev/zero; touch $NOMAD_ALLOC_DIR/data/done; \
         while :; do echo tick; sleep 0.1; done"
    );
    let job = json!({
        "ID": "fsbench", "Type": "service", "Datacenters": ["*"],
        "TaskGroups": [{"Name": "g", "EphemeralDisk": {"SizeMB": args.size_mib * 2 + (args.size_mib / 100 + 2) * 100 + 100},
            "Tasks": [{"Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", script]},
                "LogConfig": {"MaxFiles": (args.size_mib / 100 + 2), "MaxFileSizeMB": 100},
                "Resources": {"CPU": 100, "MemoryMB": 64}}]}]
    });
    let r = c
        .client
        .raw(api::Method::PUT, "/v1/jobs")
        .body(json!({ "Job": job }).to_string().into_bytes())
        .send()
        .await?;
    if r.status != 200 {
        bail!("register: {} {}", r.status, r.text());
    }
    let alloc_id = std::sync::Mutex::new(String::new());
    let alloc_base = c.agent_dir.path().join("alloc");
    wait_for(
        "the task to write its data",
        Duration::from_secs(600),
        || async {
            let r = c
                .client
                .get("/v1/job/fsbench/allocations", &QueryOptions::new())
                .await?;
            let v: Value = r.json()?;
            if let Some(id) = v
                .as_array()
                .and_then(|a| a.first())
                .and_then(|a| a["ID"].as_str())
            {
                *alloc_id.lock().map_err(|_| anyhow!("poisoned"))? = id.to_owned();
                return Ok(alloc_base.join(id).join("alloc/data/done").exists());
            }
            Ok(false)
        },
    )
    .await?;
    let id = alloc_id.into_inner().map_err(|_| anyhow!("poisoned"))?;
    let big = alloc_base.join(&id).join("alloc/data/big");
    let mut rows = Vec::new();

    // 1. Throughput, page cache warm.
    let cat_baseline = || -> anyhow::Result<f64> {
        let started = Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat {} > /dev/null", big.display()))
            .status()?;
        if !status.success() {
            bail!("cat failed");
        }
        Ok(started.elapsed().as_secs_f64())
    };
    cat_baseline()?;
    let base = cat_baseline()?;
    let (n, secs) = drain(&format!(
        "{}/v1/client/fs/cat/{id}?path=alloc/data/big",
        c.url
    ))
    .await?;
    let (ln, lsecs) = drain(&format!(
        "{}/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true",
        c.url
    ))
    .await?;
    let mbs = |bytes: u64, s: f64| bytes as f64 / 1e6 / s;
    rows.push(vec![
        format!("fs: cat {} MiB", args.size_mib),
        "through gateway and agent".into(),
        format!("{:.0} MB/s", mbs(n, secs)),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!("cat FILE >/dev/null: {:.0} MB/s", mbs(size, base)),
    ]);
    rows.push(vec![
        format!("fs: logs plain {} MiB", args.size_mib),
        format!("{} rotated files", args.size_mib.div_ceil(100)),
        format!("{:.0} MB/s", mbs(ln, lsecs)),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!("{ln} bytes"),
    ]);

    // 2. Follow latency: append here, see it arrive there.
    let follow_path = alloc_base.join(&id).join("alloc/data/follow");
    std::fs::write(&follow_path, b"")?;
    let url = format!(
        "{}/v1/client/fs/stream/{id}?path=alloc/data/follow&follow=true",
        c.url
    );
    let mut body = reqwest::get(&url).await?.bytes_stream();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&follow_path)?;
    let mut lat = Vec::new();
    for i in 0..args.writes {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let marker = format!("m{i}\n");
        let sent = Instant::now();
        file.write_all(marker.as_bytes())?;
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .context("no frame within 10s")?
                .context("stream ended")??;
            if chunk.as_ref() != b"{}" {
                break;
            }
        }
        lat.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    drop(body);
    lat.sort_by(f64::total_cmp);
    rows.push(vec![
        "fs: follow latency".into(),
        format!("{} appends, fs/stream follow", args.writes),
        "-".into(),
        format!("{:.1} ms", pct(&lat, 0.5)),
        format!("{:.1} ms", pct(&lat, 0.9)),
        format!("{:.1} ms", pct(&lat, 0.99)),
        format!("{:.1} ms", lat.last().copied().unwrap_or(0.0)),
        String::new(),
    ]);

    // 3. Many followers of one log.
    let (agent_rss0, agent_cpu0) = usage(c.agent.pid())?;
    let (gw_rss0, gw_cpu0) = usage(c.gateway.pid())?;
    let url = format!(
        "{}/v1/client/fs/logs/{id}?task=t&type=stdout&follow=true&origin=end&offset=0",
        c.url
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut followers = Vec::new();
    for _ in 0..args.followers {
        let http = http.clone();
        let url = url.clone();
        followers.push(tokio::spawn(async move {
            let mut n = 0u64;
            if let Ok(resp) = http.get(&url).send().await {
                let mut body = resp.bytes_stream();
                while let Some(Ok(chunk)) = body.next().await {
                    n += chunk.len() as u64;
                }
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, agent_cpu1) = usage(c.agent.pid())?;
    let (_, gw_cpu1) = usage(c.gateway.pid())?;
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let (agent_rss2, agent_cpu2) = usage(c.agent.pid())?;
    let (gw_rss2, gw_cpu2) = usage(c.gateway.pid())?;
    for f in &followers {
        f.abort();
    }
    let cpu = |a: u64, b: u64| (b - a) as f64 / 100.0 / args.hold as f64 * 100.0;
    let _ = (agent_cpu0, gw_cpu0);
    rows.push(vec![
        format!("fs: {} log followers", args.followers),
        format!("one task's stdout, {} s", args.hold),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!(
            "agent RSS {:.1} -> {:.1} MiB, {:.1}% CPU; gateway RSS {:.1} -> {:.1} MiB, {:.1}% CPU",
            agent_rss0 as f64 / 1024.0,
            agent_rss2 as f64 / 1024.0,
            cpu(agent_cpu1, agent_cpu2),
            gw_rss0 as f64 / 1024.0,
            gw_rss2 as f64 / 1024.0,
            cpu(gw_cpu1, gw_cpu2),
        ),
    ]);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 4. A slow reader of the big file.
    let (agent_before, _) = usage(c.agent.pid())?;
    let (gw_before, _) = usage(c.gateway.pid())?;
    let resp = reqwest::get(format!(
        "{}/v1/client/fs/cat/{id}?path=alloc/data/big",
        c.url
    ))
    .await?;
    let mut body = resp.bytes_stream();
    let started = Instant::now();
    let mut read = 0u64;
    let rate = args.slow_rate * 1024 * 1024;
    while started.elapsed() < Duration::from_secs(5) {
        match body.next().await {
            Some(chunk) => read += chunk?.len() as u64,
            None => break,
        }
        let due = Duration::from_secs_f64(read as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let (agent_after, _) = usage(c.agent.pid())?;
    let (gw_after, _) = usage(c.gateway.pid())?;
    drop(body);
    rows.push(vec![
        "fs: slow reader".into(),
        format!(
            "cat of {} MiB read at {} MiB/s for 5 s",
            args.size_mib, args.slow_rate
        ),
        format!("{:.1} MiB read", read as f64 / 1048576.0),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!(
            "agent RSS {:.1} -> {:.1} MiB; gateway RSS {:.1} -> {:.1} MiB",
            agent_before as f64 / 1024.0,
            agent_after as f64 / 1024.0,
            gw_before as f64 / 1024.0,
            gw_after as f64 / 1024.0
        ),
    ]);
    Ok(rows)
}
