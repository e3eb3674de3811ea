//! `caravan alloc exec [options] <allocation> <command> [args...]`: runs a command inside a
//! running task, as `nomad alloc exec` does (`reference/CLI.md` §19).
//!
//! 1. Find the allocation: an ID or a prefix of one (`GET /v1/allocations?prefix=`), or with
//!    `-job` a random running allocation of the job; then read it (`GET /v1/allocation/:id`)
//!    to check `-task` or pick the group's only task.
//! 2. Open the WebSocket `/v1/client/allocation/:id/exec?task=&tty=&command=<JSON array>`
//!    (`NOMAD_TOKEN` as `X-Nomad-Token`) and speak its frames (`NOMAD-BEHAVIOR.md` §5): stdin
//!    is read by a thread and sent as `{"stdin":{"data":…}}`, then `{"stdin":{"close":true}}`
//!    at its end; stdout and stderr frames are written to ours; `{}` every 10 s; with `-t`,
//!    the terminal is in raw mode and its size is sent at the start and on every SIGWINCH.
//! 3. Exit with the command's exit code, or 1 with `failed to exec into task: <why>`.
//!
//! One task owns the socket's writing half (stdin, sizes and heartbeats queue to it), so
//! reading output never waits for input to be sent: a command that does not read its stdin
//! cannot stall its output.
//!
//! Not done: Nomad's direct connection to the node's own HTTP address first (Caravan's
//! gateway routes to the node's agent itself), TLS addresses.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use caravan_api::{ApiError, Client, QueryOptions};
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::go_bool;
use super::terminal::{self, RawTerminal};

/// The client's heartbeat, as Nomad's (`api/allocations_exec.go`).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Stdin is sent in chunks of at most this many bytes.
const STDIN_CHUNK: usize = 2048;
/// Frames queued towards the socket.
const OUTGOING: usize = 16;

