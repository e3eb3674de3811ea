//! The storage conformance suite: every behaviour of the store, run against PostgreSQL (a fresh
//! database on the run's throwaway cluster) and against SQLite (a fresh file).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_state::JobVersion;
use caravan_state::{StateError, Store, TableId, WatchKey};
use caravan_structs::{
    Allocation, Evaluation, Job, Node, NodePool, NodePoolSchedulerConfiguration,
    SchedulerConfiguration,
};
use caravan_test_utils::TestDatabase;

/// A backend under test; keeps what the database needs alive.
enum Backend {
    Postgres(TestDatabase),
    Sqlite(tempfile::TempDir),
}

impl Backend {
    fn url(&self) -> String {
        match self {
            Backend::Postgres(db) => db.url.clone(),
            Backend::Sqlite(dir) => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("state.db").display()
            ),
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let backend = super::Backend::Postgres(caravan_test_utils::TestDatabase::create().await?);
                    super::$name(&backend).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let backend = super::Backend::Sqlite(tempfile::tempdir()?);
                    super::$name(&backend).await
                }
            )*
        }
    };
}

conformance!(
    starts_empty_at_index_zero,
    writes_get_consecutive_indexes,
    concurrent_writes_are_grouped_and_all_land,
    state_survives_reopen,
    failed_write_changes_nothing,
    noop_write_takes_no_index,
    deletes_are_durable,
    row_watch_wakes_only_for_its_row,
    table_watch_wakes_on_any_row,
    blocking_returns_at_once_when_index_is_past,
    change_log_records_every_change,
    a_deposed_leader_cannot_commit,
    one_row_written_many_times_in_a_batch,
    secondary_indexes_follow_writes_and_reopen,
    node_pools_and_scheduler_config_are_durable,
);

fn node(id: u32) -> Node {
    Node {
        id: format!("00000000-0000-0000-0000-{id:012}"),
        secret_id: format!("11111111-0000-0000-0000-{id:012}"),
        name: format!("node-{id}"),
        datacenter: "dc1".to_owned(),
        status: "ready".to_owned(),
        ..Node::default()
    }
}

async fn put_node(store: &Store, n: Node) -> anyhow::Result<u64> {
    let w = store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(n)?;
            Ok(())
        })
        .await?;
    Ok(w.index)
}

async fn starts_empty_at_index_zero(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    let snap = store.snapshot();
    assert_eq!(snap.index(), 0);
    assert!(snap.nodes().is_empty());
    assert_eq!(snap.nodes().index(), 0);
    Ok(())
}

async fn writes_get_consecutive_indexes(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    assert_eq!(put_node(&store, node(1)).await?, 1);
    assert_eq!(put_node(&store, node(2)).await?, 2);
    let mut again = node(1);
    again.status = "down".to_owned();
    assert_eq!(put_node(&store, again).await?, 3);
    let snap = store.snapshot();
    assert_eq!(snap.index(), 3);
    assert_eq!(snap.nodes().index(), 3);
    let row = snap.nodes().get(&node(1).id).expect("node 1");
    assert_eq!((row.value.create_index, row.value.modify_index), (1, 3));
    assert_eq!(row.value.status, "down");
    // Every later read sees an acknowledged write.
    assert!(row.json.contains("\"ModifyIndex\":3"));
    Ok(())
}

async fn concurrent_writes_are_grouped_and_all_land(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { put_node(&store, node(i)).await })
        })
        .collect();
    let mut indexes = Vec::new();
    for t in tasks {
        indexes.push(t.await??);
    }
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (1..=200).collect::<Vec<u64>>(),
        "each write has its own index"
    );
    let snap = store.snapshot();
    assert_eq!(snap.nodes().len(), 200);
    assert_eq!(snap.index(), 200);
    for (_, row) in snap.nodes().iter() {
        assert_eq!(row.value.create_index, row.value.modify_index);
    }
    Ok(())
}

