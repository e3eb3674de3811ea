//! Blocking queries (seeds/002): `index` + `wait` on /v1/node/:id and /v1/nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::{Duration, Instant};

use caravan_tests::*;

/// How long a request that should block is checked to still be pending before the change that
/// releases it. This is an assertion window, not synchronisation: the outcome is the same if
/// the change lands first.
const STILL_BLOCKED: Duration = Duration::from_millis(400);

async fn read_wakes_on_its_own_change(c: &impl Cluster) {
    let nodes = c.client().nodes();
    let (node, meta) = nodes.info(c.node_id(), &QueryOptions::new()).await.unwrap();
    assert_eq!(meta.last_index, node.modify_index);
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(Duration::from_secs(30));
    let client = c.client().clone();
    let id = c.node_id().to_owned();
    let started = Instant::now();
    let mut blocked = tokio::spawn(async move { client.nodes().info(&id, &q).await });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err(),
        "a blocking read with the current index returned at once"
    );
    let (write, _) = nodes
        .eligibility(c.node_id(), false, &WriteOptions::default())
        .await
        .unwrap();
    let changed_at = Instant::now();
    let (woken, woken_meta) = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the blocking read did not wake on the change")
        .unwrap()
        .unwrap();
    assert!(changed_at.elapsed() < Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(woken_meta.last_index > meta.last_index, "{woken_meta:?}");
    assert_eq!(woken_meta.last_index, write.index);
    assert_eq!(woken.scheduling_eligibility, "ineligible");
    assert!(woken_meta.known_leader);
}

#[tokio::test]
async fn blocking_read_wakes_on_a_change_of_its_node_sqlite() {
    read_wakes_on_its_own_change(&DevCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn blocking_read_wakes_on_a_change_of_its_node_postgres() {
    read_wakes_on_its_own_change(&PgCluster::start().await.unwrap()).await;
}

#[tokio::test]
async fn blocking_read_ignores_changes_to_other_nodes() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc.register_fake("other", "", &[]).await.unwrap();
    let (_, meta) = c
        .client
        .nodes()
        .info(&fake.id, &QueryOptions::new())
        .await
        .unwrap();
    let wait = Duration::from_secs(2);
    let q = QueryOptions::new().index(meta.last_index).wait(wait);
    let client = c.client.clone();
    let id = fake.id.clone();
    let started = Instant::now();
    let mut blocked = tokio::spawn(async move { client.nodes().info(&id, &q).await });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err()
    );
    // Changes to the dev node (and a new node) must not wake a read of the fake node.
    let nodes = c.client.nodes();
    nodes
        .eligibility(&c.node_id, false, &WriteOptions::default())
        .await
        .unwrap();
    grpc.register_fake("another", "", &[]).await.unwrap();
    nodes
        .eligibility(&c.node_id, true, &WriteOptions::default())
        .await
        .unwrap();
    let (node, woken) = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the blocking read never returned")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= wait,
        "returned after {took:?}, before its wait of {wait:?}"
    );
    // wait + wait/16 jitter + scheduling slack.
    assert!(took < wait + Duration::from_millis(1500), "took {took:?}");
    assert_eq!(woken.last_index, meta.last_index, "the index moved");
    assert_eq!(node.id, fake.id);
}

#[tokio::test]
async fn blocking_list_wakes_on_any_node_change() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc.register_fake("other", "", &[]).await.unwrap();
    let (_, meta) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(Duration::from_secs(30));
    let client = c.client.clone();
    let mut blocked = tokio::spawn(async move { client.nodes().list(&q).await });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err()
    );
    let (write, _) = c
        .client
        .nodes()
        .eligibility(&fake.id, false, &WriteOptions::default())
        .await
        .unwrap();
    let (list, woken) = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the blocking list did not wake")
        .unwrap()
        .unwrap();
    assert_eq!(woken.last_index, write.index);
    let changed = list.iter().find(|n| n.id == fake.id).unwrap();
    assert_eq!(changed.scheduling_eligibility, "ineligible");

    // A new node wakes it too, and so does a purge.
    for step in ["register", "purge"] {
        let (_, meta) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
        let q = QueryOptions::new()
            .index(meta.last_index)
            .wait(Duration::from_secs(30));
        let client = c.client.clone();
        let mut blocked = tokio::spawn(async move { client.nodes().list(&q).await });
        assert!(
            tokio::time::timeout(STILL_BLOCKED, &mut blocked)
                .await
                .is_err()
        );
        if step == "register" {
            grpc.register_fake("late", "", &[]).await.unwrap();
        } else {
            c.client
                .nodes()
                .purge(&fake.id, &WriteOptions::default())
                .await
                .unwrap();
        }
        let (_, woken) = tokio::time::timeout(Duration::from_secs(10), blocked)
            .await
            .unwrap_or_else(|_| panic!("the blocking list did not wake on {step}"))
            .unwrap()
            .unwrap();
        assert!(woken.last_index > meta.last_index, "{step}");
    }
}

