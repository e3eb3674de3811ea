//! Generated gRPC code for caravan.v1 and the error-code to gRPC status mapping.
