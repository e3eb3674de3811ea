//! The task environment: the `NOMAD_*` variables a task runs with, and `${...}` interpolation
//! of its env and driver config (Nomad's `client/taskenv`).
//!
//! The environment is built in Nomad's order, each step overwriting the one before:
//!
//! 1. directories, resource limits, alloc/job/group/task identity, datacenter, namespace,
//!    region;
//! 2. ports: the task's own networks, then other tasks' ports (`NOMAD_PORT_<task>_<label>`),
//!    then the group network's ports, then the group's allocated ports, then the allocation's
//!    network namespace (`NOMAD_ALLOC_{INTERFACE,IP,ADDR}_<label>`);
//! 3. `NOMAD_META_<key>` and `NOMAD_META_<KEY>` from job → group → task meta (the task's wins);
//! 4. the agent's own environment (non-image drivers only), where not already set;
//! 5. the task's `env`, which overrides everything, built-ins included, as in Nomad. Meta,
//!    agent and task values are interpolated against steps 1–4 only, never against their
//!    siblings (Nomad's result there depends on Go's random map order);
//! 6. keys starting with `NOMAD_ADDR_`, `NOMAD_IP_`, `NOMAD_PORT_`, `NOMAD_HOST_PORT_` or
//!    `NOMAD_META_` are cleaned: any byte other than `[A-Za-z0-9_.]` becomes `_`
//!    (`NOMAD_PORT_my-port` → `NOMAD_PORT_my_port`). Other prefixes (`NOMAD_HOST_ADDR_`,
//!    `NOMAD_ALLOC_PORT_`, …) keep the label as written: Nomad cleans only those five.
//!
//! Interpolation follows Nomad's two dialects:
//!
//! - [`TaskEnv::interpolate`] is Nomad's `ReplaceEnv`, used for env values, meta and other
//!   plain strings: `${name}` where `name` is `[A-Za-z0-9_.-]+`, looked up in the environment,
//!   then in the node values (`attr.*`, `meta.*`, `node.unique.id`, `node.unique.name`,
//!   `node.datacenter`, `node.class`, `node.pool`, `node.region`). Anything else, unknown
//!   names included, is left exactly as written. There is no `$${` escape here: HCL consumed
//!   it when the jobspec was parsed.
//! - [`TaskEnv::interpolate_json`] / [`TaskEnv::interpolate_config`] are for driver config,
//!   which Nomad evaluates as HCL templates: the same names, plus `env.X` / `env["X"]`,
//!   `node.attr.x` / `node.meta.x`, spaces inside `${ }`, the `$${` escape, and nested map
//!   keys. Nomad rejects a config with an unknown reference; Caravan keeps it as written.

use std::collections::BTreeMap;

use caravan_structs::{
    AllocNetworkStatus, AllocatedPortMapping, Allocation, Job, NetworkResource, Node, Port, Task,
    TaskGroup,
};
use serde_json::Value;

/// `NOMAD_ALLOC_DIR`: the group's shared `alloc/` directory.
pub const ALLOC_DIR: &str = "NOMAD_ALLOC_DIR";
/// `NOMAD_TASK_DIR`: the task's private `local/` directory.
pub const TASK_LOCAL_DIR: &str = "NOMAD_TASK_DIR";
/// `NOMAD_SECRETS_DIR`: the task's `secrets/` directory.
pub const SECRETS_DIR: &str = "NOMAD_SECRETS_DIR";
pub const MEM_LIMIT: &str = "NOMAD_MEMORY_LIMIT";
pub const MEM_MAX_LIMIT: &str = "NOMAD_MEMORY_MAX_LIMIT";
pub const CPU_LIMIT: &str = "NOMAD_CPU_LIMIT";
pub const CPU_CORES: &str = "NOMAD_CPU_CORES";
pub const ALLOC_ID: &str = "NOMAD_ALLOC_ID";
pub const SHORT_ALLOC_ID: &str = "NOMAD_SHORT_ALLOC_ID";
pub const ALLOC_NAME: &str = "NOMAD_ALLOC_NAME";
pub const ALLOC_INDEX: &str = "NOMAD_ALLOC_INDEX";
pub const TASK_NAME: &str = "NOMAD_TASK_NAME";
pub const GROUP_NAME: &str = "NOMAD_GROUP_NAME";
pub const JOB_ID: &str = "NOMAD_JOB_ID";
pub const JOB_NAME: &str = "NOMAD_JOB_NAME";
pub const JOB_PARENT_ID: &str = "NOMAD_JOB_PARENT_ID";
pub const DATACENTER: &str = "NOMAD_DC";
pub const CGROUP_PARENT: &str = "NOMAD_PARENT_CGROUP";
pub const NAMESPACE: &str = "NOMAD_NAMESPACE";
pub const REGION: &str = "NOMAD_REGION";

pub const ADDR_PREFIX: &str = "NOMAD_ADDR_";
pub const HOST_ADDR_PREFIX: &str = "NOMAD_HOST_ADDR_";
pub const IP_PREFIX: &str = "NOMAD_IP_";
pub const HOST_IP_PREFIX: &str = "NOMAD_HOST_IP_";
pub const PORT_PREFIX: &str = "NOMAD_PORT_";
pub const HOST_PORT_PREFIX: &str = "NOMAD_HOST_PORT_";
pub const ALLOC_PORT_PREFIX: &str = "NOMAD_ALLOC_PORT_";
/// `NOMAD_ALLOC_{INTERFACE,IP,ADDR}_<label>`: the allocation's network namespace.
pub const ALLOC_PREFIX: &str = "NOMAD_ALLOC_";
pub const META_PREFIX: &str = "NOMAD_META_";

