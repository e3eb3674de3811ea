//! The node pools table (keyed by name), the namespaces table (keyed by name) and the scheduler
//! configuration table (one row).
//!
//! The built-in pools `all` and `default` are not stored: they always exist, never change, and
//! the server answers them as constants (`NodePool::built_in`). A missing scheduler
//! configuration row means the server's default.

use caravan_structs::{
    JobScalingEvents, JobSubmission, Namespace, NodePool, SchedulerConfiguration,
};

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

/// Namespaces, keyed by name.
impl Document for Namespace {
    const TABLE: TableId = TableId::Namespaces;

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

/// A job version's source, keyed like the version. Its index is the version's
/// `JobModifyIndex`.
impl Document for JobSubmission {
    const TABLE: TableId = TableId::JobSubmissions;

    fn key(&self) -> String {
        crate::jobs::job_version_key(&self.namespace, &self.job_id, self.version)
    }

    fn create_index(&self) -> u64 {
        self.job_modify_index
    }

    fn modify_index(&self) -> u64 {
        self.job_modify_index
    }

    fn set_indexes(&mut self, _create_index: u64, modify_index: u64) {
        self.job_modify_index = modify_index;
    }

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
}
