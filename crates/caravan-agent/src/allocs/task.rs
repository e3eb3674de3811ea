//! The task runner: one per task of an allocation. It builds the task's directory and
//! environment, starts the task through its driver once the allocation runner opens its gate,
//! follows it, applies the restart policy, and handles kill, restart and signal requests —
//! recording every step as Nomad's task states and events.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caravan_drivers::signals::signal_name;
use caravan_drivers::{Driver, DriverError, ExitResult, HandleState, TaskConfig, TaskHandle};
use caravan_structs::TaskState;
use tokio::sync::{mpsc, oneshot};

use super::events::{self, STATE_DEAD, STATE_PENDING, STATE_RUNNING};
use super::restarts::{Decision, Outcome, RestartTracker};

/// What the allocation runner asks of a task.
pub enum TaskCommand {
    /// Open the gate: the task may start (lifecycle ordering).
    Start,
    /// Stop the task for good. `reason` is emitted first (e.g. `Sibling Task Failed`).
    Kill {
        reason: Option<caravan_structs::TaskEvent>,
        done: oneshot::Sender<()>,
    },
    /// Restart in place; `force` also restarts a task that already finished.
    Restart {
        force: bool,
        done: oneshot::Sender<Result<(), String>>,
    },
    Signal {
        signal: i32,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Restart a running task because a check failed (`check_restart`): recorded as
    /// `Restart Signaled` with `reason` and counted as a failure against the restart policy.
    CheckRestart {
        reason: String,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Record an event (e.g. `Waiting for shutdown delay`).
    Event(caravan_structs::TaskEvent),
}

/// How a task is prepared for each start: built fresh every time, since a restart re-reads
/// the environment (ports, node attributes) like Nomad's prestart hooks.
pub type Prepare = Arc<dyn Fn() -> Result<TaskConfig, String> + Send + Sync>;

/// What the runner reports back: every state change (to persist and report) and its handle.
pub trait TaskObserver: Send + Sync {
    fn changed(&self, task: &str, state: &TaskState, handle: Option<&HandleState>);
}

/// The settings that decide a task's life.
#[derive(Clone)]
pub struct TaskSpec {
    pub name: String,
    pub driver: Arc<dyn Driver>,
    pub restart: RestartTracker,
    pub kill_timeout: Duration,
    pub kill_signal: i32,
}

/// A handle on a running task runner.
pub struct TaskRunner {
    pub name: String,
    commands: mpsc::UnboundedSender<TaskCommand>,
    state: Arc<Mutex<TaskState>>,
    /// The running task's handle, as of the latest state change (stats).
    handle: Arc<Mutex<Option<Arc<dyn TaskHandle>>>>,
}

impl TaskRunner {
    /// Starts the runner. `restored` is the state and handle a previous agent process left;
    /// with a handle the runner re-attaches to the running task.
    pub fn spawn(
        spec: TaskSpec,
        prepare: Prepare,
        observer: Arc<dyn TaskObserver>,
        restored: Option<(TaskState, Option<HandleState>)>,
    ) -> TaskRunner {
        let (tx, rx) = mpsc::unbounded_channel();
        let (state, handle) = match restored {
            Some((state, handle)) => (state, handle),
            None => {
                let mut s = events::new_state();
                events::push(&mut s, events::received());
                (s, None)
            }
        };
        let shared = Arc::new(Mutex::new(state));
        let published = Arc::new(Mutex::new(None));
        let runner = Runner {
            published: published.clone(),
            spec: spec.clone(),
            prepare,
            observer,
            state: shared.clone(),
            handle: None,
            commands: rx,
            open: false,
        };
        let recovered = handle.and_then(|h| match runner.spec.driver.recover(&h) {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(task = %spec.name, error = %e, "cannot re-attach to the task");
                None
            }
        });
        tokio::spawn(runner.run(recovered));
        TaskRunner {
            name: spec.name,
            commands: tx,
            state: shared,
            handle: published,
        }
    }

    /// The handle of the task while it runs (stale for a moment around a state change).
    pub fn handle(&self) -> Option<Arc<dyn TaskHandle>> {
        self.handle.lock().ok().and_then(|h| h.clone())
    }

    pub fn state(&self) -> TaskState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn send(&self, command: TaskCommand) {
        let _ = self.commands.send(command);
    }

    pub async fn kill(&self, reason: Option<caravan_structs::TaskEvent>) {
        let (done, wait) = oneshot::channel();
        self.send(TaskCommand::Kill { reason, done });
        let _ = wait.await;
    }

    pub async fn restart(&self, force: bool) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.send(TaskCommand::Restart { force, done });
        wait.await
            .unwrap_or_else(|_| Err("Task not running".to_owned()))
    }

