//! The Nodes service: registration and heartbeats from client agents; reads, eligibility,
//! drain, purge and evaluate for the gateway. The node rules (what a heartbeat changes, which
//! events are recorded, which evaluations are created) live here; the state only stores.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use caravan_proto::v1::{self, nodes_server};
use caravan_state::{Store, TableId, Txn, WatchKey, Written};
use caravan_structs::node::{
    DRAIN_STATUS_CANCELED, DRAIN_STATUS_DRAINING, NODE_EVENT_SUBSYSTEM_CLUSTER,
    NODE_EVENT_SUBSYSTEM_DRAIN, NODE_EVENT_SUBSYSTEM_HEARTBEAT, NODE_SCHEDULING_ELIGIBLE,
    NODE_SCHEDULING_INELIGIBLE, NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN, NODE_STATUS_INIT,
    NODE_STATUS_READY,
};
use caravan_structs::{
    DrainMetadata, DrainSpec, DrainStrategy, Evaluation, Node, NodeEvent, NodeStubFields, Time,
};
use tonic::{Request, Response, Status};

use crate::cache::ResultCache;

use crate::Server;
use crate::error::ServerError;
use crate::paginate::Pager;
use crate::query::{query_meta, wait_of};

pub const EVENT_REGISTERED: &str = "Node registered";
pub const EVENT_REREGISTERED_BY_HEARTBEAT: &str = "Node reregistered by heartbeat";
pub const EVENT_HEARTBEAT_MISSED: &str = "Node heartbeat missed";
pub const EVENT_DRAIN_SET: &str = "Node drain strategy set";
pub const EVENT_DRAIN_UPDATED: &str = "Node drain strategy updated";
pub const EVENT_DRAIN_DISABLED: &str = "Node drain disabled";
pub const EVENT_ELIGIBLE: &str = "Node marked as eligible for scheduling";
pub const EVENT_INELIGIBLE: &str = "Node marked as ineligible for scheduling";

pub const TRIGGER_NODE_UPDATE: &str = "node-update";

/// Filters on nodes see a Node's maps as maps and everything else as structs.
static NODE_SCHEMA: caravan_filter::MapPaths = caravan_filter::MapPaths(Node::MAP_PATHS);

pub(crate) fn now() -> Time {
    Time::from_system_time(SystemTime::now())
}

pub(crate) fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn event(subsystem: &str, message: &str, index: u64) -> NodeEvent {
    NodeEvent {
        create_index: index,
        details: None,
        message: message.to_owned(),
        subsystem: subsystem.to_owned(),
        timestamp: now(),
    }
}

fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn require_node_id(id: &str, what: &str) -> Result<(), ServerError> {
    if id.is_empty() {
        return Err(ServerError::BadRequest(format!("missing node ID{what}")));
    }
    if !is_uuid(id) {
        return Err(ServerError::BadRequest(
            "node lookup failed: index error: UUID must be 36 characters".to_owned(),
        ));
    }
    Ok(())
}

fn existing_node(txn: &Txn<'_>, id: &str) -> Result<Node, ServerError> {
    txn.snapshot()
        .nodes()
        .get(id)
        .map(|row| row.value.clone())
        .ok_or_else(ServerError::node_not_found)
}

