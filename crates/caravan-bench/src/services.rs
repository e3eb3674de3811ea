//! `services`: the service catalogue at scale.
//!
//! 1. Start a dev agent (or use `--addr`/`--rpc-addr`), register `--nodes` simulated nodes over
//!    gRPC and place one job of `--registrations` allocations on them (a constraint keeps the
//!    agent's own node out, so nothing runs for real).
//! 2. Register one service instance per allocation, spread over `--services` names, through
//!    `Services.UpsertServices` with each node's secret, as the nodes' agents would.
//! 3. Reads: `GET /v1/service/<name>` on C keep-alive connections for `--duration`.
//! 4. Wake-ups: `--waiters` blocking queries on one service, then one of its instances is
//!    deregistered; for every query, the time from the deregistration's reply to its answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use caravan_proto::v1::{self, nodes_client::NodesClient, services_client::ServicesClient};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::agent::{Target, TargetArgs};
use crate::http::{Conn, closed_loop};
use crate::node_doc;
use crate::stats::{Row, Summary, parse_duration};

#[derive(Debug, Clone, clap::Args)]
pub struct ServicesArgs {
    /// Simulated nodes.
    #[arg(long, default_value_t = 5_000)]
    pub nodes: usize,
    /// Service instances (one allocation each).
    #[arg(long, default_value_t = 10_000)]
    pub registrations: usize,
    /// Distinct service names the instances spread over.
    #[arg(long, default_value_t = 100)]
    pub services: usize,
    /// Keep-alive connections of the read run.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Length of the read run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Blocking queries on one service.
    #[arg(long, default_value_t = 1_000)]
    pub waiters: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

const PLACE_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn run(args: &ServicesArgs) -> anyhow::Result<Vec<Row>> {
    if args.services == 0 || args.registrations == 0 || args.nodes == 0 {
        bail!("--nodes, --registrations and --services must be at least 1");
    }
    let target = Target::start(&args.target).await?;
    let rpc = target
        .rpc
        .context("the services benchmark needs the gRPC address")?;
    let secrets = register_nodes(rpc, args.nodes).await?;
    let allocs = place(target.http, args.registrations).await?;
    let started = Instant::now();
    register_services(rpc, &secrets, &allocs, args.services).await?;
    println!(
        "services: {} instances of {} services on {} nodes registered in {:?}",
        allocs.len(),
        args.services,
        args.nodes,
        started.elapsed()
    );

    let path = "/v1/service/svc-0";
    let probe = Conn::connect(target.http).await?.get(path).await?.ok()?;
    let instances = probe.json()?.as_array().map_or(0, Vec::len);
    let (mut samples, errors) =
        closed_loop(target.http, path, None, args.connections, args.duration).await?;
    let rate = samples.len() as f64 / args.duration.as_secs_f64();
    let mut rows = vec![
        Row::new(
            "services",
            format!(
                "GET /v1/service/:name ({instances} instances, {} bytes) c={}",
                probe.body.len(),
                args.connections
            ),
            Summary::of(&mut samples),
        )
        .rate(format!("{rate:.0} req/s"))
        .note(format!("{errors} failed connections")),
    ];
    rows.push(wakeups(target.http, rpc, &secrets, &allocs, args).await?);
    drop(target);
    Ok(rows)
}

/// Registers `count` simulated nodes; their secrets by node ID.
async fn register_nodes(rpc: SocketAddr, count: usize) -> anyhow::Result<HashMap<String, String>> {
    let mut client = NodesClient::connect(format!("http://{rpc}"))
        .await
        .with_context(|| format!("connecting to the gRPC server at {rpc}"))?;
    let mut secrets = HashMap::with_capacity(count);
    for i in 0..count {
        let node = node_doc::node(&uuid::Uuid::new_v4().to_string(), &format!("svc-sim-{i}"))?;
        client
            .register(v1::RegisterNodeRequest {
                node_json: node_doc::node_json(&node)?.into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("registering node {i}"))?;
        secrets.insert(node.id.clone(), node.secret_id.clone());
    }
    println!("services: registered {count} simulated nodes");
    Ok(secrets)
}

/// Places one job of `count` allocations on the simulated nodes; (allocation, node) pairs.
async fn place(http: SocketAddr, count: usize) -> anyhow::Result<Vec<(String, String)>> {
    let job = json!({"Job": {
        "ID": "svc-bench", "Type": "service",
        "Constraints": [{"LTarget": "${node.unique.name}", "Operand": "regexp",
                         "RTarget": "^svc-sim-"}],
        "TaskGroups": [{"Name": "g", "Count": count, "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["3600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        }]}]
    }});
    Conn::connect(http)
        .await?
        .post("/v1/jobs", &job)
        .await?
        .ok()?;
    let deadline = Instant::now() + PLACE_TIMEOUT;
    loop {
        let reply = Conn::connect(http)
            .await?
            .get("/v1/job/svc-bench/allocations")
            .await?
            .ok()?;
        let list = reply.json()?;
        let allocs: Vec<(String, String)> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let id = a["ID"].as_str()?;
                let node = a["NodeID"].as_str()?;
                Some((id.to_owned(), node.to_owned()))
            })
            .collect();
        if allocs.len() >= count {
            return Ok(allocs);
        }
        if Instant::now() > deadline {
            bail!("only {} of {count} allocations placed", allocs.len());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn registration(alloc: &str, node: &str, n: usize, services: usize) -> Value {
    let name = format!("svc-{}", n % services);
    json!({
        "ID": format!("_nomad-task-{alloc}-t-{name}-http"),
        "ServiceName": name,
        "Namespace": "default",
        "NodeID": node,
        "Datacenter": "dc1",
        "JobID": "svc-bench",
        "AllocID": alloc,
        "Tags": ["bench", format!("n{}", n % 7)],
        "Address": "127.0.0.1",
        "Port": 20000 + (n % 10_000),
    })
}

/// One upsert per node with its allocations' instances, as that node's agent would send them.
async fn register_services(
    rpc: SocketAddr,
    secrets: &HashMap<String, String>,
    allocs: &[(String, String)],
    services: usize,
) -> anyhow::Result<()> {
    let mut by_node: HashMap<&str, Vec<bytes::Bytes>> = HashMap::new();
    for (n, (alloc, node)) in allocs.iter().enumerate() {
        let doc = serde_json::to_vec(&registration(alloc, node, n, services))?;
        by_node.entry(node).or_default().push(doc.into());
    }
    let mut client = ServicesClient::connect(format!("http://{rpc}")).await?;
    for (node, docs) in by_node {
        let secret = secrets
            .get(node)
            .context("an allocation on an unknown node")?;
        client
            .upsert_services(v1::UpsertServicesRequest {
                node: Some(v1::NodeAuth {
                    node_id: node.to_owned(),
                    secret_id: secret.clone(),
                }),
                registrations_json: docs,
            })
            .await
            .context("registering services")?;
    }
    Ok(())
}

/// Parks `--waiters` blocking queries on `svc-1`, deregisters one of its instances and takes
/// each query's wake-up latency.
async fn wakeups(
    http: SocketAddr,
    rpc: SocketAddr,
    secrets: &HashMap<String, String>,
    allocs: &[(String, String)],
    args: &ServicesArgs,
) -> anyhow::Result<Row> {
    let name_index = 1 % args.services;
    let (n, (alloc, node)) = allocs
        .iter()
        .enumerate()
        .find(|(n, _)| n % args.services == name_index)
        .context("no instance of the watched service")?;
    let path = format!("/v1/service/svc-{name_index}");
    let index = Conn::connect(http)
        .await?
        .get(&path)
        .await?
        .ok()?
        .index
        .context("no X-Nomad-Index")?;
    let blocking = format!("{path}?index={index}&wait=5m");
    let mut tasks = Vec::with_capacity(args.waiters);
    for _ in 0..args.waiters {
        let mut conn = Conn::connect(http).await?;
        let blocking = blocking.clone();
        tasks.push(tokio::spawn(async move {
            let reply = conn.get(&blocking).await?.ok()?;
            anyhow::Ok((Instant::now(), reply.index.unwrap_or(0)))
        }));
    }
    // Parked: every request is out; give the server a moment to subscribe them all.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let early = tasks.iter().filter(|t| t.is_finished()).count();
    let id = registration(alloc, node, n, args.services)["ID"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut client = ServicesClient::connect(format!("http://{rpc}")).await?;
    let written = client
        .deregister_services(v1::DeregisterServicesRequest {
            node: Some(v1::NodeAuth {
                node_id: node.clone(),
                secret_id: secrets.get(node).cloned().unwrap_or_default(),
            }),
            namespace: "default".to_owned(),
            service_ids: vec![id],
        })
        .await?
        .into_inner()
        .index;
    let at = Instant::now();
    let mut delays = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(60), task).await {
            Ok(Ok(Ok((done, woke_at)))) if woke_at >= written => {
                delays.push(done.saturating_duration_since(at));
            }
            _ => failed += 1,
        }
    }
    Ok(Row::new(
        "services",
        format!(
            "{} blocking GET /v1/service/:name, one instance removed",
            args.waiters
        ),
        Summary::of(&mut delays),
    )
    .note(format!(
        "{} woken, {failed} failed or stale, {early} answered early",
        delays.len()
    )))
}