#[derive(Debug, Clone, Args)]
#[command(
    override_usage = "caravan alloc exec [options] <allocation> <command> [args...]",
    about = "Run a command inside the environment of a running task (nomad alloc exec)"
)]
pub struct ExecArgs {
    /// The task to run the command in (the group's only task by default).
    #[arg(long, value_name = "NAME")]
    pub task: Option<String>,
    /// The first argument is a job ID: use a random running allocation of the job.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = go_bool, value_name = "BOOL")]
    pub job: Option<bool>,
    /// Pass stdin to the command (default true; -i=false to disable).
    #[arg(short = 'i', long = "i", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    pub stdin: Option<bool>,
    /// Allocate a pseudo-terminal (default: whether stdin and stdout are terminals).
    #[arg(short = 't', long = "t", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool, value_name = "BOOL")]
    pub tty: Option<bool>,
    /// Escape character of terminal sessions (default '~'): at the start of a line, '~.'
    /// closes the connection. 'none' disables it.
    #[arg(short = 'e', long = "e", value_name = "CHAR")]
    pub escape: Option<String>,
    /// The address of the Nomad API (default http://127.0.0.1:4646).
    #[arg(long, env = "NOMAD_ADDR", value_name = "URL")]
    pub address: Option<String>,
    /// ACL token, sent as X-Nomad-Token.
    #[arg(long, env = "NOMAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Region of the requests.
    #[arg(long, env = "NOMAD_REGION")]
    pub region: Option<String>,
    /// Namespace of the requests.
    #[arg(long, env = "NOMAD_NAMESPACE")]
    pub namespace: Option<String>,
    /// <allocation> <command> [args...]
    #[arg(value_name = "ARGS", num_args = 0.., trailing_var_arg = true,
          allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Runs the command; the process's exit code.
pub async fn run(args: ExecArgs) -> ExitCode {
    match exec(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

const HELP_HINT: &str = "For additional help try 'caravan alloc exec -help'";

async fn exec(args: ExecArgs) -> Result<ExitCode, String> {
    let job = args.job.unwrap_or(false);
    let Some(target) = args.args.first() else {
        let what = if job {
            "A job ID is required"
        } else {
            "An allocation ID is required"
        };
        return Err(format!("{what}\n{HELP_HINT}"));
    };
    if !job && target.chars().count() == 1 {
        return Err("Alloc ID must contain at least two characters".to_owned());
    }
    let command = args.args[1..].to_vec();
    if command.is_empty() {
        return Err(format!("A command is required\n{HELP_HINT}"));
    }
    let stdin = args.stdin.unwrap_or(true);
    let tty = args.tty.unwrap_or_else(terminal::is_tty);
    if tty && !stdin {
        return Err("-i must be enabled if running with tty".to_owned());
    }
    let escape = match args.escape.as_deref() {
        None => Some(b'~'),
        Some("none" | "") => None,
        Some(c) if c.len() == 1 => c.bytes().next(),
        Some(_) => return Err("-e requires 'none' or a single character".to_owned()),
    };

    // Flag, then environment (clap), then the default; empty counts as unset, as in Nomad.
    let setting = |s: &Option<String>| s.as_deref().and_then(non_empty).map(str::to_owned);
    let (token, region, namespace) = (
        setting(&args.token),
        setting(&args.region),
        setting(&args.namespace),
    );
    let address = setting(&args.address);
    let client = Client::new(address.as_deref().unwrap_or(caravan_api::DEFAULT_ADDRESS))
        .map_err(|e| format!("Error initializing client: {}", chain(&e)))?
        .with_token(token.clone().unwrap_or_default())
        .with_region(region.clone().unwrap_or_default())
        .with_namespace(namespace.clone().unwrap_or_default());

    let stub = if job {
        random_job_alloc(&client, target)
            .await
            .map_err(|e| format!("Error fetching allocations: {e}"))?
    } else {
        alloc_by_prefix(&client, target).await?
    };
    let alloc: Allocation = client
        .query(
            &format!("/v1/allocation/{}", stub.id),
            &QueryOptions::new().namespace(stub.namespace.clone()),
        )
        .await
        .map(|(alloc, _)| alloc)
        .map_err(|e| format!("Error querying allocation: {}", api_error(&e)))?;
    let task = match &args.task {
        Some(task) if !task.is_empty() => {
            validate_task(&alloc, task)?;
            task.clone()
        }
        _ => only_task(&alloc)?,
    };

    let mut params = Vec::new();
    params.extend(region.map(|r| ("region", r)));
    params.extend(namespace.map(|n| ("namespace", n)));
    let url = exec_url(&client, &params, &alloc.id, &task, tty, &command)?;
    let session = Session {
        url,
        token: token.unwrap_or_default(),
        tty,
        stdin,
        escape,
    };
    match session.run().await {
        Ended::Exited(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(255))),
        Ended::Detached => {
            eprint!("\nConnection closed\n");
            Ok(ExitCode::from(1))
        }
        Ended::Failed(why) => Err(format!("failed to exec into task: {why}")),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Finding the allocation and the task
// ---------------------------------------------------------------------------------------------

/// The fields of an allocation list stub this command uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct AllocStub {
    #[serde(rename = "ID")]
    id: String,
    namespace: String,
    #[serde(rename = "NodeID")]
    node_id: String,
    task_group: String,
    job_version: u64,
    desired_status: String,
    client_status: String,
    create_index: u64,
    create_time: i64,
    modify_time: i64,
}

/// The fields of an allocation this command uses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Allocation {
    #[serde(rename = "ID")]
    id: String,
    task_group: String,
    job: Option<Job>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Job {
    task_groups: Vec<TaskGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TaskGroup {
    name: String,
    tasks: Vec<Task>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Task {
    name: String,
}

/// Nomad's rendering of an API error: `Unexpected response code: 404 (alloc not found)`.
fn api_error(e: &ApiError) -> String {
    match e {
        ApiError::Status { status, body } => {
            format!("Unexpected response code: {status} ({})", body.trim_end())
        }
        other => chain(other),
    }
}

/// An error with its sources, `outer: inner: innermost`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The prefix as Nomad's CLI sends it: cut to an even number of hex digits (hyphens aside).
fn sanitize_uuid_prefix(prefix: &str) -> &str {
    let digits = prefix.chars().filter(|c| *c != '-').count();
    if digits % 2 == 1 {
        // Nomad cuts the last character, whatever it is.
        let mut end = prefix.len() - 1;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        &prefix[..end]
    } else {
        prefix
    }
}

async fn alloc_by_prefix(client: &Client, id: &str) -> Result<AllocStub, String> {
    let query = QueryOptions::new().prefix(sanitize_uuid_prefix(id));
    let (mut stubs, _): (Vec<AllocStub>, _) = client
        .query("/v1/allocations", &query)
        .await
        .map_err(|e| format!("Error querying allocation: {}", api_error(&e)))?;
    match stubs.len() {
        0 => Err(format!("No allocation(s) with prefix or id {id:?} found")),
        1 => Ok(stubs.remove(0)),
        _ => {
            stubs.sort_by_key(|s| std::cmp::Reverse(s.create_index));
            Err(format!(
                "Prefix matched multiple allocations\n\n{}",
                alloc_table(&stubs, now_nanos())
            ))
        }
    }
}

/// A random running allocation of `job_id` (any of its allocations if none runs).
async fn random_job_alloc(client: &Client, job_id: &str) -> Result<AllocStub, String> {
    let path = format!("/v1/job/{}/allocations", path_segment(job_id));
    let (stubs, _): (Vec<AllocStub>, _) = client
        .query(&path, &QueryOptions::new())
        .await
        .map_err(|e| format!("error querying job {job_id:?}: {}", api_error(&e)))?;
    if stubs.is_empty() {
        return Err(format!(
            "job {job_id:?} doesn't exist or it has no allocations"
        ));
    }
    let running: Vec<&AllocStub> = stubs
        .iter()
        .filter(|s| s.client_status == "running")
        .collect();
    let pool: Vec<&AllocStub> = if running.is_empty() {
        stubs.iter().collect()
    } else {
        running
    };
    let pick = (RandomState::new().hash_one(now_nanos()) % pool.len() as u64) as usize;
    Ok(pool[pick].clone())
}

/// Percent-encodes a value for one path segment.
fn path_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn task_group(alloc: &Allocation) -> Result<&TaskGroup, String> {
    alloc
        .job
        .as_ref()
        .and_then(|job| job.task_groups.iter().find(|g| g.name == alloc.task_group))
        .ok_or_else(|| format!("Could not find allocation task group: {}", alloc.task_group))
}

fn validate_task(alloc: &Allocation, task: &str) -> Result<(), String> {
    let group = task_group(alloc)?;
    if group.tasks.iter().any(|t| t.name == task) {
        return Ok(());
    }
    let names: Vec<String> = group.tasks.iter().map(|t| t.name.clone()).collect();
    Err(format!(
        "Could not find task named: {task}, found:\n{}",
        format_list(&names)
    ))
}

/// The group's only task, or Nomad's error listing them.
fn only_task(alloc: &Allocation) -> Result<String, String> {
    let group = task_group(alloc)?;
    if let [task] = group.tasks.as_slice() {
        return Ok(task.name.clone());
    }
    let mut text = format!(
        "Allocation {:?} is running the following tasks:\n",
        short_id(&alloc.id)
    );
    for t in &group.tasks {
        text.push_str(&format!("  * {}\n", t.name));
    }
    text.push_str("\nPlease specify the task.");
    Err(text)
}

// ---------------------------------------------------------------------------------------------
// Output formats (Nomad's command/helpers.go)
// ---------------------------------------------------------------------------------------------

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Nomad's allocation table (`formatAllocListStubs`, not verbose).
fn alloc_table(stubs: &[AllocStub], now: i64) -> String {
    let mut rows = vec!["ID|Node ID|Task Group|Version|Desired|Status|Created|Modified".to_owned()];
    for s in stubs {
        rows.push(format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            short_id(&s.id),
            short_id(&s.node_id),
            s.task_group,
            s.job_version,
            s.desired_status,
            s.client_status,
            pretty_time_diff(s.create_time, now),
            pretty_time_diff(s.modify_time, now),
        ));
    }
    format_list(&rows)
}

/// Nomad's `formatList` (columnize): cells split on `|` and trimmed, every column but the last
/// padded to its widest cell, joined by two spaces; an empty cell is `<none>`.
fn format_list(rows: &[String]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.split('|')
                .map(|c| match c.trim() {
                    "" => "<none>".to_owned(),
                    c => c.to_owned(),
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    cells
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Nomad's `prettyTimeDiff`: the two largest of y, mo (30 days), d, h, m, s between the two
/// times (rounded to seconds), then ` ago` or ` from now`; empty for a zero time.
fn pretty_time_diff(first: i64, now: i64) -> String {
    if first == 0 {
        return String::new();
    }
    let round = |ns: i64| (ns + 500_000_000).div_euclid(1_000_000_000);
    let (first, now) = (round(first), round(now));
    let (mut u, suffix) = if now >= first {
        ((now - first) as u64, "ago")
    } else {
        ((first - now) as u64, "from now")
    };
    let mut periods: Vec<String> = Vec::new();
    let mut push = |n: u64, unit: &str| {
        if n > 0 {
            periods.push(format!("{n}{unit}"));
        }
    };
    push(u % 60, "s");
    u /= 60;
    if u > 0 {
        push(u % 60, "m");
        u /= 60;
        if u > 0 {
            push(u % 24, "h");
            u /= 24;
        }
        if u > 0 {
            push(u % 30, "d");
            u /= 30;
        }
        if u > 0 {
            push(u % 12, "mo");
            u /= 12;
        }
        if u > 0 {
            push(u, "y");
        }
    }
    if periods.is_empty() {
        return format!("0s {suffix}");
    }
    let largest: Vec<String> = periods.into_iter().rev().take(2).collect();
    format!("{} {suffix}", largest.concat())
}

// ---------------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------------

/// The exec WebSocket's URL: the API address with `ws://` (or `wss://`) for `http(s)://`.
fn exec_url(
    client: &Client,
    params: &[(&str, String)],
    alloc_id: &str,
    task: &str,
    tty: bool,
    command: &[String],
) -> Result<String, String> {
    let address = client.address();
    let ws = if let Some(rest) = address.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = address.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        return Err(format!(
            "Error initializing client: unsupported address {address:?}"
        ));
    };
    let command = serde_json::to_string(command)
        .map_err(|e| format!("failed to exec into task: failed to marshal command: {e}"))?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("command", &command)
        .append_pair("task", task)
        .append_pair("tty", if tty { "true" } else { "false" });
    for (key, value) in params {
        query.append_pair(key, value);
    }
    Ok(format!(
        "{ws}/v1/client/allocation/{}/exec?{}",
        path_segment(alloc_id),
        query.finish()
    ))
}

struct Session {
    url: String,
    token: String,
    tty: bool,
    stdin: bool,
    escape: Option<u8>,
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The command exited with this code.
    Exited(i32),
    /// The user typed the escape sequence (`~.`).
    Detached,
    Failed(String),
}

/// What the stdin thread tells the session besides the frames it queues.
enum Control {
    Detach,
    StdinFailed(String),
}

impl Session {
    async fn run(self) -> Ended {
        // Caught from here on, so the terminal is restored whatever ends the session.
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(e) => return Ended::Failed(format!("cannot handle signals: {e}")),
        };
        // As Nomad: the terminal goes raw before connecting, and comes back before any message.
        let _raw = if self.tty {
            match RawTerminal::enter() {
                Ok(raw) => Some(raw),
                Err(e) => return Ended::Failed(e),
            }
        } else {
            None
        };
        self.connected(&mut signals).await
    }

    async fn connected(self, signals: &mut Signals) -> Ended {
        let mut request = match self.url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return Ended::Failed(e.to_string()),
        };
        if !self.token.is_empty() {
            match HeaderValue::from_str(&self.token) {
                Ok(v) => {
                    request.headers_mut().insert("X-Nomad-Token", v);
                }
                Err(_) => return Ended::Failed("the token is not a valid header value".into()),
            }
        }
        let connected = tokio::select! {
            connected = tokio_tungstenite::connect_async(request) => connected,
            why = signals.recv() => return Ended::Failed(why.to_owned()),
        };
        let socket = match connected {
            Ok((socket, _)) => socket,
            Err(tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                return Ended::Failed(format!(
                    "Unexpected response code: {} ({})",
                    resp.status().as_u16(),
                    body.trim_end()
                ));
            }
            Err(e) => return Ended::Failed(chain(&e)),
        };
        let (mut sink, mut stream) = socket.split();

        // The socket's only writer.
        let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTGOING);
        let writer = tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if sink.send(message).await.is_err() {
                    // The reading side sees the connection end and reports it.
                    return;
                }
            }
        });
        let mut helpers = vec![writer];
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Control>();
        if self.stdin {
            let escape = if self.tty { self.escape } else { None };
            if let Err(e) = spawn_stdin(out_tx.clone(), ctl_tx, escape) {
                return Ended::Failed(format!("reading stdin: {e}"));
            }
        } else {
            let _ = out_tx.send(stdin_close()).await;
        }
        if self.tty {
            helpers.push(tokio::spawn(send_window_sizes(out_tx.clone())));
        }
        helpers.push(tokio::spawn(heartbeats(out_tx.clone())));
        drop(out_tx);

        let ended = receive(&mut stream, &mut ctl_rx, signals).await;
        for helper in helpers {
            helper.abort();
        }
        ended
    }
}

