//! Whether HashiCorp's Go `api` package (v1.9.7) can decode a JSON response into the struct its
//! client method decodes it into, by the rules of Go's `encoding/json`.
//!
//! The types are the component schemas of the nomad-openapi project
//! (`tests/go-shapes/nomad-openapi-v1.yaml`). They describe Nomad 1.1
//! and have errors: [`FIELDS`] corrects and extends them and [`TYPES`] adds the types they lack,
//! each with its reason, so that what is checked is Go's structs at v1.9.7.
//!
//! What Go rejects, and so [`GoShapes::check`] reports: a JSON type that does not fit the field
//! (a string for a number, an object for a slice, an array for a map or struct, ...), a
//! fractional, exponent or out-of-range number for an integer, a negative one for an unsigned
//! integer, a `time.Time` that is not an RFC 3339 string, a `[]byte` that is not base64.
//! `null` fits every field. Keys no field matches (Go matches them case-insensitively) are
//! ignored by Go; [`Report::unknown`] lists them so a test notices a field the schemas miss.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde_json::Value;

/// Fields where Go's structs at v1.9.7 differ from the schemas: (type, field, Go type, why).
/// The Go type `-` removes a field the Go struct does not have.
pub const FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "Node",
        "NodePool",
        "string",
        "node pools postdate the schemas",
    ),
    (
        "NodeListStub",
        "NodePool",
        "string",
        "node pools postdate the schemas",
    ),
    (
        "Job",
        "NodePool",
        "string",
        "node pools postdate the schemas",
    ),
    (
        "MultiregionRegion",
        "NodePool",
        "string",
        "node pools postdate the schemas",
    ),
    (
        "AllocationMetric",
        "NodesInPool",
        "int",
        "node pools postdate the schemas",
    ),
    ("Job", "UI", "JobUIConfig", "newer than the schemas"),
    (
        "Job",
        "VersionTag",
        "JobVersionTag",
        "newer than the schemas",
    ),
    (
        "JobListStub",
        "Meta",
        "map[string]string",
        "newer than the schemas",
    ),
    (
        "PeriodicConfig",
        "Specs",
        "[]string",
        "several cron specs, newer than the schemas",
    ),
    (
        "NetworkResource",
        "CNI",
        "CNIConfig",
        "newer than the schemas",
    ),
    ("Port", "IgnoreCollision", "bool", "newer than the schemas"),
    (
        "Resources",
        "NUMA",
        "NUMAResource",
        "newer than the schemas",
    ),
    ("Resources", "SecretsMB", "int", "newer than the schemas"),
    (
        "Allocation",
        "NetworkStatus",
        "AllocNetworkStatus",
        "missing from the schemas",
    ),
    (
        "AllocationListStub",
        "NextAllocation",
        "string",
        "missing from the schemas",
    ),
    (
        "RescheduleTracker",
        "LastReschedule",
        "string",
        "newer than the schemas",
    ),
    (
        "TaskGroup",
        "Disconnect",
        "DisconnectStrategy",
        "newer than the schemas",
    ),
    (
        "TaskGroup",
        "PreventRescheduleOnLost",
        "bool",
        "newer than the schemas",
    ),
    ("Task", "Consul", "Consul", "newer than the schemas"),
    (
        "Task",
        "Identity",
        "WorkloadIdentity",
        "workload identities postdate the schemas",
    ),
    (
        "Task",
        "Identities",
        "[]WorkloadIdentity",
        "workload identities postdate the schemas",
    ),
    ("Task", "Actions", "[]Action", "newer than the schemas"),
    ("Task", "Schedule", "TaskSchedule", "newer than the schemas"),
    (
        "Service",
        "Identity",
        "WorkloadIdentity",
        "workload identities postdate the schemas",
    ),
    (
        "Service",
        "Weights",
        "ServiceWeights",
        "newer than the schemas",
    ),
    ("Service", "Cluster", "string", "newer than the schemas"),
    ("ServiceCheck", "Notes", "string", "newer than the schemas"),
    (
        "ServiceCheck",
        "TLSServerName",
        "string",
        "newer than the schemas",
    ),
    (
        "ServiceCheck",
        "FailuresBeforeWarning",
        "int",
        "newer than the schemas",
    ),
    ("LogConfig", "Enabled", "bool", "newer than the schemas"),
    ("LogConfig", "Disabled", "bool", "newer than the schemas"),
    (
        "VolumeMount",
        "SELinuxLabel",
        "string",
        "newer than the schemas",
    ),
    (
        "RestartPolicy",
        "RenderTemplates",
        "bool",
        "newer than the schemas",
    ),
    (
        "TaskArtifact",
        "GetterInsecure",
        "bool",
        "newer than the schemas",
    ),
    ("TaskArtifact", "Chown", "bool", "newer than the schemas"),
    (
        "Template",
        "ErrMissingKey",
        "bool",
        "newer than the schemas",
    ),
    ("Vault", "Role", "string", "newer than the schemas"),
    ("Vault", "Cluster", "string", "newer than the schemas"),
    ("Vault", "DisableFile", "bool", "newer than the schemas"),
    (
        "Vault",
        "AllowTokenExpiration",
        "bool",
        "newer than the schemas",
    ),
    ("Consul", "Cluster", "string", "newer than the schemas"),
    ("Consul", "Partition", "string", "newer than the schemas"),
    (
        "SidecarTask",
        "VolumeMounts",
        "[]VolumeMount",
        "newer than the schemas",
    ),
    (
        "ConsulGateway",
        "Mesh",
        "ConsulMeshConfigEntry",
        "Go has an (empty) struct: an object",
    ),
    (
        "ConsulGatewayTLSConfig",
        "SDS",
        "ConsulGatewayTLSSDSConfig",
        "newer than the schemas",
    ),
    (
        "ConsulIngressService",
        "TLS",
        "ConsulGatewayTLSConfig",
        "newer than the schemas",
    ),
    (
        "ConsulIngressService",
        "RequestHeaders",
        "ConsulHTTPHeaderModifiers",
        "newer",
    ),
    (
        "ConsulIngressService",
        "ResponseHeaders",
        "ConsulHTTPHeaderModifiers",
        "newer",
    ),
    (
        "ConsulIngressService",
        "MaxConnections",
        "uint32",
        "newer than the schemas",
    ),
    (
        "ConsulIngressService",
        "MaxPendingRequests",
        "uint32",
        "newer than the schemas",
    ),
    (
        "ConsulIngressService",
        "MaxConcurrentRequests",
        "uint32",
        "newer than the schemas",
    ),
    (
        "ConsulSidecarService",
        "Meta",
        "map[string]string",
        "newer than the schemas",
    ),
    (
        "ConsulProxy",
        "Expose",
        "ConsulExposeConfig",
        "Go's name next to the deprecated ExposeConfig",
    ),
    (
        "ConsulProxy",
        "TransparentProxy",
        "ConsulTransparentProxy",
        "newer than the schemas",
    ),
    (
        "ConsulExposeConfig",
        "Paths",
        "[]ConsulExposePath",
        "Go's name next to the deprecated Path",
    ),
    (
        "ConsulUpstream",
        "DestinationPeer",
        "string",
        "newer than the schemas",
    ),
    (
        "ConsulUpstream",
        "DestinationPartition",
        "string",
        "newer than the schemas",
    ),
    (
        "ConsulUpstream",
        "DestinationType",
        "string",
        "newer than the schemas",
    ),
    (
        "ConsulUpstream",
        "LocalBindSocketPath",
        "string",
        "newer than the schemas",
    ),
    (
        "ConsulUpstream",
        "LocalBindSocketMode",
        "string",
        "newer than the schemas",
    ),
    (
        "ConsulUpstream",
        "Config",
        "map[string]any",
        "newer than the schemas",
    ),
    (
        "Deployment",
        "CreateTime",
        "int64",
        "newer than the schemas",
    ),
    (
        "Deployment",
        "ModifyTime",
        "int64",
        "newer than the schemas",
    ),
    // Go embeds WriteMeta in these responses; the schemas name a field Go does not have.
    (
        "AllocStopResponse",
        "Index",
        "-",
        "not a Go field (WriteMeta has LastIndex)",
    ),
    (
        "AllocStopResponse",
        "LastIndex",
        "uint64",
        "embedded WriteMeta",
    ),
    (
        "AllocStopResponse",
        "RequestTime",
        "time.Duration",
        "embedded WriteMeta",
    ),
    (
        "JobStabilityResponse",
        "Index",
        "-",
        "not a Go field (WriteMeta has LastIndex)",
    ),
    (
        "JobStabilityResponse",
        "LastIndex",
        "uint64",
        "embedded WriteMeta",
    ),
    (
        "JobStabilityResponse",
        "RequestTime",
        "time.Duration",
        "embedded WriteMeta",
    ),
    (
        "JobStabilityResponse",
        "JobModifyIndex",
        "uint64",
        "missing from the schemas",
    ),
    (
        "ACLToken",
        "ExpirationTTL",
        "string|int64",
        "a time.Duration whose UnmarshalJSON takes a duration string (\"\" for none) or nanoseconds",
    ),
    (
        "ACLTokenListStub",
        "expiration_time",
        "-",
        "the v1.9.7 struct's field is ExpirationTime, with no JSON tag renaming it",
    ),
    (
        "ACLTokenListStub",
        "ExpirationTime",
        "*time.Time",
        "the v1.9.7 struct's field (the schemas spell it expiration_time)",
    ),
    (
        "Namespace",
        "NodePoolConfiguration",
        "*NamespaceNodePoolConfiguration",
        "node pools postdate the schemas",
    ),
    (
        "Namespace",
        "VaultConfiguration",
        "*NamespaceVaultConfiguration",
        "newer than the schemas",
    ),
    (
        "Namespace",
        "ConsulConfiguration",
        "*NamespaceConsulConfiguration",
        "newer than the schemas",
    ),
    (
        "NamespaceCapabilities",
        "EnabledNetworkModes",
        "[]string",
        "newer than the schemas",
    ),
    (
        "NamespaceCapabilities",
        "DisabledNetworkModes",
        "[]string",
        "newer than the schemas",
    ),
];