/// Agent variables never passed to a task (Nomad's default `env.denylist`): credentials.
pub const DEFAULT_ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "VAULT_TOKEN",
    "NOMAD_LICENSE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// Keys cleaned of invalid characters after the environment is built (Nomad #2405). Only
/// these: Nomad leaves `NOMAD_HOST_ADDR_`, `NOMAD_ALLOC_PORT_` and the like as written.
const PREFIXES_TO_CLEAN: [&str; 5] = [
    ADDR_PREFIX,
    IP_PREFIX,
    PORT_PREFIX,
    HOST_PORT_PREFIX,
    META_PREFIX,
];

/// The task's directories as the task sees them: host paths for `raw_exec`, `/alloc`,
/// `/local`, `/secrets`, `/tmp` inside an `exec` chroot. An empty path sets no variable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskDirs {
    pub alloc_dir: String,
    /// The task's `local/` directory (`NOMAD_TASK_DIR`).
    pub task_dir: String,
    pub secrets_dir: String,
    /// Not exported (Nomad sets no variable for it); here so one value describes the task's
    /// view of its sandbox.
    pub tmp_dir: String,
}

/// A task's environment and the node values `${...}` may refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskEnv {
    env: BTreeMap<String, String>,
    /// `attr.*`, `meta.*`, `node.*` → value.
    node_attrs: BTreeMap<String, String>,
}

/// Gathers what a [`TaskEnv`] is built from. [`TaskEnv::build`] covers the common case; the
/// builder adds the agent's environment, which Nomad passes to non-image drivers only.
#[derive(Debug, Clone)]
pub struct TaskEnvBuilder<'a> {
    alloc: &'a Allocation,
    job: &'a Job,
    group: &'a TaskGroup,
    task: &'a Task,
    node: &'a Node,
    region: &'a str,
    dirs: TaskDirs,
    host_env: BTreeMap<String, String>,
}

impl<'a> TaskEnvBuilder<'a> {
    /// `region` is the agent's region (`NOMAD_REGION`, `node.region`).
    pub fn new(
        alloc: &'a Allocation,
        job: &'a Job,
        group: &'a TaskGroup,
        task: &'a Task,
        node: &'a Node,
        region: &'a str,
    ) -> Self {
        TaskEnvBuilder {
            alloc,
            job,
            group,
            task,
            node,
            region,
            dirs: TaskDirs::default(),
            host_env: BTreeMap::new(),
        }
    }

    pub fn dirs(mut self, dirs: &TaskDirs) -> Self {
        self.dirs = dirs.clone();
        self
    }

    /// The agent's environment, already filtered (see [`crate::taskenv::host_env`]). Each value is
    /// interpolated and set where nothing else set the key; the task's `env` still wins. Task
    /// env values may refer to it (`PATH = "${PATH}:/opt/bin"`).
    pub fn host_env(mut self, host_env: BTreeMap<String, String>) -> Self {
        self.host_env = host_env;
        self
    }

    pub fn build(&self) -> TaskEnv {
        let node_attrs = self.node_attrs();
        let mut env = BTreeMap::new();
        self.add_identity(&mut env);
        self.add_ports(&mut env);

        // Meta and env values refer to what is built so far, node values first (Nomad's
        // order for this step). Each refers to the snapshot, not to its siblings, so the
        // result does not depend on iteration order (Go's map order is random).
        let snapshot = env.clone();
        for (k, v) in self.meta() {
            let key = replace_env(&k, &[&node_attrs, &snapshot]);
            env.insert(key, replace_env(&v, &[&node_attrs, &snapshot]));
        }
        let snapshot = env.clone();
        for (k, v) in &self.host_env {
            if !env.contains_key(k) {
                env.insert(k.clone(), replace_env(v, &[&node_attrs, &snapshot]));
            }
        }
        let snapshot = env.clone();
        for (k, v) in self.task.env.iter().flatten() {
            env.insert(k.clone(), replace_env(v, &[&node_attrs, &snapshot]));
        }

        let mut cleaned = BTreeMap::new();
        for (k, v) in env {
            let key = if PREFIXES_TO_CLEAN.iter().any(|p| k.starts_with(p)) {
                clean_env_var(&k)
            } else {
                k
            };
            cleaned.insert(key, v);
        }
        TaskEnv {
            env: cleaned,
            node_attrs,
        }
    }

    /// `node.*`, `attr.*` and `meta.*` for interpolation.
    fn node_attrs(&self) -> BTreeMap<String, String> {
        let n = self.node;
        let mut m = BTreeMap::new();
        if !self.region.is_empty() {
            m.insert("node.region".to_owned(), self.region.to_owned());
        }
        m.insert("node.unique.id".to_owned(), n.id.clone());
        m.insert("node.unique.name".to_owned(), n.name.clone());
        m.insert("node.class".to_owned(), n.node_class.clone());
        m.insert("node.datacenter".to_owned(), n.datacenter.clone());
        m.insert("node.pool".to_owned(), n.node_pool.clone());
        for (k, v) in n.attributes.iter().flatten() {
            m.insert(format!("attr.{k}"), v.clone());
        }
        for (k, v) in n.meta.iter().flatten() {
            m.insert(format!("meta.{k}"), v.clone());
        }
        m
    }

