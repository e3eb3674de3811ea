//! The local terminal of an interactive session: raw mode for as long as a [`RawTerminal`]
//! lives (restored when it is dropped, on every way out), and the window size.

use std::io::IsTerminal;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Whether stdin and stdout are both terminals (`nomad alloc exec`'s default for `-t`).
pub fn is_tty() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The window size `(rows, columns)` of the terminal on stdout, if it is one.
pub fn window_size() -> Option<(u16, u16)> {
    caravan_isolation::window_size(std::io::stdout()).ok()
}

/// Stdin's terminal in raw mode (no echo, no line editing, no signals from keys: everything
/// typed goes to the remote terminal); the previous mode comes back when this is dropped.
#[derive(Debug)]
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode; fails with "not a terminal" unless stdin and stdout
    /// are terminals, as Nomad does.
    pub fn enter() -> Result<RawTerminal, String> {
        if !is_tty() {
            return Err("not a terminal".to_owned());
        }
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).map_err(|e| format!("reading the terminal mode: {e}"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(|e| format!("setting the terminal to raw mode: {e}"))?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
