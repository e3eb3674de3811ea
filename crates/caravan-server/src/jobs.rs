//! The Jobs service and the job rules: registration (canonicalize, validate, check-and-set on
//! the job modify index, a new version when the spec changed, the evaluation), reads (list,
//! job, versions, summary, allocations, evaluations, deployments), stop and purge, forced
//! evaluation. Also the derived job status and summary, which every write that touches a
//! job's allocations or evaluations keeps current.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, jobs_server};
use caravan_state::{Document, Row, Snapshot, Store, TableId, Txn, WatchKey, job_key};
use caravan_structs::{
    AllocStubFields, Evaluation, JOB_STATUS_DEAD, JOB_STATUS_PENDING, JOB_STATUS_RUNNING,
    JOB_TYPE_SYSTEM, Job, JobSummary, SchedulerConfiguration, TaskGroupSummary, eval_trigger,
    fill_api_defaults, format_multierror,
};
use serde::Serialize;
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::nodes::unix_nanos;
use crate::paginate::Pager;
use crate::query::{query_meta, wait_of};

/// How many versions of a job are kept (Nomad's `JobTrackedVersions`).
pub const JOB_TRACKED_VERSIONS: usize = 6;

/// Filters on jobs: every object reads as a map (an unknown field is missing, not an error).
static JOB_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;

fn namespace_of(ns: &str) -> &str {
    if ns.is_empty() { "default" } else { ns }
}

fn in_namespace(ns_of_row: &str, wanted: &str) -> bool {
    wanted == "*" || ns_of_row == wanted
}

/// Decodes the `Job` of a request body as Nomad's API would, then fills its defaults. A job
/// that names no namespace runs in `namespace`, the request's.
pub fn decode_job(job_json: &[u8], namespace: &str) -> Result<Job, ServerError> {
    let mut value: Value = serde_json::from_slice(job_json)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode job: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(ServerError::BadRequest("Job must be specified".to_owned()));
    };
    if obj
        .get("Namespace")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        obj.insert("Namespace".to_owned(), Value::from(namespace_of(namespace)));
    }
    fill_api_defaults(&mut value);
    let mut job: Job = caravan_structs::go_json::from_value(value)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode job: {e}")))?;
    // The blocks kept as opaque JSON must have Go's shapes, as Nomad's decoder demands: they
    // are served back to Go clients as they are.
    caravan_structs::go_shape::check_job(&job)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode job: {e}")))?;
    job.canonicalize();
    // Nomad's implied-constraints admission mutator, run before validation as Nomad does.
    caravan_structs::add_implicit_constraints(&mut job);
    Ok(job)
}

/// The fields of a job that are bookkeeping, not spec: a register that differs only in these
/// makes no new version.
fn spec_of(job: &Job) -> Job {
    let mut spec = job.clone();
    spec.status = String::new();
    spec.status_description = String::new();
    spec.stable = false;
    spec.version = 0;
    spec.create_index = 0;
    spec.modify_index = 0;
    spec.job_modify_index = 0;
    spec.submit_time = 0;
    spec
}

/// Whether `new` differs from `old` in anything but bookkeeping (a new version).
pub(crate) fn spec_changed(old: &Job, new: &Job) -> bool {
    spec_of(old) != spec_of(new) || old.stop != new.stop
}

/// A job's status as Nomad derives it from its allocations and evaluations.
pub fn derive_job_status(snap: &Snapshot, job: &Job) -> &'static str {
    // System, periodic and parameterized jobs run until stopped (Nomad's getJobStatus).
    if job.r#type == JOB_TYPE_SYSTEM || job.is_parameterized() || job.is_periodic() {
        return if job.stop {
            JOB_STATUS_DEAD
        } else {
            JOB_STATUS_RUNNING
        };
    }
    let mut any_alloc = false;
    for row in snap.allocs_by_job(&job.namespace, &job.id) {
        any_alloc = true;
        if !row.value.terminal_status() {
            return JOB_STATUS_RUNNING;
        }
    }
    let mut any_eval = false;
    for row in snap.evals_by_job(&job.namespace, &job.id) {
        any_eval = true;
        if !row.value.terminal_status() {
            return JOB_STATUS_PENDING;
        }
    }
    // A dead job whose evaluations and allocations were garbage-collected stays dead.
    if any_alloc || any_eval || job.stop || job.status == JOB_STATUS_DEAD {
        JOB_STATUS_DEAD
    } else {
        JOB_STATUS_PENDING
    }
}

/// Re-derives the status of the job `namespace/id` and stores it when it changed.
pub fn refresh_job_status(txn: &mut Txn<'_>, namespace: &str, id: &str) -> Result<(), ServerError> {
    let Some(row) = txn.snapshot().job(namespace, id).cloned() else {
        return Ok(());
    };
    let status = derive_job_status(txn.snapshot(), &row.value);
    if row.value.status != status {
        let mut job = row.value.clone();
        job.status = status.to_owned();
        txn.put(job)?;
    }
    Ok(())
}

