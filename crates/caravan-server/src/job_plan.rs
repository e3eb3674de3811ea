//! `Job.Plan`: what registering a job would do, without committing anything. The scheduler runs
//! on the current snapshot with the submitted job laid over it and a planner that records
//! instead of applying; the recorded plan gives Nomad's `DesiredTGUpdates` annotations, the
//! evaluation gives `FailedTGAllocs`, and the job diff is annotated as Nomad's scheduler does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use caravan_scheduler::{
    Plan, PlanResult, Planner, SchedContext, SchedulerError, State, process_eval,
};
use caravan_state::Snapshot;
use caravan_structs::{
    ANNOTATION_FORCES_CREATE, ANNOTATION_FORCES_DESTROY, ANNOTATION_FORCES_DESTRUCTIVE_UPDATE,
    ANNOTATION_FORCES_INPLACE_UPDATE, AllocMetric, Allocation, DIFF_TYPE_ADDED, DIFF_TYPE_DELETED,
    DIFF_TYPE_EDITED, Deployment, Evaluation, Job, JobDiff, Node, Time, diff_jobs, eval_trigger,
};
use serde::Serialize;

use crate::error::ServerError;
use crate::nodes::unix_nanos;
use crate::scheduling::SnapshotState;

/// Counts of what a plan does to one task group (Nomad's `DesiredUpdates`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DesiredUpdates {
    pub canary: u64,
    pub destructive_update: u64,
    pub ignore: u64,
    pub in_place_update: u64,
    pub migrate: u64,
    pub place: u64,
    pub preemptions: u64,
    pub stop: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlanAnnotations {
    #[serde(rename = "DesiredTGUpdates")]
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
    pub preempted_allocs: Option<Vec<Allocation>>,
}

/// Nomad's `JobPlanResponse`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobPlanResponse {
    pub annotations: PlanAnnotations,
    pub created_evals: Option<Vec<Evaluation>>,
    pub diff: Option<JobDiff>,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: Option<BTreeMap<String, AllocMetric>>,
    pub index: u64,
    pub job_modify_index: u64,
    pub known_leader: bool,
    pub last_contact: u64,
    pub next_periodic_launch: Time,
    pub warnings: String,
}

/// The snapshot with the planned job in place of the stored one.
struct PlannedState {
    inner: SnapshotState,
    job: Job,
}

impl State for PlannedState {
    fn index(&self) -> u64 {
        self.inner.index()
    }
    fn job(&self, namespace: &str, id: &str) -> Option<&Job> {
        if namespace == self.job.namespace && id == self.job.id {
            Some(&self.job)
        } else {
            self.inner.job(namespace, id)
        }
    }
    fn job_version(&self, namespace: &str, id: &str, version: u64) -> Option<&Job> {
        if namespace == self.job.namespace && id == self.job.id && version == self.job.version {
            Some(&self.job)
        } else {
            self.inner.job_version(namespace, id, version)
        }
    }
    fn nodes(&self) -> Vec<&Node> {
        self.inner.nodes()
    }
    fn node(&self, id: &str) -> Option<&Node> {
        self.inner.node(id)
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.inner.allocs_by_job(namespace, job_id)
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.inner.allocs_by_node(node_id)
    }
    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<&Deployment> {
        self.inner.latest_deployment(namespace, job_id)
    }
    fn scheduler_config(&self, node_pool: &str) -> caravan_scheduler::SchedulerConfig {
        self.inner.scheduler_config(node_pool)
    }
}

/// Records plans and evaluations; every plan "commits" whole.
#[derive(Default)]
struct RecordingPlanner {
    plans: Vec<Plan>,
    evals: Vec<Evaluation>,
    created: Vec<Evaluation>,
}

impl Planner for RecordingPlanner {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedulerError> {
        let result = PlanResult {
            node_update: plan.node_update.clone(),
            node_allocation: plan.node_allocation.clone(),
            deployment: plan.deployment.clone(),
            deployment_updates: plan.deployment_updates.clone(),
            refresh_index: 0,
            alloc_index: plan.snapshot_index + 1,
        };
        self.plans.push(plan);
        Ok((result, None))
    }
    fn update_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.evals.push(eval.clone());
        Ok(())
    }
    fn create_eval(&mut self, eval: &Evaluation) -> Result<(), SchedulerError> {
        self.created.push(eval.clone());
        Ok(())
    }
    fn reblock_eval(&mut self, _eval: &Evaluation) -> Result<(), SchedulerError> {
        Ok(())
    }
}

