//! Signal names as jobs and the signal endpoint give them (`SIGUSR1`, `SIGHUP`, ...).

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::DriverError;

/// Parses a signal name, case-insensitively and with or without the `SIG` prefix. Nomad's
/// process drivers turn an unknown name into SIGINT with a logged warning; Caravan refuses it
/// so the caller learns about the typo.
pub fn parse_signal(name: &str) -> Result<i32, DriverError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full)
        .map(|s| s as i32)
        .map_err(|_| DriverError::InvalidSignal(name.to_owned()))
}

/// The name of a signal number (`SIGTERM`), for events.
pub fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_parse_with_or_without_prefix() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("usr1").unwrap(), 10);
        assert_eq!(parse_signal("SigHup").unwrap(), 1);
        let err = parse_signal("SIGFOO").unwrap_err();
        assert_eq!(err.to_string(), "invalid signal \"SIGFOO\"");
        assert!(parse_signal("").is_err());
        assert_eq!(signal_name(9), "SIGKILL");
    }
}
