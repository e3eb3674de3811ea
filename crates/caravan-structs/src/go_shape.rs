//! The Go types of the job blocks Caravan keeps as opaque JSON ([`crate::job`]: Consul Connect,
//! workload identities, multiregion, scaling, CSI plugin config, Vault, Consul, disconnect,
//! template wait and change script, volume mount options), and the job's payload (a Go
//! `[]byte`, so base64).
//!
//! Go's `encoding/json` refuses a value that does not fit the `api` struct it decodes into, so
//! Nomad refuses a job whose block has the wrong shape when it is registered. [`check_job`] does
//! the same for the opaque blocks, so that a job Caravan stores is one every Go client can
//! decode when it reads it back. As in Go, `null` fits anything and unknown keys are ignored;
//! keys match fields case-insensitively.

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::go_json::GoJsonError;
use crate::job::Job;

/// The Go structs (the `api` package at v1.9.7) the opaque blocks hold: their fields as
/// `Name type, ...`, with Go's JSON names and types (`*` left out: a pointer reads the same).
const TYPES: &[(&str, &str)] = &[
    (
        "Multiregion",
        "Strategy MultiregionStrategy, Regions []MultiregionRegion",
    ),
    ("MultiregionStrategy", "MaxParallel int, OnFailure string"),
    (
        "MultiregionRegion",
        "Name string, Count int, Datacenters []string, NodePool string, \
         Meta map[string]string",
    ),
    (
        "Consul",
        "Namespace string, Cluster string, Partition string",
    ),
    (
        "DisconnectStrategy",
        "LostAfter time.Duration, StopOnClientAfter time.Duration, Replace bool, \
         Reconcile string",
    ),
    (
        "ScalingPolicy",
        "Min int64, Max int64, Policy map[string]any, Enabled bool, Type string, ID string, \
         Namespace string, Target map[string]string, CreateIndex uint64, ModifyIndex uint64",
    ),
    (
        "TaskCSIPluginConfig",
        "ID string, Type string, MountDir string, StagePublishBaseDir string, \
         HealthTimeout time.Duration",
    ),
    (
        "WorkloadIdentity",
        "Name string, Audience []string, ChangeMode string, ChangeSignal string, Env bool, \
         File bool, Filepath string, ServiceName string, TTL time.Duration",
    ),
    (
        "Vault",
        "Policies []string, Role string, Namespace string, Cluster string, Env bool, \
         DisableFile bool, ChangeMode string, ChangeSignal string, AllowTokenExpiration bool",
    ),
    (
        "ChangeScript",
        "Command string, Args []string, Timeout time.Duration, FailOnError bool",
    ),
    ("WaitConfig", "Min time.Duration, Max time.Duration"),
    ("CSIMountOptions", "FSType string, MountFlags []string"),
    (
        "ConsulConnect",
        "Native bool, Gateway ConsulGateway, SidecarService ConsulSidecarService, \
         SidecarTask SidecarTask",
    ),
    (
        "ConsulGateway",
        "Proxy ConsulGatewayProxy, Ingress ConsulIngressConfigEntry, \
         Terminating ConsulTerminatingConfigEntry, Mesh ConsulMeshConfigEntry",
    ),
    (
        "ConsulGatewayProxy",
        "ConnectTimeout time.Duration, EnvoyGatewayBindTaggedAddresses bool, \
         EnvoyGatewayBindAddresses map[string]ConsulGatewayBindAddress, \
         EnvoyGatewayNoDefaultBind bool, EnvoyDNSDiscoveryType string, Config map[string]any",
    ),
    (
        "ConsulGatewayBindAddress",
        "Name string, Address string, Port int",
    ),
    (
        "ConsulIngressConfigEntry",
        "TLS ConsulGatewayTLSConfig, Listeners []ConsulIngressListener",
    ),
    (
        "ConsulGatewayTLSConfig",
        "Enabled bool, TLSMinVersion string, TLSMaxVersion string, CipherSuites []string, \
         SDS ConsulGatewayTLSSDSConfig",
    ),
    (
        "ConsulGatewayTLSSDSConfig",
        "ClusterName string, CertResource string",
    ),
    (
        "ConsulIngressListener",
        "Port int, Protocol string, Services []ConsulIngressService",
    ),
    (
        "ConsulIngressService",
        "Name string, Hosts []string, TLS ConsulGatewayTLSConfig, \
         RequestHeaders ConsulHTTPHeaderModifiers, ResponseHeaders ConsulHTTPHeaderModifiers, \
         MaxConnections uint32, MaxPendingRequests uint32, MaxConcurrentRequests uint32",
    ),
    (
        "ConsulHTTPHeaderModifiers",
        "Add map[string]string, Set map[string]string, Remove []string",
    ),
    (
        "ConsulTerminatingConfigEntry",
        "Services []ConsulLinkedService",
    ),
    (
        "ConsulLinkedService",
        "Name string, CAFile string, CertFile string, KeyFile string, SNI string",
    ),
    ("ConsulMeshConfigEntry", ""),
    (
        "ConsulSidecarService",
        "Tags []string, Port string, Proxy ConsulProxy, DisableDefaultTCPCheck bool, \
         Meta map[string]string",
    ),
    (
        "ConsulProxy",
        "LocalServiceAddress string, LocalServicePort int, Expose ConsulExposeConfig, \
         ExposeConfig ConsulExposeConfig, Upstreams []ConsulUpstream, \
         TransparentProxy ConsulTransparentProxy, Config map[string]any",
    ),
    (
        "ConsulExposeConfig",
        "Paths []ConsulExposePath, Path []ConsulExposePath",
    ),
    (
        "ConsulExposePath",
        "Path string, Protocol string, LocalPathPort int, ListenerPort string",
    ),
    (
        "ConsulUpstream",
        "DestinationName string, DestinationNamespace string, DestinationPeer string, \
         DestinationPartition string, DestinationType string, LocalBindPort int, \
         Datacenter string, LocalBindAddress string, LocalBindSocketPath string, \
         LocalBindSocketMode string, MeshGateway ConsulMeshGateway, Config map[string]any",
    ),
    ("ConsulMeshGateway", "Mode string"),
    (
        "ConsulTransparentProxy",
        "UID string, OutboundPort uint16, ExcludeInboundPorts []string, \
         ExcludeOutboundPorts []uint16, ExcludeOutboundCIDRs []string, ExcludeUIDs []string, \
         NoDNS bool",
    ),
    (
        "SidecarTask",
        "Name string, Driver string, User string, Config map[string]any, \
         Env map[string]string, Resources Resources, Meta map[string]string, \
         KillTimeout time.Duration, LogConfig LogConfig, ShutdownDelay time.Duration, \
         KillSignal string, VolumeMounts []VolumeMount",
    ),
    (
        "Resources",
        "CPU int, Cores int, MemoryMB int, MemoryMaxMB int, DiskMB int, \
         Networks []NetworkResource, Devices []RequestedDevice, NUMA NUMAResource, \
         SecretsMB int, IOPS int",
    ),
    (
        "NetworkResource",
        "Mode string, Device string, CIDR string, IP string, DNS DNSConfig, \
         ReservedPorts []Port, DynamicPorts []Port, Hostname string, MBits int, CNI CNIConfig",
    ),
    (
        "DNSConfig",
        "Servers []string, Searches []string, Options []string",
    ),
    (
        "Port",
        "Label string, Value int, To int, HostNetwork string, IgnoreCollision bool",
    ),
    ("CNIConfig", "Args map[string]string"),
    (
        "RequestedDevice",
        "Name string, Count uint64, Constraints []Constraint, Affinities []Affinity",
    ),
    (
        "Constraint",
        "LTarget string, RTarget string, Operand string",
    ),
    (
        "Affinity",
        "LTarget string, RTarget string, Operand string, Weight int8",
    ),
    ("NUMAResource", "Affinity string, Devices []string"),
    (
        "LogConfig",
        "MaxFiles int, MaxFileSizeMB int, Enabled bool, Disabled bool",
    ),
    (
        "VolumeMount",
        "Volume string, Destination string, ReadOnly bool, PropagationMode string, \
         SELinuxLabel string",
    ),
];

