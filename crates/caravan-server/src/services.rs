//! The Services service: the built-in service catalogue. Reads (GET /v1/services grouped by
//! namespace, one service with filter, pages and `choose`, an allocation's or a job's
//! registrations) block on the registrations table; client agents register and deregister the
//! services of their own allocations; operators delete one registration by ID.
//!
//! Better than Nomad where it lets bad data in or answers 500: an upsert for an allocation that
//! is unknown, client-terminal or on another node is refused (no zombie instances), and
//! deleting an unknown registration is a 404 that writes nothing.

use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, services_server};
use caravan_state::{Snapshot, Store, TableId, WatchKey, service_key};
use caravan_structs::{
    ServiceRegistration, choose_services, format_multierror, parse_choose, service_list_stubs,
};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::allocs::check_node_secret;
use crate::error::ServerError;
use crate::paginate::Pager;
use crate::query::{namespace_allowed, query_meta, wait_of};

/// Registrations hold no maps: a filter on a missing field is an error, as in Nomad.
static REGISTRATION_SCHEMA: caravan_filter::MapPaths = caravan_filter::MapPaths(&[]);

/// The index reads of the catalogue report (the table's, never below 1).
fn services_index(snap: &Snapshot) -> u64 {
    snap.service_registrations().index().max(1)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, ServerError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ServerError::Internal(format!("encoding service registration: {e}")))
}

fn namespace_of(q: &v1::QueryOptions) -> &str {
    if q.namespace.is_empty() {
        caravan_structs::NAMESPACE_DEFAULT
    } else {
        &q.namespace
    }
}

fn docs(json: Vec<Bytes>, index: u64, next_token: String) -> Response<v1::ServiceDocsResponse> {
    Response::new(v1::ServiceDocsResponse {
        json,
        meta: Some(query_meta(index, next_token)),
        namespace: String::new(),
    })
}

#[derive(Clone)]
pub struct ServicesService {
    server: Arc<Server>,
}

impl ServicesService {
    pub fn new(server: Arc<Server>) -> Self {
        ServicesService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

/// Checks one registration an agent sends against the state: its allocation exists, runs on
/// that agent's node and is not client-terminal.
fn admit_registration(
    snap: &Snapshot,
    node_id: &str,
    reg: &ServiceRegistration,
) -> Result<(), String> {
    reg.validate()?;
    let Some(alloc) = snap.allocs().get(&reg.alloc_id) else {
        return Err(format!("allocation {:?} not found", reg.alloc_id));
    };
    if alloc.value.node_id != node_id {
        return Err(format!(
            "allocation {:?} does not run on node {node_id:?}",
            reg.alloc_id
        ));
    }
    if alloc.value.client_terminal_status() {
        return Err(format!(
            "allocation {:?} is {}",
            reg.alloc_id, alloc.value.client_status
        ));
    }
    if reg.node_id != node_id {
        return Err(format!(
            "registration {:?} names node {:?}, not {node_id:?}",
            reg.id, reg.node_id
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl services_server::Services for ServicesService {
    async fn list_services(
        &self,
        request: Request<v1::ListServicesRequest>,
    ) -> Result<Response<v1::ServiceDocsResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let namespace = namespace_of(&q).to_owned();
        let keys = [WatchKey::Table(TableId::ServiceRegistrations)];
        let (stubs, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = services_index(snap);
                let regs = snap
                    .service_registrations()
                    .iter()
                    .map(|(_, row)| &row.value)
                    .filter(|r| {
                        if namespace == "*" {
                            namespace_allowed(&q, &r.namespace)
                        } else {
                            r.namespace == namespace
                        }
                    });
                ((service_list_stubs(regs), index), index)
            })
            .await;
        let json = stubs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        Ok(docs(json, index, String::new()))
    }

    async fn get_service(
        &self,
        request: Request<v1::GetServiceRequest>,
    ) -> Result<Response<v1::ServiceDocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let choose = if req.choose.is_empty() {
            None
        } else {
            Some(parse_choose(&req.choose).map_err(ServerError::BadRequest)?)
        };
        let pager = Pager::new(&q, &REGISTRATION_SCHEMA)?.with_plain_tokens();
        let namespace = namespace_of(&q).to_owned();
        let keys = [WatchKey::Table(TableId::ServiceRegistrations)];
        let (page, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = services_index(snap);
                let mut rows: Vec<_> = snap
                    .services_by_name(&namespace, &req.service_name)
                    .collect();
                if pager.reverse() {
                    rows.reverse();
                }
                let page = pager.page(
                    rows.into_iter(),
                    |row| format!("{}.{}", row.value.namespace, row.value.id),
                    |row| &row.json,
                    |row| Ok(Arc::clone(row)),
                );
                ((page, index), index)
            })
            .await;
        let page = page?;
        let rows = match choose {
            Some((n, key)) => choose_services(page.items, n, key, |row| &row.value),
            None => page.items,
        };
        // The stored JSON is the canonical document: served as it is, not encoded again.
        let json = rows
            .iter()
            .map(|row| Bytes::copy_from_slice(row.json.as_bytes()))
            .collect();
        Ok(docs(json, index, page.next_token))
    }

    async fn alloc_services(
        &self,
        request: Request<v1::AllocServicesRequest>,
    ) -> Result<Response<v1::ServiceDocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        // Nomad answers 404 for an allocation outside the request namespace, ACLs or not.
        let namespace = namespace_of(&q).to_owned();
        let keys = [
            WatchKey::Table(TableId::ServiceRegistrations),
            WatchKey::Row(TableId::Allocs, req.alloc_id.clone()),
        ];
        let (found, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = services_index(snap);
                let found = snap
                    .allocs()
                    .get(&req.alloc_id)
                    .filter(|alloc| alloc.value.namespace == namespace)
                    .map(|alloc| {
                        let regs: Vec<ServiceRegistration> = snap
                            .services_by_alloc(&req.alloc_id)
                            .map(|row| row.value.clone())
                            .collect();
                        (alloc.value.namespace.clone(), regs)
                    });
                ((found, index), index)
            })
            .await;
        let Some((namespace, regs)) = found else {
            return Err(ServerError::NotFound("allocation not found".to_owned()).into());
        };
        let json = regs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let mut resp = docs(json, index, String::new());
        resp.get_mut().namespace = namespace;
        Ok(resp)
    }

