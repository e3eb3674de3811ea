//! Exec sessions (`/v1/client/allocation/:alloc_id/exec`, seeds/001 "Exec Allocation",
//! NOMAD-BEHAVIOR §1.9 and §5): a WebSocket on the gateway, bridged to the client agent, running
//! a command inside a real task. Black-box, with a real WebSocket client.
//!
//! Frames are checked strictly: every text frame the server sends must be one of the shapes of
//! §5, and the exit frame is compared as text (Nomad omits a zero exit code).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use caravan_tests::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(30);

/// How long a process of a session may take to go once the session is gone.
const GONE: Duration = Duration::from_secs(10);

/// The task every test execs into (unless it says otherwise): it records its pid and idles.
const IDLE: &str = "echo $$ > $NOMAD_ALLOC_DIR/data/task.pid; exec sleep 100000";

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

fn raw_task(name: &str, script: &str) -> Value {
    json!({
        "Name": name,
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16}
    })
}

/// Registers a service job of one group with `tasks`; returns its allocation's ID once it runs.
async fn run_job(c: &DevCluster, job_id: &str, tasks: Vec<Value>) -> String {
    let job = json!({
        "ID": job_id,
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail", "Delay": 100_000_000u64, "Interval": 60_000_000_000u64},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": tasks
        }]
    });
    register_job(&c.client, &job).await.unwrap();
    running_alloc_id(&c.client, job_id, WAIT).await.unwrap()
}

/// A dev agent with one running raw_exec task `t` running `script`.
async fn with_task(script: &str) -> (DevCluster, String) {
    let c = DevCluster::start().await.unwrap();
    let id = run_job(&c, "execs", vec![raw_task("t", script)]).await;
    (c, id)
}

/// Stops the job and waits until none of its allocations runs. For the end of a test that
/// stopped an allocation: its replacement must not be starting while the agent is killed (a
/// task launched as its agent dies can outlive it).
async fn settle(c: &DevCluster, job_id: &str) {
    let r = send(
        &c.client,
        api::Method::DELETE,
        &format!("/v1/job/{job_id}"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        &format!("every allocation of {job_id} to end"),
        WAIT,
        || async {
            let allocs = job_alloc_docs(&c.client, job_id).await?;
            Ok(allocs.iter().all(|a| {
                matches!(
                    a["ClientStatus"].as_str(),
                    Some("complete" | "failed" | "lost")
                )
            }))
        },
    )
    .await
    .unwrap();
}

fn alloc_dir(c: &DevCluster, id: &str) -> PathBuf {
    c.data_dir.path().join("client").join("alloc").join(id)
}

/// The pid the [`IDLE`] task wrote.
async fn task_pid(c: &DevCluster, id: &str) -> i32 {
    let path = alloc_dir(c, id).join("alloc/data/task.pid");
    let mut pid = 0;
    wait_for("the task to write its pid", WAIT, || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let found = pid > 1;
        async move { Ok(found) }
    })
    .await
    .unwrap();
    pid
}

