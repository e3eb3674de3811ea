//! The Operator service: the cluster's scheduler configuration (read, replace, check-and-set on
//! its ModifyIndex), and what the rest of the server reads of it. Until an operator writes
//! one, the configuration is the server's default (Nomad's defaults, with the algorithm of the
//! server's `scheduler_algorithm` setting).

use std::sync::Arc;

use bytes::Bytes;
use caravan_proto::v1::{self, operator_server};
use caravan_scheduler::{SchedulerAlgorithm, SchedulerConfig};
use caravan_state::{SCHEDULER_CONFIG_KEY, Snapshot, Store, TableId, Txn, WatchKey};
use caravan_structs::SchedulerConfiguration;
use tonic::{Request, Response, Status};

use crate::Server;
use crate::error::ServerError;
use crate::query::{query_meta, wait_of};

/// The configuration in force: the stored one, else `default`.
pub fn current_config(snap: &Snapshot, default: &SchedulerConfiguration) -> SchedulerConfiguration {
    snap.scheduler_config()
        .cloned()
        .unwrap_or_else(|| default.clone())
}

/// What the scheduler reads for the jobs of `node_pool`: the cluster's configuration with the
/// pool's own settings over it.
pub fn scheduler_config_for_pool(
    snap: &Snapshot,
    default: &SchedulerConfiguration,
    node_pool: &str,
) -> SchedulerConfig {
    let pool = crate::node_pools::find_pool(snap, node_pool);
    let merged = current_config(snap, default).with_node_pool(pool.as_ref());
    SchedulerConfig {
        algorithm: SchedulerAlgorithm::from_name(merged.effective_algorithm()),
        memory_oversubscription_enabled: merged.memory_oversubscription_enabled,
    }
}

/// Nomad's text when registrations are switched off.
pub const JOB_REGISTRATION_DISABLED: &str =
    "Job registration, dispatch, and scale are disabled by the scheduler configuration";

/// Refuses a job registration while the configuration rejects them. (Nomad lets management
/// tokens through; Caravan has no management tokens yet, so nobody passes.)
pub fn registrations_allowed(
    snap: &Snapshot,
    default: &SchedulerConfiguration,
) -> Result<(), ServerError> {
    let rejecting = snap
        .scheduler_config()
        .unwrap_or(default)
        .reject_job_registration;
    if rejecting {
        return Err(ServerError::PermissionDenied(
            JOB_REGISTRATION_DISABLED.to_owned(),
        ));
    }
    Ok(())
}

/// Replaces the configuration inside a write; with `cas`, only if the stored configuration's
/// ModifyIndex is `cas` (an unwritten configuration has 0). Returns whether it was written.
fn set_config(
    txn: &mut Txn<'_>,
    mut config: SchedulerConfiguration,
    cas: Option<u64>,
) -> Result<bool, ServerError> {
    if let Some(cas) = cas {
        let current = txn
            .snapshot()
            .scheduler_config()
            .map_or(0, |c| c.modify_index);
        if current != cas {
            return Ok(false);
        }
    }
    // The indexes are the store's to set.
    config.create_index = 0;
    config.modify_index = 0;
    txn.put(config)?;
    Ok(true)
}

#[derive(Clone)]
pub struct OperatorService {
    server: Arc<Server>,
}

impl OperatorService {
    pub fn new(server: Arc<Server>) -> Self {
        OperatorService { server }
    }

    fn store(&self) -> &Store {
        &self.server.store
    }
}

#[tonic::async_trait]
impl operator_server::Operator for OperatorService {
    async fn get_scheduler_configuration(
        &self,
        request: Request<v1::GetSchedulerConfigurationRequest>,
    ) -> Result<Response<v1::GetSchedulerConfigurationResponse>, Status> {
        let q = request.into_inner().query.unwrap_or_default();
        let keys = [WatchKey::Row(
            TableId::SchedulerConfig,
            SCHEDULER_CONFIG_KEY.to_owned(),
        )];
        let default = self.server.scheduler_defaults.clone();
        let (config, index) = self
            .store()
            .block(q.min_index, wait_of(&q), &keys, |snap| {
                let index = snap.scheduler_config_table().index().max(1);
                ((current_config(snap, &default), index), index)
            })
            .await;
        let json = serde_json::to_vec(&config)
            .map_err(|e| ServerError::Internal(format!("encoding scheduler configuration: {e}")))?;
        Ok(Response::new(v1::GetSchedulerConfigurationResponse {
            config_json: Bytes::from(json),
            meta: Some(query_meta(index, String::new())),
        }))
    }

