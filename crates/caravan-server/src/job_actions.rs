//! The job writes beside registration: revert to an earlier version, mark a version stable, and
//! dispatch a child of a parameterized job (Nomad's `Job.Revert`, `Job.Stable`,
//! `Job.Dispatch`). Each runs inside one write transaction, so its checks and its effect see
//! the same state.

use std::collections::{BTreeMap, BTreeSet};

use caravan_proto::v1;
use caravan_state::{Txn, job_key};
use caravan_structs::{
    JOB_TRACKED_SCALING_EVENTS, JOB_TYPE_SYSTEM, Job, JobScaleStatus, JobScalingEvents,
    ScalingEvent, TaskGroupScaleStatus, eval_trigger,
};

use crate::error::ServerError;
use crate::jobs::{JobWrite, job_eval, refresh_job_status, register_spec, upsert_job};
use crate::nodes::unix_nanos;

/// Largest dispatch payload Nomad accepts (`DispatchPayloadSizeLimit`).
pub const DISPATCH_PAYLOAD_SIZE_LIMIT: usize = 16 * 1024;

/// Registers version `req.job_version` of a job again, as a new version.
pub(crate) fn revert(
    txn: &mut Txn<'_>,
    ns: &str,
    req: &v1::RevertJobRequest,
) -> Result<JobWrite, ServerError> {
    let Some(current) = txn.snapshot().job(ns, &req.job_id).map(|r| r.value.clone()) else {
        return Err(ServerError::NotFound(format!(
            "job {:?} not found",
            req.job_id
        )));
    };
    if req.job_version == current.version {
        return Err(ServerError::BadRequest(
            "can't revert to current version".to_owned(),
        ));
    }
    let Some(old) = txn
        .snapshot()
        .job_version(ns, &req.job_id, req.job_version)
        .cloned()
    else {
        return Err(ServerError::NotFound(format!(
            "job {:?} in namespace {:?} at version {} not found",
            req.job_id, ns, req.job_version
        )));
    };
    if let Some(prior) = req.enforce_prior_version
        && prior != current.version
    {
        return Err(ServerError::Conflict(format!(
            "Current job has version {}; enforcing version {prior}",
            current.version
        )));
    }
    let mut job = old;
    job.stable = false;
    register_spec(txn, job, Some(current), None)
}

/// Sets the `Stable` flag of one version (and of the job when it is the current version).
pub fn set_stability(
    txn: &mut Txn<'_>,
    ns: &str,
    req: &v1::SetJobStabilityRequest,
) -> Result<(), ServerError> {
    let Some(version) = txn
        .snapshot()
        .job_version(ns, &req.job_id, req.job_version)
        .cloned()
    else {
        return Err(ServerError::NotFound(format!(
            "job {:?} in namespace {:?} at version {} not found",
            req.job_id, ns, req.job_version
        )));
    };
    let index = txn.index();
    if version.stable != req.stable {
        let mut version = version;
        version.stable = req.stable;
        version.modify_index = index;
        txn.put(caravan_state::JobVersion(version))?;
    }
    if let Some(current) = txn.snapshot().job(ns, &req.job_id).map(|r| r.value.clone())
        && current.version == req.job_version
        && current.stable != req.stable
    {
        let mut job = current;
        job.stable = req.stable;
        job.modify_index = index;
        txn.put(job)?;
    }
    Ok(())
}

/// What a dispatch wrote.
pub struct Dispatched {
    pub job_id: String,
    pub job_create_index: u64,
    pub eval_id: String,
    /// The index of the earlier child an idempotency token found; `None` for a new child.
    pub existing_index: Option<u64>,
}

/// Nomad's checks of a dispatch against its parameterized job (`validateDispatchRequest`).
pub fn validate_dispatch(req: &v1::DispatchJobRequest, parent: &Job) -> Result<(), ServerError> {
    let bad = |m: String| Err(ServerError::BadRequest(m));
    let Some(config) = &parent.parameterized_job else {
        return bad(format!(
            "Specified job {:?} is not a parameterized job",
            req.job_id
        ));
    };
    let has_payload = !req.payload.is_empty();
    match config.payload.as_str() {
        "required" if !has_payload => {
            return bad("Payload is not provided but required by parameterized job".into());
        }
        "forbidden" if has_payload => {
            return bad("Payload provided but forbidden by parameterized job".into());
        }
        _ => {}
    }
    if req.payload.len() > DISPATCH_PAYLOAD_SIZE_LIMIT {
        return bad(format!(
            "Payload exceeds maximum size; {} > {DISPATCH_PAYLOAD_SIZE_LIMIT}",
            req.payload.len()
        ));
    }
    let required: BTreeSet<&str> = config
        .meta_required
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let optional: BTreeSet<&str> = config
        .meta_optional
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut unpermitted: Vec<&str> = req
        .meta
        .keys()
        .map(String::as_str)
        .filter(|k| !required.contains(k) && !optional.contains(k))
        .collect();
    unpermitted.sort_unstable();
    if !unpermitted.is_empty() {
        return bad(format!(
            "Dispatch request included unpermitted metadata keys: [{}]",
            unpermitted.join(" ")
        ));
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !req.meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return bad(format!(
            "Dispatch did not provide required meta keys: [{}]",
            missing.join(" ")
        ));
    }
    Ok(())
}

