//! `/v1/agent/host` and `/v1/agent/monitor`, black-box: the host data is the machine's (the
//! files it reads are compared with what the test reads), and the monitor streams the real log
//! lines of the process asked for — the gateway's own, a client agent's (`node_id`) or the
//! server's (`server_id`) — as Nomad's frames or plain text, each at its own level, and stops
//! when the client goes away. Against `caravan agent -dev` (one process) and a PostgreSQL
//! cluster whose server, gateway and agent are separate processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine;
use caravan_tests::*;
use futures::StreamExt;
use serde_json::{Value, json};

const STREAM_WAIT: Duration = Duration::from_secs(20);

async fn get(client: &api::Client, path: &str) -> api::RawResponse {
    send(client, api::Method::GET, path, "").await.unwrap()
}

fn batch_job(id: &str) -> Value {
    json!({
        "ID": id,
        "Type": "batch",
        "Datacenters": ["dc1"],
        "TaskGroups": [{
            "Name": "g",
            "Tasks": [{
                "Name": "t",
                "Driver": "mock_driver",
                "Config": {"run_for": "100ms"},
                "Resources": {"CPU": 20, "MemoryMB": 16}
            }]
        }]
    })
}

/// An open monitor: its frames decoded as they come, the log text they carry.
struct Monitor {
    content_type: String,
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    plain: bool,
    pending: Vec<u8>,
    frames: Vec<Value>,
    text: String,
}

impl Monitor {
    async fn open(base: &str, query: &str) -> Monitor {
        let url = format!("{base}/v1/agent/monitor?{query}");
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Monitor {
            content_type,
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            plain: query.contains("plain=true"),
            pending: Vec::new(),
            frames: Vec::new(),
            text: String::new(),
        }
    }

    fn take(&mut self, chunk: &[u8]) {
        if self.plain {
            self.text.push_str(&String::from_utf8_lossy(chunk));
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut values = serde_json::Deserializer::from_slice(&self.pending).into_iter::<Value>();
        let mut consumed = 0;
        while let Some(Ok(frame)) = values.next() {
            consumed = values.byte_offset();
            if let Some(data) = frame.get("Data").and_then(Value::as_str) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                self.text.push_str(&String::from_utf8_lossy(&bytes));
            }
            self.frames.push(frame);
        }
        self.pending.drain(..consumed);
    }

