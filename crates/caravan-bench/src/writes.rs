//! `writes`: durable writes per second through `caravan_state::Store`, and pgbench beside it.
//!
//! - **Store**: N writers (tasks), each updating its own ~2 KB node document in a loop, one
//!   `Store::write` at a time, for a fixed duration. The store groups concurrent writes into one
//!   transaction (group commit), so N writers may share a commit. Every run gets a fresh
//!   database (PostgreSQL) or a fresh file (SQLite). Reported: writes/s, latency of each
//!   `write` call, and for PostgreSQL how many database transactions the run took (the
//!   transaction-ID delta, as nothing else writes to the throwaway cluster) so the
//!   writes-per-commit ratio shows how well group commit batches.
//! - **pgbench**: the same single-row upsert of the same document, straight at the same
//!   PostgreSQL cluster: `INSERT ... ON CONFLICT (k) DO UPDATE` with a random key in 1..100000,
//!   prepared statements (as sqlx uses), `-c 1 -j 1` and `-c 32 -j 2`. Its tps line is quoted and
//!   its per-transaction log (`-l`) gives the percentiles. That is the ceiling of one round trip
//!   and one fsync'd commit per write, without batching.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use caravan_state::{StateError, Store};
use caravan_structs::Node;
use clap::ValueEnum;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::time::Instant;

use crate::node_doc;
use crate::stats::{Row, Summary, parse_duration};

#[derive(Debug, Clone, clap::Args)]
pub struct WritesArgs {
    /// How long each run writes.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Numbers of concurrent writers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// Which stores to run the Store benchmark on.
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    pub backends: Vec<BackendKind>,
    /// Superuser URL of a throwaway PostgreSQL cluster: each run creates its own database there
    /// and drops it afterwards (scripts/bench.sh starts one and sets this).
    #[arg(long = "database-url", env = "CARAVAN_TEST_DATABASE_URL")]
    pub admin_url: Option<String>,
    /// Directory holding pgbench [default: /usr/lib/postgresql/<newest>/bin, else PATH].
    #[arg(long, env = "CARAVAN_TEST_PG_BIN")]
    pub pg_bin: Option<PathBuf>,
    /// Skip the pgbench comparison.
    #[arg(long)]
    pub no_pgbench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

pub async fn run(args: &WritesArgs) -> anyhow::Result<Vec<Row>> {
    if args.concurrency.contains(&0) {
        bail!("--concurrency values must be at least 1");
    }
    let wants_pg = args.backends.contains(&BackendKind::Postgres) || !args.no_pgbench;
    let admin_url = match (&args.admin_url, wants_pg) {
        (Some(url), _) => Some(url.clone()),
        (None, false) => None,
        (None, true) => bail!(
            "PostgreSQL runs need a throwaway cluster: run scripts/bench.sh, or pass \
             --database-url postgres://USER@HOST:PORT/postgres (a superuser URL; each run \
             creates and drops its own database), or use --backends sqlite --no-pgbench"
        ),
    };
    let mut rows = Vec::new();
    if let Some(admin) = &admin_url {
        let pgbench = if args.no_pgbench {
            None
        } else {
            Some(find_pgbench(args.pg_bin.as_deref())?)
        };
        for &c in &args.concurrency {
            if args.backends.contains(&BackendKind::Postgres) {
                let db = PgDatabase::create(admin).await?;
                let row = store_run(&db.url, Some(admin), c, args.duration, "store postgres").await;
                db.drop_now().await;
                rows.push(row?);
                println!("{}", crate::stats::table(&rows[rows.len() - 1..]));
            }
            if let Some(pgbench) = &pgbench {
                // Two client threads at 32 connections, as one pgbench thread can saturate a core.
                let threads = if c >= 32 { 2 } else { 1 };
                let db = PgDatabase::create(admin).await?;
                let row = pgbench_run(pgbench, &db.url, c, threads, args.duration).await;
                db.drop_now().await;
                rows.push(row?);
                println!("{}", crate::stats::table(&rows[rows.len() - 1..]));
            }
        }
    }
    if args.backends.contains(&BackendKind::Sqlite) {
        for &c in &args.concurrency {
            let dir = tempfile::Builder::new()
                .prefix("caravan-bench-sqlite-")
                .tempdir()
                .context("creating a temp dir for SQLite")?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            rows.push(store_run(&url, None, c, args.duration, "store sqlite").await?);
            println!("{}", crate::stats::table(&rows[rows.len() - 1..]));
        }
    }
    Ok(rows)
}

/// One Store run: `writers` tasks updating their own node for `duration`.
async fn store_run(
    url: &str,
    admin_url: Option<&str>,
    writers: usize,
    duration: Duration,
    label: &str,
) -> anyhow::Result<Row> {
    println!("{label}: {writers} writer(s) for {duration:?} ...");
    let store = Store::open(url)
        .await
        .with_context(|| format!("opening the store at {url}"))?;
    let mut nodes = Vec::with_capacity(writers);
    for i in 0..writers {
        nodes.push(node_doc::node(
            &uuid::Uuid::new_v4().to_string(),
            &format!("bench-writer-{i}"),
        )?);
    }
    // Warm-up: each writer creates its row once (and the pool opens its connections), so the
    // timed part measures updates only.
    let warmups = nodes.iter().cloned().map(|node| {
        let store = store.clone();
        async move {
            store
                .write(move |txn| -> Result<(), StateError> { txn.put(node).map(|_| ()) })
                .await
        }
    });
    for result in futures::future::join_all(warmups).await {
        result.context("warm-up write")?;
    }

    let mut admin = match admin_url {
        Some(url) => Some(
            PgConnection::connect(url)
                .await
                .context("connecting to the cluster")?,
        ),
        None => None,
    };
    let xid_before = match &mut admin {
        Some(conn) => Some(current_xid(conn).await?),
        None => None,
    };
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|node| tokio::spawn(writer(store.clone(), Arc::new(node), end)))
        .collect();
    let mut samples = Vec::new();
    let mut in_window = 0u64;
    let mut total = 0u64;
    let mut errors = 0u64;
    let mut first_error = None;
    for task in tasks {
        let outcome = task.await.context("a writer task panicked")?;
        samples.extend(outcome.latencies);
        in_window += outcome.in_window;
        total += outcome.total;
        errors += outcome.errors;
        first_error = first_error.or(outcome.first_error);
    }
    let xid_after = match &mut admin {
        Some(conn) => Some(current_xid(conn).await?),
        None => None,
    };
    drop(store);
    if let Some(conn) = admin {
        let _ = conn.close().await;
    }

