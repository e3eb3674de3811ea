//! Jobs and what they are made of: `Job`, `TaskGroup`, `Task`, placement rules, update,
//! restart, reschedule and migrate policies, services and checks, and the job list stub and
//! summary.
//!
//! The server keeps Nomad's `structs.Job` shape; the HTTP API's `api.Job` input uses the same
//! key names, so one type reads both (missing keys take Go zero values). Rarely used nested
//! blocks that Caravan stores but does not interpret (Consul Connect, workload identities,
//! multiregion, scaling, CSI plugin config, volumes' mount options, disconnect strategy) are kept
//! as opaque JSON values so they survive a round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::{NetworkResource, Resources};

/// `Job.Type` values.
pub const JOB_TYPE_SERVICE: &str = "service";
pub const JOB_TYPE_BATCH: &str = "batch";
pub const JOB_TYPE_SYSTEM: &str = "system";
pub const JOB_TYPE_SYSBATCH: &str = "sysbatch";
/// Internal jobs (garbage collection) run by the core scheduler.
pub const JOB_TYPE_CORE: &str = "_core";

/// `Job.Status` values.
pub const JOB_STATUS_PENDING: &str = "pending";
pub const JOB_STATUS_RUNNING: &str = "running";
pub const JOB_STATUS_DEAD: &str = "dead";

pub const JOB_DEFAULT_PRIORITY: i64 = 50;
pub const JOB_MIN_PRIORITY: i64 = 1;
pub const JOB_MAX_PRIORITY: i64 = 100;

/// `RestartPolicy.Mode` values.
pub const RESTART_POLICY_MODE_DELAY: &str = "delay";
pub const RESTART_POLICY_MODE_FAIL: &str = "fail";

/// A job: the desired state a user submits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Job {
    pub affinities: Option<Vec<Affinity>>,
    pub all_at_once: bool,
    pub constraints: Option<Vec<Constraint>>,
    pub consul_namespace: String,
    pub consul_token: String,
    pub create_index: u64,
    pub datacenters: Option<Vec<String>>,
    pub dispatch_idempotency_token: String,
    pub dispatched: bool,
    #[serde(rename = "ID")]
    pub id: String,
    pub job_modify_index: u64,
    pub meta: Option<BTreeMap<String, String>>,
    pub modify_index: u64,
    pub multiregion: Option<Value>,
    pub name: String,
    pub namespace: String,
    pub node_pool: String,
    #[serde(rename = "NomadTokenID")]
    pub nomad_token_id: String,
    pub parameterized_job: Option<ParameterizedJobConfig>,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    /// Base64 of the dispatch payload (Go `[]byte`).
    pub payload: Option<String>,
    pub periodic: Option<PeriodicConfig>,
    pub priority: i64,
    pub region: String,
    pub spreads: Option<Vec<Spread>>,
    pub stable: bool,
    pub status: String,
    pub status_description: String,
    pub stop: bool,
    /// Unix nanoseconds.
    pub submit_time: i64,
    pub task_groups: Option<Vec<TaskGroup>>,
    pub r#type: String,
    /// How the web UI presents the job (the jobspec's `ui` block).
    #[serde(rename = "UI")]
    pub ui: Option<JobUIConfig>,
    pub update: UpdateStrategy,
    pub vault_namespace: String,
    pub vault_token: String,
    pub version: u64,
}

/// The web UI's description of a job and links to show with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobUIConfig {
    /// Markdown.
    pub description: String,
    pub links: Option<Vec<JobUILink>>,
}

/// A link the web UI shows on a job's page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobUILink {
    pub label: String,
    #[serde(rename = "URL")]
    pub url: String,
}

/// A set of tasks placed together on one node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroup {
    pub affinities: Option<Vec<Affinity>>,
    pub constraints: Option<Vec<Constraint>>,
    pub consul: Option<Value>,
    pub count: i64,
    pub disconnect: Option<Value>,
    pub ephemeral_disk: Option<EphemeralDisk>,
    /// Nanoseconds, or null.
    pub max_client_disconnect: Option<i64>,
    pub meta: Option<BTreeMap<String, String>>,
    pub migrate: Option<MigrateStrategy>,
    pub name: String,
    pub networks: Option<Vec<NetworkResource>>,
    pub prevent_reschedule_on_lost: bool,
    pub reschedule_policy: Option<ReschedulePolicy>,
    pub restart_policy: Option<RestartPolicy>,
    pub scaling: Option<Value>,
    pub services: Option<Vec<Service>>,
    /// Nanoseconds, or null.
    pub shutdown_delay: Option<i64>,
    pub spreads: Option<Vec<Spread>>,
    /// Nanoseconds, or null.
    pub stop_after_client_disconnect: Option<i64>,
    pub tasks: Option<Vec<Task>>,
    pub update: Option<UpdateStrategy>,
    pub volumes: Option<BTreeMap<String, VolumeRequest>>,
}