    async fn job_services(
        &self,
        request: Request<v1::JobServicesRequest>,
    ) -> Result<Response<v1::ServiceDocsResponse>, Status> {
        let req = request.into_inner();
        let q = req.query.unwrap_or_default();
        let namespace = namespace_of(&q).to_owned();
        let keys = [WatchKey::Table(TableId::ServiceRegistrations)];
        let (found, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = services_index(snap);
                let found = snap.job(&namespace, &req.job_id).map(|_| {
                    snap.services_by_job(&namespace, &req.job_id)
                        .map(|row| row.value.clone())
                        .collect::<Vec<_>>()
                });
                ((found, index), index)
            })
            .await;
        let Some(regs) = found else {
            return Err(ServerError::NotFound("job not found".to_owned()).into());
        };
        let json = regs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        Ok(docs(json, index, String::new()))
    }

    async fn delete_service(
        &self,
        request: Request<v1::DeleteServiceRequest>,
    ) -> Result<Response<v1::ServiceWriteResponse>, Status> {
        let req = request.into_inner();
        let w = req.write.unwrap_or_default();
        let namespace = if w.namespace.is_empty() {
            caravan_structs::NAMESPACE_DEFAULT.to_owned()
        } else {
            w.namespace
        };
        let key = service_key(&namespace, &req.service_id);
        let written = self
            .store()
            .write(move |txn| {
                if txn.delete::<ServiceRegistration>(&key) {
                    Ok(())
                } else {
                    Err(ServerError::NotFound(
                        "service registration not found".to_owned(),
                    ))
                }
            })
            .await?;
        Ok(Response::new(v1::ServiceWriteResponse {
            index: written.index,
        }))
    }

    async fn upsert_services(
        &self,
        request: Request<v1::UpsertServicesRequest>,
    ) -> Result<Response<v1::ServiceWriteResponse>, Status> {
        let req = request.into_inner();
        let mut regs = Vec::with_capacity(req.registrations_json.len());
        for json in &req.registrations_json {
            let reg: ServiceRegistration = serde_json::from_slice(json).map_err(|e| {
                ServerError::BadRequest(format!("failed to decode service registration: {e}"))
            })?;
            regs.push(reg);
        }
        let auth = req.node;
        let written = self
            .store()
            .write(move |txn| {
                let node_id = check_node_secret(txn.snapshot(), auth.as_ref())?;
                let errors: Vec<String> = regs
                    .iter()
                    .filter_map(|r| admit_registration(txn.snapshot(), &node_id, r).err())
                    .collect();
                if !errors.is_empty() {
                    return Err(ServerError::BadRequest(format_multierror(&errors)));
                }
                for reg in regs {
                    let unchanged = txn
                        .snapshot()
                        .service_registrations()
                        .get(&service_key(&reg.namespace, &reg.id))
                        .is_some_and(|old| old.value.same_as(&reg));
                    if !unchanged {
                        txn.put(reg)?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(v1::ServiceWriteResponse {
            index: written.index,
        }))
    }

    async fn deregister_services(
        &self,
        request: Request<v1::DeregisterServicesRequest>,
    ) -> Result<Response<v1::ServiceWriteResponse>, Status> {
        let req = request.into_inner();
        let auth = req.node;
        let written = self
            .store()
            .write(move |txn| {
                let node_id = check_node_secret(txn.snapshot(), auth.as_ref())?;
                for id in &req.service_ids {
                    let key = service_key(&req.namespace, id);
                    let ours = txn
                        .snapshot()
                        .service_registrations()
                        .get(&key)
                        .is_some_and(|row| row.value.node_id == node_id);
                    if ours {
                        txn.delete::<ServiceRegistration>(&key);
                    }
                }
                Ok::<_, ServerError>(())
            })
            .await?;
        Ok(Response::new(v1::ServiceWriteResponse {
            index: written.index,
        }))
    }
}