    let summary = Summary::of(&mut samples);
    let rate = in_window as f64 / duration.as_secs_f64();
    let mut note = format!("{total} writes");
    if let (Some(before), Some(after)) = (xid_before, xid_after) {
        // txid_current() itself takes one ID: the second call's is not a write of ours.
        let txns = after.saturating_sub(before).saturating_sub(1).max(1);
        note.push_str(&format!(
            ", {txns} db txns, {:.1} writes/txn",
            total as f64 / txns as f64
        ));
    }
    if errors > 0 {
        note.push_str(&format!(
            ", {errors} errors (first: {})",
            first_error.unwrap_or_default()
        ));
    }
    Ok(Row::new("writes", format!("{label} c={writers}"), summary)
        .rate(format!("{rate:.0} writes/s"))
        .note(note))
}

#[derive(Default)]
struct WriterOutcome {
    latencies: Vec<Duration>,
    in_window: u64,
    total: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Updates `node` over and over until `end`; each write changes the document.
async fn writer(store: Store, node: Arc<Node>, end: Instant) -> WriterOutcome {
    let mut out = WriterOutcome::default();
    let mut seq: i64 = 0;
    while Instant::now() < end {
        seq += 1;
        let mut next = (*node).clone();
        // Any field will do: the point is a new version of the whole document.
        next.status_updated_at = seq;
        let started = Instant::now();
        let result = store
            .write(move |txn| -> Result<(), StateError> { txn.put(next).map(|_| ()) })
            .await;
        let done = Instant::now();
        match result {
            Ok(_) => {
                out.total += 1;
                if done <= end {
                    out.in_window += 1;
                    out.latencies.push(done - started);
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
                // A failing store fails fast; do not spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    out
}

async fn current_xid(conn: &mut PgConnection) -> anyhow::Result<u64> {
    let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
        .fetch_one(conn)
        .await
        .context("reading txid_current()")?;
    Ok(u64::try_from(xid).unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// pgbench
// ---------------------------------------------------------------------------------------------

fn find_pgbench(pg_bin: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = pg_bin {
        let path = dir.join("pgbench");
        if path.is_file() {
            return Ok(path);
        }
        bail!("no pgbench in {}", dir.display());
    }
    // Debian: /usr/lib/postgresql/<major>/bin; the newest major first.
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin/pgbench")))
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    dirs.sort();
    if let Some((_, path)) = dirs.pop() {
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pgbench"))
        .find(|p| p.is_file());
    on_path.context("pgbench not found: set CARAVAN_TEST_PG_BIN or pass --pg-bin, or --no-pgbench")
}

/// One pgbench run of the upsert script on a fresh database.
async fn pgbench_run(
    pgbench: &Path,
    url: &str,
    clients: usize,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    println!("pgbench: -c {clients} -j {threads} for {duration:?} ...");
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to the bench database")?;
    sqlx::query("CREATE TABLE bench_kv (k bigint PRIMARY KEY, v jsonb NOT NULL)")
        .execute(&mut conn)
        .await
        .context("creating bench_kv")?;
    let _ = conn.close().await;

    let dir = tempfile::Builder::new()
        .prefix("caravan-pgbench-")
        .tempdir()
        .context("creating a temp dir for pgbench")?;
    let script = dir.path().join("upsert.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 100000)\n\
         INSERT INTO bench_kv (k, v) VALUES (:id, :payload) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v;\n",
    )
    .context("writing the pgbench script")?;
    let payload = String::from_utf8(node_doc::node_json(&node_doc::node(
        &uuid::Uuid::new_v4().to_string(),
        "bench-pgbench",
    )?)?)
    .context("the node JSON is not UTF-8")?;
    let log_prefix = dir.path().join("txlog");
    // pgbench's -T takes whole seconds.
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let output = tokio::process::Command::new(pgbench)
        .args(["-n", "-M", "prepared"])
        .arg("-f")
        .arg(&script)
        .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &seconds.to_string()])
        // pgbench substitutes :payload as a parameter of the prepared statement (jsonb).
        .arg("-D")
        .arg(format!("payload={payload}"))
        .arg("-l")
        .arg(format!("--log-prefix={}", log_prefix.display()))
        .arg(url)
        .current_dir(dir.path())
        .output()
        .await
        .with_context(|| format!("running {}", pgbench.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    let tps = parse_tps(&stdout)
        .with_context(|| format!("no tps line in pgbench's output:\n{stdout}"))?;
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .map(|l| l.trim().to_owned());
    let mut samples = read_pgbench_logs(dir.path(), "txlog")?;
    let summary = Summary::of(&mut samples);
    let mut note = format!("{} txns logged, tps line: {tps:.1}", samples.len());
    if let Some(failed) = failed.filter(|l| !l.contains(": 0 ")) {
        note.push_str(&format!(", {failed}"));
    }
    Ok(Row::new(
        "writes",
        format!("pgbench upsert -c {clients} -j {threads}"),
        summary,
    )
    .rate(format!("{tps:.0} tps"))
    .note(note))
}

/// The figure of `tps = 1234.567 (without initial connection time)`.
fn parse_tps(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tps = "))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Latencies from pgbench's per-transaction logs (`<prefix>.<pid>[.<thread>]`): the third
/// field of each line is the transaction's time in microseconds; skipped or failed
/// transactions have a word there instead and are left out.
fn read_pgbench_logs(dir: &Path, prefix: &str) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).context("listing the pgbench logs")? {
        let entry = entry.context("listing the pgbench logs")?;
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&format!("{prefix}.")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).context("reading a pgbench log")?;
        out.extend(parse_pgbench_log(&text));
    }
    Ok(out)
}

fn parse_pgbench_log(text: &str) -> impl Iterator<Item = Duration> + '_ {
    text.lines().filter_map(|line| {
        let micros: u64 = line.split_whitespace().nth(2)?.parse().ok()?;
        Some(Duration::from_micros(micros))
    })
}

// ---------------------------------------------------------------------------------------------
// Throwaway databases
// ---------------------------------------------------------------------------------------------

/// A fresh database on the throwaway cluster, dropped by [`PgDatabase::drop_now`].
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("caravan_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        // The name is ours (letters, digits, underscores): no quoting issues.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = conn.close().await;
        let url = with_database(admin_url, &name)?;
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Drops the database (best effort: the whole cluster is thrown away afterwards anyway).
    async fn drop_now(self) {
        let result = async {
            let mut conn = PgConnection::connect(&self.admin_url).await?;
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

/// `admin_url` with its database (the URL path) replaced by `database`.
fn with_database(admin_url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base
        .find("://")
        .with_context(|| format!("not a URL: {admin_url}"))?
        + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgbench_output_and_logs() {
        let stdout = "number of transactions actually processed: 5000\n\
                      latency average = 0.812 ms\n\
                      initial connection time = 2.345 ms\n\
                      tps = 1231.456789 (without initial connection time)\n";
        assert_eq!(parse_tps(stdout), Some(1231.456789));
        let log = "0 1 812 0 1700000000 123456\n0 2 skipped 0 1700000000 123999\n1 1 1500 0 1700000001 5\n";
        let got: Vec<Duration> = parse_pgbench_log(log).collect();
        assert_eq!(
            got,
            [Duration::from_micros(812), Duration::from_micros(1500)]
        );
    }

    #[test]
    fn swaps_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://u@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "x").unwrap(),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
