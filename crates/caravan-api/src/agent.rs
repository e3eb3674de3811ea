//! `/v1/agent/self` and `/v1/agent/members`: the agent the client talks to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiError, Client, QueryOptions};

/// `GET /v1/agent/self`. Its sections are free-form; reach into them with
/// [`AgentSelf::pointer`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentSelf {
    /// The agent's configuration (`Region`, `Datacenter`, ...).
    pub config: Value,
    /// This agent as a cluster member.
    pub member: Value,
    /// Runtime statistics per subsystem (`stats.client.node_id`, ...).
    pub stats: Value,
    /// Every other key.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl AgentSelf {
    /// A string at a JSON pointer, e.g. `/config/Region` or `/stats/client/node_id`.
    pub fn pointer(&self, pointer: &str) -> Option<&str> {
        let (section, rest) = match pointer.trim_start_matches('/').split_once('/') {
            Some((s, r)) => (s, format!("/{r}")),
            None => (pointer.trim_start_matches('/'), String::new()),
        };
        let root = match section {
            "config" => &self.config,
            "member" => &self.member,
            "stats" => &self.stats,
            other => self.other.get(other)?,
        };
        root.pointer(&rest).and_then(Value::as_str)
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AgentMember {
    pub name: String,
    pub addr: String,
    pub port: u16,
    /// `alive`, `leaving`, `left`, `failed`.
    pub status: String,
    pub tags: BTreeMap<String, String>,
    /// Every other key.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `GET /v1/agent/members`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AgentMembers {
    pub members: Vec<AgentMember>,
    pub server_name: String,
    pub server_region: String,
    #[serde(rename = "ServerDC")]
    pub server_dc: String,
}

/// The agent endpoints of one [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    client: &'a Client,
}

impl<'a> Agent<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Agent { client }
    }

    /// `GET /v1/agent/self`.
    pub async fn self_(&self) -> Result<AgentSelf, ApiError> {
        Ok(self
            .client
            .query("/v1/agent/self", &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/agent/members`.
    pub async fn members(&self) -> Result<AgentMembers, ApiError> {
        Ok(self
            .client
            .query("/v1/agent/members", &QueryOptions::default())
            .await?
            .0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_into_sections() -> Result<(), serde_json::Error> {
        let a: AgentSelf = serde_json::from_value(serde_json::json!({
            "config": {"Region": "global"},
            "member": {"Name": "n.global"},
            "stats": {"client": {"node_id": "abc"}},
        }))?;
        assert_eq!(a.pointer("/config/Region"), Some("global"));
        assert_eq!(a.pointer("/stats/client/node_id"), Some("abc"));
        assert_eq!(a.pointer("/member/Name"), Some("n.global"));
        assert_eq!(a.pointer("/member/Nope"), None);
        Ok(())
    }
}
