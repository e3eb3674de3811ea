//! Exec sessions (`/v1/client/allocation/:id/exec`): a command started inside a running task by
//! its driver (`TaskHandle::exec`), its pipes or terminal bridged to the gRPC stream the gateway
//! holds. A session owns its command: it ends when the command exits (after the output is
//! drained) or when the stream goes away, and either way no process of it is left behind.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use caravan_drivers::process::process_start_time;
use caravan_drivers::{DriverError, TaskHandle};
use caravan_proto::v1::{
    ExecExited, ExecRequest, ExecResponse, ExecSetup, ExecStarted, exec_request, exec_response,
};
use caravan_proto::{ErrorCode, to_status};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::allocs::manager::AllocManager;
use crate::allocs::runner::is_terminal_status;

/// The largest output chunk per message.
const CHUNK: usize = 32 * 1024;
/// Messages queued towards the gateway; beyond this a slow reader stalls the output pumps.
const WINDOW: usize = 8;
/// How long output may still arrive once the command exited and its group was killed (a
/// process that left the group may hold the pipe or terminal open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

pub type ExecStream = ReceiverStream<Result<ExecResponse, Status>>;

/// The agent's running sessions on disk (`<data_dir>/exec-sessions/<pid>`, holding the
/// command's start time), so an agent killed with SIGKILL kills the commands its sessions left
/// behind when it starts again.
#[derive(Clone)]
pub struct ExecSessions {
    dir: PathBuf,
}

impl ExecSessions {
    pub fn new(data_dir: &Path) -> ExecSessions {
        ExecSessions {
            dir: data_dir.join("exec-sessions"),
        }
    }

    /// Kills the commands of sessions a previous agent process did not end (the pid must still
    /// be the same process: its start time is checked). Returns how many were killed.
    pub fn kill_leftovers(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut killed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let pid = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<i32>().ok());
            let recorded = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if let (Some(pid), Some(start)) = (pid, recorded)
                && process_start_time(pid) == Some(start)
            {
                kill_session(pid, &Mutex::new(false));
                killed += 1;
            }
            let _ = std::fs::remove_file(&path);
        }
        killed
    }

    /// Records a running session until the returned guard is dropped.
    fn register(&self, pid: i32) -> SessionRecord {
        let path = self.dir.join(pid.to_string());
        let start = process_start_time(pid).unwrap_or(0);
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&path, start.to_string()));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "exec: cannot record the session");
        }
        SessionRecord(path)
    }
}

struct SessionRecord(PathBuf);

impl Drop for SessionRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts the session the stream's first message (`setup`) asks for. Every validation error and
/// a command that cannot be started fail the call itself, so the gateway can answer them as
/// plain HTTP errors; once this returns, the stream begins with `started`.
pub async fn open(
    manager: &AllocManager,
    sessions: &ExecSessions,
    mut requests: Streaming<ExecRequest>,
) -> Result<ExecStream, Status> {
    let setup = match requests.message().await? {
        Some(ExecRequest {
            msg: Some(exec_request::Msg::Setup(setup)),
        }) => setup,
        _ => return Err(bad_request("an exec stream must begin with its setup")),
    };
    let (task, handle) = resolve(manager, &setup)?;
    // The session ends with its task (stopped, restarted, or dead).
    let task_exit = handle.wait();
    let request = caravan_drivers::ExecRequest {
        command: setup.command,
        tty: setup.tty,
    };
    // Entering a task's namespaces forks and waits for the exec: keep it off the runtime.
    let process = tokio::task::spawn_blocking(move || handle.exec(request))
        .await
        .map_err(|e| to_status(ErrorCode::Internal, format!("exec failed: {e}")))?
        .map_err(|e| driver_error(&task, e))?;
    let record = sessions.register(i32::try_from(process.child.id()).unwrap_or(0));
    let mut session = Session::new(process)?;
    session.record = Some(record);
    let (tx, rx) = mpsc::channel(WINDOW);
    let started = ExecResponse {
        msg: Some(exec_response::Msg::Started(ExecStarted {
            task,
            pid: session.pid,
        })),
    };
    // The channel is new and empty: this cannot be full.
    let _ = tx.try_send(Ok(started));
    tokio::spawn(session.run(requests, tx, task_exit));
    Ok(ReceiverStream::new(rx))
}

fn bad_request(message: impl Into<String>) -> Status {
    to_status(ErrorCode::BadRequest, message)
}

fn not_found(message: impl Into<String>) -> Status {
    to_status(ErrorCode::NotFound, message)
}

