//! Job canonicalisation (the defaults Nomad fills in when a job is registered) and job
//! validation (Nomad's checks and their messages).
//!
//! Nomad fills defaults in two places: the HTTP agent runs the `api` package's
//! `Job.Canonicalize` before converting the request body (`command/agent/job_endpoint.go`,
//! `ApiJobToStructJob`), and the server then runs `structs.Job.Canonicalize`
//! (`nomad/structs/structs.go`). [`Job::canonicalize`] applies the union of both, on the
//! server's struct shape:
//!
//! - job: `Region` `global`, `Namespace` `default`, `Priority` 50, `Type` `service`, `Name` =
//!   `ID`, `Datacenters` `["*"]`, `NodePool` `default`; empty `Meta` becomes null; a service
//!   job's `Update` keeps only `Stagger` (30s) and `MaxParallel` (1), as Nomad's server struct
//!   does.
//! - group: `RestartPolicy` and `ReschedulePolicy` per job type ([`default_restart_policy`],
//!   [`default_reschedule_policy`]), `EphemeralDisk` 300 MB, and for service jobs `Migrate`
//!   ([`default_migrate_strategy`]) and `Update` ([`default_update_strategy`], merged with the
//!   job's). `Count` is left alone: the server keeps 0; the `api` client's "nil count means 1"
//!   can only be seen on the JSON, see [`fill_api_defaults`].
//! - task: `Resources` 100 MHz / 300 MB, `LogConfig` 10 files × 10 MB, `KillTimeout` 5s, the
//!   group's `RestartPolicy`; empty `Env`, `Meta`, `Config` become null.
//!
//! A present block whose field is at a zero value that Nomad rejects (an empty restart `Mode`,
//! a zero `SizeMB`, zero log files, …) gets the default for that field, which is what the
//! `api` package's merge with the defaults does for a missing key. Zero values that mean
//! something (restart `Attempts = 0`, `Count = 0`) are kept. Canonicalising twice is the same
//! as once.
//!
//! [`Job::validate`] reports every problem at once, with Nomad's wording
//! (`Job.Validate`, `TaskGroup.Validate`, `Task.Validate`, the policies' `Validate`, and the
//! server's priority check in `nomad/job_endpoint_hooks.go`), formatted as go-multierror does.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::job::{
    Constraint, EphemeralDisk, JOB_MAX_PRIORITY, JOB_MIN_PRIORITY, JOB_TYPE_BATCH, JOB_TYPE_CORE,
    JOB_TYPE_SERVICE, JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM, Job, LogConfig, MigrateStrategy,
    RESTART_POLICY_MODE_DELAY, RESTART_POLICY_MODE_FAIL, ReschedulePolicy, RestartPolicy, Task,
    TaskGroup, UpdateStrategy,
};
use crate::resources::Resources;
use crate::time::format_go_duration;

/// One second in nanoseconds.
pub const SECOND: i64 = 1_000_000_000;
/// One minute in nanoseconds.
pub const MINUTE: i64 = 60 * SECOND;
/// One hour in nanoseconds.
pub const HOUR: i64 = 60 * MINUTE;

pub const DEFAULT_REGION: &str = "global";
pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_NODE_POOL: &str = "default";
/// `Datacenters` when none are given: every datacenter (Nomad 1.5+).
pub const DEFAULT_DATACENTER: &str = "*";
/// `Task.KillTimeout` default (`structs.DefaultKillTimeout`).
pub const DEFAULT_KILL_TIMEOUT: i64 = 5 * SECOND;

/// `UpdateStrategy.HealthCheck` / `MigrateStrategy.HealthCheck` values.
pub const HEALTH_CHECK_CHECKS: &str = "checks";
pub const HEALTH_CHECK_TASK_STATES: &str = "task_states";
pub const HEALTH_CHECK_MANUAL: &str = "manual";

/// `ReschedulePolicy.DelayFunction` values.
pub const DELAY_FUNCTION_CONSTANT: &str = "constant";
pub const DELAY_FUNCTION_EXPONENTIAL: &str = "exponential";
pub const DELAY_FUNCTION_FIBONACCI: &str = "fibonacci";

/// `RestartPolicyMinInterval`.
pub const RESTART_POLICY_MIN_INTERVAL: i64 = 5 * SECOND;
/// `ReschedulePolicyMinInterval`.
pub const RESCHEDULE_POLICY_MIN_INTERVAL: i64 = 15 * SECOND;
/// `ReschedulePolicyMinDelay`.
pub const RESCHEDULE_POLICY_MIN_DELAY: i64 = 5 * SECOND;

/// The restart policy a group of a job of this type gets (`structs.NewRestartPolicy`):
/// service and system: 2 attempts in 30m, 15s apart, then fail; batch and sysbatch: 3 attempts
/// in 24h, 15s apart, then fail.
pub fn default_restart_policy(job_type: &str) -> Option<RestartPolicy> {
    match job_type {
        JOB_TYPE_SERVICE | JOB_TYPE_SYSTEM => Some(RestartPolicy {
            attempts: 2,
            delay: 15 * SECOND,
            interval: 30 * MINUTE,
            mode: RESTART_POLICY_MODE_FAIL.to_owned(),
            render_templates: false,
        }),
        JOB_TYPE_BATCH | JOB_TYPE_SYSBATCH => Some(RestartPolicy {
            attempts: 3,
            delay: 15 * SECOND,
            interval: 24 * HOUR,
            mode: RESTART_POLICY_MODE_FAIL.to_owned(),
            render_templates: false,
        }),
        _ => None,
    }
}

