//! Ports on a node: the node's reserved ports, the ports held by allocations, and picking
//! static and dynamic ports for a new allocation (Nomad's `NetworkIndex`, per node rather than
//! per address: a port is given to at most one live allocation on a node).

use std::collections::{BTreeSet, HashMap};

use caravan_structs::{AllocatedPortMapping, Allocation, NetworkResource, Node, Port};
use rand::Rng;

/// Ports are valid below this.
pub const MAX_VALID_PORT: i64 = 65536;
/// The default dynamic port range, inclusive.
pub const DEFAULT_MIN_DYNAMIC_PORT: i64 = 20000;
pub const DEFAULT_MAX_DYNAMIC_PORT: i64 = 32000;
/// Random probes for a dynamic port before scanning the range.
const MAX_RAND_PORT_ATTEMPTS: usize = 20;

/// Parses a port list such as `22,80,8000-8100` (Nomad's `ParsePortRanges`).
pub fn parse_port_ranges(spec: &str) -> Result<Vec<(i64, i64)>, String> {
    let mut out = Vec::new();
    if spec.trim().is_empty() {
        return Ok(out);
    }
    let parse = |v: &str| -> Result<i64, String> {
        let n: i64 = v
            .parse()
            .map_err(|_| format!("strconv.ParseUint: parsing {v:?}: invalid syntax"))?;
        if n > MAX_VALID_PORT {
            return Err(format!("port must be < {MAX_VALID_PORT} but found {n}"));
        }
        if n == 0 {
            return Err("port must be > 0".to_owned());
        }
        Ok(n)
    };
    for part in spec.split(',') {
        let part = part.trim();
        let bounds: Vec<&str> = part.split('-').collect();
        match bounds.as_slice() {
            [""] => return Err("can't specify empty port".to_owned()),
            [one] => {
                let p = parse(one)?;
                out.push((p, p));
            }
            [lo, hi] => {
                let (lo, hi) = (parse(lo)?, parse(hi)?);
                if hi < lo {
                    return Err(format!(
                        "invalid range: starting value ({hi}) less than ending ({lo}) value"
                    ));
                }
                out.push((lo, hi));
            }
            _ => {
                return Err(
                    "can only parse single port numbers or port ranges (ex. 80,100-120,150)"
                        .to_owned(),
                );
            }
        }
    }
    Ok(out)
}

/// The ports a node holds back: its reserved host ports and those of its host networks.
pub fn node_reserved_ports(node: &Node) -> Result<Vec<(i64, i64)>, String> {
    let mut ranges = Vec::new();
    let reserved_host_ports = node
        .reserved_resources
        .as_ref()
        .map(|r| r.networks.reserved_host_ports.as_str())
        .unwrap_or("");
    if !reserved_host_ports.is_empty() {
        ranges.extend(
            parse_port_ranges(reserved_host_ports)
                .map_err(|e| format!("error parsing reserved_ports: {e}"))?,
        );
    } else if let Some(legacy) = &node.reserved {
        for n in legacy.networks.iter().flatten() {
            for p in port_values(n) {
                if !(0..MAX_VALID_PORT).contains(&p) {
                    return Err(format!("invalid port {p} for reserved_ports"));
                }
                ranges.push((p, p));
            }
        }
    }
    let node_networks = node
        .node_resources
        .as_ref()
        .and_then(|r| r.node_networks.as_ref());
    for n in node_networks.into_iter().flatten() {
        for a in n.addresses.iter().flatten() {
            if !a.reserved_ports.is_empty() {
                ranges.extend(parse_port_ranges(&a.reserved_ports).map_err(|e| {
                    format!(
                        "error parsing reserved_ports for network {:?}: {e}",
                        a.alias
                    )
                })?);
            }
        }
    }
    Ok(ranges)
}

/// The reserved and dynamic port values of a network.
fn port_values(n: &NetworkResource) -> impl Iterator<Item = i64> + '_ {
    n.reserved_ports
        .iter()
        .flatten()
        .chain(n.dynamic_ports.iter().flatten())
        .map(|p| p.value)
}