async fn state_survives_reopen(b: &Backend) -> anyhow::Result<()> {
    let before = {
        let store = Store::open(&b.url()).await?;
        for i in 0..5 {
            put_node(&store, node(i)).await?;
        }
        let id = node(3).id;
        store
            .write(move |txn| -> Result<(), StateError> {
                let mut n = txn.snapshot().nodes().get(&id).expect("node").value.clone();
                n.meta = Some([("rack".to_owned(), "r1".to_owned())].into());
                txn.put(n)?;
                Ok(())
            })
            .await?;
        store.snapshot()
    };
    // The old writer releases the database once its handles are gone.
    let store = reopen(b).await?;
    let after = store.snapshot();
    assert_eq!(after.index(), before.index());
    assert_eq!(after.nodes().index(), before.nodes().index());
    assert_eq!(after.nodes().len(), 5);
    for (id, row) in before.nodes().iter() {
        let again = after.nodes().get(id).expect("node after reopen");
        assert_eq!(again.value, row.value);
        assert_eq!(
            again.json, row.json,
            "canonical JSON is identical after reload"
        );
    }
    // Indexes keep growing after a restart.
    assert_eq!(put_node(&store, node(9)).await?, before.index() + 1);
    Ok(())
}

/// Opens the store again, retrying while the previous writer lets go of the leadership.
async fn reopen(b: &Backend) -> anyhow::Result<Store> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(&b.url()).await {
            Ok(store) => return Ok(store),
            Err(StateError::LeadershipHeld) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("refused")]
    Refused,
}

async fn failed_write_changes_nothing(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    let result = store
        .write(|txn| -> Result<(), TestError> {
            txn.put(node(2))?;
            txn.delete::<Node>(&node(1).id);
            Err(TestError::Refused)
        })
        .await;
    assert!(matches!(result, Err(TestError::Refused)));
    let snap = store.snapshot();
    assert_eq!(snap.index(), 1);
    assert!(snap.nodes().get(&node(1).id).is_some());
    assert!(snap.nodes().get(&node(2).id).is_none());
    // Nothing of it reached the database either.
    let store = {
        drop(store);
        reopen(b).await?
    };
    assert_eq!(store.snapshot().nodes().len(), 1);
    assert_eq!(put_node(&store, node(3)).await?, 2);
    Ok(())
}

async fn noop_write_takes_no_index(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    let w = store
        .write(|_txn| -> Result<u8, StateError> { Ok(7) })
        .await?;
    assert_eq!((w.value, w.index), (7, 0));
    assert_eq!(store.snapshot().index(), 1);
    assert_eq!(put_node(&store, node(2)).await?, 2);
    Ok(())
}

async fn deletes_are_durable(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    put_node(&store, node(2)).await?;
    let id = node(1).id;
    let w = store
        .write(move |txn| -> Result<bool, StateError> { Ok(txn.delete::<Node>(&id)) })
        .await?;
    assert!(w.value);
    assert_eq!(w.index, 3);
    assert_eq!(store.snapshot().nodes().index(), 3);
    drop(store);
    let store = reopen(b).await?;
    let snap = store.snapshot();
    assert!(snap.nodes().get(&node(1).id).is_none());
    assert!(snap.nodes().get(&node(2).id).is_some());
    assert_eq!(snap.nodes().index(), 3);
    Ok(())
}

