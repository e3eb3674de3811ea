//! The allocation reconciler of the service and batch schedulers: compares a job's groups
//! with the allocations it has and decides what to stop, what to update in place or
//! destructively, what to place (with which names), what to reschedule now or later, and
//! which deployment tracks the change (Nomad's `allocReconciler`).
//!
//! Deployments are created and cancelled as Nomad does, but the rolling-update engine —
//! `max_parallel` gating, canaries, promotion, health — is not here yet: every destructive
//! update and placement is made at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use caravan_structs::{
    ALLOC_CLIENT_STATUS_COMPLETE, ALLOC_CLIENT_STATUS_FAILED, ALLOC_CLIENT_STATUS_LOST,
    ALLOC_CLIENT_STATUS_UNKNOWN, ALLOC_DESIRED_STATUS_EVICT, ALLOC_DESIRED_STATUS_STOP, Allocation,
    DEPLOYMENT_STATUS_CANCELLED, DEPLOYMENT_STATUS_FAILED, DEPLOYMENT_STATUS_INITIALIZING,
    DEPLOYMENT_STATUS_PAUSED, DEPLOYMENT_STATUS_PENDING, DEPLOYMENT_STATUS_RUNNING,
    DEPLOYMENT_STATUS_SUCCESSFUL, Deployment, DeploymentState, EVAL_STATUS_PENDING, Evaluation,
    JOB_TYPE_SERVICE, Job, NODE_STATUS_READY, Node, TaskGroup, Time, eval_trigger,
};

use crate::interfaces::State;
use crate::plan::DeploymentStatusUpdate;
use crate::reschedule::{BATCHED_FAILED_ALLOC_WINDOW, last_reschedule_failed, reschedule_decision};
use crate::util::{
    ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NOT_NEEDED, ALLOC_UPDATING, RESCHEDULING_FOLLOWUP_EVAL_DESC,
    alloc_index, alloc_name,
};

pub const DEPLOYMENT_DESC_RUNNING: &str = "Deployment is running";
pub const DEPLOYMENT_DESC_STOPPED_JOB: &str = "Cancelled because job is stopped";
pub const DEPLOYMENT_DESC_NEWER_JOB: &str = "Cancelled due to newer version of job";
pub const DEPLOYMENT_DESC_SUCCESSFUL: &str = "Deployment completed successfully";

/// How an existing allocation follows a new job version.
#[derive(Debug, Clone)]
pub enum UpdateKind {
    /// Nothing to do.
    Ignore,
    /// Stop it and place a replacement.
    Destructive,
    /// Replace it in the plan with this updated copy.
    InPlace(Box<Allocation>),
}

/// What the reconciler needs from the scheduler: in-place update checks (which run the
/// placement stack on the allocation's node) and IDs.
pub trait ReconcileHost<'s> {
    fn update(&mut self, existing: &'s Allocation, tg: &'s TaskGroup) -> UpdateKind;
    fn uuid(&mut self) -> String;
}

/// An allocation to place.
#[derive(Debug, Clone)]
pub struct PlaceRequest<'s> {
    pub name: String,
    pub tg: &'s TaskGroup,
    /// The allocation this one replaces (rescheduled, lost, migrated, updated).
    pub previous: Option<&'s Allocation>,
    /// Replaces a failed allocation: carries a reschedule tracker; the failed one is stopped
    /// when (and only when) the replacement is placed.
    pub reschedule: bool,
    /// Replaces a lost allocation.
    pub lost: bool,
    /// Destructive update: stop `previous` with this description, undone if no node fits.
    pub stop_previous: Option<&'static str>,
}

/// An allocation to stop.
#[derive(Debug, Clone)]
pub struct StopRequest<'s> {
    pub alloc: &'s Allocation,
    pub client_status: &'static str,
    pub desc: &'static str,
}

/// Names in use in a group, to hand out the lowest free indexes and retire the highest.
#[derive(Debug, Clone)]
pub struct NameIndex {
    job: String,
    group: String,
    count: u64,
    used: BTreeSet<u64>,
    duplicates: HashMap<u64, u32>,
}

