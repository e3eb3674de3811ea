//! An acknowledged write survives a crash of the server (SIGKILL), on both stores, and indexes
//! keep growing after the restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::api::nodes::DrainSpec;
use caravan_tests::*;

async fn writes_survive_a_crash(c: &mut impl Cluster) {
    let client = c.client().clone();
    let nodes = client.nodes();
    let w = WriteOptions::default();
    let agent_id = c.node_id().to_owned();
    let mut grpc = Grpc::connect(c.rpc_addr()).await.unwrap();
    let fake = grpc
        .register_fake("keeper", "", &[("rack", "r9")])
        .await
        .unwrap();

    let (agent_write, _) = nodes.eligibility(&agent_id, false, &w).await.unwrap();
    let (fake_write, _) = nodes.eligibility(&fake.id, false, &w).await.unwrap();
    let (drain_write, drain_meta) = nodes
        .drain(
            &fake.id,
            Some(DrainSpec::with_deadline(Duration::from_secs(3600))),
            false,
            None,
            &w,
        )
        .await
        .unwrap();
    assert!(agent_write.index < fake_write.index && fake_write.index < drain_write.index);
    assert_eq!(drain_meta.last_index, drain_write.index);
    // The fake node holds no allocation, so its drain completes at once: wait for that write
    // too before taking the picture.
    let drained_at = {
        let start = std::time::Instant::now();
        loop {
            let doc = node_doc(&client, &fake.id).await.unwrap();
            if doc["DrainStrategy"].is_null() {
                assert_eq!(doc["LastDrain"]["Status"], "complete", "{doc}");
                break doc["ModifyIndex"].as_u64().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the drain never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Concurrent writes (grouped into shared commits) are all acknowledged before the crash.
    let mut many = Vec::new();
    for i in 0..12 {
        many.push(
            grpc.register_fake(&format!("crowd-{i}"), "", &[])
                .await
                .unwrap(),
        );
    }
    let acks = futures::future::join_all(
        many.iter()
            .map(|n| async { nodes.eligibility(&n.id, false, &w).await }),
    )
    .await;
    let mut acked = std::collections::BTreeMap::new();
    for (n, ack) in many.iter().zip(acks) {
        acked.insert(n.id.clone(), ack.unwrap().0.index);
    }
    let fake_before = node_doc(&client, &fake.id).await.unwrap();
    let agent_before = node_doc(&client, &agent_id).await.unwrap();
    let (_, list_before) = nodes.list(&QueryOptions::new()).await.unwrap();

    // The acknowledged writes are in; now crash the server and start it again.
    c.restart_server().await.unwrap();

    let resp = client
        .get(&format!("/v1/node/{}", fake.id), &QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let fake_after: serde_json::Value = resp.json().unwrap();
    assert_eq!(
        resp.query_meta().last_index,
        drained_at,
        "the node's index changed across the restart"
    );
    for key in [
        "ModifyIndex",
        "CreateIndex",
        "SchedulingEligibility",
        "Drain",
        "DrainStrategy",
        "LastDrain",
        "Events",
        "Meta",
        "Name",
    ] {
        assert_eq!(
            fake_after[key], fake_before[key],
            "{key} changed across the restart"
        );
    }
    assert_eq!(fake_after["SchedulingEligibility"], "ineligible");
    assert_eq!(fake_after["Meta"]["rack"], "r9");
    for (id, index) in &acked {
        let (node, meta) = nodes.info(id, &QueryOptions::new()).await.unwrap();
        assert_eq!(
            node.scheduling_eligibility, "ineligible",
            "{id} lost its write"
        );
        assert_eq!(meta.last_index, *index, "{id}");
    }

    let agent_after = node_doc(&client, &agent_id).await.unwrap();
    assert_eq!(agent_after["SchedulingEligibility"], "ineligible");
    assert_eq!(agent_after["CreateIndex"], agent_before["CreateIndex"]);
    if c.store() == StoreKind::Postgres {
        // Only the server restarted: the agent's heartbeats resume without writing.
        assert_eq!(agent_after["ModifyIndex"], agent_before["ModifyIndex"]);
    }
    let (_, list_after) = nodes.list(&QueryOptions::new()).await.unwrap();
    assert!(list_after.last_index >= list_before.last_index);

    // The completed drain survived: no strategy, and the node stays ineligible until asked.
    assert!(fake_after["DrainStrategy"].is_null());
    assert_eq!(fake_after["LastDrain"]["Status"], "complete");

    // Indexes keep growing past everything written before the crash.
    let (undrain, _) = nodes.drain(&fake.id, None, true, None, &w).await.unwrap();
    let next = undrain.index;
    assert!(
        next > list_after.last_index.max(drain_write.index),
        "{next}"
    );
    let (again, _) = nodes.eligibility(&agent_id, true, &w).await.unwrap();
    assert!(again.index > next);
    let (_, list_final) = nodes.list(&QueryOptions::new()).await.unwrap();
    assert!(list_final.last_index >= again.index);
    let me = client.agent().self_().await.unwrap();
    let raft_index: u64 = me
        .pointer("/stats/raft/last_log_index")
        .unwrap()
        .parse()
        .unwrap();
    assert!(raft_index >= again.index);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_server_crash_sqlite() {
    let mut c = DevCluster::start().await.unwrap();
    writes_survive_a_crash(&mut c).await;
    assert!(c.data_dir.path().join("server").is_dir());
}

#[tokio::test]
async fn acknowledged_writes_survive_a_server_crash_postgres() {
    let mut c = PgCluster::start().await.unwrap();
    writes_survive_a_crash(&mut c).await;
}

#[tokio::test]
async fn a_restarted_agent_is_the_same_node() {
    let mut c = PgCluster::start_with(&["-min-heartbeat-ttl", "1s"], &[])
        .await
        .unwrap();
    let client = c.client.clone();
    let nodes = client.nodes();
    nodes
        .eligibility(&c.node_id, false, &WriteOptions::default())
        .await
        .unwrap();
    let before = node_doc(&client, &c.node_id).await.unwrap();
    c.restart_agent().unwrap();
    let node_id = c.node_id.clone();
    // The agent registers again (the node document is rewritten) under the same ID.
    let (_, meta) = nodes.info(&node_id, &QueryOptions::new()).await.unwrap();
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(Duration::from_secs(15));
    let (after, _) = nodes.info(&node_id, &q).await.unwrap();
    wait_for("the restarted agent's node to be ready", WAIT, || async {
        let (n, _) = nodes.info(&node_id, &QueryOptions::new()).await?;
        Ok(n.status == "ready")
    })
    .await
    .unwrap();
    let (list, _) = nodes.list(&QueryOptions::new()).await.unwrap();
    assert_eq!(list.len(), 1, "a second node appeared: {list:?}");
    assert_eq!(list[0].id, node_id);
    assert_eq!(after.create_index, before["CreateIndex"].as_u64().unwrap());
    assert_eq!(
        after.scheduling_eligibility, "ineligible",
        "eligibility is the server's"
    );
    assert_eq!(
        after.events().len(),
        before["Events"].as_array().unwrap().len()
    );
}
