//! The evaluations table.

use caravan_structs::Evaluation;

use crate::table::{Document, TableId};

impl Document for Evaluation {
    const TABLE: TableId = TableId::Evals;

    fn key(&self) -> String {
        self.id.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        vec![
            self.namespace.clone(),
            self.job_id.clone(),
            self.status.clone(),
        ]
    }
}
