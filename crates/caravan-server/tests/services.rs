//! The Services service in process: a real store (SQLite in a temp dir), a node and
//! allocations written to it directly, agents' registrations sent through the service.
//! Covers what the store decides: identical upserts write nothing, refused registrations,
//! the cascade of terminal and removed allocations, ordering, pages, filters and `choose`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use caravan_proto::v1::{self, services_server::Services};
use caravan_proto::{ErrorCode, error_code_of};
use caravan_server::services::ServicesService;
use caravan_server::{Server, ServerConfig};
use caravan_state::{StateError, Store};
use caravan_structs::{Allocation, Node, ServiceRegistration};
use serde_json::Value;
use tonic::Request;

const NODE: &str = "11111111-0000-0000-0000-000000000001";
const SECRET: &str = "22222222-0000-0000-0000-000000000002";

async fn harness() -> (tempfile::TempDir, Store, ServicesService) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let store = Store::open(&url).await.unwrap();
    let config = ServerConfig {
        scheduler_workers: 0,
        ..ServerConfig::default()
    };
    let server = Server::start(store.clone(), config);
    let node = Node {
        id: NODE.into(),
        secret_id: SECRET.into(),
        name: "n1".into(),
        status: "ready".into(),
        ..Node::default()
    };
    store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(node)?;
            Ok(())
        })
        .await
        .unwrap();
    (dir, store, ServicesService::new(server))
}

fn alloc_id(n: u32) -> String {
    format!("aaaaaaaa-0000-0000-0000-{n:012}")
}

async fn put_alloc(store: &Store, n: u32, client_status: &str) {
    let alloc = Allocation {
        id: alloc_id(n),
        namespace: "default".into(),
        job_id: "web".into(),
        node_id: NODE.into(),
        name: format!("web.g[{n}]"),
        client_status: client_status.into(),
        desired_status: "run".into(),
        ..Allocation::default()
    };
    store
        .write(move |txn| -> Result<(), StateError> {
            txn.put(alloc)?;
            Ok(())
        })
        .await
        .unwrap();
}

fn reg(n: u32, name: &str, tags: &[&str]) -> ServiceRegistration {
    ServiceRegistration {
        id: format!("_nomad-task-{}-t-{name}-http", alloc_id(n)),
        service_name: name.into(),
        namespace: "default".into(),
        node_id: NODE.into(),
        datacenter: "dc1".into(),
        job_id: "web".into(),
        alloc_id: alloc_id(n),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        address: "127.0.0.1".into(),
        port: 20000 + i64::from(n),
        ..ServiceRegistration::default()
    }
}

fn auth(secret: &str) -> Option<v1::NodeAuth> {
    Some(v1::NodeAuth {
        node_id: NODE.into(),
        secret_id: secret.into(),
    })
}

async fn upsert(svc: &ServicesService, regs: &[ServiceRegistration]) -> Result<u64, tonic::Status> {
    let resp = svc
        .upsert_services(Request::new(v1::UpsertServicesRequest {
            node: auth(SECRET),
            registrations_json: regs
                .iter()
                .map(|r| serde_json::to_vec(r).unwrap().into())
                .collect(),
        }))
        .await?;
    Ok(resp.into_inner().index)
}