/// The task to exec into and its driver handle, with Nomad's texts for what is not there.
fn resolve(
    manager: &AllocManager,
    setup: &ExecSetup,
) -> Result<(String, Arc<dyn TaskHandle>), Status> {
    if setup.command.is_empty() {
        return Err(bad_request("command is not present"));
    }
    let runner = manager
        .get(&setup.alloc_id)
        .ok_or_else(|| not_found(format!("Unknown allocation {:?}", setup.alloc_id)))?;
    let view = runner.view();
    if is_terminal_status(&view.client_status) {
        return Err(bad_request(format!(
            "allocation {} is not running: its client status is {:?}",
            setup.alloc_id, view.client_status
        )));
    }
    let handles = runner.task_handles();
    let task = match (setup.task.as_str(), handles.as_slice()) {
        ("", [(only, _)]) => only.clone(),
        ("", _) => return Err(bad_request("must provide task name")),
        (name, _) => name.to_owned(),
    };
    let Some((_, handle)) = handles.iter().find(|(name, _)| *name == task) else {
        return Err(bad_request(format!("unknown task name {task:?}")));
    };
    if let Some(handle) = handle {
        return Ok((task, handle.clone()));
    }
    let started = view
        .task_states
        .as_ref()
        .and_then(|states| states.get(&task))
        .is_some_and(|state| !state.started_at.is_zero());
    Err(if started {
        not_found(format!("task {task:?} is not running."))
    } else {
        not_found(format!("task {task:?} not started yet."))
    })
}

fn driver_error(task: &str, e: DriverError) -> Status {
    match e {
        DriverError::Command(m) | DriverError::Config(m) | DriverError::Unsupported(m) => {
            bad_request(m)
        }
        DriverError::NotRunning => not_found(format!("task {task:?} is not running.")),
        e => to_status(ErrorCode::Internal, e.to_string()),
    }
}

/// Where the session's input goes.
enum Input {
    Pipe(tokio::process::ChildStdin),
    Terminal(pipe::Sender),
}

struct Session {
    pid: i32,
    child: Child,
    /// Set (under the lock) once the command is reaped: its pid may then belong to another
    /// process.
    reaped: Arc<Mutex<bool>>,
    input: Option<Input>,
    /// The terminal's master, for resizes.
    terminal: Option<OwnedFd>,
    outputs: Vec<(Output, Box<dyn AsyncRead + Send + Unpin>)>,
    /// Removed once the session has ended.
    record: Option<SessionRecord>,
}

#[derive(Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

impl Session {
    fn new(process: caravan_drivers::ExecProcess) -> Result<Session, Status> {
        let child = process.child;
        let pid = i32::try_from(child.id()).unwrap_or(0);
        let reaped = Arc::new(Mutex::new(false));
        let failed = |what: &str, e: io::Error| {
            to_status(
                ErrorCode::Internal,
                format!("exec: setting up the {what} failed: {e}"),
            )
        };
        let mut session = Session {
            pid,
            child,
            reaped,
            input: None,
            terminal: None,
            outputs: Vec::new(),
            record: None,
        };
        // From here on a failure must not leave the command running: build, else kill.
        let built = (|| {
            if let Some(master) = process.pty_master {
                let (reader, writer, master) =
                    open_terminal(master).map_err(|e| failed("terminal", e))?;
                session.input = Some(Input::Terminal(writer));
                session.outputs.push((Output::Stdout, Box::new(reader)));
                session.terminal = Some(master);
                return Ok(());
            }
            let stdin = session.child.stdin.take();
            let stdin = stdin.map(tokio::process::ChildStdin::from_std);
            let stdout = session.child.stdout.take();
            let stdout = stdout.map(tokio::process::ChildStdout::from_std);
            let stderr = session.child.stderr.take();
            let stderr = stderr.map(tokio::process::ChildStderr::from_std);
            if let Some(stdin) = stdin {
                session.input = Some(Input::Pipe(stdin.map_err(|e| failed("stdin", e))?));
            }
            if let Some(stdout) = stdout {
                let stdout = stdout.map_err(|e| failed("stdout", e))?;
                session.outputs.push((Output::Stdout, Box::new(stdout)));
            }
            if let Some(stderr) = stderr {
                let stderr = stderr.map_err(|e| failed("stderr", e))?;
                session.outputs.push((Output::Stderr, Box::new(stderr)));
            }
            Ok(())
        })();
        match built {
            Ok(()) => Ok(session),
            Err(e) => {
                session.kill();
                let _ = session.child.wait();
                Err(e)
            }
        }
    }

    /// SIGKILLs the command's process group (the command leads it: `setsid` on a terminal, a
    /// new group otherwise) and the command itself while it is not reaped.
    fn kill(&self) {
        kill_session(self.pid, &self.reaped);
    }

