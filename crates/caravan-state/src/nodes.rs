//! The nodes table.

use caravan_structs::Node;

use crate::table::{Document, TableId};

impl Document for Node {
    const TABLE: TableId = TableId::Nodes;

    fn key(&self) -> String {
        self.id.clone()
    }

    crate::table::index_fields!();

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