/// One process (or container) run by a driver.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Task {
    pub affinities: Option<Vec<Affinity>>,
    pub artifacts: Option<Vec<TaskArtifact>>,
    #[serde(rename = "CSIPluginConfig")]
    pub csi_plugin_config: Option<Value>,
    /// Driver configuration, free-form.
    pub config: Option<BTreeMap<String, Value>>,
    pub constraints: Option<Vec<Constraint>>,
    pub consul: Option<Value>,
    pub dispatch_payload: Option<DispatchPayloadConfig>,
    pub driver: String,
    pub env: Option<BTreeMap<String, String>>,
    pub identities: Option<Vec<Value>>,
    pub identity: Option<Value>,
    pub kill_signal: String,
    /// Nanoseconds.
    pub kill_timeout: i64,
    pub kind: String,
    pub leader: bool,
    pub lifecycle: Option<TaskLifecycleConfig>,
    pub log_config: Option<LogConfig>,
    pub meta: Option<BTreeMap<String, String>>,
    pub name: String,
    pub resources: Option<Resources>,
    pub restart_policy: Option<RestartPolicy>,
    pub scaling_policies: Option<Vec<Value>>,
    pub services: Option<Vec<Service>>,
    /// Nanoseconds.
    pub shutdown_delay: i64,
    /// Not a Nomad task field, but the docs' allocation sample carries it; kept so such
    /// documents round-trip. Always null from Caravan.
    pub spreads: Option<Vec<Spread>>,
    pub templates: Option<Vec<Template>>,
    pub user: String,
    pub vault: Option<Value>,
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// A placement rule: `LTarget Operand RTarget`, e.g. `${attr.kernel.name} = linux`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Constraint {
    pub l_target: String,
    pub operand: String,
    pub r_target: String,
}

/// A placement preference: a constraint with a weight in `-100..=100`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Affinity {
    pub l_target: String,
    pub operand: String,
    pub r_target: String,
    pub weight: i8,
}

/// Spread allocations over the values of an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Spread {
    pub attribute: String,
    /// Desired percentages per value.
    pub spread_target: Option<Vec<SpreadTarget>>,
    pub weight: i8,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SpreadTarget {
    pub percent: u8,
    pub value: String,
}

/// How a task is restarted in place on its node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub attempts: i64,
    /// Nanoseconds.
    pub delay: i64,
    /// Nanoseconds.
    pub interval: i64,
    /// `delay` or `fail`.
    pub mode: String,
    pub render_templates: bool,
}

/// How a failed allocation is replaced elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ReschedulePolicy {
    pub attempts: i64,
    /// Nanoseconds.
    pub delay: i64,
    /// `constant`, `exponential` or `fibonacci`.
    pub delay_function: String,
    /// Nanoseconds.
    pub interval: i64,
    /// Nanoseconds.
    pub max_delay: i64,
    pub unlimited: bool,
}

/// Rolling update and canary settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UpdateStrategy {
    pub auto_promote: bool,
    pub auto_revert: bool,
    pub canary: i64,
    /// `checks`, `task_states` or `manual`.
    pub health_check: String,
    /// Nanoseconds.
    pub healthy_deadline: i64,
    pub max_parallel: i64,
    /// Nanoseconds.
    pub min_healthy_time: i64,
    /// Nanoseconds.
    pub progress_deadline: i64,
    /// Nanoseconds.
    pub stagger: i64,
}

/// How allocations move off a draining node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MigrateStrategy {
    pub health_check: String,
    /// Nanoseconds.
    pub healthy_deadline: i64,
    pub max_parallel: i64,
    /// Nanoseconds.
    pub min_healthy_time: i64,
}

/// The allocation directory's disk ask.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EphemeralDisk {
    pub migrate: bool,
    #[serde(rename = "SizeMB")]
    pub size_mb: i64,
    pub sticky: bool,
}

