//! Resource usage and node metadata served by the client agents (issue 5):
//! `/v1/client/stats`, `/v1/client/allocation/:id/stats`, `/v1/client/metadata` — black-box
//! over HTTP against `caravan agent -dev` and a PostgreSQL cluster with a standalone gateway,
//! with real tasks and values checked against what `/proc` and the cgroups say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use caravan_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn get(client: &api::Client, path: &str) -> api::RawResponse {
    send(client, api::Method::GET, path, "").await.unwrap()
}

fn body(resp: &api::RawResponse) -> Value {
    serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{e}: {}", resp.text()))
}

/// GET `path` until it answers 200 with a non-null body; returns it.
async fn wait_json(client: &api::Client, path: &str) -> Value {
    let found = std::sync::Mutex::new(Value::Null);
    wait_for(&format!("{path} to answer"), WAIT, || async {
        let r = get(client, path).await;
        if r.status != 200 {
            return Ok(false);
        }
        let v = body(&r);
        let ok = !v.is_null();
        *found.lock().unwrap() = v;
        Ok(ok)
    })
    .await
    .unwrap();
    found.into_inner().unwrap()
}

fn job(id: &str, tasks: Vec<Value>) -> Value {
    json!({
        "ID": id,
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail", "Delay": 100_000_000u64, "Interval": 60_000_000_000u64},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": tasks
        }]
    })
}

fn sh_task(name: &str, driver: &str, script: &str) -> Value {
    json!({
        "Name": name,
        "Driver": driver,
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 50, "MemoryMB": 64}
    })
}