/// Reads the command's output until its exit frame, the socket's end, the escape sequence
/// or a signal to stop.
async fn receive<S>(
    stream: &mut S,
    ctl: &mut mpsc::UnboundedReceiver<Control>,
    signals: &mut Signals,
) -> Ended
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            Some(control) = ctl.recv() => match control {
                Control::Detach => return Ended::Detached,
                Control::StdinFailed(e) => return Ended::Failed(format!("failed to send input: {e}")),
            },
            why = signals.recv() => return Ended::Failed(why.to_owned()),
        };
        let payload = match message {
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(data))) => data.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => return Ended::Failed(closed(frame)),
            Some(Err(e)) => return Ended::Failed(chain(&e)),
            None => return Ended::Failed("the connection ended before the exit code".to_owned()),
        };
        match decode_output(&payload) {
            Ok(Output::Stdout(data)) => {
                // As Nomad, a local output that went away does not end the session.
                let _ = stdout.write_all(&data).await;
                let _ = stdout.flush().await;
            }
            Ok(Output::Stderr(data)) => {
                let _ = stderr.write_all(&data).await;
                let _ = stderr.flush().await;
            }
            Ok(Output::Exited(code)) => return Ended::Exited(code),
            Ok(Output::Nothing) => {}
            Err(e) => return Ended::Failed(e),
        }
    }
}

