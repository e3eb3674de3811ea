//! The machine this process runs on, as `/v1/agent/host` reports it (Nomad's `HostData`):
//! `uname`, every interface address, `/etc/resolv.conf`, `/etc/hosts`, the environment with
//! secrets redacted, and the size and use of each mounted local file system.
//!
//! Gathering reads files and calls statvfs, which may block on a dead network mount: call
//! [`gather`] off the async workers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use caravan_structs::{DiskUsage, HostData};

/// How long [`gather_async`] waits: a hung mount must not hold a request forever.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("gathering host data took longer than {0:?}")]
    Timeout(Duration),
    #[error("gathering host data failed: {0}")]
    Failed(String),
}

/// [`gather`] on a blocking thread, bounded by [`GATHER_TIMEOUT`].
pub async fn gather_async() -> Result<HostData, HostError> {
    match tokio::time::timeout(GATHER_TIMEOUT, tokio::task::spawn_blocking(gather)).await {
        Ok(Ok(data)) => Ok(data),
        Ok(Err(e)) => Err(HostError::Failed(e.to_string())),
        Err(_) => Err(HostError::Timeout(GATHER_TIMEOUT)),
    }
}

/// Everything at once. Parts that fail carry their error text instead, as in Nomad.
pub fn gather() -> HostData {
    let env = std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    });
    HostData {
        disk: disks(),
        environment: environment(env),
        hosts: slurp("/etc/hosts"),
        network: network(),
        os: uname(),
        resolv_conf: slurp("/etc/resolv.conf"),
    }
}

/// A file's text, or what went wrong reading it.
fn slurp(path: &str) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("open {path}: {e}"),
    }
}

/// `uname -a`'s parts in Nomad's order: machine, node name, release, system name, version.
fn uname() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => [
            u.machine(),
            u.nodename(),
            u.release(),
            u.sysname(),
            u.version(),
        ]
        .iter()
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" "),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

/// Nomad's default `env.denylist`: credentials of HashiCorp products and the clouds.
const DENY_LIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN_FILE",
    "NOMAD_TOKEN",
    "VAULT_TOKEN",
    "CONSUL_LICENSE",
    "NOMAD_LICENSE",
    "VAULT_LICENSE",
    "CONSUL_LICENSE_PATH",
    "NOMAD_LICENSE_PATH",
    "VAULT_LICENSE_PATH",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_METADATA_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
];

pub const REDACTED: &str = "<redacted>";

/// The environment with secret-looking values replaced by [`REDACTED`]: Nomad's rule (the
/// deny list, any name containing TOKEN or SECRET) plus Caravan's own secrets — names with
/// PASSWORD or PASSWD, database URLs, and any URL carrying a password.
pub fn environment(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .map(|(k, v)| {
            let v = if is_secret(&k, &v) {
                REDACTED.to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn is_secret(key: &str, value: &str) -> bool {
    let up = key.to_ascii_uppercase();
    DENY_LIST.contains(&key)
        || ["TOKEN", "SECRET", "PASSWORD", "PASSWD"]
            .iter()
            .any(|w| up.contains(w))
        || up.ends_with("DATABASE_URL")
        || url_has_password(value)
}

/// `scheme://user:password@host...`.
fn url_has_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

// ---------------------------------------------------------------------------------------------
// Disks
// ---------------------------------------------------------------------------------------------

/// File system types never reported even if backed by a device (Nomad's list).
const SKIPPED_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "cgroup",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "fuse.lxcfs",
    "hugetlbfs",
    "mqueue",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "sysfs",
    "tmpfs",
    "vboxsf",
    "ptyfs",
];

/// Each mounted device-backed file system by mount point; mounts statvfs cannot read are left
/// out.
fn disks() -> BTreeMap<String, DiskUsage> {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let device_fs = device_filesystems(&filesystems);
    local_mounts(&mountinfo, &device_fs)
        .into_iter()
        .filter_map(|path| usage(&path).map(|u| (path, u)))
        .collect()
}

/// The file system types of `/proc/filesystems` that need a device (no `nodev`), and zfs.
fn device_filesystems(proc_filesystems: &str) -> Vec<String> {
    let mut types: Vec<String> = proc_filesystems
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    types.push("zfs".to_owned());
    types
}

/// Mount points of `/proc/self/mountinfo` whose type is in `device_fs` and not skipped.
fn local_mounts(mountinfo: &str, device_fs: &[String]) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let mount_point = head.split(' ').nth(4)?;
            let mut tail = tail.split(' ');
            let fs_type = tail.next()?;
            let source = tail.next().unwrap_or_default();
            let wanted = source != "none"
                && device_fs.iter().any(|t| t == fs_type)
                && !SKIPPED_FS.contains(&fs_type);
            wanted.then(|| unescape_mount(mount_point))
        })
        .collect()
}

