//! Nomad's ACL policy language and the compiled ACL object.
//!
//! This crate owns what a policy's rules mean: [`parse_policy`] reads and validates the rules
//! text with Nomad's messages (`reference/ACL.md` §5), [`Policy::rules_json`] renders the
//! `RulesJSON` the policy endpoint returns, and [`Acl`] compiles a token's policies into the
//! object every endpoint asks (`allow_namespace_operation("prod", "submit-job")`). It also has
//! the policy object's checks and `Hash` ([`validate_policy`], [`policy_hash`]). It does no I/O:
//! the server resolves tokens to policies and caches compiled [`Acl`]s, the gateway asks them.
//!
//! # Rules syntax
//!
//! Nomad reads rules with HCL1, which takes forms HCL2 parsers (hcl-rs) refuse: several items
//! on one line (`namespace "a" { policy = "read" capabilities = ["x"] }`), nested one-line
//! blocks, repeated keys. So this crate has its own HCL1 reader, and a JSON reader as lenient
//! as HCL1's (trailing commas; `{"namespace": {"default": {"policy": "read"}}}` and the
//! list-of-objects forms). It then fills the policy as HCL1's decoder does: keys match
//! case-insensitively, numbers and booleans pass for strings, unknown keys are ignored, and an
//! unlabeled `namespace`, `node_pool`, `host_volume` or variables `path` block fails the name
//! check (the CVE-2023-3072 fix).
//!
//! # Differences from Nomad
//!
//! - Messages ending in a Go `%#v` dump print a nested pointer's contents, not its address
//!   ([`PolicyError`]); positions are left out of decoding errors. Match on the prefix.
//! - A bad escape in a string is refused wherever it is; Nomad only fails when it decodes the
//!   string. Where several scanner errors exist, the first is reported (Nomad: the last).
//! - Ties between globs equally close to a name go to the byte-wise greatest label for any
//!   number of matches; Nomad's sort gives that only up to 20 matches (ACL.md §5.4).
//! - `RulesJSON` writes `null` for an explicit `capabilities = []`; Go writes `[]`.
//!
//! # Layout
//!
//! - `syntax/`: rules text to a tree of keyed items (HCL1 in `hcl.rs`, JSON in `json.rs`,
//!   Go string unquoting in `unquote.rs`).
//! - `decode.rs`: the tree to Nomad's policy structs, as HCL1's decoder fills them, and Nomad's
//!   repair of unlabeled blocks.
//! - `policy.rs`: validation, shorthand expansion, [`Policy`], `RulesJSON`.
//! - `acl.rs`: [`Acl`]: merging, deny, the checks. `glob.rs`: exact-then-closest-glob lookup.
//! - `meta.rs`: policy name, description, JobACL, [`validate_policy`], [`policy_hash`].
//! - `capabilities.rs`: capability names. `error.rs`: the error types and Go-style dumps.
//!
//! ```
//! use caravan_acl::{Acl, capabilities::namespace, parse_policy};
//!
//! let ops = parse_policy(r#"namespace "*" { policy = "write" }
//!                           namespace "prod" { policy = "read" }"#)?;
//! let acl = Acl::new(&[&ops]);
//! assert!(acl.allow_namespace_operation("dev", namespace::SUBMIT_JOB));
//! assert!(!acl.allow_namespace_operation("prod", namespace::SUBMIT_JOB));
//! # Ok::<(), caravan_acl::PolicyError>(())
//! ```

mod acl;
pub mod capabilities;
mod decode;
mod error;
mod glob;
mod meta;
mod policy;
mod syntax;

pub use acl::Acl;
pub use error::{PolicyError, PolicyValidationError, PolicyValidationErrors};
pub use meta::{
    JobAcl, policy_hash, role_hash, token_hash, validate_policy, validate_policy_description,
    validate_policy_name,
};
pub use policy::{
    HostVolumePolicy, Level, NamespacePolicy, NodePoolPolicy, Policy, VariablesPathPolicy,
    VariablesPolicy, parse_policy,
};

#[cfg(test)]
mod tests;
