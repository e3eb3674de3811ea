//! What a client reports about resource usage and its metadata: `HostStats`
//! (`/v1/client/stats`, NOMAD-BEHAVIOR 3.2), `AllocResourceUsage`
//! (`/v1/client/allocation/:id/stats`, 1.7) and `NodeMetaResponse` (`/v1/client/metadata`,
//! 3.1). Fields in the byte order of their JSON names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The host as last sampled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostStats {
    /// The file system holding the allocation directories.
    #[serde(rename = "AllocDirStats")]
    pub alloc_dir_stats: Option<HostDiskStats>,
    /// One entry per online core, percentages over the sample interval.
    #[serde(rename = "CPU")]
    pub cpu: Option<Vec<HostCpuStats>>,
    /// The sum of every core's `TotalTicks` (MHz in use).
    #[serde(rename = "CPUTicksConsumed")]
    pub cpu_ticks_consumed: f64,
    /// Device plugin statistics (none on Caravan's nodes).
    #[serde(rename = "DeviceStats")]
    pub device_stats: Option<Vec<serde_json::Value>>,
    #[serde(rename = "DiskStats")]
    pub disk_stats: Option<Vec<HostDiskStats>>,
    #[serde(rename = "Memory")]
    pub memory: Option<HostMemoryStats>,
    /// Unix nanoseconds of the sample.
    #[serde(rename = "Timestamp")]
    pub timestamp: i64,
    /// Seconds since boot.
    #[serde(rename = "Uptime")]
    pub uptime: u64,
}

/// Memory in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostMemoryStats {
    pub available: u64,
    pub free: u64,
    pub total: u64,
    pub used: u64,
}

/// One core: percentages of the sample interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostCpuStats {
    /// `cpu0`, `cpu1`, ...
    #[serde(rename = "CPU")]
    pub cpu: String,
    #[serde(rename = "Idle")]
    pub idle: f64,
    #[serde(rename = "System")]
    pub system: f64,
    /// Busy: 100 − idle.
    #[serde(rename = "TotalPercent")]
    pub total_percent: f64,
    /// The busy share of the core's MHz.
    #[serde(rename = "TotalTicks")]
    pub total_ticks: f64,
    #[serde(rename = "User")]
    pub user: f64,
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostDiskStats {
    pub available: u64,
    pub device: String,
    pub inodes_used_percent: f64,
    pub mountpoint: String,
    pub size: u64,
    pub used: u64,
    pub used_percent: f64,
}

/// What an allocation's running tasks consume.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocResourceUsage {
    /// The sum over the running tasks.
    pub resource_usage: ResourceUsage,
    pub tasks: BTreeMap<String, TaskResourceUsage>,
    /// The newest task sample, Unix ns; 0 when no task runs.
    pub timestamp: i64,
}

/// One task's usage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskResourceUsage {
    /// Per-process usage; Nomad leaves it nil.
    pub pids: Option<BTreeMap<String, ResourceUsage>>,
    pub resource_usage: ResourceUsage,
    /// Unix ns of the sample.
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ResourceUsage {
    pub cpu_stats: CpuStats,
    pub device_stats: Option<Vec<serde_json::Value>>,
    pub memory_stats: MemoryStats,
}

/// Memory in bytes; `Measured` names the figures that were measured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    #[serde(rename = "Cache")]
    pub cache: u64,
    #[serde(rename = "KernelMaxUsage")]
    pub kernel_max_usage: u64,
    #[serde(rename = "KernelUsage")]
    pub kernel_usage: u64,
    #[serde(rename = "MappedFile")]
    pub mapped_file: u64,
    #[serde(rename = "MaxUsage")]
    pub max_usage: u64,
    #[serde(rename = "Measured")]
    pub measured: Option<Vec<String>>,
    #[serde(rename = "RSS")]
    pub rss: u64,
    #[serde(rename = "Swap")]
    pub swap: u64,
    #[serde(rename = "Usage")]
    pub usage: u64,
}

/// CPU: `Percent`, `SystemMode` and `UserMode` are percentages of one core over the sample
/// interval; `TotalTicks` the MHz in use; throttling as the cgroup counts it (time in ns).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CpuStats {
    pub measured: Option<Vec<String>>,
    pub percent: f64,
    pub system_mode: f64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    pub total_ticks: f64,
    pub user_mode: f64,
}

/// Adds the strings of `other` missing from `set` (Nomad's joinStringSet: always a list).
fn join_set(set: &mut Option<Vec<String>>, other: &Option<Vec<String>>) {
    let set = set.get_or_insert_with(Vec::new);
    for s in other.iter().flatten() {
        if !set.contains(s) {
            set.push(s.clone());
        }
    }
}

impl ResourceUsage {
    /// Adds `other` into this sum (Nomad's `ResourceUsage.Add`).
    pub fn add(&mut self, other: &ResourceUsage) {
        let (m, o) = (&mut self.memory_stats, &other.memory_stats);
        m.rss += o.rss;
        m.cache += o.cache;
        m.swap += o.swap;
        m.mapped_file += o.mapped_file;
        m.usage += o.usage;
        m.max_usage += o.max_usage;
        m.kernel_usage += o.kernel_usage;
        m.kernel_max_usage += o.kernel_max_usage;
        join_set(&mut m.measured, &o.measured);
        let (c, o) = (&mut self.cpu_stats, &other.cpu_stats);
        c.system_mode += o.system_mode;
        c.user_mode += o.user_mode;
        c.total_ticks += o.total_ticks;
        c.throttled_periods += o.throttled_periods;
        c.throttled_time += o.throttled_time;
        c.percent += o.percent;
        join_set(&mut c.measured, &o.measured);
        if let Some(devices) = &other.device_stats {
            self.device_stats
                .get_or_insert_with(Vec::new)
                .extend(devices.iter().cloned());
        }
    }
}

/// `/v1/client/metadata`: keys in Nomad's order `Dynamic`, `Meta`, `Static`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeMetaResponse {
    /// Set through the API; `null` marks a key explicitly unset.
    pub dynamic: BTreeMap<String, Option<String>>,
    /// Static overlaid with dynamic: what the node registers.
    pub meta: BTreeMap<String, String>,
    /// The agent's configured meta.
    pub r#static: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_nomads() {
        let v = serde_json::to_value(HostStats::default()).unwrap_or_default();
        let keys: Vec<_> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            keys,
            [
                "AllocDirStats",
                "CPU",
                "CPUTicksConsumed",
                "DeviceStats",
                "DiskStats",
                "Memory",
                "Timestamp",
                "Uptime"
            ]
        );
        let m = serde_json::to_string(&MemoryStats::default()).unwrap_or_default();
        assert!(m.contains("\"RSS\":0"), "{m}");
        let r = serde_json::to_string(&NodeMetaResponse::default()).unwrap_or_default();
        assert_eq!(r, r#"{"Dynamic":{},"Meta":{},"Static":{}}"#);
    }

    #[test]
    fn sums_join_measured() {
        let mut sum = ResourceUsage::default();
        let mut one = ResourceUsage::default();
        one.memory_stats.rss = 10;
        one.memory_stats.measured = Some(vec!["RSS".into(), "Swap".into()]);
        one.cpu_stats.percent = 1.5;
        sum.add(&one);
        sum.add(&one);
        assert_eq!(sum.memory_stats.rss, 20);
        assert_eq!(sum.cpu_stats.percent, 3.0);
        assert_eq!(
            sum.memory_stats.measured,
            Some(vec!["RSS".to_owned(), "Swap".to_owned()])
        );
        assert_eq!(sum.cpu_stats.measured, Some(vec![]));
    }
}