/// A job's summary: allocations of each group by client status, and what its latest
/// evaluation could not place.
pub fn job_summary(snap: &Snapshot, job: &Job) -> JobSummary {
    let mut groups: BTreeMap<String, TaskGroupSummary> = job
        .task_groups
        .iter()
        .flatten()
        .map(|tg| (tg.name.clone(), TaskGroupSummary::default()))
        .collect();
    let mut modify_index = job.create_index;
    for row in snap.allocs_by_job(&job.namespace, &job.id) {
        let alloc = &row.value;
        // Allocations of an earlier job with the same ID are not this job's.
        if alloc.create_index < job.create_index {
            continue;
        }
        modify_index = modify_index.max(alloc.modify_index);
        let Some(s) = groups.get_mut(&alloc.task_group) else {
            continue;
        };
        match alloc.client_status.as_str() {
            "pending" => s.starting += 1,
            "running" => s.running += 1,
            "complete" => s.complete += 1,
            "failed" => s.failed += 1,
            "lost" => s.lost += 1,
            "unknown" => s.unknown += 1,
            _ => {}
        }
    }
    // Queued: what the newest evaluation that reported it could not place yet.
    let latest = snap
        .evals_by_job(&job.namespace, &job.id)
        .filter(|row| row.value.create_index >= job.create_index)
        .filter(|row| row.value.queued_allocations.is_some())
        .max_by_key(|row| row.value.modify_index);
    if let Some(row) = latest {
        modify_index = modify_index.max(row.value.modify_index);
        for (group, queued) in row.value.queued_allocations.iter().flatten() {
            if let Some(s) = groups.get_mut(group) {
                s.queued = *queued;
            }
        }
    }
    JobSummary {
        children: (job.is_parameterized() || job.is_periodic())
            .then(|| children_summary(snap, job)),
        create_index: job.create_index,
        job_id: job.id.clone(),
        modify_index,
        namespace: job.namespace.clone(),
        summary: Some(groups),
    }
}

/// A parameterized or periodic job's children by status (their IDs extend the parent's).
fn children_summary(snap: &Snapshot, job: &Job) -> caravan_structs::JobChildrenSummary {
    let mut out = caravan_structs::JobChildrenSummary::default();
    let start = format!("{}/", job_key(&job.namespace, &job.id));
    let children = snap
        .jobs()
        .range_from(&start)
        .take_while(|(key, _)| key.starts_with(&start))
        .map(|(_, row)| &row.value)
        .filter(|child| child.parent_id == job.id);
    for child in children {
        match child.status.as_str() {
            JOB_STATUS_RUNNING => out.running += 1,
            JOB_STATUS_DEAD => out.dead += 1,
            _ => out.pending += 1,
        }
    }
    out
}

/// The evaluation a job change asks for; `None` for periodic and parameterized jobs, which
/// only their children run.
pub fn job_eval(job: &Job, triggered_by: &str, priority: Option<i64>) -> Option<Evaluation> {
    if job.is_periodic() || job.is_parameterized() {
        return None;
    }
    let now = unix_nanos();
    Some(Evaluation {
        id: uuid::Uuid::new_v4().to_string(),
        namespace: job.namespace.clone(),
        priority: priority.filter(|p| *p > 0).unwrap_or(job.priority),
        r#type: job.r#type.clone(),
        triggered_by: triggered_by.to_owned(),
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        status: "pending".to_owned(),
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    })
}

/// Stores a new version of `job` (or the same version when only bookkeeping changed) and
/// drops the versions past the tracked window.
pub(crate) fn upsert_job(
    txn: &mut Txn<'_>,
    mut job: Job,
    existing: Option<&Job>,
) -> Result<Job, ServerError> {
    let index = txn.index();
    match existing {
        Some(old) => {
            job.create_index = old.create_index;
            job.version = old.version + 1;
            job.stable = false;
        }
        None => {
            job.create_index = index;
            job.version = 0;
        }
    }
    job.modify_index = index;
    job.job_modify_index = index;
    job.submit_time = unix_nanos();
    job.status = JOB_STATUS_PENDING.to_owned();
    txn.put(job.clone())?;
    txn.put(caravan_state::JobVersion(job.clone()))?;
    let versions: Vec<String> = txn
        .snapshot()
        .versions_of_job(&job.namespace, &job.id)
        .rev()
        .skip(JOB_TRACKED_VERSIONS)
        .map(|row| {
            caravan_state::job_version_key(
                &row.value.0.namespace,
                &row.value.0.id,
                row.value.0.version,
            )
        })
        .collect();
    for key in versions {
        txn.delete::<caravan_structs::JobSubmission>(&key);
        txn.delete::<caravan_state::JobVersion>(&key);
    }
    Ok(job)
}

