#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Services and checks in jobs: Nomad's defaults, its validation messages, and the implicit
//! constraints (SERVICES.md §4.1, §5).

use caravan_structs::*;
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// A service job `web` (group `g` with a dynamic port `http`, task `t`), with these group and
/// task services, decoded as the server decodes a request body.
fn job_with(group_services: Value, task_services: Value) -> Job {
    let mut v = json!({
        "ID": "web", "Name": "web",
        "TaskGroups": [{
            "Name": "g",
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Services": group_services,
            "Tasks": [{"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sleep"},
                "Services": task_services}]
        }]
    });
    fill_api_defaults(&mut v);
    let mut job: Job = go_json::from_value(v).unwrap();
    job.canonicalize();
    job
}

fn group(job: &Job) -> &TaskGroup {
    &job.task_groups.as_ref().unwrap()[0]
}

fn task(job: &Job) -> &Task {
    &group(job).tasks.as_ref().unwrap()[0]
}

fn group_svc(job: &Job, i: usize) -> &Service {
    &group(job).services.as_ref().unwrap()[i]
}

fn task_svc(job: &Job, i: usize) -> &Service {
    &task(job).services.as_ref().unwrap()[i]
}

fn errors(job: &Job) -> String {
    job.validate().unwrap_err().to_string()
}

fn assert_invalid(job: &Job, texts: &[&str]) {
    let err = errors(job);
    for t in texts {
        assert!(err.contains(t), "missing {t:?} in:\n{err}");
    }
}

fn nomad_check(extra: Value) -> Value {
    let mut c = json!({"Type": "http", "Path": "/health", "Interval": 10 * S, "Timeout": 2 * S});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn group_nomad_service(check: Value) -> Value {
    json!([{"Name": "api", "Provider": "nomad", "PortLabel": "http", "Checks": [check]}])
}

// ---------------------------------------------------------------------------------------------
// Canonicalisation
// ---------------------------------------------------------------------------------------------

#[test]
fn service_defaults_are_nomads() {
    let job = job_with(
        json!([{"Tags": [], "CanaryTags": [], "Checks": [{"Type": "tcp", "PortLabel": "http",
            "Interval": S, "Timeout": S, "Args": [], "Header": {}}]}]),
        json!([{"Provider": "consul"}]),
    );
    let g = group_svc(&job, 0);
    assert_eq!(g.name, "web-g");
    assert_eq!(g.provider, SERVICE_PROVIDER_CONSUL);
    assert_eq!(g.address_mode, ADDRESS_MODE_AUTO);
    assert_eq!(g.on_update, ON_UPDATE_REQUIRE_HEALTHY);
    assert_eq!(g.tags, None);
    assert_eq!(g.canary_tags, None);
    assert_eq!(g.task_name, "", "group services name no task");
    let c = &g.checks.as_ref().unwrap()[0];
    assert_eq!(c.name, "service: \"web-g\" check");
    assert_eq!(c.on_update, ON_UPDATE_REQUIRE_HEALTHY);
    assert_eq!((c.args.clone(), c.header.clone()), (None, None));
    // Nomad stores no protocol or method default; the client applies http and GET.
    assert_eq!((c.protocol.as_str(), c.method.as_str()), ("", ""));

    let t = task_svc(&job, 0);
    assert_eq!(t.name, "web-g-t");
    assert_eq!(t.task_name, "t");
}

#[test]
fn empty_service_lists_become_null() {
    let job = job_with(json!([]), json!([]));
    assert_eq!(group(&job).services, None);
    assert_eq!(task(&job).services, None);
}

#[test]
fn name_variables_are_replaced_at_submit_and_runtime_ones_kept() {
    let job = job_with(
        json!([{"Name": "${JOB}-${TASKGROUP}-${TASK}-x"}, {"Name": "${BASE}"}]),
        json!([{"Name": "${BASE}-${NOMAD_ALLOC_INDEX}"}]),
    );
    assert_eq!(group_svc(&job, 0).name, "web-g-group-x");
    assert_eq!(group_svc(&job, 1).name, "web-g-group");
    assert_eq!(task_svc(&job, 0).name, "web-g-t-${NOMAD_ALLOC_INDEX}");
}

#[test]
fn checks_inherit_the_services_on_update_and_task() {
    let job = job_with(
        json!([{"Name": "a", "OnUpdate": "ignore", "TaskName": "t",
            "Checks": [{"Type": "tcp"}, {"Type": "tcp", "OnUpdate": "require_healthy"}]}]),
        json!(null),
    );
    let checks = group_svc(&job, 0).checks.as_ref().unwrap();
    assert_eq!(checks[0].on_update, ON_UPDATE_IGNORE);
    assert_eq!(checks[0].task_name, "t");
    assert_eq!(checks[1].on_update, ON_UPDATE_REQUIRE_HEALTHY);
}

#[test]
fn service_check_restart_is_merged_into_checks_with_a_default_grace() {
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad", "PortLabel": "http",
        "CheckRestart": {"Limit": 3, "Grace": 5 * S},
        "Checks": [
            nomad_check(json!({"Name": "inherits"})),
            nomad_check(json!({"Name": "own", "CheckRestart": {"Limit": 1}})),
            nomad_check(json!({"Name": "zero", "CheckRestart": {"Limit": 0, "Grace": 0}})),
        ]}]),
        json!([{"Name": "b", "Provider": "nomad", "PortLabel": "http",
            "Checks": [nomad_check(json!({"CheckRestart": {"Limit": 2}}))]}]),
    );
    let checks = group_svc(&job, 0).checks.as_ref().unwrap();
    let cr = |i: usize| checks[i].check_restart.clone().unwrap();
    assert_eq!((cr(0).limit, cr(0).grace), (3, 5 * S));
    assert_eq!(
        (cr(1).limit, cr(1).grace),
        (1, 5 * S),
        "the check's limit wins"
    );
    assert_eq!(
        (cr(2).limit, cr(2).grace),
        (3, 0),
        "a zero limit does not, a set grace does"
    );
    let own = task_svc(&job, 0).checks.as_ref().unwrap()[0]
        .check_restart
        .clone()
        .unwrap();
    assert_eq!((own.limit, own.grace), (2, S), "grace defaults to 1s");
    // The service-level block is not part of the stored service (Nomad's struct has none).
    let stored = serde_json::to_value(group_svc(&job, 0)).unwrap();
    assert!(stored.get("CheckRestart").is_none());
    job.validate().unwrap();
}

