#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Job canonicalisation (Nomad's registration defaults) and validation (Nomad's messages).

use caravan_structs::*;
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

fn minimal(job_type: &str) -> Job {
    let mut v = json!({
        "ID": "example",
        "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [{"Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sleep", "args": ["10"]}}]}]
    });
    if !job_type.is_empty() {
        v["Type"] = json!(job_type);
    }
    serde_json::from_value(v).unwrap()
}

fn canon(job_type: &str) -> Job {
    let mut j = minimal(job_type);
    j.canonicalize();
    j
}

#[test]
fn minimal_service_job_gets_nomads_defaults() {
    let j = canon("");
    let v = serde_json::to_value(&j).unwrap();
    assert_eq!(v["Region"], "global");
    assert_eq!(v["Namespace"], "default");
    assert_eq!(v["Priority"], 50);
    assert_eq!(v["Type"], "service");
    assert_eq!(v["Name"], "example");
    assert_eq!(v["Datacenters"], json!(["*"]));
    assert_eq!(v["NodePool"], "default");
    assert_eq!(v["AllAtOnce"], false);
    assert_eq!(v["Meta"], Value::Null);
    assert_eq!(
        v["Update"],
        json!({"AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "",
            "HealthyDeadline": 0, "MaxParallel": 1, "MinHealthyTime": 0, "ProgressDeadline": 0,
            "Stagger": 30 * S})
    );
    let tg = &v["TaskGroups"][0];
    assert_eq!(tg["Count"], 1);
    assert_eq!(
        tg["RestartPolicy"],
        json!({"Attempts": 2, "Delay": 15 * S, "Interval": 1_800 * S, "Mode": "fail",
            "RenderTemplates": false})
    );
    assert_eq!(
        tg["ReschedulePolicy"],
        json!({"Attempts": 0, "Delay": 30 * S, "DelayFunction": "exponential", "Interval": 0,
            "MaxDelay": 3_600 * S, "Unlimited": true})
    );
    assert_eq!(
        tg["EphemeralDisk"],
        json!({"Migrate": false, "SizeMB": 300, "Sticky": false})
    );
    assert_eq!(
        tg["Migrate"],
        json!({"HealthCheck": "checks", "HealthyDeadline": 300 * S, "MaxParallel": 1,
            "MinHealthyTime": 10 * S})
    );
    assert_eq!(
        tg["Update"],
        json!({"AutoPromote": false, "AutoRevert": false, "Canary": 0, "HealthCheck": "checks",
            "HealthyDeadline": 300 * S, "MaxParallel": 1, "MinHealthyTime": 10 * S,
            "ProgressDeadline": 600 * S, "Stagger": 30 * S})
    );
    let t = &tg["Tasks"][0];
    assert_eq!(t["Resources"]["CPU"], 100);
    assert_eq!(t["Resources"]["MemoryMB"], 300);
    assert_eq!(t["Resources"]["Cores"], 0);
    assert_eq!(t["Resources"]["Networks"], Value::Null);
    assert_eq!(
        t["LogConfig"],
        json!({"Disabled": false, "MaxFileSizeMB": 10, "MaxFiles": 10})
    );
    assert_eq!(t["KillTimeout"], 5 * S);
    assert_eq!(t["Leader"], false);
    assert_eq!(t["RestartPolicy"], tg["RestartPolicy"]);
    assert_eq!(
        t["Config"],
        json!({"command": "/bin/sleep", "args": ["10"]})
    );
    assert_eq!(t["Driver"], "raw_exec");
    assert!(j.validate().is_ok(), "{:?}", j.validate());
}

