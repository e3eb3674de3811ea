//! The node rules, exercised in process: a real store (SQLite in a temp dir) and the Nodes
//! service called directly, without the network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::Duration;

use caravan_proto::v1::{self, nodes_server::Nodes};
use caravan_proto::{ErrorCode, error_code_of};
use caravan_server::nodes::NodesService;
use caravan_server::{Server, ServerConfig};
use caravan_state::{StateError, Store};
use caravan_structs::{Allocation, Evaluation, Job, Node};
use caravan_test_utils::wait_for;
use serde_json::Value;
use tonic::Request;

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    nodes: NodesService,
}

async fn harness(config: ServerConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let store = Store::open(&url).await.unwrap();
    // No scheduler workers: these tests look at the evaluations the node rules write.
    let config = ServerConfig {
        scheduler_workers: 0,
        ..config
    };
    let server = Server::start(store.clone(), config);
    Harness {
        _dir: dir,
        store,
        nodes: NodesService::new(server),
    }
}

fn fast_heartbeats() -> ServerConfig {
    ServerConfig {
        min_heartbeat_ttl: Duration::from_millis(200),
        heartbeat_grace: Duration::from_millis(200),
        ..ServerConfig::default()
    }
}

fn node_json(n: u32) -> Value {
    serde_json::json!({
        "ID": format!("aaaaaaaa-0000-0000-0000-{n:012}"),
        "SecretID": format!("bbbbbbbb-0000-0000-0000-{n:012}"),
        "Name": format!("node-{n}"),
        "Datacenter": "dc1",
        "HTTPAddr": "127.0.0.1:4646",
        "Attributes": {"os.name": "debian", "nomad.version": "0.1.0"},
        "Meta": {"rack": if n.is_multiple_of(2) { "r0" } else { "r1" }},
        "Status": "initializing",
    })
}

fn id(n: u32) -> String {
    format!("aaaaaaaa-0000-0000-0000-{n:012}")
}

fn secret(n: u32) -> String {
    format!("bbbbbbbb-0000-0000-0000-{n:012}")
}

