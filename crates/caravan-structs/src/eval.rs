//! Evaluations: the unit of scheduling work (GET /v1/evaluation/:id, /v1/evaluations).
//!
//! Nomad at HEAD leaves empty fields out of an `Evaluation` (the `_struct` omitempty marker,
//! NOMAD-BEHAVIOR 8.9); the documentation samples, which the spec follows, show every key with
//! its zero value. Like `Allocation`, this type writes every key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alloc::AllocMetric;
use crate::time::Time;

/// `Evaluation.Status` values.
pub const EVAL_STATUS_BLOCKED: &str = "blocked";
pub const EVAL_STATUS_PENDING: &str = "pending";
pub const EVAL_STATUS_COMPLETE: &str = "complete";
pub const EVAL_STATUS_FAILED: &str = "failed";
pub const EVAL_STATUS_CANCELLED: &str = "canceled";

/// `Evaluation.TriggeredBy` values.
pub mod eval_trigger {
    pub const JOB_REGISTER: &str = "job-register";
    pub const JOB_DEREGISTER: &str = "job-deregister";
    pub const PERIODIC_JOB: &str = "periodic-job";
    pub const NODE_DRAIN: &str = "node-drain";
    pub const NODE_UPDATE: &str = "node-update";
    pub const ALLOC_STOP: &str = "alloc-stop";
    pub const SCHEDULED: &str = "scheduled";
    pub const ROLLING_UPDATE: &str = "rolling-update";
    pub const DEPLOYMENT_WATCHER: &str = "deployment-watcher";
    pub const FAILED_FOLLOW_UP: &str = "failed-follow-up";
    pub const MAX_PLANS: &str = "max-plan-attempts";
    pub const RETRY_FAILED_ALLOC: &str = "alloc-failure";
    pub const QUEUED_ALLOCS: &str = "queued-allocs";
    pub const PREEMPTION: &str = "preemption";
    pub const JOB_SCALING: &str = "job-scaling";
    pub const MAX_DISCONNECT_TIMEOUT: &str = "max-disconnect-timeout";
    pub const RECONNECT: &str = "reconnect";
}

/// A request to (re)schedule one job, created by a state change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Evaluation {
    pub annotate_plan: bool,
    pub blocked_eval: String,
    /// Computed node class → whether the job's constraints can be met on it.
    pub class_eligibility: Option<BTreeMap<String, bool>>,
    pub create_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub escaped_computed_class: bool,
    /// Task group → why it could not be placed.
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: Option<BTreeMap<String, AllocMetric>>,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub modify_time: i64,
    pub namespace: String,
    pub next_eval: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_modify_index: u64,
    pub previous_eval: String,
    pub priority: i64,
    pub queued_allocations: Option<BTreeMap<String, i64>>,
    pub quota_limit_reached: String,
    pub related_evals: Option<Vec<EvaluationStub>>,
    pub snapshot_index: u64,
    pub status: String,
    pub status_description: String,
    pub triggered_by: String,
    /// The job type, which picks the scheduler.
    pub r#type: String,
    /// Nanoseconds to wait before processing.
    pub wait: i64,
    pub wait_until: Time,
}

/// A short form of an evaluation (`RelatedEvals`, eval list with `related=true`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EvaluationStub {
    pub blocked_eval: String,
    pub create_index: u64,
    pub create_time: i64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub modify_index: u64,
    pub modify_time: i64,
    pub namespace: String,
    pub next_eval: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub previous_eval: String,
    pub priority: i64,
    pub status: String,
    pub status_description: String,
    pub triggered_by: String,
    pub r#type: String,
    pub wait_until: Time,
}

impl Evaluation {
    /// `complete`, `failed` and `canceled` are final.
    pub fn terminal_status(&self) -> bool {
        matches!(
            self.status.as_str(),
            EVAL_STATUS_COMPLETE | EVAL_STATUS_FAILED | EVAL_STATUS_CANCELLED
        )
    }

    /// The short form of this evaluation.
    pub fn stub(&self) -> EvaluationStub {
        EvaluationStub {
            blocked_eval: self.blocked_eval.clone(),
            create_index: self.create_index,
            create_time: self.create_time,
            deployment_id: self.deployment_id.clone(),
            id: self.id.clone(),
            job_id: self.job_id.clone(),
            modify_index: self.modify_index,
            modify_time: self.modify_time,
            namespace: self.namespace.clone(),
            next_eval: self.next_eval.clone(),
            node_id: self.node_id.clone(),
            previous_eval: self.previous_eval.clone(),
            priority: self.priority,
            status: self.status.clone(),
            status_description: self.status_description.clone(),
            triggered_by: self.triggered_by.clone(),
            r#type: self.r#type.clone(),
            wait_until: self.wait_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_written_with_go_zero_values() {
        let v = serde_json::to_value(Evaluation::default()).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 29);
        assert_eq!(v["WaitUntil"], serde_json::Value::Null);
        assert_eq!(v["FailedTGAllocs"], serde_json::Value::Null);
        assert_eq!(v["Status"], "");
    }

    #[test]
    fn terminal_and_stub() {
        let e = Evaluation {
            id: "e".into(),
            status: EVAL_STATUS_CANCELLED.into(),
            triggered_by: eval_trigger::NODE_UPDATE.into(),
            ..Default::default()
        };
        assert!(e.terminal_status());
        assert_eq!(e.stub().triggered_by, "node-update");
    }
}
