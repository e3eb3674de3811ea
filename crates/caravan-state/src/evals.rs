//! The evaluations table.

use caravan_structs::Evaluation;

use crate::table::{Document, TableId};

impl Document for Evaluation {
    const TABLE: TableId = TableId::Evals;

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
            self.namespace.clone(),
            self.job_id.clone(),
            self.status.clone(),
        ]
    }
}
