//! The per-task executor: a small synchronous process (`caravan executor <spec.json>`) that
//! starts the task, copies its stdout and stderr into rotated log files and records how it
//! exited. It is what keeps a task alive and logged while the agent is down: the agent only
//! signals the task's process group and waits for the executor, and a restarted agent finds
//! both again from the pids it persisted.
//!
//! Protocol with the agent: the executor writes one JSON line to its stdout — `{"pid":N}` once
//! the task runs, or `{"error":"..."}` when it cannot start — and, when the task has exited,
//! writes the [`ExitResult`] to `exit_file` (atomically) before exiting itself.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::logs::RotatingWriter;
use crate::{ExitResult, LogSettings};

/// How long the log copiers may keep draining after the task exited: a background process the
/// task left behind can hold the pipes open forever.
const LOG_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What the executor runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub task_name: String,
    pub command: String,
    pub args: Vec<String>,
    /// The complete environment (nothing is inherited).
    pub env: BTreeMap<String, String>,
    /// Working directory; inside the new root when isolated.
    pub cwd: PathBuf,
    pub logs: LogSettings,
    pub exit_file: PathBuf,
    /// Run as this user when not empty.
    pub user: String,
    pub isolation: Option<IsolationConfig>,
    /// Kill the task when the agent that started it dies (dev mode and tests): the executor
    /// watches its parent and kills the task once it is orphaned.
    #[serde(default)]
    pub die_with_agent: bool,
    /// The agent's pid as the agent knows it: compared with the executor's parent, so an agent
    /// that died while the task was being started is noticed too.
    #[serde(default)]
    pub agent_pid: i32,
}

/// The `exec` driver's isolation (see `caravan_isolation::IsolationSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationConfig {
    pub root: PathBuf,
    pub binds: Vec<BindConfig>,
    pub hostname: String,
    pub cgroup: Option<CgroupConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindConfig {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupConfig {
    pub name: String,
    pub memory_bytes: u64,
    pub memory_max_bytes: Option<u64>,
    pub cpu_shares: u64,
}

/// The executor's first line on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handshake {
    Pid(i32),
    Error(String),
}

/// Runs the executor; returns the process exit code. Called by the `caravan executor`
/// command before any async runtime or thread exists (isolation needs a single thread).
pub fn main(spec_path: &Path) -> i32 {
    let spec: LaunchSpec = match std::fs::read(spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("invalid spec {}: {e}", spec_path.display()))
        }) {
        Ok(spec) => spec,
        Err(e) => {
            handshake(&Handshake::Error(e));
            return 2;
        }
    };
    match run(&spec) {
        Ok(()) => 0,
        Err(e) => {
            handshake(&Handshake::Error(e));
            1
        }
    }
}

