//! The Deployments service: list and read deployments and their allocations. Deployments are
//! created by the scheduler with the placements of a new job version; the rolling-update
//! engine that moves them along is a later piece.

use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, deployments_server};
use caravan_state::{Row, Store, TableId, WatchKey};
use caravan_structs::{AllocStubFields, Deployment};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::allocs::alloc_stub_json;
use crate::paginate::{Pager, create_index_token};
use crate::query::{query_meta, wait_of};

type DeploymentRow = Arc<Row<Deployment>>;

static DEPLOYMENT_SCHEMA: caravan_filter::AllMaps = caravan_filter::AllMaps;

fn row_json<'a>(row: &'a &DeploymentRow) -> &'a str {
    &row.json
}

fn render(row: &&DeploymentRow) -> Result<Bytes, crate::ServerError> {
    Ok(Bytes::copy_from_slice(row.json.as_bytes()))
}

#[derive(Clone)]
pub struct DeploymentsService {
    server: Arc<Server>,
}

impl DeploymentsService {
    pub fn new(server: Arc<Server>) -> Self {
        DeploymentsService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

#[tonic::async_trait]
impl deployments_server::Deployments for DeploymentsService {
    async fn list_deployments(
        &self,
        request: Request<v1::ListDeploymentsRequest>,
    ) -> Result<Response<v1::ListDeploymentsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let pager = Pager::new(&q, &DEPLOYMENT_SCHEMA)?;
        let ns = if q.namespace.is_empty() {
            "default".to_owned()
        } else {
            q.namespace.clone()
        };
        let wanted = |row: &&DeploymentRow| {
            (ns == "*" || row.value.namespace == ns)
                && crate::query::namespace_allowed(&q, &row.value.namespace)
        };
        let keys = [WatchKey::Table(TableId::Deployments)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let table = snap.deployments();
                let page = if q.prefix.is_empty() {
                    let mut rows: Vec<&DeploymentRow> =
                        table.iter().map(|(_, r)| r).filter(wanted).collect();
                    rows.sort_by(|a, b| {
                        (a.value.create_index, &a.value.id)
                            .cmp(&(b.value.create_index, &b.value.id))
                    });
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(
                        rows.into_iter(),
                        |r: &&DeploymentRow| create_index_token(r.value.create_index, &r.value.id),
                        row_json,
                        render,
                    )
                } else {
                    let mut rows: Vec<&DeploymentRow> =
                        table.prefixed(&q.prefix).filter(wanted).collect();
                    if pager.reverse() {
                        rows.reverse();
                    }
                    pager.page(
                        rows.into_iter(),
                        |r: &&DeploymentRow| r.value.id.clone(),
                        row_json,
                        render,
                    )
                };
                ((page, table.index()), table.index())
            })
            .await;
        let page = page?;
        Ok(Response::new(v1::ListDeploymentsResponse {
            json: page.items,
            meta: Some(query_meta(index, page.next_token)),
        }))
    }

    async fn get_deployment(
        &self,
        request: Request<v1::GetDeploymentRequest>,
    ) -> Result<Response<v1::GetDeploymentResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Row(
            TableId::Deployments,
            req.deployment_id.clone(),
        )];
        let (json, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                match snap.deployments().get(&req.deployment_id) {
                    Some(row) => {
                        let json = Bytes::copy_from_slice(row.json.as_bytes());
                        ((json, row.value.modify_index), row.value.modify_index)
                    }
                    None => (
                        (Bytes::new(), snap.deployments().index()),
                        snap.deployments().index(),
                    ),
                }
            })
            .await;
        let namespace = self
            .store()
            .snapshot()
            .deployments()
            .get(&req.deployment_id)
            .map(|r| r.value.namespace.clone())
            .unwrap_or_default();
        Ok(Response::new(v1::GetDeploymentResponse {
            deployment_json: json,
            meta: Some(query_meta(index, String::new())),
            namespace,
        }))
    }

    async fn get_deployment_allocs(
        &self,
        request: Request<v1::GetDeploymentRequest>,
    ) -> Result<Response<v1::ListDeploymentsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let keys = [WatchKey::Table(TableId::Allocs)];
        let (allocs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let mut out = Vec::new();
                if let Some(d) = snap.deployments().get(&req.deployment_id) {
                    for row in snap.allocs_by_job(&d.value.namespace, &d.value.job_id) {
                        if row.value.deployment_id == req.deployment_id {
                            out.push(alloc_stub_json(
                                snap,
                                &row.value,
                                AllocStubFields::default(),
                            ));
                        }
                    }
                }
                ((out, snap.allocs().index()), snap.allocs().index())
            })
            .await;
        let json = allocs.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(v1::ListDeploymentsResponse {
            json,
            meta: Some(query_meta(index, String::new())),
        }))
    }
}
