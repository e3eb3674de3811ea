//! The Caravan client agent: one per machine. It fingerprints the machine, registers the node
//! with the servers, keeps it alive with heartbeats and registers again when a server forgets
//! it, and runs the allocations placed on it through the drivers of `caravan-drivers`.
//!
//! Layout:
//! - [`fingerprint`]: what the machine is (cpu, memory, disk, kernel, os, network, drivers).
//! - [`node`]: the Node document built from the fingerprint.
//! - [`identity`]: the node ID and secret kept in the data directory.
//! - [`client`]: registration and the heartbeat loop.
//! - [`allocs`]: allocation and task runners, allocation directories, local state, status
//!   reports, the agent's lifecycle gRPC service (signal, restart, GC, exec).
//! - [`taskenv`]: the task environment and `${...}` interpolation.
//! - [`fs`], [`fswatch`]: allocation files and logs, followers woken by inotify.
//! - [`exec`]: exec sessions, a command inside a running task bridged to a gRPC stream.
//! - [`stats`], [`metadata`], [`stats_service`]: host and allocation resource usage, the
//!   node's dynamic metadata, and their gRPC service.
//! - [`agent_service`]: the `Agent` gRPC service: host data and the live log monitor.
//! - [`config`]: the agent's configuration.

pub mod agent_service;
pub mod allocs;
pub mod client;
pub mod config;
pub mod exec;
pub mod fingerprint;
pub mod fs;
pub mod fswatch;
pub mod identity;
pub mod metadata;
pub mod node;
pub mod stats;
pub mod stats_service;
pub mod taskenv;

pub use allocs::manager::GcLimits;
pub use client::{AgentError, run};
pub use config::AgentConfig;
