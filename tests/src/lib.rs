//! The harness of the black-box tests in `tests/`: real `caravan` processes on free 127.0.0.1
//! ports, spoken to over HTTP (through `caravan-api`) and, for fake nodes, over gRPC.
//!
//! - [`DevCluster`]: one `caravan agent -dev` process (server + gateway + client agent, SQLite
//!   in its data dir).
//! - [`PgCluster`]: `caravan server` on a fresh PostgreSQL database, `caravan gateway` in front
//!   of it, and one `caravan agent` client advertising the gateway.
//! - [`Cluster`]: what both offer, so one test body runs against both stores.
//! - [`Grpc`]: registers and heartbeats fake nodes through the server's Nodes service.
//! - [`go_shapes`]: whether Go's `api` structs can decode a response (the OpenAPI schemas,
//!   corrected to Go's structs).
//! - [`sim`]: a node simulator — thousands of fake nodes that heartbeat, watch their
//!   allocations and report their status, from one process.
//! - Small helpers: JSON shapes, RFC 3339 times, UUIDs, temp dirs.
//!
//! Every wait is a [`wait_for`] with a deadline, never a bare sleep.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
pub use caravan_api::{self as api, Client, QueryOptions, WriteOptions};
use caravan_proto::v1::nodes_client::NodesClient;
use caravan_proto::v1::{RegisterNodeRequest, UpdateNodeStatusRequest};
pub use caravan_test_utils::{Process, TestDatabase, free_port, wait_for, wait_for_http};
use serde_json::{Value, json};
use tonic::transport::Channel;

pub mod bench;
pub mod go_shapes;
pub mod private_pg;
pub mod sim;

/// How long a cluster may take to start (generous: the CI machine runs four clusters at once
/// on two cores).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The default deadline of a `wait_for` in the tests.
pub const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------------------------

