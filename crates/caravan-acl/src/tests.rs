//! Behaviour of the public API against Nomad's own tests (acl/policy_test.go, acl/acl_test.go)
//! and the language items of ACL.md §10.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::json;

use crate::capabilities::{host_volume as hv, namespace as ns, node_pool as np};
use crate::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn acl(rules: &[&str]) -> Acl {
    let policies: Vec<Policy> = rules.iter().map(|r| parse_policy(r).unwrap()).collect();
    let refs: Vec<&Policy> = policies.iter().collect();
    Acl::new(&refs)
}

fn err(rules: &str) -> String {
    parse_policy(rules).unwrap_err().to_string()
}

const READ: &[&str] = &[
    "list-jobs",
    "parse-job",
    "read-job",
    "csi-list-volume",
    "csi-read-volume",
    "read-job-scaling",
    "list-scaling-policies",
    "read-scaling-policy",
];

fn write_caps() -> Vec<String> {
    let mut v = strings(READ);
    v.extend(strings(&[
        "scale-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-lifecycle",
        "csi-mount-volume",
        "csi-write-volume",
        "submit-recommendation",
    ]));
    v
}

// ---- expansion tables -------------------------------------------------------------------

#[test]
fn namespace_shorthands_expand_in_nomads_order() {
    let p = parse_policy(
        r#"
        namespace "r" { policy = "read" }
        namespace "w" { policy = "write" }
        namespace "s" { policy = "scale" }
        namespace "d" { policy = "deny" }
        namespace "x" { policy = "read" capabilities = ["alloc-node-exec", "read-job"] }
        namespace "e" {}
        "#,
    )
    .unwrap();
    let caps: Vec<&Vec<String>> = p.namespaces.iter().map(|n| &n.capabilities).collect();
    assert_eq!(caps[0], &strings(READ));
    assert_eq!(caps[1], &write_caps());
    assert_eq!(
        caps[2],
        &strings(&[
            "list-scaling-policies",
            "read-scaling-policy",
            "read-job-scaling",
            "scale-job"
        ])
    );
    assert_eq!(caps[3], &strings(&["deny"]));
    // Explicit first, then the shorthand's; duplicates kept.
    let mut x = strings(&["alloc-node-exec", "read-job"]);
    x.extend(strings(READ));
    assert_eq!(caps[4], &x);
    assert!(caps[5].is_empty());
    assert_eq!(p.namespaces[0].policy, Some(Level::Read));
    assert_eq!(p.namespaces[5].policy, None);
    // write does not include these three.
    for c in [
        ns::ALLOC_NODE_EXEC,
        ns::CSI_REGISTER_PLUGIN,
        ns::SENTINEL_OVERRIDE,
    ] {
        assert!(!caps[1].iter().any(|x| x == c));
    }
}

#[test]
fn node_pool_and_host_volume_shorthands() {
    let p = parse_policy(
        r#"
        node_pool "pool-read-only" { policy = "read" }
        node_pool "pool-read-write" { policy = "write" }
        node_pool "pool-read-upsert" { policy = "read" capabilities = ["write"] }
        node_pool "pool-deny-policy" { policy = "deny" capabilities = ["write"] }
        node_pool "pool-scale" { policy = "scale" }
        node_pool "pool_under*" { capabilities = ["deny", "read"] }
        host_volume "ro" { policy = "read" }
        host_volume "rw-*" { policy = "write" }
        host_volume "d" { policy = "deny" capabilities = ["mount-readonly"] }
        "#,
    )
    .unwrap();
    let pools: Vec<Vec<String>> = p
        .node_pools
        .iter()
        .map(|n| n.capabilities.clone())
        .collect();
    assert_eq!(
        pools,
        vec![
            strings(&["read"]),
            strings(&["delete", "read", "write"]),
            strings(&["write", "read"]),
            strings(&["write", "deny"]),
            vec![],
            strings(&["deny", "read"]),
        ]
    );
    let vols: Vec<Vec<String>> = p
        .host_volumes
        .iter()
        .map(|n| n.capabilities.clone())
        .collect();
    assert_eq!(
        vols,
        vec![
            strings(&["mount-readonly"]),
            strings(&["mount-readonly", "mount-readwrite"]),
            strings(&["mount-readonly", "deny"]),
        ]
    );
}

#[test]
fn variables_capabilities_expand() {
    let p = parse_policy(
        r#"
        namespace "apps" {
          variables {
            path "jobs/write-does-not-imply-read-or-delete" { capabilities = ["write"] }
            path "project/read-implies-list" { capabilities = ["read"] }
            path "project/explicit" { capabilities = ["read", "list", "destroy"] }
            path "secret/*" { capabilities = ["read", "deny", "write"] }
            path "nothing" {}
          }
        }"#,
    )
    .unwrap();
    let paths = &p.namespaces[0].variables.as_ref().unwrap().paths;
    let got: Vec<(&str, Vec<String>)> = paths
        .iter()
        .map(|p| (p.path_spec.as_str(), p.capabilities.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "jobs/write-does-not-imply-read-or-delete",
                strings(&["write"])
            ),
            ("project/read-implies-list", strings(&["read", "list"])),
            ("project/explicit", strings(&["read", "list", "destroy"])),
            ("secret/*", strings(&["deny"])),
            ("nothing", vec![]),
        ]
    );
    // The namespace itself holds no capabilities.
    assert!(p.namespaces[0].capabilities.is_empty());
}

// ---- Nomad's TestParse ------------------------------------------------------------------

const FULL_HCL: &str = r#"
namespace "default" {
    policy = "read"
}
namespace "other" {
    policy = "write"
}
namespace "secret" {
    capabilities = ["deny", "read-logs"]
}
namespace "apps" {
    variables {
        path "jobs/write-does-not-imply-read-or-delete" {
            capabilities = ["write"]
        }
        path "project/read-implies-list" {
            capabilities = ["read"]
        }
        path "project/explicit" {
            capabilities = ["read", "list", "destroy"]
        }
    }
}
namespace "autoscaler" {
    policy = "scale"
}
host_volume "production-tls-*" {
    capabilities = ["mount-readonly"]
}
host_volume "staging-tls-*" {
    policy = "write"
}
node_pool "prod" {
    capabilities = ["read"]
}
node_pool "dev" {
    policy = "write"
}
agent {
    policy = "read"
}
node {
    policy = "write"
}
operator {
    policy = "deny"
}
quota {
    policy = "read"
}
plugin {
    policy = "read"
}
"#;