    pub async fn signal(&self, signal: i32) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.send(TaskCommand::Signal { signal, done });
        wait.await
            .unwrap_or_else(|_| Err("Task not running".to_owned()))
    }

    /// See [`TaskCommand::CheckRestart`].
    pub async fn check_restart(&self, reason: String) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.send(TaskCommand::CheckRestart { reason, done });
        wait.await
            .unwrap_or_else(|_| Err("Task not running".to_owned()))
    }
}

/// Whether a kill's reason fails the task (a setup failure of the allocation).
fn fails(reason: &Option<caravan_structs::TaskEvent>) -> bool {
    reason.as_ref().is_some_and(|e| e.fails_task)
}

struct Runner {
    spec: TaskSpec,
    prepare: Prepare,
    observer: Arc<dyn TaskObserver>,
    state: Arc<Mutex<TaskState>>,
    handle: Option<Arc<dyn TaskHandle>>,
    /// `handle` as the outside sees it, refreshed on every state change.
    published: Arc<Mutex<Option<Arc<dyn TaskHandle>>>>,
    commands: mpsc::UnboundedReceiver<TaskCommand>,
    /// The gate is open.
    open: bool,
}

/// A kill request: the event to record first, and whom to tell once the task is dead.
type Kill = (Option<caravan_structs::TaskEvent>, oneshot::Sender<()>);

/// Why the wait for a running task ended.
enum Ended {
    Exited(ExitResult),
    /// Killed by request; the caller is told once the task is dead. True: the kill fails
    /// the task.
    Killed(oneshot::Sender<()>, bool),
    /// Restarted by request.
    Restarted,
    /// Restarted by a failing check: a failure for the restart policy.
    CheckRestarted,
}

impl Runner {
    fn update(&self, f: impl FnOnce(&mut TaskState)) {
        let snapshot = match self.state.lock() {
            Ok(mut s) => {
                f(&mut s);
                s.clone()
            }
            Err(_) => return,
        };
        if let Ok(mut p) = self.published.lock() {
            p.clone_from(&self.handle);
        }
        let handle = self.handle.as_ref().map(|h| h.state());
        self.observer
            .changed(&self.spec.name, &snapshot, handle.as_ref());
    }

    fn emit(&self, e: caravan_structs::TaskEvent) {
        self.update(|s| events::push(s, e));
    }

    fn current(&self) -> String {
        self.state
            .lock()
            .map(|s| s.state.clone())
            .unwrap_or_default()
    }

    async fn run(mut self, recovered: Option<Arc<dyn TaskHandle>>) {
        if self.current() == STATE_DEAD {
            // Finished before the agent restarted: only answer requests.
            return self.idle().await;
        }
        if let Some(handle) = recovered {
            self.open = true;
            self.handle = Some(handle);
            self.update(|_| {});
            if !self.follow().await {
                return self.idle().await;
            }
        }
        loop {
            if !self.open && !self.wait_for_gate().await {
                return self.idle().await;
            }
            match self.start_once().await {
                Step::Continue => {}
                Step::Stop => return self.idle().await,
            }
        }
    }

    /// Waits until the gate opens; false when the task was killed first.
    async fn wait_for_gate(&mut self) -> bool {
        while let Some(cmd) = self.commands.recv().await {
            match cmd {
                TaskCommand::Start => {
                    self.open = true;
                    return true;
                }
                TaskCommand::Kill { reason, done } => {
                    let failed = fails(&reason);
                    if let Some(e) = reason {
                        self.emit(e);
                    }
                    self.update(|s| events::set_state(s, STATE_DEAD, failed));
                    let _ = done.send(());
                    return false;
                }
                TaskCommand::Restart { done, .. }
                | TaskCommand::Signal { done, .. }
                | TaskCommand::CheckRestart { done, .. } => {
                    let _ = done.send(Err("Task not running".to_owned()));
                }
                TaskCommand::Event(e) => self.emit(e),
            }
        }
        false
    }

