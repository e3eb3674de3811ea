//! caravan-telemetry: what a Caravan process tells about itself, shared by the server, the
//! gateway and the client agent.
//!
//! Layout:
//! - [`init_logging`]: the process's tracing set-up — stderr at the configured filter, plus
//!   the monitor's layer, which sees every level a live monitor asks for.
//! - [`monitor`]: the fan-out of log events to live `/v1/agent/monitor` subscribers, each
//!   with its own level and format, never blocking the process.
//! - [`host`]: `HostData` gathered from the machine (`/v1/agent/host`).

pub mod host;
pub mod monitor;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use monitor::{Monitor, MonitorError, MonitorOptions, Subscription};

/// Installs the process's subscriber: human-readable lines on stderr filtered by `filter` (an
/// `EnvFilter` directive such as `info` or `caravan_server=debug`) and the [`Monitor::global`]
/// layer. Each layer filters on its own, so a debug monitor sees debug events while stderr
/// stays at `filter`; while nobody monitors, events below `filter` cost nothing.
pub fn init_logging(filter: &str) {
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(EnvFilter::new(filter));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(Monitor::global().layer())
        .try_init();
}