/// The host ports an allocation holds: its group ports (`Shared.Ports`, or the group
/// networks' ports for older allocations) and its tasks' network ports.
pub fn alloc_ports(alloc: &Allocation) -> Vec<i64> {
    let mut ports = Vec::new();
    if let Some(ar) = &alloc.allocated_resources {
        match &ar.shared.ports {
            Some(p) if !p.is_empty() => ports.extend(p.iter().map(|m| m.value)),
            _ => {
                for n in ar.shared.networks.iter().flatten() {
                    ports.extend(port_values(n));
                }
            }
        }
        for t in ar.tasks.iter().flat_map(|t| t.values()) {
            if let Some(n) = t.networks.as_ref().and_then(|n| n.first()) {
                ports.extend(port_values(n));
            }
        }
    } else {
        for r in alloc.task_resources.iter().flat_map(|t| t.values()) {
            if let Some(n) = r.networks.as_ref().and_then(|n| n.first()) {
                ports.extend(port_values(n));
            }
        }
    }
    ports
}

/// The ports in use on one node.
#[derive(Debug, Clone, Default)]
pub struct PortUsage {
    reserved: Vec<(i64, i64)>,
    /// Port → number of live allocations holding it (more than one is a collision).
    held: HashMap<i64, u32>,
}

impl PortUsage {
    pub fn new(reserved: Vec<(i64, i64)>) -> PortUsage {
        PortUsage {
            reserved,
            held: HashMap::new(),
        }
    }

    pub fn in_use(&self, port: i64) -> bool {
        self.held.get(&port).is_some_and(|n| *n > 0)
            || self
                .reserved
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&port))
    }

    /// Takes `ports`; returns the reasons of the ones that were already in use.
    pub fn add(&mut self, ports: &[i64]) -> Vec<String> {
        let mut reasons = Vec::new();
        for &p in ports {
            if !(0..MAX_VALID_PORT).contains(&p) {
                reasons.push(format!("invalid port {p}"));
                continue;
            }
            if self.in_use(p) {
                reasons.push(format!("port {p} already in use"));
            }
            *self.held.entry(p).or_insert(0) += 1;
        }
        reasons
    }

    /// Gives back `ports` taken by [`PortUsage::add`].
    pub fn remove(&mut self, ports: &[i64]) {
        for p in ports {
            if let Some(n) = self.held.get_mut(p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.held.remove(p);
                }
            }
        }
    }
}

/// The dynamic port range of a node.
pub fn dynamic_range(node: &Node) -> (i64, i64) {
    let r = node.node_resources.as_ref();
    let min = r
        .map(|r| r.min_dynamic_port)
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_MIN_DYNAMIC_PORT);
    let max = r
        .map(|r| r.max_dynamic_port)
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_MAX_DYNAMIC_PORT);
    (min, max)
}

/// The node's address for a host network (`default` when unnamed). Nodes that fingerprint no
/// host networks offer their first host-mode interface (or none) as `default`.
fn host_network_addresses(node: &Node, alias: &str) -> Vec<String> {
    let alias = if alias.is_empty() { "default" } else { alias };
    let res = node.node_resources.as_ref();
    let node_networks: Vec<_> = res
        .and_then(|r| r.node_networks.as_ref())
        .into_iter()
        .flatten()
        .collect();
    if !node_networks.is_empty() {
        return node_networks
            .iter()
            .flat_map(|n| n.addresses.iter().flatten())
            .filter(|a| a.alias == alias)
            .map(|a| a.address.clone())
            .collect();
    }
    if alias != "default" {
        return Vec::new();
    }
    vec![default_ip(node)]
}