/// The reschedule policy a group of a job of this type gets (`structs.NewReschedulePolicy`):
/// service: unlimited, 30s exponential up to 1h; batch: 1 attempt in 24h, 5s constant;
/// system and sysbatch: none.
pub fn default_reschedule_policy(job_type: &str) -> Option<ReschedulePolicy> {
    match job_type {
        JOB_TYPE_SERVICE => Some(ReschedulePolicy {
            attempts: 0,
            delay: 30 * SECOND,
            delay_function: DELAY_FUNCTION_EXPONENTIAL.to_owned(),
            interval: 0,
            max_delay: HOUR,
            unlimited: true,
        }),
        JOB_TYPE_BATCH => Some(ReschedulePolicy {
            attempts: 1,
            delay: 5 * SECOND,
            delay_function: DELAY_FUNCTION_CONSTANT.to_owned(),
            interval: 24 * HOUR,
            max_delay: 0,
            unlimited: false,
        }),
        _ => None,
    }
}

/// `structs.DefaultLogConfig`: 10 files of 10 MB.
pub fn default_log_config() -> LogConfig {
    LogConfig {
        disabled: false,
        max_file_size_mb: 10,
        max_files: 10,
    }
}

/// `structs.DefaultResources`: 100 MHz, 300 MB.
pub fn default_resources() -> Resources {
    Resources {
        cpu: 100,
        memory_mb: 300,
        ..Default::default()
    }
}

/// `structs.DefaultEphemeralDisk`: 300 MB, not sticky, not migrated.
pub fn default_ephemeral_disk() -> EphemeralDisk {
    EphemeralDisk {
        migrate: false,
        size_mb: 300,
        sticky: false,
    }
}

/// `structs.DefaultUpdateStrategy`: one at a time, health by checks, 10s healthy, 5m deadline,
/// 10m progress deadline, stagger 30s, no canaries.
pub fn default_update_strategy() -> UpdateStrategy {
    UpdateStrategy {
        auto_promote: false,
        auto_revert: false,
        canary: 0,
        health_check: HEALTH_CHECK_CHECKS.to_owned(),
        healthy_deadline: 5 * MINUTE,
        max_parallel: 1,
        min_healthy_time: 10 * SECOND,
        progress_deadline: 10 * MINUTE,
        stagger: 30 * SECOND,
    }
}

/// `structs.DefaultMigrateStrategy`: one at a time, health by checks, 10s healthy, 5m deadline.
pub fn default_migrate_strategy() -> MigrateStrategy {
    MigrateStrategy {
        health_check: HEALTH_CHECK_CHECKS.to_owned(),
        healthy_deadline: 5 * MINUTE,
        max_parallel: 1,
        min_healthy_time: 10 * SECOND,
    }
}

/// The `api` package's defaults that depend on whether a field was sent, applied to the raw
/// job JSON before it is decoded (the typed model cannot tell a missing or `null` field from
/// an explicit zero). Keys are matched case-insensitively, as the decoder matches them.
///
/// - A group without `Count` gets 1, or its scaling block's `Min` (`api.TaskGroup.Canonicalize`).
/// - A group's `RestartPolicy` takes the job type's default for each field it leaves unset, and
///   a task's takes its group's (`RestartPolicy.Merge`): `Attempts: 0` stays 0.
/// - A group's `ReschedulePolicy` likewise takes the job type's default per unset field.
/// - A `Periodic` block is enabled, of spec type `cron` and in `UTC` unless it says otherwise.
pub fn fill_api_defaults(job: &mut Value) {
    let Some(job) = job.as_object_mut() else {
        return;
    };
    let job_type = field(job, "Type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or(JOB_TYPE_SERVICE)
        .to_owned();
    let restart_default = default_restart_policy(&job_type)
        .and_then(|p| serde_json::to_value(p).ok())
        .unwrap_or(Value::Null);
    let reschedule_default = default_reschedule_policy(&job_type)
        .and_then(|p| serde_json::to_value(p).ok())
        .unwrap_or(Value::Null);
    if let Some(periodic) = field_mut(job, "Periodic").and_then(Value::as_object_mut) {
        fill_periodic_defaults(periodic);
    }
    let Some(groups) = field_mut(job, "TaskGroups").and_then(Value::as_array_mut) else {
        return;
    };
    for tg in groups {
        let Some(tg) = tg.as_object_mut() else {
            continue;
        };
        default_missing_count(tg);
        crate::services_spec::fill_api_service_defaults(tg);
        if let Some(rp) = field_mut(tg, "ReschedulePolicy").and_then(Value::as_object_mut) {
            fill_unset(rp, &reschedule_default);
        }
        let group_restart = match field_mut(tg, "RestartPolicy").and_then(Value::as_object_mut) {
            Some(rp) => {
                fill_unset(rp, &restart_default);
                Value::Object(rp.clone())
            }
            None => restart_default.clone(),
        };
        let Some(tasks) = field_mut(tg, "Tasks").and_then(Value::as_array_mut) else {
            continue;
        };
        for task in tasks {
            if let Some(rp) = task
                .as_object_mut()
                .and_then(|t| field_mut(t, "RestartPolicy"))
                .and_then(Value::as_object_mut)
            {
                fill_unset(rp, &group_restart);
            }
        }
    }
}

/// The api package's `PeriodicConfig.Canonicalize`: enabled unless it says otherwise, a `cron`
/// spec type, `UTC` without a time zone, no `Specs` as an empty list.
fn fill_periodic_defaults(p: &mut Map<String, Value>) {
    if field(p, "Enabled").is_none_or(Value::is_null) {
        set_field(p, "Enabled", Value::Bool(true));
    }
    if field(p, "Spec").is_none_or(Value::is_null) {
        set_field(p, "Spec", Value::from(""));
    }
    if field(p, "Specs").is_none_or(Value::is_null) {
        set_field(p, "Specs", Value::Array(Vec::new()));
    }
    if field(p, "SpecType").is_none_or(Value::is_null) {
        set_field(
            p,
            "SpecType",
            Value::from(crate::periodic::PERIODIC_SPEC_CRON),
        );
    }
    if field(p, "TimeZone").is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
        set_field(p, "TimeZone", Value::from("UTC"));
    }
}