/// Log rotation for a task's stdout/stderr.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    /// No log collection; the logs endpoint then answers 404.
    pub disabled: bool,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: i64,
    pub max_files: i64,
}

/// A service a task or group registers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Service {
    pub address: String,
    /// `auto`, `host`, `driver` or `alloc`.
    pub address_mode: String,
    pub canary_meta: Option<BTreeMap<String, String>>,
    pub canary_tags: Option<Vec<String>>,
    pub checks: Option<Vec<ServiceCheck>>,
    pub connect: Option<Value>,
    pub enable_tag_override: bool,
    pub meta: Option<BTreeMap<String, String>>,
    pub name: String,
    pub on_update: String,
    pub port_label: String,
    /// `consul` or `nomad`.
    pub provider: String,
    pub tags: Option<Vec<String>>,
    pub task_name: String,
}

/// A health check of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceCheck {
    pub address_mode: String,
    pub advertise: String,
    pub args: Option<Vec<String>>,
    pub body: String,
    pub check_restart: Option<CheckRestart>,
    pub command: String,
    pub expose: bool,
    pub failures_before_critical: i64,
    pub failures_before_warning: i64,
    #[serde(rename = "GRPCService")]
    pub grpc_service: String,
    #[serde(rename = "GRPCUseTLS")]
    pub grpc_use_tls: bool,
    pub header: Option<BTreeMap<String, Vec<String>>>,
    pub initial_status: String,
    /// Nanoseconds.
    pub interval: i64,
    pub method: String,
    pub name: String,
    pub on_update: String,
    pub path: String,
    pub port_label: String,
    pub protocol: String,
    pub success_before_passing: i64,
    #[serde(rename = "TLSServerName")]
    pub tls_server_name: String,
    #[serde(rename = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    pub task_name: String,
    /// Nanoseconds.
    pub timeout: i64,
    /// `http`, `tcp`, `script` or `grpc`.
    pub r#type: String,
}

/// Restart the task after consecutive failed checks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CheckRestart {
    /// Nanoseconds.
    pub grace: i64,
    pub ignore_warnings: bool,
    pub limit: i64,
}

/// Cron-like launching of a batch job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PeriodicConfig {
    pub enabled: bool,
    pub prohibit_overlap: bool,
    pub spec: String,
    /// `cron`.
    pub spec_type: String,
    pub specs: Option<Vec<String>>,
    pub time_zone: String,
}

/// A job that is a template for dispatched children.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ParameterizedJobConfig {
    pub meta_optional: Option<Vec<String>>,
    pub meta_required: Option<Vec<String>>,
    /// `optional`, `required` or `forbidden`.
    pub payload: String,
}

/// Where a dispatched payload is written in the task directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DispatchPayloadConfig {
    pub file: String,
}

/// Prestart/poststart/poststop hooks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskLifecycleConfig {
    /// `prestart`, `poststart` or `poststop`.
    pub hook: String,
    pub sidecar: bool,
}

/// A file fetched into the task directory before start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskArtifact {
    pub chown: bool,
    pub getter_headers: Option<BTreeMap<String, String>>,
    pub getter_insecure: bool,
    pub getter_mode: String,
    pub getter_options: Option<BTreeMap<String, String>>,
    pub getter_source: String,
    pub relative_dest: String,
}

/// A rendered template file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Template {
    pub change_mode: String,
    pub change_script: Option<Value>,
    pub change_signal: String,
    pub dest_path: String,
    pub embedded_tmpl: String,
    pub envvars: bool,
    pub err_missing_key: bool,
    pub gid: Option<i64>,
    pub left_delim: String,
    pub once: bool,
    pub perms: String,
    pub right_delim: String,
    pub source_path: String,
    /// Nanoseconds.
    pub splay: i64,
    pub uid: Option<i64>,
    /// Nanoseconds.
    pub vault_grace: i64,
    pub wait: Option<Value>,
}

/// Mounts a group volume into a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeMount {
    pub destination: String,
    pub propagation_mode: String,
    pub read_only: bool,
    #[serde(rename = "SELinuxLabel")]
    pub selinux_label: String,
    pub volume: String,
}

