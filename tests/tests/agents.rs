//! Real client agents on PostgreSQL (issue 4): an agent killed with SIGKILL re-attaches to its
//! running tasks, status reports ride out a server restart and a PostgreSQL restart (on a
//! cluster of the test's own), and several agents on one machine
//! share placements, drain migrations and lost-node replacements — all with real processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use caravan_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

async fn register(client: &api::Client, job: Value) {
    register_job(client, &job).await.unwrap();
}

async fn allocs_of(client: &api::Client, job: &str) -> Vec<Value> {
    job_alloc_docs(client, job).await.unwrap()
}

/// Waits until the job's allocations satisfy `pred`; returns them.
async fn wait_allocs(
    client: &api::Client,
    job: &str,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let found = std::sync::Mutex::new(Vec::new());
    wait_for(what, WAIT, || async {
        let allocs = allocs_of(client, job).await;
        let ok = pred(&allocs);
        *found.lock().unwrap() = allocs;
        Ok(ok)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", found.lock().unwrap()));
    found.into_inner().unwrap()
}

fn running(allocs: &[Value]) -> Vec<&Value> {
    allocs
        .iter()
        .filter(|a| a["ClientStatus"] == "running")
        .collect()
}

fn job(id: &str, kind: &str, count: u32, script: &str) -> Value {
    json!({
        "ID": id,
        "Type": kind,
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "RestartPolicy": {"Attempts": 2, "Mode": "fail", "Delay": 100_000_000u64, "Interval": 600_000_000_000u64},
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", script]},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]
        }]
    })
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// SIGKILLs a process, and its process group when it leads one. Never through the `kill`
/// binary: procps-ng 4.0.2 reads `kill -9 -<pgid>` as `kill(-<first digit>)`, and a group id
/// starting with 1 then killed every process on the machine.
fn kill9(pid: i32) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    // 0 and 1 would mean "our own group" and "everyone".
    if pid <= 1 {
        return;
    }
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Kills the task processes a failed test would leave behind (durable tasks outlive agents).
struct KillOnDrop(Vec<PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                kill9(pid);
            }
        }
    }
}

