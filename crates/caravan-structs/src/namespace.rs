//! `Namespace` (`/v1/namespaces`, `/v1/namespace/:name`): the built-in `default`, Nomad's name
//! and description rules, and the task-driver and network-mode capabilities a namespace allows.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::job::Job;

pub const NAMESPACE_DEFAULT: &str = "default";
pub const NAMESPACE_DEFAULT_DESCRIPTION: &str = "Default shared namespace";
pub const NAMESPACE_NAME_PATTERN: &str = "^[a-zA-Z0-9-]{1,128}$";
const MAX_DESCRIPTION_LENGTH: usize = 256;

static NAMESPACE_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(NAMESPACE_NAME_PATTERN).ok());

/// A namespace. The Enterprise-only settings (node pool, Vault and Consul configuration,
/// quota) are kept as sent so that a CE client round-trips them, and refused when set, as
/// Nomad CE does.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Namespace {
    pub capabilities: Option<NamespaceCapabilities>,
    pub consul_configuration: Option<serde_json::Value>,
    pub create_index: u64,
    pub description: String,
    /// Nomad's replication hash; Caravan has one region and leaves it `null`, as for pools.
    pub hash: Option<String>,
    pub meta: Option<BTreeMap<String, String>>,
    pub modify_index: u64,
    pub name: String,
    pub node_pool_configuration: Option<serde_json::Value>,
    pub quota: String,
    pub vault_configuration: Option<serde_json::Value>,
}

/// What the jobs of a namespace may use. Empty `Enabled*` lists allow everything; `Disabled*`
/// wins over `Enabled*`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NamespaceCapabilities {
    pub disabled_network_modes: Option<Vec<String>>,
    pub disabled_task_drivers: Option<Vec<String>>,
    pub enabled_network_modes: Option<Vec<String>>,
    pub enabled_task_drivers: Option<Vec<String>>,
}

impl Namespace {
    /// The namespace every cluster has, as a new cluster holds it (index 1, as in Nomad).
    pub fn built_in_default() -> Namespace {
        Namespace {
            create_index: 1,
            modify_index: 1,
            description: NAMESPACE_DEFAULT_DESCRIPTION.to_owned(),
            name: NAMESPACE_DEFAULT.to_owned(),
            ..Namespace::default()
        }
    }

