//! The node pools table (keyed by name) and the scheduler configuration table (one row).
//!
//! The built-in pools `all` and `default` are not stored: they always exist, never change, and
//! the server answers them as constants (`NodePool::built_in`). A missing scheduler
//! configuration row means the server's default.

use caravan_structs::{JobScalingEvents, NodePool, SchedulerConfiguration};

use crate::table::{Document, TableId};

/// The key of the one scheduler configuration row.
pub const SCHEDULER_CONFIG_KEY: &str = "config";

impl Document for NodePool {
    const TABLE: TableId = TableId::NodePools;

    fn key(&self) -> String {
        self.name.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Document for SchedulerConfiguration {
    const TABLE: TableId = TableId::SchedulerConfig;

    fn key(&self) -> String {
        SCHEDULER_CONFIG_KEY.to_owned()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A job's scaling events: one row per job, keyed like the job.
impl Document for JobScalingEvents {
    const TABLE: TableId = TableId::ScalingEvents;

    fn key(&self) -> String {
        crate::jobs::job_key(&self.namespace, &self.job_id)
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
}
