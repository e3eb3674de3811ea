//! The Evals service in process: a real store (SQLite in a temp dir), evaluations written to
//! it directly (job registration does not exist yet), the service called without the network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use caravan_proto::v1::{self, evals_server::Evals};
use caravan_proto::{ErrorCode, error_code_of};
use caravan_server::evals::EvalsService;
use caravan_server::{Server, ServerConfig};
use caravan_state::{StateError, Store};
use caravan_structs::{Allocation, Evaluation};
use serde_json::Value;
use tonic::Request;

async fn harness() -> (tempfile::TempDir, Store, EvalsService) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let store = Store::open(&url).await.unwrap();
    // No scheduler workers: these tests look at evaluations as they were written.
    let config = ServerConfig {
        scheduler_workers: 0,
        ..ServerConfig::default()
    };
    let server = Server::start(store.clone(), config);
    (dir, store, EvalsService::new(server))
}

fn eval_id(n: u32) -> String {
    format!("eeeeeeee-0000-0000-0000-{n:012}")
}

/// Writes evaluations one write each, so their CreateIndex follows `ns_jobs` order.
async fn put_evals(store: &Store, evals: Vec<(u32, &str, &str, &str)>) {
    for (n, ns, job, status) in evals {
        let eval = Evaluation {
            id: eval_id(n),
            namespace: ns.into(),
            job_id: job.into(),
            status: status.into(),
            priority: 50,
            r#type: "service".into(),
            triggered_by: "job-register".into(),
            ..Evaluation::default()
        };
        store
            .write(move |txn| -> Result<(), StateError> {
                txn.put(eval)?;
                Ok(())
            })
            .await
            .unwrap();
    }
}

async fn list(
    svc: &EvalsService,
    q: v1::QueryOptions,
    job: &str,
    status: &str,
) -> Result<(Vec<String>, String, u64), tonic::Status> {
    let resp = svc
        .list_evals(Request::new(v1::ListEvalsRequest {
            query: Some(q),
            job_id: job.into(),
            status: status.into(),
        }))
        .await?
        .into_inner();
    let ids = resp
        .evals_json
        .iter()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["ID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let meta = resp.meta.unwrap();
    Ok((ids, meta.next_token, meta.index))
}

fn ns(namespace: &str) -> v1::QueryOptions {
    v1::QueryOptions {
        namespace: namespace.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn lists_in_creation_order_per_namespace_and_pages_by_create_index() {
    let (_d, store, svc) = harness().await;
    // IDs deliberately not in creation order.
    put_evals(
        &store,
        vec![
            (9, "default", "web", "pending"),
            (3, "default", "web", "complete"),
            (7, "other", "db", "pending"),
            (1, "default", "api", "pending"),
        ],
    )
    .await;
    let (ids, next, index) = list(&svc, ns("default"), "", "").await.unwrap();
    assert_eq!(ids, [eval_id(9), eval_id(3), eval_id(1)]);
    assert!(next.is_empty());
    assert_eq!(index, 4);
    let (all, _, _) = list(&svc, ns("*"), "", "").await.unwrap();
    assert_eq!(all.len(), 4);

    // Pages of one: tokens are `<CreateIndex>.<ID>` and walk the same order.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let q = v1::QueryOptions {
            namespace: "default".into(),
            per_page: 1,
            next_token: token.clone(),
            ..Default::default()
        };
        let (page, next, _) = list(&svc, q, "", "").await.unwrap();
        seen.extend(page);
        if next.is_empty() {
            break;
        }
        assert!(
            next.split_once('.').unwrap().0.parse::<u64>().is_ok(),
            "token {next}"
        );
        token = next;
    }
    assert_eq!(seen, [eval_id(9), eval_id(3), eval_id(1)]);

    let q = v1::QueryOptions {
        namespace: "default".into(),
        reverse: true,
        ..Default::default()
    };
    let (rev, _, _) = list(&svc, q, "", "").await.unwrap();
    assert_eq!(rev, [eval_id(1), eval_id(3), eval_id(9)]);
}

#[tokio::test]
async fn legacy_filters_prefixes_and_filter_expressions() {
    let (_d, store, svc) = harness().await;
    put_evals(
        &store,
        vec![
            (1, "default", "web", "pending"),
            (2, "default", "web", "complete"),
            (3, "default", "api", "pending"),
        ],
    )
    .await;
    assert_eq!(
        list(&svc, ns("default"), "web", "").await.unwrap().0,
        [eval_id(1), eval_id(2)]
    );
    assert_eq!(
        list(&svc, ns("default"), "", "pending").await.unwrap().0,
        [eval_id(1), eval_id(3)]
    );
    assert_eq!(
        list(&svc, ns("default"), "web", "pending").await.unwrap().0,
        [eval_id(1)]
    );
    let q = v1::QueryOptions {
        filter: "JobID == \"api\"".into(),
        ..ns("default")
    };
    assert_eq!(list(&svc, q, "", "").await.unwrap().0, [eval_id(3)]);
    let q = v1::QueryOptions {
        prefix: "eeeeeeee-0000-0000-0000-00000000000".into(),
        ..ns("default")
    };
    assert_eq!(list(&svc, q, "", "").await.unwrap().0.len(), 3);

    let q = v1::QueryOptions {
        filter: "JobID == \"api\"".into(),
        ..ns("default")
    };
    let err = list(&svc, q, "web", "").await.unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::BadRequest);
    assert_eq!(
        err.message(),
        "Filter expression cannot be used with other filter parameters"
    );
}

