//! The allocation's instances in the built-in service catalogue (`provider = "nomad"`).
//!
//! - [`workload_registrations`] builds what one workload (the group, or one task) registers, as
//!   Nomad's client does: the ID, the address and port chosen by address mode
//!   ([`get_address`]), runtime `${...}` interpolation, canary tags.
//! - [`ServiceClient`] talks to the servers' `Services` gRPC service with the node's secret.
//! - [`AllocServices`] is one allocation's view: a single ordered worker per allocation
//!   registers, updates and deregisters workloads in the order the runners ask (a task that
//!   exits right after starting is deregistered after, never before, its registration), with
//!   retries while the servers are away. Nothing re-registers on a timer: only a start, an
//!   update of the allocation or an agent restart does (hashicorp/nomad#16616).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use caravan_proto::v1::services_client::ServicesClient;
use caravan_proto::v1::{DeregisterServicesRequest, NodeAuth, UpsertServicesRequest};
use caravan_proto::{ErrorCode, error_code_of};
use caravan_structs::{
    AllocNetworkStatus, AllocatedPortMapping, Allocation, NetworkResource, Node, Service,
    ServiceRegistration, Task, TaskGroup, TaskState, service_registration_id,
};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;

use super::events::STATE_RUNNING;
use crate::identity::Identity;
use crate::taskenv::{TaskEnv, TaskEnvBuilder};

pub const PROVIDER_NOMAD: &str = "nomad";

pub const ADDRESS_MODE_AUTO: &str = "auto";
pub const ADDRESS_MODE_HOST: &str = "host";
pub const ADDRESS_MODE_DRIVER: &str = "driver";
pub const ADDRESS_MODE_ALLOC: &str = "alloc";

/// Deregistration back-off (Nomad's: 100 ms doubling to 1 s).
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Why a workload's services could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("unable to get address for service {name:?}: {reason}")]
    Address { name: String, reason: String },
    #[error("allocation has no job or group {0:?}")]
    NoGroup(String),
    #[error("node state poisoned")]
    Poisoned,
    /// The server refused the registrations (not worth retrying).
    #[error("{0}")]
    Refused(String),
    /// A later request for the same workload replaced this one while the server was away.
    #[error("registration superseded")]
    Superseded,
    #[error("the allocation's service worker stopped")]
    WorkerGone,
}

/// The nomad-provider services of a group (not its tasks').
pub fn nomad_services(services: Option<&Vec<Service>>) -> impl Iterator<Item = &Service> {
    services
        .into_iter()
        .flatten()
        .filter(|s| s.provider == PROVIDER_NOMAD)
}

/// The workload name in registration IDs: the task, or `group-<group>`.
pub fn workload_name(group: &str, task: Option<&str>) -> String {
    match task {
        Some(t) => t.to_owned(),
        None => format!("group-{group}"),
    }
}

/// The environment a workload's services interpolate against: the task's, or for group
/// services one without a task (no `NOMAD_TASK_*`), as Nomad's alloc-level environment.
pub fn workload_env(
    alloc: &Allocation,
    group: &TaskGroup,
    task: Option<&Task>,
    node: &Node,
    region: &str,
) -> Option<TaskEnv> {
    let job = alloc.job.as_ref()?;
    let none = Task::default();
    let task = task.unwrap_or(&none);
    Some(TaskEnvBuilder::new(alloc, job, group, task, node, region).build())
}

