//! Allocations: `Allocation` (GET /v1/allocation/:id, GET /v1/node/:id/allocations),
//! `AllocListStub` (GET /v1/allocations), task states and events, placement metrics, and the
//! small request/response bodies of the allocation endpoints (NOMAD-BEHAVIOR §1, §7.3, §7.4).
//!
//! Nomad at HEAD writes a full `Allocation` with every empty field left out (its `_struct`
//! omitempty marker, NOMAD-BEHAVIOR 1.2), but the spec's samples show every key with its zero
//! value, and the samples win: this crate writes all keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::resources::{DNSConfig, NetworkResource, Resources};
use crate::time::{Time, format_go_duration, lenient_i64};

/// `Allocation.DesiredStatus`: the scheduler wants it running.
pub const ALLOC_DESIRED_STATUS_RUN: &str = "run";
/// `Allocation.DesiredStatus`: the scheduler wants it stopped.
pub const ALLOC_DESIRED_STATUS_STOP: &str = "stop";
/// `Allocation.DesiredStatus`: stopped to make room (preemption).
pub const ALLOC_DESIRED_STATUS_EVICT: &str = "evict";

/// `Allocation.ClientStatus` values.
pub const ALLOC_CLIENT_STATUS_PENDING: &str = "pending";
pub const ALLOC_CLIENT_STATUS_RUNNING: &str = "running";
pub const ALLOC_CLIENT_STATUS_COMPLETE: &str = "complete";
pub const ALLOC_CLIENT_STATUS_FAILED: &str = "failed";
pub const ALLOC_CLIENT_STATUS_LOST: &str = "lost";
pub const ALLOC_CLIENT_STATUS_UNKNOWN: &str = "unknown";

/// `TaskState.State` values.
pub const TASK_STATE_PENDING: &str = "pending";
pub const TASK_STATE_RUNNING: &str = "running";
pub const TASK_STATE_DEAD: &str = "dead";

/// At most this many events are kept per task.
pub const MAX_RETAINED_TASK_EVENTS: usize = 10;

/// `TaskEvent.Type` values (Nomad's `Task*` event constants).
pub mod task_event {
    pub const SETUP_FAILURE: &str = "Setup Failure";
    pub const DRIVER_FAILURE: &str = "Driver Failure";
    pub const DRIVER_MESSAGE: &str = "Driver";
    pub const RECEIVED: &str = "Received";
    pub const FAILED_VALIDATION: &str = "Failed Validation";
    pub const STARTED: &str = "Started";
    pub const TERMINATED: &str = "Terminated";
    pub const KILLING: &str = "Killing";
    pub const KILLED: &str = "Killed";
    pub const RESTARTING: &str = "Restarting";
    pub const NOT_RESTARTING: &str = "Not Restarting";
    pub const DOWNLOADING_ARTIFACTS: &str = "Downloading Artifacts";
    pub const ARTIFACT_DOWNLOAD_FAILED: &str = "Failed Artifact Download";
    pub const SIBLING_FAILED: &str = "Sibling Task Failed";
    pub const SIGNALING: &str = "Signaling";
    pub const RESTART_SIGNAL: &str = "Restart Signaled";
    pub const LEADER_DEAD: &str = "Leader Task Dead";
    pub const MAIN_DEAD: &str = "Main Tasks Dead";
    pub const HOOK_FAILED: &str = "Task hook failed";
    pub const RESTORE_FAILED: &str = "Failed Restoring Task";
    pub const PLUGIN_UNHEALTHY: &str = "Plugin became unhealthy";
    pub const PLUGIN_HEALTHY: &str = "Plugin became healthy";
    pub const CLIENT_RECONNECTED: &str = "Reconnected";
    pub const WAITING_SHUTDOWN_DELAY: &str = "Waiting for shutdown delay";
    pub const SKIPPING_SHUTDOWN_DELAY: &str = "Skipping shutdown delay";
    pub const TASK_SETUP: &str = "Task Setup";
    pub const DISK_EXCEEDED: &str = "Disk Resources Exceeded";

    /// `RestartReason` of a restart the restart policy allows; not repeated in the message.
    pub const REASON_WITHIN_POLICY: &str = "Restart within policy";
}

