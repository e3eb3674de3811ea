//! The allocation runner: one per allocation on this node. It owns the task runners, orders
//! them by lifecycle (prestart → main and sidecars → poststart → poststop), kills the group when
//! a task fails or the leader dies, stops it (with the shutdown delay) when the server asks,
//! derives `ClientStatus` and deployment health from the tasks and hands the client view to the
//! reporter. Its hooks into the service catalogue: group services register (and checks start)
//! before any task starts, task services follow their task's running state, and everything
//! deregisters before the shutdown delay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use caravan_drivers::{
    Driver, DriverError, DriverFingerprint, Drivers, HandleState, LogSettings, TaskConfig,
    TaskHandle, TaskResources, parse_signal,
};
use caravan_structs::{
    ALLOC_CLIENT_STATUS_COMPLETE, ALLOC_CLIENT_STATUS_FAILED, ALLOC_CLIENT_STATUS_PENDING,
    ALLOC_CLIENT_STATUS_RUNNING, AllocDeploymentStatus, Allocation, Job, Node, Task, TaskGroup,
    TaskState,
};
use futures::future::{BoxFuture, join_all};
use tokio::sync::{mpsc, oneshot, watch};

use super::checks::{AllocChecks, Restarter};
use super::dir::AllocDir;
use super::events::{self, STATE_DEAD, STATE_RUNNING};
use super::reporter::Reporter;
use super::restarts::RestartTracker;
use super::services::{AllocServices, ServiceClient, ServiceError};
use super::store::{LocalState, SavedTask};
use super::task::{Prepare, TaskObserver, TaskRunner, TaskSpec};
use crate::taskenv::{DEFAULT_ENV_DENYLIST, TaskDirs, TaskEnvBuilder, host_env};

/// What every allocation runner of the agent shares.
#[derive(Clone)]
pub struct RunnerContext {
    pub drivers: Drivers,
    /// The node as last fingerprinted: attributes and meta for interpolation.
    pub node: Arc<RwLock<Node>>,
    pub region: String,
    /// `<data_dir>/alloc`.
    pub alloc_base: PathBuf,
    pub local: LocalState,
    pub reporter: Reporter,
    /// Woken when an allocation turns terminal (the garbage collector looks then).
    pub terminal: Arc<tokio::sync::Notify>,
    pub gc: super::manager::GcLimits,
    /// The servers' service catalogue.
    pub services: ServiceClient,
}

/// How long a stop waits for the servers to drop its services before the shutdown delay; the
/// deregistration goes on retrying after.
const DEREGISTER_WAIT: Duration = Duration::from_secs(5);

/// Errors of lifecycle requests, with Nomad's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prestart { sidecar: bool },
    Main,
    Poststart { sidecar: bool },
    Poststop,
}

impl Kind {
    fn of(task: &Task) -> Kind {
        match task.lifecycle.as_ref() {
            Some(l) if l.hook == "prestart" => Kind::Prestart { sidecar: l.sidecar },
            Some(l) if l.hook == "poststart" => Kind::Poststart { sidecar: l.sidecar },
            Some(l) if l.hook == "poststop" => Kind::Poststop,
            _ => Kind::Main,
        }
    }

    fn sidecar(self) -> bool {
        matches!(
            self,
            Kind::Prestart { sidecar: true } | Kind::Poststart { sidecar: true }
        )
    }

    /// Whether a successful exit ends the task rather than being restarted.
    fn done_on_success(self, job_type: &str) -> bool {
        match self {
            Kind::Main => job_type == "batch" || job_type == "sysbatch",
            k => !k.sidecar(),
        }
    }
}

struct Entry {
    runner: Arc<TaskRunner>,
    kind: Kind,
    leader: bool,
    shutdown_delay: Duration,
    /// The lifecycle gate was opened (the task was told it may start).
    opened: AtomicBool,
}

enum Command {
    Update(Box<Allocation>),
    /// Stop as if the server had asked (the allocation is gone from the server).
    Stop,
    Restart {
        task: String,
        all: bool,
        done: oneshot::Sender<Result<(), RequestError>>,
    },
    Signal {
        task: String,
        signal: String,
        done: oneshot::Sender<Result<(), RequestError>>,
    },
}

/// The outside handle on an allocation runner.
pub struct AllocRunner {
    pub id: String,
    commands: mpsc::UnboundedSender<Command>,
    view: watch::Receiver<Allocation>,
    dir: AllocDir,
    /// When the allocation became terminal on this node (for garbage collection order).
    terminal_since: Arc<Mutex<Option<Instant>>>,
    /// The group's tasks as placed (names, drivers, log settings).
    tasks: Vec<Task>,
    /// The task runners (their handles, for stats).
    task_runners: Vec<Arc<TaskRunner>>,
    checks: Arc<AllocChecks>,
}

