//! An unmodified Nomad client library against Caravan: python-nomad drives the Nodes API
//! (tests/compat/python_nomad_nodes.py) and the Jobs, Evaluations and Allocations APIs
//! (tests/compat/python_nomad_jobs.py) on the embedded store and on PostgreSQL, the job
//! workflow of dispatch, revert, stable, plan and purge-then-register
//! (tests/compat/python_nomad_workflow.py) and the Search API
//! (tests/compat/python_nomad_search.py) and the ACL and Namespace APIs
//! (tests/compat/python_nomad_acl.py, ACLs on) on PostgreSQL.
//! `scripts/test.sh` provisions the library and sets `CARAVAN_TEST_PYTHON`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::PathBuf;
use std::process::Stdio;

use caravan_tests::{DevCluster, PgCluster};

fn python() -> String {
    std::env::var("CARAVAN_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("CARAVAN_TEST_PYTHON is not set: run the tests through ./scripts/test.sh, which installs python-nomad")
    })
}

async fn run_script(script: &str, http_addr: &str, logs: impl Fn() -> String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("compat")
        .join(script);
    let (host, port) = http_addr.rsplit_once(':').unwrap();
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .args([host, port])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python-nomad failed:\n{}\n{}\ncaravan logs:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
}

#[tokio::test]
async fn python_nomad_drives_the_nodes_api_on_sqlite() {
    let c = DevCluster::start().await.unwrap();
    run_script("python_nomad_nodes.py", &c.http_addr, || c.process.logs()).await;
}

#[tokio::test]
async fn python_nomad_drives_the_nodes_api_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    run_script("python_nomad_nodes.py", &c.http_addr, || {
        format!("{}\n{}", c.server.logs(), c.gateway.logs())
    })
    .await;
}

#[tokio::test]
async fn python_nomad_drives_the_jobs_api_on_sqlite() {
    let c = DevCluster::start().await.unwrap();
    run_script("python_nomad_jobs.py", &c.http_addr, || c.process.logs()).await;
}

#[tokio::test]
async fn python_nomad_drives_the_jobs_api_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    run_script("python_nomad_jobs.py", &c.http_addr, || {
        format!("{}\n{}", c.server.logs(), c.gateway.logs())
    })
    .await;
}

#[tokio::test]
async fn python_nomad_runs_signals_restarts_and_replaces_a_task_on_sqlite() {
    let c = DevCluster::start().await.unwrap();
    run_script("python_nomad_tasks.py", &c.http_addr, || c.process.logs()).await;
}

#[tokio::test]
async fn python_nomad_runs_signals_restarts_and_replaces_a_task_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    run_script("python_nomad_tasks.py", &c.http_addr, || {
        format!(
            "{}\n{}\n{}",
            c.server.logs(),
            c.gateway.logs(),
            c.agent.logs()
        )
    })
    .await;
}

#[tokio::test]
async fn python_nomad_dispatches_reverts_and_marks_stable_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    run_script("python_nomad_workflow.py", &c.http_addr, || {
        format!("{}\n{}", c.server.logs(), c.gateway.logs())
    })
    .await;
}

#[tokio::test]
async fn python_nomad_searches_by_prefix_and_fuzzy_text_on_postgres() {
    let c = PgCluster::start().await.unwrap();
    run_script("python_nomad_search.py", &c.http_addr, || {
        format!("{}\n{}", c.server.logs(), c.gateway.logs())
    })
    .await;
}

#[tokio::test]
async fn python_nomad_drives_the_acl_and_namespace_apis_on_postgres() {
    let c = PgCluster::start_with(&["-acl-enabled"], &[]).await.unwrap();
    run_script("python_nomad_acl.py", &c.http_addr, || {
        format!("{}\n{}", c.server.logs(), c.gateway.logs())
    })
    .await;
}
