//! CPU fingerprint: `cpu.arch`, `cpu.numcores`, `cpu.frequency`, `cpu.modelname`,
//! `cpu.totalcompute`, `cpu.reservablecores`, `cpu.usablecompute`, and the node's CPU shares.
//!
//! Sources, in order of preference:
//!
//! - **arch**: the Go `GOARCH` name of the architecture this agent binary runs as (Nomad reports
//!   its own `runtime.GOARCH`), e.g. `amd64`, `arm64`.
//! - **cores**: logical CPUs online: `processor` entries of `/proc/cpuinfo`, else
//!   `/sys/devices/system/cpu/online`, else sysinfo.
//! - **frequency** (MHz per core): `cpufreq/base_frequency`, then `cpufreq/cpuinfo_max_freq`
//!   (kHz) of the first online CPU in sysfs, then the `cpu MHz` line of `/proc/cpuinfo`, then
//!   sysinfo; if none is available (virtual machines and containers often hide it) a documented
//!   fallback of [`DEFAULT_MHZ_PER_CORE`], never 0.
//! - **model name**: `model name` (or the old ARM `Processor`) of `/proc/cpuinfo`, else sysinfo's
//!   brand string.
//! - **reservable cores**: the effective cpuset of this process's cgroup (v2
//!   `cpuset.cpus.effective`, v1 `cpuset.effective_cpus` / `cpuset.cpus`) intersected with the
//!   online CPUs, else the online CPUs; omitted when neither is readable.
//!
//! `cpu.totalcompute` = cores × frequency (also `NodeResources.Cpu.CpuShares`);
//! `cpu.usablecompute` = reservable cores × frequency, as Nomad 1.7+ reports them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::FingerprintError;

/// The frequency assumed per core when the machine does not expose one.
///
/// Nomad falls back to a fixed compute figure when it cannot read a CPU speed; Caravan assumes
/// 1000 MHz per core, so a node with hidden CPU speed still offers `1000 × cores` MHz of
/// compute instead of 0 (which would make it unschedulable).
pub(crate) const DEFAULT_MHZ_PER_CORE: u64 = 1000;

const CPUINFO: &str = "/proc/cpuinfo";
const SYS_CPU: &str = "/sys/devices/system/cpu";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const SELF_CGROUP: &str = "/proc/self/cgroup";

/// Where `cpu.frequency` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrequencySource {
    /// `cpufreq/base_frequency` (nominal speed, Intel P-state).
    SysfsBase,
    /// `cpufreq/cpuinfo_max_freq`.
    SysfsMax,
    /// `cpu MHz` of `/proc/cpuinfo`.
    ProcCpuinfo,
    /// sysinfo's per-CPU frequency.
    Sysinfo,
    /// Nothing readable: [`DEFAULT_MHZ_PER_CORE`].
    Default,
}

/// The measured CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpuFingerprint {
    pub(crate) arch: &'static str,
    pub(crate) cores: u32,
    pub(crate) mhz: u64,
    pub(crate) frequency_source: FrequencySource,
    pub(crate) model_name: Option<String>,
    pub(crate) reservable_cores: Option<u32>,
}

impl CpuFingerprint {
    /// Cores × MHz per core.
    pub(crate) fn total_compute(&self) -> u64 {
        u64::from(self.cores).saturating_mul(self.mhz)
    }

    pub(crate) fn apply(&self, attrs: &mut BTreeMap<String, String>) {
        attrs.insert("cpu.arch".to_owned(), self.arch.to_owned());
        attrs.insert("cpu.numcores".to_owned(), self.cores.to_string());
        attrs.insert("cpu.frequency".to_owned(), self.mhz.to_string());
        attrs.insert(
            "cpu.totalcompute".to_owned(),
            self.total_compute().to_string(),
        );
        if let Some(model) = &self.model_name {
            attrs.insert("cpu.modelname".to_owned(), model.clone());
        }
        if let Some(reservable) = self.reservable_cores {
            attrs.insert("cpu.reservablecores".to_owned(), reservable.to_string());
            attrs.insert(
                "cpu.usablecompute".to_owned(),
                u64::from(reservable).saturating_mul(self.mhz).to_string(),
            );
        }
    }
}

