//! The job-spec side of services (`service` blocks at group and task level and their `check`s):
//! the defaults Nomad fills in at registration, Nomad's validation and its messages, and the
//! implicit placement constraints a group using a service provider gets.
//!
//! - [`fill_api_service_defaults`]: the `api` package's part that depends on whether a key was
//!   sent (run on the raw JSON by [`crate::fill_api_defaults`]): a service-level
//!   `CheckRestart` merged into each check (the check's values win), `Grace` 1s when unset.
//!   The HCL parser already merges `check_restart` into the checks and never emits it at
//!   service level, so only a JSON body reaches the merge; the grace default applies to both.
//! - [`canonicalize_services`]: `api.Service.Canonicalize` plus `structs.Service.Canonicalize`
//!   (run by [`Job::canonicalize`]): default name, `${JOB}`-style interpolation, provider
//!   `consul`, `address_mode` `auto`, `on_update` `require_healthy` (inherited by checks),
//!   empty lists to null, check names. Nomad stores no default for a check's protocol or
//!   method (the client falls back to `http` and `GET`), so neither does Caravan. Idempotent.
//! - [`group_service_errors`] / [`task_service_errors`]: `TaskGroup.validateServices`,
//!   `validateScriptChecksInGroupServices`, `validateServices(task, networks)`,
//!   `Service.Validate` and the checks' `validateNomad` / `validateConsul`.
//! - [`add_implicit_constraints`]: the service part of the server's `jobImpliedConstraints`
//!   admission mutator; re-registering never duplicates a constraint.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::job::{CheckRestart, Constraint, Job, Service, ServiceCheck, Task, TaskGroup};
use crate::job_defaults::{SECOND, field, field_mut, format_multierror, nil_empty, set_field};
use crate::resources::NetworkResource;
use crate::time::format_go_duration;

pub const SERVICE_PROVIDER_CONSUL: &str = "consul";
pub const SERVICE_PROVIDER_NOMAD: &str = "nomad";

/// `Service.AddressMode` / `ServiceCheck.AddressMode` values.
pub const ADDRESS_MODE_AUTO: &str = "auto";
pub const ADDRESS_MODE_HOST: &str = "host";
pub const ADDRESS_MODE_DRIVER: &str = "driver";
pub const ADDRESS_MODE_ALLOC: &str = "alloc";

/// `Service.OnUpdate` / `ServiceCheck.OnUpdate` values.
pub const ON_UPDATE_REQUIRE_HEALTHY: &str = "require_healthy";
pub const ON_UPDATE_IGNORE_WARNINGS: &str = "ignore_warnings";
pub const ON_UPDATE_IGNORE: &str = "ignore";

/// `ServiceCheck.Type` values.
pub const CHECK_TYPE_HTTP: &str = "http";
pub const CHECK_TYPE_TCP: &str = "tcp";
pub const CHECK_TYPE_SCRIPT: &str = "script";
pub const CHECK_TYPE_GRPC: &str = "grpc";

/// The attribute a client sets when it runs Nomad's service discovery.
pub const ATTR_NOMAD_SERVICE_DISCOVERY: &str = "nomad.service_discovery";

/// Checks may not run more often, nor time out sooner, than this (Consul's minimum).
const MIN_CHECK_INTERVAL: i64 = SECOND;

/// The task name Nomad passes for group services while canonicalising (`${TASK}` reads it).
const GROUP_TASK: &str = "group";

/// `${NAME}` references (`args.ReplaceEnv`'s pattern).
static ENV_REF: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\$\{[a-zA-Z0-9_\-\.]+\}").ok());

/// RFC 1123 labels, case-insensitive, at most 63 characters.
static RFC1123: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$").ok());

/// The constraint groups with a nomad-provider service get.
pub fn native_service_discovery_constraint() -> Constraint {
    Constraint {
        l_target: format!("${{attr.{ATTR_NOMAD_SERVICE_DISCOVERY}}}"),
        operand: "=".to_owned(),
        r_target: "true".to_owned(),
    }
}

/// The constraint groups with a nomad-provider check get (checks came with Nomad 1.4).
pub fn native_service_checks_constraint() -> Constraint {
    Constraint {
        l_target: "${attr.nomad.version}".to_owned(),
        operand: "semver".to_owned(),
        r_target: ">= 1.4.0".to_owned(),
    }
}

