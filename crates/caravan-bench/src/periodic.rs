//! `periodic`: how late the periodic launcher starts children. N periodic batch jobs on a
//! one-minute cron (`* * * * *`, at second 0) are registered on a real agent; once each has
//! launched L children, every child's lateness is its `SubmitTime` (stamped inside the write
//! that registers it) minus the launch second in its ID (`<id>/periodic-<unix seconds>`).
//! That covers the timer, the launch transaction and the commit, for N jobs due at once.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::agent::{Target, TargetArgs};
use crate::http::Conn;
use crate::stats::{Row, Summary};

#[derive(Debug, Clone, clap::Args)]
pub struct PeriodicArgs {
    /// Periodic jobs, all on the same one-minute schedule.
    #[arg(long, default_value_t = 100)]
    pub jobs: usize,
    /// Launches to wait for per job.
    #[arg(long, default_value_t = 2)]
    pub launches: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

const PREFIX: &str = "bench-periodic-";

fn job(i: usize) -> Value {
    json!({"Job": {
        "ID": format!("{PREFIX}{i}"), "Type": "batch",
        "Periodic": {"Spec": "* * * * *"},
        "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
            "Resources": {"CPU": 10, "MemoryMB": 10}
        }]}]
    }})
}

/// Lateness of every child launched so far.
async fn lateness(conn: &mut Conn) -> anyhow::Result<Vec<Duration>> {
    let jobs = conn
        .get(&format!("/v1/jobs?prefix={PREFIX}"))
        .await?
        .ok()?
        .json()?;
    let mut out = Vec::new();
    for stub in jobs.as_array().into_iter().flatten() {
        if stub["ParentID"].as_str().is_none_or(str::is_empty) {
            continue;
        }
        let id = stub["ID"].as_str().unwrap_or_default();
        let secs: i64 = id
            .rsplit_once("/periodic-")
            .and_then(|(_, s)| s.parse().ok())
            .with_context(|| format!("child ID {id:?}"))?;
        let submit = stub["SubmitTime"].as_i64().unwrap_or_default();
        let late = submit.saturating_sub(secs.saturating_mul(1_000_000_000));
        out.push(Duration::from_nanos(u64::try_from(late).unwrap_or(0)));
    }
    Ok(out)
}

pub async fn run(args: &PeriodicArgs) -> anyhow::Result<Vec<Row>> {
    if args.jobs == 0 || args.launches == 0 {
        bail!("--jobs and --launches must be at least 1");
    }
    let target = Target::start(&args.target).await?;
    let mut conn = Conn::connect(target.http).await?;
    for i in 0..args.jobs {
        conn.post("/v1/jobs", &job(i)).await?.ok()?;
    }
    let want = args.jobs * args.launches;
    println!(
        "periodic: {} jobs registered, waiting for {want} launches",
        args.jobs
    );
    // Launches come at each whole minute: L of them take at most L + 1 minutes.
    let deadline = Instant::now() + Duration::from_secs(60 * (args.launches as u64 + 1) + 30);
    let mut samples = loop {
        let samples = lateness(&mut conn).await?;
        if samples.len() >= want {
            break samples;
        }
        if Instant::now() >= deadline {
            bail!("only {} of {want} launches in time", samples.len());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    drop(target);
    let count = samples.len();
    let summary = Summary::of(&mut samples);
    Ok(vec![
        Row::new(
            "periodic",
            format!("{} jobs, one-minute cron, dev agent", args.jobs),
            summary,
        )
        .rate(format!("{count} launches"))
        .note("lateness: SubmitTime - scheduled second"),
    ])
}
