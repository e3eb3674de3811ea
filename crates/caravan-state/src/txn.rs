//! A write transaction: domain logic reads the working snapshot and records puts and deletes.
//! The writer persists the recorded mutations in one database transaction and publishes the
//! working snapshot only after the commit.

use std::sync::Arc;

use crate::error::StateError;
use crate::snapshot::{HasTable, Snapshot};
use crate::table::{Document, Row, TableId};

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put {
        json: Arc<str>,
        create_index: u64,
        modify_index: u64,
        columns: Vec<String>,
    },
    Delete,
}

#[derive(Debug, Clone)]
pub(crate) struct Mutation {
    pub table: TableId,
    pub key: String,
    /// Secondary index values the row held before and holds after (for index watchers).
    pub indexed: Vec<(usize, String)>,
    /// The global index the change commits at.
    pub index: u64,
    pub op: Op,
}

/// The view a write closure gets. Everything it changes is committed at [`Txn::index`].
pub struct Txn<'a> {
    pub(crate) snap: &'a mut Snapshot,
    pub(crate) muts: &'a mut Vec<Mutation>,
    pub(crate) index: u64,
}

impl Txn<'_> {
    /// The global index this write commits at (if it changes anything).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The state as this transaction sees it, its own changes included.
    pub fn snapshot(&self) -> &Snapshot {
        self.snap
    }

    /// Inserts or replaces `value`, setting its create/modify indexes.
    pub fn put<T: Document>(&mut self, mut value: T) -> Result<Arc<Row<T>>, StateError>
    where
        Snapshot: HasTable<T>,
    {
        value.normalize();
        let key = value.key();
        let old = HasTable::<T>::table(&*self.snap).get(&key);
        let create_index = old
            .map(|row| row.value.create_index())
            .unwrap_or(self.index);
        let mut indexed: Vec<(usize, String)> =
            value.index_values().into_iter().enumerate().collect();
        if let Some(old) = old {
            for entry in old.value.index_values().into_iter().enumerate() {
                if !indexed.contains(&entry) {
                    indexed.push(entry);
                }
            }
        }
        value.set_indexes(create_index, self.index);
        let columns = value.columns();
        let row = Arc::new(Row::new(value)?);
        self.muts.push(Mutation {
            table: T::TABLE,
            key: key.clone(),
            indexed,
            index: self.index,
            op: Op::Put {
                json: row.json.clone(),
                create_index,
                modify_index: self.index,
                columns,
            },
        });
        let index = self.index;
        HasTable::<T>::table_mut(self.snap).insert(key.clone(), row.clone(), index);
        self.snap.index = index;
        T::cascade(self, &key, Some(&row.value));
        Ok(row)
    }

    /// Deletes the object at `key`; returns whether it existed.
    pub fn delete<T: Document>(&mut self, key: &str) -> bool
    where
        Snapshot: HasTable<T>,
    {
        let index = self.index;
        let removed = HasTable::<T>::table_mut(self.snap).remove(key, index);
        if let Some(old) = &removed {
            self.muts.push(Mutation {
                table: T::TABLE,
                key: key.to_owned(),
                indexed: old.value.index_values().into_iter().enumerate().collect(),
                index,
                op: Op::Delete,
            });
            self.snap.index = index;
            T::cascade(self, key, None);
        }
        removed.is_some()
    }
}