/// Removes a job with everything kept for it: its versions, their submissions, its scaling
/// events and its periodic launch record (its evaluations and allocations stay).
pub(crate) fn purge_job(txn: &mut Txn<'_>, ns: &str, id: &str) {
    txn.delete::<Job>(&job_key(ns, id));
    let versions: Vec<String> = txn
        .snapshot()
        .versions_of_job(ns, id)
        .map(|r| caravan_state::job_version_key(ns, id, r.value.0.version))
        .collect();
    for key in versions {
        txn.delete::<caravan_structs::JobSubmission>(&key);
        txn.delete::<caravan_state::JobVersion>(&key);
    }
    txn.delete::<caravan_structs::PeriodicLaunch>(&job_key(ns, id));
    txn.delete::<caravan_structs::JobScalingEvents>(&job_key(ns, id));
}

/// The outcome of a job write, before it has an index.
pub(crate) struct JobWrite {
    pub eval_id: String,
    pub job_modify_index: u64,
    pub warnings: String,
}

pub(crate) fn write_response(w: JobWrite, index: u64) -> v1::JobWriteResponse {
    v1::JobWriteResponse {
        eval_create_index: if w.eval_id.is_empty() { 0 } else { index },
        eval_id: w.eval_id,
        job_modify_index: w.job_modify_index,
        warnings: w.warnings,
        index,
    }
}

/// The transitions an update may not make (Nomad's `validateJobUpdate`): the type, and being
/// periodic or parameterized, are fixed when a job is first registered.
pub(crate) fn validate_job_update(old: &Job, new: &Job) -> Result<(), ServerError> {
    let refuse = |msg: String| Err(ServerError::BadRequest(msg));
    if old.r#type != new.r#type {
        return refuse(format!(
            "cannot update job from type {:?} to {:?}",
            old.r#type, new.r#type
        ));
    }
    match (old.is_periodic(), new.is_periodic()) {
        (true, false) => return refuse("cannot update periodic job to being non-periodic".into()),
        (false, true) => return refuse("cannot update non-periodic job to being periodic".into()),
        _ => {}
    }
    match (old.is_parameterized(), new.is_parameterized()) {
        (true, false) => {
            return refuse("cannot update parameterized job to being non-parameterized".into());
        }
        (false, true) => {
            return refuse("cannot update non-parameterized job to being parameterized".into());
        }
        _ => {}
    }
    Ok(())
}

/// Nomad's warning for tasks whose `memory_max` the scheduler will ignore.
fn memory_oversubscription_warnings(
    snap: &Snapshot,
    defaults: &SchedulerConfiguration,
    job: &Job,
) -> Vec<String> {
    let pool = crate::node_pools::find_pool(snap, &job.node_pool);
    let config = crate::operator::current_config(snap, defaults).with_node_pool(pool.as_ref());
    if config.memory_oversubscription_enabled {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for tg in job.task_groups.iter().flatten() {
        for task in tg.tasks.iter().flatten() {
            if task
                .resources
                .as_ref()
                .is_some_and(|r| r.memory_max_mb != 0)
            {
                warnings.push(format!(
                    "Memory oversubscription is not enabled; Task \"{}.{}\" memory_max value \
                     will be ignored. Update the Scheduler Configuration to allow \
                     oversubscription.",
                    tg.name, task.name
                ));
            }
        }
    }
    warnings
}

/// What the cluster's state refuses of a job, in Nomad's order: a namespace that does not
/// exist or does not allow the job's drivers and network modes, then a node pool that does not
/// exist.
fn state_refusals(snap: &Snapshot, job: &Job) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = crate::namespaces::admit_job(snap, job) {
        errors.push(e);
    }
    if let Err(e) = crate::node_pools::require_pool(snap, job) {
        errors.push(e);
    }
    errors
}

/// The same, as the error of a write.
pub(crate) fn check_state_refusals(snap: &Snapshot, job: &Job) -> Result<(), ServerError> {
    let errors = state_refusals(snap, job);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format_multierror(&errors)))
    }
}

/// What job admission refuses, in Nomad's order: the state's refusals, then the job's own
/// validation errors.
fn admission_errors(snap: &Snapshot, job: &Job) -> Vec<String> {
    let mut errors = state_refusals(snap, job);
    if let Err(e) = job.validate() {
        errors.extend(e.errors);
    }
    errors
}

/// Warnings as Nomad merges them into one string.
fn merge_warnings(warnings: &[String]) -> String {
    match warnings {
        [] => String::new(),
        [_] => format!("1 warning:\n\n* {}", warnings[0].trim()),
        many => {
            let mut out = format!("{} warnings:\n", many.len());
            for w in many {
                out.push_str(&format!("\n* {}", w.trim()));
            }
            out
        }
    }
}

