//! Nomad's job diff (`JobDiff`): what `nomad job plan` prints and `/v1/job/:id/versions?diffs=true`
//! returns. Two versions of a job are compared as their JSON documents, the way Nomad's
//! `structs/diff.go` walks its structs:
//!
//! - scalar fields become `FieldDiff`s with their values as strings (`"50"`, `"true"`);
//! - `Meta` and `Env` maps become fields named `Meta[key]`;
//! - nested structs (and driver `Config`) become `ObjectDiff`s named after the field;
//! - lists of strings are sets: an `ObjectDiff` named after the list whose fields are the
//!   elements added or removed; lists of structs are sets of `ObjectDiff`s (`Constraint`, ...);
//! - task groups and tasks are matched by name, and every one is listed, `None` when unchanged.
//!
//! The diff is Nomad's contextual form (what plan and versions serve): inside an edited nested
//! object, driver config or string set, the unchanged fields are listed too, as `None`, so a
//! reader sees the change in its context. The job's, groups' and tasks' own fields are listed
//! only when changed, as in Nomad.
//!
//! Difference from Nomad: object names follow the JSON field names where Nomad has a few
//! hand-written ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::Job;

pub const DIFF_TYPE_NONE: &str = "None";
pub const DIFF_TYPE_ADDED: &str = "Added";
pub const DIFF_TYPE_DELETED: &str = "Deleted";
pub const DIFF_TYPE_EDITED: &str = "Edited";

