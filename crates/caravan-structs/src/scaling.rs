//! Scaling: the events `POST /v1/job/:id/scale` records per task group, and the scale status
//! `GET /v1/job/:id/scale` answers (Nomad's `ScalingEvent`, `JobScalingEvents`,
//! `JobScaleStatus`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many events are kept per task group (Nomad's `JobTrackedScalingEvents`).
pub const JOB_TRACKED_SCALING_EVENTS: usize = 20;

/// One scaling action or report on a task group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ScalingEvent {
    /// The new count; `None` for an event that changed nothing (an error or a message).
    pub count: Option<i64>,
    pub create_index: u64,
    pub error: bool,
    #[serde(rename = "EvalID")]
    pub eval_id: Option<String>,
    pub message: String,
    pub meta: Option<BTreeMap<String, Value>>,
    pub previous_count: i64,
    /// Unix nanoseconds.
    pub time: i64,
}

/// Every kept scaling event of one job, newest first per group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobScalingEvents {
    pub create_index: u64,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub modify_index: u64,
    pub namespace: String,
    pub scaling_events: BTreeMap<String, Vec<ScalingEvent>>,
}

/// `GET /v1/job/:id/scale`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobScaleStatus {
    pub job_create_index: u64,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    pub job_stopped: bool,
    pub namespace: String,
    pub task_groups: BTreeMap<String, TaskGroupScaleStatus>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroupScaleStatus {
    pub desired: i64,
    pub events: Option<Vec<ScalingEvent>>,
    pub healthy: i64,
    pub placed: i64,
    pub running: i64,
    pub unhealthy: i64,
}
