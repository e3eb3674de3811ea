//! The jobspec schema: which attributes and blocks each Nomad block takes, their JSON names
//! and types, and the rewrites Nomad's `jobspec2` applies while decoding (constraint and
//! affinity shorthands, `meta`/`env` as attribute or block, free-form `config`, static ports
//! moved to reserved ports, template and vault defaults, job-level `task` blocks, ...).
//!
//! Decoding produces the job as Nomad JSON (`serde_json`), which `lib.rs` reads into
//! `caravan_structs::Job`.
//!
//! Where Nomad's `api.Job` has a pointer but `caravan_structs` has a plain value whose Go
//! zero would change the meaning, the parser writes what `api.Job.Canonicalize` would: a
//! group without `count` gets 1 (the `scaling` block's `min` if any), an affinity or spread
//! without `weight` gets 50, a `periodic` block without `enabled` is enabled. Job-level `reschedule` and `migrate` blocks, which
//! `caravan_structs::Job` has no field for, are merged into every group the way the `api`
//! package merges them.

use std::collections::BTreeMap;
use std::rc::Rc;

use hcl_edit::Span;
use serde_json::{Map, Value as Json, json};

use crate::decode::{AttrSpec, BlockRef, BlockType, Content, Decoder, Kind, names};
use crate::eval::Scope;
use crate::value::Value;

type Obj = Map<String, Json>;

const JOB_ATTRS: &[AttrSpec] = &[
    ("region", "Region", Kind::Str),
    ("namespace", "Namespace", Kind::Str),
    ("id", "ID", Kind::Str),
    ("name", "Name", Kind::Str),
    ("type", "Type", Kind::Str),
    ("priority", "Priority", Kind::Int),
    ("all_at_once", "AllAtOnce", Kind::Bool),
    ("datacenters", "Datacenters", Kind::StrList),
    ("node_pool", "NodePool", Kind::Str),
    ("consul_token", "ConsulToken", Kind::Str),
    ("vault_token", "VaultToken", Kind::Str),
];

const JOB_BLOCKS: &[BlockType] = &[
    BlockType("constraint", 0),
    BlockType("affinity", 0),
    BlockType("group", 1),
    BlockType("update", 0),
    BlockType("multiregion", 0),
    BlockType("spread", 0),
    BlockType("periodic", 0),
    BlockType("parameterized", 0),
    BlockType("reschedule", 0),
    BlockType("migrate", 0),
    BlockType("meta", 0),
    BlockType("vault", 0),
    BlockType("task", 1),
    BlockType("ui", 0),
];

const GROUP_ATTRS: &[AttrSpec] = &[
    ("count", "Count", Kind::Int),
    ("shutdown_delay", "ShutdownDelay", Kind::Duration),
    (
        "stop_after_client_disconnect",
        "StopAfterClientDisconnect",
        Kind::Duration,
    ),
    (
        "max_client_disconnect",
        "MaxClientDisconnect",
        Kind::Duration,
    ),
    (
        "prevent_reschedule_on_lost",
        "PreventRescheduleOnLost",
        Kind::Bool,
    ),
];

const GROUP_BLOCKS: &[BlockType] = &[
    BlockType("constraint", 0),
    BlockType("affinity", 0),
    BlockType("task", 1),
    BlockType("spread", 0),
    BlockType("volume", 1),
    BlockType("restart", 0),
    BlockType("disconnect", 0),
    BlockType("reschedule", 0),
    BlockType("ephemeral_disk", 0),
    BlockType("update", 0),
    BlockType("migrate", 0),
    BlockType("network", 0),
    BlockType("meta", 0),
    BlockType("service", 0),
    BlockType("scaling", 0),
    BlockType("consul", 0),
    BlockType("vault", 0),
];

const TASK_ATTRS: &[AttrSpec] = &[
    ("driver", "Driver", Kind::Str),
    ("user", "User", Kind::Str),
    ("kill_timeout", "KillTimeout", Kind::Duration),
    ("leader", "Leader", Kind::Bool),
    ("shutdown_delay", "ShutdownDelay", Kind::Duration),
    ("kill_signal", "KillSignal", Kind::Str),
    ("kind", "Kind", Kind::Str),
];

const TASK_BLOCKS: &[BlockType] = &[
    BlockType("lifecycle", 0),
    BlockType("config", 0),
    BlockType("constraint", 0),
    BlockType("affinity", 0),
    BlockType("env", 0),
    BlockType("service", 0),
    BlockType("resources", 0),
    BlockType("restart", 0),
    BlockType("meta", 0),
    BlockType("logs", 0),
    BlockType("artifact", 0),
    BlockType("vault", 0),
    BlockType("consul", 0),
    BlockType("template", 0),
    BlockType("dispatch_payload", 0),
    BlockType("volume_mount", 0),
    BlockType("csi_plugin", 0),
    BlockType("scaling", 1),
    BlockType("identity", 0),
];

const CONSTRAINT_ATTRS: &[AttrSpec] = &[
    ("attribute", "attribute", Kind::Str),
    ("value", "value", Kind::Str),
    ("operator", "operator", Kind::Str),
    ("distinct_property", "distinct_property", Kind::Str),
    ("distinct_hosts", "distinct_hosts", Kind::Bool),
    ("regexp", "regexp", Kind::Str),
    ("version", "version", Kind::Str),
    ("semver", "semver", Kind::Str),
    ("set_contains", "set_contains", Kind::Str),
    ("set_contains_all", "set_contains_all", Kind::Str),
    ("set_contains_any", "set_contains_any", Kind::Str),
    ("is_set", "is_set", Kind::Str),
    ("is_not_set", "is_not_set", Kind::Str),
];

const AFFINITY_ATTRS: &[AttrSpec] = &[
    ("attribute", "attribute", Kind::Str),
    ("value", "value", Kind::Str),
    ("operator", "operator", Kind::Str),
    ("weight", "weight", Kind::Int8),
    ("version", "version", Kind::Str),
    ("semver", "semver", Kind::Str),
    ("regexp", "regexp", Kind::Str),
    ("set_contains_any", "set_contains_any", Kind::Str),
    ("set_contains_all", "set_contains_all", Kind::Str),
    ("set_contains", "set_contains", Kind::Str),
];

