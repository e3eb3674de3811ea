//! Task cgroups on cgroup v1 and v2.
//!
//! A task's group is `<hierarchy>/caravan/<name>`: on v2 one directory under
//! `/sys/fs/cgroup`; on v1 one per controller hierarchy we use (memory and cpu, plus cpuacct for
//! CPU statistics and pids when mounted), found from `/proc/self/mountinfo` so that co-mounted
//! controllers (`cpu,cpuacct`) share a directory. The version is decided at runtime:
//! `/sys/fs/cgroup/cgroup.controllers` exists → pure v2; otherwise v1 (a hybrid host's
//! `/sys/fs/cgroup/unified` carries no controllers, so it is ignored).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::IsolationError;
use crate::{CgroupSpec, CgroupStats, CpuStats, MemoryStats};

/// The group under which every task group lives, in each hierarchy.
pub(crate) const PARENT: &str = "caravan";

const V2_ROOT: &str = "/sys/fs/cgroup";

/// How long `destroy` keeps killing and retrying while the group still holds processes
/// (a killed process leaves the group only once reaped).
const DESTROY_PATIENCE: Duration = Duration::from_secs(5);

/// Memory figures v1 measures (Nomad's names).
pub(crate) const V1_MEMORY_MEASURED: &[&str] = &[
    "RSS",
    "Cache",
    "Swap",
    "Usage",
    "Max Usage",
    "Kernel Usage",
    "Kernel Max Usage",
];
/// Memory figures v2 measures (Nomad's names).
pub(crate) const V2_MEMORY_MEASURED: &[&str] = &["RSS", "Cache", "Swap", "Usage"];
/// CPU figures measured on both versions ("Percent" is computed by the caller from deltas).
pub(crate) const CPU_MEASURED: &[&str] = &[
    "System Mode",
    "User Mode",
    "Throttled Periods",
    "Throttled Time",
    "Percent",
];

/// The host's cgroup layout.
pub(crate) enum Layout {
    /// Pure v2: the unified mount.
    V2(PathBuf),
    /// v1: the mount point of each controller hierarchy we use.
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        cpuacct: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
}

impl Layout {
    pub(crate) fn detect() -> Result<Self, IsolationError> {
        let v2 = Path::new(V2_ROOT);
        if v2.join("cgroup.controllers").exists() {
            return Ok(Layout::V2(v2.to_path_buf()));
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| IsolationError::io("reading /proc/self/mountinfo", e))?;
        let find = |controller: &str| v1_mount(&mounts, controller);
        let memory = find("memory").ok_or_else(|| {
            IsolationError::Cgroup("the cgroup v1 memory controller is not mounted".into())
        })?;
        let cpu = find("cpu").ok_or_else(|| {
            IsolationError::Cgroup("the cgroup v1 cpu controller is not mounted".into())
        })?;
        Ok(Layout::V1 {
            memory,
            cpu,
            cpuacct: find("cpuacct"),
            pids: find("pids"),
        })
    }

    /// The `caravan` parent group in each distinct hierarchy; the first is the one whose
    /// `cgroup.procs` is authoritative (v2's only one; v1's memory).
    fn parents(&self) -> Vec<PathBuf> {
        let mounts: Vec<&PathBuf> = match self {
            Layout::V2(root) => vec![root],
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
                pids,
            } => {
                let mut all = vec![memory, cpu];
                all.extend(cpuacct.iter());
                all.extend(pids.iter());
                all
            }
        };
        let mut parents: Vec<PathBuf> = Vec::new();
        for mount in mounts {
            let dir = mount.join(PARENT);
            if !parents.contains(&dir) {
                parents.push(dir);
            }
        }
        parents
    }

    /// The task group's directories, in the order of [`Layout::parents`].
    fn dirs(&self, name: &str) -> Vec<PathBuf> {
        self.parents().into_iter().map(|p| p.join(name)).collect()
    }

    /// Creates the `caravan` parent group(s); on v2 also delegates the memory and cpu
    /// controllers down to it (a child can only use controllers its parent enables).
    pub(crate) fn ensure_parent(&self) -> Result<(), IsolationError> {
        match self {
            Layout::V2(root) => {
                let available = read_words(&root.join("cgroup.controllers"))?;
                for needed in ["memory", "cpu"] {
                    if !available.contains(needed) {
                        return Err(IsolationError::Cgroup(format!(
                            "the cgroup v2 hierarchy at {} lacks the {needed} controller",
                            root.display()
                        )));
                    }
                }
                let parent = root.join(PARENT);
                enable_controllers(root)?;
                mkdir(&parent)?;
                enable_controllers(&parent)
            }
            Layout::V1 { .. } => {
                for dir in self.parents() {
                    mkdir(&dir)?;
                }
                Ok(())
            }
        }
    }
}

