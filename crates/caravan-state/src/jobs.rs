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
        vec![self.namespace.clone(), self.id.clone(), self.status.clone()]
    }
}