/// The IP of the node's host network interface, as recorded on group networks.
pub fn default_ip(node: &Node) -> String {
    let res = node.node_resources.as_ref();
    if let Some(addr) = res
        .and_then(|r| r.node_networks.as_ref())
        .into_iter()
        .flatten()
        .filter(|n| n.mode == "host")
        .find_map(|n| n.addresses.as_ref().and_then(|a| a.first()))
    {
        return addr.address.clone();
    }
    let networks = res
        .and_then(|r| r.networks.as_ref())
        .or(node.resources.as_ref().and_then(|r| r.networks.as_ref()));
    let networks: Vec<&NetworkResource> = networks.into_iter().flatten().collect();
    networks
        .iter()
        .find(|n| n.mode == "host" && !n.ip.is_empty())
        .or_else(|| networks.iter().find(|n| !n.ip.is_empty()))
        .map(|n| n.ip.clone())
        .unwrap_or_default()
}

/// Picks `count` free dynamic ports in `[min, max]`, avoiding `taken` as well as `usage`.
fn pick_dynamic<R: Rng>(
    rng: &mut R,
    usage: &PortUsage,
    taken: &BTreeSet<i64>,
    (min, max): (i64, i64),
    count: usize,
) -> Result<Vec<i64>, String> {
    let free =
        |p: i64, picked: &[i64]| !usage.in_use(p) && !taken.contains(&p) && !picked.contains(&p);
    let mut picked = Vec::with_capacity(count);
    // Random probes first: cheap when the range is mostly free.
    'ports: for _ in 0..count {
        for _ in 0..MAX_RAND_PORT_ATTEMPTS {
            let p = if max > min {
                rng.random_range(min..max)
            } else {
                min
            };
            if free(p, &picked) {
                picked.push(p);
                continue 'ports;
            }
        }
        break;
    }
    if picked.len() == count {
        return Ok(picked);
    }
    // Then a precise scan of the range.
    let mut available: Vec<i64> = (min..=max).filter(|p| free(*p, &[])).collect();
    if available.len() < count {
        return Err("dynamic port selection failed".to_owned());
    }
    for i in 0..count {
        let j = rng.random_range(i..available.len());
        available.swap(i, j);
    }
    available.truncate(count);
    Ok(available)
}

/// Assigns host ports to a group network ask (Nomad's `AssignPorts`). `taken` holds ports
/// already offered to this allocation.
pub fn assign_group_ports<R: Rng>(
    rng: &mut R,
    node: &Node,
    usage: &PortUsage,
    taken: &mut BTreeSet<i64>,
    ask: &NetworkResource,
) -> Result<Vec<AllocatedPortMapping>, String> {
    let mut offer = Vec::new();
    let mut reserved_by_network: HashMap<&str, Vec<i64>> = HashMap::new();
    for port in ask.reserved_ports.iter().flatten() {
        reserved_by_network
            .entry(port.host_network.as_str())
            .or_default()
            .push(port.value);
        let addrs = host_network_addresses(node, &port.host_network);
        let Some(addr) = addrs.first() else {
            return Err(format!(
                "no addresses available for {} network",
                port.host_network
            ));
        };
        if !(0..MAX_VALID_PORT).contains(&port.value) {
            return Err(format!("invalid port {} (out of range)", port.value));
        }
        if usage.in_use(port.value) || taken.contains(&port.value) {
            return Err(format!(
                "reserved port collision {}={}",
                port.label, port.value
            ));
        }
        taken.insert(port.value);
        offer.push(AllocatedPortMapping {
            host_ip: addr.clone(),
            label: port.label.clone(),
            to: port.to,
            value: port.value,
        });
    }
    let range = dynamic_range(node);
    for port in ask.dynamic_ports.iter().flatten() {
        let addrs = host_network_addresses(node, &port.host_network);
        let Some(addr) = addrs.first() else {
            return Err(format!(
                "no addresses available for {} network",
                port.host_network
            ));
        };
        let mut avoid = taken.clone();
        avoid.extend(
            reserved_by_network
                .get(port.host_network.as_str())
                .into_iter()
                .flatten(),
        );
        let value = pick_dynamic(rng, usage, &avoid, range, 1)?
            .first()
            .copied()
            .ok_or_else(|| "dynamic port selection failed".to_owned())?;
        taken.insert(value);
        offer.push(AllocatedPortMapping {
            host_ip: addr.clone(),
            label: port.label.clone(),
            to: if port.to == -1 { value } else { port.to },
            value,
        });
    }
    Ok(offer)
}

