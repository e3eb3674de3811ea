//! `caravan-bench`: load drivers that measure Caravan on one machine, over loopback only.
//!
//! - `writes`: durable writes per second through `caravan_state::Store` on PostgreSQL (1 and 32
//!   writers, group commit) and SQLite, with `pgbench` doing the same upsert on the same
//!   PostgreSQL cluster for reference.
//! - `wakeups`: 10,000 parked blocking queries on `GET /v1/nodes`, one write, and the
//!   distribution of how long each query took to answer.
//! - `reads`: `GET /v1/node/<id>` requests per second on keep-alive connections.
//! - `acl`: `GET /v1/allocation/:id` with ACLs on against off (interleaved rounds), and how soon
//!   a deleted token is refused on another gateway.
//! - `services`: `GET /v1/service/:name` with 10,000 instances of 100 services on 5,000
//!   simulated nodes, and the wake-up of 1,000 blocking queries when one instance goes away.
//! - `periodic`: how late periodic jobs' children launch (100 jobs on a one-minute cron).
//!
//! Every figure printed is measured in the run that prints it. Each benchmark is bounded in
//! time and count by its flags. They are not tests: `scripts/bench.sh` builds with `--release`,
//! starts a throwaway PostgreSQL, raises the open-files limit and runs them all; they can also
//! be run one by one by hand (see `--help` of each).
//!
//! Layout: [`stats`] (percentiles, the result table), [`node_doc`] (the ~2 KB node document all
//! benchmarks write), [`http`] (a bare HTTP/1.1 connection), [`agent`] (starting a dev agent),
//! then one module per benchmark.

mod acl;
mod agent;
mod http;
mod node_doc;
mod periodic;
mod reads;
mod services;
mod stats;
mod wakeups;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "caravan-bench",
    about = "Benchmarks of Caravan's store and HTTP API"
)]
struct Cli {
    /// Append the result rows to this file as tab-separated lines (scripts/bench.sh collects
    /// them into one table).
    #[arg(long, global = true)]
    summary: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Durable writes/s through the Store (PostgreSQL, SQLite) and pgbench's upsert.
    Writes(writes::WritesArgs),
    /// Wake-up latency of parked blocking queries after one write.
    Wakeups(wakeups::WakeupsArgs),
    /// GET /v1/node/<id> requests per second on keep-alive connections.
    Reads(reads::ReadsArgs),
    /// The service catalogue: reads and wake-ups at scale.
    Services(services::ServicesArgs),
    /// Cost of ACL enforcement on reads, and revocation latency across gateways.
    Acl(acl::AclArgs),
    /// Lateness of periodic launches (launched - scheduled) with many jobs due at once.
    Periodic(periodic::PeriodicArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let rows = match &cli.command {
        Command::Writes(args) => writes::run(args).await,
        Command::Wakeups(args) => wakeups::run(args).await,
        Command::Reads(args) => reads::run(args).await,
        Command::Periodic(args) => periodic::run(args).await,
        Command::Acl(args) => acl::run(args).await,
        Command::Services(args) => services::run(args).await,
    };
    let result = rows.and_then(|rows| stats::publish(&rows, cli.summary.as_deref()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("caravan-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