/// Types the schemas lack: (name, its fields as `Name type, ...`, why).
pub const TYPES: &[(&str, &str, &str)] = &[
    (
        "ServiceRegistrationListStub",
        "Namespace string, Services []ServiceRegistrationStub",
        "the service list postdates the schemas",
    ),
    (
        "ServiceRegistrationStub",
        "ServiceName string, Tags []string",
        "the service list postdates the schemas",
    ),
    (
        "AllocCheckStatus",
        "ID string, Check string, Group string, Mode string, Output string, Service string, \
         Task string, Status string, StatusCode int, Timestamp int64",
        "service checks postdate the schemas",
    ),
    (
        "NodePool",
        "Name string, Description string, Meta map[string]string, \
         SchedulerConfiguration NodePoolSchedulerConfiguration, CreateIndex uint64, \
         ModifyIndex uint64",
        "node pools postdate the schemas",
    ),
    (
        "NodePoolSchedulerConfiguration",
        "SchedulerAlgorithm string, MemoryOversubscriptionEnabled bool",
        "node pools postdate the schemas",
    ),
    (
        "JobSubmission",
        "Source string, Format string, VariableFlags map[string]string, Variables string",
        "job submissions postdate the schemas",
    ),
    (
        "JobUIConfig",
        "Description string, Links []JobUILink",
        "newer than the schemas",
    ),
    (
        "JobUILink",
        "Label string, URL string",
        "newer than the schemas",
    ),
    (
        "JobVersionTag",
        "Name string, Description string, TaggedTime int64",
        "newer than the schemas",
    ),
    (
        "CNIConfig",
        "Args map[string]string",
        "newer than the schemas",
    ),
    (
        "NUMAResource",
        "Affinity string, Devices []string",
        "newer than the schemas",
    ),
    (
        "AllocNetworkStatus",
        "InterfaceName string, Address string, AddressIPv6 string, DNS DNSConfig",
        "missing from the schemas",
    ),
    (
        "DisconnectStrategy",
        "LostAfter time.Duration, StopOnClientAfter time.Duration, Replace bool, \
         Reconcile string",
        "newer than the schemas",
    ),
    (
        "WorkloadIdentity",
        "Name string, Audience []string, ChangeMode string, ChangeSignal string, Env bool, \
         File bool, Filepath string, ServiceName string, TTL time.Duration",
        "workload identities postdate the schemas",
    ),
    (
        "ServiceWeights",
        "Passing int, Warning int",
        "newer than the schemas",
    ),
    (
        "Action",
        "Name string, Command string, Args []string",
        "newer than the schemas",
    ),
    (
        "TaskSchedule",
        "Cron TaskScheduleCron",
        "newer than the schemas",
    ),
    (
        "TaskScheduleCron",
        "Start string, End string, Timezone string",
        "newer than the schemas",
    ),
    (
        "ConsulMeshConfigEntry",
        "",
        "an empty struct in Go; the schemas say any value",
    ),
    (
        "ConsulGatewayTLSSDSConfig",
        "ClusterName string, CertResource string",
        "newer than the schemas",
    ),
    (
        "ConsulHTTPHeaderModifiers",
        "Add map[string]string, Set map[string]string, Remove []string",
        "newer than the schemas",
    ),
    (
        "ConsulTransparentProxy",
        "UID string, OutboundPort uint16, ExcludeInboundPorts []string, \
         ExcludeOutboundPorts []uint16, ExcludeOutboundCIDRs []string, ExcludeUIDs []string, \
         NoDNS bool",
        "newer than the schemas",
    ),
    // Small responses the client decodes into unexported or untyped structs.
    (
        "nodeEvalResponse",
        "EvalID string",
        "Nodes.ForceEvaluate's private response",
    ),
    (
        "periodicForceResponse",
        "EvalID string",
        "Jobs.PeriodicForce's private response",
    ),
    (
        "GenericResponse",
        "LastIndex uint64, RequestTime time.Duration",
        "embeds WriteMeta; Allocations.Signal",
    ),
    (
        "EmptyStruct",
        "",
        "struct{}: Allocations.Restart and GC decode into it",
    ),
    // Client agent endpoints.
    (
        "HostStats",
        "Memory HostMemoryStats, CPU []HostCPUStats, DiskStats []HostDiskStats, \
         AllocDirStats HostDiskStats, DeviceStats []DeviceGroupStats, Uptime uint64, \
         CPUTicksConsumed float64",
        "client stats are not in the schemas",
    ),
    (
        "HostMemoryStats",
        "Total uint64, Available uint64, Used uint64, Free uint64",
        "client stats are not in the schemas",
    ),
    (
        "HostCPUStats",
        "CPU string, User float64, System float64, Idle float64",
        "client stats are not in the schemas",
    ),
    (
        "HostDiskStats",
        "Device string, Mountpoint string, Size uint64, Used uint64, Available uint64, \
         UsedPercent float64, InodesUsedPercent float64",
        "client stats are not in the schemas",
    ),
    (
        "DeviceGroupStats",
        "Vendor string, Type string, Name string, InstanceStats map[string]DeviceStats",
        "client stats are not in the schemas",
    ),
    (
        "DeviceStats",
        "Summary StatValue, Stats StatObject, Timestamp time.Time",
        "client stats are not in the schemas",
    ),
    (
        "StatValue",
        "FloatNumeratorVal float64, FloatDenominatorVal float64, IntNumeratorVal int64, \
         IntDenominatorVal int64, StringVal string, BoolVal bool, Unit string, Desc string",
        "client stats are not in the schemas",
    ),
    (
        "StatObject",
        "Nested map[string]StatObject, Attributes map[string]StatValue",
        "client stats are not in the schemas",
    ),
    (
        "AllocResourceUsage",
        "ResourceUsage ResourceUsage, Tasks map[string]TaskResourceUsage, Timestamp int64",
        "client stats are not in the schemas",
    ),
    (
        "ResourceUsage",
        "MemoryStats MemoryStats, CpuStats CpuStats, DeviceStats []DeviceGroupStats",
        "client stats are not in the schemas",
    ),
    (
        "MemoryStats",
        "RSS uint64, Cache uint64, Swap uint64, Usage uint64, MaxUsage uint64, \
         KernelUsage uint64, KernelMaxUsage uint64, Measured []string",
        "client stats are not in the schemas",
    ),
    (
        "CpuStats",
        "SystemMode float64, UserMode float64, TotalTicks float64, ThrottledPeriods uint64, \
         ThrottledTime uint64, Percent float64, Measured []string",
        "client stats are not in the schemas",
    ),
    (
        "TaskResourceUsage",
        "ResourceUsage ResourceUsage, Timestamp int64, Pids map[string]ResourceUsage",
        "client stats are not in the schemas",
    ),
    (
        "NodeMetaResponse",
        "Meta map[string]string, Dynamic map[string]string, Static map[string]string",
        "dynamic node metadata postdates the schemas",
    ),
    (
        "AllocFileInfo",
        "Name string, IsDir bool, Size int64, FileMode string, ModTime time.Time, \
         ContentType string",
        "client fs endpoints are not in the schemas",
    ),
    (
        "StreamFrame",
        "Offset int64, Data []byte, File string, FileEvent string",
        "client fs endpoints are not in the schemas",
    ),
    // The exec WebSocket's frames (Go's JSON names are lower case here).
    (
        "ExecStreamingOutput",
        "stdout ExecStreamingIOOperation, stderr ExecStreamingIOOperation, exited bool, \
         result ExecStreamingExitResult",
        "the exec endpoint is not in the schemas",
    ),
    (
        "ExecStreamingIOOperation",
        "data []byte, close bool",
        "the exec endpoint is not in the schemas",
    ),
    (
        "ExecStreamingExitResult",
        "exit_code int",
        "the exec endpoint is not in the schemas",
    ),
    // Agent endpoints (Go's JSON names are lower case here).
    (
        "AgentSelf",
        "config map[string]any, member AgentMember, stats map[string]map[string]string",
        "agent endpoints are not in the schemas",
    ),
    (
        "AgentMember",
        "Name string, Addr string, Port uint16, Tags map[string]string, Status string, \
         ProtocolMin uint8, ProtocolMax uint8, ProtocolCur uint8, DelegateMin uint8, \
         DelegateMax uint8, DelegateCur uint8",
        "agent endpoints are not in the schemas",
    ),
    (
        "ServerMembers",
        "ServerName string, ServerRegion string, ServerDC string, Members []AgentMember",
        "agent endpoints are not in the schemas",
    ),
    (
        "AgentHealthResponse",
        "client AgentHealth, server AgentHealth",
        "agent endpoints are not in the schemas",
    ),
    (
        "AgentHealth",
        "ok bool, message string",
        "agent endpoints are not in the schemas",
    ),
    (
        "HostDataResponse",
        "AgentID string, HostData *HostData",
        "agent endpoints are not in the schemas",
    ),
    (
        "HostData",
        "OS string, Network []map[string]string, ResolvConf string, Hosts string, \
         Environment map[string]string, Disk map[string]DiskUsage",
        "agent endpoints are not in the schemas",
    ),
    (
        "DiskUsage",
        "DiskMB int64, UsedMB int64",
        "agent endpoints are not in the schemas",
    ),
    (
        "ACLRole",
        "ID string, Name string, Description string, Policies []*ACLRolePolicyLink, \
         CreateIndex uint64, ModifyIndex uint64",
        "ACL roles postdate the schemas",
    ),
    (
        "ACLRoleListStub",
        "ID string, Name string, Description string, Policies []*ACLRolePolicyLink, \
         CreateIndex uint64, ModifyIndex uint64",
        "ACL roles postdate the schemas",
    ),
    (
        "ACLRolePolicyLink",
        "Name string",
        "ACL roles postdate the schemas",
    ),
    (
        "OneTimeTokenUpsertResponse",
        "OneTimeToken *OneTimeToken",
        "the schemas have only the request",
    ),
    (
        "OneTimeTokenExchangeResponse",
        "Token *ACLToken",
        "the schemas have only the request",
    ),
    (
        "NamespaceNodePoolConfiguration",
        "Default string, Allowed []string, Denied []string",
        "node pools postdate the schemas",
    ),
    (
        "NamespaceVaultConfiguration",
        "Default string, Allowed []string, Denied []string",
        "newer than the schemas",
    ),
    (
        "NamespaceConsulConfiguration",
        "Default string, Allowed []string, Denied []string",
        "newer than the schemas",
    ),
];

