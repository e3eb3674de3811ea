//! What runs in the child between fork and exec.
//!
//! The caller may be multi-threaded (the agent, for `probe` and exec sessions), so after fork
//! only async-signal-safe work is allowed: another thread may have held the allocator's lock at
//! the moment of the fork. Hence the split: the parent builds a list of [`Op`]s whose every
//! string is a ready `CString` and every file a ready descriptor, and the child only walks that
//! list issuing raw `libc` calls — no allocation, no locks, no formatting.
//!
//! std reports a failing `pre_exec` hook to the parent as a bare errno. To say *which* step
//! failed, the child records the index of the step it is about to run in a page shared with the
//! parent ([`Tracker`]); the parent pairs it with the step's description.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

/// One syscall-level step of the child's setup.
pub(crate) enum Op {
    /// Fails with EPERM unless the effective uid is 0: a `Command` carrying `uid`/`gid` has
    /// already dropped root when the hook runs, and every later step would fail obscurely.
    RequireRoot,
    /// Writes "0" (the writing process) to an open `cgroup.procs`, so the task is accounted and
    /// limited from its first instruction.
    JoinCgroup(OwnedFd),
    /// `unshare(2)` with these `CLONE_*` flags.
    Unshare(libc::c_int),
    /// `setns(2)` into the namespace open at this descriptor.
    SetNs(OwnedFd, libc::c_int),
    /// `mount(2)`.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// A character device node with mode 0666; where mknod is refused (no CAP_MKNOD) the host's
    /// node is bind-mounted onto an empty file instead.
    Device {
        path: CString,
        host: CString,
        dev: libc::dev_t,
    },
    /// `mkdir` then `chmod` (mkdir's mode is filtered by the umask).
    Mkdir { path: CString, mode: libc::mode_t },
    /// `symlink(target, link)`.
    Symlink { target: CString, link: CString },
    /// `sethostname(2)`.
    Hostname(CString),
    /// Makes `root` the root of the mount namespace: pivot_root(".", ".") stacks the old root
    /// on top of the new one, and a lazy unmount drops it (no put_old directory needed).
    PivotRoot(CString),
    /// setgroups, setgid, setuid — last of the privileged steps.
    SetUser {
        uid: libc::uid_t,
        gid: libc::gid_t,
        groups: Vec<libc::gid_t>,
    },
    /// `setsid` then `TIOCSCTTY` on stdin (already the PTY slave): the slave becomes the
    /// controlling terminal, so ^C and job control reach the command.
    ControllingTerminal,
    /// `chdir(2)`.
    Chdir(CString),
    /// `_exit(0)` without exec: `probe`'s trial child stops here.
    Exit,
}