/// The constraint a group or task with a consul-provider service gets.
pub fn consul_service_discovery_constraint() -> Constraint {
    Constraint {
        l_target: "${attr.consul.version}".to_owned(),
        operand: "semver".to_owned(),
        r_target: ">= 1.8.0".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw JSON defaults
// ---------------------------------------------------------------------------------------------

/// [`fill_api_service_defaults`] for every group of a raw job. The HCL parser uses it: a
/// `check_restart` without `grace` is Go's nil there, which the typed model cannot carry, so
/// it gets the 1s it would get at registration.
pub fn fill_api_job_service_defaults(job: &mut Value) {
    let groups = job
        .as_object_mut()
        .and_then(|j| field_mut(j, "TaskGroups"))
        .and_then(Value::as_array_mut);
    for tg in groups
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        fill_api_service_defaults(tg);
    }
}

/// The service defaults of the `api` package that need to know whether a key was sent, for one
/// raw task group object (its services and its tasks' services).
pub fn fill_api_service_defaults(tg: &mut Map<String, Value>) {
    fill_services_json(field_mut(tg, "Services"));
    let tasks = field_mut(tg, "Tasks").and_then(Value::as_array_mut);
    for task in tasks.into_iter().flatten().filter_map(Value::as_object_mut) {
        fill_services_json(field_mut(task, "Services"));
    }
}

fn fill_services_json(services: Option<&mut Value>) {
    let services = services.and_then(Value::as_array_mut);
    for svc in services
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        let base = field(svc, "CheckRestart")
            .and_then(Value::as_object)
            .cloned();
        let checks = field_mut(svc, "Checks").and_then(Value::as_array_mut);
        for check in checks
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            let own = field(check, "CheckRestart")
                .and_then(Value::as_object)
                .cloned();
            let Some(mut merged) = merge_check_restart(base.as_ref(), own) else {
                continue;
            };
            if field(&merged, "Grace").is_none_or(Value::is_null) {
                set_field(&mut merged, "Grace", Value::from(SECOND));
            }
            set_field(check, "CheckRestart", Value::Object(merged));
        }
    }
}

/// `api.CheckRestart.Merge`: the check's limit when positive, its grace when set, its
/// ignore_warnings when true, over the service's.
fn merge_check_restart(
    base: Option<&Map<String, Value>>,
    own: Option<Map<String, Value>>,
) -> Option<Map<String, Value>> {
    let Some(base) = base else {
        return own;
    };
    let mut merged = base.clone();
    let Some(own) = own else {
        return Some(merged);
    };
    if field(&own, "Limit")
        .and_then(Value::as_i64)
        .is_some_and(|l| l > 0)
        && let Some(l) = field(&own, "Limit")
    {
        set_field(&mut merged, "Limit", l.clone());
    }
    if let Some(g) = field(&own, "Grace").filter(|g| !g.is_null()) {
        set_field(&mut merged, "Grace", g.clone());
    }
    if field(&own, "IgnoreWarnings").and_then(Value::as_bool) == Some(true) {
        set_field(&mut merged, "IgnoreWarnings", Value::Bool(true));
    }
    Some(merged)
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation
// ---------------------------------------------------------------------------------------------

/// Canonicalises every service of the job (see the module docs).
pub fn canonicalize_services(job: &mut Job) {
    let job_name = job.name.clone();
    for tg in job.task_groups.iter_mut().flatten() {
        for svc in tg.services.iter_mut().flatten() {
            canonicalize_service(svc, &job_name, &tg.name, None);
        }
        nil_empty(&mut tg.services);
        for task in tg.tasks.iter_mut().flatten() {
            for svc in task.services.iter_mut().flatten() {
                canonicalize_service(svc, &job_name, &tg.name, Some(&task.name));
            }
            nil_empty(&mut task.services);
        }
    }
}

fn canonicalize_service(svc: &mut Service, job: &str, group: &str, task: Option<&str>) {
    if svc.name.is_empty() {
        svc.name = match task {
            Some(t) => format!("{job}-{group}-{t}"),
            None => format!("{job}-{group}"),
        };
    }
    let task_var = task.unwrap_or(GROUP_TASK);
    let vars = [
        ("JOB", job.to_owned()),
        ("TASKGROUP", group.to_owned()),
        ("TASK", task_var.to_owned()),
        ("BASE", format!("{job}-{group}-{task_var}")),
    ];
    svc.name = replace_env(&svc.name, &vars);
    if let Some(t) = task
        && svc.task_name.is_empty()
    {
        t.clone_into(&mut svc.task_name);
    }
    if svc.address_mode.is_empty() {
        svc.address_mode = ADDRESS_MODE_AUTO.to_owned();
    }
    if svc.on_update.is_empty() {
        svc.on_update = ON_UPDATE_REQUIRE_HEALTHY.to_owned();
    }
    if svc.provider.is_empty() {
        svc.provider = SERVICE_PROVIDER_CONSUL.to_owned();
    }
    nil_empty(&mut svc.tags);
    nil_empty(&mut svc.canary_tags);
    nil_empty(&mut svc.meta);
    nil_empty(&mut svc.canary_meta);
    nil_empty(&mut svc.checks);
    for check in svc.checks.iter_mut().flatten() {
        nil_empty(&mut check.args);
        nil_empty(&mut check.header);
        if check.name.is_empty() {
            check.name = format!("service: {:?} check", svc.name);
        }
        // Nomad's API conversion drops a task-level check's own task, then fills the service's.
        if check.task_name.is_empty() || task.is_some() {
            check.task_name.clone_from(&svc.task_name);
        }
        if check.on_update.is_empty() {
            check.on_update.clone_from(&svc.on_update);
        }
        check.success_before_passing = check.success_before_passing.max(0);
        check.failures_before_critical = check.failures_before_critical.max(0);
        check.failures_before_warning = check.failures_before_warning.max(0);
    }
}

/// `args.ReplaceEnv`: each `${NAME}` with a known name becomes its value; others stay.
fn replace_env(s: &str, vars: &[(&str, String)]) -> String {
    let Some(re) = ENV_REF.as_ref() else {
        return s.to_owned();
    };
    re.replace_all(s, |caps: &regex::Captures<'_>| {
        let whole = &caps[0];
        let name = &whole[2..whole.len() - 1];
        vars.iter()
            .find(|(k, _)| *k == name)
            .map_or_else(|| whole.to_owned(), |(_, v)| v.clone())
    })
    .into_owned()
}

