//! Linux isolation for tasks of the `exec` driver: pid, mount, ipc and uts namespaces; a root
//! made of the task directory plus bind mounts, entered with pivot_root; cgroup limits (v1 or
//! v2); entering a running task for exec sessions; PTYs. The only crate of the workspace allowed
//! `unsafe`: it runs code between fork and exec.
//!
//! # For callers
//!
//! - Run as root. [`probe`] says whether this machine can isolate tasks at all.
//! - Build the `Command` as usual (program, args, env, stdio, process group), but do **not**
//!   set `uid`/`gid` on it: std applies them before the isolation hook runs, which then lacks
//!   the privileges to mount. Pass [`IsolationSpec::user`] (or [`EnterOptions::user`]) instead.
//! - The command's `current_dir` is a path *inside* the new root.
//! - The spawned process is pid 1 of its namespace: the kernel delivers to it only signals it
//!   installed a handler for (SIGKILL always works), and when it exits every other process of
//!   the task dies with it.
//! - Spawning from a multi-threaded process is safe (the hook is async-signal-safe and the pid
//!   namespace switch is per thread), but the spawn must not be interleaved with other forks
//!   *on the same thread* — trivially true for a synchronous caller.

mod cgroup;
mod child;
mod error;
mod pty;
mod spawn;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command};

pub use error::IsolationError;

/// A bind mount into the task's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (file or directory; symlinks are followed).
    pub source: PathBuf,
    /// Absolute path as seen inside the root, e.g. `/alloc`. Created under the root on the host
    /// if missing; must not lie under a system bind (it would be hidden by it).
    pub target: PathBuf,
    /// Read-only bind (system directories); read-write otherwise (alloc, local, secrets, tmp).
    pub read_only: bool,
}

/// The cgroup a task runs in, with its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSpec {
    /// Unique per task run, e.g. `<alloc_id>.<task>`; one path component. The group lives at
    /// `caravan/<name>` in each hierarchy.
    pub name: String,
    /// Memory in bytes: the hard limit, or the soft reservation when `memory_max_bytes` is set.
    /// 0 means no limit.
    pub memory_bytes: u64,
    /// Hard memory limit in bytes (Nomad's `memory_max`, oversubscription), if any.
    pub memory_max_bytes: Option<u64>,
    /// CPU shares (v1 `cpu.shares`; v2 `cpu.weight` converted as runc does). 0 leaves the
    /// default.
    pub cpu_shares: u64,
}

/// The user a task (or an exec session) runs as once isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (e.g. from `nix::unistd::getgrouplist`); empty for just `gid`.
    pub groups: Vec<u32>,
}

/// How to isolate a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationSpec {
    /// The task directory, which becomes `/` (absolute; must exist).
    pub root: PathBuf,
    /// The caller's binds, mounted after [`system_binds`] (alloc, local, secrets, tmp…).
    pub binds: Vec<BindMount>,
    /// Hostname inside the task's uts namespace (at most 64 bytes; empty keeps the host's).
    pub hostname: String,
    /// The cgroup to create and join before exec; `None` runs without limits.
    pub cgroup: Option<CgroupSpec>,
    /// Drop to this user after isolating; `None` runs as root.
    pub user: Option<TaskUser>,
}

/// Options of [`enter_and_spawn_with`].
#[derive(Debug, Default)]
pub struct EnterOptions {
    /// Drop to this user after entering.
    pub user: Option<TaskUser>,
    /// A PTY slave (see [`open_pty`]) to run the command on: it becomes the command's stdin,
    /// stdout, stderr and controlling terminal (new session). Do not also set a process group
    /// on the command: a group leader cannot start a session.
    pub tty: Option<OwnedFd>,
}

/// Memory figures of a cgroup, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryStats {
    /// Anonymous memory (v1 `rss`, v2 `anon`).
    pub rss: u64,
    /// Page cache (v1 `cache`, v2 `file`).
    pub cache: u64,
    /// Swap used.
    pub swap: u64,
    /// Total usage charged to the group.
    pub usage: u64,
    /// Peak usage (v1 only; 0 on v2).
    pub max_usage: u64,
    /// Kernel memory usage (v1 only, where the kernel still reports it).
    pub kernel_usage: u64,
    /// Peak kernel memory usage (v1 only, where the kernel still reports it).
    pub kernel_max_usage: u64,
    /// Nomad's names of the figures this host measures (`Measured` in the stats API).
    pub measured: &'static [&'static str],
}

/// CPU figures of a cgroup, cumulative since it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuStats {
    /// Time in user mode, ns.
    pub user_ns: u64,
    /// Time in kernel mode, ns.
    pub system_ns: u64,
    /// Total CPU time, ns.
    pub total_ns: u64,
    /// Periods in which the group was throttled.
    pub throttled_periods: u64,
    /// Time spent throttled, ns.
    pub throttled_time_ns: u64,
    /// Nomad's names of the figures measured; "Percent" is the caller's, from two samples.
    pub measured: &'static [&'static str],
}

/// What [`cgroup_stats`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupStats {
    /// Memory figures.
    pub memory: MemoryStats,
    /// CPU figures.
    pub cpu: CpuStats,
}

