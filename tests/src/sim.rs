//! A node simulator: many fake client nodes in one process, speaking the server's gRPC as the
//! client agent does, without running any task.
//!
//! Each simulated node
//! - registers (`Nodes.Register` with a Node document shaped like a fingerprinted one, then
//!   `UpdateStatus` `ready`, as `caravan-agent/src/client.rs` does) and heartbeats within the
//!   TTL the server hands out, registering again when the server no longer knows it;
//! - watches its allocations (`Allocs.WatchNodeAllocs`, a blocking long-poll) and fetches the
//!   new or changed ones (`Allocs.GetAllocs`);
//! - reports their status when told to ([`Simulator::set_status`]: `running`, `complete`,
//!   `failed`, with task states and events as a real client writes them), or by itself in
//!   auto-run mode ([`SimConfig::auto_run`]: every new allocation is reported `running`, one
//!   `UpdateAllocs` per node and round);
//! - obeys the server: an allocation the server stops (`DesiredStatus` `stop`/`evict`) that
//!   the node holds as pending or running is reported `complete`, as an agent that killed it.
//!
//! Scale: thousands of nodes share one or a few tonic channels (HTTP/2 streams multiplexed on
//! each connection; the server allows 65,536 streams per connection), the registration burst
//! runs with bounded concurrency, and each node costs two small tasks (heartbeat, watch).
//!
//! Dropping the [`Simulator`] stops every node's tasks (the server then sees them miss their
//! heartbeats).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use caravan_proto::v1::allocs_client::AllocsClient;
use caravan_proto::v1::nodes_client::NodesClient;
use caravan_proto::v1::{
    GetAllocsRequest, NodeAuth, QueryOptions as RpcQueryOptions, RegisterNodeRequest,
    UpdateAllocsRequest, UpdateNodeStatusRequest, WatchNodeAllocsRequest,
};
use caravan_proto::{ErrorCode, error_code_of};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::{now_nanos, uuid_with_prefix};

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What the simulated nodes look like and how the simulator behaves.
///
/// `SimConfig { nodes: 50, auto_run: true, ..SimConfig::default() }`
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many nodes to register.
    pub nodes: usize,
    /// Node names are `<name_prefix>-<n>`; the default is `sim-<4 random hex digits>`, so two
    /// simulators on one cluster do not collide.
    pub name_prefix: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    /// Per node: `NodeResources.Cpu.CpuShares` (MHz), memory and disk.
    pub cpu_mhz: i64,
    pub cpu_cores: u16,
    pub memory_mb: i64,
    pub disk_mb: i64,
    /// Per node: what the node keeps for itself (`ReservedResources`).
    pub reserved_cpu_mhz: i64,
    pub reserved_memory_mb: i64,
    pub reserved_disk_mb: i64,
    /// Extra attributes, added to (and overriding) the fingerprinted-looking ones.
    pub attributes: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// Drivers reported detected and healthy (each also sets the `driver.<name>` = `1`
    /// attribute).
    pub drivers: Vec<String>,
    /// The node's `HTTPAddr` (nothing serves it: simulated nodes have no client API).
    pub http_addr: String,
    /// Report every new allocation `running` as soon as it is seen.
    pub auto_run: bool,
    /// gRPC connections to the server; nodes are spread over them round-robin. 0: one per
    /// 2,000 nodes (at least one, at most four).
    pub channels: usize,
    /// Registrations in flight at once during start-up.
    pub register_concurrency: usize,
    /// How long one `WatchNodeAllocs` long-poll may block.
    pub watch_wait: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 1,
            name_prefix: format!("sim-{:04x}", random_u64() & 0xffff),
            datacenter: "dc1".to_owned(),
            node_class: String::new(),
            node_pool: "default".to_owned(),
            cpu_mhz: 4000,
            cpu_cores: 4,
            memory_mb: 8192,
            disk_mb: 100_000,
            reserved_cpu_mhz: 0,
            reserved_memory_mb: 0,
            reserved_disk_mb: 0,
            attributes: BTreeMap::new(),
            meta: BTreeMap::new(),
            drivers: vec!["raw_exec".to_owned(), "mock_driver".to_owned()],
            http_addr: "127.0.0.1:1".to_owned(),
            auto_run: false,
            channels: 0,
            register_concurrency: 256,
            watch_wait: Duration::from_secs(300),
        }
    }
}

impl SimConfig {
    /// The default configuration with `nodes` nodes.
    pub fn new(nodes: usize) -> SimConfig {
        SimConfig {
            nodes,
            ..SimConfig::default()
        }
    }

