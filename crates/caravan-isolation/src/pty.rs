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