/// An allocation: one task group of one job version placed on one node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Allocation {
    pub alloc_modify_index: u64,
    pub alloc_states: Option<Vec<AllocState>>,
    pub allocated_resources: Option<AllocatedResources>,
    pub client_description: String,
    pub client_status: String,
    pub create_index: u64,
    /// Unix nanoseconds.
    pub create_time: i64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub deployment_status: Option<AllocDeploymentStatus>,
    pub desired_description: String,
    pub desired_status: String,
    pub desired_transition: DesiredTransition,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub job: Option<Job>,
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// The version of the job this allocation runs. Not on the wire: the state keeps
    /// allocations without their `Job` (one copy per job version, not per allocation) and
    /// attaches it when an allocation is shown.
    #[serde(skip)]
    pub job_version: u64,
    pub metrics: Option<AllocMetric>,
    pub modify_index: u64,
    /// Unix nanoseconds.
    pub modify_time: i64,
    /// `<job>.<group>[<index>]`.
    pub name: String,
    pub namespace: String,
    pub network_status: Option<AllocNetworkStatus>,
    pub next_allocation: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    pub preempted_allocations: Option<Vec<String>>,
    pub preempted_by_allocation: String,
    pub previous_allocation: String,
    pub reschedule_tracker: Option<RescheduleTracker>,
    /// Legacy (pre-0.9) total resources.
    pub resources: Option<Resources>,
    /// Legacy (pre-0.9) group-level resources.
    pub shared_resources: Option<Resources>,
    #[serde(rename = "SigningKeyID")]
    pub signing_key_id: String,
    pub task_group: String,
    /// Legacy (pre-0.9) per-task resources.
    pub task_resources: Option<BTreeMap<String, Resources>>,
    pub task_states: Option<BTreeMap<String, TaskState>>,
}

/// Which optional parts `Allocation::stub` fills (the `resources` and `task_states` query
/// parameters of GET /v1/allocations). The default is Nomad's: task states, no resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocStubFields {
    pub resources: bool,
    pub task_states: bool,
}

impl Default for AllocStubFields {
    fn default() -> Self {
        AllocStubFields {
            resources: false,
            task_states: true,
        }
    }
}

/// One element of GET /v1/allocations (NOMAD-BEHAVIOR 1.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocListStub {
    /// Only with `resources=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_resources: Option<AllocatedResources>,
    pub client_description: String,
    pub client_status: String,
    pub create_index: u64,
    pub create_time: i64,
    pub deployment_status: Option<AllocDeploymentStatus>,
    pub desired_description: String,
    pub desired_status: String,
    pub desired_transition: DesiredTransition,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// `alloc.Job.Type`.
    pub job_type: String,
    /// `alloc.Job.Version`.
    pub job_version: u64,
    pub modify_index: u64,
    pub modify_time: i64,
    pub name: String,
    pub namespace: String,
    pub next_allocation: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    pub preempted_allocations: Option<Vec<String>>,
    pub preempted_by_allocation: String,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub task_group: String,
    /// `null` with `task_states=false`; the key stays.
    pub task_states: Option<BTreeMap<String, TaskState>>,
}

/// A transition of an allocation's client-visible state (`AllocStates`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocState {
    /// `ClientStatus`.
    pub field: String,
    pub time: Time,
    pub value: String,
}

/// The allocation's network namespace as set up by the client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocNetworkStatus {
    pub address: String,
    #[serde(rename = "DNS")]
    pub dns: Option<DNSConfig>,
    pub interface_name: String,
}

/// Deployment health of an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocDeploymentStatus {
    pub canary: bool,
    /// `null` until health is known.
    pub healthy: Option<bool>,
    pub modify_index: u64,
    pub timestamp: Time,
}

/// What the server asks the client to do next with an allocation; every flag is unset (`null`)
/// by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DesiredTransition {
    pub force_reschedule: Option<bool>,
    pub migrate: Option<bool>,
    pub migrate_disable_placement: Option<bool>,
    pub no_shutdown_delay: Option<bool>,
    pub reschedule: Option<bool>,
}

