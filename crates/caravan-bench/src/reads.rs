//! `reads`: `GET /v1/node/<id>` requests per second against a real agent over 127.0.0.1.
//!
//! C keep-alive connections, each a closed loop (send, read the whole response, send again), for
//! a warm-up and then D measured seconds. Only requests that both start and finish inside the
//! measured window count. Each request goes gateway -> gRPC -> server -> in-memory snapshot ->
//! back, which is the path every Nomad read takes here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use tokio::time::Instant;

use crate::agent::{Target, TargetArgs};
use crate::http::Conn;
use crate::stats::{Row, Summary, parse_duration};

#[derive(Debug, Clone, clap::Args)]
pub struct ReadsArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load before measuring (not counted).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Send `Accept-Encoding: gzip`, as Go's HTTP client (the nomad CLI) does by default.
    #[arg(long)]
    pub gzip: bool,
    /// The node to read [default: the first ready node].
    #[arg(long)]
    pub node_id: Option<String>,
    /// Also run this `wrk` binary against the same agent and URL (`-t2`, the same connections
    /// and duration, `--latency`), for comparison with this load driver.
    #[arg(long)]
    pub wrk: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

pub async fn run(args: &ReadsArgs) -> anyhow::Result<Vec<Row>> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let target = Target::start(&args.target).await?;
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => target
            .ready_node()
            .await?
            .context("the agent lists no ready node")?,
    };
    let path = format!("/v1/node/{node_id}");
    // One request first: a wrong ID or a broken route should fail loudly, not as N errors/s.
    let probe = Conn::connect(target.http).await?.get(&path).await?.ok()?;
    println!(
        "reads: GET {path} ({} bytes{}) on {} connections, {:?} warm-up + {:?} measured ...",
        probe.body.len(),
        if args.gzip { ", gzip accepted" } else { "" },
        args.connections,
        args.warmup,
        args.duration
    );

    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            tokio::spawn(client(
                target.http,
                path.clone(),
                args.gzip,
                measure_from,
                end,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    for task in tasks {
        let outcome = task.await.context("a client task panicked")?;
        samples.extend(outcome.latencies);
        errors += outcome.errors;
        first_error = first_error.or(outcome.first_error);
    }

    let ok = samples.len();
    let summary = Summary::of(&mut samples);
    let rate = ok as f64 / args.duration.as_secs_f64();
    let mut note = format!("{ok} ok, {errors} errors");
    if let Some(e) = first_error {
        note.push_str(&format!(" (first: {e})"));
    }
    let setup = format!(
        "GET /v1/node/:id c={}{}",
        args.connections,
        if args.gzip { " gzip" } else { "" }
    );
    let mut rows = vec![
        Row::new("reads", setup, summary)
            .rate(format!("{rate:.0} req/s"))
            .note(note),
    ];
    if let Some(wrk) = &args.wrk {
        let url = format!("http://{}{path}", target.http);
        rows.push(wrk_run(wrk, &url, args.connections, args.duration, args.gzip).await?);
    }
    drop(target);
    Ok(rows)
}

/// One wrk run; its percentiles come from its `--latency` distribution.
async fn wrk_run(
    wrk: &Path,
    url: &str,
    connections: usize,
    duration: Duration,
    gzip: bool,
) -> anyhow::Result<Row> {
    // wrk's -d takes whole seconds; it needs at least as many connections as threads.
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let threads = connections.min(2);
    println!("wrk -t{threads} -c{connections} -d{seconds}s --latency {url} ...");
    let mut cmd = tokio::process::Command::new(wrk);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    if gzip {
        cmd.args(["-H", "Accept-Encoding: gzip"]);
    }
    let output = cmd
        .arg(url)
        .output()
        .await
        .with_context(|| format!("running {}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report = WrkReport::parse(&stdout)
        .with_context(|| format!("cannot read wrk's output:\n{stdout}"))?;
    let pct = |q: &str| {
        report
            .percentiles
            .iter()
            .find(|(p, _)| p == q)
            .map_or("-".to_owned(), |(_, d)| crate::stats::ms(*d))
    };
    let mut row = Row::new(
        "reads",
        format!(
            "wrk -t{threads} -c{connections}{}",
            if gzip { " gzip" } else { "" }
        ),
        None,
    )
    .rate(format!("{:.0} req/s", report.requests_per_sec))
    .note(report.problems.join("; "));
    row.p50 = pct("50%");
    row.p90 = pct("90%");
    row.p99 = pct("99%");
    Ok(row)
}

/// What matters of wrk's text output.
#[derive(Debug, Default, PartialEq)]
struct WrkReport {
    requests_per_sec: f64,
    /// (`50%`, latency) from the `Latency Distribution` block.
    percentiles: Vec<(String, Duration)>,
    /// `Non-2xx or 3xx responses` and `Socket errors` lines, verbatim.
    problems: Vec<String>,
}

impl WrkReport {
    fn parse(text: &str) -> Option<WrkReport> {
        let mut report = WrkReport::default();
        let mut rps = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Requests/sec:") {
                rps = rest.trim().parse().ok();
            } else if line.starts_with("Non-2xx") || line.starts_with("Socket errors") {
                report.problems.push(line.to_owned());
            } else if let Some((pct, value)) = line.split_once(char::is_whitespace) {
                let is_pct = pct
                    .strip_suffix('%')
                    .is_some_and(|p| p.parse::<f64>().is_ok());
                if let Some(d) = parse_wrk_duration(value.trim()).filter(|_| is_pct) {
                    report.percentiles.push((pct.to_owned(), d));
                }
            }
        }
        report.requests_per_sec = rps?;
        Some(report)
    }
}

/// wrk's `635.91us`, `1.20ms`, `2.00s`, `1.50m`.
fn parse_wrk_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value * scale))
}

#[derive(Default)]
struct ClientOutcome {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// One connection's closed loop until `end`; reconnects after an error.
async fn client(
    addr: SocketAddr,
    path: String,
    gzip: bool,
    measure_from: Instant,
    end: Instant,
) -> ClientOutcome {
    let mut out = ClientOutcome::default();
    let mut conn: Option<Conn> = None;
    while Instant::now() < end {
        let started = Instant::now();
        let result = async {
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(Conn::connect(addr).await?),
            };
            c.request(Method::GET, &path, None, gzip).await?.ok()
        }
        .await;
        let done = Instant::now();
        let counted = started >= measure_from && done <= end;
        match result {
            Ok(_) if counted => out.latencies.push(done - started),
            Ok(_) => {}
            Err(e) => {
                if counted {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
                conn = None;
                // Do not hammer a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:4646/v1/node/x
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  300.00us   9.00ms   90.00%
    Req/Sec    31.00k     1.00k   33.00k    70.00%
  Latency Distribution
     50%  635.91us
     75%  712.24us
     90%    1.20ms
     99%    2.00s
  620000 requests in 10.00s, 1.20GB read
  Non-2xx or 3xx responses: 3
Requests/sec:  61999.50
Transfer/sec:    123.00MB
";
        let r = WrkReport::parse(text).unwrap();
        assert_eq!(r.requests_per_sec, 61999.5);
        assert_eq!(r.percentiles.len(), 4);
        assert_eq!(
            r.percentiles[0],
            ("50%".to_owned(), Duration::from_nanos(635_910))
        );
        assert_eq!(r.percentiles[2].1, Duration::from_micros(1200));
        assert_eq!(r.percentiles[3].1, Duration::from_secs(2));
        assert_eq!(r.problems, ["Non-2xx or 3xx responses: 3"]);
        assert!(WrkReport::parse("nothing").is_none());
    }
}
