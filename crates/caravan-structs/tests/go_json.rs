#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bodies decoded as Go's encoding/json decodes them (`caravan_structs::go_json`): the exact
//! bodies HashiCorp's Go `api` package sends (`tests/go-api/` at the root, copied from the shared
//! reference), `null` anywhere, keys in any case.

use std::collections::BTreeMap;

use caravan_structs::go_json::{self, GoJsonError};
use caravan_structs::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/go-api/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The same body with every `null` object entry left out, as a careful non-Go client sends it.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// What the server does with a register body's `Job` (caravan-server `decode_job`).
fn decode_job(body: &Value) -> Job {
    let mut value = body["Job"].clone();
    fill_api_defaults(&mut value);
    let mut job: Job = go_json::from_value(value).unwrap();
    job.canonicalize();
    job
}

const JOB_FIXTURES: [&str; 5] = [
    "job-register-minimal",
    "job-register-rich",
    "job-register-rich-canonicalized",
    "job-register-parameterized",
    "job-plan",
];

#[test]
fn every_go_job_body_decodes_as_its_null_free_form() {
    for name in JOB_FIXTURES {
        let body = fixture(name);
        let with_nulls = decode_job(&body);
        let null_free = decode_job(&without_nulls(&body));
        assert_eq!(with_nulls, null_free, "{name}");
        with_nulls
            .validate()
            .unwrap_or_else(|e| panic!("{name} does not validate: {e}"));
    }
}

#[test]
fn go_rich_job_keeps_what_it_sets() {
    let job = decode_job(&fixture("job-register-rich"));
    let tg = &job.task_groups.as_ref().unwrap()[0];
    let task = &tg.tasks.as_ref().unwrap()[0];
    assert_eq!(job.id, "go-rich");
    assert_eq!(tg.count, 2);
    assert_eq!(task.driver, "raw_exec");
    assert_eq!(task.env.as_ref().unwrap()["GREETING"], "hello");
    assert!(tg.services.as_ref().is_some_and(|s| !s.is_empty()));
    // Nulls took Nomad's defaults, not zeroes that would fail validation.
    assert_eq!(job.priority, 50);
    assert_eq!(job.region, "global");
}

#[test]
fn canonicalized_go_job_keeps_its_explicit_values() {
    let job = decode_job(&fixture("job-register-rich-canonicalized"));
    let task = &job.task_groups.as_ref().unwrap()[0].tasks.as_ref().unwrap()[0];
    let resources = task.resources.as_ref().unwrap();
    assert_eq!(resources.cpu, 50);
    assert_eq!(resources.memory_mb, 32);
    assert_eq!(task.kill_timeout, 5_000_000_000);
}

#[test]
fn go_parameterized_job_and_dispatch_decode() {
    let job = decode_job(&fixture("job-register-parameterized"));
    let p = job.parameterized_job.as_ref().expect("parameterized block");
    assert_eq!(p.payload, "optional");
    assert_eq!(p.meta_required.as_deref(), Some(&["time".to_owned()][..]));
    let dispatch: Value = go_json::from_value(fixture("job-dispatch")).unwrap();
    assert_eq!(dispatch["Meta"]["time"], "5");
}

#[test]
fn null_is_the_zero_value_everywhere() {
    // A struct field: its default. A list element and a map value: the element type's zero.
    let tg: TaskGroup = go_json::from_value(json!({
        "Name": null, "Count": null, "Meta": {"a": null, "b": "x"},
        "Tasks": [{"Name": "t", "Driver": null, "Config": null, "KillTimeout": null,
                   "Env": null, "Resources": {"CPU": null, "MemoryMB": 64}}],
        "Constraints": [null],
    }))
    .unwrap();
    assert_eq!(tg.name, "");
    assert_eq!(tg.count, 0);
    assert_eq!(
        tg.meta,
        Some(BTreeMap::from([
            ("a".to_owned(), String::new()),
            ("b".to_owned(), "x".to_owned())
        ]))
    );
    let task = &tg.tasks.as_ref().unwrap()[0];
    assert_eq!(task.driver, "");
    assert_eq!(task.config, None);
    assert_eq!(task.resources.as_ref().unwrap().memory_mb, 64);
    assert_eq!(tg.constraints, Some(vec![Constraint::default()]));
}

