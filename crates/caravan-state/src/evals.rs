//! The evaluations table, indexed by job.

use caravan_structs::Evaluation;

use crate::jobs::job_key;
use crate::table::{Document, TableId};

pub(crate) const BY_JOB: usize = 0;

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

    fn index_values(&self) -> Vec<String> {
        vec![job_key(&self.namespace, &self.job_id)]
    }
}
