//! The agent configuration file (`-config FILE`): Nomad's HCL agent-config keys that Caravan
//! uses, or the same as JSON. Precedence: flag > `CARAVAN_*` environment > file > default.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub name: Option<String>,
    pub region: Option<String>,
    pub datacenter: Option<String>,
    pub data_dir: Option<String>,
    pub bind_addr: Option<String>,
    pub ports: Ports,
    pub server: ServerBlock,
    pub client: ClientBlock,
    pub database_url: Option<String>,
    pub acl: AclBlock,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Ports {
    pub http: Option<u16>,
    pub rpc: Option<u16>,
    pub agent: Option<u16>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ServerBlock {
    pub heartbeat_grace: Option<String>,
    pub min_heartbeat_ttl: Option<String>,
    /// Garbage collection (Nomad's names and meaning).
    pub eval_gc_threshold: Option<String>,
    pub batch_eval_gc_threshold: Option<String>,
    pub job_gc_threshold: Option<String>,
    pub deployment_gc_threshold: Option<String>,
    pub node_gc_threshold: Option<String>,
    pub eval_gc_interval: Option<String>,
    pub job_gc_interval: Option<String>,
    pub deployment_gc_interval: Option<String>,
    pub node_gc_interval: Option<String>,
}

/// Nomad's `acl` block.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AclBlock {
    pub enabled: Option<bool>,
    pub token_min_expiration_ttl: Option<String>,
    pub token_max_expiration_ttl: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ClientBlock {
    pub servers: Option<Vec<String>>,
    pub node_class: Option<String>,
    pub node_pool: Option<String>,
    pub network_interface: Option<String>,
    pub meta: Option<BTreeMap<String, String>>,
    /// Offer Nomad's native service discovery (default true, as Nomad).
    pub nomad_service_discovery: Option<bool>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json {
            serde_json::from_str(&text)
                .with_context(|| format!("parsing config file {} as JSON", path.display()))
        } else {
            hcl::from_str(&text)
                .with_context(|| format!("parsing config file {} as HCL", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hcl_agent_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.hcl");
        std::fs::write(
            &path,
            r#"
            name = "n1"
            datacenter = "east"
            data_dir = "/tmp/x"
            ports {
              http = 5646
            }
            client {
              servers = ["10.0.0.1:4647"]
              meta {
                rack = "r1"
              }
            }
            "#,
        )
        .unwrap();
        let c = FileConfig::load(&path).unwrap();
        assert_eq!(c.name.as_deref(), Some("n1"));
        assert_eq!(c.datacenter.as_deref(), Some("east"));
        assert_eq!(c.ports.http, Some(5646));
        assert_eq!(c.client.servers.unwrap(), vec!["10.0.0.1:4647".to_string()]);
        assert_eq!(c.client.meta.unwrap()["rack"], "r1");
    }

    #[test]
    fn bad_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.hcl");
        std::fs::write(&path, "ports { http = ").unwrap();
        let err = FileConfig::load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("bad.hcl"));
    }
}
