//! Every sample JSON of the spec (`/work/shared/spec/seeds/*.txt`, extracted into
//! `tests/fixtures/`) deserializes into its type and serializes back with nothing lost:
//!
//! - every key of the sample is present in our output with an equal value (same nulls, same
//!   zero values, same numbers, same types);
//! - our output may have *more* keys than a sample only where the sample predates the field,
//!   and only keys named in [`ALLOW_EXTRA`] for that type;
//! - map keys (data, not fields) must match exactly;
//! - struct keys come out in ascending byte order (NOMAD-BEHAVIOR 8.9);
//! - reading our own output back gives the same value (the round trip is stable).
//!
//! Where a sample is wrong about Nomad's encoding, [`ERRATA`] names the exact path, the
//! sample's value and ours, and why.
//!
//! Fixture sources: `alloc_*` from seeds/001 (allocations.mdx; its blocks are identical to the
//! flattened seeds/000), `node_*` from seeds/004 (nodes docs, 2018–2019 samples), `job_list*`
//! and `deployment_list*` from seeds/002 (API overview's filtering examples). seeds/003 (client
//! endpoints) has no JSON samples.

// Test helpers outside #[test] fns panic on bad fixtures on purpose.
#![allow(clippy::expect_used)]

use std::fmt::Debug;