/// Registers a child of the parameterized job `req.job_id` and its evaluation.
pub fn dispatch(
    txn: &mut Txn<'_>,
    ns: &str,
    req: &v1::DispatchJobRequest,
) -> Result<Dispatched, ServerError> {
    if req.job_id.is_empty() {
        return Err(ServerError::BadRequest(
            "missing parameterized job ID".to_owned(),
        ));
    }
    let Some(parent) = txn.snapshot().job(ns, &req.job_id).map(|r| r.value.clone()) else {
        return Err(ServerError::NotFound(
            "parameterized job not found".to_owned(),
        ));
    };
    if !parent.is_parameterized() {
        return Err(ServerError::BadRequest(format!(
            "Specified job {:?} is not a parameterized job",
            req.job_id
        )));
    }
    if parent.stop {
        return Err(ServerError::BadRequest(format!(
            "Specified job {:?} is stopped",
            req.job_id
        )));
    }
    validate_dispatch(req, &parent)?;
    if !req.idempotency_token.is_empty() {
        let earlier = children_of(txn, ns, &parent.id)
            .into_iter()
            .find(|child| child.dispatch_idempotency_token == req.idempotency_token);
        if let Some(child) = earlier {
            return Ok(Dispatched {
                job_id: child.id,
                job_create_index: child.create_index,
                eval_id: String::new(),
                existing_index: Some(child.modify_index),
            });
        }
    }

    let mut child = parent.clone();
    child.id = dispatched_id(&parent.id, &req.id_prefix_template, unix_nanos());
    child.name = child.id.clone();
    child.parent_id = parent.id.clone();
    child.dispatched = true;
    child.status = String::new();
    child.status_description = String::new();
    child.dispatch_idempotency_token = req.idempotency_token.clone();
    child.stable = false;
    if !req.meta.is_empty() {
        let meta = child.meta.get_or_insert_with(BTreeMap::new);
        meta.extend(req.meta.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    child.payload = (!req.payload.is_empty()).then(|| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&req.payload)
    });
    let child = upsert_job(txn, child, None)?;
    let mut eval_id = String::new();
    if let Some(eval) = job_eval(&child, eval_trigger::JOB_REGISTER, None) {
        eval_id = eval.id.clone();
        txn.put(eval)?;
    }
    refresh_job_status(txn, ns, &child.id)?;
    Ok(Dispatched {
        job_id: child.id,
        job_create_index: child.create_index,
        eval_id,
        existing_index: None,
    })
}

/// `<parent>/dispatch-[<template>-]<unix seconds>-<8 hex>` (Nomad's `DispatchedID`).
fn dispatched_id(parent: &str, template: &str, now_nanos: i64) -> String {
    let secs = now_nanos.div_euclid(1_000_000_000);
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let short = &uuid[..8];
    if template.is_empty() {
        format!("{parent}/dispatch-{secs}-{short}")
    } else {
        format!("{parent}/dispatch-{template}-{secs}-{short}")
    }
}

/// The jobs whose parent is `parent` (dispatched or periodic children), by ID.
pub fn children_of(txn: &Txn<'_>, ns: &str, parent: &str) -> Vec<Job> {
    let start = format!("{}/", job_key(ns, parent));
    txn.snapshot()
        .jobs()
        .range_from(&start)
        .take_while(|(key, _)| key.starts_with(&start))
        .map(|(_, row)| &row.value)
        .filter(|job| job.parent_id == parent)
        .cloned()
        .collect()
}

/// Deployment statuses during which a job may not be scaled.
const ACTIVE_DEPLOYMENT: &[&str] = &[
    "running",
    "paused",
    "pending",
    "blocked",
    "unblocking",
    "initializing",
];