#[test]
fn checks_without_check_restart_get_none() {
    let job = job_with(group_nomad_service(nomad_check(json!({}))), json!(null));
    assert_eq!(
        group_svc(&job, 0).checks.as_ref().unwrap()[0].check_restart,
        None
    );
}

#[test]
fn canonicalizing_twice_is_the_same_as_once() {
    let mut job = job_with(
        json!([{"Name": "${JOB}-api", "Provider": "nomad", "PortLabel": "http", "Tags": [],
            "CheckRestart": {"Limit": 2},
            "Checks": [nomad_check(json!({}))]}]),
        json!([{"PortLabel": "http", "Checks": [{"Type": "tcp", "Interval": S, "Timeout": S}]}]),
    );
    let once = job.clone();
    job.canonicalize();
    assert_eq!(job, once);

    // Through the JSON the server stores and a client re-submits, too.
    let mut again = serde_json::to_value(&once).unwrap();
    fill_api_defaults(&mut again);
    let mut again: Job = go_json::from_value(again).unwrap();
    again.canonicalize();
    assert_eq!(again, once);
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_nomad_and_consul_jobs_pass() {
    job_with(
        group_nomad_service(nomad_check(json!({"Method": "post", "Protocol": "https"}))),
        json!([{"Name": "t-svc", "Provider": "nomad", "PortLabel": "http",
            "Checks": [{"Type": "tcp", "Interval": S, "Timeout": S}]}]),
    )
    .validate()
    .unwrap();
    // Consul services keep validating as in Nomad (script and grpc checks included).
    job_with(
        json!([{"Name": "c", "PortLabel": "http", "Checks": [
            {"Type": "grpc", "Interval": S, "Timeout": S, "SuccessBeforePassing": 2},
            {"Type": "script", "Command": "/bin/true", "TaskName": "t", "Interval": S, "Timeout": S}]}]),
        json!([{"Name": "d", "PortLabel": "http"}]),
    )
    .validate()
    .unwrap();
}

#[test]
fn invalid_provider() {
    let job = job_with(json!([{"Name": "a", "Provider": "grpc"}]), json!(null));
    assert_invalid(
        &job,
        &[
            "Task group g validation failed: ",
            "Task group service validation failed: ",
            "Service[0] a validation failed: 1 error occurred:\n\t* Service provider must be \"consul\", or \"nomad\"; not \"grpc\"",
        ],
    );
    let job = job_with(json!(null), json!([{"Name": "a", "Provider": "grpc"}]));
    assert_invalid(
        &job,
        &[
            "Task t validation failed: ",
            "service[0] \"a\" validation failed: 1 error occurred:\n\t* Service provider must be \"consul\", or \"nomad\"; not \"grpc\"",
        ],
    );
}

#[test]
fn mixing_providers_in_a_group() {
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad"}]),
        json!([{"Name": "b", "Provider": "consul"}]),
    );
    assert_invalid(
        &job,
        &["Multiple service providers used: task group services must use the same provider"],
    );
}

