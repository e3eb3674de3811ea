//! The Allocs service and the allocation rules: list and read for the gateway, stop (a
//! migrate transition plus an `alloc-stop` evaluation), and the client side — a node watches
//! its allocations, fetches them with their job, and reports their status, which may ask for
//! a reschedule (`alloc-failure` evaluation) and moves the job's status.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, allocs_server};
use caravan_state::{Row, Snapshot, Store, TableId, Txn, WatchKey};
use caravan_structs::{
    ALLOC_CLIENT_STATUS_FAILED, AllocStubFields, Allocation, Evaluation, eval_trigger,
};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::jobs::refresh_job_status;
use crate::nodes::unix_nanos;
use crate::paginate::{Pager, create_index_token};
use crate::query::{query_meta, wait_of};

type AllocRow = Arc<Row<Allocation>>;

/// Filters on allocations: every object reads as a map.
static ALLOC_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;

/// The allocation as the API shows it: its job (at its version) attached, task event display
/// messages filled.
pub fn alloc_view(snap: &Snapshot, alloc: &Allocation) -> Allocation {
    let mut view = alloc.clone();
    view.job = snap
        .job_version(&alloc.namespace, &alloc.job_id, alloc.job_version)
        .cloned()
        .or_else(|| {
            snap.job(&alloc.namespace, &alloc.job_id)
                .map(|r| r.value.clone())
        });
    view.set_event_display_messages();
    view
}

/// [`alloc_view`] as JSON.
pub fn alloc_json(snap: &Snapshot, alloc: &Allocation) -> Result<Bytes, ServerError> {
    serde_json::to_vec(&alloc_view(snap, alloc))
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding allocation: {e}")))
}

/// The list stub of an allocation, its job's type and version filled from the state.
pub fn alloc_stub_json(
    snap: &Snapshot,
    alloc: &Allocation,
    fields: AllocStubFields,
) -> Result<Bytes, ServerError> {
    let job = snap.job_version(&alloc.namespace, &alloc.job_id, alloc.job_version);
    let mut stub = alloc.stub(fields, job);
    if let Some(states) = stub.task_states.as_mut() {
        for state in states.values_mut() {
            for ev in state.events.iter_mut().flatten() {
                ev.populate_display_message();
            }
        }
    }
    serde_json::to_vec(&stub)
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding allocation stub: {e}")))
}

pub(crate) fn check_node_secret(
    snap: &Snapshot,
    auth: Option<&v1::NodeAuth>,
) -> Result<String, ServerError> {
    let auth = auth.ok_or_else(|| ServerError::BadRequest("missing node ID".to_owned()))?;
    let node = snap
        .nodes()
        .get(&auth.node_id)
        .ok_or_else(ServerError::node_not_found)?;
    if node.value.secret_id != auth.secret_id {
        return Err(ServerError::PermissionDenied(
            "node secret ID does not match".to_owned(),
        ));
    }
    Ok(auth.node_id.clone())
}

/// The evaluation that reschedules a failed allocation.
fn failure_eval(snap: &Snapshot, alloc: &Allocation) -> Option<Evaluation> {
    let job = snap.job(&alloc.namespace, &alloc.job_id)?;
    if job.value.stop {
        return None;
    }
    let now = unix_nanos();
    Some(Evaluation {
        id: uuid::Uuid::new_v4().to_string(),
        namespace: alloc.namespace.clone(),
        priority: job.value.priority,
        r#type: job.value.r#type.clone(),
        triggered_by: eval_trigger::RETRY_FAILED_ALLOC.to_owned(),
        job_id: alloc.job_id.clone(),
        job_modify_index: job.value.job_modify_index,
        status: "pending".to_owned(),
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    })
}