    /// One start and the life that follows it, up to the restart decision.
    async fn start_once(&mut self) -> Step {
        self.emit(events::setup("Building Task Directory"));
        let config = match (self.prepare)() {
            Ok(c) => c,
            Err(e) => {
                self.emit(events::setup_failure(&e));
                self.update(|s| events::set_state(s, STATE_DEAD, true));
                return Step::Stop;
            }
        };
        if let Err(e) = self.spec.driver.validate(&config.config) {
            // A config the driver cannot run will not get better by restarting.
            self.emit(events::driver_failure(&e.to_string()));
            return self
                .decide(Outcome::StartFailed { recoverable: false })
                .await;
        }
        // The start runs to its end even when a kill arrives meanwhile: dropping it half-way
        // could leave a started process nobody follows. The kill is applied right after.
        let driver = self.spec.driver.clone();
        let mut start = driver.start(config);
        let mut pending_kill: Option<Kill> = None;
        let mut open = true;
        let started = loop {
            tokio::select! {
                r = &mut start => break r,
                cmd = self.commands.recv(), if open => match cmd {
                    None => open = false,
                    Some(TaskCommand::Kill { reason, done }) => pending_kill = Some((reason, done)),
                    Some(TaskCommand::Event(e)) => self.emit(e),
                    Some(TaskCommand::Start) => {}
                    Some(
                        TaskCommand::Restart { done, .. }
                        | TaskCommand::Signal { done, .. }
                        | TaskCommand::CheckRestart { done, .. },
                    ) => {
                        let _ = done.send(Err("Task not running".to_owned()));
                    }
                },
            }
        };
        match started {
            Ok(handle) => {
                self.handle = Some(handle.clone());
                self.update(|s| events::set_state(s, STATE_RUNNING, false));
                self.emit(events::started());
                if let Some((reason, done)) = pending_kill {
                    let failed = fails(&reason);
                    if let Some(e) = reason {
                        self.emit(e);
                    }
                    self.stop_task(&handle, "").await;
                    handle.destroy();
                    self.handle = None;
                    self.emit(events::killed(""));
                    self.update(|s| events::set_state(s, STATE_DEAD, failed));
                    let _ = done.send(());
                    return Step::Stop;
                }
                if self.follow().await {
                    Step::Continue
                } else {
                    Step::Stop
                }
            }
            Err(e) => {
                self.emit(events::driver_failure(&e.to_string()));
                if let Some((reason, done)) = pending_kill {
                    let failed = fails(&reason);
                    if let Some(e) = reason {
                        self.emit(e);
                    }
                    self.update(|s| events::set_state(s, STATE_DEAD, failed));
                    let _ = done.send(());
                    return Step::Stop;
                }
                let recoverable = !matches!(e, DriverError::Config(_));
                self.decide(Outcome::StartFailed { recoverable }).await
            }
        }
    }

    /// Follows a running task; true when it should start again.
    async fn follow(&mut self) -> bool {
        let Some(handle) = self.handle.clone() else {
            return false;
        };
        let ended = loop {
            let wait = handle.wait();
            tokio::select! {
                result = wait => break Ended::Exited(result),
                cmd = self.commands.recv() => match cmd {
                    None => return false,
                    Some(TaskCommand::Start) => {}
                    Some(TaskCommand::Event(e)) => self.emit(e),
                    Some(TaskCommand::Signal { signal, done }) => {
                        self.emit(events::signaling(&signal_name(signal), ""));
                        let _ = done.send(handle.signal(signal).map_err(|e| e.to_string()));
                    }
                    Some(TaskCommand::Kill { reason, done }) => {
                        let failed = fails(&reason);
                        if let Some(e) = reason {
                            self.emit(e);
                        }
                        self.stop_task(&handle, "").await;
                        break Ended::Killed(done, failed);
                    }
                    Some(TaskCommand::CheckRestart { reason, done }) => {
                        self.emit(events::restart_signaled(&reason));
                        self.stop_task(&handle, "").await;
                        let _ = done.send(Ok(()));
                        break Ended::CheckRestarted;
                    }
                    Some(TaskCommand::Restart { done, .. }) => {
                        self.emit(events::restart_signaled("User requested task to restart"));
                        self.stop_task(&handle, "").await;
                        let _ = done.send(Ok(()));
                        break Ended::Restarted;
                    }
                },
            }
        };
        match ended {
            Ended::Exited(result) => {
                self.record_exit(&result);
                handle.destroy();
                self.handle = None;
                let outcome = Outcome::Exited {
                    success: result.successful(),
                };
                matches!(self.decide(outcome).await, Step::Continue)
            }
            Ended::Killed(done, failed) => {
                handle.destroy();
                self.handle = None;
                self.emit(events::killed(""));
                self.update(|s| events::set_state(s, STATE_DEAD, failed));
                let _ = done.send(());
                false
            }
            Ended::CheckRestarted => {
                handle.destroy();
                self.handle = None;
                let outcome = Outcome::Exited { success: false };
                matches!(self.decide(outcome).await, Step::Continue)
            }
            Ended::Restarted => {
                handle.destroy();
                self.handle = None;
                self.emit(events::restarting(
                    Duration::ZERO,
                    "User requested task to restart",
                ));
                self.update(|s| {
                    s.restarts += 1;
                    s.last_restart = events::now();
                    events::set_state(s, STATE_PENDING, false);
                });
                true
            }
        }
    }