/// The signals that end a session (closing the socket ends the remote command).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for one; what to say about it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
            _ = self.hangup.recv() => "hung up",
        }
    }
}

/// Why the server closed the socket: its reason, as Nomad shows it.
fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => f.reason.to_string(),
        Some(f) if f.code == CloseCode::Normal => {
            "websocket closed before receiving exit code: websocket: close 1000 (normal)".to_owned()
        }
        Some(f) => format!("websocket: close {}", u16::from(f.code)),
        None => "websocket: close 1005 (no status)".to_owned(),
    }
}

/// One server frame (`ExecStreamingOutput`); unknown fields are ignored, as Go does.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputFrame {
    stdout: Option<IoFrame>,
    stderr: Option<IoFrame>,
    exited: bool,
    result: Option<ExitResult>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IoFrame {
    data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExitResult {
    exit_code: i32,
}

#[derive(Debug, PartialEq, Eq)]
enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exited(i32),
    /// A heartbeat, a stream's close, or anything else without data.
    Nothing,
}

fn decode_output(payload: &[u8]) -> Result<Output, String> {
    let frame: OutputFrame =
        serde_json::from_slice(payload).map_err(|e| format!("invalid frame: {e}"))?;
    let data = |io: IoFrame| -> Result<Vec<u8>, String> {
        match io.data {
            Some(d) => STANDARD
                .decode(d.as_bytes())
                .map_err(|e| format!("invalid frame data: {e}")),
            None => Ok(Vec::new()),
        }
    };
    // Nomad's order: stdout, stderr, then the exit.
    if let Some(io) = frame.stdout {
        let bytes = data(io)?;
        return Ok(if bytes.is_empty() {
            Output::Nothing
        } else {
            Output::Stdout(bytes)
        });
    }
    if let Some(io) = frame.stderr {
        let bytes = data(io)?;
        return Ok(if bytes.is_empty() {
            Output::Nothing
        } else {
            Output::Stderr(bytes)
        });
    }
    match frame.result {
        Some(result) if frame.exited => Ok(Output::Exited(result.exit_code)),
        _ => Ok(Output::Nothing),
    }
}

