//! The store: opens the database, loads the state into memory, runs the single writer that
//! groups concurrent writes into one transaction (group commit), publishes snapshots after each
//! commit and serves blocking queries from memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use imbl::OrdMap;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::backend::{Backend, CHANGELOG_WINDOW, Commit, Loaded};
use crate::error::StateError;
use crate::snapshot::Snapshot;
use crate::table::{Document, Row, Table, TableId};
use crate::txn::{Mutation, Txn};
use crate::watch::{WatchKey, Watches, any_changed};

/// Most writes grouped into one database transaction.
const MAX_BATCH: usize = 512;

/// The outcome of a committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written<R> {
    pub value: R,
    /// The index the write committed at; 0 when it changed nothing.
    pub index: u64,
}

type Reply = Box<dyn FnOnce(Result<u64, StateError>) + Send>;
/// A type-erased write: runs against the working snapshot, says whether to keep its changes,
/// and hands back how to answer once the batch is committed (or failed).
type WriteJob = Box<dyn FnOnce(&mut Txn<'_>) -> (bool, Reply) + Send>;

/// What one commit changed: the rows written or deleted, in the order they were.
#[derive(Debug, Clone)]
pub struct Changes {
    /// The snapshot index after the commit.
    pub index: u64,
    pub keys: Vec<(TableId, String)>,
}

/// Commits a slow subscriber may fall behind before it is told it lagged.
const CHANGES_BACKLOG: usize = 4096;

struct Shared {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    changes: broadcast::Sender<Arc<Changes>>,
    watches: Arc<Watches>,
    /// Set when the process shuts down: blocking queries answer at once.
    closing: watch::Sender<bool>,
}

/// A handle to the state; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    writer: mpsc::Sender<WriteJob>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("index", &self.snapshot().index())
            .finish()
    }
}

impl Store {
    /// Opens `url` (`postgres://…` or `sqlite://path?mode=rwc`), migrates it, takes the
    /// leadership and loads the state.
    pub async fn open(url: &str) -> Result<Store, StateError> {
        let (backend, loaded) = Backend::open(url).await?;
        let epoch = loaded.epoch;
        let snapshot = build_snapshot(loaded)?;
        let (snap_tx, snap_rx) = watch::channel(Arc::new(snapshot));
        let watches = Arc::new(Watches::new());
        let (writer_tx, writer_rx) = mpsc::channel(4 * MAX_BATCH);
        let (changes, _) = broadcast::channel(CHANGES_BACKLOG);
        tokio::spawn(run_writer(
            backend,
            epoch,
            writer_rx,
            snap_tx,
            watches.clone(),
            changes.clone(),
        ));
        Ok(Store {
            shared: Arc::new(Shared {
                snapshot: snap_rx,
                changes,
                watches,
                closing: watch::Sender::new(false),
            }),
            writer: writer_tx,
        })
    }

    /// Runs the migrations of `url` and returns.
    pub async fn migrate(url: &str) -> Result<(), StateError> {
        Backend::migrate(url).await
    }