/// Only the group counts of [`fill_api_defaults`] (what `/v1/jobs/parse` fills in without
/// `Canonicalize`).
pub fn default_missing_group_counts(job: &mut Value) {
    let groups = job
        .as_object_mut()
        .and_then(|job| field_mut(job, "TaskGroups"))
        .and_then(Value::as_array_mut);
    for tg in groups
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        default_missing_count(tg);
    }
}

fn default_missing_count(tg: &mut Map<String, Value>) {
    if field(tg, "Count").is_none_or(Value::is_null) {
        let min = field(tg, "Scaling")
            .and_then(Value::as_object)
            .and_then(|s| field(s, "Min"))
            .and_then(Value::as_i64);
        set_field(tg, "Count", Value::from(min.unwrap_or(1)));
    }
}

/// The value of `name` in `obj`: the exact key, else one equal ignoring case.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(crate) fn field_mut<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = obj
        .keys()
        .find(|k| k.as_str() == name)
        .or_else(|| obj.keys().find(|k| k.eq_ignore_ascii_case(name)))?
        .clone();
    obj.get_mut(&key)
}

/// Sets `name`, replacing a key that differs from it only in case.
pub(crate) fn set_field(obj: &mut Map<String, Value>, name: &str, value: Value) {
    obj.retain(|k, _| !k.eq_ignore_ascii_case(name));
    obj.insert(name.to_owned(), value);
}

/// Gives every field of `defaults` that `obj` leaves missing or `null` its default value.
fn fill_unset(obj: &mut Map<String, Value>, defaults: &Value) {
    let Some(defaults) = defaults.as_object() else {
        return;
    };
    for (name, default) in defaults {
        if field(obj, name).is_none_or(Value::is_null) {
            set_field(obj, name, default.clone());
        }
    }
}

pub(crate) trait IsEmpty {
    fn is_empty_coll(&self) -> bool;
}

impl<K, V> IsEmpty for std::collections::BTreeMap<K, V> {
    fn is_empty_coll(&self) -> bool {
        self.is_empty()
    }
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty_coll(&self) -> bool {
        self.is_empty()
    }
}

/// Go's "empty and nil are the same" normalisation: an empty map or list becomes null.
pub(crate) fn nil_empty<C: IsEmpty>(v: &mut Option<C>) {
    if v.as_ref().is_some_and(IsEmpty::is_empty_coll) {
        *v = None;
    }
}

impl Job {
    /// Fills in Nomad's registration defaults (see the module docs). Idempotent.
    pub fn canonicalize(&mut self) {
        if self.region.is_empty() {
            self.region = DEFAULT_REGION.to_owned();
        }
        if self.namespace.is_empty() {
            self.namespace = DEFAULT_NAMESPACE.to_owned();
        }
        if self.priority == 0 {
            self.priority = crate::job::JOB_DEFAULT_PRIORITY;
        }
        if self.r#type.is_empty() {
            self.r#type = JOB_TYPE_SERVICE.to_owned();
        }
        if self.name.is_empty() {
            self.name = self.id.clone();
        }
        if self.datacenters.as_ref().is_none_or(Vec::is_empty) {
            self.datacenters = Some(vec![DEFAULT_DATACENTER.to_owned()]);
        }
        if self.node_pool.is_empty() {
            self.node_pool = DEFAULT_NODE_POOL.to_owned();
        }
        nil_empty(&mut self.meta);

        // The job-level update block: for a service job the api client fills the whole
        // default strategy; groups inherit it; the server struct keeps stagger and
        // max_parallel only.
        let job_update = if self.r#type == JOB_TYPE_SERVICE {
            let mut u = default_update_strategy();
            if self.update != UpdateStrategy::default() {
                merge_update(&mut u, &self.update);
            }
            Some(u)
        } else if self.update != UpdateStrategy::default() {
            let mut u = self.update.clone();
            fill_update(&mut u);
            Some(u)
        } else {
            None
        };
        if let Some(u) = &job_update {
            self.update = UpdateStrategy {
                max_parallel: u.max_parallel,
                stagger: u.stagger,
                ..Default::default()
            };
        }

        let job_type = self.r#type.clone();
        for tg in self.task_groups.iter_mut().flatten() {
            tg.canonicalize(&job_type, job_update.as_ref());
        }
        crate::services_spec::canonicalize_services(self);
    }
}