const UPDATE_ATTRS: &[AttrSpec] = &[
    ("stagger", "Stagger", Kind::Duration),
    ("max_parallel", "MaxParallel", Kind::Int),
    ("health_check", "HealthCheck", Kind::Str),
    ("min_healthy_time", "MinHealthyTime", Kind::Duration),
    ("healthy_deadline", "HealthyDeadline", Kind::Duration),
    ("progress_deadline", "ProgressDeadline", Kind::Duration),
    ("canary", "Canary", Kind::Int),
    ("auto_revert", "AutoRevert", Kind::Bool),
    ("auto_promote", "AutoPromote", Kind::Bool),
];

const MIGRATE_ATTRS: &[AttrSpec] = &[
    ("max_parallel", "MaxParallel", Kind::Int),
    ("health_check", "HealthCheck", Kind::Str),
    ("min_healthy_time", "MinHealthyTime", Kind::Duration),
    ("healthy_deadline", "HealthyDeadline", Kind::Duration),
];

const RESCHEDULE_ATTRS: &[AttrSpec] = &[
    ("attempts", "Attempts", Kind::Int),
    ("interval", "Interval", Kind::Duration),
    ("delay", "Delay", Kind::Duration),
    ("delay_function", "DelayFunction", Kind::Str),
    ("max_delay", "MaxDelay", Kind::Duration),
    ("unlimited", "Unlimited", Kind::Bool),
];

const RESTART_ATTRS: &[AttrSpec] = &[
    ("interval", "Interval", Kind::Duration),
    ("attempts", "Attempts", Kind::Int),
    ("delay", "Delay", Kind::Duration),
    ("mode", "Mode", Kind::Str),
    ("render_templates", "RenderTemplates", Kind::Bool),
];

const PERIODIC_ATTRS: &[AttrSpec] = &[
    ("enabled", "Enabled", Kind::Bool),
    ("cron", "Spec", Kind::Str),
    ("crons", "Specs", Kind::StrList),
    ("prohibit_overlap", "ProhibitOverlap", Kind::Bool),
    ("time_zone", "TimeZone", Kind::Str),
];

const PARAMETERIZED_ATTRS: &[AttrSpec] = &[
    ("payload", "Payload", Kind::Str),
    ("meta_required", "MetaRequired", Kind::StrList),
    ("meta_optional", "MetaOptional", Kind::StrList),
];

const EPHEMERAL_DISK_ATTRS: &[AttrSpec] = &[
    ("sticky", "Sticky", Kind::Bool),
    ("migrate", "Migrate", Kind::Bool),
    ("size", "SizeMB", Kind::Int),
];

const DISCONNECT_ATTRS: &[AttrSpec] = &[
    ("lost_after", "LostAfter", Kind::Duration),
    ("stop_on_client_after", "StopOnClientAfter", Kind::Duration),
    ("replace", "Replace", Kind::Bool),
    ("reconcile", "Reconcile", Kind::Str),
];

const CONSUL_ATTRS: &[AttrSpec] = &[
    ("cluster", "Cluster", Kind::Str),
    ("namespace", "Namespace", Kind::Str),
    ("partition", "Partition", Kind::Str),
];

const VAULT_ATTRS: &[AttrSpec] = &[
    ("policies", "Policies", Kind::StrList),
    ("role", "Role", Kind::Str),
    ("namespace", "Namespace", Kind::Str),
    ("cluster", "Cluster", Kind::Str),
    ("env", "Env", Kind::Bool),
    ("disable_file", "DisableFile", Kind::Bool),
    ("change_mode", "ChangeMode", Kind::Str),
    ("change_signal", "ChangeSignal", Kind::Str),
    ("allow_token_expiration", "AllowTokenExpiration", Kind::Bool),
];

const SCALING_ATTRS: &[AttrSpec] = &[
    ("min", "Min", Kind::Int),
    ("max", "Max", Kind::Int),
    ("enabled", "Enabled", Kind::Bool),
    ("type", "Type", Kind::Str),
];

const VOLUME_ATTRS: &[AttrSpec] = &[
    ("type", "Type", Kind::Str),
    ("source", "Source", Kind::Str),
    ("read_only", "ReadOnly", Kind::Bool),
    ("access_mode", "AccessMode", Kind::Str),
    ("attachment_mode", "AttachmentMode", Kind::Str),
    ("per_alloc", "PerAlloc", Kind::Bool),
    ("sticky", "Sticky", Kind::Bool),
];

const MOUNT_OPTIONS_ATTRS: &[AttrSpec] = &[
    ("fs_type", "FSType", Kind::Str),
    ("mount_flags", "MountFlags", Kind::StrList),
];

const NETWORK_ATTRS: &[AttrSpec] = &[
    ("mode", "Mode", Kind::Str),
    ("device", "Device", Kind::Str),
    ("cidr", "CIDR", Kind::Str),
    ("ip", "IP", Kind::Str),
    ("hostname", "Hostname", Kind::Str),
    ("mbits", "MBits", Kind::Int),
];

const PORT_ATTRS: &[AttrSpec] = &[
    ("static", "Value", Kind::Int),
    ("to", "To", Kind::Int),
    ("host_network", "HostNetwork", Kind::Str),
];

const DNS_ATTRS: &[AttrSpec] = &[
    ("servers", "Servers", Kind::StrList),
    ("searches", "Searches", Kind::StrList),
    ("options", "Options", Kind::StrList),
];

const RESOURCES_ATTRS: &[AttrSpec] = &[
    ("cpu", "CPU", Kind::Int),
    ("cores", "Cores", Kind::Int),
    ("memory", "MemoryMB", Kind::Int),
    ("memory_max", "MemoryMaxMB", Kind::Int),
    ("disk", "DiskMB", Kind::Int),
    ("iops", "IOPS", Kind::Int),
];

const SERVICE_ATTRS: &[AttrSpec] = &[
    ("name", "Name", Kind::Str),
    ("tags", "Tags", Kind::StrList),
    ("canary_tags", "CanaryTags", Kind::StrList),
    ("enable_tag_override", "EnableTagOverride", Kind::Bool),
    ("port", "PortLabel", Kind::Str),
    ("address_mode", "AddressMode", Kind::Str),
    ("address", "Address", Kind::Str),
    ("task", "TaskName", Kind::Str),
    ("on_update", "OnUpdate", Kind::Str),
    ("provider", "Provider", Kind::Str),
];

