//! A test harness (feature `testing`): an in-memory [`State`] ([`MemState`]) and a
//! [`Planner`] ([`Harness`]) that applies plans as the leader's plan applier does — node by
//! node, re-checking each with [`allocs_fit`] and rejecting nodes that no longer fit (or that
//! a test asks it to reject) — and records every plan and eval. Builders make ready nodes
//! and canonical jobs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use caravan_structs::{
    ALLOC_CLIENT_STATUS_PENDING, ALLOC_CLIENT_STATUS_RUNNING, ALLOC_DESIRED_STATUS_RUN, Allocation,
    Deployment, DriverInfo, EVAL_STATUS_PENDING, Evaluation, JOB_TYPE_BATCH, JOB_TYPE_SERVICE,
    JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM, Job, NODE_SCHEDULING_ELIGIBLE, NODE_STATUS_READY,
    NetworkResource, Node, NodeCpuResources, NodeDiskResources, NodeMemoryResources,
    NodeReservedResources, NodeResources, Resources, Task, TaskGroup, eval_trigger,
};

use crate::error::SchedulerError;
use crate::fit::allocs_fit;
use crate::interfaces::{Planner, SchedContext, SchedulerConfig, State};
use crate::plan::{Plan, PlanResult};

/// An in-memory snapshot.
#[derive(Debug, Clone, Default)]
pub struct MemState {
    pub index: u64,
    /// Every version of every job, oldest first.
    jobs: HashMap<(String, String), Vec<Arc<Job>>>,
    nodes: BTreeMap<String, Arc<Node>>,
    /// Allocations in insertion order, indexed by ID, node and job.
    allocs: Vec<Arc<Allocation>>,
    alloc_ids: HashMap<String, usize>,
    by_node: HashMap<String, Vec<usize>>,
    by_job: HashMap<(String, String), Vec<usize>>,
    deployments: BTreeMap<String, Arc<Deployment>>,
    pub config: SchedulerConfig,
    /// Per node pool, the configuration its jobs are scheduled with (instead of `config`).
    pub pool_configs: BTreeMap<String, SchedulerConfig>,
}

impl State for MemState {
    fn index(&self) -> u64 {
        self.index
    }

    fn job(&self, namespace: &str, id: &str) -> Option<&Job> {
        self.jobs
            .get(&(namespace.to_owned(), id.to_owned()))
            .and_then(|v| v.last())
            .map(|j| &**j)
    }

    fn job_version(&self, namespace: &str, id: &str, version: u64) -> Option<&Job> {
        self.jobs
            .get(&(namespace.to_owned(), id.to_owned()))?
            .iter()
            .find(|j| j.version == version)
            .map(|j| &**j)
    }

    fn nodes(&self) -> Vec<&Node> {
        self.nodes.values().map(|n| &**n).collect()
    }

    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id).map(|n| &**n)
    }

    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.by_job
            .get(&(namespace.to_owned(), job_id.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|i| self.allocs.get(*i).map(|a| &**a))
            .collect()
    }

    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.by_node
            .get(node_id)
            .into_iter()
            .flatten()
            .filter_map(|i| self.allocs.get(*i).map(|a| &**a))
            .collect()
    }

    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<&Deployment> {
        self.deployments
            .values()
            .filter(|d| d.namespace == namespace && d.job_id == job_id)
            .max_by_key(|d| d.create_index)
            .map(|d| &**d)
    }

    fn scheduler_config(&self, node_pool: &str) -> SchedulerConfig {
        self.pool_configs
            .get(node_pool)
            .copied()
            .unwrap_or(self.config)
    }
}

impl MemState {
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Registers a job: a new version when the job exists (indexes as Nomad sets them).
    pub fn upsert_job(&mut self, mut job: Job) -> Job {
        let index = self.next_index();
        let key = (job.namespace.clone(), job.id.clone());
        let versions = self.jobs.entry(key).or_default();
        match versions.last() {
            Some(prev) => {
                job.version = prev.version + 1;
                job.create_index = prev.create_index;
            }
            None => {
                job.version = 0;
                job.create_index = index;
            }
        }
        job.modify_index = index;
        job.job_modify_index = index;
        versions.push(Arc::new(job.clone()));
        job
    }