use caravan_structs::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Keys our output may add to a sample's object, per type, because the sample was written by an
/// older Nomad than the field. Anything else extra is a failure.
const ALLOW_EXTRA: &[(&str, &[&str])] = &[
    // seeds/004's node list is from Nomad 0.8: no pools, host volumes or drain metadata.
    ("NodeListStub", &["HostVolumes", "LastDrain", "NodePool"]),
    // seeds/004's node is from Nomad 0.10-dev: fields added in 0.11–1.10.
    (
        "Node",
        &[
            "CSIControllerPlugins",
            "CSINodePlugins",
            "CgroupParent",
            "GCVolumesOnNodeGC",
            "HostNetworks",
            "IdentitySigningKeyID",
            "LastAllocUpdateIndex",
            "LastDrain",
            "LastMissedHeartbeatIndex",
            "NodeMaxAllocs",
            "NodePool",
        ],
    ),
    ("HostVolumeInfo", &["ID"]),
    (
        "NodeResources",
        &["MaxDynamicPort", "MinDynamicPort", "NodeNetworks"],
    ),
    ("NodeCpuResources", &["ReservableCpuCores", "TotalCpuCores"]),
    ("NodeReservedCpuResources", &["ReservedCpuCores"]),
    // Legacy resources: cores and memory oversubscription (1.1), and IOPS/Devices, which
    // the allocation samples predate or omit.
    ("Resources", &["Cores", "Devices", "IOPS", "MemoryMaxMB"]),
    ("NetworkResource", &["DNS", "Hostname", "Mode"]),
    ("Port", &["HostNetwork", "To"]),
    // The docs' evaluate/purge samples omit keys the struct has always had.
    (
        "NodeUpdateResponse",
        &[
            "Features",
            "NextToken",
            "SchedulingEligibility",
            "SignedIdentity",
        ],
    ),
    // Request samples show only what the example sets.
    (
        "NodeUpdateDrainRequest",
        &["MarkEligible", "Meta", "NodeID"],
    ),
    ("NodeUpdateEligibilityRequest", &["NodeID"]),
    ("AllocRestartRequest", &["AllTasks"]),
    // The docs show `{}` for signal/restart; Nomad writes `{"Index":0}` (NOMAD-BEHAVIOR 1.5).
    ("GenericResponse", &["Index"]),
    // Allocation samples are from Nomad 0.6–0.8 (seeds/001 read, seeds/004).
    (
        "Allocation",
        &[
            "AllocStates",
            "AllocatedResources",
            "DeploymentID",
            "DeploymentStatus",
            "DesiredTransition",
            "NetworkStatus",
            "NodeName",
            "PreemptedAllocations",
            "PreemptedByAllocation",
            "SigningKeyID",
            "FollowupEvalID",
            "Namespace",
        ],
    ),
    ("AllocListStub", &["NextAllocation"]),
    ("AllocDeploymentStatus", &["Canary", "Timestamp"]),
    (
        "DesiredTransition",
        &[
            "ForceReschedule",
            "MigrateDisablePlacement",
            "NoShutdownDelay",
            "Reschedule",
        ],
    ),
    (
        "AllocMetric",
        &[
            "NodePool",
            "NodesInPool",
            "QuotaExhausted",
            "ResourcesExhausted",
            "ScoreMetaData",
        ],
    ),
    ("RescheduleTracker", &["LastReschedule"]),
    ("TaskState", &["Paused", "TaskHandle"]),
    ("TaskEvent", &["Details", "DisplayMessage", "GenericSource"]),
    (
        "Job",
        &[
            "Affinities",
            "ConsulNamespace",
            "ConsulToken",
            "DispatchIdempotencyToken",
            "Dispatched",
            "Multiregion",
            "Namespace",
            "NodePool",
            "NomadTokenID",
            "Stable",
            "Stop",
            "Spreads",
            "SubmitTime",
            "UI",
            "VaultNamespace",
            "Version",
        ],
    ),
    (
        "TaskGroup",
        &[
            "Affinities",
            "Consul",
            "Disconnect",
            "MaxClientDisconnect",
            "Migrate",
            "Networks",
            "PreventRescheduleOnLost",
            "ReschedulePolicy",
            "Scaling",
            "Services",
            "ShutdownDelay",
            "Spreads",
            "StopAfterClientDisconnect",
            "Update",
            "Volumes",
        ],
    ),
    (
        "Task",
        &[
            "Affinities",
            "CSIPluginConfig",
            "Consul",
            "Identities",
            "Identity",
            "KillSignal",
            "Kind",
            "Lifecycle",
            "RestartPolicy",
            "ScalingPolicies",
            "ShutdownDelay",
            "Spreads",
            "VolumeMounts",
        ],
    ),
    (
        "UpdateStrategy",
        &[
            "AutoPromote",
            "AutoRevert",
            "Canary",
            "HealthCheck",
            "HealthyDeadline",
            "MinHealthyTime",
            "ProgressDeadline",
        ],
    ),
    ("RestartPolicy", &["RenderTemplates"]),
    ("LogConfig", &["Disabled"]),
    (
        "Service",
        &[
            "Address",
            "AddressMode",
            "CanaryMeta",
            "CanaryTags",
            "Connect",
            "EnableTagOverride",
            "Meta",
            "OnUpdate",
            "Provider",
            "TaskName",
        ],
    ),
    (
        "ServiceCheck",
        &[
            "AddressMode",
            "Advertise",
            "Body",
            "CheckRestart",
            "Expose",
            "FailuresBeforeCritical",
            "FailuresBeforeWarning",
            "GRPCService",
            "GRPCUseTLS",
            "Header",
            "Method",
            "OnUpdate",
            "SuccessBeforePassing",
            "TLSServerName",
            "TLSSkipVerify",
            "TaskName",
        ],
    ),
    ("JobListStub", &["Meta", "NodePool", "Version"]),
    ("TaskGroupSummary", &["Unknown"]),
    ("Deployment", &["CreateTime", "ModifyTime"]),
];

/// Values where a sample contradicts Nomad's actual encoding: (fixture, path, sample's value,
/// our value, why). Each must match exactly, so a stale entry fails too.
fn errata() -> Vec<(&'static str, &'static str, Value, Value, &'static str)> {
    const ZERO_TIME: &str = "Go's zero time.Time encodes as null (NOMAD-BEHAVIOR 7.2); the \
                             2017/2018 samples show the text form";
    vec![
        (
            "alloc_read.json",
            "RescheduleTracker.Events[0].Delay",
            json!("5000000000"),
            json!(5_000_000_000i64),
            "Delay is a time.Duration, an int64 of nanoseconds; the docs quote it",
        ),
        (
            "alloc_read.json",
            "TaskStates.redis.FinishedAt",
            json!("0001-01-01T00:00:00Z"),
            Value::Null,
            ZERO_TIME,
        ),
        (
            "alloc_read.json",
            "TaskStates.redis.LastRestart",
            json!("0001-01-01T00:00:00Z"),
            Value::Null,
            ZERO_TIME,
        ),
        (
            "node_allocations.json",
            "[0].TaskStates.webapp.FinishedAt",
            json!("0001-01-01T00:00:00Z"),
            Value::Null,
            ZERO_TIME,
        ),
        (
            "node_allocations.json",
            "[0].TaskStates.webapp.LastRestart",
            json!("0001-01-01T00:00:00Z"),
            Value::Null,
            ZERO_TIME,
        ),
    ]
}

