//! `/v1/evaluations`, `/v1/evaluation/:id` and `/allocations` over HTTP, with their bad inputs.
//! (Listing real evaluations is covered in process by caravan-server's tests until jobs can be
//! registered over HTTP.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::*;

#[tokio::test]
async fn evaluation_endpoints_answer_and_refuse_bad_input() {
    let c = DevCluster::start().await.unwrap();
    let q = QueryOptions::new();
    let get = |path: &'static str| c.client.get(path, &q);

    let r = get("/v1/evaluations").await.unwrap();
    assert_eq!((r.status, r.text()), (200, "[]".to_owned()));
    assert!(r.query_meta().last_index >= 1, "X-Nomad-Index is never 0");

    let r = get("/v1/evaluation/00000000-0000-0000-0000-000000000000")
        .await
        .unwrap();
    assert_eq!((r.status, r.text()), (404, "eval not found".to_owned()));
    assert!(r.query_meta().last_index >= 1);

    let r = get("/v1/evaluation/00000000-0000-0000-0000-000000000000/allocations")
        .await
        .unwrap();
    assert_eq!((r.status, r.text()), (200, "[]".to_owned()));

    for (path, want) in [
        ("/v1/evaluation/xyz", "UUID must be 36 characters"),
        ("/v1/evaluations?prefix=abc", "even length"),
        ("/v1/evaluations?per_page=-1", "per_page"),
        (
            "/v1/evaluations?job=web&filter=Status%20%3D%3D%20%22pending%22",
            "Filter expression cannot be used with other filter parameters",
        ),
        (
            "/v1/evaluations?filter=Status%20%3D%3D",
            "failed to create result paginator",
        ),
        (
            "/v1/evaluation/00000000-0000-0000-0000-000000000000?related=maybe",
            "related",
        ),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(want), "{path}: {}", r.text());
    }
    let r = c
        .client
        .raw(caravan_tests::api::Method::DELETE, "/v1/evaluations")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status, 405);
}