/// Creates one `node-update` evaluation per job with allocations on the node that still matter
/// (NOMAD-BEHAVIOR 2.4), plus one per system job that targets the node. Returns their IDs.
fn create_node_evals(txn: &mut Txn<'_>, node: &Node) -> Result<Vec<String>, ServerError> {
    let snap = txn.snapshot().clone();
    let mut jobs: Vec<(String, String)> = Vec::new();
    for row in snap.allocs_by_node(&node.id) {
        let alloc = &row.value;
        let job = snap
            .job_version(&alloc.namespace, &alloc.job_id, alloc.job_version)
            .or_else(|| snap.job(&alloc.namespace, &alloc.job_id).map(|r| &r.value));
        let job_type = job.map(|j| j.r#type.as_str()).unwrap_or("");
        let relevant = match job_type {
            "system" | "sysbatch" => false,
            "batch" => !alloc.client_terminal_status(),
            _ => !(alloc.server_terminal_status() && alloc.client_terminal_status()),
        };
        let key = (alloc.namespace.clone(), alloc.job_id.clone());
        if relevant && !jobs.contains(&key) {
            jobs.push(key);
        }
    }
    for (_, row) in snap.jobs().iter() {
        let job = &row.value;
        if job.r#type != "system" || job.stop {
            continue;
        }
        let in_dc = job
            .datacenters
            .iter()
            .flatten()
            .any(|dc| dc == "*" || dc == &node.datacenter);
        let pool = if job.node_pool.is_empty() {
            "default"
        } else {
            &job.node_pool
        };
        let node_pool = if node.node_pool.is_empty() {
            "default"
        } else {
            &node.node_pool
        };
        let in_pool = pool == "all" || pool == node_pool;
        let key = (job.namespace.clone(), job.id.clone());
        if in_dc && in_pool && !jobs.contains(&key) {
            jobs.push(key);
        }
    }
    let mut ids = Vec::with_capacity(jobs.len());
    let now_ns = unix_nanos();
    for (namespace, job_id) in jobs {
        let job_key = format!("{namespace}/{job_id}");
        let (priority, job_type, job_modify_index) = snap
            .jobs()
            .get(&job_key)
            .map(|r| {
                (
                    r.value.priority,
                    r.value.r#type.clone(),
                    r.value.job_modify_index,
                )
            })
            .unwrap_or((50, "service".to_owned(), 0));
        let eval = Evaluation {
            id: uuid::Uuid::new_v4().to_string(),
            namespace,
            priority,
            r#type: job_type,
            triggered_by: TRIGGER_NODE_UPDATE.to_owned(),
            job_id,
            job_modify_index,
            node_id: node.id.clone(),
            node_modify_index: node.modify_index,
            status: "pending".to_owned(),
            create_time: now_ns,
            modify_time: now_ns,
            ..Evaluation::default()
        };
        ids.push(eval.id.clone());
        txn.put(eval)?;
    }
    Ok(ids)
}

/// Stores `node` and, when `evaluate`, creates its node-update evaluations; returns their IDs
/// and the node's new modify index.
fn put_and_evaluate(
    txn: &mut Txn<'_>,
    node: Node,
    evaluate: bool,
) -> Result<(Vec<String>, u64), ServerError> {
    let row = txn.put(node)?;
    let node = row.value.clone();
    let evals = if evaluate {
        create_node_evals(txn, &node)?
    } else {
        Vec::new()
    };
    Ok((evals, node.modify_index))
}

/// The answer of drain and eligibility updates.
fn drain_update_response(written: Written<(Vec<String>, u64)>) -> v1::NodeDrainUpdateResponse {
    let (evals, node_modify_index) = written.value;
    v1::NodeDrainUpdateResponse {
        node_modify_index,
        eval_create_index: if evals.is_empty() { 0 } else { written.index },
        eval_ids: evals,
        index: written.index,
    }
}

/// Marks a node down after a missed heartbeat (called by the heartbeat timers).
pub async fn mark_heartbeat_missed(store: &Store, node_id: &str) -> Result<(), ServerError> {
    let id = node_id.to_owned();
    store
        .write(move |txn| -> Result<(), ServerError> {
            let Some(row) = txn.snapshot().nodes().get(&id) else {
                return Ok(());
            };
            if row.value.status == NODE_STATUS_DOWN {
                return Ok(());
            }
            let mut node = row.value.clone();
            let index = txn.index();
            node.status = NODE_STATUS_DOWN.to_owned();
            node.status_updated_at = unix_secs();
            node.last_missed_heartbeat_index = index;
            node.add_event(event(
                NODE_EVENT_SUBSYSTEM_HEARTBEAT,
                EVENT_HEARTBEAT_MISSED,
                index,
            ));
            let row = txn.put(node)?;
            let node = row.value.clone();
            create_node_evals(txn, &node)?;
            Ok(())
        })
        .await?;
    Ok(())
}

type NodeRow = Arc<caravan_state::Row<Node>>;

fn row_token(row: &&NodeRow) -> String {
    row.value.id.clone()
}

fn row_json<'a>(row: &'a &NodeRow) -> &'a str {
    &row.json
}