/// The type of each nested value: (parent type, key, child type). Child types: a struct name;
/// `[T]` an array of T; `{T}` a map of T; `[]` / `{}` an array / map of scalars; `*` opaque
/// JSON compared as a whole.
const CHILDREN: &[(&str, &str, &str)] = &[
    ("Node", "Attributes", "{}"),
    ("Node", "CSIControllerPlugins", "{CSIInfo}"),
    ("Node", "CSINodePlugins", "{CSIInfo}"),
    ("Node", "DrainStrategy", "DrainStrategy"),
    ("Node", "Drivers", "{DriverInfo}"),
    ("Node", "Events", "[NodeEvent]"),
    ("Node", "HostNetworks", "{HostNetworkInfo}"),
    ("Node", "HostVolumes", "{HostVolumeInfo}"),
    ("Node", "LastDrain", "DrainMetadata"),
    ("Node", "Links", "{}"),
    ("Node", "Meta", "{}"),
    ("Node", "NodeResources", "NodeResources"),
    ("Node", "Reserved", "Resources"),
    ("Node", "ReservedResources", "NodeReservedResources"),
    ("Node", "Resources", "Resources"),
    ("NodeListStub", "Attributes", "{}"),
    ("NodeListStub", "Drivers", "{DriverInfo}"),
    ("NodeListStub", "HostVolumes", "{HostVolumeInfo}"),
    ("NodeListStub", "LastDrain", "DrainMetadata"),
    ("NodeListStub", "NodeResources", "NodeResources"),
    ("NodeListStub", "ReservedResources", "NodeReservedResources"),
    ("DriverInfo", "Attributes", "{}"),
    ("NodeEvent", "Details", "{}"),
    ("DrainMetadata", "Meta", "{}"),
    ("NodeResources", "Cpu", "NodeCpuResources"),
    ("NodeResources", "Devices", "[NodeDeviceResource]"),
    ("NodeResources", "Disk", "NodeDiskResources"),
    ("NodeResources", "Memory", "NodeMemoryResources"),
    ("NodeResources", "Networks", "[NetworkResource]"),
    ("NodeResources", "NodeNetworks", "[NodeNetworkResource]"),
    ("NodeCpuResources", "ReservableCpuCores", "[]"),
    ("NodeReservedResources", "Cpu", "NodeReservedCpuResources"),
    ("NodeReservedResources", "Disk", "NodeReservedDiskResources"),
    (
        "NodeReservedResources",
        "Memory",
        "NodeReservedMemoryResources",
    ),
    (
        "NodeReservedResources",
        "Networks",
        "NodeReservedNetworkResources",
    ),
    ("NodeReservedCpuResources", "ReservedCpuCores", "[]"),
    ("NodeUpdateResponse", "EvalIDs", "[]"),
    ("NodeUpdateResponse", "Servers", "[NodeServerInfo]"),
    ("NodeDrainUpdateResponse", "EvalIDs", "[]"),
    ("NodeUpdateDrainRequest", "DrainSpec", "DrainSpec"),
    ("NodeUpdateDrainRequest", "Meta", "{}"),
    ("Resources", "Devices", "[RequestedDevice]"),
    ("Resources", "Networks", "[NetworkResource]"),
    ("NetworkResource", "DNS", "DNSConfig"),
    ("NetworkResource", "DynamicPorts", "[Port]"),
    ("NetworkResource", "ReservedPorts", "[Port]"),
    ("Allocation", "AllocStates", "[AllocState]"),
    ("Allocation", "AllocatedResources", "AllocatedResources"),
    ("Allocation", "DeploymentStatus", "AllocDeploymentStatus"),
    ("Allocation", "DesiredTransition", "DesiredTransition"),
    ("Allocation", "Job", "Job"),
    ("Allocation", "Metrics", "AllocMetric"),
    ("Allocation", "PreemptedAllocations", "[]"),
    ("Allocation", "RescheduleTracker", "RescheduleTracker"),
    ("Allocation", "Resources", "Resources"),
    ("Allocation", "SharedResources", "Resources"),
    ("Allocation", "TaskResources", "{Resources}"),
    ("Allocation", "TaskStates", "{TaskState}"),
    ("AllocListStub", "AllocatedResources", "AllocatedResources"),
    ("AllocListStub", "DeploymentStatus", "AllocDeploymentStatus"),
    ("AllocListStub", "DesiredTransition", "DesiredTransition"),
    ("AllocListStub", "PreemptedAllocations", "[]"),
    ("AllocListStub", "RescheduleTracker", "RescheduleTracker"),
    ("AllocListStub", "TaskStates", "{TaskState}"),
    ("AllocMetric", "ClassExhausted", "{}"),
    ("AllocMetric", "ClassFiltered", "{}"),
    ("AllocMetric", "ConstraintFiltered", "{}"),
    ("AllocMetric", "DimensionExhausted", "{}"),
    ("AllocMetric", "NodesAvailable", "{}"),
    ("AllocMetric", "QuotaExhausted", "[]"),
    ("AllocMetric", "Scores", "{}"),
    ("RescheduleTracker", "Events", "[RescheduleEvent]"),
    ("TaskState", "Events", "[TaskEvent]"),
    ("TaskState", "TaskHandle", "TaskHandle"),
    ("TaskEvent", "Details", "{}"),
    ("Job", "Affinities", "[Affinity]"),
    ("Job", "Constraints", "[Constraint]"),
    ("Job", "Datacenters", "[]"),
    ("Job", "Meta", "{}"),
    ("Job", "Multiregion", "*"),
    ("Job", "ParameterizedJob", "ParameterizedJobConfig"),
    ("Job", "Periodic", "PeriodicConfig"),
    ("Job", "Spreads", "[Spread]"),
    ("Job", "TaskGroups", "[TaskGroup]"),
    ("Job", "Update", "UpdateStrategy"),
    ("TaskGroup", "Affinities", "[Affinity]"),
    ("TaskGroup", "Constraints", "[Constraint]"),
    ("TaskGroup", "EphemeralDisk", "EphemeralDisk"),
    ("TaskGroup", "Meta", "{}"),
    ("TaskGroup", "Migrate", "MigrateStrategy"),
    ("TaskGroup", "ReschedulePolicy", "ReschedulePolicy"),
    ("TaskGroup", "RestartPolicy", "RestartPolicy"),
    ("TaskGroup", "Spreads", "[Spread]"),
    ("TaskGroup", "Tasks", "[Task]"),
    ("TaskGroup", "Update", "UpdateStrategy"),
    ("Task", "Affinities", "[Affinity]"),
    ("Task", "Artifacts", "[TaskArtifact]"),
    ("Task", "Config", "*"),
    ("Task", "Constraints", "[Constraint]"),
    ("Task", "DispatchPayload", "DispatchPayloadConfig"),
    ("Task", "Env", "{}"),
    ("Task", "LogConfig", "LogConfig"),
    ("Task", "Meta", "{}"),
    ("Task", "Resources", "Resources"),
    ("Task", "Services", "[Service]"),
    ("Task", "Spreads", "[Spread]"),
    ("Task", "Templates", "[Template]"),
    ("Task", "Vault", "*"),
    ("Service", "Checks", "[ServiceCheck]"),
    ("Service", "Tags", "[]"),
    ("ServiceCheck", "Args", "[]"),
    ("ServiceCheck", "CheckRestart", "CheckRestart"),
    ("ServiceCheck", "Header", "*"),
    ("JobListStub", "Datacenters", "[]"),
    ("JobListStub", "JobSummary", "JobSummary"),
    ("JobListStub", "Multiregion", "*"),
    ("JobSummary", "Children", "JobChildrenSummary"),
    ("JobSummary", "Summary", "{TaskGroupSummary}"),
    ("Deployment", "TaskGroups", "{DeploymentState}"),
    ("DeploymentState", "PlacedCanaries", "[]"),
    ("ServiceRegistration", "Tags", "[]"),
];

