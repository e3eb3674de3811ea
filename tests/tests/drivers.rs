//! The driver contract against real processes: start, wait, signal, kill and exec sessions
//! (the hook the exec endpoint builds on), through the `caravan executor` of the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use caravan_drivers::{Drivers, ExecRequest, LogSettings, TaskConfig, TaskHandle, TaskResources};
use caravan_test_utils::caravan_bin;
use caravan_tests::TempDir;
use serde_json::json;

fn config(dir: &TempDir, name: &str, script: &str) -> TaskConfig {
    let alloc_dir = dir.path().join("alloc-1");
    let task_dir = alloc_dir.join(name);
    for d in ["alloc/logs", "alloc/data", "alloc/tmp"] {
        std::fs::create_dir_all(alloc_dir.join(d)).unwrap();
    }
    for d in ["local", "secrets", "tmp"] {
        std::fs::create_dir_all(task_dir.join(d)).unwrap();
    }
    TaskConfig {
        alloc_id: format!("{:08x}-0000-4000-8000-000000000000", std::process::id()),
        task_name: name.to_owned(),
        config: json!({"command": "/bin/sh", "args": ["-c", script]})
            .as_object()
            .cloned()
            .unwrap(),
        env: BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("GREETING".to_owned(), "hello".to_owned()),
        ]),
        alloc_dir: alloc_dir.clone(),
        task_dir,
        logs: LogSettings {
            dir: alloc_dir.join("alloc/logs"),
            max_files: 2,
            max_file_bytes: 1 << 20,
            disabled: false,
        },
        run_dir: dir.path().join("run").join(name),
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 64,
            memory_max_mb: 0,
        },
        user: String::new(),
    }
}

fn drivers() -> Drivers {
    Drivers::builtin(caravan_bin(), true)
}

fn exec_output(handle: &Arc<dyn TaskHandle>, command: &[&str]) -> String {
    let mut p = handle
        .exec(ExecRequest {
            command: command.iter().map(|s| s.to_string()).collect(),
            tty: false,
        })
        .unwrap();
    let mut out = String::new();
    p.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(p.child.wait().unwrap().success());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_exec_starts_signals_and_execs_in_the_task_directory() {
    let dir = TempDir::new("drivers").unwrap();
    let d = drivers().get("raw_exec").unwrap();
    let cfg = config(
        &dir,
        "t",
        "trap 'echo usr1' USR1; echo $GREETING; while :; do sleep 0.05; done",
    );
    assert!(d.validate(&cfg.config).is_ok());
    let handle = d.start(cfg.clone()).await.unwrap();
    let pid = handle.pid().unwrap();
    assert!(pid > 0);
    let log = cfg.logs.dir.join("t.stdout.0");
    // The trap is set once the greeting is out: a signal before that would kill the shell.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("hello")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no greeting in the log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.signal(10).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("usr1")
    {
        assert!(std::time::Instant::now() < deadline, "no usr1 in the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .starts_with("hello\n")
    );
    // An exec session runs in the task directory with the task's environment.
    let out = exec_output(&handle, &["/bin/sh", "-c", "pwd; echo $GREETING"]);
    assert_eq!(out, format!("{}\nhello\n", cfg.task_dir.display()));
    // The persisted handle re-attaches.
    let again = d.recover(&handle.state()).unwrap();
    assert_eq!(again.pid(), Some(pid));
    handle.kill().unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), again.wait())
        .await
        .unwrap();
    assert_eq!(exit.signal, 9);
    // The first handle learns of the death on its own: wait for it before signalling (a
    // signal to a process not yet reaped still succeeds).
    tokio::time::timeout(Duration::from_secs(10), handle.wait())
        .await
        .unwrap();
    assert!(handle.signal(10).is_err(), "a dead task refuses signals");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sessions_enter_an_isolated_task() {
    let d = drivers().get("exec").unwrap();
    if !d.fingerprint().detected {
        eprintln!("skipping: {}", d.fingerprint().health_description);
        return;
    }
    let dir = TempDir::new("drivers").unwrap();
    let cfg = config(
        &dir,
        "iso",
        "echo marker > /local/m; while :; do sleep 0.05; done",
    );
    let handle = d.start(cfg.clone()).await.unwrap();
    let marker = cfg.task_dir.join("local/m");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the task did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = exec_output(
        &handle,
        &[
            "/bin/sh",
            "-c",
            "cat /local/m; echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "marker", "{out}");
    assert_ne!(lines[1], "pid=1", "{out}");
    assert_eq!(lines[2], "iso", "{out}");
    assert!(
        lines[3].parse::<u32>().unwrap() < 10,
        "the task's pid namespace: {out}"
    );
    // A terminal session: the command's stdout is the terminal.
    let mut p = handle
        .exec(ExecRequest {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "test -t 1 && echo tty".into(),
            ],
            tty: true,
        })
        .unwrap();
    let mut master = std::fs::File::from(p.pty_master.take().unwrap());
    assert!(p.child.wait().unwrap().success());
    let mut buf = [0u8; 64];
    let n = master.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("tty"));
    handle.kill().unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), handle.wait())
        .await
        .unwrap();
    assert_eq!(exit.signal, 9);
    handle.destroy();
}
