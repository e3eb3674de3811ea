//! Heartbeat timers: each live node has a deadline; a node that misses it goes `down` with a
//! `Node heartbeat missed` event. Timers live only in the leader's memory; on start-up every
//! live node gets the failover TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::nodes;
use caravan_state::Store;

pub struct Heartbeats {
    deadlines: Mutex<HashMap<String, Instant>>,
    changed: Notify,
    config: Arc<ServerConfig>,
}

impl Heartbeats {
    pub fn new(config: Arc<ServerConfig>) -> Arc<Self> {
        Arc::new(Heartbeats {
            deadlines: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            config,
        })
    }

    /// The TTL to hand a node now: at least the minimum, longer with many nodes, plus a random
    /// stagger so heartbeats spread out.
    pub fn next_ttl(&self, num_nodes: usize) -> Duration {
        let by_rate = Duration::from_secs_f64(
            num_nodes as f64 / self.config.max_heartbeats_per_second.max(1.0),
        );
        let ttl = self.config.min_heartbeat_ttl.max(by_rate);
        let stagger_ms = ttl.as_millis().max(1) as u64;
        ttl + Duration::from_millis(rand::rng().random_range(0..stagger_ms))
    }

    /// Restarts the node's timer: it must heartbeat again within `ttl` (plus the grace).
    pub fn reset(&self, node_id: &str, ttl: Duration) {
        let deadline = Instant::now() + ttl + self.config.heartbeat_grace;
        self.lock().insert(node_id.to_owned(), deadline);
        self.changed.notify_one();
    }

    pub fn clear(&self, node_id: &str) {
        self.lock().remove(node_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives every live node in the store the failover TTL.
    pub fn initialize(&self, store: &Store) {
        let snap = store.snapshot();
        let ttl = self.config.failover_heartbeat_ttl;
        for (id, row) in snap.nodes().iter() {
            if !row.value.terminal_status() {
                self.reset(id, ttl);
            }
        }
    }

    /// Marks nodes down as their deadlines pass, until the store shuts down.
    pub async fn run(self: Arc<Self>, store: Store) {
        loop {
            let now = Instant::now();
            let (expired, next): (Vec<String>, Option<Instant>) = {
                let mut map = self.lock();
                let expired: Vec<String> = map
                    .iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &expired {
                    map.remove(id);
                }
                (expired, map.values().min().copied())
            };
            for node_id in expired {
                match nodes::mark_heartbeat_missed(&store, &node_id).await {
                    Ok(()) => {
                        tracing::warn!(node_id = %node_id, "node missed its heartbeat, marked down")
                    }
                    Err(e) => {
                        tracing::error!(node_id = %node_id, error = %e, "failed to mark node down")
                    }
                }
            }
            let sleep_until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(sleep_until) => {}
                _ = self.changed.notified() => {}
            }
        }
    }
}