/// The JSON a Go type accepts.
#[derive(Debug, Clone)]
enum Shape {
    /// `interface{}`, or a schema that says nothing.
    Any,
    Bool,
    String,
    /// `[]byte`: a base64 string.
    Bytes,
    /// `time.Time`: an RFC 3339 string.
    Time,
    /// Any Go integer type, by its range.
    Int {
        min: i128,
        max: i128,
    },
    Float,
    Slice(Box<Shape>),
    /// `map[string]T`.
    Map(Box<Shape>),
    Named(String),
    Struct(BTreeMap<String, Shape>),
    /// `A|B`: any of the shapes, for a field whose `UnmarshalJSON` takes more than one JSON
    /// type (`ACLToken.ExpirationTTL` takes a duration string or nanoseconds). Not Go syntax.
    Either(Vec<Shape>),
}

/// What checking one value found.
#[derive(Debug, Default)]
pub struct Report {
    /// Where Go's decoder would fail, one line each.
    pub errors: Vec<String>,
    /// Keys no field of their struct matches, as `Type.Key` (Go ignores them).
    pub unknown: BTreeSet<String>,
}

/// The Go types, by name.
#[derive(Debug)]
pub struct GoShapes {
    types: BTreeMap<String, Shape>,
}

impl GoShapes {
    /// The schemas in `tests/go-shapes/nomad-openapi-v1.yaml` (generated by the nomad-openapi
    /// project; a copy of the one the project's reference holds), corrected.
    pub fn load() -> anyhow::Result<GoShapes> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("go-shapes")
            .join("nomad-openapi-v1.yaml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the OpenAPI schemas at {}", path.display()))?;
        GoShapes::from_yaml(&text)
    }

    /// The `components.schemas` of an OpenAPI document, with [`FIELDS`] and [`TYPES`] applied.
    pub fn from_yaml(text: &str) -> anyhow::Result<GoShapes> {
        let mut types = schemas(text)?;
        correct(&mut types)?;
        let shapes = GoShapes { types };
        for shape in shapes.types.values() {
            shapes.resolves(shape)?;
        }
        Ok(shapes)
    }

    /// The schemas exactly as written (for the checker's own tests).
    #[cfg(test)]
    fn uncorrected(text: &str) -> anyhow::Result<GoShapes> {
        Ok(GoShapes {
            types: schemas(text)?,
        })
    }
}

