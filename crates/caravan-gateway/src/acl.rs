//! The ACL capability each route needs, declared in the route table. Enforcement is one layer
//! reading this declaration (ACLs are off in `-dev`); no handler checks permissions itself.

/// A capability as the spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// No token needed (status probes).
    None,
    NodeRead,
    NodeWrite,
    AgentRead,
    OperatorRead,
    OperatorWrite,
    /// A node pool capability: `read`, `write` or `delete`.
    NodePool(&'static str),
    /// A namespace capability such as `read-job`.
    Namespace(&'static str),
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::None => "none",
            Capability::NodeRead => "node:read",
            Capability::NodeWrite => "node:write",
            Capability::AgentRead => "agent:read",
            Capability::OperatorRead => "operator:read",
            Capability::OperatorWrite => "operator:write",
            Capability::NodePool("read") => "node_pool:read",
            Capability::NodePool("write") => "node_pool:write",
            Capability::NodePool("delete") => "node_pool:delete",
            Capability::NodePool(cap) => cap,
            Capability::Namespace(cap) => cap,
        }
    }
}

/// Attached to each request by the route table, for the enforcement layer and for logs.
#[derive(Debug, Clone, Copy)]
pub struct RequiredCapability(pub Capability);