impl AllocRunner {
    /// Starts a runner for `alloc` (which carries its job). `restored` holds the task states
    /// and handles of a previous agent process.
    pub fn spawn(
        ctx: RunnerContext,
        alloc: Allocation,
        restored: BTreeMap<String, SavedTask>,
    ) -> Result<AllocRunner, String> {
        let job = alloc
            .job
            .clone()
            .ok_or_else(|| format!("allocation {} arrived without its job", alloc.id))?;
        let group = job
            .task_groups
            .iter()
            .flatten()
            .find(|g| g.name == alloc.task_group)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "allocation {}: group {:?} is not in its job",
                    alloc.id, alloc.task_group
                )
            })?;
        let dir = AllocDir::new(&ctx.alloc_base, &alloc.id);
        if let Err(e) = ctx.local.save_alloc(&alloc) {
            tracing::warn!(alloc_id = %alloc.id, error = %e, "cannot persist the allocation");
        }
        let shared_alloc = Arc::new(RwLock::new(Arc::new(alloc.clone())));
        let services = AllocServices::new(
            ctx.services.clone(),
            shared_alloc.clone(),
            ctx.node.clone(),
            ctx.region.clone(),
        );
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let observer = Arc::new(Observer {
            alloc_id: alloc.id.clone(),
            local: ctx.local.clone(),
            changes: changes_tx,
            services: services.clone(),
        });
        let mut entries = Vec::new();
        for task in group.tasks.iter().flatten() {
            let kind = Kind::of(task);
            let driver = ctx
                .drivers
                .get(&task.driver)
                .unwrap_or_else(|| Arc::new(MissingDriver(task.driver.clone())));
            let policy = task
                .restart_policy
                .clone()
                .or_else(|| group.restart_policy.clone())
                .unwrap_or_default();
            let kill_signal = if task.kill_signal.is_empty() {
                nix_sigint()
            } else {
                parse_signal(&task.kill_signal).unwrap_or_else(|_| nix_sigint())
            };
            let spec = TaskSpec {
                name: task.name.clone(),
                driver,
                restart: RestartTracker::new(policy, kind.done_on_success(&job.r#type)),
                kill_timeout: Duration::from_nanos(task.kill_timeout.max(0) as u64),
                kill_signal,
            };
            let prepare = prepare_fn(&ctx, shared_alloc.clone(), dir.clone(), task.name.clone());
            let restored_task = restored
                .get(&task.name)
                .map(|s| (s.state.clone(), s.handle.clone()));
            let runner = TaskRunner::spawn(spec, prepare, observer.clone(), restored_task);
            entries.push(Entry {
                runner: Arc::new(runner),
                kind,
                leader: task.leader,
                shutdown_delay: Duration::from_nanos(task.shutdown_delay.max(0) as u64),
                opened: AtomicBool::new(
                    restored
                        .get(&task.name)
                        .is_some_and(|s| s.handle.is_some() || s.state.state == STATE_DEAD),
                ),
            });
        }
        let group_tasks = group.tasks.clone().unwrap_or_default();
        let task_runners = entries.iter().map(|e| e.runner.clone()).collect();
        let (view_tx, view_rx) = watch::channel(client_view(&alloc, &entries, None));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let terminal_since = Arc::new(Mutex::new(None));
        let health = HealthTracker::new(&alloc, &group);
        let entries = Arc::new(entries);
        let checks = Arc::new(AllocChecks::new(Arc::new(CheckRestarter {
            entries: entries.clone(),
        })));
        let lp = Loop {
            ctx,
            alloc: shared_alloc,
            group,
            entries,
            services,
            checks: checks.clone(),
            prerun: None,
            prerun_done: false,
            changes: changes_rx,
            commands: cmd_rx,
            view: view_tx,
            stopping: false,
            main_dead_handled: false,
            poststop_opened: false,
            health,
            terminal_since: terminal_since.clone(),
        };
        let id = alloc.id.clone();
        tokio::spawn(lp.run());
        Ok(AllocRunner {
            id,
            commands: cmd_tx,
            view: view_rx,
            dir,
            terminal_since,
            tasks: group_tasks,
            task_runners,
            checks,
        })
    }

    /// The latest client view (status, task states).
    pub fn view(&self) -> Allocation {
        self.view.borrow().clone()
    }

    pub fn dir(&self) -> &AllocDir {
        &self.dir
    }

    /// A task of the allocation's group, as placed.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Each task's name and, while it runs, its driver handle.
    pub fn task_handles(&self) -> Vec<(String, Option<Arc<dyn TaskHandle>>)> {
        self.task_runners
            .iter()
            .map(|r| (r.name.clone(), r.handle()))
            .collect()
    }

    pub fn terminal_since(&self) -> Option<Instant> {
        self.terminal_since.lock().ok().and_then(|t| *t)
    }

    /// The latest result of each of the allocation's service checks, by check ID.
    pub fn check_results(&self) -> BTreeMap<String, caravan_structs::CheckQueryResult> {
        self.checks.results()
    }

    /// A newer version of the allocation from the server.
    pub fn update(&self, alloc: Allocation) {
        let _ = self.commands.send(Command::Update(Box::new(alloc)));
    }

    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    pub async fn restart(&self, task: String, all: bool) -> Result<(), RequestError> {
        let (done, wait) = oneshot::channel();
        let _ = self.commands.send(Command::Restart { task, all, done });
        wait.await
            .unwrap_or_else(|_| Err(RequestError::Failed("allocation runner stopped".into())))
    }

    pub async fn signal(&self, task: String, signal: String) -> Result<(), RequestError> {
        let (done, wait) = oneshot::channel();
        let _ = self.commands.send(Command::Signal { task, signal, done });
        wait.await
            .unwrap_or_else(|_| Err(RequestError::Failed("allocation runner stopped".into())))
    }

    /// Waits until every task is dead (e.g. before removing the directory).
    pub async fn wait_terminal(&self) {
        let mut view = self.view.clone();
        let _ = view
            .wait_for(|a| is_terminal_status(&a.client_status))
            .await;
    }
}