/// Checks every opaque block of `job` against its Go type; the error names the first value
/// that does not fit, by its path in the job.
pub fn check_job(job: &Job) -> Result<(), GoJsonError> {
    if let Some(payload) = &job.payload
        && !is_go_base64(payload)
    {
        return Err(GoJsonError {
            path: "Payload".to_owned(),
            message: "illegal base64 data for a Go []byte".to_owned(),
        });
    }
    check(job.multiregion.as_ref(), "Multiregion", "Multiregion")?;
    for (g, tg) in job.task_groups.iter().flatten().enumerate() {
        let at = format!("TaskGroups[{g}]");
        check(tg.consul.as_ref(), "Consul", &format!("{at}.Consul"))?;
        check(
            tg.disconnect.as_ref(),
            "DisconnectStrategy",
            &format!("{at}.Disconnect"),
        )?;
        check(
            tg.scaling.as_ref(),
            "ScalingPolicy",
            &format!("{at}.Scaling"),
        )?;
        for (s, service) in tg.services.iter().flatten().enumerate() {
            let path = format!("{at}.Services[{s}].Connect");
            check(service.connect.as_ref(), "ConsulConnect", &path)?;
        }
        for (name, volume) in tg.volumes.iter().flatten() {
            let path = format!("{at}.Volumes.{name}.MountOptions");
            check(volume.mount_options.as_ref(), "CSIMountOptions", &path)?;
        }
        for (t, task) in tg.tasks.iter().flatten().enumerate() {
            let at = format!("{at}.Tasks[{t}]");
            let field = |name: &str| format!("{at}.{name}");
            check(
                task.csi_plugin_config.as_ref(),
                "TaskCSIPluginConfig",
                &field("CSIPluginConfig"),
            )?;
            check(task.consul.as_ref(), "Consul", &field("Consul"))?;
            check(
                task.identity.as_ref(),
                "WorkloadIdentity",
                &field("Identity"),
            )?;
            check(task.vault.as_ref(), "Vault", &field("Vault"))?;
            for (i, identity) in task.identities.iter().flatten().enumerate() {
                let path = field(&format!("Identities[{i}]"));
                check(Some(identity), "WorkloadIdentity", &path)?;
            }
            for (i, policy) in task.scaling_policies.iter().flatten().enumerate() {
                let path = field(&format!("ScalingPolicies[{i}]"));
                check(Some(policy), "ScalingPolicy", &path)?;
            }
            for (s, service) in task.services.iter().flatten().enumerate() {
                let path = field(&format!("Services[{s}].Connect"));
                check(service.connect.as_ref(), "ConsulConnect", &path)?;
            }
            for (i, template) in task.templates.iter().flatten().enumerate() {
                let at = field(&format!("Templates[{i}]"));
                let script = format!("{at}.ChangeScript");
                check(template.change_script.as_ref(), "ChangeScript", &script)?;
                check(template.wait.as_ref(), "WaitConfig", &format!("{at}.Wait"))?;
            }
        }
    }
    Ok(())
}

