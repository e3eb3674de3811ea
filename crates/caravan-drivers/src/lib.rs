//! Task drivers: the [`Driver`] trait the agent's task runners drive, and Caravan's drivers —
//! `raw_exec` (a plain child process), `exec` (namespaces, a chroot of the task directory and
//! cgroup limits) and `mock_driver` (simulated tasks for tests and large simulations).
//!
//! Process-backed tasks run under a per-task [`executor`] process (the `caravan executor`
//! command): it owns the task's stdout/stderr pipes and rotated log files and records the exit
//! status, so a task outlives an agent that is killed and the restarted agent re-attaches to it
//! from the [`HandleState`] it persisted.

pub mod exec;
pub mod executor;
pub mod logs;
pub mod mock;
pub mod process;
pub mod raw_exec;
pub mod signals;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use signals::parse_signal;

/// Why a driver could not do what it was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// The task's driver config is wrong (e.g. `command` missing): the task cannot start.
    #[error("{0}")]
    Config(String),
    /// Starting the task failed (e.g. the command does not exist).
    #[error("{0}")]
    Start(String),
    /// The command an exec session asked for cannot be run (missing, not executable): the
    /// caller's mistake, not the task's.
    #[error("{0}")]
    Command(String),
    /// The driver cannot do what was asked (e.g. exec into a mock task).
    #[error("{0}")]
    Unsupported(String),
    /// A signal name that is not a signal.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// The task is not running (signal, kill).
    #[error("Task not running")]
    NotRunning,
    /// The persisted handle no longer matches a live task (re-attach).
    #[error("{0}")]
    Recover(String),
    #[error("{0}")]
    Other(String),
}

/// What the agent reports about a driver on its node (`Node.Drivers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFingerprint {
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    pub attributes: BTreeMap<String, String>,
}

impl DriverFingerprint {
    pub fn healthy(name: &str) -> DriverFingerprint {
        DriverFingerprint {
            detected: true,
            healthy: true,
            health_description: "Healthy".to_owned(),
            attributes: BTreeMap::from([(format!("driver.{name}"), "true".to_owned())]),
        }
    }

    pub fn undetected(reason: impl Into<String>) -> DriverFingerprint {
        DriverFingerprint {
            detected: false,
            healthy: false,
            health_description: reason.into(),
            attributes: BTreeMap::new(),
        }
    }
}

/// Log rotation of one task's stdout and stderr (the task's `LogConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    /// `alloc/logs` of the allocation.
    pub dir: PathBuf,
    pub max_files: u32,
    pub max_file_bytes: u64,
    /// No log files: output is discarded.
    pub disabled: bool,
}

/// Resources a driver may enforce (cgroups for `exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskResources {
    pub cpu_shares: u64,
    pub memory_mb: u64,
    /// Oversubscription limit; 0 when not set.
    pub memory_max_mb: u64,
}

/// Everything a driver needs to start one task; built by the agent's task runner with the
/// driver config and environment already interpolated.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub alloc_id: String,
    pub task_name: String,
    /// The task's driver `config` block.
    pub config: serde_json::Map<String, serde_json::Value>,
    pub env: BTreeMap<String, String>,
    /// The allocation directory on the host.
    pub alloc_dir: PathBuf,
    /// The task's directory on the host (`<alloc_dir>/<task>`).
    pub task_dir: PathBuf,
    pub logs: LogSettings,
    /// A private directory of the agent for this task (executor spec, exit status).
    pub run_dir: PathBuf,
    pub resources: TaskResources,
    pub user: String,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExitResult {
    pub exit_code: i32,
    /// The signal that killed it, 0 if none.
    pub signal: i32,
    pub oom_killed: bool,
    /// Set when the driver lost track of the task (e.g. its executor died).
    pub error: Option<String>,
}

impl ExitResult {
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal == 0 && self.error.is_none()
    }
}

/// What the agent persists about a started task so a restarted agent can re-attach to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandleState {
    pub driver: String,
    /// Driver-specific state.
    pub state: serde_json::Value,
}

/// A command to run inside a running task (the exec endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Program and arguments; not empty.
    pub command: Vec<String>,
    /// Run on a new pseudo-terminal (stderr merged into stdout).
    pub tty: bool,
}

/// A command started by [`TaskHandle::exec`]: the process, with pipes for stdin/stdout/stderr,
/// or its terminal's master side when `tty` was asked.
#[derive(Debug)]
pub struct ExecProcess {
    pub child: std::process::Child,
    pub pty_master: Option<std::os::fd::OwnedFd>,
}