const CHECK_ATTRS: &[AttrSpec] = &[
    ("name", "Name", Kind::Str),
    ("type", "Type", Kind::Str),
    ("command", "Command", Kind::Str),
    ("args", "Args", Kind::StrList),
    ("path", "Path", Kind::Str),
    ("protocol", "Protocol", Kind::Str),
    ("port", "PortLabel", Kind::Str),
    ("expose", "Expose", Kind::Bool),
    ("address_mode", "AddressMode", Kind::Str),
    ("advertise", "Advertise", Kind::Str),
    ("interval", "Interval", Kind::Duration),
    ("timeout", "Timeout", Kind::Duration),
    ("initial_status", "InitialStatus", Kind::Str),
    ("tls_server_name", "TLSServerName", Kind::Str),
    ("tls_skip_verify", "TLSSkipVerify", Kind::Bool),
    ("method", "Method", Kind::Str),
    ("grpc_service", "GRPCService", Kind::Str),
    ("grpc_use_tls", "GRPCUseTLS", Kind::Bool),
    ("task", "TaskName", Kind::Str),
    ("success_before_passing", "SuccessBeforePassing", Kind::Int),
    (
        "failures_before_critical",
        "FailuresBeforeCritical",
        Kind::Int,
    ),
    (
        "failures_before_warning",
        "FailuresBeforeWarning",
        Kind::Int,
    ),
    ("body", "Body", Kind::Str),
    ("on_update", "OnUpdate", Kind::Str),
];

const CHECK_RESTART_ATTRS: &[AttrSpec] = &[
    ("limit", "Limit", Kind::Int),
    ("grace", "Grace", Kind::Duration),
    ("ignore_warnings", "IgnoreWarnings", Kind::Bool),
];

const LIFECYCLE_ATTRS: &[AttrSpec] = &[
    ("hook", "Hook", Kind::Str),
    ("sidecar", "Sidecar", Kind::Bool),
];

const LOGS_ATTRS: &[AttrSpec] = &[
    ("max_files", "MaxFiles", Kind::Int),
    ("max_file_size", "MaxFileSizeMB", Kind::Int),
    ("disabled", "Disabled", Kind::Bool),
    // Nomad 1.5's spelling, kept by Nomad for compatibility: `Disabled = !enabled`.
    ("enabled", "Enabled", Kind::Bool),
];

const ARTIFACT_ATTRS: &[AttrSpec] = &[
    ("source", "GetterSource", Kind::Str),
    ("mode", "GetterMode", Kind::Str),
    ("insecure", "GetterInsecure", Kind::Bool),
    ("destination", "RelativeDest", Kind::Str),
    ("chown", "Chown", Kind::Bool),
];

const TEMPLATE_ATTRS: &[AttrSpec] = &[
    ("source", "SourcePath", Kind::Str),
    ("destination", "DestPath", Kind::Str),
    ("data", "EmbeddedTmpl", Kind::Str),
    ("change_mode", "ChangeMode", Kind::Str),
    ("change_signal", "ChangeSignal", Kind::Str),
    ("splay", "Splay", Kind::Duration),
    ("perms", "Perms", Kind::Str),
    ("uid", "Uid", Kind::Int),
    ("gid", "Gid", Kind::Int),
    ("left_delimiter", "LeftDelim", Kind::Str),
    ("right_delimiter", "RightDelim", Kind::Str),
    ("env", "Envvars", Kind::Bool),
    ("vault_grace", "VaultGrace", Kind::Duration),
    ("error_on_missing_key", "ErrMissingKey", Kind::Bool),
    ("once", "Once", Kind::Bool),
];

const WAIT_ATTRS: &[AttrSpec] = &[
    ("min", "Min", Kind::Duration),
    ("max", "Max", Kind::Duration),
];

const CHANGE_SCRIPT_ATTRS: &[AttrSpec] = &[
    ("command", "Command", Kind::Str),
    ("args", "Args", Kind::StrList),
    ("timeout", "Timeout", Kind::Duration),
    ("fail_on_error", "FailOnError", Kind::Bool),
];

const VOLUME_MOUNT_ATTRS: &[AttrSpec] = &[
    ("volume", "Volume", Kind::Str),
    ("destination", "Destination", Kind::Str),
    ("read_only", "ReadOnly", Kind::Bool),
    ("propagation_mode", "PropagationMode", Kind::Str),
    ("selinux_label", "SELinuxLabel", Kind::Str),
];

const CSI_PLUGIN_ATTRS: &[AttrSpec] = &[
    ("id", "ID", Kind::Str),
    ("type", "Type", Kind::Str),
    ("mount_dir", "MountDir", Kind::Str),
    ("stage_publish_base_dir", "StagePublishBaseDir", Kind::Str),
    ("health_timeout", "HealthTimeout", Kind::Duration),
];

const IDENTITY_ATTRS: &[AttrSpec] = &[
    ("name", "Name", Kind::Str),
    ("aud", "Audience", Kind::StrList),
    ("change_mode", "ChangeMode", Kind::Str),
    ("change_signal", "ChangeSignal", Kind::Str),
    ("env", "Env", Kind::Bool),
    ("file", "File", Kind::Bool),
    ("filepath", "Filepath", Kind::Str),
    ("service_name", "ServiceName", Kind::Str),
    ("ttl", "TTL", Kind::Duration),
];

const DISPATCH_PAYLOAD_ATTRS: &[AttrSpec] = &[("file", "File", Kind::Str)];

const DEVICE_ATTRS: &[AttrSpec] = &[("count", "Count", Kind::Uint64)];

const SPREAD_ATTRS: &[AttrSpec] = &[
    ("attribute", "Attribute", Kind::Str),
    ("weight", "Weight", Kind::Int8),
];

const SPREAD_TARGET_ATTRS: &[AttrSpec] = &[("percent", "Percent", Kind::Uint8)];

