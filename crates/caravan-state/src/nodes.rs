//! The nodes table.

use caravan_structs::Node;

use crate::table::{Document, TableId};

impl Document for Node {
    const TABLE: TableId = TableId::Nodes;

    fn key(&self) -> String {
        self.id.clone()
    }

    fn create_index(&self) -> u64 {
        self.create_index
    }

    fn modify_index(&self) -> u64 {
        self.modify_index
    }

    fn set_indexes(&mut self, create_index: u64, modify_index: u64) {
        self.create_index = create_index;
        self.modify_index = modify_index;
    }

    fn columns(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.datacenter.clone(),
            self.status.clone(),
        ]
    }

    fn api_view(&self) -> Option<Self> {
        Some(self.sanitize())
    }
}
