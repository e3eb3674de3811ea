//! One table of the in-memory state: rows keyed by string, each row holding the typed object and
//! its canonical JSON, serialized once per version.

use std::sync::Arc;

use imbl::OrdMap;
use serde::{Serialize, de::DeserializeOwned};

/// The tables of the state, one per noun. The name is also the SQL table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableId {
    Nodes,
    Jobs,
    JobVersions,
    Evals,
    Allocs,
    Deployments,
    NodePools,
    SchedulerConfig,
    ScalingEvents,
    PeriodicLaunches,
    JobSubmissions,
    Namespaces,
    AclPolicies,
    AclTokens,
    AclRoles,
    OneTimeTokens,
    AclBootstrap,
    ServiceRegistrations,
}

impl TableId {
    pub const ALL: [TableId; 18] = [
        TableId::Nodes,
        TableId::Jobs,
        TableId::JobVersions,
        TableId::Evals,
        TableId::Allocs,
        TableId::Deployments,
        TableId::NodePools,
        TableId::SchedulerConfig,
        TableId::ScalingEvents,
        TableId::PeriodicLaunches,
        TableId::JobSubmissions,
        TableId::Namespaces,
        TableId::AclPolicies,
        TableId::AclTokens,
        TableId::AclRoles,
        TableId::OneTimeTokens,
        TableId::AclBootstrap,
        TableId::ServiceRegistrations,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableId::Nodes => "nodes",
            TableId::Jobs => "jobs",
            TableId::JobVersions => "job_versions",
            TableId::Evals => "evals",
            TableId::Allocs => "allocs",
            TableId::Deployments => "deployments",
            TableId::NodePools => "node_pools",
            TableId::SchedulerConfig => "scheduler_config",
            TableId::ScalingEvents => "job_scaling_events",
            TableId::PeriodicLaunches => "periodic_launches",
            TableId::Namespaces => "namespaces",
            TableId::AclPolicies => "acl_policies",
            TableId::AclTokens => "acl_tokens",
            TableId::AclRoles => "acl_roles",
            TableId::OneTimeTokens => "acl_one_time_tokens",
            TableId::AclBootstrap => "acl_bootstrap",
            TableId::JobSubmissions => "job_submissions",
            TableId::ServiceRegistrations => "service_registrations",
        }
    }

    /// The indexed columns stored beside the document, in the order `Document::columns` gives.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            TableId::Nodes => &["name", "datacenter", "status"],
            TableId::Jobs => &["namespace", "id", "status"],
            TableId::JobVersions => &["namespace", "job_id", "version"],
            TableId::Evals => &["namespace", "job_id", "status"],
            TableId::Allocs => &["namespace", "job_id", "node_id", "client_status"],
            TableId::Deployments => &["namespace", "job_id", "status"],
            TableId::NodePools
            | TableId::SchedulerConfig
            | TableId::ScalingEvents
            | TableId::JobSubmissions
            | TableId::Namespaces
            | TableId::AclPolicies
            | TableId::AclTokens
            | TableId::AclRoles
            | TableId::OneTimeTokens
            | TableId::AclBootstrap => &[],
            TableId::PeriodicLaunches => &["namespace", "job_id"],
            TableId::ServiceRegistrations => &["namespace", "service_name", "alloc_id"],
        }
    }
}

/// The three index accessors of a [`Document`] whose type has `create_index` and
/// `modify_index` fields (every Nomad object does).
macro_rules! index_fields {
    () => {
        fn create_index(&self) -> u64 {
            self.create_index
        }

        fn modify_index(&self) -> u64 {
            self.modify_index
        }

        fn set_indexes(&mut self, create_index: u64, modify_index: u64) {
            self.create_index = create_index;
            self.modify_index = modify_index;
        }
    };
}
pub(crate) use index_fields;