/// Overlays the non-zero fields of `over` on `base` (the api package's `UpdateStrategy.Merge`
/// for a block read without pointers).
fn merge_update(base: &mut UpdateStrategy, over: &UpdateStrategy) {
    if over.auto_promote {
        base.auto_promote = true;
    }
    if over.auto_revert {
        base.auto_revert = true;
    }
    if over.canary != 0 {
        base.canary = over.canary;
    }
    if !over.health_check.is_empty() {
        base.health_check.clone_from(&over.health_check);
    }
    if over.healthy_deadline != 0 {
        base.healthy_deadline = over.healthy_deadline;
    }
    if over.max_parallel != 0 {
        base.max_parallel = over.max_parallel;
    }
    if over.min_healthy_time != 0 {
        base.min_healthy_time = over.min_healthy_time;
    }
    if over.progress_deadline != 0 {
        base.progress_deadline = over.progress_deadline;
    }
    if over.stagger != 0 {
        base.stagger = over.stagger;
    }
}

/// Fills the fields of a present update block whose zero value Nomad rejects.
fn fill_update(u: &mut UpdateStrategy) {
    let d = default_update_strategy();
    if u.health_check.is_empty() {
        u.health_check = d.health_check;
    }
    if u.healthy_deadline == 0 {
        u.healthy_deadline = d.healthy_deadline;
    }
    if u.stagger == 0 {
        u.stagger = d.stagger;
    }
}

impl TaskGroup {
    /// The group part of [`Job::canonicalize`]; `job_update` is the job's full update block.
    fn canonicalize(&mut self, job_type: &str, job_update: Option<&UpdateStrategy>) {
        nil_empty(&mut self.meta);
        nil_empty(&mut self.networks);

        match &mut self.restart_policy {
            None => self.restart_policy = default_restart_policy(job_type),
            Some(rp) => {
                if rp.mode.is_empty() {
                    rp.mode = RESTART_POLICY_MODE_FAIL.to_owned();
                }
            }
        }
        match &mut self.reschedule_policy {
            None => self.reschedule_policy = default_reschedule_policy(job_type),
            Some(rp) => {
                if rp.delay_function.is_empty()
                    && let Some(d) = default_reschedule_policy(job_type)
                {
                    rp.delay_function = d.delay_function;
                }
            }
        }
        match &mut self.ephemeral_disk {
            None => self.ephemeral_disk = Some(default_ephemeral_disk()),
            Some(d) => {
                if d.size_mb == 0 {
                    d.size_mb = default_ephemeral_disk().size_mb;
                }
            }
        }
        if job_type == JOB_TYPE_SERVICE {
            match &mut self.migrate {
                None => self.migrate = Some(default_migrate_strategy()),
                Some(m) => {
                    if m.health_check.is_empty() {
                        m.health_check = HEALTH_CHECK_CHECKS.to_owned();
                    }
                }
            }
        }
        match (&mut self.update, job_update) {
            (Some(u), Some(ju)) => {
                let mut merged = ju.clone();
                merge_update(&mut merged, u);
                *u = merged;
            }
            (Some(u), None) => fill_update(u),
            (None, Some(ju)) => self.update = Some(ju.clone()),
            (None, None) => {}
        }

        let restart = self.restart_policy.clone();
        for task in self.tasks.iter_mut().flatten() {
            task.canonicalize(restart.as_ref());
        }
    }
}

impl Task {
    fn canonicalize(&mut self, group_restart: Option<&RestartPolicy>) {
        nil_empty(&mut self.meta);
        nil_empty(&mut self.env);
        nil_empty(&mut self.config);
        match &mut self.resources {
            None => self.resources = Some(default_resources()),
            Some(r) => {
                let d = default_resources();
                if r.cpu == 0 && r.cores == 0 {
                    r.cpu = d.cpu;
                }
                if r.memory_mb == 0 {
                    r.memory_mb = d.memory_mb;
                }
                nil_empty(&mut r.networks);
                nil_empty(&mut r.devices);
            }
        }
        match &mut self.log_config {
            None => self.log_config = Some(default_log_config()),
            Some(l) => {
                let d = default_log_config();
                if l.max_files == 0 {
                    l.max_files = d.max_files;
                }
                if l.max_file_size_mb == 0 {
                    l.max_file_size_mb = d.max_file_size_mb;
                }
            }
        }
        if self.restart_policy.is_none() {
            self.restart_policy = group_restart.cloned();
        }
        if self.kill_timeout == 0 {
            self.kill_timeout = DEFAULT_KILL_TIMEOUT;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Every problem [`Job::validate`] found, in Nomad's order and wording. Nested blocks (a task
/// group, a task, a constraint) contribute one entry whose text embeds their own list, as
/// Nomad's `fmt.Errorf("Task group %s validation failed: %v", ...)` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobValidationError {
    pub errors: Vec<String>,
}

/// go-multierror's `ListFormatFunc`: `1 error occurred:\n\t* a\n\n` or
/// `2 errors occurred:\n\t* a\n\t* b\n\n`.
pub fn format_multierror(errors: &[String]) -> String {
    if errors.len() == 1 {
        return format!("1 error occurred:\n\t* {}\n\n", errors[0]);
    }
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} errors occurred:\n\t{}\n\n",
        errors.len(),
        points.join("\n\t")
    )
}

impl fmt::Display for JobValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_multierror(&self.errors))
    }
}

impl std::error::Error for JobValidationError {}

