//! Network fingerprint: `NodeResources.Networks` and `unique.network.ip-address`.
//!
//! The interface is the configured one, else the one carrying the default route (IPv4 from
//! `/proc/net/route`, else IPv6 from `/proc/net/ipv6_route`, lowest metric first), else the
//! loopback interface. Its addresses come from sysinfo (`getifaddrs`); as in Nomad, each
//! address becomes one network with the host CIDR (`/32` or `/128`), link-local addresses are
//! reported only when the interface has nothing else, and the speed is the link speed in
//! `/sys/class/net/<dev>/speed`, or 1000 Mbit/s when the link reports none (loopback, most
//! virtual NICs). Addresses are ordered IPv4 first, then IPv6, each in ascending order, and the
//! first one is `unique.network.ip-address`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::{FingerprintError, NetworkFingerprint};

/// The speed reported when the link does not tell (Nomad's default).
pub(crate) const DEFAULT_MBITS: u64 = 1000;
/// The network mode of fingerprinted interfaces.
pub(crate) const HOST_MODE: &str = "host";

const ROUTE_V4: &str = "/proc/net/route";
const ROUTE_V6: &str = "/proc/net/ipv6_route";
const SYS_NET: &str = "/sys/class/net";

const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// One line of `/proc/net/route` (addresses in the kernel's hex notation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ipv4Route {
    pub(crate) interface: String,
    pub(crate) destination: u32,
    pub(crate) flags: u32,
    pub(crate) metric: u32,
    pub(crate) mask: u32,
}

/// Parses `/proc/net/route`: a header starting with `Iface`, then one route per line
/// (`Iface Destination Gateway Flags RefCnt Use Metric Mask ...`). A short line or a bad hex
/// field is an error naming the line.
pub(crate) fn parse_ipv4_routes(text: &str) -> Result<Vec<Ipv4Route>, FingerprintError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.split_whitespace().next() == Some("Iface") => {}
        _ => {
            return Err(FingerprintError::parse(
                "/proc/net/route",
                "missing the Iface header",
            ));
        }
    }
    lines
        .map(|(index, line)| {
            let bad = |why: &str| {
                FingerprintError::parse(
                    "/proc/net/route",
                    format!("line {}: {why}: {line:?}", index + 1),
                )
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return Err(bad("expected at least 8 columns"));
            }
            let hex = |s: &str| u32::from_str_radix(s, 16).map_err(|_| bad("bad hex field"));
            Ok(Ipv4Route {
                interface: fields[0].to_owned(),
                destination: hex(fields[1])?,
                flags: hex(fields[3])?,
                metric: fields[6].parse().map_err(|_| bad("bad metric"))?,
                mask: hex(fields[7])?,
            })
        })
        .collect()
}

/// The interface of the usable IPv4 default route (`0.0.0.0/0`, up) with the lowest metric.
pub(crate) fn default_ipv4_interface(routes: &[Ipv4Route]) -> Option<&str> {
    routes
        .iter()
        .filter(|r| r.destination == 0 && r.mask == 0 && r.flags & RTF_UP != 0)
        .filter(|r| r.flags & RTF_REJECT == 0)
        .min_by_key(|r| r.metric)
        .map(|r| r.interface.as_str())
}

/// The interface of the usable IPv6 default route (`::/0`, up, not a reject route, not on
/// loopback) with the lowest metric, from `/proc/net/ipv6_route` (`dest plen src plen nexthop
/// metric refcnt use flags iface`, hex). A malformed line is an error naming the line.
pub(crate) fn default_ipv6_interface(text: &str) -> Result<Option<String>, FingerprintError> {
    let mut best: Option<(u32, String)> = None;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: &str| {
            FingerprintError::parse(
                "/proc/net/ipv6_route",
                format!("line {}: {why}: {line:?}", index + 1),
            )
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 {
            return Err(bad("expected 10 columns"));
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).map_err(|_| bad("bad hex field"));
        let destination = fields[0];
        if destination.len() != 32 || !destination.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("bad destination"));
        }
        let prefix = hex(fields[1])?;
        let metric = hex(fields[5])?;
        let flags = hex(fields[8])?;
        let interface = fields[9];
        let is_default = prefix == 0 && destination.bytes().all(|b| b == b'0');
        let usable = flags & RTF_UP != 0 && flags & RTF_REJECT == 0 && interface != "lo";
        if is_default && usable && best.as_ref().is_none_or(|(m, _)| metric < *m) {
            best = Some((metric, interface.to_owned()));
        }
    }
    Ok(best.map(|(_, interface)| interface))
}

