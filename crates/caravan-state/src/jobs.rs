//! The jobs table, keyed `<namespace>/<job id>` (namespace names cannot contain `/`).

use caravan_structs::Job;

use crate::table::{Document, TableId};

/// The table key of a job.
pub fn job_key(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}

impl Document for Job {
    const TABLE: TableId = TableId::Jobs;

    fn key(&self) -> String {
        job_key(&self.namespace, &self.id)
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        vec![self.namespace.clone(), self.id.clone(), self.status.clone()]
    }
}
