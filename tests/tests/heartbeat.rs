//! Heartbeats: a node that stops heartbeating goes `down`; a heartbeat brings it back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::*;

async fn status_of(c: &impl Cluster, id: &str) -> anyhow::Result<String> {
    Ok(c.client()
        .nodes()
        .info(id, &QueryOptions::new())
        .await?
        .0
        .status)
}

async fn missed_heartbeat_then_back(c: &impl Cluster) {
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc.register_fake("silent", "", &[]).await.unwrap();
    assert_eq!(status_of(c, &fake.id).await.unwrap(), "ready");

    // TTL 1s (+ stagger < 1s) + grace 1s: down within a few seconds.
    wait_for("the silent node to be marked down", WAIT, || async {
        Ok(status_of(c, &fake.id).await? == "down")
    })
    .await
    .unwrap();
    let (node, _) = c
        .client()
        .nodes()
        .info(&fake.id, &QueryOptions::new())
        .await
        .unwrap();
    let last = node.events().last().unwrap();
    assert_eq!(
        (last.message.as_str(), last.subsystem.as_str()),
        ("Node heartbeat missed", "Heartbeat")
    );
    assert!(last.create_index > 0 && last.create_index <= node.modify_index);
    let (list, _) = c.client().nodes().list(&QueryOptions::new()).await.unwrap();
    let stub = list.iter().find(|n| n.id == fake.id).unwrap();
    assert_eq!(stub.status, "down");
    let down = c
        .client()
        .nodes()
        .list(&QueryOptions::new().filter(r#"Status == "down""#))
        .await
        .unwrap()
        .0;
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].id, fake.id);

    // The agent-backed node kept heartbeating within its 1s TTL all along.
    assert_eq!(status_of(c, c.node_id()).await.unwrap(), "ready");

    // A heartbeat brings it back.
    grpc.update_status(&fake, "ready").await.unwrap();
    let (node, _) = c
        .client()
        .nodes()
        .info(&fake.id, &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(node.status, "ready");
    let last = node.events().last().unwrap();
    assert_eq!(last.message, "Node reregistered by heartbeat");
    assert_eq!(last.subsystem, "Cluster");
    let msgs: Vec<&str> = node.events().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Node registered",
            "Node heartbeat missed",
            "Node reregistered by heartbeat"
        ]
    );
    // Heartbeating on keeps it ready past its longest TTL + grace (3 s). The sleep paces the
    // heartbeats as an agent would; it synchronises nothing.
    for _ in 0..8 {
        grpc.update_status(&fake, "ready").await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(status_of(c, &fake.id).await.unwrap(), "ready");
    }
    // A heartbeat from a node the server does not know is refused as not found (the agent
    // then registers again).
    let stranger = FakeNode {
        id: uuid_with_prefix(""),
        secret_id: uuid_with_prefix(""),
        name: "stranger".into(),
    };
    let err = grpc.update_status(&stranger, "ready").await.unwrap_err();
    assert!(err.to_string().contains("NotFound"), "{err}");
}

#[tokio::test]
async fn missed_heartbeat_marks_down_and_a_heartbeat_brings_back_sqlite() {
    let c = DevCluster::start_with(&["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"])
        .await
        .unwrap();
    missed_heartbeat_then_back(&c).await;
}

#[tokio::test]
async fn missed_heartbeat_marks_down_and_a_heartbeat_brings_back_postgres() {
    let c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s", "-heartbeat-grace", "1s"], &[])
        .await
        .unwrap();
    missed_heartbeat_then_back(&c).await;
}

/// After a restart the server knows no heartbeat timers: it gives every live node the failover
/// TTL, and nodes that do not heartbeat within it go down; nodes whose agent is alive stay up.
#[tokio::test]
async fn a_restarted_server_gives_nodes_the_failover_ttl_postgres() {
    let mut c = PgCluster::start_with(
        &[
            "-min-heartbeat-ttl",
            "1s",
            "-heartbeat-grace",
            "1s",
            "-failover-heartbeat-ttl",
            "2s",
        ],
        &[],
    )
    .await
    .unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let fake = grpc.register_fake("orphan", "", &[]).await.unwrap();
    c.restart_server().await.unwrap();
    // Right after the restart the fake node is still ready: it has the failover TTL.
    assert_eq!(status_of(&c, &fake.id).await.unwrap(), "ready");
    wait_for("the orphaned node to be marked down", WAIT, || async {
        Ok(status_of(&c, &fake.id).await? == "down")
    })
    .await
    .unwrap();
    assert_eq!(status_of(&c, &c.node_id).await.unwrap(), "ready");
    let events = event_messages(&c.client, &fake.id).await.unwrap();
    assert_eq!(
        events.last().unwrap(),
        &("Node heartbeat missed".to_owned(), "Heartbeat".to_owned())
    );
}

#[tokio::test]
async fn a_node_secret_is_required_to_re_register_or_heartbeat() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let node = grpc
        .register_fake("owned", "", &[("rack", "r1")])
        .await
        .unwrap();
    let impostor = FakeNode {
        secret_id: uuid_with_prefix(""),
        ..node.clone()
    };
    // Re-registering someone else's node ID with another secret is refused.
    let err = grpc
        .register(&fake_node_json(&impostor, &[("rack", "evil")]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PermissionDenied"), "{err}");
    // So is a heartbeat (here: marking it down) with the wrong secret.
    let err = grpc.update_status(&impostor, "down").await.unwrap_err();
    assert!(err.to_string().contains("PermissionDenied"), "{err}");
    let (doc, _) = c
        .client
        .nodes()
        .info(&node.id, &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(doc.status, "ready");
    assert_eq!(doc.meta.unwrap()["rack"], "r1");
    // The owner may.
    grpc.register(&fake_node_json(&node, &[("rack", "r2")]))
        .await
        .unwrap();
    grpc.update_status(&node, "ready").await.unwrap();
}

/// Only client agents call UpdateStatus, and they always send their secret; an empty secret
/// must not skip the check that a wrong one gets.
#[tokio::test]
async fn a_heartbeat_without_the_secret_is_refused() {
    let c = DevCluster::start().await.unwrap();
    let mut grpc = Grpc::connect(&c.rpc_addr).await.unwrap();
    let node = grpc.register_fake("owned", "", &[]).await.unwrap();
    let anonymous = FakeNode {
        secret_id: String::new(),
        ..node.clone()
    };
    let result = grpc.update_status(&anonymous, "down").await;
    assert_eq!(status_of(&c, &node.id).await.unwrap(), "ready");
    assert!(
        result.is_err(),
        "an anonymous heartbeat marked the node down"
    );
}
