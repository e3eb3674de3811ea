//! Node pools: named groups of client nodes that jobs target (`/v1/node/pools`,
//! `/v1/node/pool/:name`), with the built-in pools `all` and `default`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::job_defaults::format_multierror;
use crate::operator::validate_scheduler_algorithm;

/// The built-in pool that always holds every node of the cluster.
pub const NODE_POOL_ALL: &str = "all";
pub const NODE_POOL_ALL_DESCRIPTION: &str = "Node pool with all nodes in the cluster.";
/// The built-in pool of nodes (and jobs) that name none.
pub const NODE_POOL_DEFAULT: &str = "default";
pub const NODE_POOL_DEFAULT_DESCRIPTION: &str = "Default node pool.";

/// The longest description a pool may have.
pub const MAX_NODE_POOL_DESCRIPTION_LENGTH: usize = 256;

/// The rule a pool name must follow, as Nomad states it in its messages.
pub const NODE_POOL_NAME_PATTERN: &str = "^[a-zA-Z0-9-_]{1,128}$";

static NODE_POOL_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(NODE_POOL_NAME_PATTERN).ok());

/// A node pool (GET /v1/node/pool/:name).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodePool {
    pub create_index: u64,
    pub description: String,
    /// Nomad's replication hash (base64 bytes); Caravan has one region and leaves it `null`.
    pub hash: Option<String>,
    pub meta: Option<BTreeMap<String, String>>,
    pub modify_index: u64,
    pub name: String,
    pub scheduler_configuration: Option<NodePoolSchedulerConfiguration>,
}

/// The scheduler settings a pool overrides; unset fields follow the cluster's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NodePoolSchedulerConfiguration {
    pub memory_oversubscription_enabled: Option<bool>,
    /// `binpack`, `spread`, or empty for the cluster's algorithm.
    pub scheduler_algorithm: String,
}

/// Whether `name` is a valid pool name; the error is Nomad's text.
pub fn validate_node_pool_name(name: &str) -> Result<(), String> {
    let valid = NODE_POOL_NAME.as_ref().is_some_and(|re| re.is_match(name));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}, must match regex {NODE_POOL_NAME_PATTERN}"
        ))
    }
}

impl NodePool {
    /// The built-in pools, as a new cluster holds them (created at index 1, as in Nomad).
    pub fn built_in() -> [NodePool; 2] {
        let pool = |name: &str, description: &str| NodePool {
            create_index: 1,
            description: description.to_owned(),
            modify_index: 1,
            name: name.to_owned(),
            ..NodePool::default()
        };
        [
            pool(NODE_POOL_ALL, NODE_POOL_ALL_DESCRIPTION),
            pool(NODE_POOL_DEFAULT, NODE_POOL_DEFAULT_DESCRIPTION),
        ]
    }

    /// The built-in pool of that name, if it is one.
    pub fn built_in_named(name: &str) -> Option<NodePool> {
        NodePool::built_in().into_iter().find(|p| p.name == name)
    }

    /// `all` and `default` always exist and can be neither modified nor deleted.
    pub fn is_built_in_name(name: &str) -> bool {
        name == NODE_POOL_ALL || name == NODE_POOL_DEFAULT
    }

    /// A pool created implicitly by a node registering in it.
    pub fn named(name: &str) -> NodePool {
        NodePool {
            name: name.to_owned(),
            ..NodePool::default()
        }
    }

    /// Nomad's checks of a pool to upsert; the error lists every problem (multierror text).
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Err(e) = validate_node_pool_name(&self.name) {
            errors.push(e);
        }
        if self.description.len() > MAX_NODE_POOL_DESCRIPTION_LENGTH {
            errors.push(format!(
                "description longer than {MAX_NODE_POOL_DESCRIPTION_LENGTH}"
            ));
        }
        if let Some(config) = &self.scheduler_configuration
            && let Err(e) = validate_scheduler_algorithm(&config.scheduler_algorithm)
        {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format_multierror(&errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nomads_rule() {
        for ok in ["default", "a", "prod-eu_1", &"x".repeat(128)] {
            assert!(validate_node_pool_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "dots.no", "slash/no", &"x".repeat(129)] {
            assert!(validate_node_pool_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_node_pool_name("a b").unwrap_err(),
            "invalid name \"a b\", must match regex ^[a-zA-Z0-9-_]{1,128}$"
        );
    }

    #[test]
    fn validation_lists_every_problem_as_multierror() {
        let pool = NodePool {
            name: "bad name".into(),
            description: "d".repeat(300),
            ..NodePool::default()
        };
        assert_eq!(
            pool.validate().unwrap_err(),
            "2 errors occurred:\n\t* invalid name \"bad name\", must match regex \
             ^[a-zA-Z0-9-_]{1,128}$\n\t* description longer than 256\n\n"
        );
        let pool = NodePool {
            name: "ok".into(),
            scheduler_configuration: Some(NodePoolSchedulerConfiguration {
                scheduler_algorithm: "random".into(),
                ..Default::default()
            }),
            ..NodePool::default()
        };
        assert_eq!(
            pool.validate().unwrap_err(),
            "1 error occurred:\n\t* invalid scheduler algorithm: random\n\n"
        );
    }

    #[test]
    fn built_ins_are_all_and_default() {
        let [all, default] = NodePool::built_in();
        assert_eq!(all.name, "all");
        assert_eq!(default.description, "Default node pool.");
        assert!(NodePool::is_built_in_name("default"));
        assert!(!NodePool::is_built_in_name("prod"));
        let json = serde_json::to_string(&default).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"CreateIndex":1,"Description":"Default node pool.","Hash":null,"Meta":null,"ModifyIndex":1,"Name":"default","SchedulerConfiguration":null}"#
        );
    }
}
