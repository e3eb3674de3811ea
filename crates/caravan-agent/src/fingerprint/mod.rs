//! Machine fingerprinting, as Nomad's client does it.
//!
//! [`fingerprint`] measures this machine once and returns the node attributes (with Nomad's
//! names and formats: `cpu.*`, `memory.totalbytes`, `kernel.*`, `os.*`, `unique.*`,
//! `nomad.*`, `driver.*`) together with the resources the node offers to the scheduler
//! (`NodeResources.Cpu.CpuShares`, `Memory.MemoryMB`, `Disk.DiskMB`, `Networks`).
//!
//! One file per fingerprinter, each split into small pure parsing helpers (tested on fixture
//! text) and a `detect` function that reads the live machine:
//!
//! | file         | attributes                                                        | source                                                      |
//! |--------------|-------------------------------------------------------------------|-------------------------------------------------------------|
//! | `cpu.rs`     | `cpu.arch`, `cpu.numcores`, `cpu.frequency`, `cpu.modelname`, `cpu.totalcompute`, `cpu.reservablecores`, `cpu.usablecompute` | `/proc/cpuinfo`, `/sys/devices/system/cpu`, cgroup cpuset, sysinfo |
//! | `memory.rs`  | `memory.totalbytes`                                               | `/proc/meminfo` (`MemTotal`), sysinfo                       |
//! | `host.rs`    | `kernel.name`, `kernel.version`, `kernel.arch`, `os.name`, `os.version`, `os.signals`, `unique.hostname` | uname (via sysinfo / `/proc/sys/kernel`), `/etc/os-release` |
//! | `storage.rs` | `unique.storage.volume`, `unique.storage.bytestotal`, `unique.storage.bytesfree` | statvfs of the data dir's mount (via sysinfo), `df -kP` fallback |
//! | `network.rs` | `unique.network.ip-address`                                       | `/proc/net/route`, `/proc/net/ipv6_route`, interface addresses (sysinfo), `/sys/class/net/*/speed` |
//! | `nomad.rs`   | `nomad.*` (version, revision, advertise address, service discovery), `caravan.version` | the agent's configuration                                   |
//! | `drivers.rs` | `driver.<name>` and each detected driver's own attributes         | the caller's driver probes                                  |
//!
//! Fingerprinting is synchronous and does blocking file system reads (and, in the rare storage
//! fallback, runs `df`): call it from `tokio::task::spawn_blocking` in async code.

mod cpu;
mod drivers;
mod host;
mod memory;
mod network;
mod nomad;
mod storage;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use drivers::DriverProbe;

/// Bytes in one MiB: Nomad's `MemoryMB` and `DiskMB` are MiB.
const BYTES_PER_MB: u64 = 1024 * 1024;

/// What the caller tells the fingerprinters about this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintConfig {
    /// The agent's data directory: the storage fingerprint measures the volume holding it. If it
    /// does not exist yet, the nearest existing ancestor is measured (where it will be created).
    pub data_dir: PathBuf,
    /// The HTTP address the node advertises, e.g. `127.0.0.1:4646` (`nomad.advertise.address`).
    pub advertise_http: String,
    /// The network interface to fingerprint. `None`: the interface of the default route, falling
    /// back to the loopback interface when there is none.
    pub network_interface: Option<String>,
    /// The Nomad version the agent implements (`nomad.version`).
    pub version: String,
    /// Whether the client runs Nomad's native service discovery (`nomad.service_discovery`).
    pub service_discovery: bool,
    /// The drivers to report, probed by the caller.
    pub drivers: Vec<DriverProbe>,
}