#[test]
fn keys_match_fields_whatever_their_case() {
    let job: Job = go_json::from_value(json!({
        "id": "lower", "TASKGROUPS": [{"name": "g", "count": 3}], "Priority": 70,
        "priority": 80, "unknownKey": {"deep": [1, 2]},
    }))
    .unwrap();
    assert_eq!(job.id, "lower");
    assert_eq!(job.task_groups.as_ref().unwrap()[0].count, 3);
    // Two keys for one field: the later wins, as in Go.
    assert_eq!(job.priority, 80);
}

#[test]
fn wrong_types_name_the_path() {
    let err: GoJsonError = go_json::from_value::<Job>(json!({
        "ID": "x", "TaskGroups": [{"Name": "g", "Count": "two"}],
    }))
    .unwrap_err();
    assert_eq!(err.path, "TaskGroups[0].Count");
    assert!(
        err.to_string()
            .starts_with("TaskGroups[0].Count: invalid type"),
        "{err}"
    );
    let err = go_json::from_slice::<Job>(b"{\"ID\": ").unwrap_err();
    assert!(err.to_string().contains("EOF"), "{err}");
    assert!(go_json::from_value::<Job>(json!({"Priority": 1.5})).is_err());
    assert!(go_json::from_value::<Job>(json!(["not", "an", "object"])).is_err());
}

#[test]
fn a_null_body_is_an_empty_object() {
    let job: Job = go_json::from_value(Value::Null).unwrap();
    assert_eq!(job, Job::default());
}

/// Fields that are Go maps: a `null` value in them is an entry with the zero value, not a
/// missing entry, so they are left out of the comparison with the null-free form.
const MAP_FIELDS: [&str; 6] = [
    "Meta",
    "Env",
    "Config",
    "CanaryMeta",
    "TaggedAddresses",
    "Volumes",
];

/// Every path to a struct field in `v`, as a list of keys and indexes.
fn entry_paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let in_map = matches!(prefix.last(), Some(Step::Key(k)) if MAP_FIELDS.contains(&k.as_str()));
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Step::Key(k.clone()));
                if !in_map {
                    out.push(prefix.clone());
                }
                entry_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                entry_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn set_null(v: &mut Value, path: &[Step]) {
    let mut cur = v;
    for step in path {
        cur = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k).unwrap(),
            (Step::Index(i), Value::Array(a)) => &mut a[*i],
            // An ancestor is already null.
            _ => return,
        };
    }
    *cur = Value::Null;
}

proptest! {
    /// Any set of fields of a valid Go body set to `null` still decodes, and the result equals
    /// the body with those fields left out.
    #[test]
    fn nulling_any_fields_still_decodes(
        which in 0..JOB_FIXTURES.len(),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..8),
    ) {
        let body = fixture(JOB_FIXTURES[which]);
        let job = body["Job"].clone();
        let mut paths = Vec::new();
        entry_paths(&job, &mut Vec::new(), &mut paths);
        let mut nulled = job.clone();
        for pick in &picks {
            set_null(&mut nulled, &paths[pick.index(paths.len())]);
        }
        let decoded: Result<Job, _> = go_json::from_value(nulled.clone());
        prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
        let left_out: Job = go_json::from_value(without_nulls(&nulled)).unwrap();
        // Opaque blocks (Consul, Connect, ...) keep what they were sent, nulls included.
        let written = |job: &Job| without_nulls(&serde_json::to_value(job).unwrap());
        prop_assert_eq!(written(&decoded.unwrap()), written(&left_out));
    }
}

#[test]
fn other_go_bodies_decode() {
    for name in [
        "node-drain",
        "node-drain-off",
        "node-eligibility",
        "deployment-promote",
    ] {
        let v: Map<String, Value> = go_json::from_value(fixture(name)).unwrap();
        assert!(!v.is_empty(), "{name}");
    }
}