/// A running (or finished) task as a driver sees it.
pub trait TaskHandle: Send + Sync {
    /// The state to persist for [`Driver::recover`].
    fn state(&self) -> HandleState;
    /// Resolves once the task has exited; any number of callers may wait.
    fn wait(&self) -> BoxFuture<'static, ExitResult>;
    /// Sends a signal to the task (its whole process group).
    fn signal(&self, signal: i32) -> Result<(), DriverError>;
    /// Kills the task outright and everything it started.
    fn kill(&self) -> Result<(), DriverError>;
    /// Frees what the driver holds for the task once it is dead (cgroups, timers).
    fn destroy(&self) {}
    /// The host pid of the task's main process, when it is a process.
    fn pid(&self) -> Option<i32> {
        None
    }
    /// Starts a command the way the task runs: in its isolation (namespaces, root, cgroup) for
    /// `exec`, in its directory with its environment for `raw_exec`.
    fn exec(&self, _request: ExecRequest) -> Result<ExecProcess, DriverError> {
        Err(DriverError::Unsupported(
            "this driver cannot run commands inside its tasks".to_owned(),
        ))
    }
}

/// One kind of task runtime.
pub trait Driver: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the driver can run tasks on this machine.
    fn fingerprint(&self) -> DriverFingerprint;
    /// Checks a task's driver config before anything is set up.
    fn validate(
        &self,
        config: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), DriverError>;
    /// Starts the task; the returned handle reports its exit.
    fn start(&self, task: TaskConfig) -> BoxFuture<'_, Result<Arc<dyn TaskHandle>, DriverError>>;
    /// Re-attaches to a task started by an earlier agent process.
    fn recover(&self, state: &HandleState) -> Result<Arc<dyn TaskHandle>, DriverError>;
}

/// The drivers of an agent, by name.
#[derive(Clone, Default)]
pub struct Drivers {
    drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
}

impl Drivers {
    /// Caravan's built-in drivers; `executor` is the program run as each task's executor (the
    /// `caravan` binary itself); `ephemeral` tasks die with the agent.
    pub fn builtin(executor: PathBuf, ephemeral: bool) -> Drivers {
        let launcher = process::Launcher::new(executor, ephemeral);
        let mut drivers = Drivers::default();
        drivers.add(Arc::new(raw_exec::RawExec::new(launcher.clone())));
        drivers.add(Arc::new(exec::Exec::new(launcher)));
        drivers.add(Arc::new(mock::MockDriver));
        drivers
    }

    pub fn add(&mut self, driver: Arc<dyn Driver>) {
        self.drivers.insert(driver.name(), driver);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Driver>> {
        self.drivers.get(name).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Driver>> {
        self.drivers.values()
    }
}

/// Reads a duration from a driver config value: a Go duration string (`"10s"`) or integer
/// nanoseconds.
pub fn config_duration(
    config: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<Duration>, DriverError> {
    match config.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => caravan_structs::time::parse_go_duration(s)
            .map(Some)
            .map_err(|_| DriverError::Config(format!("{key}: invalid duration {s:?}"))),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|ns| Some(Duration::from_nanos(ns)))
            .ok_or_else(|| DriverError::Config(format!("{key}: want a duration, got {n}"))),
        Some(other) => Err(DriverError::Config(format!(
            "{key}: want a duration such as \"10s\", got {other}"
        ))),
    }
}

/// Reads the `command` and `args` of a process driver's config.
pub fn command_and_args(
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<(String, Vec<String>), DriverError> {
    let command = match config.get("command") {
        Some(serde_json::Value::String(c)) if !c.trim().is_empty() => c.clone(),
        Some(serde_json::Value::String(_)) | None | Some(serde_json::Value::Null) => {
            return Err(DriverError::Config(
                "missing required driver config \"command\"".to_owned(),
            ));
        }
        Some(other) => {
            return Err(DriverError::Config(format!(
                "driver config \"command\" must be a string, got {other}"
            )));
        }
    };
    let args = match config.get("args") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                serde_json::Value::Bool(b) => Ok(b.to_string()),
                other => Err(DriverError::Config(format!(
                    "driver config \"args\" must be a list of strings, got {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(DriverError::Config(format!(
                "driver config \"args\" must be a list of strings, got {other}"
            )));
        }
    };
    Ok((command, args))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn command_is_required_and_args_are_strings() {
        let err = command_and_args(&cfg(json!({"args": ["x"]}))).unwrap_err();
        assert!(err.to_string().contains("\"command\""), "{err}");
        assert!(command_and_args(&cfg(json!({"command": " "}))).is_err());
        assert!(command_and_args(&cfg(json!({"command": 3}))).is_err());
        assert!(command_and_args(&cfg(json!({"command": "a", "args": "b"}))).is_err());
        let (c, a) =
            command_and_args(&cfg(json!({"command": "/bin/sh", "args": ["-c", 1]}))).unwrap();
        assert_eq!(c, "/bin/sh");
        assert_eq!(a, vec!["-c", "1"]);
    }

    #[test]
    fn durations_read_strings_and_nanos() {
        let c = cfg(json!({"a": "1.5s", "b": 2000, "c": "soon", "d": true}));
        assert_eq!(
            config_duration(&c, "a").unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            config_duration(&c, "b").unwrap(),
            Some(Duration::from_nanos(2000))
        );
        assert!(config_duration(&c, "c").is_err());
        assert!(config_duration(&c, "d").is_err());
        assert_eq!(config_duration(&c, "missing").unwrap(), None);
    }
}
