//! The Nomad JSON data model (serde) and the ErrorCode table; no I/O, no async.
