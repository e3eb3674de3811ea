//! `/v1/status/leader`, `/v1/status/peers`, `/v1/regions`.

use crate::{ApiError, Client, QueryOptions};

/// The status endpoints of one [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Status<'a> {
    client: &'a Client,
}

impl<'a> Status<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Status { client }
    }

    /// `GET /v1/status/leader`: the leader's RPC address (`host:port`), empty without one.
    pub async fn leader(&self) -> Result<String, ApiError> {
        Ok(self
            .client
            .query("/v1/status/leader", &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/status/peers`: the RPC addresses of the servers.
    pub async fn peers(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .client
            .query("/v1/status/peers", &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/regions`: the known regions.
    pub async fn regions(&self) -> Result<Vec<String>, ApiError> {
        Ok(self
            .client
            .query("/v1/regions", &QueryOptions::default())
            .await?
            .0)
    }
}