fn result_of(errors: Vec<String>) -> Result<(), JobValidationError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(JobValidationError { errors })
    }
}

/// Constraint operands Nomad knows (`structs.Constraint.Validate`).
pub const CONSTRAINT_OPERANDS: &[&str] = &[
    "=",
    "==",
    "is",
    "!=",
    "not",
    "<",
    "<=",
    ">",
    ">=",
    "distinct_hosts",
    "distinct_property",
    "regexp",
    "version",
    "semver",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "is_set",
    "is_not_set",
];

impl Job {
    /// Nomad's job validation; every problem at once. Run it after [`Job::canonicalize`], as
    /// Nomad does (a job that was not canonicalised lacks policies Nomad requires).
    pub fn validate(&self) -> Result<(), JobValidationError> {
        let mut errs = Vec::new();
        if self.region.is_empty() && self.multiregion.is_none() {
            errs.push("Missing job region".to_owned());
        }
        if self.id.is_empty() {
            errs.push("Missing job ID".to_owned());
        } else if self.id.contains(' ') {
            errs.push("Job ID contains a space".to_owned());
        } else if self.id.contains('\0') {
            errs.push("Job ID contains a null character".to_owned());
        }
        if self.name.is_empty() {
            errs.push("Missing job name".to_owned());
        } else if self.name.contains('\0') {
            errs.push("Job Name contains a null character".to_owned());
        }
        if self.namespace.is_empty() {
            errs.push("Job must be in a namespace".to_owned());
        }
        match self.r#type.as_str() {
            JOB_TYPE_CORE | JOB_TYPE_SERVICE | JOB_TYPE_BATCH | JOB_TYPE_SYSTEM
            | JOB_TYPE_SYSBATCH => {}
            "" => errs.push("Missing job type".to_owned()),
            other => errs.push(format!("Invalid job type: {other:?}")),
        }
        if self.priority < JOB_MIN_PRIORITY || self.priority > JOB_MAX_PRIORITY {
            errs.push(format!(
                "job priority must be between [{JOB_MIN_PRIORITY}, {JOB_MAX_PRIORITY}]"
            ));
        }
        let dcs = self.datacenters.as_deref().unwrap_or_default();
        if dcs.is_empty() && self.multiregion.is_none() {
            errs.push("Missing job datacenters".to_owned());
        } else if dcs.iter().any(String::is_empty) {
            errs.push("Job datacenter must be non-empty string".to_owned());
        }
        let groups = self.task_groups.as_deref().unwrap_or_default();
        if groups.is_empty() {
            errs.push("Missing job task groups".to_owned());
        }
        validate_constraints(self.constraints.as_deref(), false, &mut errs);

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (idx, tg) in groups.iter().enumerate() {
            if tg.name.is_empty() {
                errs.push(format!("Job task group {} missing name", idx + 1));
            } else if let Some(existing) = seen.get(tg.name.as_str()) {
                errs.push(format!(
                    "Job task group {} redefines '{}' from group {}",
                    idx + 1,
                    tg.name,
                    existing + 1
                ));
            } else {
                seen.insert(&tg.name, idx);
            }
            if tg.shutdown_delay.is_some_and(|d| d < 0) {
                errs.push("ShutdownDelay must be a positive value".to_owned());
            }
            if self.r#type == JOB_TYPE_SYSTEM && tg.count > 1 {
                errs.push(format!(
                    "Job task group {} has count {}. Count cannot exceed 1 with system scheduler",
                    tg.name, tg.count
                ));
            }
        }
        for tg in groups {
            let tg_errs = tg.validation_errors(&self.r#type);
            if !tg_errs.is_empty() {
                errs.push(format!(
                    "Task group {} validation failed: {}",
                    tg.name,
                    format_multierror(&tg_errs)
                ));
            }
        }
        if let Some(periodic) = self.periodic.as_ref().filter(|p| p.enabled) {
            if self.r#type != JOB_TYPE_BATCH && self.r#type != JOB_TYPE_SYSBATCH {
                errs.push(format!(
                    "Periodic can only be used with {JOB_TYPE_BATCH:?} or {JOB_TYPE_SYSBATCH:?} scheduler"
                ));
            }
            // Nomad appends the block's multierror as one error: its text nests.
            let periodic_errs = periodic.validation_errors();
            if !periodic_errs.is_empty() {
                errs.push(format_multierror(&periodic_errs));
            }
        }
        if self.is_parameterized()
            && self.r#type != JOB_TYPE_BATCH
            && self.r#type != JOB_TYPE_SYSBATCH
        {
            errs.push(format!(
                "Parameterized job can only be used with {JOB_TYPE_BATCH:?} or {JOB_TYPE_SYSBATCH:?} scheduler"
            ));
        }
        result_of(errs)
    }
}

/// Appends `Constraint N validation failed: ...` for each invalid constraint; at task level
/// the distinct_* operands are refused too.
fn validate_constraints(
    constraints: Option<&[Constraint]>,
    task_level: bool,
    errs: &mut Vec<String>,
) {
    for (idx, c) in constraints.unwrap_or_default().iter().enumerate() {
        if let Err(e) = c.validate() {
            errs.push(format!("Constraint {} validation failed: {}", idx + 1, e));
        }
        if task_level && (c.operand == "distinct_hosts" || c.operand == "distinct_property") {
            errs.push(format!(
                "Constraint {} has disallowed Operand at task level: {}",
                idx + 1,
                c.operand
            ));
        }
    }
}