    /// Removes every version of a job (a purge).
    pub fn purge_job(&mut self, namespace: &str, id: &str) {
        self.next_index();
        self.jobs.remove(&(namespace.to_owned(), id.to_owned()));
    }

    pub fn upsert_node(&mut self, mut node: Node) {
        node.modify_index = self.next_index();
        if node.computed_class.is_empty() {
            node.set_computed_class();
        }
        self.nodes.insert(node.id.clone(), Arc::new(node));
    }

    /// Inserts or replaces an allocation (stored without its job).
    pub fn upsert_alloc(&mut self, alloc: Allocation) {
        let index = self.next_index();
        self.put_alloc(alloc, index);
    }

    fn put_alloc(&mut self, mut alloc: Allocation, index: u64) {
        alloc.job = None;
        alloc.modify_index = index;
        alloc.alloc_modify_index = index;
        if let Some(&i) = self.alloc_ids.get(&alloc.id) {
            alloc.create_index = self.allocs[i].create_index;
            self.allocs[i] = Arc::new(alloc);
            return;
        }
        if alloc.create_index == 0 {
            alloc.create_index = index;
        }
        let i = self.allocs.len();
        self.alloc_ids.insert(alloc.id.clone(), i);
        self.by_node
            .entry(alloc.node_id.clone())
            .or_default()
            .push(i);
        self.by_job
            .entry((alloc.namespace.clone(), alloc.job_id.clone()))
            .or_default()
            .push(i);
        self.allocs.push(Arc::new(alloc));
    }

    pub fn alloc(&self, id: &str) -> Option<&Allocation> {
        self.alloc_ids.get(id).map(|i| &*self.allocs[*i])
    }

    /// Every allocation, ordered by create index then ID.
    pub fn all_allocs(&self) -> Vec<&Allocation> {
        let mut v: Vec<&Allocation> = self.allocs.iter().map(|a| &**a).collect();
        v.sort_by(|a, b| (a.create_index, &a.id).cmp(&(b.create_index, &b.id)));
        v
    }

    pub fn upsert_deployment(&mut self, mut d: Deployment) {
        let index = self.next_index();
        if let Some(old) = self.deployments.get(&d.id) {
            d.create_index = old.create_index;
        } else {
            d.create_index = index;
        }
        d.modify_index = index;
        self.deployments.insert(d.id.clone(), Arc::new(d));
    }

    pub fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments.get(id).map(|d| &**d)
    }
}