/// Parses `/sys/class/net/<dev>/speed` (Mbit/s); unknown (`-1`), zero or garbage is `None`.
pub(crate) fn parse_link_speed(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|mbits| *mbits > 0)
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// One network per address of `device`: IPv4 before IPv6, ascending; link-local addresses only
/// when there is nothing else.
pub(crate) fn build_networks(
    device: &str,
    addrs: &[IpAddr],
    mbits: u64,
) -> Vec<NetworkFingerprint> {
    let mut sorted = addrs.to_vec();
    sorted.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    sorted.dedup();
    let (link_local, routable): (Vec<IpAddr>, Vec<IpAddr>) =
        sorted.into_iter().partition(is_link_local);
    let chosen = if routable.is_empty() {
        link_local
    } else {
        routable
    };
    chosen
        .into_iter()
        .map(|ip| {
            let host_bits = if ip.is_ipv4() { 32 } else { 128 };
            NetworkFingerprint {
                device: device.to_owned(),
                cidr: format!("{ip}/{host_bits}"),
                ip: ip.to_string(),
                mbits,
                mode: HOST_MODE.to_owned(),
            }
        })
        .collect()
}

/// Chooses the interface to fingerprint among `interfaces` (name → addresses).
pub(crate) fn select_interface(
    configured: Option<&str>,
    default_route: Option<&str>,
    interfaces: &BTreeMap<String, Vec<IpAddr>>,
) -> Result<String, FingerprintError> {
    if let Some(name) = configured {
        return if interfaces.contains_key(name) {
            Ok(name.to_owned())
        } else {
            Err(FingerprintError::InterfaceNotFound(name.to_owned()))
        };
    }
    if let Some(name) = default_route {
        if interfaces.get(name).is_some_and(|addrs| !addrs.is_empty()) {
            return Ok(name.to_owned());
        }
        tracing::debug!(interface = name, "default route interface has no address");
    }
    if interfaces.contains_key("lo") {
        return Ok("lo".to_owned());
    }
    interfaces
        .iter()
        .find(|(_, addrs)| !addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback))
        .map(|(name, _)| name.clone())
        .ok_or_else(|| {
            FingerprintError::Network(
                "no interface given, no default route and no loopback interface".to_owned(),
            )
        })
}

fn default_route_interface() -> Option<String> {
    match std::fs::read_to_string(ROUTE_V4).map(|text| parse_ipv4_routes(&text)) {
        Ok(Ok(routes)) => {
            if let Some(name) = default_ipv4_interface(&routes) {
                return Some(name.to_owned());
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "ignoring the IPv4 routing table"),
        Err(e) => tracing::debug!(error = %e, "no IPv4 routing table"),
    }
    match std::fs::read_to_string(ROUTE_V6).map(|text| default_ipv6_interface(&text)) {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "ignoring the IPv6 routing table");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "no IPv6 routing table");
            None
        }
    }
}

fn list_interfaces() -> Result<BTreeMap<String, Vec<IpAddr>>, FingerprintError> {
    let networks = sysinfo::Networks::new_with_refreshed_list()
        .map_err(|e| FingerprintError::Network(format!("cannot list interfaces: {e}")))?;
    Ok(networks
        .iter()
        .map(|(name, data)| {
            (
                name.to_string_lossy().into_owned(),
                data.ip_networks().iter().map(|n| n.addr).collect(),
            )
        })
        .collect())
}

fn link_speed(device: &str) -> u64 {
    std::fs::read_to_string(Path::new(SYS_NET).join(device).join("speed"))
        .ok()
        .and_then(|text| parse_link_speed(&text))
        .unwrap_or(DEFAULT_MBITS)
}

/// Fingerprints the configured interface, or the default route's, or loopback.
pub(crate) fn detect(
    configured: Option<&str>,
) -> Result<Vec<NetworkFingerprint>, FingerprintError> {
    let interfaces = list_interfaces()?;
    let default_route = if configured.is_none() {
        default_route_interface()
    } else {
        None
    };
    let device = select_interface(configured, default_route.as_deref(), &interfaces)?;
    let addrs = interfaces.get(&device).map(Vec::as_slice).unwrap_or(&[]);
    let networks = build_networks(&device, addrs, link_speed(&device));
    if networks.is_empty() {
        tracing::warn!(device, "network interface has no address");
    }
    Ok(networks)
}

