//! Running allocations: the manager that follows the server, one runner per allocation and
//! per task, the allocation directory, the local state for re-attach, status reporting, the
//! allocation's services in the built-in catalogue and their checks, and the agent's lifecycle
//! gRPC service.

pub mod checks;
pub mod dir;
pub mod events;
pub mod manager;
pub mod reporter;
pub mod restarts;
pub mod runner;
pub mod service;
pub mod services;
pub mod store;
pub mod task;