const MULTIREGION_STRATEGY_ATTRS: &[AttrSpec] = &[
    ("max_parallel", "MaxParallel", Kind::Int),
    ("on_failure", "OnFailure", Kind::Str),
];

const MULTIREGION_REGION_ATTRS: &[AttrSpec] = &[
    ("count", "Count", Kind::Int),
    ("datacenters", "Datacenters", Kind::StrList),
    ("node_pool", "NodePool", Kind::Str),
];

const UI_ATTRS: &[AttrSpec] = &[("description", "Description", Kind::Str)];

const UI_LINK_ATTRS: &[AttrSpec] = &[("label", "Label", Kind::Str), ("url", "URL", Kind::Str)];

/// Default weight of an affinity or spread without one (`api.Affinity.Canonicalize`).
const DEFAULT_WEIGHT: i64 = 50;

/// Attribute names plus extra names (attribute spellings of blocks like `meta`).
fn attr_names(spec: &[AttrSpec], extra: &[&'static str]) -> Vec<&'static str> {
    let mut n = names(spec);
    n.extend_from_slice(extra);
    n
}

fn json_map(m: BTreeMap<String, String>) -> Json {
    Json::Object(m.into_iter().map(|(k, v)| (k, Json::String(v))).collect())
}

/// Decodes the `job "<id>" { ... }` block into Nomad's JSON job.
pub(crate) fn decode_job<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let c = d.content(
        b.body,
        &b.scope,
        &attr_names(JOB_ATTRS, &["meta"]),
        JOB_BLOCKS,
    );
    let mut job = Obj::new();
    d.put_attrs(&c, JOB_ATTRS, &mut job);
    let label = b.label(0);
    job.entry("ID")
        .or_insert_with(|| Json::String(label.clone()));
    job.entry("Name")
        .or_insert_with(|| Json::String(label.clone()));
    if let Some(m) = d.string_map(&c, "meta") {
        job.insert("Meta".into(), json_map(m));
    }
    put_list(
        &mut job,
        "Constraints",
        c.blocks_of("constraint")
            .map(|b| constraint(d, b))
            .collect(),
    );
    put_list(
        &mut job,
        "Affinities",
        c.blocks_of("affinity").map(|b| affinity(d, b)).collect(),
    );
    put_list(
        &mut job,
        "Spreads",
        c.blocks_of("spread").map(|b| spread(d, b)).collect(),
    );
    if let Some(u) = d.single(&c, "update").cloned() {
        job.insert(
            "Update".into(),
            Json::Object(d.simple_block(&u, UPDATE_ATTRS)),
        );
    }
    if let Some(p) = d.single(&c, "periodic").cloned() {
        let mut p = d.simple_block(&p, PERIODIC_ATTRS);
        // `enabled` defaults to true (`api.PeriodicConfig.Canonicalize`); false would be a
        // different job.
        p.entry("Enabled").or_insert(Json::Bool(true));
        if p.contains_key("Spec") || p.contains_key("Specs") {
            p.insert("SpecType".into(), json!("cron"));
        }
        job.insert("Periodic".into(), Json::Object(p));
    }
    if let Some(p) = d.single(&c, "parameterized").cloned() {
        job.insert(
            "ParameterizedJob".into(),
            Json::Object(d.simple_block(&p, PARAMETERIZED_ATTRS)),
        );
    }
    if let Some(ui) = d.single(&c, "ui").cloned() {
        let uc = d.content(
            ui.body,
            &ui.scope,
            &names(UI_ATTRS),
            &[BlockType("link", 0)],
        );
        let mut m = Obj::new();
        d.put_attrs(&uc, UI_ATTRS, &mut m);
        let links = uc
            .blocks_of("link")
            .map(|l| Json::Object(d.simple_block(l, UI_LINK_ATTRS)))
            .collect();
        put_list(&mut m, "Links", links);
        job.insert("UI".into(), Json::Object(m));
    }
    if let Some(m) = d.single(&c, "multiregion").cloned() {
        job.insert("Multiregion".into(), multiregion(d, &m));
    }
    let reschedule = d
        .single(&c, "reschedule")
        .cloned()
        .map(|r| d.simple_block(&r, RESCHEDULE_ATTRS));
    let migrate = d
        .single(&c, "migrate")
        .cloned()
        .map(|m| d.simple_block(&m, MIGRATE_ATTRS));
    let job_vault = d.single(&c, "vault").cloned().map(|v| vault(d, &v));

    // Job-level `task` blocks are groups of one task, placed before the groups.
    let mut groups: Vec<Json> = Vec::new();
    for t in c.blocks_of("task") {
        let task = decode_task(d, t);
        let mut g = Obj::new();
        g.insert("Name".into(), Json::String(t.label(0)));
        g.insert("Tasks".into(), Json::Array(vec![Json::Object(task)]));
        groups.push(Json::Object(g));
    }
    for g in c.blocks_of("group") {
        groups.push(Json::Object(decode_group(d, g)));
    }
    for g in &mut groups {
        let Some(g) = g.as_object_mut() else { continue };
        if let Some(r) = &reschedule {
            merge_into(g, "ReschedulePolicy", r);
        }
        if let Some(m) = &migrate {
            merge_into(g, "Migrate", m);
        }
        if let Some(v) = &job_vault {
            for_each_task(g, |t| {
                t.entry("Vault").or_insert_with(|| Json::Object(v.clone()));
            });
        }
    }
    let job_type = job
        .get("Type")
        .and_then(Json::as_str)
        .unwrap_or(caravan_structs::JOB_TYPE_SERVICE)
        .to_owned();
    for g in groups.iter_mut().filter_map(Json::as_object_mut) {
        merge_restart_defaults(g, &job_type);
    }
    put_list(&mut job, "TaskGroups", groups);
    job
}

/// A `restart` block that sets only some fields keeps the job type's defaults for the others,
/// as `api.TaskGroup.Canonicalize` merges them (zeros would fail validation: interval 0s).
fn merge_restart_defaults(g: &mut Obj, job_type: &str) {
    let Some(Json::Object(own)) = g.get("RestartPolicy") else {
        return;
    };
    let Some(defaults) = caravan_structs::default_restart_policy(job_type)
        .and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| v.as_object().cloned())
    else {
        return;
    };
    let mut merged = defaults;
    for (k, v) in own {
        merged.insert(k.clone(), v.clone());
    }
    g.insert("RestartPolicy".to_owned(), Json::Object(merged));
}

