//! What an agent tells about itself: `HostData` (`/v1/agent/host`, the machine an agent runs
//! on) and the log levels `/v1/agent/monitor` accepts. Fields in the byte order of their JSON
//! names.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The machine an agent runs on, as `nomad operator debug` collects it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostData {
    /// Mounted local file systems by mount point.
    #[serde(rename = "Disk")]
    pub disk: BTreeMap<String, DiskUsage>,
    /// The agent's environment; secret-looking values are `<redacted>`.
    #[serde(rename = "Environment")]
    pub environment: BTreeMap<String, String>,
    /// `/etc/hosts`, or the error reading it.
    #[serde(rename = "Hosts")]
    pub hosts: String,
    /// One map per interface address (go-sockaddr's attribute names).
    #[serde(rename = "Network")]
    pub network: Option<Vec<BTreeMap<String, String>>>,
    /// `uname`: machine, node name, release, system name and version, space-separated.
    #[serde(rename = "OS")]
    pub os: String,
    /// `/etc/resolv.conf`, or the error reading it.
    #[serde(rename = "ResolvConf")]
    pub resolv_conf: String,
}

/// A file system's size and use, in MiB (rounded down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DiskUsage {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    #[serde(rename = "UsedMB")]
    pub used_mb: i64,
}

/// `/v1/agent/host` for another agent (`node_id` or `server_id`): who answered, and its host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostDataResponse {
    /// The node ID of a client agent, or the member name of a server.
    #[serde(rename = "AgentID")]
    pub agent_id: String,
    #[serde(rename = "HostData")]
    pub host_data: Option<HostData>,
}

/// A log level as the monitor accepts it (hclog's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// Nothing at all.
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// hclog's parse: `trace`, `debug`, `info`, `warn`, `error` or `off`, in any case, with
    /// surrounding spaces ignored.
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            "off" => Some(LogLevel::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_as_hclog_does() {
        assert_eq!(LogLevel::parse("DEBUG"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse(" warn "), Some(LogLevel::Warn));
        assert_eq!(LogLevel::parse("Off"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse("warning"), None);
        assert_eq!(LogLevel::parse(""), None);
        assert!(LogLevel::Trace > LogLevel::Debug && LogLevel::Error > LogLevel::Off);
    }

    #[test]
    fn host_data_keys_and_response_shape() {
        let resp = HostDataResponse {
            agent_id: "n1".to_owned(),
            host_data: Some(HostData::default()),
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(v["AgentID"], "n1");
        assert!(v["HostData"]["Disk"].is_object());
        assert!(v["HostData"]["Network"].is_null());
    }
}