/// The group network as recorded on the allocation: the ask with its dynamic ports filled
/// in and the node's address (Nomad's `AllocatedPortsToNetworkResouce`).
pub fn group_network_resource(
    node: &Node,
    ask: &NetworkResource,
    offer: &[AllocatedPortMapping],
) -> NetworkResource {
    let mut out = ask.clone();
    for p in out.dynamic_ports.iter_mut().flatten() {
        if let Some(m) = offer.iter().find(|m| m.label == p.label) {
            p.value = m.value;
            p.to = m.to;
        }
    }
    out.ip = default_ip(node);
    out
}

/// Assigns a legacy task-level network ask on the node's first device network (Nomad's
/// `AssignTaskNetwork`).
pub fn assign_task_network<R: Rng>(
    rng: &mut R,
    node: &Node,
    usage: &PortUsage,
    taken: &mut BTreeSet<i64>,
    ask: &NetworkResource,
) -> Result<NetworkResource, String> {
    let networks = node
        .node_resources
        .as_ref()
        .and_then(|r| r.networks.as_ref())
        .filter(|n| !n.is_empty())
        .or(node.resources.as_ref().and_then(|r| r.networks.as_ref()));
    let Some(net) = networks
        .into_iter()
        .flatten()
        .find(|n| !n.device.is_empty())
    else {
        return Err("no networks available".to_owned());
    };
    for port in ask.reserved_ports.iter().flatten() {
        if !(0..MAX_VALID_PORT).contains(&port.value) {
            return Err(format!("invalid port {} (out of range)", port.value));
        }
        if usage.in_use(port.value) || taken.contains(&port.value) {
            return Err(format!(
                "reserved port collision {}={}",
                port.label, port.value
            ));
        }
    }
    let mut avoid = taken.clone();
    avoid.extend(ask.reserved_ports.iter().flatten().map(|p| p.value));
    let count = ask.dynamic_ports.as_ref().map_or(0, Vec::len);
    let values = pick_dynamic(rng, usage, &avoid, dynamic_range(node), count)?;
    let dynamic_ports = ask.dynamic_ports.as_ref().map(|ports| {
        ports
            .iter()
            .zip(&values)
            .map(|(p, v)| Port {
                value: *v,
                to: if p.to == -1 { *v } else { p.to },
                ..p.clone()
            })
            .collect()
    });
    taken.extend(avoid);
    taken.extend(values);
    Ok(NetworkResource {
        mode: ask.mode.clone(),
        device: net.device.clone(),
        ip: net.ip.clone(),
        mbits: ask.mbits,
        dns: ask.dns.clone(),
        reserved_ports: ask.reserved_ports.clone(),
        dynamic_ports,
        ..NetworkResource::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_ranges("22, 80,8000-8002").unwrap(),
            vec![(22, 22), (80, 80), (8000, 8002)]
        );
        assert!(parse_port_ranges("").unwrap().is_empty());
        assert!(parse_port_ranges("x").is_err());
        assert!(parse_port_ranges("10-5").is_err());
        assert!(parse_port_ranges("1-2-3").is_err());
        assert!(parse_port_ranges("70000").is_err());
    }

    #[test]
    fn usage_counts_holders() {
        let mut u = PortUsage::new(vec![(22, 22)]);
        assert!(u.in_use(22));
        assert!(u.add(&[80]).is_empty());
        assert_eq!(u.add(&[80]), vec!["port 80 already in use".to_owned()]);
        u.remove(&[80]);
        assert!(u.in_use(80));
        u.remove(&[80]);
        assert!(!u.in_use(80));
    }
}
