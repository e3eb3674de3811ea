//! A parsed policy: validation with Nomad's messages, the shorthand expansions, and the
//! `RulesJSON` rendering the policy endpoint returns.

use serde_json::{Map, Value, json};

use crate::capabilities::{host_volume, namespace, node_pool, variables};
use crate::decode::{self, RawLabeled, RawNamespace, RawPath, RawPolicy, RawSingle, RawVariables};
use crate::error::{PolicyError, go_quote, go_strings};
use crate::syntax;

/// A `policy = "..."` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Deny,
    /// Only for `plugin`.
    List,
    Read,
    Write,
    /// Namespaces only; other blocks accept it and it grants nothing.
    Scale,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Deny => "deny",
            Level::List => "list",
            Level::Read => "read",
            Level::Write => "write",
            Level::Scale => "scale",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "deny" => Level::Deny,
            "list" => Level::List,
            "read" => Level::Read,
            "write" => Level::Write,
            "scale" => Level::Scale,
            _ => return None,
        })
    }

    /// The values every block but `plugin` takes.
    fn parse_common(s: &str) -> Option<Level> {
        Level::parse(s).filter(|l| *l != Level::List)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid policy. Capabilities are expanded: the explicit ones first, then the shorthand's,
/// duplicates kept, as Nomad stores them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub namespaces: Vec<NamespacePolicy>,
    pub node_pools: Vec<NodePoolPolicy>,
    pub host_volumes: Vec<HostVolumePolicy>,
    pub agent: Option<Level>,
    pub node: Option<Level>,
    pub operator: Option<Level>,
    pub quota: Option<Level>,
    pub plugin: Option<Level>,
    /// The rules text as given.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespacePolicy {
    /// The label: a namespace name or a glob.
    pub name: String,
    pub policy: Option<Level>,
    pub capabilities: Vec<String>,
    pub variables: Option<VariablesPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariablesPolicy {
    pub paths: Vec<VariablesPathPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VariablesPathPolicy {
    /// A path or a glob, without a leading `/`.
    pub path_spec: String,
    /// Expanded: `deny` alone replaces the set, `read` adds `list`.
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePoolPolicy {
    pub name: String,
    pub policy: Option<Level>,
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostVolumePolicy {
    pub name: String,
    pub policy: Option<Level>,
    pub capabilities: Vec<String>,
}

/// Parses and validates ACL rules (HCL1, or JSON when the text starts with `{`), as Nomad's
/// `acl.Parse` does. Empty rules are valid and grant nothing; unknown keys are ignored.
pub fn parse_policy(rules: &str) -> Result<Policy, PolicyError> {
    if rules.is_empty() {
        return Ok(Policy::default());
    }
    let items = syntax::parse(rules).map_err(|e| PolicyError::Syntax(e.0))?;
    let raw = decode::decode(&items).map_err(PolicyError::Syntax)?;
    if raw.is_empty() {
        return Err(PolicyError::NoBlocks(rules.to_owned()));
    }
    let mut policy = validate(raw)?;
    policy.raw = rules.to_owned();
    Ok(policy)
}

/// `^[a-zA-Z0-9-*]{1,128}$` (namespace and host volume labels), with `_` too for node pools.
fn valid_label(name: &str, underscore: bool) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'*' || (underscore && b == b'_')
        })
}

fn dump_namespace(ns: &RawNamespace) -> String {
    format!(
        "&acl.NamespacePolicy{{Name:{}, Policy:{}, Capabilities:{}, Variables:{}}}",
        go_quote(&ns.name),
        go_quote(&ns.policy),
        go_strings(ns.capabilities.as_ref()),
        dump_variables(ns.variables.as_ref()),
    )
}

fn dump_variables(v: Option<&RawVariables>) -> String {
    let Some(v) = v else {
        return "(*acl.VariablesPolicy)(nil)".to_owned();
    };
    let paths = match &v.paths {
        None => "[]*acl.VariablesPathPolicy(nil)".to_owned(),
        Some(paths) => {
            let items: Vec<String> = paths
                .iter()
                .map(|p| {
                    format!(
                        "&acl.VariablesPathPolicy{{PathSpec:{}, Capabilities:{}}}",
                        go_quote(&p.path_spec),
                        go_strings(p.capabilities.as_ref())
                    )
                })
                .collect();
            format!("[]*acl.VariablesPathPolicy{{{}}}", items.join(", "))
        }
    };
    format!("&acl.VariablesPolicy{{Paths:{paths}}}")
}

fn dump_host_volume(hv: &RawLabeled) -> String {
    format!(
        "&acl.HostVolumePolicy{{Name:{}, Policy:{}, Capabilities:{}}}",
        go_quote(&hv.name),
        go_quote(&hv.policy),
        go_strings(hv.capabilities.as_ref()),
    )
}

fn expand_namespace_policy(level: Level) -> Vec<&'static str> {
    match level {
        Level::Deny => vec![namespace::DENY],
        Level::Read => namespace::READ.to_vec(),
        Level::Write => [namespace::READ, namespace::WRITE_EXTRA].concat(),
        Level::Scale => namespace::SCALE.to_vec(),
        Level::List => Vec::new(),
    }
}

