//! The checks of an allocation's nomad-provider services (Nomad's `checks_hook` and check
//! watcher): one observer per check, group- and task-level alike, started before the tasks,
//! that records a `pending` stub, waits half an interval, then runs the check every interval
//! within its timeout; the latest results, kept in memory, answer
//! `/v1/client/allocation/:id/checks`. A check with `check_restart { limit > 0 }` also gets a
//! watcher that restarts its task (or, for a group service, every running task) once the check
//! has been unhealthy long enough. Everything stops, and the results go, when the allocation
//! is stopped.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use caravan_structs::{
    Allocation, CHECK_MODE_HEALTHINESS, CHECK_MODE_READINESS, CHECK_STATUS_FAILURE,
    CHECK_STATUS_PENDING, CHECK_STATUS_SUCCESS, CheckIdentity, CheckQueryResult, Node, Service,
    ServiceCheck,
};
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
// The runtime's clock: paused in tests.
use tokio::time::Instant;

use super::services::{
    ADDRESS_MODE_AUTO, ADDRESS_MODE_HOST, AddressSources, get_address, interpolate_service,
    nomad_services, workload_env,
};

/// HTTP check output is cut here (Nomad's 3 KiB).
const OUTPUT_LIMIT: usize = 3 * 1024;
/// How often a check_restart watcher looks at its check (Nomad's 1 s).
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// A restart asked by a watcher gives up after this (Nomad's 10 s).
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = "Nomad/1.9.7 (+https://developer.hashicorp.com/nomad/; caravan)";

/// Restarts tasks of the allocation on behalf of a failing check; counts as a failure against
/// the restart policy.
pub trait Restarter: Send + Sync {
    /// `task`: the task of a task service; None: every running task (a group service).
    fn restart(&self, task: Option<String>, reason: String) -> BoxFuture<'static, ()>;
}

/// One check, resolved: where it goes and what its results are labelled with.
#[derive(Debug, Clone, PartialEq)]
struct CheckSpec {
    id: String,
    mode: &'static str,
    /// The allocation's name.
    group: String,
    /// The service's task (empty for a group service without `task`).
    task: String,
    service: String,
    name: String,
    check_type: String,
    /// `host:port`, or why there is none.
    address: Result<String, String>,
    protocol: String,
    path: String,
    method: String,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
    interval: Duration,
    timeout: Duration,
    /// `(limit, grace)` when check_restart is active.
    restart: Option<(u32, Duration)>,
    /// Whom a restart targets: the task, or every running task (None).
    restart_task: Option<String>,
}

fn nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn check_spec(
    alloc: &Allocation,
    service: &Service,
    check: &ServiceCheck,
    task_of_service: Option<&str>,
) -> CheckSpec {
    let service_task = if service.task_name.is_empty() {
        task_of_service.unwrap_or_default().to_owned()
    } else {
        service.task_name.clone()
    };
    let check_task = if check.task_name.is_empty() {
        service_task.clone()
    } else {
        check.task_name.clone()
    };
    let name = if check.name.is_empty() {
        format!("service: {:?} check", service.name)
    } else {
        check.name.clone()
    };
    let on_update = if check.on_update.is_empty() {
        &service.on_update
    } else {
        &check.on_update
    };
    let id = CheckIdentity {
        alloc_id: &alloc.id,
        group: &alloc.task_group,
        task: &check_task,
        name: &name,
        check_type: &check.r#type,
        port_label: &check.port_label,
        on_update: &check.on_update,
        address_mode: &check.address_mode,
        interval_ns: check.interval,
        timeout_ns: check.timeout,
        protocol: &check.protocol,
        path: &check.path,
        method: &check.method,
        tls_skip_verify: check.tls_skip_verify,
    }
    .id();
    // A check follows the service's custom address, else the host's.
    let mode = match check.address_mode.as_str() {
        "" if !service.address.is_empty() => ADDRESS_MODE_AUTO,
        "" => ADDRESS_MODE_HOST,
        m => m,
    };
    let label = if check.port_label.is_empty() {
        &service.port_label
    } else {
        &check.port_label
    };
    let src = AddressSources::of(alloc, task_of_service);
    let address = get_address(&service.address, mode, label, &src).map(|(host, port)| {
        if port > 0 {
            join_host_port(&host, port)
        } else {
            host
        }
    });
    let restart = check
        .check_restart
        .as_ref()
        .filter(|r| r.limit > 0)
        .map(|r| (u32::try_from(r.limit).unwrap_or(u32::MAX), nanos(r.grace)));
    CheckSpec {
        id,
        mode: if on_update == "ignore" {
            CHECK_MODE_READINESS
        } else {
            CHECK_MODE_HEALTHINESS
        },
        group: alloc.name.clone(),
        task: service_task,
        service: service.name.clone(),
        name,
        check_type: check.r#type.clone(),
        address,
        protocol: if check.protocol.is_empty() {
            "http".to_owned()
        } else {
            check.protocol.clone()
        },
        path: check.path.clone(),
        method: if check.method.is_empty() {
            "GET".to_owned()
        } else {
            check.method.clone()
        },
        headers: check.header.clone().unwrap_or_default(),
        body: check.body.clone(),
        interval: nanos(check.interval).max(Duration::from_secs(1)),
        timeout: nanos(check.timeout).max(Duration::from_secs(1)),
        restart,
        restart_task: task_of_service.map(str::to_owned),
    }
}