fn stdin_data(data: &[u8]) -> Message {
    let frame = serde_json::json!({"stdin": {"data": STANDARD.encode(data)}});
    Message::text(frame.to_string())
}

fn stdin_close() -> Message {
    Message::text(r#"{"stdin":{"close":true}}"#)
}

fn tty_size(rows: u16, cols: u16) -> Message {
    let frame = serde_json::json!({"tty_size": {"height": rows, "width": cols}});
    Message::text(frame.to_string())
}

/// Reads stdin on its own thread (a blocking read is never cancelled, and the process may exit
/// while it waits), queueing stdin frames, then the close at its end.
fn spawn_stdin(
    out: mpsc::Sender<Message>,
    ctl: mpsc::UnboundedSender<Control>,
    escape: Option<u8>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("exec-stdin".to_owned())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; STDIN_CHUNK];
            let mut escaper = escape.map(Escaper::new);
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => {
                        if let Some(pending) = escaper.as_mut().and_then(Escaper::finish) {
                            let _ = out.blocking_send(stdin_data(&[pending]));
                        }
                        let _ = out.blocking_send(stdin_close());
                        return;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = ctl.send(Control::StdinFailed(e.to_string()));
                        return;
                    }
                };
                let (data, detach) = match escaper.as_mut() {
                    Some(escaper) => escaper.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() && out.blocking_send(stdin_data(&data)).is_err() {
                    return;
                }
                if detach {
                    let _ = ctl.send(Control::Detach);
                    return;
                }
            }
        })
        .map(|_| ())
}