async fn row_watch_wakes_only_for_its_row(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    put_node(&store, node(2)).await?;
    let watched = node(1).id;
    let min = store.snapshot().index();

    // A change to another row must not wake the waiter: it returns only at its deadline.
    let waiter = {
        let store = store.clone();
        let watched = watched.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let idx = store
                .block(
                    min,
                    Duration::from_millis(600),
                    &[WatchKey::Row(TableId::Nodes, watched.clone())],
                    |s| {
                        let i = s
                            .nodes()
                            .get(&watched)
                            .map(|r| r.value.modify_index)
                            .unwrap_or(0);
                        (i, i)
                    },
                )
                .await;
            (idx, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut other = node(2);
    other.status = "down".to_owned();
    put_node(&store, other).await?;
    let (idx, elapsed) = waiter.await?;
    assert_eq!(idx, 1, "the watched node did not change");
    assert!(
        elapsed >= Duration::from_millis(600),
        "woke early after {elapsed:?}"
    );

    // A change to the watched row wakes it at once.
    let min = store.snapshot().index();
    let waiter = {
        let store = store.clone();
        let watched = watched.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let idx = store
                .block(
                    min,
                    Duration::from_secs(30),
                    &[WatchKey::Row(TableId::Nodes, watched.clone())],
                    |s| {
                        let i = s
                            .nodes()
                            .get(&watched)
                            .map(|r| r.value.modify_index)
                            .unwrap_or(0);
                        (i, i)
                    },
                )
                .await;
            (idx, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut changed = node(1);
    changed.status = "down".to_owned();
    let index = put_node(&store, changed).await?;
    let (idx, elapsed) = waiter.await?;
    assert_eq!(idx, index);
    assert!(elapsed < Duration::from_secs(10));
    Ok(())
}

async fn table_watch_wakes_on_any_row(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    let min = store.snapshot().nodes().index();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .block(
                    min,
                    Duration::from_secs(30),
                    &[WatchKey::Table(TableId::Nodes)],
                    |s| (s.nodes().index(), s.nodes().index()),
                )
                .await
        })
    };
    // A write to another table does not count.
    store
        .write(|txn| -> Result<(), StateError> {
            txn.put(Evaluation {
                id: "22222222-0000-0000-0000-000000000001".to_owned(),
                namespace: "default".to_owned(),
                status: "pending".to_owned(),
                ..Evaluation::default()
            })?;
            Ok(())
        })
        .await?;
    let index = put_node(&store, node(5)).await?;
    assert_eq!(waiter.await?, index);
    Ok(())
}

async fn blocking_returns_at_once_when_index_is_past(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    put_node(&store, node(2)).await?;
    for min in [0, 1] {
        let started = Instant::now();
        let idx = store
            .block(
                min,
                Duration::from_secs(30),
                &[WatchKey::Table(TableId::Nodes)],
                |s| (s.nodes().index(), s.nodes().index()),
            )
            .await;
        assert_eq!(idx, 2);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    Ok(())
}

async fn change_log_records_every_change(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    put_node(&store, node(2)).await?;
    let id = node(1).id;
    store
        .write(move |txn| -> Result<(), StateError> {
            txn.delete::<Node>(&id);
            Ok(())
        })
        .await?;
    drop(store);
    let rows: Vec<(i64, String, String, String)> = match b {
        Backend::Postgres(db) => {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            let rows = sqlx::query_as("SELECT idx, tbl, key, op FROM changelog ORDER BY idx")
                .fetch_all(&pool)
                .await?;
            pool.close().await;
            rows
        }
        Backend::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&b.url()).await?;
            let rows = sqlx::query_as("SELECT idx, tbl, key, op FROM changelog ORDER BY idx")
                .fetch_all(&pool)
                .await?;
            pool.close().await;
            rows
        }
    };
    let expected = vec![
        (1, "nodes".to_owned(), node(1).id, "put".to_owned()),
        (2, "nodes".to_owned(), node(2).id, "put".to_owned()),
        (3, "nodes".to_owned(), node(1).id, "delete".to_owned()),
    ];
    assert_eq!(rows, expected);
    Ok(())
}

async fn a_deposed_leader_cannot_commit(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    // Another leader takes over: it bumps the epoch, as Store::open does.
    match b {
        Backend::Postgres(db) => {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            sqlx::query("UPDATE cluster_state SET epoch = epoch + 1")
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        Backend::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&b.url()).await?;
            sqlx::query("UPDATE cluster_state SET epoch = epoch + 1")
                .execute(&pool)
                .await?;
            pool.close().await;
        }
    }
    let err = put_node(&store, node(2))
        .await
        .expect_err("a fenced write must fail");
    assert!(err.to_string().contains("leadership lost"), "{err}");
    assert!(store.snapshot().nodes().get(&node(2).id).is_none());
    // Nothing of the fenced batch reached the database: the next leader does not see it.
    drop(store);
    let next = reopen(b).await?;
    let snap = next.snapshot();
    assert!(snap.nodes().get(&node(2).id).is_none());
    assert!(snap.nodes().get(&node(1).id).is_some());
    assert_eq!(snap.index(), 1);
    Ok(())
}

