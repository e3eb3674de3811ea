//! Building and running the child's setup: isolated spawns, entering a running task, probing.
//!
//! Everything that can fail with a useful message (paths, mount points, cgroup files) happens
//! here in the parent, before fork; the child only replays the resulting [`Plan`].

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use nix::sched::CloneFlags;

use crate::child::{self, EXEC, NOT_STARTED, Op, Plan, Tracker};
use crate::error::IsolationError;
use crate::{BindMount, EnterOptions, IsolationSpec, TaskUser, cgroup};

/// Host directories a task needs to run ordinary programs, bound read-only at the same paths.
/// `/run/systemd/resolve` because `/etc/resolv.conf` often links into it.
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/sbin",
    "/usr",
    "/run/systemd/resolve",
];

/// Device nodes of the task's minimal /dev: (name, major, minor).
const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Kernel knobs under /proc kept read-only (as runc does), so a task running as root cannot
/// retune or crash the host through its own /proc.
const PROC_READ_ONLY: &[&str] = &["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// Options of the /dev tmpfs; its size is capped as tmpfs pages are the task's memory.
const DEV_TMPFS: &str = "mode=755,size=65536k";
/// Options of the task's devpts: a new instance, terminals for the owner's group only.
const DEVPTS: &str = "newinstance,ptmxmode=0666,mode=0620";
/// Options of the /dev/shm tmpfs (world-writable with the sticky bit, like the host's).
const SHM_TMPFS: &str = "mode=1777,size=65536k";

pub(crate) fn system_binds() -> Vec<BindMount> {
    SYSTEM_DIRS
        .iter()
        .map(Path::new)
        .filter(|dir| dir.is_dir())
        .map(|dir| BindMount {
            source: dir.to_path_buf(),
            target: dir.to_path_buf(),
            read_only: true,
        })
        .collect()
}

fn cstring(bytes: impl AsRef<[u8]>) -> Result<CString, IsolationError> {
    let bytes = bytes.as_ref();
    CString::new(bytes).map_err(|_| {
        IsolationError::Invalid(format!(
            "{:?} contains a NUL byte",
            String::from_utf8_lossy(bytes)
        ))
    })
}

fn path_c(path: &Path) -> Result<CString, IsolationError> {
    cstring(path.as_os_str().as_bytes())
}

/// `target` (absolute, as seen inside the root) relative to the root; `..` is refused so a
/// target cannot name a host path outside the root.
fn relative_target(target: &Path) -> Result<PathBuf, IsolationError> {
    if !target.is_absolute() {
        return Err(IsolationError::Invalid(format!(
            "bind target {} must be absolute",
            target.display()
        )));
    }
    let mut rel = PathBuf::new();
    for component in target.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => rel.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(IsolationError::Invalid(format!(
                    "bind target {} must not contain '..'",
                    target.display()
                )));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(IsolationError::Invalid(
            "a bind target cannot be the root itself".into(),
        ));
    }
    Ok(rel)
}

/// Creates the mount point `root/rel` on the host (a directory, or an empty file to bind a
/// file onto), component by component, refusing symlinks: the task owns its root and could
/// otherwise aim the mkdir, and then the mount, at any host path.
fn mount_point(root: &Path, rel: &Path, file: bool) -> Result<PathBuf, IsolationError> {
    let mut path = root.to_path_buf();
    let parts: Vec<Component<'_>> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let want_file = file && i + 1 == parts.len();
        let invalid = |why: &str| {
            Err(IsolationError::Invalid(format!(
                "mount point {} {why}",
                path.display()
            )))
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return invalid("is a symlink inside the task root");
            }
            // Already there, and of the right kind.
            Ok(meta) if meta.is_dir() != want_file => {}
            Ok(_) if want_file => return invalid("is a directory, the bind source a file"),
            Ok(_) => return invalid("is not a directory"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let created = if want_file {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map(drop)
                } else {
                    fs::create_dir(&path)
                };
                created.map_err(|e| {
                    IsolationError::io(format!("creating the mount point {}", path.display()), e)
                })?;
            }
            Err(e) => {
                return Err(IsolationError::io(format!("{}", path.display()), e));
            }
        }
    }
    Ok(path)
}