fn register(
    txn: &mut Txn<'_>,
    job: Job,
    req: &v1::RegisterJobRequest,
    defaults: &SchedulerConfiguration,
) -> Result<JobWrite, ServerError> {
    crate::operator::registrations_allowed(txn.snapshot(), defaults)?;
    // Checked again here: the namespace or pool may have gone since the request was admitted.
    check_state_refusals(txn.snapshot(), &job)?;
    let mut notes = memory_oversubscription_warnings(txn.snapshot(), defaults, &job);
    let existing = txn
        .snapshot()
        .job(&job.namespace, &job.id)
        .map(|r| r.value.clone());
    if req.enforce_index {
        let asked = req.job_modify_index;
        match &existing {
            Some(old) if asked == 0 => {
                let _ = old;
                return Err(ServerError::Conflict(format!(
                    "Enforcing job modify index {asked}: job already exists"
                )));
            }
            Some(old) if old.job_modify_index != asked => {
                return Err(ServerError::Conflict(format!(
                    "Enforcing job modify index {asked}: job exists with conflicting job modify index: {}",
                    old.job_modify_index
                )));
            }
            None if asked != 0 => {
                return Err(ServerError::Conflict(format!(
                    "Enforcing job modify index {asked}: job does not exist"
                )));
            }
            _ => {}
        }
    }
    let mut job = job;
    if req.preserve_counts
        && let Some(old) = &existing
    {
        for tg in job.task_groups.iter_mut().flatten() {
            if let Some(old_tg) = old.lookup_task_group(&tg.name) {
                tg.count = old_tg.count;
            }
        }
    }
    let (namespace, id) = (job.namespace.clone(), job.id.clone());
    let mut written = register_spec(txn, job, existing, Some(req.eval_priority))?;
    if !req.submission_json.is_empty()
        && let Some(version) = txn.snapshot().job(&namespace, &id).map(|r| r.value.version)
    {
        let mut submission: caravan_structs::JobSubmission =
            caravan_structs::go_json::from_slice(&req.submission_json).map_err(|e| {
                ServerError::BadRequest(format!("Request decode failed: Submission: {e}"))
            })?;
        let size = submission.source.len() + submission.variables.len();
        if size > caravan_structs::JOB_MAX_SOURCE_SIZE {
            notes.push(format!(
                "job source size of {size} exceeds maximum of {} and will be discarded",
                caravan_structs::JOB_MAX_SOURCE_SIZE
            ));
        } else {
            submission.namespace = namespace;
            submission.job_id = id;
            submission.version = version;
            if submission
                .variable_flags
                .as_ref()
                .is_some_and(|f| f.is_empty())
            {
                submission.variable_flags = None;
            }
            txn.put(submission)?;
        }
    }
    written.warnings = merge_warnings(&notes);
    Ok(written)
}

/// Stores `job` over `existing` (a new version when the spec changed) and creates the
/// registration's evaluation: what a register does once its checks passed.
pub(crate) fn register_spec(
    txn: &mut Txn<'_>,
    job: Job,
    existing: Option<Job>,
    eval_priority: Option<i64>,
) -> Result<JobWrite, ServerError> {
    if let Some(old) = &existing {
        validate_job_update(old, &job)?;
    }
    let mut job = job;
    crate::job_actions::propagate_scaling_policies(&mut job, existing.as_ref(), txn.index());
    let changed = existing.as_ref().is_none_or(|old| spec_changed(old, &job));
    let job = if changed {
        upsert_job(txn, job, existing.as_ref())?
    } else {
        existing.clone().unwrap_or(job)
    };
    let mut eval_id = String::new();
    if let Some(eval) = job_eval(&job, eval_trigger::JOB_REGISTER, eval_priority) {
        eval_id = eval.id.clone();
        txn.put(eval)?;
    }
    crate::periodic::record_first_launch(txn, &job, unix_nanos())?;
    refresh_job_status(txn, &job.namespace, &job.id)?;
    Ok(JobWrite {
        eval_id,
        job_modify_index: job.job_modify_index,
        warnings: String::new(),
    })
}

#[derive(Clone)]
pub struct JobsService {
    server: Arc<Server>,
}

impl JobsService {
    pub fn new(server: Arc<Server>) -> Self {
        JobsService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    /// A blocking read of one job-scoped result, woken by changes to `tables`.
    async fn read_job<R: Send>(
        &self,
        req: &v1::GetJobRequest,
        tables: &[TableId],
        mut render: impl FnMut(&Snapshot, &Job) -> (R, u64),
    ) -> (Option<R>, u64) {
        let q = req.query.clone().unwrap_or_default();
        let ns = namespace_of(&q.namespace).to_owned();
        let mut keys = vec![WatchKey::Row(TableId::Jobs, job_key(&ns, &req.job_id))];
        keys.extend(tables.iter().map(|t| WatchKey::Table(*t)));
        self.store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                match snap.job(&ns, &req.job_id) {
                    Some(row) => {
                        let (out, index) = render(snap, &row.value);
                        let index = index.max(row.value.modify_index);
                        ((Some(out), index), index)
                    }
                    None => ((None, snap.jobs().index()), snap.jobs().index()),
                }
            })
            .await
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Bytes, ServerError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding response: {e}")))
}

/// Documents as JSON, newest first, with the highest modify index among them.
fn newest_first<'a, T: Document>(rows: impl Iterator<Item = &'a Arc<Row<T>>>) -> (Vec<Bytes>, u64) {
    let mut rows: Vec<&Arc<Row<T>>> = rows.collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.value.create_index()));
    let index = rows
        .iter()
        .map(|r| r.value.modify_index())
        .max()
        .unwrap_or(0);
    let json = rows
        .into_iter()
        .map(|r| Bytes::copy_from_slice(r.json.as_bytes()))
        .collect();
    (json, index)
}

