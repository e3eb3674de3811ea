//! The scheduler's error type. Placement failures are not errors (they become `FailedTGAllocs`
//! and blocked evals); these are the failures that stop an evaluation from being processed.

use caravan_structs::ErrorCode;

/// Why `process_eval` could not finish an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    /// The evaluation's `Type` names no scheduler (e.g. `_core`, which the server runs itself).
    #[error("scheduler cannot handle job type {0:?}")]
    UnknownJobType(String),
    /// The planner committed only part of a plan but gave no newer state to re-plan on.
    #[error("missing state refresh after partial commit")]
    MissingStateRefresh,
    /// The planner failed (plan applier, eval writes); the message is the planner's.
    #[error("planner: {0}")]
    Planner(String),
}

impl SchedulerError {
    /// The error-table code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SchedulerError::UnknownJobType(_) => ErrorCode::BadRequest,
            SchedulerError::MissingStateRefresh => ErrorCode::Internal,
            SchedulerError::Planner(_) => ErrorCode::Unavailable,
        }
    }
}