/// The `components.schemas` of an OpenAPI document, by name.
fn schemas(text: &str) -> anyhow::Result<BTreeMap<String, Shape>> {
    let doc: Value = serde_norway::from_str(text).context("parsing the OpenAPI YAML")?;
    let schemas = doc["components"]["schemas"]
        .as_object()
        .ok_or_else(|| anyhow!("no components.schemas in the OpenAPI document"))?;
    let mut types = BTreeMap::new();
    for (name, schema) in schemas {
        let shape = from_schema(schema).with_context(|| format!("schema {name}"))?;
        types.insert(name.clone(), shape);
    }
    Ok(types)
}

/// Applies [`TYPES`] and [`FIELDS`].
fn correct(types: &mut BTreeMap<String, Shape>) -> anyhow::Result<()> {
    for (name, fields, _why) in TYPES {
        let mut shape = BTreeMap::new();
        for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (key, go) = field
                .split_once(' ')
                .ok_or_else(|| anyhow!("{name}: bad field {field:?}"))?;
            shape.insert(key.to_owned(), parse_go_type(go.trim())?);
        }
        types.insert((*name).to_owned(), Shape::Struct(shape));
    }
    for (name, field, go, _why) in FIELDS {
        let Some(Shape::Struct(fields)) = types.get_mut(*name) else {
            bail!("FIELDS names {name}, which is not a struct schema");
        };
        if *go == "-" {
            fields.remove(*field);
        } else {
            fields.insert((*field).to_owned(), parse_go_type(go)?);
        }
    }
    Ok(())
}