#[test]
fn minimal_batch_job_gets_batch_policies_and_no_update_or_migrate() {
    let j = canon("batch");
    let tg = &j.task_groups.as_ref().unwrap()[0];
    assert_eq!(
        tg.restart_policy,
        Some(RestartPolicy {
            attempts: 3,
            delay: 15 * S,
            interval: 86_400 * S,
            mode: "fail".into(),
            render_templates: false
        })
    );
    assert_eq!(
        tg.reschedule_policy,
        Some(ReschedulePolicy {
            attempts: 1,
            delay: 5 * S,
            delay_function: "constant".into(),
            interval: 86_400 * S,
            max_delay: 0,
            unlimited: false
        })
    );
    assert_eq!(tg.migrate, None);
    assert_eq!(tg.update, None);
    assert_eq!(j.update, UpdateStrategy::default());
    assert_eq!(tg.ephemeral_disk.as_ref().unwrap().size_mb, 300);
    let t = &tg.tasks.as_ref().unwrap()[0];
    assert_eq!(t.kill_timeout, 5 * S);
    assert_eq!(t.log_config, Some(default_log_config()));
    assert_eq!(t.restart_policy, tg.restart_policy);
    assert!(j.validate().is_ok(), "{:?}", j.validate());
}

#[test]
fn system_and_sysbatch_jobs() {
    for (ty, attempts, interval) in [("system", 2, 1_800 * S), ("sysbatch", 3, 86_400 * S)] {
        let j = canon(ty);
        let tg = &j.task_groups.as_ref().unwrap()[0];
        let rp = tg.restart_policy.as_ref().unwrap();
        assert_eq!(
            (rp.attempts, rp.interval, rp.delay),
            (attempts, interval, 15 * S)
        );
        assert_eq!(tg.reschedule_policy, None, "{ty}");
        assert_eq!(tg.migrate, None);
        assert_eq!(tg.update, None);
        assert!(j.validate().is_ok(), "{ty}: {:?}", j.validate());
    }
}

#[test]
fn canonicalize_is_idempotent() {
    for ty in ["", "batch", "system", "sysbatch"] {
        let once = canon(ty);
        let mut twice = once.clone();
        twice.canonicalize();
        assert_eq!(once, twice, "{ty}");
    }
    let mut j: Job = serde_json::from_value(fixture_job()).unwrap();
    j.canonicalize();
    let mut again = j.clone();
    again.canonicalize();
    assert_eq!(j, again);
}

#[test]
fn set_values_are_kept_and_partial_blocks_completed() {
    let mut j: Job = serde_json::from_value(json!({
        "ID": "web", "Name": "web-name", "Region": "eu", "Namespace": "ops", "Priority": 70,
        "Datacenters": ["dc2"], "NodePool": "gpu", "Meta": {},
        "Update": {"MaxParallel": 3, "Stagger": 10 * S},
        "TaskGroups": [{"Name": "g", "Count": 0, "Meta": {"k": "v"},
            "RestartPolicy": {"Attempts": 0, "Interval": 60 * S, "Delay": 5 * S},
            "ReschedulePolicy": {"Attempts": 2, "Interval": 600 * S, "Delay": 10 * S},
            "Update": {"Canary": 1},
            "Tasks": [{"Name": "t", "Driver": "docker", "KillTimeout": 20 * S,
                "Env": {}, "Resources": {"CPU": 500}, "LogConfig": {"MaxFiles": 2}}]}]
    }))
    .unwrap();
    j.canonicalize();
    assert_eq!(
        (j.name.as_str(), j.region.as_str(), j.namespace.as_str()),
        ("web-name", "eu", "ops")
    );
    assert_eq!(j.priority, 70);
    assert_eq!(j.datacenters, Some(vec!["dc2".to_owned()]));
    assert_eq!(j.node_pool, "gpu");
    assert_eq!(j.meta, None);
    assert_eq!((j.update.max_parallel, j.update.stagger), (3, 10 * S));
    let tg = &j.task_groups.as_ref().unwrap()[0];
    assert_eq!(tg.count, 0, "the server keeps an explicit 0");
    assert_eq!(tg.meta.as_ref().unwrap()["k"], "v");
    let rp = tg.restart_policy.as_ref().unwrap();
    assert_eq!(
        (rp.attempts, rp.interval, rp.delay, rp.mode.as_str()),
        (0, 60 * S, 5 * S, "fail")
    );
    let rs = tg.reschedule_policy.as_ref().unwrap();
    assert_eq!(
        (rs.attempts, rs.interval, rs.delay_function.as_str()),
        (2, 600 * S, "exponential")
    );
    let u = tg.update.as_ref().unwrap();
    assert_eq!((u.canary, u.max_parallel, u.stagger), (1, 3, 10 * S));
    assert_eq!(u.health_check, "checks");
    let t = &tg.tasks.as_ref().unwrap()[0];
    assert_eq!(t.kill_timeout, 20 * S);
    assert_eq!(t.env, None);
    let r = t.resources.as_ref().unwrap();
    assert_eq!((r.cpu, r.memory_mb), (500, 300));
    let l = t.log_config.as_ref().unwrap();
    assert_eq!((l.max_files, l.max_file_size_mb), (2, 10));
}