fn nix_sigint() -> i32 {
    parse_signal("SIGINT").unwrap_or(2)
}

pub fn is_terminal_status(status: &str) -> bool {
    status == ALLOC_CLIENT_STATUS_COMPLETE || status == ALLOC_CLIENT_STATUS_FAILED
}

/// A task whose driver this node does not have: it fails at start, without restarts.
struct MissingDriver(String);

impl Driver for MissingDriver {
    fn name(&self) -> &'static str {
        "missing"
    }
    fn fingerprint(&self) -> DriverFingerprint {
        DriverFingerprint::undetected("not available")
    }
    fn validate(&self, _: &serde_json::Map<String, serde_json::Value>) -> Result<(), DriverError> {
        Err(DriverError::Config(format!(
            "driver {:?} is not available on this node",
            self.0
        )))
    }
    fn start(&self, _: TaskConfig) -> BoxFuture<'_, Result<Arc<dyn TaskHandle>, DriverError>> {
        let err = DriverError::Config(format!("driver {:?} is not available", self.0));
        Box::pin(async move { Err(err) })
    }
    fn recover(&self, _: &HandleState) -> Result<Arc<dyn TaskHandle>, DriverError> {
        Err(DriverError::Recover(format!(
            "driver {:?} is not available",
            self.0
        )))
    }
}

struct Observer {
    alloc_id: String,
    local: LocalState,
    changes: mpsc::UnboundedSender<()>,
    services: Arc<AllocServices>,
}

impl TaskObserver for Observer {
    fn changed(&self, task: &str, state: &TaskState, handle: Option<&HandleState>) {
        // Poststart / exited: the task's services follow whether it runs.
        self.services.task_changed(task, state);
        if let Err(e) = self.local.save_task(&self.alloc_id, task, state, handle) {
            tracing::warn!(alloc_id = %self.alloc_id, task, error = %e, "cannot persist the task state");
        }
        let _ = self.changes.send(());
    }
}

/// Writes a dispatched job's payload to the task's `dispatch_payload { file }` under `local/`
/// (Nomad's dispatch hook). A path that leaves `local/` is refused.
fn write_dispatch_payload(job: &Job, task: &Task, task_dir: &Path) -> Result<(), String> {
    let Some(file) = task
        .dispatch_payload
        .as_ref()
        .map(|d| d.file.as_str())
        .filter(|f| !f.is_empty())
    else {
        return Ok(());
    };
    let relative = Path::new(file);
    let confined = relative.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !confined {
        return Err(format!(
            "dispatch_payload file {file:?} escapes the task's local directory"
        ));
    }
    use base64::Engine as _;
    let payload = match job.payload.as_deref() {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the job's dispatch payload is not base64: {e}"))?,
        None => Vec::new(),
    };
    let path = task_dir.join("local").join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&path, payload).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Builds the task's directories, environment and driver config for each start.