    fn record_exit(&self, result: &ExitResult) {
        let message = result.error.clone().unwrap_or_default();
        self.emit(events::terminated(
            result.exit_code,
            result.signal,
            &message,
        ));
    }

    /// Sends the kill signal, waits the kill timeout, then kills outright; records the exit.
    async fn stop_task(&mut self, handle: &Arc<dyn TaskHandle>, reason: &str) {
        self.emit(events::killing(self.spec.kill_timeout, reason));
        if handle.signal(self.spec.kill_signal).is_ok()
            && let Ok(result) = tokio::time::timeout(self.spec.kill_timeout, handle.wait()).await
        {
            self.record_exit(&result);
            return;
        }
        let _ = handle.kill();
        let result = handle.wait().await;
        self.record_exit(&result);
    }

    /// Applies the restart policy after an exit or a failed start.
    async fn decide(&mut self, outcome: Outcome) -> Step {
        let jitter = rand::random::<f64>();
        match self.spec.restart.decide(outcome, Instant::now(), jitter) {
            Decision::Done => {
                self.update(|s| events::set_state(s, STATE_DEAD, false));
                Step::Stop
            }
            Decision::Fail { reason } => {
                self.emit(events::not_restarting(&reason));
                self.update(|s| events::set_state(s, STATE_DEAD, true));
                Step::Stop
            }
            Decision::Restart { delay, reason } => {
                self.emit(events::restarting(delay, &reason));
                self.update(|s| {
                    s.restarts += 1;
                    s.last_restart = events::now();
                    events::set_state(s, STATE_PENDING, false);
                });
                self.restart_delay(delay).await
            }
        }
    }

    /// Waits out a restart delay, answering requests meanwhile.
    async fn restart_delay(&mut self, delay: Duration) -> Step {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Step::Continue,
                cmd = self.commands.recv() => match cmd {
                    None => return Step::Stop,
                    Some(TaskCommand::Start) => {}
                    Some(TaskCommand::Event(e)) => self.emit(e),
                    Some(TaskCommand::Kill { reason, done }) => {
                        let failed = fails(&reason);
                        if let Some(e) = reason {
                            self.emit(e);
                        }
                        self.update(|s| events::set_state(s, STATE_DEAD, failed));
                        let _ = done.send(());
                        return Step::Stop;
                    }
                    Some(TaskCommand::Restart { done, .. }) => {
                        let _ = done.send(Ok(()));
                        return Step::Continue;
                    }
                    Some(TaskCommand::Signal { done, .. } | TaskCommand::CheckRestart { done, .. }) => {
                        let _ = done.send(Err("Task not running".to_owned()));
                    }
                },
            }
        }
    }

    /// A dead task: answers requests until the allocation runner goes away. A forced restart
    /// (`AllTasks`) brings it back.
    async fn idle(mut self) {
        while let Some(cmd) = self.commands.recv().await {
            match cmd {
                TaskCommand::Start | TaskCommand::Event(_) => {}
                TaskCommand::Kill { done, .. } => {
                    let _ = done.send(());
                }
                TaskCommand::Signal { done, .. } | TaskCommand::CheckRestart { done, .. } => {
                    let _ = done.send(Err("Task not running".to_owned()));
                }
                TaskCommand::Restart { force: false, done } => {
                    let _ = done.send(Ok(()));
                }
                TaskCommand::Restart { force: true, done } => {
                    let _ = done.send(Ok(()));
                    self.emit(events::restart_signaled("User requested task to restart"));
                    self.update(|s| {
                        s.restarts += 1;
                        s.last_restart = events::now();
                        s.failed = false;
                        events::set_state(s, STATE_PENDING, false);
                    });
                    self.open = true;
                    Box::pin(self.run(None)).await;
                    return;
                }
            }
        }
    }
}

enum Step {
    Continue,
    Stop,
}