async fn get(
    svc: &ServicesService,
    name: &str,
    q: v1::QueryOptions,
    choose: &str,
) -> Result<(Vec<Value>, String), tonic::Status> {
    let resp = svc
        .get_service(Request::new(v1::GetServiceRequest {
            service_name: name.into(),
            query: Some(q),
            choose: choose.into(),
        }))
        .await?
        .into_inner();
    let docs = resp
        .json
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    Ok((docs, resp.meta.unwrap().next_token))
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["ID"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn identical_upserts_write_nothing_and_changes_keep_create_index() {
    let (_dir, store, svc) = harness().await;
    put_alloc(&store, 1, "running").await;
    let first = upsert(&svc, &[reg(1, "web", &["a", "b"])]).await.unwrap();
    assert!(first > 0);
    // The same instance with its tags reordered: nothing to write, no index used.
    assert_eq!(
        upsert(&svc, &[reg(1, "web", &["b", "a"])]).await.unwrap(),
        0
    );
    let changed = upsert(&svc, &[reg(1, "web", &["c"])]).await.unwrap();
    assert!(changed > first);
    let (docs, _) = get(&svc, "web", v1::QueryOptions::default(), "")
        .await
        .unwrap();
    assert_eq!(docs[0]["CreateIndex"], first);
    assert_eq!(docs[0]["ModifyIndex"], changed);
    assert_eq!(docs[0]["Tags"], serde_json::json!(["c"]));
}

#[tokio::test]
async fn registrations_of_unknown_terminal_or_foreign_allocations_are_refused() {
    let (_dir, store, svc) = harness().await;
    put_alloc(&store, 1, "complete").await;
    let err = upsert(&svc, &[reg(9, "web", &[])]).await.unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::BadRequest);
    assert!(err.message().contains("not found"), "{}", err.message());
    let err = upsert(&svc, &[reg(1, "web", &[])]).await.unwrap_err();
    assert!(err.message().contains("complete"), "{}", err.message());
    put_alloc(&store, 2, "running").await;
    let mut zero = reg(2, "web", &[]);
    zero.address = "0.0.0.0".into();
    let err = upsert(&svc, &[zero]).await.unwrap_err();
    assert!(
        err.message()
            .contains("invalid service registration address")
    );
    // A wrong node secret.
    let err = svc
        .upsert_services(Request::new(v1::UpsertServicesRequest {
            node: auth("wrong"),
            registrations_json: vec![serde_json::to_vec(&reg(2, "web", &[])).unwrap().into()],
        }))
        .await
        .unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn a_terminal_or_removed_allocation_takes_its_registrations() {
    let (_dir, store, svc) = harness().await;
    put_alloc(&store, 1, "running").await;
    put_alloc(&store, 2, "running").await;
    upsert(&svc, &[reg(1, "web", &[]), reg(2, "web", &[])])
        .await
        .unwrap();
    put_alloc(&store, 1, "failed").await;
    let (docs, _) = get(&svc, "web", v1::QueryOptions::default(), "")
        .await
        .unwrap();
    assert_eq!(ids(&docs), vec![reg(2, "web", &[]).id]);
    let key = alloc_id(2);
    store
        .write(move |txn| -> Result<(), StateError> {
            txn.delete::<Allocation>(&key);
            Ok(())
        })
        .await
        .unwrap();
    let (docs, _) = get(&svc, "web", v1::QueryOptions::default(), "")
        .await
        .unwrap();
    assert!(docs.is_empty());
}

#[tokio::test]
async fn reads_page_filter_choose_and_delete() {
    let (_dir, store, svc) = harness().await;
    for n in 1..=3 {
        put_alloc(&store, n, "running").await;
    }
    upsert(
        &svc,
        &[
            reg(3, "web", &["db"]),
            reg(1, "web", &[]),
            reg(2, "web", &["db"]),
            reg(1, "api", &[]),
        ],
    )
    .await
    .unwrap();
    let all = ids(&get(&svc, "web", v1::QueryOptions::default(), "")
        .await
        .unwrap()
        .0);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "by ID");
    assert_eq!(all.len(), 3);

    let q = v1::QueryOptions {
        per_page: 1,
        ..Default::default()
    };
    let (page, next) = get(&svc, "web", q, "").await.unwrap();
    assert_eq!(ids(&page), vec![all[0].clone()]);
    assert_eq!(next, format!("default.{}", all[1]));
    let q = v1::QueryOptions {
        next_token: next,
        ..Default::default()
    };
    assert_eq!(
        ids(&get(&svc, "web", q, "").await.unwrap().0),
        all[1..].to_vec()
    );

    let q = v1::QueryOptions {
        filter: r#""db" in Tags"#.into(),
        ..Default::default()
    };
    assert_eq!(get(&svc, "web", q, "").await.unwrap().0.len(), 2);
    let q = v1::QueryOptions {
        filter: "Tags ==".into(),
        ..Default::default()
    };
    let err = get(&svc, "web", q, "").await.unwrap_err();
    assert!(
        err.message()
            .starts_with("failed to create result paginator:"),
        "{}",
        err.message()
    );

    let two = ids(&get(&svc, "web", v1::QueryOptions::default(), "2|key")
        .await
        .unwrap()
        .0);
    assert_eq!(two.len(), 2);
    assert_eq!(
        two,
        ids(&get(&svc, "web", v1::QueryOptions::default(), "2|key")
            .await
            .unwrap()
            .0)
    );
    assert_eq!(
        get(&svc, "web", v1::QueryOptions::default(), "99|key")
            .await
            .unwrap()
            .0
            .len(),
        3
    );
    for bad in ["-1|k", "x|k", "2|", "abc"] {
        let err = get(&svc, "web", v1::QueryOptions::default(), bad)
            .await
            .unwrap_err();
        assert_eq!(error_code_of(&err), ErrorCode::BadRequest, "{bad}");
    }

    let stubs = svc
        .list_services(Request::new(v1::ListServicesRequest { query: None }))
        .await
        .unwrap()
        .into_inner();
    let stubs: Vec<Value> = stubs
        .json
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    assert_eq!(
        stubs,
        vec![serde_json::json!({"Namespace": "default", "Services": [
            {"ServiceName": "api", "Tags": []},
            {"ServiceName": "web", "Tags": ["db"]}
        ]})]
    );

    // Delete by ID; an unknown one is a 404 that writes nothing.
    let before = store.snapshot().index();
    let err = svc
        .delete_service(Request::new(v1::DeleteServiceRequest {
            service_id: "nope".into(),
            write: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(error_code_of(&err), ErrorCode::NotFound);
    assert_eq!(err.message(), "service registration not found");
    assert_eq!(store.snapshot().index(), before);
    let resp = svc
        .delete_service(Request::new(v1::DeleteServiceRequest {
            service_id: all[0].clone(),
            write: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.index > before);
    assert_eq!(
        get(&svc, "web", v1::QueryOptions::default(), "")
            .await
            .unwrap()
            .0
            .len(),
        2
    );
}