#[tokio::test]
async fn reads_an_eval_with_its_related_evals_and_allocations() {
    let (_d, store, svc) = harness().await;
    put_evals(
        &store,
        vec![
            (1, "default", "web", "complete"),
            (2, "default", "web", "blocked"),
        ],
    )
    .await;
    // Link 1 -> 2 as Nomad does for a blocked follow-up.
    store
        .write(|txn| -> Result<(), StateError> {
            let mut first = txn
                .snapshot()
                .evals()
                .get(&eval_id(1))
                .unwrap()
                .value
                .clone();
            first.blocked_eval = eval_id(2);
            txn.put(first)?;
            txn.put(Allocation {
                id: "aaaaaaaa-0000-0000-0000-000000000001".into(),
                eval_id: eval_id(1),
                namespace: "default".into(),
                job_id: "web".into(),
                name: "web.web[0]".into(),
                ..Allocation::default()
            })?;
            Ok(())
        })
        .await
        .unwrap();
    let get = |related| {
        let svc = svc.clone();
        async move {
            let resp = svc
                .get_eval(Request::new(v1::GetEvalRequest {
                    eval_id: eval_id(1),
                    query: None,
                    related,
                }))
                .await
                .unwrap()
                .into_inner();
            serde_json::from_slice::<Value>(&resp.eval_json).unwrap()
        }
    };
    let plain = get(false).await;
    assert_eq!(plain["BlockedEval"], eval_id(2));
    assert!(plain["RelatedEvals"].is_null());
    let with_related = get(true).await;
    assert_eq!(with_related["RelatedEvals"][0]["ID"], eval_id(2));

    let missing = svc
        .get_eval(Request::new(v1::GetEvalRequest {
            eval_id: eval_id(9),
            query: None,
            related: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(missing.eval_json.is_empty());
    assert!(missing.meta.unwrap().index >= 1, "the index is never 0");

    let allocs = svc
        .get_eval_allocs(Request::new(v1::GetEvalRequest {
            eval_id: eval_id(1),
            query: None,
            related: false,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(allocs.allocs_json.len(), 1);
    let stub: Value = serde_json::from_slice(&allocs.allocs_json[0]).unwrap();
    assert_eq!(stub["Name"], "web.web[0]");
    assert_eq!(stub["EvalID"], eval_id(1));
}
