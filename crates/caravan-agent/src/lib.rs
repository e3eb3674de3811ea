//! The Caravan client agent: fingerprinting, node registration and heartbeats.

pub mod fingerprint;
