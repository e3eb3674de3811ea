//! `exec`: exec sessions (`/v1/client/allocation/:id/exec`, a WebSocket on the gateway bridged
//! to the agent), measured black-box.
//!
//! It starts `caravan server` (PostgreSQL when `CARAVAN_TEST_DATABASE_URL` is set, else SQLite),
//! `caravan gateway` and one `caravan agent`, runs a raw_exec task that writes a `--size` MiB
//! file into its directory, and measures
//!
//! 1. **keystroke round trip**: one byte sent as a stdin frame → the same byte back in a stdout
//!    frame from `cat`, `--roundtrips` times, without a terminal and with one (`stty raw -echo`,
//!    so `cat` sees each byte at once, as a full-screen program would); p50/p90/p99;
//! 2. **session start**: `--sessions` sessions of `true` one after the other, from the upgrade
//!    request to the exit frame; p50/p90/p99;
//! 3. **throughput**: `cat` of the file through a session, in MB/s, next to reading the same
//!    file from disk in this process (page cache warm for both).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use caravan_tests::bench::{AgentCluster, usage};
use caravan_tests::{QueryOptions, api, wait_for};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const USAGE: &str = "\
exec: exec session keystroke round trip, start latency and output throughput

usage: exec [flags]

  --roundtrips N    keystroke round trips timed per session kind (default 1000)
  --sessions N      sessions of `true` timed from upgrade to exit (default 100)
  --size MIB        size of the file catted through a session (default 100)
  --summary FILE    append the result rows to FILE as tab-separated lines (scripts/bench.sh)";

struct Args {
    roundtrips: usize,
    sessions: usize,
    size_mib: u64,
    summary: Option<std::path::PathBuf>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
        let mut a = Args {
            roundtrips: 1000,
            sessions: 100,
            size_mib: 100,
            summary: None,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--roundtrips" => a.roundtrips = value()?.parse()?,
                "--sessions" => a.sessions = value()?.parse()?,
                "--size" => a.size_mib = value()?.parse()?,
                "--summary" => a.summary = Some(value()?.into()),
                "--bench" => {}
                other => bail!("unknown flag {other}"),
            }
        }
        if a.roundtrips == 0 || a.sessions == 0 || a.size_mib == 0 {
            bail!("--roundtrips, --sessions and --size must be positive");
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
            eprintln!("exec: {e:#}\n\n{USAGE}");
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
            eprintln!("exec: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len().max(1) as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// A latency row: p50, p90, p99 and max of `ms` (sorted here).
fn latency_row(name: &str, setup: String, mut ms: Vec<f64>, note: String) -> Vec<String> {
    ms.sort_by(f64::total_cmp);
    vec![
        name.to_owned(),
        setup,
        "-".into(),
        format!("{:.2} ms", pct(&ms, 0.5)),
        format!("{:.2} ms", pct(&ms, 0.9)),
        format!("{:.2} ms", pct(&ms, 0.99)),
        format!("{:.2} ms", ms.last().copied().unwrap_or(0.0)),
        note,
    ]
}

// ---------------------------------------------------------------------------------------------
// A minimal exec client
// ---------------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent that matters here.
enum Out {
    Data(Vec<u8>),
    Exited(Value),
    /// Closes of stdout or stderr, heartbeats.
    Other,
}

struct Session {
    ws: Ws,
}

fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Session {
    async fn open(ws_base: &str, alloc: &str, command: &[&str], tty: bool) -> anyhow::Result<Self> {
        let url = format!(
            "{ws_base}/v1/client/allocation/{alloc}/exec?task=t&tty={tty}&command={}",
            query_value(&json!(command).to_string())
        );
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("opening {url}"))?;
        // Keystrokes are single small frames: no Nagle delay on our side.
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_nodelay(true)?;
        }
        Ok(Session { ws })
    }

    async fn stdin(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let frame = json!({"stdin": {"data": b64}}).to_string();
        self.ws.send(Message::text(frame)).await?;
        Ok(())
    }

    async fn close_stdin(&mut self) -> anyhow::Result<()> {
        let frame = json!({"stdin": {"close": true}}).to_string();
        self.ws.send(Message::text(frame)).await?;
        Ok(())
    }

    /// The next frame; an error once the session ended (a close frame included).
    async fn next(&mut self) -> anyhow::Result<Out> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .context("no frame within 60 s")?
                .context("the session ended")??;
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(f) => bail!("the session closed: {f:?}"),
                _ => continue,
            };
            let v: Value = serde_json::from_str(text.as_str())?;
            if v["exited"] == true {
                return Ok(Out::Exited(v["result"].clone()));
            }
            let data = v["stdout"]["data"]
                .as_str()
                .or(v["stderr"]["data"].as_str());
            return Ok(match data {
                Some(d) => Out::Data(base64::engine::general_purpose::STANDARD.decode(d)?),
                None => Out::Other,
            });
        }
    }

    /// Reads output until it contains `want` (heartbeats keep a session alive: a deadline).
    async fn read_until(&mut self, want: &[u8]) -> anyhow::Result<()> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !got.windows(want.len()).any(|w| w == want) {
            let next = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| anyhow!("no {want:?} within 60 s; output {got:?}"))?;
            match next? {
                Out::Data(d) => got.extend_from_slice(&d),
                Out::Exited(r) => bail!("exited ({r}) before {want:?}; output {got:?}"),
                Out::Other => {}
            }
        }
        Ok(())
    }

    /// Reads to the exit frame; returns the output bytes counted on the way and the result.
    async fn finish(mut self) -> anyhow::Result<(u64, Value)> {
        let mut n = 0u64;
        loop {
            match self.next().await? {
                Out::Data(d) => n += d.len() as u64,
                Out::Exited(result) => {
                    let _ = self.ws.close(None).await;
                    return Ok((n, result));
                }
                Out::Other => {}
            }
        }
    }
}