/// Why and how an allocation was placed: nodes looked at, filtered, exhausted, scores.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocMetric {
    /// Nanoseconds spent placing.
    pub allocation_time: i64,
    pub class_exhausted: Option<BTreeMap<String, i64>>,
    pub class_filtered: Option<BTreeMap<String, i64>>,
    pub coalesced_failures: i64,
    pub constraint_filtered: Option<BTreeMap<String, i64>>,
    pub dimension_exhausted: Option<BTreeMap<String, i64>>,
    pub node_pool: String,
    pub nodes_available: Option<BTreeMap<String, i64>>,
    pub nodes_evaluated: i64,
    pub nodes_exhausted: i64,
    pub nodes_filtered: i64,
    pub nodes_in_pool: i64,
    pub quota_exhausted: Option<Vec<String>>,
    pub resources_exhausted: Option<BTreeMap<String, Resources>>,
    pub score_meta_data: Option<Vec<NodeScoreMeta>>,
    /// Deprecated `<node>.<scorer>` → score map, still written by old servers.
    pub scores: Option<BTreeMap<String, f64>>,
}

/// The scores one node got, per scorer and normalised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub norm_score: f64,
    pub scores: Option<BTreeMap<String, f64>>,
}

/// Reschedule attempts that led to this allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleTracker {
    pub events: Option<Vec<RescheduleEvent>>,
    /// Outcome of the last reschedule check (e.g. `ok`, `no more reschedules`).
    pub last_reschedule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RescheduleEvent {
    /// Nanoseconds waited before rescheduling. Read leniently: the docs' sample writes it as a
    /// string; written as a number, as Nomad does.
    #[serde(with = "lenient_i64")]
    pub delay: i64,
    #[serde(rename = "PrevAllocID")]
    pub prev_alloc_id: String,
    #[serde(rename = "PrevNodeID")]
    pub prev_node_id: String,
    /// Unix nanoseconds.
    pub reschedule_time: i64,
}

/// The state of one task of an allocation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskState {
    pub events: Option<Vec<TaskEvent>>,
    pub failed: bool,
    pub finished_at: Time,
    pub last_restart: Time,
    /// Schedule state (`""` when running normally, else `force_run`, `scheduled_pause`, ...).
    pub paused: String,
    pub restarts: u64,
    pub started_at: Time,
    /// `pending`, `running` or `dead`.
    pub state: String,
    /// Remote-driver handle; opaque to everything but the driver.
    pub task_handle: Option<TaskHandle>,
}

/// A driver's handle on a running task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskHandle {
    /// Base64 of the driver's state bytes (Go `[]byte`).
    pub driver_state: Option<String>,
    pub version: i64,
}

/// Something that happened to a task (NOMAD-BEHAVIOR 7.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskEvent {
    pub details: Option<BTreeMap<String, String>>,
    pub disk_limit: i64,
    /// Filled by [`TaskEvent::populate_display_message`] before the event is shown.
    pub display_message: String,
    pub download_error: String,
    pub driver_error: String,
    pub driver_message: String,
    pub exit_code: i64,
    pub failed_sibling: String,
    pub fails_task: bool,
    pub generic_source: String,
    pub kill_error: String,
    pub kill_reason: String,
    /// Nanoseconds.
    pub kill_timeout: i64,
    pub message: String,
    pub restart_reason: String,
    pub setup_error: String,
    pub signal: i64,
    /// Nanoseconds.
    pub start_delay: i64,
    pub task_signal: String,
    pub task_signal_reason: String,
    /// Unix nanoseconds.
    pub time: i64,
    pub r#type: String,
    pub validation_error: String,
    pub vault_error: String,
}

/// What the scheduler reserved for an allocation (Nomad ≥ 0.9).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedResources {
    pub shared: AllocatedSharedResources,
    pub task_lifecycles: Option<BTreeMap<String, Option<crate::job::TaskLifecycleConfig>>>,
    pub tasks: Option<BTreeMap<String, AllocatedTaskResources>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedTaskResources {
    pub cpu: AllocatedCpuResources,
    pub devices: Option<Vec<AllocatedDeviceResource>>,
    pub memory: AllocatedMemoryResources,
    pub networks: Option<Vec<NetworkResource>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedSharedResources {
    #[serde(rename = "DiskMB")]
    pub disk_mb: i64,
    pub networks: Option<Vec<NetworkResource>>,
    pub ports: Option<Vec<AllocatedPortMapping>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedCpuResources {
    pub cpu_shares: i64,
    pub reserved_cores: Option<Vec<u16>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedMemoryResources {
    #[serde(rename = "MemoryMB")]
    pub memory_mb: i64,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedDeviceResource {
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    pub name: String,
    pub r#type: String,
    pub vendor: String,
}

/// A port given to a group network: host `Value` on `HostIP`, mapped `To` inside.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocatedPortMapping {
    #[serde(rename = "HostIP")]
    pub host_ip: String,
    pub label: String,
    pub to: i64,
    pub value: i64,
}

/// Response of POST /v1/allocation/:id/stop.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocStopResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub index: u64,
}

/// Body of POST /v1/client/allocation/:id/signal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocSignalRequest {
    pub signal: String,
    /// Empty: every task.
    pub task: String,
}

/// Body of /v1/client/allocation/:id/restart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AllocRestartRequest {
    /// Restart every task, including those that already ran; excludes `TaskName`.
    pub all_tasks: bool,
    pub task_name: String,
}

