//! Pseudo-terminals for interactive exec sessions (`nomad alloc exec -t`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;

use crate::error::IsolationError;

fn pty_error(what: &str, e: nix::Error) -> IsolationError {
    IsolationError::io(format!("{what} a pseudo-terminal"), e.into())
}

pub(crate) fn open_pty() -> Result<(OwnedFd, OwnedFd), IsolationError> {
    // Close-on-exec on both ends: only the child's stdio (dup2'ed, which clears the flag)
    // should carry the slave into the command, and no other child should inherit the master.
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags).map_err(|e| pty_error("opening", e))?;
    grantpt(&master).map_err(|e| pty_error("granting", e))?;
    unlockpt(&master).map_err(|e| pty_error("unlocking", e))?;
    let name = ptsname_r(&master).map_err(|e| pty_error("naming", e))?;
    let slave = nix::fcntl::open(name.as_str(), flags, Mode::empty())
        .map_err(|e| IsolationError::io(format!("opening the terminal {name}"), e.into()))?;
    Ok((master.into(), slave))
}

pub(crate) fn open_pty_in(pid: i32) -> Result<(OwnedFd, OwnedFd), IsolationError> {
    let ptmx = format!("/proc/{pid}/root/dev/pts/ptmx");
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = match nix::fcntl::open(ptmx.as_str(), flags, Mode::empty()) {
        Ok(master) => master,
        // A task started before tasks had their own devpts.
        Err(nix::errno::Errno::ENOENT) => return open_pty(),
        Err(e) => return Err(IsolationError::io(format!("opening {ptmx}"), e.into())),
    };
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which outlives the call.
    let unlock: libc::c_int = 0;
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } == -1 {
        return Err(IsolationError::io(
            "unlocking the task's pseudo-terminal",
            std::io::Error::last_os_error(),
        ));
    }
    // The slave by the master, not by a path: its name is only meaningful inside the task.
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor we own.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    if slave == -1 {
        return Err(IsolationError::io(
            "opening the task's terminal",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    Ok((master, slave))
}

pub(crate) fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) -> Result<(), IsolationError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if ret == -1 {
        return Err(IsolationError::io(
            "setting the terminal window size",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

pub(crate) fn window_size(fd: impl AsFd) -> Result<(u16, u16), IsolationError> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, which outlives the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    if ret == -1 {
        return Err(IsolationError::io(
            "reading the terminal window size",
            std::io::Error::last_os_error(),
        ));
    }
    Ok((size.ws_row, size.ws_col))
}
