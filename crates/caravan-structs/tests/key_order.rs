//! Every wire type writes its keys in ascending byte order of their names, as Nomad's encoder
//! does (NOMAD-BEHAVIOR 8.9), and every key is written (Go zero values, `null` for nil).
//! `Default` serializes all of a type's own keys, so checking it covers each struct's
//! declaration order; nested types are listed on their own.

use caravan_structs::*;
use serde::Serialize;

fn keys<T: Serialize + Default>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        other => panic!("{} is not an object: {other:?}", std::any::type_name::<T>()),
    }
}

macro_rules! check_all {
    ($($t:ty),* $(,)?) => {{
        let mut bad = Vec::new();
        $(
            let k = keys::<$t>();
            let mut sorted = k.clone();
            sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            if k != sorted || k.is_empty() {
                bad.push(format!("{}: {:?}", stringify!($t), k));
            }
        )*
        assert!(bad.is_empty(), "keys out of order:\n{}", bad.join("\n"));
    }};
}

#[test]
fn every_wire_type_writes_keys_in_byte_order() {
    check_all!(
        // agent.rs
        HostData,
        DiskUsage,
        HostDataResponse,
        // alloc.rs
        Allocation,
        AllocListStub,
        AllocState,
        AllocNetworkStatus,
        AllocDeploymentStatus,
        DesiredTransition,
        AllocMetric,
        NodeScoreMeta,
        RescheduleTracker,
        RescheduleEvent,
        TaskState,
        TaskHandle,
        TaskEvent,
        AllocatedResources,
        AllocatedTaskResources,
        AllocatedSharedResources,
        AllocatedCpuResources,
        AllocatedMemoryResources,
        AllocatedDeviceResource,
        AllocatedPortMapping,
        AllocStopResponse,
        AllocSignalRequest,
        AllocRestartRequest,
        GenericResponse,
        // deployment.rs
        Deployment,
        NodePool,
        NodePoolSchedulerConfiguration,
        SchedulerConfiguration,
        PreemptionConfig,
        SchedulerConfigurationResponse,
        SchedulerSetConfigurationResponse,
        DeploymentState,
        // eval.rs
        Evaluation,
        EvaluationStub,
        // job.rs
        Job,
        JobUIConfig,
        JobUILink,
        TaskGroup,
        Task,
        Constraint,
        Affinity,
        Spread,
        SpreadTarget,
        RestartPolicy,
        ReschedulePolicy,
        UpdateStrategy,
        MigrateStrategy,
        EphemeralDisk,
        LogConfig,
        Service,
        ServiceCheck,
        CheckRestart,
        PeriodicConfig,
        ParameterizedJobConfig,
        DispatchPayloadConfig,
        TaskLifecycleConfig,
        TaskArtifact,
        Template,
        VolumeMount,
        VolumeRequest,
        JobListStub,
        JobSummary,
        JobChildrenSummary,
        TaskGroupSummary,
        // node.rs
        Node,
        NodeListStub,
        NodeEvent,
        DriverInfo,
        NodeResources,
        NodeCpuResources,
        NodeMemoryResources,
        NodeDiskResources,
        NodeNetworkResource,
        NodeNetworkAddress,
        NodeDeviceResource,
        NodeDevice,
        NodeDeviceLocality,
        Attribute,
        NodeReservedResources,
        NodeReservedCpuResources,
        NodeReservedMemoryResources,
        NodeReservedDiskResources,
        NodeReservedNetworkResources,
        DrainStrategy,
        DrainSpec,
        DrainMetadata,
        HostVolumeInfo,
        HostNetworkInfo,
        CSIInfo,
        CSIControllerInfo,
        CSINodeInfo,
        CSITopology,
        NodeUpdateDrainRequest,
        NodeUpdateEligibilityRequest,
        NodeDrainUpdateResponse,
        NodeUpdateResponse,
        NodeServerInfo,
        // resources.rs
        Resources,
        NetworkResource,
        Port,
        DNSConfig,
        RequestedDevice,
        // search.rs
        SearchRequest,
        SearchResponse,
        FuzzySearchRequest,
        FuzzySearchResponse,
        // service.rs
        ServiceRegistration,
    );
}
