//! The built-in service catalogue (`provider = "nomad"`): registrations (GET /v1/service/:name,
//! /v1/allocation/:id/services), the grouped list stubs of GET /v1/services, the rendezvous
//! hashing behind `choose`, and the results of the checks agents run
//! (GET /v1/client/allocation/:id/checks).

use std::collections::{BTreeMap, BTreeSet};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// One registered instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistration {
    pub address: String,
    #[serde(rename = "AllocID")]
    pub alloc_id: String,
    pub create_index: u64,
    pub datacenter: String,
    /// `_nomad-task-<alloc>-<task or group-<group>>-<service>-<port label>`.
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub modify_index: u64,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub port: i64,
    pub service_name: String,
    /// Always a list on the wire (`[]` when there are none).
    #[serde(deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
}

/// The ID of a registration: `workload` is the task name, or `group-<group>` for a group
/// service; `port_label` is the service's `port` as written (empty when it has none).
pub fn service_registration_id(
    alloc_id: &str,
    workload: &str,
    service_name: &str,
    port_label: &str,
) -> String {
    format!("_nomad-task-{alloc_id}-{workload}-{service_name}-{port_label}")
}

impl ServiceRegistration {
    /// Nomad's `Validate`: what the server refuses to store.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("missing service registration ID".to_owned());
        }
        if self.service_name.is_empty() {
            return Err("missing service registration service name".to_owned());
        }
        if self.namespace.is_empty() {
            return Err("missing service registration namespace".to_owned());
        }
        if self.alloc_id.is_empty() {
            return Err("missing service registration alloc ID".to_owned());
        }
        if matches!(self.address.as_str(), "0.0.0.0" | "::" | "[::]") {
            return Err("invalid service registration address".to_owned());
        }
        Ok(())
    }

    /// Equal for storage: all but the indexes, tags compared as a set (Nomad's `Equal`), so
    /// re-registering the same instance writes nothing.
    pub fn same_as(&self, other: &ServiceRegistration) -> bool {
        let tags = |r: &ServiceRegistration| r.tags.iter().cloned().collect::<BTreeSet<String>>();
        self.id == other.id
            && self.service_name == other.service_name
            && self.namespace == other.namespace
            && self.node_id == other.node_id
            && self.datacenter == other.datacenter
            && self.job_id == other.job_id
            && self.alloc_id == other.alloc_id
            && self.address == other.address
            && self.port == other.port
            && tags(self) == tags(other)
    }

    /// The rendezvous hash of `choose=<n>|<key>` (Nomad's `HashWith`): MD5 over the port (8
    /// bytes, big-endian), allocation, ID, namespace, address, name, each tag and the key, in
    /// hex.
    pub fn hash_with(&self, key: &str) -> String {
        let mut h = Md5::new();
        h.update(self.port.to_be_bytes());
        h.update(self.alloc_id.as_bytes());
        h.update(self.id.as_bytes());
        h.update(self.namespace.as_bytes());
        h.update(self.address.as_bytes());
        h.update(self.service_name.as_bytes());
        for tag in &self.tags {
            h.update(tag.as_bytes());
        }
        h.update(key.as_bytes());
        hex(&h.finalize())
    }
}

/// Go decodes `null` into an empty list; so does this.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of every bad `choose` parameter.
pub const CHOOSE_FORMAT_ERROR: &str =
    "failed to choose services: Parameter for choose must be in form '<number>|<key>'";

/// Parses `choose=<n>|<key>`. A negative count is refused too (Nomad panics on it).
pub fn parse_choose(choose: &str) -> Result<(usize, &str), String> {
    let (n, key) = choose
        .split_once('|')
        .ok_or_else(|| CHOOSE_FORMAT_ERROR.to_owned())?;
    let n: usize = n.parse().map_err(|_| CHOOSE_FORMAT_ERROR.to_owned())?;
    if key.is_empty() {
        return Err(CHOOSE_FORMAT_ERROR.to_owned());
    }
    Ok((n, key))
}

/// The first `n` items in the order of their registration's hash with `key` (stable, so the same
/// key picks the same instances while membership holds).
pub fn choose_services<T>(
    items: Vec<T>,
    n: usize,
    key: &str,
    registration: impl Fn(&T) -> &ServiceRegistration,
) -> Vec<T> {
    let mut hashed: Vec<(String, T)> = items
        .into_iter()
        .map(|r| (registration(&r).hash_with(key), r))
        .collect();
    hashed.sort_by(|a, b| a.0.cmp(&b.0));
    hashed.into_iter().take(n).map(|(_, r)| r).collect()
}

/// One service of a namespace in GET /v1/services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistrationStub {
    pub service_name: String,
    /// The union of the tags of every instance, sorted.
    pub tags: Vec<String>,
}

/// The services of one namespace in GET /v1/services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceRegistrationListStub {
    pub namespace: String,
    pub services: Vec<ServiceRegistrationStub>,
}

/// Groups registrations by namespace and name, sorted (Nomad's order is its maps' order, which
/// no client can depend on).
pub fn service_list_stubs<'a>(
    regs: impl IntoIterator<Item = &'a ServiceRegistration>,
) -> Vec<ServiceRegistrationListStub> {
    let mut by_ns: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for r in regs {
        let tags = by_ns
            .entry(&r.namespace)
            .or_default()
            .entry(&r.service_name)
            .or_default();
        tags.extend(r.tags.iter().map(String::as_str));
    }
    by_ns
        .into_iter()
        .map(|(ns, services)| ServiceRegistrationListStub {
            namespace: ns.to_owned(),
            services: services
                .into_iter()
                .map(|(name, tags)| ServiceRegistrationStub {
                    service_name: name.to_owned(),
                    tags: tags.into_iter().map(str::to_owned).collect(),
                })
                .collect(),
        })
        .collect()
}