// Nomad's JSON twin of FULL_HCL, trailing commas included (its bracket typo in the variables
// case is left out: this reader wants matching brackets).
const FULL_JSON: &str = r#"
{
    "namespace": [
        {"default": {"policy": "read"},},
        {"other": {"policy": "write"},},
        {"secret": {"capabilities": ["deny", "read-logs"]}},
        {"apps": {"variables": [{"path": [
            {"jobs/write-does-not-imply-read-or-delete": {"capabilities": ["write"],},},
            {"project/read-implies-list": {"capabilities": ["read"],},},
            {"project/explicit": {"capabilities": ["read", "list", "destroy"],},},
        ],},],},},
        {"autoscaler": {"policy": "scale"},},
    ],
    "host_volume": [
        {"production-tls-*": {"capabilities": ["mount-readonly"]}},
        {"staging-tls-*": {"policy": "write"}}
    ],
    "node_pool": [
        {"prod": {"capabilities": ["read"]}},
        {"dev": {"policy": "write"}}
    ],
    "agent": {"policy": "read"},
    "node": {"policy": "write"},
    "operator": {"policy": "deny"},
    "quota": {"policy": "read"},
    "plugin": {"policy": "read"}
}"#;

fn expected_full(raw: &str) -> Policy {
    let mut rw = strings(READ);
    rw.truncate(8);
    Policy {
        namespaces: vec![
            NamespacePolicy {
                name: "default".into(),
                policy: Some(Level::Read),
                capabilities: strings(READ),
                variables: None,
            },
            NamespacePolicy {
                name: "other".into(),
                policy: Some(Level::Write),
                capabilities: write_caps(),
                variables: None,
            },
            NamespacePolicy {
                name: "secret".into(),
                policy: None,
                capabilities: strings(&["deny", "read-logs"]),
                variables: None,
            },
            NamespacePolicy {
                name: "apps".into(),
                policy: None,
                capabilities: vec![],
                variables: Some(VariablesPolicy {
                    paths: vec![
                        VariablesPathPolicy {
                            path_spec: "jobs/write-does-not-imply-read-or-delete".into(),
                            capabilities: strings(&["write"]),
                        },
                        VariablesPathPolicy {
                            path_spec: "project/read-implies-list".into(),
                            capabilities: strings(&["read", "list"]),
                        },
                        VariablesPathPolicy {
                            path_spec: "project/explicit".into(),
                            capabilities: strings(&["read", "list", "destroy"]),
                        },
                    ],
                }),
            },
            NamespacePolicy {
                name: "autoscaler".into(),
                policy: Some(Level::Scale),
                capabilities: strings(&[
                    "list-scaling-policies",
                    "read-scaling-policy",
                    "read-job-scaling",
                    "scale-job",
                ]),
                variables: None,
            },
        ],
        node_pools: vec![
            NodePoolPolicy {
                name: "prod".into(),
                policy: None,
                capabilities: strings(&["read"]),
            },
            NodePoolPolicy {
                name: "dev".into(),
                policy: Some(Level::Write),
                capabilities: strings(&["delete", "read", "write"]),
            },
        ],
        host_volumes: vec![
            HostVolumePolicy {
                name: "production-tls-*".into(),
                policy: None,
                capabilities: strings(&["mount-readonly"]),
            },
            HostVolumePolicy {
                name: "staging-tls-*".into(),
                policy: Some(Level::Write),
                capabilities: strings(&["mount-readonly", "mount-readwrite"]),
            },
        ],
        agent: Some(Level::Read),
        node: Some(Level::Write),
        operator: Some(Level::Deny),
        quota: Some(Level::Read),
        plugin: Some(Level::Read),
        raw: raw.to_owned(),
    }
}

#[test]
fn full_policy_in_hcl() {
    assert_eq!(parse_policy(FULL_HCL).unwrap(), expected_full(FULL_HCL));
}

#[test]
fn full_policy_in_json() {
    assert_eq!(parse_policy(FULL_JSON).unwrap(), expected_full(FULL_JSON));
}

#[test]
fn json_object_forms() {
    let p = parse_policy(
        r#"{"namespace": {"default": {"policy": "read"}, "dev": {"capabilities": ["submit-job"]}},
            "node_pool": {"p": {"policy": "read"}}, "plugin": [{"policy": "list"}]}"#,
    )
    .unwrap();
    assert_eq!(p.namespaces.len(), 2);
    assert_eq!(p.namespaces[1].name, "dev");
    assert_eq!(p.namespaces[1].capabilities, strings(&["submit-job"]));
    assert_eq!(p.node_pools[0].capabilities, strings(&["read"]));
    assert_eq!(p.plugin, Some(Level::List));
    let a = acl(&[r#"{"namespace": {"default": {"policy": "write"}}}"#]);
    assert!(a.allow_namespace_operation("default", ns::SUBMIT_JOB));
}

#[test]
fn hcl1_leniencies() {
    // Nomad's own test policies: nested one-line blocks, several blocks on a line.
    let p = parse_policy(
        r#"namespace "ns" { variables { path "*" { capabilities = ["list"] }
           path "system/*" { capabilities = ["deny"] }}} namespace "b" { policy = "read", capabilities = ["read-fs"] }"#,
    )
    .unwrap();
    assert_eq!(p.namespaces.len(), 2);
    assert_eq!(p.namespaces[1].capabilities[0], "read-fs");
    // Case-insensitive keys, bare labels, comments, heredoc values.
    let p = parse_policy("# c\nNAMESPACE default {\n Policy = <<EOF\nread\nEOF\n}\n").unwrap_err();
    assert!(
        p.to_string().starts_with("Invalid namespace policy: "),
        "{p}"
    );
    let p = parse_policy("Namespace default { POLICY = \"read\" } // x\n/* y */").unwrap();
    assert_eq!(p.namespaces[0].name, "default");
    assert_eq!(p.namespaces[0].policy, Some(Level::Read));
}

