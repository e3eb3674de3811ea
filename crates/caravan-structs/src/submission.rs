//! `JobSubmission`: the source a job was registered from (HCL or JSON, and its variables),
//! kept per job version for `GET /v1/job/:id/submission?version=N`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Sources larger than this are not kept (Nomad's default `job_max_source_size`, 1 MB).
pub const JOB_MAX_SOURCE_SIZE: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobSubmission {
    /// `hcl2`, `json`, ...
    pub format: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// The index of the job version this is the source of.
    pub job_modify_index: u64,
    pub namespace: String,
    pub source: String,
    /// `-var` flags as given.
    pub variable_flags: Option<BTreeMap<String, String>>,
    /// The content of `-var-file`s.
    pub variables: String,
    pub version: u64,
}