/// Applies what a client reports of its allocations.
fn apply_client_updates(
    txn: &mut Txn<'_>,
    node_id: &str,
    updates: Vec<Allocation>,
) -> Result<(), ServerError> {
    let now = unix_nanos();
    let mut jobs = BTreeSet::new();
    let mut failed_jobs = BTreeSet::new();
    for update in updates {
        let Some(row) = txn.snapshot().allocs().get(&update.id).cloned() else {
            // Garbage-collected meanwhile: nothing to update.
            continue;
        };
        let old = &row.value;
        if old.node_id != node_id {
            return Err(ServerError::PermissionDenied(format!(
                "allocation {} is not placed on node {node_id}",
                old.id
            )));
        }
        let mut alloc = old.clone();
        alloc.client_status = update.client_status;
        alloc.client_description = update.client_description;
        alloc.task_states = update.task_states;
        alloc.deployment_status = update.deployment_status.or(alloc.deployment_status);
        alloc.network_status = update.network_status.or(alloc.network_status);
        alloc.modify_time = now;
        let newly_failed = alloc.client_status == ALLOC_CLIENT_STATUS_FAILED
            && old.client_status != ALLOC_CLIENT_STATUS_FAILED
            && !alloc.server_terminal_status();
        if newly_failed {
            failed_jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
        }
        jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
        txn.put(alloc)?;
    }
    for (ns, job_id) in &failed_jobs {
        let probe = Allocation {
            namespace: ns.clone(),
            job_id: job_id.clone(),
            ..Allocation::default()
        };
        if let Some(eval) = failure_eval(txn.snapshot(), &probe) {
            txn.put(eval)?;
        }
    }
    for (ns, job_id) in jobs {
        refresh_job_status(txn, &ns, &job_id)?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct AllocsService {
    server: Arc<Server>,
}

impl AllocsService {
    pub fn new(server: Arc<Server>) -> Self {
        AllocsService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

fn row_json<'a>(row: &'a &AllocRow) -> &'a str {
    &row.json
}

fn in_namespace(alloc: &Allocation, namespace: &str) -> bool {
    namespace == "*" || alloc.namespace == namespace
}

#[tonic::async_trait]
impl allocs_server::Allocs for AllocsService {
    async fn list_allocs(
        &self,
        request: Request<v1::ListAllocsRequest>,
    ) -> Result<Response<v1::ListAllocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let pager = Pager::new(&q, &ALLOC_SCHEMA)?;
        let ns = if q.namespace.is_empty() {
            "default".to_owned()
        } else {
            q.namespace.clone()
        };
        let fields = AllocStubFields {
            resources: req.resources,
            task_states: req.task_states,
        };
        let keys = [WatchKey::Table(TableId::Allocs)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let table = snap.allocs();
                let render = |row: &&AllocRow| alloc_stub_json(snap, &row.value, fields);
                // With a prefix: ID order (tokens are IDs); otherwise creation order (tokens
                // are `<CreateIndex>.<ID>`), as Nomad pages allocations.
                let page = if q.prefix.is_empty() {
                    let mut rows: Vec<&AllocRow> = table
                        .iter()
                        .map(|(_, r)| r)
                        .filter(|r| in_namespace(&r.value, &ns))
                        .filter(|r| crate::query::namespace_allowed(&q, &r.value.namespace))
                        .collect();
                    rows.sort_by(|a, b| {
                        (a.value.create_index, &a.value.id)
                            .cmp(&(b.value.create_index, &b.value.id))
                    });
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(
                        rows.into_iter(),
                        |r: &&AllocRow| create_index_token(r.value.create_index, &r.value.id),
                        row_json,
                        render,
                    )
                } else {
                    let mut rows: Vec<&AllocRow> = table
                        .prefixed(&q.prefix)
                        .filter(|r| in_namespace(&r.value, &ns))
                        .filter(|r| crate::query::namespace_allowed(&q, &r.value.namespace))
                        .collect();
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(
                        rows.into_iter(),
                        |r: &&AllocRow| r.value.id.clone(),
                        row_json,
                        render,
                    )
                };
                ((page, table.index()), table.index())
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::ListAllocsResponse {
            allocs_json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_alloc(
        &self,
        request: Request<v1::GetAllocRequest>,
    ) -> Result<Response<v1::GetAllocResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(TableId::Allocs, req.alloc_id.clone())];
        let ((json, namespace), index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                match snap.allocs().get(&req.alloc_id) {
                    Some(row) => {
                        let index = row.value.modify_index;
                        let found = (
                            Some(alloc_json(snap, &row.value)),
                            row.value.namespace.clone(),
                        );
                        ((found, index), index)
                    }
                    None => (
                        ((None, String::new()), snap.allocs().index()),
                        snap.allocs().index(),
                    ),
                }
            })
            .await;
        Ok(Response::new(v1::GetAllocResponse {
            alloc_json: json.transpose()?.unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
            namespace,
        }))
    }

    async fn stop_alloc(
        &self,
        request: Request<v1::StopAllocRequest>,
    ) -> Result<Response<v1::StopAllocResponse>, Status> {
        let req = request.into_inner();
        if req.alloc_id.is_empty() {
            return Err(ServerError::BadRequest("Missing allocation ID".to_owned()).into());
        }
        let written = self
            .store()
            .write(move |txn| -> Result<String, ServerError> {
                let Some(row) = txn.snapshot().allocs().get(&req.alloc_id).cloned() else {
                    return Err(ServerError::NotFound("allocation not found".to_owned()));
                };
                let mut alloc = row.value.clone();
                alloc.desired_transition.migrate = Some(true);
                alloc.desired_transition.no_shutdown_delay = Some(req.no_shutdown_delay);
                alloc.desired_transition.reschedule = Some(req.reschedule);
                alloc.modify_time = unix_nanos();
                let job = txn.snapshot().job(&alloc.namespace, &alloc.job_id).cloned();
                let now = unix_nanos();
                let eval = Evaluation {
                    id: uuid::Uuid::new_v4().to_string(),
                    namespace: alloc.namespace.clone(),
                    priority: job.as_ref().map(|j| j.value.priority).unwrap_or(50),
                    r#type: job
                        .as_ref()
                        .map(|j| j.value.r#type.clone())
                        .unwrap_or_else(|| "service".to_owned()),
                    triggered_by: eval_trigger::ALLOC_STOP.to_owned(),
                    job_id: alloc.job_id.clone(),
                    job_modify_index: job.as_ref().map(|j| j.value.job_modify_index).unwrap_or(0),
                    status: "pending".to_owned(),
                    create_time: now,
                    modify_time: now,
                    ..Evaluation::default()
                };
                let eval_id = eval.id.clone();
                let (ns, job_id) = (alloc.namespace.clone(), alloc.job_id.clone());
                txn.put(alloc)?;
                txn.put(eval)?;
                refresh_job_status(txn, &ns, &job_id)?;
                Ok(eval_id)
            })
            .await?;
        Ok(Response::new(v1::StopAllocResponse {
            eval_id: written.value,
            index: written.index,
        }))
    }

    async fn watch_node_allocs(
        &self,
        request: Request<v1::WatchNodeAllocsRequest>,
    ) -> Result<Response<v1::WatchNodeAllocsResponse>, Status> {
        let req = request.into_inner();
        let node_id = check_node_secret(&self.store().snapshot(), req.node.as_ref())?;
        let q = req.query.unwrap_or_default();
        // Only a change to this node's allocations wakes it: thousands of nodes may wait here.
        let keys = [WatchKey::allocs_on_node(&node_id)];
        let (allocs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let mut out = Vec::new();
                // 1 for a node without allocations: it waits until the first one lands.
                let mut index = 1;
                for row in snap.allocs_by_node(&node_id) {
                    index = index.max(row.value.modify_index);
                    out.push(v1::AllocModifyIndex {
                        alloc_id: row.value.id.clone(),
                        alloc_modify_index: row.value.alloc_modify_index,
                    });
                }
                ((out, index), index)
            })
            .await;
        Ok(Response::new(v1::WatchNodeAllocsResponse {
            allocs,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn get_allocs(
        &self,
        request: Request<v1::GetAllocsRequest>,
    ) -> Result<Response<v1::GetAllocsResponse>, Status> {
        let req = request.into_inner();
        let snap = self.store().snapshot();
        let node_id = check_node_secret(&snap, req.node.as_ref())?;
        let mut allocs_json = Vec::with_capacity(req.alloc_ids.len());
        for id in &req.alloc_ids {
            if let Some(row) = snap.allocs().get(id)
                && row.value.node_id == node_id
            {
                allocs_json.push(alloc_json(&snap, &row.value)?);
            }
        }
        Ok(Response::new(v1::GetAllocsResponse {
            allocs_json,
            index: snap.allocs().index().max(1),
        }))
    }

    async fn update_allocs(
        &self,
        request: Request<v1::UpdateAllocsRequest>,
    ) -> Result<Response<v1::UpdateAllocsResponse>, Status> {
        let req = request.into_inner();
        let node_id = check_node_secret(&self.store().snapshot(), req.node.as_ref())?;
        let updates = req
            .allocs_json
            .iter()
            .map(|j| serde_json::from_slice::<Allocation>(j))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServerError::BadRequest(format!("invalid allocation update: {e}")))?;
        if updates.iter().any(|a| a.id.is_empty()) {
            return Err(ServerError::BadRequest("allocation update without ID".to_owned()).into());
        }
        let written = self
            .store()
            .write(move |txn| apply_client_updates(txn, &node_id, updates))
            .await?;
        Ok(Response::new(v1::UpdateAllocsResponse {
            index: written.index,
        }))
    }
}