    async fn set_scheduler_configuration(
        &self,
        request: Request<v1::SetSchedulerConfigurationRequest>,
    ) -> Result<Response<v1::SetSchedulerConfigurationResponse>, Status> {
        let req = request.into_inner();
        let value: serde_json::Value = serde_json::from_slice(&req.config_json)
            .map_err(|e| ServerError::BadRequest(format!("Error parsing scheduler config: {e}")))?;
        let config: SchedulerConfiguration = caravan_structs::go_json::from_value(value)
            .map_err(|e| ServerError::BadRequest(format!("Error parsing scheduler config: {e}")))?;
        config.validate().map_err(ServerError::BadRequest)?;
        let cas = req.cas;
        let written = self
            .store()
            .write(move |txn| set_config(txn, config, cas))
            .await?;
        let index = if written.value {
            written.index
        } else {
            self.store().snapshot().index().max(1)
        };
        tracing::info!(
            updated = written.value,
            index,
            "scheduler configuration set"
        );
        Ok(Response::new(v1::SetSchedulerConfigurationResponse {
            updated: written.value,
            index,
        }))
    }

    async fn garbage_collect(
        &self,
        _request: Request<v1::GarbageCollectRequest>,
    ) -> Result<Response<v1::GarbageCollectResponse>, Status> {
        let report = crate::gc::force(self.store()).await?;
        tracing::info!(?report, "forced garbage collection");
        let n = |v: usize| v as u64;
        Ok(Response::new(v1::GarbageCollectResponse {
            jobs: n(report.jobs),
            evals: n(report.evals),
            allocs: n(report.allocs),
            deployments: n(report.deployments),
            nodes: n(report.nodes),
        }))
    }

    async fn reconcile_job_summaries(
        &self,
        _request: Request<v1::ReconcileJobSummariesRequest>,
    ) -> Result<Response<v1::ReconcileJobSummariesResponse>, Status> {
        let written = self.store().write(reconcile_job_statuses).await?;
        let index = if written.value > 0 {
            written.index
        } else {
            self.store().snapshot().index().max(1)
        };
        Ok(Response::new(v1::ReconcileJobSummariesResponse {
            index,
            corrected: written.value as u64,
        }))
    }
}

/// Job summaries are counted from the allocations on every read, so they cannot drift; what
/// is stored, and could, is each job's status. Re-derives it for every job and returns how
/// many were wrong.
fn reconcile_job_statuses(txn: &mut Txn<'_>) -> Result<usize, ServerError> {
    let wrong: Vec<caravan_structs::Job> = txn
        .snapshot()
        .jobs()
        .iter()
        .filter_map(|(_, row)| {
            let status = crate::jobs::derive_job_status(txn.snapshot(), &row.value);
            (row.value.status != status).then(|| {
                let mut job = row.value.clone();
                job.status = status.to_owned();
                job
            })
        })
        .collect();
    let corrected = wrong.len();
    for job in wrong {
        txn.put(job)?;
    }
    Ok(corrected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::{NodePool, NodePoolSchedulerConfiguration};

    #[test]
    fn the_default_applies_until_written_and_pools_override_it() {
        let snap = Snapshot::default();
        let mut defaults = SchedulerConfiguration::server_default();
        defaults.scheduler_algorithm = "spread".to_owned();
        assert_eq!(current_config(&snap, &defaults), defaults);
        let config = scheduler_config_for_pool(&snap, &defaults, "default");
        assert_eq!(config.algorithm, SchedulerAlgorithm::Spread);
        assert!(!config.memory_oversubscription_enabled);
        assert!(registrations_allowed(&snap, &defaults).is_ok());
        defaults.reject_job_registration = true;
        let err = registrations_allowed(&snap, &defaults).unwrap_err();
        assert_eq!(err.to_string(), JOB_REGISTRATION_DISABLED);
        // A pool's own settings win over the cluster's.
        let pool = NodePool {
            name: "p".to_owned(),
            scheduler_configuration: Some(NodePoolSchedulerConfiguration {
                memory_oversubscription_enabled: Some(true),
                scheduler_algorithm: "binpack".to_owned(),
            }),
            ..NodePool::default()
        };
        let merged = defaults.with_node_pool(Some(&pool));
        assert_eq!(merged.effective_algorithm(), "binpack");
        assert!(merged.memory_oversubscription_enabled);
    }
}
