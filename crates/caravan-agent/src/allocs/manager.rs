//! The allocations of this node: follows the server's view of them with a blocking watch
//! (WatchNodeAllocs, then GetAllocs for what changed), keeps one runner per allocation,
//! restores runners from the local state at start-up, and garbage-collects terminal
//! allocations — on request, and by count and disk usage as Nomad's client does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caravan_proto::v1::allocs_client::AllocsClient;
use caravan_proto::v1::{GetAllocsRequest, NodeAuth, QueryOptions, WatchNodeAllocsRequest};
use caravan_structs::Allocation;
use tonic::transport::Channel;

use super::runner::{AllocRunner, RequestError, RunnerContext, is_terminal_status};
use crate::identity::Identity;

/// When terminal allocations are collected on the agent's own initiative (Nomad's
/// `gc_max_allocs` and `gc_disk_usage_threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcLimits {
    /// Above this many allocations, the oldest terminal ones are collected.
    pub max_allocs: usize,
    /// Above this percentage of the data directory's file system in use, likewise.
    pub disk_usage_threshold: f64,
}

impl Default for GcLimits {
    fn default() -> Self {
        GcLimits {
            max_allocs: 50,
            disk_usage_threshold: 80.0,
        }
    }
}
const GC_INTERVAL: Duration = Duration::from_secs(60);
const WATCH_WAIT: Duration = Duration::from_secs(300);
const FETCH_BATCH: usize = 200;

#[derive(Clone)]
pub struct AllocManager {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: RunnerContext,
    runners: Mutex<HashMap<String, Arc<AllocRunner>>>,
    /// Allocations collected here: never run again, even if the server still lists them.
    collected: Mutex<HashSet<String>>,
}

impl AllocManager {
    pub fn new(ctx: RunnerContext) -> AllocManager {
        AllocManager {
            inner: Arc::new(Inner {
                ctx,
                runners: Mutex::new(HashMap::new()),
                collected: Mutex::new(HashSet::new()),
            }),
        }
    }

    pub fn get(&self, alloc_id: &str) -> Option<Arc<AllocRunner>> {
        self.inner
            .runners
            .lock()
            .ok()
            .and_then(|r| r.get(alloc_id).cloned())
    }

    /// Whether this agent garbage-collected the allocation (its files are gone).
    pub fn was_collected(&self, alloc_id: &str) -> bool {
        self.inner
            .collected
            .lock()
            .is_ok_and(|c| c.contains(alloc_id))
    }

