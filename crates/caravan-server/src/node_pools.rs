//! The NodePools service and the node pool rules: list and read pools (the built-ins `all` and
//! `default` are constants, never stored), upsert and delete (never a built-in one, never a
//! pool that nodes or live jobs still use), and a pool's nodes and jobs. Nodes create the pool
//! they register in when it is missing ([`ensure_pool`]); jobs must name an existing one
//! ([`require_pool`]).

use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, node_pools_server};
use caravan_state::{Row, Snapshot, Store, TableId, Txn, WatchKey};
use caravan_structs::{
    JOB_STATUS_DEAD, Job, NODE_POOL_ALL, Node, NodePool, NodeStubFields, format_multierror,
};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::jobs::job_summary;
use crate::paginate::Pager;
use crate::query::{query_meta, wait_of};

/// Filters on pools and stubs: every object reads as a map.
static POOL_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;
static NODE_SCHEMA: caravan_filter::MapPaths = caravan_filter::MapPaths(Node::MAP_PATHS);

/// One pool as the API shows it: a stored row or a built-in rendered on the spot.
struct PoolDoc {
    name: String,
    json: Arc<str>,
    modify_index: u64,
}

fn built_in_doc(pool: &NodePool) -> Result<PoolDoc, ServerError> {
    let json = serde_json::to_string(pool)
        .map_err(|e| ServerError::Internal(format!("encoding node pool: {e}")))?;
    Ok(PoolDoc {
        name: pool.name.clone(),
        json: json.into(),
        modify_index: pool.modify_index,
    })
}

fn stored_doc(row: &Arc<Row<NodePool>>) -> PoolDoc {
    PoolDoc {
        name: row.value.name.clone(),
        json: row.json.clone(),
        modify_index: row.value.modify_index,
    }
}

/// Every pool, built-ins included, by name.
fn all_pools(snap: &Snapshot) -> Result<Vec<PoolDoc>, ServerError> {
    let mut docs = NodePool::built_in()
        .iter()
        .map(built_in_doc)
        .collect::<Result<Vec<_>, _>>()?;
    docs.extend(snap.node_pools().iter().map(|(_, row)| stored_doc(row)));
    docs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(docs)
}

/// The pool of that name, built-in or stored.
pub fn find_pool(snap: &Snapshot, name: &str) -> Option<NodePool> {
    NodePool::built_in_named(name).or_else(|| snap.node_pools().get(name).map(|r| r.value.clone()))
}

/// The index of the last change to the pools (built-ins date from index 1).
fn pools_index(snap: &Snapshot) -> u64 {
    snap.node_pools().index().max(1)
}

/// Creates the pool a node registers in when it does not exist yet (as Nomad does).
pub fn ensure_pool(txn: &mut Txn<'_>, name: &str) -> Result<(), ServerError> {
    if NodePool::is_built_in_name(name) || txn.snapshot().node_pools().get(name).is_some() {
        return Ok(());
    }
    txn.put(NodePool::named(name))?;
    Ok(())
}

/// A job may only target a pool that exists; the error is Nomad's text (one of the errors of
/// job admission).
pub fn require_pool(snap: &Snapshot, job: &Job) -> Result<(), String> {
    if find_pool(snap, &job.node_pool).is_some() {
        return Ok(());
    }
    Err(format!(
        "job {:?} is in nonexistent node pool {:?}",
        job.id, job.node_pool
    ))
}

/// Whether a node is in `pool` (`all` holds every node).
fn node_in_pool(node: &Node, pool: &str) -> bool {
    pool == NODE_POOL_ALL || node.node_pool == pool
}

fn decode_pool(json: &[u8]) -> Result<NodePool, ServerError> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode node pool: {e}")))?;
    caravan_structs::go_json::from_value(value)
        .map_err(|e| ServerError::BadRequest(format!("failed to decode node pool: {e}")))
}

/// Nomad's checks of an upsert: a valid pool, and not a built-in one.
fn check_upsert(pool: &NodePool) -> Result<(), ServerError> {
    pool.validate()
        .map_err(|e| ServerError::BadRequest(format!("invalid node pool {:?}: {e}", pool.name)))?;
    if NodePool::is_built_in_name(&pool.name) {
        return Err(ServerError::BadRequest(format!(
            "modifying node pool {:?} is not allowed",
            pool.name
        )));
    }
    Ok(())
}

