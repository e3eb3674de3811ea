//! Commands that talk to a running cluster through its HTTP API, as the `nomad` CLI does (same
//! names, flags, environment, output and exit codes; see `reference/CLI.md`):
//!
//! - `alloc exec` ([`alloc_exec`]): a command inside a running task, over the exec WebSocket.
//! - [`terminal`]: the local terminal in raw mode and its window size, for `-t` sessions.

pub mod alloc_exec;
pub mod terminal;

use clap::Subcommand;

/// `caravan alloc ...`.
#[derive(Debug, Subcommand)]
pub enum AllocCommand {
    /// Run a command inside a running task (nomad alloc exec).
    Exec(alloc_exec::ExecArgs),
}

/// Go's `strconv.ParseBool`, which Nomad's boolean flags (`-t=false`) use.
pub fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("parse error: {value:?} is not a boolean")),
    }
}