/// Sets a group's count (a new job version and a `job-scaling` evaluation) and records the
/// scaling event; with no count, only the event (Nomad's `Job.Scale`).
pub(crate) fn scale(
    txn: &mut Txn<'_>,
    ns: &str,
    req: &v1::ScaleJobRequest,
) -> Result<JobWrite, ServerError> {
    let Some(job) = txn.snapshot().job(ns, &req.job_id).map(|r| r.value.clone()) else {
        return Err(ServerError::NotFound(format!(
            "job {:?} not found",
            req.job_id
        )));
    };
    if job.r#type == JOB_TYPE_SYSTEM && req.count.is_some_and(|c| c > 1) {
        return Err(ServerError::BadRequest(
            "jobs of type \"system\" can only be scaled between 0 and 1".to_owned(),
        ));
    }
    let Some(group) = job.lookup_task_group(&req.group).cloned() else {
        return Err(ServerError::BadRequest(format!(
            "task group {:?} specified for scaling does not exist in job",
            req.group
        )));
    };
    let meta = if req.meta_json.is_empty() {
        None
    } else {
        serde_json::from_slice(&req.meta_json)
            .map_err(|e| ServerError::BadRequest(format!("Meta must be an object: {e}")))?
    };
    let now = unix_nanos();
    let mut event = ScalingEvent {
        count: req.count,
        create_index: txn.index(),
        error: req.error,
        eval_id: None,
        message: req.message.clone(),
        meta,
        previous_count: group.count,
        time: now,
    };
    let mut out = JobWrite {
        eval_id: String::new(),
        job_modify_index: job.job_modify_index,
        warnings: String::new(),
    };
    if let Some(count) = req.count {
        let bound = |key: &str| {
            group
                .scaling
                .as_ref()
                .and_then(|s| s.get(key))
                .and_then(serde_json::Value::as_i64)
        };
        if let Some(min) = bound("Min")
            && count < min
        {
            return Err(ServerError::BadRequest(format!(
                "group count was less than scaling policy minimum: {count} < {min}"
            )));
        }
        if let Some(max) = bound("Max")
            && count > max
        {
            return Err(ServerError::BadRequest(format!(
                "group count was greater than scaling policy maximum: {count} > {max}"
            )));
        }
        let deploying = txn
            .snapshot()
            .latest_deployment(ns, &job.id)
            .is_some_and(|d| {
                d.value.job_create_index == job.create_index
                    && ACTIVE_DEPLOYMENT.contains(&d.value.status.as_str())
            });
        if deploying {
            return Err(ServerError::BadRequest(
                "job scaling blocked due to active deployment".to_owned(),
            ));
        }
        if req.enforce_index && req.job_modify_index != job.job_modify_index {
            return Err(ServerError::Conflict(format!(
                "Enforcing job modify index {}: job exists with conflicting job modify index: {}",
                req.job_modify_index, job.job_modify_index
            )));
        }
        let mut scaled = job.clone();
        for tg in scaled.task_groups.iter_mut().flatten() {
            if tg.name == req.group {
                tg.count = count;
            }
        }
        let scaled = if crate::jobs::spec_changed(&job, &scaled) {
            upsert_job(txn, scaled, Some(&job))?
        } else {
            job.clone()
        };
        out.job_modify_index = scaled.job_modify_index;
        if let Some(eval) = job_eval(&scaled, eval_trigger::JOB_SCALING, None) {
            out.eval_id = eval.id.clone();
            event.eval_id = Some(eval.id.clone());
            txn.put(eval)?;
        }
        refresh_job_status(txn, ns, &job.id)?;
    }
    let mut events = txn
        .snapshot()
        .scaling_events(ns, &job.id)
        .cloned()
        .unwrap_or_else(|| JobScalingEvents {
            job_id: job.id.clone(),
            namespace: ns.to_owned(),
            ..JobScalingEvents::default()
        });
    let list = events.scaling_events.entry(req.group.clone()).or_default();
    list.insert(0, event);
    list.truncate(JOB_TRACKED_SCALING_EVENTS);
    txn.put(events)?;
    Ok(out)
}

