//! The server's `Agent` gRPC service: this machine's host data and this server's live log
//! lines, for `/v1/agent/host?server_id=` and `/v1/agent/monitor?server_id=`.
//!
//! `server_id` names this server by its name, its member name (`name.region`, as
//! `/v1/agent/members` lists it) or `leader`. Servers do not forward these calls to each
//! other: a gateway reaches the server its channel leads to, and any other ID is refused.

use std::pin::Pin;
use std::sync::Arc;

use caravan_proto::agent::log_level_from_proto;
use caravan_proto::v1::agent_server;
use caravan_proto::v1::{
    AgentHostRequest, AgentHostResponse, AgentMonitorChunk, AgentMonitorRequest,
};
use caravan_proto::{ErrorCode, to_status};
use caravan_telemetry::host::{self, HostError};
use caravan_telemetry::{Monitor, MonitorOptions};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;

pub struct AgentService {
    server: Arc<Server>,
    monitor: Monitor,
}

impl AgentService {
    pub fn new(server: Arc<Server>, monitor: Monitor) -> AgentService {
        AgentService { server, monitor }
    }

    /// The member name, Nomad's `AgentID` of a server.
    fn member_name(&self) -> String {
        format!("{}.{}", self.server.config.name, self.server.config.region)
    }

    /// Empty, `leader` (this server leads whenever it serves), or one of this server's names.
    fn check_target(&self, server_id: &str) -> Result<(), ServerError> {
        if server_id.is_empty()
            || server_id == "leader"
            || server_id == self.server.config.name
            || server_id == self.member_name()
        {
            Ok(())
        } else {
            Err(ServerError::BadRequest(format!(
                "unknown Nomad server {server_id}"
            )))
        }
    }
}

impl From<HostError> for ServerError {
    fn from(e: HostError) -> Self {
        ServerError::Internal(e.to_string())
    }
}

#[tonic::async_trait]
impl agent_server::Agent for AgentService {
    async fn host(
        &self,
        request: Request<AgentHostRequest>,
    ) -> Result<Response<AgentHostResponse>, Status> {
        self.check_target(&request.get_ref().server_id)?;
        let data = host::gather_async().await.map_err(ServerError::from)?;
        let json = serde_json::to_vec(&data)
            .map_err(|e| ServerError::Internal(format!("cannot encode host data: {e}")))?;
        Ok(Response::new(AgentHostResponse {
            agent_id: self.member_name(),
            host_data_json: json.into(),
        }))
    }

    type MonitorStream = Pin<Box<dyn Stream<Item = Result<AgentMonitorChunk, Status>> + Send>>;

    async fn monitor(
        &self,
        request: Request<AgentMonitorRequest>,
    ) -> Result<Response<Self::MonitorStream>, Status> {
        let req = request.into_inner();
        self.check_target(&req.server_id)?;
        let level = log_level_from_proto(req.log_level)
            .ok_or_else(|| ServerError::BadRequest("Unknown log level".to_owned()))?;
        let lines = self
            .monitor
            .subscribe(MonitorOptions {
                level,
                json: req.log_json,
                include_location: req.log_include_location,
            })
            .map_err(|e| to_status(ErrorCode::TooManyRequests, e.to_string()))?;
        // The caller going away drops the stream, and with it the subscription; a stopping
        // server ends it (a graceful stop waits for open streams).
        let chunks = lines
            .into_stream()
            .take_until(self.server.store.released())
            .map(|data| Ok(AgentMonitorChunk { data }));
        Ok(Response::new(Box::pin(chunks)))
    }
}