// ---------------------------------------------------------------------------------------------
// Implicit constraints
// ---------------------------------------------------------------------------------------------

/// Adds the constraints a group's services need of its nodes (Nomad's `jobImpliedConstraints`):
/// nomad services need `${attr.nomad.service_discovery} = true`, nomad checks also
/// `${attr.nomad.version} semver >= 1.4.0` (both skipped when an equal constraint exists);
/// consul services need `${attr.consul.version} semver >= 1.8.0`, on the group for group
/// services and on the task for task services (skipped when any constraint on that attribute
/// exists, so a user's own wins).
pub fn add_implicit_constraints(job: &mut Job) {
    for tg in job.task_groups.iter_mut().flatten() {
        let all = tg.services.iter().flatten().chain(
            tg.tasks
                .iter()
                .flatten()
                .flat_map(|t| t.services.iter().flatten()),
        );
        let (mut native, mut native_checks) = (false, false);
        for svc in all {
            if svc.provider == SERVICE_PROVIDER_NOMAD {
                native = true;
                native_checks |= svc.checks.as_ref().is_some_and(|c| !c.is_empty());
            }
        }
        let consul_group = tg.services.iter().flatten().any(is_consul);
        if native {
            add_full(&mut tg.constraints, native_service_discovery_constraint());
        }
        if native_checks {
            add_full(&mut tg.constraints, native_service_checks_constraint());
        }
        if consul_group {
            add_left(&mut tg.constraints, consul_service_discovery_constraint());
        }
        for task in tg.tasks.iter_mut().flatten() {
            if task.services.iter().flatten().any(is_consul) {
                add_left(&mut task.constraints, consul_service_discovery_constraint());
            }
        }
    }
}

fn is_consul(svc: &Service) -> bool {
    svc.provider == SERVICE_PROVIDER_CONSUL || svc.provider.is_empty()
}

fn add_full(constraints: &mut Option<Vec<Constraint>>, c: Constraint) {
    let list = constraints.get_or_insert_with(Vec::new);
    if !list.contains(&c) {
        list.push(c);
    }
}