/// Plans `job` (decoded, canonicalized and valid) against `snap`.
pub fn plan_job(
    snap: Arc<Snapshot>,
    defaults: Arc<caravan_structs::SchedulerConfiguration>,
    mut job: Job,
    want_diff: bool,
) -> Result<JobPlanResponse, ServerError> {
    let existing = snap.job(&job.namespace, &job.id).map(|r| r.value.clone());
    if let Some(old) = &existing {
        crate::jobs::validate_job_update(old, &job)?;
    }
    let index = existing.as_ref().map_or(0, |j| j.job_modify_index);
    let planned_index = snap.index() + 1;
    match &existing {
        Some(old) => {
            job.create_index = old.create_index;
            job.modify_index = old.modify_index;
            job.job_modify_index = old.job_modify_index;
            job.version = old.version;
            if crate::jobs::spec_changed(old, &job) {
                job.version = old.version + 1;
                job.modify_index = planned_index;
                job.job_modify_index = planned_index;
            }
        }
        None => {
            job.create_index = planned_index;
            job.modify_index = planned_index;
            job.job_modify_index = planned_index;
            job.version = 0;
        }
    }
    job.status = caravan_structs::JOB_STATUS_PENDING.to_owned();

    let mut desired: BTreeMap<String, DesiredUpdates> = job
        .task_groups
        .iter()
        .flatten()
        .map(|tg| (tg.name.clone(), DesiredUpdates::default()))
        .collect();
    let mut failed = None;
    let mut created = Vec::new();
    // Periodic and parameterized jobs are templates: only their children are scheduled.
    if !job.is_periodic() && !job.is_parameterized() {
        let now = unix_nanos();
        let eval = Evaluation {
            id: uuid::Uuid::new_v4().to_string(),
            namespace: job.namespace.clone(),
            priority: job.priority,
            r#type: job.r#type.clone(),
            triggered_by: eval_trigger::JOB_REGISTER.to_owned(),
            job_id: job.id.clone(),
            job_modify_index: job.job_modify_index,
            status: "pending".to_owned(),
            annotate_plan: true,
            create_time: now,
            modify_time: now,
            ..Evaluation::default()
        };
        let state: Arc<dyn State> = Arc::new(PlannedState {
            inner: SnapshotState::new(snap.clone(), defaults),
            job: job.clone(),
        });
        let mut planner = RecordingPlanner::default();
        let mut ctx = SchedContext::new(now, uuid::Uuid::new_v4().as_u64_pair().0);
        process_eval(&eval, state.clone(), &mut planner, &mut ctx)
            .map_err(|e| ServerError::Internal(format!("planning failed: {e}")))?;
        let live: Vec<&Allocation> = state
            .allocs_by_job(&job.namespace, &job.id)
            .into_iter()
            .filter(|a| !a.terminal_status())
            .collect();
        count_updates(&planner.plans, &live, &mut desired);
        failed = planner
            .evals
            .last()
            .and_then(|e| e.failed_tg_allocs.clone())
            .filter(|m| !m.is_empty());
        created = planner.created;
    }

    let diff = want_diff.then(|| {
        let mut diff = diff_jobs(existing.as_ref(), &job);
        annotate(&mut diff, &desired);
        diff
    });
    Ok(JobPlanResponse {
        annotations: PlanAnnotations {
            desired_tg_updates: desired,
            preempted_allocs: None,
        },
        created_evals: (!created.is_empty()).then_some(created),
        diff,
        failed_tg_allocs: failed,
        index,
        job_modify_index: index,
        known_leader: true,
        last_contact: 0,
        next_periodic_launch: next_periodic_launch(&job),
        warnings: String::new(),
    })
}

