//! The client agent runs tasks for real (issue 4): black-box over HTTP against `caravan agent
//! -dev` and separate agent processes, with real processes for raw_exec and exec tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use caravan_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn register(client: &api::Client, job: Value) {
    register_job(client, &job).await.unwrap();
}

async fn job_allocs(client: &api::Client, job: &str) -> Vec<Value> {
    let (v, _) = get_json(client, &format!("/v1/job/{job}/allocations?all=true"))
        .await
        .unwrap();
    v.as_array().cloned().unwrap_or_default()
}

async fn alloc(client: &api::Client, id: &str) -> Value {
    get_json(client, &format!("/v1/allocation/{id}"))
        .await
        .unwrap()
        .0
}

/// Waits until the job has an allocation for which `pred` holds; returns it.
async fn wait_alloc(
    client: &api::Client,
    job: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let found = std::sync::Mutex::new(None);
    wait_for(what, WAIT, || async {
        for a in job_allocs(client, job).await {
            let full = alloc(client, a["ID"].as_str().unwrap_or_default()).await;
            if pred(&full) {
                *found.lock().unwrap() = Some(full);
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .unwrap();
    found.into_inner().unwrap().unwrap()
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |a| a["ClientStatus"] == status
}

fn event_types(a: &Value, task: &str) -> Vec<String> {
    a["TaskStates"][task]["Events"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["Type"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn alloc_dir(c: &DevCluster, alloc_id: &str) -> PathBuf {
    c.data_dir
        .path()
        .join("client")
        .join("alloc")
        .join(alloc_id)
}

fn read_log(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join("alloc/logs").join(file)).unwrap_or_default()
}

fn raw_exec_job(id: &str, kind: &str, script: &str) -> Value {
    let mut t = task("t", script);
    t["Resources"] = json!({"CPU": 50, "MemoryMB": 32});
    group_job(id, kind, vec![t])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raw_exec_task_runs_with_its_environment_and_logs() {
    let c = DevCluster::start().await.unwrap();
    let script = "echo alloc=$NOMAD_ALLOC_ID name=$NOMAD_ALLOC_NAME index=$NOMAD_ALLOC_INDEX job=$NOMAD_JOB_ID group=$NOMAD_GROUP_NAME task=$NOMAD_TASK_NAME ns=$NOMAD_NAMESPACE region=$NOMAD_REGION dc=$NOMAD_DC cpu=$NOMAD_CPU_LIMIT mem=$NOMAD_MEMORY_LIMIT port=$NOMAD_PORT_http addr=$NOMAD_ADDR_http greeting=$GREETING; \
         echo arg=$1; pwd; ls $NOMAD_ALLOC_DIR; test -d $NOMAD_TASK_DIR && test -d $NOMAD_SECRETS_DIR && echo dirs-ok; echo oops >&2; sleep 3600";
    let mut job = raw_exec_job("env", "service", script);
    job["TaskGroups"][0]["Networks"] = json!([{"DynamicPorts": [{"Label": "http"}]}]);
    job["TaskGroups"][0]["Tasks"][0]["Env"] =
        json!({"GREETING": "hi-${NOMAD_TASK_NAME}-${attr.kernel.name}"});
    job["TaskGroups"][0]["Tasks"][0]["Config"]["args"] =
        json!(["-c", script, "sh", "${NOMAD_JOB_NAME}-${node.datacenter}"]);
    register(&c.client, job).await;
    let a = wait_alloc(&c.client, "env", "the task to run", status_is("running")).await;
    let id = a["ID"].as_str().unwrap();
    assert_eq!(a["ClientDescription"], "Tasks are running");
    let ts = &a["TaskStates"]["t"];
    assert_eq!(ts["State"], "running");
    assert!(ts["StartedAt"].is_string());
    assert_eq!(event_types(&a, "t"), ["Received", "Task Setup", "Started"]);
    assert_eq!(ts["Events"][1]["DisplayMessage"], "Building Task Directory");
    let dir = alloc_dir(&c, id);
    let port = a["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
        .as_i64()
        .unwrap();
    let host_ip = a["AllocatedResources"]["Shared"]["Ports"][0]["HostIP"]
        .as_str()
        .unwrap();
    let mut out = String::new();
    wait_for("the task's output", WAIT, || {
        out = read_log(&dir, "t.stdout.0");
        let done = out.contains("dirs-ok");
        async move { Ok(done) }
    })
    .await
    .unwrap();
    for want in [
        format!("alloc={id}"),
        "name=env.g[0]".to_owned(),
        "index=0".to_owned(),
        "job=env group=g task=t ns=default region=global dc=dc1".to_owned(),
        "cpu=50 mem=32".to_owned(),
        format!("port={port} addr={host_ip}:{port}"),
        "greeting=hi-t-linux".to_owned(),
        "arg=env-dc1".to_owned(),
        dir.join("t").display().to_string(),
        "data\nlogs\ntmp".to_owned(),
    ] {
        assert!(out.contains(&want), "{want:?} not in {out:?}");
    }
    assert_eq!(read_log(&dir, "t.stderr.0"), "oops\n");
    for d in ["alloc/data", "alloc/tmp", "t/local", "t/secrets", "t/tmp"] {
        assert!(dir.join(d).is_dir(), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_task_completes_and_a_failing_one_fails_after_its_restarts() {
    let c = DevCluster::start().await.unwrap();
    register(&c.client, raw_exec_job("ok", "batch", "echo done")).await;
    let a = wait_alloc(
        &c.client,
        "ok",
        "the batch task to complete",
        status_is("complete"),
    )
    .await;
    assert_eq!(a["ClientDescription"], "All tasks have completed");
    assert_eq!(
        event_types(&a, "t"),
        ["Received", "Task Setup", "Started", "Terminated"]
    );
    let ts = &a["TaskStates"]["t"];
    assert_eq!(ts["State"], "dead");
    assert_eq!(ts["Failed"], false);
    assert!(ts["FinishedAt"].is_string());
    assert_eq!(ts["Events"][3]["ExitCode"], 0);
    assert_eq!(ts["Events"][3]["DisplayMessage"], "Exit Code: 0");

    // Exit 3 twice: one restart allowed, then Not Restarting and a failed allocation.
    let mut job = raw_exec_job("bad", "batch", "exit 3");
    job["TaskGroups"][0]["RestartPolicy"]["Attempts"] = json!(1);
    register(&c.client, job).await;
    let a = wait_alloc(&c.client, "bad", "the task to fail", status_is("failed")).await;
    assert_eq!(a["ClientDescription"], "Failed tasks");
    let types = event_types(&a, "t");
    assert_eq!(
        types,
        [
            "Received",
            "Task Setup",
            "Started",
            "Terminated",
            "Restarting",
            "Task Setup",
            "Started",
            "Terminated",
            "Not Restarting"
        ]
    );
    let ts = &a["TaskStates"]["t"];
    assert_eq!(ts["Failed"], true);
    assert_eq!(ts["Restarts"], 1);
    assert!(ts["LastRestart"].is_string());
    let events = ts["Events"].as_array().unwrap();
    assert_eq!(events[3]["ExitCode"], 3);
    assert!(
        events[4]["DisplayMessage"]
            .as_str()
            .unwrap()
            .starts_with("Task restarting in 1"),
        "{}",
        events[4]
    );
    assert!(events[4]["StartDelay"].as_i64().unwrap() >= 100_000_000);
    assert_eq!(
        events[8]["DisplayMessage"],
        "Exceeded allowed attempts 1 in interval 1m0s and mode is \"fail\""
    );
    assert_eq!(events[8]["FailsTask"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_failures_apply_the_restart_policy_and_bad_configs_fail_at_once() {
    let c = DevCluster::start().await.unwrap();
    let mut job = raw_exec_job("missing-bin", "batch", "");
    job["TaskGroups"][0]["RestartPolicy"]["Attempts"] = json!(1);
    job["TaskGroups"][0]["Tasks"][0]["Config"] = json!({"command": "/no/such/program"});
    register(&c.client, job).await;
    let a = wait_alloc(
        &c.client,
        "missing-bin",
        "the allocation to fail",
        status_is("failed"),
    )
    .await;
    let events = a["TaskStates"]["t"]["Events"].as_array().unwrap().clone();
    let types = event_types(&a, "t");
    assert_eq!(
        types,
        [
            "Received",
            "Task Setup",
            "Driver Failure",
            "Restarting",
            "Task Setup",
            "Driver Failure",
            "Not Restarting"
        ]
    );
    let err = events[2]["DriverError"].as_str().unwrap();
    assert!(err.contains("/no/such/program"), "{err}");
    assert_eq!(events[2]["DisplayMessage"], err);

    let mut job = raw_exec_job("no-command", "batch", "");
    job["TaskGroups"][0]["RestartPolicy"]["Attempts"] = json!(3);
    job["TaskGroups"][0]["Tasks"][0]["Config"] = json!({"args": ["x"]});
    register(&c.client, job).await;
    let a = wait_alloc(
        &c.client,
        "no-command",
        "the allocation to fail",
        status_is("failed"),
    )
    .await;
    assert_eq!(
        event_types(&a, "t"),
        ["Received", "Task Setup", "Driver Failure", "Not Restarting"]
    );
    let events = a["TaskStates"]["t"]["Events"].as_array().unwrap();
    assert!(
        events[2]["DriverError"]
            .as_str()
            .unwrap()
            .contains("\"command\""),
        "{}",
        events[2]
    );
    assert_eq!(events[3]["DisplayMessage"], "Error was unrecoverable");
}

#[tokio::test(flavor = "multi_thread")]
async fn signal_restart_and_gc_reach_the_task() {
    let c = DevCluster::start().await.unwrap();
    let job = raw_exec_job(
        "sig",
        "service",
        "trap 'echo got-usr1' USR1; echo started; while :; do sleep 0.1; done",
    );
    register(&c.client, job).await;
    let a = wait_alloc(&c.client, "sig", "the task to run", status_is("running")).await;
    let id = a["ID"].as_str().unwrap().to_owned();
    let dir = alloc_dir(&c, &id);
    let signal = |body: &str| {
        let client = c.client.clone();
        let path = format!("/v1/client/allocation/{id}/signal");
        let body = body.to_owned();
        async move { post(&client, &path, &body).await.unwrap() }
    };
    // The trap is set once "started" is out: a signal before that would kill the shell.
    wait_for("the trap to be set", WAIT, || {
        let out = read_log(&dir, "t.stdout.0");
        async move { Ok(out.contains("started")) }
    })
    .await
    .unwrap();
    let resp = signal(r#"{"Signal":"SIGUSR1","Task":"t"}"#).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), r#"{"Index":0}"#);
    wait_for("the trap to run", WAIT, || {
        let out = read_log(&dir, "t.stdout.0");
        async move { Ok(out.contains("got-usr1")) }
    })
    .await
    .unwrap();
    // Every running task when Task is left out; case-insensitive keys as Go decodes them.
    assert_eq!(signal(r#"{"signal":"usr1"}"#).await.status, 200);

    // Bad input.
    let bad = signal(r#"{"Signal":"SIGNOPE"}"#).await;
    assert_eq!(
        (bad.status, bad.text()),
        (400, r#"invalid signal "SIGNOPE""#.to_owned())
    );
    let bad = signal(r#"{"Signal":"SIGUSR1","Task":"nope"}"#).await;
    assert_eq!((bad.status, bad.text()), (404, "Task not found".to_owned()));
    let bad = signal("").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.text(), "Failed to decode body: Request body is empty");
    let bad = signal("{").await;
    assert_eq!(bad.status, 400);
    let unknown = uuid_with_prefix("dead");
    let resp = post(
        &c.client,
        &format!("/v1/client/allocation/{unknown}/signal"),
        r#"{"Signal":"SIGHUP"}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        (resp.status, resp.text()),
        (404, format!("Unknown allocation \"{unknown}\""))
    );
    let resp = send(
        &c.client,
        api::Method::GET,
        &format!("/v1/client/allocation/{id}/signal"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 405);

    // Restart: the task is stopped and started again in place.
    let restart = |body: &str| {
        let client = c.client.clone();
        let path = format!("/v1/client/allocation/{id}/restart");
        let body = body.to_owned();
        async move { post(&client, &path, &body).await.unwrap() }
    };
    let bad = restart(r#"{"TaskName":"t","AllTasks":true}"#).await;
    assert_eq!(
        (bad.status, bad.text()),
        (
            400,
            "task name cannot be set when restarting all tasks".to_owned()
        )
    );
    let bad = restart(r#"{"TaskName":"nope"}"#).await;
    assert_eq!(
        (bad.status, bad.text()),
        (404, "Could not find task runner for task: nope".to_owned())
    );
    let resp = restart(r#"{"TaskName":"t"}"#).await;
    assert_eq!(
        (resp.status, resp.text()),
        (200, r#"{"Index":0}"#.to_owned())
    );
    let a = wait_alloc(&c.client, "sig", "the restarted task to run", |a| {
        a["TaskStates"]["t"]["Restarts"] == 1 && a["TaskStates"]["t"]["State"] == "running"
    })
    .await;
    let types = event_types(&a, "t");
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(6)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "Restart Signaled",
            "Killing",
            "Terminated",
            "Restarting",
            "Task Setup",
            "Started"
        ]
    );
    // An empty body restarts the running tasks.
    assert_eq!(restart("").await.status, 200);

    // GC refuses a running allocation; stop it, then GC removes the directory only.
    let gc_path = format!("/v1/client/allocation/{id}/gc");
    let resp = send(&c.client, api::Method::GET, &gc_path, "")
        .await
        .unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.text(),
        "No such allocation on client, or allocation not eligible for GC"
    );
    let resp = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let stopped = wait_alloc(
        &c.client,
        "sig",
        "the stopped allocation to complete",
        |a| a["ID"] == id.as_str() && a["ClientStatus"] == "complete",
    )
    .await;
    let types = event_types(&stopped, "t");
    assert_eq!(
        &types[types.len() - 3..],
        ["Killing", "Terminated", "Killed"]
    );
    assert_eq!(
        stopped["TaskStates"]["t"]["Events"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["DisplayMessage"],
        "Task successfully killed"
    );
    // Signal and restart of a terminal allocation are refused.
    let bad = signal(r#"{"Signal":"SIGUSR1"}"#).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = restart("").await;
    assert_eq!(
        (bad.status, bad.text()),
        (400, "restart of an alloc that should not run".to_owned())
    );
    assert!(dir.exists());
    let resp = send(&c.client, api::Method::GET, &gc_path, "")
        .await
        .unwrap();
    // JSON, not Nomad's empty body: the Go package decodes it.
    assert_eq!(
        (resp.status, resp.text()),
        (200, r#"{"Index":0}"#.to_owned())
    );
    assert!(!dir.exists(), "the directory is gone");
    // The allocation stays on the server.
    assert_eq!(alloc(&c.client, &id).await["ClientStatus"], "complete");
    // The replacement keeps running; client GC collects only terminal allocations.
    let resp = send(&c.client, api::Method::GET, "/v1/client/gc", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = send(
        &c.client,
        api::Method::GET,
        &format!("/v1/client/gc?node_id={}", c.node_id),
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let other = uuid_with_prefix("beef");
    let resp = send(
        &c.client,
        api::Method::GET,
        &format!("/v1/client/gc?node_id={other}"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 404, "{}", resp.text());
    let resp = send(&c.client, api::Method::GET, "/v1/client/gc?node_id=xyz", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    let running: Vec<Value> = job_allocs(&c.client, "sig")
        .await
        .into_iter()
        .filter(|a| a["ClientStatus"] == "running")
        .collect();
    assert_eq!(running.len(), 1, "the replacement runs");
}

fn task(name: &str, script: &str) -> Value {
    json!({
        "Name": name,
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16}
    })
}

fn group_job(id: &str, kind: &str, tasks: Vec<Value>) -> Value {
    json!({
        "ID": id,
        "Type": kind,
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail", "Delay": 100_000_000u64, "Interval": 60_000_000_000u64},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": tasks
        }]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_hooks_run_in_order() {
    let c = DevCluster::start().await.unwrap();
    let log = "$NOMAD_ALLOC_DIR/order";
    let mut pre = task("pre", &format!("echo pre >> {log}"));
    pre["Lifecycle"] = json!({"Hook": "prestart", "Sidecar": false});
    let mut side = task(
        "side",
        &format!("echo side >> {log}; while :; do sleep 0.1; done"),
    );
    side["Lifecycle"] = json!({"Hook": "prestart", "Sidecar": true});
    let main = task("main", &format!("sleep 0.3; echo main >> {log}"));
    let mut post = task("post", &format!("echo post >> {log}"));
    post["Lifecycle"] = json!({"Hook": "poststart", "Sidecar": false});
    let mut stop = task("stop", &format!("echo stop >> {log}"));
    stop["Lifecycle"] = json!({"Hook": "poststop", "Sidecar": false});
    register(
        &c.client,
        group_job("hooks", "batch", vec![pre, side, main, post, stop]),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "hooks",
        "every task to finish",
        status_is("complete"),
    )
    .await;
    let order =
        std::fs::read_to_string(alloc_dir(&c, a["ID"].as_str().unwrap()).join("alloc/order"))
            .unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 5, "{order}");
    assert_eq!(lines.last(), Some(&"stop"), "{order}");
    let pos = |w: &str| lines.iter().position(|l| *l == w).unwrap();
    // Both prestart tasks start first; poststart starts once main runs (main writes late).
    assert!(pos("pre") < 2 && pos("side") < 2, "{order}");
    assert!(pos("post") < pos("main"), "{order}");
    // The sidecar was stopped once the main task was done.
    let side_events = event_types(&a, "side");
    assert!(
        side_events.contains(&"Main Tasks Dead".to_owned()),
        "{side_events:?}"
    );
    assert_eq!(side_events.last().map(String::as_str), Some("Killed"));
    for t in ["pre", "main", "post", "stop", "side"] {
        assert_eq!(a["TaskStates"][t]["State"], "dead", "{t}");
        assert_eq!(a["TaskStates"][t]["Failed"], false, "{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_leader_or_a_failed_sibling_stops_the_group() {
    let c = DevCluster::start().await.unwrap();
    let mut leader = task("leader", "sleep 0.2");
    leader["Leader"] = json!(true);
    let follower = task("follower", "while :; do sleep 0.1; done");
    register(
        &c.client,
        group_job("leader", "batch", vec![leader, follower]),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "leader",
        "the group to finish",
        status_is("complete"),
    )
    .await;
    let events = event_types(&a, "follower");
    assert!(
        events.contains(&"Leader Task Dead".to_owned()),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("Killed"));

    let bad = task("bad", "sleep 0.2; exit 1");
    let sibling = task("sibling", "while :; do sleep 0.1; done");
    register(&c.client, group_job("sibling", "batch", vec![bad, sibling])).await;
    // Failed as soon as `bad` fails; the sibling is killed right after.
    let a = wait_alloc(&c.client, "sibling", "the group to fail", |a| {
        a["ClientStatus"] == "failed" && a["TaskStates"]["sibling"]["State"] == "dead"
    })
    .await;
    let events = a["TaskStates"]["sibling"]["Events"]
        .as_array()
        .unwrap()
        .clone();
    let failed = events
        .iter()
        .find(|e| e["Type"] == "Sibling Task Failed")
        .unwrap();
    assert_eq!(failed["FailedSibling"], "bad");
    assert_eq!(failed["DisplayMessage"], "Task's sibling \"bad\" failed");
    assert_eq!(a["TaskStates"]["sibling"]["Failed"], false);
    assert_eq!(a["TaskStates"]["bad"]["Failed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_signal_kill_timeout_and_shutdown_delay() {
    let c = DevCluster::start().await.unwrap();
    // Exits on its kill signal (SIGTERM), saying so.
    let mut polite = task(
        "polite",
        "trap 'echo bye-term; exit 0' TERM; while :; do sleep 0.1; done",
    );
    polite["KillSignal"] = json!("SIGTERM");
    // Ignores everything but SIGKILL: killed after its 1s kill timeout.
    let mut stubborn = task("stubborn", "trap '' INT TERM; while :; do sleep 0.1; done");
    stubborn["KillTimeout"] = json!(1_000_000_000u64);
    let mut job = group_job("kills", "service", vec![polite, stubborn]);
    job["TaskGroups"][0]["ShutdownDelay"] = json!(500_000_000u64);
    register(&c.client, job).await;
    let a = wait_alloc(&c.client, "kills", "the tasks to run", status_is("running")).await;
    let id = a["ID"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let resp = send(&c.client, api::Method::DELETE, "/v1/job/kills", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let a = wait_alloc(&c.client, "kills", "the tasks to be killed", |a| {
        a["ID"] == id.as_str() && a["ClientStatus"] == "complete"
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "shutdown delay + kill timeout: {elapsed:?}"
    );
    let dir = alloc_dir(&c, &id);
    assert_eq!(read_log(&dir, "polite.stdout.0"), "bye-term\n");
    for t in ["polite", "stubborn"] {
        let types = event_types(&a, t);
        assert!(
            types.contains(&"Waiting for shutdown delay".to_owned()),
            "{t}: {types:?}"
        );
        assert_eq!(
            &types[types.len() - 3..],
            ["Killing", "Terminated", "Killed"],
            "{t}"
        );
    }
    let last = |t: &str| {
        let es = a["TaskStates"][t]["Events"].as_array().unwrap().clone();
        es[es.len() - 2].clone()
    };
    assert_eq!(last("polite")["ExitCode"], 0);
    assert_eq!(
        last("stubborn")["Signal"],
        9,
        "SIGKILL after the kill timeout"
    );
    let killing = &a["TaskStates"]["stubborn"]["Events"].as_array().unwrap()
        [event_types(&a, "stubborn").len() - 3];
    assert_eq!(killing["KillTimeout"], 1_000_000_000u64);
    assert_eq!(
        killing["DisplayMessage"],
        "Sent interrupt. Waiting 1s before force killing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_rotate_by_the_log_config() {
    let c = DevCluster::start().await.unwrap();
    // 3.5 MiB of output in 1 MiB files, 2 kept.
    let mut t = task("t", "head -c 3670016 /dev/zero | tr '\\0' 'x'");
    t["LogConfig"] = json!({"MaxFiles": 2, "MaxFileSizeMB": 1});
    register(&c.client, group_job("logs", "batch", vec![t])).await;
    let a = wait_alloc(
        &c.client,
        "logs",
        "the writer to finish",
        status_is("complete"),
    )
    .await;
    let logs = alloc_dir(&c, a["ID"].as_str().unwrap()).join("alloc/logs");
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .filter(|(n, _)| n.starts_with("t.stdout"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ("t.stdout.2".to_owned(), 1_048_576),
            ("t.stdout.3".to_owned(), 524_288)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_driver_tasks_follow_their_config() {
    let c = DevCluster::start().await.unwrap();
    let mock = |name: &str, config: Value| json!({"Name": name, "Driver": "mock_driver", "Config": config, "Resources": {"CPU": 10, "MemoryMB": 10}});
    register(
        &c.client,
        group_job(
            "mock-ok",
            "batch",
            vec![mock(
                "m",
                json!({"run_for": "200ms", "stdout_string": "hello from mock\n"}),
            )],
        ),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "mock-ok",
        "the mock task to complete",
        status_is("complete"),
    )
    .await;
    assert_eq!(
        read_log(&alloc_dir(&c, a["ID"].as_str().unwrap()), "m.stdout.0"),
        "hello from mock\n"
    );
    register(
        &c.client,
        group_job(
            "mock-exit",
            "batch",
            vec![mock("m", json!({"run_for": "50ms", "exit_code": 7}))],
        ),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "mock-exit",
        "the mock task to fail",
        status_is("failed"),
    )
    .await;
    let events = a["TaskStates"]["m"]["Events"].as_array().unwrap().clone();
    assert_eq!(events[3]["ExitCode"], 7);
    register(
        &c.client,
        group_job(
            "mock-start",
            "batch",
            vec![mock("m", json!({"start_error": "no can do"}))],
        ),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "mock-start",
        "the start error",
        status_is("failed"),
    )
    .await;
    assert_eq!(
        a["TaskStates"]["m"]["Events"][2]["DriverError"],
        "no can do"
    );
    register(
        &c.client,
        group_job(
            "mock-kill",
            "batch",
            vec![mock("m", json!({"run_for": "1h", "kill_after": "100ms"}))],
        ),
    )
    .await;
    let a = wait_alloc(
        &c.client,
        "mock-kill",
        "the kill_after",
        status_is("failed"),
    )
    .await;
    assert_eq!(a["TaskStates"]["m"]["Events"][3]["Signal"], 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_task_runs_isolated() {
    if caravan_isolation_probe().is_err() {
        eprintln!("skipping: this machine cannot isolate tasks");
        return;
    }
    let c = DevCluster::start().await.unwrap();
    let mut t = task(
        "iso",
        "echo pid=$$; echo host=$(hostname); ls /; echo dir=$NOMAD_TASK_DIR; ls /alloc; cat /proc/self/cgroup; echo hi > /local/f; touch /usr/x 2>/dev/null || echo usr-ro; sleep 3600",
    );
    t["Driver"] = json!("exec");
    t["Resources"] = json!({"CPU": 100, "MemoryMB": 48});
    register(&c.client, group_job("iso", "service", vec![t])).await;
    let a = wait_alloc(
        &c.client,
        "iso",
        "the exec task to run",
        status_is("running"),
    )
    .await;
    let id = a["ID"].as_str().unwrap().to_owned();
    let dir = alloc_dir(&c, &id);
    let mut out = String::new();
    wait_for("the isolated task's output", WAIT, || {
        out = read_log(&dir, "iso.stdout.0");
        let done = out.contains("usr-ro");
        async move { Ok(done) }
    })
    .await
    .unwrap();
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("host=iso\n"), "{out}");
    for d in [
        "alloc", "local", "secrets", "tmp", "bin", "usr", "etc", "proc", "dev",
    ] {
        assert!(out.lines().any(|l| l == d), "/{d} missing in {out}");
    }
    assert!(out.contains("dir=/local\n"), "{out}");
    assert!(out.contains("data\nlogs\ntmp\n"), "{out}");
    assert!(
        out.contains(&format!("{id}.iso")),
        "the task's cgroup: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("iso/local/f")).unwrap(),
        "hi\n"
    );
    // The memory limit from the task's resources.
    let limit = ["/sys/fs/cgroup/memory/caravan", "/sys/fs/cgroup/caravan"]
        .iter()
        .find_map(|base| {
            let d = PathBuf::from(base).join(format!("{id}.iso"));
            std::fs::read_to_string(d.join("memory.limit_in_bytes"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.max")))
                .ok()
        })
        .unwrap();
    assert_eq!(limit.trim(), (48u64 * 1024 * 1024).to_string());
    // Stopping removes the cgroup.
    let resp = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    wait_alloc(&c.client, "iso", "the exec task to stop", |a| {
        a["ID"] == id.as_str() && a["ClientStatus"] == "complete"
    })
    .await;
    wait_for("the cgroup to go", WAIT, || {
        let gone = !PathBuf::from("/sys/fs/cgroup/memory/caravan")
            .join(format!("{id}.iso"))
            .exists()
            && !PathBuf::from("/sys/fs/cgroup/caravan")
                .join(format!("{id}.iso"))
                .exists();
        async move { Ok(gone) }
    })
    .await
    .unwrap();
}

/// Whether this machine can run exec tasks (root, namespaces, cgroups).
fn caravan_isolation_probe() -> Result<(), ()> {
    let root = nix_is_root();
    let cgroups = std::path::Path::new("/sys/fs/cgroup/memory").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if root && cgroups { Ok(()) } else { Err(()) }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_health_is_reported() {
    let c = DevCluster::start().await.unwrap();
    let mut job = group_job(
        "healthy",
        "service",
        vec![task("t", "while :; do sleep 0.1; done")],
    );
    job["Update"] = json!({"MaxParallel": 1, "MinHealthyTime": 500_000_000u64, "HealthyDeadline": 30_000_000_000u64, "ProgressDeadline": 60_000_000_000u64, "HealthCheck": "task_states"});
    register(&c.client, job).await;
    let a = wait_alloc(&c.client, "healthy", "the allocation to be healthy", |a| {
        a["DeploymentStatus"]["Healthy"] == true
    })
    .await;
    assert!(!a["DeploymentID"].as_str().unwrap().is_empty());
    assert!(a["DeploymentStatus"]["Timestamp"].is_string());
    // A task that keeps failing is unhealthy.
    let mut job = group_job("unhealthy", "service", vec![task("t", "exit 1")]);
    job["Update"] = json!({"MaxParallel": 1, "MinHealthyTime": 500_000_000u64, "HealthyDeadline": 30_000_000_000u64, "ProgressDeadline": 60_000_000_000u64, "HealthCheck": "task_states"});
    register(&c.client, job).await;
    wait_alloc(
        &c.client,
        "unhealthy",
        "the allocation to be unhealthy",
        |a| a["DeploymentStatus"]["Healthy"] == false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_collects_terminal_allocations_beyond_its_limit() {
    let c = DevCluster::start().await.unwrap();
    let mock = json!({"Name": "m", "Driver": "mock_driver", "Config": {"run_for": "10ms"}, "Resources": {"CPU": 1, "MemoryMB": 10}});
    let mut job = group_job("many", "batch", vec![mock]);
    job["TaskGroups"][0]["Count"] = json!(60);
    // Small disks: 60 of the default 300 MB could exceed a test machine's free disk.
    job["TaskGroups"][0]["EphemeralDisk"] = json!({"SizeMB": 10});
    job["TaskGroups"][0]["Tasks"][0]["LogConfig"] = json!({"MaxFiles": 1, "MaxFileSizeMB": 1});
    register(&c.client, job).await;
    wait_for("60 completed allocations", WAIT, || async {
        let all = job_allocs(&c.client, "many").await;
        Ok(all.len() == 60 && all.iter().all(|a| a["ClientStatus"] == "complete"))
    })
    .await
    .unwrap();
    // Nomad's gc_max_allocs (50): the oldest terminal allocations' directories go.
    let base = c.data_dir.path().join("client").join("alloc");
    wait_for("the agent to collect down to 50", WAIT, || {
        let n = std::fs::read_dir(&base).map(|d| d.count()).unwrap_or(0);
        async move { Ok(n <= 50) }
    })
    .await
    .unwrap();
    // They stay on the server.
    assert_eq!(job_allocs(&c.client, "many").await.len(), 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_allocation_is_rescheduled_by_the_server() {
    let c = DevCluster::start().await.unwrap();
    let mut job = raw_exec_job("resched", "batch", "exit 2");
    job["TaskGroups"][0]["ReschedulePolicy"] = json!({
        "Attempts": 1, "Interval": 3_600_000_000_000u64, "Delay": 5_000_000_000u64,
        "DelayFunction": "constant", "Unlimited": false
    });
    register(&c.client, job).await;
    let first = wait_alloc(
        &c.client,
        "resched",
        "the first allocation to fail",
        status_is("failed"),
    )
    .await;
    let first_id = first["ID"].as_str().unwrap().to_owned();
    let second = wait_alloc(&c.client, "resched", "the replacement to fail too", |a| {
        a["PreviousAllocation"] == first_id.as_str() && a["ClientStatus"] == "failed"
    })
    .await;
    assert_eq!(
        second["RescheduleTracker"]["Events"][0]["PrevAllocID"],
        first_id.as_str()
    );
    assert_eq!(
        alloc(&c.client, &first_id).await["NextAllocation"],
        second["ID"]
    );
    // One attempt only: no third allocation.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(job_allocs(&c.client, "resched").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_requests_on_unknown_or_malformed_allocations() {
    let c = DevCluster::start().await.unwrap();
    let unknown = uuid_with_prefix("abcd");
    for (path, body) in [
        (format!("/v1/client/allocation/{unknown}/restart"), ""),
        (
            format!("/v1/client/allocation/{unknown}/signal"),
            r#"{"Signal":"SIGHUP"}"#,
        ),
        (format!("/v1/client/allocation/{unknown}/gc"), ""),
    ] {
        let resp = post(&c.client, &path, body).await.unwrap();
        assert_eq!(resp.status, 404, "{path}: {}", resp.text());
        assert_eq!(resp.text(), format!("Unknown allocation \"{unknown}\""));
    }
    for path in [
        "/v1/client/allocation/not-a-uuid/restart",
        "/v1/client/allocation/not-a-uuid/gc",
    ] {
        let resp = post(&c.client, path, "").await.unwrap();
        assert_eq!(resp.status, 400, "{path}: {}", resp.text());
    }
    let resp = post(
        &c.client,
        &format!("/v1/client/allocation/{unknown}/restart"),
        "{nope",
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = post(
        &c.client,
        &format!("/v1/client/allocation/{unknown}/restart"),
        r#"{"AllTasks":"yes"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = post(
        &c.client,
        &format!("/v1/client/allocation/{unknown}/signal"),
        r#"{"Signal":7}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
}
