//! The periodic launcher's write in process, on a real store (SQLite in a temp dir), with no
//! background loop: times are given, not waited for. Checks that one launch happens once,
//! that a reopened store (a new leader) still refuses it, the overlap rule, the catch-up
//! after downtime, and force's errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use caravan_server::ServerError;
use caravan_server::periodic::{LaunchKind, Launched, launch, missed_launches};
use caravan_state::{StateError, Store};
use caravan_structs::{Evaluation, Job, PeriodicConfig, PeriodicLaunch};
use jiff::Timestamp;

const SEC: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600 * SEC;

fn periodic_job(id: &str, prohibit_overlap: bool) -> Job {
    let mut job = Job {
        id: id.into(),
        namespace: "default".into(),
        r#type: "batch".into(),
        priority: 50,
        periodic: Some(PeriodicConfig {
            enabled: true,
            spec: "*/2 * * * * * *".into(),
            spec_type: "cron".into(),
            prohibit_overlap,
            time_zone: "UTC".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    job.canonicalize();
    job
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    Store::open(&url).await.unwrap()
}

/// Opens the store again once the dropped one has let go of the leadership.
async fn reopen(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(&url).await {
            Ok(store) => return store,
            Err(StateError::LeadershipHeld) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("reopening: {e}"),
        }
    }
}

async fn put_job(store: &Store, job: Job, first_launch: i64) {
    store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(PeriodicLaunch {
                id: job.id.clone(),
                namespace: job.namespace.clone(),
                launch: first_launch,
                ..Default::default()
            })?;
            txn.put(job)?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn run(
    store: &Store,
    id: &str,
    at: i64,
    kind: LaunchKind,
) -> Result<Option<Launched>, ServerError> {
    let id = id.to_owned();
    store
        .write(move |txn| launch(txn, "default", &id, at, kind))
        .await
        .map(|w| w.value)
}

#[tokio::test]
async fn a_launch_happens_once_also_after_the_store_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    put_job(&store, periodic_job("tick", false), T0).await;

    let first = run(&store, "tick", T0 + 2 * SEC, LaunchKind::Scheduled)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.job_id,
        format!("tick/periodic-{}", (T0 + 2 * SEC) / SEC)
    );
    let snap = store.snapshot();
    let child = &snap.job("default", &first.job_id).unwrap().value;
    assert_eq!(child.parent_id, "tick");
    assert!(child.periodic.is_none());
    assert_eq!(child.version, 0);
    let eval: &Evaluation = &snap.evals().get(&first.eval_id).unwrap().value;
    assert_eq!(eval.triggered_by, "periodic-job");
    assert_eq!(eval.job_id, first.job_id);
    assert_eq!(
        snap.periodic_launch("default", "tick").unwrap().launch,
        T0 + 2 * SEC
    );

    // The same launch again (a retry, a second leader): nothing.
    assert!(
        run(&store, "tick", T0 + 2 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_none()
    );
    // A new leader on the same database refuses it too.
    drop(store);
    let store = reopen(&dir).await;
    assert!(
        run(&store, "tick", T0 + 2 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_none()
    );
    let next = run(&store, "tick", T0 + 4 * SEC, LaunchKind::Scheduled)
        .await
        .unwrap();
    assert!(next.is_some());
    let children = store
        .snapshot()
        .jobs()
        .iter()
        .filter(|(_, r)| r.value.parent_id == "tick")
        .count();
    assert_eq!(children, 2);
}

#[tokio::test]
async fn downtime_is_made_up_by_one_launch_and_overlap_is_prohibited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    put_job(&store, periodic_job("slow", true), T0).await;
    // Ten seconds later (four launches missed): one launch, now.
    let now = Timestamp::from_nanosecond(i128::from(T0 + 10 * SEC + SEC / 2)).unwrap();
    let missed = missed_launches(&store.snapshot(), now);
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].scheduled, now);
    // Not yet due: nothing.
    let early = Timestamp::from_nanosecond(i128::from(T0 + SEC)).unwrap();
    assert!(missed_launches(&store.snapshot(), early).is_empty());

    let first = run(
        &store,
        "slow",
        T0 + 10 * SEC + SEC / 2,
        LaunchKind::Scheduled,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(first.job_id, format!("slow/periodic-{}", T0 / SEC + 10));
    // The first child's evaluation is pending: the next launch is skipped.
    assert!(
        run(&store, "slow", T0 + 12 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_none()
    );
    assert!(missed_launches(&store.snapshot(), now).is_empty());
    // Force ignores the rule.
    assert!(
        run(&store, "slow", T0 + 13 * SEC, LaunchKind::Forced)
            .await
            .unwrap()
            .is_some()
    );
    // Once the children are done, launches resume.
    let evals: Vec<Evaluation> = store
        .snapshot()
        .evals()
        .iter()
        .map(|(_, r)| r.value.clone())
        .collect();
    store
        .write(move |txn| -> Result<(), StateError> {
            for mut e in evals {
                e.status = "complete".into();
                txn.put(e)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        run(&store, "slow", T0 + 14 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn force_errors_in_nomads_words() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let err = run(&store, "nope", T0, LaunchKind::Forced)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "job not found");
    let mut plain = periodic_job("plain", false);
    plain.periodic = None;
    put_job(&store, plain, T0).await;
    let err = run(&store, "plain", T0, LaunchKind::Forced)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "can't force launch non-periodic job");
    let mut stopped = periodic_job("stopped", false);
    stopped.stop = true;
    put_job(&store, stopped, T0).await;
    let err = run(&store, "stopped", T0, LaunchKind::Forced)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "force launch for job \"stopped\" failed: can't force run non-tracked job \"stopped\" (default)"
    );
    // A scheduled launch of a stopped or missing job is simply not made.
    assert!(
        run(&store, "stopped", T0 + 2 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        run(&store, "nope", T0 + 2 * SEC, LaunchKind::Scheduled)
            .await
            .unwrap()
            .is_none()
    );
}