#[tokio::test]
async fn blocking_read_wakes_when_the_node_is_purged() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc.register_fake("doomed", "", &[]).await.unwrap();
    let (_, meta) = c
        .client
        .nodes()
        .info(&fake.id, &QueryOptions::new())
        .await
        .unwrap();
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(Duration::from_secs(30));
    let client = c.client.clone();
    let id = fake.id.clone();
    let mut blocked = tokio::spawn(async move {
        client
            .get(&format!("/v1/node/{id}"), &q)
            .await
            .map(|r| (r.status, r.text(), r.query_meta()))
    });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err()
    );
    let (purge, _) = c
        .client
        .nodes()
        .purge(&fake.id, &WriteOptions::default())
        .await
        .unwrap();
    let (status, body, woken) = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the blocking read did not wake on the purge")
        .unwrap()
        .unwrap();
    assert_eq!((status, body.as_str()), (404, "node not found"));
    let _ = (woken, purge);
}

/// NOMAD-BEHAVIOR 2.2/8.3: a read of a missing node answers 404 with the nodes table index in
/// `X-Nomad-Index` (Nomad sets the query meta before the 404), so a client can block on the
/// node appearing.
#[tokio::test]
async fn not_found_read_carries_the_index_headers() {
    let c = DevCluster::start().await.unwrap();
    let (_, list) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    let missing = uuid_with_prefix("");
    let resp = c
        .client
        .get(&format!("/v1/node/{missing}"), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (404, "node not found"));
    assert_eq!(
        resp.header("X-Nomad-Index"),
        Some(list.last_index.to_string().as_str()),
        "{:?}",
        resp.headers
    );
    assert!(resp.header("X-Nomad-KnownLeader").is_some());
    assert!(resp.header("X-Nomad-LastContact").is_some());
}

#[tokio::test]
async fn blocking_with_index_zero_or_in_the_past_returns_at_once() {
    let c = DevCluster::start().await.unwrap();
    let nodes = c.client.nodes();
    let (_, meta) = nodes.info(&c.node_id, &QueryOptions::new()).await.unwrap();
    assert!(meta.last_index > 1);
    for (what, index) in [
        ("zero", 0),
        ("past", 1),
        ("one behind", meta.last_index - 1),
    ] {
        let q = QueryOptions::new()
            .index(index)
            .wait(Duration::from_secs(30));
        let started = Instant::now();
        let (_, got) = nodes.info(&c.node_id, &q).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "index {what}: took {:?}",
            started.elapsed()
        );
        assert_eq!(got.last_index, meta.last_index);
        let started = Instant::now();
        let (_, got) = nodes.list(&q).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "list, index {what}"
        );
        assert!(got.last_index >= meta.last_index);
    }
}

#[tokio::test]
async fn blocking_wait_of_an_hour_is_accepted_and_capped() {
    let c = DevCluster::start().await.unwrap();
    let (_, meta) = c.client.nodes().list(&QueryOptions::new()).await.unwrap();
    // Not blocking: answered at once, 200.
    let resp = c
        .client
        .get("/v1/nodes?wait=1h", &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Blocking: accepted (no 400), so it hangs; only the client's timeout ends it.
    let err = c
        .client
        .raw(api::Method::GET, "/v1/nodes")
        .query(
            &QueryOptions::new()
                .index(meta.last_index)
                .param("wait", "1h"),
        )
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .expect_err("a blocking query with wait=1h answered at once");
    assert!(err.is_timeout(), "{err}");
    // Other Go durations are accepted as well.
    for wait in ["1h30m", "500ms", "2m", "1.5s"] {
        let resp = c
            .client
            .get(&format!("/v1/nodes?wait={wait}"), &QueryOptions::new())
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "wait={wait}: {}", resp.text());
    }
}

