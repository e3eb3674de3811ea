//! `POST /v1/jobs/parse`: an HCL2 jobspec to the JSON Job, parsed right here (no server
//! state involved), as Nomad's HTTP agent does.

use axum::response::{IntoResponse, Response};
use caravan_jobspec::{ParseOptions, parse, parse_variables_text};

use crate::body::JsonObject;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

/// Diagnostics name the jobspec this, as Nomad's endpoint does.
const INPUT_NAME: &str = "input.hcl";

pub(super) async fn parse_job(q: Query, body: JsonObject) -> Result<Response, ApiError> {
    let hcl = body.string("JobHCL")?.unwrap_or_default();
    if hcl.is_empty() {
        return Err(ApiError::bad_request("Job spec is empty"));
    }
    if body.bool("HCLv1")?.unwrap_or(false) {
        return Err(ApiError::bad_request(
            "HCLv1 jobspecs are not supported; use HCL2",
        ));
    }
    let canonicalize = body.bool("Canonicalize")?.unwrap_or(false);
    let mut opts = ParseOptions::default();
    if let Some(vars) = body.string("Variables")?.filter(|v| !v.trim().is_empty()) {
        // Checked first so a bad variables text is reported as such.
        parse_variables_text(&vars)
            .map_err(|e| ApiError::bad_request(format!("Failed to parse job: {e}")))?;
        opts.var_files.push(vars);
    }
    let mut job = parse(&hcl, INPUT_NAME, &opts)
        .map_err(|e| ApiError::bad_request(format!("Failed to parse job: {e}")))?;
    if canonicalize {
        job.canonicalize();
    }
    Ok(JsonResponse::value(&job)?.pretty(q.pretty).into_response())
}