/// Deserializes `sample` as `T`, serializes it back, and checks that reading our own output
/// gives the same `T`.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(sample: &Value) -> Value {
    let typed: T = serde_json::from_value(sample.clone()).expect("sample deserializes");
    let ours = serde_json::to_value(&typed).expect("serializes");
    let again: T = serde_json::from_value(ours.clone()).expect("our output deserializes");
    assert_eq!(
        again, typed,
        "round trip of our own output changed the value"
    );
    ours
}

/// (fixture file, root type, round trip).
type Case = (&'static str, &'static str, fn(&Value) -> Value);

const CASES: &[Case] = &[
    (
        "alloc_list.json",
        "[AllocListStub]",
        round_trip::<Vec<AllocListStub>>,
    ),
    ("alloc_read.json", "Allocation", round_trip::<Allocation>),
    (
        "alloc_restart_request.json",
        "AllocRestartRequest",
        round_trip::<AllocRestartRequest>,
    ),
    (
        "alloc_restart_response.json",
        "GenericResponse",
        round_trip::<GenericResponse>,
    ),
    (
        "alloc_services.json",
        "[ServiceRegistration]",
        round_trip::<Vec<ServiceRegistration>>,
    ),
    (
        "alloc_signal_request.json",
        "AllocSignalRequest",
        round_trip::<AllocSignalRequest>,
    ),
    (
        "alloc_signal_response.json",
        "GenericResponse",
        round_trip::<GenericResponse>,
    ),
    (
        "alloc_stop_response.json",
        "AllocStopResponse",
        round_trip::<AllocStopResponse>,
    ),
    (
        "deployment_list.json",
        "[Deployment]",
        round_trip::<Vec<Deployment>>,
    ),
    (
        "deployment_list_filtered.json",
        "[Deployment]",
        round_trip::<Vec<Deployment>>,
    ),
    (
        "job_list.json",
        "[JobListStub]",
        round_trip::<Vec<JobListStub>>,
    ),
    (
        "job_list_filtered.json",
        "[JobListStub]",
        round_trip::<Vec<JobListStub>>,
    ),
    (
        "node_allocations.json",
        "[Allocation]",
        round_trip::<Vec<Allocation>>,
    ),
    (
        "node_drain_request.json",
        "NodeUpdateDrainRequest",
        round_trip::<NodeUpdateDrainRequest>,
    ),
    (
        "node_drain_response.json",
        "NodeDrainUpdateResponse",
        round_trip::<NodeDrainUpdateResponse>,
    ),
    (
        "node_eligibility_request.json",
        "NodeUpdateEligibilityRequest",
        round_trip::<NodeUpdateEligibilityRequest>,
    ),
    (
        "node_eligibility_response.json",
        "NodeDrainUpdateResponse",
        round_trip::<NodeEligibilityUpdateResponse>,
    ),
    (
        "node_evaluate_response.json",
        "NodeUpdateResponse",
        round_trip::<NodeUpdateResponse>,
    ),
    (
        "node_list.json",
        "[NodeListStub]",
        round_trip::<Vec<NodeListStub>>,
    ),
    (
        "node_purge_response.json",
        "NodeUpdateResponse",
        round_trip::<NodeUpdateResponse>,
    ),
    ("node_read.json", "Node", round_trip::<Node>),
];

