//! Resource usage as measured on this machine: the host (`/v1/client/stats`) sampled in the
//! background every second from `/proc` and `statvfs`, and the allocations' tasks
//! (`/v1/client/allocation/:id/stats`) read on request — from their cgroup for `exec` tasks,
//! from `/proc` for the process group of `raw_exec` tasks. CPU percentages come from the
//! difference of two samples.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caravan_drivers::TaskHandle;
use caravan_structs::Node;
use caravan_structs::stats::{
    AllocResourceUsage, CpuStats, HostCpuStats, HostDiskStats, HostMemoryStats, HostStats,
    MemoryStats, ResourceUsage, TaskResourceUsage,
};

use crate::allocs::events::STATE_RUNNING;
use crate::allocs::runner::AllocRunner;

/// How often the host is sampled.
pub const HOST_INTERVAL: Duration = Duration::from_secs(1);
/// The first sample's CPU interval (so the endpoint has data soon after start).
const FIRST_INTERVAL: Duration = Duration::from_millis(200);
/// A task's CPU percentage needs two samples at least this far apart...
const MIN_CPU_INTERVAL: Duration = Duration::from_millis(100);
/// ...and a previous sample older than this is not reused.
const MAX_CPU_INTERVAL: Duration = Duration::from_secs(10);

/// Nomad's names of what `/proc` measures for a process tree.
const PROC_MEMORY_MEASURED: &[&str] = &["RSS", "Swap"];
const PROC_CPU_MEASURED: &[&str] = &["System Mode", "User Mode", "Percent"];

pub fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(4096)
}