    /// The latest committed state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.borrow().clone()
    }

    /// Runs `f` on the single writer. Its changes commit together with other concurrent writes;
    /// this returns once they are durable and visible to every later read. If `f` returns an
    /// error, its changes are discarded.
    pub async fn write<R, E, F>(&self, f: F) -> Result<Written<R>, E>
    where
        R: Send + 'static,
        E: From<StateError> + Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> Result<R, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<Written<R>, E>>();
        let job: WriteJob = Box::new(move |txn: &mut Txn<'_>| match f(txn) {
            Ok(value) => {
                let reply: Reply = Box::new(move |res| {
                    let _ = tx.send(res.map(|index| Written { value, index }).map_err(E::from));
                });
                (true, reply)
            }
            Err(e) => {
                let reply: Reply = Box::new(move |_| {
                    let _ = tx.send(Err(e));
                });
                (false, reply)
            }
        });
        self.writer
            .send(job)
            .await
            .map_err(|_| E::from(StateError::Closed))?;
        rx.await.map_err(|_| E::from(StateError::Closed))?
    }

    /// A blocking query: runs `query` on the latest snapshot and returns at once when
    /// `min_index` is 0 or the result's index is past it; otherwise waits until one of `keys`
    /// changes (then re-runs) or `wait` elapses (then returns the current result).
    pub async fn block<R>(
        &self,
        min_index: u64,
        wait: Duration,
        keys: &[WatchKey],
        mut query: impl FnMut(&Snapshot) -> (R, u64),
    ) -> R {
        let deadline = Instant::now() + wait;
        let mut closing = self.shared.closing.subscribe();
        loop {
            let mut rxs = self.shared.watches.subscribe(keys);
            let snap = self.snapshot();
            let (result, index) = query(&snap);
            if min_index == 0
                || index > min_index
                || Instant::now() >= deadline
                || *closing.borrow_and_update()
            {
                return result;
            }
            drop(result);
            tokio::select! {
                _ = any_changed(&mut rxs) => {}
                _ = closing.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return query(&self.snapshot()).0;
                }
            }
        }
    }

    /// Releases every blocking query (now and later) with its current result, so servers can
    /// shut down without waiting out the waits.
    pub fn release_waiters(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Resolves once [`Store::release_waiters`] was called: endless streams end then too.
    pub fn released(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.shared.closing.subscribe();
        async move {
            let _ = closing.wait_for(|c| *c).await;
        }
    }

    /// Receives every newly published snapshot (for background loops such as heartbeats).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.shared.snapshot.clone()
    }

    /// Receives what each commit from now on changed (for the evaluation broker and other
    /// loops that react to particular rows). A receiver that falls behind gets `Lagged` and
    /// must rescan the snapshot.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Changes>> {
        self.shared.changes.subscribe()
    }
}

fn decode_table<T: Document>(loaded: &mut Loaded, index: u64) -> Result<Table<T>, StateError> {
    let mut rows = OrdMap::new();
    for (key, doc) in loaded.rows.remove(&T::TABLE).unwrap_or_default() {
        let value = T::decode(&doc).map_err(|source| StateError::Decode {
            table: T::TABLE.name(),
            key: key.clone(),
            source,
        })?;
        // Re-encoded: PostgreSQL's jsonb does not keep key order; ours is canonical.
        rows.insert(key, Arc::new(Row::new(value)?));
    }
    Ok(Table::from_rows(rows, index))
}

fn build_snapshot(mut loaded: Loaded) -> Result<Snapshot, StateError> {
    let idx = |t: TableId, l: &Loaded| l.table_indexes.get(&t).copied().unwrap_or(0);
    let nodes_idx = idx(TableId::Nodes, &loaded);
    let jobs_idx = idx(TableId::Jobs, &loaded);
    let versions_idx = idx(TableId::JobVersions, &loaded);
    let evals_idx = idx(TableId::Evals, &loaded);
    let allocs_idx = idx(TableId::Allocs, &loaded);
    let deployments_idx = idx(TableId::Deployments, &loaded);
    let node_pools_idx = idx(TableId::NodePools, &loaded);
    let scheduler_config_idx = idx(TableId::SchedulerConfig, &loaded);
    let scaling_events_idx = idx(TableId::ScalingEvents, &loaded);
    let submissions_idx = idx(TableId::JobSubmissions, &loaded);
    let launches_idx = idx(TableId::PeriodicLaunches, &loaded);
    let namespaces_idx = idx(TableId::Namespaces, &loaded);
    let acl_policies_idx = idx(TableId::AclPolicies, &loaded);
    let acl_tokens_idx = idx(TableId::AclTokens, &loaded);
    let acl_roles_idx = idx(TableId::AclRoles, &loaded);
    let one_time_idx = idx(TableId::OneTimeTokens, &loaded);
    let bootstrap_idx = idx(TableId::AclBootstrap, &loaded);
    let services_idx = idx(TableId::ServiceRegistrations, &loaded);
    Ok(Snapshot {
        index: loaded.current_index,
        nodes: decode_table(&mut loaded, nodes_idx)?,
        jobs: decode_table(&mut loaded, jobs_idx)?,
        job_versions: decode_table(&mut loaded, versions_idx)?,
        evals: decode_table(&mut loaded, evals_idx)?,
        allocs: decode_table(&mut loaded, allocs_idx)?,
        deployments: decode_table(&mut loaded, deployments_idx)?,
        node_pools: decode_table(&mut loaded, node_pools_idx)?,
        scheduler_config: decode_table(&mut loaded, scheduler_config_idx)?,
        scaling_events: decode_table(&mut loaded, scaling_events_idx)?,
        job_submissions: decode_table(&mut loaded, submissions_idx)?,
        periodic_launches: decode_table(&mut loaded, launches_idx)?,
        namespaces: decode_table(&mut loaded, namespaces_idx)?,
        acl_policies: decode_table(&mut loaded, acl_policies_idx)?,
        acl_tokens: decode_table(&mut loaded, acl_tokens_idx)?,
        acl_roles: decode_table(&mut loaded, acl_roles_idx)?,
        one_time_tokens: decode_table(&mut loaded, one_time_idx)?,
        acl_bootstrap: decode_table(&mut loaded, bootstrap_idx)?,
        service_registrations: decode_table(&mut loaded, services_idx)?,
    })
}