    /// Directories, limits and names; Nomad leaves out the empty ones.
    fn add_identity(&self, env: &mut BTreeMap<String, String>) {
        let (alloc, job, task) = (self.alloc, self.job, self.task);
        let mut set = |k: &str, v: String| {
            if !v.is_empty() {
                env.insert(k.to_owned(), v);
            }
        };
        set(ALLOC_DIR, self.dirs.alloc_dir.clone());
        set(TASK_LOCAL_DIR, self.dirs.task_dir.clone());
        set(SECRETS_DIR, self.dirs.secrets_dir.clone());

        // The task's ask, replaced by what the scheduler allocated when there is an entry.
        let res = task.resources.as_ref();
        let mut cpu = res.map_or(0, |r| r.cpu);
        let mut mem = res.map_or(0, |r| r.memory_mb);
        let mut mem_max = res.map_or(0, |r| r.memory_max_mb);
        let mut cores = String::new();
        let allocated = alloc.allocated_resources.as_ref();
        if let Some(tr) = allocated
            .and_then(|ar| ar.tasks.as_ref())
            .and_then(|t| t.get(&task.name))
        {
            cpu = tr.cpu.cpu_shares;
            mem = tr.memory.memory_mb;
            mem_max = tr.memory.memory_max_mb;
            cores = cpuset_list(tr.cpu.reserved_cores.as_deref().unwrap_or_default());
        }
        let nonzero = |n: i64| if n == 0 { String::new() } else { n.to_string() };
        set(MEM_LIMIT, nonzero(mem));
        set(MEM_MAX_LIMIT, nonzero(mem_max));
        set(CPU_LIMIT, nonzero(cpu));
        set(CPU_CORES, cores);

        set(ALLOC_ID, alloc.id.clone());
        set(
            SHORT_ALLOC_ID,
            alloc.id.get(..8).unwrap_or(&alloc.id).to_owned(),
        );
        set(ALLOC_NAME, alloc.name.clone());
        set(GROUP_NAME, alloc.task_group.clone());
        set(ALLOC_INDEX, alloc_index(alloc).to_string());
        set(TASK_NAME, task.name.clone());
        set(JOB_ID, job.id.clone());
        set(JOB_NAME, job.name.clone());
        set(JOB_PARENT_ID, job.parent_id.clone());
        set(DATACENTER, self.node.datacenter.clone());
        set(CGROUP_PARENT, self.node.cgroup_parent.clone());
        set(NAMESPACE, alloc.namespace.clone());
        set(REGION, self.region.to_owned());
    }

    fn add_ports(&self, env: &mut BTreeMap<String, String>) {
        let Some(ar) = self.alloc.allocated_resources.as_ref() else {
            return;
        };
        let tasks = ar.tasks.as_ref();
        // The task's own networks (pre-1.0 task-level `network`): host values.
        if let Some(tr) = tasks.and_then(|t| t.get(&self.task.name)) {
            for n in tr.networks.iter().flatten() {
                for p in net_ports(n) {
                    add_task_port(env, p, &n.ip);
                }
            }
        }
        // Other tasks' ports, by task name.
        for (name, tr) in tasks.into_iter().flatten() {
            if *name == self.task.name {
                continue;
            }
            for n in tr.networks.iter().flatten() {
                for p in net_ports(n) {
                    let port = p.value.to_string();
                    let label = format!("{name}_{}", p.label);
                    env.insert(
                        format!("{ADDR_PREFIX}{label}"),
                        join_host_port(&n.ip, &port),
                    );
                    env.insert(format!("{IP_PREFIX}{label}"), n.ip.clone());
                    env.insert(format!("{PORT_PREFIX}{label}"), port);
                }
            }
        }
        // The group network: the port inside is `To` when mapped.
        for n in ar.shared.networks.iter().flatten() {
            for p in net_ports(n) {
                env.insert(
                    format!("{PORT_PREFIX}{}", p.label),
                    mapped_port(p.to, p.value),
                );
                env.insert(
                    format!("{HOST_PORT_PREFIX}{}", p.label),
                    p.value.to_string(),
                );
            }
        }
        if let Some(ports) = ar.shared.ports.as_ref() {
            for p in ports {
                add_allocated_port(env, p);
            }
            if let Some(status) = self.alloc.network_status.as_ref() {
                for p in ports {
                    add_alloc_network(env, p, status);
                }
            }
        }
    }

    /// Job → group → task meta, the most specific winning, as `NOMAD_META_<key>` and
    /// `NOMAD_META_<KEY>`. A dispatched job's optional meta keys are there even when unset.
    fn meta(&self) -> BTreeMap<String, String> {
        let mut combined: BTreeMap<&str, &str> = BTreeMap::new();
        for meta in [&self.job.meta, &self.group.meta, &self.task.meta] {
            for (k, v) in meta.iter().flatten() {
                combined.insert(k, v);
            }
        }
        let mut out = BTreeMap::new();
        if self.job.dispatched {
            let optional = self
                .job
                .parameterized_job
                .as_ref()
                .and_then(|p| p.meta_optional.as_ref());
            for k in optional.into_iter().flatten() {
                out.insert(format!("{META_PREFIX}{}", k.to_uppercase()), String::new());
                out.insert(format!("{META_PREFIX}{k}"), String::new());
            }
        }
        for (k, v) in combined {
            out.insert(format!("{META_PREFIX}{}", k.to_uppercase()), v.to_owned());
            out.insert(format!("{META_PREFIX}{k}"), v.to_owned());
        }
        out
    }
}