fn prepare_fn(
    ctx: &RunnerContext,
    alloc: Arc<RwLock<Arc<Allocation>>>,
    dir: AllocDir,
    task_name: String,
) -> Prepare {
    let ctx = ctx.clone();
    Arc::new(move || {
        let alloc = alloc
            .read()
            .map(|a| a.clone())
            .map_err(|_| "allocation state poisoned".to_owned())?;
        let job: &Job = alloc.job.as_ref().ok_or("allocation without job")?;
        let group: &TaskGroup = job
            .task_groups
            .iter()
            .flatten()
            .find(|g| g.name == alloc.task_group)
            .ok_or("group not in job")?;
        let task: &Task = group
            .tasks
            .iter()
            .flatten()
            .find(|t| t.name == task_name)
            .ok_or("task not in group")?;
        dir.build()
            .map_err(|e| format!("cannot build the allocation directory: {e}"))?;
        let task_dir = dir
            .build_task(&task.name)
            .map_err(|e| format!("cannot build the task directory: {e}"))?;
        write_dispatch_payload(job, task, &task_dir)?;
        let isolated = task.driver == caravan_drivers::exec::NAME;
        let dirs = if isolated {
            TaskDirs {
                alloc_dir: "/alloc".to_owned(),
                task_dir: "/local".to_owned(),
                secrets_dir: "/secrets".to_owned(),
                tmp_dir: "/tmp".to_owned(),
            }
        } else {
            let s = |p: PathBuf| p.to_string_lossy().into_owned();
            TaskDirs {
                alloc_dir: s(dir.shared()),
                task_dir: s(task_dir.join("local")),
                secrets_dir: s(task_dir.join("secrets")),
                tmp_dir: s(task_dir.join("tmp")),
            }
        };
        let node = ctx
            .node
            .read()
            .map(|n| n.clone())
            .map_err(|_| "node state poisoned".to_owned())?;
        let env = TaskEnvBuilder::new(&alloc, job, group, task, &node, &ctx.region)
            .dirs(&dirs)
            .host_env(agent_env())
            .build();
        let config = task
            .config
            .as_ref()
            .map(|c| env.interpolate_config(c).into_iter().collect())
            .unwrap_or_default();
        let log_config = task.log_config.clone().unwrap_or_default();
        let resources = alloc
            .allocated_resources
            .as_ref()
            .and_then(|r| r.tasks.as_ref())
            .and_then(|t| t.get(&task.name));
        Ok(TaskConfig {
            alloc_id: alloc.id.clone(),
            task_name: task.name.clone(),
            config,
            env: env.env().clone(),
            alloc_dir: dir.root().to_owned(),
            task_dir,
            logs: LogSettings {
                dir: dir.logs(),
                max_files: u32::try_from(log_config.max_files.max(1)).unwrap_or(10),
                max_file_bytes: u64::try_from(log_config.max_file_size_mb.max(1))
                    .unwrap_or(10)
                    .saturating_mul(1024 * 1024),
                disabled: log_config.disabled,
            },
            run_dir: ctx.local.run_dir(&alloc.id, &task.name),
            resources: TaskResources {
                cpu_shares: resources
                    .map(|r| u64::try_from(r.cpu.cpu_shares).unwrap_or(0))
                    .unwrap_or(0),
                memory_mb: resources
                    .map(|r| u64::try_from(r.memory.memory_mb).unwrap_or(0))
                    .unwrap_or(0),
                memory_max_mb: resources
                    .map(|r| u64::try_from(r.memory.memory_max_mb).unwrap_or(0))
                    .unwrap_or(0),
            },
            user: task.user.clone(),
        })
    })
}

/// The agent's environment passed on to tasks, as Nomad does, minus Nomad's deny list and the
/// agent's own settings (which may hold a database URL).
fn agent_env() -> BTreeMap<String, String> {
    host_env(DEFAULT_ENV_DENYLIST)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("CARAVAN_") && !k.starts_with("NOMAD_"))
        .collect()
}

/// Deployment health of the allocation (`update` block): healthy once every main task has run
/// for `min_healthy_time`, unhealthy if a task fails or `healthy_deadline` passes first.
struct HealthTracker {
    enabled: bool,
    min_healthy: Duration,
    deadline: Option<Instant>,
    running_since: Option<Instant>,
    result: Option<bool>,
    canary: bool,
}

impl HealthTracker {
    fn new(alloc: &Allocation, group: &TaskGroup) -> HealthTracker {
        let update = group.update.as_ref();
        let known = alloc.deployment_status.as_ref().and_then(|d| d.healthy);
        let enabled = !alloc.deployment_id.is_empty()
            && update.is_some_and(|u| u.health_check != "manual")
            && known.is_none();
        let min_healthy = Duration::from_nanos(
            update
                .map(|u| u.min_healthy_time.max(0) as u64)
                .unwrap_or(0),
        );
        let deadline = update
            .map(|u| u.healthy_deadline)
            .filter(|d| *d > 0)
            .map(|d| Instant::now() + Duration::from_nanos(d as u64));
        HealthTracker {
            enabled,
            min_healthy,
            deadline,
            running_since: None,
            result: known,
            canary: alloc.deployment_status.as_ref().is_some_and(|d| d.canary),
        }
    }