async fn run_writer(
    backend: Backend,
    epoch: u64,
    mut jobs: mpsc::Receiver<WriteJob>,
    published: watch::Sender<Arc<Snapshot>>,
    watches: Arc<Watches>,
    changes: broadcast::Sender<Arc<Changes>>,
) {
    let mut current: Arc<Snapshot> = published.borrow().clone();
    let mut commits: u64 = 0;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        batch.clear();
        if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let mut working = (*current).clone();
        let mut muts: Vec<Mutation> = Vec::new();
        let mut replies: Vec<(Reply, Option<u64>)> = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            let before = working.clone();
            let muts_before = muts.len();
            let index = working.index + 1;
            let (keep, reply) = {
                let mut txn = Txn {
                    snap: &mut working,
                    muts: &mut muts,
                    index,
                };
                job(&mut txn)
            };
            if !keep {
                working = before;
                muts.truncate(muts_before);
                replies.push((reply, None));
            } else if muts.len() > muts_before {
                working.index = index;
                replies.push((reply, Some(index)));
            } else {
                replies.push((reply, Some(0)));
            }
        }
        if muts.is_empty() {
            for (reply, index) in replies {
                reply(Ok(index.unwrap_or(0)));
            }
            continue;
        }
        let table_indexes = changed_table_indexes(&muts);
        let result = backend
            .commit(Commit {
                old_index: current.index,
                new_index: working.index,
                epoch,
                muts: &muts,
                table_indexes: &table_indexes,
            })
            .await;
        match result {
            Ok(()) => {
                let new_index = working.index;
                current = Arc::new(working);
                published.send_replace(current.clone());
                watches.notify(
                    new_index,
                    muts.iter()
                        .map(|m| (m.table, m.key.as_str(), m.indexed.as_slice())),
                );
                if changes.receiver_count() > 0 {
                    let keys = muts.iter().map(|m| (m.table, m.key.clone())).collect();
                    let _ = changes.send(Arc::new(Changes {
                        index: new_index,
                        keys,
                    }));
                }
                for (reply, index) in replies {
                    reply(Ok(index.unwrap_or(0)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = replies.len(), "state commit failed");
                let fenced = matches!(e, StateError::Fenced);
                let msg = e.to_string();
                for (reply, _) in replies {
                    reply(Err(if fenced {
                        StateError::Fenced
                    } else {
                        StateError::CommitFailed(msg.clone())
                    }));
                }
                if fenced {
                    break;
                }
            }
        }
        commits += 1;
        if commits.is_multiple_of(1024)
            && current.index > CHANGELOG_WINDOW
            && let Err(e) = backend
                .prune_changelog(current.index - CHANGELOG_WINDOW)
                .await
        {
            tracing::warn!(error = %e, "pruning the change log failed");
        }
    }
    backend.close().await;
}

fn changed_table_indexes(muts: &[Mutation]) -> Vec<(TableId, u64)> {
    let mut by_table: HashMap<TableId, u64> = HashMap::new();
    for m in muts {
        let e = by_table.entry(m.table).or_default();
        *e = (*e).max(m.index);
    }
    let mut out: Vec<_> = by_table.into_iter().collect();
    out.sort();
    out
}