/// When an enabled periodic job would launch next (Go's zero time otherwise).
fn next_periodic_launch(job: &Job) -> Time {
    let Some(periodic) = job.periodic.as_ref().filter(|p| p.enabled) else {
        return Time::ZERO;
    };
    let now = jiff::Timestamp::from_nanosecond(i128::from(unix_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    periodic
        .next_launch(now)
        .and_then(|t| i64::try_from(t.as_nanosecond()).ok())
        .map_or(Time::ZERO, Time::from_unix_nanos)
}

/// Nomad's per-group counts, read from the recorded plans: stops by their reason, new
/// allocations that replace them, in-place updates, and what is left alone.
fn count_updates(
    plans: &[Plan],
    live: &[&Allocation],
    desired: &mut BTreeMap<String, DesiredUpdates>,
) {
    // By ID: a plan of a large job holds thousands of in-place updates.
    let live_ids: BTreeSet<&str> = live.iter().map(|a| a.id.as_str()).collect();
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    for stop in plans.iter().flat_map(|p| p.node_update.values().flatten()) {
        touched.insert(stop.id.as_str());
        let entry = desired.entry(stop.task_group.clone()).or_default();
        match stop.desired_description.as_str() {
            "alloc is being updated due to job update" => {
                entry.destructive_update += 1;
                replaced.insert(stop.id.as_str());
            }
            "alloc is being migrated" => {
                entry.migrate += 1;
                replaced.insert(stop.id.as_str());
            }
            _ => entry.stop += 1,
        }
    }
    for alloc in plans
        .iter()
        .flat_map(|p| p.node_allocation.values().flatten())
    {
        let entry = desired.entry(alloc.task_group.clone()).or_default();
        if live_ids.contains(alloc.id.as_str()) {
            touched.insert(alloc.id.as_str());
            entry.in_place_update += 1;
        } else if alloc.deployment_status.as_ref().is_some_and(|d| d.canary) {
            entry.canary += 1;
        } else if !replaced.contains(alloc.previous_allocation.as_str()) {
            entry.place += 1;
        }
    }
    for alloc in live {
        if !touched.contains(alloc.id.as_str()) {
            desired.entry(alloc.task_group.clone()).or_default().ignore += 1;
        }
    }
}

/// Nomad's `scheduler.Annotate`: each group's counts, and what its changes force.
fn annotate(diff: &mut JobDiff, desired: &BTreeMap<String, DesiredUpdates>) {
    for group in diff.task_groups.iter_mut().flatten() {
        let Some(u) = desired.get(&group.name) else {
            continue;
        };
        let counts = [
            ("ignore", u.ignore),
            ("create", u.place),
            ("migrate", u.migrate),
            ("destroy", u.stop),
            ("in-place update", u.in_place_update),
            ("create/destroy update", u.destructive_update),
            ("canary", u.canary),
            ("preemptions", u.preemptions),
        ];
        let updates: BTreeMap<String, u64> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        group.updates = (!updates.is_empty()).then_some(updates);
        if group.r#type != DIFF_TYPE_EDITED {
            continue;
        }
        for field in group.fields.iter_mut().flatten() {
            if field.name == "Count" {
                let (old, new) = (
                    field.old.parse::<i64>().unwrap_or(0),
                    field.new.parse::<i64>().unwrap_or(0),
                );
                let note = if new > old {
                    ANNOTATION_FORCES_CREATE
                } else {
                    ANNOTATION_FORCES_DESTROY
                };
                field.annotations = Some(vec![note.to_owned()]);
            }
        }
        for task in group.tasks.iter_mut().flatten() {
            let note = match task.r#type.as_str() {
                DIFF_TYPE_ADDED => ANNOTATION_FORCES_CREATE,
                DIFF_TYPE_DELETED => ANNOTATION_FORCES_DESTROY,
                DIFF_TYPE_EDITED if task_change_is_destructive(task) => {
                    ANNOTATION_FORCES_DESTRUCTIVE_UPDATE
                }
                DIFF_TYPE_EDITED => ANNOTATION_FORCES_INPLACE_UPDATE,
                _ => continue,
            };
            task.annotations = Some(vec![note.to_owned()]);
        }
    }
}

/// Whether a task's changes need a new allocation: any field but `KillTimeout`, and any block
/// but services, constraints, affinities and log rotation (Nomad's `annotateTask`).
fn task_change_is_destructive(task: &caravan_structs::TaskDiff) -> bool {
    let field = task
        .fields
        .iter()
        .flatten()
        .any(|f| f.name != "KillTimeout");
    let object = task.objects.iter().flatten().any(|o| {
        !matches!(
            o.name.as_str(),
            "Service" | "Constraint" | "Affinity" | "LogConfig"
        )
    });
    field || object
}
