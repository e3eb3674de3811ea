//! A consistent, immutable view of the whole state at one index. Cloning is cheap (persistent
//! maps), so every read and every write transaction works on its own snapshot.

use caravan_structs::{Allocation, Evaluation, Job, Node};

use crate::table::{Document, Table};

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) index: u64,
    pub(crate) nodes: Table<Node>,
    pub(crate) jobs: Table<Job>,
    pub(crate) evals: Table<Evaluation>,
    pub(crate) allocs: Table<Allocation>,
}

impl Snapshot {
    /// The global index of the last write this snapshot contains.
    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn nodes(&self) -> &Table<Node> {
        &self.nodes
    }

    pub fn jobs(&self) -> &Table<Job> {
        &self.jobs
    }

    pub fn evals(&self) -> &Table<Evaluation> {
        &self.evals
    }

    pub fn allocs(&self) -> &Table<Allocation> {
        &self.allocs
    }
}

/// Typed access to the table holding documents of type `T`.
pub trait HasTable<T: Document> {
    fn table(&self) -> &Table<T>;
    fn table_mut(&mut self) -> &mut Table<T>;
}

macro_rules! has_table {
    ($ty:ty, $field:ident) => {
        impl HasTable<$ty> for Snapshot {
            fn table(&self) -> &Table<$ty> {
                &self.$field
            }
            fn table_mut(&mut self) -> &mut Table<$ty> {
                &mut self.$field
            }
        }
    };
}

has_table!(Node, nodes);
has_table!(Job, jobs);
has_table!(Evaluation, evals);
has_table!(Allocation, allocs);
