//! The ACL capability each route needs, declared in the route table. Enforcement is one layer
//! reading this declaration (`crate::authz`); only the routes acting on an allocation check
//! its namespace in their handler, through the `Authz` the layer hands them.

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
    /// Any valid token; what it sees is filtered (`/v1/namespaces`).
    Authenticated,
    /// Any capability on the namespace named in the path (`/v1/namespace/:name`).
    NamespaceAny,
    /// An ACL endpoint: the server decides from the caller's token (ACL.md §2–§4).
    AclEndpoint,
    /// Only a management token (cluster maintenance such as `/v1/system/gc`).
    Management,
    /// A node pool capability: `read`, `write` or `delete`.
    NodePool(&'static str),
    /// A namespace capability such as `read-job`, in the request's namespace.
    Namespace(&'static str),
    /// Any of these namespace capabilities, in the request's namespace.
    NamespaceAnyOf(&'static [&'static str]),
    /// Any of these namespace capabilities, in the namespace of the allocation the route acts
    /// on (checked by the handler once it has the allocation: CVE-2019-16742).
    ObjectNamespace(&'static [&'static str]),
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
            Capability::Management => "management",
            Capability::AclEndpoint => "acl",
            Capability::Authenticated => "authenticated",
            Capability::NamespaceAny => "namespace:any",
            Capability::NodePool("read") => "node_pool:read",
            Capability::NodePool("write") => "node_pool:write",
            Capability::NodePool("delete") => "node_pool:delete",
            Capability::NodePool(cap) => cap,
            Capability::Namespace(cap) => cap,
            Capability::NamespaceAnyOf(caps) | Capability::ObjectNamespace(caps) => {
                caps.first().copied().unwrap_or("namespace")
            }
        }
    }
}

/// Attached to each request by the route table, for the enforcement layer and for logs.
#[derive(Debug, Clone, Copy)]
pub struct RequiredCapability(pub Capability);