/// An object stored in a table.
pub trait Document: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const TABLE: TableId;
    fn key(&self) -> String;
    fn create_index(&self) -> u64;
    fn modify_index(&self) -> u64;
    fn set_indexes(&mut self, create_index: u64, modify_index: u64);
    /// Values of `TABLE.columns()`, in order.
    fn columns(&self) -> Vec<String>;
    /// The object as the API shows it, when that differs from what is stored (secrets
    /// blanked).
    fn api_view(&self) -> Option<Self> {
        None
    }
    /// Secondary indexes: each entry of `index_values` (one per index, in a fixed order) maps
    /// to the keys of the rows holding that value. Empty: no secondary index.
    fn index_values(&self) -> Vec<String> {
        Vec::new()
    }
    /// Brings the value to the form the state keeps (an allocation drops its `Job`).
    fn normalize(&mut self) {}
    /// Changes to other tables that go with writing this row, in the same transaction (a
    /// terminal or removed allocation takes its service registrations). `now` is `None` for a
    /// delete.
    fn cascade(_txn: &mut crate::txn::Txn<'_>, _key: &str, _now: Option<&Self>) {}
    /// The stored document. Differs from the wire JSON only where state keeps something the
    /// wire does not (an allocation's job version).
    fn encode(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
    fn decode(doc: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(doc)
    }
}

/// A stored version of an object, with its JSON encodings made once.
#[derive(Debug)]
pub struct Row<T> {
    pub value: T,
    /// Canonical Nomad JSON of `value`, as stored (`Document::encode`).
    pub json: Arc<str>,
    /// JSON of `Document::api_view`, when there is one.
    api_json: Option<Arc<str>>,
}

impl<T: Document> Row<T> {
    pub fn new(value: T) -> Result<Row<T>, serde_json::Error> {
        let json: Arc<str> = value.encode()?.into();
        let api_json = match value.api_view() {
            Some(view) => Some(serde_json::to_string(&view)?.into()),
            None => None,
        };
        Ok(Row {
            value,
            json,
            api_json,
        })
    }

    /// The JSON the API serves.
    pub fn api_json(&self) -> &str {
        self.api_json.as_deref().unwrap_or(&self.json)
    }
}

/// One secondary index: value → the rows holding it, by key.
type SecondaryIndex<T> = OrdMap<String, OrdMap<String, Arc<Row<T>>>>;

/// Rows of one table, its secondary indexes and the index of the table's last change.
#[derive(Debug)]
pub struct Table<T> {
    rows: OrdMap<String, Arc<Row<T>>>,
    /// Per secondary index: value → the rows holding it, by key (the rows themselves, so an
    /// index walk costs no lookups).
    secondary: Vec<SecondaryIndex<T>>,
    index: u64,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        Table {
            rows: self.rows.clone(),
            secondary: self.secondary.clone(),
            index: self.index,
        }
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: OrdMap::new(),
            secondary: Vec::new(),
            index: 0,
        }
    }
}

impl<T: Document> Table<T> {
    pub(crate) fn from_rows(rows: OrdMap<String, Arc<Row<T>>>, index: u64) -> Self {
        let mut table = Table {
            rows: OrdMap::new(),
            secondary: Vec::new(),
            index,
        };
        for (key, row) in rows {
            table.index_row(&key, &row);
            table.rows.insert(key, row);
        }
        table
    }

    fn index_row(&mut self, key: &str, row: &Arc<Row<T>>) {
        for (i, v) in row.value.index_values().into_iter().enumerate() {
            if self.secondary.len() <= i {
                self.secondary.resize_with(i + 1, OrdMap::new);
            }
            self.secondary[i]
                .entry(v)
                .or_default()
                .insert(key.to_owned(), row.clone());
        }
    }

    fn unindex_row(&mut self, key: &str, value: &T) {
        for (i, v) in value.index_values().into_iter().enumerate() {
            let Some(index) = self.secondary.get_mut(i) else {
                continue;
            };
            if let Some(rows) = index.get_mut(&v) {
                rows.remove(key);
                if rows.is_empty() {
                    index.remove(&v);
                }
            }
        }
    }

    /// Rows whose secondary index `index` holds `value`, in key order.
    pub fn by<'a>(
        &'a self,
        index: usize,
        value: &str,
    ) -> impl Iterator<Item = &'a Arc<Row<T>>> + use<'a, T> {
        self.secondary
            .get(index)
            .and_then(|idx| idx.get(value))
            .into_iter()
            .flat_map(|rows| rows.values())
    }

    /// The distinct values of secondary index `index`, ascending.
    pub fn index_keys(&self, index: usize) -> impl Iterator<Item = &String> {
        self.secondary
            .get(index)
            .into_iter()
            .flat_map(|idx| idx.keys())
    }

    pub fn get(&self, key: &str) -> Option<&Arc<Row<T>>> {
        self.rows.get(key)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The index of the table's last change.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Rows in ascending key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Arc<Row<T>>)> {
        self.rows.iter()
    }

    /// Rows whose key is at least `from`, ascending.
    pub fn range_from(
        &self,
        from: &str,
    ) -> impl DoubleEndedIterator<Item = (&String, &Arc<Row<T>>)> {
        self.rows.range(from.to_owned()..)
    }

    /// Rows whose key starts with `prefix`, ascending.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Arc<Row<T>>> + 'a {
        self.rows
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, row)| row)
    }

    pub(crate) fn insert(&mut self, key: String, row: Arc<Row<T>>, index: u64) {
        if let Some(old) = self.rows.get(&key).cloned() {
            self.unindex_row(&key, &old.value);
        }
        self.index_row(&key, &row);
        self.rows.insert(key, row);
        self.index = index;
    }

    pub(crate) fn remove(&mut self, key: &str, index: u64) -> Option<Arc<Row<T>>> {
        let removed = self.rows.remove(key);
        if let Some(old) = &removed {
            self.unindex_row(key, &old.value);
            self.index = index;
        }
        removed
    }
}