/// A job-level policy block under a group's own: the group's keys win (`api` `Merge`).
fn merge_into(g: &mut Obj, key: &str, job_level: &Obj) {
    let mut merged = job_level.clone();
    if let Some(Json::Object(own)) = g.get(key) {
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
    }
    g.insert(key.to_owned(), Json::Object(merged));
}

fn for_each_task(g: &mut Obj, mut f: impl FnMut(&mut Obj)) {
    if let Some(Json::Array(tasks)) = g.get_mut("Tasks") {
        for t in tasks.iter_mut().filter_map(Json::as_object_mut) {
            f(t);
        }
    }
}

fn put_list(m: &mut Obj, key: &str, items: Vec<Json>) {
    if !items.is_empty() {
        m.insert(key.to_owned(), Json::Array(items));
    }
}

fn decode_group<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let c = d.content(
        b.body,
        &b.scope,
        &attr_names(GROUP_ATTRS, &["meta"]),
        GROUP_BLOCKS,
    );
    let mut g = Obj::new();
    g.insert("Name".into(), Json::String(b.label(0)));
    d.put_attrs(&c, GROUP_ATTRS, &mut g);
    if let Some(m) = d.string_map(&c, "meta") {
        g.insert("Meta".into(), json_map(m));
    }
    put_list(
        &mut g,
        "Constraints",
        c.blocks_of("constraint")
            .map(|b| constraint(d, b))
            .collect(),
    );
    put_list(
        &mut g,
        "Affinities",
        c.blocks_of("affinity").map(|b| affinity(d, b)).collect(),
    );
    put_list(
        &mut g,
        "Spreads",
        c.blocks_of("spread").map(|b| spread(d, b)).collect(),
    );
    let mut volumes = Obj::new();
    for v in c.blocks_of("volume") {
        let vc = d.content(
            v.body,
            &v.scope,
            &names(VOLUME_ATTRS),
            &[BlockType("mount_options", 0)],
        );
        let mut vol = Obj::new();
        vol.insert("Name".into(), Json::String(v.label(0)));
        d.put_attrs(&vc, VOLUME_ATTRS, &mut vol);
        if let Some(mo) = d.single(&vc, "mount_options").cloned() {
            vol.insert(
                "MountOptions".into(),
                Json::Object(d.simple_block(&mo, MOUNT_OPTIONS_ATTRS)),
            );
        }
        volumes.insert(v.label(0), Json::Object(vol));
    }
    if !volumes.is_empty() {
        g.insert("Volumes".into(), Json::Object(volumes));
    }
    let singles: &[(&str, &str, &[AttrSpec])] = &[
        ("restart", "RestartPolicy", RESTART_ATTRS),
        ("disconnect", "Disconnect", DISCONNECT_ATTRS),
        ("reschedule", "ReschedulePolicy", RESCHEDULE_ATTRS),
        ("ephemeral_disk", "EphemeralDisk", EPHEMERAL_DISK_ATTRS),
        ("update", "Update", UPDATE_ATTRS),
        ("migrate", "Migrate", MIGRATE_ATTRS),
        ("consul", "Consul", CONSUL_ATTRS),
    ];
    for (name, key, spec) in singles {
        if let Some(blk) = d.single(&c, name).cloned() {
            g.insert((*key).to_owned(), Json::Object(d.simple_block(&blk, spec)));
        }
    }
    put_list(
        &mut g,
        "Networks",
        c.blocks_of("network").map(|n| network(d, n)).collect(),
    );
    put_list(
        &mut g,
        "Services",
        c.blocks_of("service").map(|s| service(d, s)).collect(),
    );
    if let Some(s) = d.single(&c, "scaling").cloned() {
        g.insert("Scaling".into(), Json::Object(group_scaling(d, &s)));
    }
    let group_vault = d.single(&c, "vault").cloned().map(|v| vault(d, &v));
    put_list(
        &mut g,
        "Tasks",
        c.blocks_of("task")
            .map(|t| Json::Object(decode_task(d, t)))
            .collect(),
    );
    if let Some(v) = group_vault {
        for_each_task(&mut g, |t| {
            t.entry("Vault").or_insert_with(|| Json::Object(v.clone()));
        });
    }
    g
}