impl TaskEnv {
    /// The environment of `task` of `alloc` on `node`, without the agent's own environment
    /// (use [`TaskEnvBuilder`] to add it).
    pub fn build(
        alloc: &Allocation,
        job: &Job,
        group: &TaskGroup,
        task: &Task,
        node: &Node,
        region: &str,
        dirs: &TaskDirs,
    ) -> TaskEnv {
        TaskEnvBuilder::new(alloc, job, group, task, node, region)
            .dirs(dirs)
            .build()
    }

    /// The full environment for the process.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The node values (`attr.*`, `meta.*`, `node.*`) `${...}` may refer to.
    pub fn node_attrs(&self) -> &BTreeMap<String, String> {
        &self.node_attrs
    }

    /// Nomad's `ReplaceEnv`: `${name}` from the environment, then the node values; anything
    /// unknown or malformed is kept as written.
    pub fn interpolate(&self, s: &str) -> String {
        replace_env(s, &[&self.env, &self.node_attrs])
    }

    /// Every string of a driver config value, recursively, map keys included (HCL evaluates
    /// an object's keys as templates too). Config dialect: see the module docs.
    pub fn interpolate_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.interpolate_template(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.interpolate_json(i)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.interpolate_template(k), self.interpolate_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A task's `Config`: the top-level keys are the driver's attribute names and stay as
    /// they are; every value is interpolated with [`TaskEnv::interpolate_json`].
    pub fn interpolate_config(&self, config: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        config
            .iter()
            .map(|(k, v)| (k.clone(), self.interpolate_json(v)))
            .collect()
    }

    /// One HCL template string of a driver config.
    fn interpolate_template(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(inner) = tail.strip_prefix("${") {
                match inner.find('}') {
                    Some(end) => {
                        let expr = &inner[..end];
                        match self.lookup_config(expr.trim()) {
                            Some(v) => out.push_str(v),
                            None => out.push_str(&tail[..end + 3]),
                        }
                        rest = &inner[end + 1..];
                    }
                    None => {
                        out.push_str(tail);
                        rest = "";
                    }
                }
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }

    /// What a config `${expr}` names, if it names something known.
    fn lookup_config(&self, expr: &str) -> Option<&str> {
        if let Some(key) = expr
            .strip_prefix("env[\"")
            .and_then(|k| k.strip_suffix("\"]"))
            .or_else(|| expr.strip_prefix("env."))
        {
            return self.env.get(key).map(String::as_str);
        }
        if let Some(rest) = expr.strip_prefix("node.attr.") {
            return self
                .node_attrs
                .get(&format!("attr.{rest}"))
                .map(String::as_str);
        }
        if let Some(rest) = expr.strip_prefix("node.meta.") {
            return self
                .node_attrs
                .get(&format!("meta.{rest}"))
                .map(String::as_str);
        }
        if !is_var_name(expr) {
            return None;
        }
        self.env
            .get(expr)
            .or_else(|| self.node_attrs.get(expr))
            .map(String::as_str)
    }
}

/// The agent's environment minus `denylist` (Nomad's `env.denylist`), for
/// [`TaskEnvBuilder::host_env`]. Variables that are not valid Unicode are skipped.
pub fn host_env(denylist: &[&str]) -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !denylist.contains(&k.as_str()))
        .collect()
}

/// A `${...}` name Nomad's `ReplaceEnv` accepts.
fn is_var_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Replaces each `${name}` found in the first of `maps` that has it; keeps the rest as written.
fn replace_env(s: &str, maps: &[&BTreeMap<String, String>]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let inner = &rest[i + 2..];
        let len = inner
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        if len > 0 && inner.as_bytes().get(len) == Some(&b'}') {
            let name = &inner[..len];
            match maps.iter().find_map(|m| m.get(name)) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[i..i + len + 3]),
            }
            rest = &inner[len + 1..];
        } else {
            // Not a reference: keep the `$` and look again from the next byte, so `$${a}`
            // still finds `${a}` (the regex Nomad uses matches the same way).
            out.push('$');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Nomad's `CleanEnvVar`: each byte other than `[A-Za-z_.]`, or a digit after the first
/// byte, becomes `_` (every byte of a multi-byte character).
fn clean_env_var(s: &str) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            let ok =
                b == b'_' || b == b'.' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit());
            if ok { char::from(b) } else { '_' }
        })
        .collect()
}