/// Maps a Rust `target_arch` name to Go's `GOARCH` name (unknown names pass through).
pub(crate) fn go_arch(rust_arch: &'static str, little_endian: bool) -> &'static str {
    match (rust_arch, little_endian) {
        ("x86_64", _) => "amd64",
        ("x86", _) => "386",
        ("aarch64", _) => "arm64",
        ("arm", _) => "arm",
        ("loongarch64", _) => "loong64",
        ("powerpc64", true) => "ppc64le",
        ("powerpc64", false) => "ppc64",
        ("mips", true) => "mipsle",
        ("mips", false) => "mips",
        ("mips64", true) => "mips64le",
        ("mips64", false) => "mips64",
        ("wasm32", _) => "wasm",
        (other, _) => other,
    }
}

/// The `GOARCH` name of this binary's architecture.
pub(crate) fn this_go_arch() -> &'static str {
    go_arch(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

/// What `/proc/cpuinfo` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpuInfo {
    /// Number of `processor` entries (logical CPUs online).
    pub(crate) processors: u32,
    /// The first model name.
    pub(crate) model_name: Option<String>,
    /// The first valid `cpu MHz`, rounded to whole MHz.
    pub(crate) mhz: Option<u64>,
}

/// Parses `/proc/cpuinfo`. Lines are `key<tabs>: value`; unknown keys and lines without a colon
/// are ignored, an unparsable or non-positive `cpu MHz` counts as absent. Text without any
/// `processor` entry is an error.
pub(crate) fn parse_cpuinfo(text: &str) -> Result<CpuInfo, FingerprintError> {
    let mut info = CpuInfo {
        processors: 0,
        model_name: None,
        mhz: None,
    };
    let mut arm_processor_name = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "processor" => info.processors = info.processors.saturating_add(1),
            "model name" if info.model_name.is_none() && !value.is_empty() => {
                info.model_name = Some(value.to_owned());
            }
            // Old ARM kernels: "Processor : ARMv7 Processor rev 4 (v7l)".
            "Processor" if arm_processor_name.is_none() && !value.is_empty() => {
                arm_processor_name = Some(value.to_owned());
            }
            "cpu MHz" if info.mhz.is_none() => {
                info.mhz = value
                    .parse::<f64>()
                    .ok()
                    .filter(|mhz| mhz.is_finite() && *mhz >= 1.0 && *mhz < 1.0e6)
                    // bounded by the filter: the cast neither truncates nor wraps
                    .map(|mhz| mhz.round() as u64);
            }
            _ => {}
        }
    }
    if info.model_name.is_none() {
        info.model_name = arm_processor_name;
    }
    if info.processors == 0 {
        return Err(FingerprintError::parse(
            "/proc/cpuinfo",
            "no \"processor\" entry",
        ));
    }
    Ok(info)
}

/// Parses a kernel CPU list such as `0-3,8,10-11` (`/sys/devices/system/cpu/online`,
/// `cpuset.cpus.effective`). Blank text is the empty set.
pub(crate) fn parse_cpu_list(text: &str) -> Result<BTreeSet<u32>, FingerprintError> {
    const MAX_CPUS: u32 = 1 << 16;
    let mut cpus = BTreeSet::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(cpus);
    }
    for part in text.split(',') {
        let part = part.trim();
        let bad = || FingerprintError::parse("cpu list", format!("bad range {part:?} in {text:?}"));
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            ),
            None => {
                let n = part.parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if first > last || last >= MAX_CPUS {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

/// Parses a sysfs cpufreq file (kHz) into whole MHz; 0 or garbage is an error.
pub(crate) fn parse_khz_as_mhz(text: &str) -> Result<u64, FingerprintError> {
    let khz: u64 = text
        .trim()
        .parse()
        .map_err(|_| FingerprintError::parse("cpufreq", format!("not a kHz value: {text:?}")))?;
    let mhz = (khz + 500) / 1000;
    if mhz == 0 {
        return Err(FingerprintError::parse(
            "cpufreq",
            format!("frequency below 1 MHz: {khz} kHz"),
        ));
    }
    Ok(mhz)
}

/// The cpuset files that may hold this process's usable CPUs, most specific first, from the
/// text of `/proc/self/cgroup` (`hierarchy-id:controllers:path` lines).
pub(crate) fn cpuset_candidates(self_cgroup: &str, cgroup_root: &Path) -> Vec<PathBuf> {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            continue;
        }
        let relative = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            v2.push(cgroup_root.join(relative).join("cpuset.cpus.effective"));
        } else if controllers.split(',').any(|c| c == "cpuset") {
            let dir = cgroup_root.join("cpuset").join(relative);
            v1.push(dir.join("cpuset.effective_cpus"));
            v1.push(dir.join("cpuset.cpus"));
        }
    }
    v2.extend(v1);
    v2
}