/// Deletes a pool inside a write: refused while nodes or live jobs use it, for a pool that
/// does not exist, and for the built-ins (Nomad's texts, in Nomad's order).
fn delete_pool(txn: &mut Txn<'_>, name: &str, region: &str) -> Result<(), ServerError> {
    if name.is_empty() {
        return Err(ServerError::BadRequest(
            "node pool name is empty".to_owned(),
        ));
    }
    let snap = txn.snapshot();
    let mut in_use = Vec::new();
    if snap
        .jobs()
        .iter()
        .any(|(_, r)| r.value.node_pool == name && r.value.status != JOB_STATUS_DEAD)
    {
        in_use.push(format!(
            "node pool {name:?} has non-terminal jobs in regions: [{region}]"
        ));
    }
    if snap.nodes().iter().any(|(_, r)| r.value.node_pool == name) {
        in_use.push(format!(
            "node pool {name:?} has nodes in regions: [{region}]"
        ));
    }
    if !in_use.is_empty() {
        return Err(ServerError::Conflict(format_multierror(&in_use)));
    }
    if NodePool::is_built_in_name(name) {
        return Err(ServerError::BadRequest(format!(
            "deleting node pool {name:?} is not allowed"
        )));
    }
    if !txn.delete::<NodePool>(name) {
        return Err(ServerError::NotFound(format!("node pool {name} not found")));
    }
    Ok(())
}

#[derive(Clone)]
pub struct NodePoolsService {
    server: Arc<Server>,
}

impl NodePoolsService {
    pub fn new(server: Arc<Server>) -> Self {
        NodePoolsService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

fn node_json<'a>(row: &'a &Arc<Row<Node>>) -> &'a str {
    &row.json
}

fn copy_json(json: &str) -> Bytes {
    Bytes::copy_from_slice(json.as_bytes())
}