/// The one line of a regex error that says what is wrong (the crate's message also draws the
/// pattern with a caret under the fault).
fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or_default())
        .trim()
        .to_owned()
}

impl Constraint {
    /// Nomad's `Constraint.Validate`: regexps are compiled (version constraints are checked
    /// where they are evaluated, by the scheduler).
    pub fn validate(&self) -> Result<(), JobValidationError> {
        let mut errs = Vec::new();
        if self.operand.is_empty() {
            errs.push("Missing constraint operand".to_owned());
        }
        let mut require_ltarget = true;
        match self.operand.as_str() {
            "distinct_hosts" => require_ltarget = false,
            "set_contains" | "set_contains_all" | "set_contains_any" => {
                if self.r_target.is_empty() {
                    errs.push("Set contains constraint requires an RTarget".to_owned());
                }
            }
            "regexp" => {
                if let Err(e) = regex::Regex::new(&self.r_target) {
                    errs.push(format!(
                        "Regular expression failed to compile: {}",
                        regex_error_line(&e)
                    ));
                }
            }
            "version" | "semver" => {}
            "distinct_property" => {
                if !self.r_target.is_empty() {
                    match self.r_target.parse::<u64>() {
                        Err(e) => errs.push(format!(
                            "Failed to convert RTarget {:?} to uint64: strconv.ParseUint: parsing {:?}: {}",
                            self.r_target,
                            self.r_target,
                            if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                                "value out of range"
                            } else {
                                "invalid syntax"
                            }
                        )),
                        Ok(0) => errs.push(
                            "Distinct Property must have an allowed count of 1 or greater: 0 < 1"
                                .to_owned(),
                        ),
                        Ok(_) => {}
                    }
                }
            }
            "is_set" | "is_not_set" => {
                if !self.r_target.is_empty() {
                    errs.push(format!(
                        "Operator {:?} does not support an RTarget",
                        self.operand
                    ));
                }
            }
            "=" | "==" | "is" | "!=" | "not" | "<" | "<=" | ">" | ">=" => {
                if self.r_target.is_empty() {
                    errs.push(format!("Operator {:?} requires an RTarget", self.operand));
                }
            }
            "" => {}
            other => errs.push(format!("Unknown constraint type {other:?}")),
        }
        if require_ltarget && self.l_target.is_empty() {
            errs.push("No LTarget provided but is required by constraint".to_owned());
        }
        result_of(errs)
    }
}

impl RestartPolicy {
    /// Nomad's `RestartPolicy.Validate`.
    pub fn validate(&self) -> Result<(), JobValidationError> {
        let mut errs = Vec::new();
        if self.mode != RESTART_POLICY_MODE_DELAY && self.mode != RESTART_POLICY_MODE_FAIL {
            errs.push(format!("Unsupported restart mode: {:?}", self.mode));
        }
        if self.attempts == 0 && self.mode != RESTART_POLICY_MODE_FAIL {
            errs.push(format!(
                "Restart policy {:?} with {} attempts is ambiguous",
                self.mode, self.attempts
            ));
        }
        if self.interval < RESTART_POLICY_MIN_INTERVAL {
            errs.push(format!(
                "Interval can not be less than {} (got {})",
                format_go_duration(RESTART_POLICY_MIN_INTERVAL),
                format_go_duration(self.interval)
            ));
        }
        if self.attempts.saturating_mul(self.delay) > self.interval {
            errs.push(format!(
                "Nomad can't restart the TaskGroup {} times in an interval of {} with a delay of {}",
                self.attempts,
                format_go_duration(self.interval),
                format_go_duration(self.delay)
            ));
        }
        result_of(errs)
    }
}

impl ReschedulePolicy {
    /// Rescheduling happens at all.
    pub fn enabled(&self) -> bool {
        self.attempts > 0 || self.unlimited
    }

    /// Nomad's `ReschedulePolicy.Validate` (the delay/attempts cross-check of limited policies
    /// is not repeated).
    pub fn validate(&self) -> Result<(), JobValidationError> {
        if !self.enabled() {
            return Ok(());
        }
        let mut errs = Vec::new();
        if self.attempts > 0 {
            if self.interval <= 0 {
                errs.push("Interval must be a non zero value if Attempts > 0".to_owned());
            }
            if self.unlimited {
                errs.push(format!(
                    "Reschedule Policy with Attempts = {}, Interval = {}, and Unlimited = {} is ambiguous",
                    self.attempts,
                    format_go_duration(self.interval),
                    self.unlimited
                ));
                errs.push("If Attempts >0, Unlimited cannot also be set to true".to_owned());
            }
        }
        if self.delay < RESCHEDULE_POLICY_MIN_DELAY {
            errs.push(format!(
                "Delay cannot be less than {} (got {})",
                format_go_duration(RESCHEDULE_POLICY_MIN_DELAY),
                format_go_duration(self.delay)
            ));
        }
        let functions = [
            DELAY_FUNCTION_CONSTANT,
            DELAY_FUNCTION_EXPONENTIAL,
            DELAY_FUNCTION_FIBONACCI,
        ];
        if !functions.contains(&self.delay_function.as_str()) {
            errs.push(format!(
                "Invalid delay function {:?}, must be one of [\"constant\" \"exponential\" \"fibonacci\"]",
                self.delay_function
            ));
        }
        if self.delay_function != DELAY_FUNCTION_CONSTANT {
            if self.max_delay < RESCHEDULE_POLICY_MIN_DELAY {
                // Nomad prints the delay here, not the max delay.
                errs.push(format!(
                    "Max Delay cannot be less than {} (got {})",
                    format_go_duration(RESCHEDULE_POLICY_MIN_DELAY),
                    format_go_duration(self.delay)
                ));
            }
            if self.max_delay < self.delay {
                errs.push(format!(
                    "Max Delay cannot be less than Delay {} (got {})",
                    format_go_duration(self.delay),
                    format_go_duration(self.max_delay)
                ));
            }
        }
        if !self.unlimited && self.interval < RESCHEDULE_POLICY_MIN_INTERVAL {
            errs.push(format!(
                "Interval cannot be less than {} (got {})",
                format_go_duration(RESCHEDULE_POLICY_MIN_INTERVAL),
                format_go_duration(self.interval)
            ));
        }
        result_of(errs)
    }
}