#[tokio::test]
async fn postgres_allows_one_leader_at_a_time() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let first = Store::open(&db.url).await?;
    let second = Store::open(&db.url).await;
    assert!(
        matches!(second, Err(StateError::LeadershipHeld)),
        "{second:?}"
    );
    drop(first);
    let b = Backend::Postgres(db);
    let store = reopen(&b).await?;
    assert_eq!(store.snapshot().index(), 0);
    let _ = Arc::new(());
    Ok(())
}

async fn one_row_written_many_times_in_a_batch(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    put_node(&store, node(1)).await?;
    // Concurrent writers to one row land in the same batches.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = node(1);
                n.status_description = format!("write {i}");
                put_node(&store, n).await
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    // One write that puts a row twice, and one that creates and deletes another.
    store
        .write(|txn| -> Result<(), StateError> {
            let mut n = node(2);
            txn.put(n.clone())?;
            n.status = "down".to_owned();
            txn.put(n)?;
            txn.put(node(3))?;
            txn.delete::<Node>(&node(3).id);
            Ok(())
        })
        .await?;
    let before = store.snapshot();
    drop(store);
    let store = reopen(b).await?;
    let after = store.snapshot();
    assert_eq!(after.index(), before.index());
    assert_eq!(after.nodes().len(), 2);
    for id in [node(1).id, node(2).id] {
        assert_eq!(
            after.nodes().get(&id).map(|r| r.json.clone()),
            before.nodes().get(&id).map(|r| r.json.clone()),
            "{id} as the last write left it"
        );
    }
    assert_eq!(
        after
            .nodes()
            .get(&node(2).id)
            .map(|r| r.value.status.clone())
            .as_deref(),
        Some("down")
    );
    assert!(after.nodes().get(&node(3).id).is_none());
    Ok(())
}

fn alloc(id: &str, node_id: &str, job_id: &str) -> Allocation {
    Allocation {
        id: id.to_owned(),
        namespace: "default".to_owned(),
        node_id: node_id.to_owned(),
        job_id: job_id.to_owned(),
        ..Allocation::default()
    }
}

/// Allocations by node and by job, versions by job: the secondary indexes move with updates
/// and deletes, and are rebuilt on reload; an allocation keeps its job version but not its Job.
async fn secondary_indexes_follow_writes_and_reopen(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    store
        .write(|txn| -> Result<(), StateError> {
            for v in 0..3 {
                txn.put(JobVersion(Job {
                    id: "web".to_owned(),
                    namespace: "default".to_owned(),
                    version: v,
                    ..Job::default()
                }))?;
            }
            // A job whose ID extends the other's must not mix with it.
            txn.put(JobVersion(Job {
                id: "web/child".to_owned(),
                namespace: "default".to_owned(),
                ..Job::default()
            }))?;
            let mut a = alloc("a1", "n1", "web");
            a.job = Some(Job {
                version: 2,
                ..Job::default()
            });
            txn.put(a)?;
            txn.put(alloc("a2", "n1", "web"))?;
            txn.put(alloc("a3", "n2", "other"))?;
            Ok(())
        })
        .await?;
    store
        .write(|txn| -> Result<(), StateError> {
            txn.put(alloc("a2", "n2", "web"))?;
            txn.delete::<Allocation>("a3");
            Ok(())
        })
        .await?;
    let check = |snap: &caravan_state::Snapshot| {
        let ids = |it: Vec<&Arc<caravan_state::Row<Allocation>>>| {
            it.iter().map(|r| r.value.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(snap.allocs_by_node("n1").collect()), ["a1"]);
        assert_eq!(ids(snap.allocs_by_node("n2").collect()), ["a2"]);
        assert_eq!(
            ids(snap.allocs_by_job("default", "web").collect()),
            ["a1", "a2"]
        );
        assert_eq!(snap.allocs_by_job("default", "other").count(), 0);
        let a1 = &snap.allocs().get("a1").expect("a1").value;
        assert_eq!(a1.job_version, 2);
        assert!(a1.job.is_none(), "allocations are kept without their Job");
        let versions: Vec<u64> = snap
            .versions_of_job("default", "web")
            .map(|r| r.value.0.version)
            .collect();
        assert_eq!(versions, [0, 1, 2]);
        assert!(snap.job_version("default", "web/child", 0).is_some());
    };
    check(&store.snapshot());
    drop(store);
    let store = reopen(b).await?;
    check(&store.snapshot());
    Ok(())
}

/// The change log's rows, oldest first.
async fn changelog(b: &Backend) -> anyhow::Result<Vec<(i64, String, String, String)>> {
    const SQL: &str = "SELECT idx, tbl, key, op FROM changelog ORDER BY idx, tbl, key";
    Ok(match b {
        Backend::Postgres(db) => {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await?;
            pool.close().await;
            rows
        }
        Backend::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&b.url()).await?;
            let rows = sqlx::query_as(SQL).fetch_all(&pool).await?;
            pool.close().await;
            rows
        }
    })
}

