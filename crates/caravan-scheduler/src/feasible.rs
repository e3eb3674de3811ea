//! Feasibility: whether a node can run a task group at all, whatever its load. Constraint
//! targets and operands (Nomad's `resolveTarget`/`checkConstraint`), drivers, network modes,
//! datacenters and node pools, and the per-computed-class memo of those answers
//! ([`Eligibility`]) that lets one check per class stand for every node of it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use caravan_structs::{Constraint, Job, Node, TaskGroup};
use regex::Regex;

use crate::util::FastMap;
use crate::version::{Version, VersionConstraints};

pub const CONSTRAINT_DISTINCT_HOSTS: &str = "distinct_hosts";
pub const CONSTRAINT_DISTINCT_PROPERTY: &str = "distinct_property";
/// Filter reasons Nomad reports.
pub const FILTER_MISSING_DRIVERS: &str = "missing drivers";
pub const FILTER_MISSING_NETWORK: &str = "missing network";
pub const FILTER_CLASS_INELIGIBLE: &str = "computed class ineligible";
pub const FILTER_HOST_VOLUMES: &str = "missing compatible host volumes";

/// Nomad's display form of a constraint, the `ConstraintFiltered` key.
pub fn constraint_string(c: &Constraint) -> String {
    format!("{} {} {}", c.l_target, c.operand, c.r_target)
}

/// Resolves a constraint target against a node: `${attr.*}`, `${meta.*}`, `${node.*}`, or a
/// literal. `None` when the node has no such attribute.
pub fn resolve_target<'a>(target: &'a str, node: &'a Node) -> Option<&'a str> {
    let Some(inner) = target.strip_prefix("${") else {
        return Some(target);
    };
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    match inner {
        "node.unique.id" => Some(&node.id),
        "node.datacenter" => Some(&node.datacenter),
        "node.unique.name" => Some(&node.name),
        "node.class" => Some(&node.node_class),
        "node.pool" => Some(&node.node_pool),
        _ => {
            if let Some(attr) = inner.strip_prefix("attr.") {
                node.attributes.as_ref()?.get(attr).map(String::as_str)
            } else if let Some(key) = inner.strip_prefix("meta.") {
                node.meta.as_ref()?.get(key).map(String::as_str)
            } else {
                None
            }
        }
    }
}

/// Parsed regexps and version constraints, memoised for one evaluation. Unparsable ones are
/// remembered as `None` and never match.
#[derive(Debug, Default)]
pub struct ConstraintCache {
    regexps: HashMap<String, Option<Regex>>,
    versions: HashMap<String, Option<VersionConstraints>>,
    semvers: HashMap<String, Option<VersionConstraints>>,
}

impl ConstraintCache {
    /// Whether `l operand r` holds; `None` targets are missing attributes.
    pub fn check(&mut self, operand: &str, l: Option<&str>, r: Option<&str>) -> bool {
        let both = l.zip(r);
        match operand {
            CONSTRAINT_DISTINCT_HOSTS | CONSTRAINT_DISTINCT_PROPERTY => true,
            "=" | "==" | "is" => both.is_some_and(|(l, r)| l == r),
            "!=" | "not" => l.unwrap_or("") != r.unwrap_or(""),
            "<" | "<=" | ">" | ">=" => both.is_some_and(|(l, r)| check_order(operand, l, r)),
            "is_set" => l.is_some(),
            "is_not_set" => l.is_none(),
            "version" => both.is_some_and(|(l, r)| self.version_match(l, r, false)),
            "semver" => both.is_some_and(|(l, r)| self.version_match(l, r, true)),
            "regexp" => both.is_some_and(|(l, r)| {
                self.regexps
                    .entry(r.to_owned())
                    .or_insert_with(|| Regex::new(r).ok())
                    .as_ref()
                    .is_some_and(|re| re.is_match(l))
            }),
            "set_contains" | "set_contains_all" => both.is_some_and(|(l, r)| {
                let have = split_set(l);
                r.split(',').all(|v| have.contains(v.trim()))
            }),
            "set_contains_any" => both.is_some_and(|(l, r)| {
                let have = split_set(l);
                r.split(',').any(|v| have.contains(v.trim()))
            }),
            _ => false,
        }
    }

    fn version_match(&mut self, l: &str, r: &str, semver: bool) -> bool {
        let Some(v) = Version::parse(l) else {
            return false;
        };
        let cache = if semver {
            &mut self.semvers
        } else {
            &mut self.versions
        };
        cache
            .entry(r.to_owned())
            .or_insert_with(|| {
                if semver {
                    VersionConstraints::parse_semver(r)
                } else {
                    VersionConstraints::parse(r)
                }
            })
            .as_ref()
            .is_some_and(|c| c.check(&v))
    }