#[tonic::async_trait]
impl node_pools_server::NodePools for NodePoolsService {
    async fn list_node_pools(
        &self,
        request: Request<v1::ListNodePoolsRequest>,
    ) -> Result<Response<v1::NodePoolDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        // Tokens are pool names.
        let pager = Pager::new(&q, &POOL_SCHEMA)?.with_plain_tokens();
        let keys = [WatchKey::Table(TableId::NodePools)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = pools_index(snap);
                let page = all_pools(snap).and_then(|docs| {
                    let mut docs: Vec<PoolDoc> = docs
                        .into_iter()
                        .filter(|d| d.name.starts_with(&q.prefix))
                        .collect();
                    if pager.reverse() {
                        docs.reverse();
                    }
                    pager.page(
                        docs.iter(),
                        |d: &&PoolDoc| d.name.clone(),
                        |d: &&PoolDoc| &d.json,
                        |d: &&PoolDoc| Ok(copy_json(&d.json)),
                    )
                });
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::NodePoolDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_node_pool(
        &self,
        request: Request<v1::GetNodePoolRequest>,
    ) -> Result<Response<v1::GetNodePoolResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(TableId::NodePools, req.name.clone())];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let doc = match NodePool::built_in_named(&req.name) {
                    Some(pool) => built_in_doc(&pool).map(Some),
                    None => Ok(snap.node_pools().get(&req.name).map(stored_doc)),
                };
                let index = match &doc {
                    Ok(Some(d)) => d.modify_index,
                    _ => pools_index(snap),
                };
                ((doc, index), index)
            })
            .await;
        let json = json?.map(|d| copy_json(&d.json)).unwrap_or_default();
        Ok(Response::new(v1::GetNodePoolResponse {
            pool_json: json,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn upsert_node_pool(
        &self,
        request: Request<v1::UpsertNodePoolRequest>,
    ) -> Result<Response<v1::NodePoolWriteResponse>, Status> {
        let req = request.into_inner();
        let mut pool = decode_pool(&req.pool_json)?;
        check_upsert(&pool)?;
        // Caravan has one region: there is nothing to replicate, so no hash.
        pool.hash = None;
        let written = self
            .store()
            .write(move |txn| -> Result<(), ServerError> {
                txn.put(pool)?;
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::NodePoolWriteResponse {
            index: written.index,
        }))
    }

    async fn delete_node_pool(
        &self,
        request: Request<v1::DeleteNodePoolRequest>,
    ) -> Result<Response<v1::NodePoolWriteResponse>, Status> {
        let req = request.into_inner();
        let region = self.server.config.region.clone();
        let written = self
            .store()
            .write(move |txn| delete_pool(txn, &req.name, &region))
            .await?;
        Ok(Response::new(v1::NodePoolWriteResponse {
            index: written.index,
        }))
    }

    async fn get_node_pool_nodes(
        &self,
        request: Request<v1::GetNodePoolNodesRequest>,
    ) -> Result<Response<v1::NodePoolDocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let pager = Pager::new(&q, &NODE_SCHEMA)?;
        let fields = NodeStubFields {
            resources: req.resources,
            os: req.os,
        };
        let keys = [
            WatchKey::Table(TableId::Nodes),
            WatchKey::Row(TableId::NodePools, req.name.clone()),
        ];
        type NodeRow = Arc<Row<Node>>;
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = snap.nodes().index().max(1);
                // A pool that does not exist has no nodes (as in Nomad).
                let rows: Vec<&NodeRow> = if find_pool(snap, &req.name).is_some() {
                    snap.nodes()
                        .iter()
                        .map(|(_, r)| r)
                        .filter(|r| node_in_pool(&r.value, &req.name))
                        .collect()
                } else {
                    Vec::new()
                };
                let render = |r: &&NodeRow| {
                    serde_json::to_vec(&r.value.stub(fields))
                        .map(Bytes::from)
                        .map_err(|e| ServerError::Internal(format!("encoding node stub: {e}")))
                };
                let token = |r: &&NodeRow| r.value.id.clone();
                let page = if pager.reverse() {
                    pager.page(rows.iter().rev().copied(), token, node_json, render)
                } else {
                    pager.page(rows.iter().copied(), token, node_json, render)
                };
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::NodePoolDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_node_pool_jobs(
        &self,
        request: Request<v1::GetNodePoolJobsRequest>,
    ) -> Result<Response<v1::NodePoolDocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        // Tokens are `<namespace>.<id>`, in key order: never numeric.
        let pager = Pager::new(&q, &POOL_SCHEMA)?.with_plain_tokens();
        let ns = if q.namespace.is_empty() {
            "default".to_owned()
        } else {
            q.namespace.clone()
        };
        let keys = [
            WatchKey::Table(TableId::Jobs),
            WatchKey::Table(TableId::Allocs),
            WatchKey::Table(TableId::Evals),
            WatchKey::Row(TableId::NodePools, req.name.clone()),
        ];
        type JobRow = Arc<Row<Job>>;
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                // Summaries change with allocations and evaluations.
                let index = snap
                    .jobs()
                    .index()
                    .max(snap.allocs().index())
                    .max(snap.evals().index());
                let mut rows: Vec<&JobRow> = if find_pool(snap, &req.name).is_some() {
                    snap.jobs()
                        .iter()
                        .map(|(_, r)| r)
                        .filter(|r| ns == "*" || r.value.namespace == ns)
                        .filter(|r| crate::query::namespace_allowed(&q, &r.value.namespace))
                        .filter(|r| r.value.node_pool == req.name)
                        .collect()
                } else {
                    Vec::new()
                };
                if pager.reverse() {
                    rows.reverse();
                }
                let page = pager.page(
                    rows.into_iter(),
                    |r: &&JobRow| format!("{}.{}", r.value.namespace, r.value.id),
                    |r: &&JobRow| &r.json,
                    |r: &&JobRow| {
                        let mut stub = r.value.stub(Some(job_summary(snap, &r.value)));
                        if !req.meta {
                            stub.meta = None;
                        }
                        serde_json::to_vec(&stub)
                            .map(Bytes::from)
                            .map_err(|e| ServerError::Internal(format!("encoding job stub: {e}")))
                    },
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::NodePoolDocsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_of_built_ins_and_bad_pools_are_refused_with_nomads_texts() {
        let err = check_upsert(&NodePool::named("default")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "modifying node pool \"default\" is not allowed"
        );
        let err = check_upsert(&NodePool::named("no good")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid node pool \"no good\": 1 error occurred:\n\t* invalid name \"no good\", \
             must match regex ^[a-zA-Z0-9-_]{1,128}$\n\n"
        );
        assert!(check_upsert(&NodePool::named("prod")).is_ok());
    }

    #[test]
    fn all_holds_every_node() {
        let n = Node {
            node_pool: "prod".into(),
            ..Node::default()
        };
        assert!(node_in_pool(&n, "all"));
        assert!(node_in_pool(&n, "prod"));
        assert!(!node_in_pool(&n, "default"));
    }
}