fn add_left(constraints: &mut Option<Vec<Constraint>>, c: Constraint) {
    let list = constraints.get_or_insert_with(Vec::new);
    if !list.iter().any(|e| e.l_target == c.l_target) {
        list.push(c);
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// The group-level service errors, each already wrapped as Nomad's `TaskGroup.Validate` wraps
/// them (`Task group service validation failed: ...`, `Task group service check validation
/// failed: ...`).
pub fn group_service_errors(tg: &TaskGroup) -> Vec<String> {
    let mut out = Vec::new();
    let errs = group_services(tg);
    if !errs.is_empty() {
        out.push(format!(
            "Task group service validation failed: {}",
            format_multierror(&errs)
        ));
    }
    let script = script_checks_without_task(tg);
    if !script.is_empty() {
        out.push(format!(
            "Task group service check validation failed: {}",
            format_multierror(&script)
        ));
    }
    out
}

/// Nomad's `TaskGroup.validateServices`, plus a port check of nomad-provider group services
/// (see [`group_port_errors`]).
fn group_services(tg: &TaskGroup) -> Vec<String> {
    let mut errs = Vec::new();
    let tasks = tg.tasks.as_deref().unwrap_or_default();
    let task_names: HashSet<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    // (task or "group", name, port): what a registration ID is made of.
    let mut ids: HashSet<(&str, &str, &str)> = HashSet::new();
    let mut duplicates: BTreeSet<String> = BTreeSet::new();
    let mut providers: HashSet<&str> = HashSet::new();

    for task in tasks {
        for svc in task.services.iter().flatten() {
            if !svc.task_name.is_empty() && svc.task_name != task.name {
                errs.push(format!(
                    "Service {} is invalid: may only specify task the service belongs to, got {:?}",
                    svc.name, svc.task_name
                ));
            }
            for check in svc.checks.iter().flatten() {
                if !check.task_name.is_empty() && check.task_name != task.name {
                    errs.push(format!(
                        "Check {} is invalid: may only specify task the check belongs to, got {:?}",
                        check.name, check.task_name
                    ));
                }
            }
            let id = (
                task.name.as_str(),
                svc.name.as_str(),
                svc.port_label.as_str(),
            );
            if !ids.insert(id) {
                duplicates.insert(unique_string(id));
            }
            providers.insert(svc.provider.as_str());
        }
    }
    for (i, svc) in tg.services.iter().flatten().enumerate() {
        let id = (GROUP_TASK, svc.name.as_str(), svc.port_label.as_str());
        if !ids.insert(id) {
            duplicates.insert(unique_string(id));
        }
        providers.insert(svc.provider.as_str());
        let svc_errs = service_errors(svc);
        if !svc_errs.is_empty() {
            errs.push(format!(
                "Service[{i}] {} validation failed: {}",
                svc.name,
                format_multierror(&svc_errs)
            ));
            continue;
        }
        if svc.address_mode == ADDRESS_MODE_DRIVER {
            errs.push(format!(
                "service {:?} cannot use address_mode=\"driver\", only services defined in a \"task\" block can use this mode",
                svc.name
            ));
        }
        for check in svc.checks.iter().flatten() {
            if check.task_name.is_empty() {
                continue;
            }
            if check.address_mode == ADDRESS_MODE_DRIVER {
                // Nomad names the service here, not the check.
                errs.push(format!(
                    "Check {:?} invalid: cannot use address_mode=\"driver\", only checks defined in a \"task\" service block can use this mode",
                    svc.name
                ));
            }
            if !task_names.contains(check.task_name.as_str()) {
                errs.push(format!(
                    "Check {} invalid: refers to non-existent task {}",
                    check.name, check.task_name
                ));
            }
        }
    }
    if !duplicates.is_empty() {
        let list: Vec<String> = duplicates.into_iter().collect();
        errs.push(format!("Services are not unique: [{}]", list.join(" ")));
    }
    if providers.len() > 1 {
        errs.push(
            "Multiple service providers used: task group services must use the same provider"
                .to_owned(),
        );
    }
    errs.extend(group_port_errors(tg));
    errs
}

/// go-set's `StringFunc` element of a duplicate: `task->name[:port]`.
fn unique_string((task, name, port): (&str, &str, &str)) -> String {
    if port.is_empty() {
        format!("{task}->{name}")
    } else {
        format!("{task}->{name}:{port}")
    }
}

/// Port labels of nomad-provider group services (and their checks) that name no port of the
/// group network. Nomad accepts these and fails every registration on the client
/// (`port label not found`); Caravan refuses them at submit, with the task-level message.
/// Numeric ports and interpolated labels are left alone; consul services are not checked
/// (Connect injects its own labels).
fn group_port_errors(tg: &TaskGroup) -> Vec<String> {
    let known = port_labels(tg.networks.as_deref().unwrap_or_default());
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for svc in tg.services.iter().flatten() {
        if svc.provider != SERVICE_PROVIDER_NOMAD {
            continue;
        }
        let checks = svc.checks.iter().flatten().map(|c| c.port_label.as_str());
        for label in std::iter::once(svc.port_label.as_str()).chain(checks) {
            if label.is_empty() || go_atoi(label).is_some() || label.contains("${") {
                continue;
            }
            wanted.entry(label).or_default().insert(svc.name.as_str());
        }
    }
    missing_port_errors(&wanted, &known)
}

fn port_labels(networks: &[NetworkResource]) -> HashSet<&str> {
    networks
        .iter()
        .flat_map(|n| {
            n.reserved_ports
                .iter()
                .flatten()
                .chain(n.dynamic_ports.iter().flatten())
        })
        .map(|p| p.label.as_str())
        .collect()
}

fn missing_port_errors(
    wanted: &BTreeMap<&str, BTreeSet<&str>>,
    known: &HashSet<&str>,
) -> Vec<String> {
    wanted
        .iter()
        .filter(|(label, _)| !known.contains(*label))
        .map(|(label, names)| {
            let names: Vec<&str> = names.iter().copied().collect();
            format!(
                "port label {label:?} referenced by services {} does not exist",
                names.join(", ")
            )
        })
        .collect()
}

/// Nomad's `validateScriptChecksInGroupServices`: a group script check must know its task.
fn script_checks_without_task(tg: &TaskGroup) -> Vec<String> {
    let mut errs = Vec::new();
    for svc in tg.services.iter().flatten() {
        if !svc.task_name.is_empty() {
            continue;
        }
        for check in svc.checks.iter().flatten() {
            if check.r#type == CHECK_TYPE_SCRIPT && check.task_name.is_empty() {
                errs.push(format!(
                    "Service [{}]->{} or Check {} must specify task parameter",
                    tg.name, svc.name, check.name
                ));
            }
        }
    }
    errs
}

/// Nomad's `validateServices(task, group networks)`: the task's services, their checks and
/// the ports they name, as the one (multierror) entry Nomad adds to the task's errors.
pub fn task_service_errors(
    task: &Task,
    group_networks: Option<&[NetworkResource]>,
) -> Option<String> {
    let mut errs = Vec::new();
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut known_services: HashSet<String> = HashSet::new();
    for (i, svc) in task.services.iter().flatten().enumerate() {
        let svc_errs = service_errors(svc);
        if !svc_errs.is_empty() {
            errs.push(format!(
                "service[{i}] {:?} validation failed: {}",
                svc.name,
                format_multierror(&svc_errs)
            ));
        }
        if svc.address_mode == ADDRESS_MODE_ALLOC {
            errs.push(format!(
                "service {:?} cannot use address_mode=\"alloc\", only services defined in a \"group\" block can use this mode",
                svc.name
            ));
        }
        // Nomad's key is the plain concatenation of name and port.
        if !known_services.insert(format!("{}{}", svc.name, svc.port_label)) {
            errs.push(format!("service {:?} is duplicate", svc.name));
        }
        // Numeric ports are fine in driver mode; every other port must be a known label.
        let numeric_driver_port =
            svc.address_mode == ADDRESS_MODE_DRIVER && go_atoi(&svc.port_label).is_some();
        if !svc.port_label.is_empty() && !numeric_driver_port {
            wanted
                .entry(svc.port_label.as_str())
                .or_default()
                .insert(svc.name.as_str());
        }
        if svc.connect.is_some() {
            errs.push(format!(
                "service {:?} cannot have \"connect\" block, only services defined in a \"group\" block can",
                svc.name
            ));
        }
        let mut known_checks: HashSet<&str> = HashSet::new();
        for check in svc.checks.iter().flatten() {
            if !known_checks.insert(check.name.as_str()) {
                errs.push(format!("check {:?} is duplicate", check.name));
            }
            if check.address_mode == ADDRESS_MODE_ALLOC {
                // Nomad names the service here, not the check.
                errs.push(format!(
                    "check {:?} cannot use address_mode=\"alloc\", only checks defined in a \"group\" service block can use this mode",
                    svc.name
                ));
            }
            if !requires_port(check) {
                continue;
            }
            let port = if check.port_label.is_empty() {
                svc.port_label.as_str()
            } else {
                check.port_label.as_str()
            };
            if port.is_empty() {
                errs.push(format!("check {:?} is missing a port", check.name));
                continue;
            }
            match go_atoi(port) {
                Some(n) if check.address_mode == ADDRESS_MODE_DRIVER => {
                    if n <= 0 {
                        errs.push(format!(
                            "check {:?} has invalid numeric port {n}",
                            check.name
                        ));
                    }
                }
                Some(n) => errs.push(format!(
                    "check {:?} cannot use a numeric port {n} without setting address_mode=\"driver\"",
                    check.name
                )),
                None => {
                    wanted.entry(port).or_default().insert(svc.name.as_str());
                }
            }
        }
    }
    // The group's first network, then the task's own (deprecated) networks.
    let mut known: HashSet<&str> = group_networks
        .and_then(<[NetworkResource]>::first)
        .map(|n| port_labels(std::slice::from_ref(n)))
        .unwrap_or_default();
    if let Some(r) = &task.resources {
        known.extend(port_labels(r.networks.as_deref().unwrap_or_default()));
    }
    errs.extend(missing_port_errors(&wanted, &known));
    (!errs.is_empty()).then(|| format_multierror(&errs))
}

/// Go's `strconv.Atoi` on a port label: an optional sign and decimal digits.
fn go_atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

fn requires_port(check: &ServiceCheck) -> bool {
    matches!(
        check.r#type.as_str(),
        CHECK_TYPE_GRPC | CHECK_TYPE_HTTP | CHECK_TYPE_TCP
    )
}

/// Nomad's `Service.Validate`: the errors of one service, unwrapped.
pub fn service_errors(svc: &Service) -> Vec<String> {
    let mut errs = Vec::new();
    if !valid_service_name(&svc.name) {
        errs.push(format!(
            "Service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes and must be no longer than 63 characters: {:?}",
            svc.name
        ));
    }
    match svc.address_mode.as_str() {
        "" | ADDRESS_MODE_AUTO => {}
        ADDRESS_MODE_HOST | ADDRESS_MODE_DRIVER | ADDRESS_MODE_ALLOC => {
            if !svc.address.is_empty() {
                errs.push("Service address_mode must be \"auto\" if address is set".to_owned());
            }
        }
        other => errs.push(format!(
            "Service address_mode must be \"auto\", \"host\", or \"driver\"; not {other:?}"
        )),
    }
    match svc.on_update.as_str() {
        "" | ON_UPDATE_IGNORE | ON_UPDATE_REQUIRE_HEALTHY | ON_UPDATE_IGNORE_WARNINGS => {}
        other => errs.push(format!(
            "Service on_update must be \"require_healthy\", \"ignore_warnings\", or \"ignore\"; not {other:?}"
        )),
    }
    match svc.provider.as_str() {
        SERVICE_PROVIDER_CONSUL => consul_service_errors(svc, &mut errs),
        SERVICE_PROVIDER_NOMAD => nomad_service_errors(svc, &mut errs),
        other => errs.push(format!(
            "Service provider must be \"consul\", or \"nomad\"; not {other:?}"
        )),
    }
    errs
}

/// The name with `${...}` references replaced by a placeholder, checked against RFC 1123.
fn valid_service_name(name: &str) -> bool {
    let stripped = ENV_REF.as_ref().map_or_else(
        || name.to_owned(),
        |re| re.replace_all(name, "ENV-VAR").into_owned(),
    );
    RFC1123.as_ref().is_some_and(|re| re.is_match(&stripped))
}

fn check_port_error(svc: &Service, check: &ServiceCheck) -> Option<String> {
    (svc.port_label.is_empty() && check.port_label.is_empty() && requires_port(check)).then(|| {
        format!(
            "Check {} invalid: check requires a port but neither check nor service {:?} have a port",
            check.name, svc.name
        )
    })
}

fn consul_service_errors(svc: &Service, errs: &mut Vec<String>) {
    let sidecar = svc
        .connect
        .as_ref()
        .and_then(|c| c.get("SidecarService"))
        .is_some_and(|s| !s.is_null());
    for check in svc.checks.iter().flatten() {
        if let Some(e) = check_port_error(svc, check) {
            errs.push(e);
            continue;
        }
        if check.r#type == CHECK_TYPE_TCP && sidecar {
            errs.push(format!(
                "Check {} invalid: tcp checks are not valid for Connect enabled services",
                check.name
            ));
            continue;
        }
        if let Some(e) = consul_check_error(check) {
            errs.push(format!("Check {} invalid: {e}", check.name));
        }
    }
}

