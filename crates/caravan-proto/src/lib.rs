//! caravan-proto: the gRPC contract between Caravan's services (`proto/caravan/v1`), compiled
//! without a system `protoc`, and the one mapping of [`ErrorCode`] to gRPC status codes.
//!
//! Layout:
//! - [`v1`]: generated messages, clients and servers of package `caravan.v1`.
//! - [`agent`]: the Agent service's log level <-> `caravan_structs::LogLevel`.
//! - [`status`]: typed errors across gRPC — the code travels in the `caravan-error-code`
//!   metadata, so the gateway recovers it without matching message text.

pub mod agent;
pub mod status;

/// Generated code of package `caravan.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("caravan.v1");
}

pub use caravan_structs::ErrorCode;
pub use status::{error_code_of, to_status};
