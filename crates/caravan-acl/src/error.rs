//! The errors of this crate, with Nomad's texts.
//!
//! Several of Nomad's parse messages end in a Go `%#v` dump of the offending block
//! (`&acl.NamespacePolicy{Name:"", Policy:"read", ...}`). The dumps here are built the same way,
//! field for field, with one difference: where Go prints the address of a nested pointer
//! (`Variables:(*acl.VariablesPolicy)(0xc000123456)`), the pointee is printed instead. Match
//! these messages on their prefix, as Nomad's own tests do.

use std::fmt;

/// Why [`parse_policy`](crate::parse_policy) refused the rules. The texts are Nomad's
/// (acl/policy.go); the policy endpoint prefixes them with `failed to parse rules: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not HCL1 or JSON, or a value of the wrong type.
    #[error("Failed to parse ACL Policy: {0}")]
    Syntax(String),
    /// Non-empty rules without any known block.
    #[error("Invalid policy: {0}")]
    NoBlocks(String),
    #[error("Invalid namespace name: {0}")]
    NamespaceName(String),
    #[error("Invalid namespace policy: {0}")]
    NamespacePolicy(String),
    #[error("Invalid namespace capability '{capability}': {dump}")]
    NamespaceCapability { capability: String, dump: String },
    #[error("Invalid variable policy: no variable paths in namespace {0}")]
    VariablesWithoutPaths(String),
    #[error("Invalid missing variable path in namespace {0}")]
    VariablePathMissing(String),
    /// The trailing backtick is in Nomad's text.
    #[error("Invalid variable path {} in namespace {namespace}: cannot start with a leading '/'`", go_quote(.path))]
    VariablePathLeadingSlash { path: String, namespace: String },
    #[error("Invalid variable capability '{capability}' in namespace {namespace}")]
    VariableCapability {
        capability: String,
        namespace: String,
    },
    #[error("Invalid node pool name '{0}'")]
    NodePoolName(String),
    #[error("Invalid node pool policy '{policy}' for '{name}'")]
    NodePoolPolicy { policy: String, name: String },
    #[error("Invalid node pool capability '{capability}' for '{name}'")]
    NodePoolCapability { capability: String, name: String },
    #[error("Invalid host volume name: {0}")]
    HostVolumeName(String),
    #[error("Invalid host volume policy: {0}")]
    HostVolumePolicy(String),
    #[error("Invalid host volume capability '{capability}': {dump}")]
    HostVolumeCapability { capability: String, dump: String },
    /// `agent`, `node`, `operator`, `quota` or `plugin` with a policy it does not take.
    #[error("Invalid {block} policy: {dump}")]
    BlockPolicy { block: &'static str, dump: String },
}

/// One reason a policy write is refused (nomad/structs ACLPolicy.Validate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyValidationError {
    #[error("invalid name '{0}'")]
    InvalidName(String),
    #[error("failed to parse rules: {0}")]
    Rules(PolicyError),
    #[error("description longer than {}", crate::meta::MAX_DESCRIPTION_LEN)]
    DescriptionTooLong,
    #[error("namespace must be set to set job ID")]
    JobAclNamespaceMissing,
    #[error("job ID must be set to set group")]
    JobAclJobMissing,
    #[error("group must be set to set task")]
    JobAclGroupMissing,
}

/// All the reasons, in Nomad's order; displayed as go-multierror does
/// (`1 error occurred:\n\t* <msg>\n\n`), the form Nomad puts after `policy 0 invalid: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyValidationErrors(pub Vec<PolicyValidationError>);

impl fmt::Display for PolicyValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "1 error occurred:")?,
            n => write!(f, "{n} errors occurred:")?,
        }
        for e in &self.0 {
            write!(f, "\n\t* {e}")?;
        }
        write!(f, "\n\n")
    }
}

/// Go's `%q`: double quotes, backslash escapes for quotes, backslashes and control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`.
pub(crate) fn go_strings(v: Option<&Vec<String>>) -> String {
    match v {
        None => "[]string(nil)".to_owned(),
        Some(v) => {
            let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multierror_text() {
        let one = PolicyValidationErrors(vec![PolicyValidationError::DescriptionTooLong]);
        assert_eq!(
            one.to_string(),
            "1 error occurred:\n\t* description longer than 256\n\n"
        );
        let two = PolicyValidationErrors(vec![
            PolicyValidationError::InvalidName("bad_name".to_owned()),
            PolicyValidationError::DescriptionTooLong,
        ]);
        assert_eq!(
            two.to_string(),
            "2 errors occurred:\n\t* invalid name 'bad_name'\n\t* description longer than 256\n\n"
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\x01é"), r#""a\"b\\c\n\x01é""#);
        assert_eq!(go_strings(None), "[]string(nil)");
        assert_eq!(go_strings(Some(&vec![])), "[]string{}");
        assert_eq!(
            go_strings(Some(&vec!["a".to_owned(), "b".to_owned()])),
            r#"[]string{"a", "b"}"#
        );
    }
}