/// The `N` of an allocation named `<job>.<group>[N]`; 0 when the name does not parse, as in
/// Nomad (which cuts the name at the job ID and group lengths).
fn alloc_index(alloc: &Allocation) -> u64 {
    let name = &alloc.name;
    let prefix = alloc.job_id.len() + alloc.task_group.len() + 2;
    if name.len() <= 3 || name.len() <= prefix {
        return 0;
    }
    name.get(prefix..name.len() - 1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Linux cpuset list format: `0-3,6`.
fn cpuset_list(cores: &[u16]) -> String {
    let mut ids = cores.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let low = ids[i];
        let mut high = low;
        while i + 1 < ids.len() && ids[i + 1] == high + 1 {
            i += 1;
            high = ids[i];
        }
        parts.push(if low == high {
            low.to_string()
        } else {
            format!("{low}-{high}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `host:port`, with brackets around an IPv6 host (Go's `net.JoinHostPort`).
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The port a task inside the allocation's network binds: `To` when mapped, else the host's.
fn mapped_port(to: i64, value: i64) -> String {
    if to > 0 { to } else { value }.to_string()
}

fn net_ports(n: &NetworkResource) -> impl Iterator<Item = &Port> {
    n.reserved_ports
        .iter()
        .flatten()
        .chain(n.dynamic_ports.iter().flatten())
}

/// A port of the task's own network: every value is the host's.
fn add_task_port(env: &mut BTreeMap<String, String>, p: &Port, ip: &str) {
    let port = p.value.to_string();
    let family = if ip.contains(':') {
        "NOMAD_IPv6_"
    } else {
        "NOMAD_IPv4_"
    };
    env.insert(format!("{IP_PREFIX}{}", p.label), ip.to_owned());
    env.insert(format!("{family}{}", p.label), ip.to_owned());
    env.insert(format!("{HOST_PORT_PREFIX}{}", p.label), port.clone());
    env.insert(
        format!("{ADDR_PREFIX}{}", p.label),
        join_host_port(ip, &port),
    );
    env.insert(format!("{PORT_PREFIX}{}", p.label), port);
}

/// A group port: addresses are the host's, `NOMAD_PORT_`/`NOMAD_ALLOC_PORT_` the mapped port.
fn add_allocated_port(env: &mut BTreeMap<String, String>, p: &AllocatedPortMapping) {
    let l = &p.label;
    let host_port = p.value.to_string();
    let addr = join_host_port(&p.host_ip, &host_port);
    env.insert(format!("{ADDR_PREFIX}{l}"), addr.clone());
    env.insert(format!("{HOST_ADDR_PREFIX}{l}"), addr);
    env.insert(format!("{IP_PREFIX}{l}"), p.host_ip.clone());
    env.insert(format!("{HOST_IP_PREFIX}{l}"), p.host_ip.clone());
    let inside = mapped_port(p.to, p.value);
    env.insert(format!("{PORT_PREFIX}{l}"), inside.clone());
    env.insert(format!("{ALLOC_PORT_PREFIX}{l}"), inside);
    env.insert(format!("{HOST_PORT_PREFIX}{l}"), host_port);
}

/// The allocation's network namespace address for a group port (Nomad uses `To` as is).
fn add_alloc_network(
    env: &mut BTreeMap<String, String>,
    p: &AllocatedPortMapping,
    status: &AllocNetworkStatus,
) {
    let l = &p.label;
    env.insert(
        format!("{ALLOC_PREFIX}INTERFACE_{l}"),
        status.interface_name.clone(),
    );
    env.insert(format!("{ALLOC_PREFIX}IP_{l}"), status.address.clone());
    env.insert(
        format!("{ALLOC_PREFIX}ADDR_{l}"),
        join_host_port(&status.address, &p.to.to_string()),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use caravan_structs::{
        AllocatedCpuResources, AllocatedMemoryResources, AllocatedResources,
        AllocatedSharedResources, AllocatedTaskResources, ParameterizedJobConfig, Resources,
    };
    use serde_json::json;

    const ALLOC_UUID: &str = "a8198d79-cfdb-6593-a999-1e9adabcba2e";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn port(label: &str, value: i64, to: i64) -> Port {
        Port {
            label: label.into(),
            value,
            to,
            ..Default::default()
        }
    }

    fn mapping(label: &str, value: i64, to: i64) -> AllocatedPortMapping {
        AllocatedPortMapping {
            host_ip: "10.0.0.5".into(),
            label: label.into(),
            to,
            value,
        }
    }

    fn task() -> Task {
        Task {
            name: "server".into(),
            driver: "raw_exec".into(),
            env: Some(map(&[
                ("LISTEN", "0.0.0.0:${NOMAD_PORT_http}"),
                ("KERNEL", "${attr.kernel.name}"),
                ("RACK", "${meta.rack}"),
                ("UNKNOWN", "${foo.bar} and ${NOMAD_NOPE}"),
                ("TIER", "${NOMAD_META_tier}"),
            ])),
            meta: Some(map(&[("tier", "front"), ("my-key.x", "k")])),
            resources: Some(Resources {
                cpu: 100,
                memory_mb: 64,
                ..Default::default()
            }),
            config: Some(BTreeMap::from([
                ("command".to_owned(), json!("${NOMAD_TASK_DIR}/bin/server")),
                (
                    "args".to_owned(),
                    json!(["-port", "${NOMAD_PORT_http}", ["${node.unique.name}"]]),
                ),
            ])),
            ..Default::default()
        }
    }

    fn group() -> TaskGroup {
        TaskGroup {
            name: "frontend".into(),
            meta: Some(map(&[("tier", "group-tier"), ("owner", "ops")])),
            tasks: Some(vec![task()]),
            ..Default::default()
        }
    }

    fn job() -> Job {
        Job {
            id: "web".into(),
            name: "web".into(),
            namespace: "default".into(),
            meta: Some(map(&[("owner", "job-owner"), ("team", "core")])),
            task_groups: Some(vec![group()]),
            ..Default::default()
        }
    }

    fn alloc() -> Allocation {
        Allocation {
            id: ALLOC_UUID.into(),
            name: "web.frontend[3]".into(),
            job_id: "web".into(),
            task_group: "frontend".into(),
            namespace: "default".into(),
            allocated_resources: Some(AllocatedResources {
                shared: AllocatedSharedResources {
                    disk_mb: 300,
                    networks: Some(vec![NetworkResource {
                        ip: "10.0.0.5".into(),
                        mode: "host".into(),
                        reserved_ports: Some(vec![port("http", 8080, 0)]),
                        dynamic_ports: Some(vec![port("metrics-port", 23456, 9090)]),
                        ..Default::default()
                    }]),
                    ports: Some(vec![
                        mapping("http", 8080, 0),
                        mapping("metrics-port", 23456, 9090),
                    ]),
                },
                tasks: Some(BTreeMap::from([(
                    "server".to_owned(),
                    AllocatedTaskResources {
                        cpu: AllocatedCpuResources {
                            cpu_shares: 500,
                            reserved_cores: None,
                        },
                        memory: AllocatedMemoryResources {
                            memory_mb: 256,
                            memory_max_mb: 0,
                        },
                        ..Default::default()
                    },
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node() -> Node {
        Node {
            id: "f7476465-4d6e-c0de-26d0-e383c49be941".into(),
            name: "client-1".into(),
            datacenter: "dc1".into(),
            node_class: "large".into(),
            node_pool: "default".into(),
            attributes: Some(map(&[("kernel.name", "linux"), ("cpu.arch", "amd64")])),
            meta: Some(map(&[("rack", "r1")])),
            ..Default::default()
        }
    }

    fn dirs() -> TaskDirs {
        TaskDirs {
            alloc_dir: "/alloc".into(),
            task_dir: "/local".into(),
            secrets_dir: "/secrets".into(),
            tmp_dir: "/tmp".into(),
        }
    }

    fn build_with(alloc: &Allocation, job: &Job, task: &Task) -> TaskEnv {
        TaskEnv::build(alloc, job, &group(), task, &node(), "global", &dirs())
    }

    fn build() -> TaskEnv {
        build_with(&alloc(), &job(), &task())
    }

    fn get<'e>(env: &'e TaskEnv, k: &str) -> Option<&'e str> {
        env.env().get(k).map(String::as_str)
    }

    #[test]
    fn identity_directories_and_limits() {
        let e = build();
        let expect = [
            ("NOMAD_ALLOC_DIR", "/alloc"),
            ("NOMAD_TASK_DIR", "/local"),
            ("NOMAD_SECRETS_DIR", "/secrets"),
            ("NOMAD_ALLOC_ID", ALLOC_UUID),
            ("NOMAD_SHORT_ALLOC_ID", "a8198d79"),
            ("NOMAD_ALLOC_NAME", "web.frontend[3]"),
            ("NOMAD_ALLOC_INDEX", "3"),
            ("NOMAD_JOB_ID", "web"),
            ("NOMAD_JOB_NAME", "web"),
            ("NOMAD_GROUP_NAME", "frontend"),
            ("NOMAD_TASK_NAME", "server"),
            ("NOMAD_NAMESPACE", "default"),
            ("NOMAD_REGION", "global"),
            ("NOMAD_DC", "dc1"),
            // The allocated values win over the task's ask.
            ("NOMAD_CPU_LIMIT", "500"),
            ("NOMAD_MEMORY_LIMIT", "256"),
        ];
        for (k, v) in expect {
            assert_eq!(get(&e, k), Some(v), "{k}");
        }
        for k in [
            "NOMAD_JOB_PARENT_ID",
            "NOMAD_MEMORY_MAX_LIMIT",
            "NOMAD_CPU_CORES",
            "NOMAD_PARENT_CGROUP",
        ] {
            assert_eq!(get(&e, k), None, "{k}");
        }
        // No tmp variable: Nomad sets none.
        assert!(!e.env().values().any(|v| v == "/tmp"));
    }

    #[test]
    fn cores_max_memory_and_fallback_to_the_task_ask() {
        let mut a = alloc();
        let tr = a
            .allocated_resources
            .as_mut()
            .unwrap()
            .tasks
            .as_mut()
            .unwrap()
            .get_mut("server")
            .unwrap();
        tr.cpu.reserved_cores = Some(vec![3, 0, 1, 2, 6]);
        tr.memory.memory_max_mb = 512;
        let e = build_with(&a, &job(), &task());
        assert_eq!(get(&e, "NOMAD_CPU_CORES"), Some("0-3,6"));
        assert_eq!(get(&e, "NOMAD_MEMORY_MAX_LIMIT"), Some("512"));

        // No allocated entry for the task: its resources block.
        a.allocated_resources = None;
        let e = build_with(&a, &job(), &task());
        assert_eq!(get(&e, "NOMAD_CPU_LIMIT"), Some("100"));
        assert_eq!(get(&e, "NOMAD_MEMORY_LIMIT"), Some("64"));
        assert_eq!(get(&e, "NOMAD_PORT_http"), None);
    }

    #[test]
    fn group_ports_static_and_dynamic() {
        let e = build();
        let expect = [
            ("NOMAD_PORT_http", "8080"),
            ("NOMAD_HOST_PORT_http", "8080"),
            ("NOMAD_ALLOC_PORT_http", "8080"),
            ("NOMAD_IP_http", "10.0.0.5"),
            ("NOMAD_HOST_IP_http", "10.0.0.5"),
            ("NOMAD_ADDR_http", "10.0.0.5:8080"),
            ("NOMAD_HOST_ADDR_http", "10.0.0.5:8080"),
            // Mapped with `to`: the port inside is `to`; addresses stay the host's.
            ("NOMAD_PORT_metrics_port", "9090"),
            ("NOMAD_HOST_PORT_metrics_port", "23456"),
            ("NOMAD_IP_metrics_port", "10.0.0.5"),
            ("NOMAD_ADDR_metrics_port", "10.0.0.5:23456"),
            // Prefixes Nomad does not clean keep the dash.
            ("NOMAD_ALLOC_PORT_metrics-port", "9090"),
            ("NOMAD_HOST_ADDR_metrics-port", "10.0.0.5:23456"),
            ("NOMAD_HOST_IP_metrics-port", "10.0.0.5"),
        ];
        for (k, v) in expect {
            assert_eq!(get(&e, k), Some(v), "{k}");
        }
        assert_eq!(get(&e, "NOMAD_PORT_metrics-port"), None);
        // No network namespace status: no NOMAD_ALLOC_IP_*.
        assert!(!e.env().keys().any(|k| k.starts_with("NOMAD_ALLOC_IP_")));
    }

    #[test]
    fn alloc_network_status_gives_alloc_ip_and_addr() {
        let mut a = alloc();
        a.network_status = Some(AllocNetworkStatus {
            address: "172.26.64.10".into(),
            interface_name: "eth0".into(),
            ..Default::default()
        });
        let e = build_with(&a, &job(), &task());
        assert_eq!(get(&e, "NOMAD_ALLOC_IP_http"), Some("172.26.64.10"));
        assert_eq!(get(&e, "NOMAD_ALLOC_INTERFACE_http"), Some("eth0"));
        assert_eq!(
            get(&e, "NOMAD_ALLOC_ADDR_metrics-port"),
            Some("172.26.64.10:9090")
        );
    }

    #[test]
    fn task_networks_and_other_tasks_ports() {
        let mut a = alloc();
        let ar = a.allocated_resources.as_mut().unwrap();
        ar.shared = AllocatedSharedResources::default();
        let tasks = ar.tasks.as_mut().unwrap();
        tasks.get_mut("server").unwrap().networks = Some(vec![NetworkResource {
            ip: "fd00::5".into(),
            dynamic_ports: Some(vec![port("rpc", 31000, 0)]),
            ..Default::default()
        }]);
        tasks.insert(
            "sidecar".into(),
            AllocatedTaskResources {
                networks: Some(vec![NetworkResource {
                    ip: "10.0.0.5".into(),
                    reserved_ports: Some(vec![port("admin", 9000, 0)]),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        );
        let e = build_with(&a, &job(), &task());
        assert_eq!(get(&e, "NOMAD_PORT_rpc"), Some("31000"));
        assert_eq!(get(&e, "NOMAD_HOST_PORT_rpc"), Some("31000"));
        assert_eq!(get(&e, "NOMAD_IP_rpc"), Some("fd00::5"));
        assert_eq!(get(&e, "NOMAD_IPv6_rpc"), Some("fd00::5"));
        assert_eq!(get(&e, "NOMAD_ADDR_rpc"), Some("[fd00::5]:31000"));
        assert_eq!(get(&e, "NOMAD_ADDR_sidecar_admin"), Some("10.0.0.5:9000"));
        assert_eq!(get(&e, "NOMAD_IP_sidecar_admin"), Some("10.0.0.5"));
        assert_eq!(get(&e, "NOMAD_PORT_sidecar_admin"), Some("9000"));
    }

    #[test]
    fn meta_merges_job_group_task_with_both_cases_and_cleaned_keys() {
        let e = build();
        assert_eq!(get(&e, "NOMAD_META_tier"), Some("front"));
        assert_eq!(get(&e, "NOMAD_META_TIER"), Some("front"));
        assert_eq!(get(&e, "NOMAD_META_owner"), Some("ops"));
        assert_eq!(get(&e, "NOMAD_META_OWNER"), Some("ops"));
        assert_eq!(get(&e, "NOMAD_META_team"), Some("core"));
        // Dashes become underscores; dots stay (Nomad's CleanEnvVar allows them).
        assert_eq!(get(&e, "NOMAD_META_my_key.x"), Some("k"));
        assert_eq!(get(&e, "NOMAD_META_MY_KEY.X"), Some("k"));
        assert!(
            !e.env()
                .keys()
                .any(|k| k.contains('-') && k.starts_with("NOMAD_META_"))
        );
    }

    #[test]
    fn dispatched_optional_meta_is_present_even_when_unset() {
        let mut j = job();
        j.dispatched = true;
        j.parameterized_job = Some(ParameterizedJobConfig {
            meta_optional: Some(vec!["input".into(), "team".into()]),
            ..Default::default()
        });
        let e = build_with(&alloc(), &j, &task());
        assert_eq!(get(&e, "NOMAD_META_input"), Some(""));
        assert_eq!(get(&e, "NOMAD_META_INPUT"), Some(""));
        assert_eq!(get(&e, "NOMAD_META_team"), Some("core"));
    }

    #[test]
    fn task_env_is_interpolated_and_unknowns_are_kept() {
        let e = build();
        assert_eq!(get(&e, "LISTEN"), Some("0.0.0.0:8080"));
        assert_eq!(get(&e, "KERNEL"), Some("linux"));
        assert_eq!(get(&e, "RACK"), Some("r1"));
        assert_eq!(get(&e, "TIER"), Some("front"));
        assert_eq!(get(&e, "UNKNOWN"), Some("${foo.bar} and ${NOMAD_NOPE}"));
    }

    #[test]
    fn task_env_overrides_built_ins_as_in_nomad() {
        let mut t = task();
        t.env = Some(map(&[
            ("NOMAD_TASK_NAME", "renamed"),
            ("NOMAD_PORT_my-port", "1"),
        ]));
        let e = build_with(&alloc(), &job(), &t);
        assert_eq!(get(&e, "NOMAD_TASK_NAME"), Some("renamed"));
        assert_eq!(get(&e, "NOMAD_PORT_my_port"), Some("1"));
    }

    #[test]
    fn host_env_fills_gaps_and_task_env_can_extend_it() {
        let mut t = task();
        t.env = Some(map(&[("PATH", "${PATH}:/opt/bin")]));
        let (a, j, g, n) = (alloc(), job(), group(), node());
        let e = TaskEnvBuilder::new(&a, &j, &g, &t, &n, "global")
            .dirs(&dirs())
            .host_env(map(&[
                ("PATH", "/usr/bin"),
                ("HOME", "/root"),
                ("NOMAD_TASK_NAME", "from-host"),
            ]))
            .build();
        assert_eq!(get(&e, "PATH"), Some("/usr/bin:/opt/bin"));
        assert_eq!(get(&e, "HOME"), Some("/root"));
        assert_eq!(get(&e, "NOMAD_TASK_NAME"), Some("server"));

        let filtered = host_env(&["PATH"]);
        assert!(!filtered.contains_key("PATH"));
    }

    #[test]
    fn interpolate_env_dialect() {
        let e = build();
        assert_eq!(
            e.interpolate("${node.unique.id}/${node.unique.name}/${node.datacenter}"),
            "f7476465-4d6e-c0de-26d0-e383c49be941/client-1/dc1"
        );
        assert_eq!(
            e.interpolate("${node.class} ${node.pool} ${node.region} ${attr.cpu.arch}"),
            "large default global amd64"
        );
        assert_eq!(e.interpolate("${NOMAD_ALLOC_INDEX}"), "3");
        // Unknown, malformed and unterminated references stay as written.
        assert_eq!(e.interpolate("${foo.bar}"), "${foo.bar}");
        assert_eq!(
            e.interpolate("${ NOMAD_ALLOC_INDEX }"),
            "${ NOMAD_ALLOC_INDEX }"
        );
        assert_eq!(e.interpolate("${env.HOME}"), "${env.HOME}");
        assert_eq!(e.interpolate("${}"), "${}");
        assert_eq!(
            e.interpolate("tail ${NOMAD_ALLOC_INDEX"),
            "tail ${NOMAD_ALLOC_INDEX"
        );
        assert_eq!(e.interpolate("$$ $"), "$$ $");
        // No escape in this dialect: `$${x}` still contains the reference `${x}`.
        assert_eq!(e.interpolate("$${NOMAD_ALLOC_INDEX}"), "$3");
        assert_eq!(e.interpolate("${a${NOMAD_ALLOC_INDEX}}"), "${a3}");
        assert_eq!(e.interpolate("né ${meta.rack} ✓"), "né r1 ✓");
    }

    #[test]
    fn interpolate_json_config_dialect() {
        let e = build();
        let config = json!({
            "command": "${NOMAD_TASK_DIR}/bin/server",
            "args": ["-listen", "${NOMAD_IP_http}:${NOMAD_PORT_http}", ["${attr.kernel.name}", 7]],
            "labels": {"${meta.rack}": {"name": "${node.unique.name}", "on": true}},
            "unknown": "${foo.bar}",
            "escaped": "$${NOMAD_PORT_http}",
            "hcl": "${ env[\"NOMAD_TASK_NAME\"] }-${env.NOMAD_DC}-${node.attr.cpu.arch}-${node.meta.rack}",
            "null": null,
            "n": 1.5,
        });
        assert_eq!(
            e.interpolate_json(&config),
            json!({
                "command": "/local/bin/server",
                "args": ["-listen", "10.0.0.5:8080", ["linux", 7]],
                "labels": {"r1": {"name": "client-1", "on": true}},
                "unknown": "${foo.bar}",
                "escaped": "${NOMAD_PORT_http}",
                "hcl": "server-dc1-amd64-r1",
                "null": null,
                "n": 1.5,
            })
        );
        assert_eq!(
            e.interpolate_json(&json!("${unterminated")),
            json!("${unterminated")
        );
    }

    #[test]
    fn interpolate_config_keeps_top_level_names() {
        let e = build();
        let mut config = task().config.unwrap();
        config.insert("${NOMAD_DC}".into(), json!("x"));
        let out = e.interpolate_config(&config);
        assert_eq!(out["command"], json!("/local/bin/server"));
        assert_eq!(out["args"], json!(["-port", "8080", ["client-1"]]));
        assert_eq!(out["${NOMAD_DC}"], json!("x"));
    }

    #[test]
    fn alloc_index_parsing() {
        let mk = |name: &str, job: &str, group: &str| Allocation {
            name: name.into(),
            job_id: job.into(),
            task_group: group.into(),
            ..Default::default()
        };
        assert_eq!(alloc_index(&mk("web.frontend[12]", "web", "frontend")), 12);
        assert_eq!(alloc_index(&mk("a.b.c[7]", "a.b", "c")), 7);
        assert_eq!(alloc_index(&mk("web.frontend[x]", "web", "frontend")), 0);
        assert_eq!(alloc_index(&mk("", "web", "frontend")), 0);
        assert_eq!(alloc_index(&mk("wéb.g[4]", "wéb", "g")), 4);
        assert_eq!(alloc_index(&mk("w.g[4]", "wéb", "g")), 0);
    }

    #[test]
    fn helpers() {
        assert_eq!(clean_env_var("NOMAD_PORT_a-b.c"), "NOMAD_PORT_a_b.c");
        assert_eq!(clean_env_var("9x"), "_x");
        assert_eq!(clean_env_var("é"), "__");
        assert_eq!(cpuset_list(&[]), "");
        assert_eq!(cpuset_list(&[5]), "5");
        assert_eq!(cpuset_list(&[1, 2, 4, 5, 6, 9]), "1-2,4-6,9");
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
        assert_eq!(mapped_port(0, 8080), "8080");
        assert_eq!(mapped_port(80, 8080), "80");
    }
}