/// Converts a libc return value to a `Result`; `last_os_error` reads errno without allocating.
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn opt_ptr(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

impl Op {
    /// Runs the step. Async-signal-safe: raw syscalls over prebuilt buffers only.
    fn run(&self) -> io::Result<()> {
        // SAFETY (whole function): every pointer passed below comes from a live CString, slice
        // or descriptor owned by `self`, and the calls are plain syscalls.
        unsafe {
            match self {
                Op::RequireRoot => {
                    if libc::geteuid() != 0 {
                        return Err(io::Error::from_raw_os_error(libc::EPERM));
                    }
                    Ok(())
                }
                Op::JoinCgroup(fd) => {
                    let n = libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1);
                    if n == 1 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                }
                Op::Unshare(flags) => check(libc::unshare(*flags)),
                Op::SetNs(fd, nstype) => check(libc::setns(fd.as_raw_fd(), *nstype)),
                Op::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    data,
                } => check(libc::mount(
                    opt_ptr(source),
                    target.as_ptr(),
                    opt_ptr(fstype),
                    *flags,
                    opt_ptr(data).cast(),
                )),
                Op::Device { path, host, dev } => {
                    if libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev) == 0 {
                        return check(libc::chmod(path.as_ptr(), 0o666));
                    }
                    let fd = libc::open(
                        path.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o666,
                    );
                    if fd == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(fd);
                    check(libc::mount(
                        host.as_ptr(),
                        path.as_ptr(),
                        ptr::null(),
                        libc::MS_BIND,
                        ptr::null(),
                    ))
                }
                Op::Mkdir { path, mode } => {
                    check(libc::mkdir(path.as_ptr(), *mode))?;
                    check(libc::chmod(path.as_ptr(), *mode))
                }
                Op::Symlink { target, link } => {
                    check(libc::symlink(target.as_ptr(), link.as_ptr()))
                }
                Op::Hostname(name) => {
                    check(libc::sethostname(name.as_ptr(), name.as_bytes().len()))
                }
                Op::PivotRoot(root) => {
                    let dot = c".".as_ptr();
                    check(libc::chdir(root.as_ptr()))?;
                    if libc::syscall(libc::SYS_pivot_root, dot, dot) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    check(libc::umount2(dot, libc::MNT_DETACH))?;
                    check(libc::chdir(c"/".as_ptr()))
                }
                Op::SetUser { uid, gid, groups } => {
                    check(libc::setgroups(groups.len(), groups.as_ptr()))?;
                    check(libc::setgid(*gid))?;
                    check(libc::setuid(*uid))
                }
                Op::ControllingTerminal => {
                    if libc::setsid() == -1 {
                        return Err(io::Error::last_os_error());
                    }
                    check(libc::ioctl(0, libc::TIOCSCTTY, 0))
                }
                Op::Chdir(path) => check(libc::chdir(path.as_ptr())),
                Op::Exit => libc::_exit(0),
            }
        }
    }
}

/// The child's setup: the steps and, in the same order, what each one does (for errors).
#[derive(Default)]
pub(crate) struct Plan {
    pub(crate) ops: Vec<Op>,
    pub(crate) steps: Vec<String>,
}

impl Plan {
    pub(crate) fn push(&mut self, op: Op, step: impl Into<String>) {
        self.ops.push(op);
        self.steps.push(step.into());
    }
}

/// Tracker value before the first step: the failure happened in std's own child setup (stdio,
/// working directory) or in fork itself.
pub(crate) const NOT_STARTED: u32 = 0;
/// Tracker value once every step succeeded: a failure now is exec's.
pub(crate) const EXEC: u32 = u32::MAX;

/// A page shared between parent and child (MAP_SHARED survives fork, unlike ordinary memory)
/// holding the 1-based index of the step the child is running.
pub(crate) struct Tracker {
    cell: NonNull<AtomicU32>,
}

// SAFETY: the page is only accessed through an atomic, and lives until the Tracker is dropped.
unsafe impl Send for Tracker {}
// SAFETY: as above.
unsafe impl Sync for Tracker {}

impl Tracker {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: an anonymous mapping; the result is checked before use.
        let page = unsafe {
            libc::mmap(
                ptr::null_mut(),
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let cell = NonNull::new(page.cast::<AtomicU32>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self { cell })
    }

    fn set(&self, value: u32) {
        // SAFETY: the mapping is live, zero-initialised and page-aligned.
        unsafe { self.cell.as_ref() }.store(value, Ordering::SeqCst);
    }

    /// What the child reached: [`NOT_STARTED`], a 1-based step index, or [`EXEC`].
    pub(crate) fn get(&self) -> u32 {
        // SAFETY: as in `set`.
        unsafe { self.cell.as_ref() }.load(Ordering::SeqCst)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.cell.as_ptr().cast(), page_size()) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The body of the `pre_exec` hook: runs every op, recording progress in the tracker.
pub(crate) fn run(ops: &[Op], tracker: &Tracker) -> io::Result<()> {
    for (i, op) in ops.iter().enumerate() {
        tracker.set(u32::try_from(i + 1).unwrap_or(EXEC - 1));
        op.run()?;
    }
    tracker.set(EXEC);
    Ok(())
}
