//! The agent's side of executor-backed tasks: launching an executor, following it until the
//! task exits, signalling the task's process group, and re-attaching after an agent restart.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

use crate::executor::{Handshake, LaunchSpec, read_exit};
use crate::{DriverError, ExecProcess, ExecRequest, ExitResult, HandleState, TaskHandle};

/// How long an executor may take to start the task and answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a re-attached executor (not our child: no wait) is checked.
const RECOVERED_POLL: Duration = Duration::from_millis(250);

/// Signals a task's process group, or the task alone when it leads none. A pid of 0 or 1
/// (a corrupt handle) is refused: as a group those mean "our own group" and "every process".
pub(crate) fn signal_task(task_pid: i32, signal: Signal) -> nix::Result<()> {
    if task_pid <= 1 {
        return Err(nix::errno::Errno::ESRCH);
    }
    let pid = Pid::from_raw(task_pid);
    nix::sys::signal::killpg(pid, signal).or_else(|_| nix::sys::signal::kill(pid, signal))
}

/// Starts executors: `<program> executor <spec.json>`.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: PathBuf,
    /// Tasks die with the agent (see `LaunchSpec::die_with_agent`).
    ephemeral: bool,
}

/// What identifies a launched task across agent restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    pub executor_pid: i32,
    /// The executor's start time in clock ticks since boot (`/proc/<pid>/stat`), so a recycled
    /// pid is not mistaken for it.
    pub executor_start: u64,
    pub task_pid: i32,
    pub exit_file: PathBuf,
    /// The task's cgroup (`exec`), destroyed with the task.
    pub cgroup: Option<String>,
    /// How commands run inside the task (exec sessions).
    #[serde(default)]
    pub exec: ExecContext,
}

/// What an exec session inherits from its task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecContext {
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory (inside the task's root when isolated).
    pub cwd: PathBuf,
    /// The task runs in its own namespaces: sessions enter them.
    pub isolated: bool,
}

impl Launcher {
    pub fn new(program: PathBuf, ephemeral: bool) -> Launcher {
        Launcher { program, ephemeral }
    }