fn decode_task<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let c = d.content(
        b.body,
        &b.scope,
        &attr_names(TASK_ATTRS, &["meta", "env"]),
        TASK_BLOCKS,
    );
    let mut t = Obj::new();
    t.insert("Name".into(), Json::String(b.label(0)));
    d.put_attrs(&c, TASK_ATTRS, &mut t);
    if let Some(m) = d.string_map(&c, "meta") {
        t.insert("Meta".into(), json_map(m));
    }
    if let Some(m) = d.string_map(&c, "env") {
        t.insert("Env".into(), json_map(m));
    }
    if let Some(cfg) = d.single(&c, "config").cloned() {
        let m = d.free_form(cfg.body, &cfg.scope);
        t.insert("Config".into(), Value::Object(m).to_json());
    }
    put_list(
        &mut t,
        "Constraints",
        c.blocks_of("constraint")
            .map(|b| constraint(d, b))
            .collect(),
    );
    put_list(
        &mut t,
        "Affinities",
        c.blocks_of("affinity").map(|b| affinity(d, b)).collect(),
    );
    put_list(
        &mut t,
        "Services",
        c.blocks_of("service").map(|s| service(d, s)).collect(),
    );
    if let Some(r) = d.single(&c, "resources").cloned() {
        t.insert("Resources".into(), Json::Object(resources(d, &r)));
    }
    let singles: &[(&str, &str, &[AttrSpec])] = &[
        ("lifecycle", "Lifecycle", LIFECYCLE_ATTRS),
        ("restart", "RestartPolicy", RESTART_ATTRS),
        (
            "dispatch_payload",
            "DispatchPayload",
            DISPATCH_PAYLOAD_ATTRS,
        ),
        ("consul", "Consul", CONSUL_ATTRS),
        ("csi_plugin", "CSIPluginConfig", CSI_PLUGIN_ATTRS),
    ];
    for (name, key, spec) in singles {
        if let Some(blk) = d.single(&c, name).cloned() {
            t.insert((*key).to_owned(), Json::Object(d.simple_block(&blk, spec)));
        }
    }
    if let Some(l) = d.single(&c, "logs").cloned() {
        let mut logs = d.simple_block(&l, LOGS_ATTRS);
        if let Some(Json::Bool(enabled)) = logs.remove("Enabled") {
            logs.entry("Disabled").or_insert(Json::Bool(!enabled));
        }
        t.insert("LogConfig".into(), Json::Object(logs));
    }
    put_list(
        &mut t,
        "Artifacts",
        c.blocks_of("artifact").map(|a| artifact(d, a)).collect(),
    );
    put_list(
        &mut t,
        "Templates",
        c.blocks_of("template").map(|tp| template(d, tp)).collect(),
    );
    put_list(
        &mut t,
        "VolumeMounts",
        c.blocks_of("volume_mount")
            .map(|v| Json::Object(d.simple_block(v, VOLUME_MOUNT_ATTRS)))
            .collect(),
    );
    if let Some(v) = d.single(&c, "vault").cloned() {
        t.insert("Vault".into(), Json::Object(vault(d, &v)));
    }
    task_scaling(d, &c, &mut t);
    // The unnamed (or "default") identity is the task's default workload identity.
    let mut identities = Vec::new();
    for i in c.blocks_of("identity") {
        let id = d.simple_block(i, IDENTITY_ATTRS);
        let name = id.get("Name").and_then(Json::as_str).unwrap_or("");
        if (name.is_empty() || name == "default") && !t.contains_key("Identity") {
            t.insert("Identity".into(), Json::Object(id));
        } else {
            identities.push(Json::Object(id));
        }
    }
    put_list(&mut t, "Identities", identities);
    t
}

/// `constraint { attribute, operator, value }` and its shorthands (`distinct_hosts = true`,
/// `version = ">= 1.2"`, `regexp = "..."`, ...), as Nomad's `decodeConstraint`.
fn constraint<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let m = d.simple_block(b, CONSTRAINT_ATTRS);
    let s = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let mut l_target = s("attribute");
    let mut r_target = s("value");
    let mut operand = s("operator");
    for op in [
        "version",
        "semver",
        "regexp",
        "set_contains",
        "set_contains_all",
        "set_contains_any",
    ] {
        let v = s(op);
        if !v.is_empty() {
            operand = op.to_owned();
            r_target = v;
        }
    }
    if m.get("distinct_hosts").and_then(Json::as_bool) == Some(true) {
        operand = "distinct_hosts".to_owned();
    }
    let prop = s("distinct_property");
    if !prop.is_empty() {
        operand = "distinct_property".to_owned();
        l_target = prop;
    }
    if operand.is_empty() {
        operand = "=".to_owned();
    }
    json!({"LTarget": l_target, "Operand": operand, "RTarget": r_target})
}

/// `affinity { attribute, operator, value, weight }` and its shorthands.
fn affinity<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let m = d.simple_block(b, AFFINITY_ATTRS);
    let s = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    let mut r_target = s("value");
    let mut operand = s("operator");
    for op in [
        "version",
        "semver",
        "regexp",
        "set_contains_any",
        "set_contains_all",
        "set_contains",
    ] {
        let v = s(op);
        if !v.is_empty() {
            operand = op.to_owned();
            r_target = v;
        }
    }
    if operand.is_empty() {
        operand = "=".to_owned();
    }
    let weight = m
        .get("weight")
        .and_then(Json::as_i64)
        .unwrap_or(DEFAULT_WEIGHT);
    json!({"LTarget": s("attribute"), "Operand": operand, "RTarget": r_target, "Weight": weight})
}

fn spread<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &names(SPREAD_ATTRS),
        &[BlockType("target", 1)],
    );
    let mut m = Obj::new();
    d.put_attrs(&c, SPREAD_ATTRS, &mut m);
    m.entry("Weight").or_insert(Json::from(DEFAULT_WEIGHT));
    let mut targets = Vec::new();
    for t in c.blocks_of("target") {
        let mut tm = d.simple_block(t, SPREAD_TARGET_ATTRS);
        tm.insert("Value".into(), Json::String(t.label(0)));
        targets.push(Json::Object(tm));
    }
    put_list(&mut m, "SpreadTarget", targets);
    Json::Object(m)
}

fn network<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &names(NETWORK_ATTRS),
        &[
            BlockType("dns", 0),
            BlockType("port", 1),
            BlockType("reserved_ports", 1),
        ],
    );
    let mut n = Obj::new();
    d.put_attrs(&c, NETWORK_ATTRS, &mut n);
    if let Some(dns) = d.single(&c, "dns").cloned() {
        n.insert("DNS".into(), Json::Object(d.simple_block(&dns, DNS_ATTRS)));
    }
    let mut ports = |name: &str| -> Vec<Json> {
        c.blocks_of(name)
            .map(|p| {
                let mut pm = d.simple_block(p, PORT_ATTRS);
                pm.insert("Label".into(), Json::String(p.label(0)));
                Json::Object(pm)
            })
            .collect()
    };
    let dynamic = ports("port");
    let reserved = ports("reserved_ports");
    put_list(&mut n, "ReservedPorts", reserved);
    // Nomad's normalizeNetworkPorts: a `port` with a static value is a reserved port.
    if !dynamic.is_empty() {
        let (stat, dynm): (Vec<Json>, Vec<Json>) = dynamic
            .into_iter()
            .partition(|p| p.get("Value").and_then(Json::as_i64).unwrap_or(0) > 0);
        n.remove("ReservedPorts");
        put_list(&mut n, "ReservedPorts", stat);
        put_list(&mut n, "DynamicPorts", dynm);
    }
    Json::Object(n)
}