impl NameIndex {
    pub fn new<'a>(
        job: &str,
        group: &str,
        count: i64,
        allocs: impl IntoIterator<Item = &'a Allocation>,
    ) -> NameIndex {
        let mut n = NameIndex {
            job: job.to_owned(),
            group: group.to_owned(),
            count: u64::try_from(count).unwrap_or(0),
            used: BTreeSet::new(),
            duplicates: HashMap::new(),
        };
        for a in allocs {
            let idx = alloc_index(&a.name);
            if !n.used.insert(idx) {
                *n.duplicates.entry(idx).or_insert(0) += 1;
            }
        }
        n
    }

    fn name(&self, idx: u64) -> String {
        alloc_name(&self.job, &self.group, idx)
    }

    /// Takes and returns the names of the `n` highest indexes in use.
    pub fn highest(&mut self, n: usize) -> HashSet<String> {
        let top: Vec<u64> = self.used.iter().rev().take(n).copied().collect();
        top.into_iter()
            .map(|i| {
                self.used.remove(&i);
                self.name(i)
            })
            .collect()
    }

    /// Takes `n` names: the lowest free indexes below the count, then (over-full groups)
    /// indexes from zero again.
    pub fn next(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        let mut idx = 0;
        while out.len() < n && idx < self.count {
            if self.used.insert(idx) {
                out.push(self.name(idx));
            }
            idx += 1;
        }
        let mut i = 0;
        while out.len() < n {
            self.used.insert(i);
            out.push(self.name(i));
            i += 1;
        }
        out
    }

    pub fn is_duplicate(&self, idx: u64) -> bool {
        self.duplicates.get(&idx).is_some_and(|n| *n > 0)
    }

    pub fn unset(&mut self, idx: u64) {
        match self.duplicates.get_mut(&idx) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.duplicates.remove(&idx);
                }
            }
            None => {
                self.used.remove(&idx);
            }
        }
    }
}