pub(crate) fn apply(networks: &[NetworkFingerprint], attrs: &mut BTreeMap<String, String>) {
    if let Some(first) = networks.first() {
        attrs.insert("unique.network.ip-address".to_owned(), first.ip.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn finds_the_default_route_with_the_lowest_metric() {
        let routes = parse_ipv4_routes(ROUTES).unwrap();
        assert_eq!(routes.len(), 4);
        assert_eq!(default_ipv4_interface(&routes), Some("eth0"));
    }

    #[test]
    fn no_default_route_is_none() {
        let text = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                    eth1\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\n";
        // the second default route is down (no RTF_UP)
        assert_eq!(
            default_ipv4_interface(&parse_ipv4_routes(text).unwrap()),
            None
        );
        assert_eq!(
            default_ipv4_interface(&parse_ipv4_routes("Iface\n").unwrap()),
            None
        );
    }

    #[test]
    fn malformed_route_table_is_an_error() {
        for text in [
            "",
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n",
            "Iface Destination\neth0 00000000 010200C0\n",
            "Iface Destination\neth0 zzzzzzzz 010200C0 0003 0 0 0 00000000\n",
            "Iface Destination\neth0 00000000 010200C0 0003 0 0 high 00000000\n",
        ] {
            let err = parse_ipv4_routes(text).unwrap_err();
            assert!(matches!(err, FingerprintError::Parse { .. }), "{text:?}");
        }
    }

    #[test]
    fn finds_the_ipv6_default_route() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000100 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";
        assert_eq!(
            default_ipv6_interface(text).unwrap().as_deref(),
            Some("eth0")
        );
        assert_eq!(default_ipv6_interface("").unwrap(), None);
        for bad in [
            "00000000000000000000000000000000 00 short\n",
            "xyz00000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000003 eth0\n",
            "00000000000000000000000000000000 zz 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000003 eth0\n",
        ] {
            assert!(default_ipv6_interface(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_link_speed() {
        assert_eq!(parse_link_speed("10000\n"), Some(10000));
        assert_eq!(parse_link_speed("-1\n"), None);
        assert_eq!(parse_link_speed("0"), None);
        assert_eq!(parse_link_speed("fast"), None);
    }

    #[test]
    fn loopback_networks_look_like_nomads() {
        let addrs: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let networks = build_networks("lo", &addrs, DEFAULT_MBITS);
        let expected = [("127.0.0.1", "127.0.0.1/32"), ("::1", "::1/128")];
        assert_eq!(networks.len(), expected.len());
        for (network, (ip, cidr)) in networks.iter().zip(expected) {
            assert_eq!(network.device, "lo");
            assert_eq!(network.ip, ip);
            assert_eq!(network.cidr, cidr);
            assert_eq!(network.mbits, 1000);
            assert_eq!(network.mode, "host");
        }
    }

    #[test]
    fn link_local_addresses_only_when_nothing_else() {
        let mixed: Vec<IpAddr> = ["fe80::fc:ff:fe00:1", "fd00::2", "192.0.2.2", "169.254.1.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ips: Vec<String> = build_networks("eth0", &mixed, 25000)
            .into_iter()
            .map(|n| n.ip)
            .collect();
        assert_eq!(ips, ["192.0.2.2", "fd00::2"]);

        let only_link_local: Vec<IpAddr> = vec!["fe80::1".parse().unwrap()];
        let networks = build_networks("eth1", &only_link_local, 100);
        assert_eq!(networks[0].cidr, "fe80::1/128");
        assert!(build_networks("eth2", &[], 100).is_empty());
    }

    #[test]
    fn selects_configured_then_default_route_then_loopback() {
        let mut interfaces = BTreeMap::new();
        interfaces.insert("lo".to_owned(), vec!["127.0.0.1".parse().unwrap()]);
        interfaces.insert("eth0".to_owned(), vec!["192.0.2.2".parse().unwrap()]);
        interfaces.insert("ifb0".to_owned(), vec![]);

        assert_eq!(
            select_interface(Some("ifb0"), Some("eth0"), &interfaces).unwrap(),
            "ifb0"
        );
        assert!(matches!(
            select_interface(Some("wlan9"), None, &interfaces),
            Err(FingerprintError::InterfaceNotFound(_))
        ));
        assert_eq!(
            select_interface(None, Some("eth0"), &interfaces).unwrap(),
            "eth0"
        );
        assert_eq!(select_interface(None, None, &interfaces).unwrap(), "lo");
        // a default route through an interface without address (or unknown) falls back
        assert_eq!(
            select_interface(None, Some("ifb0"), &interfaces).unwrap(),
            "lo"
        );
        assert_eq!(
            select_interface(None, Some("tun7"), &interfaces).unwrap(),
            "lo"
        );

        let mut bsd = BTreeMap::new();
        bsd.insert("lo0".to_owned(), vec!["::1".parse().unwrap()]);
        assert_eq!(select_interface(None, None, &bsd).unwrap(), "lo0");
        assert!(select_interface(None, None, &BTreeMap::new()).is_err());
    }

    #[test]
    fn detects_a_network_on_this_machine() {
        let networks = detect(None).unwrap();
        assert!(!networks.is_empty());
        for n in &networks {
            let ip: IpAddr = n.ip.parse().unwrap();
            assert_eq!(
                n.cidr,
                format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
            );
            assert!(n.mbits > 0);
            assert_eq!(n.mode, "host");
        }
    }
}
