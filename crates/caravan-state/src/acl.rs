//! The ACL tables: policies (keyed by name), tokens (keyed by accessor, looked up by the
//! SHA-256 digest of their secret), roles (keyed by ID, looked up by name), one-time tokens
//! (keyed by the digest of their secret, looked up by accessor) and the bootstrap record (one
//! row).

use caravan_structs::{AclBootstrap, AclPolicy, AclRole, AclToken, OneTimeToken};
use sha2::{Digest, Sha256};

use crate::table::{Document, TableId};

/// Tokens by secret digest.
pub(crate) const TOKENS_BY_SECRET: usize = 0;
/// Roles by name.
pub(crate) const ROLES_BY_NAME: usize = 0;
/// One-time tokens by the accessor of their parent token.
pub(crate) const ONE_TIME_BY_ACCESSOR: usize = 0;

/// The key of the one bootstrap row.
pub const ACL_BOOTSTRAP_KEY: &str = "bootstrap";

/// Hex SHA-256 of a secret: what tables index secrets by, so that a lookup compares digests
/// and never branches on the secret's own bytes.
pub fn secret_digest(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Equality of two digests without an early exit on the first differing byte.
pub(crate) fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Document for AclPolicy {
    const TABLE: TableId = TableId::AclPolicies;

    fn key(&self) -> String {
        self.name.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    /// RulesJSON is computed on reads, never stored.
    fn normalize(&mut self) {
        self.rules_json = None;
    }
}

impl Document for AclToken {
    const TABLE: TableId = TableId::AclTokens;

    fn key(&self) -> String {
        self.accessor_id.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    fn index_values(&self) -> Vec<String> {
        vec![secret_digest(&self.secret_id)]
    }
}

impl Document for AclRole {
    const TABLE: TableId = TableId::AclRoles;

    fn key(&self) -> String {
        self.id.clone()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    fn index_values(&self) -> Vec<String> {
        vec![self.name.clone()]
    }
}

impl Document for OneTimeToken {
    const TABLE: TableId = TableId::OneTimeTokens;

    fn key(&self) -> String {
        secret_digest(&self.one_time_secret_id)
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }

    fn index_values(&self) -> Vec<String> {
        vec![self.accessor_id.clone()]
    }
}

impl Document for AclBootstrap {
    const TABLE: TableId = TableId::AclBootstrap;

    fn key(&self) -> String {
        ACL_BOOTSTRAP_KEY.to_owned()
    }

    crate::table::index_fields!();

    fn columns(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
