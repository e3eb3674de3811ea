//! The Status service: leader, peers, regions and this server's identity.

use std::sync::Arc;

use caravan_proto::v1::{self, status_server};
use tonic::{Request, Response, Status};

use crate::Server;

#[derive(Clone)]
pub struct StatusService {
    server: Arc<Server>,
}

impl StatusService {
    pub fn new(server: Arc<Server>) -> Self {
        StatusService { server }
    }
}

#[tonic::async_trait]
impl status_server::Status for StatusService {
    async fn leader(
        &self,
        _: Request<v1::LeaderRequest>,
    ) -> Result<Response<v1::LeaderResponse>, Status> {
        Ok(Response::new(v1::LeaderResponse {
            leader_addr: self.server.config.rpc_advertise.clone(),
        }))
    }

    async fn peers(
        &self,
        _: Request<v1::PeersRequest>,
    ) -> Result<Response<v1::PeersResponse>, Status> {
        Ok(Response::new(v1::PeersResponse {
            peers: vec![self.server.config.rpc_advertise.clone()],
        }))
    }

    async fn regions(
        &self,
        _: Request<v1::RegionsRequest>,
    ) -> Result<Response<v1::RegionsResponse>, Status> {
        Ok(Response::new(v1::RegionsResponse {
            regions: vec![self.server.config.region.clone()],
        }))
    }

    async fn server_self(
        &self,
        _: Request<v1::ServerSelfRequest>,
    ) -> Result<Response<v1::ServerSelfResponse>, Status> {
        let cfg = &self.server.config;
        let snap = self.server.store.snapshot();
        Ok(Response::new(v1::ServerSelfResponse {
            name: cfg.name.clone(),
            region: cfg.region.clone(),
            datacenter: cfg.datacenter.clone(),
            rpc_addr: cfg.rpc_advertise.clone(),
            version: crate::VERSION.to_owned(),
            leader: true,
            last_index: snap.index(),
            num_nodes: u32::try_from(snap.nodes().len()).unwrap_or(u32::MAX),
            started_at: self.server.started_at,
        }))
    }
}
