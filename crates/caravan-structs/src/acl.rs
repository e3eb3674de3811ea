//! The ACL objects (ACL.md §2–§4): `AclPolicy`, `AclToken`, `AclRole`, `OneTimeToken`, their
//! list stubs, and `AclBootstrap`, the record of the last bootstrap.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{Time, format_go_duration, parse_go_duration};

pub const ACL_TOKEN_TYPE_CLIENT: &str = "client";
pub const ACL_TOKEN_TYPE_MANAGEMENT: &str = "management";
/// The policy the anonymous (token-less) caller gets, if it exists.
pub const ACL_ANONYMOUS_POLICY: &str = "anonymous";
pub const ACL_BOOTSTRAP_TOKEN_NAME: &str = "Bootstrap Token";

/// A named set of rules (`/v1/acl/policy/:name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclPolicy {
    pub create_index: u64,
    pub description: String,
    /// base64 BLAKE2b-256 of name, description, rules and JobACL.
    pub hash: Option<String>,
    #[serde(rename = "JobACL")]
    pub job_acl: Option<JobAcl>,
    pub modify_index: u64,
    pub name: String,
    pub rules: String,
    /// The parsed rules with capabilities expanded; added on reads only.
    #[serde(rename = "RulesJSON", skip_serializing_if = "Option::is_none")]
    pub rules_json: Option<serde_json::Value>,
}

/// The workload a policy is attached to (workload identities).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobAcl {
    pub group: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub task: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclPolicyListStub {
    pub create_index: u64,
    pub description: String,
    pub hash: Option<String>,
    pub modify_index: u64,
    pub name: String,
}

impl AclPolicy {
    pub fn stub(&self) -> AclPolicyListStub {
        AclPolicyListStub {
            create_index: self.create_index,
            description: self.description.clone(),
            hash: self.hash.clone(),
            modify_index: self.modify_index,
            name: self.name.clone(),
        }
    }
}

/// A token (`/v1/acl/token/:accessor`). The secret is stored as given; lookups go through its
/// SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub create_index: u64,
    pub create_time: Time,
    /// Written as a Go duration string (`"1h0m0s"`, `""` when zero); read from a string or a
    /// number of nanoseconds.
    #[serde(rename = "ExpirationTTL", with = "go_duration_string")]
    pub expiration_ttl: i64,
    pub expiration_time: Time,
    pub global: bool,
    pub hash: Option<String>,
    pub modify_index: u64,
    pub name: String,
    pub policies: Option<Vec<String>>,
    pub roles: Option<Vec<AclTokenRoleLink>>,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub r#type: String,
}

/// A token's link to a role, by ID (the name is filled in on reads).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclTokenRoleLink {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
}

/// A token in lists: no secret, no TTL.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclTokenListStub {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub create_index: u64,
    pub create_time: Time,
    pub expiration_time: Time,
    pub global: bool,
    pub hash: Option<String>,
    pub modify_index: u64,
    pub name: String,
    pub policies: Option<Vec<String>>,
    pub roles: Option<Vec<AclTokenRoleLink>>,
    pub r#type: String,
}

impl AclToken {
    pub fn stub(&self) -> AclTokenListStub {
        AclTokenListStub {
            accessor_id: self.accessor_id.clone(),
            create_index: self.create_index,
            create_time: self.create_time,
            expiration_time: self.expiration_time,
            global: self.global,
            hash: self.hash.clone(),
            modify_index: self.modify_index,
            name: self.name.clone(),
            policies: self.policies.clone(),
            roles: self.roles.clone(),
            r#type: self.r#type.clone(),
        }
    }

    pub fn is_management(&self) -> bool {
        self.r#type == ACL_TOKEN_TYPE_MANAGEMENT
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: Time) -> bool {
        !self.expiration_time.is_zero() && self.expiration_time.unix_nanos() < now.unix_nanos()
    }
}

/// A named set of policies tokens can link to (`/v1/acl/role/:id`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclRole {
    pub create_index: u64,
    pub description: String,
    pub hash: Option<String>,
    #[serde(rename = "ID")]
    pub id: String,
    pub modify_index: u64,
    pub name: String,
    pub policies: Option<Vec<AclRolePolicyLink>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclRolePolicyLink {
    pub name: String,
}

/// A one-time token: exchanged once for its parent token (the UI's login links).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct OneTimeToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub create_index: u64,
    pub expires_at: Time,
    pub modify_index: u64,
    #[serde(rename = "OneTimeSecretID")]
    pub one_time_secret_id: String,
}

/// The last ACL bootstrap: one row; its index is what the reset file must name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AclBootstrap {
    pub create_index: u64,
    pub modify_index: u64,
}

/// `ExpirationTTL`: a Go duration string on the wire.
pub mod go_duration_string {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(i64),
        Str(String),
        Null(()),
    }

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        if *v == 0 {
            s.serialize_str("")
        } else {
            s.serialize_str(&format_go_duration(*v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Ok(n),
            NumOrStr::Null(()) => Ok(0),
            NumOrStr::Str(s) if s.is_empty() => Ok(0),
            NumOrStr::Str(s) => parse_signed_go_duration(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("time: invalid duration {s:?}"))),
        }
    }
}

/// A Go duration that may be negative (`-1h`), in nanoseconds.
pub fn parse_signed_go_duration(s: &str) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let nanos = i64::try_from(parse_go_duration(rest).ok()?.as_nanos()).ok()?;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ttls_read_strings_or_numbers_and_write_go_strings() {
        let t: AclToken = serde_json::from_str(r#"{"ExpirationTTL": "1h"}"#).unwrap();
        assert_eq!(t.expiration_ttl, 3_600_000_000_000);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["ExpirationTTL"], "1h0m0s");
        assert_eq!(v["ExpirationTime"], serde_json::Value::Null);
        let t: AclToken = serde_json::from_str(r#"{"ExpirationTTL": 600000000000}"#).unwrap();
        assert_eq!(t.expiration_ttl, 600_000_000_000);
        let t: AclToken = serde_json::from_str(r#"{"ExpirationTTL": "-1h"}"#).unwrap();
        assert_eq!(t.expiration_ttl, -3_600_000_000_000);
        let t = AclToken::default();
        assert_eq!(serde_json::to_value(&t).unwrap()["ExpirationTTL"], "");
        assert!(serde_json::from_str::<AclToken>(r#"{"ExpirationTTL": "soon"}"#).is_err());
    }
}
