//! Watches for blocking queries. A waiter subscribes to exactly what it reads — one row or one
//! table — so a write elsewhere never wakes it.

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
}

pub(crate) struct Watches {
    tables: HashMap<TableId, watch::Sender<u64>>,
    rows: Mutex<HashMap<(TableId, String), watch::Sender<u64>>>,
}

/// Row watchers with no receivers left are swept when the map grows past this.
const SWEEP_AT: usize = 4096;

impl Watches {
    pub(crate) fn new() -> Self {
        let tables = TableId::ALL
            .iter()
            .map(|t| (*t, watch::Sender::new(0)))
            .collect();
        Watches {
            tables,
            rows: Mutex::new(HashMap::new()),
        }
    }

    /// Receivers that fire on the next change of any of `keys`. Subscribe before reading the
    /// snapshot, so a change committed in between is never missed.
    pub(crate) fn subscribe(&self, keys: &[WatchKey]) -> Vec<watch::Receiver<u64>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match key {
                WatchKey::Table(table) => {
                    if let Some(tx) = self.tables.get(table) {
                        out.push(tx.subscribe());
                    }
                }
                WatchKey::Row(table, row) => {
                    let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
                    if rows.len() >= SWEEP_AT {
                        rows.retain(|_, tx| tx.receiver_count() > 0);
                    }
                    let tx = rows
                        .entry((*table, row.clone()))
                        .or_insert_with(|| watch::Sender::new(0));
                    out.push(tx.subscribe());
                }
            }
        }
        out
    }

    /// Wakes the watchers of the changed rows and tables.
    pub(crate) fn notify<'a>(&self, index: u64, changed: impl Iterator<Item = (TableId, &'a str)>) {
        let mut tables = Vec::new();
        {
            let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            for (table, key) in changed {
                if !tables.contains(&table) {
                    tables.push(table);
                }
                let entry = (table, key.to_owned());
                if let Some(tx) = rows.get(&entry) {
                    tx.send_replace(index);
                    if tx.receiver_count() == 0 {
                        rows.remove(&entry);
                    }
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
        self.rows.lock().map(|r| r.len()).unwrap_or(0)
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
        w.notify(7, [(TableId::Nodes, "a")].into_iter());
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
            [(TableId::Nodes, "a"), (TableId::Nodes, "b")].into_iter(),
        );
        assert_eq!(w.row_watchers(), 0, "watchers nobody waits on are dropped");
    }
}