#[test]
fn missing_counts_default_to_one_on_the_json() {
    let mut v = json!({"ID": "x", "TaskGroups": [{"Name": "a"}, {"Name": "b", "Count": 0},
        {"Name": "c", "Count": null, "Scaling": {"Min": 3}}]});
    fill_api_defaults(&mut v);
    assert_eq!(v["TaskGroups"][0]["Count"], 1);
    assert_eq!(v["TaskGroups"][1]["Count"], 0);
    assert_eq!(v["TaskGroups"][2]["Count"], 3);
}

#[test]
fn unset_policy_fields_take_the_defaults_and_explicit_zeroes_stay() {
    let mut v = json!({"ID": "x", "Type": "batch", "TaskGroups": [{"Name": "a",
        "RestartPolicy": {"Attempts": 0, "Interval": null, "mode": "delay"},
        "ReschedulePolicy": {"Attempts": 5, "Delay": null},
        "Tasks": [{"Name": "t", "RestartPolicy": {"Delay": 0}}]}]});
    fill_api_defaults(&mut v);
    let tg = &v["TaskGroups"][0];
    assert_eq!(
        tg["RestartPolicy"],
        json!({"Attempts": 0, "Interval": 24 * 3_600 * S, "mode": "delay", "Delay": 15 * S,
            "RenderTemplates": false})
    );
    assert_eq!(tg["ReschedulePolicy"]["Attempts"], 5);
    assert_eq!(tg["ReschedulePolicy"]["Delay"], 5 * S);
    assert_eq!(tg["ReschedulePolicy"]["DelayFunction"], "constant");
    // The task's policy is the group's with the task's own fields on top.
    let task_rp = &tg["Tasks"][0]["RestartPolicy"];
    assert_eq!(task_rp["Delay"], 0);
    assert_eq!(task_rp["Attempts"], 0);
    assert_eq!(task_rp["Interval"], 24 * 3_600 * S);
    assert_eq!(task_rp["mode"], "delay");
}

fn fixture_job() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/node_allocations.json"
    ))
    .unwrap();
    let allocs: Value = serde_json::from_str(&text).unwrap();
    allocs[0]["Job"].clone()
}