/// A service with its runtime variables replaced (name, tags, address, port).
pub fn interpolate_service(env: &TaskEnv, s: &Service) -> Service {
    let list = |l: &Option<Vec<String>>| {
        l.as_ref()
            .map(|v| v.iter().map(|t| env.interpolate(t)).collect())
    };
    let mut out = s.clone();
    out.name = env.interpolate(&s.name);
    out.tags = list(&s.tags);
    out.canary_tags = list(&s.canary_tags);
    out.address = env.interpolate(&s.address);
    out.port_label = env.interpolate(&s.port_label);
    for c in out.checks.iter_mut().flatten() {
        c.name = env.interpolate(&c.name);
        c.path = env.interpolate(&c.path);
        c.port_label = env.interpolate(&c.port_label);
        c.protocol = env.interpolate(&c.protocol);
        c.method = env.interpolate(&c.method);
        c.body = env.interpolate(&c.body);
        for values in c.header.iter_mut().flat_map(|h| h.values_mut()) {
            for v in values.iter_mut() {
                *v = env.interpolate(v);
            }
        }
    }
    out
}

/// The allocation's group networks, ports and network status (what addresses are chosen from).
pub struct AddressSources<'a> {
    pub networks: Vec<&'a NetworkResource>,
    pub ports: &'a [AllocatedPortMapping],
    pub net_status: Option<&'a AllocNetworkStatus>,
}

