//! Errors at the HTTP edge, rendered as Nomad does: a plain-text message with the status.
//! Statuses come from [`ErrorCode`], never from matching message text.

use axum::response::{IntoResponse, Response};
use caravan_proto::{ErrorCode, error_code_of};
use http::{StatusCode, header};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Blocking-query headers, for reads that fail (Nomad sets them on a 404 too).
    pub meta: Option<caravan_proto::v1::QueryMeta>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
            meta: None,
        }
    }

    pub fn with_meta(mut self, meta: Option<caravan_proto::v1::QueryMeta>) -> Self {
        self.meta = meta;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Internal, message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = error_code_of(&status);
        // A status without our metadata did not come from a Caravan service: the transport
        // failed, so say which part could not be reached.
        let from_service = status
            .metadata()
            .contains_key(caravan_proto::status::ERROR_CODE_KEY);
        let message = if from_service {
            status.message().to_owned()
        } else if status.message().is_empty() {
            "server unavailable".to_owned()
        } else {
            format!("server unavailable: {}", status.message())
        };
        if code == ErrorCode::Internal {
            tracing::warn!(grpc_code = ?status.code(), message = %status.message(), "server call failed");
        }
        ApiError::new(code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response();
        if let Some(meta) = &self.meta {
            crate::response::set_meta_headers(resp.headers_mut(), meta);
        }
        resp
    }
}