async fn client_status(c: &DevCluster, id: &str) -> String {
    let (a, _) = get_json(&c.client, &format!("/v1/allocation/{id}"))
        .await
        .unwrap();
    a["ClientStatus"].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Whether `pid` is a live process (a zombie counts as gone: it runs nothing).
fn alive(pid: i32) -> bool {
    assert!(pid > 1, "not a pid to look at: {pid}");
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `pid` exists at all (a zombie, killed but not reaped, still does).
fn exists(pid: i32) -> bool {
    assert!(pid > 1, "not a pid to look at: {pid}");
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_gone(what: &str, pid: i32) {
    wait_for(&format!("{what} (pid {pid}) to be gone"), GONE, || {
        let gone = !exists(pid);
        async move { Ok(gone) }
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}: alive {}, /proc/{pid}/stat {:?}",
            alive(pid),
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
        )
    });
}

/// A process's start time (clock ticks after boot): with the pid, its identity.
fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Processes a test learned about, SIGKILLed when the test ends if they are still there: a
/// failing test must not leave its commands behind (a SIGKILLed agent cannot end its sessions).
/// Declared before the cluster, so it runs after the cluster is gone.
#[derive(Default)]
struct Leftovers(std::sync::Mutex<Vec<(i32, String)>>);

impl Leftovers {
    fn watch(&self, pid: i32) {
        if pid > 1
            && let Some(start) = start_time(pid)
        {
            self.0.lock().unwrap().push((pid, start));
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let watched = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for (pid, start) in watched {
            // The same process (not a recycled pid), and never 0, 1 or a group.
            if pid > 1 && start_time(pid).as_ref() == Some(&start) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The numbers in `text` that follow `prefix` directly (`pid=123` → 123), in order.
fn numbers_after(text: &str, prefix: &str) -> Vec<i32> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let digits: String = text[i + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The WebSocket client
// ---------------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Percent-encodes a query value (everything but the unreserved characters).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `command=<the JSON array>` followed by `extra` (e.g. `&tty=true`).
fn query(command: &[&str], extra: &str) -> String {
    format!("command={}{extra}", pct(&json!(command).to_string()))
}

fn exec_url(c: &DevCluster, id: &str, query: &str) -> String {
    format!(
        "ws://{}/v1/client/allocation/{id}/exec?{query}",
        c.http_addr
    )
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// An HTTP answer refusing the upgrade.
#[derive(Debug)]
struct Refused {
    status: u16,
    body: String,
    content_type: Option<String>,
}

/// What the server sends, each text frame checked against the shapes of §5.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Heartbeat,
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    StdoutClose,
    StderrClose,
    /// The exit frame, as the exact text received.
    Exited(String),
    /// A close frame: code and reason (1005 when it carried none).
    Close(u16, String),
    /// The connection ended without a close frame (or a protocol error): what the client saw.
    End(String),
}

fn parse_frame(text: &str) -> Event {
    let v: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("a frame not JSON ({e}): {text}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("a frame not an object: {text}"));
    if obj.is_empty() {
        return Event::Heartbeat;
    }
    if obj.contains_key("exited") {
        assert_eq!(v["exited"], true, "{text}");
        assert!(
            v["result"].is_object(),
            "an exit frame without result: {text}"
        );
        assert_eq!(obj.len(), 2, "an exit frame with extra keys: {text}");
        return Event::Exited(text.to_owned());
    }
    assert_eq!(obj.len(), 1, "a frame with several streams: {text}");
    let (stream, body) = obj.iter().next().unwrap();
    let body = body
        .as_object()
        .unwrap_or_else(|| panic!("a stream frame whose body is not an object: {text}"));
    assert_eq!(body.len(), 1, "a stream frame with several fields: {text}");
    let close = body.get("close").map(|c| {
        assert_eq!(c, &json!(true), "{text}");
    });
    let data = body.get("data").map(|d| {
        let d = d
            .as_str()
            .unwrap_or_else(|| panic!("data not a string: {text}"));
        base64::engine::general_purpose::STANDARD
            .decode(d)
            .unwrap_or_else(|e| panic!("data not base64 ({e}): {text}"))
    });
    match (stream.as_str(), data, close) {
        ("stdout", Some(d), None) => Event::Stdout(d),
        ("stderr", Some(d), None) => Event::Stderr(d),
        ("stdout", None, Some(())) => Event::StdoutClose,
        ("stderr", None, Some(())) => Event::StderrClose,
        _ => panic!("an unknown frame: {text}"),
    }
}

/// Everything a session sent until it ended.
#[derive(Debug, Default)]
struct Outcome {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Every event, heartbeats included, in order; the last is a `Close` or an `End`.
    events: Vec<Event>,
}

impl Outcome {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The text of the exit frame.
    fn exited(&self) -> &str {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Exited(t) => Some(t.as_str()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no exit frame: {:?}", self.brief()))
    }

    fn close(&self) -> (u16, &str) {
        match self.events.last() {
            Some(Event::Close(code, reason)) => (*code, reason.as_str()),
            other => panic!("no close frame at the end: {other:?} in {:?}", self.brief()),
        }
    }

    /// The events without output data, for failure messages.
    fn brief(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| match e {
                Event::Stdout(d) => format!("stdout {} bytes", d.len()),
                Event::Stderr(d) => format!("stderr {:?}", String::from_utf8_lossy(d)),
                e => format!("{e:?}"),
            })
            .collect()
    }

    /// Checks a normal end: the exit frame is `exited` exactly, after every output frame and
    /// both closes (when `closes`), then a close frame with 1000.
    fn assert_normal_end(&self, exited: &str, closes: bool) {
        let brief = self.brief();
        let last_frames: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| !matches!(e, Event::Heartbeat))
            .collect();
        let n = last_frames.len();
        assert!(n >= 2, "{brief:?}");
        assert_eq!(
            last_frames[n - 2],
            &Event::Exited(exited.to_owned()),
            "{brief:?}"
        );
        assert!(
            matches!(last_frames[n - 1], Event::Close(1000, _)),
            "a close frame with 1000 after the exit frame: {brief:?}"
        );
        let exits = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::Exited(_)))
            .count();
        assert_eq!(exits, 1, "{brief:?}");
        if closes {
            for (data, close) in [
                (
                    (|e: &Event| matches!(e, Event::Stdout(_))) as fn(&Event) -> bool,
                    Event::StdoutClose,
                ),
                (
                    |e: &Event| matches!(e, Event::Stderr(_)),
                    Event::StderrClose,
                ),
            ] {
                let at = self
                    .events
                    .iter()
                    .position(|e| e == &close)
                    .unwrap_or_else(|| panic!("no {close:?}: {brief:?}"));
                assert!(
                    !self.events[at..].iter().any(data),
                    "output after {close:?}: {brief:?}"
                );
                assert_eq!(
                    self.events.iter().filter(|e| *e == &close).count(),
                    1,
                    "{brief:?}"
                );
            }
        }
    }
}

struct Session {
    ws: Ws,
    out: Outcome,
}

impl Session {
    /// Opens a session with the query string `query` (and an `X-Nomad-Token`, if given).
    async fn try_open(
        c: &DevCluster,
        id: &str,
        query: &str,
        token: Option<&str>,
    ) -> Result<Session, Refused> {
        let mut request = exec_url(c, id, query).into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("X-Nomad-Token", HeaderValue::from_str(token).unwrap());
        }
        let connected = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("no answer to the upgrade within {WAIT:?}: {query}"));
        match connected {
            Ok((ws, resp)) => {
                assert_eq!(resp.status(), 101);
                Ok(Session {
                    ws,
                    out: Outcome::default(),
                })
            }
            Err(tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                content_type: resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default())
                    .into_owned(),
            }),
            Err(e) => panic!("connecting to the exec endpoint ({query}): {e}"),
        }
    }

    async fn open(c: &DevCluster, id: &str, query: &str) -> Session {
        match Session::try_open(c, id, query, None).await {
            Ok(s) => s,
            Err(r) => panic!("exec {query}: refused: {r:?}"),
        }
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    async fn stdin(&mut self, data: &[u8]) {
        self.send(json!({"stdin": {"data": b64(data)}})).await;
    }

    async fn close_stdin(&mut self) {
        self.send(json!({"stdin": {"close": true}})).await;
    }

    async fn resize(&mut self, height: u32, width: u32) {
        self.send(json!({"tty_size": {"height": height, "width": width}}))
            .await;
    }

    /// The next event (recorded in the outcome too); `None` once the session ended.
    async fn next(&mut self) -> Option<Event> {
        if matches!(
            self.out.events.last(),
            Some(Event::Close(..) | Event::End(_))
        ) {
            return None;
        }
        let event = loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "nothing from the server within {WAIT:?}; so far {:?}, stdout {:?}",
                        self.out.brief(),
                        self.out.stdout()
                    )
                });
            break match msg {
                None => Event::End("the stream ended".into()),
                Some(Err(e)) => Event::End(e.to_string()),
                Some(Ok(Message::Text(t))) => parse_frame(t.as_str()),
                Some(Ok(Message::Close(Some(f)))) => {
                    Event::Close(u16::from(f.code), f.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => Event::Close(1005, String::new()),
                Some(Ok(Message::Binary(b))) => panic!("a binary frame: {b:?}"),
                Some(Ok(_)) => continue,
            };
        };
        match &event {
            Event::Stdout(d) => self.out.stdout.extend_from_slice(d),
            Event::Stderr(d) => self.out.stderr.extend_from_slice(d),
            _ => {}
        }
        self.out.events.push(event.clone());
        Some(event)
    }

    /// Reads until the stdout received after byte `from` contains `want`.
    async fn read_until(&mut self, from: usize, want: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !String::from_utf8_lossy(&self.out.stdout[from.min(self.out.stdout.len())..])
            .contains(want)
        {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "the session ended before {want:?}: {:?}, stdout {:?}",
                    self.out.brief(),
                    self.out.stdout()
                ),
                Err(_) => panic!(
                    "no {want:?} within {WAIT:?}: {:?}, stdout {:?}",
                    self.out.brief(),
                    self.out.stdout()
                ),
            }
        }
    }

    /// Reads until the stdout received after byte `from` has a number right after `prefix`;
    /// returns it.
    async fn read_number(&mut self, from: usize, prefix: &str) -> i32 {
        loop {
            let text = String::from_utf8_lossy(&self.out.stdout[from.min(self.out.stdout.len())..])
                .into_owned();
            if let Some(n) = numbers_after(&text, prefix).first() {
                return *n;
            }
            if self.next().await.is_none() {
                panic!(
                    "the session ended before a number after {prefix:?}: {:?}, stdout {text:?}",
                    self.out.brief()
                );
            }
        }
    }

    /// Reads to the end of the session (heartbeats keep a session alive: a deadline for all).
    async fn finish(mut self) -> Outcome {
        let all = async { while self.next().await.is_some() {} };
        if tokio::time::timeout(WAIT, all).await.is_err() {
            panic!(
                "the session did not end within {WAIT:?}: {:?}, stdout {:?}",
                self.out.brief(),
                self.out.stdout()
            );
        }
        self.out
    }
}