/// The harness: a [`MemState`] plus a recording [`Planner`].
#[derive(Debug, Default)]
pub struct Harness {
    pub state: MemState,
    pub plans: Vec<Plan>,
    /// What each plan committed, without the allocations themselves (see `plans`).
    pub results: Vec<PlanResult>,
    /// Evals written with `update_eval`.
    pub evals: Vec<Evaluation>,
    pub created_evals: Vec<Evaluation>,
    pub reblocked_evals: Vec<Evaluation>,
    /// Nodes the next plan is rejected on, whatever their fit (then forgotten).
    pub reject_nodes_once: BTreeSet<String>,
    /// Unix nanoseconds handed to the scheduler.
    pub now: i64,
    /// The seed of the last run (incremented before each).
    pub seed: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            now: 1_700_000_000_000_000_000,
            seed: 42,
            ..Harness::default()
        }
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Arc<dyn State> {
        Arc::new(self.state.clone())
    }

    /// Runs the scheduler on `eval` against the current state. Each run draws from the next
    /// seed, so IDs never repeat across runs.
    pub fn process(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        let state = self.snapshot();
        self.seed += 1;
        let mut ctx = SchedContext::new(self.now, self.seed);
        crate::process_eval(eval, state, self, &mut ctx)
    }

    /// The last eval written with `update_eval`.
    pub fn last_eval(&self) -> Option<&Evaluation> {
        self.evals.last()
    }

    /// Live (non-terminal) allocations of a job.
    pub fn live_allocs(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        let mut v: Vec<&Allocation> = self
            .state
            .allocs_by_job(namespace, job_id)
            .into_iter()
            .filter(|a| !a.terminal_status())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Sets the client status of an allocation (as a client update would).
    pub fn set_client_status(&mut self, alloc_id: &str, status: &str) {
        if let Some(a) = self.state.alloc(alloc_id) {
            let mut a = a.clone();
            a.client_status = status.to_owned();
            self.state.upsert_alloc(a);
        }
    }

    /// Applies the plan as the plan applier does; returns what was committed and whether
    /// nodes were rejected.
    fn apply(&mut self, plan: &Plan) -> (PlanResult, bool) {
        let mut node_ids: BTreeSet<&String> = plan.node_update.keys().collect();
        node_ids.extend(plan.node_allocation.keys());
        let mut rejected = BTreeSet::new();
        for node_id in &node_ids {
            if self.reject_nodes_once.contains(*node_id) || !self.node_fits(plan, node_id) {
                rejected.insert((*node_id).clone());
            }
        }
        self.reject_nodes_once.clear();
        let mut result = PlanResult::default();
        if plan.all_at_once && !rejected.is_empty() {
            result.refresh_index = self.state.index;
            return (result, true);
        }
        let index = self.state.next_index();
        result.alloc_index = index;
        for (node_id, stops) in &plan.node_update {
            if rejected.contains(node_id) {
                continue;
            }
            for s in stops {
                if let Some(existing) = self.state.alloc(&s.id) {
                    let mut a = existing.clone();
                    a.desired_status = s.desired_status.clone();
                    a.desired_description = s.desired_description.clone();
                    a.client_status = s.client_status.clone();
                    a.followup_eval_id = s.followup_eval_id.clone();
                    a.next_allocation = s.next_allocation.clone();
                    a.alloc_states = s.alloc_states.clone();
                    a.modify_time = self.now;
                    self.state.put_alloc(a, index);
                }
            }
            result.node_update.insert(node_id.clone(), stops.clone());
        }
        for (node_id, allocs) in &plan.node_allocation {
            if rejected.contains(node_id) {
                continue;
            }
            for a in allocs {
                let mut a = a.clone();
                if self.state.alloc(&a.id).is_none() {
                    a.create_index = index;
                }
                self.state.put_alloc(a, index);
            }
            result
                .node_allocation
                .insert(node_id.clone(), allocs.clone());
        }
        if let Some(d) = &plan.deployment {
            self.state.upsert_deployment(d.clone());
            result.deployment = Some(d.clone());
        }
        for u in &plan.deployment_updates {
            if let Some(d) = self.state.deployment(&u.deployment_id) {
                let mut d = d.clone();
                d.status = u.status.clone();
                d.status_description = u.status_description.clone();
                self.state.upsert_deployment(d);
            }
        }
        result.deployment_updates = plan.deployment_updates.clone();
        if !rejected.is_empty() {
            result.refresh_index = self.state.index;
        }
        (result, !rejected.is_empty())
    }

    /// Whether the node would fit everything the plan leaves and puts on it.
    fn node_fits(&self, plan: &Plan, node_id: &str) -> bool {
        let placing = plan.node_allocation.get(node_id);
        if placing.is_none_or(|p| p.is_empty()) {
            return true;
        }
        let Some(node) = self.state.node(node_id) else {
            return false;
        };
        let stopping: BTreeSet<&str> = plan
            .node_update
            .get(node_id)
            .into_iter()
            .flatten()
            .map(|a| a.id.as_str())
            .collect();
        let placed: BTreeSet<&str> = placing
            .into_iter()
            .flatten()
            .map(|a| a.id.as_str())
            .collect();
        let mut proposed: Vec<&Allocation> = self
            .state
            .allocs_by_node(node_id)
            .into_iter()
            .filter(|a| {
                !a.terminal_status()
                    && !stopping.contains(a.id.as_str())
                    && !placed.contains(a.id.as_str())
            })
            .collect();
        proposed.extend(placing.into_iter().flatten());
        allocs_fit(node, &proposed).is_ok()
    }
}