#[test]
fn duplicate_services_and_checks() {
    let job = job_with(
        json!([
            {"Name": "a", "Provider": "nomad", "PortLabel": "http"},
            {"Name": "a", "Provider": "nomad", "PortLabel": "http"},
            {"Name": "b", "Provider": "nomad"},
            {"Name": "b", "Provider": "nomad"}
        ]),
        json!(null),
    );
    assert_invalid(&job, &["Services are not unique: [group->a:http group->b]"]);

    let job = job_with(
        json!(null),
        json!([
            {"Name": "a", "Provider": "nomad", "PortLabel": "http",
                "Checks": [nomad_check(json!({"Name": "c"})), nomad_check(json!({"Name": "c"}))]},
            {"Name": "a", "Provider": "nomad", "PortLabel": "http"}
        ]),
    );
    assert_invalid(
        &job,
        &[
            "service \"a\" is duplicate",
            "check \"c\" is duplicate",
            "Services are not unique: [t->a:http]",
        ],
    );
}

#[test]
fn address_and_address_mode() {
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad", "Address": "10.0.0.1", "AddressMode": "host"},
            {"Name": "b", "Provider": "nomad", "AddressMode": "bogus"},
            {"Name": "c", "Provider": "nomad", "AddressMode": "driver"}]),
        json!([{"Name": "d", "Provider": "nomad", "AddressMode": "alloc"}]),
    );
    assert_invalid(
        &job,
        &[
            "Service[0] a validation failed: 1 error occurred:\n\t* Service address_mode must be \"auto\" if address is set",
            "Service[1] b validation failed: 1 error occurred:\n\t* Service address_mode must be \"auto\", \"host\", or \"driver\"; not \"bogus\"",
            "service \"c\" cannot use address_mode=\"driver\", only services defined in a \"task\" block can use this mode",
            "service \"d\" cannot use address_mode=\"alloc\", only services defined in a \"group\" block can use this mode",
        ],
    );
}

#[test]
fn unknown_port_labels() {
    let job = job_with(
        json!(null),
        json!([{"Name": "a", "Provider": "nomad", "PortLabel": "nope"},
            {"Name": "b", "Provider": "nomad", "PortLabel": "nope"},
            {"Name": "c", "Provider": "nomad", "PortLabel": "http",
                "Checks": [nomad_check(json!({"PortLabel": "9090"}))]}]),
    );
    assert_invalid(
        &job,
        &[
            "port label \"nope\" referenced by services a, b does not exist",
            "check \"service: \\\"c\\\" check\" cannot use a numeric port 9090 without setting address_mode=\"driver\"",
        ],
    );
    // Group nomad services are checked against the group network (numeric ports pass).
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad", "PortLabel": "nope"},
            {"Name": "b", "Provider": "nomad", "PortLabel": "8080"}]),
        json!(null),
    );
    assert_invalid(
        &job,
        &["port label \"nope\" referenced by services a does not exist"],
    );
    assert!(!errors(&job).contains("8080"));
}

#[test]
fn rfc1123_service_names() {
    let job = job_with(
        json!([{"Name": "bad_name", "Provider": "nomad"},
            {"Name": "ok-${NOMAD_ALLOC_INDEX}", "Provider": "nomad"}]),
        json!(null),
    );
    let err = errors(&job);
    assert!(err.contains(
        "Service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes and must be no longer than 63 characters: \"bad_name\""
    ), "{err}");
    assert!(!err.contains("Service[1]"), "{err}");
    let long = "a".repeat(64);
    let job = job_with(json!([{"Name": long, "Provider": "nomad"}]), json!(null));
    assert_invalid(&job, &["must be no longer than 63 characters"]);
}