impl GoShapes {
    /// Fails if a type names a schema that does not exist.
    fn resolves(&self, shape: &Shape) -> anyhow::Result<()> {
        match shape {
            Shape::Named(n) if !self.types.contains_key(n) => bail!("unknown type {n}"),
            Shape::Slice(s) | Shape::Map(s) => self.resolves(s),
            Shape::Struct(fields) => fields.values().try_for_each(|s| self.resolves(s)),
            Shape::Either(shapes) => shapes.iter().try_for_each(|s| self.resolves(s)),
            _ => Ok(()),
        }
    }

    /// Checks `value` against the Go type `go_type` (`Job`, `[]JobListStub`,
    /// `map[string]string`, `string`, ...). Fails only if the type is unknown.
    pub fn check(&self, go_type: &str, value: &Value) -> anyhow::Result<Report> {
        let shape = parse_go_type(go_type)?;
        self.resolves(&shape)?;
        let mut report = Report::default();
        self.walk(&shape, value, go_type, "", &mut report);
        Ok(report)
    }

    fn walk(&self, shape: &Shape, v: &Value, owner: &str, path: &str, report: &mut Report) {
        if v.is_null() {
            return;
        }
        let mut fail = |want: &str| {
            let mut shown = v.to_string();
            if shown.len() > 80 {
                shown = format!("{}...", shown.chars().take(80).collect::<String>());
            }
            let at = if path.is_empty() { "(top)" } else { path };
            report
                .errors
                .push(format!("{owner} {at}: Go wants {want}, got {shown}"));
        };
        match shape {
            Shape::Any => {}
            Shape::Bool if !v.is_boolean() => fail("a bool"),
            Shape::String if !v.is_string() => fail("a string"),
            Shape::Bytes => match v.as_str() {
                Some(s) if base64::engine::general_purpose::STANDARD.decode(s).is_ok() => {}
                _ => fail("[]byte as a base64 string"),
            },
            Shape::Time => match v.as_str() {
                Some(s) if crate::parse_rfc3339(s).is_ok() => {}
                _ => fail("time.Time as an RFC 3339 string"),
            },
            Shape::Int { min, max } => {
                let n = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
                match n {
                    Some(n) if (*min..=*max).contains(&n) => {}
                    Some(_) => fail(&format!("an integer in {min}..={max}")),
                    None => fail("an integer"),
                }
            }
            Shape::Float if !v.is_number() => fail("a number"),
            Shape::Slice(elem) => match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(elem, item, owner, &format!("{path}[{i}]"), report);
                    }
                }
                None => fail("a slice (array)"),
            },
            Shape::Map(elem) => match v.as_object() {
                Some(m) => {
                    for (k, item) in m {
                        self.walk(elem, item, owner, &format!("{path}[{k:?}]"), report);
                    }
                }
                None => fail("a map (object)"),
            },
            Shape::Named(name) => match self.types.get(name) {
                Some(Shape::Struct(fields)) => self.walk_struct(fields, v, name, path, report),
                Some(other) => self.walk(other, v, owner, path, report),
                None => fail(&format!("the unknown type {name}")),
            },
            Shape::Struct(fields) => self.walk_struct(fields, v, owner, path, report),
            Shape::Either(shapes) => {
                let mut fits = None;
                for shape in shapes {
                    let mut one = Report::default();
                    self.walk(shape, v, owner, path, &mut one);
                    if one.errors.is_empty() {
                        fits = Some(one);
                        break;
                    }
                }
                match fits {
                    Some(one) => report.unknown.extend(one.unknown),
                    None => fail(&format!("one of {} shapes", shapes.len())),
                }
            }
            _ => {}
        }
    }

    fn walk_struct(
        &self,
        fields: &BTreeMap<String, Shape>,
        v: &Value,
        owner: &str,
        path: &str,
        report: &mut Report,
    ) {
        let Some(m) = v.as_object() else {
            let at = if path.is_empty() { "(top)" } else { path };
            report.errors.push(format!(
                "{owner} {at}: Go wants a struct (object), got {}",
                crate::json_type(v)
            ));
            return;
        };
        for (k, item) in m {
            // Go prefers the exact name, then any case.
            let field = fields.get(k).or_else(|| {
                fields
                    .iter()
                    .find(|(f, _)| f.eq_ignore_ascii_case(k))
                    .map(|(_, s)| s)
            });
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match field {
                Some(shape) => self.walk(shape, item, owner, &sub, report),
                None => {
                    report.unknown.insert(format!("{owner}.{k}"));
                }
            }
        }
    }
}