    /// Re-evaluates; returns when to look again.
    fn observe(&mut self, main: &[TaskState], now: Instant) -> Option<Instant> {
        if !self.enabled || self.result.is_some() {
            return None;
        }
        if main.iter().any(|s| s.failed) {
            self.result = Some(false);
            return None;
        }
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            self.result = Some(false);
            return None;
        }
        let all_running = !main.is_empty() && main.iter().all(|s| s.state == STATE_RUNNING);
        if !all_running {
            self.running_since = None;
            return self.deadline;
        }
        let since = *self.running_since.get_or_insert(now);
        if now.duration_since(since) >= self.min_healthy {
            self.result = Some(true);
            return None;
        }
        let at = since + self.min_healthy;
        Some(self.deadline.map_or(at, |d| d.min(at)))
    }

    fn status(&self) -> Option<AllocDeploymentStatus> {
        self.result.map(|healthy| AllocDeploymentStatus {
            canary: self.canary,
            healthy: Some(healthy),
            modify_index: 0,
            timestamp: events::now(),
        })
    }
}

/// Restarts tasks for `check_restart`: one task, or every running task for a group service.
struct CheckRestarter {
    entries: Arc<Vec<Entry>>,
}

impl Restarter for CheckRestarter {
    fn restart(&self, task: Option<String>, reason: String) -> BoxFuture<'static, ()> {
        let entries = self.entries.clone();
        Box::pin(async move {
            let targets = entries.iter().filter(|e| {
                task.as_ref().is_none_or(|t| *t == e.runner.name)
                    && e.runner.state().state == STATE_RUNNING
            });
            join_all(targets.map(|e| e.runner.check_restart(reason.clone()))).await;
        })
    }
}

struct Loop {
    ctx: RunnerContext,
    alloc: Arc<RwLock<Arc<Allocation>>>,
    group: TaskGroup,
    entries: Arc<Vec<Entry>>,
    services: Arc<AllocServices>,
    checks: Arc<AllocChecks>,
    /// The group services' registration, until it answers.
    prerun: Option<oneshot::Receiver<Result<(), ServiceError>>>,
    /// Group services are registered and checks started: tasks may start.
    prerun_done: bool,
    changes: mpsc::UnboundedReceiver<()>,
    commands: mpsc::UnboundedReceiver<Command>,
    view: watch::Sender<Allocation>,
    stopping: bool,
    main_dead_handled: bool,
    poststop_opened: bool,
    health: HealthTracker,
    terminal_since: Arc<Mutex<Option<Instant>>>,
}

fn client_view(
    alloc: &Allocation,
    entries: &[Entry],
    deployment: Option<AllocDeploymentStatus>,
) -> Allocation {
    let states: BTreeMap<String, TaskState> = entries
        .iter()
        .map(|e| (e.runner.name.clone(), e.runner.state()))
        .collect();
    let (status, description) = client_status(&states);
    Allocation {
        id: alloc.id.clone(),
        client_status: status.to_owned(),
        client_description: description.to_owned(),
        task_states: Some(states),
        deployment_status: deployment.or_else(|| alloc.deployment_status.clone()),
        ..Allocation::default()
    }
}

/// Nomad's rule: any failed task fails the allocation; else running, pending, complete.
pub fn client_status(states: &BTreeMap<String, TaskState>) -> (&'static str, &'static str) {
    let (mut pending, mut running, mut dead, mut failed) = (false, false, false, false);
    for s in states.values() {
        match s.state.as_str() {
            STATE_RUNNING => running = true,
            STATE_DEAD if s.failed => failed = true,
            STATE_DEAD => dead = true,
            _ => pending = true,
        }
    }
    if failed {
        (ALLOC_CLIENT_STATUS_FAILED, "Failed tasks")
    } else if running {
        (ALLOC_CLIENT_STATUS_RUNNING, "Tasks are running")
    } else if pending {
        (ALLOC_CLIENT_STATUS_PENDING, "No tasks have started")
    } else if dead {
        (ALLOC_CLIENT_STATUS_COMPLETE, "All tasks have completed")
    } else {
        (ALLOC_CLIENT_STATUS_PENDING, "")
    }
}