    fn channel_count(&self) -> usize {
        match self.channels {
            0 => self.nodes.div_ceil(2000).clamp(1, 4),
            n => n,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Allocations as a node sees them
// ---------------------------------------------------------------------------------------------

/// A client status the simulator reports for an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocStatus {
    Running,
    Complete,
    Failed,
}

impl AllocStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AllocStatus::Running => "running",
            AllocStatus::Complete => "complete",
            AllocStatus::Failed => "failed",
        }
    }

    fn description(self) -> &'static str {
        match self {
            AllocStatus::Running => "Tasks are running",
            AllocStatus::Complete => "All tasks have completed",
            AllocStatus::Failed => "Failed tasks",
        }
    }
}

impl FromStr for AllocStatus {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<AllocStatus> {
        match s {
            "running" => Ok(AllocStatus::Running),
            "complete" => Ok(AllocStatus::Complete),
            "failed" => Ok(AllocStatus::Failed),
            _ => bail!("unknown allocation status {s:?}: want running, complete or failed"),
        }
    }
}

/// An allocation placed on a simulated node, as the node last saw or reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAlloc {
    pub id: String,
    pub node_id: String,
    pub namespace: String,
    pub job_id: String,
    pub task_group: String,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    /// The group's task names (from the attached job).
    pub tasks: Vec<String>,
    pub deployment_id: String,
    /// What the server wants: `run`, `stop` or `evict`.
    pub desired_status: String,
    /// The client status: the server's when fetched, else the last one this node reported.
    pub client_status: String,
    /// The server's last change of the allocation (what `WatchNodeAllocs` reports).
    pub alloc_modify_index: u64,
    /// The allocation's `ModifyIndex` as of the last fetch or report.
    pub modify_index: u64,
    /// Unix nanoseconds: when this node first saw it, started and finished its tasks.
    pub received_at: i128,
    pub started_at: Option<i128>,
    pub finished_at: Option<i128>,
}

