//! The compiled ACL object: the union of a token's policies, asked one capability at a time
//! (acl/acl.go `NewACL` and the `Allow*` methods, v1.9.7).

use crate::capabilities::namespace::DENY;
use crate::glob::{CapSet, Rules};
use crate::policy::{Level, Policy};

/// What a token may do. Build it once per set of policies and ask it per request.
///
/// Merging is per identical label, in policy order: a set holding `deny` takes nothing more,
/// and a rule carrying `deny` clears its label's set to `{deny}`. A name is then judged by its
/// exact label if there is one, whatever it grants, else by the closest glob. The single blocks
/// (agent, node, operator, quota, plugin) take the highest privilege, `deny` highest of all.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    management: bool,
    namespaces: Rules,
    node_pools: Rules,
    host_volumes: Rules,
    /// Keyed `"<namespace>\0<path>"`; a glob when either part has a `*`.
    variables: Rules,
    agent: Option<Level>,
    node: Option<Level>,
    operator: Option<Level>,
    quota: Option<Level>,
    plugin: Option<Level>,
    /// A client node's own identity (Nomad's virtual ClientACL).
    client: bool,
    /// Nomad's virtual `server = "read"`, which reads nodes.
    server_read: bool,
}

/// deny > write > read > list; `scale` counts for nothing.
fn max_privilege(current: Option<Level>, new: Level) -> Option<Level> {
    let both = [current, Some(new)];
    [Level::Deny, Level::Write, Level::Read, Level::List]
        .into_iter()
        .find(|l| both.contains(&Some(*l)))
}

fn merge(set: &mut CapSet, capabilities: &[String]) {
    if set.contains(DENY) {
        return;
    }
    for cap in capabilities {
        if cap == DENY {
            set.clear();
            set.insert(DENY.to_owned());
            return;
        }
        set.insert(cap.clone());
    }
}

fn grants_something(set: &CapSet) -> bool {
    !set.is_empty() && !set.contains(DENY)
}

impl Acl {
    /// Compiles policies, in the order the token lists them (its own, then its roles').
    pub fn new(policies: &[&Policy]) -> Acl {
        let mut acl = Acl::default();
        for policy in policies {
            for ns in &policy.namespaces {
                let glob = ns.name.contains('*');
                for path in ns.variables.iter().flat_map(|v| &v.paths) {
                    let key = format!("{}\0{}", ns.name, path.path_spec);
                    let glob = glob || path.path_spec.contains('*');
                    // Variables merge as a plain union: each path rule expanded its own deny.
                    acl.variables
                        .entry(&key, glob)
                        .extend(path.capabilities.iter().cloned());
                }
                merge(acl.namespaces.entry(&ns.name, glob), &ns.capabilities);
            }
            for np in &policy.node_pools {
                merge(
                    acl.node_pools.entry(&np.name, np.name.contains('*')),
                    &np.capabilities,
                );
            }
            for hv in &policy.host_volumes {
                merge(
                    acl.host_volumes.entry(&hv.name, hv.name.contains('*')),
                    &hv.capabilities,
                );
            }
            let single = |current: Option<Level>, new: Option<Level>| match new {
                Some(l) => max_privilege(current, l),
                None => current,
            };
            acl.agent = single(acl.agent, policy.agent);
            acl.node = single(acl.node, policy.node);
            acl.operator = single(acl.operator, policy.operator);
            acl.quota = single(acl.quota, policy.quota);
            acl.plugin = single(acl.plugin, policy.plugin);
        }
        acl
    }

    /// A management token: every check passes. Also what ACLs-disabled amounts to, except for
    /// the debug endpoints, which then need `enable_debug`.
    pub fn management() -> Acl {
        Acl {
            management: true,
            ..Acl::default()
        }
    }

    /// Nothing allowed: a token whose policies are all missing, or anonymous without an
    /// `anonymous` policy.
    pub fn deny_all() -> Acl {
        Acl::default()
    }

    /// A client node authenticated by its secret: client operations, agent read and node read
    /// (Nomad's ClientACL), no namespace capability.
    pub fn client_node() -> Acl {
        Acl {
            client: true,
            agent: Some(Level::Read),
            server_read: true,
            ..Acl::default()
        }
    }