/// An exec session's command does not outlive its agent: a SIGKILLed agent cannot end the
/// session, so the restarted agent kills what its sessions left running.
#[tokio::test(flavor = "multi_thread")]
async fn exec_sessions_do_not_outlive_a_killed_agent() {
    use base64::Engine;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let mut c = PgCluster::start_full(&[], &[], false).await.unwrap();
    let script = "echo $$ > $NOMAD_ALLOC_DIR/pid; exec sleep 100000";
    register(&c.client, job("shell", "service", 1, script)).await;
    let allocs = wait_allocs(&c.client, "shell", "the task to run", |a| {
        running(a).len() == 1
    })
    .await;
    let id = allocs[0]["ID"].as_str().unwrap().to_owned();
    // The task outlives its (non-ephemeral) agent: killed when the test ends.
    let task_pid_file = c.agent_dir.path().join("alloc").join(&id).join("alloc/pid");
    // ["/bin/sh","-c","echo $$; exec sleep 1000"]
    let command =
        "%5B%22%2Fbin%2Fsh%22%2C%22-c%22%2C%22echo%20%24%24%3B%20exec%20sleep%201000%22%5D";
    let url = format!(
        "ws://{}/v1/client/allocation/{id}/exec?command={command}",
        c.http_addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let pid = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if let Some(data) = frame["stdout"]["data"].as_str() {
                    let out = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap();
                    break String::from_utf8(out)
                        .unwrap()
                        .trim()
                        .parse::<i32>()
                        .unwrap();
                }
            }
            other => panic!("no pid from the session: {other:?}"),
        }
    };
    let pid_file = c.agent_dir.path().join("session.pid");
    std::fs::write(&pid_file, pid.to_string()).unwrap();
    let _cleanup = KillOnDrop(vec![pid_file, task_pid_file]);

    c.agent.kill_hard();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pid_alive(pid),
        "nothing ends the session while the agent is down"
    );
    c.restart_agent().unwrap();
    wait_for("the session's command to be killed", WAIT, || async move {
        Ok(!pid_alive(pid))
    })
    .await
    .unwrap();
    drop(ws);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agent_reattaches_to_its_running_tasks() {
    let mut c = PgCluster::start_full(&[], &[], false).await.unwrap();
    let script = "echo $$ > $NOMAD_ALLOC_DIR/pid; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done";
    register(&c.client, job("durable", "service", 1, script)).await;
    let allocs = wait_allocs(&c.client, "durable", "the task to run", |a| {
        running(a).len() == 1
    })
    .await;
    let first = allocs[0].clone();
    let id = first["ID"].as_str().unwrap().to_owned();
    let alloc_dir = c.agent_dir.path().join("alloc").join(&id);
    let pid_file = alloc_dir.join("alloc/pid");
    let _cleanup = KillOnDrop(vec![pid_file.clone()]);
    wait_for("the pid file", WAIT, || {
        let ok = pid_file.exists();
        async move { Ok(ok) }
    })
    .await
    .unwrap();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let log = alloc_dir.join("alloc/logs/t.stdout.0");

    // SIGKILL the agent: the task keeps running and its output keeps being logged.
    c.agent.kill_hard();
    let before = file_len(&log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(pid_alive(pid), "the task outlives its agent");
    assert!(
        file_len(&log) > before,
        "logs keep flowing while the agent is down"
    );
    c.restart_agent().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a = get_json(&c.client, &format!("/v1/allocation/{id}"))
        .await
        .unwrap()
        .0;
    assert_eq!(a["ClientStatus"], "running");
    assert_eq!(
        a["TaskStates"]["t"]["Restarts"], 0,
        "re-attached, not restarted"
    );
    assert_eq!(
        a["TaskStates"]["t"]["StartedAt"],
        first["TaskStates"]["t"]["StartedAt"]
    );
    assert!(pid_alive(pid));
    // Still controlled after the re-attach: a signal reaches the same process.
    let resp = post(
        &c.client,
        &format!("/v1/client/allocation/{id}/signal"),
        r#"{"Signal":"SIGCONT"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    // The task dies while the agent is down: the restarted agent reports it and restarts it.
    c.agent.kill_hard();
    kill9(pid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.restart_agent().unwrap();
    let allocs = wait_allocs(&c.client, "durable", "the dead task to be restarted", |a| {
        a.iter().any(|a| {
            a["ID"] == id.as_str()
                && a["TaskStates"]["t"]["Restarts"] == 1
                && a["ClientStatus"] == "running"
        })
    })
    .await;
    let a = allocs.iter().find(|a| a["ID"] == id.as_str()).unwrap();
    let events = a["TaskStates"]["t"]["Events"].as_array().unwrap();
    let terminated = events.iter().find(|e| e["Type"] == "Terminated").unwrap();
    assert_eq!(terminated["Signal"], 9, "{terminated}");
    let new_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(new_pid, pid);

    // Stopping the job kills the (re-attached) task.
    let resp = send(&c.client, api::Method::DELETE, "/v1/job/durable", "")
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    wait_allocs(&c.client, "durable", "the task to stop", |a| {
        running(a).is_empty()
    })
    .await;
    wait_for("the task process to exit", WAIT, || async move {
        Ok(!pid_alive(new_pid))
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_ride_out_a_server_restart() {
    let mut c = PgCluster::start().await.unwrap();
    register(&c.client, job("finish", "batch", 1, "sleep 1; echo done")).await;
    wait_allocs(&c.client, "finish", "the task to run", |a| {
        running(a).len() == 1
    })
    .await;
    // The task completes while the server is down; the agent delivers the report later.
    c.server.kill_hard();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.restart_server().await.unwrap();
    let allocs = wait_allocs(&c.client, "finish", "the completion to be reported", |a| {
        a.len() == 1 && a[0]["ClientStatus"] == "complete"
    })
    .await;
    let types: Vec<&str> = allocs[0]["TaskStates"]["t"]["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Received", "Task Setup", "Started", "Terminated"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_agents_share_placements_drains_and_lost_nodes() {
    let c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"], &[])
        .await
        .unwrap();
    let b = c.add_agent("agent-2").await.unwrap();
    let mut third = c.add_agent("agent-3").await.unwrap();
    let dirs = [
        (c.node_id.clone(), c.agent_dir.path().to_owned()),
        (b.node_id.clone(), b.dir.path().to_owned()),
        (third.node_id.clone(), third.dir.path().to_owned()),
    ];
    let dir_of = |node: &str| dirs.iter().find(|(n, _)| n == node).unwrap().1.clone();

    let mut spec = job("spread", "service", 2, "while :; do sleep 0.1; done");
    spec["Constraints"] = json!([{"Operand": "distinct_hosts", "RTarget": "true"}]);
    register(&c.client, spec).await;
    let allocs = wait_allocs(&c.client, "spread", "two allocations to run", |a| {
        running(a).len() == 2
    })
    .await;
    let nodes: Vec<String> = allocs
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(nodes[0], nodes[1], "distinct hosts");
    for a in &allocs {
        let dir = dir_of(a["NodeID"].as_str().unwrap())
            .join("alloc")
            .join(a["ID"].as_str().unwrap());
        assert!(
            dir.join("t/local").is_dir(),
            "the allocation runs on its own node's agent"
        );
    }

    // Drain one node: its allocation moves to the free node and the old one completes.
    let drained = nodes[0].clone();
    let resp = post(
        &c.client,
        &format!("/v1/node/{drained}/drain"),
        &json!({"DrainSpec": {"Deadline": 30_000_000_000u64}}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let allocs = wait_allocs(&c.client, "spread", "the drained allocation to move", |a| {
        let r = running(a);
        r.len() == 2
            && r.iter().all(|a| a["NodeID"] != drained.as_str())
            && a.iter()
                .any(|a| a["NodeID"] == drained.as_str() && a["ClientStatus"] == "complete")
    })
    .await;
    let free: Vec<String> = running(&allocs)
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap().to_owned())
        .collect();
    wait_for("the drain to complete", WAIT, || async {
        Ok(node_doc(&c.client, &drained).await?["Drain"] == false)
    })
    .await
    .unwrap();
    let resp = post(
        &c.client,
        &format!("/v1/node/{drained}/eligibility"),
        r#"{"Eligibility":"eligible"}"#,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    // Kill one agent outright: its node goes down, its allocation is lost and replaced.
    let victim = if free.contains(&third.node_id) {
        third.node_id.clone()
    } else {
        b.node_id.clone()
    };
    assert!(free.contains(&victim));
    if victim == third.node_id {
        third.process.kill_hard();
    } else {
        drop(b);
    }
    let allocs = wait_allocs(
        &c.client,
        "spread",
        "the lost allocation to be replaced",
        |a| {
            let r = running(a);
            r.len() == 2
                && r.iter().all(|a| a["NodeID"] != victim.as_str())
                && a.iter()
                    .any(|a| a["NodeID"] == victim.as_str() && a["ClientStatus"] == "lost")
        },
    )
    .await;
    assert!(
        running(&allocs)
            .iter()
            .any(|a| a["NodeID"] == drained.as_str()),
        "replaced onto the re-enabled node"
    );
    assert_eq!(
        node_doc(&c.client, &victim).await.unwrap()["Status"],
        "down"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_ride_out_a_postgres_restart() {
    let pg = caravan_tests::private_pg::PrivatePostgres::start().unwrap();
    let db = TestDatabase::create_on(&pg.admin_url()).await.unwrap();
    let c = PgCluster::start_on(db, &[], &[], true).await.unwrap();
    register(
        &c.client,
        job("through-pg", "batch", 1, "sleep 1; echo done"),
    )
    .await;
    wait_allocs(&c.client, "through-pg", "the task to run", |a| {
        running(a).len() == 1
    })
    .await;
    // The database goes away while the task finishes: the report is held (by the server's
    // writer, or by the agent's retries) until the database is back, and not lost.
    pg.stop().unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    pg.start_again().unwrap();
    let allocs = wait_allocs(
        &c.client,
        "through-pg",
        "the completion to be reported",
        |a| a.len() == 1 && a[0]["ClientStatus"] == "complete",
    )
    .await;
    assert_eq!(allocs[0]["TaskStates"]["t"]["State"], "dead");
    assert_eq!(allocs[0]["TaskStates"]["t"]["Failed"], false);
}
