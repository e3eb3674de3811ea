//! The Caravan server: gRPC services per noun, heartbeats, node lifecycle.