/// Runs `command` (with `extra` query parameters) to its end, without input.
async fn run(c: &DevCluster, id: &str, command: &[&str], extra: &str) -> Outcome {
    Session::open(c, id, &query(command, extra))
        .await
        .finish()
        .await
}

/// Opens a session whose command prints `pid=<its pid>` first; returns the pid too.
async fn open_with_pid(
    left: &Leftovers,
    c: &DevCluster,
    id: &str,
    command: &[&str],
    extra: &str,
) -> (Session, i32) {
    let mut s = Session::open(c, id, &query(command, extra)).await;
    let pid = s.read_number(0, "pid=").await;
    assert!(pid > 1, "{:?}", s.out.stdout());
    left.watch(pid);
    (s, pid)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_command_runs_and_its_output_and_exit_arrive_in_order() {
    let (c, id) = with_task(IDLE).await;

    // The group's only task is chosen when none is named.
    let out = run(&c, &id, &["echo", "hello"], "").await;
    assert_eq!(out.stdout(), "hello\n", "{:?}", out.brief());
    assert_eq!(out.stderr(), "");
    assert_eq!(out.exited(), r#"{"exited":true,"result":{}}"#);
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    assert_eq!(out.close().0, 1000);

    // A non-zero exit code, and stderr apart from stdout.
    let out = run(
        &c,
        &id,
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
        "&task=t&tty=false",
    )
    .await;
    assert_eq!(out.stdout(), "out\n");
    assert_eq!(out.stderr(), "err\n");
    out.assert_normal_end(r#"{"exited":true,"result":{"exit_code":3}}"#, true);

    // Killed by a signal: 128 + the signal.
    let out = run(&c, &id, &["/bin/sh", "-c", "kill -9 $$"], "").await;
    out.assert_normal_end(r#"{"exited":true,"result":{"exit_code":137}}"#, true);

    // The command runs in the task's directory with the task's environment (raw_exec).
    let out = run(
        &c,
        &id,
        &["/bin/sh", "-c", "pwd -P; echo $NOMAD_TASK_NAME; ls"],
        "",
    )
    .await;
    let dir = alloc_dir(&c, &id).join("t");
    let dir = dir.canonicalize().unwrap_or(dir);
    assert_eq!(
        out.stdout().lines().take(2).collect::<Vec<_>>(),
        [dir.display().to_string().as_str(), "t"],
        "{}",
        out.stdout()
    );
    assert!(
        out.stdout().lines().any(|l| l == "local"),
        "{}",
        out.stdout()
    );

    // Only its standard streams: nothing the agent inherited or opened leaks into it (`ls`
    // lists its own descriptors, 3 being the directory it reads).
    let out = run(&c, &id, &["/bin/ls", "/proc/self/fd"], "").await;
    assert_eq!(out.stdout(), "0\n1\n2\n3\n");

    // Sessions side by side, each with its own output.
    let sessions = (0..16).map(|i| {
        let c = &c;
        let id = &id;
        async move {
            let word = format!("session-{i}");
            let out = run(
                c,
                id,
                &["/bin/sh", "-c", &format!("sleep 0.2; echo {word}")],
                "",
            )
            .await;
            (word, out)
        }
    });
    for (word, out) in futures::future::join_all(sessions).await {
        assert_eq!(out.stdout(), format!("{word}\n"), "{:?}", out.brief());
        out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    }

    // The task went on.
    assert!(alive(task_pid(&c, &id).await));
    assert_eq!(client_status(&c, &id).await, "running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_session_is_interactive() {
    let left = Leftovers::default();
    let (c, id) = with_task(IDLE).await;
    let mut s = Session::open(&c, &id, &query(&["/bin/sh"], "&tty=true")).await;
    s.resize(40, 123).await;
    let mut at = s.out.stdout.len();
    s.stdin(b"stty size\n").await;
    s.read_until(at, "40 123").await;

    at = s.out.stdout.len();
    s.resize(50, 80).await;
    s.stdin(b"stty size\n").await;
    s.read_until(at, "50 80").await;

    at = s.out.stdout.len();
    s.stdin(b"echo $((6*7))\n").await;
    s.read_until(at, "42").await;

    // stderr is the terminal too: it arrives as stdout.
    at = s.out.stdout.len();
    s.stdin(b"echo to-$((1+1))-err >&2\n").await;
    s.read_until(at, "to-2-err").await;
    assert!(s.out.stderr.is_empty(), "{:?}", s.out.brief());
    // A terminal: `test -t` holds for every standard stream.
    at = s.out.stdout.len();
    s.stdin(b"test -t 0 && test -t 1 && test -t 2 && echo tty-$((2+2))\n")
        .await;
    s.read_until(at, "tty-4").await;
    // A terminal type for full-screen programs (the task's own, else xterm-256color).
    at = s.out.stdout.len();
    s.stdin(b"test -n \"$TERM\" && echo term-is-$((1+2))\n")
        .await;
    s.read_until(at, "term-is-3").await;

    // ^C interrupts the foreground command, and the shell answers again.
    at = s.out.stdout.len();
    s.stdin(b"sh -c 'echo sleeping-$$; exec sleep 100'\n").await;
    // The terminal echoes the line with `$$`; the command prints its pid.
    let pid = s.read_number(at, "sleeping-").await;
    left.watch(pid);
    wait_for("the sleep to run", WAIT, || {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        async move { Ok(comm.trim() == "sleep") }
    })
    .await
    .unwrap();
    s.stdin(b"\x03").await;
    wait_gone("the interrupted sleep", pid).await;
    at = s.out.stdout.len();
    s.stdin(b"echo back-$((3*5))\n").await;
    s.read_until(at, "back-15").await;

    s.stdin(b"exit 5\n").await;
    let out = s.finish().await;
    out.assert_normal_end(r#"{"exited":true,"result":{"exit_code":5}}"#, false);
    assert!(out.stderr.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_output_arrives_intact_and_in_order() {
    let (c, id) = with_task(IDLE).await;
    let out = run(
        &c,
        &id,
        &[
            "/bin/sh",
            "-c",
            "head -c 10000000 /dev/urandom > local/big && cat local/big",
        ],
        "",
    )
    .await;
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    let on_disk = std::fs::read(alloc_dir(&c, &id).join("t/local/big")).unwrap();
    assert_eq!(on_disk.len(), 10_000_000);
    assert_eq!(out.stdout.len(), on_disk.len(), "{:?}", out.brief().len());
    // Compared by position: the first difference, not a 10 MB dump.
    if let Some(i) = out.stdout.iter().zip(&on_disk).position(|(a, b)| a != b) {
        panic!("the output differs from the file at byte {i}");
    }
    let mut seen = [false; 256];
    for b in &out.stdout {
        seen[*b as usize] = true;
    }
    assert!(seen.iter().all(|s| *s), "every byte value arrives");
    assert!(out.stderr.is_empty(), "{}", out.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_is_forwarded_and_closing_it_ends_cat() {
    let (c, id) = with_task(IDLE).await;
    let mut s = Session::open(&c, &id, &query(&["cat"], "")).await;
    // A heartbeat and a resize (no terminal) are accepted and change nothing.
    s.send(json!({})).await;
    s.resize(24, 80).await;
    s.stdin(b"abc").await;
    s.read_until(0, "abc").await;
    s.stdin(&[0, 0xff, b'\n', 0x80]).await;
    while s.out.stdout.len() < 7 {
        assert!(s.next().await.is_some(), "{:?}", s.out.brief());
    }
    assert_eq!(s.out.stdout, b"abc\0\xff\n\x80");
    s.close_stdin().await;
    let out = s.finish().await;
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    assert_eq!(out.stdout, b"abc\0\xff\n\x80");

    // Much input, faster than the command reads it: all of it arrives, in order.
    let chunk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let mut s = Session::open(
        &c,
        &id,
        &query(&["/bin/sh", "-c", "sleep 0.5; cat > local/in"], ""),
    )
    .await;
    for _ in 0..64 {
        s.stdin(&chunk).await;
    }
    s.close_stdin().await;
    s.finish()
        .await
        .assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    let written = std::fs::read(alloc_dir(&c, &id).join("t/local/in")).unwrap();
    assert_eq!(written.len(), 64 * chunk.len());
    assert!(written.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_that_goes_away_leaves_no_process_and_the_task_runs_on() {
    let left = Leftovers::default();
    let (c, id) = with_task(IDLE).await;
    let task = task_pid(&c, &id).await;

    // The TCP connection drops (no close frame): the command and its background child go.
    let (mut s, pid) = open_with_pid(
        &left,
        &c,
        &id,
        &["/bin/sh", "-c", "sleep 1001 & echo pid=$$ child=$!; wait"],
        "",
    )
    .await;
    let child = s.read_number(0, "child=").await;
    left.watch(child);
    assert!(alive(pid) && alive(child));
    drop(s);
    wait_gone("the dropped session's command", pid).await;
    wait_gone("the dropped session's background child", child).await;

    // The same with a terminal.
    let (s, pid) = open_with_pid(
        &left,
        &c,
        &id,
        &["/bin/sh", "-c", "echo pid=$$; exec sleep 1002"],
        "&tty=true",
    )
    .await;
    assert!(alive(pid));
    drop(s);
    wait_gone("the dropped terminal session's command", pid).await;

    // A close frame from the client ends it too.
    let (mut s, pid) = open_with_pid(
        &left,
        &c,
        &id,
        &["/bin/sh", "-c", "echo pid=$$; exec sleep 1003"],
        "",
    )
    .await;
    s.ws.close(None).await.unwrap();
    // The server answers the close; whatever else it sent before, no exit code is made up.
    while let Some(e) = s.next().await {
        assert!(
            !matches!(e, Event::Stdout(_) | Event::Stderr(_)),
            "{:?}",
            s.out.brief()
        );
    }
    wait_gone("the closed session's command", pid).await;

    // The task is untouched.
    assert!(alive(task), "the task (pid {task}) must keep running");
    assert_eq!(client_status(&c, &id).await, "running");
    let out = run(&c, &id, &["echo", "still here"], "").await;
    assert_eq!(out.stdout(), "still here\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_task_is_entered_in_its_isolation() {
    if !isolation_available() {
        eprintln!("skipping: this machine cannot isolate tasks (needs root and cgroups)");
        return;
    }
    let c = DevCluster::start().await.unwrap();
    let mut t = raw_task("iso", "echo hi > /local/marker; exec sleep 100000");
    t["Driver"] = json!("exec");
    t["Resources"] = json!({"CPU": 100, "MemoryMB": 48});
    let id = run_job(&c, "iso", vec![t]).await;
    let marker = alloc_dir(&c, &id).join("iso/local/marker");
    wait_for("the task to write its marker", WAIT, || {
        let there = marker.exists();
        async move { Ok(there) }
    })
    .await
    .unwrap();

    let out = run(&c, &id, &["/bin/cat", "/local/marker"], "&task=iso").await;
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
    assert_eq!(out.stdout(), "hi\n", "{}", out.stderr());

    // Its pid namespace: a small pid, and a handful of processes rather than the host's.
    let out = run(
        &c,
        &id,
        &[
            "/bin/sh",
            "-c",
            "echo pid=$$; echo count=$(ls /proc | grep -c '^[0-9]'); hostname",
        ],
        "",
    )
    .await;
    let text = out.stdout();
    let pid = numbers_after(&text, "pid=");
    let count = numbers_after(&text, "count=");
    assert!(pid.len() == 1 && pid[0] < 100, "{text} {}", out.stderr());
    assert!(count.len() == 1 && count[0] < 20, "{text}");
    assert!(
        text.lines().any(|l| l == "iso"),
        "the task's hostname: {text}"
    );
    // The host's root is not visible: the task's own root is.
    let out = run(
        &c,
        &id,
        &["/bin/sh", "-c", "test -e /local/marker && echo in-task"],
        "",
    )
    .await;
    assert_eq!(out.stdout(), "in-task\n");
    // In the task's cgroup, under its limits.
    let out = run(&c, &id, &["/bin/cat", "/proc/self/cgroup"], "").await;
    assert!(
        out.stdout().contains(&format!("{id}.iso")),
        "the exec'd command is in the task's cgroup: {}",
        out.stdout()
    );
    // A terminal inside the isolation.
    let out = run(
        &c,
        &id,
        &["/bin/sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"],
        "&tty=true",
    )
    .await;
    assert!(out.stdout().contains("on-a-tty"), "{:?}", out.brief());
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, false);
}

/// Whether this machine can run exec tasks (root and cgroups), as tests/tasks.rs decides.
fn isolation_available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let cgroups = std::path::Path::new("/sys/fs/cgroup/memory").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    root && cgroups
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_before_the_upgrade() {
    let c = DevCluster::start().await.unwrap();
    let id = run_job(&c, "one", vec![raw_task("t", IDLE)]).await;
    let two = run_job(
        &c,
        "two",
        vec![raw_task("a", IDLE), raw_task("b", "exec sleep 100000")],
    )
    .await;
    let unknown = uuid_with_prefix("");
    let echo = query(&["echo", "hi"], "");
    let cases: Vec<(String, String, u16, String)> = vec![
        (id.clone(), String::new(), 400, "command".into()),
        (id.clone(), "task=t".into(), 400, "command".into()),
        (id.clone(), "command=notjson".into(), 400, "command".into()),
        (id.clone(), "command=".into(), 400, "command".into()),
        (
            id.clone(),
            format!("command={}", pct("[]")),
            400,
            "command".into(),
        ),
        (
            id.clone(),
            format!("command={}", pct("[1,2]")),
            400,
            "command".into(),
        ),
        (
            id.clone(),
            format!("command={}", pct("\"ls\"")),
            400,
            "command".into(),
        ),
        (
            id.clone(),
            format!("command={}", pct("{}")),
            400,
            "command".into(),
        ),
        (
            id.clone(),
            format!("{echo}&task=nope"),
            400,
            "unknown task name \"nope\"".into(),
        ),
        (
            two.clone(),
            echo.clone(),
            400,
            "must provide task name".into(),
        ),
        (
            two.clone(),
            format!("{echo}&task=c"),
            400,
            "unknown task name \"c\"".into(),
        ),
        (
            unknown.clone(),
            echo.clone(),
            404,
            format!("Unknown allocation \"{unknown}\""),
        ),
        ("not-a-uuid".into(), echo.clone(), 400, String::new()),
        (id[..8].to_owned(), echo.clone(), 400, String::new()),
        (
            id.clone(),
            query(&["/no/such/program"], ""),
            400,
            "/no/such/program".into(),
        ),
        (id.clone(), format!("{echo}&tty=maybe"), 400, "tty".into()),
        (
            id.clone(),
            format!("{echo}&ws_handshake=maybe"),
            400,
            "ws_handshake".into(),
        ),
    ];
    for (alloc, q, status, needle) in cases {
        match Session::try_open(&c, &alloc, &q, None).await {
            Ok(s) => {
                let out = s.finish().await;
                panic!(
                    "{alloc} {q}: upgraded instead of {status}: {:?}",
                    out.brief()
                );
            }
            Err(r) => {
                assert_eq!(r.status, status, "{alloc} {q}: {r:?}");
                assert!(!r.body.is_empty(), "{alloc} {q}: an empty message");
                assert!(
                    r.body.contains(&needle),
                    "{alloc} {q}: {:?} does not mention {needle:?}",
                    r.body
                );
                assert!(
                    r.content_type
                        .as_deref()
                        .is_some_and(|t| t.starts_with("text/plain")),
                    "{alloc} {q}: {r:?}"
                );
            }
        }
    }

    // A plain GET, no upgrade.
    let r = send(
        &c.client,
        api::Method::GET,
        &format!("/v1/client/allocation/{id}/exec?{echo}"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(!r.text().is_empty());

    // Naming a task of the two works.
    let out = run(
        &c,
        &two,
        &["/bin/sh", "-c", "echo $NOMAD_TASK_NAME"],
        "&task=b",
    )
    .await;
    assert_eq!(out.stdout(), "b\n");

    // A stopped allocation.
    let r = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for("the allocation to stop", WAIT, || async {
        Ok(client_status(&c, &id).await == "complete")
    })
    .await
    .unwrap();
    match Session::try_open(&c, &id, &echo, None).await {
        Ok(s) => panic!(
            "a stopped allocation upgraded: {:?}",
            s.finish().await.brief()
        ),
        Err(r) => {
            assert_eq!(r.status, 400, "{r:?}");
            assert!(r.body.contains("not running"), "{r:?}");
        }
    }
    settle(&c, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_close_the_session_and_kill_its_command() {
    let left = Leftovers::default();
    let (c, id) = with_task(IDLE).await;
    for bad in [
        "[]",
        "not json",
        r#"{"foo":1}"#,
        r#"{"stdin":{"data":"***"}}"#,
        r#"{"stdin":"abc"}"#,
        r#"{"tty_size":{"height":"x","width":80}}"#,
    ] {
        let (mut s, pid) = open_with_pid(
            &left,
            &c,
            &id,
            &["/bin/sh", "-c", "echo pid=$$; exec cat"],
            "",
        )
        .await;
        s.send_text(bad).await;
        let out = s.finish().await;
        let (code, reason) = out.close();
        assert_eq!(code, 1008, "{bad}: {:?}", out.brief());
        assert!(!reason.is_empty(), "{bad}: a close without a reason");
        assert!(
            !out.events.iter().any(|e| matches!(e, Event::Exited(_))),
            "{bad}: {:?}",
            out.brief()
        );
        wait_gone(&format!("the command of the session sent {bad}"), pid).await;
    }
    // A binary frame is read as JSON too, as Nomad's ReadJSON does.
    let mut s = Session::open(&c, &id, &query(&["cat"], "")).await;
    let frame = json!({"stdin": {"data": b64(b"bin")}}).to_string();
    s.ws.send(Message::binary(frame.into_bytes()))
        .await
        .unwrap();
    s.read_until(0, "bin").await;
    s.close_stdin().await;
    s.finish()
        .await
        .assert_normal_end(r#"{"exited":true,"result":{}}"#, true);

    // The agent is unharmed.
    let out = run(&c, &id, &["echo", "ok"], "").await;
    assert_eq!(out.stdout(), "ok\n");
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_handshake_frame_carries_the_token() {
    let (c, id) = with_task(IDLE).await;
    let q = query(&["echo", "hi"], "&ws_handshake=true");

    let mut s = Session::open(&c, &id, &q).await;
    s.send(json!({"version": 1, "auth_token": uuid_with_prefix("")}))
        .await;
    let out = s.finish().await;
    assert_eq!(out.stdout(), "hi\n", "{:?}", out.brief());
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);

    // The same token in the header agrees.
    let token = uuid_with_prefix("");
    let mut s = match Session::try_open(&c, &id, &q, Some(&token)).await {
        Ok(s) => s,
        Err(r) => panic!("{r:?}"),
    };
    s.send(json!({"version": 1, "auth_token": token})).await;
    assert_eq!(s.finish().await.stdout(), "hi\n");

    // A version other than 1.
    let mut s = Session::open(&c, &id, &q).await;
    s.send(json!({"version": 2, "auth_token": "x"})).await;
    let out = s.finish().await;
    let (code, reason) = out.close();
    assert_eq!(code, 1008, "{:?}", out.brief());
    assert!(reason.contains("unexpected handshake value"), "{reason:?}");
    assert!(out.stdout.is_empty(), "nothing ran: {:?}", out.brief());

    // A token other than the header's.
    let mut s = match Session::try_open(&c, &id, &q, Some(&uuid_with_prefix(""))).await {
        Ok(s) => s,
        Err(r) => panic!("{r:?}"),
    };
    s.send(json!({"version": 1, "auth_token": uuid_with_prefix("")}))
        .await;
    let out = s.finish().await;
    let (code, reason) = out.close();
    assert_eq!(code, 1008, "{:?}", out.brief());
    assert_eq!(reason, "handshake auth token mismatched auth header token");
    assert!(out.stdout.is_empty(), "nothing ran: {:?}", out.brief());

    // The first frame is not a handshake at all.
    let mut s = Session::open(&c, &id, &q).await;
    s.send_text("not json").await;
    let out = s.finish().await;
    assert_eq!(out.close().0, 1008, "{:?}", out.brief());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_gets_heartbeats() {
    let (c, id) = with_task(IDLE).await;
    let out = run(&c, &id, &["sleep", "7"], "").await;
    let exit = out
        .events
        .iter()
        .position(|e| matches!(e, Event::Exited(_)))
        .unwrap_or_else(|| panic!("{:?}", out.brief()));
    assert!(
        out.events[..exit].contains(&Event::Heartbeat),
        "a {{}} frame within 7 s: {:?}",
        out.brief()
    );
    out.assert_normal_end(r#"{"exited":true,"result":{}}"#, true);
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_the_allocation_ends_its_sessions() {
    let left = Leftovers::default();
    let (c, id) = with_task(IDLE).await;
    let (s, pid) = open_with_pid(
        &left,
        &c,
        &id,
        &["/bin/sh", "-c", "echo pid=$$; exec sleep 1004"],
        "",
    )
    .await;
    let r = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The task's kill timeout is 5 s: its sessions end with it, not when their clients leave.
    let out = s.finish().await;
    assert!(
        matches!(out.events.last(), Some(Event::Close(..))),
        "{:?}",
        out.brief()
    );
    wait_gone("the stopped allocation's exec command", pid).await;
    settle(&c, "execs").await;
}

/// Tasks that are there but have nothing to exec into: Nomad's texts, as plain HTTP errors.
#[tokio::test(flavor = "multi_thread")]
async fn tasks_that_do_not_run_are_refused() {
    let c = DevCluster::start().await.unwrap();
    let mut init = raw_task("init", "true");
    init["Lifecycle"] = json!({"Hook": "prestart", "Sidecar": false});
    let mut post_stop = raw_task("cleanup", "true");
    post_stop["Lifecycle"] = json!({"Hook": "poststop"});
    let id = run_job(&c, "hooks", vec![raw_task("main", IDLE), init, post_stop]).await;
    let mock = run_job(
        &c,
        "mock",
        vec![json!({
            "Name": "m",
            "Driver": "mock_driver",
            "Config": {"run_for": "1h"},
            "Resources": {"CPU": 20, "MemoryMB": 16}
        })],
    )
    .await;
    let echo = query(&["echo", "hi"], "");
    for (alloc, task, status, needle) in [
        (&id, "init", 404, "task \"init\" is not running."),
        (&id, "cleanup", 404, "task \"cleanup\" not started yet."),
        (&mock, "m", 400, "cannot run commands"),
    ] {
        match Session::try_open(&c, alloc, &format!("{echo}&task={task}"), None).await {
            Ok(s) => panic!("{task}: upgraded: {:?}", s.finish().await.brief()),
            Err(r) => {
                assert_eq!(r.status, status, "{task}: {r:?}");
                assert!(r.body.contains(needle), "{task}: {r:?}");
            }
        }
    }
    // The running task of the same allocation is there to exec into.
    let out = run(&c, &id, &["echo", "in-main"], "&task=main").await;
    assert_eq!(out.stdout(), "in-main\n");
}
