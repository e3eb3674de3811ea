//! Test fixtures shared by every crate's tests (a dev-dependency only).
//!
//! What it owns:
//!
//! - **Throwaway PostgreSQL databases.** `scripts/test.sh` starts one PostgreSQL cluster per test
//!   run and exports its superuser URL as `CARAVAN_TEST_DATABASE_URL`. [`TestDatabase::create`]
//!   makes a fresh database on it for one test (`caravan_test_<uuid>`) and drops it again when the
//!   value is dropped. Tests that need PostgreSQL never skip silently: without the variable,
//!   [`postgres_admin_url`] panics and names the script to run.
//! - **Free ports** ([`free_port`], [`free_addr`]) so parallel tests never fight over a port.
//! - **Real processes.** [`caravan_bin`] finds the built `caravan` binary, [`Process`] runs it
//!   with its output captured to a file ([`Process::logs`]), signals it ([`Process::terminate`])
//!   and kills it when dropped.
//! - **Waiting without sleeps.** [`wait_for`] polls a condition against a deadline;
//!   [`wait_for_http`] waits until an address answers HTTP.
//!
//! Layout: everything lives in this one file, in the order above.
//!
//! Environment read here (never written): `CARAVAN_TEST_DATABASE_URL`, `CARAVAN_BIN`.

use std::collections::BTreeSet;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The environment variable holding the throwaway cluster's superuser URL.
pub const DATABASE_URL_ENV: &str = "CARAVAN_TEST_DATABASE_URL";

/// The environment variable that overrides where [`caravan_bin`] looks for the binary.
pub const CARAVAN_BIN_ENV: &str = "CARAVAN_BIN";

/// How often [`wait_for`] re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest a single [`wait_for_http`] attempt may take before it is retried.
const HTTP_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`TestDatabase`]'s `Drop` waits for the `DROP DATABASE` before giving up on it.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// The superuser URL of this test run's throwaway PostgreSQL cluster.
///
/// # Panics
///
/// When `CARAVAN_TEST_DATABASE_URL` is not set: tests that need PostgreSQL fail loudly instead of
/// skipping. Run them through `./scripts/test.sh`, which starts a cluster and sets the variable.
pub fn postgres_admin_url() -> String {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{DATABASE_URL_ENV} is not set: this test needs PostgreSQL. Run the tests with \
             ./scripts/test.sh (it starts a throwaway PostgreSQL cluster and sets \
             {DATABASE_URL_ENV}), e.g. `./scripts/test.sh -p <crate>`, or point \
             {DATABASE_URL_ENV} at a superuser URL such as postgres://caravan@127.0.0.1:5432/postgres"
        ),
    }
}

/// A fresh, empty database on the run's throwaway cluster, for one test.
///
/// Dropping it drops the database (`DROP DATABASE ... WITH (FORCE)`, which also ends the
/// connections still open to it). That is best-effort: a failure is printed, not raised, and the
/// whole cluster is thrown away at the end of the run anyway.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database (the admin URL with the database name swapped in).
    pub url: String,
    /// The database name, `caravan_test_<uuid without dashes>`.
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a new database on the cluster named by [`postgres_admin_url`].
    ///
    /// # Panics
    ///
    /// When `CARAVAN_TEST_DATABASE_URL` is not set (see [`postgres_admin_url`]).
    pub async fn create() -> anyhow::Result<TestDatabase> {
        TestDatabase::create_on(&postgres_admin_url()).await
    }

    /// Creates a new database on the cluster at `admin_url` (a superuser URL).
    pub async fn create_on(admin_url: &str) -> anyhow::Result<TestDatabase> {
        let admin_url = admin_url.to_owned();
        let name = format!("caravan_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to the test cluster at {admin_url}"))?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&name)
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
        // The database exists now; closing the admin connection cleanly is not worth a failure.
        let _ = conn.close().await;
        let url = database_url(&admin_url, &name)?;
        Ok(TestDatabase {
            url,
            name,
            admin_url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot be async and may run inside a runtime (where blocking on another future of
        // the same runtime would deadlock), so the DROP DATABASE runs on its own thread with its
        // own small runtime.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || {
                let result = drop_database(&admin_url, &name);
                let _ = done_tx.send(result);
            });
        let outcome = match spawned {
            Err(err) => Err(anyhow!("spawning a thread: {err}")),
            Ok(_) => match done_rx.recv_timeout(DROP_TIMEOUT) {
                Ok(result) => result,
                Err(_) => Err(anyhow!("no answer within {DROP_TIMEOUT:?}")),
            },
        };
        if let Err(err) = outcome {
            eprintln!(
                "warning: could not drop test database {}: {err:#}",
                self.name
            );
        }
    }
}

fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a runtime")?;
    runtime.block_on(async {
        let mut conn = PgConnection::connect(admin_url)
            .await
            .context("connecting to the test cluster")?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        )))
        .execute(&mut conn)
        .await
        .context("DROP DATABASE")?;
        let _ = conn.close().await;
        Ok(())
    })
}

/// Quotes a PostgreSQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Replaces the database (the URL path) of a `postgres://` URL, keeping everything else.
fn database_url(admin_url: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = base
        .find("://")
        .with_context(|| format!("not a URL: {admin_url}"))?
        + "://".len();
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// Ports this process has handed out already, so two calls never return the same one.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the port, release it.
///
/// Never returns the same port twice in one process. Another process can still take the port
/// between this call and the caller's bind; the kernel hands out ephemeral ports in a spread
/// order, so that is rare.
///
/// # Panics
///
/// When no port can be bound on 127.0.0.1 at all (the machine has no loopback interface).
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..1000 {
        let port = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(err) => panic!("cannot bind a TCP port on 127.0.0.1: {err}"),
        };
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no unused free port on 127.0.0.1 after 1000 attempts");
}

/// `127.0.0.1:<free port>` (see [`free_port`]).
pub fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// The path of the built `caravan` binary.
///
/// `CARAVAN_BIN` if set; otherwise `<target dir>/<profile>/caravan`, found from the running test
/// executable (Cargo puts test executables in `<target dir>/<profile>/deps/`).
///
/// # Panics
///
/// When the binary does not exist: build it first with `cargo build --bin caravan`
/// (`./scripts/test.sh` does).
pub fn caravan_bin() -> PathBuf {
    let path = match std::env::var_os(CARAVAN_BIN_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => default_caravan_bin(),
    };
    if !path.is_file() {
        panic!(
            "the caravan binary is not at {}: build it first: cargo build --bin caravan \
             (./scripts/test.sh does), or set {CARAVAN_BIN_ENV}",
            path.display()
        );
    }
    path
}

fn default_caravan_bin() -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => panic!("cannot find the running executable to locate caravan: {err}"),
    };
    let mut dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    if dir
        .file_name()
        .is_some_and(|name| name == "deps" || name == "examples")
    {
        dir.pop();
    }
    dir.join(format!("caravan{}", std::env::consts::EXE_SUFFIX))
}

/// A running child process whose stdout and stderr go to one log file in its own temp dir.
///
/// Dropping it kills the process (SIGKILL) and reaps it. When dropped during a panic (a failing
/// test), it prints the end of its log to stderr, which the test runner shows with the failure.
pub struct Process {
    child: Child,
    program: PathBuf,
    log_path: PathBuf,
    reaped: bool,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts the `caravan` binary (see [`caravan_bin`]) with `args`, the environment of this
    /// process plus `envs`, and stdin closed.
    ///
    /// # Panics
    ///
    /// When the binary is not built (see [`caravan_bin`]).
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Process> {
        Process::spawn_program(&caravan_bin(), args, envs)
    }

