//! `caravan alloc exec` (CLI.md §19), black-box: the built binary against a dev agent, as a
//! user runs it — its stdout, stderr and exit code; stdin piped in; allocation ID prefixes and
//! `-job`; Nomad's error lines for bad input; and terminal sessions under `script` (util-linux),
//! which gives the CLI a real terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use caravan_tests::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

/// A raw_exec task that idles.
fn idle_task(name: &str) -> Value {
    json!({
        "Name": name,
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", "exec sleep 100000"]},
        "Resources": {"CPU": 20, "MemoryMB": 16}
    })
}

/// Registers a service job of one group `g` with `tasks`; returns its allocation's ID once it
/// runs.
async fn run_job(c: &DevCluster, job_id: &str, tasks: Vec<Value>) -> String {
    let job = json!({
        "ID": job_id,
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "g", "Tasks": tasks}]
    });
    register_job(&c.client, &job).await.unwrap();
    running_alloc_id(&c.client, job_id, WAIT).await.unwrap()
}

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program args` with `stdin` written to its stdin (then closed) and no `NOMAD_*`
/// settings but `env`; waits for it to exit.
async fn run_program(program: &str, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in [
        "NOMAD_ADDR",
        "NOMAD_TOKEN",
        "NOMAD_REGION",
        "NOMAD_NAMESPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Written while the output is read: a command echoing a large input must not stall.
    let writer = tokio::spawn(async move {
        let _ = input.write_all(&data).await;
    });
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not exit within {WAIT:?}"))
        .unwrap();
    writer.await.unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn caravan_path() -> String {
    caravan_test_utils::caravan_bin().display().to_string()
}

/// `caravan alloc exec -address <the cluster> <args>`.
async fn exec(c: &DevCluster, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["alloc", "exec", "-address", &c.url];
    all.extend_from_slice(args);
    run_program(&caravan_path(), &all, stdin, &[]).await
}

fn assert_fails(run: &Run, stderr: &str) {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr, stderr, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
}

#[tokio::test]
async fn runs_commands_with_their_output_input_and_exit_code() {
    let c = DevCluster::start().await.unwrap();
    let id = run_job(&c, "execs", vec![idle_task("t")]).await;

    // Stdout and stderr go to ours, the exit code is ours; no stdin needed.
    let sh = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"];
    let mut args = vec![id.as_str()];
    args.extend(sh);
    let r = exec(&c, &args, b"").await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (Some(3), "out\n", "err\n")
    );

    // Stdin goes through, and its end closes the command's.
    let r = exec(&c, &[&id, "cat"], b"hello\nworld\n").await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (Some(0), "hello\nworld\n", "")
    );

    // A large input through cat: input and output flow at once.
    let big: Vec<u8> = (0..400_000u32)
        .map(|i| b"0123456789abcdef\n"[i as usize % 17])
        .collect();
    let r = exec(&c, &[&id, "cat"], &big).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.as_bytes() == big.as_slice(),
        "{} bytes back",
        r.stdout.len()
    );

    // -i=false: the command's stdin is closed at once.
    let r = exec(&c, &["-i=false", &id, "cat"], b"ignored").await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), ""), "{r:?}");

    // A prefix of the ID; an odd-length one is cut to whole bytes, as Nomad does.
    let r = exec(
        &c,
        &[&id[..8], "/bin/sh", "-c", "echo $NOMAD_ALLOC_ID"],
        b"",
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (Some(0), id.as_str()), "{r:?}");
    let r = exec(&c, &[&id[..5], "true"], b"").await;
    assert_eq!(r.code, Some(0), "{r:?}");

    // Everything after the allocation is the command's, flags included.
    let r = exec(
        &c,
        &[
            &id,
            "/bin/sh",
            "-c",
            r#"echo "$@""#,
            "sh",
            "-task",
            "x",
            "-la",
            "--",
            "-t",
        ],
        b"",
    )
    .await;
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "-task x -la -- -t\n"),
        "{r:?}"
    );

    // -job: a running allocation of the job; -task names the task; NOMAD_ADDR is the address.
    let r = run_program(
        &caravan_path(),
        &[
            "alloc",
            "exec",
            "-job",
            "-task=t",
            "execs",
            "/bin/sh",
            "-c",
            "echo $NOMAD_JOB_NAME $NOMAD_TASK_NAME",
        ],
        b"",
        &[("NOMAD_ADDR", &c.url)],
    )
    .await;
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "execs t\n"), "{r:?}");

    // The remote command's signal death is 128 + the signal, as a shell says.
    let r = exec(&c, &[&id, "/bin/sh", "-c", "kill -TERM $$"], b"").await;
    assert_eq!(r.code, Some(143), "{r:?}");
}

#[tokio::test]
async fn bad_inputs_fail_with_nomads_messages() {
    let c = DevCluster::start().await.unwrap();
    let id = run_job(&c, "execs", vec![idle_task("t")]).await;
    let two = run_job(&c, "two", vec![idle_task("a"), idle_task("b")]).await;
    let hint = "For additional help try 'caravan alloc exec -help'\n";

    let r = exec(&c, &[], b"").await;
    assert_fails(&r, &format!("An allocation ID is required\n{hint}"));
    let r = exec(&c, &["-job"], b"").await;
    assert_fails(&r, &format!("A job ID is required\n{hint}"));
    let r = exec(&c, &[&id], b"").await;
    assert_fails(&r, &format!("A command is required\n{hint}"));
    let r = exec(&c, &["a", "ls"], b"").await;
    assert_fails(&r, "Alloc ID must contain at least two characters\n");
    let r = exec(&c, &["-i=false", "-t", &id, "ls"], b"").await;
    assert_fails(&r, "-i must be enabled if running with tty\n");
    let r = exec(&c, &["-e", "ab", &id, "ls"], b"").await;
    assert_fails(&r, "-e requires 'none' or a single character\n");

    let unknown = "0ddba11d-0000-4000-8000-000000000000";
    let r = exec(&c, &[unknown, "ls"], b"").await;
    assert_fails(
        &r,
        &format!("No allocation(s) with prefix or id \"{unknown}\" found\n"),
    );

    // An empty prefix matches both allocations: Nomad's table of them.
    let r = exec(&c, &["", "ls"], b"").await;
    assert_eq!(r.code, Some(1), "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines[0], "Prefix matched multiple allocations", "{r:?}");
    assert_eq!(lines[1], "");
    let header: Vec<&str> = lines[2]
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "Node ID",
            "Task Group",
            "Version",
            "Desired",
            "Status",
            "Created",
            "Modified"
        ]
    );
    assert_eq!(lines.len(), 5, "{r:?}");
    for short in [&id[..8], &two[..8]] {
        assert!(
            lines[3..].iter().any(|l| l.starts_with(short)),
            "{short}: {r:?}"
        );
    }

    let r = exec(&c, &["-task", "nope", &id, "ls"], b"").await;
    assert_fails(&r, "Could not find task named: nope, found:\nt\n");
    let r = exec(&c, &[&two, "ls"], b"").await;
    assert_fails(
        &r,
        &format!(
            "Allocation \"{}\" is running the following tasks:\n  * a\n  * b\n\nPlease specify the task.\n",
            &two[..8]
        ),
    );
    let r = exec(&c, &["-job", "nosuchjob", "ls"], b"").await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.starts_with("Error fetching allocations: "),
        "{r:?}"
    );
    assert!(r.stderr.contains("\"nosuchjob\""), "{r:?}");

    // The gateway refuses the session: its status and message, as Nomad shows them.
    let r = exec(&c, &[&id, "/no/such/program"], b"").await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .starts_with("failed to exec into task: Unexpected response code: "),
        "{r:?}"
    );
    assert!(r.stderr.contains("/no/such/program"), "{r:?}");

    // -t without a terminal.
    let r = exec(&c, &["-t", &id, "ls"], b"").await;
    assert_fails(&r, "failed to exec into task: not a terminal\n");

    // Nobody at the address.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let r = run_program(
        &caravan_path(),
        &["alloc", "exec", "-address", &nobody, &id, "ls"],
        b"",
        &[],
    )
    .await;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.starts_with("Error querying allocation: "), "{r:?}");
}

/// Runs `script` (util-linux): `shell_command` gets a terminal of its own; what is written to
/// `input` reaches that terminal, its output comes back on `script`'s stdout.
fn script(shell_command: &str) -> tokio::process::Child {
    Command::new("script")
        .args(["-q", "-e", "-c", shell_command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("NOMAD_ADDR")
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) runs")
}

/// Reads `child`'s stdout until it contains `needle` (or it ends); returns all read so far.
async fn read_until(child: &mut tokio::process::Child, seen: &mut Vec<u8>, needle: &str) -> String {
    let stdout = child.stdout.as_mut().unwrap();
    let mut buf = [0u8; 4096];
    let found = tokio::time::timeout(WAIT, async {
        while !String::from_utf8_lossy(seen).contains(needle) {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    let text = String::from_utf8_lossy(seen).into_owned();
    assert!(found, "no {needle:?} in the terminal: {text:?}");
    text
}

#[tokio::test]
async fn terminal_sessions() {
    let c = DevCluster::start().await.unwrap();
    let id = run_job(&c, "execs", vec![idle_task("t")]).await;
    let caravan = caravan_path();

    // A remote terminal of the local terminal's size, resized with it (SIGWINCH); typed input
    // reaches it; the exit code comes back and the local terminal's mode is restored. The
    // command starts before the first size arrives, so it waits for each size. The remote
    // task runs on this machine: it tells the local side when to resize with a file.
    let dir = TempDir::new("caravan-exec-tty").unwrap();
    let flag = dir.path().join("seen-first-size");
    let flag = flag.display();
    let remote = format!(
        "test -t 0 && echo remote-tty; \
         until [ \"$(stty size)\" = \"33 101\" ]; do sleep 0.1; done; echo size-33x101; touch {flag}; \
         until [ \"$(stty size)\" = \"40 120\" ]; do sleep 0.1; done; echo size-40x120; \
         read line; echo \"got $line\"; exit 4"
    );
    let session = format!(
        "stty rows 33 cols 101; before=$(stty -g); \
         (until [ -e {flag} ]; do sleep 0.1; done; stty rows 40 cols 120 < /dev/tty) & \
         '{caravan}' alloc exec -address {} {id} /bin/sh -c '{remote}'; \
         code=$?; wait; [ \"$(stty -g)\" = \"$before\" ] && echo mode-restored; exit $code",
        c.url
    );
    let mut child = script(&session);
    let mut seen = Vec::new();
    read_until(&mut child, &mut seen, "size-40x120").await;
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello\r")
        .await
        .unwrap();
    let text = read_until(&mut child, &mut seen, "mode-restored").await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(4), "{text:?}");
    assert!(text.contains("remote-tty"), "{text:?}");
    assert!(text.contains("got hello"), "{text:?}");

    // `~.` at the start of a line closes the connection (and the remote command goes).
    let session = format!(
        "'{caravan}' alloc exec -address {} {id} /bin/sh -c 'echo ready; exec sleep 1000'; \
         echo exit=$?",
        c.url
    );
    let mut child = script(&session);
    let mut seen = Vec::new();
    read_until(&mut child, &mut seen, "ready").await;
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"~.")
        .await
        .unwrap();
    let text = read_until(&mut child, &mut seen, "exit=").await;
    assert!(text.contains("Connection closed"), "{text:?}");
    assert!(text.contains("exit=1"), "{text:?}");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{text:?}");
}
