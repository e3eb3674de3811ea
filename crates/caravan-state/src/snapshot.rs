//! A consistent, immutable view of the whole state at one index. Cloning is cheap (persistent
//! maps), so every read and every write transaction works on its own snapshot.

use std::sync::Arc;

use caravan_structs::{
    AclBootstrap, AclPolicy, AclRole, AclToken, Allocation, Deployment, Evaluation, Job,
    JobScalingEvents, JobSubmission, Namespace, Node, NodePool, OneTimeToken, PeriodicLaunch,
    SchedulerConfiguration, ServiceRegistration,
};

use crate::jobs::{JobVersion, job_key, job_version_key};
use crate::node_pools::SCHEDULER_CONFIG_KEY;
use crate::table::{Document, Row, Table};
use crate::{allocs, deployments, evals, services};

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) index: u64,
    pub(crate) nodes: Table<Node>,
    pub(crate) jobs: Table<Job>,
    pub(crate) job_versions: Table<JobVersion>,
    pub(crate) evals: Table<Evaluation>,
    pub(crate) allocs: Table<Allocation>,
    pub(crate) deployments: Table<Deployment>,
    pub(crate) node_pools: Table<NodePool>,
    pub(crate) scheduler_config: Table<SchedulerConfiguration>,
    pub(crate) scaling_events: Table<JobScalingEvents>,
    pub(crate) job_submissions: Table<JobSubmission>,
    pub(crate) periodic_launches: Table<PeriodicLaunch>,
    pub(crate) namespaces: Table<Namespace>,
    pub(crate) acl_policies: Table<AclPolicy>,
    pub(crate) acl_tokens: Table<AclToken>,
    pub(crate) acl_roles: Table<AclRole>,
    pub(crate) one_time_tokens: Table<OneTimeToken>,
    pub(crate) acl_bootstrap: Table<AclBootstrap>,
    pub(crate) service_registrations: Table<ServiceRegistration>,
}

impl Snapshot {
    /// The global index of the last write this snapshot contains.
    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn nodes(&self) -> &Table<Node> {
        &self.nodes
    }

    pub fn jobs(&self) -> &Table<Job> {
        &self.jobs
    }

    pub fn job_versions(&self) -> &Table<JobVersion> {
        &self.job_versions
    }

    pub fn evals(&self) -> &Table<Evaluation> {
        &self.evals
    }

    pub fn allocs(&self) -> &Table<Allocation> {
        &self.allocs
    }

    pub fn deployments(&self) -> &Table<Deployment> {
        &self.deployments
    }

    pub fn acl_policies(&self) -> &Table<AclPolicy> {
        &self.acl_policies
    }

    pub fn acl_tokens(&self) -> &Table<AclToken> {
        &self.acl_tokens
    }

    pub fn acl_roles(&self) -> &Table<AclRole> {
        &self.acl_roles
    }

    pub fn one_time_tokens(&self) -> &Table<OneTimeToken> {
        &self.one_time_tokens
    }

    /// The last ACL bootstrap, if there was one.
    pub fn acl_bootstrap(&self) -> Option<&AclBootstrap> {
        self.acl_bootstrap
            .get(crate::acl::ACL_BOOTSTRAP_KEY)
            .map(|r| &r.value)
    }

    pub fn acl_bootstrap_table(&self) -> &Table<AclBootstrap> {
        &self.acl_bootstrap
    }

    /// The token whose secret is `secret`: found by digest, then compared in constant time.
    pub fn acl_token_by_secret(&self, secret: &str) -> Option<&Arc<Row<AclToken>>> {
        let digest = crate::acl::secret_digest(secret);
        self.acl_tokens
            .by(crate::acl::TOKENS_BY_SECRET, &digest)
            .find(|row| {
                crate::acl::digests_equal(&crate::acl::secret_digest(&row.value.secret_id), &digest)
            })
    }

    /// The role named `name`.
    pub fn acl_role_by_name(&self, name: &str) -> Option<&Arc<Row<AclRole>>> {
        self.acl_roles.by(crate::acl::ROLES_BY_NAME, name).next()
    }