fn resources<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let c = d.content(
        b.body,
        &b.scope,
        &names(RESOURCES_ATTRS),
        &[BlockType("network", 0), BlockType("device", 1)],
    );
    let mut r = Obj::new();
    d.put_attrs(&c, RESOURCES_ATTRS, &mut r);
    put_list(
        &mut r,
        "Networks",
        c.blocks_of("network").map(|n| network(d, n)).collect(),
    );
    let mut devices = Vec::new();
    for dev in c.blocks_of("device") {
        let dc = d.content(
            dev.body,
            &dev.scope,
            &names(DEVICE_ATTRS),
            &[BlockType("constraint", 0), BlockType("affinity", 0)],
        );
        let mut dm = Obj::new();
        dm.insert("Name".into(), Json::String(dev.label(0)));
        d.put_attrs(&dc, DEVICE_ATTRS, &mut dm);
        put_list(
            &mut dm,
            "Constraints",
            dc.blocks_of("constraint")
                .map(|b| constraint(d, b))
                .collect(),
        );
        put_list(
            &mut dm,
            "Affinities",
            dc.blocks_of("affinity").map(|b| affinity(d, b)).collect(),
        );
        devices.push(Json::Object(dm));
    }
    put_list(&mut r, "Devices", devices);
    r
}

fn service<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &attr_names(SERVICE_ATTRS, &["meta", "canary_meta"]),
        &[
            BlockType("check", 0),
            BlockType("check_restart", 0),
            BlockType("connect", 0),
            BlockType("meta", 0),
            BlockType("canary_meta", 0),
        ],
    );
    let mut s = Obj::new();
    d.put_attrs(&c, SERVICE_ATTRS, &mut s);
    if let Some(m) = d.string_map(&c, "meta") {
        s.insert("Meta".into(), json_map(m));
    }
    if let Some(m) = d.string_map(&c, "canary_meta") {
        s.insert("CanaryMeta".into(), json_map(m));
    }
    if let Some(cn) = d.single(&c, "connect").cloned() {
        s.insert("Connect".into(), generic_block(d, &cn));
    }
    let service_restart = d
        .single(&c, "check_restart")
        .cloned()
        .map(|r| d.simple_block(&r, CHECK_RESTART_ATTRS));
    let mut checks = Vec::new();
    for ch in c.blocks_of("check") {
        let cc = d.content(
            ch.body,
            &ch.scope,
            &names(CHECK_ATTRS),
            &[BlockType("header", 0), BlockType("check_restart", 0)],
        );
        let mut m = Obj::new();
        d.put_attrs(&cc, CHECK_ATTRS, &mut m);
        if let Some(h) = d.single(&cc, "header").cloned() {
            m.insert("Header".into(), Json::Object(d.block_string_list_map(&h)));
        }
        let own = d
            .single(&cc, "check_restart")
            .cloned()
            .map(|r| d.simple_block(&r, CHECK_RESTART_ATTRS));
        // `api.CheckRestart.Merge`: the check's own settings over the service's.
        let merged = match (&service_restart, own) {
            (None, own) => own,
            (Some(base), None) => Some(base.clone()),
            (Some(base), Some(own)) => {
                let mut m = base.clone();
                if own.get("Limit").and_then(Json::as_i64).unwrap_or(0) > 0 {
                    m.insert("Limit".into(), own["Limit"].clone());
                }
                if let Some(g) = own.get("Grace") {
                    m.insert("Grace".into(), g.clone());
                }
                if own.get("IgnoreWarnings").and_then(Json::as_bool) == Some(true) {
                    m.insert("IgnoreWarnings".into(), Json::Bool(true));
                }
                Some(m)
            }
        };
        if let Some(r) = merged {
            m.insert("CheckRestart".into(), Json::Object(r));
        }
        checks.push(Json::Object(m));
    }
    put_list(&mut s, "Checks", checks);
    Json::Object(s)
}

fn artifact<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &attr_names(ARTIFACT_ATTRS, &["options", "headers"]),
        &[BlockType("options", 0), BlockType("headers", 0)],
    );
    let mut m = Obj::new();
    d.put_attrs(&c, ARTIFACT_ATTRS, &mut m);
    if let Some(o) = d.string_map(&c, "options") {
        m.insert("GetterOptions".into(), json_map(o));
    }
    if let Some(h) = d.string_map(&c, "headers") {
        m.insert("GetterHeaders".into(), json_map(h));
    }
    Json::Object(m)
}

/// A template, with the defaults `jobspec2`'s `normalizeTemplates` writes.
fn template<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &names(TEMPLATE_ATTRS),
        &[BlockType("wait", 0), BlockType("change_script", 0)],
    );
    let mut m = Obj::new();
    d.put_attrs(&c, TEMPLATE_ATTRS, &mut m);
    if let Some(w) = d.single(&c, "wait").cloned() {
        m.insert("Wait".into(), Json::Object(d.simple_block(&w, WAIT_ATTRS)));
    }
    if let Some(cs) = d.single(&c, "change_script").cloned() {
        let mut s = d.simple_block(&cs, CHANGE_SCRIPT_ATTRS);
        s.entry("Args").or_insert_with(|| json!([]));
        s.entry("Timeout").or_insert(json!(5_000_000_000i64));
        s.entry("FailOnError").or_insert(json!(false));
        m.insert("ChangeScript".into(), Json::Object(s));
    }
    m.entry("ChangeMode").or_insert(json!("restart"));
    m.entry("Perms").or_insert(json!("0644"));
    m.entry("Splay").or_insert(json!(5_000_000_000i64));
    m.entry("ErrMissingKey").or_insert(json!(false));
    Json::Object(m)
}

/// A vault block, with `jobspec2`'s `normalizeVault` defaults.
fn vault<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let mut v = d.simple_block(b, VAULT_ATTRS);
    v.entry("Env").or_insert(json!(true));
    v.entry("ChangeMode").or_insert(json!("restart"));
    v
}

fn multiregion<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    let c = d.content(
        b.body,
        &b.scope,
        &[],
        &[BlockType("strategy", 0), BlockType("region", 1)],
    );
    let mut m = Obj::new();
    if let Some(s) = d.single(&c, "strategy").cloned() {
        m.insert(
            "Strategy".into(),
            Json::Object(d.simple_block(&s, MULTIREGION_STRATEGY_ATTRS)),
        );
    }
    let mut regions = Vec::new();
    for r in c.blocks_of("region") {
        let rc = d.content(
            r.body,
            &r.scope,
            &attr_names(MULTIREGION_REGION_ATTRS, &["meta"]),
            &[BlockType("meta", 0)],
        );
        let mut rm = Obj::new();
        rm.insert("Name".into(), Json::String(r.label(0)));
        d.put_attrs(&rc, MULTIREGION_REGION_ATTRS, &mut rm);
        if let Some(meta) = d.string_map(&rc, "meta") {
            rm.insert("Meta".into(), json_map(meta));
        }
        regions.push(Json::Object(rm));
    }
    put_list(&mut m, "Regions", regions);
    Json::Object(m)
}