/// Counts the usable cores: the first readable, non-empty cpuset among `candidates`
/// intersected with `online` (when known), else the online CPUs.
pub(crate) fn reservable_cores(
    candidates: &[PathBuf],
    online: Option<&BTreeSet<u32>>,
    read: impl Fn(&Path) -> Option<String>,
) -> Option<u32> {
    let cpuset = candidates.iter().find_map(|path| {
        let text = read(path)?;
        match parse_cpu_list(&text) {
            Ok(set) if !set.is_empty() => Some(set),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "ignoring cpuset");
                None
            }
        }
    });
    let usable = match (cpuset, online) {
        (Some(set), Some(online)) => set.intersection(online).count(),
        (Some(set), None) => set.len(),
        (None, Some(online)) => online.len(),
        (None, None) => return None,
    };
    u32::try_from(usable).ok().filter(|n| *n > 0)
}

/// Picks the frequency: the first source that yields a value, else the default.
pub(crate) fn choose_frequency(
    sources: impl IntoIterator<Item = (FrequencySource, Option<u64>)>,
) -> (u64, FrequencySource) {
    sources
        .into_iter()
        .find_map(|(source, mhz)| mhz.filter(|m| *m > 0).map(|m| (m, source)))
        .unwrap_or((DEFAULT_MHZ_PER_CORE, FrequencySource::Default))
}

fn read_to_string(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// sysinfo's view of the CPUs, loaded only when a /proc or /sys source is missing.
struct SysinfoCpus {
    system: Option<sysinfo::System>,
    loaded: bool,
}

impl SysinfoCpus {
    fn cpus(&mut self) -> &[sysinfo::Cpu] {
        if !self.loaded {
            self.loaded = true;
            self.system = sysinfo::System::new().ok().map(|mut sys| {
                sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing().with_frequency());
                sys
            });
        }
        self.system.as_ref().map_or(&[], |sys| sys.cpus())
    }
}

