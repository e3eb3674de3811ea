//! Checks of nomad-provider services, run by the agent (SERVICES.md §4.2–4.5, §4.8; §7 items
//! 40–42): results keyed by check ID at `/v1/client/allocation/:id/checks`, tcp and http
//! outcomes, and `check_restart` restarting a task (or every task, for a group service) as a
//! failure against the restart policy, never after the allocation stopped.
//!
//! The agents use the loopback interface, so ports live on 127.0.0.1; a small Python HTTP
//! server answers the checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

const LO: &[&str] = &["-network-interface", "lo"];
const SECOND: i64 = 1_000_000_000;

/// Answers /ok with 200, /nocontent with 204, /fail with 500 and 7000 bytes.
const SERVER: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = {'/ok': 200, '/nocontent': 204, '/fail': 500}.get(self.path, 404)
        body = b'' if code == 204 else (b'broken' * 1000 + b'!' if code == 500 else b'fine')
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(('127.0.0.1', int(os.environ['NOMAD_PORT_http'])), H).serve_forever()
"#;

fn task(name: &str, command: &str, args: Value) -> Value {
    json!({
        "Name": name, "Driver": "raw_exec",
        "Config": {"command": command, "args": args},
        "Resources": {"CPU": 20, "MemoryMB": 32}
    })
}

fn sleeper(name: &str) -> Value {
    task(name, "/bin/sh", json!(["-c", "exec sleep 600"]))
}

fn check(name: &str, kind: &str, path: &str, interval_s: i64) -> Value {
    json!({
        "Name": name, "Type": kind, "Path": path,
        "Interval": interval_s * SECOND, "Timeout": SECOND
    })
}

fn group(name: &str, services: Value, tasks: Value) -> Value {
    json!({
        "Name": name,
        "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
        "Services": services,
        "Tasks": tasks,
        "RestartPolicy": {"Attempts": 10, "Delay": SECOND, "Interval": 600 * SECOND, "Mode": "delay"}
    })
}

fn job(id: &str, group: Value) -> Value {
    json!({"ID": id, "Datacenters": ["*"], "Type": "service", "TaskGroups": [group]})
}

async fn checks(client: &Client, alloc_id: &str) -> Value {
    let resp = json_call(
        client,
        Method::GET,
        &format!("/v1/client/allocation/{alloc_id}/checks"),
        &Value::Null,
    )
    .await;
    expect_ok(&resp)
}

fn by_name<'a>(results: &'a Value, name: &str) -> &'a Value {
    results
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Check"] == name)
        .unwrap_or_else(|| panic!("no result for {name}: {results}"))
}

/// Polls `probe` until it yields a value (every 100 ms, within `timeout`).
async fn wait_some<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alloc_doc(client: &Client, id: &str) -> Value {
    get_json(client, &format!("/v1/allocation/{id}"))
        .await
        .unwrap()
        .0
}

/// 40–42: pending first, then tcp and http outcomes with Nomad's labels.
#[tokio::test(flavor = "multi_thread")]
async fn checks_report_pending_then_tcp_and_http_outcomes() {
    let c = PgCluster::start_with(&[], LO).await.unwrap();
    let cl = &c.client;
    let mut ready = check("ready", "http", "/fail", 1);
    ready["OnUpdate"] = json!("ignore");
    let web = json!({
        "Name": "web", "Provider": "nomad", "PortLabel": "http",
        "Checks": [
            check("tcp-ok", "tcp", "", 1),
            check("http-ok", "http", "/ok", 1),
            check("http-fail", "http", "/fail", 1),
            check("slow", "tcp", "", 60),
            ready
        ]
    });
    let mut server = task("srv", "python3", json!(["-c", SERVER]));
    server["Services"] = json!([{
        "Name": "tsvc", "Provider": "nomad", "PortLabel": "http",
        "Checks": [check("nocontent", "http", "/nocontent", 1)]
    }]);
    register_job(cl, &job("chk", group("g", json!([web]), json!([server]))))
        .await
        .unwrap();
    let alloc_id = running_alloc_id(cl, "chk", WAIT).await.unwrap();

    // 41: the slow check waits 30 s before its first run.
    let first = checks(cl, &alloc_id).await;
    assert_eq!(first.as_object().unwrap().len(), 6, "{first}");
    let slow = by_name(&first, "slow");
    assert_eq!(slow["Status"], "pending");
    assert_eq!(slow["Output"], "nomad: waiting to run");

    let results = wait_some("every fast check to run", WAIT, || async {
        let results = checks(cl, &alloc_id).await;
        let done = ["tcp-ok", "http-ok", "http-fail", "ready", "nocontent"]
            .iter()
            .all(|n| by_name(&results, n)["Status"] != "pending");
        (done && by_name(&results, "tcp-ok")["Status"] == "success").then_some(results)
    })
    .await;

    // 40: keyed by 32-hex ID; Group is the allocation's name; Task only when set.
    for (id, r) in results.as_object().unwrap() {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|ch| ch.is_ascii_hexdigit()), "{id}");
        assert_eq!(r["ID"], id.as_str());
        assert_eq!(r["Group"], "chk.g[0]");
        assert!(r["Timestamp"].as_i64().unwrap() > 1_600_000_000, "{r}");
        assert!(
            r["Timestamp"].as_i64().unwrap() < 100_000_000_000,
            "seconds: {r}"
        );
    }
    // 42.
    let tcp = by_name(&results, "tcp-ok");
    assert_eq!(tcp["Output"], "nomad: tcp ok");
    assert_eq!(tcp["Service"], "web");
    assert_eq!(tcp["Mode"], "healthiness");
    assert!(tcp.get("Task").is_none(), "{tcp}");
    assert!(tcp.get("StatusCode").is_none(), "{tcp}");
    let ok = by_name(&results, "http-ok");
    assert_eq!(
        (&ok["Status"], &ok["Output"], &ok["StatusCode"]),
        (&json!("success"), &json!("nomad: http ok"), &json!(200))
    );
    let fail = by_name(&results, "http-fail");
    assert_eq!(fail["Status"], "failure");
    assert_eq!(fail["StatusCode"], 500);
    let output = fail["Output"].as_str().unwrap();
    assert_eq!(output.len(), 3 * 1024, "cut at 3 KiB");
    assert!(output.starts_with("brokenbroken"));
    let ready = by_name(&results, "ready");
    assert_eq!(
        (&ready["Mode"], &ready["Status"]),
        (&json!("readiness"), &json!("failure"))
    );
    let nocontent = by_name(&results, "nocontent");
    assert_eq!(nocontent["Status"], "success");
    assert_eq!(nocontent["StatusCode"], 204);
    assert_eq!(nocontent["Output"], "");
    assert_eq!(nocontent["Task"], "srv");
    assert_eq!(nocontent["Service"], "tsvc");

    // Results go with the allocation's stop.
    let stop = post(cl, &format!("/v1/allocation/{alloc_id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_for("the results to be purged", WAIT, || async {
        Ok(checks(cl, &alloc_id).await == json!({}))
    })
    .await
    .unwrap();
}

