//! Real isolation: these tests need root (and run for real as root); elsewhere they print why
//! they skip.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use caravan_isolation::{
    BindMount, CgroupSpec, EnterOptions, IsolationError, IsolationSpec, TaskUser, cgroup_destroy,
    cgroup_pids, cgroup_stats, enter_and_spawn, enter_and_spawn_with, open_pty, open_pty_in, probe,
    set_window_size, spawn_isolated, system_binds, window_size,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MARKER: &str = "caravan-root-marker";
const MEMORY: u64 = 64 << 20;

fn cannot_isolate() -> bool {
    match probe() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipping: this machine cannot isolate tasks: {why}");
            true
        }
    }
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("test-{}-{nanos}-{tag}", std::process::id())
}

/// A task root with a marker file, and an alloc dir bound at /alloc.
struct Task {
    root: tempfile::TempDir,
    alloc: tempfile::TempDir,
    cgroup: String,
}

impl Task {
    fn new(tag: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        std::fs::write(root.path().join(MARKER), "here")?;
        Ok(Self {
            root,
            alloc: tempfile::tempdir()?,
            cgroup: unique(tag),
        })
    }

    fn spec(&self) -> IsolationSpec {
        IsolationSpec {
            root: self.root.path().to_path_buf(),
            binds: vec![BindMount {
                source: self.alloc.path().to_path_buf(),
                target: PathBuf::from("/alloc"),
                read_only: false,
            }],
            hostname: "caravan-task".into(),
            cgroup: Some(CgroupSpec {
                name: self.cgroup.clone(),
                memory_bytes: MEMORY,
                memory_max_bytes: None,
                cpu_shares: 512,
            }),
            user: None,
        }
    }
}

fn shell(script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The task group's directory in the memory hierarchy (the only one on v2).
fn memory_group(name: &str) -> PathBuf {
    if v2() {
        PathBuf::from("/sys/fs/cgroup/caravan").join(name)
    } else {
        PathBuf::from("/sys/fs/cgroup/memory/caravan").join(name)
    }
}

#[test]
fn probe_explains_itself() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match probe() {
        Ok(()) => assert!(root),
        Err(why) if !root => assert_eq!(why, "Driver must run as root"),
        // Root without the capabilities (an unprivileged container): one line saying why.
        Err(why) => {
            assert!(!why.contains('\n'), "{why}");
            eprintln!("root, but cannot isolate: {why}");
        }
    }
}

