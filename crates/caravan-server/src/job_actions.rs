//! The job writes beside registration: revert to an earlier version, mark a version stable, and
//! dispatch a child of a parameterized job (Nomad's `Job.Revert`, `Job.Stable`,
//! `Job.Dispatch`). Each runs inside one write transaction, so its checks and its effect see
//! the same state.

use std::collections::{BTreeMap, BTreeSet};

use caravan_proto::v1;
use caravan_state::{Txn, job_key};
use caravan_structs::{Job, eval_trigger};

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