    /// Starts any program the way [`Process::spawn`] starts `caravan`.
    pub fn spawn_program(
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Process> {
        let dir = tempfile::Builder::new()
            .prefix("caravan-process-")
            .tempdir()
            .context("creating a temp dir for the process log")?;
        let log_path = dir.path().join("output.log");
        let stdout =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let stderr = stdout.try_clone().context("duplicating the log file")?;
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {} {}", program.display(), args.join(" ")))?;
        Ok(Process {
            child,
            program: program.to_path_buf(),
            log_path,
            reaped: false,
            _dir: dir,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up: a crash) and reaps it.
    pub fn kill_hard(&mut self) {
        if self.reaped {
            return;
        }
        // kill() fails only when the process was reaped already, which `reaped` rules out, or
        // when it has exited: either way wait() below reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"HUP"`, `"STOP"`, ...) through the shell's
    /// `kill` builtin, so no `unsafe` and no procps package are needed.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        if self.reaped {
            // The pid may belong to another process by now.
            bail!("process {} has exited and was reaped", self.child.id());
        }
        let output = Command::new("sh")
            .args(["-c", "kill -s \"$1\" \"$2\"", "sh", signal])
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .output()
            .context("running sh -c kill")?;
        if !output.status.success() {
            bail!(
                "kill -s {signal} {} failed: {}",
                self.child.id(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Sends SIGTERM (a graceful stop request); see [`Process::wait_exit`].
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal("TERM")
    }

    /// Waits up to `timeout` for the process to exit and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still running after {timeout:?}",
                    self.program.display(),
                    self.child.id()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        let status = self
            .child
            .try_wait()
            .context("checking whether the process exited")?;
        if status.is_some() {
            self.reaped = true;
        }
        Ok(status)
    }

    /// Everything the process has written to stdout and stderr so far (lossy UTF-8).
    pub fn logs(&self) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => format!("<cannot read {}: {err}>", self.log_path.display()),
        }
    }

    /// The path of the log file (removed when the `Process` is dropped).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max` bytes of the log, for printing.
    fn log_tail(&self, max: u64) -> String {
        let read = || -> std::io::Result<String> {
            let mut file = File::open(&self.log_path)?;
            let len = file.metadata()?.len();
            file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let skipped = if len > max {
                format!("<{} bytes skipped>\n", len - max)
            } else {
                String::new()
            };
            Ok(skipped + &String::from_utf8_lossy(&bytes))
        };
        read().unwrap_or_else(|err| format!("<cannot read {}: {err}>", self.log_path.display()))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_hard();
        if std::thread::panicking() {
            eprintln!(
                "----- output of {} (pid {}) -----\n{}\n----- end of output -----",
                self.program.display(),
                self.child.id(),
                self.log_tail(64 * 1024)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `cond` every 50 ms until it returns `Ok(true)`, or fails once `timeout` has elapsed.
///
/// `Ok(false)` and `Err(_)` both mean "not yet" (a server that is still starting refuses
/// connections); the last error is quoted in the timeout error, which also names `what`. One
/// call of `cond` that hangs is cut off at the deadline. Time is tokio's, so tests with
/// `tokio::time::pause()` work.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, cond()).await {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => {}
            Ok(Err(err)) => last_error = Some(err),
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(match last_error {
                Some(err) => anyhow!("timed out after {timeout:?} waiting for {what}: {err:#}"),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// Waits until a GET of `url` (an `http://` URL) gets any HTTP response, whatever its status.
pub async fn wait_for_http(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let target = HttpTarget::parse(url)?;
    wait_for(&format!("HTTP at {url}"), timeout, || target.probe()).await
}

/// Where a plain HTTP/1.1 GET goes.
#[derive(Debug, PartialEq)]
struct HttpTarget {
    /// `host:port`, as given to connect and as the `Host` header.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> anyhow::Result<HttpTarget> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("wait_for_http supports http:// URLs only, got {url:?}");
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() {
            bail!("no host in {url:?}");
        }
        // Add the default port unless one is given (an IPv6 host has colons of its own).
        let has_port = match authority.rfind(']') {
            Some(bracket) => authority[bracket..].contains(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpTarget { authority, path })
    }

    /// One GET; `Ok(true)` once the answer starts like an HTTP response.
    async fn probe(&self) -> anyhow::Result<bool> {
        let attempt = async {
            let mut stream = TcpStream::connect(&self.authority)
                .await
                .with_context(|| format!("connecting to {}", self.authority))?;
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: caravan-test-utils\r\n\
                 Connection: close\r\n\r\n",
                self.path, self.authority
            );
            stream.write_all(request.as_bytes()).await?;
            let mut head = Vec::new();
            let mut buf = [0u8; 64];
            while head.len() < 5 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    bail!("connection closed without an HTTP response");
                }
                head.extend_from_slice(&buf[..n]);
            }
            if !head.starts_with(b"HTTP/") {
                bail!(
                    "not an HTTP response: {:?}",
                    String::from_utf8_lossy(&head[..head.len().min(32)])
                );
            }
            Ok(true)
        };
        match tokio::time::timeout(HTTP_PROBE_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => bail!("no HTTP response within {HTTP_PROBE_TIMEOUT:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_swaps_the_database_only() {
        assert_eq!(
            database_url("postgres://caravan@127.0.0.1:5432/postgres", "db1").unwrap(),
            "postgres://caravan@127.0.0.1:5432/db1"
        );
        assert_eq!(
            database_url("postgres://u:p@h:1/postgres?sslmode=disable", "db1").unwrap(),
            "postgres://u:p@h:1/db1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://caravan@127.0.0.1:5432", "db1").unwrap(),
            "postgres://caravan@127.0.0.1:5432/db1"
        );
        assert_eq!(
            database_url("postgresql:///postgres?host=/tmp/sock", "db1").unwrap(),
            "postgresql:///db1?host=/tmp/sock"
        );
        assert!(database_url("nonsense", "db1").is_err());
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
        let addr = free_addr();
        assert!(addr.ip().is_loopback());
        TcpListener::bind(addr).unwrap();
    }

    #[test]
    fn http_targets_parse() {
        let t = HttpTarget::parse("http://127.0.0.1:4646/v1/status/leader?x=1").unwrap();
        assert_eq!(t.authority, "127.0.0.1:4646");
        assert_eq!(t.path, "/v1/status/leader?x=1");
        let t = HttpTarget::parse("http://localhost").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("localhost:80", "/")
        );
        let t = HttpTarget::parse("http://[::1]?a").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("[::1]:80", "/?a"));
        let t = HttpTarget::parse("http://[::1]:8080/").unwrap();
        assert_eq!(t.authority, "[::1]:8080");
        assert!(HttpTarget::parse("https://127.0.0.1/").is_err());
        assert!(HttpTarget::parse("http:///x").is_err());
    }

    #[tokio::test]
    async fn wait_for_succeeds_once_the_condition_holds() {
        let mut calls = 0;
        wait_for("three calls", Duration::from_secs(10), || {
            calls += 1;
            let done = calls >= 3;
            async move { Ok(done) }
        })
        .await
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_times_out_naming_what_and_the_last_error() {
        let err = wait_for("the impossible", Duration::from_secs(5), || async {
            Err(anyhow!("connection refused"))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("the impossible"), "{err}");
        assert!(err.contains("connection refused"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_cuts_off_a_hanging_check() {
        let err = wait_for("a hang", Duration::from_secs(1), || {
            std::future::pending::<anyhow::Result<bool>>()
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("a hang"));
    }

    #[tokio::test]
    async fn wait_for_http_waits_for_a_server_that_starts_late() {
        let port = free_port();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .unwrap();
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /health HTTP/1.1\r\n"));
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        wait_for_http(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn wait_for_http_fails_when_nothing_listens() {
        let port = free_port();
        let err = wait_for_http(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn process_captures_output_and_is_killed() {
        let mut process = Process::spawn_program(
            Path::new("/bin/sh"),
            &[
                "-c",
                "echo out; echo err >&2; echo \"$GREETING\"; exec sleep 600",
            ],
            &[("GREETING", "hello")],
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !process.logs().contains("hello") {
            assert!(std::time::Instant::now() < deadline, "{}", process.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        let logs = process.logs();
        assert!(logs.contains("out\n") && logs.contains("err\n"), "{logs}");
        assert!(process.try_wait().unwrap().is_none());
        let pid = process.pid();
        process.kill_hard();
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let log_path = process.log_path().to_path_buf();
        drop(process);
        assert!(!log_path.exists());
    }

    #[tokio::test]
    async fn process_stops_on_sigterm() {
        let mut process = Process::spawn_program(
            Path::new("/bin/sh"),
            &[
                "-c",
                "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
            ],
            &[],
        )
        .unwrap();
        wait_for("the trap to be set", Duration::from_secs(10), || {
            let ready = process.logs().contains("ready");
            async move { Ok(ready) }
        })
        .await
        .unwrap();
        process.terminate().unwrap();
        let status = process.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert_eq!(status.code(), Some(3), "{}", process.logs());
        assert!(process.logs().contains("got-term"));
        assert!(
            process.signal("TERM").is_err(),
            "reaped: no signal to a reused pid"
        );
    }

    #[test]
    fn caravan_bin_is_found_next_to_the_test_executable() {
        // Only the path logic: whether the binary is built depends on what ran before.
        let path = default_caravan_bin();
        assert_eq!(path.file_name().unwrap(), "caravan");
        assert_ne!(path.parent().unwrap().file_name().unwrap(), "deps");
    }
}