/// Every check of the allocation's nomad services, group-level then task-level.
fn check_specs(alloc: &Allocation, node: &Node, region: &str) -> Vec<CheckSpec> {
    let Some(group) = alloc
        .job
        .as_ref()
        .and_then(|j| j.lookup_task_group(&alloc.task_group))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut add = |task: Option<&caravan_structs::Task>, services: Option<&Vec<Service>>| {
        let services: Vec<&Service> = nomad_services(services).collect();
        if services
            .iter()
            .all(|s| s.checks.as_ref().is_none_or(Vec::is_empty))
        {
            return;
        }
        let Some(env) = workload_env(alloc, group, task, node, region) else {
            return;
        };
        for s in services {
            let s = interpolate_service(&env, s);
            for c in s.checks.iter().flatten() {
                out.push(check_spec(alloc, &s, c, task.map(|t| t.name.as_str())));
            }
        }
    };
    add(None, group.services.as_ref());
    for t in group.tasks.iter().flatten() {
        add(Some(t), t.services.as_ref());
    }
    out
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn result_of(spec: &CheckSpec, status: &str, output: String, code: i64) -> CheckQueryResult {
    CheckQueryResult {
        id: spec.id.clone(),
        mode: spec.mode.to_owned(),
        status: status.to_owned(),
        status_code: code,
        output,
        timestamp: now_unix(),
        group: spec.group.clone(),
        task: spec.task.clone(),
        service: spec.service.clone(),
        check: spec.name.clone(),
    }
}

/// An error with its causes, as Go prints wrapped errors.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn run_tcp(spec: &CheckSpec, addr: &str) -> CheckQueryResult {
    let dial = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(spec.timeout, dial).await {
        Ok(Ok(_)) => result_of(spec, CHECK_STATUS_SUCCESS, "nomad: tcp ok".to_owned(), 0),
        Ok(Err(e)) => result_of(
            spec,
            CHECK_STATUS_FAILURE,
            format!("dial tcp {addr}: {e}"),
            0,
        ),
        Err(_) => result_of(
            spec,
            CHECK_STATUS_FAILURE,
            format!("dial tcp {addr}: i/o timeout"),
            0,
        ),
    }
}

fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .build()
                .map_err(|e| error_chain(&e))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Reads at most [`OUTPUT_LIMIT`] bytes of the body.