/// Mount points escape space, tab, newline and backslash as `\ooo` octal.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(oct) = bytes.get(i + 1..i + 4)
            && oct.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(oct.iter().fold(0u8, |n, d| n.wrapping_mul(8) + (d - b'0')));
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Size and use as Nomad counts them: used is everything not available to unprivileged users.
fn usage(path: &str) -> Option<DiskUsage> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    // The field types are u64 here but narrower on some targets.
    let frsize = st.fragment_size() as u64;
    let total = (st.blocks() as u64).saturating_mul(frsize);
    let avail = (st.blocks_available() as u64).saturating_mul(frsize);
    const MIB: u64 = 1024 * 1024;
    Some(DiskUsage {
        disk_mb: i64::try_from(total / MIB).unwrap_or(i64::MAX),
        used_mb: i64::try_from(total.saturating_sub(avail) / MIB).unwrap_or(i64::MAX),
    })
}

// ---------------------------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------------------------

/// One map per interface address, interfaces in index order, IPv4 before IPv6.
fn network() -> Option<Vec<BTreeMap<String, String>>> {
    let networks = match sysinfo::Networks::new_with_refreshed_list() {
        Ok(n) => n,
        Err(e) => {
            let error = BTreeMap::from([("error".to_owned(), e.to_string())]);
            return Some(vec![error]);
        }
    };
    let mut addrs: Vec<(u32, String, IpAddr, u8)> = networks
        .iter()
        .flat_map(|(name, data)| {
            let name = name.to_string_lossy().into_owned();
            let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(u32::MAX);
            data.ip_networks()
                .iter()
                .map(move |n| (index, name.clone(), n.addr, n.prefix))
        })
        .collect();
    addrs.sort_by_key(|(index, name, ip, _)| (*index, name.clone(), ip.is_ipv6()));
    let out: Vec<_> = addrs
        .into_iter()
        .map(|(_, _, ip, prefix)| sockaddr_attrs(ip, prefix))
        .collect();
    (!out.is_empty()).then_some(out)
}

/// An interface address described with go-sockaddr's attributes (`sockaddr dump`): what
/// `nomad operator debug` archives carry.
pub fn sockaddr_attrs(ip: IpAddr, prefix: u8) -> BTreeMap<String, String> {
    match ip {
        IpAddr::V4(v4) => ipv4_attrs(u32::from(v4), prefix.min(32)),
        IpAddr::V6(v6) => ipv6_attrs(u128::from(v6), prefix.min(128)),
    }
}