/// The reconciler's decisions.
#[derive(Debug, Default)]
pub struct Reconciled<'s> {
    pub place: Vec<PlaceRequest<'s>>,
    pub destructive: Vec<PlaceRequest<'s>>,
    /// (existing, its updated copy).
    pub inplace: Vec<(&'s Allocation, Allocation)>,
    pub attribute_updates: Vec<(&'s Allocation, Allocation)>,
    pub stop: Vec<StopRequest<'s>>,
    pub followup_evals: Vec<Evaluation>,
    /// The deployment new allocations join (new or existing, active).
    pub deployment: Option<Deployment>,
    pub deployment_created: bool,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    pub name_indexes: HashMap<String, NameIndex>,
}

/// Inputs of one reconciliation.
pub struct Reconciler<'s, 'h> {
    pub state: &'s dyn State,
    pub host: &'h mut dyn ReconcileHost<'s>,
    pub job: Option<&'s Job>,
    pub namespace: &'s str,
    pub job_id: &'s str,
    pub batch: bool,
    pub deployment: Option<Deployment>,
    pub tainted: &'h HashMap<String, Option<&'s Node>>,
    pub eval_id: &'s str,
    pub eval_priority: i64,
    pub now: i64,
    jobs: HashMap<u64, Option<&'s Job>>,
    old_deployment: Option<Deployment>,
    paused: bool,
    failed: bool,
    result: Reconciled<'s>,
}

/// Sorts allocations by name index, then ID, so every decision is reproducible.
fn sorted(mut v: Vec<&Allocation>) -> Vec<&Allocation> {
    v.sort_by(|a, b| {
        alloc_index(&a.name)
            .cmp(&alloc_index(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    v
}

fn ran_successfully(a: &Allocation) -> bool {
    a.task_states
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.values().all(|t| t.successful()))
}

/// Whether a live-looking allocation counts (untainted) or is dropped from the group
/// (ignore) before rescheduling is considered (Nomad's `shouldFilter`).
fn should_filter(a: &Allocation, batch: bool) -> (bool, bool) {
    let stopped = a.desired_status == ALLOC_DESIRED_STATUS_STOP;
    let evicted = a.desired_status == ALLOC_DESIRED_STATUS_EVICT;
    if batch {
        if stopped {
            if ran_successfully(a) {
                return (true, false);
            }
            return (false, !last_reschedule_failed(a));
        }
        if evicted {
            return (false, true);
        }
        return (a.client_status != ALLOC_CLIENT_STATUS_FAILED, false);
    }
    if stopped || evicted {
        return (false, !last_reschedule_failed(a));
    }
    if a.client_status == ALLOC_CLIENT_STATUS_COMPLETE
        || a.client_status == ALLOC_CLIENT_STATUS_LOST
    {
        return (false, true);
    }
    (false, false)
}

fn is_update_empty(tg: &TaskGroup) -> bool {
    tg.update.as_ref().is_none_or(|u| u.max_parallel == 0)
}

impl<'s, 'h> Reconciler<'s, 'h> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: &'s dyn State,
        host: &'h mut dyn ReconcileHost<'s>,
        job: Option<&'s Job>,
        namespace: &'s str,
        job_id: &'s str,
        batch: bool,
        deployment: Option<Deployment>,
        tainted: &'h HashMap<String, Option<&'s Node>>,
        eval_id: &'s str,
        eval_priority: i64,
        now: i64,
    ) -> Self {
        Reconciler {
            state,
            host,
            job,
            namespace,
            job_id,
            batch,
            deployment,
            tainted,
            eval_id,
            eval_priority,
            now,
            jobs: HashMap::new(),
            old_deployment: None,
            paused: false,
            failed: false,
            result: Reconciled::default(),
        }
    }

    /// The job version an allocation runs.
    fn alloc_job(&mut self, a: &Allocation) -> Option<&'s Job> {
        let state = self.state;
        let (ns, id) = (self.namespace, self.job_id);
        *self
            .jobs
            .entry(a.job_version)
            .or_insert_with(|| state.job_version(ns, id, a.job_version))
    }

    /// Reconciles every group of the job with `allocs` (all of the job's allocations).
    pub fn compute(mut self, allocs: Vec<&'s Allocation>) -> Reconciled<'s> {
        let mut groups: BTreeMap<String, Vec<&'s Allocation>> = BTreeMap::new();
        for a in allocs {
            groups.entry(a.task_group.clone()).or_default().push(a);
        }
        let live_job = self.job.filter(|j| !j.stop);
        if let Some(job) = live_job {
            for tg in job.task_groups.iter().flatten() {
                groups.entry(tg.name.clone()).or_default();
            }
        }
        self.cancel_unneeded_deployments();
        let Some(job) = live_job else {
            for (_, all) in groups {
                let live = all.into_iter().filter(|a| !a.terminal_status()).collect();
                self.stop_all(live);
            }
            return self.result;
        };
        if let Some(d) = &self.deployment {
            self.paused = matches!(
                d.status.as_str(),
                DEPLOYMENT_STATUS_PAUSED
                    | DEPLOYMENT_STATUS_PENDING
                    | DEPLOYMENT_STATUS_INITIALIZING
            );
            self.failed = d.status == DEPLOYMENT_STATUS_FAILED;
        }
        let mut complete = true;
        for (name, all) in groups {
            complete &= self.compute_group(job, &name, all);
        }
        if complete
            && !self.result.deployment_created
            && let Some(d) = self.deployment.as_ref().filter(|d| d.active())
        {
            self.result.deployment_updates.push(DeploymentStatusUpdate {
                deployment_id: d.id.clone(),
                status: DEPLOYMENT_STATUS_SUCCESSFUL.to_owned(),
                status_description: DEPLOYMENT_DESC_SUCCESSFUL.to_owned(),
            });
        }
        self.result.deployment = self.deployment.filter(|d| d.active());
        self.result
    }

    fn cancel_unneeded_deployments(&mut self) {
        let stopped = self.job.is_none_or(|j| j.stop);
        let Some(d) = self.deployment.take() else {
            return;
        };
        if stopped {
            if d.active() {
                self.result.deployment_updates.push(DeploymentStatusUpdate {
                    deployment_id: d.id.clone(),
                    status: DEPLOYMENT_STATUS_CANCELLED.to_owned(),
                    status_description: DEPLOYMENT_DESC_STOPPED_JOB.to_owned(),
                });
            }
            self.old_deployment = Some(d);
            return;
        }
        let Some(job) = self.job else { return };
        if d.job_create_index != job.create_index || d.job_version != job.version {
            if d.active() {
                self.result.deployment_updates.push(DeploymentStatusUpdate {
                    deployment_id: d.id.clone(),
                    status: DEPLOYMENT_STATUS_CANCELLED.to_owned(),
                    status_description: DEPLOYMENT_DESC_NEWER_JOB.to_owned(),
                });
            }
            self.old_deployment = Some(d);
            return;
        }
        if d.status == DEPLOYMENT_STATUS_SUCCESSFUL {
            self.old_deployment = Some(d);
            return;
        }
        self.deployment = Some(d);
    }

    /// Splits allocations by their node: untainted, to migrate, lost.
    #[allow(clippy::type_complexity)]
    fn filter_by_tainted(
        &self,
        all: Vec<&'s Allocation>,
    ) -> (
        Vec<&'s Allocation>,
        Vec<&'s Allocation>,
        Vec<&'s Allocation>,
    ) {
        let (mut untainted, mut migrate, mut lost) = (Vec::new(), Vec::new(), Vec::new());
        for a in all {
            if a.terminal_status() {
                untainted.push(a);
                continue;
            }
            if a.desired_transition.migrate == Some(true) {
                migrate.push(a);
                continue;
            }
            match self.tainted.get(&a.node_id) {
                None => untainted.push(a),
                Some(None) => lost.push(a),
                Some(Some(n)) if n.status == NODE_STATUS_READY => untainted.push(a),
                Some(Some(_)) => lost.push(a),
            }
        }
        (untainted, migrate, lost)
    }

    fn stop_all(&mut self, live: Vec<&'s Allocation>) {
        let (untainted, migrate, lost) = self.filter_by_tainted(sorted(live));
        for a in untainted.into_iter().chain(migrate) {
            self.stop(a, "", ALLOC_NOT_NEEDED);
        }
        for a in lost {
            self.stop(a, ALLOC_CLIENT_STATUS_LOST, ALLOC_LOST);
        }
    }

    fn stop(&mut self, alloc: &'s Allocation, client_status: &'static str, desc: &'static str) {
        self.result.stop.push(StopRequest {
            alloc,
            client_status,
            desc,
        });
    }

    /// Reconciles one group; returns whether the deployment is complete for it.
    fn compute_group(&mut self, job: &'s Job, name: &str, all: Vec<&'s Allocation>) -> bool {
        let Some(tg) = job.lookup_task_group(name) else {
            let live = all.into_iter().filter(|a| !a.terminal_status()).collect();
            self.stop_all(live);
            return true;
        };
        let existing_dstate = self
            .deployment
            .as_ref()
            .and_then(|d| d.task_groups.as_ref())
            .and_then(|g| g.get(name))
            .cloned();

        // Terminal batch allocations of older versions are history.
        let all: Vec<&'s Allocation> = if self.batch {
            all.into_iter()
                .filter(|a| !(a.job_version < job.version && a.terminal_status()))
                .collect()
        } else {
            all
        };
        let all = sorted(all);
        let (untainted, mut migrate, lost) = self.filter_by_tainted(all.clone());
        let (mut untainted, reschedule_now, reschedule_later) =
            self.filter_by_rescheduleable(job, untainted);
        self.create_reschedule_later_evals(job, reschedule_later.clone());

        let mut name_index = NameIndex::new(
            &job.id,
            &tg.name,
            tg.count,
            untainted
                .iter()
                .chain(&migrate)
                .chain(&reschedule_now)
                .chain(&lost)
                .copied(),
        );

        let stopped = self.compute_stop(job, tg, &mut name_index, &untainted, &mut migrate, &lost);
        untainted.retain(|a| !stopped.contains(a.id.as_str()));

        // In-place and destructive updates.
        let mut destructive = Vec::new();
        let mut inplace_count = 0;
        for &a in &untainted {
            if a.job_version == job.version {
                continue;
            }
            match self.host.update(a, tg) {
                UpdateKind::Ignore => {}
                UpdateKind::Destructive => destructive.push(a),
                UpdateKind::InPlace(updated) => {
                    inplace_count += 1;
                    self.result.inplace.push((a, *updated));
                }
            }
        }

        let place = self.compute_placements(
            tg,
            &mut name_index,
            &untainted,
            &migrate,
            &reschedule_now,
            &lost,
        );
        let place_ready = !self.paused && !self.failed;
        let place_count = place.len();
        if place_ready {
            self.result.place.extend(place);
        } else {
            // Lost and failed allocations are replaced even when the deployment holds.
            let failed_deployment = self
                .deployment
                .as_ref()
                .filter(|_| self.failed)
                .map(|d| d.id.clone());
            for p in place {
                let part_of_failed = failed_deployment
                    .as_ref()
                    .zip(p.previous)
                    .is_some_and(|(d, prev)| *d == prev.deployment_id);
                if p.lost || (p.reschedule && !part_of_failed) {
                    self.result.place.push(p);
                }
            }
        }
        if place_ready {
            for a in &destructive {
                self.result.destructive.push(PlaceRequest {
                    name: a.name.clone(),
                    tg,
                    previous: Some(a),
                    reschedule: false,
                    lost: false,
                    stop_previous: Some(ALLOC_UPDATING),
                });
            }
        }
        for a in &migrate {
            self.stop(a, "", ALLOC_MIGRATING);
            self.result.place.push(PlaceRequest {
                name: a.name.clone(),
                tg,
                previous: Some(a),
                reschedule: false,
                lost: false,
                stop_previous: None,
            });
        }

        let changes = place_count + destructive.len() + inplace_count;
        self.create_deployment(
            job,
            tg,
            existing_dstate.is_some(),
            &all,
            changes,
            !destructive.is_empty(),
        );
        self.result.name_indexes.insert(tg.name.clone(), name_index);

        let nothing_left = destructive.is_empty()
            && inplace_count == 0
            && place_count == 0
            && migrate.is_empty()
            && reschedule_now.is_empty()
            && reschedule_later.is_empty();
        if !nothing_left {
            return false;
        }
        match self
            .deployment
            .as_ref()
            .and_then(|d| d.task_groups.as_ref())
            .and_then(|g| g.get(name))
        {
            Some(ds) => {
                ds.healthy_allocs >= ds.desired_total.max(ds.desired_canaries)
                    && (ds.desired_canaries == 0 || ds.promoted)
            }
            None => self.deployment.is_some(),
        }
    }

    #[allow(clippy::type_complexity)]
    fn filter_by_rescheduleable(
        &mut self,
        job: &'s Job,
        untainted: Vec<&'s Allocation>,
    ) -> (
        Vec<&'s Allocation>,
        Vec<&'s Allocation>,
        Vec<(&'s Allocation, i64)>,
    ) {
        let (mut keep, mut now, mut later) = (Vec::new(), Vec::new(), Vec::new());
        for a in untainted {
            if !a.next_allocation.is_empty() && a.terminal_status() {
                continue;
            }
            let (counts, ignore) = should_filter(a, self.batch);
            if counts {
                keep.push(a);
                continue;
            }
            if ignore {
                continue;
            }
            let failed_like = a.client_status == ALLOC_CLIENT_STATUS_FAILED
                || a.client_status == ALLOC_CLIENT_STATUS_LOST
                || a.client_status == ALLOC_CLIENT_STATUS_UNKNOWN
                || a.desired_transition.reschedule == Some(true)
                || a.desired_transition.force_reschedule == Some(true);
            if !failed_like {
                keep.push(a);
                continue;
            }
            let alloc_job = self.alloc_job(a).unwrap_or(job);
            let policy = alloc_job
                .lookup_task_group(&a.task_group)
                .and_then(|g| g.reschedule_policy.as_ref());
            let (resched_now, resched_later, at) = reschedule_decision(
                a,
                policy,
                &job.r#type,
                self.now,
                self.eval_id,
                self.deployment.as_ref(),
            );
            if resched_now {
                now.push(a);
                continue;
            }
            keep.push(a);
            if resched_later {
                later.push((a, at));
            }
        }
        (keep, now, later)
    }

    /// One follow-up eval per window of due times; each waiting allocation gets its ID.
    fn create_reschedule_later_evals(&mut self, job: &Job, mut later: Vec<(&'s Allocation, i64)>) {
        if later.is_empty() {
            return;
        }
        later.sort_by_key(|(a, t)| (*t, a.id.clone()));
        let mut batch_start = later[0].1;
        let mut eval = self.followup_eval(job, batch_start);
        for (a, t) in later {
            if t - batch_start >= BATCHED_FAILED_ALLOC_WINDOW {
                self.result.followup_evals.push(eval);
                batch_start = t;
                eval = self.followup_eval(job, batch_start);
            }
            let mut updated = a.clone();
            updated.followup_eval_id = eval.id.clone();
            self.result.attribute_updates.push((a, updated));
        }
        self.result.followup_evals.push(eval);
    }

    fn followup_eval(&mut self, job: &Job, wait_until: i64) -> Evaluation {
        Evaluation {
            id: self.host.uuid(),
            namespace: job.namespace.clone(),
            priority: self.eval_priority,
            r#type: job.r#type.clone(),
            triggered_by: eval_trigger::RETRY_FAILED_ALLOC.to_owned(),
            job_id: job.id.clone(),
            job_modify_index: job.modify_index,
            status: EVAL_STATUS_PENDING.to_owned(),
            status_description: RESCHEDULING_FOLLOWUP_EVAL_DESC.to_owned(),
            wait_until: Time::from_unix_nanos(wait_until),
            create_time: self.now,
            modify_time: self.now,
            ..Evaluation::default()
        }
    }

    /// Stops lost allocations and whatever exceeds the count (highest names first,
    /// migrating ones before others); returns the IDs stopped.
    fn compute_stop(
        &mut self,
        job: &Job,
        tg: &TaskGroup,
        names: &mut NameIndex,
        untainted: &[&'s Allocation],
        migrate: &mut Vec<&'s Allocation>,
        lost: &[&'s Allocation],
    ) -> HashSet<&'s str> {
        let mut stopped: HashSet<&'s str> = HashSet::new();
        for &a in lost {
            self.stop(a, ALLOC_CLIENT_STATUS_LOST, ALLOC_LOST);
            stopped.insert(&a.id);
        }
        let known = untainted
            .iter()
            .filter(|a| a.client_status != ALLOC_CLIENT_STATUS_UNKNOWN)
            .count();
        let count = usize::try_from(tg.count).unwrap_or(0);
        let mut remove = (known + migrate.len()).saturating_sub(count);
        if remove == 0 {
            return stopped;
        }
        if !migrate.is_empty() {
            let mut migrating =
                NameIndex::new(&job.id, &tg.name, tg.count, migrate.iter().copied());
            let drop = migrating.highest(remove);
            let mut kept = Vec::new();
            for &a in migrate.iter() {
                if remove > 0 && drop.contains(&a.name) {
                    self.stop(a, "", ALLOC_NOT_NEEDED);
                    stopped.insert(&a.id);
                    names.unset(alloc_index(&a.name));
                    remove -= 1;
                } else {
                    kept.push(a);
                }
            }
            *migrate = kept;
            if remove == 0 {
                return stopped;
            }
        }
        let live: Vec<&'s Allocation> = untainted
            .iter()
            .copied()
            .filter(|a| !a.terminal_status())
            .collect();
        let drop = names.highest(remove);
        for &a in live.iter().rev() {
            if remove == 0 {
                return stopped;
            }
            if drop.contains(&a.name) {
                self.stop(a, "", ALLOC_NOT_NEEDED);
                stopped.insert(&a.id);
                remove -= 1;
            }
        }
        // Duplicate names can leave more than the count: stop from the highest index.
        for &a in live.iter().rev() {
            if remove == 0 {
                break;
            }
            if stopped.insert(&a.id) {
                self.stop(a, "", ALLOC_NOT_NEEDED);
                remove -= 1;
            }
        }
        stopped
    }

    fn compute_placements(
        &mut self,
        tg: &'s TaskGroup,
        names: &mut NameIndex,
        untainted: &[&'s Allocation],
        migrate: &[&'s Allocation],
        reschedule: &[&'s Allocation],
        lost: &[&'s Allocation],
    ) -> Vec<PlaceRequest<'s>> {
        let mut place = Vec::new();
        for &a in reschedule {
            place.push(PlaceRequest {
                name: a.name.clone(),
                tg,
                previous: Some(a),
                reschedule: true,
                lost: false,
                stop_previous: None,
            });
        }
        let count = usize::try_from(tg.count).unwrap_or(0);
        let mut existing = untainted.len() + migrate.len() + reschedule.len();
        for &a in lost {
            if existing >= count {
                break;
            }
            existing += 1;
            place.push(PlaceRequest {
                name: a.name.clone(),
                tg,
                previous: Some(a),
                reschedule: false,
                lost: true,
                stop_previous: None,
            });
        }
        if existing < count {
            for name in names.next(count - existing) {
                place.push(PlaceRequest {
                    name,
                    tg,
                    previous: None,
                    reschedule: false,
                    lost: false,
                    stop_previous: None,
                });
            }
        }
        place
    }

    /// Creates the deployment of a new job version of a service job with an update block.
    fn create_deployment(
        &mut self,
        job: &Job,
        tg: &TaskGroup,
        existing: bool,
        all: &[&'s Allocation],
        changes: usize,
        destructive: bool,
    ) {
        if self.batch
            || job.r#type != JOB_TYPE_SERVICE
            || existing
            || is_update_empty(tg)
            || changes == 0
        {
            return;
        }
        let updating_spec = destructive || !self.result.inplace.is_empty();
        let had_running = all.iter().any(|a| a.job_version == job.version);
        if had_running && !updating_spec {
            return;
        }
        let strategy = tg.update.clone().unwrap_or_default();
        let dstate = DeploymentState {
            auto_promote: strategy.auto_promote,
            auto_revert: strategy.auto_revert,
            desired_total: tg.count,
            progress_deadline: strategy.progress_deadline,
            ..DeploymentState::default()
        };
        if self.deployment.is_none() {
            let id = self.host.uuid();
            self.deployment = Some(Deployment {
                id,
                namespace: job.namespace.clone(),
                job_id: job.id.clone(),
                job_version: job.version,
                job_modify_index: job.modify_index,
                job_spec_modify_index: job.job_modify_index,
                job_create_index: job.create_index,
                status: DEPLOYMENT_STATUS_RUNNING.to_owned(),
                status_description: DEPLOYMENT_DESC_RUNNING.to_owned(),
                task_groups: Some(BTreeMap::new()),
                eval_priority: self.eval_priority,
                create_time: self.now,
                modify_time: self.now,
                ..Deployment::default()
            });
            self.result.deployment_created = true;
        }
        if let Some(d) = self.deployment.as_mut() {
            d.task_groups
                .get_or_insert_with(BTreeMap::new)
                .insert(tg.name.clone(), dstate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(name: &str) -> Allocation {
        Allocation {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn name_index() {
        let allocs = [alloc("j.g[0]"), alloc("j.g[2]"), alloc("j.g[2]")];
        let mut n = NameIndex::new("j", "g", 4, allocs.iter());
        assert!(n.is_duplicate(2));
        assert_eq!(n.next(2), vec!["j.g[1]", "j.g[3]"]);
        assert_eq!(n.next(1), vec!["j.g[0]"]);
        let mut n = NameIndex::new("j", "g", 4, allocs.iter());
        let top = n.highest(1);
        assert!(top.contains("j.g[2]"));
    }
}