fn should_stop(alloc: &Allocation) -> bool {
    alloc.desired_status == caravan_structs::ALLOC_DESIRED_STATUS_STOP
        || alloc.desired_status == caravan_structs::ALLOC_DESIRED_STATUS_EVICT
}

impl Loop {
    fn current_alloc(&self) -> Arc<Allocation> {
        self.alloc
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    async fn run(mut self) {
        let initial = self.current_alloc();
        if should_stop(&initial) {
            self.begin_stop(&initial);
        } else {
            // Prerun: the group's services register before any task starts.
            let (tx, rx) = oneshot::channel();
            let services = self.services.clone();
            tokio::spawn(async move {
                let _ = tx.send(services.register_group().await);
            });
            self.prerun = Some(rx);
        }
        let mut recheck: Option<Instant> = None;
        loop {
            let next = self.coordinate();
            recheck = next.or(recheck.filter(|r| *r > Instant::now()));
            let sleep = async {
                match recheck {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => futures::future::pending().await,
                }
            };
            let prerun = async {
                match self.prerun.as_mut() {
                    Some(rx) => rx.await.unwrap_or(Err(ServiceError::WorkerGone)),
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                result = prerun => {
                    self.prerun = None;
                    self.prerun_finished(result);
                }
                change = self.changes.recv() => {
                    if change.is_none() { return; }
                    // Coalesce a burst of task changes into one pass.
                    while self.changes.try_recv().is_ok() {}
                }
                cmd = self.commands.recv() => match cmd {
                    None => return,
                    Some(cmd) => self.handle(cmd).await,
                },
                () = sleep => { recheck = None; }
            }
        }
    }

    /// The group services answered: start the checks and open the gates, or fail every task
    /// as Nomad does when an allocation's prerun fails.
    fn prerun_finished(&mut self, result: Result<(), ServiceError>) {
        if self.stopping {
            return;
        }
        match result {
            Ok(()) => {
                self.prerun_done = true;
                self.sync_checks();
            }
            Err(e) => {
                let alloc_id = self.current_alloc().id.clone();
                tracing::error!(alloc_id, error = %e, "prerun failed");
                self.stopping = true;
                drop(self.prekill());
                let reason = format!("failed to setup alloc: {e}");
                let entries = self.entries.clone();
                tokio::spawn(async move {
                    kill_in_order(&entries, |_| Some(events::setup_failure(&reason))).await;
                });
            }
        }
    }

    fn sync_checks(&self) {
        let alloc = self.current_alloc();
        if let Ok(node) = self.ctx.node.read() {
            self.checks.sync(&alloc, &node, &self.ctx.region);
        }
    }

    /// Nomad's PreKill: checks stop (no restart after this) and every service deregisters.
    /// The receiver resolves once the servers answered.
    fn prekill(&self) -> oneshot::Receiver<()> {
        self.checks.stop();
        self.services.deregister_all()
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Update(alloc) => {
                let alloc = Arc::new(*alloc);
                if let Err(e) = self.ctx.local.save_alloc(&alloc) {
                    tracing::warn!(alloc_id = %alloc.id, error = %e, "cannot persist the allocation");
                }
                if let Ok(mut slot) = self.alloc.write() {
                    *slot = alloc.clone();
                }
                if should_stop(&alloc) && !self.stopping {
                    self.begin_stop(&alloc);
                } else if !self.stopping && self.prerun_done {
                    self.services.update();
                    self.sync_checks();
                }
            }
            Command::Stop => {
                let mut alloc = (*self.current_alloc()).clone();
                alloc.desired_status = caravan_structs::ALLOC_DESIRED_STATUS_STOP.to_owned();
                if let Ok(mut slot) = self.alloc.write() {
                    *slot = Arc::new(alloc.clone());
                }
                if !self.stopping {
                    self.begin_stop(&alloc);
                }
            }
            Command::Restart { task, all, done } => {
                let _ = done.send(self.restart(task, all).await);
            }
            Command::Signal { task, signal, done } => {
                let _ = done.send(self.signal(task, signal).await);
            }
        }
    }

    fn terminal(&self) -> bool {
        let alloc = self.current_alloc();
        should_stop(&alloc) || is_terminal_status(&self.view.borrow().client_status)
    }

    async fn restart(&self, task: String, all: bool) -> Result<(), RequestError> {
        if all && !task.is_empty() {
            return Err(RequestError::BadRequest(
                "task name cannot be set when restarting all tasks".to_owned(),
            ));
        }
        if self.terminal() {
            return Err(RequestError::BadRequest(
                "restart of an alloc that should not run".to_owned(),
            ));
        }
        if !task.is_empty() {
            let entry = self
                .entries
                .iter()
                .find(|e| e.runner.name == task)
                .ok_or_else(|| {
                    RequestError::NotFound(format!("Could not find task runner for task: {task}"))
                })?;
            if entry.runner.state().state != STATE_RUNNING {
                return Err(RequestError::BadRequest(format!(
                    "failed to restart task {task}: Task not running"
                )));
            }
            return entry
                .runner
                .restart(false)
                .await
                .map_err(|e| RequestError::Failed(format!("failed to restart task {task}: {e}")));
        }
        let restarts = self.entries.iter().map(|e| async move {
            e.runner
                .restart(all)
                .await
                .map_err(|err| format!("failed to restart task {}: {err}", e.runner.name))
        });
        let errors: Vec<String> = join_all(restarts)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RequestError::Failed(errors.join("\n")))
        }
    }

    async fn signal(&self, task: String, signal: String) -> Result<(), RequestError> {
        let number = parse_signal(&signal).map_err(|e| RequestError::BadRequest(e.to_string()))?;
        if self.terminal() {
            return Err(RequestError::BadRequest(
                "signal of an alloc that is not running".to_owned(),
            ));
        }
        if !task.is_empty() {
            let entry = self
                .entries
                .iter()
                .find(|e| e.runner.name == task)
                .ok_or_else(|| RequestError::NotFound("Task not found".to_owned()))?;
            return entry
                .runner
                .signal(number)
                .await
                .map_err(|e| RequestError::BadRequest(e.to_string()));
        }
        let running: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.runner.state().state == STATE_RUNNING)
            .collect();
        if running.is_empty() {
            return Err(RequestError::BadRequest("no task is running".to_owned()));
        }
        let results = join_all(running.iter().map(|e| async move {
            e.runner
                .signal(number)
                .await
                .map_err(|err| format!("Failed to signal task: {}, err: {err}", e.runner.name))
        }))
        .await;
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RequestError::Failed(errors.join("\n")))
        }
    }

    /// Stops the allocation as the server asked: the shutdown delay, then the leader, the
    /// other tasks, and the sidecars last.
    fn begin_stop(&mut self, alloc: &Allocation) {
        self.stopping = true;
        let skip_delay = alloc.desired_transition.no_shutdown_delay == Some(true);
        let group_delay =
            Duration::from_nanos(self.group.shutdown_delay.unwrap_or(0).max(0) as u64);
        let entries = self.entries.clone();
        let deregistered = self.prekill();
        tokio::spawn(async move {
            // Services leave the catalogue before the delay, so clients stop using them.
            let _ = tokio::time::timeout(DEREGISTER_WAIT, deregistered).await;
            let delay = if skip_delay {
                Duration::ZERO
            } else {
                entries
                    .iter()
                    .filter(|e| e.runner.state().state == STATE_RUNNING)
                    .map(|e| e.shutdown_delay)
                    .max()
                    .unwrap_or_default()
                    .max(group_delay)
            };
            if !delay.is_zero() {
                for e in entries
                    .iter()
                    .filter(|e| e.runner.state().state == STATE_RUNNING)
                {
                    e.runner.send(super::task::TaskCommand::Event(
                        events::waiting_shutdown_delay(delay),
                    ));
                }
                tokio::time::sleep(delay).await;
            }
            kill_in_order(&entries, |_| None).await;
        });
    }

    /// One pass over the tasks: opens lifecycle gates, reacts to failures and the leader, and
    /// publishes the client view. Returns when to look again (deployment health).
    fn coordinate(&mut self) -> Option<Instant> {
        let states: Vec<TaskState> = self.entries.iter().map(|e| e.runner.state()).collect();
        let dead = |i: usize| states[i].state == STATE_DEAD;
        if !self.stopping {
            if let Some(i) = (0..states.len()).find(|&i| dead(i) && states[i].failed) {
                self.stopping = true;
                drop(self.prekill());
                let failed = self.entries[i].runner.name.clone();
                let entries = self.entries.clone();
                tokio::spawn(async move {
                    kill_in_order(&entries, |_| Some(events::sibling_failed(&failed))).await;
                });
            } else if let Some(_i) = (0..states.len()).find(|&i| dead(i) && self.entries[i].leader)
            {
                self.stopping = true;
                drop(self.prekill());
                let entries = self.entries.clone();
                tokio::spawn(async move {
                    kill_in_order(&entries, |_| Some(events::leader_dead())).await;
                });
            }
        }
        if !self.stopping && self.prerun_done {
            self.open_gates(&states);
        }
        let main: Vec<usize> = (0..states.len())
            .filter(|&i| self.entries[i].kind == Kind::Main)
            .collect();
        let main_dead = !main.is_empty() && main.iter().all(|&i| dead(i));
        if main_dead && !self.main_dead_handled && !self.stopping {
            self.main_dead_handled = true;
            let entries = self.entries.clone();
            tokio::spawn(async move {
                let sidecars = entries
                    .iter()
                    .filter(|e| e.kind.sidecar() && e.runner.state().state != STATE_DEAD);
                join_all(sidecars.map(|e| e.runner.kill(Some(events::main_tasks_dead())))).await;
            });
        }
        // Poststop tasks run once everything else is dead.
        let others_dead = (0..states.len())
            .filter(|&i| self.entries[i].kind != Kind::Poststop)
            .all(dead);
        if others_dead && !self.poststop_opened && (self.stopping || main_dead) {
            self.poststop_opened = true;
            for e in self.entries.iter().filter(|e| e.kind == Kind::Poststop) {
                e.runner.send(super::task::TaskCommand::Start);
            }
        }
        let main_states: Vec<TaskState> = main.iter().map(|&i| states[i].clone()).collect();
        let recheck = self.health.observe(&main_states, Instant::now());
        let alloc = self.current_alloc();
        let view = client_view(&alloc, &self.entries, self.health.status());
        let (changed, status_changed) = {
            let old = self.view.borrow();
            let status_changed = old.client_status != view.client_status;
            (
                status_changed
                    || old.task_states != view.task_states
                    || old.deployment_status != view.deployment_status,
                status_changed,
            )
        };
        if is_terminal_status(&view.client_status)
            && let Ok(mut t) = self.terminal_since.lock()
            && t.is_none()
        {
            // Postrun: nothing of a finished allocation stays in the catalogue.
            drop(self.prekill());
            *t = Some(Instant::now());
            self.ctx.terminal.notify_one();
        }
        if changed {
            self.ctx.reporter.report(view.clone(), status_changed);
            self.view.send_replace(view);
        }
        recheck
    }

    fn open_gates(&self, states: &[TaskState]) {
        let prestart_done = self.entries.iter().zip(states).all(|(e, s)| match e.kind {
            Kind::Prestart { sidecar: false } => s.state == STATE_DEAD && !s.failed,
            Kind::Prestart { sidecar: true } => s.state == STATE_RUNNING,
            _ => true,
        });
        let main_started = self
            .entries
            .iter()
            .zip(states)
            .filter(|(e, _)| e.kind == Kind::Main)
            .all(|(_, s)| !s.started_at.is_zero());
        for e in self.entries.iter() {
            let open = match e.kind {
                Kind::Prestart { .. } => true,
                Kind::Main => prestart_done,
                Kind::Poststart { .. } => prestart_done && main_started,
                Kind::Poststop => false,
            };
            if open && !e.opened.swap(true, Ordering::SeqCst) {
                e.runner.send(super::task::TaskCommand::Start);
            }
        }
    }
}