    pub fn is_management(&self) -> bool {
        self.management
    }

    /// `cap` in namespace `ns`. `ns = "*"` asks whether any rule, exact or glob, holds it.
    pub fn allow_namespace_operation(&self, ns: &str, cap: &str) -> bool {
        if self.management {
            return true;
        }
        if ns == "*" && self.namespaces.any(|s| s.contains(cap)) {
            return true;
        }
        self.namespaces
            .matching(ns)
            .is_some_and(|s| s.contains(cap))
    }

    /// Any of `caps` in `ns`: endpoints that accept one of several capabilities.
    pub fn allow_namespace_any_of(&self, ns: &str, caps: &[&str]) -> bool {
        caps.iter().any(|c| self.allow_namespace_operation(ns, c))
    }

    /// Any capability but `deny` in `ns` (namespace visibility). A rule holding only a
    /// `variables` block grants nothing here.
    pub fn allow_namespace(&self, ns: &str) -> bool {
        if self.management {
            return true;
        }
        if ns == "*" && self.namespaces.any(grants_something) {
            return true;
        }
        self.namespaces.matching(ns).is_some_and(grants_something)
    }

    pub fn allow_node_pool_operation(&self, pool: &str, cap: &str) -> bool {
        self.management
            || self
                .node_pools
                .matching(pool)
                .is_some_and(|s| s.contains(cap))
    }

    /// Any capability but `deny` on the node pool.
    pub fn allow_node_pool(&self, pool: &str) -> bool {
        self.management || self.node_pools.matching(pool).is_some_and(grants_something)
    }

    pub fn allow_host_volume_operation(&self, volume: &str, cap: &str) -> bool {
        self.management
            || self
                .host_volumes
                .matching(volume)
                .is_some_and(|s| s.contains(cap))
    }

    /// Any capability but `deny` on the host volume.
    pub fn allow_host_volume(&self, volume: &str) -> bool {
        self.management
            || self
                .host_volumes
                .matching(volume)
                .is_some_and(grants_something)
    }

    /// `cap` (read, list, write, destroy) on the variable at `path` in `ns`: the exact
    /// (namespace, path) rule, else the closest glob over both. Workload identities' implicit
    /// access to `nomad/jobs/...` is not modelled.
    pub fn allow_variable_operation(&self, ns: &str, path: &str, cap: &str) -> bool {
        self.management
            || self
                .variables
                .matching(&format!("{ns}\0{path}"))
                .is_some_and(|s| s.contains(cap))
    }

    fn reads(level: Option<Level>) -> bool {
        matches!(level, Some(Level::Read | Level::Write))
    }

    fn writes(level: Option<Level>) -> bool {
        level == Some(Level::Write)
    }

    pub fn allow_agent_read(&self) -> bool {
        self.management || Self::reads(self.agent)
    }

    pub fn allow_agent_write(&self) -> bool {
        self.management || Self::writes(self.agent)
    }

    pub fn allow_node_read(&self) -> bool {
        self.management || Self::reads(self.node) || self.server_read
    }

    pub fn allow_node_write(&self) -> bool {
        self.management || Self::writes(self.node)
    }

    pub fn allow_operator_read(&self) -> bool {
        self.management || Self::reads(self.operator)
    }

    pub fn allow_operator_write(&self) -> bool {
        self.management || Self::writes(self.operator)
    }

    pub fn allow_quota_read(&self) -> bool {
        self.management || Self::reads(self.quota)
    }

    pub fn allow_quota_write(&self) -> bool {
        self.management || Self::writes(self.quota)
    }

    /// Nomad's quirk: exactly `read`, so `plugin { policy = "write" }` does not read.
    pub fn allow_plugin_read(&self) -> bool {
        self.management || self.plugin == Some(Level::Read)
    }

    pub fn allow_plugin_list(&self) -> bool {
        self.management || matches!(self.plugin, Some(Level::List | Level::Read))
    }

    /// Operations reserved to client nodes (and management).
    pub fn allow_client_op(&self) -> bool {
        self.management || self.client
    }
}
