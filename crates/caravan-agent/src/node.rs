//! Builds the Node document the agent registers, from the fingerprint and the configuration.

use std::collections::BTreeMap;
use std::time::SystemTime;

use caravan_structs::node::{AGENT_ADDRESS_ATTRIBUTE, NODE_STATUS_INIT};
use caravan_structs::{
    DriverInfo, NetworkResource, Node, NodeCpuResources, NodeDiskResources, NodeMemoryResources,
    NodeReservedResources, NodeResources, Resources, Time,
};

use caravan_drivers::Drivers;

use crate::config::AgentConfig;
use crate::fingerprint::{DriverProbe, Fingerprint};
use crate::identity::Identity;

/// Nomad's default dynamic port range.
pub const MIN_DYNAMIC_PORT: i64 = 20000;
pub const MAX_DYNAMIC_PORT: i64 = 32000;

/// The drivers this agent reports: each built-in driver fingerprints itself (`exec` is not
/// detected where namespaces or cgroups are unavailable).
pub fn driver_probes(drivers: &Drivers) -> Vec<DriverProbe> {
    drivers
        .iter()
        .map(|d| {
            let fp = d.fingerprint();
            DriverProbe {
                name: d.name().to_owned(),
                detected: fp.detected,
                healthy: fp.healthy,
                health_description: fp.health_description,
                attributes: fp.attributes,
            }
        })
        .collect()
}

fn networks(fp: &Fingerprint) -> Vec<NetworkResource> {
    fp.networks
        .iter()
        .map(|n| NetworkResource {
            cidr: n.cidr.clone(),
            device: n.device.clone(),
            ip: n.ip.clone(),
            mbits: n.mbits as i64,
            mode: n.mode.clone(),
            ..NetworkResource::default()
        })
        .collect()
}

/// The node as registered: everything measured, nothing the server owns (events, drain,
/// eligibility) set.
pub fn build_node(cfg: &AgentConfig, id: &Identity, fp: &Fingerprint) -> Node {
    let now = Time::from_system_time(SystemTime::now());
    let drivers: BTreeMap<String, DriverInfo> = fp
        .drivers
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                DriverInfo {
                    attributes: if d.attributes.is_empty() {
                        None
                    } else {
                        Some(d.attributes.clone())
                    },
                    detected: d.detected,
                    health_description: d.health_description.clone(),
                    healthy: d.healthy,
                    update_time: now,
                },
            )
        })
        .collect();
    let cpu = fp.cpu_total_compute_mhz as i64;
    let memory = fp.memory_mb as i64;
    let disk = fp.disk_mb as i64;
    let nets = networks(fp);
    let mut node = Node {
        attributes: Some(fp.attributes.clone()),
        csi_controller_plugins: Some(BTreeMap::new()),
        csi_node_plugins: Some(BTreeMap::new()),
        datacenter: cfg.datacenter.clone(),
        drivers: Some(drivers),
        http_addr: cfg.http_advertise.clone(),
        host_networks: Some(BTreeMap::new()),
        host_volumes: Some(BTreeMap::new()),
        id: id.node_id.clone(),
        links: Some(BTreeMap::new()),
        meta: Some(cfg.meta.clone()),
        name: cfg.node_name.clone(),
        node_class: cfg.node_class.clone(),
        node_pool: if cfg.node_pool.is_empty() {
            "default".to_owned()
        } else {
            cfg.node_pool.clone()
        },
        node_resources: Some(NodeResources {
            cpu: NodeCpuResources {
                cpu_shares: cpu,
                reservable_cpu_cores: Some((0..fp.cpu_cores.min(u16::MAX as u32) as u16).collect()),
                total_cpu_cores: fp.cpu_cores.min(u16::MAX as u32) as u16,
            },
            devices: None,
            disk: NodeDiskResources { disk_mb: disk },
            max_dynamic_port: MAX_DYNAMIC_PORT,
            memory: NodeMemoryResources { memory_mb: memory },
            min_dynamic_port: MIN_DYNAMIC_PORT,
            networks: Some(nets.clone()),
            node_networks: None,
        }),
        reserved: Some(Resources::default()),
        reserved_resources: Some(NodeReservedResources::default()),
        resources: Some(Resources {
            cpu,
            disk_mb: disk,
            memory_mb: memory,
            networks: Some(nets),
            ..Resources::default()
        }),
        secret_id: id.secret_id.clone(),
        status: NODE_STATUS_INIT.to_owned(),
        ..Node::default()
    };
    if !cfg.rpc_advertise.is_empty()
        && let Some(attrs) = node.attributes.as_mut()
    {
        attrs.insert(
            AGENT_ADDRESS_ATTRIBUTE.to_owned(),
            cfg.rpc_advertise.clone(),
        );
    }
    node.set_computed_class();
    node
}
