//! The service registrations table (the built-in catalogue), keyed by `<namespace>/<ID>` and
//! indexed by service name, allocation and job. Registrations go with their allocation: an
//! allocation that turns client-terminal (reported by its agent or marked by the scheduler) or
//! is removed takes its registrations with it in the same write (Nomad v1.10.4's rule), so no
//! instance outlives its allocation and a node that merely missed heartbeats keeps its own.

use caravan_structs::{Allocation, ServiceRegistration};

use crate::jobs::job_key;
use crate::table::{Document, TableId};
use crate::txn::Txn;

/// Registrations by `<namespace>/<service name>`.
pub(crate) const BY_NAME: usize = 0;
/// Registrations by allocation ID.
pub(crate) const BY_ALLOC: usize = 1;
/// Registrations by `<namespace>/<job ID>`.
pub(crate) const BY_JOB: usize = 2;

/// The key of a registration.
pub fn service_key(namespace: &str, id: &str) -> String {
    job_key(namespace, id)
}

impl Document for ServiceRegistration {
    const TABLE: TableId = TableId::ServiceRegistrations;

    fn key(&self) -> String {
        service_key(&self.namespace, &self.id)
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        vec![
            self.namespace.clone(),
            self.service_name.clone(),
            self.alloc_id.clone(),
        ]
    }

    fn index_values(&self) -> Vec<String> {
        vec![
            job_key(&self.namespace, &self.service_name),
            self.alloc_id.clone(),
            job_key(&self.namespace, &self.job_id),
        ]
    }
}

/// Removes the registrations of allocation `alloc_id`; returns how many there were.
pub(crate) fn deregister_alloc(txn: &mut Txn<'_>, alloc_id: &str) -> usize {
    let keys: Vec<String> = txn
        .snapshot()
        .service_registrations()
        .by(BY_ALLOC, alloc_id)
        .map(|row| row.value.key())
        .collect();
    for key in &keys {
        txn.delete::<ServiceRegistration>(key);
    }
    keys.len()
}

/// The cascade of an allocation write: a client-terminal or removed allocation loses its
/// registrations.
pub(crate) fn alloc_written(txn: &mut Txn<'_>, alloc_id: &str, now: Option<&Allocation>) {
    if now.is_none_or(Allocation::client_terminal_status) {
        deregister_alloc(txn, alloc_id);
    }
}