struct Checker {
    fixture: &'static str,
    errata: Vec<(&'static str, &'static str, Value, Value, &'static str)>,
    used_errata: Vec<&'static str>,
    used_extras: Vec<(String, String)>,
    problems: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Checker {
    fn fail(&mut self, path: &str, what: String) {
        self.problems
            .push(format!("{}: {}: {what}", self.fixture, path));
    }

    fn check(&mut self, ty: &str, path: &str, sample: &Value, ours: &Value) {
        let erratum = self
            .errata
            .iter()
            .find(|e| e.0 == self.fixture && e.1 == path)
            .map(|e| (e.1, e.2.clone(), e.3.clone()));
        if let Some((p, want_sample, want_ours)) = erratum {
            self.used_errata.push(p);
            if *sample != want_sample || *ours != want_ours {
                self.fail(
                    path,
                    format!("erratum expects sample {want_sample} / ours {want_ours}, got {sample} / {ours}"),
                );
            }
            return;
        }
        match (sample, ours) {
            (Value::Null, _) | (_, Value::Null) => {
                if sample != ours {
                    self.fail(path, format!("sample {sample} vs ours {ours}"));
                }
            }
            _ if ty == "*" || ty == "[]" || ty == "{}" => {
                if sample != ours {
                    self.fail(path, format!("sample {sample} vs ours {ours}"));
                }
            }
            (Value::Array(s), Value::Array(o)) => {
                let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
                    return self.fail(path, format!("array where {ty:?} expected"));
                };
                if s.len() != o.len() {
                    return self.fail(path, format!("length {} vs ours {}", s.len(), o.len()));
                }
                for (i, (sv, ov)) in s.iter().zip(o).enumerate() {
                    self.check(inner, &format!("{path}[{i}]"), sv, ov);
                }
            }
            (Value::Object(s), Value::Object(o)) => {
                if let Some(inner) = ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    // A map: its keys are data and must match exactly.
                    for k in o.keys().filter(|k| !s.contains_key(*k)) {
                        self.fail(path, format!("map key {k:?} appeared"));
                    }
                    for (k, sv) in s {
                        match o.get(k) {
                            Some(ov) => self.check(inner, &join(path, k), sv, ov),
                            None => self.fail(path, format!("map key {k:?} lost")),
                        }
                    }
                    return;
                }
                if ty.starts_with('[') {
                    return self.fail(path, format!("object where {ty:?} expected"));
                }
                let keys: Vec<&String> = o.keys().collect();
                if !keys.is_sorted_by(|a, b| a.as_bytes() <= b.as_bytes()) {
                    self.fail(path, format!("{ty} keys not in byte order: {keys:?}"));
                }
                let allowed = ALLOW_EXTRA
                    .iter()
                    .find(|(t, _)| *t == ty)
                    .map(|(_, k)| *k)
                    .unwrap_or(&[]);
                for k in o.keys().filter(|k| !s.contains_key(*k)) {
                    if allowed.contains(&k.as_str()) {
                        self.used_extras.push((ty.to_owned(), k.clone()));
                    } else {
                        self.fail(path, format!("{ty} adds key {k:?} not in ALLOW_EXTRA"));
                    }
                }
                for (k, sv) in s {
                    let Some(ov) = o.get(k) else {
                        self.fail(path, format!("{ty} lost key {k:?}"));
                        continue;
                    };
                    let child = CHILDREN
                        .iter()
                        .find(|(p, key, _)| *p == ty && key == k)
                        .map(|(_, _, c)| *c);
                    match child {
                        Some(c) => self.check(c, &join(path, k), sv, ov),
                        None if sv.is_object() || sv.as_array().is_some_and(|a| !a.is_empty()) => {
                            self.fail(path, format!("no CHILDREN entry for {ty}.{k}"));
                        }
                        None => self.check("*", &join(path, k), sv, ov),
                    }
                }
            }
            _ => {
                if sample != ours {
                    self.fail(path, format!("sample {sample} vs ours {ours}"));
                }
            }
        }
    }
}