/// `--roundtrips` one-byte round trips through `cat`; milliseconds each.
async fn round_trips(ws_base: &str, alloc: &str, n: usize, tty: bool) -> anyhow::Result<Vec<f64>> {
    let mut s = if tty {
        let mut s = Session::open(
            ws_base,
            alloc,
            &["/bin/sh", "-c", "stty raw -echo && echo ready && exec cat"],
            true,
        )
        .await?;
        // Raw mode: no \r added to the newline.
        s.read_until(b"ready\n").await?;
        s
    } else {
        Session::open(ws_base, alloc, &["cat"], false).await?
    };
    let mut ms = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let key = [b'a' + (i % 26) as u8];
        let sent = Instant::now();
        s.stdin(&key).await?;
        s.read_until(&key).await?;
        // The first tenth warms up (connections, caches) and is not counted.
        if i >= n / 10 {
            ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
    }
    if tty {
        // ^D does nothing in raw mode: end cat the way a terminal user would, by leaving.
        let _ = s.ws.close(None).await;
    } else {
        s.close_stdin().await?;
        let (_, result) = s.finish().await?;
        if result != json!({}) {
            bail!("cat exited with {result}");
        }
    }
    Ok(ms)
}

/// Reads `path` in 1 MiB reads; returns bytes and seconds.
fn read_file(path: &std::path::Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    Ok((n, started.elapsed().as_secs_f64()))
}