    /// The one-time tokens of the token with accessor `accessor`.
    pub fn one_time_tokens_of<'a>(
        &'a self,
        accessor: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<OneTimeToken>>> + use<'a> {
        self.one_time_tokens
            .by(crate::acl::ONE_TIME_BY_ACCESSOR, accessor)
    }

    /// The stored namespaces (the built-in `default` is stored only once changed).
    pub fn namespaces(&self) -> &Table<Namespace> {
        &self.namespaces
    }

    /// The stored node pools (the built-ins `all` and `default` are not stored).
    pub fn node_pools(&self) -> &Table<NodePool> {
        &self.node_pools
    }

    /// The scheduler configuration table (one row at most).
    pub fn scaling_events_table(&self) -> &Table<JobScalingEvents> {
        &self.scaling_events
    }

    pub fn job_submissions(&self) -> &Table<JobSubmission> {
        &self.job_submissions
    }

    /// The source of one version of a job.
    pub fn job_submission(
        &self,
        namespace: &str,
        id: &str,
        version: u64,
    ) -> Option<&JobSubmission> {
        self.job_submissions
            .get(&job_version_key(namespace, id, version))
            .map(|r| &r.value)
    }

    /// The scaling events of one job.
    pub fn scaling_events(&self, namespace: &str, job_id: &str) -> Option<&JobScalingEvents> {
        self.scaling_events
            .get(&job_key(namespace, job_id))
            .map(|r| &r.value)
    }

    pub fn scheduler_config_table(&self) -> &Table<SchedulerConfiguration> {
        &self.scheduler_config
    }

    /// The stored scheduler configuration; `None` until one is written.
    pub fn scheduler_config(&self) -> Option<&SchedulerConfiguration> {
        self.scheduler_config
            .get(SCHEDULER_CONFIG_KEY)
            .map(|r| &r.value)
    }

    pub fn periodic_launches(&self) -> &Table<PeriodicLaunch> {
        &self.periodic_launches
    }

    /// The last launch of a periodic job.
    pub fn periodic_launch(&self, namespace: &str, id: &str) -> Option<&PeriodicLaunch> {
        self.periodic_launches
            .get(&job_key(namespace, id))
            .map(|row| &row.value)
    }

    /// The current version of a job.
    pub fn job(&self, namespace: &str, id: &str) -> Option<&Arc<Row<Job>>> {
        self.jobs.get(&job_key(namespace, id))
    }

    /// One tracked version of a job.
    pub fn job_version(&self, namespace: &str, id: &str, version: u64) -> Option<&Job> {
        self.job_versions
            .get(&job_version_key(namespace, id, version))
            .map(|row| &row.value.0)
    }

    /// Every tracked version of a job, oldest first.
    pub fn versions_of_job<'a>(
        &'a self,
        namespace: &str,
        id: &str,
    ) -> impl DoubleEndedIterator<Item = &'a Arc<Row<JobVersion>>> + use<'a> {
        self.job_versions
            .by(JobVersion::BY_JOB, &job_key(namespace, id))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The allocations placed on a node, terminal ones included.
    pub fn allocs_by_node<'a>(
        &'a self,
        node_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<Allocation>>> + use<'a> {
        self.allocs.by(allocs::BY_NODE, node_id)
    }

    /// The allocations of a job, terminal ones included.
    pub fn allocs_by_job<'a>(
        &'a self,
        namespace: &str,
        job_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<Allocation>>> + use<'a> {
        self.allocs.by(allocs::BY_JOB, &job_key(namespace, job_id))
    }

    /// The evaluations of a job.
    pub fn evals_by_job<'a>(
        &'a self,
        namespace: &str,
        job_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<Evaluation>>> + use<'a> {
        self.evals.by(evals::BY_JOB, &job_key(namespace, job_id))
    }

    /// The deployments of a job.
    pub fn deployments_by_job<'a>(
        &'a self,
        namespace: &str,
        job_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<Deployment>>> + use<'a> {
        self.deployments
            .by(deployments::BY_JOB, &job_key(namespace, job_id))
    }

    /// The service registrations, by `<namespace>/<ID>`.
    pub fn service_registrations(&self) -> &Table<ServiceRegistration> {
        &self.service_registrations
    }

    /// The registrations of one service, in ID order.
    pub fn services_by_name<'a>(
        &'a self,
        namespace: &str,
        name: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<ServiceRegistration>>> + use<'a> {
        self.service_registrations
            .by(services::BY_NAME, &job_key(namespace, name))
    }

    /// The registrations of one allocation.
    pub fn services_by_alloc<'a>(
        &'a self,
        alloc_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<ServiceRegistration>>> + use<'a> {
        self.service_registrations.by(services::BY_ALLOC, alloc_id)
    }

    /// The registrations of one job, any allocation or version.
    pub fn services_by_job<'a>(
        &'a self,
        namespace: &str,
        job_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<ServiceRegistration>>> + use<'a> {
        self.service_registrations
            .by(services::BY_JOB, &job_key(namespace, job_id))
    }

    /// The newest deployment of a job (highest create index).
    pub fn latest_deployment(
        &self,
        namespace: &str,
        job_id: &str,
    ) -> Option<&Arc<Row<Deployment>>> {
        self.deployments_by_job(namespace, job_id)
            .max_by_key(|row| row.value.create_index)
    }
}

/// Typed access to the table holding documents of type `T`.
pub trait HasTable<T: Document> {
    fn table(&self) -> &Table<T>;
    fn table_mut(&mut self) -> &mut Table<T>;
}

macro_rules! has_table {
    ($ty:ty, $field:ident) => {
        impl HasTable<$ty> for Snapshot {
            fn table(&self) -> &Table<$ty> {
                &self.$field
            }
            fn table_mut(&mut self) -> &mut Table<$ty> {
                &mut self.$field
            }
        }
    };
}

has_table!(Node, nodes);
has_table!(Job, jobs);
has_table!(JobVersion, job_versions);
has_table!(Evaluation, evals);
has_table!(Allocation, allocs);
has_table!(Deployment, deployments);
has_table!(NodePool, node_pools);
has_table!(SchedulerConfiguration, scheduler_config);
has_table!(JobScalingEvents, scaling_events);
has_table!(JobSubmission, job_submissions);
has_table!(PeriodicLaunch, periodic_launches);
has_table!(Namespace, namespaces);
has_table!(AclPolicy, acl_policies);
has_table!(AclToken, acl_tokens);
has_table!(AclRole, acl_roles);
has_table!(OneTimeToken, one_time_tokens);
has_table!(AclBootstrap, acl_bootstrap);
has_table!(ServiceRegistration, service_registrations);