    /// Launches an executor for `spec` and waits until the task runs (or failed to start).
    pub async fn launch(
        &self,
        driver: &'static str,
        mut spec: LaunchSpec,
        run_dir: &Path,
    ) -> Result<Arc<ProcessHandle>, DriverError> {
        spec.die_with_agent = self.ephemeral;
        spec.agent_pid = i32::try_from(std::process::id()).unwrap_or(0);
        let io_err = |what: &str, e: std::io::Error| DriverError::Start(format!("{what}: {e}"));
        tokio::fs::create_dir_all(run_dir)
            .await
            .map_err(|e| io_err(&format!("cannot create {}", run_dir.display()), e))?;
        match tokio::fs::remove_file(&spec.exit_file).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err("cannot clear the previous exit status", e));
            }
            _ => {}
        }
        let spec_path = run_dir.join("executor.json");
        let bytes = serde_json::to_vec_pretty(&spec)
            .map_err(|e| DriverError::Start(format!("cannot encode the launch spec: {e}")))?;
        tokio::fs::write(&spec_path, bytes)
            .await
            .map_err(|e| io_err("cannot write the launch spec", e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join("executor.log"))
            .map_err(|e| io_err("cannot open the executor log", e))?;
        let mut child = tokio::process::Command::new(&self.program)
            .arg("executor")
            .arg(&spec_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            // Not in the agent's process group: a Ctrl-C or a kill of the agent's group leaves
            // the tasks running.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| {
                io_err(
                    &format!("cannot start the executor {}", self.program.display()),
                    e,
                )
            })?;
        let executor_pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| DriverError::Start("the executor exited at once".to_owned()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| DriverError::Start("no pipe to the executor".to_owned()))?;
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout);
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.read_line(&mut line)).await;
        let handshake: Result<Handshake, DriverError> = match read {
            Err(_) => Err(DriverError::Start(
                "the executor did not answer in time".to_owned(),
            )),
            Ok(Err(e)) => Err(io_err("reading from the executor failed", e)),
            Ok(Ok(0)) => Err(DriverError::Start(
                "the executor exited without starting the task".to_owned(),
            )),
            Ok(Ok(_)) => serde_json::from_str(line.trim())
                .map_err(|e| DriverError::Start(format!("bad executor answer {line:?}: {e}"))),
        };
        let task_pid = match handshake {
            Ok(Handshake::Pid(pid)) => pid,
            Ok(Handshake::Error(message)) => {
                let _ = child.wait().await;
                return Err(DriverError::Start(message));
            }
            Err(e) => {
                let _ = child.kill().await;
                return Err(e);
            }
        };
        let state = ProcessState {
            executor_pid,
            executor_start: process_start_time(executor_pid).unwrap_or(0),
            task_pid,
            exit_file: spec.exit_file.clone(),
            cgroup: spec
                .isolation
                .as_ref()
                .and_then(|i| i.cgroup.as_ref())
                .map(|c| c.name.clone()),
            exec: ExecContext {
                env: spec.env.clone(),
                cwd: spec.cwd.clone(),
                isolated: spec.isolation.is_some(),
            },
        };
        let (tx, rx) = watch::channel(None);
        let follow_state = state.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = tx.send(Some(collect_exit(&follow_state).await));
        });
        Ok(Arc::new(ProcessHandle {
            driver,
            state,
            exit: rx,
        }))
    }

    /// Re-attaches to a task launched by an earlier agent process.
    pub fn recover(
        &self,
        driver: &'static str,
        state: ProcessState,
    ) -> Result<Arc<ProcessHandle>, DriverError> {
        let (tx, rx) = watch::channel(None);
        let follow_state = state.clone();
        tokio::spawn(async move {
            while executor_alive(&follow_state) {
                tokio::time::sleep(RECOVERED_POLL).await;
            }
            let _ = tx.send(Some(collect_exit(&follow_state).await));
        });
        Ok(Arc::new(ProcessHandle {
            driver,
            state,
            exit: rx,
        }))
    }
}

/// Once the executor is gone: what it recorded, or — if it died without recording anything —
/// an error, after making sure no orphaned task process keeps running.
async fn collect_exit(state: &ProcessState) -> ExitResult {
    if let Some(result) = read_exit(&state.exit_file) {
        return result;
    }
    let _ = signal_task(state.task_pid, Signal::SIGKILL);
    ExitResult {
        exit_code: 0,
        signal: 0,
        oom_killed: false,
        error: Some("the task's executor exited without recording how the task ended".to_owned()),
    }
}

fn executor_alive(state: &ProcessState) -> bool {
    if state.exit_file.exists() {
        return false;
    }
    match process_start_time(state.executor_pid) {
        Some(start) => start == state.executor_start || state.executor_start == 0,
        None => false,
    }
}

/// Re-attaches a process driver's task from its persisted handle.
pub fn recover_task(
    launcher: &Launcher,
    driver: &'static str,
    state: &HandleState,
) -> Result<Arc<dyn TaskHandle>, DriverError> {
    let state: ProcessState = serde_json::from_value(state.state.clone())
        .map_err(|e| DriverError::Recover(format!("unreadable {driver} handle: {e}")))?;
    Ok(launcher.recover(driver, state)? as Arc<dyn TaskHandle>)
}

/// The start time (clock ticks after boot) of a live process; `None` when it is gone or a
/// zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); the start time is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// A task run by an executor.
pub struct ProcessHandle {
    driver: &'static str,
    state: ProcessState,
    exit: watch::Receiver<Option<ExitResult>>,
}

impl ProcessHandle {
    pub fn process_state(&self) -> &ProcessState {
        &self.state
    }

    fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }
}

impl TaskHandle for ProcessHandle {
    fn state(&self) -> HandleState {
        HandleState {
            driver: self.driver.to_owned(),
            state: serde_json::to_value(&self.state).unwrap_or_default(),
        }
    }

