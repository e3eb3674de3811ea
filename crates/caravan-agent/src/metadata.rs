//! The node's metadata (`/v1/client/metadata`): the static meta of the agent's configuration,
//! the dynamic meta set through the API, and the two merged — what the node registers. The
//! dynamic part is kept in `<data_dir>/client/meta.json` (replaced atomically), so it survives
//! agent restarts; after a change the agent registers its node again (batched, see [`sync`]) so
//! the servers and the scheduler see it within seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use caravan_proto::v1::RegisterNodeRequest;
use caravan_proto::v1::nodes_client::NodesClient;
use caravan_structs::Node;
use caravan_structs::node::NODE_STATUS_READY;
use caravan_structs::stats::NodeMetaResponse;
use tokio::sync::Notify;
use tonic::transport::Channel;

/// Changes made within this window go to the servers in one registration.
const BATCH: Duration = Duration::from_secs(1);
/// Retry delay when the servers are away.
const RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// The request is wrong (Nomad's texts).
    #[error("{0}")]
    Invalid(String),
    /// The new state could not be saved; nothing changed.
    #[error("{0}")]
    Storage(String),
}

/// The dynamic metadata file.
fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("client").join("meta.json")
}

fn read_dynamic(data_dir: &Path) -> BTreeMap<String, Option<String>> {
    let file = path(data_dir);
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %file.display(), error = %e, "ignoring unreadable dynamic node metadata");
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    }
}