/// Go's `base64.StdEncoding`, which `encoding/json` uses for `[]byte`: padded, lenient about
/// the unused bits of the last symbol.
const GO_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Whether Go decodes `s` into a `[]byte` (it skips line breaks).
pub fn is_go_base64(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    GO_BASE64.decode(s).is_ok()
}

/// Checks `value` (absent is fine) against the Go type `go_type` at `path`.
pub fn check(value: Option<&Value>, go_type: &str, path: &str) -> Result<(), GoJsonError> {
    match value {
        None => Ok(()),
        Some(v) => check_value(v, go_type, path),
    }
}

fn check_value(v: &Value, go_type: &str, path: &str) -> Result<(), GoJsonError> {
    if v.is_null() {
        return Ok(());
    }
    let fits = match go_type {
        "any" => true,
        "bool" => v.is_boolean(),
        "string" => v.is_string(),
        "float64" => v.is_number(),
        "int" | "int64" | "time.Duration" => v.as_i64().is_some(),
        "int8" => v.as_i64().is_some_and(|n| i8::try_from(n).is_ok()),
        "uint64" => v.as_u64().is_some(),
        "uint32" => v.as_u64().is_some_and(|n| u32::try_from(n).is_ok()),
        "uint16" => v.as_u64().is_some_and(|n| u16::try_from(n).is_ok()),
        _ => {
            if let Some(elem) = go_type.strip_prefix("[]") {
                let Some(items) = v.as_array() else {
                    return Err(mismatch(v, go_type, path));
                };
                for (i, item) in items.iter().enumerate() {
                    check_value(item, elem, &format!("{path}[{i}]"))?;
                }
                return Ok(());
            }
            if let Some(elem) = go_type.strip_prefix("map[string]") {
                let Some(entries) = v.as_object() else {
                    return Err(mismatch(v, go_type, path));
                };
                for (key, item) in entries {
                    check_value(item, elem, &format!("{path}.{key}"))?;
                }
                return Ok(());
            }
            return check_struct(v, go_type, path);
        }
    };
    if fits {
        Ok(())
    } else {
        Err(mismatch(v, go_type, path))
    }
}