/// §4.8: a failing group check restarts every running task; a failing task check restarts its
/// task as a failure against the restart policy; nothing restarts after the stop (#16739).
#[tokio::test(flavor = "multi_thread")]
async fn check_restart_restarts_tasks_as_failures() {
    let c = PgCluster::start_with(&[], LO).await.unwrap();
    let cl = &c.client;
    // Nothing listens on the port: the check fails from its first run.
    let mut down = check("down", "tcp", "", 1);
    down["CheckRestart"] = json!({"Limit": 2, "Grace": SECOND});
    let svc = json!({"Name": "gsvc", "Provider": "nomad", "PortLabel": "http", "Checks": [down]});
    register_job(
        cl,
        &job(
            "flappy",
            group("g", json!([svc]), json!([sleeper("a"), sleeper("b")])),
        ),
    )
    .await
    .unwrap();
    let alloc_id = running_alloc_id(cl, "flappy", WAIT).await.unwrap();
    wait_for(
        "both tasks to be restarted by the check",
        Duration::from_secs(30),
        || async {
            let a = alloc_doc(cl, &alloc_id).await;
            Ok(["a", "b"].iter().all(|t| {
                a["TaskStates"][t]["Events"].as_array().is_some_and(|ev| {
                    ev.iter().any(|e| {
                        e["Type"] == "Restart Signaled"
                            && e["RestartReason"] == r#"healthcheck: check "down" unhealthy"#
                    })
                })
            }))
        },
    )
    .await
    .unwrap();

    // #16739: once stopped, no more restarts.
    let stop = post(cl, &format!("/v1/allocation/{alloc_id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_for("the allocation to stop", WAIT, || async {
        let a = alloc_doc(cl, &alloc_id).await;
        Ok(a["ClientStatus"] == "complete")
    })
    .await
    .unwrap();
    let stopped = alloc_doc(cl, &alloc_id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = alloc_doc(cl, &alloc_id).await;
    for t in ["a", "b"] {
        assert_eq!(
            later["TaskStates"][t]["Restarts"], stopped["TaskStates"][t]["Restarts"],
            "{t} restarted after the stop"
        );
        assert_eq!(later["TaskStates"][t]["State"], "dead");
    }

    // A task check restarts only its task, and the restart counts against the policy: with
    // no attempts left the task fails.
    let mut bad = check("bad", "tcp", "", 1);
    bad["CheckRestart"] = json!({"Limit": 1, "Grace": SECOND});
    let mut a = sleeper("a");
    a["Services"] =
        json!([{"Name": "asvc", "Provider": "nomad", "PortLabel": "http", "Checks": [bad]}]);
    let mut g = group("g", json!([]), json!([a, sleeper("b")]));
    g["RestartPolicy"] =
        json!({"Attempts": 0, "Delay": SECOND, "Interval": 600 * SECOND, "Mode": "fail"});
    g["ReschedulePolicy"] = json!({"Attempts": 0, "Unlimited": false});
    register_job(cl, &job("strict", g)).await.unwrap();
    let failed = wait_some(
        "the checked task to fail",
        Duration::from_secs(30),
        || async {
            let allocs = job_alloc_docs(cl, "strict").await.ok()?;
            allocs.into_iter().find(|a| a["ClientStatus"] == "failed")
        },
    )
    .await;
    let events = failed["TaskStates"]["a"]["Events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["Type"].as_str().unwrap()).collect();
    let signaled = types.iter().position(|t| *t == "Restart Signaled").unwrap();
    assert!(types[signaled..].contains(&"Not Restarting"), "{types:?}");
    assert_eq!(failed["TaskStates"]["a"]["Failed"], true);
    let b_events = failed["TaskStates"]["b"]["Events"].to_string();
    assert!(!b_events.contains("Restart Signaled"), "{b_events}");
}