    async fn run(
        mut self,
        requests: Streaming<ExecRequest>,
        tx: mpsc::Sender<Result<ExecResponse, Status>>,
        task_exit: futures::future::BoxFuture<'static, caravan_drivers::ExitResult>,
    ) {
        let mut pumps = JoinSet::new();
        for (kind, reader) in std::mem::take(&mut self.outputs) {
            pumps.spawn(pump(kind, reader, tx.clone()));
        }
        let mut input = tokio::spawn(forward_input(
            requests,
            self.input.take(),
            self.terminal.take(),
        ));
        let (pid, reaped) = (self.pid, self.reaped.clone());
        let mut child = self.child;
        let mut waiter =
            tokio::task::spawn_blocking(move || wait_and_reap(pid, &mut child, &reaped));

        let exited = tokio::select! {
            status = &mut waiter => Some(status),
            // The command is killed and reports that (128 + 9) as its exit.
            _ = task_exit => {
                kill_session(pid, &self.reaped);
                Some((&mut waiter).await)
            }
            // The gateway went away (the user closed the WebSocket, or the network dropped).
            _ = &mut input => None,
            _ = tx.closed() => None,
        };
        // Whatever happened, nothing the session started outlives it.
        kill_session(pid, &self.reaped);
        match exited {
            Some(status) => {
                let drained = async { while pumps.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained).await;
                pumps.abort_all();
                let status = match status {
                    Ok(status) => status,
                    Err(e) => Err(io::Error::other(e)),
                };
                let exit_code = match status {
                    Ok(status) => exit_code(status),
                    Err(e) => {
                        let _ = tx
                            .send(Err(to_status(
                                ErrorCode::Internal,
                                format!("waiting for the command failed: {e}"),
                            )))
                            .await;
                        input.abort();
                        return;
                    }
                };
                let exited = ExecResponse {
                    msg: Some(exec_response::Msg::Exited(ExecExited { exit_code })),
                };
                let _ = tx.send(Ok(exited)).await;
            }
            None => {
                pumps.abort_all();
                // Reap it (it was just killed).
                let _ = waiter.await;
            }
        }
        input.abort();
    }
}

fn kill_session(pid: i32, reaped: &Mutex<bool>) {
    // 0 and 1 as a group would be our own group and every process.
    if pid <= 1 {
        return;
    }
    let guard = reaped.lock().unwrap_or_else(|e| e.into_inner());
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    if !*guard {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Waits for the command to exit without reaping it, then reaps it under the `reaped` lock, so
/// a concurrent kill never signals a recycled pid.
fn wait_and_reap(pid: i32, child: &mut Child, reaped: &Mutex<bool>) -> io::Result<ExitStatus> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    if pid > 0 {
        while waitid(
            Id::Pid(Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) == Err(nix::errno::Errno::EINTR)
        {}
    }
    let mut guard = reaped.lock().unwrap_or_else(|e| e.into_inner());
    let status = child.wait();
    *guard = true;
    status
}

/// The exit code a shell would report: the code, or 128 + the signal that killed it.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Copies one output of the command into the stream, then says it closed.
async fn pump(
    kind: Output,
    mut reader: Box<dyn AsyncRead + Send + Unpin>,
    tx: mpsc::Sender<Result<ExecResponse, Status>>,
) {
    let message = |msg| Ok(ExecResponse { msg: Some(msg) });
    let mut buf = BytesMut::with_capacity(CHUNK);
    loop {
        buf.reserve(CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let data: Bytes = buf.split().freeze();
                let msg = match kind {
                    Output::Stdout => exec_response::Msg::Stdout(data),
                    Output::Stderr => exec_response::Msg::Stderr(data),
                };
                if tx.send(message(msg)).await.is_err() {
                    return;
                }
            }
        }
    }
    let close = match kind {
        Output::Stdout => exec_response::Msg::StdoutClose(true),
        Output::Stderr => exec_response::Msg::StderrClose(true),
    };
    let _ = tx.send(message(close)).await;
}

/// Applies the gateway's messages (stdin, resizes) until its stream ends — the user is gone.
async fn forward_input(
    mut requests: Streaming<ExecRequest>,
    mut input: Option<Input>,
    terminal: Option<OwnedFd>,
) {
    while let Ok(Some(request)) = requests.message().await {
        match request.msg {
            Some(exec_request::Msg::Stdin(data)) => {
                let written = match &mut input {
                    Some(Input::Pipe(stdin)) => stdin.write_all(&data).await,
                    Some(Input::Terminal(master)) => master.write_all(&data).await,
                    None => Ok(()),
                };
                if written.is_err() {
                    // The command stopped reading (closed stdin or exited): drop further input.
                    input = None;
                }
            }
            // On a terminal, end of input is the user's business (^D); the pipe is closed.
            Some(exec_request::Msg::StdinClose(true)) => {
                if matches!(input, Some(Input::Pipe(_))) {
                    input = None;
                }
            }
            Some(exec_request::Msg::TtySize(size)) => {
                if let Some(master) = &terminal {
                    let rows = u16::try_from(size.height).unwrap_or(u16::MAX);
                    let cols = u16::try_from(size.width).unwrap_or(u16::MAX);
                    if let Err(e) = caravan_isolation::set_window_size(master, rows, cols) {
                        tracing::debug!(error = %e, "exec: resizing the terminal failed");
                    }
                }
            }
            _ => {}
        }
    }
}

/// The master side of the session's terminal as the runtime's reader and writer (two
/// descriptors of it), plus one kept for resizes. The end of the terminal (every slave closed)
/// reads as EIO, which the pump takes as the end of output.
fn open_terminal(master: OwnedFd) -> io::Result<(pipe::Receiver, pipe::Sender, OwnedFd)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    // One open file: the flag holds for every descriptor of it.
    let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
    fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
    let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
    Ok((reader, writer, master))
}