/// The fields of a scaling block, its free-form `policy`, and its type's default.
fn scaling_fields<'a>(
    d: &mut Decoder<'a>,
    b: &BlockRef<'a>,
    default_type: &str,
) -> (Obj, Content<'a>) {
    let c = d.content(
        b.body,
        &b.scope,
        &names(SCALING_ATTRS),
        &[BlockType("policy", 0)],
    );
    let mut m = Obj::new();
    d.put_attrs(&c, SCALING_ATTRS, &mut m);
    if let Some(p) = d.single(&c, "policy").cloned() {
        let policy = d.free_form(p.body, &p.scope);
        m.insert("Policy".into(), Value::Object(policy).to_json());
    }
    if m.get("Type")
        .and_then(Json::as_str)
        .unwrap_or("")
        .is_empty()
    {
        m.insert("Type".into(), Json::String(default_type.to_owned()));
    }
    (m, c)
}

fn group_scaling<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Obj {
    let (m, c) = scaling_fields(d, b, "horizontal");
    d.require(&c, b, "max");
    let ty = m.get("Type").and_then(Json::as_str).unwrap_or("");
    if ty != "horizontal"
        && let Some(a) = c.attr("type")
    {
        let span = a.expr.span();
        d.error(
            "Invalid group scaling type",
            format!("task group scaling policy had invalid type: {ty:?}"),
            &span,
        );
    }
    m
}

/// `scaling "cpu"` / `scaling "mem"` blocks of a task (vertical scaling policies).
fn task_scaling<'a>(d: &mut Decoder<'a>, c: &Content<'a>, t: &mut Obj) {
    let mut seen: BTreeMap<String, BlockRef<'a>> = BTreeMap::new();
    let mut policies = Vec::new();
    for b in c.blocks_of("scaling") {
        let label = b.label(0).to_lowercase();
        let policy_type = match label.as_str() {
            "cpu" => "vertical_cpu",
            "mem" => "vertical_mem",
            _ => {
                let span = b.labels.first().and_then(|(_, s)| s.clone());
                d.error(
                    "Invalid scaling policy name",
                    "scaling policy name must be \"cpu\" or \"mem\"",
                    &span,
                );
                continue;
            }
        };
        if let Some(prev) = seen.get(&label) {
            let at = d
                .range(&prev.def_span())
                .map_or_else(String::new, |r| r.to_string());
            d.error(
                format!("Duplicate scaling {label:?} block"),
                format!("Only one scaling {label} block is allowed. Another was defined at {at}."),
                &b.def_span(),
            );
            continue;
        }
        seen.insert(label, b.clone());
        let (m, _) = scaling_fields(d, b, policy_type);
        let ty = m.get("Type").and_then(Json::as_str).unwrap_or("");
        if ty != policy_type {
            d.error(
                "Invalid scaling policy type",
                format!("Invalid policy type, expected {ty:?} but found {policy_type:?}"),
                &b.def_span(),
            );
            continue;
        }
        policies.push(Json::Object(m));
    }
    put_list(t, "ScalingPolicies", policies);
}

/// Blocks Caravan keeps but does not interpret (Consul Connect): attributes under their
/// PascalCase names, nested blocks as objects (lists when repeated, labelled or known to be
/// lists), `config`/`meta` bodies free-form.
fn generic_block<'a>(d: &mut Decoder<'a>, b: &BlockRef<'a>) -> Json {
    const LIST_BLOCKS: &[&str] = &["upstreams", "path", "listener", "service", "expose"];
    let mut m = Obj::new();
    let mut groups: Vec<(String, Vec<Json>, bool)> = Vec::new();
    for s in b.body.iter() {
        match s {
            hcl_edit::structure::Structure::Attribute(a) => {
                let r = crate::decode::AttrRef {
                    name: a.key.as_str(),
                    name_span: a.key.span(),
                    expr: &a.value,
                    scope: Rc::clone(&b.scope),
                };
                if let Some(v) = d.value(&r) {
                    m.insert(pascal(r.name), v.to_json());
                }
            }
            hcl_edit::structure::Structure::Block(inner) => {
                let ident = inner.ident.as_str();
                let child = BlockRef {
                    ident,
                    ident_span: inner.ident.span(),
                    labels: inner
                        .labels
                        .iter()
                        .map(|l| (l.as_str().to_owned(), l.span()))
                        .collect(),
                    body: &inner.body,
                    scope: Rc::clone(&b.scope),
                };
                let v = if matches!(ident, "config" | "meta") {
                    Value::Object(d.free_form(&inner.body, &b.scope)).to_json()
                } else {
                    generic_block(d, &child)
                };
                let is_list = LIST_BLOCKS.contains(&ident) || !inner.labels.is_empty();
                match groups.iter_mut().find(|(k, _, _)| k == ident) {
                    Some((_, list, l)) => {
                        list.push(v);
                        *l = true;
                    }
                    None => groups.push((ident.to_owned(), vec![v], is_list)),
                }
            }
        }
    }
    for (k, mut list, is_list) in groups {
        let v = if is_list || list.len() > 1 {
            Json::Array(list)
        } else {
            list.pop().unwrap_or(Json::Null)
        };
        m.insert(pascal(&k), v);
    }
    Json::Object(m)
}

/// `sidecar_service` → `SidecarService`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// The scope job bodies are evaluated in: `var` and `local`.
pub(crate) fn job_scope(
    vars: BTreeMap<String, Value>,
    locals: BTreeMap<String, Value>,
) -> Rc<Scope> {
    Scope::root(BTreeMap::from([
        ("var".to_owned(), Value::Object(vars)),
        ("local".to_owned(), Value::Object(locals)),
    ]))
}
