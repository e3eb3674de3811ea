//! The policy object around the rules: name and description checks, the JobACL attachment, the
//! whole write validation (ACLPolicy.Validate) and the `Hash` (ACLPolicy.SetHash).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blake2::{Blake2b256, Digest};

use crate::error::{PolicyValidationError, PolicyValidationErrors};
use crate::policy::{Policy, parse_policy};

pub(crate) const MAX_DESCRIPTION_LEN: usize = 256;

/// A policy's attachment to a job, group or task (workload identities).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobAcl {
    pub namespace: String,
    pub job_id: String,
    pub group: String,
    pub task: String,
}

/// `^[a-zA-Z0-9-]{1,128}$`: policy and role names.
pub fn validate_policy_name(name: &str) -> Result<(), PolicyValidationError> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PolicyValidationError::InvalidName(name.to_owned()))
    }
}

/// At most 256 bytes.
pub fn validate_policy_description(description: &str) -> Result<(), PolicyValidationError> {
    if description.len() > MAX_DESCRIPTION_LEN {
        Err(PolicyValidationError::DescriptionTooLong)
    } else {
        Ok(())
    }
}

/// Everything Nomad checks before writing a policy, in its order (name, rules, description,
/// JobACL), all reasons collected. On success, the parsed rules.
pub fn validate_policy(
    name: &str,
    description: &str,
    rules: &str,
    job_acl: Option<&JobAcl>,
) -> Result<Policy, PolicyValidationErrors> {
    let mut errors = Vec::new();
    if let Err(e) = validate_policy_name(name) {
        errors.push(e);
    }
    let parsed = parse_policy(rules);
    let policy = match parsed {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(PolicyValidationError::Rules(e));
            None
        }
    };
    if let Err(e) = validate_policy_description(description) {
        errors.push(e);
    }
    if let Some(j) = job_acl {
        if !j.job_id.is_empty() && j.namespace.is_empty() {
            errors.push(PolicyValidationError::JobAclNamespaceMissing);
        }
        if !j.group.is_empty() && j.job_id.is_empty() {
            errors.push(PolicyValidationError::JobAclJobMissing);
        }
        if !j.task.is_empty() && j.group.is_empty() {
            errors.push(PolicyValidationError::JobAclGroupMissing);
        }
    }
    match policy {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(PolicyValidationErrors(errors)),
    }
}

/// The policy's `Hash` as the API shows it: base64 of BLAKE2b-256 over name, description,
/// rules and, when attached, the JobACL's namespace, job, group and task, concatenated.
pub fn policy_hash(name: &str, description: &str, rules: &str, job_acl: Option<&JobAcl>) -> String {
    let mut h = Blake2b256::new();
    h.update(name.as_bytes());
    h.update(description.as_bytes());
    h.update(rules.as_bytes());
    if let Some(j) = job_acl {
        h.update(j.namespace.as_bytes());
        h.update(j.job_id.as_bytes());
        h.update(j.group.as_bytes());
        h.update(j.task.as_bytes());
    }
    STANDARD.encode(h.finalize())
}
/// A token's `Hash`: base64 BLAKE2b-256 over its name, type, policy names, `global` or
/// `local`, and role IDs (ACLToken.SetHash).
pub fn token_hash(
    name: &str,
    kind: &str,
    policies: &[String],
    global: bool,
    role_ids: &[&str],
) -> String {
    let mut h = Blake2b256::new();
    h.update(name.as_bytes());
    h.update(kind.as_bytes());
    for p in policies {
        h.update(p.as_bytes());
    }
    h.update(if global {
        b"global".as_slice()
    } else {
        b"local".as_slice()
    });
    for id in role_ids {
        h.update(id.as_bytes());
    }
    STANDARD.encode(h.finalize())
}

/// A role's `Hash`: base64 BLAKE2b-256 over its name, description and policy names
/// (ACLRole.SetHash).
pub fn role_hash(name: &str, description: &str, policies: &[&str]) -> String {
    let mut h = Blake2b256::new();
    h.update(name.as_bytes());
    h.update(description.as_bytes());
    for p in policies {
        h.update(p.as_bytes());
    }
    STANDARD.encode(h.finalize())
}
