//! ErrorCode <-> gRPC status. This file and `ErrorCode::http_status` are the only places that
//! decide which status an error gets.

use caravan_structs::ErrorCode;
use tonic::Code;

/// Metadata key carrying the ErrorCode name.
pub const ERROR_CODE_KEY: &str = "caravan-error-code";

fn grpc_code(code: ErrorCode) -> Code {
    match code {
        ErrorCode::BadRequest => Code::InvalidArgument,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::MethodNotAllowed => Code::Unimplemented,
        ErrorCode::Conflict => Code::FailedPrecondition,
        ErrorCode::PayloadTooLarge => Code::ResourceExhausted,
        ErrorCode::Unavailable => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// A gRPC status carrying `code` and `message`.
pub fn to_status(code: ErrorCode, message: impl Into<String>) -> tonic::Status {
    let mut status = tonic::Status::new(grpc_code(code), message);
    if let Ok(v) = code.as_str().parse() {
        status.metadata_mut().insert(ERROR_CODE_KEY, v);
    }
    status
}

/// The ErrorCode of a status: from our metadata when a Caravan service set it, else from the
/// gRPC code (transport failures, deadlines).
pub fn error_code_of(status: &tonic::Status) -> ErrorCode {
    if let Some(code) = status
        .metadata()
        .get(ERROR_CODE_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<ErrorCode>().ok())
    {
        return code;
    }
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange => ErrorCode::BadRequest,
        Code::PermissionDenied | Code::Unauthenticated => ErrorCode::PermissionDenied,
        Code::NotFound => ErrorCode::NotFound,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => ErrorCode::Conflict,
        Code::ResourceExhausted => ErrorCode::PayloadTooLarge,
        Code::Unavailable => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_the_round_trip() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
        ] {
            let status = to_status(code, "boom");
            assert_eq!(error_code_of(&status), code);
            assert_eq!(status.message(), "boom");
        }
    }

    #[test]
    fn plain_grpc_codes_map_too() {
        assert_eq!(
            error_code_of(&tonic::Status::unavailable("down")),
            ErrorCode::Unavailable
        );
        assert_eq!(
            error_code_of(&tonic::Status::deadline_exceeded("slow")),
            ErrorCode::Internal
        );
    }
}