/// `static` overlaid with `dynamic`: a value sets, an unset (`None`) removes.
pub fn merge(
    static_meta: &BTreeMap<String, String>,
    dynamic: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    let mut meta = static_meta.clone();
    for (k, v) in dynamic {
        match v {
            Some(v) => {
                meta.insert(k.clone(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    meta
}

/// Puts the persisted dynamic metadata over the node's (static) meta: every registration
/// carries the merged map.
pub fn overlay(node: &mut Node, data_dir: &Path) {
    let dynamic = read_dynamic(data_dir);
    if dynamic.is_empty() {
        return;
    }
    let static_meta = node.meta.clone().unwrap_or_default();
    node.meta = Some(merge(&static_meta, &dynamic));
}

/// Whether `part` is an HCL identifier: a letter, then letters, digits, `_` or `-`.
fn hcl_identifier(part: &str) -> bool {
    let mut chars = part.chars();
    chars.next().is_some_and(char::is_alphabetic)
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Nomad's checks of a metadata update, with its texts.
pub fn validate(updates: &BTreeMap<String, Option<String>>) -> Result<(), MetaError> {
    if updates.is_empty() {
        return Err(MetaError::Invalid(
            "missing required Meta object".to_owned(),
        ));
    }
    for k in updates.keys() {
        if k.is_empty() {
            return Err(MetaError::Invalid(
                "metadata keys must not be empty".to_owned(),
            ));
        }
        if !k.split('.').all(hcl_identifier) {
            return Err(MetaError::Invalid(format!(
                "{k:?} is invalid; metadata keys must be valid dotted hcl identifiers"
            )));
        }
    }
    Ok(())
}

struct Inner {
    data_dir: PathBuf,
    static_meta: BTreeMap<String, String>,
    dynamic: Mutex<BTreeMap<String, Option<String>>>,
    changed: Notify,
}

/// The node's metadata, shared by the gRPC service and the registration sync.
#[derive(Clone)]
pub struct NodeMeta {
    inner: Arc<Inner>,
}

impl NodeMeta {
    /// The static meta of the configuration and the dynamic meta persisted in `data_dir`.
    pub fn load(data_dir: &Path, static_meta: BTreeMap<String, String>) -> NodeMeta {
        NodeMeta {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                static_meta,
                dynamic: Mutex::new(read_dynamic(data_dir)),
                changed: Notify::new(),
            }),
        }
    }

    fn dynamic(&self) -> BTreeMap<String, Option<String>> {
        self.inner
            .dynamic
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Static overlaid with dynamic.
    pub fn merged(&self) -> BTreeMap<String, String> {
        merge(&self.inner.static_meta, &self.dynamic())
    }

    pub fn response(&self) -> NodeMetaResponse {
        let dynamic = self.dynamic();
        NodeMetaResponse {
            meta: merge(&self.inner.static_meta, &dynamic),
            r#static: self.inner.static_meta.clone(),
            dynamic,
        }
    }

    /// Applies an update (a value sets the key; `None` unsets it, and stays recorded as an
    /// unset only where it masks a static key), persists it and schedules the sync.
    pub fn apply(
        &self,
        updates: BTreeMap<String, Option<String>>,
    ) -> Result<NodeMetaResponse, MetaError> {
        validate(&updates)?;
        {
            let mut dynamic = self
                .inner
                .dynamic
                .lock()
                .map_err(|_| MetaError::Storage("node metadata lock poisoned".to_owned()))?;
            let mut next = dynamic.clone();
            for (k, v) in updates {
                match v {
                    Some(v) => {
                        next.insert(k, Some(v));
                    }
                    None if self.inner.static_meta.contains_key(&k) => {
                        next.insert(k, None);
                    }
                    None => {
                        next.remove(&k);
                    }
                }
            }
            self.persist(&next)?;
            *dynamic = next;
        }
        self.inner.changed.notify_one();
        Ok(self.response())
    }

    fn persist(&self, dynamic: &BTreeMap<String, Option<String>>) -> Result<(), MetaError> {
        let file = path(&self.inner.data_dir);
        let fail = |what: &str, e: std::io::Error| {
            MetaError::Storage(format!(
                "cannot save the node metadata: {what} {}: {e}",
                file.display()
            ))
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("creating the directory of", e))?;
        }
        let bytes = serde_json::to_vec_pretty(dynamic)
            .map_err(|e| MetaError::Storage(format!("cannot encode the node metadata: {e}")))?;
        let tmp = file.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(|e| fail("creating", e))?;
            f.write_all(&bytes).map_err(|e| fail("writing", e))?;
            f.sync_all().map_err(|e| fail("syncing", e))?;
        }
        std::fs::rename(&tmp, &file).map_err(|e| fail("replacing", e))
    }
}

/// Sends metadata changes to the servers: after a change (and a short batching pause), the
/// node as last fingerprinted, with the merged meta, is registered again as ready; failures
/// are retried until a registration succeeds. The node cell is updated too, so tasks started
/// from now on interpolate the new `${meta.*}`.
///
/// Changes arrive through the gateway, which found the node registered, so registering it as
/// ready does not announce a node that has not registered yet.
pub async fn sync(meta: NodeMeta, channel: Channel, node: Arc<RwLock<Node>>) {
    let mut client = NodesClient::new(channel);
    loop {
        meta.inner.changed.notified().await;
        tokio::time::sleep(BATCH).await;
        loop {
            let merged = meta.merged();
            let doc = match node.write() {
                Ok(mut n) => {
                    n.meta = Some(merged);
                    let mut doc = n.clone();
                    doc.status = NODE_STATUS_READY.to_owned();
                    doc
                }
                Err(_) => return,
            };
            let node_json = match serde_json::to_vec(&doc) {
                Ok(json) => json,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode the node");
                    break;
                }
            };
            match client
                .register(RegisterNodeRequest {
                    node_json: node_json.into(),
                    write: None,
                })
                .await
            {
                Ok(_) => {
                    tracing::info!(node_id = %doc.id, "node metadata sent to the servers");
                    break;
                }
                Err(status) => {
                    tracing::warn!(error = %status.message(), "sending the node metadata failed; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn updates(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn keys_are_dotted_hcl_identifiers() {
        for ok in ["a", "connect.log_level", "x-y.z_1", "Rack"] {
            assert!(validate(&updates(&[(ok, Some("v"))])).is_ok(), "{ok}");
        }
        for bad in ["some/path", "1abc", "a..b", ".a", "a.", "a b", "_x"] {
            let e = validate(&updates(&[(bad, Some("v"))])).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{bad:?} is invalid; metadata keys must be valid dotted hcl identifiers")
            );
        }
        assert_eq!(
            validate(&updates(&[("", None)])).unwrap_err().to_string(),
            "metadata keys must not be empty"
        );
        assert_eq!(
            validate(&BTreeMap::new()).unwrap_err().to_string(),
            "missing required Meta object"
        );
    }

    #[test]
    fn unset_masks_static_keys_only_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let statics = BTreeMap::from([("rack".to_owned(), "r1".to_owned())]);
        let m = NodeMeta::load(dir.path(), statics.clone());
        let r = m
            .apply(updates(&[("a", Some("1")), ("b", Some(""))]))
            .unwrap();
        assert_eq!(r.meta.len(), 3);
        let r = m.apply(updates(&[("rack", None), ("a", None)])).unwrap();
        assert_eq!(r.dynamic, updates(&[("b", Some("")), ("rack", None)]));
        assert_eq!(r.meta, BTreeMap::from([("b".to_owned(), String::new())]));
        assert_eq!(r.r#static, statics);
        let again = NodeMeta::load(dir.path(), statics);
        assert_eq!(again.response(), r);
        let mut node = Node {
            meta: Some(BTreeMap::from([("rack".to_owned(), "r1".to_owned())])),
            ..Node::default()
        };
        overlay(&mut node, dir.path());
        assert_eq!(node.meta, Some(r.meta));
    }
}