/// Annotations the scheduler puts on a plan's diff (Nomad's `scheduler/annotate.go`).
pub const ANNOTATION_FORCES_CREATE: &str = "forces create";
pub const ANNOTATION_FORCES_DESTROY: &str = "forces destroy";
pub const ANNOTATION_FORCES_INPLACE_UPDATE: &str = "forces in-place update";
pub const ANNOTATION_FORCES_DESTRUCTIVE_UPDATE: &str = "forces create/destroy update";

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobDiff {
    pub fields: Option<Vec<FieldDiff>>,
    #[serde(rename = "ID")]
    pub id: String,
    pub objects: Option<Vec<ObjectDiff>>,
    pub task_groups: Option<Vec<TaskGroupDiff>>,
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskGroupDiff {
    pub fields: Option<Vec<FieldDiff>>,
    pub name: String,
    pub objects: Option<Vec<ObjectDiff>>,
    pub tasks: Option<Vec<TaskDiff>>,
    pub r#type: String,
    /// The plan's counts by kind (`ignore`, `create`, `destroy`, `in-place update`, ...).
    pub updates: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TaskDiff {
    pub annotations: Option<Vec<String>>,
    pub fields: Option<Vec<FieldDiff>>,
    pub name: String,
    pub objects: Option<Vec<ObjectDiff>>,
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ObjectDiff {
    pub fields: Option<Vec<FieldDiff>>,
    pub name: String,
    pub objects: Option<Vec<ObjectDiff>>,
    pub r#type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FieldDiff {
    pub annotations: Option<Vec<String>>,
    pub name: String,
    pub new: String,
    pub old: String,
    pub r#type: String,
}

/// Job fields that are bookkeeping, not spec, or compared on their own (task groups).
const JOB_SKIPPED: &[&str] = &[
    "ID",
    "TaskGroups",
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "SubmitTime",
    "NomadTokenID",
    "VaultToken",
    "ConsulToken",
    "Payload",
];
const GROUP_SKIPPED: &[&str] = &["Name", "Tasks"];
const TASK_SKIPPED: &[&str] = &["Name"];
/// Maps whose entries are listed as fields named `Field[key]`.
const FLAT_MAPS: &[&str] = &["Meta", "Env", "CanaryMeta"];

/// The diff from `old` (none: the job is new) to `new`.
pub fn diff_jobs(old: Option<&Job>, new: &Job) -> JobDiff {
    let old_v = old.and_then(|j| serde_json::to_value(j).ok());
    let new_v = serde_json::to_value(new).ok();
    let old_m = old_v.as_ref().and_then(Value::as_object);
    let new_m = new_v.as_ref().and_then(Value::as_object);
    let (fields, objects) = diff_struct(old_m, new_m, JOB_SKIPPED, false);
    let groups = diff_named(
        old_m.and_then(|m| m.get("TaskGroups")),
        new_m.and_then(|m| m.get("TaskGroups")),
    )
    .into_iter()
    .map(|(name, o, n)| diff_group(name, o, n))
    .collect::<Vec<_>>();
    let changed = !fields.is_empty()
        || !objects.is_empty()
        || groups.iter().any(|g| g.r#type != DIFF_TYPE_NONE);
    JobDiff {
        r#type: match old {
            None => DIFF_TYPE_ADDED,
            Some(_) if changed => DIFF_TYPE_EDITED,
            Some(_) => DIFF_TYPE_NONE,
        }
        .to_owned(),
        id: new.id.clone(),
        fields: non_empty(fields),
        objects: non_empty(objects),
        task_groups: non_empty(groups),
    }
}

fn diff_group(
    name: String,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> TaskGroupDiff {
    let (fields, objects) = diff_struct(old, new, GROUP_SKIPPED, false);
    let tasks: Vec<TaskDiff> = diff_named(
        old.and_then(|m| m.get("Tasks")),
        new.and_then(|m| m.get("Tasks")),
    )
    .into_iter()
    .map(|(name, o, n)| {
        let (fields, objects) = diff_struct(o, n, TASK_SKIPPED, false);
        TaskDiff {
            r#type: presence_type(
                o.is_some(),
                n.is_some(),
                !fields.is_empty() || !objects.is_empty(),
            ),
            name,
            fields: non_empty(fields),
            objects: non_empty(objects),
            annotations: None,
        }
    })
    .collect();
    let changed = !fields.is_empty()
        || !objects.is_empty()
        || tasks.iter().any(|t| t.r#type != DIFF_TYPE_NONE);
    TaskGroupDiff {
        r#type: presence_type(old.is_some(), new.is_some(), changed),
        name,
        fields: non_empty(fields),
        objects: non_empty(objects),
        tasks: non_empty(tasks),
        updates: None,
    }
}

fn presence_type(old: bool, new: bool, changed: bool) -> String {
    match (old, new) {
        (false, _) => DIFF_TYPE_ADDED,
        (true, false) => DIFF_TYPE_DELETED,
        (true, true) if changed => DIFF_TYPE_EDITED,
        (true, true) => DIFF_TYPE_NONE,
    }
    .to_owned()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// A named object in its old and new versions (either may be missing).
type Pair<'a> = (
    String,
    Option<&'a Map<String, Value>>,
    Option<&'a Map<String, Value>>,
);

/// The elements of two lists of named objects, matched by `Name`, in name order.
fn diff_named<'a>(old: Option<&'a Value>, new: Option<&'a Value>) -> Vec<Pair<'a>> {
    let by_name = |v: Option<&'a Value>| -> BTreeMap<String, &'a Map<String, Value>> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(|m| {
                (
                    m.get("Name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    m,
                )
            })
            .collect()
    };
    let old = by_name(old);
    let new = by_name(new);
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| (n.clone(), old.get(n).copied(), new.get(n).copied()))
        .collect()
}

/// The field and object diffs of two versions of one struct (either may be missing).
/// With `contextual`, unchanged scalar fields are listed as `None` (inside edited nested
/// objects).
fn diff_struct(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    skipped: &[&str],
    contextual: bool,
) -> (Vec<FieldDiff>, Vec<ObjectDiff>) {
    let mut fields = Vec::new();
    let mut objects = Vec::new();
    let empty = Map::new();
    let o = old.unwrap_or(&empty);
    let n = new.unwrap_or(&empty);
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if skipped.contains(&key.as_str()) {
            continue;
        }
        let ov = o.get(key).unwrap_or(&Value::Null);
        let nv = n.get(key).unwrap_or(&Value::Null);
        if ov == nv {
            if contextual && !ov.is_object() && !ov.is_array() {
                fields.push(unchanged_field(key, ov));
            }
            continue;
        }
        if FLAT_MAPS.contains(&key.as_str()) {
            fields.extend(map_fields(key, ov, nv));
        } else if ov.is_object() || nv.is_object() {
            objects.extend(object_diff(key, ov.as_object(), nv.as_object()));
        } else if ov.is_array() || nv.is_array() {
            objects.extend(list_diff(key, ov, nv));
        } else if let Some(f) = field_diff(key, ov, nv) {
            fields.push(f);
        }
    }
    (fields, objects)
}

fn object_diff(
    name: &str,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> Option<ObjectDiff> {
    // Context only where something is edited: an added or deleted object lists its fields
    // anyway.
    let contextual = old.is_some() && new.is_some();
    let (fields, objects) = if name == "Config" {
        (flat_fields(old, new, contextual), Vec::new())
    } else {
        diff_struct(old, new, &[], contextual)
    };
    let changed = fields.iter().any(|f| f.r#type != DIFF_TYPE_NONE) || !objects.is_empty();
    if !changed && old.is_some() == new.is_some() {
        return None;
    }
    Some(ObjectDiff {
        r#type: presence_type(old.is_some(), new.is_some(), true),
        name: name.to_owned(),
        fields: non_empty(fields),
        objects: non_empty(objects),
    })
}

/// A list as a set: strings become the fields of one object named after the list; structs
/// become one object each, added or deleted.
fn list_diff(key: &str, old: &Value, new: &Value) -> Vec<ObjectDiff> {
    let o: Vec<&Value> = old.as_array().into_iter().flatten().collect();
    let n: Vec<&Value> = new.as_array().into_iter().flatten().collect();
    let removed: Vec<&Value> = o.iter().copied().filter(|v| !n.contains(v)).collect();
    let added: Vec<&Value> = n.iter().copied().filter(|v| !o.contains(v)).collect();
    if removed.is_empty() && added.is_empty() {
        return Vec::new();
    }
    let structs = o.iter().chain(n.iter()).any(|v| v.is_object());
    if !structs {
        let mut fields: Vec<FieldDiff> = removed
            .iter()
            .map(|v| FieldDiff {
                r#type: DIFF_TYPE_DELETED.to_owned(),
                name: key.to_owned(),
                old: scalar_string(v),
                ..FieldDiff::default()
            })
            .chain(added.iter().map(|v| FieldDiff {
                r#type: DIFF_TYPE_ADDED.to_owned(),
                name: key.to_owned(),
                new: scalar_string(v),
                ..FieldDiff::default()
            }))
            // Context: the elements kept.
            .chain(
                o.iter()
                    .filter(|v| n.contains(v))
                    .map(|v| unchanged_field(key, v)),
            )
            .collect();
        fields.sort_by(|a, b| (&a.old, &a.new).cmp(&(&b.old, &b.new)));
        return vec![ObjectDiff {
            r#type: presence_type(!o.is_empty(), !n.is_empty(), true),
            name: key.to_owned(),
            fields: Some(fields),
            objects: None,
        }];
    }
    let element = singular(key);
    removed
        .iter()
        .filter_map(|v| object_diff(&element, v.as_object(), None))
        .chain(
            added
                .iter()
                .filter_map(|v| object_diff(&element, None, v.as_object())),
        )
        .collect()
}

/// `Constraints` → `Constraint`, `Affinities` → `Affinity`.
fn singular(key: &str) -> String {
    if let Some(stem) = key.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = key.strip_suffix('s') {
        stem.to_owned()
    } else {
        key.to_owned()
    }
}

fn map_fields(key: &str, old: &Value, new: &Value) -> Vec<FieldDiff> {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = o.keys().chain(n.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|k| {
            field_diff(
                &format!("{key}[{k}]"),
                o.get(k).unwrap_or(&Value::Null),
                n.get(k).unwrap_or(&Value::Null),
            )
        })
        .collect()
}

/// A free-form object (driver config) flattened as Nomad's flatmap does: `args[0]`, `a.b`.
fn flat_fields(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    contextual: bool,
) -> Vec<FieldDiff> {
    let mut o = BTreeMap::new();
    let mut n = BTreeMap::new();
    for (k, v) in old.into_iter().flatten() {
        flatten(k, v, &mut o);
    }
    for (k, v) in new.into_iter().flatten() {
        flatten(k, v, &mut n);
    }
    let mut names: Vec<&String> = o.keys().chain(n.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|k| {
            let ov = o.get(k).copied().unwrap_or(&Value::Null);
            let nv = n.get(k).copied().unwrap_or(&Value::Null);
            match field_diff(k, ov, nv) {
                None if contextual => Some(unchanged_field(k, ov)),
                other => other,
            }
        })
        .collect()
}

/// A field listed for context: the same before and after.
fn unchanged_field(name: &str, v: &Value) -> FieldDiff {
    FieldDiff {
        r#type: DIFF_TYPE_NONE.to_owned(),
        name: name.to_owned(),
        old: scalar_string(v),
        new: scalar_string(v),
        annotations: None,
    }
}

fn flatten<'a>(prefix: &str, v: &'a Value, out: &mut BTreeMap<String, &'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), v);
        }
    }
}

fn field_diff(name: &str, old: &Value, new: &Value) -> Option<FieldDiff> {
    if old == new {
        return None;
    }
    let r#type = match (old.is_null(), new.is_null()) {
        (true, _) => DIFF_TYPE_ADDED,
        (false, true) => DIFF_TYPE_DELETED,
        (false, false) => DIFF_TYPE_EDITED,
    };
    Some(FieldDiff {
        r#type: r#type.to_owned(),
        name: name.to_owned(),
        old: scalar_string(old),
        new: scalar_string(new),
        annotations: None,
    })
}