fn expand_node_pool_policy(level: Level) -> Vec<&'static str> {
    match level {
        Level::Deny => vec![node_pool::DENY],
        Level::Read => vec![node_pool::READ],
        Level::Write => vec![node_pool::DELETE, node_pool::READ, node_pool::WRITE],
        Level::Scale | Level::List => Vec::new(),
    }
}

fn expand_host_volume_policy(level: Level) -> Vec<&'static str> {
    match level {
        Level::Deny => vec![host_volume::DENY],
        Level::Read => vec![host_volume::MOUNT_READONLY],
        Level::Write => vec![host_volume::MOUNT_READONLY, host_volume::MOUNT_READWRITE],
        Level::Scale | Level::List => Vec::new(),
    }
}

fn expand_variables_capabilities(mut caps: Vec<String>) -> Vec<String> {
    if caps.iter().any(|c| c == variables::DENY) {
        return vec![variables::DENY.to_owned()];
    }
    if caps.iter().any(|c| c == variables::READ) && !caps.iter().any(|c| c == variables::LIST) {
        caps.push(variables::LIST.to_owned());
    }
    caps
}

/// The policy level of a labeled block: `Ok(None)` when unset.
fn block_level(policy: &str) -> Result<Option<Level>, ()> {
    if policy.is_empty() {
        return Ok(None);
    }
    Level::parse_common(policy).map(Some).ok_or(())
}

fn with_expansion(explicit: Option<Vec<String>>, extra: Vec<&'static str>) -> Vec<String> {
    let mut caps = explicit.unwrap_or_default();
    caps.extend(extra.into_iter().map(str::to_owned));
    caps
}

/// acl.Parse's checks, in its order, and the expansions.
fn validate(raw: RawPolicy) -> Result<Policy, PolicyError> {
    let mut policy = Policy::default();
    for ns in raw.namespaces.unwrap_or_default() {
        policy.namespaces.push(validate_namespace(ns)?);
    }
    for np in raw.node_pools.unwrap_or_default() {
        if !valid_label(&np.name, true) {
            return Err(PolicyError::NodePoolName(np.name));
        }
        let Ok(level) = block_level(&np.policy) else {
            return Err(PolicyError::NodePoolPolicy {
                policy: np.policy,
                name: np.name,
            });
        };
        if let Some(bad) = np
            .capabilities
            .iter()
            .flatten()
            .find(|c| !node_pool::ALL.contains(&c.as_str()))
        {
            return Err(PolicyError::NodePoolCapability {
                capability: bad.clone(),
                name: np.name,
            });
        }
        policy.node_pools.push(NodePoolPolicy {
            capabilities: with_expansion(
                np.capabilities,
                level.map(expand_node_pool_policy).unwrap_or_default(),
            ),
            name: np.name,
            policy: level,
        });
    }
    for hv in raw.host_volumes.unwrap_or_default() {
        if !valid_label(&hv.name, false) {
            return Err(PolicyError::HostVolumeName(dump_host_volume(&hv)));
        }
        let Ok(level) = block_level(&hv.policy) else {
            return Err(PolicyError::HostVolumePolicy(dump_host_volume(&hv)));
        };
        if let Some(bad) = hv
            .capabilities
            .iter()
            .flatten()
            .find(|c| !host_volume::ALL.contains(&c.as_str()))
        {
            return Err(PolicyError::HostVolumeCapability {
                capability: bad.clone(),
                dump: dump_host_volume(&hv),
            });
        }
        policy.host_volumes.push(HostVolumePolicy {
            capabilities: with_expansion(
                hv.capabilities,
                level.map(expand_host_volume_policy).unwrap_or_default(),
            ),
            name: hv.name,
            policy: level,
        });
    }
    policy.agent = single("agent", "AgentPolicy", raw.agent, Level::parse_common)?;
    policy.node = single("node", "NodePolicy", raw.node, Level::parse_common)?;
    policy.operator = single(
        "operator",
        "OperatorPolicy",
        raw.operator,
        Level::parse_common,
    )?;
    policy.quota = single("quota", "QuotaPolicy", raw.quota, Level::parse_common)?;
    // plugin takes `list` and not `scale`.
    let plugin_level = |s: &str| Level::parse(s).filter(|l| *l != Level::Scale);
    policy.plugin = single("plugin", "PluginPolicy", raw.plugin, plugin_level)?;
    Ok(policy)
}

fn single(
    block: &'static str,
    go_type: &str,
    raw: Option<RawSingle>,
    parse: impl Fn(&str) -> Option<Level>,
) -> Result<Option<Level>, PolicyError> {
    let Some(raw) = raw else { return Ok(None) };
    match parse(&raw.policy) {
        Some(level) => Ok(Some(level)),
        None => Err(PolicyError::BlockPolicy {
            block,
            dump: format!("&acl.{go_type}{{Policy:{}}}", go_quote(&raw.policy)),
        }),
    }
}