fn nomad_service_errors(svc: &Service, errs: &mut Vec<String>) {
    for check in svc.checks.iter().flatten() {
        if let Some(e) = check_port_error(svc, check) {
            errs.push(e);
            continue;
        }
        if let Some(e) = nomad_check_error(check) {
            errs.push(e);
        }
    }
    if svc.connect.is_some() {
        errs.push("Service with provider nomad cannot include Connect blocks".to_owned());
    }
}

/// Nomad's `ServiceCheck.validateCommon`: the first problem only.
fn common_check_error(check: &ServiceCheck, allowed: &[&str]) -> Option<String> {
    let kind = check.r#type.to_lowercase();
    if !allowed.contains(&kind.as_str()) {
        return Some(format!(
            "invalid check type ({kind:?}), must be one of {}",
            allowed.join(", ")
        ));
    }
    if kind == CHECK_TYPE_HTTP {
        if check.path.is_empty() {
            return Some("http type must have http path".to_owned());
        }
        match parse_url_path(&check.path) {
            Err(()) => return Some("http type must have valid http path".to_owned()),
            Ok(true) => return Some("http type must have relative http path".to_owned()),
            Ok(false) => {}
        }
    }
    if kind == CHECK_TYPE_SCRIPT && check.command.is_empty() {
        return Some("script type must have a valid script path".to_owned());
    }
    let min = format_go_duration(MIN_CHECK_INTERVAL);
    if check.interval == 0 {
        return Some(format!(
            "missing required value interval. Interval cannot be less than {min}"
        ));
    }
    if check.interval < MIN_CHECK_INTERVAL {
        return Some(format!(
            "interval ({}) cannot be lower than {min}",
            format_go_duration(check.interval)
        ));
    }
    if check.timeout == 0 {
        return Some(format!(
            "missing required value timeout. Timeout cannot be less than {min}"
        ));
    }
    if check.timeout < MIN_CHECK_INTERVAL {
        return Some(format!(
            "timeout ({}) is lower than required minimum timeout {min}",
            format_go_duration(check.timeout)
        ));
    }
    if !matches!(
        check.initial_status.as_str(),
        "" | "passing" | "warning" | "critical"
    ) {
        return Some(format!(
            "invalid initial check state ({}), must be one of \"passing\", \"warning\", \"critical\" or empty",
            check.initial_status
        ));
    }
    match check.address_mode.as_str() {
        "" | ADDRESS_MODE_HOST | ADDRESS_MODE_DRIVER | ADDRESS_MODE_ALLOC => {}
        ADDRESS_MODE_AUTO => {
            return Some("invalid address_mode \"auto\" - auto only valid for services".to_owned());
        }
        other => return Some(format!("invalid address_mode {other:?}")),
    }
    match check.on_update.as_str() {
        "" | ON_UPDATE_IGNORE | ON_UPDATE_REQUIRE_HEALTHY | ON_UPDATE_IGNORE_WARNINGS => {}
        other => {
            return Some(format!(
                "on_update must be \"require_healthy\", \"ignore_warnings\", or \"ignore\"; got {other:?}"
            ));
        }
    }
    if let Some(cr) = &check.check_restart {
        if check.on_update == ON_UPDATE_IGNORE {
            return Some(format!(
                "on_update value {:?} is not compatible with check_restart",
                check.on_update
            ));
        }
        if !cr.ignore_warnings && check.on_update == ON_UPDATE_IGNORE_WARNINGS {
            return Some(format!(
                "on_update value {:?} not supported with check_restart ignore_warnings value \"false\"",
                check.on_update
            ));
        }
        let cr_errs = check_restart_errors(cr);
        if !cr_errs.is_empty() {
            return Some(format_multierror(&cr_errs));
        }
    }
    None
}

