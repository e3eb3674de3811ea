//! The one error-code table. Every crate's error enum maps each variant to an [`ErrorCode`];
//! the code alone decides the HTTP status here and the gRPC status in `caravan-proto`. Codes
//! travel between services by name ([`ErrorCode::as_str`]) in gRPC metadata, so the names are
//! stable: add codes, never rename them.

use std::fmt;
use std::str::FromStr;

/// What kind of failure an error is, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or invalid (bad parameter, body, filter, ID). 400.
    BadRequest,
    /// Missing, unknown or insufficient token. Nomad answers 403 for all of these.
    PermissionDenied,
    /// The named object does not exist. 404.
    NotFound,
    /// The path exists but not with this method. 405.
    MethodNotAllowed,
    /// The write lost a race or contradicts current state (check-and-set, index mismatch). 409.
    Conflict,
    /// The request body is over the limit. 413.
    PayloadTooLarge,
    /// Too many concurrent requests or streams. 429.
    TooManyRequests,
    /// A bug or an unexpected failure of a dependency. 500.
    Internal,
    /// The endpoint or feature is not implemented by Caravan. 501.
    NotImplemented,
    /// No leader, the database or an agent is unreachable; retrying may help. 503.
    Unavailable,
    /// The operation did not finish in time. 504.
    Timeout,
}

/// A name that is not an [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadRequest,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::NotImplemented,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
    ];

    /// The HTTP status the gateway answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::NotImplemented => 501,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// The stable snake_case name carried in gRPC metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
        }
    }

    /// The code an HTTP status stands for (for clients reading a response); unknown 4xx are
    /// `BadRequest`, unknown 5xx `Internal`, anything else `None`.
    pub fn from_http_status(status: u16) -> Option<ErrorCode> {
        if let Some(c) = ErrorCode::ALL
            .into_iter()
            .find(|c| c.http_status() == status)
        {
            return Some(c);
        }
        match status {
            400..=499 => Some(ErrorCode::BadRequest),
            500..=599 => Some(ErrorCode::Internal),
            _ => None,
        }
    }

    /// Whether the same request may succeed later without change.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::TooManyRequests
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names = HashSet::new();
        let mut statuses = HashSet::new();
        for c in ErrorCode::ALL {
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
            assert!(names.insert(c.as_str()));
            assert!(statuses.insert(c.http_status()));
            assert_eq!(ErrorCode::from_http_status(c.http_status()), Some(c));
        }
        assert_eq!(
            "nope".parse::<ErrorCode>(),
            Err(UnknownErrorCode("nope".into()))
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::PermissionDenied.http_status(), 403);
        assert_eq!(
            ErrorCode::from_http_status(418),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(ErrorCode::from_http_status(502), Some(ErrorCode::Internal));
        assert_eq!(ErrorCode::from_http_status(200), None);
        assert!(ErrorCode::Unavailable.is_retryable());
        assert!(!ErrorCode::NotFound.is_retryable());
    }
}
