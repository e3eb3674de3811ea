//! The agent's `Agent` gRPC service: this machine's host data and this process's live log
//! lines; the gateway routes `/v1/agent/host?node_id=` and `/v1/agent/monitor?node_id=` here.

use std::pin::Pin;

use caravan_proto::agent::log_level_from_proto;
use caravan_proto::v1::agent_server::Agent;
use caravan_proto::v1::{
    AgentHostRequest, AgentHostResponse, AgentMonitorChunk, AgentMonitorRequest,
};
use caravan_proto::{ErrorCode, to_status};
use caravan_telemetry::host::{self, HostError};
use caravan_telemetry::{Monitor, MonitorOptions};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

pub struct AgentService {
    node_id: String,
    monitor: Monitor,
}

impl AgentService {
    pub fn new(node_id: String, monitor: Monitor) -> AgentService {
        AgentService { node_id, monitor }
    }
}

fn host_status(e: HostError) -> Status {
    let code = match e {
        HostError::Timeout(_) => ErrorCode::Timeout,
        HostError::Failed(_) => ErrorCode::Internal,
    };
    to_status(code, e.to_string())
}

/// `server_id` names a server; a client agent is none.
fn no_server_id(server_id: &str) -> Result<(), Status> {
    if server_id.is_empty() {
        Ok(())
    } else {
        Err(to_status(
            ErrorCode::BadRequest,
            format!("unknown Nomad server {server_id}"),
        ))
    }
}

#[tonic::async_trait]
impl Agent for AgentService {
    async fn host(
        &self,
        request: Request<AgentHostRequest>,
    ) -> Result<Response<AgentHostResponse>, Status> {
        no_server_id(&request.get_ref().server_id)?;
        let data = host::gather_async().await.map_err(host_status)?;
        let json = serde_json::to_vec(&data)
            .map_err(|e| to_status(ErrorCode::Internal, format!("cannot encode host data: {e}")))?;
        Ok(Response::new(AgentHostResponse {
            agent_id: self.node_id.clone(),
            host_data_json: json.into(),
        }))
    }

    type MonitorStream = Pin<Box<dyn Stream<Item = Result<AgentMonitorChunk, Status>> + Send>>;

    async fn monitor(
        &self,
        request: Request<AgentMonitorRequest>,
    ) -> Result<Response<Self::MonitorStream>, Status> {
        let req = request.into_inner();
        no_server_id(&req.server_id)?;
        let level = log_level_from_proto(req.log_level)
            .ok_or_else(|| to_status(ErrorCode::BadRequest, "Unknown log level"))?;
        let lines = self
            .monitor
            .subscribe(MonitorOptions {
                level,
                json: req.log_json,
                include_location: req.log_include_location,
            })
            .map_err(|e| to_status(ErrorCode::TooManyRequests, e.to_string()))?;
        // The caller going away drops the stream, and with it the subscription.
        let chunks = lines
            .into_stream()
            .map(|data| Ok(AgentMonitorChunk { data }));
        Ok(Response::new(Box::pin(chunks)))
    }
}