/// The mount point of the v1 hierarchy carrying `controller` (in its super options).
fn v1_mount(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mut fs = fs.split_whitespace();
        if fs.next()? != "cgroup" {
            return None;
        }
        let options = fs.nth(1)?;
        if !options.split(',').any(|o| o == controller) {
            return None;
        }
        mount.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Enables memory and cpu (and pids when available, best effort) for the children of `dir`.
fn enable_controllers(dir: &Path) -> Result<(), IsolationError> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = read_words(&control)?;
    for controller in ["memory", "cpu"] {
        if !enabled.contains(controller) {
            write(&control, &format!("+{controller}"))?;
        }
    }
    if !enabled.contains("pids") {
        let _ = fs::write(&control, "+pids");
    }
    Ok(())
}

fn read_words(path: &Path) -> Result<BTreeSet<String>, IsolationError> {
    let text = fs::read_to_string(path)
        .map_err(|e| IsolationError::io(format!("reading {}", path.display()), e))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

fn write(path: &Path, value: &str) -> Result<(), IsolationError> {
    fs::write(path, value)
        .map_err(|e| IsolationError::io(format!("writing {value:?} to {}", path.display()), e))
}

fn mkdir(dir: &Path) -> Result<(), IsolationError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(IsolationError::io(
            format!("creating cgroup {}", dir.display()),
            e,
        )),
    }
}

/// A group name is one path component: it must not walk out of the `caravan` parent.
fn check_name(name: &str) -> Result<(), IsolationError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(IsolationError::Invalid(format!(
            "cgroup name {name:?} must be a single path component"
        )));
    }
    Ok(())
}

/// v2's cpu.weight (1..=10000, default 100) from v1 shares (2..=262144, default 1024): the
/// linear mapping runc and Nomad use, so 1024 shares → weight 39 on both sides of the fleet.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// A created task group, ready to be joined.
pub(crate) struct Group {
    dirs: Vec<PathBuf>,
}

impl Group {
    /// Opens every `cgroup.procs` of the group for the child to write itself into.
    pub(crate) fn open_procs(&self) -> Result<Vec<(OwnedFd, PathBuf)>, IsolationError> {
        self.dirs
            .iter()
            .map(|dir| {
                let procs = dir.join("cgroup.procs");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&procs)
                    .map_err(|e| IsolationError::io(format!("opening {}", procs.display()), e))?;
                Ok((OwnedFd::from(file), dir.clone()))
            })
            .collect()
    }
}