    fn wait(&self) -> BoxFuture<'static, ExitResult> {
        let mut rx = self.exit.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or_default(),
                Err(_) => ExitResult {
                    error: Some("lost track of the task".to_owned()),
                    ..ExitResult::default()
                },
            }
        }
        .boxed()
    }

    fn signal(&self, signal: i32) -> Result<(), DriverError> {
        if self.exited() {
            return Err(DriverError::NotRunning);
        }
        let signal =
            Signal::try_from(signal).map_err(|_| DriverError::InvalidSignal(signal.to_string()))?;
        signal_task(self.state.task_pid, signal).map_err(|e| match e {
            nix::errno::Errno::ESRCH => DriverError::NotRunning,
            e => DriverError::Other(format!("signal failed: {e}")),
        })
    }

    fn kill(&self) -> Result<(), DriverError> {
        let _ = signal_task(self.state.task_pid, Signal::SIGKILL);
        if let Some(cgroup) = &self.state.cgroup {
            // Processes that left the process group still die with the cgroup.
            // cgroup.procs lists 0 for processes outside our pid namespace: never kill(0).
            let pids = caravan_isolation::cgroup_pids(cgroup).unwrap_or_default();
            for pid in pids.into_iter().filter(|&pid| pid > 1) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        Ok(())
    }

    fn destroy(&self) {
        if let Some(cgroup) = &self.state.cgroup
            && let Err(e) = caravan_isolation::cgroup_destroy(cgroup)
        {
            tracing::warn!(cgroup, error = %e, "cannot remove the task's cgroup");
        }
    }

    fn pid(&self) -> Option<i32> {
        Some(self.state.task_pid)
    }

    fn exec(&self, request: ExecRequest) -> Result<ExecProcess, DriverError> {
        if self.exited() {
            return Err(DriverError::NotRunning);
        }
        let (program, args) = request
            .command
            .split_first()
            .ok_or_else(|| DriverError::Config("exec needs a command".to_owned()))?;
        let ctx = &self.state.exec;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(&ctx.env)
            .current_dir(&ctx.cwd);
        let failed = |e: caravan_isolation::IsolationError| match e {
            caravan_isolation::IsolationError::Exec { .. } => DriverError::Command(e.to_string()),
            e => DriverError::Start(format!("failed to exec {program:?}: {e}")),
        };
        if request.tty {
            // Full-screen programs need a terminal type; the task's own wins.
            if !ctx.env.contains_key("TERM") {
                cmd.env("TERM", "xterm-256color");
            }
            let (master, slave) = if ctx.isolated {
                caravan_isolation::open_pty_in(self.state.task_pid)
            } else {
                caravan_isolation::open_pty()
            }
            .map_err(failed)?;
            let options = caravan_isolation::EnterOptions {
                user: None,
                tty: Some(slave),
            };
            // Entering the task's own namespaces gives a raw_exec session the host's, and
            // the terminal set-up is the same for both drivers.
            let child = caravan_isolation::enter_and_spawn_with(
                self.state.task_pid,
                self.state.cgroup.as_deref(),
                cmd,
                options,
            )
            .map_err(failed)?;
            return Ok(ExecProcess {
                child,
                pty_master: Some(master),
            });
        }
        // Its own process group, so the session's processes can be killed together.
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = if ctx.isolated {
            caravan_isolation::enter_and_spawn(
                self.state.task_pid,
                self.state.cgroup.as_deref(),
                cmd,
            )
            .map_err(failed)?
        } else {
            cmd.spawn().map_err(|e| {
                let message = format!("failed to exec {program:?}: {e}");
                match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                        DriverError::Command(message)
                    }
                    _ => DriverError::Start(message),
                }
            })?
        };
        Ok(ExecProcess {
            child,
            pty_master: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process_is_known() {
        let pid = i32::try_from(std::process::id()).unwrap_or_default();
        assert!(process_start_time(pid).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