/// One address of the fingerprinted interface, as an entry of Nomad's `NodeResources.Networks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFingerprint {
    /// The interface name, e.g. `eth0` or `lo`.
    pub device: String,
    /// The address as a host CIDR: `<ip>/32` for IPv4, `<ip>/128` for IPv6 (as Nomad).
    pub cidr: String,
    /// The address, e.g. `127.0.0.1` or `::1`.
    pub ip: String,
    /// Link speed in Mbit/s (1000 when the link does not report one, as Nomad).
    pub mbits: u64,
    /// Network mode: `host`, as Nomad (0.12 and later) reports for fingerprinted interfaces.
    pub mode: String,
}

/// Everything measured about this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Node attributes with Nomad's names and string formats.
    pub attributes: BTreeMap<String, String>,
    /// `cpu.numcores` × `cpu.frequency`: `NodeResources.Cpu.CpuShares` and `Resources.CPU`.
    pub cpu_total_compute_mhz: u64,
    /// Logical CPUs online (`cpu.numcores`).
    pub cpu_cores: u32,
    /// Total memory in MiB: `NodeResources.Memory.MemoryMB`.
    pub memory_mb: u64,
    /// Free space of the data dir's volume in MiB, as Nomad: `NodeResources.Disk.DiskMB`.
    pub disk_mb: u64,
    /// One entry per address of the fingerprinted interface.
    pub networks: Vec<NetworkFingerprint>,
    /// The probes of all drivers, detected or not (the node's `Drivers` map).
    pub drivers: Vec<DriverProbe>,
    /// The machine's host name (`unique.hostname`), also the node's default name.
    pub hostname: String,
}

/// Why fingerprinting failed.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// A file that must be readable was not.
    #[error("failed to read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Text from the system (or a fixture) did not have the expected format.
    #[error("malformed {what}: {reason}")]
    Parse {
        /// What was being parsed, e.g. `/proc/net/route`.
        what: &'static str,
        /// What was wrong, with the line number where there is one.
        reason: String,
    },
    /// The CPU could not be measured.
    #[error("cpu fingerprint failed: {0}")]
    Cpu(String),
    /// Total memory could not be measured.
    #[error("memory fingerprint failed: {0}")]
    Memory(String),
    /// The host (kernel, host name) could not be measured.
    #[error("host fingerprint failed: {0}")]
    Host(String),
    /// The volume holding the data dir could not be measured.
    #[error("storage fingerprint for {path} failed: {reason}")]
    Storage {
        /// The data dir (or the ancestor that was measured).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The configured network interface does not exist.
    #[error("network interface {0:?} not found")]
    InterfaceNotFound(String),
    /// The network interfaces could not be listed.
    #[error("network fingerprint failed: {0}")]
    Network(String),
    /// The configuration handed to [`fingerprint`] is unusable.
    #[error("invalid fingerprint configuration: {0}")]
    InvalidConfig(String),
}