/// A Go type expression: `*T` (the pointer does not matter to JSON), `[]T`, `map[string]T`,
/// the scalars, `time.Time`, `time.Duration`, `any`, or a type's name; or `A|B` (not Go): a
/// field whose custom `UnmarshalJSON` accepts either (see [`Shape::Either`]).
fn parse_go_type(t: &str) -> anyhow::Result<Shape> {
    if t.contains('|') {
        let shapes = t
            .split('|')
            .map(parse_go_type)
            .collect::<anyhow::Result<_>>()?;
        return Ok(Shape::Either(shapes));
    }
    let t = t.trim().trim_start_matches('*');
    let int = |min: i128, max: i128| Shape::Int { min, max };
    Ok(match t {
        "" => bail!("empty Go type"),
        "any" | "interface{}" => Shape::Any,
        "bool" => Shape::Bool,
        "string" => Shape::String,
        "[]byte" => Shape::Bytes,
        "time.Time" => Shape::Time,
        "int" | "int64" | "time.Duration" => int(i64::MIN.into(), i64::MAX.into()),
        "int32" => int(i32::MIN.into(), i32::MAX.into()),
        "int16" => int(i16::MIN.into(), i16::MAX.into()),
        "int8" => int(i8::MIN.into(), i8::MAX.into()),
        "uint" | "uint64" => int(0, u64::MAX.into()),
        "uint32" => int(0, u32::MAX.into()),
        "uint16" => int(0, u16::MAX.into()),
        "uint8" => int(0, u8::MAX.into()),
        "float32" | "float64" => Shape::Float,
        _ => {
            if let Some(elem) = t.strip_prefix("[]") {
                Shape::Slice(Box::new(parse_go_type(elem)?))
            } else if let Some(elem) = t.strip_prefix("map[string]") {
                Shape::Map(Box::new(parse_go_type(elem)?))
            } else if t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Shape::Named(t.to_owned())
            } else {
                bail!("unsupported Go type {t:?}")
            }
        }
    })
}