impl TaskGroup {
    fn validation_errors(&self, job_type: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if self.name.is_empty() {
            errs.push("Missing task group name".to_owned());
        } else if self.name.contains('\0') {
            errs.push("Task group name contains null character".to_owned());
        }
        if self.count < 0 {
            errs.push("Task group count can't be negative".to_owned());
        }
        let tasks = self.tasks.as_deref().unwrap_or_default();
        if tasks.is_empty() {
            errs.push("Missing tasks for task group".to_owned());
        }
        validate_constraints(self.constraints.as_deref(), false, &mut errs);
        if job_type == JOB_TYPE_SYSTEM && self.affinities.is_some() {
            errs.push("System jobs may not have an affinity block".to_owned());
        }
        if job_type == JOB_TYPE_SYSTEM && self.spreads.is_some() {
            errs.push("System jobs may not have a spread block".to_owned());
        }
        match &self.restart_policy {
            Some(rp) => {
                if let Err(e) = rp.validate() {
                    errs.extend(e.errors);
                }
            }
            None => errs.push(format!(
                "Task Group {} should have a restart policy",
                self.name
            )),
        }
        if job_type == JOB_TYPE_SYSTEM {
            if self.reschedule_policy.is_some() {
                errs.push("System jobs should not have a reschedule policy".to_owned());
            }
        } else if job_type != JOB_TYPE_SYSBATCH {
            match &self.reschedule_policy {
                Some(rp) => {
                    if let Err(e) = rp.validate() {
                        errs.extend(e.errors);
                    }
                }
                None => errs.push(format!(
                    "Task Group {} should have a reschedule policy",
                    self.name
                )),
            }
        }
        match &self.ephemeral_disk {
            Some(d) => {
                if d.size_mb < 10 {
                    errs.push(format!("minimum DiskMB value is 10; got {}", d.size_mb));
                }
            }
            None => errs.push(format!(
                "Task Group {} should have an ephemeral disk object",
                self.name
            )),
        }
        if let Some(u) = &self.update {
            if job_type == JOB_TYPE_SERVICE || job_type == JOB_TYPE_SYSTEM {
                errs.extend(update_errors(u));
            } else {
                errs.push(format!("Job type {job_type:?} does not allow update block"));
            }
        }
        if let Some(m) = &self.migrate {
            if job_type == JOB_TYPE_SERVICE {
                errs.extend(migrate_errors(m));
            } else {
                errs.push(format!(
                    "Job type {job_type:?} does not allow migrate block"
                ));
            }
        }

        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut leaders = 0;
        for (idx, task) in tasks.iter().enumerate() {
            if task.name.is_empty() {
                errs.push(format!("Task {} missing name", idx + 1));
            } else if let Some(existing) = seen.get(task.name.as_str()) {
                errs.push(format!(
                    "Task {} redefines '{}' from task {}",
                    idx + 1,
                    task.name,
                    existing + 1
                ));
            } else {
                seen.insert(&task.name, idx);
            }
            if task.leader {
                leaders += 1;
            }
        }
        if leaders > 1 {
            errs.push("Only one task may be marked as leader".to_owned());
        }
        errs.extend(crate::services_spec::group_service_errors(self));
        for task in tasks {
            let mut t_errs = task.validation_errors(self.ephemeral_disk.as_ref());
            t_errs.extend(crate::services_spec::task_service_errors(
                task,
                self.networks.as_deref(),
            ));
            if !t_errs.is_empty() {
                errs.push(format!(
                    "Task {} validation failed: {}",
                    task.name,
                    format_multierror(&t_errs)
                ));
            }
        }
        errs
    }
}