/// Kills the leader first, then the other tasks, then the sidecars (poststop tasks are not
/// killed: they run after). `reason` gives the event each task records first.
async fn kill_in_order(
    entries: &[Entry],
    reason: impl Fn(&Entry) -> Option<caravan_structs::TaskEvent>,
) {
    let alive = |e: &&Entry| e.kind != Kind::Poststop && e.runner.state().state != STATE_DEAD;
    let leaders: Vec<&Entry> = entries.iter().filter(alive).filter(|e| e.leader).collect();
    join_all(leaders.iter().map(|e| e.runner.kill(reason(e)))).await;
    let others: Vec<&Entry> = entries
        .iter()
        .filter(alive)
        .filter(|e| !e.kind.sidecar())
        .collect();
    join_all(others.iter().map(|e| e.runner.kill(reason(e)))).await;
    let sidecars: Vec<&Entry> = entries.iter().filter(alive).collect();
    join_all(sidecars.iter().map(|e| e.runner.kill(reason(e)))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str, failed: bool) -> TaskState {
        TaskState {
            state: state.to_owned(),
            failed,
            ..TaskState::default()
        }
    }

    #[test]
    fn client_status_follows_nomad() {
        let m = |v: Vec<TaskState>| -> BTreeMap<String, TaskState> {
            v.into_iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), s))
                .collect()
        };
        assert_eq!(
            client_status(&m(vec![st("running", false), st("dead", true)])).0,
            "failed"
        );
        assert_eq!(
            client_status(&m(vec![st("running", false), st("pending", false)])).0,
            "running"
        );
        assert_eq!(client_status(&m(vec![st("pending", false)])).0, "pending");
        assert_eq!(
            client_status(&m(vec![st("dead", false), st("dead", false)])),
            ("complete", "All tasks have completed")
        );
    }
}