#[test]
fn empty_and_unknown() {
    // §10 item 8: `Rules: ""` grants nothing and is valid.
    let p = parse_policy("").unwrap();
    assert!(p.is_empty());
    assert!(!Acl::new(&[&p]).allow_namespace("default"));
    // Unknown keys are ignored, around known ones.
    let p =
        parse_policy("foo = 1\nnamespace \"a\" { policy = \"read\" bar = [1] }\nbaz {}").unwrap();
    assert_eq!(p.namespaces.len(), 1);
    // Only unknown keys: no policy at all.
    assert_eq!(err("   "), "Invalid policy:    ");
    assert_eq!(err("# just a comment"), "Invalid policy: # just a comment");
    let raw = r#"
    {
        "Name": "my-policy",
        "Description": "This is a great policy",
        "Rules": "anything"
    }
    "#;
    assert_eq!(err(raw), format!("Invalid policy: {raw}"));
}

// ---- error texts ------------------------------------------------------------------------

#[test]
fn namespace_errors() {
    // §10 item 8.
    assert_eq!(
        err(r#"namespace "default" { policy = "list" }"#),
        r#"Invalid namespace policy: &acl.NamespacePolicy{Name:"default", Policy:"list", Capabilities:[]string(nil), Variables:(*acl.VariablesPolicy)(nil)}"#
    );
    assert!(
        err(r#"namespace "default" { policy = "foo" }"#).starts_with("Invalid namespace policy")
    );
    assert_eq!(
        err(r#"namespace "default" { capabilities = ["deny", "foo"] }"#),
        r#"Invalid namespace capability 'foo': &acl.NamespacePolicy{Name:"default", Policy:"", Capabilities:[]string{"deny", "foo"}, Variables:(*acl.VariablesPolicy)(nil)}"#
    );
    assert_eq!(
        err(r#"namespace "has a space" { policy = "read" }"#),
        r#"Invalid namespace name: &acl.NamespacePolicy{Name:"has a space", Policy:"read", Capabilities:[]string(nil), Variables:(*acl.VariablesPolicy)(nil)}"#
    );
    assert!(
        err(&format!("namespace \"{}\" {{}}", "a".repeat(129)))
            .starts_with("Invalid namespace name")
    );
    assert!(parse_policy(&format!("namespace \"{}\" {{}}", "a".repeat(128))).is_ok());
    assert!(err(r#"namespace "a_b" {}"#).starts_with("Invalid namespace name"));
    assert!(err(r#"namespace "\500" {}"#).starts_with("Failed to parse ACL Policy: "));
    // Enterprise capabilities are accepted in CE.
    let p =
        parse_policy(r#"namespace "default" { capabilities = ["sentinel-override"] }"#).unwrap();
    assert_eq!(
        p.namespaces[0].capabilities,
        strings(&["sentinel-override"])
    );
}

#[test]
fn unlabeled_blocks_fail_the_name_check() {
    // CVE-2023-3072 and §10 item 8.
    assert_eq!(
        err(r#"namespace { policy = "read" }"#),
        r#"Invalid namespace name: &acl.NamespacePolicy{Name:"", Policy:"read", Capabilities:[]string(nil), Variables:(*acl.VariablesPolicy)(nil)}"#
    );
    assert!(
        err(r#"{"namespace": [{"": {"policy": "read"}}]}"#).starts_with("Invalid namespace name")
    );
    assert!(err(r#"{"namespace": {"policy": "read"}}"#).starts_with("Invalid namespace name"));
    assert_eq!(
        err(r#"node_pool { policy = "read" }"#),
        "Invalid node pool name ''"
    );
    assert_eq!(err(r#"node_pool "" {}"#), "Invalid node pool name ''");
    assert!(
        err(r#"{"node_pool": [{"": {"policy": "read"}}]}"#).starts_with("Invalid node pool name")
    );
    assert_eq!(
        err(r#"host_volume { policy = "read" }"#),
        r#"Invalid host volume name: &acl.HostVolumePolicy{Name:"", Policy:"read", Capabilities:[]string(nil)}"#
    );
    assert!(
        err(r#"{"host_volume": [{"": {"policy": "read"}}]}"#)
            .starts_with("Invalid host volume name")
    );
    // An empty unlabeled block is the decoder panic Nomad recovers from.
    assert_eq!(
        err("namespace {}"),
        "Failed to parse ACL Policy: invalid acl policy: runtime error: index out of range [0] with length 0"
    );
    // An unlabeled block after a labeled one still fails.
    assert!(
        err("namespace \"a\" { policy = \"read\" }\nnamespace { policy = \"write\" }")
            .starts_with("Invalid namespace name")
    );
}

#[test]
fn variables_errors() {
    assert_eq!(
        err(r#"namespace "dev" { variables "*" { capabilities = ["read", "write"] } }"#),
        "Invalid variable policy: no variable paths in namespace dev"
    );
    assert_eq!(
        err(
            "namespace \"dev\" {\n variables {\n path \"/nomad/job\" { capabilities = [\"read\"] }\n }\n}"
        ),
        "Invalid variable path \"/nomad/job\" in namespace dev: cannot start with a leading '/'`"
    );
    assert_eq!(
        err(
            "namespace \"dev\" {\n policy = \"read\"\n variables {\n path {}\n path \"nomad/jobs/example\" { capabilities = [\"read\"] }\n }\n}"
        ),
        "Invalid missing variable path in namespace dev"
    );
    assert_eq!(
        err(r#"namespace "dev" { variables { path "a" { capabilities = ["read-job"] } } }"#),
        "Invalid variable capability 'read-job' in namespace dev"
    );
    assert_eq!(
        err(
            r#"{"namespace": [{"dev": {"policy": "read", "variables": [{"paths": [{"": {"capabilities": ["read"]}}]}]}}]}"#
        ),
        "Invalid variable policy: no variable paths in namespace dev"
    );
    // The namespace dump shows the variables' contents.
    assert_eq!(
        err(
            r#"namespace "d" { capabilities = ["x"] variables { path "p" { capabilities = ["read"] } } }"#
        ),
        r#"Invalid namespace capability 'x': &acl.NamespacePolicy{Name:"d", Policy:"", Capabilities:[]string{"x"}, Variables:&acl.VariablesPolicy{Paths:[]*acl.VariablesPathPolicy{&acl.VariablesPathPolicy{PathSpec:"p", Capabilities:[]string{"read"}}}}}"#
    );
}

#[test]
fn other_block_errors() {
    assert_eq!(
        err(r#"node_pool "pool%" {}"#),
        "Invalid node pool name 'pool%'"
    );
    assert_eq!(
        err(r#"node_pool "p" { policy = "list" }"#),
        "Invalid node pool policy 'list' for 'p'"
    );
    assert_eq!(
        err(r#"node_pool "my-pool" { capabilities = ["read", "invalid"] }"#),
        "Invalid node pool capability 'invalid' for 'my-pool'"
    );
    assert!(
        err(r#"host_volume "volume has a space" { capabilities = ["mount-readwrite"] }"#)
            .starts_with("Invalid host volume name: ")
    );
    assert_eq!(
        err(r#"host_volume "v" { policy = "mount" }"#),
        r#"Invalid host volume policy: &acl.HostVolumePolicy{Name:"v", Policy:"mount", Capabilities:[]string(nil)}"#
    );
    assert_eq!(
        err(r#"host_volume "v" { capabilities = ["read"] }"#),
        r#"Invalid host volume capability 'read': &acl.HostVolumePolicy{Name:"v", Policy:"", Capabilities:[]string{"read"}}"#
    );
    for block in ["agent", "node", "operator", "quota"] {
        let go = match block {
            "agent" => "AgentPolicy",
            "node" => "NodePolicy",
            "operator" => "OperatorPolicy",
            _ => "QuotaPolicy",
        };
        assert_eq!(
            err(&format!("{block} {{ policy = \"foo\" }}")),
            format!("Invalid {block} policy: &acl.{go}{{Policy:\"foo\"}}")
        );
        assert!(
            err(&format!("{block} {{ policy = \"list\" }}"))
                .starts_with(&format!("Invalid {block} policy"))
        );
        // A block without a policy is invalid too.
        assert!(err(&format!("{block} {{}}")).starts_with(&format!("Invalid {block} policy")));
        // scale is accepted.
        assert!(parse_policy(&format!("{block} {{ policy = \"scale\" }}")).is_ok());
    }
    assert_eq!(
        err(r#"plugin { policy = "reader" }"#),
        r#"Invalid plugin policy: &acl.PluginPolicy{Policy:"reader"}"#
    );
    assert!(err(r#"plugin { policy = "scale" }"#).starts_with("Invalid plugin policy"));
    for ok in ["deny", "read", "list", "write"] {
        assert!(parse_policy(&format!("plugin {{ policy = \"{ok}\" }}")).is_ok());
    }
}

#[test]
fn syntax_errors_are_prefixed() {
    for bad in [
        "namespace \"x\" {",
        "namespace \"x\" { policy = read }",
        "= 1",
        "{\"namespace\": ?}",
        "namespace \"a\" { policy = [\"read\"] }",
    ] {
        let e = err(bad);
        assert!(e.starts_with("Failed to parse ACL Policy: "), "{bad}: {e}");
    }
}

// ---- validate_policy and the hash (§10 item 7) -------------------------------------------

#[test]
fn policy_validation_collects_in_nomads_order() {
    let e = validate_policy(
        "bad_name",
        &"d".repeat(257),
        r#"namespace "default" { policy = "list" }"#,
        None,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("3 errors occurred:\n\t* invalid name 'bad_name'\n\t* failed to parse rules: Invalid namespace policy: "), "{text}");
    assert!(text.ends_with("\n\t* description longer than 256\n\n"));
    assert!(validate_policy("readonly", &"d".repeat(256), "", None).is_ok());
    assert_eq!(
        validate_policy(
            "ok",
            "",
            "",
            Some(&JobAcl {
                task: "t".into(),
                ..JobAcl::default()
            })
        )
        .unwrap_err()
        .to_string(),
        "1 error occurred:\n\t* group must be set to set task\n\n"
    );
    let job = JobAcl {
        job_id: "j".into(),
        group: "g".into(),
        ..JobAcl::default()
    };
    assert_eq!(
        validate_policy("ok", "", "", Some(&job)).unwrap_err().0,
        vec![PolicyValidationError::JobAclNamespaceMissing]
    );
    assert!(validate_policy_name(&"a".repeat(128)).is_ok());
    assert!(validate_policy_name(&"a".repeat(129)).is_err());
    assert!(validate_policy_name("").is_err());
    assert!(validate_policy_name("a-B-9").is_ok());
    assert_eq!(
        validate_policy_name("a b").unwrap_err().to_string(),
        "invalid name 'a b'"
    );
    assert!(validate_policy_description(&"é".repeat(129)).is_err());
}

#[test]
fn policy_hash_is_blake2b_256_base64() {
    // Reference values from Python's hashlib.blake2b(digest_size=32).
    assert_eq!(
        policy_hash(
            "readonly",
            "Read only",
            r#"namespace "default" { policy = "read" }"#,
            None
        ),
        "rG+YeDYukGlHikwxDkUeAeTmbvLIaUYVDrQsJyxB77M="
    );
    let job = JobAcl {
        namespace: "default".into(),
        job_id: "web".into(),
        group: "g".into(),
        task: "t".into(),
    };
    assert_eq!(
        policy_hash("wi", "", "", Some(&job)),
        "+ol7O79TSZy5iLrTaAOMKET2/+sQoLzsWvtHlK13RLA="
    );
    assert_eq!(
        policy_hash("", "", "", None),
        "DldRwCblQ7Loqy6wYJnaodHl30d3j3eH+qtFzfEv46g="
    );
    // An empty JobACL hashes like none, as in Go (it writes empty strings).
    assert_eq!(
        policy_hash("", "", "", Some(&JobAcl::default())),
        policy_hash("", "", "", None)
    );
}

// ---- RulesJSON ---------------------------------------------------------------------------

#[test]
fn rules_json_shape() {
    let rules = r#"namespace "default" { policy = "read" }
namespace "v" { variables { path "a/*" { capabilities = ["read"] } } }
node_pool "p" { policy = "scale" }
host_volume "h" { policy = "read" }
agent { policy = "write" }"#;
    let p = parse_policy(rules).unwrap();
    let v = p.rules_json();
    assert_eq!(
        v,
        json!({
            "Namespaces": [
                {"Name": "default", "Policy": "read", "Capabilities": READ, "Variables": null},
                {"Name": "v", "Policy": "", "Capabilities": null,
                 "Variables": {"Paths": [{"PathSpec": "a/*", "Capabilities": ["read", "list"]}]}},
            ],
            "NodePools": [{"Name": "p", "Policy": "scale", "Capabilities": null}],
            "HostVolumes": [{"Name": "h", "Policy": "read", "Capabilities": ["mount-readonly"]}],
            "Agent": {"Policy": "write"},
            "Node": null,
            "Operator": null,
            "Quota": null,
            "Plugin": null,
            "Raw": rules,
        })
    );
    // Go's field order.
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Namespaces",
            "NodePools",
            "HostVolumes",
            "Agent",
            "Node",
            "Operator",
            "Quota",
            "Plugin",
            "Raw"
        ]
    );
    let ns_keys: Vec<&String> = v["Namespaces"][0].as_object().unwrap().keys().collect();
    assert_eq!(ns_keys, ["Name", "Policy", "Capabilities", "Variables"]);
    // Empty rules.
    assert_eq!(
        parse_policy("").unwrap().rules_json(),
        json!({"Namespaces": null, "NodePools": null, "HostVolumes": null, "Agent": null,
               "Node": null, "Operator": null, "Quota": null, "Plugin": null, "Raw": ""})
    );
}

// ---- the ACL object ------------------------------------------------------------------------

const READ_ALL: &str = r#"
namespace "default" { policy = "read" }
node_pool "my-pool" { policy = "read" }
agent { policy = "read" }
node { policy = "read" }
operator { policy = "read" }
quota { policy = "read" }
"#;

const WRITE_ALL: &str = r#"
namespace "default" { policy = "write" }
node_pool "my-pool" { policy = "write" }
agent { policy = "write" }
node { policy = "write" }
operator { policy = "write" }
quota { policy = "write" }
"#;

const DENY_ALL: &str = r#"
namespace "default" { policy = "deny" }
node_pool "my-pool" { policy = "deny" }
agent { policy = "deny" }
node { policy = "deny" }
operator { policy = "deny" }
quota { policy = "deny" }
"#;

#[test]
fn management_client_and_deny_all() {
    let m = Acl::management();
    assert!(m.is_management());
    assert!(m.allow_namespace_operation("any", ns::ALLOC_NODE_EXEC));
    assert!(m.allow_namespace("*"));
    assert!(m.allow_node_write() && m.allow_agent_write() && m.allow_operator_write());
    assert!(m.allow_quota_write() && m.allow_plugin_read() && m.allow_plugin_list());
    assert!(
        m.allow_node_pool_operation("p", np::DELETE)
            && m.allow_host_volume_operation("h", hv::MOUNT_READWRITE)
    );
    assert!(m.allow_variable_operation("ns", "a", "destroy") && m.allow_client_op());

    let d = Acl::deny_all();
    assert!(!d.is_management());
    assert!(!d.allow_namespace("default") && !d.allow_namespace("*"));
    assert!(!d.allow_namespace_operation("*", ns::READ_JOB));
    assert!(!d.allow_node_read() && !d.allow_agent_read() && !d.allow_operator_read());
    assert!(!d.allow_quota_read() && !d.allow_plugin_list() && !d.allow_client_op());

    let c = Acl::client_node();
    assert!(c.allow_client_op() && c.allow_agent_read() && c.allow_node_read());
    assert!(!c.allow_agent_write() && !c.allow_node_write() && !c.is_management());
    assert!(!c.allow_namespace_operation("default", ns::READ_JOB) && !c.allow_namespace("*"));
    assert!(!c.allow_operator_read());
}

#[test]
fn merge_read_write_blank_deny() {
    let a = acl(&[READ_ALL, WRITE_ALL]);
    assert!(a.allow_namespace_operation("default", ns::LIST_JOBS));
    assert!(a.allow_namespace_operation("default", ns::SUBMIT_JOB));
    assert!(a.allow_namespace("default"));
    assert!(!a.allow_namespace_operation("foo", ns::LIST_JOBS));
    assert!(!a.allow_namespace("foo"));
    assert!(a.allow_node_pool_operation("my-pool", np::READ));
    assert!(a.allow_node_pool_operation("my-pool", np::WRITE));
    assert!(a.allow_node_pool("my-pool"));
    assert!(!a.allow_node_pool("other-pool"));
    assert!(!a.is_management());
    assert!(a.allow_agent_read() && a.allow_agent_write());
    assert!(a.allow_node_read() && a.allow_node_write());
    assert!(a.allow_operator_read() && a.allow_operator_write());
    assert!(a.allow_quota_read() && a.allow_quota_write());
    assert!(!a.allow_client_op());

    let a = acl(&[READ_ALL, ""]);
    assert!(a.allow_namespace_operation("default", ns::LIST_JOBS));
    assert!(!a.allow_namespace_operation("default", ns::SUBMIT_JOB));
    assert!(a.allow_node_pool_operation("my-pool", np::READ));
    assert!(!a.allow_node_pool_operation("my-pool", np::WRITE));
    assert!(a.allow_agent_read() && !a.allow_agent_write());
    assert!(a.allow_node_read() && !a.allow_node_write());
    assert!(a.allow_operator_read() && !a.allow_operator_write());
    assert!(a.allow_quota_read() && !a.allow_quota_write());

    for order in [[READ_ALL, DENY_ALL], [DENY_ALL, READ_ALL]] {
        let a = acl(&order);
        assert!(!a.allow_namespace_operation("default", ns::LIST_JOBS));
        assert!(!a.allow_namespace("default"));
        assert!(!a.allow_node_pool_operation("my-pool", np::READ));
        assert!(!a.allow_node_pool("my-pool"));
        assert!(!a.allow_agent_read() && !a.allow_node_read());
        assert!(!a.allow_operator_read() && !a.allow_quota_read());
    }
}

#[test]
fn item_19_exact_label_beats_wildcard() {
    let a = acl(&[r#"namespace "*" { policy = "write" }
namespace "prod" { policy = "read" }"#]);
    assert!(!a.allow_namespace_operation("prod", ns::SUBMIT_JOB));
    assert!(a.allow_namespace_operation("prod", ns::READ_JOB));
    assert!(a.allow_namespace_operation("dev", ns::SUBMIT_JOB));
    // A deny on `*` never overrides an exact rule.
    let a = acl(&[r#"namespace "*" { policy = "deny" }
namespace "prod" { policy = "read" }"#]);
    assert!(a.allow_namespace_operation("prod", ns::READ_JOB));
    assert!(!a.allow_namespace_operation("dev", ns::READ_JOB));
    // An exact label with no capabilities still wins, e.g. one holding only variables.
    let a = acl(&[r#"namespace "*" { policy = "write" }
namespace "prod" { variables { path "a" { capabilities = ["read"] } } }"#]);
    assert!(!a.allow_namespace_operation("prod", ns::READ_JOB));
    assert!(!a.allow_namespace("prod"));
    assert!(a.allow_variable_operation("prod", "a", "read"));
}

#[test]
fn item_20_closest_glob_wins() {
    for rules in [
        "namespace \"*-api-services\" { policy = \"deny\" }\nnamespace \"prod-api-*\" { policy = \"write\" }",
        "namespace \"prod-api-*\" { policy = \"write\" }\nnamespace \"*-api-services\" { policy = \"deny\" }",
    ] {
        let a = acl(&[rules]);
        assert!(!a.allow_namespace("prod-api-services"));
        assert!(!a.allow_namespace_operation("prod-api-services", ns::SUBMIT_JOB));
        assert!(a.allow_namespace_operation("prod-api-web", ns::SUBMIT_JOB));
        // `*` asks whether any rule holds it.
        assert!(a.allow_namespace("*"));
    }
    // Nomad's TestWildcardNamespaceMatching.
    let cases: &[(&str, &str, bool)] = &[
        (
            r#"namespace "prod-api-*" { policy = "write" }"#,
            "prod-api-services",
            true,
        ),
        (
            r#"namespace "prod-api" { policy = "write" }"#,
            "prod-api-services",
            false,
        ),
        (
            "namespace \"prod-api-services\" { policy = \"deny\" }\nnamespace \"prod-api-*\" { policy = \"write\" }",
            "prod-api-services",
            false,
        ),
        (
            "namespace \"prod-api-*\" { policy = \"deny\" }\nnamespace \"prod-api-services\" { policy = \"write\" }",
            "prod-api-services",
            true,
        ),
        (
            "namespace \"prod-api-*\" { policy = \"deny\" }\nnamespace \"prod-api-services\" { policy = \"write\" }",
            "*",
            true,
        ),
    ];
    for (rules, name, allow) in cases {
        assert_eq!(
            acl(&[rules]).allow_namespace(name),
            *allow,
            "{rules} / {name}"
        );
    }
}

#[test]
fn glob_ties_go_to_the_greatest_label() {
    // Both leave 3 characters of "proapi" unmatched.
    let a = acl(&[
        "namespace \"*api\" { policy = \"deny\" }\nnamespace \"pro*\" { policy = \"read\" }",
    ]);
    assert!(a.allow_namespace_operation("proapi", ns::READ_JOB));
    let a = acl(&[
        "namespace \"pro*\" { policy = \"deny\" }\nnamespace \"*api\" { policy = \"read\" }",
    ]);
    assert!(!a.allow_namespace("proapi"));
}

#[test]
fn item_21_labels_union_and_deny_clears() {
    let p1 = r#"namespace "a" { capabilities = ["read-job"] }"#;
    let p2 = r#"namespace "a" { capabilities = ["submit-job"] }"#;
    let p3 = r#"namespace "a" { policy = "deny" }"#;
    let a = acl(&[p1, p2]);
    assert!(a.allow_namespace_operation("a", ns::READ_JOB));
    assert!(a.allow_namespace_operation("a", ns::SUBMIT_JOB));
    for order in [[p1, p2, p3], [p3, p1, p2], [p1, p3, p2]] {
        let a = acl(&order);
        assert!(!a.allow_namespace_operation("a", ns::READ_JOB));
        assert!(!a.allow_namespace_operation("a", ns::SUBMIT_JOB));
        assert!(!a.allow_namespace("a"));
    }
    // Deny within one rule, in either position.
    let a = acl(&[r#"namespace "a" { capabilities = ["read-job", "deny", "submit-job"] }"#]);
    assert!(!a.allow_namespace_operation("a", ns::SUBMIT_JOB));
    assert!(!a.allow_namespace_operation("a", ns::READ_JOB));
    // Deny on a label does not reach another label.
    let a = acl(&[p3, r#"namespace "b" { policy = "read" }"#]);
    assert!(a.allow_namespace_operation("b", ns::READ_JOB));
    assert!(a.allow_namespace_operation("*", ns::READ_JOB));
    assert!(!a.allow_namespace_operation("*", ns::SUBMIT_JOB));
}

#[test]
fn item_22_single_blocks_deny_wins() {
    let a = acl(&[r#"node { policy = "read" }"#, r#"node { policy = "deny" }"#]);
    assert!(!a.allow_node_read());
    let a = acl(&[
        r#"node { policy = "deny" }"#,
        r#"node { policy = "write" }"#,
    ]);
    assert!(!a.allow_node_read() && !a.allow_node_write());
    let a = acl(&[
        r#"agent { policy = "read" }"#,
        r#"agent { policy = "write" }"#,
    ]);
    assert!(a.allow_agent_write());
    // scale grants nothing and does not lower.
    let a = acl(&[r#"operator { policy = "scale" }"#]);
    assert!(!a.allow_operator_read());
    let a = acl(&[
        r#"operator { policy = "read" }"#,
        r#"operator { policy = "scale" }"#,
    ]);
    assert!(a.allow_operator_read());
}

#[test]
fn plugin_quirk() {
    let a = acl(&[r#"plugin { policy = "write" }"#]);
    assert!(!a.allow_plugin_read() && !a.allow_plugin_list());
    let a = acl(&[r#"plugin { policy = "read" }"#]);
    assert!(a.allow_plugin_read() && a.allow_plugin_list());
    let a = acl(&[r#"plugin { policy = "list" }"#]);
    assert!(!a.allow_plugin_read() && a.allow_plugin_list());
    let a = acl(&[
        r#"plugin { policy = "read" }"#,
        r#"plugin { policy = "write" }"#,
    ]);
    assert!(!a.allow_plugin_read());
}

#[test]
fn allow_namespace_cases() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"namespace "foo" {}"#, "foo", false),
        (r#"namespace "foo" { policy = "deny" }"#, "foo", false),
        (
            r#"namespace "foo" { capabilities = ["deny"] }"#,
            "foo",
            false,
        ),
        (
            r#"namespace "foo" { capabilities = ["list-jobs"] }"#,
            "foo",
            true,
        ),
        (r#"namespace "foo" { policy = "read" }"#, "foo", true),
        (r#"namespace "foo" {}"#, "*", false),
        (r#"namespace "foo" { policy = "deny" }"#, "*", false),
        (r#"namespace "foo" { capabilities = ["deny"] }"#, "*", false),
        (
            r#"namespace "foo" { capabilities = ["list-jobs"] }"#,
            "*",
            true,
        ),
        (r#"namespace "foo" { policy = "read" }"#, "*", true),
        (r#"agent { policy = "read" }"#, "*", false),
    ];
    for (rules, name, allow) in cases {
        assert_eq!(
            acl(&[rules]).allow_namespace(name),
            *allow,
            "{rules} / {name}"
        );
    }
}

#[test]
fn star_request_namespace() {
    let a = acl(&[r#"namespace "dev" { capabilities = ["read-job"] }
namespace "prod-*" { capabilities = ["list-jobs"] }"#]);
    assert!(a.allow_namespace_operation("*", ns::READ_JOB));
    assert!(a.allow_namespace_operation("*", ns::LIST_JOBS));
    assert!(!a.allow_namespace_operation("*", ns::SUBMIT_JOB));
    assert!(a.allow_namespace_any_of("prod-x", &[ns::SUBMIT_JOB, ns::LIST_JOBS]));
    assert!(!a.allow_namespace_any_of("prod-x", &[ns::SUBMIT_JOB, ns::READ_JOB]));
}

#[test]
fn node_pools_like_nomads_test() {
    struct Case {
        rules: &'static str,
        pool: &'static str,
        allow_ops: &'static [&'static str],
        deny_ops: &'static [&'static str],
        allow: bool,
    }
    let cases = [
        Case {
            rules: r#"node_pool "my-pool" { policy = "read" }"#,
            pool: "my-pool",
            allow_ops: &["read"],
            deny_ops: &["delete", "write"],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool" { policy = "write" }"#,
            pool: "my-pool",
            allow_ops: &["delete", "read", "write"],
            deny_ops: &[],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool" { capabilities = ["write"] }"#,
            pool: "my-pool",
            allow_ops: &["write"],
            deny_ops: &["delete", "read"],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool" { capabilities = ["read", "delete"] }"#,
            pool: "my-pool",
            allow_ops: &["read", "delete"],
            deny_ops: &["write"],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool" { policy = "deny" capabilities = ["write", "delete"] }"#,
            pool: "my-pool",
            allow_ops: &[],
            deny_ops: &["delete", "read", "write"],
            allow: false,
        },
        Case {
            rules: r#"node_pool "my-pool" { capabilities = ["write", "delete", "deny"] }"#,
            pool: "my-pool",
            allow_ops: &[],
            deny_ops: &["delete", "read", "write"],
            allow: false,
        },
        Case {
            rules: r#"node_pool "*" { policy = "read" }"#,
            pool: "my-pool",
            allow_ops: &["read"],
            deny_ops: &["delete", "write"],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool-*" { policy = "read" }"#,
            pool: "my-pool-1",
            allow_ops: &["read"],
            deny_ops: &["delete", "write"],
            allow: true,
        },
        Case {
            rules: r#"node_pool "my-pool-*" { policy = "read" }"#,
            pool: "your-pool-1",
            allow_ops: &[],
            deny_ops: &["delete", "read", "write"],
            allow: false,
        },
        Case {
            rules: "node_pool \"my-pool-dev-*\" { policy = \"read\" }\nnode_pool \"my-pool-*\" { policy = \"write\" }\nnode_pool \"*\" { policy = \"deny\" }",
            pool: "my-pool-dev-1",
            allow_ops: &["read"],
            deny_ops: &["delete", "write"],
            allow: true,
        },
    ];
    for c in cases {
        let a = acl(&[c.rules]);
        for op in c.allow_ops {
            assert!(a.allow_node_pool_operation(c.pool, op), "{} {op}", c.rules);
        }
        for op in c.deny_ops {
            assert!(!a.allow_node_pool_operation(c.pool, op), "{} {op}", c.rules);
        }
        assert_eq!(a.allow_node_pool(c.pool), c.allow, "{}", c.rules);
    }
}

#[test]
fn host_volumes_like_nomads_test() {
    let cases: &[(&str, bool)] = &[
        (r#"host_volume "prod-api-*" { policy = "write" }"#, true),
        (r#"host_volume "prod-api" { policy = "write" }"#, false),
        (
            "host_volume \"prod-api-services\" { policy = \"deny\" }\nhost_volume \"prod-api-*\" { policy = \"write\" }",
            false,
        ),
        (
            "host_volume \"prod-api-*\" { policy = \"deny\" }\nhost_volume \"prod-api-services\" { policy = \"write\" }",
            true,
        ),
        (
            "host_volume \"*-api-services\" { policy = \"deny\" }\nhost_volume \"prod-api-*\" { policy = \"write\" }",
            false,
        ),
        (
            "host_volume \"prod-api-*\" { policy = \"write\" }\nhost_volume \"*-api-services\" { policy = \"deny\" }",
            false,
        ),
    ];
    for (rules, allow) in cases {
        assert_eq!(
            acl(&[rules]).allow_host_volume("prod-api-services"),
            *allow,
            "{rules}"
        );
    }
    let a = acl(&[r#"host_volume "certs" { policy = "read" }"#]);
    assert!(a.allow_host_volume_operation("certs", hv::MOUNT_READONLY));
    assert!(!a.allow_host_volume_operation("certs", hv::MOUNT_READWRITE));
}

#[test]
fn variables_like_nomads_test() {
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (
            r#"namespace "ns" { variables { path "foo/bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            true,
        ),
        (
            r#"namespace "ns" { variables { path "foo/bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "list",
            true,
        ),
        (
            r#"namespace "ns" { variables { path "foo/*" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            true,
        ),
        (
            r#"namespace "ns" { variables { path "*/bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            true,
        ),
        (
            r#"namespace "ns" { variables {
                path "*/bar" { capabilities = ["list"] }
                path "foo/*" { capabilities = ["write"] } }}"#,
            "ns",
            "foo/bar",
            "write",
            true,
        ),
        (
            r#"namespace "ns" { variables {
                path "*/bar" { capabilities = ["list"] }
                path "foo/*" { capabilities = ["write"] } }}"#,
            "ns",
            "foo/bar",
            "list",
            false,
        ),
        (
            r#"namespace "ns" { variables {
                path "*" { capabilities = ["read"] }
                path "foo/*" { capabilities = ["read"] }
                path "foo/bar" { capabilities = ["list"] } }}"#,
            "ns",
            "foo/bar",
            "read",
            false,
        ),
        (
            r#"namespace "ns" { variables { path "bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            false,
        ),
        (
            r#"namespace "ns" { variables { path "*/foo" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            false,
        ),
        (
            r#"namespace "*" { variables { path "foo/bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            true,
        ),
        (
            r#"namespace "*" { variables { path "bar" { capabilities = ["read"] }}}"#,
            "ns",
            "foo/bar",
            "read",
            false,
        ),
        (
            r#"namespace "ns" { variables { path "foo/bar" { capabilities = ["read"] }}}"#,
            "ns",
            "*",
            "read",
            false,
        ),
        (
            r#"namespace "ns" { variables { path "foo/bar" { capabilities = ["read"] }}}"#,
            "ns*",
            "bar",
            "read",
            false,
        ),
        (
            r#"namespace "ns" { variables {
                path "*" { capabilities = ["list"] }
                path "system/*" { capabilities = ["deny"] }}}"#,
            "ns",
            "system/not-allowed",
            "list",
            false,
        ),
        (
            r#"namespace "ns" { variables {
                path "*" { capabilities = ["list"] }
                path "system/*" { capabilities = ["deny"] }}}
               namespace "prod" { variables { path "*" { capabilities = ["list"] }}}"#,
            "prod",
            "system/is-allowed",
            "list",
            true,
        ),
    ];
    for (rules, namespace, path, op, allow) in cases {
        assert_eq!(
            acl(&[rules]).allow_variable_operation(namespace, path, op),
            *allow,
            "{rules} / {namespace} {path} {op}"
        );
    }
}

#[test]
fn level_names() {
    for (l, s) in [
        (Level::Deny, "deny"),
        (Level::List, "list"),
        (Level::Read, "read"),
        (Level::Write, "write"),
        (Level::Scale, "scale"),
    ] {
        assert_eq!(l.as_str(), s);
        assert_eq!(l.to_string(), s);
    }
}

// ---- robustness ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(rules in ".{0,200}") {
        let _ = parse_policy(&rules);
    }

    #[test]
    fn parse_never_panics_on_near_policies(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("namespace"), Just("node_pool"), Just("host_volume"), Just("agent"),
                Just("plugin"), Just("variables"), Just("path"), Just("policy"),
                Just("capabilities"), Just("\"read\""), Just("\"*\""), Just("\"\""), Just("="),
                Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"), Just("\n"),
                Just("\"deny\""), Just("1"), Just("true"), Just("null"), Just("<<EOF\nx\nEOF\n"),
                Just("\"${\""), Just("#"), Just("/*"), Just("\\"), Just("\"namespace\""),
            ],
            0..40,
        )
    ) {
        let rules = parts.join(" ");
        if let Ok(p) = parse_policy(&rules) {
            let _ = p.rules_json();
            let acl = Acl::new(&[&p]);
            let _ = acl.allow_namespace("*");
        }
        let json = format!("{{{}", parts.join(""));
        let _ = parse_policy(&json);
    }

    #[test]
    fn valid_labels_roundtrip(name in "[a-zA-Z0-9-]{1,40}") {
        let p = parse_policy(&format!("namespace \"{name}\" {{ policy = \"read\" }}")).unwrap();
        let acl = Acl::new(&[&p]);
        prop_assert!(acl.allow_namespace_operation(&name, "read-job"));
        prop_assert!(!acl.allow_namespace_operation(&name, "submit-job"));
    }
}