impl SimAlloc {
    /// From an allocation document as `GetAllocs` returns it (job attached).
    fn from_doc(doc: &Value, received_at: i128) -> anyhow::Result<SimAlloc> {
        let s = |key: &str| {
            doc.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let u = |key: &str| doc.get(key).and_then(Value::as_u64).unwrap_or(0);
        let id = s("ID");
        if id.is_empty() {
            bail!("allocation document without ID");
        }
        let task_group = s("TaskGroup");
        let mut tasks: Vec<String> = doc
            .pointer("/Job/TaskGroups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|g| g.get("Name").and_then(Value::as_str) == Some(task_group.as_str()))
            .flat_map(|g| {
                g.get("Tasks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|t| t.get("Name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        if tasks.is_empty() {
            // No job attached: the task names are the keys of the allocated resources.
            tasks = doc
                .pointer("/AllocatedResources/Tasks")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
        }
        Ok(SimAlloc {
            id,
            node_id: s("NodeID"),
            namespace: s("Namespace"),
            job_id: s("JobID"),
            task_group,
            name: s("Name"),
            tasks,
            deployment_id: s("DeploymentID"),
            desired_status: s("DesiredStatus"),
            client_status: s("ClientStatus"),
            alloc_modify_index: u("AllocModifyIndex"),
            modify_index: u("ModifyIndex"),
            received_at,
            started_at: None,
            finished_at: None,
        })
    }

    /// Terminal on the client: it will not run again.
    pub fn client_terminal(&self) -> bool {
        matches!(
            self.client_status.as_str(),
            "complete" | "failed" | "lost" | "unknown"
        )
    }

    fn desired_stop(&self) -> bool {
        matches!(self.desired_status.as_str(), "stop" | "evict")
    }

    /// The update a client sends for this allocation reaching `status` at `now`: client
    /// status and description, task states with their events, deployment health. `killed`:
    /// the tasks were stopped by the server's request rather than exiting by themselves.
    fn update(&mut self, status: AllocStatus, now: i128, killed: bool) -> Value {
        let started = *self.started_at.get_or_insert(now);
        if status != AllocStatus::Running {
            self.finished_at.get_or_insert(now);
        }
        let mut states = Map::new();
        for task in &self.tasks {
            let mut events = vec![
                task_event("Received", self.received_at, json!({})),
                task_event(
                    "Task Setup",
                    self.received_at,
                    json!({"Message": "Building Task Directory"}),
                ),
                task_event("Started", started, json!({})),
            ];
            let finished = self.finished_at.unwrap_or(now);
            match (status, killed) {
                (AllocStatus::Running, _) => {}
                (_, true) => {
                    events.push(task_event(
                        "Killing",
                        finished,
                        json!({"KillTimeout": 5_000_000_000_i64}),
                    ));
                    events.push(task_event("Killed", finished, json!({})));
                }
                (AllocStatus::Complete, false) => events.push(task_event(
                    "Terminated",
                    finished,
                    json!({"ExitCode": 0, "Details": {"exit_code": "0", "signal": "0", "oom_killed": "false"}}),
                )),
                (AllocStatus::Failed, false) => {
                    events.push(task_event(
                        "Terminated",
                        finished,
                        json!({"ExitCode": 1, "Details": {"exit_code": "1", "signal": "0", "oom_killed": "false"}}),
                    ));
                    events.push(task_event(
                        "Not Restarting",
                        finished,
                        json!({"FailsTask": true, "RestartReason": "Policy allows no restarts", "Details": {"fails_task": "true", "restart_reason": "Policy allows no restarts"}}),
                    ));
                }
            }
            let running = status == AllocStatus::Running;
            states.insert(
                task.clone(),
                json!({
                    "State": if running { "running" } else { "dead" },
                    "Failed": status == AllocStatus::Failed,
                    "Restarts": 0,
                    "LastRestart": null,
                    "StartedAt": rfc3339(started),
                    "FinishedAt": if running { Value::Null } else { Value::String(rfc3339(finished)) },
                    "Events": events,
                }),
            );
        }
        let mut update = json!({
            "ID": self.id,
            "ClientStatus": status.as_str(),
            "ClientDescription": status.description(),
            "TaskStates": states,
        });
        if !self.deployment_id.is_empty() && !killed {
            update["DeploymentStatus"] = json!({
                "Healthy": status != AllocStatus::Failed,
                "Timestamp": rfc3339(now),
                "Canary": false,
                "ModifyIndex": 0,
            });
        }
        self.client_status = status.as_str().to_owned();
        update
    }
}

fn task_event(kind: &str, time: i128, extra: Value) -> Value {
    let mut event = json!({ "Type": kind, "Time": time as i64 });
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    event
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/// Counters of what the simulator did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Registrations, the start-up ones and re-registrations alike.
    pub registrations: u64,
    /// Registrations after the server forgot a node.
    pub reregistrations: u64,
    pub heartbeats: u64,
    pub heartbeat_errors: u64,
    /// `WatchNodeAllocs` answers.
    pub watch_answers: u64,
    pub watch_errors: u64,
    /// Allocation documents fetched with `GetAllocs`.
    pub allocs_fetched: u64,
    /// Allocation updates sent with `UpdateAllocs`, and the calls carrying them.
    pub allocs_reported: u64,
    pub update_calls: u64,
    pub update_errors: u64,
}

#[derive(Default)]
struct Counters {
    registrations: AtomicU64,
    reregistrations: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_errors: AtomicU64,
    watch_answers: AtomicU64,
    watch_errors: AtomicU64,
    allocs_fetched: AtomicU64,
    allocs_reported: AtomicU64,
    update_calls: AtomicU64,
    update_errors: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

struct SimNode {
    id: String,
    secret_id: String,
    name: String,
    /// The registration document (JSON bytes), kept for re-registration.
    doc: Vec<u8>,
    /// Which of the simulator's channels it talks through.
    channel: usize,
    heartbeating: AtomicBool,
    /// Wakes the heartbeat loop (stop, resume).
    wake: Notify,
    allocs: Mutex<BTreeMap<String, SimAlloc>>,
    /// Serializes this node's `UpdateAllocs` calls with the updates of its local state.
    reporting: tokio::sync::Mutex<()>,
}

impl SimNode {
    fn auth(&self) -> NodeAuth {
        NodeAuth {
            node_id: self.id.clone(),
            secret_id: self.secret_id.clone(),
        }
    }

    fn allocs(&self) -> MutexGuard<'_, BTreeMap<String, SimAlloc>> {
        lock(&self.allocs)
    }
}

struct Clients {
    nodes: NodesClient<Channel>,
    allocs: AllocsClient<Channel>,
}

struct Shared {
    config: SimConfig,
    clients: Vec<Clients>,
    nodes: Vec<Arc<SimNode>>,
    by_id: HashMap<String, usize>,
    /// Allocation ID → index of its node in `nodes`.
    alloc_nodes: Mutex<HashMap<String, usize>>,
    counters: Counters,
}

impl Shared {
    fn nodes_client(&self, node: &SimNode) -> NodesClient<Channel> {
        self.clients[node.channel].nodes.clone()
    }

    fn allocs_client(&self, node: &SimNode) -> AllocsClient<Channel> {
        self.clients[node.channel].allocs.clone()
    }

    fn node(&self, node_id: &str) -> anyhow::Result<&Arc<SimNode>> {
        self.by_id
            .get(node_id)
            .map(|&i| &self.nodes[i])
            .ok_or_else(|| anyhow!("node {node_id} is not simulated here"))
    }
}

/// Many simulated client nodes registered with one server. See the module docs.
pub struct Simulator {
    shared: Arc<Shared>,
    /// The nodes' heartbeat and watch loops; dropping it aborts them.
    tasks: JoinSet<()>,
}

impl Simulator {
    /// Connects to the server's gRPC at `rpc_addr` (`127.0.0.1:<port>`), registers every node
    /// and marks it ready, then starts their heartbeats and allocation watches. Returns once
    /// all nodes are ready.
    pub async fn start(rpc_addr: &str, config: SimConfig) -> anyhow::Result<Simulator> {
        if config.nodes == 0 {
            bail!("a simulator needs at least one node");
        }
        let mut clients = Vec::new();
        for _ in 0..config.channel_count() {
            let channel = Endpoint::from_shared(format!("http://{rpc_addr}"))
                .with_context(|| format!("invalid server address {rpc_addr:?}"))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .initial_stream_window_size(Some(1 << 20))
                .initial_connection_window_size(Some(16 << 20))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
                .connect()
                .await
                .with_context(|| format!("connecting to the server's gRPC at {rpc_addr}"))?;
            clients.push(Clients {
                nodes: NodesClient::new(channel.clone()),
                allocs: AllocsClient::new(channel).max_decoding_message_size(256 << 20),
            });
        }
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut by_id = HashMap::with_capacity(config.nodes);
        for i in 0..config.nodes {
            let id = uuid_with_prefix("");
            let secret_id = uuid_with_prefix("");
            let name = format!("{}-{i}", config.name_prefix);
            let doc = serde_json::to_vec(&node_doc(&config, i, &id, &secret_id, &name))?;
            by_id.insert(id.clone(), i);
            nodes.push(Arc::new(SimNode {
                id,
                secret_id,
                name,
                doc,
                channel: i % clients.len(),
                heartbeating: AtomicBool::new(true),
                wake: Notify::new(),
                allocs: Mutex::new(BTreeMap::new()),
                reporting: tokio::sync::Mutex::new(()),
            }));
        }
        let shared = Arc::new(Shared {
            config,
            clients,
            nodes,
            by_id,
            alloc_nodes: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });

        // The registration burst, bounded.
        let concurrency = shared.config.register_concurrency.max(1);
        let ttls: Vec<anyhow::Result<Duration>> =
            futures::stream::iter(shared.nodes.iter().cloned())
                .map(|node| {
                    let shared = shared.clone();
                    async move { register_with_retries(&shared, &node).await }
                })
                .buffered(concurrency)
                .collect()
                .await;
        let mut tasks = JoinSet::new();
        for (i, ttl) in ttls.into_iter().enumerate() {
            let ttl = ttl.with_context(|| format!("registering node {}", shared.nodes[i].name))?;
            tasks.spawn(heartbeat_loop(shared.clone(), i, ttl));
            tasks.spawn(watch_loop(shared.clone(), i));
        }
        Ok(Simulator { shared, tasks })
    }

    /// The IDs of the simulated nodes, in registration order.
    pub fn node_ids(&self) -> Vec<String> {
        self.shared.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// The simulated nodes with their secrets (e.g. for [`crate::Grpc::update_status`]).
    pub fn fake_nodes(&self) -> Vec<crate::FakeNode> {
        self.shared
            .nodes
            .iter()
            .map(|n| crate::FakeNode {
                id: n.id.clone(),
                secret_id: n.secret_id.clone(),
                name: n.name.clone(),
            })
            .collect()
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Stops the node's heartbeats: the server marks it `down` once its TTL and grace pass.
    /// Its allocation watch goes on.
    pub fn stop_heartbeats(&self, node_id: &str) -> anyhow::Result<()> {
        let node = self.shared.node(node_id)?;
        node.heartbeating.store(false, Ordering::Release);
        node.wake.notify_one();
        Ok(())
    }

    /// Heartbeats again, the first one at once (which brings a `down` node back to `ready`).
    pub fn resume_heartbeats(&self, node_id: &str) -> anyhow::Result<()> {
        let node = self.shared.node(node_id)?;
        node.heartbeating.store(true, Ordering::Release);
        node.wake.notify_one();
        Ok(())
    }

    /// The allocations the node holds, by ID.
    pub fn allocs_of(&self, node_id: &str) -> anyhow::Result<Vec<SimAlloc>> {
        Ok(self
            .shared
            .node(node_id)?
            .allocs()
            .values()
            .cloned()
            .collect())
    }

    /// Every allocation on every simulated node.
    pub fn allocs(&self) -> Vec<SimAlloc> {
        self.shared
            .nodes
            .iter()
            .flat_map(|n| n.allocs().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// How many allocations the simulated nodes hold (cheaper than `allocs().len()`).
    pub fn alloc_count(&self) -> usize {
        lock(&self.shared.alloc_nodes).len()
    }

    /// One allocation, if a simulated node holds it.
    pub fn alloc(&self, alloc_id: &str) -> Option<SimAlloc> {
        let i = *lock(&self.shared.alloc_nodes).get(alloc_id)?;
        self.shared.nodes[i].allocs().get(alloc_id).cloned()
    }

    /// Reports `status` for the allocation now (one `UpdateAllocs`); returns once the server
    /// committed it.
    pub async fn set_status(&self, alloc_id: &str, status: AllocStatus) -> anyhow::Result<()> {
        self.set_statuses(&[alloc_id], status).await
    }

    /// Reports `status` for each allocation, one `UpdateAllocs` per node.
    pub async fn set_statuses(
        &self,
        alloc_ids: &[&str],
        status: AllocStatus,
    ) -> anyhow::Result<()> {
        let mut by_node: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        {
            let index = lock(&self.shared.alloc_nodes);
            for id in alloc_ids {
                let node = index
                    .get(*id)
                    .ok_or_else(|| anyhow!("no simulated node holds allocation {id}"))?;
                by_node.entry(*node).or_default().push((*id).to_owned());
            }
        }
        let calls = by_node.into_iter().map(|(i, ids)| {
            let shared = self.shared.clone();
            async move {
                let node = shared.nodes[i].clone();
                report(&shared, &node, &ids, status, false).await
            }
        });
        for result in futures::future::join_all(calls).await {
            result?;
        }
        Ok(())
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            registrations: get(&c.registrations),
            reregistrations: get(&c.reregistrations),
            heartbeats: get(&c.heartbeats),
            heartbeat_errors: get(&c.heartbeat_errors),
            watch_answers: get(&c.watch_answers),
            watch_errors: get(&c.watch_errors),
            allocs_fetched: get(&c.allocs_fetched),
            allocs_reported: get(&c.allocs_reported),
            update_calls: get(&c.update_calls),
            update_errors: get(&c.update_errors),
        }
    }

    /// Stops every node's loops (as dropping the simulator does) and waits until they ended.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Registration and heartbeats
// ---------------------------------------------------------------------------------------------

/// Retry delays after failures grow to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(6))
        .min(MAX_BACKOFF)
}

/// A heartbeat comfortably inside the TTL: between a third and a half of it (as the agent).
fn heartbeat_interval(ttl: Duration) -> Duration {
    let ttl = if ttl.is_zero() {
        Duration::from_secs(10)
    } else {
        ttl
    };
    let low = ttl / 3;
    let spread = (ttl / 2).saturating_sub(low).as_millis().max(1) as u64;
    low + Duration::from_millis(random_u64() % spread)
}

/// `Register` then `UpdateStatus` `ready`, as the agent; returns the heartbeat TTL.
async fn register(shared: &Shared, node: &SimNode) -> Result<Duration, tonic::Status> {
    let mut client = shared.nodes_client(node);
    client
        .register(RegisterNodeRequest {
            node_json: node.doc.clone().into(),
            write: None,
        })
        .await?;
    bump(&shared.counters.registrations, 1);
    heartbeat(shared, node).await
}

async fn heartbeat(shared: &Shared, node: &SimNode) -> Result<Duration, tonic::Status> {
    let resp = shared
        .nodes_client(node)
        .update_status(UpdateNodeStatusRequest {
            node_id: node.id.clone(),
            secret_id: node.secret_id.clone(),
            status: "ready".to_owned(),
            write: None,
        })
        .await?
        .into_inner();
    bump(&shared.counters.heartbeats, 1);
    Ok(Duration::from_millis(resp.heartbeat_ttl_ms))
}

/// Errors a retry cannot fix.
fn permanent(status: &tonic::Status) -> bool {
    matches!(
        error_code_of(status),
        ErrorCode::BadRequest | ErrorCode::PermissionDenied
    )
}

async fn register_with_retries(shared: &Shared, node: &SimNode) -> anyhow::Result<Duration> {
    let mut attempt = 0;
    loop {
        match register(shared, node).await {
            Ok(ttl) => return Ok(ttl),
            Err(status) if permanent(&status) || attempt >= 8 => {
                bail!("Register: {:?} {}", status.code(), status.message())
            }
            Err(_) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Heartbeats the node within its TTL while heartbeats are on; registers it again when the
/// server answers that it does not know it.
async fn heartbeat_loop(shared: Arc<Shared>, i: usize, mut ttl: Duration) {
    let node = shared.nodes[i].clone();
    let mut failures = 0;
    loop {
        let wait = if failures == 0 {
            heartbeat_interval(ttl)
        } else {
            backoff(failures).min(heartbeat_interval(ttl))
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = node.wake.notified() => {}
        }
        // Stopped: wait for a resume (`notify_one` keeps a permit, so none is missed).
        while !node.heartbeating.load(Ordering::Acquire) {
            node.wake.notified().await;
        }
        let result = match heartbeat(&shared, &node).await {
            Err(status) if error_code_of(&status) == ErrorCode::NotFound => {
                bump(&shared.counters.reregistrations, 1);
                register(&shared, &node).await
            }
            other => other,
        };
        match result {
            Ok(new_ttl) => {
                failures = 0;
                ttl = new_ttl;
            }
            Err(_) => {
                failures += 1;
                bump(&shared.counters.heartbeat_errors, 1);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Allocations: watch, fetch, report
// ---------------------------------------------------------------------------------------------

/// How many allocations one `GetAllocs` asks for (each comes with its job).
const FETCH_CHUNK: usize = 64;

/// Long-polls the node's allocations; fetches the new and changed ones; reports what the node
/// does with them (auto-run, stops).
async fn watch_loop(shared: Arc<Shared>, i: usize) {
    let node = shared.nodes[i].clone();
    let mut index = 0;
    let mut failures = 0;
    loop {
        if failures > 0 {
            tokio::time::sleep(backoff(failures)).await;
        }
        match watch_once(&shared, &node, i, index).await {
            Ok(next) => {
                failures = 0;
                index = next;
            }
            Err(_) => {
                failures += 1;
                bump(&shared.counters.watch_errors, 1);
            }
        }
    }
}

/// One round of [`watch_loop`]: returns the index to block on next.
async fn watch_once(
    shared: &Shared,
    node: &SimNode,
    i: usize,
    index: u64,
) -> Result<u64, tonic::Status> {
    let mut client = shared.allocs_client(node);
    // Spread the long-polls' deadlines so they do not all return at once.
    let wait = shared.config.watch_wait;
    let jitter = wait.as_millis() as u64 / 16;
    let max_wait_ms = wait.as_millis() as u64 - random_u64() % jitter.max(1);
    let resp = client
        .watch_node_allocs(WatchNodeAllocsRequest {
            node: Some(node.auth()),
            query: Some(RpcQueryOptions {
                min_index: index,
                max_wait_ms,
                ..RpcQueryOptions::default()
            }),
        })
        .await?
        .into_inner();
    bump(&shared.counters.watch_answers, 1);
    let next = resp.meta.map_or(index, |m| m.index);
    // What changed since the node last looked.
    let (wanted, gone) = {
        let held = node.allocs();
        let listed: HashMap<&str, u64> = resp
            .allocs
            .iter()
            .map(|a| (a.alloc_id.as_str(), a.alloc_modify_index))
            .collect();
        let wanted: Vec<String> = resp
            .allocs
            .iter()
            .filter(|a| {
                held.get(&a.alloc_id)
                    .is_none_or(|h| a.alloc_modify_index > h.alloc_modify_index)
            })
            .map(|a| a.alloc_id.clone())
            .collect();
        let gone: Vec<String> = held
            .keys()
            .filter(|id| !listed.contains_key(id.as_str()))
            .cloned()
            .collect();
        (wanted, gone)
    };
    if !gone.is_empty() {
        // Garbage-collected by the server.
        let mut held = node.allocs();
        let mut index = lock(&shared.alloc_nodes);
        for id in &gone {
            held.remove(id);
            index.remove(id);
        }
    }
    if wanted.is_empty() {
        return Ok(next);
    }
    let mut docs = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(FETCH_CHUNK) {
        let resp = client
            .get_allocs(GetAllocsRequest {
                node: Some(node.auth()),
                alloc_ids: chunk.to_vec(),
            })
            .await?
            .into_inner();
        docs.extend(resp.allocs_json);
    }
    bump(&shared.counters.allocs_fetched, docs.len() as u64);
    let now = now_nanos();
    let (to_run, to_stop) = {
        let _guard = node.reporting.lock().await;
        let mut held = node.allocs();
        for bytes in &docs {
            let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
                continue;
            };
            let Ok(mut fresh) = SimAlloc::from_doc(&doc, now) else {
                continue;
            };
            match held.get_mut(&fresh.id) {
                Some(known) => {
                    known.desired_status = fresh.desired_status;
                    known.alloc_modify_index = fresh.alloc_modify_index;
                    known.deployment_id = fresh.deployment_id;
                    // The server's client status, unless this node reported one since.
                    if fresh.modify_index >= known.modify_index {
                        known.client_status = fresh.client_status;
                        known.modify_index = fresh.modify_index;
                    }
                }
                None => {
                    if fresh.node_id.is_empty() {
                        fresh.node_id = node.id.clone();
                    }
                    lock(&shared.alloc_nodes).insert(fresh.id.clone(), i);
                    held.insert(fresh.id.clone(), fresh);
                }
            }
        }
        let auto_run = shared.config.auto_run;
        let mut to_run = Vec::new();
        let mut to_stop = Vec::new();
        for a in held.values() {
            if a.client_terminal() {
                continue;
            }
            if a.desired_stop() {
                to_stop.push(a.id.clone());
            } else if auto_run && a.client_status == "pending" {
                to_run.push(a.id.clone());
            }
        }
        (to_run, to_stop)
    };
    if !to_run.is_empty() {
        report(shared, node, &to_run, AllocStatus::Running, false).await?;
    }
    if !to_stop.is_empty() {
        report(shared, node, &to_stop, AllocStatus::Complete, true).await?;
    }
    Ok(next)
}

/// Sends one `UpdateAllocs` for `ids` of `node` reaching `status`; updates the node's view.
async fn report(
    shared: &Shared,
    node: &SimNode,
    ids: &[String],
    status: AllocStatus,
    killed: bool,
) -> Result<(), tonic::Status> {
    let _guard = node.reporting.lock().await;
    let now = now_nanos();
    let mut updated: Vec<SimAlloc> = Vec::with_capacity(ids.len());
    let mut allocs_json = Vec::with_capacity(ids.len());
    {
        let held = node.allocs();
        for id in ids {
            let Some(alloc) = held.get(id) else {
                continue;
            };
            let mut alloc = alloc.clone();
            let update = alloc.update(status, now, killed);
            let bytes = serde_json::to_vec(&update)
                .map_err(|e| tonic::Status::internal(format!("encoding an update: {e}")))?;
            allocs_json.push(bytes.into());
            updated.push(alloc);
        }
    }
    if updated.is_empty() {
        return Ok(());
    }
    let result = shared
        .allocs_client(node)
        .update_allocs(UpdateAllocsRequest {
            node: Some(node.auth()),
            allocs_json,
        })
        .await;
    bump(&shared.counters.update_calls, 1);
    let index = match result {
        Ok(resp) => resp.into_inner().index,
        Err(status) => {
            bump(&shared.counters.update_errors, 1);
            return Err(status);
        }
    };
    bump(&shared.counters.allocs_reported, updated.len() as u64);
    let mut held = node.allocs();
    for mut alloc in updated {
        alloc.modify_index = alloc.modify_index.max(index);
        if let Some(slot) = held.get_mut(&alloc.id) {
            alloc.desired_status = std::mem::take(&mut slot.desired_status);
            alloc.alloc_modify_index = slot.alloc_modify_index;
            *slot = alloc;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The node document
// ---------------------------------------------------------------------------------------------

/// The Node document of simulated node number `n`: shaped like what the agent fingerprints
/// (attributes, drivers, resources, a network with its own IP), status `initializing` until
/// the first heartbeat marks it ready.
pub fn node_doc(cfg: &SimConfig, n: usize, id: &str, secret_id: &str, name: &str) -> Value {
    // 10.0.0.1, 10.0.0.2, ... one address per node.
    let k = n as u32 + 1;
    let ip = format!("10.{}.{}.{}", (k >> 16) & 0xff, (k >> 8) & 0xff, k & 0xff);
    let cores = cfg.cpu_cores.max(1);
    let mut attributes: BTreeMap<String, String> = [
        ("arch", "amd64".to_owned()),
        ("cpu.arch", "amd64".to_owned()),
        (
            "cpu.frequency",
            (cfg.cpu_mhz / i64::from(cores)).to_string(),
        ),
        ("cpu.modelname", "Caravan Simulated CPU".to_owned()),
        ("cpu.numcores", cores.to_string()),
        ("cpu.reservablecores", cores.to_string()),
        ("cpu.totalcompute", cfg.cpu_mhz.to_string()),
        ("cpu.usablecompute", cfg.cpu_mhz.to_string()),
        ("kernel.arch", "x86_64".to_owned()),
        ("kernel.name", "linux".to_owned()),
        ("kernel.version", "6.1.0-sim".to_owned()),
        (
            "memory.totalbytes",
            (cfg.memory_mb.max(0) as u64 * 1024 * 1024).to_string(),
        ),
        ("nomad.advertise.address", cfg.http_addr.clone()),
        ("nomad.revision", "caravan-sim".to_owned()),
        (
            "nomad.version",
            caravan_structs::NOMAD_API_VERSION.to_owned(),
        ),
        ("nomad.service_discovery", "true".to_owned()),
        ("caravan.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("os.name", "debian".to_owned()),
        ("os.version", "12".to_owned()),
        ("unique.hostname", name.to_owned()),
        ("unique.network.ip-address", ip.clone()),
        (
            "unique.storage.bytesfree",
            (cfg.disk_mb.max(0) as u64 * 1024 * 1024).to_string(),
        ),
        (
            "unique.storage.bytestotal",
            (cfg.disk_mb.max(0) as u64 * 1024 * 1024).to_string(),
        ),
        ("unique.storage.volume", "/dev/vda1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let now = rfc3339(now_nanos());
    let mut drivers = Map::new();
    for d in &cfg.drivers {
        attributes.insert(format!("driver.{d}"), "1".to_owned());
        drivers.insert(
            d.clone(),
            json!({
                "Attributes": { format!("driver.{d}"): "true" },
                "Detected": true,
                "Healthy": true,
                "HealthDescription": "Healthy",
                "UpdateTime": now,
            }),
        );
    }
    attributes.extend(cfg.attributes.clone());
    let network = json!({
        "Device": "eth0",
        "CIDR": format!("{ip}/32"),
        "IP": ip,
        "MBits": 1000,
        "Mode": "host",
    });
    json!({
        "ID": id,
        "SecretID": secret_id,
        "Name": name,
        "Datacenter": cfg.datacenter,
        "NodeClass": cfg.node_class,
        "NodePool": cfg.node_pool,
        "Status": "initializing",
        "SchedulingEligibility": "eligible",
        "HTTPAddr": cfg.http_addr,
        "TLSEnabled": false,
        "Attributes": attributes,
        "Meta": cfg.meta,
        "Drivers": drivers,
        "NodeResources": {
            "Cpu": {
                "CpuShares": cfg.cpu_mhz,
                "TotalCpuCores": cores,
                "ReservableCpuCores": (0..cores).collect::<Vec<u16>>(),
            },
            "Memory": { "MemoryMB": cfg.memory_mb },
            "Disk": { "DiskMB": cfg.disk_mb },
            "Networks": [network.clone()],
            "MinDynamicPort": 20000,
            "MaxDynamicPort": 32000,
        },
        "ReservedResources": {
            "Cpu": { "CpuShares": cfg.reserved_cpu_mhz },
            "Memory": { "MemoryMB": cfg.reserved_memory_mb },
            "Disk": { "DiskMB": cfg.reserved_disk_mb },
            "Networks": { "ReservedHostPorts": "" },
        },
        "Resources": {
            "CPU": cfg.cpu_mhz,
            "MemoryMB": cfg.memory_mb,
            "DiskMB": cfg.disk_mb,
            "Networks": [network],
        },
        "Reserved": {
            "CPU": cfg.reserved_cpu_mhz,
            "MemoryMB": cfg.reserved_memory_mb,
            "DiskMB": cfg.reserved_disk_mb,
        },
        "Links": {},
        "HostVolumes": {},
        "HostNetworks": {},
        "CSIControllerPlugins": {},
        "CSINodePlugins": {},
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random number (good enough for jitter and names).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(now_nanos() as u128);
    h.finish()
}

/// Unix nanoseconds as an RFC 3339 UTC time with nanoseconds (`2024-05-01T12:00:00.000000001Z`).
pub fn rfc3339(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_rfc3339;

    #[test]
    fn rfc3339_round_trips() {
        for nanos in [
            0_i128,
            1_566_814_970_000_000_000,
            1_523_489_628_781_989_800,
            951_782_400_123_456_789, // 2000-02-29
            now_nanos(),
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(nanos)).unwrap(), nanos);
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn node_docs_look_fingerprinted() {
        let cfg = SimConfig {
            node_class: "large".into(),
            attributes: BTreeMap::from([("rack".into(), "r7".into())]),
            ..SimConfig::new(3)
        };
        let doc = node_doc(&cfg, 258, "id", "secret", "sim-x-258");
        assert_eq!(doc["NodeResources"]["Networks"][0]["IP"], "10.0.1.3");
        assert_eq!(doc["Attributes"]["unique.hostname"], "sim-x-258");
        assert_eq!(doc["Attributes"]["driver.raw_exec"], "1");
        assert_eq!(doc["Attributes"]["rack"], "r7");
        assert_eq!(doc["Drivers"]["mock_driver"]["Healthy"], true);
        assert_eq!(doc["NodeClass"], "large");
        assert_eq!(doc["NodeResources"]["Cpu"]["CpuShares"], 4000);
    }

    #[test]
    fn updates_carry_task_states_and_events() {
        let doc = json!({
            "ID": "a1", "NodeID": "n1", "JobID": "web", "TaskGroup": "g",
            "DesiredStatus": "run", "ClientStatus": "pending", "AllocModifyIndex": 7,
            "Job": {"TaskGroups": [
                {"Name": "other", "Tasks": [{"Name": "x"}]},
                {"Name": "g", "Tasks": [{"Name": "t1"}, {"Name": "t2"}]},
            ]},
        });
        let mut a = SimAlloc::from_doc(&doc, 100).unwrap();
        assert_eq!(a.tasks, ["t1", "t2"]);
        let up = a.update(AllocStatus::Running, 200, false);
        assert_eq!(up["ClientStatus"], "running");
        assert_eq!(up["TaskStates"]["t1"]["State"], "running");
        assert!(up["TaskStates"]["t1"]["FinishedAt"].is_null());
        let types = |up: &Value| -> Vec<String> {
            up["TaskStates"]["t2"]["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["Type"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(types(&up), ["Received", "Task Setup", "Started"]);
        let up = a.update(AllocStatus::Failed, 300, false);
        assert_eq!(up["TaskStates"]["t1"]["State"], "dead");
        assert_eq!(up["TaskStates"]["t1"]["Failed"], true);
        assert_eq!(
            parse_rfc3339(up["TaskStates"]["t1"]["StartedAt"].as_str().unwrap()).unwrap(),
            200
        );
        assert_eq!(
            types(&up),
            [
                "Received",
                "Task Setup",
                "Started",
                "Terminated",
                "Not Restarting"
            ]
        );
        assert!(a.client_terminal());
    }
}
