//! Allocation files and logs (issue 5, seeds/003): `/v1/client/fs/*` through the gateway,
//! served by the agent from the real allocation directory of real tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine;
use caravan_tests::*;
use futures::StreamExt;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Starts a dev agent with one running raw_exec task running `script`; returns the cluster and
/// the allocation ID.
async fn with_task(script: &str, log_config: Option<Value>) -> (DevCluster, String) {
    let c = DevCluster::start().await.unwrap();
    let mut task = json!({
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16}
    });
    if let Some(l) = log_config {
        task["LogConfig"] = l;
    }
    let job = json!({
        "ID": "files",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {"Attempts": 0, "Mode": "fail", "Delay": 100_000_000u64, "Interval": 60_000_000_000u64},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [task]
        }]
    });
    register_job(&c.client, &job).await.unwrap();
    let id = running_alloc_id(&c.client, "files", WAIT).await.unwrap();
    (c, id)
}

async fn get(c: &DevCluster, path: &str) -> api::RawResponse {
    send(&c.client, api::Method::GET, path, "").await.unwrap()
}

async fn wait_output(c: &DevCluster, id: &str, want: &str) {
    wait_for(&format!("{want:?} in the task's stdout"), WAIT, || async {
        let r = get(
            c,
            &format!("/v1/client/fs/cat/{id}?path=alloc/logs/t.stdout.0"),
        )
        .await;
        Ok(r.status == 200 && r.text().contains(want))
    })
    .await
    .unwrap();
}

/// Splits back-to-back JSON frames.
fn frames(body: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(body)
        .into_iter::<Value>()
        .map(|v| v.unwrap())
        .collect()
}