/// The namespace of a write, `default` when it names none.
fn write_namespace(write: Option<&v1::WriteOptions>) -> String {
    namespace_of(write.map(|w| w.namespace.as_str()).unwrap_or_default()).to_owned()
}

fn require_job_id(id: &str) -> Result<(), ServerError> {
    if id.is_empty() {
        return Err(ServerError::BadRequest("Missing job ID".to_owned()));
    }
    Ok(())
}

#[tonic::async_trait]
impl jobs_server::Jobs for JobsService {
    async fn register_job(
        &self,
        request: Request<v1::RegisterJobRequest>,
    ) -> Result<Response<v1::JobWriteResponse>, Status> {
        let req = request.into_inner();
        // Refused before anything else is looked at, as in Nomad.
        crate::operator::registrations_allowed(
            &self.store().snapshot(),
            &self.server.scheduler_defaults,
        )?;
        let ns = req
            .write
            .as_ref()
            .map(|w| w.namespace.as_str())
            .unwrap_or_default();
        // A job without an ID is refused by the gateway; an empty one fails validation.
        let job = decode_job(&req.job_json, ns)?;
        if !req.path_job_id.is_empty() && req.path_job_id != job.id {
            return Err(ServerError::BadRequest("Job ID does not match name".to_owned()).into());
        }
        // Nomad's admission: the node pool, then the job's own checks, in one multierror.
        let errors = admission_errors(&self.store().snapshot(), &job);
        if !errors.is_empty() {
            return Err(ServerError::BadRequest(format_multierror(&errors)).into());
        }
        let defaults = self.server.scheduler_defaults.clone();
        let (job_id, namespace) = (job.id.clone(), job.namespace.clone());
        let written = self
            .store()
            .write(move |txn| register(txn, job, &req, &defaults))
            .await?;
        tracing::debug!(
            job_id = %job_id,
            namespace = %namespace,
            eval_id = %written.value.eval_id,
            index = written.index,
            "job registered"
        );
        Ok(Response::new(write_response(written.value, written.index)))
    }