#[test]
fn every_seed_sample_round_trips() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut problems = Vec::new();
    let mut used = Vec::new();
    let mut used_extras = Vec::new();
    for (file, ty, rt) in CASES {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("fixture exists");
        let sample: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let ours = rt(&sample);
        let mut c = Checker {
            fixture: file,
            errata: errata(),
            used_errata: Vec::new(),
            used_extras: Vec::new(),
            problems: Vec::new(),
        };
        c.check(ty, "", &sample, &ours);
        problems.extend(c.problems);
        used_extras.extend(c.used_extras);
        used.extend(c.used_errata.into_iter().map(|p| (*file, p)));
    }
    for (file, path, ..) in errata() {
        if !used.contains(&(file, path)) {
            problems.push(format!("{file}: {path}: erratum never reached (stale)"));
        }
    }
    // The allow-list holds exactly what some sample needs: an entry no sample uses is stale.
    for (ty, keys) in ALLOW_EXTRA {
        for k in *keys {
            if !used_extras.iter().any(|(t, key)| t == ty && key == k) {
                problems.push(format!("ALLOW_EXTRA {ty}.{k} is used by no sample (stale)"));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_fixture_has_a_case() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut cased: Vec<String> = CASES.iter().map(|c| c.0.to_owned()).collect();
    cased.sort();
    assert_eq!(files, cased);
}