impl Harness {
    async fn register(&self, n: u32) -> v1::NodeUpdateResponse {
        self.nodes
            .register(Request::new(v1::RegisterNodeRequest {
                node_json: serde_json::to_vec(&node_json(n)).unwrap().into(),
                write: None,
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn heartbeat(&self, n: u32) -> Result<v1::NodeUpdateResponse, tonic::Status> {
        self.nodes
            .update_status(Request::new(v1::UpdateNodeStatusRequest {
                node_id: id(n),
                secret_id: secret(n),
                status: "ready".into(),
                write: None,
            }))
            .await
            .map(|r| r.into_inner())
    }

    fn node(&self, n: u32) -> Node {
        self.store
            .snapshot()
            .nodes()
            .get(&id(n))
            .expect("node")
            .value
            .clone()
    }

    async fn get(&self, n: u32, min_index: u64, wait: Duration) -> (Value, u64) {
        let resp = self
            .nodes
            .get_node(Request::new(v1::GetNodeRequest {
                node_id: id(n),
                query: Some(v1::QueryOptions {
                    min_index,
                    max_wait_ms: wait.as_millis() as u64,
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        let json = if resp.node_json.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.node_json).unwrap()
        };
        (json, resp.meta.unwrap().index)
    }

    async fn list(&self, q: v1::QueryOptions) -> Result<(Vec<Value>, String), tonic::Status> {
        let resp = self
            .nodes
            .list_nodes(Request::new(v1::ListNodesRequest {
                query: Some(q),
                resources: false,
                os: false,
            }))
            .await?
            .into_inner();
        let items = resp
            .stubs_json
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        Ok((items, resp.meta.unwrap().next_token))
    }

    async fn eligibility(
        &self,
        n: u32,
        value: &str,
    ) -> Result<v1::NodeDrainUpdateResponse, tonic::Status> {
        self.nodes
            .update_eligibility(Request::new(v1::UpdateEligibilityRequest {
                node_id: id(n),
                eligibility: value.into(),
                write: None,
            }))
            .await
            .map(|r| r.into_inner())
    }

    async fn drain(
        &self,
        n: u32,
        spec: Option<v1::DrainSpec>,
        mark_eligible: bool,
    ) -> Result<v1::NodeDrainUpdateResponse, tonic::Status> {
        self.nodes
            .update_drain(Request::new(v1::UpdateDrainRequest {
                node_id: id(n),
                drain_spec: spec,
                mark_eligible,
                meta: Default::default(),
                write: None,
            }))
            .await
            .map(|r| r.into_inner())
    }
}

fn last_event(node: &Node) -> (String, String) {
    let e = node
        .events
        .as_ref()
        .and_then(|e| e.last())
        .expect("an event");
    (e.subsystem.clone(), e.message.clone())
}

#[tokio::test]
async fn registration_records_the_node_and_its_first_event() {
    let h = harness(ServerConfig::default()).await;
    let resp = h.register(1).await;
    assert!(resp.heartbeat_ttl_ms >= 10_000, "at least the minimum TTL");
    let node = h.node(1);
    assert_eq!(node.status, "initializing");
    assert_eq!(node.scheduling_eligibility, "eligible");
    assert_eq!(node.node_pool, "default");
    assert!(node.computed_class.starts_with("v1:"));
    assert_eq!(
        last_event(&node),
        ("Cluster".into(), "Node registered".into())
    );
    h.heartbeat(1).await.unwrap();
    assert_eq!(h.node(1).status, "ready");
    // The API view hides the secret but keeps the key.
    let (json, index) = h.get(1, 0, Duration::from_secs(1)).await;
    assert_eq!(json["SecretID"], "");
    assert_eq!(json["Status"], "ready");
    assert_eq!(index, h.node(1).modify_index);
    // Re-registering keeps what the server owns.
    h.eligibility(1, "ineligible").await.unwrap();
    h.register(1).await;
    let node = h.node(1);
    assert_eq!(node.scheduling_eligibility, "ineligible");
    assert_eq!(node.events.as_ref().map(Vec::len), Some(2));
}

#[tokio::test]
async fn registration_rejects_bad_nodes() {
    let h = harness(ServerConfig::default()).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            serde_json::json!({"SecretID": "x", "Name": "n", "Datacenter": "dc1"}),
            "missing node ID",
        ),
        (
            serde_json::json!({"ID": "not-a-uuid", "SecretID": "x", "Name": "n", "Datacenter": "dc1"}),
            "invalid node ID",
        ),
        (
            serde_json::json!({"ID": id(1), "Name": "n", "Datacenter": "dc1"}),
            "missing node secret ID",
        ),
        (
            serde_json::json!({"ID": id(1), "SecretID": "x", "Name": "n"}),
            "missing datacenter",
        ),
        (
            serde_json::json!({"ID": id(1), "SecretID": "x", "Datacenter": "dc1"}),
            "missing node name",
        ),
        (
            serde_json::json!({"ID": id(1), "SecretID": "x", "Name": "n", "Datacenter": "dc1", "Status": "weird"}),
            "invalid status",
        ),
        (serde_json::json!({"ID": 5}), "invalid node"),
    ];
    for (body, want) in cases {
        let err = h
            .nodes
            .register(Request::new(v1::RegisterNodeRequest {
                node_json: serde_json::to_vec(&body).unwrap().into(),
                write: None,
            }))
            .await
            .unwrap_err();
        assert_eq!(error_code_of(&err), ErrorCode::BadRequest, "{body}");
        assert!(
            err.message().contains(want),
            "{} should contain {want}",
            err.message()
        );
    }
    assert_eq!(h.store.snapshot().index(), 0, "nothing was written");
}

#[tokio::test]
async fn a_wrong_secret_cannot_take_over_a_node() {
    let h = harness(ServerConfig::default()).await;
    h.register(1).await;
    let mut body = node_json(1);
    body["SecretID"] = "cccccccc-0000-0000-0000-000000000000".into();
    let err = h
        .nodes
        .register(Request::new(v1::RegisterNodeRequest {
            node_json: serde_json::to_vec(&body).unwrap().into(),
            write: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::PermissionDenied);
    let err = h
        .nodes
        .update_status(Request::new(v1::UpdateNodeStatusRequest {
            node_id: id(1),
            secret_id: "cccccccc-0000-0000-0000-000000000000".into(),
            status: "ready".into(),
            write: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn a_silent_node_goes_down_and_comes_back_on_heartbeat() {
    let h = harness(fast_heartbeats()).await;
    h.register(1).await;
    h.heartbeat(1).await.unwrap();
    wait_for("node marked down", Duration::from_secs(10), || async {
        Ok(h.node(1).status == "down")
    })
    .await
    .unwrap();
    let node = h.node(1);
    assert_eq!(
        last_event(&node),
        ("Heartbeat".into(), "Node heartbeat missed".into())
    );
    assert!(node.last_missed_heartbeat_index > 0);
    h.heartbeat(1).await.unwrap();
    let node = h.node(1);
    assert_eq!(node.status, "ready");
    assert_eq!(
        last_event(&node),
        ("Cluster".into(), "Node reregistered by heartbeat".into())
    );
}

#[tokio::test]
async fn heartbeats_keep_a_node_ready() {
    let h = harness(fast_heartbeats()).await;
    let ttl = Duration::from_millis(h.register(1).await.heartbeat_ttl_ms);
    h.heartbeat(1).await.unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(ttl / 3).await;
        h.heartbeat(1).await.unwrap();
        assert_eq!(h.node(1).status, "ready");
    }
}

#[tokio::test]
async fn unknown_nodes_are_not_found() {
    let h = harness(ServerConfig::default()).await;
    assert_eq!(
        error_code_of(&h.heartbeat(9).await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(
        error_code_of(&h.eligibility(9, "eligible").await.unwrap_err()),
        ErrorCode::NotFound
    );
    assert_eq!(
        error_code_of(&h.drain(9, None, false).await.unwrap_err()),
        ErrorCode::NotFound
    );
    let err = h
        .nodes
        .purge(Request::new(v1::NodeSpecificRequest {
            node_id: id(9),
            write: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "node not found");
    let (json, _) = h.get(9, 0, Duration::from_secs(1)).await;
    assert!(json.is_null());
}

#[tokio::test]
async fn eligibility_rules() {
    let h = harness(ServerConfig::default()).await;
    h.register(1).await;
    let err = h.eligibility(1, "maybe").await.unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::BadRequest);
    assert_eq!(err.message(), "invalid scheduling eligibility \"maybe\"");
    let noop = h.eligibility(1, "eligible").await.unwrap();
    assert_eq!(noop.index, 0, "an unchanged eligibility writes nothing");
    let r = h.eligibility(1, "ineligible").await.unwrap();
    assert!(r.index > 0);
    assert_eq!(r.node_modify_index, r.index);
    assert_eq!(
        last_event(&h.node(1)),
        (
            "Cluster".into(),
            "Node marked as ineligible for scheduling".into()
        )
    );
    h.eligibility(1, "eligible").await.unwrap();
    assert_eq!(
        last_event(&h.node(1)),
        (
            "Cluster".into(),
            "Node marked as eligible for scheduling".into()
        )
    );
}

#[tokio::test]
async fn drain_rules() {
    let h = harness(ServerConfig::default()).await;
    h.register(1).await;
    // A drain of an empty node completes at once; a running allocation keeps it draining.
    let node_id = id(1);
    h.store
        .write(move |txn| -> Result<(), caravan_state::StateError> {
            txn.put(caravan_structs::Allocation {
                id: "cccccccc-0000-0000-0000-000000000001".into(),
                namespace: "default".into(),
                job_id: "gone".into(),
                node_id,
                desired_status: "run".into(),
                client_status: "running".into(),
                ..Default::default()
            })?;
            Ok(())
        })
        .await
        .unwrap();
    let hour = 3_600_000_000_000;
    h.drain(
        1,
        Some(v1::DrainSpec {
            deadline_ns: hour,
            ignore_system_jobs: true,
        }),
        false,
    )
    .await
    .unwrap();
    let node = h.node(1);
    let strategy = node.drain_strategy.clone().expect("draining");
    assert_eq!(strategy.deadline, hour);
    assert!(strategy.ignore_system_jobs);
    let gap = strategy.force_deadline.unix_nanos() - strategy.started_at.unix_nanos();
    assert_eq!(gap, hour);
    assert_eq!(node.scheduling_eligibility, "ineligible");
    assert_eq!(
        last_event(&node),
        ("Drain".into(), "Node drain strategy set".into())
    );
    assert_eq!(
        node.last_drain.as_ref().map(|d| d.status.as_str()),
        Some("draining")
    );

    let err = h.eligibility(1, "eligible").await.unwrap_err();
    assert!(err.message().contains("while it is draining"));

    h.drain(
        1,
        Some(v1::DrainSpec {
            deadline_ns: 0,
            ignore_system_jobs: false,
        }),
        false,
    )
    .await
    .unwrap();
    let updated = h.node(1);
    assert_eq!(
        last_event(&updated),
        ("Drain".into(), "Node drain strategy updated".into())
    );
    let again = updated.drain_strategy.expect("still draining");
    assert_eq!(again.started_at, strategy.started_at, "StartedAt is kept");
    assert!(again.force_deadline.is_zero(), "no deadline");

    h.drain(1, None, true).await.unwrap();
    let node = h.node(1);
    assert!(node.drain_strategy.is_none());
    assert_eq!(node.scheduling_eligibility, "eligible");
    assert_eq!(
        last_event(&node),
        ("Drain".into(), "Node drain disabled".into())
    );
    assert_eq!(
        node.last_drain.as_ref().map(|d| d.status.as_str()),
        Some("canceled")
    );
}

#[tokio::test]
async fn blocking_reads_wake_only_for_their_node() {
    let h = Arc::new(harness(ServerConfig::default()).await);
    h.register(1).await;
    h.register(2).await;
    let (_, index) = h.get(1, 0, Duration::from_secs(1)).await;
    let waiter = {
        let h = h.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (_, idx) = h.get(1, index, Duration::from_millis(700)).await;
            (idx, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.eligibility(2, "ineligible").await.unwrap();
    let (idx, elapsed) = waiter.await.unwrap();
    assert_eq!(idx, index);
    assert!(elapsed >= Duration::from_millis(700));

    let waiter = {
        let h = h.clone();
        tokio::spawn(async move { h.get(1, index, Duration::from_secs(30)).await.1 })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = h.eligibility(1, "ineligible").await.unwrap();
    assert_eq!(waiter.await.unwrap(), r.index);
}

#[tokio::test]
async fn listing_pages_filters_and_prefixes() {
    let h = harness(ServerConfig::default()).await;
    for n in 0..7 {
        h.register(n).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = h
            .list(v1::QueryOptions {
                per_page: 3,
                next_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.iter().map(|n| n["ID"].as_str().unwrap().to_owned()));
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(seen, (0..7).map(id).collect::<Vec<_>>());

    let (rev, _) = h
        .list(v1::QueryOptions {
            reverse: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rev[0]["ID"], id(6));

    let (r1, _) = h
        .list(v1::QueryOptions {
            filter: "Meta.rack == \"r1\" and Name != \"node-3\"".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = r1.iter().map(|n| n["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node-1", "node-5"]);

    let (pre, _) = h
        .list(v1::QueryOptions {
            prefix: "aaaaaaaa".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pre.len(), 7);
    let (none, _) = h
        .list(v1::QueryOptions {
            prefix: "ab".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    let err = h
        .list(v1::QueryOptions {
            filter: "Name ==".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::BadRequest);
    assert!(
        err.message()
            .starts_with("failed to create result paginator: failed to read filter expression:")
    );
    let err = h
        .list(v1::QueryOptions {
            filter: "Meta contains 5".into(),
            ..Default::default()
        })
        .await;
    assert!(err.is_ok(), "a key test on a map is valid");
    let err = h
        .list(v1::QueryOptions {
            filter: "Attributes == \"x\"".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.message().starts_with("failed to read result page:"),
        "{}",
        err.message()
    );
}

/// Puts a job and one allocation of it on node `n`.
async fn place(h: &Harness, n: u32, job_id: &str, job_type: &str, client_status: &str) {
    let job = Job {
        id: job_id.into(),
        name: job_id.into(),
        namespace: "default".into(),
        r#type: job_type.into(),
        priority: 70,
        datacenters: Some(vec!["dc1".into()]),
        status: "running".into(),
        ..Job::default()
    };
    let alloc = Allocation {
        id: uuid::Uuid::new_v4().to_string(),
        namespace: "default".into(),
        job_id: job_id.into(),
        node_id: id(n),
        job: Some(job.clone()),
        desired_status: "run".into(),
        client_status: client_status.into(),
        ..Allocation::default()
    };
    h.store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(job)?;
            txn.put(alloc)?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn evaluate_creates_one_eval_per_job_that_matters() {
    let h = harness(ServerConfig::default()).await;
    h.register(1).await;
    h.register(2).await;
    place(&h, 1, "web", "service", "running").await;
    place(&h, 1, "web", "service", "pending").await;
    place(&h, 1, "nightly", "batch", "complete").await;
    place(&h, 1, "cron", "batch", "running").await;
    place(&h, 2, "elsewhere", "service", "running").await;
    place(&h, 2, "agent", "system", "running").await;

    let resp = h
        .nodes
        .evaluate(Request::new(v1::NodeSpecificRequest {
            node_id: id(1),
            write: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.eval_ids.len(), 3, "web, cron and the system job");
    assert_eq!(resp.eval_create_index, resp.index);
    let snap = h.store.snapshot();
    let mut jobs: Vec<String> = resp
        .eval_ids
        .iter()
        .map(|e| {
            let eval: &Evaluation = &snap.evals().get(e).expect("eval stored").value;
            assert_eq!(eval.triggered_by, "node-update");
            assert_eq!(eval.node_id, id(1));
            assert_eq!(eval.status, "pending");
            assert_eq!(eval.priority, 70);
            eval.job_id.clone()
        })
        .collect();
    jobs.sort();
    assert_eq!(jobs, ["agent", "cron", "web"]);

    // A node with nothing that matters yields no evaluations and writes nothing.
    h.register(3).await;
    let before = h.store.snapshot().index();
    let mut empty_job = Job {
        id: "agent".into(),
        namespace: "default".into(),
        r#type: "system".into(),
        datacenters: Some(vec!["dc9".into()]),
        ..Job::default()
    };
    empty_job.stop = false;
    h.store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(empty_job)?;
            Ok(())
        })
        .await
        .unwrap();
    let resp = h
        .nodes
        .evaluate(Request::new(v1::NodeSpecificRequest {
            node_id: id(3),
            write: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.eval_ids.is_empty());
    assert_eq!((resp.index, resp.eval_create_index), (0, 0));
    assert_eq!(h.store.snapshot().index(), before + 1);
}

#[tokio::test]
async fn purge_removes_the_node_and_evaluates_its_jobs() {
    let h = harness(ServerConfig::default()).await;
    h.register(1).await;
    place(&h, 1, "web", "service", "running").await;
    let resp = h
        .nodes
        .purge(Request::new(v1::NodeSpecificRequest {
            node_id: id(1),
            write: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.eval_ids.len(), 1);
    assert_eq!(resp.node_modify_index, resp.index);
    assert!(h.store.snapshot().nodes().get(&id(1)).is_none());
    assert_eq!(
        error_code_of(&h.heartbeat(1).await.unwrap_err()),
        ErrorCode::NotFound
    );
}
