//! Watches for blocking queries. A waiter subscribes to exactly what it reads — one row, the
//! rows holding one value of a secondary index (the allocations of one node), or one table —
//! so a write elsewhere never wakes it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::table::TableId;

/// What a blocking query depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchKey {
    /// Any change in the table (list queries).
    Table(TableId),
    /// A change to one row, its creation or deletion included.
    Row(TableId, String),
    /// A change to any row that holds (or held) `value` in secondary index `index` of the
    /// table — e.g. the allocations of one node.
    Indexed(TableId, usize, String),
}

impl WatchKey {
    /// Any change to the allocations placed on `node_id`.
    pub fn allocs_on_node(node_id: &str) -> WatchKey {
        WatchKey::Indexed(TableId::Allocs, crate::allocs::BY_NODE, node_id.to_owned())
    }
}

/// One watched row or index value.
type Slot = (TableId, Option<usize>, String);

struct Slots {
    senders: HashMap<Slot, watch::Sender<u64>>,
    /// The map size at which idle senders are swept next (doubles with the live ones, so a
    /// large steady population of waiters is not rescanned on every subscription).
    sweep_at: usize,
}

pub(crate) struct Watches {
    tables: HashMap<TableId, watch::Sender<u64>>,
    slots: Mutex<Slots>,
}

/// Idle watchers are first swept when the map grows past this.
const SWEEP_AT: usize = 4096;

impl Watches {
    pub(crate) fn new() -> Self {
        let tables = TableId::ALL
            .iter()
            .map(|t| (*t, watch::Sender::new(0)))
            .collect();
        Watches {
            tables,
            slots: Mutex::new(Slots {
                senders: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receivers that fire on the next change of any of `keys`. Subscribe before reading the
    /// snapshot, so a change committed in between is never missed.
    pub(crate) fn subscribe(&self, keys: &[WatchKey]) -> Vec<watch::Receiver<u64>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let slot: Slot = match key {
                WatchKey::Table(table) => {
                    if let Some(tx) = self.tables.get(table) {
                        out.push(tx.subscribe());
                    }
                    continue;
                }
                WatchKey::Row(table, row) => (*table, None, row.clone()),
                WatchKey::Indexed(table, index, value) => (*table, Some(*index), value.clone()),
            };
            let mut slots = self.lock();
            if slots.senders.len() >= slots.sweep_at {
                slots.senders.retain(|_, tx| tx.receiver_count() > 0);
                slots.sweep_at = (slots.senders.len() * 2).max(SWEEP_AT);
            }
            let tx = slots
                .senders
                .entry(slot)
                .or_insert_with(|| watch::Sender::new(0));
            out.push(tx.subscribe());
        }
        out
    }

    /// Wakes the watchers of the changed rows, of the index values they hold or held, and of
    /// their tables.
    pub(crate) fn notify<'a>(
        &self,
        index: u64,
        changed: impl Iterator<Item = (TableId, &'a str, &'a [(usize, String)])>,
    ) {
        let mut tables = Vec::new();
        {
            let mut slots = self.lock();
            let mut wake = |slot: Slot| {
                if let Some(tx) = slots.senders.get(&slot) {
                    tx.send_replace(index);
                    if tx.receiver_count() == 0 {
                        slots.senders.remove(&slot);
                    }
                }
            };
            for (table, key, indexed) in changed {
                if !tables.contains(&table) {
                    tables.push(table);
                }
                wake((table, None, key.to_owned()));
                for (i, value) in indexed {
                    wake((table, Some(*i), value.clone()));
                }
            }
        }
        for table in tables {
            if let Some(tx) = self.tables.get(&table) {
                tx.send_replace(index);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn row_watchers(&self) -> usize {
        self.lock().senders.len()
    }
}

/// Resolves when any receiver sees a change (or its sender is gone).
pub(crate) async fn any_changed(rxs: &mut [watch::Receiver<u64>]) {
    if rxs.is_empty() {
        std::future::pending::<()>().await;
    }
    let futs = rxs.iter_mut().map(|rx| Box::pin(rx.changed()));
    let _ = futures::future::select_all(futs).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_wakes_only_matching_rows_and_forgets_idle_watchers() {
        let w = Watches::new();
        let mut a = w.subscribe(&[WatchKey::Row(TableId::Nodes, "a".into())]);
        let b = w.subscribe(&[WatchKey::Row(TableId::Nodes, "b".into())]);
        let mut t = w.subscribe(&[WatchKey::Table(TableId::Nodes)]);
        let other = w.subscribe(&[WatchKey::Table(TableId::Allocs)]);
        w.notify(7, [(TableId::Nodes, "a", &[][..])].into_iter());
        assert!(a[0].has_changed().unwrap());
        assert!(!b[0].has_changed().unwrap());
        assert!(t[0].has_changed().unwrap());
        assert!(!other[0].has_changed().unwrap());
        any_changed(&mut a).await;
        any_changed(&mut t).await;
        drop((a, b, t, other));
        assert_eq!(w.row_watchers(), 2);
        w.notify(
            8,
            [
                (TableId::Nodes, "a", &[][..]),
                (TableId::Nodes, "b", &[][..]),
            ]
            .into_iter(),
        );
        assert_eq!(w.row_watchers(), 0, "watchers nobody waits on are dropped");
    }

    #[tokio::test]
    async fn index_watchers_wake_on_rows_holding_their_value() {
        let w = Watches::new();
        let n1 = w.subscribe(&[WatchKey::Indexed(TableId::Allocs, 0, "n1".into())]);
        let n2 = w.subscribe(&[WatchKey::Indexed(TableId::Allocs, 0, "n2".into())]);
        let moved = [(0, "n1".to_owned()), (1, "default/web".to_owned())];
        w.notify(3, [(TableId::Allocs, "a1", &moved[..])].into_iter());
        assert!(n1[0].has_changed().unwrap());
        assert!(!n2[0].has_changed().unwrap());
    }
}
