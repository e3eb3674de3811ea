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
    default_missing_group_counts(&mut v);
    assert_eq!(v["TaskGroups"][0]["Count"], 1);
    assert_eq!(v["TaskGroups"][1]["Count"], 0);
    assert_eq!(v["TaskGroups"][2]["Count"], 3);
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
