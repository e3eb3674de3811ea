//! The server's typed errors, each mapped to one ErrorCode (and so one gRPC and HTTP status).

use caravan_proto::{ErrorCode, to_status};
use caravan_state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Conflict(String),
    /// A filter expression that does not parse.
    #[error("failed to create result paginator: failed to read filter expression: {0}")]
    FilterParse(#[from] caravan_filter::ParseError),
    /// A filter expression that fails on a document.
    #[error("failed to read result page: {0}")]
    FilterEval(#[from] caravan_filter::EvalError),
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ServerError::State(StateError::Fenced | StateError::Closed) => ErrorCode::Unavailable,
            ServerError::State(_) | ServerError::Internal(_) => ErrorCode::Internal,
            ServerError::BadRequest(_)
            | ServerError::FilterParse(_)
            | ServerError::FilterEval(_) => ErrorCode::BadRequest,
            ServerError::NotFound(_) => ErrorCode::NotFound,
            ServerError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            ServerError::Conflict(_) => ErrorCode::Conflict,
        }
    }

    pub fn node_not_found() -> Self {
        ServerError::NotFound("node not found".to_owned())
    }
}

impl From<ServerError> for tonic::Status {
    fn from(e: ServerError) -> Self {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "request failed");
        }
        to_status(code, e.to_string())
    }
}