fn check_struct(v: &Value, go_type: &str, path: &str) -> Result<(), GoJsonError> {
    let Some(fields) = TYPES
        .iter()
        .find(|(name, _)| *name == go_type)
        .map(|(_, fields)| fields)
    else {
        // Every type named in TYPES is in TYPES (a unit test checks it).
        return Ok(());
    };
    let Some(entries) = v.as_object() else {
        return Err(mismatch(v, go_type, path));
    };
    let fields: Vec<(&str, &str)> = fields
        .split(',')
        .filter_map(|f| f.trim().split_once(' '))
        .collect();
    for (key, item) in entries {
        // Go prefers the exact name, then any case; other keys are ignored.
        let field = fields.iter().find(|(name, _)| name == key).or_else(|| {
            fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
        });
        if let Some((_, ty)) = field {
            check_value(item, ty.trim(), &format!("{path}.{key}"))?;
        }
    }
    Ok(())
}

fn mismatch(v: &Value, go_type: &str, path: &str) -> GoJsonError {
    let found = match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    };
    GoJsonError {
        path: path.to_owned(),
        message: format!("invalid type: {found}, expected Go {go_type}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(v: Value, ty: &str) -> bool {
        check_value(&v, ty, "X").is_ok()
    }

    #[test]
    fn payloads_are_go_base64() {
        assert!(is_go_base64(""));
        assert!(is_go_base64("aGVsbG8="));
        assert!(is_go_base64("aGVs\nbG8="));
        assert!(!is_go_base64("aGVsbG8"));
        assert!(!is_go_base64("not base64!"));
        let job = Job {
            payload: Some("not base64!".to_owned()),
            ..Job::default()
        };
        assert_eq!(check_job(&job).unwrap_err().path, "Payload");
    }

    #[test]
    fn every_named_type_is_defined() {
        let scalars = [
            "any",
            "bool",
            "string",
            "float64",
            "int",
            "int64",
            "int8",
            "time.Duration",
            "uint64",
            "uint32",
            "uint16",
        ];
        for (name, fields) in TYPES {
            for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                let (_, ty) = field.split_once(' ').unwrap();
                let base = ty
                    .trim_start_matches("[]")
                    .trim_start_matches("map[string]");
                let base = base.trim_start_matches("[]");
                assert!(
                    scalars.contains(&base) || TYPES.iter().any(|(n, _)| *n == base),
                    "{name}: {field}"
                );
            }
        }
    }

    #[test]
    fn values_that_fit_go_pass() {
        assert!(ok(json!(null), "ConsulConnect"));
        assert!(ok(
            json!({"Native": false, "SidecarService": {"Port": "8080", "Proxy": {
                "Upstreams": [{"DestinationName": "db", "LocalBindPort": 5432}],
                "Config": {"anything": [1, "two"]}}},
                "sidecar_task": {"KillTimeout": 5_000_000_000_i64, "Resources": {"CPU": 100}},
                "Unknown": "ignored"}),
            "ConsulConnect"
        ));
        assert!(ok(
            json!({"Min": 1, "Max": 3, "Policy": {"a": 1}}),
            "ScalingPolicy"
        ));
        assert!(ok(json!({"Mesh": {}}), "ConsulGateway"));
    }

    #[test]
    fn values_go_refuses_fail_with_their_path() {
        for (v, ty) in [
            (json!({"Native": "yes"}), "ConsulConnect"),
            (json!({"Min": "1"}), "ScalingPolicy"),
            (json!({"Min": 1.5}), "ScalingPolicy"),
            (json!({"TTL": "1h"}), "WorkloadIdentity"),
            (json!({"Policies": "x"}), "Vault"),
            (json!({"Namespace": 5}), "Consul"),
            (json!([]), "Multiregion"),
            (json!({"Mesh": []}), "ConsulGateway"),
            (json!({"Proxy": {"Upstreams": {}}}), "ConsulSidecarService"),
            (json!({"OutboundPort": 70000}), "ConsulTransparentProxy"),
            (json!({"Add": {"a": 1}}), "ConsulHTTPHeaderModifiers"),
        ] {
            assert!(!ok(v.clone(), ty), "{ty}: {v}");
        }
        let err = check_value(
            &json!({"SidecarService": {"Proxy": {"Upstreams": [{"LocalBindPort": "x"}]}}}),
            "ConsulConnect",
            "Connect",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Connect.SidecarService.Proxy.Upstreams[0].LocalBindPort: invalid type: \
             string \"x\", expected Go int"
        );
    }
}
