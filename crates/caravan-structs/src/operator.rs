//! The cluster's scheduler configuration (`/v1/operator/scheduler/configuration`).

use serde::{Deserialize, Serialize};

use crate::node_pool::NodePool;

/// `SchedulerConfiguration.SchedulerAlgorithm` values.
pub const SCHEDULER_ALGORITHM_BINPACK: &str = "binpack";
pub const SCHEDULER_ALGORITHM_SPREAD: &str = "spread";

/// Nomad's `SchedulerConfiguration`: how the cluster schedules, and the switches operators
/// flip at run time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SchedulerConfiguration {
    pub create_index: u64,
    /// Reserve `MemoryMaxMB` (not only `MemoryMB`) for tasks that set it.
    pub memory_oversubscription_enabled: bool,
    pub modify_index: u64,
    /// Workers take no evaluations while set.
    pub pause_eval_broker: bool,
    pub preemption_config: PreemptionConfig,
    /// Job registrations are refused while set.
    pub reject_job_registration: bool,
    /// `binpack` or `spread` (empty reads as binpack).
    pub scheduler_algorithm: String,
}

/// Which schedulers may preempt lower-priority allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PreemptionConfig {
    pub batch_scheduler_enabled: bool,
    pub service_scheduler_enabled: bool,
    pub sys_batch_scheduler_enabled: bool,
    pub system_scheduler_enabled: bool,
}

/// GET /v1/operator/scheduler/configuration: the configuration and the query meta.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SchedulerConfigurationResponse {
    pub index: u64,
    pub known_leader: bool,
    /// Nanoseconds.
    pub last_contact: i64,
    pub next_token: String,
    pub scheduler_config: Option<SchedulerConfiguration>,
}

/// PUT /v1/operator/scheduler/configuration: whether the write happened (a `cas` that does
/// not match leaves the configuration alone) and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SchedulerSetConfigurationResponse {
    pub index: u64,
    pub updated: bool,
}

/// Whether `algorithm` is one Nomad knows (empty means the default); the error is Nomad's text.
pub fn validate_scheduler_algorithm(algorithm: &str) -> Result<(), String> {
    match algorithm {
        "" | SCHEDULER_ALGORITHM_BINPACK | SCHEDULER_ALGORITHM_SPREAD => Ok(()),
        other => Err(format!("invalid scheduler algorithm: {other}")),
    }
}

impl SchedulerConfiguration {
    /// The configuration of a new cluster (Nomad's server default): binpack, preemption for
    /// system jobs only, everything else off.
    pub fn server_default() -> SchedulerConfiguration {
        SchedulerConfiguration {
            scheduler_algorithm: SCHEDULER_ALGORITHM_BINPACK.to_owned(),
            preemption_config: PreemptionConfig {
                system_scheduler_enabled: true,
                ..PreemptionConfig::default()
            },
            ..SchedulerConfiguration::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        validate_scheduler_algorithm(&self.scheduler_algorithm)
    }

    /// The algorithm in force: empty reads as binpack.
    pub fn effective_algorithm(&self) -> &str {
        if self.scheduler_algorithm.is_empty() {
            SCHEDULER_ALGORITHM_BINPACK
        } else {
            &self.scheduler_algorithm
        }
    }

    /// The configuration for the jobs of `pool`: the pool's own algorithm and memory
    /// oversubscription setting, where it has them, override the cluster's.
    pub fn with_node_pool(&self, pool: Option<&NodePool>) -> SchedulerConfiguration {
        let mut config = self.clone();
        let Some(own) = pool.and_then(|p| p.scheduler_configuration.as_ref()) else {
            return config;
        };
        if !own.scheduler_algorithm.is_empty() {
            config.scheduler_algorithm = own.scheduler_algorithm.clone();
        }
        if let Some(enabled) = own.memory_oversubscription_enabled {
            config.memory_oversubscription_enabled = enabled;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_pool::NodePoolSchedulerConfiguration;

    #[test]
    fn default_is_nomads() {
        let json =
            serde_json::to_string(&SchedulerConfiguration::server_default()).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"CreateIndex":0,"MemoryOversubscriptionEnabled":false,"ModifyIndex":0,"PauseEvalBroker":false,"PreemptionConfig":{"BatchSchedulerEnabled":false,"ServiceSchedulerEnabled":false,"SysBatchSchedulerEnabled":false,"SystemSchedulerEnabled":true},"RejectJobRegistration":false,"SchedulerAlgorithm":"binpack"}"#
        );
    }

    #[test]
    fn unknown_algorithms_are_refused() {
        let mut c = SchedulerConfiguration::server_default();
        c.scheduler_algorithm = "spread".into();
        assert!(c.validate().is_ok());
        c.scheduler_algorithm = String::new();
        assert!(c.validate().is_ok());
        assert_eq!(c.effective_algorithm(), "binpack");
        c.scheduler_algorithm = "roundrobin".into();
        assert_eq!(
            c.validate().unwrap_err(),
            "invalid scheduler algorithm: roundrobin"
        );
    }

    #[test]
    fn a_pool_overrides_what_it_sets() {
        let global = SchedulerConfiguration::server_default();
        let mut pool = NodePool::named("p");
        assert_eq!(global.with_node_pool(Some(&pool)), global);
        pool.scheduler_configuration = Some(NodePoolSchedulerConfiguration {
            memory_oversubscription_enabled: Some(true),
            scheduler_algorithm: "spread".into(),
        });
        let merged = global.with_node_pool(Some(&pool));
        assert_eq!(merged.scheduler_algorithm, "spread");
        assert!(merged.memory_oversubscription_enabled);
        pool.scheduler_configuration = Some(NodePoolSchedulerConfiguration::default());
        assert_eq!(global.with_node_pool(Some(&pool)), global);
    }
}