/// Sends the terminal's size now and after every SIGWINCH.
async fn send_window_sizes(out: mpsc::Sender<Message>) {
    let mut winch = signal(SignalKind::window_change()).ok();
    loop {
        if let Some((rows, cols)) = terminal::window_size()
            && out.send(tty_size(rows, cols)).await.is_err()
        {
            return;
        }
        match winch.as_mut() {
            Some(winch) => {
                if winch.recv().await.is_none() {
                    return;
                }
            }
            None => return,
        }
    }
}

async fn heartbeats(out: mpsc::Sender<Message>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        tick.tick().await;
        if out.send(Message::text("{}")).await.is_err() {
            return;
        }
    }
}

/// OpenSSH-style escapes in typed input (Nomad's `helper/escapingio`): at the start of a line
/// (or of the session), the escape character followed by `.` detaches; doubled, it sends one;
/// followed by anything else, both go through.
#[derive(Debug)]
struct Escaper {
    escape: u8,
    state: EscapeState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    /// At the start of a line: an escape character here is held back.
    LineStart,
    /// Within a line.
    InLine,
    /// An escape character was held back; the next byte decides.
    Escaped,
}

impl Escaper {
    fn new(escape: u8) -> Escaper {
        Escaper {
            escape,
            state: EscapeState::LineStart,
        }
    }

    /// The bytes to send for `input`, and whether the escape sequence was typed (then the
    /// bytes are those before it).
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            match self.state {
                EscapeState::Escaped => {
                    if b == b'.' {
                        return (out, true);
                    }
                    out.push(self.escape);
                    if b == self.escape {
                        self.state = EscapeState::InLine;
                    } else {
                        out.push(b);
                        self.state = line_state(b);
                    }
                }
                EscapeState::LineStart if b == self.escape => self.state = EscapeState::Escaped,
                _ => {
                    out.push(b);
                    self.state = line_state(b);
                }
            }
        }
        (out, false)
    }

    /// At the end of input, a held-back escape character goes through.
    fn finish(&mut self) -> Option<u8> {
        (self.state == EscapeState::Escaped).then(|| {
            self.state = EscapeState::InLine;
            self.escape
        })
    }
}