fn handshake(h: &Handshake) {
    let mut out = std::io::stdout().lock();
    if let Ok(line) = serde_json::to_string(h) {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn log_writer(logs: &LogSettings, task: &str, stream: &str) -> Result<RotatingWriter, String> {
    RotatingWriter::open(&logs.dir, task, stream, logs.max_files, logs.max_file_bytes).map_err(
        |e| {
            format!(
                "cannot open the {stream} log in {}: {e}",
                logs.dir.display()
            )
        },
    )
}

/// Copies a pipe into its log until the pipe closes; reports on `done`.
fn copy_logs(mut from: impl Read, mut to: Option<RotatingWriter>, done: mpsc::Sender<()>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(w) = to.as_mut() {
                    // A full disk must not stop the task: drop the bytes, keep draining.
                    if w.write_all(&buf[..n]).and_then(|()| w.flush()).is_err() {
                        eprintln!("executor: log write failed");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = done.send(());
}

/// The uid, gid and groups of a user name.
fn lookup_user(name: &str) -> Result<caravan_isolation::TaskUser, String> {
    let user = nix::unistd::User::from_name(name)
        .map_err(|e| format!("cannot look up user {name:?}: {e}"))?
        .ok_or_else(|| format!("user {name:?} does not exist"))?;
    Ok(caravan_isolation::TaskUser {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: Vec::new(),
    })
}

fn build_command(spec: &LaunchSpec) -> Command {
    let mut cmd = Command::new(&spec.command);
    cmd.args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: the agent signals the whole task tree at once.
        .process_group(0);
    cmd
}

fn spawn(spec: &LaunchSpec) -> Result<std::process::Child, String> {
    let mut cmd = build_command(spec);
    let user = if spec.user.is_empty() {
        None
    } else {
        Some(lookup_user(&spec.user)?)
    };
    let failed =
        |e: &dyn std::fmt::Display| format!("failed to launch command {:?}: {e}", spec.command);
    match &spec.isolation {
        None => {
            // Without isolation std drops privileges itself; with it, the isolation code does,
            // after the namespaces are set up (which needs root).
            if let Some(u) = &user {
                cmd.uid(u.uid).gid(u.gid);
            }
            cmd.spawn().map_err(|e| failed(&e))
        }
        Some(iso) => {
            let spec = caravan_isolation::IsolationSpec {
                root: iso.root.clone(),
                binds: iso
                    .binds
                    .iter()
                    .map(|b| caravan_isolation::BindMount {
                        source: b.source.clone(),
                        target: b.target.clone(),
                        read_only: b.read_only,
                    })
                    .collect(),
                hostname: iso.hostname.clone(),
                cgroup: iso.cgroup.as_ref().map(|c| caravan_isolation::CgroupSpec {
                    name: c.name.clone(),
                    memory_bytes: c.memory_bytes,
                    memory_max_bytes: c.memory_max_bytes,
                    cpu_shares: c.cpu_shares,
                }),
                user,
            };
            caravan_isolation::spawn_isolated(cmd, &spec).map_err(|e| failed(&e))
        }
    }
}

fn run(spec: &LaunchSpec) -> Result<(), String> {
    let (stdout_log, stderr_log) = if spec.logs.disabled {
        (None, None)
    } else {
        (
            Some(log_writer(&spec.logs, &spec.task_name, "stdout")?),
            Some(log_writer(&spec.logs, &spec.task_name, "stderr")?),
        )
    };
    let mut child = spawn(spec)?;
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    handshake(&Handshake::Pid(pid));
    if spec.die_with_agent {
        let agent = if spec.agent_pid > 0 {
            nix::unistd::Pid::from_raw(spec.agent_pid)
        } else {
            nix::unistd::getppid()
        };
        std::thread::spawn(move || {
            while nix::unistd::getppid() == agent {
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = crate::process::signal_task(pid, nix::sys::signal::Signal::SIGKILL);
        });
    }

    let (done_tx, done_rx) = mpsc::channel();
    let mut copiers = 0;
    if let Some(out) = child.stdout.take() {
        let tx = done_tx.clone();
        std::thread::spawn(move || copy_logs(out, stdout_log, tx));
        copiers += 1;
    }
    if let Some(err) = child.stderr.take() {
        let tx = done_tx.clone();
        std::thread::spawn(move || copy_logs(err, stderr_log, tx));
        copiers += 1;
    }
    drop(done_tx);

    let result = match child.wait() {
        Ok(status) => ExitResult {
            exit_code: status.code().unwrap_or(0),
            signal: status.signal().unwrap_or(0),
            oom_killed: false,
            error: None,
        },
        Err(e) => ExitResult {
            exit_code: 0,
            signal: 0,
            oom_killed: false,
            error: Some(format!("waiting for the task failed: {e}")),
        },
    };
    let deadline = std::time::Instant::now() + LOG_DRAIN_GRACE;
    for _ in 0..copiers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    write_exit(&spec.exit_file, &result)
}

/// Writes the exit result so a reader never sees half a file.
fn write_exit(path: &Path, result: &ExitResult) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(result).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads what an executor recorded, if it got that far.
pub fn read_exit(path: &Path) -> Option<ExitResult> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
}