/// Nomad's `CheckRestart.Validate`.
pub fn check_restart_errors(cr: &CheckRestart) -> Vec<String> {
    let mut errs = Vec::new();
    if cr.limit < 0 {
        errs.push(format!(
            "limit must be greater than or equal to 0 but found {}",
            cr.limit
        ));
    }
    if cr.grace < 0 {
        // Nomad prints the duration's nanoseconds here.
        errs.push(format!(
            "grace period must be greater than or equal to 0 but found {}",
            cr.grace
        ));
    }
    errs
}

/// Nomad's `ServiceCheck.validateNomad`: the first problem only.
fn nomad_check_error(check: &ServiceCheck) -> Option<String> {
    if let Some(e) = common_check_error(check, &[CHECK_TYPE_TCP, CHECK_TYPE_HTTP]) {
        return Some(e);
    }
    let consul_only =
        |what: &str| Some(format!("{what} may only be set for Consul service checks"));
    if check.expose {
        return consul_only("expose");
    }
    if check.on_update == ON_UPDATE_IGNORE_WARNINGS {
        return Some(
            "on_update may only be set to ignore_warnings for Consul service checks".to_owned(),
        );
    }
    if check
        .check_restart
        .as_ref()
        .is_some_and(|c| c.ignore_warnings)
    {
        return Some(
            "ignore_warnings on check_restart only supported for Consul service checks".to_owned(),
        );
    }
    if check.address_mode == ADDRESS_MODE_DRIVER {
        return consul_only("address_mode = driver");
    }
    if check.r#type == CHECK_TYPE_HTTP && !check.method.is_empty() && !is_http_method(&check.method)
    {
        return Some(format!(
            "method type {:?} not supported in Nomad http check",
            check.method
        ));
    }
    if check.success_before_passing != 0 {
        return consul_only("success_before_passing");
    }
    if check.failures_before_critical != 0 {
        return consul_only("failures_before_critical");
    }
    if check.failures_before_warning != 0 {
        return consul_only("failures_before_warning");
    }
    if !check.tls_server_name.is_empty() {
        return consul_only("tls_server_name");
    }
    None
}