#[test]
fn isolated_shell_sees_only_its_own_world() -> TestResult {
    if cannot_isolate() {
        return Ok(());
    }
    let task = Task::new("world")?;
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")?;
    let script = "echo $$; hostname; pwd; ls -a / | tr '\\n' ' '; echo; cat /proc/self/cgroup; \
         if touch /usr/caravan-ro-test 2>/dev/null; then echo usr-writable; else echo usr-readonly; fi; \
         if echo other > /proc/sys/kernel/hostname 2>/dev/null; then echo sys-writable; else echo sys-readonly; fi; \
         echo data > /alloc/written && echo alloc-ok; \
         echo x > /dev/null && echo devnull-ok; \
         echo procs $(ls /proc | grep -c '^[0-9]')";
    let mut cmd = shell(script);
    cmd.current_dir("/alloc");
    let output = spawn_isolated(cmd, &task.spec())?.wait_with_output()?;
    let out = lines(&output);
    assert!(
        output.status.success(),
        "{out:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert_eq!(out[0], "1", "the task is its pid namespace's init");
    assert_eq!(out[1], "caravan-task");
    assert_eq!(out[2], "/alloc", "current_dir is inside the root");

    let listed: BTreeSet<&str> = out[3].split_whitespace().collect();
    let mut expected: BTreeSet<String> = [".", "..", MARKER, "alloc", "proc", "dev"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for bind in system_binds() {
        if let Some(first) = bind.target.iter().nth(1) {
            expected.insert(first.to_string_lossy().into_owned());
        }
    }
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(listed, expected, "/ is the task root plus the binds only");
    assert!(listed.contains("usr") && listed.contains("etc"));

    assert!(
        out.iter()
            .any(|l| l.contains(&format!("/caravan/{}", task.cgroup))),
        "in its cgroup before exec: {out:?}"
    );
    assert!(out.contains(&"usr-readonly".to_owned()), "{out:?}");
    assert!(out.contains(&"sys-readonly".to_owned()), "{out:?}");
    assert!(out.contains(&"alloc-ok".to_owned()), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(task.alloc.path().join("written"))?,
        "data\n"
    );
    assert!(out.contains(&"devnull-ok".to_owned()), "{out:?}");
    let procs: u32 = out
        .iter()
        .find_map(|l| l.strip_prefix("procs "))
        .ok_or("no process count")?
        .parse()?;
    assert!(procs < 10, "only the task's processes in /proc: {procs}");

    let limit_file = if v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let limit = std::fs::read_to_string(memory_group(&task.cgroup).join(limit_file))?;
    assert_eq!(limit.trim(), MEMORY.to_string());

    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo")?,
        mounts_before,
        "nothing leaked into the host's mount table"
    );
    cgroup_destroy(&task.cgroup)?;
    assert!(!memory_group(&task.cgroup).exists());
    cgroup_destroy(&task.cgroup)?; // a missing group is fine
    Ok(())
}

#[test]
fn every_spawn_gets_its_own_pid_namespace() -> TestResult {
    if cannot_isolate() {
        return Ok(());
    }
    let task = Task::new("again")?;
    let mut spec = task.spec();
    spec.cgroup = None;
    for _ in 0..2 {
        let output = spawn_isolated(shell("echo $$"), &spec)?.wait_with_output()?;
        assert_eq!(lines(&output), ["1"]);
    }
    // The calling thread's children are back in its own namespace.
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/pid_for_children")?,
        std::fs::read_link("/proc/self/ns/pid")?
    );
    let plain = Command::new("/bin/sh").args(["-c", "echo $$"]).output()?;
    assert_ne!(String::from_utf8_lossy(&plain.stdout).trim(), "1");
    Ok(())
}