async fn node_pools_and_scheduler_config_are_durable(b: &Backend) -> anyhow::Result<()> {
    let store = Store::open(&b.url()).await?;
    assert!(store.snapshot().scheduler_config().is_none());
    let pool = NodePool {
        name: "gpu".to_owned(),
        description: "GPUs".to_owned(),
        meta: Some([("rack".to_owned(), "r2".to_owned())].into()),
        scheduler_configuration: Some(NodePoolSchedulerConfiguration {
            memory_oversubscription_enabled: Some(true),
            scheduler_algorithm: "spread".to_owned(),
        }),
        ..NodePool::default()
    };
    let written = {
        let pool = pool.clone();
        store
            .write(move |txn| -> Result<(), StateError> {
                txn.put(pool)?;
                txn.put(NodePool::named("edge"))?;
                Ok(())
            })
            .await?
    };
    let mut config = SchedulerConfiguration::server_default();
    config.scheduler_algorithm = "spread".to_owned();
    config.reject_job_registration = true;
    let cfg_index = {
        let config = config.clone();
        store
            .write(move |txn| -> Result<(), StateError> {
                txn.put(config)?;
                Ok(())
            })
            .await?
            .index
    };
    let gone = store
        .write(|txn| -> Result<bool, StateError> { Ok(txn.delete::<NodePool>("edge")) })
        .await?;
    assert!(gone.value);
    let before = store.snapshot();
    assert_eq!(before.node_pools().index(), gone.index);
    assert_eq!(before.scheduler_config_table().index(), cfg_index);
    drop(store);

    let store = reopen(b).await?;
    let after = store.snapshot();
    assert_eq!(after.node_pools().len(), 1);
    let gpu = &after
        .node_pools()
        .get("gpu")
        .expect("pool after reopen")
        .value;
    assert_eq!(gpu.create_index, written.index);
    assert_eq!(gpu.modify_index, written.index);
    assert_eq!(gpu.scheduler_configuration, pool.scheduler_configuration);
    assert_eq!(gpu.meta, pool.meta);
    assert_eq!(after.node_pools().index(), gone.index);
    let stored = after.scheduler_config().expect("config after reopen");
    assert_eq!(stored.scheduler_algorithm, "spread");
    assert!(stored.reject_job_registration);
    assert!(stored.preemption_config.system_scheduler_enabled);
    assert_eq!(stored.create_index, cfg_index);
    assert_eq!(after.scheduler_config_table().index(), cfg_index);
    drop(store);

    let rows = changelog(b).await?;
    let expected = vec![
        (
            written.index as i64,
            "node_pools".to_owned(),
            "edge".to_owned(),
            "put".to_owned(),
        ),
        (
            written.index as i64,
            "node_pools".to_owned(),
            "gpu".to_owned(),
            "put".to_owned(),
        ),
        (
            cfg_index as i64,
            "scheduler_config".to_owned(),
            "config".to_owned(),
            "put".to_owned(),
        ),
        (
            gone.index as i64,
            "node_pools".to_owned(),
            "edge".to_owned(),
            "delete".to_owned(),
        ),
    ];
    assert_eq!(rows, expected);
    Ok(())
}
