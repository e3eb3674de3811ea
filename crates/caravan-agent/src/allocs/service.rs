//! The agent's gRPC service for requests on its allocations (signal, restart, garbage
//! collection, exec sessions); the gateway routes `/v1/client/allocation/...` here.

use caravan_proto::v1::client_allocs_server::ClientAllocs;
use caravan_proto::v1::{
    AllocChecksRequest, AllocChecksResponse, CollectAllAllocsRequest, CollectAllAllocsResponse,
    CollectAllocRequest, CollectAllocResponse, ExecRequest, RestartAllocRequest,
    RestartAllocResponse, SignalAllocRequest, SignalAllocResponse,
};
use caravan_proto::{ErrorCode, to_status};
use tonic::{Request, Response, Status, Streaming};

use super::manager::AllocManager;
use super::runner::RequestError;
use crate::exec::ExecSessions;

pub struct ClientAllocsService {
    manager: AllocManager,
    sessions: ExecSessions,
}

impl ClientAllocsService {
    pub fn new(manager: AllocManager, sessions: ExecSessions) -> ClientAllocsService {
        ClientAllocsService { manager, sessions }
    }

    fn runner(&self, alloc_id: &str) -> Result<std::sync::Arc<super::runner::AllocRunner>, Status> {
        self.manager.get(alloc_id).ok_or_else(|| {
            to_status(
                ErrorCode::NotFound,
                format!("Unknown allocation {alloc_id:?}"),
            )
        })
    }
}

fn status(e: RequestError) -> Status {
    match e {
        RequestError::BadRequest(m) => to_status(ErrorCode::BadRequest, m),
        RequestError::NotFound(m) => to_status(ErrorCode::NotFound, m),
        RequestError::Failed(m) => to_status(ErrorCode::Internal, m),
    }
}

#[tonic::async_trait]
impl ClientAllocs for ClientAllocsService {
    async fn signal_alloc(
        &self,
        request: Request<SignalAllocRequest>,
    ) -> Result<Response<SignalAllocResponse>, Status> {
        let req = request.into_inner();
        let runner = self.runner(&req.alloc_id)?;
        runner.signal(req.task, req.signal).await.map_err(status)?;
        Ok(Response::new(SignalAllocResponse {}))
    }

    async fn restart_alloc(
        &self,
        request: Request<RestartAllocRequest>,
    ) -> Result<Response<RestartAllocResponse>, Status> {
        let req = request.into_inner();
        let runner = self.runner(&req.alloc_id)?;
        runner
            .restart(req.task, req.all_tasks)
            .await
            .map_err(status)?;
        Ok(Response::new(RestartAllocResponse {}))
    }

    async fn collect_alloc(
        &self,
        request: Request<CollectAllocRequest>,
    ) -> Result<Response<CollectAllocResponse>, Status> {
        let req = request.into_inner();
        self.manager.collect(&req.alloc_id).map_err(status)?;
        Ok(Response::new(CollectAllocResponse {}))
    }

    async fn collect_all_allocs(
        &self,
        _request: Request<CollectAllAllocsRequest>,
    ) -> Result<Response<CollectAllAllocsResponse>, Status> {
        let collected = self.manager.collect_all();
        Ok(Response::new(CollectAllAllocsResponse {
            collected: u32::try_from(collected).unwrap_or(u32::MAX),
        }))
    }

    async fn alloc_checks(
        &self,
        request: Request<AllocChecksRequest>,
    ) -> Result<Response<AllocChecksResponse>, Status> {
        let req = request.into_inner();
        let runner = self.runner(&req.alloc_id)?;
        let results = serde_json::to_vec(&runner.check_results())
            .map_err(|e| to_status(ErrorCode::Internal, format!("encoding check results: {e}")))?;
        Ok(Response::new(AllocChecksResponse {
            results_json: results.into(),
        }))
    }

    type ExecStream = crate::exec::ExecStream;

    async fn exec(
        &self,
        request: Request<Streaming<ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let stream = crate::exec::open(&self.manager, &self.sessions, request.into_inner()).await?;
        Ok(Response::new(stream))
    }
}
