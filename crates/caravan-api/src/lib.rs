//! A Rust HTTP client for the Nomad API, as an outside user would import it.