/// A value as Nomad's flatmap writes it: strings bare, numbers and booleans as text, null empty.
fn scalar_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn job(v: Value) -> Job {
        let mut j: Job = serde_json::from_value(v).unwrap();
        j.canonicalize();
        j
    }

    fn base() -> Value {
        json!({"ID": "web", "Datacenters": ["dc1"], "Meta": {"a": "1"},
            "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [{"Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["1"]}}]}]})
    }

    #[test]
    fn a_new_job_is_added_and_an_unchanged_one_is_none() {
        let j = job(base());
        let d = diff_jobs(None, &j);
        assert_eq!(d.r#type, DIFF_TYPE_ADDED);
        let same = diff_jobs(Some(&j), &j);
        assert_eq!(same.r#type, DIFF_TYPE_NONE);
        let groups = same.task_groups.unwrap();
        assert_eq!(groups[0].r#type, DIFF_TYPE_NONE);
        assert_eq!(groups[0].tasks.as_ref().unwrap()[0].r#type, DIFF_TYPE_NONE);
    }

    #[test]
    fn edits_are_fields_objects_and_sets() {
        let old = job(base());
        let mut v = base();
        v["Priority"] = json!(70);
        v["Meta"] = json!({"a": "2", "b": "x"});
        v["Datacenters"] = json!(["dc1", "dc2"]);
        v["TaskGroups"][0]["Count"] = json!(3);
        v["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = json!(["2"]);
        v["TaskGroups"][0]["Tasks"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Name": "u", "Driver": "raw_exec", "Config": {"command": "/bin/true"}}));
        let d = diff_jobs(Some(&old), &job(v));
        assert_eq!(d.r#type, DIFF_TYPE_EDITED);
        let fields = d.fields.unwrap();
        let f = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(
            (f("Priority").old.as_str(), f("Priority").new.as_str()),
            ("50", "70")
        );
        assert_eq!(f("Meta[a]").r#type, DIFF_TYPE_EDITED);
        assert_eq!(f("Meta[b]").r#type, DIFF_TYPE_ADDED);
        let dcs = &d.objects.unwrap()[0];
        assert_eq!(dcs.name, "Datacenters");
        assert_eq!(dcs.fields.as_ref().unwrap()[0].new, "dc2");
        let g = &d.task_groups.unwrap()[0];
        assert_eq!(g.r#type, DIFF_TYPE_EDITED);
        assert_eq!(g.fields.as_ref().unwrap()[0].name, "Count");
        let tasks = g.tasks.as_ref().unwrap();
        assert_eq!(tasks[0].r#type, DIFF_TYPE_EDITED);
        let config = &tasks[0].objects.as_ref().unwrap()[0];
        assert_eq!(config.name, "Config");
        assert_eq!(config.fields.as_ref().unwrap()[0].name, "args[0]");
        assert_eq!(tasks[1].r#type, DIFF_TYPE_ADDED);
    }

    #[test]
    fn constraints_are_a_set_of_objects() {
        let old = job(base());
        let mut v = base();
        v["Constraints"] =
            json!([{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}]);
        let d = diff_jobs(Some(&old), &job(v));
        let c = &d.objects.unwrap()[0];
        assert_eq!(
            (c.name.as_str(), c.r#type.as_str()),
            ("Constraint", DIFF_TYPE_ADDED)
        );
        assert_eq!(c.fields.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn edited_objects_carry_their_unchanged_fields_as_context() {
        let old = job(base());
        let mut v = base();
        v["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = json!(["2"]);
        v["Datacenters"] = json!(["dc1", "dc2"]);
        let d = diff_jobs(Some(&old), &job(v));
        // The job's own unchanged fields are not listed.
        assert!(d.fields.is_none(), "{:?}", d.fields);
        let dcs = &d.objects.unwrap()[0];
        let kept = dcs.fields.as_ref().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(
            (
                kept[1].r#type.as_str(),
                kept[1].old.as_str(),
                kept[1].new.as_str()
            ),
            (DIFF_TYPE_NONE, "dc1", "dc1")
        );
        let g = &d.task_groups.unwrap()[0];
        let task = &g.tasks.as_ref().unwrap()[0];
        // The task's own unchanged fields (Driver) are not listed; the edited Config's are.
        assert!(task.fields.is_none(), "{:?}", task.fields);
        let config = task.objects.as_ref().unwrap()[0].fields.clone().unwrap();
        let command = config.iter().find(|f| f.name == "command").unwrap();
        assert_eq!(command.r#type, DIFF_TYPE_NONE);
        assert_eq!(command.new, "/bin/sleep");
        // An edited nested struct lists its other fields too.
        let mut v = base();
        v["TaskGroups"][0]["RestartPolicy"] = json!({"Attempts": 9});
        let d = diff_jobs(Some(&old), &job(v));
        let g = &d.task_groups.unwrap()[0];
        let restart = g
            .objects
            .as_ref()
            .unwrap()
            .iter()
            .find(|o| o.name == "RestartPolicy")
            .unwrap();
        assert_eq!(restart.r#type, DIFF_TYPE_EDITED);
        let fields = restart.fields.as_ref().unwrap();
        assert!(
            fields
                .iter()
                .any(|f| f.name == "Attempts" && f.r#type == DIFF_TYPE_EDITED)
        );
        assert!(
            fields
                .iter()
                .any(|f| f.name == "Mode" && f.r#type == DIFF_TYPE_NONE)
        );
    }
}