pub const CHECK_STATUS_SUCCESS: &str = "success";
pub const CHECK_STATUS_FAILURE: &str = "failure";
pub const CHECK_STATUS_PENDING: &str = "pending";
pub const CHECK_MODE_HEALTHINESS: &str = "healthiness";
pub const CHECK_MODE_READINESS: &str = "readiness";

/// The latest result of one check (GET /v1/client/allocation/:id/checks).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CheckQueryResult {
    #[serde(rename = "ID")]
    pub id: String,
    /// `healthiness`, or `readiness` for `on_update = "ignore"`.
    pub mode: String,
    /// `success`, `failure` or `pending`.
    pub status: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub status_code: i64,
    pub output: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The allocation's name (`job.group[0]`), not the group's.
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task: String,
    pub service: String,
    pub check: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What identifies a check across agent restarts (Nomad's `NomadCheckID` inputs).
#[derive(Debug, Clone, Default)]
pub struct CheckIdentity<'a> {
    pub alloc_id: &'a str,
    pub group: &'a str,
    pub task: &'a str,
    pub name: &'a str,
    pub check_type: &'a str,
    pub port_label: &'a str,
    pub on_update: &'a str,
    pub address_mode: &'a str,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub protocol: &'a str,
    pub path: &'a str,
    pub method: &'a str,
    pub tls_skip_verify: bool,
}

impl CheckIdentity<'_> {
    /// 32 hex characters, the same for the same check definition in the same allocation.
    pub fn id(&self) -> String {
        let mut h = Md5::new();
        for part in [
            self.alloc_id,
            self.group,
            self.task,
            self.name,
            self.check_type,
            self.port_label,
            self.on_update,
            self.address_mode,
        ] {
            h.update(part.as_bytes());
        }
        // As Nomad's NomadCheckID: durations as little-endian int64, the flag as text, so the
        // IDs are Nomad's own.
        h.update(self.interval_ns.to_le_bytes());
        h.update(self.timeout_ns.to_le_bytes());
        let tls = if self.tls_skip_verify {
            "true"
        } else {
            "false"
        };
        for part in [self.protocol, self.path, self.method, tls] {
            h.update(part.as_bytes());
        }
        hex(&h.finalize())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn reg(id: &str, name: &str, tags: &[&str]) -> ServiceRegistration {
        ServiceRegistration {
            id: id.to_owned(),
            service_name: name.to_owned(),
            namespace: "default".to_owned(),
            alloc_id: "a".to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn choose_parses_nomads_form_and_refuses_the_rest() {
        assert_eq!(parse_choose("2|abc").unwrap(), (2, "abc"));
        assert_eq!(parse_choose("0|k").unwrap(), (0, "k"));
        for bad in ["abc", "2|", "x|k", "-1|k", ""] {
            assert_eq!(parse_choose(bad).unwrap_err(), CHOOSE_FORMAT_ERROR, "{bad}");
        }
    }

    #[test]
    fn choose_is_stable_and_bounded() {
        let regs: Vec<_> = (0..10)
            .map(|i| reg(&format!("id{i}"), "web", &[]))
            .collect();
        let a = choose_services(regs.clone(), 3, "key", |r| r);
        let b = choose_services(regs.clone(), 3, "key", |r| r);
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert_eq!(choose_services(regs.clone(), 99, "key", |r| r).len(), 10);
        // Removing an instance that was not picked keeps the pick.
        let picked: BTreeSet<_> = a.iter().map(|r| r.id.clone()).collect();
        let fewer: Vec<_> = regs
            .into_iter()
            .filter(|r| picked.contains(&r.id) || r.id != "id0" && r.id != "id1")
            .collect();
        assert_eq!(choose_services(fewer, 3, "key", |r| r), a);
    }

    #[test]
    fn stubs_group_and_union_tags() {
        let regs = [
            reg("1", "web", &["b", "a"]),
            reg("2", "web", &["c"]),
            reg("3", "db", &[]),
        ];
        let stubs = service_list_stubs(&regs);
        let json = serde_json::to_string(&stubs).unwrap();
        assert_eq!(
            json,
            r#"[{"Namespace":"default","Services":[{"ServiceName":"db","Tags":[]},{"ServiceName":"web","Tags":["a","b","c"]}]}]"#
        );
    }

    #[test]
    fn same_as_ignores_indexes_and_tag_order() {
        let mut a = reg("1", "web", &["x", "y"]);
        let mut b = reg("1", "web", &["y", "x"]);
        a.modify_index = 5;
        b.create_index = 9;
        assert!(a.same_as(&b));
        b.port = 80;
        assert!(!a.same_as(&b));
    }

    #[test]
    fn check_ids_are_32_hex_and_stable() {
        let ident = CheckIdentity {
            alloc_id: "a",
            name: "c",
            interval_ns: 1,
            ..Default::default()
        };
        let id = ident.id();
        assert_eq!(id.len(), 32);
        assert_eq!(id, ident.id());
        let other = CheckIdentity {
            interval_ns: 2,
            ..ident.clone()
        };
        assert_ne!(id, other.id());
    }

    #[test]
    fn check_ids_are_nomads() {
        // md5 over the same inputs laid out as Nomad's NomadCheckID writes them.
        let ident = CheckIdentity {
            alloc_id: "a1",
            group: "web.g[0]",
            task: "t",
            name: "c",
            check_type: "http",
            port_label: "http",
            on_update: "require_healthy",
            address_mode: "host",
            interval_ns: 1_000_000_000,
            timeout_ns: 2_000_000_000,
            protocol: "http",
            path: "/health",
            method: "GET",
            tls_skip_verify: false,
        };
        assert_eq!(ident.id(), "9910a0131241e223d90187fe39ca8742");
    }
}