/// Nomad's `ServiceCheck.validateConsul`: the first problem only.
fn consul_check_error(check: &ServiceCheck) -> Option<String> {
    let allowed = [
        CHECK_TYPE_GRPC,
        CHECK_TYPE_TCP,
        CHECK_TYPE_HTTP,
        CHECK_TYPE_SCRIPT,
    ];
    if let Some(e) = common_check_error(check, &allowed) {
        return Some(e);
    }
    let kind = check.r#type.to_lowercase();
    if check.expose && kind != CHECK_TYPE_GRPC && kind != CHECK_TYPE_HTTP {
        return Some("expose may only be set on HTTP or gRPC checks".to_owned());
    }
    let pass_fail = [CHECK_TYPE_TCP, CHECK_TYPE_HTTP, CHECK_TYPE_GRPC];
    let counters = [
        ("success_before_passing", check.success_before_passing),
        ("failures_before_critical", check.failures_before_critical),
        ("failures_before_warning", check.failures_before_warning),
    ];
    for (name, value) in counters {
        if value < 0 {
            return Some(format!("{name} must be non-negative"));
        }
        if value > 0 && !pass_fail.contains(&check.r#type.as_str()) {
            return Some(format!(
                "{name} not supported for check of type {:?}",
                check.r#type
            ));
        }
    }
    None
}