async fn run(args: &Args) -> anyhow::Result<Vec<Vec<String>>> {
    let c = AgentCluster::start().await?;
    let ws_base = c.url.replacen("http://", "ws://", 1);
    let size = args.size_mib * 1024 * 1024;
    let script = format!(
        "head -c {size} /dev/urandom > local/big.tmp && mv local/big.tmp local/big; exec sleep 1000000"
    );
    let job = json!({
        "ID": "execbench", "Type": "service", "Datacenters": ["*"],
        "TaskGroups": [{"Name": "g", "EphemeralDisk": {"SizeMB": args.size_mib + 300},
            "Tasks": [{"Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", script]},
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
        "the task to write its file",
        Duration::from_secs(600),
        || async {
            let r = c
                .client
                .get("/v1/job/execbench/allocations", &QueryOptions::new())
                .await?;
            let v: Value = r.json()?;
            if let Some(a) = v.as_array().and_then(|a| a.first())
                && let Some(id) = a["ID"].as_str()
            {
                *alloc_id.lock().map_err(|_| anyhow!("poisoned"))? = id.to_owned();
                return Ok(a["ClientStatus"] == "running"
                    && alloc_base.join(id).join("t/local/big").exists());
            }
            Ok(false)
        },
    )
    .await?;
    let id = alloc_id.into_inner().map_err(|_| anyhow!("poisoned"))?;
    let big = alloc_base.join(&id).join("t/local/big");
    let mut rows = Vec::new();

    // 1. Keystroke round trips.
    for tty in [false, true] {
        let ms = round_trips(&ws_base, &id, args.roundtrips, tty).await?;
        rows.push(latency_row(
            &format!("exec: keystroke{}", if tty { " (tty)" } else { "" }),
            format!(
                "{} x 1 byte stdin -> stdout, {}",
                args.roundtrips,
                if tty {
                    "cat on a raw terminal"
                } else {
                    "cat on pipes"
                }
            ),
            ms,
            String::new(),
        ));
    }

    // 2. Session start: upgrade request to exit frame of `true`.
    let mut ms = Vec::with_capacity(args.sessions);
    let mut upgrades = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        let started = Instant::now();
        let s = Session::open(&ws_base, &id, &["true"], false).await?;
        upgrades.push(started.elapsed().as_secs_f64() * 1000.0);
        let (_, result) = s.finish().await?;
        if result != json!({}) {
            bail!("true exited with {result}");
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    upgrades.sort_by(f64::total_cmp);
    rows.push(latency_row(
        "exec: session start",
        format!(
            "{} sessions of `true`, upgrade -> exit frame",
            args.sessions
        ),
        ms,
        format!(
            "the upgrade alone (command started): p50 {:.2} ms, p99 {:.2} ms",
            pct(&upgrades, 0.5),
            pct(&upgrades, 0.99)
        ),
    ));

    // 3. Throughput, page cache warm.
    read_file(&big)?;
    let (disk_n, disk_secs) = read_file(&big)?;
    let (agent_rss0, agent_cpu0) = usage(c.agent.pid())?;
    let (gw_rss0, gw_cpu0) = usage(c.gateway.pid())?;
    let started = Instant::now();
    let s = Session::open(&ws_base, &id, &["cat", "local/big"], false).await?;
    let (n, result) = s.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    let (agent_rss1, agent_cpu1) = usage(c.agent.pid())?;
    let (gw_rss1, gw_cpu1) = usage(c.gateway.pid())?;
    if n != size || result != json!({}) {
        bail!("cat through exec: {n} bytes of {size}, exit {result}");
    }
    let mbs = |bytes: u64, s: f64| bytes as f64 / 1e6 / s;
    let cpu = |a: u64, b: u64| (b - a) as f64 / 100.0 / secs * 100.0;
    rows.push(vec![
        format!("exec: cat {} MiB", args.size_mib),
        "stdout frames through gateway and agent".into(),
        format!("{:.0} MB/s", mbs(n, secs)),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        format!(
            "read from disk here: {:.0} MB/s; agent {:.0}% CPU, RSS {:.1} -> {:.1} MiB; \
             gateway {:.0}% CPU, RSS {:.1} -> {:.1} MiB",
            mbs(disk_n, disk_secs),
            cpu(agent_cpu0, agent_cpu1),
            agent_rss0 as f64 / 1024.0,
            agent_rss1 as f64 / 1024.0,
            cpu(gw_cpu0, gw_cpu1),
            gw_rss0 as f64 / 1024.0,
            gw_rss1 as f64 / 1024.0,
        ),
    ]);
    Ok(rows)
}