/// What identifies a rendered node list: the table version and every option that shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListKey {
    table_index: u64,
    prefix: String,
    filter: String,
    per_page: u32,
    next_token: String,
    reverse: bool,
    fields: (bool, bool),
}

type RenderedPage = Arc<(Vec<Bytes>, String)>;

#[derive(Clone)]
pub struct NodesService {
    server: Arc<Server>,
    lists: Arc<ResultCache<ListKey, RenderedPage>>,
}

impl NodesService {
    pub fn new(server: Arc<Server>) -> Self {
        NodesService {
            server,
            lists: Arc::new(ResultCache::new(32)),
        }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    fn update_response(
        &self,
        index: u64,
        node_modify_index: u64,
        ttl: Duration,
    ) -> v1::NodeUpdateResponse {
        let cfg = &self.server.config;
        v1::NodeUpdateResponse {
            heartbeat_ttl_ms: ttl.as_millis() as u64,
            eval_ids: Vec::new(),
            eval_create_index: 0,
            node_modify_index,
            leader_rpc_addr: cfg.rpc_advertise.clone(),
            num_nodes: i32::try_from(self.store().snapshot().nodes().len()).unwrap_or(i32::MAX),
            servers: vec![v1::ServerInfo {
                rpc_advertise_addr: cfg.rpc_advertise.clone(),
                datacenter: cfg.datacenter.clone(),
                rpc_major_version: 1,
                rpc_minor_version: 1,
            }],
            scheduling_eligibility: String::new(),
            index,
            meta: Some(query_meta(index, String::new())),
        }
    }
}

fn decode_node(json: &[u8]) -> Result<Node, ServerError> {
    serde_json::from_slice(json).map_err(|e| ServerError::BadRequest(format!("invalid node: {e}")))
}

fn validate_status(status: &str) -> Result<(), ServerError> {
    match status {
        NODE_STATUS_INIT | NODE_STATUS_READY | NODE_STATUS_DOWN | NODE_STATUS_DISCONNECTED => {
            Ok(())
        }
        other => Err(ServerError::BadRequest(format!(
            "invalid status for node: {other:?}"
        ))),
    }
}

#[tonic::async_trait]
impl nodes_server::Nodes for NodesService {
    async fn register(
        &self,
        request: Request<v1::RegisterNodeRequest>,
    ) -> Result<Response<v1::NodeUpdateResponse>, Status> {
        let mut node = decode_node(&request.into_inner().node_json)?;
        if node.id.is_empty() {
            return Err(
                ServerError::BadRequest("missing node ID for client registration".into()).into(),
            );
        }
        if !is_uuid(&node.id) {
            return Err(ServerError::BadRequest(format!(
                "invalid node ID {:?}: must be a UUID",
                node.id
            ))
            .into());
        }
        if node.secret_id.is_empty() {
            return Err(ServerError::BadRequest(
                "missing node secret ID for client registration".into(),
            )
            .into());
        }
        if node.datacenter.is_empty() {
            return Err(ServerError::BadRequest(
                "missing datacenter for client registration".into(),
            )
            .into());
        }
        if node.name.is_empty() {
            return Err(ServerError::BadRequest(
                "missing node name for client registration".into(),
            )
            .into());
        }
        if node.status.is_empty() {
            node.status = NODE_STATUS_INIT.to_owned();
        }
        validate_status(&node.status)?;
        if node.node_pool.is_empty() {
            node.node_pool = caravan_structs::NODE_POOL_DEFAULT.to_owned();
        }
        caravan_structs::validate_node_pool_name(&node.node_pool)
            .map_err(|e| ServerError::BadRequest(format!("invalid node pool: {e}")))?;
        if node.node_pool == caravan_structs::NODE_POOL_ALL {
            return Err(ServerError::BadRequest(format!(
                "node is not allowed to register in node pool {:?}",
                caravan_structs::NODE_POOL_ALL
            ))
            .into());
        }
        node.set_computed_class();
        let node_id = node.id.clone();
        let written = self
            .store()
            .write(move |txn| -> Result<u64, ServerError> {
                let index = txn.index();
                node.status_updated_at = unix_secs();
                match txn.snapshot().nodes().get(&node.id) {
                    Some(existing) => {
                        let existing = &existing.value;
                        if existing.secret_id != node.secret_id {
                            return Err(ServerError::PermissionDenied(
                                "node secret ID does not match".to_owned(),
                            ));
                        }
                        // The server owns these; a re-registration keeps them.
                        node.events = existing.events.clone();
                        node.drain_strategy = existing.drain_strategy.clone();
                        node.scheduling_eligibility = existing.scheduling_eligibility.clone();
                        node.last_drain = existing.last_drain.clone();
                        node.last_missed_heartbeat_index = existing.last_missed_heartbeat_index;
                        if existing.status == NODE_STATUS_DOWN && node.status != NODE_STATUS_DOWN {
                            node.add_event(event(
                                NODE_EVENT_SUBSYSTEM_CLUSTER,
                                EVENT_REREGISTERED_BY_HEARTBEAT,
                                index,
                            ));
                        }
                    }
                    None => {
                        let mut registered =
                            event(NODE_EVENT_SUBSYSTEM_CLUSTER, EVENT_REGISTERED, 0);
                        registered.timestamp = Time::from_unix(node.status_updated_at, 0);
                        node.events = Some(vec![registered]);
                        if node.scheduling_eligibility.is_empty() {
                            node.scheduling_eligibility = NODE_SCHEDULING_ELIGIBLE.to_owned();
                        }
                    }
                }
                // A node names its pool into existence (as in Nomad).
                crate::node_pools::ensure_pool(txn, &node.node_pool)?;
                let row = txn.put(node)?;
                Ok(row.value.modify_index)
            })
            .await?;
        let ttl = self
            .server
            .heartbeats
            .next_ttl(self.store().snapshot().nodes().len());
        self.server.heartbeats.reset(&node_id, ttl);
        tracing::info!(node_id = %node_id, index = written.index, "node registered");
        Ok(Response::new(self.update_response(
            written.index,
            written.value,
            ttl,
        )))
    }