impl Planner for Harness {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedulerError> {
        let (result, refresh) = self.apply(&plan);
        self.plans.push(plan);
        self.results.push(PlanResult {
            node_update: Default::default(),
            node_allocation: Default::default(),
            deployment: result.deployment.clone(),
            deployment_updates: result.deployment_updates.clone(),
            refresh_index: result.refresh_index,
            alloc_index: result.alloc_index,
        });
        let state = refresh.then(|| self.snapshot());
        Ok((result, state))
    }

    fn update_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.evals.push(eval.clone());
        Ok(())
    }

    fn create_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.created_evals.push(eval.clone());
        Ok(())
    }

    fn reblock_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.reblocked_evals.push(eval.clone());
        Ok(())
    }
}

/// A ready, eligible node in `dc1`: 4000 MHz, 8 GiB, 100 GB disk, an `eth0` host network,
/// Linux, the `exec`, `raw_exec` and `mock_driver` drivers healthy.
pub fn mock_node(id: &str) -> Node {
    let drivers = ["exec", "raw_exec", "mock_driver"]
        .into_iter()
        .map(|d| {
            (
                d.to_owned(),
                DriverInfo {
                    detected: true,
                    healthy: true,
                    ..DriverInfo::default()
                },
            )
        })
        .collect();
    let mut node = Node {
        id: id.to_owned(),
        name: format!("node-{id}"),
        datacenter: "dc1".to_owned(),
        node_pool: "default".to_owned(),
        status: NODE_STATUS_READY.to_owned(),
        scheduling_eligibility: NODE_SCHEDULING_ELIGIBLE.to_owned(),
        attributes: Some(BTreeMap::from([
            ("kernel.name".to_owned(), "linux".to_owned()),
            ("os.name".to_owned(), "ubuntu".to_owned()),
            ("cpu.arch".to_owned(), "amd64".to_owned()),
            ("nomad.version".to_owned(), "1.9.0".to_owned()),
            ("unique.hostname".to_owned(), format!("host-{id}")),
        ])),
        meta: Some(BTreeMap::new()),
        drivers: Some(drivers),
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: 4000,
                ..NodeCpuResources::default()
            },
            memory: NodeMemoryResources { memory_mb: 8192 },
            disk: NodeDiskResources {
                disk_mb: 100 * 1024,
            },
            networks: Some(vec![NetworkResource {
                mode: "host".to_owned(),
                device: "eth0".to_owned(),
                ip: "192.168.0.100".to_owned(),
                cidr: "192.168.0.100/32".to_owned(),
                mbits: 1000,
                ..NetworkResource::default()
            }]),
            min_dynamic_port: 20000,
            max_dynamic_port: 32000,
            ..NodeResources::default()
        }),
        reserved_resources: Some(NodeReservedResources::default()),
        ..Node::default()
    };
    node.set_computed_class();
    node
}