fn ipv4_attrs(addr: u32, bits: u8) -> BTreeMap<String, String> {
    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
    let network = addr & mask;
    let broadcast = network | !mask;
    let (first, last) = if bits < 31 {
        (network.wrapping_add(1), broadcast.wrapping_sub(1))
    } else {
        (network, broadcast)
    };
    let ip = |n: u32| std::net::Ipv4Addr::from(n).to_string();
    let host_mask = bits == 32;
    let string = if host_mask {
        ip(addr)
    } else {
        format!("{}/{bits}", ip(addr))
    };
    let args = |proto: &str| {
        if host_mask {
            format!("{proto:?} \"{}:0\"", ip(addr))
        } else {
            format!("{proto:?} \"\"")
        }
    };
    let mut m = BTreeMap::new();
    m.insert("type", "IPv4".to_owned());
    m.insert("string", string);
    m.insert("host", ip(addr));
    m.insert("address", ip(addr));
    m.insert("port", "0".to_owned());
    m.insert("netmask", ip(mask));
    m.insert("network", ip(network));
    m.insert("mask_bits", bits.to_string());
    m.insert("binary", format!("{addr:032b}"));
    m.insert("hex", format!("{addr:08x}"));
    m.insert("first_usable", ip(first));
    m.insert("last_usable", ip(last));
    m.insert(
        "octets",
        addr.to_be_bytes().map(|o| o.to_string()).join(" "),
    );
    m.insert("size", (1u64 << (32 - u32::from(bits))).to_string());
    m.insert("broadcast", ip(broadcast));
    m.insert("uint32", addr.to_string());
    // Dialing needs a port, which an interface address has not.
    m.insert("DialPacket", "\"udp4\" \"\"".to_owned());
    m.insert("DialStream", "\"tcp4\" \"\"".to_owned());
    m.insert("ListenPacket", args("udp4"));
    m.insert("ListenStream", args("tcp4"));
    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn ipv6_attrs(addr: u128, bits: u8) -> BTreeMap<String, String> {
    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
    let network = addr & mask;
    let last = network | !mask;
    let ip = |n: u128| std::net::Ipv6Addr::from(n).to_string();
    let host_mask = bits == 128;
    let string = if host_mask {
        ip(addr)
    } else {
        format!("{}/{bits}", ip(addr))
    };
    let args = |proto: &str| {
        if host_mask {
            format!("{proto:?} \"[{}]:0\"", ip(addr))
        } else {
            format!("{proto:?} \"\"")
        }
    };
    // 2^(128 - bits) does not fit a u128 for a /0.
    let size = match 1u128.checked_shl(128 - u32::from(bits)) {
        Some(n) if bits > 0 => n.to_string(),
        _ => "340282366920938463463374607431768211456".to_owned(),
    };
    let mut m = BTreeMap::new();
    m.insert("type", "IPv6".to_owned());
    m.insert("string", string);
    m.insert("host", ip(addr));
    m.insert("address", ip(addr));
    m.insert("port", "0".to_owned());
    m.insert("netmask", ip(mask));
    m.insert("network", ip(network));
    m.insert("mask_bits", bits.to_string());
    m.insert("binary", format!("{addr:0128b}"));
    m.insert("hex", format!("{addr:032x}"));
    m.insert("first_usable", ip(network));
    m.insert("last_usable", ip(last));
    m.insert(
        "octets",
        addr.to_be_bytes().map(|o| o.to_string()).join(" "),
    );
    m.insert("size", size);
    m.insert("uint128", addr.to_string());
    m.insert("DialPacket", "\"udp6\" \"\"".to_owned());
    m.insert("DialStream", "\"tcp6\" \"\"".to_owned());
    m.insert("ListenPacket", args("udp6"));
    m.insert("ListenStream", args("tcp6"));
    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let env = environment(
            [
                ("PATH", "/usr/bin"),
                ("NOMAD_TOKEN", "abc"),
                ("my_api_token", "abc"),
                ("CLIENT_SECRET", "abc"),
                ("AWS_ACCESS_KEY_ID", "abc"),
                ("PGPASSWORD", "abc"),
                ("CARAVAN_DATABASE_URL", "postgres://caravan@db/caravan"),
                ("UPSTREAM", "https://bob:hunter2@example.com/x"),
                ("HOMEPAGE", "https://example.com/a@b:c"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(env["PATH"], "/usr/bin");
        assert_eq!(env["HOMEPAGE"], "https://example.com/a@b:c");
        for k in [
            "NOMAD_TOKEN",
            "my_api_token",
            "CLIENT_SECRET",
            "AWS_ACCESS_KEY_ID",
            "PGPASSWORD",
            "CARAVAN_DATABASE_URL",
            "UPSTREAM",
        ] {
            assert_eq!(env[k], REDACTED, "{k}");
        }
    }

    #[test]
    fn mounts_are_device_backed_and_unescaped() {
        let filesystems = "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\txfs\nnodev\toverlay\n";
        let mountinfo = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
28 27 0:25 / /tmp rw - tmpfs tmpfs rw
45 27 254:0 /x /data\\040dir rw shared:1 - xfs /dev/vdb rw
46 27 0:40 / /var/lib/docker/overlay2/m rw - overlay overlay rw
47 27 0:41 / /pool rw - zfs tank/pool rw
";
        let fs = device_filesystems(filesystems);
        assert_eq!(local_mounts(mountinfo, &fs), ["/", "/data dir", "/pool"]);
    }

    #[test]
    fn root_has_a_size() {
        let u = usage("/").unwrap();
        assert!(u.disk_mb > 0 && u.used_mb <= u.disk_mb, "{u:?}");
    }

    #[test]
    fn ipv4_attributes() {
        let m = sockaddr_attrs("10.1.2.3".parse().unwrap(), 24);
        assert_eq!(m["type"], "IPv4");
        assert_eq!(m["string"], "10.1.2.3/24");
        assert_eq!(m["netmask"], "255.255.255.0");
        assert_eq!(m["network"], "10.1.2.0");
        assert_eq!(m["broadcast"], "10.1.2.255");
        assert_eq!(m["first_usable"], "10.1.2.1");
        assert_eq!(m["last_usable"], "10.1.2.254");
        assert_eq!(m["octets"], "10 1 2 3");
        assert_eq!(m["size"], "256");
        assert_eq!(m["hex"], "0a010203");
        assert_eq!(m["binary"].len(), 32);
        assert_eq!(m["uint32"], "167838211");
        assert_eq!(m["ListenStream"], "\"tcp4\" \"\"");
        let host = sockaddr_attrs("127.0.0.1".parse().unwrap(), 32);
        assert_eq!(host["string"], "127.0.0.1");
        assert_eq!(host["first_usable"], "127.0.0.1");
        assert_eq!(host["ListenPacket"], "\"udp4\" \"127.0.0.1:0\"");
    }

    #[test]
    fn ipv6_attributes() {
        let m = sockaddr_attrs("fe80::1".parse().unwrap(), 64);
        assert_eq!(m["type"], "IPv6");
        assert_eq!(m["string"], "fe80::1/64");
        assert_eq!(m["netmask"], "ffff:ffff:ffff:ffff::");
        assert_eq!(m["network"], "fe80::");
        assert_eq!(m["last_usable"], "fe80::ffff:ffff:ffff:ffff");
        assert_eq!(m["size"], "18446744073709551616");
        assert_eq!(m["hex"].len(), 32);
        assert!(!m.contains_key("broadcast"));
        assert_eq!(sockaddr_attrs("::".parse().unwrap(), 0)["size"].len(), 39);
    }

    #[test]
    fn gather_reads_the_machine() {
        let h = gather();
        assert!(!h.os.is_empty());
        assert_eq!(h.hosts, slurp("/etc/hosts"));
        assert!(h.environment.contains_key("PATH") || std::env::var_os("PATH").is_none());
    }
}