async fn limited_body(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < OUTPUT_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => return format!("nomad: {}", error_chain(&e)),
        }
    }
    body.truncate(OUTPUT_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

async fn run_http(spec: &CheckSpec, addr: &str) -> CheckQueryResult {
    let fail = |output: String| result_of(spec, CHECK_STATUS_FAILURE, output, 0);
    let client = match http_client() {
        Ok(c) => c,
        Err(e) => return fail(format!("nomad: {e}")),
    };
    let path = if spec.path.starts_with('/') {
        spec.path.clone()
    } else {
        format!("/{}", spec.path)
    };
    let url = format!("{}://{addr}{path}", spec.protocol);
    let method = match reqwest::Method::from_bytes(spec.method.as_bytes()) {
        Ok(m) => m,
        Err(e) => return fail(format!("nomad: {e}")),
    };
    let mut request = client.request(method, &url);
    let mut has_agent = false;
    for (name, values) in &spec.headers {
        has_agent |= name.eq_ignore_ascii_case("user-agent");
        for v in values {
            request = request.header(name.as_str(), v.as_str());
        }
    }
    if !has_agent {
        request = request.header(reqwest::header::USER_AGENT, USER_AGENT);
    }
    if !spec.body.is_empty() {
        request = request.body(spec.body.clone());
    }
    let exchange = async {
        let resp = request.send().await?;
        let code = i64::from(resp.status().as_u16());
        let (status, output) = match code {
            200 => (CHECK_STATUS_SUCCESS, "nomad: http ok".to_owned()),
            c if c < 400 => (CHECK_STATUS_SUCCESS, limited_body(resp).await),
            _ => (CHECK_STATUS_FAILURE, limited_body(resp).await),
        };
        Ok::<_, reqwest::Error>(result_of(spec, status, output, code))
    };
    match tokio::time::timeout(spec.timeout, exchange).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => fail(format!("nomad: {}", error_chain(&e))),
        Err(_) => fail(format!(
            "nomad: Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

async fn run_check(spec: &CheckSpec) -> CheckQueryResult {
    let addr = match &spec.address {
        Ok(a) => a.clone(),
        Err(e) => return result_of(spec, CHECK_STATUS_FAILURE, e.clone(), 0),
    };
    match spec.check_type.as_str() {
        "http" => run_http(spec, &addr).await,
        _ => run_tcp(spec, &addr).await,
    }
}

type Results = Arc<Mutex<BTreeMap<String, CheckQueryResult>>>;

async fn observe(spec: CheckSpec, results: Results) {
    tokio::time::sleep(spec.interval / 2).await;
    loop {
        let result = run_check(&spec).await;
        if let Ok(mut r) = results.lock() {
            r.insert(spec.id.clone(), result);
        }
        tokio::time::sleep(spec.interval).await;
    }
}

/// Nomad's check_restart: unhealthy (failure or pending) continuously for
/// `interval × (limit − 1)` after the grace period restarts the target.
async fn watch(
    spec: CheckSpec,
    results: Results,
    restarter: Arc<dyn Restarter>,
    stopped: Arc<AtomicBool>,
) {
    let Some((limit, grace)) = spec.restart else {
        return;
    };
    let window = spec.interval * limit.saturating_sub(1);
    let mut grace_until = Instant::now() + grace;
    let mut unhealthy_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let status = results
            .lock()
            .ok()
            .and_then(|r| r.get(&spec.id).map(|c| c.status.clone()))
            .unwrap_or_default();
        if status == CHECK_STATUS_SUCCESS {
            unhealthy_since = None;
            continue;
        }
        if now < grace_until {
            continue;
        }
        let since = *unhealthy_since.get_or_insert(now);
        if now.duration_since(since) < window {
            continue;
        }
        tracing::info!(check = %spec.name, task = ?spec.restart_task, "restarting: check unhealthy");
        let reason = format!("healthcheck: check {:?} unhealthy", spec.name);
        let restart = restarter.restart(spec.restart_task.clone(), reason);
        let _ = tokio::time::timeout(RESTART_TIMEOUT, restart).await;
        // The restarted task gets its grace again; the old result says nothing about it.
        unhealthy_since = None;
        grace_until = Instant::now() + grace;
    }
}

/// The checks of one allocation.
pub struct AllocChecks {
    results: Results,
    /// Observer (and watcher) tasks by check ID.
    running: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
    restarter: Arc<dyn Restarter>,
    stopped: Arc<AtomicBool>,
}

impl AllocChecks {
    pub fn new(restarter: Arc<dyn Restarter>) -> AllocChecks {
        AllocChecks {
            results: Arc::new(Mutex::new(BTreeMap::new())),
            running: Mutex::new(HashMap::new()),
            restarter,
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The latest result of each check, by check ID.
    pub fn results(&self) -> BTreeMap<String, CheckQueryResult> {
        self.results.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Starts observers for the allocation's checks that have none, and stops those of checks
    /// that left it (an update).
    pub fn sync(&self, alloc: &Allocation, node: &Node, region: &str) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let specs = check_specs(alloc, node, region);
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let wanted: std::collections::HashSet<&str> = specs.iter().map(|s| s.id.as_str()).collect();
        let gone: Vec<String> = running
            .keys()
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            for h in running.remove(&id).into_iter().flatten() {
                h.abort();
            }
            if let Ok(mut r) = self.results.lock() {
                r.remove(&id);
            }
        }
        for spec in specs {
            if running.contains_key(&spec.id) {
                continue;
            }
            if let Ok(mut r) = self.results.lock() {
                r.entry(spec.id.clone()).or_insert_with(|| {
                    result_of(
                        &spec,
                        CHECK_STATUS_PENDING,
                        "nomad: waiting to run".to_owned(),
                        0,
                    )
                });
            }
            let mut handles = vec![tokio::spawn(observe(spec.clone(), self.results.clone()))];
            if spec.restart.is_some() {
                handles.push(tokio::spawn(watch(
                    spec.clone(),
                    self.results.clone(),
                    self.restarter.clone(),
                    self.stopped.clone(),
                )));
            }
            running.insert(spec.id, handles);
        }
    }

    /// Stops every observer and watcher and forgets the results (the allocation stops).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Ok(mut running) = self.running.lock() {
            for (_, handles) in running.drain() {
                for h in handles {
                    h.abort();
                }
            }
        }
        if let Ok(mut r) = self.results.lock() {
            r.clear();
        }
    }
}

impl Drop for AllocChecks {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use caravan_structs::{
        AllocatedPortMapping, AllocatedResources, AllocatedSharedResources, CheckRestart, Job,
        Task, TaskGroup,
    };

    fn alloc(port: u16, check: ServiceCheck) -> Allocation {
        let svc = Service {
            name: "web".into(),
            port_label: "http".into(),
            provider: "nomad".into(),
            checks: Some(vec![check]),
            ..Service::default()
        };
        Allocation {
            id: "a1".into(),
            name: "example.g[0]".into(),
            task_group: "g".into(),
            job: Some(Job {
                task_groups: Some(vec![TaskGroup {
                    name: "g".into(),
                    tasks: Some(vec![Task {
                        name: "t".into(),
                        services: Some(vec![svc]),
                        ..Task::default()
                    }]),
                    ..TaskGroup::default()
                }]),
                ..Job::default()
            }),
            allocated_resources: Some(AllocatedResources {
                shared: AllocatedSharedResources {
                    ports: Some(vec![AllocatedPortMapping {
                        host_ip: "127.0.0.1".into(),
                        label: "http".into(),
                        value: i64::from(port),
                        to: 0,
                    }]),
                    ..AllocatedSharedResources::default()
                },
                ..AllocatedResources::default()
            }),
            ..Allocation::default()
        }
    }

    fn tcp_check() -> ServiceCheck {
        ServiceCheck {
            name: "alive".into(),
            r#type: "tcp".into(),
            interval: 1_000_000_000,
            timeout: 1_000_000_000,
            on_update: "ignore".into(),
            check_restart: Some(CheckRestart {
                limit: 2,
                grace: 0,
                ignore_warnings: false,
            }),
            ..ServiceCheck::default()
        }
    }

    #[test]
    fn specs_carry_nomads_labels() {
        let specs = check_specs(&alloc(8080, tcp_check()), &Node::default(), "global");
        assert_eq!(specs.len(), 1);
        let s = &specs[0];
        assert_eq!(s.id.len(), 32);
        assert_eq!(s.group, "example.g[0]");
        assert_eq!(s.task, "t");
        assert_eq!(s.mode, CHECK_MODE_READINESS);
        assert_eq!(s.address, Ok("127.0.0.1:8080".to_owned()));
        assert_eq!(s.restart, Some((2, Duration::ZERO)));
        assert_eq!(s.restart_task.as_deref(), Some("t"));
    }

    #[tokio::test]
    async fn tcp_checks_dial() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spec = check_specs(&alloc(port, tcp_check()), &Node::default(), "g").remove(0);
        let ok = run_check(&spec).await;
        assert_eq!(
            (ok.status.as_str(), ok.output.as_str()),
            ("success", "nomad: tcp ok")
        );
        drop(listener);
        let failed = run_check(&spec).await;
        assert_eq!(failed.status, "failure");
        assert!(
            failed.output.starts_with("dial tcp 127.0.0.1:"),
            "{}",
            failed.output
        );
    }

    /// Each restart asked: the task (None: all) and the reason.
    type Calls = Arc<Mutex<Vec<(Option<String>, String)>>>;

    struct Counting(Calls);

    impl Restarter for Counting {
        fn restart(&self, task: Option<String>, reason: String) -> BoxFuture<'static, ()> {
            if let Ok(mut v) = self.0.lock() {
                v.push((task, reason));
            }
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn watchers_restart_after_the_window_and_never_after_stop() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let checks = AllocChecks::new(Arc::new(Counting(calls.clone())));
        // Nothing listens on port 1: every run fails.
        checks.sync(&alloc(1, tcp_check()), &Node::default(), "g");
        assert_eq!(
            checks.results().values().next().unwrap().output,
            "nomad: waiting to run"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(calls.lock().unwrap().is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let seen = calls.lock().unwrap().clone();
        assert_eq!(
            seen.first(),
            Some(&(
                Some("t".to_owned()),
                "healthcheck: check \"alive\" unhealthy".to_owned()
            ))
        );
        checks.stop();
        let before = calls.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(calls.lock().unwrap().len(), before);
        assert!(checks.results().is_empty());
    }
}
