//! What every read returns besides its data: the query meta (index, leadership, next token)
//! and how long it may block.

use std::time::Duration;

use caravan_proto::v1;

/// Query meta of a read on this server. The index is never below 1, as in Nomad: a client that
/// blocks on the index it got must not be told "0", which would answer at once forever.
pub fn query_meta(index: u64, next_token: String) -> v1::QueryMeta {
    // A single server is always the leader it talks to.
    v1::QueryMeta {
        index: index.max(1),
        known_leader: true,
        last_contact_ms: 0,
        next_token,
    }
}

/// How long a blocking read may wait (the gateway already capped it and added the jitter).
pub fn wait_of(q: &v1::QueryOptions) -> Duration {
    Duration::from_millis(q.max_wait_ms)
}

/// Whether a list may show an object of namespace `ns`: with `*`, only the namespaces the
/// gateway sent (those the caller may read); every one when it sent none.
pub fn namespace_allowed(q: &caravan_proto::v1::QueryOptions, ns: &str) -> bool {
    q.namespaces.is_empty() || q.namespaces.iter().any(|n| n == ns)
}