    /// Whether `node` meets the constraint.
    pub fn meets(&mut self, c: &Constraint, node: &Node) -> bool {
        let l = resolve_target(&c.l_target, node);
        let r = resolve_target(&c.r_target, node);
        self.check(&c.operand, l, r)
    }
}

fn split_set(s: &str) -> BTreeSet<&str> {
    s.split(',').map(str::trim).collect()
}

/// Integers if both parse, else floats, else lexical order.
fn check_order(op: &str, l: &str, r: &str) -> bool {
    fn cmp<T: PartialOrd>(op: &str, l: T, r: T) -> bool {
        match op {
            "<" => l < r,
            "<=" => l <= r,
            ">" => l > r,
            ">=" => l >= r,
            _ => false,
        }
    }
    if let (Ok(a), Ok(b)) = (l.parse::<i64>(), r.parse::<i64>()) {
        return cmp(op, a, b);
    }
    if let (Ok(a), Ok(b)) = (l.parse::<f64>(), r.parse::<f64>()) {
        return cmp(op, a, b);
    }
    cmp(op, l, r)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whether every driver is detected and healthy on the node (or, for nodes without driver
/// info, enabled by its `driver.<name>` attribute).
pub fn has_drivers(node: &Node, drivers: &BTreeSet<String>) -> bool {
    drivers.iter().all(|d| {
        if let Some(info) = node.drivers.as_ref().and_then(|m| m.get(d)) {
            return info.detected && info.healthy;
        }
        node.attributes
            .as_ref()
            .and_then(|a| a.get(&format!("driver.{d}")))
            .and_then(|v| parse_go_bool(v))
            .unwrap_or(false)
    })
}

/// Whether the node offers the group's network mode and named host networks; the filter
/// reason when not. A node that fingerprinted no networks at all still offers `host`.
pub fn network_feasible(node: &Node, tg: &TaskGroup) -> Result<(), String> {
    let Some(ask) = tg.networks.as_ref().and_then(|n| n.first()) else {
        return Ok(());
    };
    let mode = if ask.mode.is_empty() {
        "host"
    } else {
        &ask.mode
    };
    if mode == "none" {
        return Ok(());
    }
    let networks = node
        .node_resources
        .as_ref()
        .and_then(|r| r.networks.as_ref());
    let has_mode = match networks {
        Some(n) if !n.is_empty() => n
            .iter()
            .any(|nw| (if nw.mode.is_empty() { "host" } else { &nw.mode }) == mode),
        _ => mode == "host",
    };
    if !has_mode {
        return Err(FILTER_MISSING_NETWORK.to_owned());
    }
    let ports = ask
        .reserved_ports
        .iter()
        .flatten()
        .chain(ask.dynamic_ports.iter().flatten());
    for port in ports {
        if port.host_network.is_empty() || port.host_network == "default" {
            continue;
        }
        let alias = match resolve_target(&port.host_network, node) {
            Some(a) => a,
            None => {
                return Err(format!(
                    "invalid host network {:?} template for port {:?}",
                    port.host_network, port.label
                ));
            }
        };
        let found = node
            .node_resources
            .as_ref()
            .and_then(|r| r.node_networks.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|n| n.addresses.iter().flatten())
            .any(|a| a.alias == alias);
        if !found {
            return Err(format!(
                "missing host network {alias:?} for port {:?}",
                port.label
            ));
        }
    }
    Ok(())
}

/// Whether the node exposes every host volume the group mounts (read-write asks need a
/// writable volume). Not memoised per class: host volumes are not part of it. Per-allocation
/// volume names and dynamic host volumes' claims are not checked.
pub fn has_host_volumes(node: &Node, tg: &TaskGroup) -> bool {
    tg.volumes
        .iter()
        .flat_map(|v| v.values())
        .filter(|req| req.r#type == "host")
        .all(|req| {
            node.host_volumes
                .as_ref()
                .and_then(|vols| vols.get(&req.source))
                .is_some_and(|vol| req.read_only || !vol.read_only)
        })
}

/// `*`-only glob match (go-glob), as Nomad matches job datacenters against nodes.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == s;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the node is in one of the job's datacenters (glob patterns).
pub fn in_datacenters(node: &Node, datacenters: &[String]) -> bool {
    datacenters
        .iter()
        .any(|dc| glob_match(dc, &node.datacenter))
}

/// Whether the node is in the job's node pool (`all` matches every pool; an empty pool on
/// either side is `default`).
pub fn in_pool(node: &Node, job: &Job) -> bool {
    let pool = if job.node_pool.is_empty() {
        "default"
    } else {
        &job.node_pool
    };
    let node_pool = if node.node_pool.is_empty() {
        "default"
    } else {
        &node.node_pool
    };
    pool == "all" || pool == node_pool
}

/// The node's computed class (set by the server; computed here when missing).
pub fn computed_class(node: &Node) -> Cow<'_, str> {
    if node.computed_class.is_empty() {
        Cow::Owned(node.compute_class())
    } else {
        Cow::Borrowed(&node.computed_class)
    }
}

/// A constraint whose answer differs between nodes of one computed class (it reads
/// `unique.*` values) escapes the class memo.
fn escapes(c: &Constraint) -> bool {
    [&c.l_target, &c.r_target].iter().any(|t| {
        t.starts_with("${node.unique.")
            || t.starts_with("${attr.unique.")
            || t.starts_with("${meta.unique.")
    })
}

/// The constraints of a group and its tasks, and the drivers its tasks use.
pub fn task_group_constraints(tg: &TaskGroup) -> (Vec<Constraint>, BTreeSet<String>) {
    let mut constraints: Vec<Constraint> = tg.constraints.clone().unwrap_or_default();
    let mut drivers = BTreeSet::new();
    for t in tg.tasks.iter().flatten() {
        drivers.insert(t.driver.clone());
        constraints.extend(t.constraints.iter().flatten().cloned());
    }
    (constraints, drivers)
}

/// What is known about a computed class for a job or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassStatus {
    Unknown,
    Eligible,
    Ineligible,
    /// The constraints read per-node values: check every node.
    Escaped,
}

/// What is known of one computed class.
#[derive(Debug, Default)]
struct ClassMemo {
    job: Option<bool>,
    /// Per group (few).
    groups: Vec<(String, bool)>,
}

/// Per-evaluation memo of feasibility by computed class, also reported on blocked evals
/// (`ClassEligibility`, `EscapedComputedClass`) so they unblock only when a class that could
/// help changes.
#[derive(Debug, Default)]
pub struct Eligibility {
    job_escaped: bool,
    tg_escaped: Vec<(String, bool)>,
    classes: FastMap<String, ClassMemo>,
}

impl Eligibility {
    pub fn set_job(&mut self, job: &Job) {
        self.job_escaped = job.constraints.iter().flatten().any(escapes);
        self.tg_escaped = job
            .task_groups
            .iter()
            .flatten()
            .map(|tg| {
                let (constraints, _) = task_group_constraints(tg);
                (tg.name.clone(), constraints.iter().any(escapes))
            })
            .collect();
    }

    /// Forgets every answer (the system scheduler checks node by node).
    pub fn reset(&mut self) {
        self.classes.clear();
    }

    /// What is known of the class for the job and for group `tg`.
    pub fn statuses(&self, tg: &str, class: &str) -> (ClassStatus, ClassStatus) {
        let memo = self.classes.get(class);
        let known = |v: Option<bool>| match v {
            Some(true) => ClassStatus::Eligible,
            Some(false) => ClassStatus::Ineligible,
            None => ClassStatus::Unknown,
        };
        let job = if self.job_escaped {
            ClassStatus::Escaped
        } else {
            known(memo.and_then(|m| m.job))
        };
        let tg_escaped = self
            .tg_escaped
            .iter()
            .any(|(name, escaped)| name == tg && *escaped);
        let group = if tg_escaped {
            ClassStatus::Escaped
        } else {
            known(memo.and_then(|m| {
                m.groups
                    .iter()
                    .find(|(name, _)| name == tg)
                    .map(|(_, e)| *e)
            }))
        };
        (job, group)
    }

    /// Only called the first time a class is answered, so the key copy is rare.
    fn memo(&mut self, class: &str) -> &mut ClassMemo {
        self.classes.entry(class.to_owned()).or_default()
    }

    pub fn set_job_eligibility(&mut self, eligible: bool, class: &str) {
        self.memo(class).job = Some(eligible);
    }

    pub fn set_tg_eligibility(&mut self, eligible: bool, tg: &str, class: &str) {
        let memo = self.memo(class);
        match memo.groups.iter_mut().find(|(name, _)| name == tg) {
            Some((_, e)) => *e = eligible,
            None => memo.groups.push((tg.to_owned(), eligible)),
        }
    }

    pub fn has_escaped(&self) -> bool {
        self.job_escaped || self.tg_escaped.iter().any(|(_, e)| *e)
    }

    /// Class → eligible: eligible for some group and for the job.
    pub fn classes(&self) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for (class, memo) in &self.classes {
            for (_, eligible) in &memo.groups {
                if *eligible {
                    out.insert(class.clone(), true);
                } else {
                    out.entry(class.clone()).or_insert(false);
                }
            }
        }
        for (class, memo) in &self.classes {
            match memo.job {
                Some(true) => {
                    out.entry(class.clone()).or_insert(true);
                }
                Some(false) => {
                    out.insert(class.clone(), false);
                }
                None => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::DriverInfo;

    fn node() -> Node {
        Node {
            id: "n1".into(),
            name: "web-1".into(),
            datacenter: "us-east-1a".into(),
            node_class: "large".into(),
            node_pool: "default".into(),
            attributes: Some(BTreeMap::from([
                ("kernel.name".to_owned(), "linux".to_owned()),
                ("cpu.numcores".to_owned(), "8".to_owned()),
                ("driver.exec".to_owned(), "1".to_owned()),
                ("tags".to_owned(), "a, b,c".to_owned()),
            ])),
            meta: Some(BTreeMap::from([("rack".to_owned(), "r1".to_owned())])),
            drivers: Some(BTreeMap::from([(
                "docker".to_owned(),
                DriverInfo {
                    detected: true,
                    healthy: false,
                    ..Default::default()
                },
            )])),
            ..Default::default()
        }
    }

    fn holds(l: &str, op: &str, r: &str) -> bool {
        let c = Constraint {
            l_target: l.into(),
            operand: op.into(),
            r_target: r.into(),
        };
        ConstraintCache::default().meets(&c, &node())
    }

    #[test]
    fn operators() {
        assert!(holds("${attr.kernel.name}", "=", "linux"));
        assert!(holds("${attr.kernel.name}", "==", "linux"));
        assert!(holds("${attr.kernel.name}", "is", "linux"));
        assert!(!holds("${attr.missing}", "=", ""));
        assert!(holds("${attr.kernel.name}", "!=", "windows"));
        assert!(holds("${attr.missing}", "not", "windows"));
        assert!(holds("${attr.cpu.numcores}", ">", "4"));
        assert!(holds("${attr.cpu.numcores}", "<", "10"));
        assert!(holds("${attr.kernel.name}", ">=", "linux"));
        assert!(holds("${attr.kernel.name}", "<=", "m"));
        assert!(holds("${attr.kernel.name}", "regexp", "^lin"));
        assert!(!holds("${attr.kernel.name}", "regexp", "(["));
        assert!(holds("${attr.tags}", "set_contains", "a,c"));
        assert!(!holds("${attr.tags}", "set_contains", "a,d"));
        assert!(holds("${attr.tags}", "set_contains_any", "d,b"));
        assert!(holds("${attr.kernel.name}", "is_set", ""));
        assert!(holds("${attr.nope}", "is_not_set", ""));
        assert!(holds("${meta.rack}", "=", "r1"));
        assert!(holds("${node.unique.id}", "=", "n1"));
        assert!(holds("${node.unique.name}", "=", "web-1"));
        assert!(holds("${node.datacenter}", "=", "us-east-1a"));
        assert!(holds("${node.class}", "=", "large"));
        assert!(holds("${node.pool}", "=", "default"));
        assert!(holds("${attr.cpu.numcores}", "version", ">= 4, < 9"));
        assert!(holds("${attr.cpu.numcores}", "semver", ">= 8.0.0"));
        assert!(!holds("${attr.cpu.numcores}", "bogus", "1"));
    }

    #[test]
    fn drivers_and_globs() {
        let n = node();
        assert!(has_drivers(&n, &BTreeSet::from(["exec".to_owned()])));
        assert!(!has_drivers(&n, &BTreeSet::from(["docker".to_owned()])));
        assert!(!has_drivers(&n, &BTreeSet::from(["qemu".to_owned()])));
        assert!(glob_match("us-*", "us-east-1a"));
        assert!(glob_match("*-1a", "us-east-1a"));
        assert!(glob_match("us-*-1*", "us-east-1a"));
        assert!(!glob_match("eu-*", "us-east-1a"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("us-east", "us-east-1a"));
    }
}