fn line_state(b: u8) -> EscapeState {
    if b == b'\n' || b == b'\r' {
        EscapeState::LineStart
    } else {
        EscapeState::InLine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_cut_to_whole_bytes() {
        assert_eq!(sanitize_uuid_prefix("abc"), "ab");
        assert_eq!(sanitize_uuid_prefix("abcd"), "abcd");
        assert_eq!(sanitize_uuid_prefix("abcdef12-3"), "abcdef12-");
        assert_eq!(sanitize_uuid_prefix("abcdef12-34"), "abcdef12-34");
    }

    #[test]
    fn output_frames() {
        assert_eq!(
            decode_output(br#"{"stdout":{"data":"aGk="}}"#),
            Ok(Output::Stdout(b"hi".to_vec()))
        );
        assert_eq!(
            decode_output(br#"{"stderr":{"data":"aGk="}}"#),
            Ok(Output::Stderr(b"hi".to_vec()))
        );
        assert_eq!(
            decode_output(br#"{"stdout":{"close":true}}"#),
            Ok(Output::Nothing)
        );
        assert_eq!(decode_output(b"{}"), Ok(Output::Nothing));
        assert_eq!(
            decode_output(br#"{"exited":true,"result":{}}"#),
            Ok(Output::Exited(0))
        );
        assert_eq!(
            decode_output(br#"{"exited":true,"result":{"exit_code":3}}"#),
            Ok(Output::Exited(3))
        );
        assert!(decode_output(b"nope").is_err());
        assert!(decode_output(br#"{"stdout":{"data":"***"}}"#).is_err());
    }

    #[test]
    fn input_frames() {
        assert_eq!(
            stdin_data(b"hi").into_text().unwrap().as_str(),
            r#"{"stdin":{"data":"aGk="}}"#
        );
        assert_eq!(
            tty_size(40, 120).into_text().unwrap().as_str(),
            r#"{"tty_size":{"height":40,"width":120}}"#
        );
    }

    #[test]
    fn escapes() {
        let mut e = Escaper::new(b'~');
        assert_eq!(e.feed(b"ls ~/x\n"), (b"ls ~/x\n".to_vec(), false));
        assert_eq!(e.feed(b"~~x"), (b"~x".to_vec(), false));
        assert_eq!(e.feed(b"\r~y"), (b"\r~y".to_vec(), false));
        assert_eq!(e.feed(b"\n~"), (b"\n".to_vec(), false));
        assert_eq!(e.feed(b"."), (Vec::new(), true));

        let mut e = Escaper::new(b'~');
        assert_eq!(e.feed(b"echo\r~.rest"), (b"echo\r".to_vec(), true));

        let mut e = Escaper::new(b'~');
        assert_eq!(e.feed(b"~"), (Vec::new(), false));
        assert_eq!(e.finish(), Some(b'~'));
        assert_eq!(e.finish(), None);
    }

    #[test]
    fn tables_and_times() {
        let s = 1_000_000_000i64;
        let now = 1_700_000_000 * s;
        assert_eq!(pretty_time_diff(0, now), "");
        assert_eq!(pretty_time_diff(now, now), "0s ago");
        assert_eq!(pretty_time_diff(now - 303 * s, now), "5m3s ago");
        assert_eq!(pretty_time_diff(now - 3600 * s - 2 * s, now), "1h2s ago");
        assert_eq!(
            pretty_time_diff(now - (312 * 86_400 + 3 * 3600) * s, now),
            "10mo12d ago"
        );
        assert_eq!(pretty_time_diff(now + 90 * s, now), "1m30s from now");

        let rows = ["ID|Task Group|Status".to_owned(), "ab|web|".to_owned()];
        assert_eq!(
            format_list(&rows),
            "ID  Task Group  Status\nab  web         <none>"
        );
        let stub = AllocStub {
            id: "0123456789abcdef".to_owned(),
            node_id: "fedcba9876543210".to_owned(),
            task_group: "web".to_owned(),
            desired_status: "run".to_owned(),
            client_status: "running".to_owned(),
            create_time: now - 5 * s,
            modify_time: now - 4 * s,
            ..AllocStub::default()
        };
        assert_eq!(
            alloc_table(&[stub], now),
            "ID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n\
             01234567  fedcba98  web         0        run      running  5s ago   4s ago"
        );
    }

    #[test]
    fn go_bools() {
        assert_eq!(go_bool("false"), Ok(false));
        assert_eq!(go_bool("T"), Ok(true));
        assert!(go_bool("yes").is_err());
    }
}