/// Each group's desired count, its placed, running, healthy and unhealthy allocations of the
/// current job, and its scaling events.
pub fn scale_status(snap: &caravan_state::Snapshot, job: &Job) -> JobScaleStatus {
    let events = snap.scaling_events(&job.namespace, &job.id);
    let mut groups: std::collections::BTreeMap<String, TaskGroupScaleStatus> = job
        .task_groups
        .iter()
        .flatten()
        .map(|tg| {
            let status = TaskGroupScaleStatus {
                desired: tg.count,
                events: events.and_then(|e| e.scaling_events.get(&tg.name)).cloned(),
                ..TaskGroupScaleStatus::default()
            };
            (tg.name.clone(), status)
        })
        .collect();
    for row in snap.allocs_by_job(&job.namespace, &job.id) {
        let alloc = &row.value;
        if alloc.create_index < job.create_index || alloc.terminal_status() {
            continue;
        }
        let Some(g) = groups.get_mut(&alloc.task_group) else {
            continue;
        };
        g.placed += 1;
        if alloc.client_status == "running" {
            g.running += 1;
        }
        match alloc.deployment_status.as_ref().and_then(|d| d.healthy) {
            Some(true) => g.healthy += 1,
            Some(false) => g.unhealthy += 1,
            None => {}
        }
    }
    JobScaleStatus {
        job_create_index: job.create_index,
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        job_stopped: job.stop,
        namespace: job.namespace.clone(),
        task_groups: groups,
    }
}

/// Gives each group's scaling block Nomad's bookkeeping before the job is stored: the policy ID
/// it had in `existing` (else a new one), `Type` `horizontal`, the `Target` of its group,
/// `Enabled` true when unset, and its indexes. Unchanged policies come out identical, so a
/// re-register of the same spec makes no new version.
pub(crate) fn propagate_scaling_policies(job: &mut Job, existing: Option<&Job>, index: u64) {
    let (namespace, id) = (job.namespace.clone(), job.id.clone());
    for tg in job.task_groups.iter_mut().flatten() {
        let Some(serde_json::Value::Object(policy)) = tg.scaling.as_mut() else {
            continue;
        };
        let old = existing
            .and_then(|j| j.lookup_task_group(&tg.name))
            .and_then(|g| g.scaling.as_ref())
            .and_then(serde_json::Value::as_object);
        let old_id = old
            .and_then(|o| o.get("ID"))
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty());
        if policy
            .get("ID")
            .and_then(serde_json::Value::as_str)
            .is_none_or(str::is_empty)
        {
            let id = old_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
            policy.insert("ID".to_owned(), id.into());
        }
        if policy
            .get("Type")
            .and_then(serde_json::Value::as_str)
            .is_none_or(str::is_empty)
        {
            policy.insert("Type".to_owned(), "horizontal".into());
        }
        if policy.get("Enabled").is_none_or(serde_json::Value::is_null) {
            policy.insert("Enabled".to_owned(), true.into());
        }
        policy.insert(
            "Target".to_owned(),
            serde_json::json!({"Namespace": namespace, "Job": id, "Group": tg.name}),
        );
        let same_policy = old.is_some_and(|o| o.get("ID") == policy.get("ID"));
        let (create, modify) = match old {
            Some(o) if same_policy => (
                o.get("CreateIndex")
                    .cloned()
                    .unwrap_or_else(|| index.into()),
                o.get("ModifyIndex")
                    .cloned()
                    .unwrap_or_else(|| index.into()),
            ),
            _ => (index.into(), index.into()),
        };
        policy.insert("CreateIndex".to_owned(), create);
        policy.insert("ModifyIndex".to_owned(), modify);
        // A changed policy gets the write's index.
        if let Some(o) = old.filter(|_| same_policy)
            && o != policy
        {
            policy.insert("ModifyIndex".to_owned(), index.into());
        }
    }
}

/// Every scaling policy of the current jobs in `namespace` (`*`: all), as
/// in job order.
pub fn scaling_policies<'a>(
    snap: &'a caravan_state::Snapshot,
    namespace: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
    snap.jobs()
        .iter()
        .map(|(_, row)| &row.value)
        .filter(move |job| namespace == "*" || job.namespace == namespace)
        // Dispatched and periodic children carry their parent's policies; only the parent's count.
        .filter(|job| job.parent_id.is_empty())
        .flat_map(|job| job.task_groups.iter().flatten())
        .filter_map(|tg| tg.scaling.as_ref().filter(|p| p.get("ID").is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_ids_have_nomads_shape() {
        let id = dispatched_id("batch", "", 1_700_000_000_123_456_789);
        let rest = id
            .strip_prefix("batch/dispatch-1700000000-")
            .unwrap_or_default();
        assert_eq!(rest.len(), 8, "{id}");
        assert!(rest.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        let id = dispatched_id("batch", "nightly", 1_700_000_000_000_000_000);
        assert!(id.starts_with("batch/dispatch-nightly-1700000000-"), "{id}");
    }
}
