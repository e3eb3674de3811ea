//! Stopping: SIGTERM ends a process promptly, even with blocking queries in flight (clients
//! such as the UI and `nomad ... -watch` keep one open at all times).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use std::time::Duration;

use caravan_tests::*;

const STOP: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigterm_stops_an_idle_dev_agent_promptly() {
    let mut c = DevCluster::start().await.unwrap();
    c.process.terminate().unwrap();
    c.process.wait_exit(STOP).await.unwrap();
}

/// Opens a blocking query with a long wait and checks it is pending.
async fn open_blocking_query(client: &Client) -> tokio::task::JoinHandle<()> {
    let (_, meta) = client.nodes().list(&QueryOptions::new()).await.unwrap();
    let q = QueryOptions::new()
        .index(meta.last_index)
        .wait(Duration::from_secs(120));
    let reader = client.clone();
    let mut pending = tokio::spawn(async move {
        let _ = reader.nodes().list(&q).await;
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(400), &mut pending)
            .await
            .is_err()
    );
    pending
}

#[tokio::test]
async fn sigterm_stops_a_dev_agent_with_a_blocking_query_in_flight() {
    let mut c = DevCluster::start().await.unwrap();
    let _pending = open_blocking_query(&c.client).await;
    c.process.terminate().unwrap();
    c.process.wait_exit(STOP).await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_a_gateway_with_a_blocking_query_in_flight() {
    let mut c = PgCluster::start().await.unwrap();
    let _pending = open_blocking_query(&c.client).await;
    c.gateway.terminate().unwrap();
    c.gateway.wait_exit(STOP).await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_a_server_with_a_blocking_query_in_flight() {
    let mut c = PgCluster::start().await.unwrap();
    let _pending = open_blocking_query(&c.client).await;
    c.server.terminate().unwrap();
    c.server.wait_exit(STOP).await.unwrap();
}

#[tokio::test]
async fn sigterm_stops_idle_server_gateway_and_agent_promptly() {
    let mut c = PgCluster::start().await.unwrap();
    for p in [&mut c.agent, &mut c.gateway, &mut c.server] {
        p.terminate().unwrap();
        p.wait_exit(STOP).await.unwrap();
    }
}