    /// Reads until `done` holds for what arrived; panics with it at the deadline.
    async fn read_until(&mut self, what: &str, done: impl Fn(&Monitor) -> bool) {
        let deadline = tokio::time::Instant::now() + STREAM_WAIT;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.take(&chunk),
                Ok(other) => panic!("monitor ended waiting for {what}: {other:?}\n{}", self.text),
                Err(_) => panic!("no {what} within {STREAM_WAIT:?}; got:\n{}", self.text),
            }
        }
    }

    async fn wait_text(&mut self, needle: &str) {
        self.read_until(needle, |m| m.text.contains(needle)).await;
    }

    /// Reads whatever comes within `window`.
    async fn read_for(&mut self, window: Duration) {
        let end = tokio::time::Instant::now() + window;
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(end, self.body.next()).await {
            self.take(&chunk);
        }
    }

    /// Reads until the stream ends; panics if it does not within `within`.
    async fn wait_end(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.take(&chunk),
                Ok(_) => return,
                Err(_) => panic!("the monitor did not end within {within:?}"),
            }
        }
    }

    /// The subscription number of this monitor, from the line its own start logs (debug).
    async fn own_subscription(&mut self) -> String {
        self.wait_text("monitor subscription started: subscription=")
            .await;
        let rest = self
            .text
            .split("monitor subscription started: subscription=")
            .nth(1)
            .unwrap();
        rest.split(' ').next().unwrap().to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Monitor
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_lines_arrive_as_frames_with_heartbeats() {
    let c = DevCluster::start().await.unwrap();
    let mut m = Monitor::open(&c.url, "log_level=debug").await;
    assert_eq!(m.content_type, "application/json");
    // The monitor's own start is its first line: from here on, nothing is missed.
    m.own_subscription().await;
    register_job(&c.client, &batch_job("watched"))
        .await
        .unwrap();
    m.wait_text("[DEBUG] caravan_server::jobs: job registered: job_id=watched namespace=default")
        .await;
    m.wait_text("request complete: method=PUT path=/v1/jobs code=200")
        .await;
    // Idle time brings heartbeats: empty objects.
    m.read_until("a heartbeat", |m| {
        m.frames
            .iter()
            .any(|f| f.as_object().is_some_and(|o| o.is_empty()))
    })
    .await;
    for f in &m.frames {
        let o = f.as_object().unwrap();
        assert!(
            o.keys()
                .all(|k| ["Data", "FileEvent", "Offset", "File"].contains(&k.as_str())),
            "{f}"
        );
        if o.contains_key("Data") {
            assert_eq!(o["FileEvent"], "log", "{f}");
        }
    }
    // Every line is an hclog line: time, bracketed level, module, message.
    for line in m.text.lines() {
        let (time, rest) = line.split_once(' ').unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{line}");
        assert!(
            ["[TRACE] ", "[DEBUG] ", "[INFO]  ", "[WARN]  ", "[ERROR] "]
                .iter()
                .any(|l| rest.starts_with(l)),
            "{line}"
        );
    }
}

#[tokio::test]
async fn each_monitor_gets_its_own_level() {
    let c = DevCluster::start().await.unwrap();
    let mut info = Monitor::open(&c.url, "log_level=INFO").await;
    let mut debug = Monitor::open(&c.url, "log_level=debug").await;
    debug.own_subscription().await;
    // The info monitor subscribed before the debug one: the debug one's start line is proof
    // both are live. A debug event, then an info one after it.
    register_job(&c.client, &batch_job("levels")).await.unwrap();
    debug.wait_text("job registered: job_id=levels").await;
    let r = post(
        &c.client,
        &format!("/v1/client/metadata?node_id={}", c.node_id),
        r#"{"Meta": {"monitor": "yes"}}"#,
    )
    .await
    .unwrap();
    expect_ok(&r);
    info.wait_text("[INFO]  caravan_agent::metadata: node metadata sent to the servers")
        .await;
    debug.wait_text("node metadata sent to the servers").await;
    // Lines keep their order, so the info monitor is past the debug line it must not show.
    assert!(!info.text.contains("job registered"), "{}", info.text);
    assert!(!info.text.contains("[DEBUG]"), "{}", info.text);
}

#[tokio::test]
async fn plain_text_and_json_lines() {
    let c = DevCluster::start().await.unwrap();
    let mut plain = Monitor::open(&c.url, "log_level=debug&plain=true").await;
    assert_eq!(plain.content_type, "text/plain");
    let mut json = Monitor::open(
        &c.url,
        "log_level=debug&log_json=true&log_include_location=true",
    )
    .await;
    json.wait_text("\"@message\":\"monitor subscription started\"")
        .await;
    plain.wait_text("monitor subscription started").await;
    register_job(&c.client, &batch_job("formats"))
        .await
        .unwrap();
    plain.wait_text("job registered: job_id=formats").await;
    json.wait_text("\"job_id\":\"formats\"").await;
    // Plain is the bare text: no frames, no heartbeats, however long it stays open.
    plain.read_for(Duration::from_millis(1500)).await;
    assert!(!plain.text.contains('{'), "{}", plain.text);
    assert!(plain.text.ends_with('\n'));
    // JSON: one hclog object per line.
    let registered: Value = json
        .text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["@message"] == "job registered")
        .unwrap();
    assert_eq!(registered["@level"], "debug");
    assert_eq!(registered["@module"], "caravan_server::jobs");
    assert_eq!(registered["namespace"], "default");
    assert!(registered["@caller"].as_str().unwrap().contains("jobs.rs:"));
    assert!(registered["@timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn monitors_of_the_node_and_the_server_and_their_end() {
    let c = DevCluster::start().await.unwrap();
    let mut watcher = Monitor::open(&c.url, "log_level=debug&plain=true").await;
    watcher.own_subscription().await;
    let members = get_json(&c.client, "/v1/agent/members").await.unwrap().0;
    let member = members["Members"][0]["Name"].as_str().unwrap().to_owned();
    for query in [
        format!("log_level=debug&node_id={}", c.node_id),
        "log_level=debug&server_id=leader".to_owned(),
        format!("log_level=debug&server_id={member}&plain=true"),
    ] {
        let mut m = Monitor::open(&c.url, &query).await;
        let id = m.own_subscription().await;
        drop(m);
        // The client went away: the subscription ends with it (nothing keeps streaming).
        watcher
            .wait_text(&format!("monitor subscription ended: subscription={id} "))
            .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------

fn check_host_data(h: &Value) {
    let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Disk",
            "Environment",
            "Hosts",
            "Network",
            "OS",
            "ResolvConf"
        ]
    );
    assert_eq!(h["Hosts"], std::fs::read_to_string("/etc/hosts").unwrap());
    if let Ok(resolv) = std::fs::read_to_string("/etc/resolv.conf") {
        assert_eq!(h["ResolvConf"], resolv);
    }
    // uname: machine, node name, release, system, version.
    let os = h["OS"].as_str().unwrap();
    assert!(os.starts_with(std::env::consts::ARCH), "{os}");
    assert!(os.contains(" Linux "), "{os}");
    let root = &h["Disk"]["/"];
    let (size, used) = (
        root["DiskMB"].as_i64().unwrap(),
        root["UsedMB"].as_i64().unwrap(),
    );
    assert!(size > 0 && (0..=size).contains(&used), "{root}");
    let env = &h["Environment"];
    assert_eq!(env["RUST_LOG"], "info");
    assert_eq!(env["PATH"].as_str(), std::env::var("PATH").ok().as_deref());
    if std::env::var_os("CARAVAN_TEST_DATABASE_URL").is_some() {
        assert_eq!(env["CARAVAN_TEST_DATABASE_URL"], "<redacted>");
    }
    let loopback = h["Network"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("no loopback in {}", h["Network"]));
    assert_eq!(loopback["type"], "IPv4");
    assert_eq!(loopback["mask_bits"], "8");
}

#[tokio::test]
async fn host_data_is_the_machine() {
    let c = DevCluster::start().await.unwrap();
    // Nomad answers the bare HostData when no other agent is asked for.
    let local = expect_ok(&get(&c.client, "/v1/agent/host").await);
    check_host_data(&local);

    let node = expect_ok(&get(&c.client, &format!("/v1/agent/host?node_id={}", c.node_id)).await);
    assert_eq!(node["AgentID"], c.node_id.as_str());
    check_host_data(&node["HostData"]);

    let members = get_json(&c.client, "/v1/agent/members").await.unwrap().0;
    let member = members["Members"][0]["Name"].as_str().unwrap().to_owned();
    for id in ["leader", member.as_str()] {
        let server = expect_ok(&get(&c.client, &format!("/v1/agent/host?server_id={id}")).await);
        assert_eq!(server["AgentID"], member.as_str());
        check_host_data(&server["HostData"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Separate processes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_process_streams_its_own_lines() {
    let c = PgCluster::start().await.unwrap();
    let mut gateway = Monitor::open(&c.url, "log_level=debug").await;
    let mut server = Monitor::open(&c.url, "log_level=debug&server_id=leader").await;
    let mut agent = Monitor::open(&c.url, &format!("log_level=info&node_id={}", c.node_id)).await;
    gateway.own_subscription().await;
    server.own_subscription().await;

    register_job(&c.client, &batch_job("split")).await.unwrap();
    server.wait_text("job registered: job_id=split").await;
    gateway
        .wait_text("request complete: method=PUT path=/v1/jobs code=200")
        .await;

    let r = post(
        &c.client,
        &format!("/v1/client/metadata?node_id={}", c.node_id),
        r#"{"Meta": {"monitor": "yes"}}"#,
    )
    .await
    .unwrap();
    expect_ok(&r);
    agent
        .wait_text("caravan_agent::metadata: node metadata sent to the servers")
        .await;
    // The agent process serves no HTTP and registers no jobs.
    assert!(!agent.text.contains("request complete"), "{}", agent.text);
    assert!(!agent.text.contains("job registered"), "{}", agent.text);

    let host = expect_ok(&get(&c.client, &format!("/v1/agent/host?node_id={}", c.node_id)).await);
    assert_eq!(host["AgentID"], c.node_id.as_str());
    assert_eq!(
        host["HostData"]["Hosts"],
        std::fs::read_to_string("/etc/hosts").unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Bad inputs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_inputs_get_nomads_answers() {
    let c = DevCluster::start().await.unwrap();
    let unknown = "00000000-1111-2222-3333-444444444444";
    let cases: Vec<(String, u16, String)> = vec![
        (
            "/v1/agent/monitor?log_level=loud".into(),
            400,
            "Unknown log level: loud".into(),
        ),
        (
            "/v1/agent/monitor?log_json=no".into(),
            400,
            r#"Unknown option for log json: strconv.ParseBool: parsing "no": invalid syntax"#
                .into(),
        ),
        (
            "/v1/agent/monitor?plain=yes".into(),
            400,
            r#"Unknown option for plain: strconv.ParseBool: parsing "yes": invalid syntax"#.into(),
        ),
        (
            "/v1/agent/monitor?log_include_location=maybe".into(),
            400,
            "Unknown option for log_include_location: strconv.ParseBool".into(),
        ),
        // The level is checked first, as in Nomad.
        (
            "/v1/agent/monitor?log_level=x&plain=x".into(),
            400,
            "Unknown log level: x".into(),
        ),
        (
            format!("/v1/agent/monitor?node_id={}&server_id=leader", c.node_id),
            400,
            "Cannot target node and server simultaneously".into(),
        ),
        (
            format!("/v1/agent/host?node_id={}&server_id=leader", c.node_id),
            400,
            "Can only forward to either client node or server".into(),
        ),
        (
            format!("/v1/agent/monitor?node_id={unknown}"),
            404,
            format!("Unknown node \"{unknown}\""),
        ),
        (
            format!("/v1/agent/host?node_id={unknown}"),
            404,
            format!("Unknown node \"{unknown}\""),
        ),
        (
            "/v1/agent/host?node_id=abc".into(),
            400,
            "UUID must be 36 characters".into(),
        ),
        (
            "/v1/agent/monitor?server_id=elsewhere".into(),
            400,
            "unknown Nomad server elsewhere".into(),
        ),
        (
            "/v1/agent/host?server_id=elsewhere".into(),
            400,
            "unknown Nomad server elsewhere".into(),
        ),
    ];
    for (path, status, text) in cases {
        let r = get(&c.client, &path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(
            r.text().contains(&text),
            "{path}: {:?} lacks {text:?}",
            r.text()
        );
    }
    let r = send(&c.client, api::Method::POST, "/v1/agent/host", "")
        .await
        .unwrap();
    expect_error(&r, 405, "Invalid method");
    // Empty values count as absent, and levels are case-blind.
    let m = Monitor::open(&c.url, "log_level=&node_id=&plain=&log_json=").await;
    assert_eq!(m.content_type, "application/json");
    let m = Monitor::open(&c.url, "log_level=Warn&log_json=1&plain=0").await;
    assert_eq!(m.content_type, "application/json");
}

// ---------------------------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------------------------

const STOP: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigterm_stops_a_dev_agent_with_monitors_open() {
    let mut c = DevCluster::start().await.unwrap();
    let _local = Monitor::open(&c.url, "log_level=debug").await;
    let _node = Monitor::open(&c.url, &format!("log_level=debug&node_id={}", c.node_id)).await;
    let _server = Monitor::open(&c.url, "log_level=debug&server_id=leader&plain=true").await;
    c.process.terminate().unwrap();
    c.process.wait_exit(STOP).await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_a_server_and_a_gateway_with_monitors_open() {
    let mut c = PgCluster::start().await.unwrap();
    let mut server = Monitor::open(&c.url, "log_level=debug&server_id=leader").await;
    server.own_subscription().await;
    c.server.terminate().unwrap();
    c.server.wait_exit(STOP).await.unwrap();
    // The stopping server ended the stream, and the gateway passed the end on.
    server.wait_end(STOP).await;
    let _local = Monitor::open(&c.url, "log_level=debug").await;
    c.gateway.terminate().unwrap();
    c.gateway.wait_exit(STOP).await.unwrap();
}