fn validate_namespace(ns: RawNamespace) -> Result<NamespacePolicy, PolicyError> {
    if !valid_label(&ns.name, false) {
        return Err(PolicyError::NamespaceName(dump_namespace(&ns)));
    }
    let Ok(level) = block_level(&ns.policy) else {
        return Err(PolicyError::NamespacePolicy(dump_namespace(&ns)));
    };
    if let Some(bad) = ns
        .capabilities
        .iter()
        .flatten()
        .find(|c| !namespace::ALL.contains(&c.as_str()))
    {
        return Err(PolicyError::NamespaceCapability {
            capability: bad.clone(),
            dump: dump_namespace(&ns),
        });
    }
    let variables = match ns.variables {
        None => None,
        Some(vars) => Some(validate_variables(
            &ns.name,
            vars.paths.unwrap_or_default(),
        )?),
    };
    Ok(NamespacePolicy {
        capabilities: with_expansion(
            ns.capabilities,
            level.map(expand_namespace_policy).unwrap_or_default(),
        ),
        name: ns.name,
        policy: level,
        variables,
    })
}

fn validate_variables(ns: &str, paths: Vec<RawPath>) -> Result<VariablesPolicy, PolicyError> {
    if paths.is_empty() {
        return Err(PolicyError::VariablesWithoutPaths(ns.to_owned()));
    }
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        if path.path_spec.is_empty() {
            return Err(PolicyError::VariablePathMissing(ns.to_owned()));
        }
        if path.path_spec.starts_with('/') {
            return Err(PolicyError::VariablePathLeadingSlash {
                path: path.path_spec,
                namespace: ns.to_owned(),
            });
        }
        let caps = path.capabilities.unwrap_or_default();
        if let Some(bad) = caps.iter().find(|c| !variables::ALL.contains(&c.as_str())) {
            return Err(PolicyError::VariableCapability {
                capability: bad.clone(),
                namespace: ns.to_owned(),
            });
        }
        out.push(VariablesPathPolicy {
            path_spec: path.path_spec,
            capabilities: expand_variables_capabilities(caps),
        });
    }
    Ok(VariablesPolicy { paths: out })
}

/// Go's JSON of a string slice: `null` when there is none.
fn strings_json(caps: &[String]) -> Value {
    if caps.is_empty() {
        Value::Null
    } else {
        json!(caps)
    }
}

fn level_json(level: Option<Level>) -> &'static str {
    level.map(Level::as_str).unwrap_or("")
}

fn single_json(level: Option<Level>) -> Value {
    match level {
        Some(l) => json!({"Policy": l.as_str()}),
        None => Value::Null,
    }
}

fn list_json<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items.iter().map(f).collect())
    }
}

impl Policy {
    /// True when the policy grants nothing (empty rules).
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.node_pools.is_empty()
            && self.host_volumes.is_empty()
            && self.agent.is_none()
            && self.node.is_none()
            && self.operator.is_none()
            && self.quota.is_none()
            && self.plugin.is_none()
    }

    /// Nomad's `RulesJSON`: the Go struct acl.Policy as encoding/json writes it (Go field
    /// names, `null` for absent blocks and empty lists). An explicit `capabilities = []` also
    /// renders `null` here, where Go would write `[]`.
    pub fn rules_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "Namespaces".into(),
            list_json(&self.namespaces, |ns| {
                let vars = match &ns.variables {
                    None => Value::Null,
                    Some(v) => json!({"Paths": list_json(&v.paths, |p| json!({
                        "PathSpec": p.path_spec,
                        "Capabilities": strings_json(&p.capabilities),
                    }))}),
                };
                json!({
                    "Name": ns.name,
                    "Policy": level_json(ns.policy),
                    "Capabilities": strings_json(&ns.capabilities),
                    "Variables": vars,
                })
            }),
        );
        m.insert(
            "NodePools".into(),
            list_json(&self.node_pools, |np| {
                json!({
                    "Name": np.name,
                    "Policy": level_json(np.policy),
                    "Capabilities": strings_json(&np.capabilities),
                })
            }),
        );
        m.insert(
            "HostVolumes".into(),
            list_json(&self.host_volumes, |hv| {
                json!({
                    "Name": hv.name,
                    "Policy": level_json(hv.policy),
                    "Capabilities": strings_json(&hv.capabilities),
                })
            }),
        );
        m.insert("Agent".into(), single_json(self.agent));
        m.insert("Node".into(), single_json(self.node));
        m.insert("Operator".into(), single_json(self.operator));
        m.insert("Quota".into(), single_json(self.quota));
        m.insert("Plugin".into(), single_json(self.plugin));
        m.insert("Raw".into(), Value::String(self.raw.clone()));
        Value::Object(m)
    }
}