impl<'a> AddressSources<'a> {
    /// The group's shared networks and ports, plus `task`'s own (pre-1.0) networks.
    pub fn of(alloc: &'a Allocation, task: Option<&str>) -> AddressSources<'a> {
        let shared = alloc.allocated_resources.as_ref().map(|r| &r.shared);
        let mut networks: Vec<&NetworkResource> = shared
            .and_then(|s| s.networks.as_ref())
            .into_iter()
            .flatten()
            .collect();
        if let Some(task) = task {
            let own = alloc
                .allocated_resources
                .as_ref()
                .and_then(|r| r.tasks.as_ref())
                .and_then(|t| t.get(task))
                .and_then(|t| t.networks.as_ref());
            networks.extend(own.into_iter().flatten());
        }
        AddressSources {
            networks,
            ports: shared.and_then(|s| s.ports.as_deref()).unwrap_or_default(),
            net_status: alloc.network_status.as_ref(),
        }
    }

    fn port(&self, label: &str) -> Option<&AllocatedPortMapping> {
        self.ports.iter().find(|p| p.label == label)
    }

    /// A legacy network port by label: the network's IP and the host port.
    fn network_port(&self, label: &str) -> Option<(String, i64)> {
        self.networks.iter().find_map(|n| {
            n.reserved_ports
                .iter()
                .flatten()
                .chain(n.dynamic_ports.iter().flatten())
                .find(|p| p.label == label && p.value > 0)
                .map(|p| (n.ip.clone(), p.value))
        })
    }
}

fn numeric_port(label: &str) -> Option<i64> {
    label.parse::<i64>().ok()
}

/// Nomad's `GetAddress`: the address and port a service (or check) advertises. Caravan's drivers
/// have no driver network, so `auto` is `host` and `driver` mode always fails.
pub fn get_address(
    address: &str,
    mode: &str,
    port_label: &str,
    src: &AddressSources<'_>,
) -> Result<(String, i64), String> {
    match mode {
        ADDRESS_MODE_AUTO | "" => {
            if address.is_empty() {
                return get_address("", ADDRESS_MODE_HOST, port_label, src);
            }
            if port_label.is_empty() {
                return Ok((address.to_owned(), 0));
            }
            if let Some(p) = src.port(port_label) {
                return Ok((address.to_owned(), p.value));
            }
            numeric_port(port_label)
                .map(|p| (address.to_owned(), p))
                .ok_or_else(|| {
                    format!(
                        "invalid port: {port_label:?}: not a valid port mapping or numeric port"
                    )
                })
        }
        ADDRESS_MODE_HOST => {
            if !address.is_empty() {
                return Err(format!(
                    "cannot use custom advertise address with {ADDRESS_MODE_HOST:?} address mode"
                ));
            }
            if port_label.is_empty() {
                return Ok(match src.networks.as_slice() {
                    [only] => (only.ip.clone(), 0),
                    _ => (String::new(), 0),
                });
            }
            if let Some(p) = src.port(port_label) {
                return Ok((p.host_ip.clone(), p.value));
            }
            if let Some(found) = src.network_port(port_label) {
                return Ok(found);
            }
            let port = numeric_port(port_label)
                .ok_or_else(|| format!("invalid port {port_label:?}: port label not found"))?;
            if port <= 0 {
                return Err(format!("invalid port: {port_label:?}: port must be >0"));
            }
            // A bare number: the agent's address, as with Consul.
            Ok((String::new(), port))
        }
        ADDRESS_MODE_DRIVER => {
            if !address.is_empty() {
                return Err(format!(
                    "cannot use custom advertise address with {ADDRESS_MODE_DRIVER:?} address mode"
                ));
            }
            Err(r#"cannot use address_mode="driver": no driver network exists"#.to_owned())
        }
        ADDRESS_MODE_ALLOC => {
            if !address.is_empty() {
                return Err(format!(
                    "cannot use custom advertise address with {ADDRESS_MODE_ALLOC:?} address mode"
                ));
            }
            let status = src.net_status.ok_or_else(|| {
                r#"cannot use address_mode="alloc": no allocation network status reported"#
                    .to_owned()
            })?;
            if port_label.is_empty() {
                return Ok((status.address.clone(), 0));
            }
            if let Some(p) = src.port(port_label) {
                let port = if p.to > 0 { p.to } else { p.value };
                return Ok((status.address.clone(), port));
            }
            let port = numeric_port(port_label).ok_or_else(|| {
                format!("invalid port {port_label:?}: port label not found or is not numeric")
            })?;
            if port <= 0 {
                return Err(format!("invalid port: {port_label:?}: port must be >0"));
            }
            Ok((status.address.clone(), port))
        }
        other => Err(format!("invalid address mode {other:?}")),
    }
}

/// The registrations of one workload: the group's services (`task` None) or a task's, each
/// interpolated. Any address error fails the whole workload, as in Nomad.
pub fn workload_registrations(
    alloc: &Allocation,
    task: Option<&str>,
    node: &Node,
    region: &str,
) -> Result<Vec<ServiceRegistration>, ServiceError> {
    let group = alloc
        .job
        .as_ref()
        .and_then(|j| j.lookup_task_group(&alloc.task_group))
        .ok_or_else(|| ServiceError::NoGroup(alloc.task_group.clone()))?;
    let (services, task_spec) = match task {
        None => (group.services.as_ref(), None),
        Some(name) => {
            let t = group
                .tasks
                .iter()
                .flatten()
                .find(|t| t.name == name)
                .ok_or_else(|| ServiceError::NoGroup(alloc.task_group.clone()))?;
            (t.services.as_ref(), Some(t))
        }
    };
    let services: Vec<&Service> = nomad_services(services).collect();
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let env = workload_env(alloc, group, task_spec, node, region)
        .ok_or_else(|| ServiceError::NoGroup(alloc.task_group.clone()))?;
    let workload = workload_name(&alloc.task_group, task);
    let canary = alloc.deployment_status.as_ref().is_some_and(|d| d.canary);
    let src = AddressSources::of(alloc, task);
    let mut out = Vec::with_capacity(services.len());
    for s in services {
        let s = interpolate_service(&env, s);
        let (address, port) = get_address(&s.address, &s.address_mode, &s.port_label, &src)
            .map_err(|reason| ServiceError::Address {
                name: s.name.clone(),
                reason,
            })?;
        let canary_tags = s.canary_tags.clone().unwrap_or_default();
        let tags = if canary && !canary_tags.is_empty() {
            canary_tags
        } else {
            s.tags.clone().unwrap_or_default()
        };
        out.push(ServiceRegistration {
            id: service_registration_id(&alloc.id, &workload, &s.name, &s.port_label),
            service_name: s.name.clone(),
            namespace: alloc.namespace.clone(),
            node_id: node.id.clone(),
            datacenter: node.datacenter.clone(),
            job_id: alloc.job_id.clone(),
            alloc_id: alloc.id.clone(),
            tags,
            address,
            port,
            create_index: 0,
            modify_index: 0,
        });
    }
    Ok(out)
}

/// The servers' `Services` RPCs with this node's secret.
#[derive(Clone)]
pub struct ServiceClient {
    client: ServicesClient<Channel>,
    auth: NodeAuth,
}

impl ServiceClient {
    pub fn new(channel: Channel, identity: &Identity) -> ServiceClient {
        ServiceClient {
            client: ServicesClient::new(channel),
            auth: NodeAuth {
                node_id: identity.node_id.clone(),
                secret_id: identity.secret_id.clone(),
            },
        }
    }

    async fn upsert(&self, regs: &[ServiceRegistration]) -> Result<(), tonic::Status> {
        let registrations_json = regs
            .iter()
            .filter_map(|r| serde_json::to_vec(r).ok().map(bytes::Bytes::from))
            .collect();
        self.client
            .clone()
            .upsert_services(UpsertServicesRequest {
                node: Some(self.auth.clone()),
                registrations_json,
            })
            .await
            .map(|_| ())
    }

    async fn delete(&self, namespace: &str, ids: Vec<String>) -> Result<(), tonic::Status> {
        self.client
            .clone()
            .deregister_services(DeregisterServicesRequest {
                node: Some(self.auth.clone()),
                namespace: namespace.to_owned(),
                service_ids: ids,
            })
            .await
            .map(|_| ())
    }
}

/// Whether a refusal is final: a retry would be refused the same way.
fn is_final(status: &tonic::Status) -> bool {
    matches!(
        error_code_of(status),
        ErrorCode::BadRequest | ErrorCode::NotFound | ErrorCode::PermissionDenied
    )
}

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(BACKOFF_MAX)
}

enum Op {
    /// Register a workload's services (a start, or a restore).
    Register {
        workload: String,
        regs: Vec<ServiceRegistration>,
        done: Option<oneshot::Sender<Result<(), ServiceError>>>,
    },
    /// The allocation changed: an active workload's services follow it.
    Update {
        workload: String,
        regs: Vec<ServiceRegistration>,
    },
    Deregister {
        workload: String,
        done: Option<oneshot::Sender<()>>,
    },
    DeregisterAll {
        done: Option<oneshot::Sender<()>>,
    },
}

impl Op {
    /// Whether this op makes an earlier registration of `workload` pointless.
    fn supersedes(&self, workload: &str) -> bool {
        match self {
            Op::Register { workload: w, .. }
            | Op::Update { workload: w, .. }
            | Op::Deregister { workload: w, .. } => w == workload,
            Op::DeregisterAll { .. } => true,
        }
    }
}

/// Applies one allocation's ops in order.
struct Worker {
    client: ServiceClient,
    rx: mpsc::UnboundedReceiver<Op>,
    queue: VecDeque<Op>,
    /// What each workload last registered (what its deregistration removes).
    registered: BTreeMap<String, Vec<ServiceRegistration>>,
    alloc_id: String,
}

impl Worker {
    async fn run(mut self) {
        loop {
            let op = match self.queue.pop_front() {
                Some(op) => op,
                None => match self.rx.recv().await {
                    Some(op) => op,
                    None => return,
                },
            };
            match op {
                Op::Register {
                    workload,
                    regs,
                    done,
                } => {
                    let result = self.register(&workload, regs).await;
                    if let Err(e) = &result {
                        tracing::warn!(alloc_id = %self.alloc_id, workload, error = %e, "registering services failed");
                    }
                    if let Some(done) = done {
                        let _ = done.send(result);
                    }
                }
                Op::Update { workload, regs } => self.update(&workload, regs).await,
                Op::Deregister { workload, done } => {
                    self.deregister(&workload).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Op::DeregisterAll { done } => {
                    let all: Vec<String> = self.registered.keys().cloned().collect();
                    for w in all {
                        self.deregister(&w).await;
                    }
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
            }
        }
    }

    /// Moves waiting ops into the queue; true when one of them supersedes `workload`'s.
    fn superseded(&mut self, workload: &str) -> bool {
        while let Ok(op) = self.rx.try_recv() {
            self.queue.push_back(op);
        }
        self.queue.iter().any(|op| op.supersedes(workload))
    }

    /// Upserts with retries while the server is away; a later op for the workload ends the
    /// retries (its registrations are still remembered, so a deregistration covers them).
    async fn upsert(
        &mut self,
        workload: &str,
        regs: &[ServiceRegistration],
    ) -> Result<(), ServiceError> {
        let mut wait = BACKOFF_INITIAL;
        loop {
            match self.client.upsert(regs).await {
                Ok(()) => return Ok(()),
                Err(status) if is_final(&status) => {
                    return Err(ServiceError::Refused(status.message().to_owned()));
                }
                Err(status) => {
                    tracing::debug!(alloc_id = %self.alloc_id, workload, error = %status.message(), "registering services; will retry");
                }
            }
            if self.superseded(workload) {
                return Err(ServiceError::Superseded);
            }
            tokio::time::sleep(wait).await;
            wait = next_backoff(wait);
        }
    }

    async fn register(
        &mut self,
        workload: &str,
        regs: Vec<ServiceRegistration>,
    ) -> Result<(), ServiceError> {
        if regs.is_empty() {
            return Ok(());
        }
        let result = self.upsert(workload, &regs).await;
        match &result {
            Ok(()) | Err(ServiceError::Superseded) => {
                self.registered.insert(workload.to_owned(), regs);
            }
            Err(_) => {}
        }
        result
    }

    /// Nomad's `UpdateWorkload`: upsert the new set first, then delete the IDs that left it.
    async fn update(&mut self, workload: &str, regs: Vec<ServiceRegistration>) {
        let old = self.registered.get(workload).cloned().unwrap_or_default();
        let same = old.len() == regs.len() && old.iter().zip(&regs).all(|(a, b)| a.same_as(b));
        if same {
            return;
        }
        if !regs.is_empty()
            && let Err(e) = self.upsert(workload, &regs).await
        {
            tracing::warn!(alloc_id = %self.alloc_id, workload, error = %e, "updating services failed");
            if !matches!(e, ServiceError::Superseded) {
                return;
            }
        }
        let kept: HashSet<&str> = regs.iter().map(|r| r.id.as_str()).collect();
        let gone: Vec<ServiceRegistration> = old
            .iter()
            .filter(|r| !kept.contains(r.id.as_str()))
            .cloned()
            .collect();
        self.registered.insert(workload.to_owned(), regs);
        self.delete(&gone).await;
    }

    async fn deregister(&mut self, workload: &str) {
        if let Some(regs) = self.registered.remove(workload) {
            self.delete(&regs).await;
        }
    }

    /// Deletes with back-off until the server answers (an unknown ID is no error).
    async fn delete(&mut self, regs: &[ServiceRegistration]) {
        let mut by_ns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in regs {
            by_ns.entry(&r.namespace).or_default().push(r.id.clone());
        }
        for (ns, ids) in by_ns {
            let mut wait = BACKOFF_INITIAL;
            loop {
                match self.client.delete(ns, ids.clone()).await {
                    Ok(()) => break,
                    Err(status) if is_final(&status) => {
                        tracing::warn!(alloc_id = %self.alloc_id, error = %status.message(), "deregistering services refused");
                        break;
                    }
                    Err(status) => {
                        tracing::debug!(alloc_id = %self.alloc_id, error = %status.message(), "deregistering services; will retry");
                    }
                }
                // Keep later ops in order while waiting.
                while let Ok(op) = self.rx.try_recv() {
                    self.queue.push_back(op);
                }
                tokio::time::sleep(wait).await;
                wait = next_backoff(wait);
            }
        }
    }
}

/// One allocation's services: builds each workload's registrations from the current allocation
/// and hands them to the allocation's ordered worker.
pub struct AllocServices {
    ops: mpsc::UnboundedSender<Op>,
    alloc: Arc<RwLock<Arc<Allocation>>>,
    node: Arc<RwLock<Node>>,
    region: String,
    /// Tasks whose services are registered (they run).
    active: Mutex<BTreeSet<String>>,
    /// The group's services were registered (updates apply to them).
    group_active: AtomicBool,
    /// The allocation is stopping: nothing registers any more.
    stopped: AtomicBool,
}

impl AllocServices {
    pub fn new(
        client: ServiceClient,
        alloc: Arc<RwLock<Arc<Allocation>>>,
        node: Arc<RwLock<Node>>,
        region: String,
    ) -> Arc<AllocServices> {
        let (tx, rx) = mpsc::unbounded_channel();
        let alloc_id = alloc.read().map(|a| a.id.clone()).unwrap_or_default();
        tokio::spawn(
            Worker {
                client,
                rx,
                queue: VecDeque::new(),
                registered: BTreeMap::new(),
                alloc_id,
            }
            .run(),
        );
        Arc::new(AllocServices {
            ops: tx,
            alloc,
            node,
            region,
            active: Mutex::new(BTreeSet::new()),
            group_active: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        })
    }

    fn current(&self) -> Option<Arc<Allocation>> {
        self.alloc.read().ok().map(|a| a.clone())
    }

    fn build(&self, task: Option<&str>) -> Result<Vec<ServiceRegistration>, ServiceError> {
        let alloc = self.current().ok_or(ServiceError::Poisoned)?;
        let node = self.node.read().map_err(|_| ServiceError::Poisoned)?;
        workload_registrations(&alloc, task, &node, &self.region)
    }

    fn group_name(&self) -> String {
        self.current()
            .map(|a| a.task_group.clone())
            .unwrap_or_default()
    }

    /// Registers the group's services and waits for the server (before any task starts).
    pub async fn register_group(&self) -> Result<(), ServiceError> {
        let regs = self.build(None)?;
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.group_active.store(true, Ordering::SeqCst);
        if regs.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        let workload = workload_name(&self.group_name(), None);
        self.ops
            .send(Op::Register {
                workload,
                regs,
                done: Some(done),
            })
            .map_err(|_| ServiceError::WorkerGone)?;
        wait.await.map_err(|_| ServiceError::WorkerGone)?
    }

    /// A task's state changed: its services register when it starts running (or is re-attached)
    /// and deregister when it stops running (exit, restart, kill).
    pub fn task_changed(&self, task: &str, state: &TaskState) {
        let running = state.state == STATE_RUNNING;
        let Ok(mut active) = self.active.lock() else {
            return;
        };
        if running && !active.contains(task) {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            active.insert(task.to_owned());
            match self.build(Some(task)) {
                Ok(regs) if regs.is_empty() => {}
                Ok(regs) => {
                    let _ = self.ops.send(Op::Register {
                        workload: task.to_owned(),
                        regs,
                        done: None,
                    });
                }
                Err(e) => {
                    let alloc_id = self.current().map(|a| a.id.clone()).unwrap_or_default();
                    tracing::warn!(alloc_id, task, error = %e, "poststart failed: cannot register the task's services");
                }
            }
        } else if !running && active.remove(task) {
            let _ = self.ops.send(Op::Deregister {
                workload: task.to_owned(),
                done: None,
            });
        }
    }

    /// The allocation was updated: registered workloads follow its services.
    pub fn update(&self) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let group = self.group_name();
        let mut workloads: Vec<Option<String>> = Vec::new();
        if self.group_active.load(Ordering::SeqCst) {
            workloads.push(None);
        }
        if let Ok(active) = self.active.lock() {
            workloads.extend(active.iter().cloned().map(Some));
        }
        for task in workloads {
            match self.build(task.as_deref()) {
                Ok(regs) => {
                    let _ = self.ops.send(Op::Update {
                        workload: workload_name(&group, task.as_deref()),
                        regs,
                    });
                }
                Err(e) => {
                    tracing::warn!(task = ?task, error = %e, "cannot update services");
                }
            }
        }
    }

    /// Deregisters every workload (the allocation stops); resolves once the server answered.
    /// Nothing registers afterwards.
    pub fn deregister_all(&self) -> oneshot::Receiver<()> {
        self.stopped.store(true, Ordering::SeqCst);
        let (done, wait) = oneshot::channel();
        let _ = self.ops.send(Op::DeregisterAll { done: Some(done) });
        wait
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use caravan_structs::{AllocatedResources, AllocatedSharedResources, Job, Port};

    fn mapping(label: &str, value: i64, to: i64) -> AllocatedPortMapping {
        AllocatedPortMapping {
            host_ip: "10.0.0.5".into(),
            label: label.into(),
            to,
            value,
        }
    }

    fn network() -> NetworkResource {
        NetworkResource {
            ip: "10.0.0.5".into(),
            dynamic_ports: Some(vec![Port {
                label: "old".into(),
                value: 2000,
                ..Port::default()
            }]),
            ..NetworkResource::default()
        }
    }

    #[test]
    fn host_mode_follows_nomad() {
        let net = network();
        let ports = [mapping("http", 25000, 8080)];
        let src = AddressSources {
            networks: vec![&net],
            ports: &ports,
            net_status: None,
        };
        let get = |a: &str, m: &str, p: &str| get_address(a, m, p, &src);
        assert_eq!(get("", "host", "http").unwrap(), ("10.0.0.5".into(), 25000));
        assert_eq!(get("", "auto", "http").unwrap(), ("10.0.0.5".into(), 25000));
        assert_eq!(get("", "host", "").unwrap(), ("10.0.0.5".into(), 0));
        assert_eq!(get("", "host", "old").unwrap(), ("10.0.0.5".into(), 2000));
        assert_eq!(get("", "host", "9000").unwrap(), (String::new(), 9000));
        assert_eq!(
            get("", "host", "nope").unwrap_err(),
            r#"invalid port "nope": port label not found"#
        );
        assert_eq!(
            get("", "host", "0").unwrap_err(),
            r#"invalid port: "0": port must be >0"#
        );
        assert_eq!(
            get("1.2.3.4", "host", "http").unwrap_err(),
            r#"cannot use custom advertise address with "host" address mode"#
        );
        assert_eq!(
            get("1.2.3.4", "auto", "http").unwrap(),
            ("1.2.3.4".into(), 25000)
        );
        assert_eq!(get("1.2.3.4", "auto", "").unwrap(), ("1.2.3.4".into(), 0));
        assert_eq!(
            get("1.2.3.4", "auto", "x").unwrap_err(),
            r#"invalid port: "x": not a valid port mapping or numeric port"#
        );
        assert_eq!(
            get("", "driver", "http").unwrap_err(),
            r#"cannot use address_mode="driver": no driver network exists"#
        );
        assert_eq!(
            get("", "alloc", "http").unwrap_err(),
            r#"cannot use address_mode="alloc": no allocation network status reported"#
        );
    }

    #[test]
    fn alloc_mode_uses_the_mapped_port() {
        let ports = [mapping("http", 25000, 8080), mapping("raw", 25001, 0)];
        let status = AllocNetworkStatus {
            address: "172.26.64.2".into(),
            ..AllocNetworkStatus::default()
        };
        let src = AddressSources {
            networks: vec![],
            ports: &ports,
            net_status: Some(&status),
        };
        let get = |p: &str| get_address("", "alloc", p, &src);
        assert_eq!(get("http").unwrap(), ("172.26.64.2".into(), 8080));
        assert_eq!(get("raw").unwrap(), ("172.26.64.2".into(), 25001));
        assert_eq!(get("").unwrap(), ("172.26.64.2".into(), 0));
        assert_eq!(
            get("x").unwrap_err(),
            r#"invalid port "x": port label not found or is not numeric"#
        );
    }

    fn alloc_with(services: Vec<Service>, canary: bool) -> Allocation {
        let group = TaskGroup {
            name: "web".into(),
            services: Some(services),
            tasks: Some(vec![Task {
                name: "server".into(),
                ..Task::default()
            }]),
            ..TaskGroup::default()
        };
        Allocation {
            id: "a1".into(),
            name: "example.web[3]".into(),
            namespace: "default".into(),
            job_id: "example".into(),
            task_group: "web".into(),
            job: Some(Job {
                id: "example".into(),
                task_groups: Some(vec![group]),
                ..Job::default()
            }),
            allocated_resources: Some(AllocatedResources {
                shared: AllocatedSharedResources {
                    ports: Some(vec![mapping("http", 25000, 0)]),
                    ..AllocatedSharedResources::default()
                },
                ..AllocatedResources::default()
            }),
            deployment_status: canary.then(|| caravan_structs::AllocDeploymentStatus {
                canary: true,
                ..Default::default()
            }),
            ..Allocation::default()
        }
    }

    #[test]
    fn group_registrations_interpolate_and_pick_canary_tags() {
        let svc = Service {
            name: "api-${NOMAD_ALLOC_INDEX}".into(),
            port_label: "http".into(),
            provider: PROVIDER_NOMAD.into(),
            tags: Some(vec!["dc-${node.datacenter}".into()]),
            canary_tags: Some(vec!["canary".into()]),
            ..Service::default()
        };
        let node = Node {
            id: "n1".into(),
            datacenter: "dc1".into(),
            ..Node::default()
        };
        let regs =
            workload_registrations(&alloc_with(vec![svc.clone()], false), None, &node, "global")
                .unwrap();
        assert_eq!(regs.len(), 1);
        let r = &regs[0];
        assert_eq!(r.id, "_nomad-task-a1-group-web-api-3-http");
        assert_eq!(r.service_name, "api-3");
        assert_eq!(r.tags, vec!["dc-dc1".to_owned()]);
        assert_eq!((r.address.as_str(), r.port), ("10.0.0.5", 25000));
        assert_eq!((r.node_id.as_str(), r.datacenter.as_str()), ("n1", "dc1"));
        let canary =
            workload_registrations(&alloc_with(vec![svc], true), None, &node, "global").unwrap();
        assert_eq!(canary[0].tags, vec!["canary".to_owned()]);
    }

    #[test]
    fn an_address_error_fails_the_workload_and_consul_services_are_ignored() {
        let bad = Service {
            name: "api".into(),
            port_label: "nope".into(),
            provider: PROVIDER_NOMAD.into(),
            ..Service::default()
        };
        let consul = Service {
            name: "other".into(),
            provider: "consul".into(),
            ..Service::default()
        };
        let node = Node::default();
        let err =
            workload_registrations(&alloc_with(vec![bad], false), None, &node, "g").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unable to get address for service "api": invalid port "nope": port label not found"#
        );
        assert!(
            workload_registrations(&alloc_with(vec![consul], false), None, &node, "g")
                .unwrap()
                .is_empty()
        );
        let no_port = Service {
            name: "bare".into(),
            provider: PROVIDER_NOMAD.into(),
            ..Service::default()
        };
        let regs =
            workload_registrations(&alloc_with(vec![no_port], false), None, &node, "g").unwrap();
        assert_eq!(regs[0].id, "_nomad-task-a1-group-web-bare-");
        assert!(regs[0].tags.is_empty());
    }
}