#[test]
fn nomad_services_refuse_connect() {
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad", "Connect": {"Native": true}}]),
        json!(null),
    );
    assert_invalid(
        &job,
        &["Service with provider nomad cannot include Connect blocks"],
    );
}

#[test]
fn nomad_check_types() {
    for (kind, extra) in [
        ("script", json!({"Command": "/bin/true"})),
        ("grpc", json!({})),
    ] {
        let mut check = nomad_check(extra);
        check["Type"] = json!(kind);
        let job = job_with(group_nomad_service(check), json!(null));
        assert_invalid(
            &job,
            &[&format!(
                "invalid check type (\"{kind}\"), must be one of tcp, http"
            )],
        );
    }
}

#[test]
fn nomad_check_intervals_and_timeouts() {
    let cases = [
        (
            json!({"Interval": 0}),
            "missing required value interval. Interval cannot be less than 1s",
        ),
        (
            json!({"Interval": S / 2}),
            "interval (500ms) cannot be lower than 1s",
        ),
        (
            json!({"Timeout": 0}),
            "missing required value timeout. Timeout cannot be less than 1s",
        ),
        (
            json!({"Timeout": S / 2}),
            "timeout (500ms) is lower than required minimum timeout 1s",
        ),
    ];
    for (extra, text) in cases {
        let job = job_with(group_nomad_service(nomad_check(extra)), json!(null));
        assert_invalid(&job, &[text]);
    }
}

#[test]
fn nomad_http_check_paths_and_methods() {
    let cases = [
        (json!({"Path": ""}), "http type must have http path"),
        (
            json!({"Path": ":bad"}),
            "http type must have valid http path",
        ),
        (
            json!({"Path": "http://example.com/health"}),
            "http type must have relative http path",
        ),
        (
            json!({"Method": "FETCH"}),
            "method type \"FETCH\" not supported in Nomad http check",
        ),
    ];
    for (extra, text) in cases {
        let job = job_with(group_nomad_service(nomad_check(extra)), json!(null));
        assert_invalid(&job, &[text]);
    }
}

#[test]
fn nomad_checks_need_a_port() {
    let job = job_with(
        json!([{"Name": "a", "Provider": "nomad", "Checks": [nomad_check(json!({"Name": "c"}))]}]),
        json!(null),
    );
    assert_invalid(
        &job,
        &["Check c invalid: check requires a port but neither check nor service \"a\" have a port"],
    );
}

#[test]
fn consul_only_check_settings() {
    let cases = [
        (
            json!({"SuccessBeforePassing": 2}),
            "success_before_passing may only be set for Consul service checks",
        ),
        (
            json!({"FailuresBeforeCritical": 2}),
            "failures_before_critical may only be set for Consul service checks",
        ),
        (
            json!({"FailuresBeforeWarning": 2}),
            "failures_before_warning may only be set for Consul service checks",
        ),
        (
            json!({"TLSServerName": "x"}),
            "tls_server_name may only be set for Consul service checks",
        ),
        (
            json!({"Expose": true}),
            "expose may only be set for Consul service checks",
        ),
        (
            json!({"AddressMode": "driver"}),
            "address_mode = driver may only be set for Consul service checks",
        ),
        (
            json!({"OnUpdate": "ignore_warnings"}),
            "on_update may only be set to ignore_warnings for Consul service checks",
        ),
        (
            json!({"CheckRestart": {"Limit": 1, "IgnoreWarnings": true}}),
            "ignore_warnings on check_restart only supported for Consul service checks",
        ),
    ];
    for (extra, text) in cases {
        let job = job_with(group_nomad_service(nomad_check(extra)), json!(null));
        assert_invalid(&job, &[text]);
    }
}

#[test]
fn check_address_mode_auto_is_for_services_only() {
    let job = job_with(
        group_nomad_service(nomad_check(json!({"AddressMode": "auto"}))),
        json!(null),
    );
    assert_invalid(
        &job,
        &["invalid address_mode \"auto\" - auto only valid for services"],
    );
}