/// One OpenAPI schema (the subset nomad-openapi uses).
fn from_schema(s: &Value) -> anyhow::Result<Shape> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return Ok(Shape::Named(name.to_owned()));
    }
    let bound = |key: &str| s.get(key).and_then(Value::as_f64).map(|f| f as i128);
    Ok(match s.get("type").and_then(Value::as_str) {
        Some("boolean") => Shape::Bool,
        Some("number") => Shape::Float,
        Some("integer") => {
            let (min, max) = if s.get("format").and_then(Value::as_str) == Some("int32") {
                (i32::MIN.into(), i32::MAX.into())
            } else {
                (i64::MIN.into(), i64::MAX.into())
            };
            Shape::Int {
                min: bound("minimum").unwrap_or(min),
                max: bound("maximum").unwrap_or(max),
            }
        }
        Some("string") => match s.get("format").and_then(Value::as_str) {
            Some("date-time") => Shape::Time,
            Some("byte") => Shape::Bytes,
            _ => Shape::String,
        },
        Some("array") => Shape::Slice(Box::new(match s.get("items") {
            Some(items) => from_schema(items)?,
            None => Shape::Any,
        })),
        _ => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                let mut fields = BTreeMap::new();
                for (k, v) in props {
                    fields.insert(k.clone(), from_schema(v).with_context(|| k.clone())?);
                }
                Shape::Struct(fields)
            } else if let Some(extra) = s.get("additionalProperties") {
                let elem = match extra {
                    Value::Object(o) if !o.is_empty() => from_schema(extra)?,
                    _ => Shape::Any,
                };
                Shape::Map(Box::new(elem))
            } else {
                Shape::Any
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DOC: &str = r#"
components:
  schemas:
    Thing:
      properties:
        Count: {type: integer}
        Index: {maximum: 1.8446744073709552e+19, minimum: 0, type: integer}
        Small: {$ref: '#/components/schemas/uint8'}
        Name: {type: string}
        On: {type: boolean}
        Ratio: {type: number}
        At: {format: date-time, type: string}
        Raw: {format: byte, type: string}
        Tags: {items: {type: string}, type: array}
        Meta: {additionalProperties: {type: string}, type: object}
        Child: {$ref: '#/components/schemas/Thing'}
        Free: {}
      type: object
    uint8: {maximum: 255, minimum: 0, type: integer}
"#;

    fn errors(go: &str, v: Value) -> Vec<String> {
        let shapes = GoShapes::uncorrected(DOC).unwrap();
        shapes.check(go, &v).unwrap().errors
    }

    #[test]
    fn go_accepts_fitting_values_and_null_anywhere() {
        let ok = json!({
            "Count": -3, "Index": 18446744073709551615u64, "Small": 255, "Name": "x",
            "On": true, "Ratio": 0.5, "At": "2024-01-02T03:04:05.5Z", "Raw": "aGk=",
            "Tags": ["a"], "Meta": {"k": "v"}, "Child": {"Count": 1, "Tags": null},
            "Free": [1, {"a": 2}], "Unknown": {"any": "thing"}
        });
        assert_eq!(errors("Thing", ok), Vec::<String>::new());
        assert_eq!(errors("Thing", json!(null)), Vec::<String>::new());
        assert_eq!(errors("[]Thing", json!([null, {}])), Vec::<String>::new());
        let all_null = json!({"Count": null, "Name": null, "Tags": null, "Meta": null});
        assert_eq!(errors("Thing", all_null), Vec::<String>::new());
    }

    #[test]
    fn go_rejects_what_does_not_fit() {
        for (v, why) in [
            (json!({"Count": "3"}), "a string for an int"),
            (json!({"Count": 1.5}), "a fraction for an int"),
            (json!({"Count": 1e3}), "an exponent for an int"),
            (json!({"Index": -1}), "a negative uint"),
            (json!({"Small": 256}), "out of range for uint8"),
            (json!({"Name": 3}), "a number for a string"),
            (json!({"On": "true"}), "a string for a bool"),
            (json!({"Ratio": "0.5"}), "a string for a float"),
            (json!({"At": 1_700_000_000}), "a number for a time"),
            (json!({"At": "yesterday"}), "not RFC 3339"),
            (json!({"Raw": "not base64!"}), "bad base64"),
            (json!({"Tags": {}}), "an object for a slice"),
            (json!({"Meta": []}), "an array for a map"),
            (json!({"Meta": {"k": 1}}), "a number for a map's string"),
            (json!({"Child": []}), "an array for a struct"),
            (json!({"Child": {"Count": "x"}}), "deep inside"),
        ] {
            assert_eq!(errors("Thing", v.clone()).len(), 1, "{why}: {v}");
        }
        assert_eq!(errors("Thing", json!([])).len(), 1);
        assert_eq!(errors("[]Thing", json!({})).len(), 1);
        assert_eq!(errors("map[string]Thing", json!({"a": 1})).len(), 1);
    }

    #[test]
    fn either_takes_any_of_its_shapes() {
        assert!(errors("string|int64", json!("1h0m0s")).is_empty());
        assert!(errors("string|int64", json!(3_600_000_000_000_i64)).is_empty());
        assert_eq!(errors("string|int64", json!(true)).len(), 1);
        assert_eq!(errors("[]string|Thing", json!({"Count": "x"})).len(), 1);
    }

    #[test]
    fn keys_match_in_any_case_and_unknown_ones_are_listed() {
        let shapes = GoShapes::uncorrected(DOC).unwrap();
        let r = shapes
            .check("Thing", &json!({"count": "x", "Other": 1}))
            .unwrap();
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert_eq!(r.unknown, BTreeSet::from(["Thing.Other".to_owned()]));
        assert!(shapes.check("Nope", &json!({})).is_err());
    }

    #[test]
    fn the_reference_schemas_load_with_every_correction() {
        let shapes = GoShapes::load().unwrap();
        let job = json!({"ID": "x", "NodePool": "default", "TaskGroups": [{"Count": 1}]});
        assert!(shapes.check("Job", &job).unwrap().errors.is_empty());
        let bad = json!({"NodePool": 1, "TaskGroups": {}});
        assert_eq!(shapes.check("Job", &bad).unwrap().errors.len(), 2);
    }
}