/// `{"Index": n}`: the body of writes that return nothing else (signal, restart).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct GenericResponse {
    pub index: u64,
}

impl Allocation {
    /// The list stub GET /v1/allocations returns, with the optional parts `fields` asks for.
    /// `job` is the allocation's job when `self.job` is not attached.
    pub fn stub(&self, fields: AllocStubFields, job: Option<&Job>) -> AllocListStub {
        let (job_type, job_version) = self
            .job
            .as_ref()
            .or(job)
            .map(|j| (j.r#type.clone(), j.version))
            .unwrap_or_else(|| (String::new(), self.job_version));
        AllocListStub {
            allocated_resources: if fields.resources {
                self.allocated_resources.clone()
            } else {
                None
            },
            client_description: self.client_description.clone(),
            client_status: self.client_status.clone(),
            create_index: self.create_index,
            create_time: self.create_time,
            deployment_status: self.deployment_status.clone(),
            desired_description: self.desired_description.clone(),
            desired_status: self.desired_status.clone(),
            desired_transition: self.desired_transition,
            eval_id: self.eval_id.clone(),
            followup_eval_id: self.followup_eval_id.clone(),
            id: self.id.clone(),
            job_id: self.job_id.clone(),
            job_type,
            job_version,
            modify_index: self.modify_index,
            modify_time: self.modify_time,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            next_allocation: self.next_allocation.clone(),
            node_id: self.node_id.clone(),
            node_name: self.node_name.clone(),
            preempted_allocations: self.preempted_allocations.clone(),
            preempted_by_allocation: self.preempted_by_allocation.clone(),
            reschedule_tracker: self.reschedule_tracker.clone(),
            task_group: self.task_group.clone(),
            task_states: if fields.task_states {
                self.task_states.clone()
            } else {
                None
            },
        }
    }

    /// The server wants it gone (`stop` or `evict`).
    pub fn server_terminal_status(&self) -> bool {
        matches!(
            self.desired_status.as_str(),
            ALLOC_DESIRED_STATUS_STOP | ALLOC_DESIRED_STATUS_EVICT
        )
    }

    /// The client reports it finished (`complete`, `failed` or `lost`).
    pub fn client_terminal_status(&self) -> bool {
        matches!(
            self.client_status.as_str(),
            ALLOC_CLIENT_STATUS_COMPLETE | ALLOC_CLIENT_STATUS_FAILED | ALLOC_CLIENT_STATUS_LOST
        )
    }

    /// Either side considers it terminal.
    pub fn terminal_status(&self) -> bool {
        self.server_terminal_status() || self.client_terminal_status()
    }

    /// Fills every task event's `DisplayMessage` (done before an allocation is shown).
    pub fn set_event_display_messages(&mut self) {
        for state in self.task_states.iter_mut().flat_map(|m| m.values_mut()) {
            for ev in state.events.iter_mut().flatten() {
                ev.populate_display_message();
            }
        }
    }
}

impl AllocListStub {
    /// Fills every task event's `DisplayMessage`.
    pub fn set_event_display_messages(&mut self) {
        for state in self.task_states.iter_mut().flat_map(|m| m.values_mut()) {
            for ev in state.events.iter_mut().flatten() {
                ev.populate_display_message();
            }
        }
    }
}

impl TaskState {
    /// A task that ran and stopped for good.
    pub fn successful(&self) -> bool {
        self.state == TASK_STATE_DEAD && !self.failed
    }

    /// Appends an event, keeping the newest [`MAX_RETAINED_TASK_EVENTS`].
    pub fn add_event(&mut self, event: TaskEvent) {
        let events = self.events.get_or_insert_with(Vec::new);
        events.push(event);
        if events.len() > MAX_RETAINED_TASK_EVENTS {
            let excess = events.len() - MAX_RETAINED_TASK_EVENTS;
            events.drain(..excess);
        }
    }
}

impl TaskEvent {
    /// A new event of `type` at `time` (Unix nanoseconds).
    pub fn new(r#type: &str, time: i64) -> TaskEvent {
        TaskEvent {
            r#type: r#type.to_owned(),
            time,
            details: Some(BTreeMap::new()),
            ..Default::default()
        }
    }

    /// Sets `DisplayMessage` from the event's type and fields, unless it is already set
    /// (NOMAD-BEHAVIOR 7.4).
    pub fn populate_display_message(&mut self) {
        if self.display_message.is_empty() {
            self.display_message = self.derive_display_message();
        }
    }

    fn derive_display_message(&self) -> String {
        use task_event as t;
        let or = |field: &str, fallback: &str| {
            if field.is_empty() {
                fallback.to_owned()
            } else {
                field.to_owned()
            }
        };
        match self.r#type.as_str() {
            t::TASK_SETUP => self.message.clone(),
            t::STARTED => "Task started by client".to_owned(),
            t::RECEIVED => "Task received by client".to_owned(),
            t::FAILED_VALIDATION => or(&self.validation_error, "Validation of task failed"),
            t::SETUP_FAILURE => or(&self.setup_error, "Task setup failed"),
            t::DRIVER_FAILURE => or(&self.driver_error, "Failed to start task"),
            t::DOWNLOADING_ARTIFACTS => "Client is downloading artifacts".to_owned(),
            t::ARTIFACT_DOWNLOAD_FAILED => or(&self.download_error, "Failed to download artifacts"),
            t::KILLING => {
                if !self.kill_reason.is_empty() {
                    self.kill_reason.clone()
                } else if self.kill_timeout != 0 {
                    format!(
                        "Sent interrupt. Waiting {} before force killing",
                        format_go_duration(self.kill_timeout)
                    )
                } else {
                    "Sent interrupt".to_owned()
                }
            }
            t::KILLED => or(&self.kill_error, "Task successfully killed"),
            t::TERMINATED => {
                let mut parts = vec![format!("Exit Code: {}", self.exit_code)];
                if self.signal != 0 {
                    parts.push(format!("Signal: {}", self.signal));
                }
                if !self.message.is_empty() {
                    parts.push(format!("Exit Message: {:?}", self.message));
                }
                parts.join(", ")
            }
            t::RESTARTING => {
                let mut m = format!(
                    "Task restarting in {}",
                    format_go_duration(self.start_delay)
                );
                if !self.restart_reason.is_empty() && self.restart_reason != t::REASON_WITHIN_POLICY
                {
                    m = format!("{} - {m}", self.restart_reason);
                }
                m
            }
            t::NOT_RESTARTING => or(&self.restart_reason, "Task exceeded restart policy"),
            t::SIBLING_FAILED => format!("Task's sibling {:?} failed", self.failed_sibling),
            t::SIGNALING => match (self.task_signal.as_str(), self.task_signal_reason.as_str()) {
                ("", "") => "Task being sent a signal".to_owned(),
                ("", reason) => reason.to_owned(),
                (sig, "") => format!("Task being sent signal {sig}"),
                (sig, reason) => format!("Task being sent signal {sig}: {reason}"),
            },
            t::RESTART_SIGNAL => or(&self.restart_reason, "Task signaled to restart"),
            t::DRIVER_MESSAGE => self.driver_message.clone(),
            t::LEADER_DEAD => "Leader Task in Group dead".to_owned(),
            t::MAIN_DEAD => "Main tasks in the group died".to_owned(),
            t::CLIENT_RECONNECTED => "Client reconnected".to_owned(),
            _ => self.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;
    use serde_json::json;

    fn alloc() -> Allocation {
        Allocation {
            id: "a8198d79-cfdb-6593-a999-1e9adabcba2e".into(),
            job_id: "example".into(),
            job: Some(Job {
                r#type: "batch".into(),
                version: 3,
                ..Default::default()
            }),
            allocated_resources: Some(AllocatedResources::default()),
            task_states: Some(BTreeMap::from([("web".into(), TaskState::default())])),
            desired_status: ALLOC_DESIRED_STATUS_RUN.into(),
            client_status: ALLOC_CLIENT_STATUS_RUNNING.into(),
            ..Default::default()
        }
    }

    #[test]
    fn stub_copies_job_type_and_version_and_selects_fields() {
        let a = alloc();
        let s = a.stub(AllocStubFields::default(), None);
        assert_eq!((s.job_type.as_str(), s.job_version), ("batch", 3));
        assert!(s.task_states.is_some());
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("AllocatedResources").is_none());
        assert!(v.get("Job").is_none());

        let s = a.stub(
            AllocStubFields {
                resources: true,
                task_states: false,
            },
            None,
        );
        let v = serde_json::to_value(&s).unwrap();
        assert!(v.get("AllocatedResources").is_some());
        assert_eq!(v["TaskStates"], serde_json::Value::Null);
    }

    #[test]
    fn terminal_statuses() {
        let mut a = alloc();
        assert!(!a.terminal_status());
        a.client_status = ALLOC_CLIENT_STATUS_LOST.into();
        assert!(a.client_terminal_status() && a.terminal_status());
        a.client_status = ALLOC_CLIENT_STATUS_RUNNING.into();
        a.desired_status = ALLOC_DESIRED_STATUS_EVICT.into();
        assert!(a.server_terminal_status());
    }

    #[test]
    fn desired_transition_defaults_to_nulls() {
        assert_eq!(
            serde_json::to_value(DesiredTransition::default()).unwrap(),
            json!({"ForceReschedule": null, "Migrate": null, "MigrateDisablePlacement": null,
                   "NoShutdownDelay": null, "Reschedule": null})
        );
    }

    #[test]
    fn display_messages() {
        use task_event as t;
        let ev = |ty: &str, f: &dyn Fn(&mut TaskEvent)| {
            let mut e = TaskEvent::new(ty, 0);
            f(&mut e);
            e.populate_display_message();
            e.display_message
        };
        assert_eq!(ev(t::RECEIVED, &|_| {}), "Task received by client");
        assert_eq!(
            ev(t::TASK_SETUP, &|e| e.message =
                "Building Task Directory".into()),
            "Building Task Directory"
        );
        assert_eq!(
            ev(t::KILLING, &|e| e.kill_timeout = 5_000_000_000),
            "Sent interrupt. Waiting 5s before force killing"
        );
        assert_eq!(ev(t::KILLING, &|_| {}), "Sent interrupt");
        assert_eq!(
            ev(t::TERMINATED, &|e| {
                e.exit_code = 1;
                e.signal = 9;
                e.message = "oom".into();
            }),
            r#"Exit Code: 1, Signal: 9, Exit Message: "oom""#
        );
        assert_eq!(ev(t::TERMINATED, &|_| {}), "Exit Code: 0");
        assert_eq!(
            ev(t::RESTARTING, &|e| {
                e.start_delay = 90_000_000_000;
                e.restart_reason = t::REASON_WITHIN_POLICY.into();
            }),
            "Task restarting in 1m30s"
        );
        assert_eq!(
            ev(t::RESTARTING, &|e| {
                e.start_delay = 15_000_000_000;
                e.restart_reason = "Exceeded allowed attempts".into();
            }),
            "Exceeded allowed attempts - Task restarting in 15s"
        );
        assert_eq!(
            ev(t::SIBLING_FAILED, &|e| e.failed_sibling = "db".into()),
            r#"Task's sibling "db" failed"#
        );
        assert_eq!(
            ev(t::SIGNALING, &|e| e.task_signal = "SIGUSR1".into()),
            "Task being sent signal SIGUSR1"
        );
        assert_eq!(
            ev(t::SIGNALING, &|e| {
                e.task_signal = "SIGHUP".into();
                e.task_signal_reason = "reload".into();
            }),
            "Task being sent signal SIGHUP: reload"
        );
        assert_eq!(ev(t::SIGNALING, &|_| {}), "Task being sent a signal");
        assert_eq!(ev(t::DRIVER_FAILURE, &|_| {}), "Failed to start task");
        assert_eq!(
            ev("Something New", &|e| e.message = "hello".into()),
            "hello"
        );
        // An existing message is kept.
        let mut e = TaskEvent::new(t::STARTED, 0);
        e.display_message = "custom".into();
        e.populate_display_message();
        assert_eq!(e.display_message, "custom");
    }

    #[test]
    fn task_events_are_capped() {
        let mut s = TaskState::default();
        for i in 0..12 {
            s.add_event(TaskEvent::new(task_event::STARTED, i));
        }
        let ev = s.events.unwrap();
        assert_eq!(ev.len(), MAX_RETAINED_TASK_EVENTS);
        assert_eq!(ev[0].time, 2);
    }
}
