//! The built-in service catalogue (`provider = "nomad"`) end to end: a real agent registers
//! its allocations' group and task services, the HTTP API reads, filters, pages, chooses and
//! deletes them, and the agent follows the allocation's life (group services before any task,
//! task services while the task runs, deregistration before the shutdown delay, re-registration
//! after an agent restart). Items refer to SERVICES.md §7.
//!
//! The agents use the loopback interface (`-network-interface lo`), so every port the
//! scheduler hands out lives on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caravan_tests::api::Method;
use caravan_tests::*;
use serde_json::{Value, json};

const LO: &[&str] = &["-network-interface", "lo"];
const SECOND: i64 = 1_000_000_000;

fn task(name: &str, script: &str) -> Value {
    json!({
        "Name": name, "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16}
    })
}

fn service(name: &str, port: &str) -> Value {
    json!({"Name": name, "Provider": "nomad", "PortLabel": port})
}

/// `count` allocations of group `g`: a group service `api` (tags `db`, `idx-<index>`) and a
/// task service `task-svc`, both on the dynamic port `http`.
fn web_job(id: &str, count: u32) -> Value {
    let mut api = service("api", "http");
    api["Tags"] = json!(["db", "idx-${NOMAD_ALLOC_INDEX}"]);
    let mut t = task("t", "exec sleep 600");
    t["Services"] = json!([service("task-svc", "http")]);
    json!({
        "ID": id, "Datacenters": ["*"], "Type": "service",
        "TaskGroups": [{
            "Name": "g", "Count": count,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": [api],
            "Tasks": [t]
        }]
    })
}

async fn get(client: &Client, path: &str) -> api::RawResponse {
    json_call(client, Method::GET, path, &Value::Null).await
}

async fn list(client: &Client, path: &str) -> Vec<Value> {
    expect_ok(&get(client, path).await)
        .as_array()
        .unwrap_or_else(|| panic!("{path}: not a list"))
        .clone()
}