/// A core's MHz: the node's `cpu.frequency` attribute.
fn core_mhz(node: &RwLock<Node>) -> f64 {
    node.read()
        .ok()
        .and_then(|n| {
            n.attributes
                .as_ref()
                .and_then(|a| a.get("cpu.frequency"))
                .and_then(|f| f.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        0.0
    } else {
        (part / whole * 100.0).clamp(0.0, 100.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------------------------

/// One core's counters from `/proc/stat` (clock ticks).
#[derive(Debug, Clone, Default, PartialEq)]
struct CoreTimes {
    name: String,
    user: u64,
    system: u64,
    idle: u64,
    total: u64,
}

/// The `cpuN` lines of `/proc/stat`.
fn parse_proc_stat(text: &str) -> Vec<CoreTimes> {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let name = fields.next()?.to_owned();
            let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
            let get = |i: usize| v.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal (guest time is inside user/nice).
            let total = (0..8).map(get).sum();
            Some(CoreTimes {
                name,
                user: get(0) + get(1),
                system: get(2) + get(5) + get(6),
                idle: get(3) + get(4),
                total,
            })
        })
        .collect()
}

fn core_stats(prev: &[CoreTimes], now: &[CoreTimes], mhz: f64) -> Vec<HostCpuStats> {
    now.iter()
        .map(|c| {
            let p = prev
                .iter()
                .find(|p| p.name == c.name)
                .cloned()
                .unwrap_or_default();
            let total = c.total.saturating_sub(p.total) as f64;
            let idle = percent(c.idle.saturating_sub(p.idle) as f64, total);
            let busy = if total > 0.0 { 100.0 - idle } else { 0.0 };
            HostCpuStats {
                cpu: c.name.clone(),
                idle,
                system: percent(c.system.saturating_sub(p.system) as f64, total),
                total_percent: busy,
                total_ticks: busy / 100.0 * mhz,
                user: percent(c.user.saturating_sub(p.user) as f64, total),
            }
        })
        .collect()
}

/// `/proc/meminfo` in bytes, as gopsutil reads it (Used excludes buffers and caches).
fn parse_meminfo(text: &str) -> HostMemoryStats {
    let kb: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            Some((k.trim(), rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    let get = |k: &str| kb.get(k).copied().unwrap_or(0).saturating_mul(1024);
    let total = get("MemTotal");
    let free = get("MemFree");
    let cached = get("Cached") + get("SReclaimable");
    HostMemoryStats {
        available: get("MemAvailable"),
        free,
        total,
        used: total
            .saturating_sub(free)
            .saturating_sub(get("Buffers"))
            .saturating_sub(cached),
    }
}

/// The file system types backed by a device (those `/proc/filesystems` does not mark nodev).
fn device_fs_types() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// (device, mount point, fs type) of every mount.
fn mounts() -> Vec<(String, String, String)> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let device = f.next()?.to_owned();
            // Octal escapes of the kernel (`\040` for a space).
            let mount = f.next()?.replace("\\040", " ");
            Some((device, mount, f.next()?.to_owned()))
        })
        .collect()
}

fn disk_stats(device: &str, mountpoint: &str) -> Option<HostDiskStats> {
    let s = nix::sys::statvfs::statvfs(mountpoint).ok()?;
    let frag = s.fragment_size() as u64;
    let size = (s.blocks() as u64).saturating_mul(frag);
    let free = (s.blocks_free() as u64).saturating_mul(frag);
    let available = (s.blocks_available() as u64).saturating_mul(frag);
    let used = size.saturating_sub(free);
    let files = s.files() as u64;
    let files_used = files.saturating_sub(s.files_free() as u64);
    Some(HostDiskStats {
        available,
        device: device.to_owned(),
        // As df: used over what a non-root user could use.
        inodes_used_percent: percent(files_used as f64, files as f64),
        mountpoint: mountpoint.to_owned(),
        size,
        used,
        used_percent: percent(used as f64, (used + available) as f64),
    })
}

/// Every mounted device-backed file system (each mount point once); `/` at least.
fn all_disks() -> Vec<HostDiskStats> {
    let types = device_fs_types();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let all = mounts();
    for (device, mount, fs) in &all {
        if !types.contains(fs) || seen.contains(mount) {
            continue;
        }
        seen.push(mount.clone());
        if let Some(d) = disk_stats(device, mount) {
            out.push(d);
        }
    }
    if out.is_empty() {
        let root = all
            .iter()
            .rev()
            .find(|(_, m, _)| m == "/")
            .map(|(d, _, _)| d.clone())
            .unwrap_or_else(|| "rootfs".to_owned());
        out.extend(disk_stats(&root, "/"));
    }
    out
}

/// The file system holding `dir`: the mount with the longest matching prefix.
fn dir_disk(dir: &Path) -> Option<HostDiskStats> {
    // The directory may not exist yet (no allocation so far): its nearest existing ancestor.
    let dir = dir
        .ancestors()
        .find_map(|d| std::fs::canonicalize(d).ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let (device, mount) = mounts()
        .into_iter()
        .filter(|(_, m, _)| dir.starts_with(m))
        .max_by_key(|(_, m, _)| m.len())
        .map(|(d, m, _)| (d, m))?;
    let mut stats = disk_stats(&device, &dir.to_string_lossy())?;
    stats.mountpoint = mount;
    Some(stats)
}

fn uptime() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|f| f.parse::<f64>().ok())
        })
        .map(|f| f as u64)
        .unwrap_or(0)
}

fn read_cores() -> Vec<CoreTimes> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

/// One host sample; `prev` is the CPU counters of the previous one.
fn sample_host(prev: &[CoreTimes], now: &[CoreTimes], mhz: f64, alloc_dir: &Path) -> HostStats {
    let cpu = core_stats(prev, now, mhz);
    HostStats {
        alloc_dir_stats: dir_disk(alloc_dir),
        cpu_ticks_consumed: cpu.iter().map(|c| c.total_ticks).sum(),
        cpu: Some(cpu),
        device_stats: Some(Vec::new()),
        disk_stats: Some(all_disks()),
        memory: Some(parse_meminfo(
            &std::fs::read_to_string("/proc/meminfo").unwrap_or_default(),
        )),
        timestamp: unix_nanos(),
        uptime: uptime(),
    }
}

/// The latest host sample, refreshed in the background.
#[derive(Clone, Default)]
pub struct HostSampler {
    latest: Arc<RwLock<Option<Arc<HostStats>>>>,
}

