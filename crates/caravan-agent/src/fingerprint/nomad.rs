//! Agent fingerprint: `nomad.version`, `nomad.revision`, `nomad.advertise.address`,
//! `nomad.service_discovery` and `caravan.version`.
//!
//! These describe the agent rather than the machine, so they come from its configuration:
//! the Nomad version the caller passes (the API version Caravan implements, so that Nomad's
//! version constraints hold), the HTTP address the node advertises, whether the client offers
//! native service discovery, a revision naming this build (`<crate version>+caravan`, in the
//! place where Nomad puts its git commit) and Caravan's own version.

use std::collections::BTreeMap;

use super::{FingerprintConfig, FingerprintError};

/// The revision reported as `nomad.revision`.
pub(crate) const REVISION: &str = concat!(env!("CARGO_PKG_VERSION"), "+caravan");

/// The agent attributes, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NomadFingerprint {
    pub(crate) version: String,
    pub(crate) advertise_address: String,
    pub(crate) service_discovery: bool,
}

impl NomadFingerprint {
    /// Takes the agent attributes from the configuration; both must be non-blank.
    pub(crate) fn from_config(cfg: &FingerprintConfig) -> Result<Self, FingerprintError> {
        let version = cfg.version.trim();
        if version.is_empty() {
            return Err(FingerprintError::InvalidConfig(
                "agent version is empty".to_owned(),
            ));
        }
        let advertise_address = cfg.advertise_http.trim();
        if advertise_address.is_empty() {
            return Err(FingerprintError::InvalidConfig(
                "advertised HTTP address is empty".to_owned(),
            ));
        }
        Ok(Self {
            version: version.to_owned(),
            advertise_address: advertise_address.to_owned(),
            service_discovery: cfg.service_discovery,
        })
    }

    pub(crate) fn apply(&self, attrs: &mut BTreeMap<String, String>) {
        attrs.insert("nomad.version".to_owned(), self.version.clone());
        attrs.insert("nomad.revision".to_owned(), REVISION.to_owned());
        attrs.insert(
            "nomad.advertise.address".to_owned(),
            self.advertise_address.clone(),
        );
        attrs.insert(
            "nomad.service_discovery".to_owned(),
            self.service_discovery.to_string(),
        );
        attrs.insert(
            caravan_structs::ATTR_CARAVAN_VERSION.to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn cfg(version: &str, advertise: &str) -> FingerprintConfig {
        FingerprintConfig {
            data_dir: std::env::temp_dir(),
            advertise_http: advertise.to_owned(),
            network_interface: None,
            version: version.to_owned(),
            service_discovery: false,
            drivers: Vec::new(),
        }
    }

    #[test]
    fn reports_version_revision_and_advertise_address() {
        let fp = NomadFingerprint::from_config(&cfg("1.9.3", "10.0.0.5:4646")).unwrap();
        let mut attrs = BTreeMap::new();
        fp.apply(&mut attrs);
        assert_eq!(attrs["nomad.version"], "1.9.3");
        assert_eq!(attrs["nomad.advertise.address"], "10.0.0.5:4646");
        assert_eq!(attrs["nomad.service_discovery"], "false");
        assert_eq!(attrs["caravan.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            attrs["nomad.revision"],
            format!("{}+caravan", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn blank_values_are_rejected() {
        assert!(NomadFingerprint::from_config(&cfg("", "127.0.0.1:4646")).is_err());
        assert!(NomadFingerprint::from_config(&cfg("1.0.0", "  ")).is_err());
    }
}