fn data_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter_map(|f| f["Data"].as_str())
        .map(|d| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(d).unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_stat_cat_and_readat_serve_the_allocation_directory() {
    let (c, id) = with_task(
        "echo hello world; printf '<html><script>alert(1)</script>' > $NOMAD_TASK_DIR/page.html; echo s3cret > $NOMAD_SECRETS_DIR/token; sleep 3600",
        None,
    )
    .await;
    wait_output(&c, &id, "hello world").await;

    let r = get(&c, &format!("/v1/client/fs/ls/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let root: Value = r.json().unwrap();
    let names: Vec<&str> = root
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alloc", "t"]);
    assert_eq!(root[0]["IsDir"], true);
    assert_eq!(root[0]["FileMode"], "drwxrwxrwx");
    assert!(root[0]["ModTime"].as_str().unwrap().ends_with('Z'));
    assert!(root[0].get("ContentType").is_none());
    let r = get(&c, &format!("/v1/client/fs/ls/{id}?path=/alloc/logs")).await;
    let logs: Value = r.json().unwrap();
    assert_eq!(logs[0]["Name"], "t.stderr.0");
    assert_eq!(logs[1]["Name"], "t.stdout.0");
    assert_eq!(logs[1]["Size"], 12);
    assert_eq!(logs[1]["FileMode"], "-rw-r--r--");

    let r = get(
        &c,
        &format!("/v1/client/fs/stat/{id}?path=alloc/logs/t.stdout.0"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let st: Value = r.json().unwrap();
    assert_eq!(st["Name"], "t.stdout.0");
    assert_eq!(st["Size"], 12);
    assert_eq!(st["ContentType"], "text/plain; charset=utf-8");
    let st: Value = get(&c, &format!("/v1/client/fs/stat/{id}?path=/alloc"))
        .await
        .json()
        .unwrap();
    assert_eq!(st["IsDir"], true);
    assert_eq!(st["ContentType"], "application/octet-stream");

    let r = get(
        &c,
        &format!("/v1/client/fs/cat/{id}?path=alloc/logs/t.stdout.0"),
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "hello world\n".to_owned()));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // HTML a task wrote is never served as HTML.
    let r = get(
        &c,
        &format!("/v1/client/fs/cat/{id}?path=t/local/page.html"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );

    let r = get(
        &c,
        &format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=6&limit=5"),
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "world".to_owned()));
    let r = get(
        &c,
        &format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=6&limit=0"),
    )
    .await;
    assert_eq!(r.text(), "world\n");

    // Bad input.
    let bad = [
        (
            format!("/v1/client/fs/cat/{id}?path=../../../../etc/passwd"),
            400,
            "Path escapes the alloc directory",
        ),
        (
            format!("/v1/client/fs/ls/{id}?path=alloc/../.."),
            400,
            "Path escapes the alloc directory",
        ),
        (
            format!("/v1/client/fs/stat/{id}?path=.."),
            400,
            "Path escapes the alloc directory",
        ),
        // Reading a missing file is a 400 with the error text, as in Nomad (NOMAD-BEHAVIOR
        // 3.3; python-nomad's suite expects it); ls and stat answer 404.
        (
            format!("/v1/client/fs/cat/{id}?path=/etc/passwd"),
            400,
            "stat /etc/passwd: no such file or directory",
        ),
        (
            format!("/v1/client/fs/cat/{id}?path=alloc/nope"),
            400,
            "stat /alloc/nope: no such file or directory",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/nope&offset=0&limit=1"),
            400,
            "stat /alloc/nope: no such file or directory",
        ),
        (
            format!("/v1/client/fs/stream/{id}?path=alloc/nope&follow=false"),
            400,
            "stat /alloc/nope: no such file or directory",
        ),
        (
            format!("/v1/client/fs/ls/{id}?path=alloc/nope"),
            404,
            "stat /alloc/nope: no such file or directory",
        ),
        (
            format!("/v1/client/fs/stat/{id}?path=alloc/nope"),
            404,
            "stat /alloc/nope: no such file or directory",
        ),
        (
            format!("/v1/client/fs/cat/{id}?path=alloc"),
            400,
            "file \"/alloc\" is a directory",
        ),
        (
            format!("/v1/client/fs/cat/{id}?path=t/secrets/token"),
            403,
            "Reading secret file prohibited: /t/secrets/token",
        ),
        (
            format!("/v1/client/fs/cat/{id}"),
            400,
            "must provide a file name",
        ),
        (
            format!("/v1/client/fs/stat/{id}"),
            400,
            "must provide a file name",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&limit=1"),
            400,
            "must provide offset",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=1"),
            400,
            "must provide limit",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=x&limit=1"),
            400,
            "error parsing offset: \"x\" is not an integer",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=-1&limit=1"),
            400,
            "error parsing offset: -1 is negative",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=0&limit=-2"),
            400,
            "error parsing limit: -2 is negative",
        ),
        (
            format!("/v1/client/fs/readat/{id}?path=alloc/logs/t.stdout.0&offset=999&limit=1"),
            400,
            "offset 999 is beyond the end of the file (12 bytes)",
        ),
        (
            "/v1/client/fs/ls/".to_owned(),
            400,
            "must provide a valid alloc id",
        ),
        (format!("/v1/client/fs/nope/{id}"), 404, "Invalid method"),
        (
            format!("/v1/client/fs/ls/{}", uuid_with_prefix("ab")),
            404,
            "",
        ),
    ];
    for (path, status, text) in bad {
        let r = get(&c, &path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        if !text.is_empty() {
            assert_eq!(r.text(), text, "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_planted_by_the_task_cannot_leave_the_allocation() {
    let (c, id) = with_task(
        "ln -s /etc/passwd $NOMAD_ALLOC_DIR/passwd; ln -s /etc $NOMAD_ALLOC_DIR/etc; ln -s data $NOMAD_ALLOC_DIR/inside; echo ok > $NOMAD_ALLOC_DIR/data/f; echo ready; sleep 3600",
        None,
    )
    .await;
    wait_output(&c, &id, "ready").await;
    for path in ["alloc/passwd", "alloc/etc/passwd", "alloc/etc"] {
        for kind in ["cat", "stat", "ls", "stream"] {
            let r = get(
                &c,
                &format!("/v1/client/fs/{kind}/{id}?path={path}&follow=false"),
            )
            .await;
            assert_eq!(r.status, 400, "{kind} {path}: {}", r.text());
            assert_eq!(r.text(), "Path escapes the alloc directory");
        }
    }
    // A symlink that stays inside is followed.
    let r = get(&c, &format!("/v1/client/fs/cat/{id}?path=alloc/inside/f")).await;
    assert_eq!((r.status, r.text()), (200, "ok\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_streams_frame_follow_and_end() {
    let (c, id) = with_task(
        "echo one; echo two >&2; sleep 0.5; echo three; sleep 0.5; echo four; sleep 0.3; exit 0",
        None,
    )
    .await;
    wait_output(&c, &id, "one").await;
    // Frames without follow: everything there now, base64, with File and Offset.
    let r = get(&c, &format!("/v1/client/fs/logs/{id}?task=t&type=stdout")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    let fs = frames(&r.text());
    assert!(data_of(&fs).starts_with("one\n"), "{fs:?}");
    assert_eq!(fs[0]["File"], "alloc/logs/t.stdout.0");
    assert_eq!(fs[0]["Offset"], 4);
    let r = get(
        &c,
        &format!("/v1/client/fs/logs/{id}?task=t&type=stderr&plain=true"),
    )
    .await;
    assert_eq!((r.status, r.text()), (200, "two\n".to_owned()));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // origin=end with an offset: the last bytes.
    let r = get(
        &c,
        &format!("/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true&origin=end&offset=4"),
    )
    .await;
    assert_eq!(r.text(), "one\n");

    // Following: new lines arrive, and the stream ends by itself once the task is dead.
    let url = format!(
        "{}/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true&follow=true",
        c.url
    );
    let started = std::time::Instant::now();
    let body = tokio::time::timeout(WAIT, async {
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    })
    .await
    .expect("a following log stream ends once the task is dead");
    assert_eq!(body, "one\nthree\nfour\n");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // fs/stream: follow is the default; heartbeats while idle, then ends when closed here.
    let url = format!(
        "{}/v1/client/fs/stream/{id}?path=alloc/logs/t.stdout.0&origin=end&offset=5",
        c.url
    );
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if text.contains("{}") {
            break;
        }
    }
    let fs = frames(&text);
    assert_eq!(data_of(&fs), "four\n", "{text}");
    assert!(
        fs.iter().any(|f| f == &json!({})),
        "a heartbeat frame: {text}"
    );
    let r = get(
        &c,
        &format!("/v1/client/fs/stream/{id}?path=alloc/logs/t.stdout.0&follow=false&offset=4"),
    )
    .await;
    assert_eq!(data_of(&frames(&r.text())), "three\nfour\n");

    // Bad input, checked in Nomad's order before the allocation is looked up.
    let unknown = uuid_with_prefix("cd");
    for (path, status, text) in [
        (
            format!("/v1/client/fs/logs/{id}?type=stdout"),
            400,
            "must provide task name".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdin"),
            400,
            "must provide log type (stdout/stderr)".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t"),
            400,
            "must provide log type (stdout/stderr)".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdout&origin=middle"),
            400,
            "origin must be start or end".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdout&offset=abc"),
            400,
            "error parsing offset: \"abc\" is not an integer".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdout&offset=-3"),
            400,
            "error parsing offset: -3 is negative".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdout&follow=maybe"),
            400,
            "failed to parse follow field to boolean: \"maybe\" is not true or false".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=t&type=stdout&offset=9999"),
            400,
            "offset 9999 is beyond the end of the logs".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{id}?task=nope&type=stdout"),
            400,
            "unknown task name \"nope\"".to_owned(),
        ),
        (
            format!("/v1/client/fs/logs/{unknown}?task=t&type=stdout"),
            404,
            format!("Unknown allocation \"{unknown}\""),
        ),
        (
            format!("/v1/client/fs/stream/{id}?path=alloc/logs/t.stdout.0&origin=middle"),
            400,
            "origin must be start or end".to_owned(),
        ),
        (
            format!("/v1/client/fs/stream/{id}"),
            400,
            "must provide a file name".to_owned(),
        ),
        (
            format!("/v1/client/fs/stream/{id}?path=alloc"),
            400,
            "file \"/alloc\" is a directory".to_owned(),
        ),
    ] {
        let r = get(&c, &path).await;
        assert_eq!((r.status, r.text()), (status, text), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_rotations_and_disabled_or_collected_logs_are_404() {
    // 1 MiB files: 2.5 MiB of output spans three files; the logs endpoint reads across them.
    let (c, id) = with_task(
        "head -c 2621440 /dev/zero | tr '\\0' 'x'; echo; echo end; sleep 3600",
        Some(json!({"MaxFiles": 5, "MaxFileSizeMB": 1})),
    )
    .await;
    wait_for("the third log file", WAIT, || async {
        let r = get(
            &c,
            &format!("/v1/client/fs/cat/{id}?path=alloc/logs/t.stdout.2"),
        )
        .await;
        Ok(r.status == 200 && r.text().ends_with("end\n"))
    })
    .await
    .unwrap();
    let r = get(
        &c,
        &format!("/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true"),
    )
    .await;
    let body = r.text();
    assert_eq!(body.len(), 2_621_440 + 5);
    assert!(body.ends_with("\nend\n"));
    let r = get(&c, &format!("/v1/client/fs/logs/{id}?task=t&type=stdout")).await;
    let fs = frames(&r.text());
    let files: std::collections::BTreeSet<&str> =
        fs.iter().filter_map(|f| f["File"].as_str()).collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(fs.iter().all(|f| {
        base64::engine::general_purpose::STANDARD
            .decode(f["Data"].as_str().unwrap())
            .unwrap()
            .len()
            <= 65536
    }));

    // A task with logging disabled has no logs: 404.
    let job = json!({
        "ID": "quiet", "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "q", "Driver": "mock_driver", "Config": {},
            "LogConfig": {"Disabled": true, "MaxFiles": 1, "MaxFileSizeMB": 1},
            "Resources": {"CPU": 10, "MemoryMB": 10}}]}]
    });
    register_job(&c.client, &job).await.unwrap();
    let quiet = std::sync::Mutex::new(String::new());
    wait_for("the quiet task", WAIT, || async {
        let a = job_alloc_docs(&c.client, "quiet").await?;
        Ok(match a.first() {
            Some(a) if a["ClientStatus"] == "running" => {
                *quiet.lock().unwrap() = a["ID"].as_str().unwrap_or_default().to_owned();
                true
            }
            _ => false,
        })
    })
    .await
    .unwrap();
    let quiet = quiet.into_inner().unwrap();
    let r = get(
        &c,
        &format!("/v1/client/fs/logs/{quiet}?task=q&type=stdout"),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (404, "logging is disabled for task \"q\"".to_owned())
    );

    // A garbage-collected allocation: 404, never a 500.
    let r = post(&c.client, &format!("/v1/allocation/{id}/stop"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    wait_for("the allocation to stop", WAIT, || async {
        Ok(get_json(&c.client, &format!("/v1/allocation/{id}"))
            .await?
            .0["ClientStatus"]
            == "complete")
    })
    .await
    .unwrap();
    assert_eq!(
        get(&c, &format!("/v1/client/allocation/{id}/gc"))
            .await
            .status,
        200
    );
    for path in [
        format!("/v1/client/fs/ls/{id}"),
        format!("/v1/client/fs/cat/{id}?path=alloc/logs/t.stdout.0"),
        format!("/v1/client/fs/logs/{id}?task=t&type=stdout"),
    ] {
        let r = get(&c, &path).await;
        assert_eq!(
            (r.status, r.text()),
            (
                404,
                format!("state for allocation {id} not found on client")
            ),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_goes_away_frees_the_agent() {
    let (c, id) = with_task("while :; do echo tick; sleep 0.05; done", None).await;
    wait_output(&c, &id, "tick").await;
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", c.process.pid()))
            .unwrap()
            .count()
    };
    // Let the agent settle, then count its descriptors.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = fds();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let url = format!(
            "{}/v1/client/fs/logs/{id}?task=t&type=stdout&follow=true",
            c.url
        );
        let resp = reqwest::get(&url).await.unwrap();
        let mut body = resp.bytes_stream();
        assert!(body.next().await.is_some());
        readers.push(body);
    }
    assert!(fds() > before, "twenty followers hold files and sockets");
    drop(readers);
    wait_for("the followers' files and sockets to be freed", WAIT, || {
        let now = fds();
        async move { Ok(now <= before + 2) }
    })
    .await
    .unwrap();
}