/// Every non-null, non-zero leaf of `before` is unchanged in `after`.
fn assert_set_values_kept(before: &Value, after: &Value, path: &str) {
    match before {
        Value::Object(m) => {
            for (k, v) in m {
                assert_set_values_kept(v, &after[k.as_str()], &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                assert_set_values_kept(v, &after[i], &format!("{path}[{i}]"));
            }
        }
        Value::Null => {}
        Value::Bool(false) => {}
        Value::String(s) if s.is_empty() => {}
        Value::Number(n) if n.as_f64() == Some(0.0) => {}
        other => assert_eq!(other, after, "{path} changed"),
    }
}

#[test]
fn seed_job_canonicalizes_without_changing_set_fields() {
    let before = fixture_job();
    let mut j: Job = serde_json::from_value(before.clone()).unwrap();
    j.canonicalize();
    let after = serde_json::to_value(&j).unwrap();
    assert_set_values_kept(&before, &after, "Job");
    // The seed already carries Nomad's defaults; what it lacked is filled in.
    let tg = &j.task_groups.as_ref().unwrap()[0];
    assert_eq!(tg.migrate.as_ref().unwrap().max_parallel, 2);
    assert_eq!(tg.update.as_ref().unwrap().max_parallel, 1);
    assert_eq!(j.node_pool, "default");
    assert!(j.validate().is_ok(), "{}", j.validate().unwrap_err());
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn errors_of(j: &Job) -> Vec<String> {
    j.validate().unwrap_err().errors
}

fn with(f: impl FnOnce(&mut Job)) -> Vec<String> {
    let mut j = canon("");
    f(&mut j);
    errors_of(&j)
}

fn group(j: &mut Job) -> &mut TaskGroup {
    &mut j.task_groups.as_mut().unwrap()[0]
}

fn task(j: &mut Job) -> &mut Task {
    &mut group(j).tasks.as_mut().unwrap()[0]
}

fn tg_err(inner: &[&str]) -> String {
    let inner: Vec<String> = inner.iter().map(|s| (*s).to_owned()).collect();
    format!(
        "Task group g validation failed: {}",
        format_multierror(&inner)
    )
}

fn task_err(inner: &[&str]) -> String {
    let inner: Vec<String> = inner.iter().map(|s| (*s).to_owned()).collect();
    tg_err(&[&format!(
        "Task t validation failed: {}",
        format_multierror(&inner)
    )])
}

#[test]
fn job_level_errors() {
    assert_eq!(with(|j| j.id.clear()), ["Missing job ID"]);
    assert_eq!(with(|j| j.id = "a b".into()), ["Job ID contains a space"]);
    assert_eq!(
        with(|j| j.id = "a\0b".into()),
        ["Job ID contains a null character"]
    );
    assert_eq!(with(|j| j.name.clear()), ["Missing job name"]);
    assert_eq!(
        with(|j| j.name = "n\0".into()),
        ["Job Name contains a null character"]
    );
    assert_eq!(with(|j| j.region.clear()), ["Missing job region"]);
    assert_eq!(
        with(|j| j.namespace.clear()),
        ["Job must be in a namespace"]
    );
    // The group's service-only blocks are then refused too, as in Nomad.
    assert_eq!(
        with(|j| j.r#type = "web".into())[0],
        "Invalid job type: \"web\""
    );
    assert_eq!(
        with(|j| j.r#type.clear()).first().unwrap(),
        "Missing job type"
    );
    for p in [0, 101, -5] {
        assert_eq!(
            with(|j| j.priority = p),
            ["job priority must be between [1, 100]"]
        );
    }
    assert_eq!(
        with(|j| j.datacenters = Some(vec![])),
        ["Missing job datacenters"]
    );
    assert_eq!(with(|j| j.datacenters = None), ["Missing job datacenters"]);
    assert_eq!(
        with(|j| j.datacenters = Some(vec![String::new()])),
        ["Job datacenter must be non-empty string"]
    );
    assert_eq!(with(|j| j.task_groups = None), ["Missing job task groups"]);
    assert_eq!(
        with(|j| j.task_groups = Some(vec![])),
        ["Missing job task groups"]
    );
}

#[test]
fn group_name_missing_or_duplicated_and_count() {
    let errs = with(|j| {
        let g = group(j).clone();
        j.task_groups.as_mut().unwrap().push(g);
    });
    assert_eq!(errs, ["Job task group 2 redefines 'g' from group 1"]);
    let errs = with(|j| group(j).name.clear());
    assert_eq!(errs[0], "Job task group 1 missing name");
    assert!(errs[1].starts_with(
        "Task group  validation failed: 1 error occurred:\n\t* Missing task group name"
    ));
    assert_eq!(
        with(|j| group(j).count = -1),
        [tg_err(&["Task group count can't be negative"])]
    );
    assert_eq!(
        with(|j| group(j).tasks = None),
        [tg_err(&["Missing tasks for task group"])]
    );
    let errs = with(|j| {
        j.r#type = "system".into();
        group(j).count = 3;
        group(j).reschedule_policy = None;
        group(j).migrate = None;
        group(j).update = None;
    });
    assert_eq!(
        errs,
        ["Job task group g has count 3. Count cannot exceed 1 with system scheduler"]
    );
}

#[test]
fn task_name_driver_and_resources() {
    let errs = with(|j| {
        let t = task(j).clone();
        group(j).tasks.as_mut().unwrap().push(t);
    });
    assert_eq!(errs, [tg_err(&["Task 2 redefines 't' from task 1"])]);
    let errs = with(|j| task(j).name.clear());
    assert_eq!(
        errs,
        [tg_err(&[
            "Task 1 missing name",
            "Task  validation failed: 1 error occurred:\n\t* Missing task name\n\n"
        ])]
    );
    assert_eq!(
        with(|j| task(j).driver.clear()),
        [task_err(&["Missing task driver"])]
    );
    assert_eq!(
        with(|j| task(j).name = "a/b".into()).len(),
        1,
        "slashes are refused"
    );
    let errs = with(|j| {
        let r = task(j).resources.as_mut().unwrap();
        r.cpu = -1;
        r.memory_mb = -5;
    });
    assert_eq!(
        errs,
        [task_err(&[
            "minimum CPU value is 1; got -1",
            "minimum MemoryMB value is 10; got -5"
        ])]
    );
    assert_eq!(
        with(|j| task(j).kill_timeout = -1),
        [task_err(&["KillTimeout must be a positive value"])]
    );
    assert_eq!(
        with(|j| task(j).resources = None),
        [task_err(&["Missing task resources"])]
    );
    assert_eq!(
        with(|j| group(j).ephemeral_disk.as_mut().unwrap().size_mb = 99),
        [task_err(&[
            "log storage (100 MB) must be less than requested disk capacity (99 MB)"
        ])]
    );
    // Logs exactly as large as the disk are accepted (Nomad refuses them).
    let mut j = canon("");
    group(&mut j).ephemeral_disk.as_mut().unwrap().size_mb = 100;
    assert!(j.validate().is_ok());
}

#[test]
fn restart_and_reschedule_policies() {
    let errs = with(|j| group(j).restart_policy.as_mut().unwrap().mode = "sometimes".into());
    assert_eq!(errs, [tg_err(&["Unsupported restart mode: \"sometimes\""])]);
    let errs = with(|j| {
        let rp = group(j).restart_policy.as_mut().unwrap();
        rp.interval = S;
        rp.attempts = 0;
        rp.mode = "delay".into();
    });
    assert_eq!(
        errs,
        [tg_err(&[
            "Restart policy \"delay\" with 0 attempts is ambiguous",
            "Interval can not be less than 5s (got 1s)"
        ])]
    );
    let errs = with(|j| group(j).restart_policy.as_mut().unwrap().attempts = 200);
    assert_eq!(
        errs,
        [tg_err(&[
            "Nomad can't restart the TaskGroup 200 times in an interval of 30m0s with a delay of 15s"
        ])]
    );
    let errs = with(|j| group(j).restart_policy = None);
    assert_eq!(
        errs,
        [tg_err(&["Task Group g should have a restart policy"])]
    );

    let errs = with(|j| {
        let rp = group(j).reschedule_policy.as_mut().unwrap();
        rp.delay_function = "linear".into();
        rp.delay = S;
    });
    assert_eq!(
        errs,
        [tg_err(&[
            "Delay cannot be less than 5s (got 1s)",
            "Invalid delay function \"linear\", must be one of [\"constant\" \"exponential\" \"fibonacci\"]"
        ])]
    );
    let errs = with(|j| {
        let rp = group(j).reschedule_policy.as_mut().unwrap();
        rp.attempts = 3;
    });
    assert_eq!(
        errs,
        [tg_err(&[
            "Interval must be a non zero value if Attempts > 0",
            "Reschedule Policy with Attempts = 3, Interval = 0s, and Unlimited = true is ambiguous",
            "If Attempts >0, Unlimited cannot also be set to true"
        ])]
    );
    let errs = with(|j| group(j).reschedule_policy = None);
    assert_eq!(
        errs,
        [tg_err(&["Task Group g should have a reschedule policy"])]
    );
    let mut sys = canon("system");
    group(&mut sys).reschedule_policy = default_reschedule_policy("service");
    assert_eq!(
        errors_of(&sys),
        [tg_err(&["System jobs should not have a reschedule policy"])]
    );
}

#[test]
fn constraints() {
    let c = |l: &str, op: &str, r: &str| Constraint {
        l_target: l.into(),
        operand: op.into(),
        r_target: r.into(),
    };
    let errs = with(|j| j.constraints = Some(vec![c("${attr.kernel.name}", "like", "linux")]));
    assert_eq!(
        errs,
        [
            "Constraint 1 validation failed: 1 error occurred:\n\t* Unknown constraint type \"like\"\n\n"
        ]
    );
    let errs = with(|j| {
        j.constraints = Some(vec![c("${attr.kernel.name}", "=", "linux"), c("", "=", "")])
    });
    assert_eq!(
        errs,
        [
            "Constraint 2 validation failed: 2 errors occurred:\n\t* Operator \"=\" requires an RTarget\n\t* No LTarget provided but is required by constraint\n\n"
        ]
    );
    assert!(c("", "distinct_hosts", "").validate().is_ok());
    assert_eq!(
        c("${meta.rack}", "distinct_property", "0")
            .validate()
            .unwrap_err()
            .errors,
        ["Distinct Property must have an allowed count of 1 or greater: 0 < 1"]
    );
    assert_eq!(
        c("${attr.x}", "is_set", "y").validate().unwrap_err().errors,
        ["Operator \"is_set\" does not support an RTarget"]
    );
    assert_eq!(
        c("${attr.os.name}", "regexp", "[")
            .validate()
            .unwrap_err()
            .errors,
        ["Regular expression failed to compile: unclosed character class"]
    );
    assert!(
        c("${attr.os.name}", "regexp", "^deb(ian)?$")
            .validate()
            .is_ok()
    );
    let errs = with(|j| group(j).constraints = Some(vec![c("${attr.a}", "bogus", "b")]));
    assert_eq!(
        errs,
        [tg_err(&[
            "Constraint 1 validation failed: 1 error occurred:\n\t* Unknown constraint type \"bogus\"\n\n"
        ])]
    );
    let errs = with(|j| task(j).constraints = Some(vec![c("", "distinct_hosts", "")]));
    assert_eq!(
        errs,
        [task_err(&[
            "Constraint 1 has disallowed Operand at task level: distinct_hosts"
        ])]
    );
}

#[test]
fn every_problem_is_reported_at_once_in_multierror_format() {
    let mut j: Job = serde_json::from_value(json!({
        "Type": "service", "TaskGroups": [{"Name": "g", "Count": -2, "Tasks": [{"Name": "t"}]}]
    }))
    .unwrap();
    j.canonicalize();
    let e = j.validate().unwrap_err();
    assert_eq!(e.errors.len(), 3, "{e}");
    assert_eq!(e.errors[0], "Missing job ID");
    assert_eq!(e.errors[1], "Missing job name");
    assert_eq!(
        e.errors[2],
        tg_err(&[
            "Task group count can't be negative",
            "Task t validation failed: 1 error occurred:\n\t* Missing task driver\n\n"
        ])
    );
    let text = e.to_string();
    assert!(text.starts_with(
        "3 errors occurred:\n\t* Missing job ID\n\t* Missing job name\n\t* Task group g"
    ));
    assert!(text.ends_with("\n\n"));
    let one = JobValidationError {
        errors: vec!["Missing job ID".into()],
    };
    assert_eq!(one.to_string(), "1 error occurred:\n\t* Missing job ID\n\n");
}