/// Waits until the job has an allocation whose tasks all run; returns its ID.
async fn running_alloc(client: &api::Client, job_id: &str) -> String {
    let found = std::sync::Mutex::new(String::new());
    wait_for(&format!("{job_id} to run"), WAIT, || async {
        for a in job_alloc_docs(client, job_id).await? {
            if a["ClientStatus"] == "running" {
                *found.lock().unwrap() = a["ID"].as_str().unwrap_or_default().to_owned();
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
    .unwrap();
    found.into_inner().unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn meminfo_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn online_cores() -> usize {
    std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn can_isolate() -> bool {
    is_root()
        && (std::path::Path::new("/sys/fs/cgroup/memory").exists()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists())
}

fn unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn host_stats_are_measured_from_the_machine() {
    let c = DevCluster::start().await.unwrap();
    let s = wait_json(&c.client, "/v1/client/stats").await;
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "AllocDirStats",
            "CPU",
            "CPUTicksConsumed",
            "DeviceStats",
            "DiskStats",
            "Memory",
            "Timestamp",
            "Uptime"
        ]
    );
    // Memory straight from /proc/meminfo.
    assert_eq!(s["Memory"]["Total"], meminfo_kb("MemTotal") * 1024);
    let total = s["Memory"]["Total"].as_u64().unwrap();
    for k in ["Available", "Used", "Free"] {
        let v = s["Memory"][k].as_u64().unwrap();
        assert!(v > 0 && v <= total, "Memory.{k} = {v} of {total}");
    }
    // One entry per core, percentages of the last interval.
    let cpus = s["CPU"].as_array().unwrap();
    assert_eq!(cpus.len(), online_cores(), "{s}");
    for (i, cpu) in cpus.iter().enumerate() {
        assert_eq!(cpu["CPU"], format!("cpu{i}"));
        for k in ["User", "System", "Idle", "TotalPercent"] {
            let v = cpu[k].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&v), "{k} = {v}");
        }
        let sum = cpu["User"].as_f64().unwrap()
            + cpu["System"].as_f64().unwrap()
            + cpu["Idle"].as_f64().unwrap();
        assert!(sum <= 100.5, "{cpu}");
        assert!(cpu["TotalTicks"].as_f64().unwrap() >= 0.0);
    }
    assert!(s["CPUTicksConsumed"].as_f64().unwrap() >= 0.0);
    // Disks through statvfs.
    let disks = s["DiskStats"].as_array().unwrap();
    assert!(!disks.is_empty());
    for d in disks.iter().chain([&s["AllocDirStats"]]) {
        let size = d["Size"].as_u64().unwrap();
        assert!(size > 0, "{d}");
        assert!(d["Used"].as_u64().unwrap() <= size);
        assert!(d["Available"].as_u64().unwrap() <= size);
        assert!(d["Mountpoint"].as_str().unwrap().starts_with('/'));
        assert!(!d["Device"].as_str().unwrap().is_empty());
        for k in ["UsedPercent", "InodesUsedPercent"] {
            let v = d[k].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&v), "{k} = {v}");
        }
    }
    assert!(s["Uptime"].as_u64().unwrap() > 0);
    let age = unix_nanos() - s["Timestamp"].as_i64().unwrap();
    assert!((0..10_000_000_000).contains(&age), "sample {age} ns old");
    assert_eq!(s["DeviceStats"], json!([]));
    // The sampler keeps going.
    let first = s["Timestamp"].as_i64().unwrap();
    wait_for("a newer sample", WAIT, || async {
        let s = wait_json(&c.client, "/v1/client/stats").await;
        Ok(s["Timestamp"].as_i64().unwrap() > first)
    })
    .await
    .unwrap();
    // The node asked for explicitly, any method, pretty.
    let node = c.node_id.clone();
    for method in [api::Method::GET, api::Method::PUT, api::Method::POST] {
        let r = send(
            &c.client,
            method.clone(),
            &format!("/v1/client/stats?node_id={node}&pretty"),
            "",
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{method:?}: {}", r.text());
        assert!(r.text().starts_with("{\n    \"AllocDirStats\""));
        assert_eq!(body(&r)["Memory"]["Total"], total);
    }
    // Bad and unknown nodes.
    let r = get(&c.client, "/v1/client/stats?node_id=not-a-node").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("UUID must be 36 characters"),
        "{}",
        r.text()
    );
    let unknown = uuid_with_prefix("0000");
    let r = get(&c.client, &format!("/v1/client/stats?node_id={unknown}")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.text(), format!("Unknown node {unknown}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn alloc_stats_of_raw_exec_and_mock_tasks() {
    let c = DevCluster::start().await.unwrap();
    // The shell holds an 8 MB string: its RSS shows it.
    let raw = sh_task(
        "raw",
        "raw_exec",
        "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while :; do sleep 0.05; done",
    );
    let mock = json!({"Name": "mock", "Driver": "mock_driver", "Config": {"run_for": "1h"}, "Resources": {"CPU": 10, "MemoryMB": 10}});
    register_job(&c.client, &job("st", vec![raw, mock]))
        .await
        .unwrap();
    let id = running_alloc(&c.client, "st").await;
    let path = format!("/v1/client/allocation/{id}/stats");
    let mut s = Value::Null;
    wait_for("the string to be built", WAIT, || async {
        let v = wait_json(&c.client, &path).await;
        let rss = v["Tasks"]["raw"]["ResourceUsage"]["MemoryStats"]["RSS"]
            .as_u64()
            .unwrap_or(0);
        Ok(rss > 8_000_000)
    })
    .await
    .unwrap();
    for method in [api::Method::GET, api::Method::POST] {
        let r = send(&c.client, method, &path, "").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        s = body(&r);
    }
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ResourceUsage", "Tasks", "Timestamp"]);
    let raw = &s["Tasks"]["raw"];
    assert_eq!(raw["Pids"], Value::Null);
    let mem = &raw["ResourceUsage"]["MemoryStats"];
    assert_eq!(strings(&mem["Measured"]), ["RSS", "Swap"]);
    assert!(mem["RSS"].as_u64().unwrap() > 8_000_000, "{mem}");
    assert!(mem["RSS"].as_u64().unwrap() < 200_000_000, "{mem}");
    let cpu = &raw["ResourceUsage"]["CpuStats"];
    assert_eq!(
        strings(&cpu["Measured"]),
        ["System Mode", "User Mode", "Percent"]
    );
    assert!(cpu["Percent"].as_f64().unwrap() >= 0.0);
    assert!(raw["Timestamp"].as_i64().unwrap() > 0);
    // A mock task measures nothing.
    let m = &s["Tasks"]["mock"]["ResourceUsage"];
    assert_eq!(m["MemoryStats"]["RSS"], 0);
    assert_eq!(m["MemoryStats"]["Measured"], json!([]));
    assert_eq!(m["CpuStats"]["Percent"], 0.0);
    assert_eq!(m["CpuStats"]["Measured"], json!([]));
    // The allocation sums its running tasks.
    let sum = &s["ResourceUsage"];
    assert_eq!(sum["MemoryStats"]["RSS"], mem["RSS"]);
    assert_eq!(strings(&sum["MemoryStats"]["Measured"]), ["RSS", "Swap"]);
    assert_eq!(
        s["Timestamp"].as_i64().unwrap(),
        [
            raw["Timestamp"].as_i64().unwrap(),
            s["Tasks"]["mock"]["Timestamp"].as_i64().unwrap()
        ]
        .into_iter()
        .max()
        .unwrap()
    );
    // One task; an unknown one is no error.
    let one = body(&get(&c.client, &format!("{path}?task=mock")).await);
    assert_eq!(
        one["Tasks"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["mock"]
    );
    let none = get(&c.client, &format!("{path}?task=nope")).await;
    assert_eq!(none.status, 200);
    let none = body(&none);
    assert_eq!(none["Tasks"], json!({}));
    assert_eq!(none["Timestamp"], 0);
    assert_eq!(none["ResourceUsage"]["MemoryStats"]["RSS"], 0);
    // Unknown and malformed allocations.
    let unknown = uuid_with_prefix("abcd");
    let r = get(&c.client, &format!("/v1/client/allocation/{unknown}/stats")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), format!("Unknown allocation \"{unknown}\""));
    let r = get(&c.client, "/v1/client/allocation/nope/stats").await;
    assert_eq!(r.status, 400, "{}", r.text());
    // A stopped allocation has no running task to measure.
    let r = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    wait_for("the stopped allocation to report nothing", WAIT, || async {
        let r = get(&c.client, &path).await;
        Ok(r.status == 200 && body(&r)["Tasks"] == json!({}))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn alloc_stats_of_an_exec_task_come_from_its_cgroup() {
    if !can_isolate() {
        eprintln!("skipping: this machine cannot isolate tasks");
        return;
    }
    let c = DevCluster::start().await.unwrap();
    // A busy shell holding 8 MB.
    let t = sh_task(
        "busy",
        "exec",
        "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while :; do :; done",
    );
    register_job(&c.client, &job("ex", vec![t])).await.unwrap();
    let id = running_alloc(&c.client, "ex").await;
    let path = format!("/v1/client/allocation/{id}/stats?task=busy");
    let s = std::sync::Mutex::new(Value::Null);
    wait_for("the task to use memory and CPU", WAIT, || async {
        let v = wait_json(&c.client, &path).await;
        let u = &v["Tasks"]["busy"]["ResourceUsage"];
        let ok = u["MemoryStats"]["RSS"].as_u64().unwrap_or(0) > 8_000_000
            && u["CpuStats"]["Percent"].as_f64().unwrap_or(0.0) > 20.0;
        *s.lock().unwrap() = v;
        Ok(ok)
    })
    .await
    .unwrap();
    let s = s.into_inner().unwrap();
    let u = &s["Tasks"]["busy"]["ResourceUsage"];
    let mem = &u["MemoryStats"];
    let measured = strings(&mem["Measured"]);
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/caravan").exists();
    if v1 {
        assert_eq!(
            measured,
            [
                "RSS",
                "Cache",
                "Swap",
                "Usage",
                "Max Usage",
                "Kernel Usage",
                "Kernel Max Usage"
            ]
        );
        assert!(mem["MaxUsage"].as_u64().unwrap() >= mem["RSS"].as_u64().unwrap());
    } else {
        assert_eq!(measured, ["RSS", "Cache", "Swap", "Usage"]);
    }
    let usage = mem["Usage"].as_u64().unwrap();
    assert!(usage >= mem["RSS"].as_u64().unwrap(), "{mem}");
    // The cgroup's own figure, read here, is of the same order.
    let cgroup = format!("{id}.busy");
    let file = if v1 {
        format!("/sys/fs/cgroup/memory/caravan/{cgroup}/memory.usage_in_bytes")
    } else {
        format!("/sys/fs/cgroup/caravan/{cgroup}/memory.current")
    };
    let now: u64 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        now / 2 < usage && usage < now * 2,
        "cgroup says {now}, stats {usage}"
    );
    let cpu = &u["CpuStats"];
    assert_eq!(
        strings(&cpu["Measured"]),
        [
            "System Mode",
            "User Mode",
            "Throttled Periods",
            "Throttled Time",
            "Percent"
        ]
    );
    let pct = cpu["Percent"].as_f64().unwrap();
    // One busy process: about one core.
    assert!(pct > 20.0 && pct < 150.0, "{cpu}");
    assert!(cpu["UserMode"].as_f64().unwrap() > 0.0, "{cpu}");
    assert!(cpu["TotalTicks"].as_f64().unwrap() > 0.0, "{cpu}");
    assert_eq!(s["ResourceUsage"]["MemoryStats"]["RSS"], mem["RSS"]);
}

/// An agent config file with static meta.
fn config_with_meta(dir: &TempDir) -> String {
    let path = dir.path().join("agent.json");
    std::fs::write(
        &path,
        json!({"client": {"meta": {"rack": "r1", "connect.log_level": "info"}}}).to_string(),
    )
    .unwrap();
    path.display().to_string()
}

async fn post_meta(c: &api::Client, query: &str, body: &str) -> api::RawResponse {
    post(c, &format!("/v1/client/metadata{query}"), body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_is_set_unset_and_reaches_the_scheduler() {
    let cfg_dir = TempDir::new("caravan-meta-cfg").unwrap();
    let cfg = config_with_meta(&cfg_dir);
    let c = DevCluster::start_with(&["-config", &cfg]).await.unwrap();
    let node = c.node_id.clone();
    let r = get(&c.client, "/v1/client/metadata").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"Dynamic":{},"Meta":{"connect.log_level":"info","rack":"r1"},"Static":{"connect.log_level":"info","rack":"r1"}}"#
    );
    // A job that needs meta the node does not have yet waits.
    let mut waiting = job(
        "needs-gpu",
        vec![
            json!({"Name": "m", "Driver": "mock_driver", "Config": {"run_for": "1h"}, "Resources": {"CPU": 10, "MemoryMB": 10}}),
        ],
    );
    waiting["Constraints"] =
        json!([{"LTarget": "${meta.pool.kind}", "Operand": "=", "RTarget": "gpu"}]);
    register_job(&c.client, &waiting).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        job_alloc_docs(&c.client, "needs-gpu")
            .await
            .unwrap()
            .is_empty()
    );
    // Set, and unset a static key (masked) and an unknown one (no trace).
    let r = post_meta(
        &c.client,
        "",
        r#"{"Meta": {"pool.kind": "gpu", "empty": "", "rack": null, "never_set": null}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = body(&r);
    assert_eq!(
        v["Dynamic"],
        json!({"pool.kind": "gpu", "empty": "", "rack": null})
    );
    assert_eq!(
        v["Meta"],
        json!({"pool.kind": "gpu", "empty": "", "connect.log_level": "info"})
    );
    assert_eq!(
        v["Static"],
        json!({"rack": "r1", "connect.log_level": "info"})
    );
    let read = body(&get(&c.client, &format!("/v1/client/metadata?node_id={node}")).await);
    assert_eq!(read, v);
    // The servers see it within 10 s, and the waiting job is placed.
    let start = std::time::Instant::now();
    wait_for(
        "the node's meta on the server",
        Duration::from_secs(10),
        || async {
            let n = node_doc(&c.client, &node).await?;
            Ok(n["Meta"]["pool.kind"] == "gpu" && n["Meta"].get("rack").is_none())
        },
    )
    .await
    .unwrap();
    eprintln!("meta reached the server in {:?}", start.elapsed());
    running_alloc(&c.client, "needs-gpu").await;
    // Unset a dynamic key: gone from both maps.
    let r = post_meta(&c.client, "", r#"{"Meta": {"empty": null}}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(body(&r)["Dynamic"].get("empty").is_none());
    assert!(body(&r)["Meta"].get("empty").is_none());
    // Bad input: each a 400 saying what is wrong.
    for (payload, want) in [
        ("", "Request body is empty"),
        ("{", "Request body is not valid JSON"),
        ("[]", "Request body must be a JSON object"),
        ("{}", "missing required Meta object"),
        (r#"{"Meta": null}"#, "missing required Meta object"),
        (r#"{"Meta": {}}"#, "missing required Meta object"),
        (r#"{"Meta": "x"}"#, "Meta"),
        (
            r#"{"Meta": {"a": 1}}"#,
            "Meta[\"a\"] must be a string or null",
        ),
        (r#"{"Meta": {"": "x"}}"#, "metadata keys must not be empty"),
        (
            r#"{"Meta": {"some/path": "x"}}"#,
            "\"some/path\" is invalid; metadata keys must be valid dotted hcl identifiers",
        ),
        (r#"{"Meta": {"1abc": "x"}}"#, "\"1abc\" is invalid"),
        (r#"{"Meta": {"a..b": "x"}}"#, "\"a..b\" is invalid"),
        (r#"{"Meta": {"ok": "x", "a.": "x"}}"#, "\"a.\" is invalid"),
        (r#"{"NodeID": 5, "Meta": {"a": "x"}}"#, "NodeID"),
    ] {
        let r = post_meta(&c.client, "", payload).await;
        assert_eq!(r.status, 400, "{payload}: {}", r.text());
        assert!(r.text().contains(want), "{payload}: {}", r.text());
    }
    // Nothing of the refused updates was applied.
    let now = body(&get(&c.client, "/v1/client/metadata").await);
    assert!(now["Meta"].get("ok").is_none(), "{now}");
    // PUT is not a method of this endpoint.
    let r = send(
        &c.client,
        api::Method::PUT,
        "/v1/client/metadata",
        r#"{"Meta": {"a": "b"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 405);
    // Node addressing.
    let unknown = uuid_with_prefix("0000");
    let r = get(&c.client, &format!("/v1/client/metadata?node_id={unknown}")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post_meta(&c.client, "?node_id=xyz", r#"{"Meta": {"a": "b"}}"#).await;
    assert_eq!(r.status, 400, "{}", r.text());
    // The body's NodeID names the node; the query parameter wins over it.
    let r = post_meta(
        &c.client,
        "",
        &format!(r#"{{"NodeID": "{unknown}", "Meta": {{"a": "b"}}}}"#),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = post_meta(
        &c.client,
        &format!("?node_id={node}"),
        &format!(r#"{{"NodeID": "{unknown}", "Meta": {{"a": "b"}}}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["Meta"]["a"], "b");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_survives_agent_restarts_and_a_standalone_gateway_needs_node_id() {
    let mut c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s"], &[])
        .await
        .unwrap();
    let node = c.node_id.clone();
    // The gateway runs no client: it must be told which node.
    for path in ["/v1/client/metadata", "/v1/client/stats"] {
        let r = get(&c.client, path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.text(), "No local Node and node_id not provided");
    }
    let r = post_meta(&c.client, "", r#"{"Meta": {"a": "b"}}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "No local Node and node_id not provided");
    let s = wait_json(&c.client, &format!("/v1/client/stats?node_id={node}")).await;
    assert_eq!(s["Memory"]["Total"], meminfo_kb("MemTotal") * 1024);
    // Set through the body's NodeID.
    let r = post_meta(
        &c.client,
        "",
        &format!(
            r#"{{"NodeID": "{node}", "Meta": {{"team": "blue", "connect.log_level": "debug"}}}}"#
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_for(
        "the meta on the server",
        Duration::from_secs(10),
        || async { Ok(node_doc(&c.client, &node).await?["Meta"]["team"] == "blue") },
    )
    .await
    .unwrap();
    // A restarted agent keeps its dynamic meta and registers it again.
    c.restart_agent().unwrap();
    let path = format!("/v1/client/metadata?node_id={node}");
    let v = wait_json(&c.client, &path).await;
    assert_eq!(
        v["Dynamic"],
        json!({"team": "blue", "connect.log_level": "debug"})
    );
    assert_eq!(v["Meta"], v["Dynamic"]);
    assert_eq!(v["Static"], json!({}));
    let n = node_doc(&c.client, &node).await.unwrap();
    assert_eq!(n["Meta"]["team"], "blue");
    // A node whose agent is gone: a clear 5xx, then, once it is down, still one.
    c.agent.kill_hard();
    let r = get(&c.client, &path).await;
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(r.text().contains("No path to node"), "{}", r.text());
    wait_for("the node to be down", WAIT, || async {
        Ok(node_doc(&c.client, &node).await?["Status"] == "down")
    })
    .await
    .unwrap();
    let r = get(&c.client, &format!("/v1/client/stats?node_id={node}")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("is down"), "{}", r.text());
}