#[test]
fn check_restart_validation() {
    let job = job_with(
        group_nomad_service(nomad_check(
            json!({"CheckRestart": {"Limit": -1, "Grace": -S}}),
        )),
        json!(null),
    );
    assert_invalid(
        &job,
        &[
            "2 errors occurred:\n\t* limit must be greater than or equal to 0 but found -1\n\t* grace period must be greater than or equal to 0 but found -1000000000",
        ],
    );
    let job = job_with(
        group_nomad_service(nomad_check(
            json!({"OnUpdate": "ignore", "CheckRestart": {"Limit": 1}}),
        )),
        json!(null),
    );
    assert_invalid(
        &job,
        &["on_update value \"ignore\" is not compatible with check_restart"],
    );
}

#[test]
fn nested_texts_follow_nomads_multierror_layout() {
    let job = job_with(
        json!(null),
        json!([{"Name": "a", "Provider": "nomad", "Address": "1.2.3.4", "AddressMode": "host",
            "PortLabel": "http"}]),
    );
    assert_eq!(
        errors(&job),
        "1 error occurred:\n\t* Task group g validation failed: 1 error occurred:\n\t\
         * Task t validation failed: 1 error occurred:\n\t* 1 error occurred:\n\t\
         * service[0] \"a\" validation failed: 1 error occurred:\n\t\
         * Service address_mode must be \"auto\" if address is set\n\n\n\n\n\n\n\n\n\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Implicit constraints
// ---------------------------------------------------------------------------------------------

fn constraint(l: &str, op: &str, r: &str) -> Constraint {
    Constraint {
        l_target: l.into(),
        operand: op.into(),
        r_target: r.into(),
    }
}

#[test]
fn nomad_services_and_checks_add_their_constraints_once() {
    let mut job = job_with(group_nomad_service(nomad_check(json!({}))), json!(null));
    add_implicit_constraints(&mut job);
    let want = vec![
        constraint("${attr.nomad.service_discovery}", "=", "true"),
        constraint("${attr.nomad.version}", "semver", ">= 1.4.0"),
    ];
    assert_eq!(group(&job).constraints.as_ref().unwrap(), &want);
    add_implicit_constraints(&mut job);
    assert_eq!(group(&job).constraints.as_ref().unwrap(), &want);
    job.validate().unwrap();

    // Without checks only the discovery constraint.
    let mut job = job_with(json!(null), json!([{"Name": "a", "Provider": "nomad"}]));
    add_implicit_constraints(&mut job);
    assert_eq!(group(&job).constraints.as_ref().unwrap(), &want[..1]);
    assert_eq!(task(&job).constraints, None);
}

#[test]
fn consul_services_add_a_consul_constraint_where_they_are() {
    let mut job = job_with(json!([{"Name": "a"}]), json!([{"Name": "b"}]));
    add_implicit_constraints(&mut job);
    let consul = constraint("${attr.consul.version}", "semver", ">= 1.8.0");
    assert_eq!(
        group(&job).constraints.as_ref().unwrap(),
        &vec![consul.clone()]
    );
    assert_eq!(task(&job).constraints.as_ref().unwrap(), &vec![consul]);

    // A user's own constraint on the attribute wins.
    let mut job = job_with(json!([{"Name": "a"}]), json!(null));
    job.task_groups.as_mut().unwrap()[0].constraints = Some(vec![constraint(
        "${attr.consul.version}",
        "semver",
        ">= 1.10.0",
    )]);
    add_implicit_constraints(&mut job);
    assert_eq!(group(&job).constraints.as_ref().unwrap().len(), 1);
}

#[test]
fn jobs_without_services_get_no_constraints() {
    let mut job = job_with(json!(null), json!(null));
    add_implicit_constraints(&mut job);
    assert_eq!(group(&job).constraints, None);
}

#[test]
fn task_checks_belong_to_their_task() {
    // Nomad's API conversion drops a task-level check's own task name.
    let job = job_with(
        json!(null),
        json!([{"Name": "a", "Provider": "nomad", "PortLabel": "http",
            "Checks": [nomad_check(json!({"TaskName": "other"}))]}]),
    );
    assert_eq!(task_svc(&job, 0).checks.as_ref().unwrap()[0].task_name, "t");
    job.validate().unwrap();
}