#[test]
fn exec_sessions_enter_the_running_task() -> TestResult {
    if cannot_isolate() {
        return Ok(());
    }
    let task = Task::new("enter")?;
    let mut sleeper = Command::new("/bin/sleep");
    sleeper.arg("60").stdin(Stdio::null());
    let mut child = spawn_isolated(sleeper, &task.spec())?;
    let pid = i32::try_from(child.id())?;

    assert!(cgroup_pids(&task.cgroup)?.contains(&pid));
    let stats = cgroup_stats(&task.cgroup)?;
    assert!(stats.memory.usage > 0, "{stats:?}");
    assert_eq!(stats.memory.measured.len(), if v2() { 4 } else { 7 });
    assert!(stats.cpu.measured.contains(&"Throttled Time"));

    let script = "echo $$; hostname; pwd; ls /; echo procs $(ls /proc | grep -c '^[0-9]'); \
                  cat /proc/self/cgroup";
    let mut cmd = shell(script);
    cmd.current_dir("/alloc");
    let output = enter_and_spawn(pid, Some(&task.cgroup), cmd)?.wait_with_output()?;
    let out = lines(&output);
    assert!(
        output.status.success(),
        "{out:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(
        out[0], "1",
        "joins the task's pid namespace, not as its init"
    );
    assert!(out[0].parse::<u32>()? < 10, "a pid of the task's namespace");
    assert_eq!(out[1], "caravan-task");
    assert_eq!(out[2], "/alloc");
    assert!(
        out.contains(&MARKER.to_owned()),
        "sees the task's root: {out:?}"
    );
    assert!(!out.contains(&"work".to_owned()));
    let procs: u32 = out
        .iter()
        .find_map(|l| l.strip_prefix("procs "))
        .ok_or("no process count")?
        .parse()?;
    assert!(procs < 10, "the task's /proc: {procs}");
    assert!(
        out.iter()
            .any(|l| l.contains(&format!("/caravan/{}", task.cgroup)))
    );

    // On a terminal of the task's own devpts, with its window size, as another user.
    let (master, slave) = open_pty_in(pid)?;
    set_window_size(&master, 33, 101)?;
    let mut cmd = shell("test -t 0 && echo isatty; stty size; id -u; tty");
    cmd.stdin(Stdio::null());
    let options = EnterOptions {
        user: Some(TaskUser {
            uid: 65534,
            gid: 65534,
            groups: Vec::new(),
        }),
        tty: Some(slave),
    };
    let mut session = enter_and_spawn_with(pid, Some(&task.cgroup), cmd, options)?;
    let status = session.wait()?;
    assert!(status.success(), "{status}");
    let mut master = std::fs::File::from(master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    // Reading the master ends with EIO once no slave is open any more.
    while let Ok(n @ 1..) = master.read(&mut buf) {
        seen.extend_from_slice(&buf[..n]);
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("isatty"), "{seen:?}");
    assert!(seen.contains("33 101"), "{seen:?}");
    assert!(seen.contains("65534"), "{seen:?}");
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");

    child.kill()?;
    child.wait()?;
    cgroup_destroy(&task.cgroup)?;
    assert!(cgroup_pids(&task.cgroup).is_err_and(|e| e.is_not_found()));
    Ok(())
}

#[test]
fn destroy_kills_everything_in_the_group() -> TestResult {
    if cannot_isolate() {
        return Ok(());
    }
    let task = Task::new("kill")?;
    let cmd = shell("sleep 100 & sleep 100 & setsid sleep 100 & wait");
    let mut child = spawn_isolated(cmd, &task.spec())?;
    // Wait until the shell's children are in the group.
    for _ in 0..200 {
        if cgroup_pids(&task.cgroup)?.len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(cgroup_pids(&task.cgroup)?.len() >= 4);
    let waiter = std::thread::spawn(move || child.wait());
    cgroup_destroy(&task.cgroup)?;
    let status = waiter.join().map_err(|_| "waiter panicked")??;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!memory_group(&task.cgroup).exists());
    Ok(())
}

#[test]
fn failures_name_their_cause() -> TestResult {
    if cannot_isolate() {
        return Ok(());
    }
    let task = Task::new("fail")?;

    let missing = Command::new("/no/such/program");
    match spawn_isolated(missing, &task.spec()) {
        Err(IsolationError::Exec { program, .. }) => assert_eq!(program, "/no/such/program"),
        other => panic!("expected an exec error, got {other:?}"),
    }
    assert!(
        !memory_group(&task.cgroup).exists(),
        "a failed spawn removes its group"
    );

    let mut spec = task.spec();
    spec.binds.push(BindMount {
        source: PathBuf::from("/no/such/dir"),
        target: PathBuf::from("/data"),
        read_only: false,
    });
    let err = spawn_isolated(shell("true"), &spec)
        .err()
        .ok_or("spawned")?;
    assert!(err.to_string().contains("/no/such/dir"), "{err}");

    let mut as_user = shell("true");
    std::os::unix::process::CommandExt::uid(&mut as_user, 65534);
    match spawn_isolated(as_user, &task.spec()) {
        Err(IsolationError::Setup { step, .. }) => assert!(step.contains("uid/gid"), "{step}"),
        other => panic!("expected a setup error, got {other:?}"),
    }

    let mut spec = task.spec();
    spec.cgroup = None;
    spec.user = Some(TaskUser {
        uid: 65534,
        gid: 65534,
        groups: Vec::new(),
    });
    let output = spawn_isolated(shell("id -u; id -g"), &spec)?.wait_with_output()?;
    assert_eq!(lines(&output), ["65534", "65534"]);
    Ok(())
}

/// The CLI's side of a terminal (`caravan alloc exec -t`): no root needed.
#[test]
fn window_size_reads_the_terminal_size() -> TestResult {
    let (master, slave) = open_pty()?;
    set_window_size(&master, 33, 101)?;
    assert_eq!(window_size(&slave)?, (33, 101));
    assert_eq!(window_size(&master)?, (33, 101));
    let not_a_terminal = std::fs::File::open("/dev/null")?;
    assert!(window_size(&not_a_terminal).is_err());
    Ok(())
}
