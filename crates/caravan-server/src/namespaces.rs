//! The Namespaces service and the namespace rules: list and read (the built-in `default` exists
//! until an operator stores a changed one), upsert (Nomad's validation; `CreateIndex` kept),
//! delete (never `default`, never while live jobs or allocations remain), and what job
//! admission asks of a namespace ([`admit_job`]): that it exists and allows the job's task
//! drivers and network modes.

use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, namespaces_server};
use caravan_state::{Snapshot, Store, TableId, Txn, WatchKey};
use caravan_structs::{JOB_STATUS_DEAD, Job, NAMESPACE_DEFAULT, Namespace, format_multierror};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::paginate::Pager;
use crate::query::{query_meta, wait_of};

static NAMESPACE_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;

/// The namespace of that name: stored, or the built-in `default`.
pub fn find_namespace(snap: &Snapshot, name: &str) -> Option<Namespace> {
    snap.namespaces()
        .get(name)
        .map(|r| r.value.clone())
        .or_else(|| (name == NAMESPACE_DEFAULT).then(Namespace::built_in_default))
}

/// Every namespace, `default` included, by name.
pub fn all_namespaces(snap: &Snapshot) -> Vec<Namespace> {
    let mut all: Vec<Namespace> = snap
        .namespaces()
        .iter()
        .map(|(_, r)| r.value.clone())
        .collect();
    if snap.namespaces().get(NAMESPACE_DEFAULT).is_none() {
        all.push(Namespace::built_in_default());
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The index of the last change to the namespaces (`default` dates from index 1).
fn namespaces_index(snap: &Snapshot) -> u64 {
    snap.namespaces().index().max(1)
}

/// Job admission: the job's namespace must exist and allow what the job uses (Nomad's
/// `jobNamespaceConstraintCheckHook`, with its texts).
pub fn admit_job(snap: &Snapshot, job: &Job) -> Result<(), String> {
    let Some(ns) = find_namespace(snap, &job.namespace) else {
        return Err(format!(
            "job {:?} is in nonexistent namespace {:?}",
            job.id, job.namespace
        ));
    };
    ns.check_job(job)
}

fn encode(ns: &Namespace) -> Result<Bytes, ServerError> {
    serde_json::to_vec(ns)
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding namespace: {e}")))
}

fn decode(json: &[u8]) -> Result<Namespace, ServerError> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode namespace: {e}")))?;
    caravan_structs::go_json::from_value(value)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode namespace: {e}")))
}

/// Deletes a namespace inside a write. Nomad answers these with 500; they are the caller's
/// mistakes: 400 for `default`, 404 for a missing one, 409 while it is in use.
fn delete_namespace(txn: &mut Txn<'_>, name: &str, region: &str) -> Result<(), ServerError> {
    if name == NAMESPACE_DEFAULT {
        return Err(ServerError::BadRequest(
            "can not delete default namespace".to_owned(),
        ));
    }
    let snap = txn.snapshot();
    if snap.namespaces().get(name).is_none() {
        return Err(ServerError::NotFound("namespace not found".to_owned()));
    }
    let mut in_use = Vec::new();
    if snap
        .jobs()
        .iter()
        .any(|(_, r)| r.value.namespace == name && r.value.status != JOB_STATUS_DEAD)
    {
        in_use.push(format!(
            "namespace {name:?} has non-terminal jobs in regions: [{region}]"
        ));
    }
    if snap
        .allocs()
        .iter()
        .any(|(_, r)| r.value.namespace == name && !r.value.terminal_status())
    {
        in_use.push(format!(
            "namespace {name:?} has non-terminal allocations in regions: [{region}]"
        ));
    }
    if !in_use.is_empty() {
        return Err(ServerError::Conflict(format_multierror(&in_use)));
    }
    txn.delete::<Namespace>(name);
    Ok(())
}

#[derive(Clone)]
pub struct NamespacesService {
    server: Arc<Server>,
}

impl NamespacesService {
    pub fn new(server: Arc<Server>) -> Self {
        NamespacesService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

#[tonic::async_trait]
impl namespaces_server::Namespaces for NamespacesService {
    async fn list_namespaces(
        &self,
        request: Request<v1::ListNamespacesRequest>,
    ) -> Result<Response<v1::NamespaceDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let pager = Pager::new(&q, &NAMESPACE_SCHEMA)?.with_plain_tokens();
        let keys = [WatchKey::Table(TableId::Namespaces)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = namespaces_index(snap);
                let mut all: Vec<(Namespace, Bytes)> = Vec::new();
                for ns in all_namespaces(snap) {
                    if !ns.name.starts_with(&q.prefix) {
                        continue;
                    }
                    match encode(&ns) {
                        Ok(json) => all.push((ns, json)),
                        Err(e) => return ((Err(e), index), index),
                    }
                }
                if pager.reverse() {
                    all.reverse();
                }
                let page = pager.page(
                    all.iter(),
                    |(ns, _): &&(Namespace, Bytes)| ns.name.clone(),
                    |(_, json): &&(Namespace, Bytes)| std::str::from_utf8(json).unwrap_or(""),
                    |(_, json): &&(Namespace, Bytes)| Ok(json.clone()),
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::NamespaceDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_namespace(
        &self,
        request: Request<v1::GetNamespaceRequest>,
    ) -> Result<Response<v1::GetNamespaceResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(TableId::Namespaces, req.name.clone())];
        let (found, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let found = find_namespace(snap, &req.name);
                let index = found
                    .as_ref()
                    .map_or_else(|| namespaces_index(snap), |ns| ns.modify_index);
                ((found, index), index)
            })
            .await;
        let json = found.as_ref().map(encode).transpose()?.unwrap_or_default();
        Ok(Response::new(v1::GetNamespaceResponse {
            namespace_json: json,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn upsert_namespace(
        &self,
        request: Request<v1::UpsertNamespaceRequest>,
    ) -> Result<Response<v1::NamespaceWriteResponse>, Status> {
        let req = request.into_inner();
        let mut ns = decode(&req.namespace_json)?;
        ns.validate().map_err(|errors| {
            ServerError::BadRequest(format!(
                "Invalid namespace {:?}: {}",
                ns.name,
                format_multierror(&errors)
            ))
        })?;
        ns.hash = None;
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                // A replaced namespace keeps its CreateIndex; the first change to the built-in
                // `default` stores it, with this write's index (Nomad keeps 1).
                txn.put(ns)?;
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::NamespaceWriteResponse {
            index: written.index,
        }))
    }

    async fn delete_namespace(
        &self,
        request: Request<v1::DeleteNamespaceRequest>,
    ) -> Result<Response<v1::NamespaceWriteResponse>, Status> {
        let req = request.into_inner();
        let region = self.server.config.region.clone();
        let written = self
            .store()
            .write(move |txn| delete_namespace(txn, &req.name, &region))
            .await?;
        Ok(Response::new(v1::NamespaceWriteResponse {
            index: written.index,
        }))
    }
}
