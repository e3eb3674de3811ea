//! The periodic launches table: the last launch of each periodic job (Nomad's
//! `PeriodicLaunch`), keyed like the job (`<namespace>/<job id>`). A launch and the record of
//! it are written in one transaction, so a new leader resumes from the last launch that
//! committed.

use caravan_structs::PeriodicLaunch;

use crate::jobs::job_key;
use crate::table::{Document, TableId};

impl Document for PeriodicLaunch {
    const TABLE: TableId = TableId::PeriodicLaunches;

    fn key(&self) -> String {
        job_key(&self.namespace, &self.id)
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        vec![self.namespace.clone(), self.id.clone()]
    }
}
