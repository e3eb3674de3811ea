//! The Evals service: listing and reading evaluations, and the allocations an evaluation
//! placed. Evaluations are created by the node rules (and, later, by job registration).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use caravan_filter::AllMaps;
use caravan_proto::v1::{self, evals_server};
use caravan_state::{Row, Snapshot, Store, TableId, WatchKey};
use caravan_structs::{AllocStubFields, Evaluation, EvaluationStub};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::paginate::{Pager, create_index_token};
use crate::query::{query_meta, wait_of};

fn in_namespace(eval: &Evaluation, namespace: &str) -> bool {
    namespace == "*" || eval.namespace == namespace
}

/// The evaluations linked to `eval` through previous, next and blocked links, transitively.
fn related(snap: &Snapshot, eval: &Evaluation) -> Vec<EvaluationStub> {
    let mut seen = BTreeSet::from([eval.id.clone()]);
    let mut queue = vec![eval.clone()];
    let mut out = Vec::new();
    while let Some(e) = queue.pop() {
        for link in [&e.previous_eval, &e.next_eval, &e.blocked_eval] {
            if link.is_empty() || !seen.insert(link.clone()) {
                continue;
            }
            if let Some(row) = snap.evals().get(link) {
                out.push(row.value.stub());
                queue.push(row.value.clone());
            }
        }
    }
    out.sort_by_key(|s| s.create_index);
    out
}

type EvalRow = Arc<Row<Evaluation>>;

fn id_token(row: &&EvalRow) -> String {
    row.value.id.clone()
}

fn ordered_token(row: &&EvalRow) -> String {
    create_index_token(row.value.create_index, &row.value.id)
}

fn row_json<'a>(row: &'a &EvalRow) -> &'a str {
    &row.json
}

#[derive(Clone)]
pub struct EvalsService {
    server: Arc<Server>,
}

impl EvalsService {
    pub fn new(server: Arc<Server>) -> Self {
        EvalsService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

#[tonic::async_trait]
impl evals_server::Evals for EvalsService {
    async fn list_evals(
        &self,
        request: Request<v1::ListEvalsRequest>,
    ) -> Result<Response<v1::ListEvalsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        if !q.filter.trim().is_empty() && (!req.job_id.is_empty() || !req.status.is_empty()) {
            return Err(ServerError::BadRequest(
                "Filter expression cannot be used with other filter parameters".to_owned(),
            )
            .into());
        }
        // Evaluations have no map-vs-struct schema yet: unknown fields read as missing.
        let pager = Pager::new(&q, &AllMaps)?;
        let keys = [WatchKey::Table(TableId::Evals)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let table = snap.evals();
                let wanted = |row: &&EvalRow| {
                    let e = &row.value;
                    in_namespace(e, &q.namespace)
                        && crate::query::namespace_allowed(&q, &e.namespace)
                        && (req.job_id.is_empty() || e.job_id == req.job_id)
                        && (req.status.is_empty() || e.status == req.status)
                };
                let render = |row: &&EvalRow| Ok(Bytes::copy_from_slice(row.json.as_bytes()));
                // With a prefix: ID order (tokens are IDs); otherwise creation order (tokens
                // are `<CreateIndex>.<ID>`), as Nomad pages evaluations.
                let page = if q.prefix.is_empty() {
                    let mut rows: Vec<&EvalRow> =
                        table.iter().map(|(_, r)| r).filter(wanted).collect();
                    rows.sort_by_key(|r| (r.value.create_index, r.value.id.clone()));
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(rows.into_iter(), ordered_token, row_json, render)
                } else {
                    let mut rows: Vec<&EvalRow> =
                        table.prefixed(&q.prefix).filter(wanted).collect();
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(rows.into_iter(), id_token, row_json, render)
                };
                ((page, table.index()), table.index())
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::ListEvalsResponse {
            evals_json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_eval(
        &self,
        request: Request<v1::GetEvalRequest>,
    ) -> Result<Response<v1::GetEvalResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(TableId::Evals, req.eval_id.clone())];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                match snap.evals().get(&req.eval_id) {
                    Some(row) if req.related => {
                        let mut eval = row.value.clone();
                        eval.related_evals = Some(related(snap, &eval));
                        let json = serde_json::to_vec(&eval).map(Bytes::from);
                        ((Some(json), row.value.modify_index), row.value.modify_index)
                    }
                    Some(row) => {
                        let json = Ok(Bytes::copy_from_slice(row.json.as_bytes()));
                        ((Some(json), row.value.modify_index), row.value.modify_index)
                    }
                    None => ((None, snap.evals().index()), snap.evals().index()),
                }
            })
            .await;
        let eval_json = match json {
            Some(Ok(json)) => json,
            Some(Err(e)) => {
                return Err(ServerError::Internal(format!("encoding evaluation: {e}")).into());
            }
            None => Bytes::new(),
        };
        let namespace = self
            .store()
            .snapshot()
            .evals()
            .get(&req.eval_id)
            .map(|r| r.value.namespace.clone())
            .unwrap_or_default();
        Ok(Response::new(v1::GetEvalResponse {
            eval_json,
            meta: Some(query_meta(index, String::new())),
            namespace,
        }))
    }

    async fn get_eval_allocs(
        &self,
        request: Request<v1::GetEvalRequest>,
    ) -> Result<Response<v1::GetEvalAllocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Table(TableId::Allocs)];
        let (allocs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let mut out = Vec::new();
                let job = snap.evals().get(&req.eval_id).map(|e| &e.value);
                let allocs = job
                    .into_iter()
                    .flat_map(|e| snap.allocs_by_job(&e.namespace, &e.job_id));
                for row in allocs {
                    if row.value.eval_id == req.eval_id {
                        out.push(crate::allocs::alloc_stub_json(
                            snap,
                            &row.value,
                            AllocStubFields::default(),
                        ));
                    }
                }
                ((out, snap.allocs().index()), snap.allocs().index())
            })
            .await;
        let allocs_json = allocs.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::GetEvalAllocsResponse {
            allocs_json,
            meta: Some(query_meta(index, String::new())),
        }))
    }
}