/// The read-only host directories every isolated task sees at the same paths (those of /bin,
/// /etc, /lib, /lib32, /lib64, /libx32, /sbin, /usr, /run/systemd/resolve that exist), so
/// ordinary programs and their libraries run without copying them into the task directory.
pub fn system_binds() -> Vec<BindMount> {
    spawn::system_binds()
}

/// Spawns `cmd` isolated as `spec` says: in new pid, mount, ipc and uts namespaces, with
/// `spec.root` as `/` (pivot_root, so a later `setns` into the mount namespace lands there),
/// [`system_binds`] read-only and `spec.binds`, a fresh /proc and a minimal /dev, the hostname
/// set, and — before exec — inside the cgroup with its limits. The returned child's pid is the
/// host pid of the namespace's init. `cmd.current_dir` is interpreted inside the root.
///
/// Mount points missing under the root are created on the host first. Nothing mounted for the
/// task is visible on the host. A failing step is reported by name
/// ([`IsolationError::Setup`]); a missing program as [`IsolationError::Exec`]. On failure the
/// cgroup is removed again.
pub fn spawn_isolated(cmd: Command, spec: &IsolationSpec) -> Result<Child, IsolationError> {
    spawn::spawn_isolated(cmd, spec)
}

/// Marks every descriptor this process inherited (3 and up) close-on-exec, so none of them
/// reaches tasks and exec sessions (a parent's sockets or pipes left open across its exec).
/// Descriptors Rust opens are close-on-exec already. Returns how many were changed.
pub fn cloexec_inherited_fds() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    let mut changed = 0;
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD only read and set the descriptor's flags; a descriptor that
        // is gone (the directory's own) fails with EBADF, which is skipped.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: as above.
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == 0 {
                changed += 1;
            }
        }
    }
    changed
}

/// Whether this machine can run isolated tasks: root, the four namespaces (tried for real in a
/// throwaway child) and a usable cgroup hierarchy. The error is a one-line reason for the
/// driver's health description, e.g. "Driver must run as root".
pub fn probe() -> Result<(), String> {
    spawn::probe()
}

/// Kills every process in the task's cgroup (SIGKILL; processes that escaped the task's process
/// group included), then removes the group, retrying for a few seconds while it still holds
/// processes — a killed process leaves only once reaped, so reap the task's child (`wait`)
/// first for a prompt return. A group that does not exist is not an error.
pub fn cgroup_destroy(name: &str) -> Result<(), IsolationError> {
    cgroup::destroy(name)
}

/// Memory and CPU figures of a task's cgroup, for the allocation stats endpoint.
pub fn cgroup_stats(name: &str) -> Result<CgroupStats, IsolationError> {
    cgroup::stats(name)
}

/// Host pids currently in the task's cgroup (an error satisfying
/// [`IsolationError::is_not_found`] once the group is gone).
pub fn cgroup_pids(name: &str) -> Result<Vec<i32>, IsolationError> {
    cgroup::pids(name)
}

/// For exec sessions: spawns `cmd` inside the pid, mount, ipc and uts namespaces of the running
/// process `pid` (a task spawned by [`spawn_isolated`]) and, when given, its cgroup, so the
/// command sees the task's root, processes and hostname and counts against its limits.
/// `cmd.current_dir` is interpreted inside the task's root. Runs as root; see
/// [`enter_and_spawn_with`] for a user or a terminal.
pub fn enter_and_spawn(
    pid: i32,
    cgroup: Option<&str>,
    cmd: Command,
) -> Result<Child, IsolationError> {
    spawn::enter_and_spawn(pid, cgroup, cmd, EnterOptions::default())
}

/// [`enter_and_spawn`] with options: the user to run as and a PTY to run on.
pub fn enter_and_spawn_with(
    pid: i32,
    cgroup: Option<&str>,
    cmd: Command,
    options: EnterOptions,
) -> Result<Child, IsolationError> {
    spawn::enter_and_spawn(pid, cgroup, cmd, options)
}

/// Opens a pseudo-terminal: `(master, slave)`, both close-on-exec. Give the slave to
/// [`EnterOptions::tty`]; read and write the session through the master.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), IsolationError> {
    pty::open_pty()
}

/// Opens a pseudo-terminal in the devpts of the isolated task `pid` (see [`spawn_isolated`]),
/// so inside the task it is a real `/dev/pts/N` (`tty`, `ps` name it); a task without its own
/// devpts gets a host terminal as [`open_pty`] does.
pub fn open_pty_in(pid: i32) -> Result<(OwnedFd, OwnedFd), IsolationError> {
    pty::open_pty_in(pid)
}

/// Sets the terminal's window size (on the master or the slave), as a client resize asks.
pub fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) -> Result<(), IsolationError> {
    pty::set_window_size(fd, rows, cols)
}

/// The window size `(rows, columns)` of the terminal `fd` (e.g. the CLI's own stdout, for
/// `caravan alloc exec -t`).
pub fn window_size(fd: impl AsFd) -> Result<(u16, u16), IsolationError> {
    pty::window_size(fd)
}