    async fn list_jobs(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> Result<Response<v1::ListJobsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        // Tokens are `<namespace>.<id>`, in key order: never numeric.
        let pager = Pager::new(&q, &JOB_SCHEMA)?.with_plain_tokens();
        let ns = namespace_of(&q.namespace).to_owned();
        let keys = [
            WatchKey::Table(TableId::Jobs),
            WatchKey::Table(TableId::Allocs),
            WatchKey::Table(TableId::Evals),
        ];
        type JobRow = Arc<Row<Job>>;
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let table = snap.jobs();
                let start = if ns == "*" {
                    String::new()
                } else {
                    format!("{ns}/")
                };
                let mut rows: Vec<&JobRow> = table
                    .range_from(&start)
                    .map(|(_, r)| r)
                    .take_while(|r| in_namespace(&r.value.namespace, &ns))
                    .filter(|r| crate::query::namespace_allowed(&q, &r.value.namespace))
                    .filter(|r| r.value.id.starts_with(&q.prefix))
                    .collect();
                if pager.reverse() {
                    rows.reverse();
                }
                let page = pager.page(
                    rows.into_iter(),
                    |r: &&JobRow| format!("{}.{}", r.value.namespace, r.value.id),
                    |r: &&JobRow| &r.json,
                    |r: &&JobRow| {
                        let mut stub = r.value.stub(Some(job_summary(snap, &r.value)));
                        if !req.meta {
                            stub.meta = None;
                        }
                        to_json(&stub)
                    },
                );
                // Summaries change with allocations and evaluations.
                let index = table
                    .index()
                    .max(snap.allocs().index())
                    .max(snap.evals().index());
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::ListJobsResponse {
            jobs_json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_job(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::GetJobResponse>, Status> {
        let req = request.into_inner();
        let (json, index) = self
            .read_job(&req, &[], |_, job| (to_json(job), job.modify_index))
            .await;
        Ok(Response::new(v1::GetJobResponse {
            json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_versions(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::GetJobVersionsResponse>, Status> {
        let req = request.into_inner();
        let want_diffs = req.diffs;
        let (versions, index) = self
            .read_job(&req, &[TableId::JobVersions], |snap, job| {
                let rows: Vec<Bytes> = snap
                    .versions_of_job(&job.namespace, &job.id)
                    .rev()
                    .map(|row| Bytes::copy_from_slice(row.json.as_bytes()))
                    .collect();
                // Nomad's `Diffs`: version i+1 → version i, newest first.
                // Nil (null) in Nomad when there is no earlier version to compare with.
                let diffs = (want_diffs
                    && snap
                        .versions_of_job(&job.namespace, &job.id)
                        .nth(1)
                        .is_some())
                .then(|| {
                    let jobs: Vec<&Job> = snap
                        .versions_of_job(&job.namespace, &job.id)
                        .rev()
                        .map(|row| &row.value.0)
                        .collect();
                    let diffs: Vec<caravan_structs::JobDiff> = jobs
                        .windows(2)
                        .map(|w| caravan_structs::diff_jobs(Some(w[1]), w[0]))
                        .collect();
                    to_json(&diffs)
                });
                ((rows, diffs), job.modify_index)
            })
            .await;
        let found = versions.is_some();
        let (versions_json, diffs) = versions.unzip();
        Ok(Response::new(v1::GetJobVersionsResponse {
            found,
            versions_json: versions_json.unwrap_or_default(),
            diffs_json: diffs.flatten().transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_summary(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::GetJobResponse>, Status> {
        let req = request.into_inner();
        let (json, index) = self
            .read_job(&req, &[TableId::Allocs, TableId::Evals], |snap, job| {
                let summary = job_summary(snap, job);
                let index = summary.modify_index;
                (to_json(&summary), index)
            })
            .await;
        Ok(Response::new(v1::GetJobResponse {
            json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_allocs(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::JobDocumentsResponse>, Status> {
        let req = request.into_inner();
        let all = req.all;
        let (allocs, index) = self
            .read_job(&req, &[TableId::Allocs], |snap, job| {
                let mut out = Vec::new();
                for row in snap.allocs_by_job(&job.namespace, &job.id) {
                    let a = &row.value;
                    if !all && a.create_index < job.create_index {
                        continue;
                    }
                    let version = snap.job_version(&a.namespace, &a.job_id, a.job_version);
                    out.push(to_json(&a.stub(AllocStubFields::default(), version)));
                }
                (out, snap.allocs().index())
            })
            .await;
        let json = allocs
            .unwrap_or_default()
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::JobDocumentsResponse {
            json,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_evals(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::JobDocumentsResponse>, Status> {
        let req = request.into_inner();
        let (evals, index) = self
            .read_job(&req, &[TableId::Evals], |snap, job| {
                newest_first(snap.evals_by_job(&job.namespace, &job.id))
            })
            .await;
        Ok(Response::new(v1::JobDocumentsResponse {
            json: evals.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_deployments(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::JobDocumentsResponse>, Status> {
        let req = request.into_inner();
        let all = req.all;
        let (deployments, index) = self
            .read_job(&req, &[TableId::Deployments], |snap, job| {
                newest_first(
                    snap.deployments_by_job(&job.namespace, &job.id)
                        .filter(|r| all || r.value.job_create_index == job.create_index),
                )
            })
            .await;
        Ok(Response::new(v1::JobDocumentsResponse {
            json: deployments.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn deregister_job(
        &self,
        request: Request<v1::DeregisterJobRequest>,
    ) -> Result<Response<v1::JobWriteResponse>, Status> {
        let req = request.into_inner();
        require_job_id(&req.job_id)?;
        let ns = namespace_of(
            &req.write
                .as_ref()
                .map(|w| w.namespace.clone())
                .unwrap_or_default(),
        )
        .to_owned();
        let written = self
            .store()
            .write(move |txn| -> Result<JobWrite, ServerError> {
                let Some(row) = txn.snapshot().job(&ns, &req.job_id).cloned() else {
                    return Err(ServerError::NotFound("job not found".to_owned()));
                };
                let job = if req.purge {
                    purge_job(txn, &ns, &req.job_id);
                    row.value.clone()
                } else if row.value.stop {
                    row.value.clone()
                } else {
                    let mut stopped = row.value.clone();
                    stopped.stop = true;
                    upsert_job(txn, stopped, Some(&row.value))?
                };
                let mut eval_id = String::new();
                let priority = Some(req.eval_priority);
                if let Some(eval) = job_eval(&job, eval_trigger::JOB_DEREGISTER, priority) {
                    eval_id = eval.id.clone();
                    txn.put(eval)?;
                }
                if !req.purge {
                    refresh_job_status(txn, &ns, &req.job_id)?;
                }
                Ok(JobWrite {
                    eval_id,
                    job_modify_index: txn.index(),
                    warnings: String::new(),
                })
            })
            .await?;
        Ok(Response::new(write_response(written.value, written.index)))
    }

    async fn evaluate_job(
        &self,
        request: Request<v1::EvaluateJobRequest>,
    ) -> Result<Response<v1::JobWriteResponse>, Status> {
        let req = request.into_inner();
        require_job_id(&req.job_id)?;
        let ns = namespace_of(
            &req.write
                .as_ref()
                .map(|w| w.namespace.clone())
                .unwrap_or_default(),
        )
        .to_owned();
        let written = self
            .store()
            .write(move |txn| -> Result<JobWrite, ServerError> {
                let Some(row) = txn.snapshot().job(&ns, &req.job_id).cloned() else {
                    return Err(ServerError::NotFound("job not found".to_owned()));
                };
                let job = &row.value;
                if job.is_periodic() {
                    return Err(ServerError::BadRequest(
                        "can't evaluate periodic job".to_owned(),
                    ));
                }
                if job.is_parameterized() {
                    return Err(ServerError::BadRequest(
                        "can't evaluate parameterized job".to_owned(),
                    ));
                }
                let Some(eval) = job_eval(job, eval_trigger::JOB_REGISTER, None) else {
                    return Err(ServerError::BadRequest(
                        "job cannot be evaluated".to_owned(),
                    ));
                };
                if req.force_reschedule {
                    // Failed allocations get another chance now, whatever their policy says.
                    let failed: Vec<_> = txn
                        .snapshot()
                        .allocs_by_job(&ns, &req.job_id)
                        .filter(|r| {
                            r.value.client_status == "failed" && !r.value.server_terminal_status()
                        })
                        .map(|r| r.value.clone())
                        .collect();
                    for mut alloc in failed {
                        alloc.desired_transition.force_reschedule = Some(true);
                        txn.put(alloc)?;
                    }
                }
                let eval_id = eval.id.clone();
                txn.put(eval)?;
                refresh_job_status(txn, &ns, &req.job_id)?;
                Ok(JobWrite {
                    eval_id,
                    job_modify_index: job.job_modify_index,
                    warnings: String::new(),
                })
            })
            .await?;
        Ok(Response::new(write_response(written.value, written.index)))
    }

    async fn validate_job(
        &self,
        request: Request<v1::ValidateJobRequest>,
    ) -> Result<Response<v1::ValidateJobResponse>, Status> {
        let req = request.into_inner();
        let ns = req
            .write
            .as_ref()
            .map(|w| w.namespace.as_str())
            .unwrap_or_default();
        let job = decode_job(&req.job_json, ns)?;
        let snap = self.store().snapshot();
        let errors = admission_errors(&snap, &job);
        let warnings = merge_warnings(&memory_oversubscription_warnings(
            &snap,
            &self.server.scheduler_defaults,
            &job,
        ));
        Ok(Response::new(v1::ValidateJobResponse {
            error: if errors.is_empty() {
                String::new()
            } else {
                format_multierror(&errors)
            },
            validation_errors: errors,
            warnings,
        }))
    }

    async fn revert_job(
        &self,
        request: Request<v1::RevertJobRequest>,
    ) -> Result<Response<v1::JobWriteResponse>, Status> {
        let req = request.into_inner();
        if req.job_id.is_empty() {
            return Err(ServerError::BadRequest("missing job ID for revert".to_owned()).into());
        }
        let ns = write_namespace(req.write.as_ref());
        let written = self
            .store()
            .write(move |txn| crate::job_actions::revert(txn, &ns, &req))
            .await?;
        Ok(Response::new(write_response(written.value, written.index)))
    }

    async fn set_job_stability(
        &self,
        request: Request<v1::SetJobStabilityRequest>,
    ) -> Result<Response<v1::SetJobStabilityResponse>, Status> {
        let req = request.into_inner();
        if req.job_id.is_empty() {
            return Err(ServerError::BadRequest(
                "missing job ID for marking job as stable".to_owned(),
            )
            .into());
        }
        let ns = write_namespace(req.write.as_ref());
        let written = self
            .store()
            .write(move |txn| crate::job_actions::set_stability(txn, &ns, &req))
            .await?;
        Ok(Response::new(v1::SetJobStabilityResponse {
            index: written.index,
        }))
    }

    async fn periodic_force(
        &self,
        request: Request<v1::PeriodicForceRequest>,
    ) -> Result<Response<v1::PeriodicForceResponse>, Status> {
        let req = request.into_inner();
        if req.job_id.is_empty() {
            return Err(ServerError::BadRequest("missing job ID for evaluation".to_owned()).into());
        }
        let ns = write_namespace(req.write.as_ref());
        let now = unix_nanos();
        let written = self
            .store()
            .write(move |txn| {
                crate::periodic::launch(
                    txn,
                    &ns,
                    &req.job_id,
                    now,
                    crate::periodic::LaunchKind::Forced,
                )
            })
            .await?;
        let Some(launched) = written.value else {
            return Err(ServerError::Internal("forced launch made no child".to_owned()).into());
        };
        Ok(Response::new(v1::PeriodicForceResponse {
            eval_id: launched.eval_id,
            eval_create_index: written.index,
            index: written.index,
        }))
    }

    async fn dispatch_job(
        &self,
        request: Request<v1::DispatchJobRequest>,
    ) -> Result<Response<v1::DispatchJobResponse>, Status> {
        let req = request.into_inner();
        let ns = write_namespace(req.write.as_ref());
        let written = self
            .store()
            .write(move |txn| crate::job_actions::dispatch(txn, &ns, &req))
            .await?;
        let d = written.value;
        Ok(Response::new(v1::DispatchJobResponse {
            eval_create_index: if d.eval_id.is_empty() {
                0
            } else {
                written.index
            },
            index: d.existing_index.unwrap_or(written.index),
            dispatched_job_id: d.job_id,
            eval_id: d.eval_id,
            job_create_index: d.job_create_index,
        }))
    }

    async fn plan_job(
        &self,
        request: Request<v1::PlanJobRequest>,
    ) -> Result<Response<v1::PlanJobResponse>, Status> {
        let req = request.into_inner();
        let ns = write_namespace(req.write.as_ref());
        let job = decode_job(&req.job_json, &ns)?;
        if !req.path_job_id.is_empty() && req.path_job_id != job.id {
            return Err(ServerError::BadRequest("Job ID does not match".to_owned()).into());
        }
        job.validate()
            .map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let snap = self.store().snapshot();
        check_state_refusals(&snap, &job)?;
        let defaults = self.server.scheduler_defaults.clone();
        let diff = req.diff;
        let planned = tokio::task::spawn_blocking(move || {
            crate::job_plan::plan_job(snap, defaults, job, diff)
        })
        .await
        .map_err(|e| ServerError::Internal(format!("planning stopped: {e}")))??;
        Ok(Response::new(v1::PlanJobResponse {
            index: planned.index,
            json: to_json(&planned)?,
        }))
    }

    async fn scale_job(
        &self,
        request: Request<v1::ScaleJobRequest>,
    ) -> Result<Response<v1::JobWriteResponse>, Status> {
        let req = request.into_inner();
        let ns = write_namespace(req.write.as_ref());
        let written = self
            .store()
            .write(move |txn| crate::job_actions::scale(txn, &ns, &req))
            .await?;
        Ok(Response::new(write_response(written.value, written.index)))
    }

    async fn get_job_scale_status(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> Result<Response<v1::GetJobResponse>, Status> {
        let req = request.into_inner();
        let (json, index) = self
            .read_job(
                &req,
                &[TableId::Allocs, TableId::ScalingEvents],
                |snap, job| {
                    let status = crate::job_actions::scale_status(snap, job);
                    let index = snap
                        .allocs()
                        .index()
                        .max(snap.scaling_events_table().index());
                    (to_json(&status), index)
                },
            )
            .await;
        Ok(Response::new(v1::GetJobResponse {
            json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn list_scaling_policies(
        &self,
        request: Request<v1::ListScalingPoliciesRequest>,
    ) -> Result<Response<v1::JobDocumentsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.clone().unwrap_or_default();
        let ns = namespace_of(&q.namespace).to_owned();
        let keys = [WatchKey::Table(TableId::Jobs)];
        let (stubs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let stubs: Vec<Result<Bytes, ServerError>> =
                    crate::job_actions::scaling_policies(snap, &ns)
                        .filter(|p| {
                            p.pointer("/Target/Namespace")
                                .and_then(Value::as_str)
                                .is_none_or(|ns| crate::query::namespace_allowed(&q, ns))
                        })
                        .filter(|p| {
                            req.job.is_empty()
                                || p.pointer("/Target/Job").and_then(Value::as_str)
                                    == Some(req.job.as_str())
                        })
                        .filter(|p| {
                            req.r#type.is_empty()
                                || p.get("Type").and_then(Value::as_str)
                                    == Some(req.r#type.as_str())
                        })
                        .map(|p| {
                            let stub: serde_json::Map<String, Value> = [
                                "CreateIndex",
                                "Enabled",
                                "ID",
                                "ModifyIndex",
                                "Target",
                                "Type",
                            ]
                            .into_iter()
                            .map(|k| (k.to_owned(), p.get(k).cloned().unwrap_or(Value::Null)))
                            .collect();
                            to_json(&stub)
                        })
                        .collect();
                let index = snap.jobs().index();
                ((stubs, index), index)
            })
            .await;
        Ok(Response::new(v1::JobDocumentsResponse {
            json: stubs.into_iter().collect::<Result<Vec<_>, _>>()?,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_scaling_policy(
        &self,
        request: Request<v1::GetScalingPolicyRequest>,
    ) -> Result<Response<v1::GetJobResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.clone().unwrap_or_default();
        let keys = [WatchKey::Table(TableId::Jobs)];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let found = crate::job_actions::scaling_policies(snap, "*")
                    .find(|p| p.get("ID").and_then(Value::as_str) == Some(req.id.as_str()))
                    .map(to_json);
                let index = snap.jobs().index();
                ((found, index), index)
            })
            .await;
        Ok(Response::new(v1::GetJobResponse {
            json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_job_submission(
        &self,
        request: Request<v1::GetJobSubmissionRequest>,
    ) -> Result<Response<v1::GetJobResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.clone().unwrap_or_default();
        let ns = namespace_of(&q.namespace).to_owned();
        let keys = [WatchKey::Table(TableId::JobSubmissions)];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let found = snap
                    .job_submission(&ns, &req.job_id, req.version)
                    .map(to_json);
                let index = snap.job_submissions().index();
                ((found, index), index)
            })
            .await;
        Ok(Response::new(v1::GetJobResponse {
            json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_merge_as_nomads_list() {
        assert_eq!(merge_warnings(&[]), "");
        assert_eq!(merge_warnings(&["a ".to_owned()]), "1 warning:\n\n* a");
        assert_eq!(
            merge_warnings(&["a".to_owned(), "b".to_owned()]),
            "2 warnings:\n\n* a\n* b"
        );
    }
}
