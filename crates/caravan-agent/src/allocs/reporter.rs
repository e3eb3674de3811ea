//! Reports allocation status to the servers in batches, at most one every 200 ms (Nomad's
//! client sync interval): a change after a quiet spell goes out at once, a burst gathers into
//! the next batch, and a change of an allocation's `ClientStatus` (pending → running → complete)
//! is sent without waiting for the interval. The latest view of each allocation replaces any older one still waiting,
//! and a batch that fails is kept and retried with back-off, so a server or database restart
//! loses no update.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caravan_proto::v1::allocs_client::AllocsClient;
use caravan_proto::v1::{NodeAuth, UpdateAllocsRequest};
use caravan_structs::Allocation;
use tokio::sync::Notify;
use tonic::transport::Channel;

use crate::identity::Identity;

const BATCH_INTERVAL: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Allocations per request: keeps a burst (a thousand tasks starting) in sane messages.
const MAX_BATCH: usize = 500;

#[derive(Clone, Default)]
pub struct Reporter {
    pending: Arc<Mutex<BTreeMap<String, Allocation>>>,
    wake: Arc<Notify>,
    /// A waiting update changes a client status: send without waiting for the interval.
    urgent: Arc<AtomicBool>,
}

impl Reporter {
    /// Queues the client view of an allocation (ID, ClientStatus, ClientDescription,
    /// TaskStates, DeploymentStatus); `status_changed` marks a new `ClientStatus`.
    pub fn report(&self, update: Allocation, status_changed: bool) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(update.id.clone(), update);
        }
        if status_changed {
            self.urgent.store(true, Ordering::Release);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<Allocation> {
        let Ok(mut p) = self.pending.lock() else {
            return Vec::new();
        };
        let keys: Vec<String> = p.keys().take(MAX_BATCH).cloned().collect();
        keys.iter().filter_map(|k| p.remove(k)).collect()
    }

    /// Puts back a batch that could not be sent, unless a newer view arrived meanwhile.
    fn put_back(&self, batch: Vec<Allocation>) {
        if let Ok(mut p) = self.pending.lock() {
            for a in batch {
                p.entry(a.id.clone()).or_insert(a);
            }
        }
    }

    pub fn is_idle(&self) -> bool {
        self.pending.lock().map(|p| p.is_empty()).unwrap_or(true)
    }

    /// Sends batches until the agent stops.
    pub async fn run(self, channel: Channel, identity: Identity) {
        let mut client = AllocsClient::new(channel);
        let mut failures: u32 = 0;
        let mut last_sent: Option<tokio::time::Instant> = None;
        loop {
            self.wake.notified().await;
            // At most one batch per interval: a burst of changes gathers into one request.
            if let Some(at) = last_sent {
                let interval = tokio::time::sleep_until(at + BATCH_INTERVAL);
                tokio::pin!(interval);
                while !self.urgent.load(Ordering::Acquire) {
                    tokio::select! {
                        () = &mut interval => break,
                        () = self.wake.notified() => {}
                    }
                }
            }
            self.urgent.store(false, Ordering::Release);
            last_sent = Some(tokio::time::Instant::now());
            loop {
                let batch = self.take();
                if batch.is_empty() {
                    break;
                }
                let encoded: Vec<bytes::Bytes> = batch
                    .iter()
                    .filter_map(|a| serde_json::to_vec(a).ok().map(bytes::Bytes::from))
                    .collect();
                let request = UpdateAllocsRequest {
                    node: Some(NodeAuth {
                        node_id: identity.node_id.clone(),
                        secret_id: identity.secret_id.clone(),
                    }),
                    allocs_json: encoded,
                };
                match client.update_allocs(request).await {
                    Ok(_) => failures = 0,
                    Err(status) => {
                        failures += 1;
                        tracing::warn!(code = ?status.code(), error = %status.message(), failures, "reporting allocation status failed; will retry");
                        self.put_back(batch);
                        let backoff = Duration::from_millis(250)
                            .saturating_mul(1 << failures.min(6))
                            .min(MAX_BACKOFF);
                        tokio::time::sleep(backoff).await;
                    }
                }
            }
        }
    }
}