    pub fn runners(&self) -> Vec<Arc<AllocRunner>> {
        self.inner
            .runners
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Re-creates the runners a previous agent process left, re-attaching to their tasks.
    pub fn restore(&self) -> usize {
        let saved = self.inner.ctx.local.load_all();
        let mut restored = 0;
        for s in saved {
            let id = s.alloc.id.clone();
            match AllocRunner::spawn(self.inner.ctx.clone(), s.alloc, s.tasks) {
                Ok(runner) => {
                    if let Ok(mut r) = self.inner.runners.lock() {
                        r.insert(id, Arc::new(runner));
                        restored += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(alloc_id = %id, error = %e, "cannot restore the allocation")
                }
            }
        }
        // The server learns the current state of everything restored.
        for runner in self.runners() {
            self.inner.ctx.reporter.report(runner.view(), true);
        }
        restored
    }

    /// A new or changed allocation from the server.
    fn upsert(&self, alloc: Allocation) {
        if self
            .inner
            .collected
            .lock()
            .is_ok_and(|c| c.contains(&alloc.id))
        {
            return;
        }
        if let Some(runner) = self.get(&alloc.id) {
            runner.update(alloc);
            return;
        }
        // Terminal on the server before this agent ever ran it: nothing to do.
        if is_terminal_status(&alloc.client_status)
            || alloc.client_status == caravan_structs::ALLOC_CLIENT_STATUS_LOST
            || (alloc.desired_status != caravan_structs::ALLOC_DESIRED_STATUS_RUN
                && alloc.client_status == caravan_structs::ALLOC_CLIENT_STATUS_PENDING
                && alloc.task_states.as_ref().is_none_or(|t| t.is_empty()))
        {
            return;
        }
        let id = alloc.id.clone();
        match AllocRunner::spawn(self.inner.ctx.clone(), alloc, BTreeMap::new()) {
            Ok(runner) => {
                if let Ok(mut r) = self.inner.runners.lock() {
                    r.insert(id, Arc::new(runner));
                }
            }
            Err(e) => tracing::warn!(alloc_id = %id, error = %e, "cannot run the allocation"),
        }
        self.collect_over_limits();
    }

    /// The server no longer has the allocation: stop it and remove everything.
    async fn forget(&self, alloc_id: &str) {
        let runner = self
            .inner
            .runners
            .lock()
            .ok()
            .and_then(|mut r| r.remove(alloc_id));
        if let Some(runner) = runner {
            runner.stop();
            runner.wait_terminal().await;
            self.remove_files(&runner);
        }
    }

    fn remove_files(&self, runner: &AllocRunner) {
        if let Err(e) = runner.dir().destroy() {
            tracing::warn!(alloc_id = %runner.id, error = %e, "cannot remove the allocation directory");
        }
        if let Err(e) = self.inner.ctx.local.remove(&runner.id) {
            tracing::warn!(alloc_id = %runner.id, error = %e, "cannot remove the allocation's local state");
        }
    }

    /// Collects one terminal allocation (`/v1/client/allocation/:id/gc`).
    pub fn collect(&self, alloc_id: &str) -> Result<(), RequestError> {
        let runner = self
            .get(alloc_id)
            .ok_or_else(|| RequestError::NotFound(format!("Unknown allocation {alloc_id:?}")))?;
        if !is_terminal_status(&runner.view().client_status) {
            return Err(RequestError::BadRequest(
                "No such allocation on client, or allocation not eligible for GC".to_owned(),
            ));
        }
        self.collect_runner(&runner);
        Ok(())
    }

    fn collect_runner(&self, runner: &AllocRunner) {
        if let Ok(mut c) = self.inner.collected.lock() {
            c.insert(runner.id.clone());
        }
        if let Ok(mut r) = self.inner.runners.lock() {
            r.remove(&runner.id);
        }
        self.remove_files(runner);
        tracing::info!(alloc_id = %runner.id, "garbage-collected allocation");
    }

    /// Collects every terminal allocation (`/v1/client/gc`).
    pub fn collect_all(&self) -> usize {
        let terminal: Vec<_> = self
            .runners()
            .into_iter()
            .filter(|r| is_terminal_status(&r.view().client_status))
            .collect();
        for r in &terminal {
            self.collect_runner(r);
        }
        terminal.len()
    }

    /// Collects the oldest terminal allocations while there are too many allocations or the
    /// disk is too full.
    pub fn collect_over_limits(&self) {
        let mut terminal: Vec<_> = self
            .runners()
            .into_iter()
            .filter_map(|r| r.terminal_since().map(|t| (t, r)))
            .collect();
        terminal.sort_by_key(|(t, _)| *t);
        let limits = self.inner.ctx.gc;
        let mut count = self.runners().len();
        for (_, runner) in terminal {
            let over_count = count > limits.max_allocs;
            let over_disk = disk_usage_percent(&self.inner.ctx.alloc_base)
                .is_some_and(|p| p > limits.disk_usage_threshold);
            if !over_count && !over_disk {
                break;
            }
            self.collect_runner(&runner);
            count -= 1;
        }
    }

    /// Follows the server's allocations for this node until the agent stops.
    pub async fn watch(self, channel: Channel, identity: Identity) {
        let mut client = AllocsClient::new(channel);
        let auth = NodeAuth {
            node_id: identity.node_id.clone(),
            secret_id: identity.secret_id.clone(),
        };
        let mut known: HashMap<String, u64> = HashMap::new();
        let mut min_index = 0;
        let mut failures: u32 = 0;
        let gc = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(GC_INTERVAL) => {}
                    () = gc.inner.ctx.terminal.notified() => {}
                }
                gc.collect_over_limits();
            }
        });
        loop {
            let request = WatchNodeAllocsRequest {
                node: Some(auth.clone()),
                query: Some(QueryOptions {
                    min_index,
                    max_wait_ms: WATCH_WAIT.as_millis() as u64,
                    ..QueryOptions::default()
                }),
            };
            let response = match client.watch_node_allocs(request).await {
                Ok(r) => r.into_inner(),
                Err(status) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(code = ?status.code(), error = %status.message(), "watching this node's allocations failed; retrying");
                    }
                    let backoff = Duration::from_millis(250)
                        .saturating_mul(1 << failures.min(5))
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            failures = 0;
            let index = response.meta.as_ref().map(|m| m.index).unwrap_or(0);
            let listed: HashMap<String, u64> = response
                .allocs
                .into_iter()
                .map(|a| (a.alloc_id, a.alloc_modify_index))
                .collect();
            let changed: Vec<String> = listed
                .iter()
                .filter(|(id, idx)| known.get(*id) != Some(idx))
                .map(|(id, _)| id.clone())
                .collect();
            let removed: Vec<String> = known
                .keys()
                .filter(|id| !listed.contains_key(*id))
                .cloned()
                .collect();
            let mut fetched_all = true;
            for chunk in changed.chunks(FETCH_BATCH) {
                match client
                    .get_allocs(GetAllocsRequest {
                        node: Some(auth.clone()),
                        alloc_ids: chunk.to_vec(),
                    })
                    .await
                {
                    Ok(resp) => {
                        for json in resp.into_inner().allocs_json {
                            match serde_json::from_slice::<Allocation>(&json) {
                                Ok(alloc) => {
                                    known.insert(
                                        alloc.id.clone(),
                                        listed.get(&alloc.id).copied().unwrap_or(0),
                                    );
                                    self.upsert(with_job_version(alloc));
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "undecodable allocation from the server")
                                }
                            }
                        }
                    }
                    Err(status) => {
                        fetched_all = false;
                        tracing::warn!(error = %status.message(), "fetching allocations failed");
                    }
                }
            }
            for id in removed {
                known.remove(&id);
                let me = self.clone();
                tokio::spawn(async move { me.forget(&id).await });
            }
            if fetched_all {
                min_index = index;
            } else {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Allocations from the server carry their job version only in the attached job.
fn with_job_version(mut alloc: Allocation) -> Allocation {
    if let Some(job) = &alloc.job {
        alloc.job_version = job.version;
    }
    alloc
}

/// Percentage of the file system holding `path` that is used.
fn disk_usage_percent(path: &std::path::Path) -> Option<f64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    let total = stat.blocks() as f64;
    if total <= 0.0 {
        return None;
    }
    let free = stat.blocks_available() as f64;
    Some((total - free) / total * 100.0)
}
