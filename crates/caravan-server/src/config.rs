//! The server's configuration.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub region: String,
    pub datacenter: String,
    /// The server's name (host name by default).
    pub name: String,
    /// The gRPC address clients and gateways reach this server at (host:port).
    pub rpc_advertise: String,
    /// Nodes heartbeat at least this often; the TTL grows with the number of nodes so that the
    /// cluster sees at most `max_heartbeats_per_second`.
    pub min_heartbeat_ttl: Duration,
    pub max_heartbeats_per_second: f64,
    /// Extra time past the TTL before a node is marked down.
    pub heartbeat_grace: Duration,
    /// The TTL given to every node when this server takes over (after a restart), so clients
    /// have time to find it before their nodes are marked down.
    pub failover_heartbeat_ttl: Duration,
    /// Scheduler workers (evaluations processed in parallel); Nomad's `num_schedulers`. 0: this
    /// server schedules nothing (evaluations stay pending).
    pub scheduler_workers: usize,
    /// `binpack` (fill nodes) or `spread` (use the emptiest node): the algorithm of the
    /// scheduler configuration until an operator sets one (Nomad's `default_scheduler_config`).
    pub scheduler_algorithm: String,
    /// When terminal objects are garbage-collected.
    pub gc: crate::gc::GcConfig,
    /// Access control (off unless enabled).
    pub acl: crate::acl::AclConfig,
}

impl ServerConfig {
    /// The scheduler configuration of a cluster nobody configured: Nomad's defaults, with this
    /// server's algorithm.
    pub fn scheduler_defaults(&self) -> caravan_structs::SchedulerConfiguration {
        let mut config = caravan_structs::SchedulerConfiguration::server_default();
        if caravan_structs::validate_scheduler_algorithm(&self.scheduler_algorithm).is_ok()
            && !self.scheduler_algorithm.is_empty()
        {
            config.scheduler_algorithm = self.scheduler_algorithm.clone();
        }
        config
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            region: "global".to_owned(),
            datacenter: "dc1".to_owned(),
            name: "caravan-server".to_owned(),
            rpc_advertise: "127.0.0.1:4647".to_owned(),
            min_heartbeat_ttl: Duration::from_secs(10),
            max_heartbeats_per_second: 50.0,
            heartbeat_grace: Duration::from_secs(10),
            failover_heartbeat_ttl: Duration::from_secs(300),
            scheduler_workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            scheduler_algorithm: "binpack".to_owned(),
            gc: crate::gc::GcConfig::default(),
            acl: crate::acl::AclConfig::default(),
        }
    }
}
