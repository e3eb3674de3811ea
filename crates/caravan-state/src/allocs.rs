//! The allocations table.

use caravan_structs::Allocation;

use crate::table::{Document, TableId};

impl Document for Allocation {
    const TABLE: TableId = TableId::Allocs;

    fn key(&self) -> String {
        self.id.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        vec![
            self.namespace.clone(),
            self.job_id.clone(),
            self.node_id.clone(),
            self.client_status.clone(),
        ]
    }
}