/// A canonical service job `id` in `dc1`: one group `web` of 10 allocations, one `exec`
/// task asking 500 MHz and 256 MB, a 150 MB ephemeral disk.
pub fn mock_job(id: &str) -> Job {
    let mut job = Job {
        id: id.to_owned(),
        name: id.to_owned(),
        namespace: "default".to_owned(),
        r#type: JOB_TYPE_SERVICE.to_owned(),
        priority: 50,
        datacenters: Some(vec!["dc1".to_owned()]),
        task_groups: Some(vec![TaskGroup {
            name: "web".to_owned(),
            count: 10,
            ephemeral_disk: Some(caravan_structs::EphemeralDisk {
                size_mb: 150,
                ..Default::default()
            }),
            tasks: Some(vec![Task {
                name: "web".to_owned(),
                driver: "exec".to_owned(),
                config: Some(BTreeMap::from([(
                    "command".to_owned(),
                    serde_json::json!("/bin/date"),
                )])),
                resources: Some(Resources {
                    cpu: 500,
                    memory_mb: 256,
                    ..Resources::default()
                }),
                ..Task::default()
            }]),
            ..TaskGroup::default()
        }]),
        ..Job::default()
    };
    job.canonicalize();
    job
}

/// [`mock_job`] as a batch job.
pub fn mock_batch_job(id: &str) -> Job {
    typed_job(id, JOB_TYPE_BATCH)
}

/// [`mock_job`] as a system job (group count 1).
pub fn mock_system_job(id: &str) -> Job {
    typed_job(id, JOB_TYPE_SYSTEM)
}

/// [`mock_job`] as a sysbatch job (group count 1).
pub fn mock_sysbatch_job(id: &str) -> Job {
    typed_job(id, JOB_TYPE_SYSBATCH)
}

fn typed_job(id: &str, ty: &str) -> Job {
    let mut job = mock_job(id);
    job.r#type = ty.to_owned();
    job.update = Default::default();
    for tg in job.task_groups.iter_mut().flatten() {
        tg.update = None;
        tg.migrate = None;
        tg.reschedule_policy = None;
        tg.restart_policy = None;
        if ty == JOB_TYPE_SYSTEM || ty == JOB_TYPE_SYSBATCH {
            tg.count = 1;
        }
    }
    job.canonicalize();
    job
}

/// A pending eval for `job`.
pub fn mock_eval(job: &Job, id: &str) -> Evaluation {
    Evaluation {
        id: id.to_owned(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        r#type: job.r#type.clone(),
        triggered_by: eval_trigger::JOB_REGISTER.to_owned(),
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        status: EVAL_STATUS_PENDING.to_owned(),
        ..Evaluation::default()
    }
}

/// A running allocation of `job`'s first group on `node`, named with `index`.
pub fn mock_alloc(job: &Job, node: &Node, index: u64, id: &str) -> Allocation {
    let tg = job
        .task_groups
        .as_ref()
        .and_then(|g| g.first())
        .cloned()
        .unwrap_or_default();
    let tasks = tg
        .tasks
        .iter()
        .flatten()
        .map(|t| {
            let r = t.resources.clone().unwrap_or_default();
            (
                t.name.clone(),
                caravan_structs::AllocatedTaskResources {
                    cpu: caravan_structs::AllocatedCpuResources {
                        cpu_shares: r.cpu,
                        ..Default::default()
                    },
                    memory: caravan_structs::AllocatedMemoryResources {
                        memory_mb: r.memory_mb,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
        })
        .collect();
    Allocation {
        id: id.to_owned(),
        namespace: job.namespace.clone(),
        eval_id: "mock-eval".to_owned(),
        name: crate::util::alloc_name(&job.id, &tg.name, index),
        job_id: job.id.clone(),
        job_version: job.version,
        task_group: tg.name.clone(),
        node_id: node.id.clone(),
        node_name: node.name.clone(),
        desired_status: ALLOC_DESIRED_STATUS_RUN.to_owned(),
        client_status: ALLOC_CLIENT_STATUS_RUNNING.to_owned(),
        allocated_resources: Some(caravan_structs::AllocatedResources {
            tasks: Some(tasks),
            shared: caravan_structs::AllocatedSharedResources {
                disk_mb: tg.ephemeral_disk.as_ref().map_or(0, |d| d.size_mb),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Allocation::default()
    }
}

/// Pending client status (for tests that want a freshly placed look).
pub const PENDING: &str = ALLOC_CLIENT_STATUS_PENDING;
