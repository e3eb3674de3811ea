//! From the syntax tree to Nomad's policy structs, as HCL1's reflection decoder fills them, then
//! Nomad's own repair of unlabeled blocks (`hclDecode` in acl/policy.go).
//!
//! The decoder's rules that matter here: keys match field names case-insensitively; labeled items
//! (`namespace "x" {}`) decode before unlabeled ones (`namespace {}`); repeated single blocks
//! (`agent {}` twice) decode into the same struct; repeated lists append; numbers and booleans
//! are accepted where a string is wanted. Nomad then gives every unlabeled namespace, node pool,
//! host volume and variables path the name `""` (the CVE-2023-3072 fix) by position, so the name
//! check rejects it; where the positions do not line up, Go panics and Nomad reports the panic.

use crate::syntax::{Item, Node, key_matches};

/// The structs of acl/policy.go, before validation. `Option<Vec>` keeps Go's nil/empty
/// distinction for the error dumps.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawPolicy {
    pub namespaces: Option<Vec<RawNamespace>>,
    pub node_pools: Option<Vec<RawLabeled>>,
    pub host_volumes: Option<Vec<RawLabeled>>,
    pub agent: Option<RawSingle>,
    pub node: Option<RawSingle>,
    pub operator: Option<RawSingle>,
    pub quota: Option<RawSingle>,
    pub plugin: Option<RawSingle>,
}