/// Creates (or reuses) the task's group and writes its limits.
pub(crate) fn create(spec: &CgroupSpec) -> Result<Group, IsolationError> {
    check_name(&spec.name)?;
    let layout = Layout::detect()?;
    layout.ensure_parent()?;
    let dirs = layout.dirs(&spec.name);
    for dir in &dirs {
        mkdir(dir)?;
    }
    let hard = spec.memory_max_bytes.unwrap_or(spec.memory_bytes);
    // With a separate max, `memory` is the reservation the kernel reclaims down to under
    // pressure (Nomad's memory oversubscription).
    let soft = spec.memory_max_bytes.map(|_| spec.memory_bytes);
    match &layout {
        Layout::V2(_) => {
            let dir = &dirs[0];
            if hard > 0 {
                write(&dir.join("memory.max"), &hard.to_string())?;
                // Memory means RAM: no swapping past the limit (as v1's memsw below).
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(soft) = soft {
                write(&dir.join("memory.low"), &soft.to_string())?;
            }
            if spec.cpu_shares > 0 {
                let weight = shares_to_weight(spec.cpu_shares);
                write(&dir.join("cpu.weight"), &weight.to_string())?;
            }
        }
        Layout::V1 { memory, cpu, .. } => {
            let mem = memory.join(PARENT).join(&spec.name);
            if hard > 0 {
                // memsw (memory+swap) must stay ≥ the memory limit at every write: lift it,
                // set the limit, then pin memsw to it. memsw exists only with swap accounting.
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                let _ = fs::write(&memsw, "-1");
                write(&mem.join("memory.limit_in_bytes"), &hard.to_string())?;
                let _ = fs::write(&memsw, hard.to_string());
            }
            if let Some(soft) = soft {
                write(&mem.join("memory.soft_limit_in_bytes"), &soft.to_string())?;
            }
            if spec.cpu_shares > 0 {
                let shares = spec.cpu_shares.max(2);
                let dir = cpu.join(PARENT).join(&spec.name);
                write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
        }
    }
    Ok(Group { dirs })
}

/// Opens the `cgroup.procs` files of an existing group (for `enter_and_spawn`).
pub(crate) fn existing(name: &str) -> Result<Group, IsolationError> {
    check_name(name)?;
    let dirs = Layout::detect()?.dirs(name);
    if let Some(missing) = dirs.iter().find(|d| !d.is_dir()) {
        return Err(IsolationError::io(
            format!("cgroup {}", missing.display()),
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    Ok(Group { dirs })
}

fn read_procs(dir: &Path) -> Result<Vec<i32>, IsolationError> {
    let path = dir.join("cgroup.procs");
    let text = fs::read_to_string(&path)
        .map_err(|e| IsolationError::io(format!("reading {}", path.display()), e))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

pub(crate) fn pids(name: &str) -> Result<Vec<i32>, IsolationError> {
    check_name(name)?;
    let dirs = Layout::detect()?.dirs(name);
    // The authoritative hierarchy must exist; others (v1) add processes that somehow left it.
    let mut pids = read_procs(&dirs[0])?;
    for dir in &dirs[1..] {
        if let Ok(more) = read_procs(dir) {
            pids.extend(more);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

pub(crate) fn destroy(name: &str) -> Result<(), IsolationError> {
    check_name(name)?;
    let mut dirs: Vec<PathBuf> = Layout::detect()?
        .dirs(name)
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    let deadline = Instant::now() + DESTROY_PATIENCE;
    let mut pause = Duration::from_millis(5);
    loop {
        for dir in &dirs {
            // v2 (5.14+) kills the whole group atomically, racing no fork.
            let kill_file = dir.join("cgroup.kill");
            if kill_file.exists() {
                let _ = fs::write(&kill_file, "1");
            }
            // 0 stands for a process outside our pid namespace; kill(0) would hit our own group.
            for pid in read_procs(dir)
                .unwrap_or_default()
                .into_iter()
                .filter(|&p| p > 1)
            {
                // SAFETY: kill has no memory-safety preconditions; ESRCH (already gone) is fine.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let mut busy = None;
        dirs.retain(|dir| match fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                busy = Some((dir.clone(), e));
                true
            }
        });
        match busy {
            None => return Ok(()),
            Some((dir, e)) if Instant::now() >= deadline => {
                return Err(IsolationError::io(
                    format!(
                        "removing cgroup {} (processes still in it: {:?})",
                        dir.display(),
                        read_procs(&dir).unwrap_or_default()
                    ),
                    e,
                ));
            }
            Some(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat) as a map.
fn read_keyed(path: &Path) -> HashMap<String, u64> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// A single-number file; 0 when absent (e.g. kmem files removed from newer kernels).
fn read_number(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn stats(name: &str) -> Result<CgroupStats, IsolationError> {
    check_name(name)?;
    let layout = Layout::detect()?;
    let dirs = layout.dirs(name);
    if !dirs[0].is_dir() {
        return Err(IsolationError::io(
            format!("cgroup {}", dirs[0].display()),
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    Ok(match &layout {
        Layout::V2(_) => {
            let dir = &dirs[0];
            let mem = read_keyed(&dir.join("memory.stat"));
            let cpu = read_keyed(&dir.join("cpu.stat"));
            let usec = |key: &str| cpu.get(key).copied().unwrap_or(0).saturating_mul(1000);
            CgroupStats {
                memory: MemoryStats {
                    rss: mem.get("anon").copied().unwrap_or(0),
                    cache: mem.get("file").copied().unwrap_or(0),
                    swap: read_number(&dir.join("memory.swap.current")),
                    usage: read_number(&dir.join("memory.current")),
                    max_usage: 0,
                    kernel_usage: 0,
                    kernel_max_usage: 0,
                    measured: V2_MEMORY_MEASURED,
                },
                cpu: CpuStats {
                    user_ns: usec("user_usec"),
                    system_ns: usec("system_usec"),
                    total_ns: usec("usage_usec"),
                    throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
                    throttled_time_ns: usec("throttled_usec"),
                    measured: CPU_MEASURED,
                },
            }
        }
        Layout::V1 {
            memory,
            cpu,
            cpuacct,
            ..
        } => {
            let mem_dir = memory.join(PARENT).join(name);
            let mem = read_keyed(&mem_dir.join("memory.stat"));
            let cpu_stat = read_keyed(&cpu.join(PARENT).join(name).join("cpu.stat"));
            let (user_ns, system_ns, total_ns) = match cpuacct {
                Some(acct) => v1_cpu_times(&acct.join(PARENT).join(name)),
                None => (0, 0, 0),
            };
            CgroupStats {
                memory: MemoryStats {
                    rss: mem.get("rss").copied().unwrap_or(0),
                    cache: mem.get("cache").copied().unwrap_or(0),
                    swap: mem.get("swap").copied().unwrap_or(0),
                    usage: read_number(&mem_dir.join("memory.usage_in_bytes")),
                    max_usage: read_number(&mem_dir.join("memory.max_usage_in_bytes")),
                    kernel_usage: read_number(&mem_dir.join("memory.kmem.usage_in_bytes")),
                    kernel_max_usage: read_number(&mem_dir.join("memory.kmem.max_usage_in_bytes")),
                    measured: V1_MEMORY_MEASURED,
                },
                cpu: CpuStats {
                    user_ns,
                    system_ns,
                    total_ns,
                    throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
                    throttled_time_ns: cpu_stat.get("throttled_time").copied().unwrap_or(0),
                    measured: CPU_MEASURED,
                },
            }
        }
    })
}

/// (user, system, total) ns from a v1 cpuacct group: the ns-precise `usage_user`/`usage_sys`
/// where the kernel has them, else `cpuacct.stat`'s clock ticks.
fn v1_cpu_times(dir: &Path) -> (u64, u64, u64) {
    let total = read_number(&dir.join("cpuacct.usage"));
    let (user, sys) = (
        dir.join("cpuacct.usage_user"),
        dir.join("cpuacct.usage_sys"),
    );
    if user.exists() && sys.exists() {
        return (read_number(&user), read_number(&sys), total);
    }
    let stat = read_keyed(&dir.join("cpuacct.stat"));
    // SAFETY: sysconf has no preconditions.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(100);
    let ns = |key: &str| {
        stat.get(key)
            .copied()
            .unwrap_or(0)
            .saturating_mul(1_000_000_000 / ticks)
    };
    (ns("user"), ns("system"), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
    }

    #[test]
    fn finds_v1_mounts() {
        let info = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v1_mount(info, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            v1_mount(info, "cpuacct"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            v1_mount(info, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        assert_eq!(v1_mount(info, "pids"), None);
    }

    #[test]
    fn names_stay_inside_the_parent() {
        assert!(check_name("a.web").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
