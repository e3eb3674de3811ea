//! The allocations table, indexed by node and by job. Allocations are stored without their
//! `Job` (one copy per job version lives in the versions table) and with their job version.

use caravan_structs::Allocation;
use serde::{Deserialize, Serialize};

use crate::jobs::job_key;
use crate::table::{Document, TableId};

pub(crate) const BY_NODE: usize = 0;
pub(crate) const BY_JOB: usize = 1;

/// The stored document: the allocation plus the version of its job.
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(rename = "JobVersion")]
    job_version: u64,
    #[serde(flatten)]
    alloc: &'a Allocation,
}

#[derive(Deserialize)]
struct Stored {
    #[serde(rename = "JobVersion", default)]
    job_version: u64,
    #[serde(flatten)]
    alloc: Allocation,
}

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

    fn index_values(&self) -> Vec<String> {
        vec![self.node_id.clone(), job_key(&self.namespace, &self.job_id)]
    }

    fn cascade(txn: &mut crate::txn::Txn<'_>, key: &str, now: Option<&Self>) {
        crate::services::alloc_written(txn, key, now);
    }

    fn normalize(&mut self) {
        if let Some(job) = self.job.take() {
            self.job_version = job.version;
        }
    }

    fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&StoredRef {
            job_version: self.job_version,
            alloc: self,
        })
    }

    fn decode(doc: &str) -> Result<Self, serde_json::Error> {
        let stored: Stored = serde_json::from_str(doc)?;
        let mut alloc = stored.alloc;
        alloc.job_version = stored.job_version;
        alloc.job = None;
        Ok(alloc)
    }
}