/// Which store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// What every test cluster offers.
pub trait Cluster {
    /// The HTTP API's base URL, `http://127.0.0.1:<port>`.
    fn url(&self) -> &str;
    /// The gateway's address, `127.0.0.1:<port>`.
    fn http_addr(&self) -> &str;
    /// The server's gRPC address, `127.0.0.1:<port>`.
    fn rpc_addr(&self) -> &str;
    /// The ID of the node the cluster's client agent registered.
    fn node_id(&self) -> &str;
    /// A client for [`Cluster::url`].
    fn client(&self) -> &Client;
    fn store(&self) -> StoreKind;
    /// SIGKILLs the server process and starts it again on the same store; returns once the API
    /// answers through it again.
    fn restart_server(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// One `caravan agent -dev` process.
pub struct DevCluster {
    pub url: String,
    pub http_addr: String,
    pub rpc_addr: String,
    pub node_id: String,
    pub client: Client,
    pub process: Process,
    /// `-data-dir`: the SQLite store under `server/`, the node identity under `client/`.
    pub data_dir: TempDir,
    args: Vec<String>,
}

impl DevCluster {
    /// `caravan agent -dev` on free ports with a fresh data dir; returns once its node is ready.
    pub async fn start() -> anyhow::Result<DevCluster> {
        DevCluster::start_with(&[]).await
    }

    /// As [`DevCluster::start`] with extra flags (e.g. `-min-heartbeat-ttl 1s`).
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<DevCluster> {
        let data_dir = TempDir::new("caravan-dev")?;
        let http_port = free_port();
        let rpc_port = free_port();
        let mut args: Vec<String> = [
            "agent",
            "-dev",
            "-http-port",
            &http_port.to_string(),
            "-rpc-port",
            &rpc_port.to_string(),
            "-data-dir",
            &data_dir.path_str(),
            // Tests read allocation directories after the tasks end: no collection because
            // the machine's disk happens to be full.
            "-gc-disk-usage-threshold",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        DevCluster::start_args(args, http_port, rpc_port, data_dir).await
    }

    /// Starts `caravan <args>` exactly as given; `args` must make it listen on `http_port` and
    /// `rpc_port` and use `data_dir`.
    pub async fn start_args(
        args: Vec<String>,
        http_port: u16,
        rpc_port: u16,
        data_dir: TempDir,
    ) -> anyhow::Result<DevCluster> {
        let process = spawn(&args)?;
        let http_addr = format!("127.0.0.1:{http_port}");
        let url = format!("http://{http_addr}");
        let client = Client::new(url.clone())?;
        let node_id = wait_single_node_ready(&client, &[&process]).await?;
        Ok(DevCluster {
            url,
            http_addr,
            rpc_addr: format!("127.0.0.1:{rpc_port}"),
            node_id,
            client,
            process,
            data_dir,
            args,
        })
    }
}

impl Cluster for DevCluster {
    fn url(&self) -> &str {
        &self.url
    }
    fn http_addr(&self) -> &str {
        &self.http_addr
    }
    fn rpc_addr(&self) -> &str {
        &self.rpc_addr
    }
    fn node_id(&self) -> &str {
        &self.node_id
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn store(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    async fn restart_server(&mut self) -> anyhow::Result<()> {
        self.process.kill_hard();
        self.process = spawn(&self.args)?;
        wait_api(&self.client, &[&self.process]).await
    }
}

/// `caravan server` on a fresh PostgreSQL database, `caravan gateway`, one `caravan agent`.
pub struct PgCluster {
    pub url: String,
    pub http_addr: String,
    pub rpc_addr: String,
    pub node_id: String,
    pub client: Client,
    pub server: Process,
    pub gateway: Process,
    pub agent: Process,
    /// The agent's `-data-dir`.
    pub agent_dir: TempDir,
    agent_args: Vec<String>,
    /// Dropped last: the database outlives the processes using it.
    pub db: TestDatabase,
    server_args: Vec<String>,
}

impl PgCluster {
    /// The three processes on free ports and a new database; returns once the node is ready.
    pub async fn start() -> anyhow::Result<PgCluster> {
        PgCluster::start_with(&[], &[]).await
    }

    /// As [`PgCluster::start`] with extra flags for the server and for the agent.
    pub async fn start_with(
        server_extra: &[&str],
        agent_extra: &[&str],
    ) -> anyhow::Result<PgCluster> {
        PgCluster::start_full(server_extra, agent_extra, true).await
    }

    /// As [`PgCluster::start_with`]; `ephemeral_tasks` false leaves tasks running when the
    /// agent dies, so it can re-attach (the test must stop its jobs).
    pub async fn start_full(
        server_extra: &[&str],
        agent_extra: &[&str],
        ephemeral_tasks: bool,
    ) -> anyhow::Result<PgCluster> {
        let db = TestDatabase::create().await?;
        PgCluster::start_on(db, server_extra, agent_extra, ephemeral_tasks).await
    }

    /// As [`PgCluster::start_full`] on a database the caller made (e.g. on a private cluster).
    pub async fn start_on(
        db: TestDatabase,
        server_extra: &[&str],
        agent_extra: &[&str],
        ephemeral_tasks: bool,
    ) -> anyhow::Result<PgCluster> {
        let rpc_port = free_port();
        let http_port = free_port();
        let rpc_addr = format!("127.0.0.1:{rpc_port}");
        let http_addr = format!("127.0.0.1:{http_port}");
        let mut server_args: Vec<String> = [
            "server",
            "-database-url",
            &db.url,
            "-bind",
            "127.0.0.1",
            "-rpc-port",
            &rpc_port.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        server_args.extend(server_extra.iter().map(|s| s.to_string()));
        let server = spawn(&server_args)?;
        let gateway = spawn(&strings(&[
            "gateway",
            "-servers",
            &rpc_addr,
            "-bind",
            "127.0.0.1",
            "-http-port",
            &http_port.to_string(),
        ]))?;
        let url = format!("http://{http_addr}");
        let client = Client::new(url.clone())?;
        wait_api(&client, &[&server, &gateway]).await?;
        let agent_dir = TempDir::new("caravan-agent")?;
        let mut agent_args = agent_args(&rpc_addr, &http_addr, &agent_dir, "agent-1");
        if ephemeral_tasks {
            agent_args.push(EPHEMERAL.to_owned());
        }
        agent_args.extend(agent_extra.iter().map(|s| s.to_string()));
        let agent = spawn(&agent_args)?;
        let node_id = wait_single_node_ready(&client, &[&server, &gateway, &agent]).await?;
        Ok(PgCluster {
            url,
            http_addr,
            rpc_addr,
            node_id,
            client,
            server,
            gateway,
            agent,
            agent_dir,
            agent_args,
            db,
            server_args,
        })
    }
}

/// The flags of a client agent joining `rpc_addr`, on a free agent port.
fn agent_args(rpc_addr: &str, http_addr: &str, dir: &TempDir, name: &str) -> Vec<String> {
    strings(&[
        "agent",
        "-servers",
        rpc_addr,
        "-data-dir",
        &dir.path_str(),
        "-bind",
        "127.0.0.1",
        "-agent-port",
        &free_port().to_string(),
        "-http-advertise",
        http_addr,
        "-node",
        name,
        "-gc-disk-usage-threshold",
        "100",
    ])
}

/// Tests leave no task behind: tasks die with their agent unless a test wants them durable.
const EPHEMERAL: &str = "-ephemeral-tasks";

/// One more client agent process of a [`PgCluster`].
pub struct ExtraAgent {
    pub process: Process,
    pub dir: TempDir,
    pub node_id: String,
    args: Vec<String>,
}

impl ExtraAgent {
    /// SIGKILLs the agent and starts it again with the same data dir (tasks keep running).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill_hard();
        self.process = spawn(&self.args)?;
        Ok(())
    }
}

impl PgCluster {
    /// Starts another client agent (own data dir, name and ports); returns once its node is
    /// ready.
    pub async fn add_agent(&self, name: &str) -> anyhow::Result<ExtraAgent> {
        let dir = TempDir::new("caravan-agent")?;
        let mut args = agent_args(&self.rpc_addr, &self.http_addr, &dir, name);
        args.push(EPHEMERAL.to_owned());
        let process = spawn(&args)?;
        let found = std::sync::Mutex::new(String::new());
        wait_for(
            "the extra agent's node to be ready",
            START_TIMEOUT,
            || async {
                let (nodes, _) = self.client.nodes().list(&QueryOptions::new()).await?;
                match nodes.iter().find(|n| n.name == name && n.status == "ready") {
                    Some(n) => {
                        *found.lock().map_err(|_| anyhow!("poisoned"))? = n.id.clone();
                        Ok(true)
                    }
                    None => Ok(false),
                }
            },
        )
        .await
        .with_context(|| logs_of(&[&process]))?;
        let node_id = found.lock().map_err(|_| anyhow!("poisoned"))?.clone();
        Ok(ExtraAgent {
            process,
            dir,
            node_id,
            args,
        })
    }

    /// SIGKILLs the client agent and starts it again with the same data dir.
    pub fn restart_agent(&mut self) -> anyhow::Result<()> {
        self.agent.kill_hard();
        self.agent = spawn(&self.agent_args)?;
        Ok(())
    }

    /// One more `caravan gateway` in front of the same server; returns it with a client for it.
    pub async fn start_extra_gateway(&self) -> anyhow::Result<(Process, Client)> {
        let port = free_port();
        let gateway = spawn(&strings(&[
            "gateway",
            "-servers",
            &self.rpc_addr,
            "-bind",
            "127.0.0.1",
            "-http-port",
            &port.to_string(),
        ]))?;
        let client = Client::new(format!("http://127.0.0.1:{port}"))?;
        wait_api(&client, &[&gateway]).await?;
        Ok((gateway, client))
    }
}

impl Cluster for PgCluster {
    fn url(&self) -> &str {
        &self.url
    }
    fn http_addr(&self) -> &str {
        &self.http_addr
    }
    fn rpc_addr(&self) -> &str {
        &self.rpc_addr
    }
    fn node_id(&self) -> &str {
        &self.node_id
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn store(&self) -> StoreKind {
        StoreKind::Postgres
    }

    async fn restart_server(&mut self) -> anyhow::Result<()> {
        self.server.kill_hard();
        self.server = spawn(&self.server_args)?;
        wait_api(&self.client, &[&self.server, &self.gateway, &self.agent]).await
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn spawn(args: &[String]) -> anyhow::Result<Process> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Process::spawn(&refs, &[("RUST_LOG", "info"), ("NO_COLOR", "1")])
}

fn logs_of(processes: &[&Process]) -> String {
    processes
        .iter()
        .map(|p| format!("----- pid {} -----\n{}", p.pid(), p.logs()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the API answers `/v1/status/leader` with 200 through the server.
async fn wait_api(client: &Client, processes: &[&Process]) -> anyhow::Result<()> {
    wait_for(
        "the API to answer /v1/status/leader",
        START_TIMEOUT,
        || async {
            let r = client
                .get("/v1/status/leader", &QueryOptions::new())
                .await?;
            Ok(r.status == 200)
        },
    )
    .await
    .with_context(|| logs_of(processes))
}

/// Waits until exactly one node is registered and `ready`; returns its ID.
async fn wait_single_node_ready(client: &Client, processes: &[&Process]) -> anyhow::Result<String> {
    let found = std::sync::Mutex::new(String::new());
    wait_for(
        "the node to register and be ready",
        START_TIMEOUT,
        || async {
            // With ACLs on and no bootstrap yet nothing may read the nodes: the cluster is up
            // once it refuses, and the node ID stays unknown ("") to the test.
            let probe = client.raw(api::Method::GET, "/v1/nodes").send().await?;
            if probe.status == 403 {
                return Ok(true);
            }
            let (nodes, _) = client.nodes().list(&QueryOptions::new()).await?;
            match nodes.as_slice() {
                [node] if node.status == "ready" => {
                    *found.lock().map_err(|_| anyhow!("poisoned"))? = node.id.clone();
                    Ok(true)
                }
                _ => Ok(false),
            }
        },
    )
    .await
    .with_context(|| logs_of(processes))?;
    let id = found.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Fake nodes over gRPC
// ---------------------------------------------------------------------------------------------

/// A node registered by a test rather than by an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNode {
    pub id: String,
    pub secret_id: String,
    pub name: String,
}

/// The server's Nodes service, as a client agent sees it.
pub struct Grpc {
    nodes: NodesClient<Channel>,
}

impl Grpc {
    pub async fn connect(rpc_addr: &str) -> anyhow::Result<Grpc> {
        let nodes = NodesClient::connect(format!("http://{rpc_addr}"))
            .await
            .with_context(|| format!("connecting to the server's gRPC at {rpc_addr}"))?;
        Ok(Grpc { nodes })
    }

    /// Registers `node` (a Nomad Node JSON document); returns the heartbeat TTL.
    pub async fn register(&mut self, node: &Value) -> anyhow::Result<Duration> {
        let resp = self
            .nodes
            .register(RegisterNodeRequest {
                node_json: serde_json::to_vec(node)?.into(),
                write: None,
            })
            .await
            .map_err(|s| anyhow!("Register: {:?} {}", s.code(), s.message()))?
            .into_inner();
        Ok(Duration::from_millis(resp.heartbeat_ttl_ms))
    }

    /// Registers a `ready` node named `name` in dc1 with `meta` and a few attributes; its ID
    /// starts with `id_prefix` (hex, may be empty).
    pub async fn register_fake(
        &mut self,
        name: &str,
        id_prefix: &str,
        meta: &[(&str, &str)],
    ) -> anyhow::Result<FakeNode> {
        let node = FakeNode {
            id: uuid_with_prefix(id_prefix),
            secret_id: uuid_with_prefix(""),
            name: name.to_owned(),
        };
        self.register(&fake_node_json(&node, meta)).await?;
        Ok(node)
    }

    /// A heartbeat: `UpdateStatus` with `status` (`ready` for a normal heartbeat).
    pub async fn update_status(&mut self, node: &FakeNode, status: &str) -> anyhow::Result<()> {
        self.nodes
            .update_status(UpdateNodeStatusRequest {
                node_id: node.id.clone(),
                secret_id: node.secret_id.clone(),
                status: status.to_owned(),
                write: None,
            })
            .await
            .map_err(|s| anyhow!("UpdateStatus: {:?} {}", s.code(), s.message()))?;
        Ok(())
    }
}

/// The Node document of a fake node: the fields registration needs plus a few attributes so
/// selectors have something to match.
pub fn fake_node_json(node: &FakeNode, meta: &[(&str, &str)]) -> Value {
    let meta: serde_json::Map<String, Value> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    json!({
        "ID": node.id,
        "SecretID": node.secret_id,
        "Name": node.name,
        "Datacenter": "dc1",
        "Status": "ready",
        "HTTPAddr": "127.0.0.1:1",
        "Attributes": {
            "os.name": "fakeos",
            "kernel.name": "linux",
            "nomad.version": "0.1.0",
        },
        "Meta": meta,
    })
}

/// A random version-4 UUID whose hex digits start with `prefix` (at most 8 hex characters).
pub fn uuid_with_prefix(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hex = String::with_capacity(32);
    hex.push_str(prefix);
    while hex.len() < 32 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(now_nanos() as u128);
        h.write_u32(std::process::id());
        hex.push_str(&format!("{:016x}", h.finish()));
    }
    let mut b: Vec<char> = hex.chars().take(32).collect();
    b[12] = '4';
    b[16] = ['8', '9', 'a', 'b'][(b[16].to_digit(16).unwrap_or(0) % 4) as usize];
    let s: String = b.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP shortcuts
// ---------------------------------------------------------------------------------------------

/// GET `path` (which may carry a query string); fails unless the answer is 200 with JSON.
pub async fn get_json(client: &Client, path: &str) -> anyhow::Result<(Value, api::QueryMeta)> {
    let resp = client.get(path, &QueryOptions::new()).await?;
    if resp.status != 200 {
        bail!("GET {path}: {} {}", resp.status, resp.text());
    }
    let meta = resp.query_meta();
    let value: Value = resp
        .json()
        .with_context(|| format!("GET {path}: {}", resp.text()))?;
    Ok((value, meta))
}

/// A raw `method` to `path` with `body` (sent only if not empty), any status.
pub async fn send(
    client: &Client,
    method: api::Method,
    path: &str,
    body: &str,
) -> anyhow::Result<api::RawResponse> {
    let mut req = client.raw(method, path);
    if !body.is_empty() {
        req = req.body(body.as_bytes().to_vec());
    }
    Ok(req.send().await?)
}

/// `method` to `path` with `body` as JSON text, any status; panics if nothing answers.
pub async fn json_call(
    client: &Client,
    method: api::Method,
    path: &str,
    body: &Value,
) -> api::RawResponse {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    match send(client, method, path, &body).await {
        Ok(resp) => resp,
        Err(e) => panic!("{path}: {e}"),
    }
}

/// The JSON of a 200 answer; panics on any other status.
pub fn expect_ok(resp: &api::RawResponse) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    match resp.json() {
        Ok(v) => v,
        Err(e) => panic!("not JSON ({e}): {}", resp.text()),
    }
}

/// Panics unless the answer has `status` and its text contains `text`.
pub fn expect_error(resp: &api::RawResponse, status: u16, text: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert!(
        resp.text().contains(text),
        "{:?} does not contain {text:?}",
        resp.text()
    );
}

/// A raw POST to `path` with `body`, any status.
pub async fn post(client: &Client, path: &str, body: &str) -> anyhow::Result<api::RawResponse> {
    send(client, api::Method::POST, path, body).await
}

/// A client for the same cluster that sends `secret` as its token.
pub fn with_token(c: &impl Cluster, secret: &str) -> Client {
    match Client::new(c.url().to_owned()) {
        Ok(client) => client.with_token(secret.to_owned()),
        Err(e) => panic!("client for {}: {e}", c.url()),
    }
}

/// `POST /v1/acl/bootstrap`: the bootstrap token.
pub async fn acl_bootstrap(client: &Client) -> Value {
    expect_ok(&json_call(client, api::Method::POST, "/v1/acl/bootstrap", &Value::Null).await)
}

/// Writes the policy `name` with `rules`; panics unless the answer is 200.
pub async fn acl_policy(client: &Client, name: &str, rules: &str) {
    let resp = json_call(
        client,
        api::Method::PUT,
        &format!("/v1/acl/policy/{name}"),
        &json!({"Name": name, "Description": "d", "Rules": rules}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Waits until the cluster's one node is ready, reading with `client` (with ACLs on the harness
/// cannot, before a test bootstraps); returns its ID.
pub async fn acl_wait_node_ready(client: &Client) -> String {
    let found = std::sync::Mutex::new(String::new());
    let waited = wait_for("the node to be ready", START_TIMEOUT, || async {
        let (nodes, _) = get_json(client, "/v1/nodes").await?;
        let ready = nodes
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["Status"] == "ready");
        if let (Some(n), Ok(mut id)) = (ready, found.lock()) {
            *id = n["ID"].as_str().unwrap_or_default().to_owned();
        }
        Ok(ready.is_some())
    })
    .await;
    if let Err(e) = waited {
        panic!("{e}");
    }
    found.into_inner().unwrap_or_default()
}

/// `POST /v1/acl/token` with `body`: the token.
pub async fn acl_token(client: &Client, body: Value) -> Value {
    expect_ok(&json_call(client, api::Method::POST, "/v1/acl/token", &body).await)
}

/// Creates (or replaces) the namespace `name`; fails unless the answer is 200.
pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let resp = send(
        client,
        api::Method::PUT,
        &format!("/v1/namespace/{name}"),
        &json!({ "Name": name }).to_string(),
    )
    .await?;
    if resp.status != 200 {
        bail!("creating namespace {name}: {} {}", resp.status, resp.text());
    }
    Ok(())
}

/// PUT /v1/jobs with `{"Job": job}`; fails unless the answer is 200.
pub async fn register_job(client: &Client, job: &Value) -> anyhow::Result<()> {
    let resp = send(
        client,
        api::Method::PUT,
        "/v1/jobs",
        &json!({ "Job": job }).to_string(),
    )
    .await?;
    if resp.status != 200 {
        bail!("registering {}: {} {}", job["ID"], resp.status, resp.text());
    }
    Ok(())
}

/// Every allocation of a job (`all=true`), each read in full (`/v1/allocation/:id`).
pub async fn job_alloc_docs(client: &Client, job: &str) -> anyhow::Result<Vec<Value>> {
    let (stubs, _) = get_json(client, &format!("/v1/job/{job}/allocations?all=true")).await?;
    let mut out = Vec::new();
    for stub in stubs.as_array().cloned().unwrap_or_default() {
        let id = stub["ID"].as_str().unwrap_or_default();
        out.push(get_json(client, &format!("/v1/allocation/{id}")).await?.0);
    }
    Ok(out)
}

/// Waits until one allocation of `job` is `running` on its client; returns its ID.
pub async fn running_alloc_id(
    client: &Client,
    job: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let id = std::sync::Mutex::new(String::new());
    wait_for(
        &format!("an allocation of {job} to run"),
        timeout,
        || async {
            let allocs = job_alloc_docs(client, job).await?;
            let running = allocs.iter().find(|a| a["ClientStatus"] == "running");
            if let (Some(a), Ok(mut id)) = (running, id.lock()) {
                *id = a["ID"].as_str().unwrap_or_default().to_owned();
            }
            Ok(running.is_some())
        },
    )
    .await?;
    id.into_inner().map_err(|_| anyhow!("poisoned"))
}

/// Places one allocation of a job pinned to `node_id` and waits until it is there. Its task
/// ignores the interrupt and has a long kill timeout, so a drain of the node stays in progress
/// instead of completing at once as the drain of an empty node does.
pub async fn hold_node(client: &Client, node_id: &str) -> anyhow::Result<String> {
    let job_id = format!("hold-{}", &node_id[..8]);
    let job = json!({
        "ID": job_id,
        "Datacenters": ["*"],
        "Constraints": [{"LTarget": "${node.unique.id}", "Operand": "=", "RTarget": node_id}],
        "TaskGroups": [{
            "Name": "g",
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "trap '' INT TERM; while :; do sleep 1; done"]},
                "KillTimeout": 600_000_000_000u64,
                "Resources": {"CPU": 10, "MemoryMB": 10}
            }]
        }]
    });
    register_job(client, &job).await?;
    let path = format!("/v1/node/{node_id}/allocations");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (allocs, _) = get_json(client, &path).await?;
        if let Some(a) = allocs
            .as_array()
            .and_then(|a| a.iter().find(|a| a["JobID"] == job_id.as_str()))
        {
            return Ok(a["ID"].as_str().unwrap_or_default().to_owned());
        }
        if std::time::Instant::now() > deadline {
            bail!("{job_id} was never placed on {node_id}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node's current JSON document.
pub async fn node_doc(client: &Client, node_id: &str) -> anyhow::Result<Value> {
    Ok(get_json(client, &format!("/v1/node/{node_id}")).await?.0)
}

/// The messages of the node's events, oldest first.
pub async fn event_messages(
    client: &Client,
    node_id: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let (node, _) = client.nodes().info(node_id, &QueryOptions::new()).await?;
    Ok(node
        .events()
        .iter()
        .map(|e| (e.message.clone(), e.subsystem.clone()))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> anyhow::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            now_nanos() % 1_000_000_000
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Parses an RFC 3339 time (`2019-08-26T12:22:50.762716458+02:00`, `...Z`) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> anyhow::Result<i128> {
    let bad = || anyhow!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        bail!(bad());
    }
    let num = |r: std::ops::Range<usize>| -> anyhow::Result<i64> {
        s.get(r).and_then(|x| x.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            bail!(bad());
        }
        frac_nanos = format!("{digits:0<9}").parse().map_err(|_| bad())?;
    }
    let offset_secs: i64 = match s.get(i..) {
        Some("Z") | Some("z") => 0,
        Some(off) if off.len() == 6 && (off.starts_with('+') || off.starts_with('-')) => {
            let oh: i64 = off[1..3].parse().map_err(|_| bad())?;
            let om: i64 = off[4..6].parse().map_err(|_| bad())?;
            let sign = if off.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => bail!(bad()),
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Ok(secs as i128 * 1_000_000_000 + frac_nanos)
}

/// The JSON type of a value, as named in failure messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of the object `sample` must be in `actual` with the same JSON type (a `null` in
/// the sample allows `null` or any type: the sample shows an unset value). Returns the problems.
pub fn shape_mismatches(sample: &Value, actual: &Value) -> Vec<String> {
    let (Some(sample), Some(actual)) = (sample.as_object(), actual.as_object()) else {
        return vec![format!(
            "want two objects, got {} and {}",
            json_type(sample),
            json_type(actual)
        )];
    };
    let mut out = Vec::new();
    for (key, want) in sample {
        match actual.get(key) {
            None => out.push(format!("{key}: missing")),
            Some(got) if !want.is_null() && json_type(got) != json_type(want) => out.push(format!(
                "{key}: want {}, got {} ({got})",
                json_type(want),
                json_type(got)
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339("2019-08-26T12:22:50+02:00").unwrap(),
            1_566_814_970_000_000_000
        );
        assert_eq!(
            parse_rfc3339("2018-04-11T23:33:48.7819898Z").unwrap(),
            1_523_489_628_781_989_800
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn uuids() {
        let a = uuid_with_prefix("ab");
        let b = uuid_with_prefix("ab");
        assert_ne!(a, b);
        assert!(a.starts_with("ab") && a.len() == 36, "{a}");
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn shapes() {
        let sample = json!({"A": 1, "B": null, "C": "x"});
        assert!(shape_mismatches(&sample, &json!({"A": 2, "B": {}, "C": "y", "D": 0})).is_empty());
        assert_eq!(
            shape_mismatches(&sample, &json!({"A": "2", "B": null})).len(),
            2
        );
    }
}