pub(crate) fn detect() -> Result<CpuFingerprint, FingerprintError> {
    let cpuinfo = match read_to_string(Path::new(CPUINFO)) {
        Some(text) => parse_cpuinfo(&text)
            .inspect_err(|e| tracing::debug!(error = %e, "ignoring /proc/cpuinfo"))
            .ok(),
        None => None,
    };
    let online = read_to_string(&Path::new(SYS_CPU).join("online"))
        .and_then(|text| parse_cpu_list(&text).ok())
        .filter(|set| !set.is_empty());
    let mut sysinfo_cpus = SysinfoCpus {
        system: None,
        loaded: false,
    };

    let cores = match (&cpuinfo, &online) {
        (Some(info), _) => info.processors,
        (None, Some(online)) => u32::try_from(online.len()).unwrap_or(u32::MAX),
        (None, None) => u32::try_from(sysinfo_cpus.cpus().len()).unwrap_or(u32::MAX),
    };
    if cores == 0 {
        return Err(FingerprintError::Cpu(
            "no CPU found in /proc/cpuinfo, /sys/devices/system/cpu/online or sysinfo".to_owned(),
        ));
    }

    let first_cpu = online
        .as_ref()
        .and_then(|set| set.first().copied())
        .unwrap_or(0);
    let cpufreq = Path::new(SYS_CPU).join(format!("cpu{first_cpu}/cpufreq"));
    let sysfs = |file: &str| {
        read_to_string(&cpufreq.join(file)).and_then(|text| parse_khz_as_mhz(&text).ok())
    };
    let from_sysfs_base = sysfs("base_frequency");
    let from_sysfs_max = sysfs("cpuinfo_max_freq");
    let from_cpuinfo = cpuinfo.as_ref().and_then(|info| info.mhz);
    let from_sysinfo = if from_sysfs_base
        .or(from_sysfs_max)
        .or(from_cpuinfo)
        .is_none()
    {
        sysinfo_cpus.cpus().first().map(sysinfo::Cpu::frequency)
    } else {
        None
    };
    let (mhz, frequency_source) = choose_frequency([
        (FrequencySource::SysfsBase, from_sysfs_base),
        (FrequencySource::SysfsMax, from_sysfs_max),
        (FrequencySource::ProcCpuinfo, from_cpuinfo),
        (FrequencySource::Sysinfo, from_sysinfo),
    ]);
    if frequency_source == FrequencySource::Default {
        tracing::warn!(
            mhz,
            "CPU frequency not exposed by this machine; assuming the default per core"
        );
    }

    let model_name = cpuinfo
        .as_ref()
        .and_then(|info| info.model_name.clone())
        .or_else(|| {
            sysinfo_cpus
                .cpus()
                .first()
                .map(|cpu| cpu.brand().trim().to_owned())
                .filter(|brand| !brand.is_empty())
        });

    let candidates = read_to_string(Path::new(SELF_CGROUP))
        .map(|text| cpuset_candidates(&text, Path::new(CGROUP_ROOT)))
        .unwrap_or_default();
    let reservable =
        reservable_cores(&candidates, online.as_ref(), read_to_string).map(|n| n.min(cores));

    Ok(CpuFingerprint {
        arch: this_go_arch(),
        cores,
        mhz,
        frequency_source,
        model_name,
        reservable_cores: reservable,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const X86_CPUINFO: &str = "processor\t: 0\n\
vendor_id\t: AuthenticAMD\n\
model name\t: AMD EPYC 7B13\n\
cpu MHz\t\t: 2596.096\n\
flags\t\t: fpu vme\n\
power management:\n\
\n\
processor\t: 1\n\
vendor_id\t: AuthenticAMD\n\
model name\t: AMD EPYC 7B13\n\
cpu MHz\t\t: 2800.000\n\
\n";

    const ARM_CPUINFO: &str = "processor\t: 0\n\
BogoMIPS\t: 50.00\n\
Features\t: fp asimd evtstrm\n\
CPU implementer\t: 0x41\n\
\n\
processor\t: 1\n\
BogoMIPS\t: 50.00\n\
\n\
processor\t: 2\n\
\n\
processor\t: 3\n";

    #[test]
    fn parses_x86_cpuinfo() {
        let info = parse_cpuinfo(X86_CPUINFO).unwrap();
        assert_eq!(
            info,
            CpuInfo {
                processors: 2,
                model_name: Some("AMD EPYC 7B13".to_owned()),
                mhz: Some(2596),
            }
        );
    }

    #[test]
    fn parses_arm_cpuinfo_without_speed_or_model() {
        let info = parse_cpuinfo(ARM_CPUINFO).unwrap();
        assert_eq!(info.processors, 4);
        assert_eq!(info.model_name, None);
        assert_eq!(info.mhz, None);

        let old_arm = "Processor\t: ARMv7 Processor rev 4 (v7l)\nprocessor\t: 0\n";
        let info = parse_cpuinfo(old_arm).unwrap();
        assert_eq!(
            info.model_name.as_deref(),
            Some("ARMv7 Processor rev 4 (v7l)")
        );
    }

    #[test]
    fn malformed_cpuinfo_is_an_error_or_ignored() {
        // no processor at all: error
        for text in [
            "",
            "garbage without colons\n\n",
            "model name : X\ncpu MHz : 100\n",
        ] {
            let err = parse_cpuinfo(text).unwrap_err();
            assert!(matches!(err, FingerprintError::Parse { .. }), "{text:?}");
        }
        // bad speeds are ignored, not fatal
        for mhz in ["fast", "-3", "0", "NaN", "inf", "1e30", ""] {
            let text = format!("processor : 0\ncpu MHz : {mhz}\nthis line has no colon\n");
            let info = parse_cpuinfo(&text).unwrap();
            assert_eq!(info.mhz, None, "{mhz:?}");
        }
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            [0, 1, 2, 3, 8, 10, 11].into_iter().collect()
        );
        assert_eq!(parse_cpu_list("0").unwrap(), [0].into_iter().collect());
        assert!(parse_cpu_list("\n").unwrap().is_empty());
        for bad in ["a-b", "3-1", "1,,2", "-", "0-99999999", "1-2-3"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_cpufreq_khz() {
        assert_eq!(parse_khz_as_mhz("3500000\n").unwrap(), 3500);
        assert_eq!(parse_khz_as_mhz("2596096").unwrap(), 2596);
        for bad in ["", "0", "12", "fast", "-1"] {
            assert!(parse_khz_as_mhz(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn frequency_falls_back_in_order_and_never_to_zero() {
        assert_eq!(
            choose_frequency([
                (FrequencySource::SysfsBase, None),
                (FrequencySource::SysfsMax, Some(3000)),
                (FrequencySource::ProcCpuinfo, Some(2500)),
            ]),
            (3000, FrequencySource::SysfsMax)
        );
        assert_eq!(
            choose_frequency([
                (FrequencySource::ProcCpuinfo, None),
                (FrequencySource::Sysinfo, Some(0)),
            ]),
            (DEFAULT_MHZ_PER_CORE, FrequencySource::Default)
        );
    }

    #[test]
    fn finds_cpuset_files_for_both_cgroup_versions() {
        let root = Path::new("/sys/fs/cgroup");
        let v2 = cpuset_candidates("0::/system.slice/caravan.service\n", root);
        assert_eq!(
            v2,
            vec![PathBuf::from(
                "/sys/fs/cgroup/system.slice/caravan.service/cpuset.cpus.effective"
            )]
        );
        let v1 = cpuset_candidates("4:memory:/x\n3:cpuset,cpu:/docker/abc\n0::/\n", root);
        assert_eq!(
            v1,
            vec![
                PathBuf::from("/sys/fs/cgroup/cpuset.cpus.effective"),
                PathBuf::from("/sys/fs/cgroup/cpuset/docker/abc/cpuset.effective_cpus"),
                PathBuf::from("/sys/fs/cgroup/cpuset/docker/abc/cpuset.cpus"),
            ]
        );
        assert!(cpuset_candidates("garbage\n3:cpuset:relative\n1:cpuset:/../x\n", root).is_empty());
    }

    #[test]
    fn reservable_cores_intersect_cpuset_and_online() {
        let online: BTreeSet<u32> = (0..4).collect();
        let files = [PathBuf::from("/a"), PathBuf::from("/b")];
        let read = |p: &Path| match p.to_str() {
            Some("/a") => Some("garbage".to_owned()),
            Some("/b") => Some("2-5\n".to_owned()),
            _ => None,
        };
        assert_eq!(reservable_cores(&files, Some(&online), read), Some(2));
        assert_eq!(reservable_cores(&files, None, read), Some(4));
        assert_eq!(reservable_cores(&[], Some(&online), read), Some(4));
        assert_eq!(reservable_cores(&[], None, read), None);
    }

    #[test]
    fn maps_rust_arches_to_go() {
        assert_eq!(go_arch("x86_64", true), "amd64");
        assert_eq!(go_arch("aarch64", true), "arm64");
        assert_eq!(go_arch("x86", true), "386");
        assert_eq!(go_arch("powerpc64", true), "ppc64le");
        assert_eq!(go_arch("powerpc64", false), "ppc64");
        assert_eq!(go_arch("riscv64", true), "riscv64");
        assert_eq!(go_arch("s390x", false), "s390x");
    }

    #[test]
    fn detects_this_cpu() {
        let cpu = detect().unwrap();
        assert!(cpu.cores > 0);
        assert!(cpu.mhz > 0);
        assert_eq!(cpu.total_compute(), u64::from(cpu.cores) * cpu.mhz);
        assert_eq!(cpu.arch, this_go_arch());
        if let Some(reservable) = cpu.reservable_cores {
            assert!(reservable > 0 && reservable <= cpu.cores);
        }
    }
}