    async fn update_status(
        &self,
        request: Request<v1::UpdateNodeStatusRequest>,
    ) -> Result<Response<v1::NodeUpdateResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, " for client status update")?;
        validate_status(&req.status)?;
        let node_id = req.node_id.clone();
        let status = req.status.clone();
        let written = self
            .store()
            .write(move |txn| -> Result<u64, ServerError> {
                let mut node = existing_node(txn, &req.node_id)?;
                if node.secret_id != req.secret_id {
                    return Err(ServerError::PermissionDenied(
                        "node secret ID does not match".to_owned(),
                    ));
                }
                if node.status == req.status {
                    return Ok(node.modify_index);
                }
                let index = txn.index();
                if node.status == NODE_STATUS_DOWN && req.status == NODE_STATUS_READY {
                    node.add_event(event(
                        NODE_EVENT_SUBSYSTEM_CLUSTER,
                        EVENT_REREGISTERED_BY_HEARTBEAT,
                        index,
                    ));
                }
                // A node that becomes ready may take system jobs and blocked work.
                let to_ready = req.status == NODE_STATUS_READY && node.status != NODE_STATUS_READY;
                node.status = req.status;
                node.status_updated_at = unix_secs();
                let row = txn.put(node)?;
                let node = row.value.clone();
                if to_ready {
                    create_node_evals(txn, &node)?;
                }
                Ok(node.modify_index)
            })
            .await?;
        let ttl = self
            .server
            .heartbeats
            .next_ttl(self.store().snapshot().nodes().len());
        if status == NODE_STATUS_DOWN {
            self.server.heartbeats.clear(&node_id);
        } else {
            self.server.heartbeats.reset(&node_id, ttl);
        }
        Ok(Response::new(self.update_response(
            written.index,
            written.value,
            ttl,
        )))
    }

    async fn get_node(
        &self,
        request: Request<v1::GetNodeRequest>,
    ) -> Result<Response<v1::GetNodeResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, "")?;
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(TableId::Nodes, req.node_id.clone())];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                match snap.nodes().get(&req.node_id) {
                    Some(row) => {
                        let index = row.value.modify_index;
                        ((Some(row.api_json().to_owned()), index), index)
                    }
                    None => ((None, snap.nodes().index()), snap.nodes().index()),
                }
            })
            .await;
        Ok(Response::new(v1::GetNodeResponse {
            node_json: json.map(Bytes::from).unwrap_or_default(),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn list_nodes(
        &self,
        request: Request<v1::ListNodesRequest>,
    ) -> Result<Response<v1::ListNodesResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let pager = Pager::new(&q, &NODE_SCHEMA)?;
        let fields = NodeStubFields {
            resources: req.resources,
            os: req.os,
        };
        let keys = [WatchKey::Table(TableId::Nodes)];
        let lists = self.lists.clone();
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let table = snap.nodes();
                let key = ListKey {
                    table_index: table.index(),
                    prefix: q.prefix.clone(),
                    filter: q.filter.clone(),
                    per_page: q.per_page,
                    next_token: q.next_token.clone(),
                    reverse: q.reverse,
                    fields: (fields.resources, fields.os),
                };
                let page = lists.get_or_try(key, || {
                    let rows: Vec<&NodeRow> = table.prefixed(&q.prefix).collect();
                    let render = |row: &&NodeRow| {
                        serde_json::to_vec(&row.value.stub(fields))
                            .map(Bytes::from)
                            .map_err(|e| ServerError::Internal(format!("encoding node stub: {e}")))
                    };
                    let page = if pager.reverse() {
                        pager.page(rows.iter().rev().copied(), row_token, row_json, render)
                    } else {
                        pager.page(rows.iter().copied(), row_token, row_json, render)
                    }?;
                    Ok::<_, ServerError>(Arc::new((page.items, page.next_token)))
                });
                ((page, table.index()), table.index())
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::ListNodesResponse {
            stubs_json: page.0.clone(),
            meta: Some(query_meta(index, page.1.clone())),
        }))
    }

    async fn get_node_allocs(
        &self,
        request: Request<v1::GetNodeAllocsRequest>,
    ) -> Result<Response<v1::GetNodeAllocsResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, "")?;
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::allocs_on_node(&req.node_id)];
        let (allocs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let mut out = Vec::new();
                let mut max_index = 0;
                for row in snap.allocs_by_node(&req.node_id) {
                    max_index = max_index.max(row.value.modify_index);
                    out.push(crate::allocs::alloc_json(snap, &row.value));
                }
                let index = if max_index > 0 {
                    max_index
                } else {
                    snap.allocs().index().max(1)
                };
                ((out, index), index)
            })
            .await;
        let allocs = allocs.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::GetNodeAllocsResponse {
            allocs_json: allocs,
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn update_eligibility(
        &self,
        request: Request<v1::UpdateEligibilityRequest>,
    ) -> Result<Response<v1::NodeDrainUpdateResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, " for setting scheduling eligibility")?;
        if req.eligibility != NODE_SCHEDULING_ELIGIBLE
            && req.eligibility != NODE_SCHEDULING_INELIGIBLE
        {
            return Err(ServerError::BadRequest(format!(
                "invalid scheduling eligibility {:?}",
                req.eligibility
            ))
            .into());
        }
        let written = self
            .store()
            .write(move |txn| -> Result<(Vec<String>, u64), ServerError> {
                let mut node = existing_node(txn, &req.node_id)?;
                if node.drain_strategy.is_some() && req.eligibility == NODE_SCHEDULING_ELIGIBLE {
                    return Err(ServerError::BadRequest(
                        "can not set node's scheduling eligibility to eligible while it is draining"
                            .to_owned(),
                    ));
                }
                if node.scheduling_eligibility == req.eligibility {
                    return Ok((Vec::new(), 0));
                }
                let index = txn.index();
                let became_eligible = req.eligibility == NODE_SCHEDULING_ELIGIBLE;
                node.scheduling_eligibility = req.eligibility;
                node.add_event(event(
                    NODE_EVENT_SUBSYSTEM_CLUSTER,
                    if became_eligible {
                        EVENT_ELIGIBLE
                    } else {
                        EVENT_INELIGIBLE
                    },
                    index,
                ));
                put_and_evaluate(txn, node, became_eligible)
            })
            .await?;
        Ok(Response::new(drain_update_response(written)))
    }

    async fn update_drain(
        &self,
        request: Request<v1::UpdateDrainRequest>,
    ) -> Result<Response<v1::NodeDrainUpdateResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, " for drain update")?;
        let written = self
            .store()
            .write(move |txn| -> Result<(Vec<String>, u64), ServerError> {
                let mut node = existing_node(txn, &req.node_id)?;
                let index = txn.index();
                let now = now();
                let was_ineligible = node.scheduling_eligibility == NODE_SCHEDULING_INELIGIBLE;
                let meta = (!req.meta.is_empty()).then(|| req.meta.into_iter().collect());
                let mut create_evals = false;
                match req.drain_spec {
                    Some(spec) => {
                        let spec = DrainSpec {
                            deadline: spec.deadline_ns,
                            ignore_system_jobs: spec.ignore_system_jobs,
                        };
                        let mut strategy = DrainStrategy::new(spec, now);
                        let message = match &node.drain_strategy {
                            Some(old) => {
                                strategy.started_at = old.started_at;
                                EVENT_DRAIN_UPDATED
                            }
                            None => EVENT_DRAIN_SET,
                        };
                        let last = node.last_drain.take().unwrap_or_default();
                        node.last_drain = Some(DrainMetadata {
                            accessor_id: last.accessor_id,
                            meta: meta.or(last.meta),
                            started_at: strategy.started_at,
                            status: DRAIN_STATUS_DRAINING.to_owned(),
                            updated_at: now,
                        });
                        node.drain_strategy = Some(strategy);
                        node.scheduling_eligibility = NODE_SCHEDULING_INELIGIBLE.to_owned();
                        node.add_event(event(NODE_EVENT_SUBSYSTEM_DRAIN, message, index));
                    }
                    None => {
                        if node.drain_strategy.take().is_some() {
                            if let Some(last) = node.last_drain.as_mut() {
                                last.status = DRAIN_STATUS_CANCELED.to_owned();
                                last.updated_at = now;
                                if meta.is_some() {
                                    last.meta = meta;
                                }
                            }
                            node.add_event(event(
                                NODE_EVENT_SUBSYSTEM_DRAIN,
                                EVENT_DRAIN_DISABLED,
                                index,
                            ));
                        }
                        if req.mark_eligible {
                            node.scheduling_eligibility = NODE_SCHEDULING_ELIGIBLE.to_owned();
                            create_evals = was_ineligible;
                        }
                    }
                }
                put_and_evaluate(txn, node, create_evals)
            })
            .await?;
        Ok(Response::new(drain_update_response(written)))
    }

    async fn purge(
        &self,
        request: Request<v1::NodeSpecificRequest>,
    ) -> Result<Response<v1::NodeUpdateResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, " for client deregistration")?;
        let node_id = req.node_id.clone();
        let written = self
            .store()
            .write(move |txn| -> Result<Vec<String>, ServerError> {
                let node = existing_node(txn, &req.node_id)?;
                let evals = create_node_evals(txn, &node)?;
                txn.delete::<Node>(&req.node_id);
                Ok(evals)
            })
            .await?;
        self.server.heartbeats.clear(&node_id);
        let evals = written.value;
        let mut resp = self.update_response(written.index, written.index, Duration::ZERO);
        resp.eval_create_index = if evals.is_empty() { 0 } else { written.index };
        resp.eval_ids = evals;
        Ok(Response::new(resp))
    }

    async fn evaluate(
        &self,
        request: Request<v1::NodeSpecificRequest>,
    ) -> Result<Response<v1::NodeUpdateResponse>, Status> {
        let req = request.into_inner();
        require_node_id(&req.node_id, " for evaluation")?;
        let written = self
            .store()
            .write(move |txn| -> Result<(Vec<String>, String), ServerError> {
                let node = existing_node(txn, &req.node_id)?;
                let evals = create_node_evals(txn, &node)?;
                Ok((evals, node.scheduling_eligibility))
            })
            .await?;
        let (evals, eligibility) = written.value;
        let mut resp = self.update_response(written.index, 0, Duration::ZERO);
        resp.eval_create_index = if evals.is_empty() { 0 } else { written.index };
        resp.eval_ids = evals;
        resp.scheduling_eligibility = eligibility;
        Ok(Response::new(resp))
    }
}
