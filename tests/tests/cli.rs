//! The `caravan` command line: Go-style `-flag` and GNU-style `--flag[=v]` alike, and clear
//! failures for missing or bad settings.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use caravan_tests::*;

#[tokio::test]
async fn double_dash_flags_with_equals_work() {
    let data_dir = TempDir::new("caravan-cli").unwrap();
    let http_port = free_port();
    let rpc_port = free_port();
    let args = vec![
        "agent".to_owned(),
        "--dev".to_owned(),
        format!("--http-port={http_port}"),
        format!("--rpc-port={rpc_port}"),
        format!("--data-dir={}", data_dir.path_str()),
        "--dc=west".to_owned(),
        "-node=cli-node".to_owned(),
    ];
    let c = DevCluster::start_args(args, http_port, rpc_port, data_dir)
        .await
        .unwrap();
    let node = node_doc(&c.client, &c.node_id).await.unwrap();
    assert_eq!(node["Datacenter"], "west");
    assert_eq!(node["Name"], "cli-node");
    assert_eq!(node["HTTPAddr"], format!("127.0.0.1:{http_port}"));
    assert_eq!(
        c.client.status().leader().await.unwrap(),
        format!("127.0.0.1:{rpc_port}")
    );
}

/// Runs `caravan <args>` to its exit; returns whether it succeeded and its output.
async fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut p = Process::spawn(args, &[("NO_COLOR", "1")]).unwrap();
    let status = p
        .wait_exit(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    (status.success(), p.logs())
}

#[tokio::test]
async fn bad_settings_fail_with_a_clear_message() {
    let dir = TempDir::new("caravan-cli").unwrap();
    let port = free_port().to_string();
    let dir_path = dir.path_str();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["agent", "-data-dir", &dir_path], "-servers"),
        (
            vec!["server", "-bind", "127.0.0.1", "-rpc-port", &port],
            "-database-url",
        ),
        (
            vec!["gateway", "-bind", "127.0.0.1", "-http-port", &port],
            "-servers",
        ),
        (
            vec![
                "agent",
                "-dev",
                "-http-port",
                &port,
                "-data-dir",
                &dir_path,
                "-min-heartbeat-ttl",
                "soon",
            ],
            "min-heartbeat-ttl",
        ),
        (vec!["agent", "-dev", "-http-port", "notaport"], "http-port"),
        (vec!["agent", "-dev", "-bind", "nowhere"], "bind"),
    ];
    for (args, needle) in cases {
        let (ok, logs) = run_to_exit(&args).await;
        assert!(!ok, "{args:?} succeeded:\n{logs}");
        assert!(
            logs.contains(needle),
            "{args:?}: the output does not name {needle:?}:\n{logs}"
        );
    }
}