impl HostSampler {
    /// Starts sampling every [`HOST_INTERVAL`] until the runtime stops; `alloc_dir` is the
    /// allocation directories' root (`AllocDirStats`).
    pub fn start(node: Arc<RwLock<Node>>, alloc_dir: PathBuf) -> HostSampler {
        let sampler = HostSampler::default();
        let latest = sampler.latest.clone();
        tokio::spawn(async move {
            let mut prev = read_cores();
            let mut wait = FIRST_INTERVAL;
            loop {
                tokio::time::sleep(wait).await;
                wait = HOST_INTERVAL;
                let mhz = core_mhz(&node);
                let dir = alloc_dir.clone();
                let before = prev.clone();
                let taken = tokio::task::spawn_blocking(move || {
                    let now = read_cores();
                    let stats = sample_host(&before, &now, mhz, &dir);
                    (now, stats)
                })
                .await;
                match taken {
                    Ok((now, stats)) => {
                        prev = now;
                        if let Ok(mut l) = latest.write() {
                            *l = Some(Arc::new(stats));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "host stats sample failed"),
                }
            }
        });
        sampler
    }

    /// The latest sample; `None` before the first.
    pub fn latest(&self) -> Option<Arc<HostStats>> {
        self.latest.read().ok().and_then(|l| l.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------------------------

/// Cumulative counters of one task at one moment.
#[derive(Debug, Clone, Default)]
struct Counters {
    at: Option<Instant>,
    user_ns: u64,
    system_ns: u64,
    total_ns: u64,
}

/// One task's measured figures before the CPU percentages are derived.
#[derive(Debug, Clone, Default)]
struct Reading {
    memory: MemoryStats,
    counters: Counters,
    throttled_periods: u64,
    throttled_time: u64,
    cpu_measured: Vec<String>,
    /// Nothing to measure (mock tasks): zeros, empty `Measured`.
    nothing: bool,
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

/// From the task's cgroup (`exec`).
fn read_cgroup(name: &str) -> Option<Reading> {
    let s = caravan_isolation::cgroup_stats(name).ok()?;
    Some(Reading {
        memory: MemoryStats {
            cache: s.memory.cache,
            kernel_max_usage: s.memory.kernel_max_usage,
            kernel_usage: s.memory.kernel_usage,
            max_usage: s.memory.max_usage,
            measured: Some(strings(s.memory.measured)),
            rss: s.memory.rss,
            swap: s.memory.swap,
            usage: s.memory.usage,
            ..MemoryStats::default()
        },
        counters: Counters {
            at: Some(Instant::now()),
            user_ns: s.cpu.user_ns,
            system_ns: s.cpu.system_ns,
            total_ns: s.cpu.total_ns,
        },
        throttled_periods: s.cpu.throttled_periods,
        throttled_time: s.cpu.throttled_time_ns,
        cpu_measured: strings(s.cpu.measured),
        nothing: false,
    })
}

/// One process from `/proc/<pid>/stat`.
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    utime: u64,
    stime: u64,
    rss_pages: u64,
}

fn parse_pid_stat(pid: i32, text: &str) -> Option<Proc> {
    // The command may contain spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
    Some(Proc {
        pid,
        ppid: i32::try_from(num(1)?).ok()?,
        pgrp: i32::try_from(num(2)?).ok()?,
        utime: u64::try_from(num(11)?).ok()?,
        stime: u64::try_from(num(12)?).ok()?,
        rss_pages: u64::try_from(num(21)?.max(0)).ok()?,
    })
}

fn all_procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
        parse_pid_stat(pid, &text)
    })
    .collect()
}

/// The task's process tree: its process group and every descendant of its main process.
fn tree(procs: &[Proc], root: i32) -> Vec<&Proc> {
    let mut members: Vec<i32> = procs
        .iter()
        .filter(|p| p.pid == root || p.pgrp == root)
        .map(|p| p.pid)
        .collect();
    loop {
        let before = members.len();
        for p in procs {
            if members.contains(&p.ppid) && !members.contains(&p.pid) {
                members.push(p.pid);
            }
        }
        if members.len() == before {
            break;
        }
    }
    procs.iter().filter(|p| members.contains(&p.pid)).collect()
}

fn vm_swap_bytes(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmSwap:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(1024)
}

/// From `/proc` for the process tree of `pid` (`raw_exec`); `None` when it is gone.
fn read_proc_tree(pid: i32) -> Option<Reading> {
    let procs = all_procs();
    let members = tree(&procs, pid);
    if members.is_empty() {
        return None;
    }
    let tick_ns = 1_000_000_000 / clock_ticks();
    let page = page_size();
    let user_ns: u64 = members.iter().map(|p| p.utime * tick_ns).sum();
    let system_ns: u64 = members.iter().map(|p| p.stime * tick_ns).sum();
    Some(Reading {
        memory: MemoryStats {
            measured: Some(strings(PROC_MEMORY_MEASURED)),
            rss: members.iter().map(|p| p.rss_pages * page).sum(),
            swap: members.iter().map(|p| vm_swap_bytes(p.pid)).sum(),
            ..MemoryStats::default()
        },
        counters: Counters {
            at: Some(Instant::now()),
            user_ns,
            system_ns,
            total_ns: user_ns + system_ns,
        },
        cpu_measured: strings(PROC_CPU_MEASURED),
        ..Reading::default()
    })
}

/// What to measure for a task: its driver decides where the figures live.
fn read_task(alloc_id: &str, task: &str, handle: &dyn TaskHandle) -> Option<Reading> {
    match handle.state().driver.as_str() {
        caravan_drivers::exec::NAME => {
            read_cgroup(&caravan_drivers::exec::cgroup_name(alloc_id, task))
                .or_else(|| read_proc_tree(handle.pid()?))
        }
        caravan_drivers::mock::NAME => Some(Reading {
            nothing: true,
            ..Reading::default()
        }),
        _ => read_proc_tree(handle.pid()?),
    }
}

/// The task's usage from its reading and an earlier one (for the CPU percentages).
fn usage(reading: &Reading, prev: &Counters, mhz: f64) -> ResourceUsage {
    if reading.nothing {
        return ResourceUsage {
            cpu_stats: CpuStats {
                measured: Some(Vec::new()),
                ..CpuStats::default()
            },
            device_stats: None,
            memory_stats: MemoryStats {
                measured: Some(Vec::new()),
                ..MemoryStats::default()
            },
        };
    }
    let now = &reading.counters;
    let wall = match (now.at, prev.at) {
        (Some(a), Some(b)) => a.saturating_duration_since(b).as_nanos() as f64,
        _ => 0.0,
    };
    // Percent of one core, as Nomad's executor reports it (several cores can exceed 100).
    let pct = |now: u64, before: u64| {
        if wall <= 0.0 {
            0.0
        } else {
            now.saturating_sub(before) as f64 / wall * 100.0
        }
    };
    let percent = pct(now.total_ns, prev.total_ns);
    ResourceUsage {
        cpu_stats: CpuStats {
            measured: Some(reading.cpu_measured.clone()),
            percent,
            system_mode: pct(now.system_ns, prev.system_ns),
            throttled_periods: reading.throttled_periods,
            throttled_time: reading.throttled_time,
            total_ticks: percent / 100.0 * mhz,
            user_mode: pct(now.user_ns, prev.user_ns),
        },
        device_stats: None,
        memory_stats: reading.memory.clone(),
    }
}

/// A task's first reading, waiting for the second one when no earlier counters are known.
struct Pending {
    name: String,
    handle: Arc<dyn TaskHandle>,
    reading: Reading,
    prev: Option<Counters>,
}

/// Allocation stats, with the previous CPU counters of each task for the percentages.
#[derive(Clone)]
pub struct AllocStats {
    node: Arc<RwLock<Node>>,
    previous: Arc<Mutex<HashMap<(String, String), Counters>>>,
}

impl AllocStats {
    pub fn new(node: Arc<RwLock<Node>>) -> AllocStats {
        AllocStats {
            node,
            previous: Arc::default(),
        }
    }