/// Go's `helper.IsMethodHTTP`.
fn is_http_method(m: &str) -> bool {
    matches!(
        m.to_uppercase().as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE"
    )
}

/// What Go's `url.Parse` says of a check path: `Err` when it fails to parse, else whether the
/// URL is absolute (has a scheme).
fn parse_url_path(raw: &str) -> Result<bool, ()> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(());
    }
    let (before_fragment, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    bad_escape(fragment)?;
    if before_fragment == "*" {
        return Ok(false);
    }
    // A scheme is a letter followed by letters, digits, `+`, `-` or `.`, then `:`.
    let mut scheme_end = None;
    for (i, c) in before_fragment.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(()),
            ':' => {
                scheme_end = Some(i);
                break;
            }
            _ => break,
        }
    }
    if scheme_end.is_some() {
        return Ok(true);
    }
    let path = before_fragment
        .split_once('?')
        .map_or(before_fragment, |(p, _)| p);
    if !path.starts_with('/') {
        let first_segment = path.split('/').next().unwrap_or_default();
        if first_segment.contains(':') {
            return Err(());
        }
    }
    bad_escape(path)?;
    Ok(false)
}

/// A `%` not followed by two hex digits.
fn bad_escape(s: &str) -> Result<(), ()> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok =
                b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(());
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_as_go_parses_them() {
        assert_eq!(parse_url_path("/health"), Ok(false));
        assert_eq!(parse_url_path("health?x=1"), Ok(false));
        assert_eq!(parse_url_path("http://x/health"), Ok(true));
        assert_eq!(parse_url_path(":80/x"), Err(()));
        assert_eq!(parse_url_path("a:b"), Ok(true));
        assert_eq!(parse_url_path("1a:b"), Err(()));
        assert_eq!(parse_url_path("/a%zz"), Err(()));
        assert_eq!(parse_url_path("/a\nb"), Err(()));
    }

    #[test]
    fn env_references_are_replaced_only_when_known() {
        let vars = [("JOB", "j".to_owned())];
        assert_eq!(replace_env("${JOB}-${OTHER}", &vars), "j-${OTHER}");
    }
}