    /// Nomad's checks, each message as Nomad words it.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if !NAMESPACE_NAME
            .as_ref()
            .is_some_and(|re| re.is_match(&self.name))
        {
            errors.push(format!(
                "invalid name {:?}. Must match regex {NAMESPACE_NAME_PATTERN}",
                self.name
            ));
        }
        if self.description.len() > MAX_DESCRIPTION_LENGTH {
            errors.push(format!("description longer than {MAX_DESCRIPTION_LENGTH}"));
        }
        let set = |v: &Option<serde_json::Value>| v.as_ref().is_some_and(|v| !v.is_null());
        if set(&self.node_pool_configuration) {
            errors.push(
                "invalid node pool configuration: Node Pools Governance is unlicensed.".to_owned(),
            );
        }
        if set(&self.vault_configuration) {
            errors
                .push("invalid vault configuration: Multi-Cluster Vault is unlicensed.".to_owned());
        }
        if set(&self.consul_configuration) {
            errors.push(
                "invalid consul configuration: Multi-Cluster Consul is unlicensed.".to_owned(),
            );
        }
        if !self.quota.is_empty() {
            errors.push(format!(
                "namespace {:?} using non-existent quota {:?}",
                self.name, self.quota
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether the namespace lets `job` use its task drivers, then its network modes; the
    /// error is Nomad's admission text (every refused use, in job order).
    pub fn check_job(&self, job: &Job) -> Result<(), String> {
        let Some(caps) = &self.capabilities else {
            return Ok(());
        };
        let drivers: Vec<&str> = job
            .task_groups
            .iter()
            .flatten()
            .flat_map(|tg| tg.tasks.iter().flatten())
            .map(|t| t.driver.as_str())
            .filter(|d| !allowed(d, &caps.enabled_task_drivers, &caps.disabled_task_drivers))
            .collect();
        if let Some(refused) = refusal("task driver", "task drivers", &drivers, &self.name) {
            return Err(refused);
        }
        let modes: Vec<&str> = job
            .task_groups
            .iter()
            .flatten()
            .flat_map(|tg| tg.networks.iter().flatten())
            .map(|n| {
                if n.mode.is_empty() {
                    "host"
                } else {
                    n.mode.as_str()
                }
            })
            .filter(|m| !allowed(m, &caps.enabled_network_modes, &caps.disabled_network_modes))
            .collect();
        match refusal(
            "group network mode",
            "group network modes",
            &modes,
            &self.name,
        ) {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }
}

/// Nomad's text for uses a namespace refuses: one quoted, or Go's `%q` of the list.
fn refusal(one: &str, many: &str, used: &[&str], namespace: &str) -> Option<String> {
    match used {
        [] => None,
        [single] => Some(format!(
            "used {one} {single:?} is not allowed in namespace {namespace:?}"
        )),
        list => {
            let quoted: Vec<String> = list.iter().map(|u| format!("{u:?}")).collect();
            Some(format!(
                "used {many} [{}] are not allowed in namespace {namespace:?}",
                quoted.join(" ")
            ))
        }
    }
}

fn allowed(name: &str, enabled: &Option<Vec<String>>, disabled: &Option<Vec<String>>) -> bool {
    if disabled.iter().flatten().any(|d| d == name) {
        return false;
    }
    match enabled {
        Some(list) if !list.is_empty() => list.iter().any(|e| e == name),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_descriptions_and_enterprise_settings_are_checked() {
        let mut ns = Namespace {
            name: "bad name".into(),
            description: "x".repeat(257),
            quota: "q".into(),
            node_pool_configuration: Some(serde_json::json!({"Default": "x"})),
            ..Namespace::default()
        };
        let errors = ns.validate().unwrap_err();
        assert_eq!(
            errors[0],
            "invalid name \"bad name\". Must match regex ^[a-zA-Z0-9-]{1,128}$"
        );
        assert_eq!(errors[1], "description longer than 256");
        assert!(errors[2].contains("Node Pools Governance is unlicensed."));
        assert!(errors[3].contains("non-existent quota"));
        ns = Namespace {
            name: "prod-1".into(),
            node_pool_configuration: Some(serde_json::Value::Null),
            ..Namespace::default()
        };
        assert!(ns.validate().is_ok());
    }

    #[test]
    fn drivers_and_network_modes_follow_the_capabilities() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "ID": "j",
            "TaskGroups": [{"Name": "g", "Networks": [{"Mode": "bridge"}],
                "Tasks": [{"Name": "a", "Driver": "raw_exec"}, {"Name": "b", "Driver": "exec"}]}]
        }))
        .unwrap();
        let mut ns = Namespace {
            name: "prod".into(),
            capabilities: Some(NamespaceCapabilities {
                disabled_task_drivers: Some(vec!["raw_exec".into()]),
                ..NamespaceCapabilities::default()
            }),
            ..Namespace::default()
        };
        assert_eq!(
            ns.check_job(&job).unwrap_err(),
            "used task driver \"raw_exec\" is not allowed in namespace \"prod\""
        );
        ns.capabilities = Some(NamespaceCapabilities {
            enabled_task_drivers: Some(vec!["docker".into()]),
            enabled_network_modes: Some(vec!["host".into()]),
            ..NamespaceCapabilities::default()
        });
        assert_eq!(
            ns.check_job(&job).unwrap_err(),
            "used task drivers [\"raw_exec\" \"exec\"] are not allowed in namespace \"prod\""
        );
        ns.capabilities = Some(NamespaceCapabilities {
            enabled_network_modes: Some(vec!["host".into()]),
            ..NamespaceCapabilities::default()
        });
        assert_eq!(
            ns.check_job(&job).unwrap_err(),
            "used group network mode \"bridge\" is not allowed in namespace \"prod\""
        );
        ns.capabilities = None;
        assert!(ns.check_job(&job).is_ok());
    }
}