impl RawPolicy {
    pub fn is_empty(&self) -> bool {
        fn none<T>(v: &Option<Vec<T>>) -> bool {
            v.as_ref().is_none_or(Vec::is_empty)
        }
        none(&self.namespaces)
            && none(&self.node_pools)
            && none(&self.host_volumes)
            && self.agent.is_none()
            && self.node.is_none()
            && self.operator.is_none()
            && self.quota.is_none()
            && self.plugin.is_none()
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawNamespace {
    pub name: String,
    pub policy: String,
    pub capabilities: Option<Vec<String>>,
    pub variables: Option<RawVariables>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawVariables {
    pub paths: Option<Vec<RawPath>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawPath {
    pub path_spec: String,
    pub capabilities: Option<Vec<String>>,
}

/// A node pool or host volume block.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawLabeled {
    pub name: String,
    pub policy: String,
    pub capabilities: Option<Vec<String>>,
}

/// agent, node, operator, quota, plugin.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RawSingle {
    pub policy: String,
}

/// Decodes the root items; the error is the text after `Failed to parse ACL Policy: `.
pub(crate) fn decode(root: &[Item]) -> Result<RawPolicy, String> {
    let mut policy = RawPolicy::default();
    decode_policy("root", DNode::ObjList(root.to_vec()), &mut policy)?;
    fix_unlabeled(root, &mut policy)?;
    Ok(policy)
}

/// The node kinds HCL1's decoder switches on (ObjectList, ObjectItem, ObjectType, ListType,
/// LiteralType).
enum DNode {
    ObjList(Vec<Item>),
    ObjItem(Item),
    ObjType(Vec<Item>),
    ListType(Vec<Node>),
    Literal(String),
}

impl DNode {
    fn from_node(n: Node) -> DNode {
        match n {
            Node::Literal(s) => DNode::Literal(s),
            Node::List(l) => DNode::ListType(l),
            Node::Object(o) => DNode::ObjType(o),
        }
    }

    /// A field's own value: HCL1 decodes an object's item list, not the object.
    fn field_value(n: Node) -> DNode {
        match n {
            Node::Object(items) => DNode::ObjList(items),
            n => DNode::from_node(n),
        }
    }

    fn go_type(&self) -> &'static str {
        match self {
            DNode::ObjList(_) => "*ast.ObjectList",
            DNode::ObjItem(_) => "*ast.ObjectItem",
            DNode::ObjType(_) => "*ast.ObjectType",
            DNode::ListType(_) => "*ast.ListType",
            DNode::Literal(_) => "*ast.LiteralType",
        }
    }
}

type DResult<T> = Result<T, String>;
type Decoder<T> = fn(&str, DNode, &mut T) -> DResult<()>;

/// Items whose first key is `field`: the labeled ones with that key stripped, and the values of
/// the unlabeled ones, each in document order.
fn filter(list: &[Item], field: &str) -> (Vec<Item>, Vec<Node>) {
    let mut labeled = Vec::new();
    let mut unlabeled = Vec::new();
    for item in list {
        match item.keys.split_first() {
            Some((k, rest)) if key_matches(k, field) => {
                if rest.is_empty() {
                    unlabeled.push(item.val.clone());
                } else {
                    labeled.push(Item {
                        keys: rest.to_vec(),
                        val: item.val.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    (labeled, unlabeled)
}

fn decode_string(name: &str, node: DNode) -> DResult<String> {
    match node {
        DNode::Literal(s) => Ok(s),
        n => Err(format!("{name}: unknown type for string {}", n.go_type())),
    }
}

fn slice_elements(node: DNode) -> DResult<Vec<DNode>> {
    Ok(match node {
        DNode::ObjList(items) => items.into_iter().map(DNode::ObjItem).collect(),
        n @ DNode::ObjType(_) => vec![n],
        DNode::ListType(nodes) => nodes.into_iter().map(DNode::from_node).collect(),
        n => return Err(format!("unknown slice type: {}", n.go_type())),
    })
}

fn decode_strings(name: &str, node: DNode, out: &mut Option<Vec<String>>) -> DResult<()> {
    let elements = slice_elements(node)?;
    let list = out.get_or_insert_with(Vec::new);
    for (i, e) in elements.into_iter().enumerate() {
        list.push(decode_string(&format!("{name}[{i}]"), e)?);
    }
    Ok(())
}

/// An item with two keys came from flattened JSON: nest the second key again.
fn expand_object(node: DNode) -> DNode {
    match node {
        DNode::ObjItem(item) if item.keys.len() == 2 => {
            let mut keys = item.keys.into_iter();
            let first = keys.next().unwrap_or_default();
            DNode::ObjItem(Item {
                keys: vec![first],
                val: Node::Object(vec![Item {
                    keys: keys.collect(),
                    val: item.val,
                }]),
            })
        }
        n => n,
    }
}

fn decode_struct_slice<T: Default>(
    name: &str,
    node: DNode,
    out: &mut Option<Vec<T>>,
    decode: Decoder<T>,
) -> DResult<()> {
    let elements = slice_elements(node)?;
    let list = out.get_or_insert_with(Vec::new);
    for (i, e) in elements.into_iter().enumerate() {
        let mut value = T::default();
        decode(&format!("{name}[{i}]"), expand_object(e), &mut value)?;
        list.push(value);
    }
    Ok(())
}

/// The item (for a `key` field) and the item list a struct is decoded from.
fn struct_list(name: &str, node: DNode) -> DResult<(Option<Item>, Vec<Item>)> {
    let (item, node) = match node {
        DNode::ObjItem(item) => {
            let val = DNode::from_node(item.val.clone());
            (Some(item), val)
        }
        n => (None, n),
    };
    let node = match (node, &item) {
        (DNode::ObjType(items), _) => DNode::ObjList(items),
        // `name = "literal"` decodes the struct from the item itself.
        (DNode::Literal(_), Some(it)) => DNode::ObjList(vec![it.clone()]),
        (n, _) => n,
    };
    match node {
        DNode::ObjList(items) => Ok((item, items)),
        n => Err(format!(
            "{name}: not an object type for struct ({})",
            n.go_type()
        )),
    }
}

fn key_of(name: &str, field: &str, item: Option<&Item>) -> DResult<String> {
    item.and_then(|i| i.keys.first().cloned())
        .ok_or_else(|| format!("{name}: {field} asked for 'key', impossible"))
}

fn field_string(name: &str, list: &[Item], field: &str, out: &mut String) -> DResult<()> {
    let (labeled, unlabeled) = filter(list, field);
    let path = format!("{name}.{field}");
    if !labeled.is_empty() {
        *out = decode_string(&path, DNode::ObjList(labeled))?;
    }
    for v in unlabeled {
        *out = decode_string(&path, DNode::field_value(v))?;
    }
    Ok(())
}

fn field_strings(
    name: &str,
    list: &[Item],
    field: &str,
    out: &mut Option<Vec<String>>,
) -> DResult<()> {
    let (labeled, unlabeled) = filter(list, field);
    let path = format!("{name}.{field}");
    if !labeled.is_empty() {
        decode_strings(&path, DNode::ObjList(labeled), out)?;
    }
    for v in unlabeled {
        decode_strings(&path, DNode::field_value(v), out)?;
    }
    Ok(())
}

fn field_struct<T: Default>(
    name: &str,
    list: &[Item],
    field: &str,
    out: &mut Option<T>,
    decode: Decoder<T>,
) -> DResult<()> {
    let (labeled, unlabeled) = filter(list, field);
    let path = format!("{name}.{field}");
    if !labeled.is_empty() {
        decode(
            &path,
            DNode::ObjList(labeled),
            out.get_or_insert_with(T::default),
        )?;
    }
    for v in unlabeled {
        decode(
            &path,
            DNode::field_value(v),
            out.get_or_insert_with(T::default),
        )?;
    }
    Ok(())
}

fn field_structs<T: Default>(
    name: &str,
    list: &[Item],
    field: &str,
    out: &mut Option<Vec<T>>,
    decode: Decoder<T>,
) -> DResult<()> {
    let (labeled, unlabeled) = filter(list, field);
    let path = format!("{name}.{field}");
    if !labeled.is_empty() {
        decode_struct_slice(&path, DNode::ObjList(labeled), out, decode)?;
    }
    for v in unlabeled {
        decode_struct_slice(&path, DNode::field_value(v), out, decode)?;
    }
    Ok(())
}

fn decode_policy(name: &str, node: DNode, out: &mut RawPolicy) -> DResult<()> {
    let (_, list) = struct_list(name, node)?;
    field_structs(
        name,
        &list,
        "namespace",
        &mut out.namespaces,
        decode_namespace,
    )?;
    field_structs(
        name,
        &list,
        "node_pool",
        &mut out.node_pools,
        decode_labeled,
    )?;
    field_structs(
        name,
        &list,
        "host_volume",
        &mut out.host_volumes,
        decode_labeled,
    )?;
    field_struct(name, &list, "agent", &mut out.agent, decode_single)?;
    field_struct(name, &list, "node", &mut out.node, decode_single)?;
    field_struct(name, &list, "operator", &mut out.operator, decode_single)?;
    field_struct(name, &list, "quota", &mut out.quota, decode_single)?;
    field_struct(name, &list, "plugin", &mut out.plugin, decode_single)?;
    Ok(())
}

fn decode_namespace(name: &str, node: DNode, out: &mut RawNamespace) -> DResult<()> {
    let (item, list) = struct_list(name, node)?;
    out.name = key_of(name, "Name", item.as_ref())?;
    field_string(name, &list, "Policy", &mut out.policy)?;
    field_strings(name, &list, "Capabilities", &mut out.capabilities)?;
    field_struct(
        name,
        &list,
        "variables",
        &mut out.variables,
        decode_variables,
    )?;
    Ok(())
}

fn decode_variables(name: &str, node: DNode, out: &mut RawVariables) -> DResult<()> {
    let (_, list) = struct_list(name, node)?;
    field_structs(name, &list, "path", &mut out.paths, decode_path)
}

fn decode_path(name: &str, node: DNode, out: &mut RawPath) -> DResult<()> {
    let (item, list) = struct_list(name, node)?;
    out.path_spec = key_of(name, "PathSpec", item.as_ref())?;
    field_strings(name, &list, "Capabilities", &mut out.capabilities)
}

fn decode_labeled(name: &str, node: DNode, out: &mut RawLabeled) -> DResult<()> {
    let (item, list) = struct_list(name, node)?;
    out.name = key_of(name, "Name", item.as_ref())?;
    field_string(name, &list, "Policy", &mut out.policy)?;
    field_strings(name, &list, "Capabilities", &mut out.capabilities)
}

fn decode_single(name: &str, node: DNode, out: &mut RawSingle) -> DResult<()> {
    let (_, list) = struct_list(name, node)?;
    field_string(name, &list, "Policy", &mut out.policy)
}

/// Items whose first key is `field`, in document order: remaining keys and value.
fn by_key<'a>(list: &'a [Item], field: &str) -> Vec<(&'a [String], &'a Node)> {
    list.iter()
        .filter_map(|item| match item.keys.split_first() {
            Some((k, rest)) if key_matches(k, field) => Some((rest, &item.val)),
            _ => None,
        })
        .collect()
}

fn index_panic(i: usize, len: usize) -> String {
    format!("invalid acl policy: runtime error: index out of range [{i}] with length {len}")
}

fn at<T>(list: &mut Option<Vec<T>>, i: usize) -> DResult<&mut T> {
    let list = list.get_or_insert_with(Vec::new);
    let len = list.len();
    list.get_mut(i).ok_or_else(|| index_panic(i, len))
}

/// Nomad's repair: the i-th `namespace` item of the text, if unlabeled, names the i-th decoded
/// namespace `""` (likewise variables paths, node pools and host volumes).
fn fix_unlabeled(root: &[Item], policy: &mut RawPolicy) -> DResult<()> {
    for (i, (keys, val)) in by_key(root, "namespace").into_iter().enumerate() {
        if keys.is_empty() {
            at(&mut policy.namespaces, i)?.name.clear();
        }
        let Node::Object(body) = val else { continue };
        let Some((_, Node::Object(vars))) = by_key(body, "variables").first().copied() else {
            continue;
        };
        for (j, (path_keys, _)) in by_key(vars, "path").into_iter().enumerate() {
            if path_keys.is_empty() {
                let ns = at(&mut policy.namespaces, i)?;
                let Some(variables) = ns.variables.as_mut() else {
                    return Err("invalid acl policy: runtime error: invalid memory address or nil pointer dereference".to_owned());
                };
                at(&mut variables.paths, j)?.path_spec.clear();
            }
        }
    }
    for (i, (keys, _)) in by_key(root, "node_pool").into_iter().enumerate() {
        if keys.is_empty() {
            at(&mut policy.node_pools, i)?.name.clear();
        }
    }
    for (i, (keys, _)) in by_key(root, "host_volume").into_iter().enumerate() {
        if keys.is_empty() {
            at(&mut policy.host_volumes, i)?.name.clear();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::syntax::parse;

    fn decoded(rules: &str) -> Result<RawPolicy, String> {
        decode(&parse(rules).map_err(|e| e.0)?)
    }

    #[test]
    fn fields_fold_case_and_repeat() {
        let p = decoded(
            "Namespace \"a\" { POLICY = \"read\"\n policy = \"write\"\n capabilities = [\"x\"]\n Capabilities = [\"y\"] }\nagent { policy = \"read\" }\nagent { capabilities = [] }",
        )
        .unwrap();
        let ns = &p.namespaces.as_ref().unwrap()[0];
        assert_eq!(ns.name, "a");
        assert_eq!(ns.policy, "write");
        assert_eq!(ns.capabilities, Some(vec!["x".to_owned(), "y".to_owned()]));
        assert_eq!(
            p.agent,
            Some(RawSingle {
                policy: "read".to_owned()
            })
        );
    }

    #[test]
    fn numbers_and_bools_are_strings() {
        let p = decoded("agent { policy = 1.50 }\nnode { policy = true }").unwrap();
        assert_eq!(p.agent.unwrap().policy, "1.50");
        assert_eq!(p.node.unwrap().policy, "true");
    }

    #[test]
    fn type_mismatches() {
        assert_eq!(
            decoded("namespace \"a\" { policy = [\"read\"] }").unwrap_err(),
            "root.namespace[0].Policy: unknown type for string *ast.ListType"
        );
        assert_eq!(
            decoded("namespace \"a\" { capabilities = \"read\" }").unwrap_err(),
            "unknown slice type: *ast.LiteralType"
        );
        assert_eq!(
            decoded("agent = [1]").unwrap_err(),
            "root.agent: not an object type for struct (*ast.ListType)"
        );
    }

    #[test]
    fn unlabeled_blocks_get_an_empty_name() {
        let p = decoded("namespace { policy = \"read\" }").unwrap();
        let ns = &p.namespaces.unwrap()[0];
        assert_eq!((ns.name.as_str(), ns.policy.as_str()), ("", "read"));
        let p =
            decoded("node_pool { policy = \"read\" }\nhost_volume { policy = \"read\" }").unwrap();
        assert_eq!(p.node_pools.unwrap()[0].name, "");
        assert_eq!(p.host_volumes.unwrap()[0].name, "");
        let p = decoded(
            "namespace \"a\" { variables { path {} \n path \"b\" { capabilities = [\"read\"] } } }",
        )
        .unwrap();
        let paths = p.namespaces.unwrap()[0]
            .variables
            .clone()
            .unwrap()
            .paths
            .unwrap();
        // The unlabeled path decodes to nothing, so the repair blanks the labeled one.
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].path_spec, "");
    }

    #[test]
    fn empty_unlabeled_block_is_the_go_panic() {
        assert_eq!(
            decoded("namespace {}").unwrap_err(),
            "invalid acl policy: runtime error: index out of range [0] with length 0"
        );
    }

    #[test]
    fn json_variables_as_lists() {
        let p = decoded(
            r#"{"namespace": [{"apps": {"variables": [{"path": [{"a/b": {"capabilities": ["read"]}}]}]}}]}"#,
        )
        .unwrap();
        let ns = &p.namespaces.unwrap()[0];
        assert_eq!(ns.name, "apps");
        let paths = ns.variables.clone().unwrap().paths.unwrap();
        assert_eq!(paths[0].path_spec, "a/b");
        assert_eq!(paths[0].capabilities, Some(vec!["read".to_owned()]));
    }

    #[test]
    fn json_deep_flattening_keeps_hcl1_quirk() {
        // Flattened to namespace/apps/variables/path/x: HCL1 takes the first label as the
        // namespace and decodes the innermost object into it.
        let p = decoded(r#"{"namespace": {"apps": {"variables": {"path": {"x": {"capabilities": ["deny"]}}}}}}"#)
            .unwrap();
        let ns = &p.namespaces.unwrap()[0];
        assert_eq!(ns.name, "apps");
        assert_eq!(ns.capabilities, Some(vec!["deny".to_owned()]));
        assert!(ns.variables.is_none());
    }
}
