//! The Caravan client agent: one per machine. It fingerprints the machine, registers the node
//! with the servers, keeps it alive with heartbeats and registers again when a server forgets
//! it. (Running allocations, drivers and the fs/exec services arrive in later layers.)
//!
//! Layout:
//! - [`fingerprint`]: what the machine is (cpu, memory, disk, kernel, os, network, drivers).
//! - [`node`]: the Node document built from the fingerprint.
//! - [`identity`]: the node ID and secret kept in the data directory.
//! - [`client`]: registration and the heartbeat loop.
//! - [`config`]: the agent's configuration.

pub mod client;
pub mod config;
pub mod fingerprint;
pub mod identity;
pub mod node;
pub mod taskenv;

pub use client::{AgentError, run};
pub use config::AgentConfig;