fn update_errors(u: &UpdateStrategy) -> Vec<String> {
    let mut errs = Vec::new();
    if ![
        HEALTH_CHECK_CHECKS,
        HEALTH_CHECK_TASK_STATES,
        HEALTH_CHECK_MANUAL,
    ]
    .contains(&u.health_check.as_str())
    {
        errs.push(format!("Invalid health check given: {:?}", u.health_check));
    }
    if u.max_parallel < 0 {
        errs.push(format!(
            "Max parallel can not be less than zero: {} < 0",
            u.max_parallel
        ));
    }
    if u.canary < 0 {
        errs.push(format!(
            "Canary count can not be less than zero: {} < 0",
            u.canary
        ));
    }
    if u.canary == 0 && u.auto_promote {
        errs.push("Auto Promote requires a Canary count greater than zero".to_owned());
    }
    if u.min_healthy_time < 0 {
        errs.push(format!(
            "Minimum healthy time may not be less than zero: {}",
            format_go_duration(u.min_healthy_time)
        ));
    }
    if u.healthy_deadline <= 0 {
        errs.push(format!(
            "Healthy deadline must be greater than zero: {}",
            format_go_duration(u.healthy_deadline)
        ));
    }
    if u.progress_deadline < 0 {
        errs.push(format!(
            "Progress deadline must be zero or greater: {}",
            format_go_duration(u.progress_deadline)
        ));
    }
    if u.min_healthy_time >= u.healthy_deadline {
        errs.push(format!(
            "Minimum healthy time must be less than healthy deadline: {} > {}",
            format_go_duration(u.min_healthy_time),
            format_go_duration(u.healthy_deadline)
        ));
    }
    if u.progress_deadline != 0 && u.healthy_deadline >= u.progress_deadline {
        errs.push(format!(
            "Healthy deadline must be less than progress deadline: {} > {}",
            format_go_duration(u.healthy_deadline),
            format_go_duration(u.progress_deadline)
        ));
    }
    if u.stagger <= 0 {
        errs.push(format!(
            "Stagger must be greater than zero: {}",
            format_go_duration(u.stagger)
        ));
    }
    errs
}

fn migrate_errors(m: &MigrateStrategy) -> Vec<String> {
    let mut errs = Vec::new();
    if m.max_parallel < 0 {
        errs.push(format!(
            "MaxParallel must be >= 0 but found {}",
            m.max_parallel
        ));
    }
    if m.health_check != HEALTH_CHECK_CHECKS && m.health_check != HEALTH_CHECK_TASK_STATES {
        errs.push(format!("invalid health check: {:?}", m.health_check));
    }
    if m.min_healthy_time < 0 {
        errs.push(format!(
            "MinHealthyTime is {} and must be >= 0",
            format_go_duration(m.min_healthy_time)
        ));
    }
    if m.healthy_deadline < 0 {
        errs.push(format!(
            "HealthyDeadline is {} and must be >= 0",
            format_go_duration(m.healthy_deadline)
        ));
    }
    if m.min_healthy_time > m.healthy_deadline {
        errs.push("MinHealthyTime must be less than HealthyDeadline".to_owned());
    }
    errs
}

impl Task {
    fn validation_errors(&self, disk: Option<&EphemeralDisk>) -> Vec<String> {
        let mut errs = Vec::new();
        if self.name.is_empty() {
            errs.push("Missing task name".to_owned());
        }
        if self.name.contains(['/', '\\']) {
            errs.push("Task name cannot include slashes".to_owned());
        } else if self.name.contains('\0') {
            errs.push("Task name cannot include null characters".to_owned());
        }
        if self.driver.is_empty() {
            errs.push("Missing task driver".to_owned());
        }
        if self.kill_timeout < 0 {
            errs.push("KillTimeout must be a positive value".to_owned());
        }
        if self.shutdown_delay < 0 {
            errs.push("ShutdownDelay must be a positive value".to_owned());
        }
        match &self.resources {
            None => errs.push("Missing task resources".to_owned()),
            Some(r) => errs.extend(resources_errors(r)),
        }
        match &self.log_config {
            None => errs.push("Missing Log Config".to_owned()),
            Some(l) => {
                if l.max_files < 1 {
                    errs.push(format!("minimum number of files is 1; got {}", l.max_files));
                }
                if l.max_file_size_mb < 1 {
                    errs.push(format!(
                        "minimum file size is 1MB; got {}",
                        l.max_file_size_mb
                    ));
                }
                if let Some(d) = disk {
                    let usage = l.max_files.saturating_mul(l.max_file_size_mb);
                    // Nomad refuses logs that would fill the disk exactly (`<=`); the Go api
                    // package's own example jobs (100 MB disk, default logs) do that, so only
                    // logs larger than the disk are refused here.
                    if d.size_mb < usage {
                        errs.push(format!(
                            "log storage ({usage} MB) must be less than requested disk capacity ({} MB)",
                            d.size_mb
                        ));
                    }
                }
            }
        }
        validate_constraints(self.constraints.as_deref(), true, &mut errs);
        errs
    }
}

/// Nomad's `Resources.Validate` for a task ask (minimums: 1 MHz unless cores, 10 MB).
fn resources_errors(r: &Resources) -> Vec<String> {
    let mut errs = Vec::new();
    if r.cores > 0 && r.cpu > 0 {
        errs.push("Task can only ask for 'cpu' or 'cores' resource, not both.".to_owned());
    }
    if r.cores < 0 {
        errs.push(format!("minimum Cores value is 0; got {}", r.cores));
    }
    if r.cpu < 1 && r.cores == 0 {
        errs.push(format!("minimum CPU value is 1; got {}", r.cpu));
    }
    if r.memory_mb < 10 {
        errs.push(format!("minimum MemoryMB value is 10; got {}", r.memory_mb));
    }
    if r.disk_mb > 0 {
        errs.push(
            "Task can't ask for disk resources, they have to be specified at the task group level."
                .to_owned(),
        );
    }
    if r.memory_max_mb != 0 && r.memory_max_mb < r.memory_mb {
        errs.push(format!(
            "MemoryMaxMB value ({}) should be larger than MemoryMB value ({})",
            r.memory_max_mb, r.memory_mb
        ));
    }
    errs
}