/// Per-mount flags of `source` that a read-only bind remount must repeat: a remount replaces
/// them all, and would otherwise silently drop nosuid/nodev/noexec of the host mount.
fn inherited_flags(source: &Path) -> Result<libc::c_ulong, IsolationError> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let stat = statvfs(source)
        .map_err(|e| IsolationError::io(format!("statvfs {}", source.display()), e.into()))?;
    let pairs = [
        (FsFlags::ST_NOSUID, libc::MS_NOSUID),
        (FsFlags::ST_NODEV, libc::MS_NODEV),
        (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
        (FsFlags::ST_NOATIME, libc::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, libc::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| stat.flags().contains(*st))
        .fold(0, |acc, (_, ms)| acc | ms))
}

fn mount_op(
    source: Option<&CString>,
    target: &CString,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<Op, IsolationError> {
    Ok(Op::Mount {
        source: source.cloned(),
        target: target.clone(),
        fstype: fstype.map(cstring).transpose()?,
        flags,
        data: data.map(cstring).transpose()?,
    })
}

/// The working directory the command asked for, to be entered inside the root. std applies
/// `current_dir` *before* pre_exec hooks, i.e. on the host, so it is replaced by "/" (harmless
/// there) and replayed by the plan after the root changes.
fn take_current_dir(cmd: &mut Command) -> Result<CString, IsolationError> {
    let dir = cmd
        .get_current_dir()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    cmd.current_dir("/");
    path_c(&dir)
}

fn push_user(plan: &mut Plan, user: Option<&TaskUser>) {
    if let Some(user) = user {
        let mut groups = vec![user.gid];
        groups.extend(user.groups.iter().filter(|g| **g != user.gid));
        plan.push(
            Op::SetUser {
                uid: user.uid,
                gid: user.gid,
                groups,
            },
            format!("switching to uid {} gid {}", user.uid, user.gid),
        );
    }
}

fn push_chdir(plan: &mut Plan, dir: CString) {
    let step = format!(
        "changing to the working directory {}",
        dir.to_string_lossy()
    );
    plan.push(Op::Chdir(dir), step);
}

fn push_require_root(plan: &mut Plan) {
    plan.push(
        Op::RequireRoot,
        "checking the child still runs as root (a Command must not carry uid/gid: std applies \
         them before isolation; use the spec's user instead)",
    );
}

fn push_join_cgroup(plan: &mut Plan, group: &cgroup::Group) -> Result<(), IsolationError> {
    for (fd, dir) in group.open_procs()? {
        plan.push(
            Op::JoinCgroup(fd),
            format!("joining cgroup {}", dir.display()),
        );
    }
    Ok(())
}

/// The whole setup of an isolated task, in order.
fn isolation_plan(
    cmd: &mut Command,
    spec: &IsolationSpec,
    group: Option<&cgroup::Group>,
) -> Result<Plan, IsolationError> {
    if !spec.root.is_absolute() {
        return Err(IsolationError::Invalid(format!(
            "root {} must be absolute",
            spec.root.display()
        )));
    }
    // Canonical: mount points are then checked for symlinks only below it, and the mounts
    // and pivot_root get the real path.
    let root = fs::canonicalize(&spec.root)
        .map_err(|e| IsolationError::io(format!("task root {}", spec.root.display()), e))?;
    if !root.is_dir() {
        return Err(IsolationError::Invalid(format!(
            "root {} is not a directory",
            root.display()
        )));
    }
    if spec.hostname.len() > 64 {
        return Err(IsolationError::Invalid(format!(
            "hostname {:?} is longer than 64 bytes",
            spec.hostname
        )));
    }
    let root_c = path_c(&root)?;
    let cwd = take_current_dir(cmd)?;

    let mut plan = Plan::default();
    push_require_root(&mut plan);
    if let Some(group) = group {
        push_join_cgroup(&mut plan, group)?;
    }
    plan.push(
        Op::Unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS),
        "unsharing the mount, ipc and uts namespaces",
    );
    // First of all mounts: nothing mounted below may propagate back to the host.
    plan.push(
        mount_op(
            None,
            &path_c(Path::new("/"))?,
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?,
        "making mount propagation private",
    );
    // pivot_root needs the new root to be a mount point.
    plan.push(
        mount_op(
            Some(&root_c),
            &root_c,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?,
        format!("bind-mounting the root {} onto itself", root.display()),
    );

    for bind in system_binds().iter().chain(&spec.binds) {
        let source = fs::canonicalize(&bind.source)
            .map_err(|e| IsolationError::io(format!("bind source {}", bind.source.display()), e))?;
        let is_dir = source.is_dir();
        let point = path_c(&mount_point(
            &root,
            &relative_target(&bind.target)?,
            !is_dir,
        )?)?;
        let source_c = path_c(&source)?;
        plan.push(
            mount_op(
                Some(&source_c),
                &point,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )?,
            format!(
                "bind-mounting {} at {}",
                bind.source.display(),
                bind.target.display()
            ),
        );
        if bind.read_only {
            let flags =
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | inherited_flags(&source)?;
            plan.push(
                mount_op(None, &point, None, flags, None)?,
                format!("making {} read-only", bind.target.display()),
            );
        }
    }

    // A proc mounted by the child, which already is pid 1 of the new pid namespace, shows
    // that namespace only.
    let proc_dir = path_c(&mount_point(&root, Path::new("proc"), false)?)?;
    plan.push(
        mount_op(
            Some(&cstring("proc")?),
            &proc_dir,
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )?,
        "mounting /proc",
    );
    for name in PROC_READ_ONLY {
        // The task's proc shows the same kernel's entries as ours.
        if !Path::new("/proc").join(name).exists() {
            continue;
        }
        let path = path_c(&root.join("proc").join(name))?;
        plan.push(
            mount_op(Some(&path), &path, None, libc::MS_BIND | libc::MS_REC, None)?,
            format!("binding /proc/{name} onto itself"),
        );
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        plan.push(
            mount_op(None, &path, None, flags, None)?,
            format!("making /proc/{name} read-only"),
        );
    }

    let dev = mount_point(&root, Path::new("dev"), false)?;
    plan.push(
        mount_op(
            Some(&cstring("tmpfs")?),
            &path_c(&dev)?,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(DEV_TMPFS),
        )?,
        "mounting a tmpfs at /dev",
    );
    for (name, major, minor) in DEVICES {
        plan.push(
            Op::Device {
                path: path_c(&dev.join(name))?,
                host: path_c(&Path::new("/dev").join(name))?,
                dev: libc::makedev(*major, *minor),
            },
            format!("creating /dev/{name}"),
        );
    }
    let shm = path_c(&dev.join("shm"))?;
    plan.push(
        Op::Mkdir {
            path: shm.clone(),
            mode: 0o1777,
        },
        "creating /dev/shm",
    );
    plan.push(
        mount_op(
            Some(&cstring("tmpfs")?),
            &shm,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(SHM_TMPFS),
        )?,
        "mounting a tmpfs at /dev/shm",
    );
    // A devpts of the task's own, so a terminal opened in it (an exec session's) is a real
    // /dev/pts/N inside the task, and the host's terminals stay out of sight.
    let pts = path_c(&dev.join("pts"))?;
    plan.push(
        Op::Mkdir {
            path: pts.clone(),
            mode: 0o755,
        },
        "creating /dev/pts",
    );
    plan.push(
        mount_op(
            Some(&cstring("devpts")?),
            &pts,
            Some("devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(DEVPTS),
        )?,
        "mounting a devpts at /dev/pts",
    );
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        plan.push(
            Op::Symlink {
                target: cstring(target)?,
                link: path_c(&dev.join(link))?,
            },
            format!("linking /dev/{link}"),
        );
    }

    if !spec.hostname.is_empty() {
        plan.push(
            Op::Hostname(cstring(&spec.hostname)?),
            format!("setting the hostname {:?}", spec.hostname),
        );
    }
    plan.push(
        Op::PivotRoot(root_c),
        format!("pivoting the root to {}", root.display()),
    );
    push_user(&mut plan, spec.user.as_ref());
    push_chdir(&mut plan, cwd);
    Ok(plan)
}

/// Switches the calling thread's pid namespace *for children* and switches it back on drop.
/// `unshare(CLONE_NEWPID)`/`setns` change only the calling thread's next children, not the
/// caller, and restoring keeps the caller reusable: a second spawn gets its own namespace, and
/// the caller's later ordinary children stay in its own.
struct PidNsSwitch {
    previous: OwnedFd,
}

impl PidNsSwitch {
    fn current() -> Result<OwnedFd, IsolationError> {
        let path = "/proc/thread-self/ns/pid_for_children";
        File::open(path)
            .map(OwnedFd::from)
            .map_err(|e| IsolationError::io(format!("opening {path}"), e))
    }

    /// Children created next start a new pid namespace (the first one is its init).
    fn unshare() -> Result<Self, IsolationError> {
        let previous = Self::current()?;
        nix::sched::unshare(CloneFlags::CLONE_NEWPID)
            .map_err(|e| IsolationError::io("unsharing the pid namespace", e.into()))?;
        Ok(Self { previous })
    }

    /// Children created next join the pid namespace open at `target`.
    fn enter(target: &OwnedFd, pid: i32) -> Result<Self, IsolationError> {
        let previous = Self::current()?;
        nix::sched::setns(target, CloneFlags::CLONE_NEWPID).map_err(|e| {
            IsolationError::io(format!("entering the pid namespace of {pid}"), e.into())
        })?;
        Ok(Self { previous })
    }
}

impl Drop for PidNsSwitch {
    fn drop(&mut self) {
        // Going back to the namespace we were in is always permitted (it is our own or a
        // descendant of it), so this cannot fail short of the kernel losing the descriptor.
        let _ = nix::sched::setns(&self.previous, CloneFlags::CLONE_NEWPID);
    }
}

/// Spawns `cmd` with `plan` as its pre_exec hook, turning a failure into an error naming the
/// step. The caller holds the pid namespace switch, if any, across this call.
fn spawn_with_plan(cmd: &mut Command, plan: Plan) -> Result<Child, IsolationError> {
    let tracker = Arc::new(
        Tracker::new().map_err(|e| IsolationError::io("mapping the step tracker page", e))?,
    );
    let Plan { ops, steps } = plan;
    let hook_tracker = Arc::clone(&tracker);
    // SAFETY: the hook runs only `child::run`, which is async-signal-safe: it walks prebuilt
    // ops issuing raw syscalls, allocates nothing and takes no lock (see child.rs).
    unsafe {
        cmd.pre_exec(move || child::run(&ops, &hook_tracker));
    }
    cmd.spawn().map_err(|source| match tracker.get() {
        NOT_STARTED => IsolationError::io(
            format!("spawning {:?}", cmd.get_program().to_string_lossy()),
            source,
        ),
        EXEC => IsolationError::Exec {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        },
        step => IsolationError::Setup {
            step: usize::try_from(step - 1)
                .ok()
                .and_then(|i| steps.get(i))
                .cloned()
                .unwrap_or_else(|| format!("step {step}")),
            source,
        },
    })
}

pub(crate) fn spawn_isolated(
    mut cmd: Command,
    spec: &IsolationSpec,
) -> Result<Child, IsolationError> {
    let group = spec.cgroup.as_ref().map(cgroup::create).transpose()?;
    let spawned = isolation_plan(&mut cmd, spec, group.as_ref()).and_then(|plan| {
        let _pid_ns = PidNsSwitch::unshare()?;
        spawn_with_plan(&mut cmd, plan)
    });
    if spawned.is_err()
        && let Some(cgroup) = &spec.cgroup
    {
        // std has reaped the failed child, so the group is empty and goes at once.
        let _ = cgroup::destroy(&cgroup.name);
    }
    spawned
}

pub(crate) fn enter_and_spawn(
    pid: i32,
    cgroup_name: Option<&str>,
    mut cmd: Command,
    options: EnterOptions,
) -> Result<Child, IsolationError> {
    let ns = |name: &str| {
        let path = format!("/proc/{pid}/ns/{name}");
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| IsolationError::io(format!("opening {path}"), e))
    };
    let pid_ns = ns("pid")?;
    let (ipc, uts, mnt) = (ns("ipc")?, ns("uts")?, ns("mnt")?);
    let cwd = take_current_dir(&mut cmd)?;

    let mut plan = Plan::default();
    push_require_root(&mut plan);
    if let Some(name) = cgroup_name {
        push_join_cgroup(&mut plan, &cgroup::existing(name)?)?;
    }
    plan.push(
        Op::SetNs(ipc, libc::CLONE_NEWIPC),
        format!("entering the ipc namespace of {pid}"),
    );
    plan.push(
        Op::SetNs(uts, libc::CLONE_NEWUTS),
        format!("entering the uts namespace of {pid}"),
    );
    // Last: it also moves the root and working directory to the task's root.
    plan.push(
        Op::SetNs(mnt, libc::CLONE_NEWNS),
        format!("entering the mount namespace of {pid}"),
    );
    if let Some(tty) = options.tty {
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| IsolationError::io("duplicating the terminal", e))
        };
        cmd.stdin(dup(&tty)?).stdout(dup(&tty)?).stderr(dup(&tty)?);
        plan.push(
            Op::ControllingTerminal,
            "making the terminal the controlling terminal",
        );
    }
    push_user(&mut plan, options.user.as_ref());
    push_chdir(&mut plan, cwd);

    let _pid_ns = PidNsSwitch::enter(&pid_ns, pid)?;
    spawn_with_plan(&mut cmd, plan)
}