/// A group's volume ask (host or CSI).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeRequest {
    pub access_mode: String,
    pub attachment_mode: String,
    pub mount_options: Option<Value>,
    pub name: String,
    pub per_alloc: bool,
    pub read_only: bool,
    pub source: String,
    pub sticky: bool,
    /// `host` or `csi`.
    pub r#type: String,
}

/// One element of GET /v1/jobs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobListStub {
    pub create_index: u64,
    pub datacenters: Option<Vec<String>>,
    #[serde(rename = "ID")]
    pub id: String,
    pub job_modify_index: u64,
    pub job_summary: Option<JobSummary>,
    pub meta: Option<BTreeMap<String, String>>,
    pub modify_index: u64,
    pub multiregion: Option<Value>,
    pub name: String,
    pub namespace: String,
    pub node_pool: String,
    /// True iff the job is parameterized.
    pub parameterized_job: bool,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    /// True iff the job is periodic.
    pub periodic: bool,
    pub priority: i64,
    pub status: String,
    pub status_description: String,
    pub stop: bool,
    pub submit_time: i64,
    pub r#type: String,
    pub version: u64,
}

/// Per-group allocation counts of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobSummary {
    pub children: Option<JobChildrenSummary>,
    pub create_index: u64,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub modify_index: u64,
    pub namespace: String,
    pub summary: Option<BTreeMap<String, TaskGroupSummary>>,
}

/// Counts of a parameterized or periodic job's children by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobChildrenSummary {
    pub dead: i64,
    pub pending: i64,
    pub running: i64,
}

/// Allocation counts of one task group by client status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    pub complete: i64,
    pub failed: i64,
    pub lost: i64,
    pub queued: i64,
    pub running: i64,
    pub starting: i64,
    pub unknown: i64,
}

impl Job {
    /// The list stub GET /v1/jobs returns.
    pub fn stub(&self, summary: Option<JobSummary>) -> JobListStub {
        JobListStub {
            create_index: self.create_index,
            datacenters: self.datacenters.clone(),
            id: self.id.clone(),
            job_modify_index: self.job_modify_index,
            job_summary: summary,
            meta: self.meta.clone(),
            modify_index: self.modify_index,
            multiregion: self.multiregion.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            node_pool: self.node_pool.clone(),
            parameterized_job: self.is_parameterized(),
            parent_id: self.parent_id.clone(),
            periodic: self.is_periodic(),
            priority: self.priority,
            status: self.status.clone(),
            status_description: self.status_description.clone(),
            stop: self.stop,
            submit_time: self.submit_time,
            r#type: self.r#type.clone(),
            version: self.version,
        }
    }

    /// A template for dispatched children (not a dispatched child itself).
    pub fn is_parameterized(&self) -> bool {
        self.parameterized_job.is_some() && !self.dispatched
    }

    /// Launched on a schedule.
    pub fn is_periodic(&self) -> bool {
        self.periodic.is_some()
    }

    /// The task group with that name.
    pub fn lookup_task_group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().flatten().find(|tg| tg.name == name)
    }
}

impl TaskGroup {
    /// The task with that name.
    pub fn lookup_task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().flatten().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stub_flags_and_lookups() {
        let job = Job {
            id: "example".into(),
            periodic: Some(PeriodicConfig::default()),
            parameterized_job: Some(ParameterizedJobConfig::default()),
            task_groups: Some(vec![TaskGroup {
                name: "cache".into(),
                tasks: Some(vec![Task {
                    name: "redis".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let s = job.stub(None);
        assert!(s.periodic && s.parameterized_job);
        assert_eq!(s.id, "example");
        let tg = job.lookup_task_group("cache").unwrap();
        assert!(tg.lookup_task("redis").is_some());
        assert!(job.lookup_task_group("nope").is_none());

        let child = Job {
            dispatched: true,
            ..job
        };
        assert!(!child.stub(None).parameterized_job);
    }

    #[test]
    fn api_job_input_with_missing_keys_reads_as_zero_values() {
        let job: Job = serde_json::from_value(json!({
            "ID": "web", "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Count": 2, "Tasks": [{"Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["1"]}}]}],
            "SomethingNew": {"ignored": true}
        }))
        .unwrap();
        assert_eq!(job.priority, 0);
        assert_eq!(job.update, UpdateStrategy::default());
        let t = &job.task_groups.as_ref().unwrap()[0].tasks.as_ref().unwrap()[0];
        assert_eq!(t.config.as_ref().unwrap()["args"], json!(["1"]));
    }
}
