//! Deployments: the progress of a rolling update or canary of one job version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Time;

/// `Deployment.Status` values.
pub const DEPLOYMENT_STATUS_RUNNING: &str = "running";
pub const DEPLOYMENT_STATUS_PAUSED: &str = "paused";
pub const DEPLOYMENT_STATUS_FAILED: &str = "failed";
pub const DEPLOYMENT_STATUS_SUCCESSFUL: &str = "successful";
pub const DEPLOYMENT_STATUS_CANCELLED: &str = "cancelled";
pub const DEPLOYMENT_STATUS_INITIALIZING: &str = "initializing";
pub const DEPLOYMENT_STATUS_PENDING: &str = "pending";
pub const DEPLOYMENT_STATUS_BLOCKED: &str = "blocked";
pub const DEPLOYMENT_STATUS_UNBLOCKING: &str = "unblocking";

/// A deployment (GET /v1/deployment/:id, /v1/deployments).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Deployment {
    pub create_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    pub eval_priority: i64,
    #[serde(rename = "ID")]
    pub id: String,
    pub is_multiregion: bool,
    pub job_create_index: u64,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    pub job_spec_modify_index: u64,
    pub job_version: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub modify_time: i64,
    pub namespace: String,
    pub status: String,
    pub status_description: String,
    pub task_groups: Option<BTreeMap<String, DeploymentState>>,
}

/// A task group's progress within a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeploymentState {
    pub auto_promote: bool,
    pub auto_revert: bool,
    pub desired_canaries: i64,
    pub desired_total: i64,
    pub healthy_allocs: i64,
    pub placed_allocs: i64,
    pub placed_canaries: Option<Vec<String>>,
    /// Nanoseconds.
    pub progress_deadline: i64,
    pub promoted: bool,
    /// Zero (null) until the group has placed something.
    pub require_progress_by: Time,
    pub unhealthy_allocs: i64,
}

impl Deployment {
    /// Still in progress: `running`, `paused`, `pending`, `blocked`, `unblocking` or
    /// `initializing`.
    pub fn active(&self) -> bool {
        matches!(
            self.status.as_str(),
            DEPLOYMENT_STATUS_RUNNING
                | DEPLOYMENT_STATUS_PAUSED
                | DEPLOYMENT_STATUS_PENDING
                | DEPLOYMENT_STATUS_BLOCKED
                | DEPLOYMENT_STATUS_UNBLOCKING
                | DEPLOYMENT_STATUS_INITIALIZING
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_statuses() {
        let mut d = Deployment {
            status: DEPLOYMENT_STATUS_RUNNING.into(),
            ..Default::default()
        };
        assert!(d.active());
        d.status = DEPLOYMENT_STATUS_SUCCESSFUL.into();
        assert!(!d.active());
    }
}