pub(crate) fn probe() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("Driver must run as root".into());
    }
    for ns in ["pid", "mnt", "ipc", "uts"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Err(format!("Kernel lacks {ns} namespaces"));
        }
    }
    let layout = cgroup::Layout::detect().map_err(|e| format!("No usable cgroups: {e}"))?;
    layout
        .ensure_parent()
        .map_err(|e| format!("No usable cgroups: {e}"))?;
    // A trial child that creates the namespaces and mounts privately, then exits before
    // exec: uid 0 inside an unprivileged container passes the checks above but fails here.
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut plan = Plan::default();
    push_require_root(&mut plan);
    plan.push(
        Op::Unshare(libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS),
        "unsharing the mount, ipc and uts namespaces",
    );
    let slash = cstring("/").map_err(|e| e.to_string())?;
    plan.push(
        Op::Mount {
            source: None,
            target: slash,
            fstype: None,
            flags: libc::MS_REC | libc::MS_PRIVATE,
            data: None,
        },
        "making mount propagation private",
    );
    plan.push(Op::Exit, "exiting");
    let trial = PidNsSwitch::unshare().and_then(|_pid_ns| spawn_with_plan(&mut cmd, plan));
    let status = trial
        .and_then(|mut child| {
            child
                .wait()
                .map_err(|e| IsolationError::io("waiting for the trial child", e))
        })
        .map_err(|e| format!("Cannot create namespaces: {e}"))?;
    if !status.success() {
        return Err(format!("Cannot create namespaces: trial child {status}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_inside_the_root() {
        assert_eq!(
            relative_target(Path::new("/alloc/data")).ok(),
            Some(PathBuf::from("alloc/data"))
        );
        for bad in ["alloc", "/", "/alloc/../../etc"] {
            assert!(relative_target(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn symlinked_mount_points_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = fs::canonicalize(dir.path())?;
        std::os::unix::fs::symlink("/etc", root.join("escape"))?;
        assert!(mount_point(&root, Path::new("escape/x"), false).is_err());
        assert!(mount_point(&root, Path::new("escape"), true).is_err());
        assert!(mount_point(&root, Path::new("ok/dir"), false).is_ok());
        assert!(mount_point(&root, Path::new("ok/file"), true)?.is_file());
        Ok(())
    }
}
