//! `/v1/operator/scheduler/configuration`: read and replace the scheduler configuration, with
//! `?cas=<ModifyIndex>` check-and-set. `/v1/system/gc` and `/v1/system/reconcile/summaries`:
//! cluster maintenance.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use caravan_proto::v1;
use caravan_structs::{
    SchedulerConfiguration, SchedulerConfigurationResponse, SchedulerSetConfigurationResponse,
};
use serde_json::Value;

use crate::AppState;
use crate::body::JsonObject;
use crate::error::ApiError;
use crate::query::Query;
use crate::response::JsonResponse;

pub(super) async fn read(State(state): State<AppState>, q: Query) -> Result<Response, ApiError> {
    let resp = state
        .operator()
        .get_scheduler_configuration(v1::GetSchedulerConfigurationRequest {
            query: Some(q.to_proto()),
        })
        .await?
        .into_inner();
    let config: SchedulerConfiguration =
        serde_json::from_slice(&resp.config_json).map_err(|e| {
            ApiError::internal(format!("failed to decode scheduler configuration: {e}"))
        })?;
    let meta = resp.meta.unwrap_or_default();
    let body = SchedulerConfigurationResponse {
        index: meta.index,
        known_leader: meta.known_leader,
        last_contact: i64::try_from(meta.last_contact_ms.saturating_mul(1_000_000))
            .unwrap_or(i64::MAX),
        next_token: meta.next_token.clone(),
        scheduler_config: Some(config),
    };
    Ok(JsonResponse::value(&body)?
        .meta(Some(meta))
        .pretty(q.pretty)
        .into_response())
}

/// Go's `strconv.ParseUint(v, 10, 64)`, with its error text.
fn parse_cas(v: &str) -> Result<u64, ApiError> {
    v.parse::<u64>().map_err(|_| {
        let why = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        ApiError::bad_request(format!(
            "Error parsing cas value: strconv.ParseUint: parsing {v:?}: {why}"
        ))
    })
}

/// PUT/POST: the body replaces the whole configuration (fields left out take Go's zero
/// values, as in Nomad).
pub(super) async fn update(
    State(state): State<AppState>,
    q: Query,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let config: SchedulerConfiguration = caravan_structs::go_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Error parsing scheduler config: {e}")))?;
    config.validate().map_err(ApiError::bad_request)?;
    let cas = q.params.get("cas").map(|v| parse_cas(v)).transpose()?;
    let config_json = serde_json::to_vec(&config)
        .map_err(|e| ApiError::internal(format!("failed to encode scheduler config: {e}")))?;
    let resp = state
        .operator()
        .set_scheduler_configuration(v1::SetSchedulerConfigurationRequest {
            config_json: config_json.into(),
            cas,
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    let body = SchedulerSetConfigurationResponse {
        index: resp.index,
        updated: resp.updated,
    };
    Ok(JsonResponse::value(&body)?
        .index(resp.index)
        .pretty(q.pretty)
        .into_response())
}

/// `PUT /v1/system/gc`: collects every terminal object now. Nomad queues the collection and
/// answers at once; Caravan answers when it is done, so what follows sees the result. The
/// body is empty, as Nomad's.
pub(super) async fn system_gc(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    state
        .operator()
        .garbage_collect(v1::GarbageCollectRequest {
            write: Some(q.to_write_proto()),
        })
        .await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `PUT /v1/system/reconcile/summaries`: empty body, as Nomad's.
pub(super) async fn reconcile_summaries(
    State(state): State<AppState>,
    q: Query,
) -> Result<Response, ApiError> {
    let resp = state
        .operator()
        .reconcile_job_summaries(v1::ReconcileJobSummariesRequest {
            write: Some(q.to_write_proto()),
        })
        .await?
        .into_inner();
    Ok(crate::response::written(resp.index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_values_parse_as_go_does() {
        assert_eq!(parse_cas("42").ok(), Some(42));
        let msg = |v: &str| parse_cas(v).unwrap_err().message;
        assert_eq!(
            msg("abc"),
            "Error parsing cas value: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            msg(""),
            "Error parsing cas value: strconv.ParseUint: parsing \"\": invalid syntax"
        );
        assert_eq!(
            msg("-1"),
            "Error parsing cas value: strconv.ParseUint: parsing \"-1\": invalid syntax"
        );
        assert_eq!(
            msg("99999999999999999999"),
            "Error parsing cas value: strconv.ParseUint: parsing \"99999999999999999999\": value out of range"
        );
    }
}
