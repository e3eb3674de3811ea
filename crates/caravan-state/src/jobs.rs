//! The jobs table (the current version of each job, keyed `<namespace>/<job id>`; namespace
//! names cannot contain `/`) and the job versions table (every tracked version, keyed
//! `<namespace>/<job id>#<version, zero-padded>`, indexed by job).

use caravan_structs::Job;
use serde::{Deserialize, Serialize};

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

/// One tracked version of a job (GET /v1/job/:id/versions, an allocation's `Job`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobVersion(pub Job);

impl JobVersion {
    /// The secondary index of the versions table: by job key.
    pub(crate) const BY_JOB: usize = 0;
}

/// The table key of one job version; keys of one job sort by version.
pub fn job_version_key(namespace: &str, id: &str, version: u64) -> String {
    format!("{namespace}/{id}#{version:020}")
}

impl Document for JobVersion {
    const TABLE: TableId = TableId::JobVersions;

    fn key(&self) -> String {
        job_version_key(&self.0.namespace, &self.0.id, self.0.version)
    }

    fn create_index(&self) -> u64 {
        self.0.create_index
    }

    fn modify_index(&self) -> u64 {
        self.0.modify_index
    }

    /// A version is written once, as the job was at that version: its indexes are the job's.
    fn set_indexes(&mut self, _create_index: u64, _modify_index: u64) {}

    fn columns(&self) -> Vec<String> {
        vec![
            self.0.namespace.clone(),
            self.0.id.clone(),
            self.0.version.to_string(),
        ]
    }

    fn index_values(&self) -> Vec<String> {
        vec![job_key(&self.0.namespace, &self.0.id)]
    }
}