/// Waits until `path` lists `n` registrations; returns them.
async fn wait_count(client: &Client, path: &str, n: usize) -> Vec<Value> {
    let out = std::sync::Mutex::new(Vec::new());
    wait_for(&format!("{n} registrations at {path}"), WAIT, || async {
        let regs = list(client, path).await;
        let done = regs.len() == n;
        *out.lock().unwrap() = regs;
        Ok(done)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: last {:?}", out.lock().unwrap()));
    out.into_inner().unwrap()
}

fn ids(regs: &[Value]) -> Vec<String> {
    regs.iter()
        .map(|r| r["ID"].as_str().unwrap().to_owned())
        .collect()
}

async fn alloc_doc(client: &Client, id: &str) -> Value {
    expect_ok(&get(client, &format!("/v1/allocation/{id}")).await)
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

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Items 1, 2, 4–14, 16–21, 27, 30 and #16616 on one cluster with a three-instance job.
#[tokio::test(flavor = "multi_thread")]
async fn the_catalogue_lists_reads_chooses_and_deletes_agent_registrations() {
    let c = PgCluster::start_with(&[], LO).await.unwrap();
    let cl = &c.client;

    // 1: empty catalogue.
    let resp = get(cl, "/v1/services").await;
    assert_eq!(expect_ok(&resp), json!([]));
    assert_eq!(resp.header("X-Nomad-Index"), Some("1"));

    register_job(cl, &web_job("web", 3)).await.unwrap();
    let api = wait_count(cl, "/v1/service/api", 3).await;
    wait_count(cl, "/v1/service/task-svc", 3).await;

    // 8 and 21: all twelve keys, ordered by ID, Nomad's IDs; 27: host mode = host IP and port.
    let mut sorted = ids(&api);
    sorted.sort();
    assert_eq!(ids(&api), sorted, "ordered by ID");
    for r in &api {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "Address",
            "AllocID",
            "CreateIndex",
            "Datacenter",
            "ID",
            "JobID",
            "ModifyIndex",
            "Namespace",
            "NodeID",
            "Port",
            "ServiceName",
            "Tags",
        ];
        let mut got = keys.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let alloc_id = r["AllocID"].as_str().unwrap();
        assert_eq!(
            r["ID"],
            format!("_nomad-task-{alloc_id}-group-g-api-http"),
            "{r}"
        );
        assert_eq!(r["NodeID"], c.node_id.as_str());
        assert_eq!(r["JobID"], "web");
        assert_eq!(r["Namespace"], "default");
        assert_eq!(r["Datacenter"], "dc1");
        let a = alloc_doc(cl, alloc_id).await;
        let port = &a["AllocatedResources"]["Shared"]["Ports"][0];
        assert_eq!(r["Address"], "127.0.0.1");
        assert_eq!(r["Address"], port["HostIP"]);
        assert_eq!(r["Port"], port["Value"]);
        let index = a["Name"].as_str().unwrap().trim_end_matches(']');
        let index = index.rsplit('[').next().unwrap();
        assert_eq!(
            r["Tags"],
            json!(["db", format!("idx-{index}")]),
            "interpolated"
        );
        let task_regs = list(cl, &format!("/v1/allocation/{alloc_id}/services")).await;
        assert!(
            ids(&task_regs).contains(&format!("_nomad-task-{alloc_id}-t-task-svc-http")),
            "{task_regs:?}"
        );
    }

    // 2 and 4: grouped by namespace, tags unioned, paging and filter parameters ignored.
    let want = json!([{"Namespace": "default", "Services": [
        {"ServiceName": "api", "Tags": ["db", "idx-0", "idx-1", "idx-2"]},
        {"ServiceName": "task-svc", "Tags": []}
    ]}]);
    for path in [
        "/v1/services",
        "/v1/services?per_page=1",
        "/v1/services?next_token=zzz",
        "/v1/services?filter=ServiceName%20%3D%3D%20%22none%22",
    ] {
        assert_eq!(expect_ok(&get(cl, path).await), want, "{path}");
    }

    // 5, 6, 7.
    expect_error(
        &json_call(cl, Method::POST, "/v1/services", &Value::Null).await,
        405,
        "Invalid method",
    );
    expect_error(&get(cl, "/v1/service/").await, 400, "missing service name");
    expect_error(&get(cl, "/v1/service/a/b/c").await, 400, "invalid URI");
    assert_eq!(get(cl, "/v1/service/a/").await.status, 405);
    assert_eq!(list(cl, "/v1/service/unknown").await, Vec::<Value>::new());

    // 9: filter on tags; a malformed filter.
    let one = list(cl, "/v1/service/api?filter=%22idx-1%22%20in%20Tags").await;
    assert_eq!(one.len(), 1);
    assert!(one[0]["Tags"].as_array().unwrap().contains(&json!("idx-1")));
    let bad = get(cl, "/v1/service/api?filter=%22idx-1%22%20in").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.text().starts_with("failed to create result paginator:"),
        "{}",
        bad.text()
    );

    // 10: pages.
    let page = get(cl, "/v1/service/api?per_page=1").await;
    let first = expect_ok(&page);
    assert_eq!(ids(first.as_array().unwrap()), vec![sorted[0].clone()]);
    let token = page.header("X-Nomad-NextToken").unwrap().to_owned();
    assert_eq!(token, format!("default.{}", sorted[1]));
    let rest = list(cl, &format!("/v1/service/api?next_token={token}")).await;
    assert_eq!(ids(&rest), sorted[1..].to_vec());

    // 11–13: choose.
    let a = list(cl, "/v1/service/api?choose=2%7Cabc").await;
    let b = list(cl, "/v1/service/api?choose=2%7Cabc").await;
    assert_eq!(a.len(), 2);
    assert_eq!(ids(&a), ids(&b));
    for bad in ["abc", "2%7C", "x%7Ck", "-1%7Ck"] {
        expect_error(
            &get(cl, &format!("/v1/service/api?choose={bad}")).await,
            400,
            "failed to choose services: Parameter for choose must be in form '<number>|<key>'",
        );
    }
    assert_eq!(list(cl, "/v1/service/api?choose=99%7Ck").await.len(), 3);

    // 19, 20.
    create_namespace(cl, "other").await.unwrap();
    let alloc_id = api[0]["AllocID"].as_str().unwrap().to_owned();
    expect_error(
        &get(
            cl,
            &format!("/v1/allocation/{alloc_id}/services?namespace=other"),
        )
        .await,
        404,
        "allocation not found",
    );
    expect_error(
        &get(cl, "/v1/job/nope/services").await,
        404,
        "job not found",
    );
    assert_eq!(list(cl, "/v1/job/web/services").await.len(), 6);

    // 14 and 16–18: a blocking read wakes on a delete; the name segment is ignored.
    let index: u64 = get(cl, "/v1/service/api")
        .await
        .header("X-Nomad-Index")
        .unwrap()
        .parse()
        .unwrap();
    let blocked = {
        let cl = cl.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = get(&cl, &format!("/v1/service/api?index={index}&wait=30s")).await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = sorted[0].clone();
    let del = json_call(
        cl,
        Method::DELETE,
        &format!("/v1/service/whatever/{victim}"),
        &Value::Null,
    )
    .await;
    assert_eq!(del.status, 200, "{}", del.text());
    assert!(del.body.is_empty(), "{}", del.text());
    assert!(del.header("X-Nomad-Index").is_some());
    let (woken, waited) = blocked.await.unwrap();
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    let woke_at: u64 = woken.header("X-Nomad-Index").unwrap().parse().unwrap();
    assert!(woke_at > index);
    assert_eq!(expect_ok(&woken).as_array().unwrap().len(), 2);
    expect_error(
        &json_call(
            cl,
            Method::DELETE,
            &format!("/v1/service/api/{victim}"),
            &Value::Null,
        )
        .await,
        404,
        "service registration not found",
    );

    // #16616: nothing brings it back on a timer...
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(list(cl, "/v1/service/api").await.len(), 2);
    // ...but an in-place update of the service does.
    let mut updated = web_job("web", 3);
    updated["TaskGroups"][0]["Services"][0]["Tags"] = json!(["db", "v2"]);
    register_job(cl, &updated).await.unwrap();
    let back = wait_some("the updated registrations", WAIT, || async {
        let back = list(cl, "/v1/service/api").await;
        let done = back.len() == 3 && back.iter().all(|r| r["Tags"] == json!(["db", "v2"]));
        done.then_some(back)
    })
    .await;
    assert_eq!(ids(&back), sorted, "same IDs, same allocations");

    // 30 and job stop: every registration of the job goes.
    let stop = json_call(cl, Method::DELETE, "/v1/job/web", &Value::Null).await;
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_count(cl, "/v1/job/web/services", 0).await;
    assert_eq!(expect_ok(&get(cl, "/v1/services").await), json!([]));
}

/// 22–25, #14618 and a failing prerun: the agent's side of the lifecycle.
#[tokio::test(flavor = "multi_thread")]
async fn services_follow_the_allocation_lifecycle() {
    let c = PgCluster::start_with(&[], LO).await.unwrap();
    let cl = &c.client;

    // 22, 23: the group service is there while the prestart task runs; the task service once
    // its task runs.
    let mut main = task("main", "exec sleep 600");
    main["Services"] = json!([service("main-svc", "http")]);
    main["ShutdownDelay"] = json!(5 * SECOND);
    let mut init = task("init", "sleep 4");
    init["Lifecycle"] = json!({"Hook": "prestart", "Sidecar": false});
    let job = json!({
        "ID": "life", "Datacenters": ["*"], "Type": "service",
        "TaskGroups": [{
            "Name": "g",
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": [service("grp", "http")],
            "Tasks": [init, main]
        }]
    });
    register_job(cl, &job).await.unwrap();
    let alloc_id = wait_some("the prestart task to run", WAIT, || async {
        let allocs = job_alloc_docs(cl, "life").await.ok()?;
        let a = allocs.first()?;
        (a["TaskStates"]["init"]["State"] == "running")
            .then(|| a["ID"].as_str().unwrap_or_default().to_owned())
    })
    .await;
    let services = format!("/v1/allocation/{alloc_id}/services");
    let during_init = list(cl, &services).await;
    let a = alloc_doc(cl, &alloc_id).await;
    assert_eq!(a["TaskStates"]["main"]["State"], "pending");
    assert_eq!(
        ids(&during_init),
        vec![format!("_nomad-task-{alloc_id}-group-g-grp-http")]
    );
    wait_count(cl, &services, 2).await;
    wait_for("the main task to run", WAIT, || async {
        Ok(alloc_doc(cl, &alloc_id).await["TaskStates"]["main"]["State"] == "running")
    })
    .await
    .unwrap();

    // 24: on stop, the registrations go at least the shutdown delay before the kill.
    let stop = post(cl, &format!("/v1/allocation/{alloc_id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_count(cl, &services, 0).await;
    let gone_at = unix_nanos();
    let killing_at = wait_some(
        "the main task to be killed",
        Duration::from_secs(30),
        || async {
            let a = alloc_doc(cl, &alloc_id).await;
            let events = a["TaskStates"]["main"]["Events"].as_array().cloned()?;
            let e = events.iter().find(|e| e["Type"] == "Killing")?;
            e["Time"].as_i64()
        },
    )
    .await;
    assert!(
        killing_at - gone_at >= 4 * SECOND,
        "deregistered {} ms before the kill",
        (killing_at - gone_at) / 1_000_000
    );

    // 25: no_shutdown_delay deregisters and kills at once.
    let mut quick = json!({
        "ID": "quick", "Datacenters": ["*"], "Type": "service",
        "TaskGroups": [{
            "Name": "g", "ShutdownDelay": 60 * SECOND,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": [service("quick", "http")],
            "Tasks": [task("t", "exec sleep 600")]
        }]
    });
    quick["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = json!(SECOND);
    register_job(cl, &quick).await.unwrap();
    let quick_id = running_alloc_id(cl, "quick", WAIT).await.unwrap();
    let quick_services = format!("/v1/allocation/{quick_id}/services");
    wait_count(cl, &quick_services, 1).await;
    let started = Instant::now();
    let stop = post(
        cl,
        &format!("/v1/allocation/{quick_id}/stop?no_shutdown_delay=true"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_count(cl, &quick_services, 0).await;
    wait_for("the quick task to die", WAIT, || async {
        Ok(alloc_doc(cl, &quick_id).await["TaskStates"]["t"]["State"] == "dead")
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // 23 and #14618: a crash-looping task is registered while it runs, absent during the
    // restart delay, and never twice.
    let mut crash = task("c", "sleep 1; exit 1");
    crash["Services"] = json!([service("crash-svc", "http")]);
    crash["RestartPolicy"] =
        json!({"Attempts": 10, "Delay": 3 * SECOND, "Interval": 600 * SECOND, "Mode": "delay"});
    let crashy = json!({
        "ID": "crashy", "Datacenters": ["*"], "Type": "service",
        "TaskGroups": [{
            "Name": "g",
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Tasks": [crash]
        }]
    });
    register_job(cl, &crashy).await.unwrap();
    let (mut seen_running, mut seen_absent_in_delay) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(25);
    while Instant::now() < deadline && !(seen_running && seen_absent_in_delay) {
        let regs = list(cl, "/v1/service/crash-svc").await;
        assert!(regs.len() <= 1, "duplicates: {regs:?}");
        seen_running |= regs.len() == 1;
        let allocs = job_alloc_docs(cl, "crashy").await.unwrap();
        if let Some(a) = allocs.first() {
            let st = &a["TaskStates"]["c"];
            let restarts = st["Restarts"].as_u64().unwrap_or(0);
            let last = st["Events"].as_array().and_then(|e| e.last()).cloned();
            let in_delay = st["State"] == "pending"
                && restarts >= 1
                && last.is_some_and(|e| e["Type"] == "Restarting");
            if in_delay {
                // Within the 3 s delay: give the deregistration a moment, then look.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let regs = list(cl, "/v1/service/crash-svc").await;
                let still = alloc_doc(cl, a["ID"].as_str().unwrap()).await;
                if still["TaskStates"]["c"]["State"] == "pending"
                    && still["TaskStates"]["c"]["Restarts"] == restarts
                {
                    assert!(
                        regs.is_empty(),
                        "registered during the restart delay: {regs:?}"
                    );
                    seen_absent_in_delay = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_running, "the crashing task was never registered");
    assert!(seen_absent_in_delay, "never observed the restart delay");

    // A group service whose address cannot be built fails the allocation's tasks.
    let mut bad = service("bad", "http");
    bad["AddressMode"] = json!("alloc");
    let broken = json!({
        "ID": "broken", "Datacenters": ["*"], "Type": "service",
        "TaskGroups": [{
            "Name": "g",
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": [bad],
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [task("t", "exec sleep 600")]
        }]
    });
    register_job(cl, &broken).await.unwrap();
    let failed = wait_some("the broken allocation to fail", WAIT, || async {
        let allocs = job_alloc_docs(cl, "broken").await.ok()?;
        allocs.into_iter().find(|a| a["ClientStatus"] == "failed")
    })
    .await;
    let events = failed["TaskStates"]["t"]["Events"].to_string();
    assert!(
        events.contains(
            r#"failed to setup alloc: unable to get address for service \"bad\": cannot use address_mode=\"alloc\": no allocation network status reported"#
        ),
        "{events}"
    );
    assert_eq!(failed["TaskStates"]["t"]["Failed"], true);
    assert!(
        list(cl, "/v1/service/bad").await.is_empty(),
        "nothing registered"
    );
}

/// 33: an agent restart re-creates registrations deleted while it was down.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_agent_registers_its_running_allocations_again() {
    let mut c = PgCluster::start_full(&[], LO, false).await.unwrap();
    register_job(&c.client, &web_job("durable", 1))
        .await
        .unwrap();
    let regs = wait_count(&c.client, "/v1/job/durable/services", 2).await;
    let before = ids(&regs);

    c.agent.kill_hard();
    for id in &before {
        let del = json_call(
            &c.client,
            Method::DELETE,
            &format!("/v1/service/x/{id}"),
            &Value::Null,
        )
        .await;
        assert_eq!(del.status, 200, "{}", del.text());
    }
    assert!(list(&c.client, "/v1/job/durable/services").await.is_empty());
    c.restart_agent().unwrap();
    let again = wait_count(&c.client, "/v1/job/durable/services", 2).await;
    let mut after = ids(&again);
    after.sort();
    let mut want = before.clone();
    want.sort();
    assert_eq!(after, want);

    // The tasks outlive the (non-ephemeral) agent: stop them.
    let stop = json_call(&c.client, Method::DELETE, "/v1/job/durable", &Value::Null).await;
    assert_eq!(stop.status, 200, "{}", stop.text());
    wait_for("the task to stop", WAIT, || async {
        let allocs = job_alloc_docs(&c.client, "durable").await?;
        Ok(allocs.iter().all(|a| a["ClientStatus"] == "complete"))
    })
    .await
    .unwrap();
    assert!(list(&c.client, "/v1/job/durable/services").await.is_empty());
}