#[tokio::test]
async fn blocking_reads_carry_the_consistency_headers() {
    let c = DevCluster::start().await.unwrap();
    for path in [
        "/v1/nodes".to_owned(),
        format!("/v1/node/{}", c.node_id),
        format!("/v1/node/{}/allocations", c.node_id),
    ] {
        let resp = c.client.get(&path, &QueryOptions::new()).await.unwrap();
        assert_eq!(resp.status, 200, "{path}");
        let index: u64 = resp.header("X-Nomad-Index").unwrap().parse().unwrap();
        assert!(index >= 1, "{path}");
        assert_eq!(resp.header("X-Nomad-KnownLeader"), Some("true"), "{path}");
        let last_contact: u64 = resp
            .header("X-Nomad-LastContact")
            .unwrap_or_else(|| panic!("{path}: no X-Nomad-LastContact"))
            .parse()
            .unwrap();
        assert_eq!(last_contact, 0, "{path}: the leader answered");
        // stale reads carry them too.
        let resp = c
            .client
            .get(&path, &QueryOptions::new().stale(true))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        assert!(resp.header("x-nomad-knownleader").is_some());
        assert!(resp.header("x-nomad-lastcontact").is_some());
    }
}

#[tokio::test]
async fn gateways_are_stateless_a_write_through_one_wakes_a_read_through_another() {
    let c = PgCluster::start().await.unwrap();
    // The drain below must stay in progress (an empty node's drain completes at once).
    hold_node(&c.client, &c.node_id).await.unwrap();
    let (_gateway, other) = c.start_extra_gateway().await.unwrap();
    // Both see the same node at the same index.
    let (a, meta_a) = c
        .client
        .nodes()
        .info(&c.node_id, &QueryOptions::new())
        .await
        .unwrap();
    let (b, meta_b) = other
        .nodes()
        .info(&c.node_id, &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(meta_a.last_index, meta_b.last_index);
    // A blocking read through the second gateway wakes on a write through the first.
    let q = QueryOptions::new()
        .index(meta_b.last_index)
        .wait(Duration::from_secs(30));
    let id = c.node_id.clone();
    let reader = other.clone();
    let mut blocked = tokio::spawn(async move { reader.nodes().info(&id, &q).await });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err()
    );
    let (write, _) = c
        .client
        .nodes()
        .drain(
            &c.node_id,
            Some(api::nodes::DrainSpec::with_deadline(Duration::from_secs(
                60,
            ))),
            false,
            None,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let (node, meta) = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the read through the other gateway did not wake")
        .unwrap()
        .unwrap();
    assert_eq!(meta.last_index, write.index);
    assert!(node.drain);
}

#[tokio::test]
async fn blocking_read_of_a_missing_node_wakes_when_it_registers() {
    let c = DevCluster::start().await.unwrap();
    let node = FakeNode {
        id: uuid_with_prefix(""),
        secret_id: uuid_with_prefix(""),
        name: "newcomer".into(),
    };
    let path = format!("/v1/node/{}", node.id);
    let resp = c.client.get(&path, &QueryOptions::new()).await.unwrap();
    assert_eq!(resp.status, 404);
    let index = resp.query_meta().last_index;
    assert!(index > 0, "{:?}", resp.headers);
    let q = QueryOptions::new()
        .index(index)
        .wait(Duration::from_secs(30));
    let client = c.client.clone();
    let mut blocked = tokio::spawn(async move { client.get(&path, &q).await });
    assert!(
        tokio::time::timeout(STILL_BLOCKED, &mut blocked)
            .await
            .is_err()
    );
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    grpc.register(&fake_node_json(&node, &[])).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .expect("the read of the missing node did not wake when it registered")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let doc: serde_json::Value = resp.json().unwrap();
    assert_eq!(doc["Name"], "newcomer");
    assert!(resp.query_meta().last_index > index);
}
