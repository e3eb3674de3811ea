//! The agent's `ClientStats` gRPC service: host and allocation resource usage ([`crate::stats`])
//! and the node's metadata ([`crate::metadata`]); the gateway routes `/v1/client/stats`,
//! `/v1/client/allocation/:id/stats` and `/v1/client/metadata` here.

use std::collections::BTreeMap;

use caravan_proto::v1::client_stats_server::ClientStats;
use caravan_proto::v1::{
    AllocStatsRequest, AllocStatsResponse, GetMetadataRequest, HostStatsRequest, HostStatsResponse,
    MetaValue, MetadataResponse, UpdateMetadataRequest,
};
use caravan_proto::{ErrorCode, to_status};
use caravan_structs::stats::NodeMetaResponse;
use tonic::{Request, Response, Status};

use crate::allocs::manager::AllocManager;
use crate::metadata::{MetaError, NodeMeta};
use crate::stats::{AllocStats, HostSampler};

pub struct ClientStatsService {
    manager: AllocManager,
    host: HostSampler,
    allocs: AllocStats,
    meta: NodeMeta,
}

impl ClientStatsService {
    pub fn new(
        manager: AllocManager,
        host: HostSampler,
        allocs: AllocStats,
        meta: NodeMeta,
    ) -> ClientStatsService {
        ClientStatsService {
            manager,
            host,
            allocs,
            meta,
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(value)
        .map_err(|e| to_status(ErrorCode::Internal, format!("cannot encode stats: {e}")))
}

fn metadata_response(r: NodeMetaResponse) -> MetadataResponse {
    MetadataResponse {
        meta: r.meta.into_iter().collect(),
        static_meta: r.r#static.into_iter().collect(),
        dynamic_meta: r
            .dynamic
            .into_iter()
            .map(|(k, v)| {
                let value = MetaValue {
                    unset: v.is_none(),
                    value: v.unwrap_or_default(),
                };
                (k, value)
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl ClientStats for ClientStatsService {
    async fn host_stats(
        &self,
        _request: Request<HostStatsRequest>,
    ) -> Result<Response<HostStatsResponse>, Status> {
        let stats_json = match self.host.latest() {
            Some(stats) => encode(stats.as_ref())?,
            None => Vec::new(),
        };
        Ok(Response::new(HostStatsResponse {
            stats_json: stats_json.into(),
        }))
    }

    async fn alloc_stats(
        &self,
        request: Request<AllocStatsRequest>,
    ) -> Result<Response<AllocStatsResponse>, Status> {
        let req = request.into_inner();
        let runner = self.manager.get(&req.alloc_id).ok_or_else(|| {
            to_status(
                ErrorCode::NotFound,
                format!("Unknown allocation {:?}", req.alloc_id),
            )
        })?;
        let usage = self.allocs.alloc(&runner, &req.task).await;
        Ok(Response::new(AllocStatsResponse {
            usage_json: encode(&usage)?.into(),
        }))
    }

    async fn get_metadata(
        &self,
        _request: Request<GetMetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        Ok(Response::new(metadata_response(self.meta.response())))
    }

    async fn update_metadata(
        &self,
        request: Request<UpdateMetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        let updates: BTreeMap<String, Option<String>> = request
            .into_inner()
            .meta
            .into_iter()
            .map(|(k, v)| (k, (!v.unset).then_some(v.value)))
            .collect();
        let meta = self.meta.clone();
        // The update writes and syncs a file: off the async workers.
        let applied = tokio::task::spawn_blocking(move || meta.apply(updates))
            .await
            .map_err(|e| to_status(ErrorCode::Internal, format!("metadata update failed: {e}")))?;
        match applied {
            Ok(r) => Ok(Response::new(metadata_response(r))),
            Err(e @ MetaError::Invalid(_)) => Err(to_status(ErrorCode::BadRequest, e.to_string())),
            Err(e @ MetaError::Storage(_)) => Err(to_status(ErrorCode::Internal, e.to_string())),
        }
    }
}