    fn remembered(&self, key: &(String, String)) -> Option<Counters> {
        let prev = self.previous.lock().ok()?.get(key).cloned()?;
        let age = prev.at?.elapsed();
        (MIN_CPU_INTERVAL..=MAX_CPU_INTERVAL)
            .contains(&age)
            .then_some(prev)
    }

    fn remember(&self, key: (String, String), counters: Counters) {
        if let Ok(mut p) = self.previous.lock() {
            p.retain(|_, c| c.at.is_some_and(|at| at.elapsed() < MAX_CPU_INTERVAL * 6));
            p.insert(key, counters);
        }
    }

    /// The usage of the allocation's running tasks (only `task` when not empty; an unknown
    /// name gives no tasks).
    pub async fn alloc(&self, runner: &AllocRunner, task: &str) -> AllocResourceUsage {
        let states = runner.view().task_states.unwrap_or_default();
        let running: Vec<(String, Arc<dyn TaskHandle>)> = runner
            .task_handles()
            .into_iter()
            .filter(|(name, _)| task.is_empty() || name == task)
            .filter(|(name, _)| states.get(name).is_some_and(|s| s.state == STATE_RUNNING))
            .filter_map(|(name, h)| Some((name, h?)))
            .collect();
        let mhz = core_mhz(&self.node);
        let alloc_id = runner.id.clone();
        let mut first: Vec<Pending> = Vec::new();
        let mut need_second = false;
        for (name, handle) in running {
            let (id, n, h) = (alloc_id.clone(), name.clone(), handle.clone());
            let reading = tokio::task::spawn_blocking(move || read_task(&id, &n, h.as_ref()))
                .await
                .ok()
                .flatten();
            let Some(reading) = reading else { continue };
            let prev = self.remembered(&(alloc_id.clone(), name.clone()));
            need_second |= prev.is_none() && !reading.nothing;
            first.push(Pending {
                name,
                handle,
                reading,
                prev,
            });
        }
        if need_second {
            tokio::time::sleep(MIN_CPU_INTERVAL).await;
        }
        let mut out = AllocResourceUsage {
            resource_usage: ResourceUsage {
                device_stats: Some(Vec::new()),
                ..ResourceUsage::default()
            },
            ..AllocResourceUsage::default()
        };
        for Pending {
            name,
            handle,
            reading,
            prev,
        } in first
        {
            let (reading, prev) = match prev {
                Some(prev) => (reading, prev),
                None if reading.nothing => (reading, Counters::default()),
                None => {
                    let (id, n, h) = (alloc_id.clone(), name.clone(), handle.clone());
                    let again = tokio::task::spawn_blocking(move || read_task(&id, &n, h.as_ref()))
                        .await
                        .ok()
                        .flatten();
                    match again {
                        Some(again) => (again, reading.counters),
                        None => continue,
                    }
                }
            };
            self.remember((alloc_id.clone(), name.clone()), reading.counters.clone());
            let usage = usage(&reading, &prev, mhz);
            let timestamp = unix_nanos();
            out.resource_usage.add(&usage);
            out.timestamp = out.timestamp.max(timestamp);
            out.tasks.insert(
                name,
                TaskResourceUsage {
                    pids: None,
                    resource_usage: usage,
                    timestamp,
                },
            );
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cores_from_proc_stat() {
        let a = parse_proc_stat(
            "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\ncpu1 0 0 0 100 0 0 0 0\nintr 1\n",
        );
        let b =
            parse_proc_stat("cpu  0 0 0 0\ncpu0 60 0 20 120 0 0 0 0 0 0\ncpu1 0 0 0 200 0 0 0 0\n");
        assert_eq!(a.len(), 2);
        let s = core_stats(&a, &b, 2000.0);
        assert_eq!(s[0].cpu, "cpu0");
        assert_eq!(s[0].user, 50.0);
        assert_eq!(s[0].system, 10.0);
        assert_eq!(s[0].idle, 40.0);
        assert_eq!(s[0].total_percent, 60.0);
        assert_eq!(s[0].total_ticks, 1200.0);
        assert_eq!(s[1].idle, 100.0);
        assert_eq!(s[1].total_percent, 0.0);
    }

    #[test]
    fn memory_from_meminfo() {
        let m = parse_meminfo(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 50 kB\nCached: 300 kB\nSReclaimable: 50 kB\n",
        );
        assert_eq!(m.total, 1_024_000);
        assert_eq!(m.free, 102_400);
        assert_eq!(m.available, 614_400);
        assert_eq!(m.used, 500 * 1024);
    }

    #[test]
    fn pid_stat_with_odd_names() {
        let p = parse_pid_stat(
            7,
            "7 (a b) c) S 1 7 7 0 -1 4194560 100 0 0 0 25 5 0 0 20 0 1 0 100 1000000 42 18446744073709551615",
        )
        .unwrap();
        assert_eq!(
            (p.ppid, p.pgrp, p.utime, p.stime, p.rss_pages),
            (1, 7, 25, 5, 42)
        );
    }

    #[test]
    fn this_process_is_measured() {
        let r = read_proc_tree(std::process::id() as i32).unwrap();
        assert!(r.memory.rss > 0);
        assert!(!all_disks().is_empty());
        assert!(dir_disk(Path::new("/no/such/dir")).is_some_and(|d| d.size > 0));
        assert!(uptime() > 0);
    }
}