impl FingerprintError {
    pub(crate) fn parse(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Parse {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Fingerprints this machine: runs every fingerprinter and merges their attributes.
///
/// # Errors
///
/// Fails when a resource the scheduler needs cannot be measured at all (no CPU count, no
/// memory total, no volume for the data dir, an unknown configured interface) or when the
/// configuration is unusable (empty version or advertise address, a driver without a name).
pub fn fingerprint(cfg: &FingerprintConfig) -> Result<Fingerprint, FingerprintError> {
    let mut attributes = BTreeMap::new();

    // Config first: a bad configuration should fail before any measuring.
    let nomad = nomad::NomadFingerprint::from_config(cfg)?;
    drivers::validate(&cfg.drivers)?;

    let cpu = cpu::detect()?;
    cpu.apply(&mut attributes);

    let memory = memory::detect()?;
    memory.apply(&mut attributes);

    let host = host::detect()?;
    host.apply(&mut attributes);

    let storage = storage::detect(&cfg.data_dir)?;
    storage.apply(&mut attributes);

    let networks = network::detect(cfg.network_interface.as_deref())?;
    network::apply(&networks, &mut attributes);

    nomad.apply(&mut attributes);
    drivers::apply(&cfg.drivers, &mut attributes);

    tracing::debug!(
        cores = cpu.cores,
        mhz = cpu.mhz,
        frequency_source = ?cpu.frequency_source,
        memory_bytes = memory.total_bytes,
        volume = %storage.volume,
        "fingerprinted node"
    );

    Ok(Fingerprint {
        attributes,
        cpu_total_compute_mhz: cpu.total_compute(),
        cpu_cores: cpu.cores,
        memory_mb: memory.total_bytes / BYTES_PER_MB,
        disk_mb: storage.free_bytes / BYTES_PER_MB,
        networks,
        drivers: cfg.drivers.clone(),
        hostname: host.hostname,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Go's GOARCH values.
    const GO_ARCHES: &[&str] = &[
        "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64",
        "ppc64le", "riscv64", "s390x", "wasm",
    ];

    fn config(data_dir: &std::path::Path) -> FingerprintConfig {
        let mut docker_attrs = BTreeMap::new();
        docker_attrs.insert("driver.docker.version".to_owned(), "27.0.1".to_owned());
        let mut raw_attrs = BTreeMap::new();
        raw_attrs.insert("driver.raw_exec".to_owned(), "true".to_owned());
        FingerprintConfig {
            data_dir: data_dir.to_path_buf(),
            advertise_http: "127.0.0.1:4646".to_owned(),
            network_interface: None,
            version: "1.9.3".to_owned(),
            service_discovery: true,
            drivers: vec![
                DriverProbe {
                    name: "raw_exec".to_owned(),
                    detected: true,
                    healthy: true,
                    health_description: "Healthy".to_owned(),
                    attributes: raw_attrs,
                },
                DriverProbe {
                    name: "docker".to_owned(),
                    detected: false,
                    healthy: false,
                    health_description: "Failed to connect to docker daemon".to_owned(),
                    attributes: docker_attrs,
                },
            ],
        }
    }

    fn num(attrs: &BTreeMap<String, String>, key: &str) -> u64 {
        let value = attrs
            .get(key)
            .unwrap_or_else(|| panic!("attribute {key} missing"));
        let n: u64 = value
            .parse()
            .unwrap_or_else(|e| panic!("attribute {key}={value:?} is not a number: {e}"));
        assert!(n > 0, "attribute {key} must be > 0");
        n
    }

    fn text<'a>(attrs: &'a BTreeMap<String, String>, key: &str) -> &'a str {
        let value = attrs
            .get(key)
            .unwrap_or_else(|| panic!("attribute {key} missing"));
        assert!(!value.trim().is_empty(), "attribute {key} is empty");
        value
    }

    #[test]
    fn every_required_attribute_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        let fp = fingerprint(&config(dir.path())).unwrap();
        let a = &fp.attributes;
        println!("{}", serde_json::to_string_pretty(a).unwrap());
        println!("{}", serde_json::to_string_pretty(&fp.networks).unwrap());
        println!(
            "cpu {} MHz, {} cores, memory {} MB, disk {} MB",
            fp.cpu_total_compute_mhz, fp.cpu_cores, fp.memory_mb, fp.disk_mb
        );

        assert!(
            GO_ARCHES.contains(&text(a, "cpu.arch")),
            "{}",
            a["cpu.arch"]
        );
        let cores = num(a, "cpu.numcores");
        let mhz = num(a, "cpu.frequency");
        let total = num(a, "cpu.totalcompute");
        assert_eq!(total, cores * mhz);
        assert_eq!(fp.cpu_total_compute_mhz, total);
        assert_eq!(u64::from(fp.cpu_cores), cores);
        text(a, "cpu.modelname");
        if a.contains_key("cpu.reservablecores") {
            let reservable = num(a, "cpu.reservablecores");
            assert!(reservable <= cores);
            assert_eq!(num(a, "cpu.usablecompute"), reservable * mhz);
        }

        let mem = num(a, "memory.totalbytes");
        assert_eq!(fp.memory_mb, mem / BYTES_PER_MB);
        assert!(fp.memory_mb > 0);

        assert_eq!(text(a, "kernel.name"), std::env::consts::OS);
        text(a, "kernel.version");
        text(a, "kernel.arch");
        text(a, "os.name");
        text(a, "os.version");
        let signals = text(a, "os.signals");
        assert!(signals.split(',').all(|s| s.starts_with("SIG")));
        assert!(signals.split(',').any(|s| s == "SIGKILL"));

        assert_eq!(text(a, "unique.hostname"), fp.hostname);
        let ip: std::net::IpAddr = text(a, "unique.network.ip-address").parse().unwrap();
        assert_eq!(fp.networks[0].ip, ip.to_string());

        text(a, "unique.storage.volume");
        let bytes_total = num(a, "unique.storage.bytestotal");
        let bytes_free = num(a, "unique.storage.bytesfree");
        assert!(bytes_free <= bytes_total);
        assert_eq!(fp.disk_mb, bytes_free / BYTES_PER_MB);

        assert_eq!(text(a, "nomad.version"), "1.9.3");
        assert_eq!(text(a, "nomad.advertise.address"), "127.0.0.1:4646");
        assert!(text(a, "nomad.revision").contains("caravan"));
        assert_eq!(text(a, "nomad.service_discovery"), "true");
    }

    #[test]
    fn drivers_appear_only_when_detected() {
        let dir = tempfile::tempdir().unwrap();
        let fp = fingerprint(&config(dir.path())).unwrap();
        let a = &fp.attributes;
        // detected: `driver.<name>` = "1" wins over the driver's own `driver.raw_exec`.
        assert_eq!(a.get("driver.raw_exec").map(String::as_str), Some("1"));
        assert!(!a.contains_key("driver.docker"));
        assert!(!a.contains_key("driver.docker.version"));
        // all probes are still returned for the node's Drivers map
        assert_eq!(fp.drivers.len(), 2);
    }

    #[test]
    fn loopback_interface_can_be_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.network_interface = Some("lo".to_owned());
        let fp = fingerprint(&cfg).unwrap();
        let v4 = fp
            .networks
            .iter()
            .find(|n| n.ip == "127.0.0.1")
            .expect("lo has 127.0.0.1");
        assert_eq!(
            v4,
            &NetworkFingerprint {
                device: "lo".to_owned(),
                cidr: "127.0.0.1/32".to_owned(),
                ip: "127.0.0.1".to_owned(),
                mbits: 1000,
                mode: "host".to_owned(),
            }
        );
        assert_eq!(fp.attributes["unique.network.ip-address"], "127.0.0.1");
    }

    #[test]
    fn unknown_interface_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.network_interface = Some("nosuchif0".to_owned());
        let err = fingerprint(&cfg).unwrap_err();
        assert!(matches!(err, FingerprintError::InterfaceNotFound(ref n) if n == "nosuchif0"));
    }

    #[test]
    fn bad_config_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.advertise_http = " ".to_owned();
        assert!(matches!(
            fingerprint(&cfg),
            Err(FingerprintError::InvalidConfig(_))
        ));

        let mut cfg = config(dir.path());
        cfg.version = String::new();
        assert!(matches!(
            fingerprint(&cfg),
            Err(FingerprintError::InvalidConfig(_))
        ));

        let mut cfg = config(dir.path());
        cfg.drivers[0].name = "raw.exec".to_owned();
        assert!(matches!(
            fingerprint(&cfg),
            Err(FingerprintError::InvalidConfig(_))
        ));
    }

    #[test]
    fn fingerprint_serializes() {
        let dir = tempfile::tempdir().unwrap();
        let fp = fingerprint(&config(dir.path())).unwrap();
        let json = serde_json::to_string(&fp).unwrap();
        let back: Fingerprint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fp);
    }
}
