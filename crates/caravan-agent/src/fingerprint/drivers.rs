//! Driver fingerprint: what the caller's driver probes found, merged into node attributes.
//!
//! As in Nomad, a detected driver contributes `driver.<name>` = `"1"` plus its own attributes
//! (fully qualified keys such as `driver.docker.version`); a driver that is not detected
//! contributes no attribute but is still listed in the node's `Drivers` map (with
//! `Detected: false`), which is why every probe is returned in
//! [`Fingerprint::drivers`](super::Fingerprint::drivers).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::FingerprintError;

/// What probing one task driver found (one entry of the node's `Drivers` map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverProbe {
    /// The driver name, e.g. `raw_exec`, `exec`, `docker`, `mock_driver`.
    pub name: String,
    /// Whether the driver can run on this machine.
    pub detected: bool,
    /// Whether the driver is currently usable.
    pub healthy: bool,
    /// Why the driver is (un)healthy, e.g. `Healthy` or `Driver must run as root`.
    pub health_description: String,
    /// The driver's attributes with fully qualified keys (`driver.docker.version`).
    pub attributes: BTreeMap<String, String>,
}

/// Checks the probes: names are non-empty identifiers (letters, digits, `_`, `-`), unique, and
/// every attribute key is in the `driver.` namespace so a driver cannot overwrite a machine
/// attribute such as `cpu.arch`.
pub(crate) fn validate(probes: &[DriverProbe]) -> Result<(), FingerprintError> {
    let mut seen = BTreeSet::new();
    for probe in probes {
        let valid_name = !probe.name.is_empty()
            && probe
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(FingerprintError::InvalidConfig(format!(
                "invalid driver name {:?}: use letters, digits, '_' and '-'",
                probe.name
            )));
        }
        if !seen.insert(probe.name.as_str()) {
            return Err(FingerprintError::InvalidConfig(format!(
                "driver {:?} is listed twice",
                probe.name
            )));
        }
        if let Some(key) = probe.attributes.keys().find(|k| !k.starts_with("driver.")) {
            return Err(FingerprintError::InvalidConfig(format!(
                "driver {:?} attribute {key:?} is outside the \"driver.\" namespace",
                probe.name
            )));
        }
    }
    Ok(())
}

/// Merges the attributes of the detected drivers, then marks each with `driver.<name>` = `"1"`
/// (the marker wins over a driver's own `driver.<name>` attribute, as in Nomad's node
/// attributes).
pub(crate) fn apply(probes: &[DriverProbe], attrs: &mut BTreeMap<String, String>) {
    let detected = || probes.iter().filter(|p| p.detected);
    for probe in detected() {
        attrs.extend(probe.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for probe in detected() {
        attrs.insert(format!("driver.{}", probe.name), "1".to_owned());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn probe(name: &str, detected: bool, attrs: &[(&str, &str)]) -> DriverProbe {
        DriverProbe {
            name: name.to_owned(),
            detected,
            healthy: detected,
            health_description: String::new(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn detected_drivers_contribute_marker_and_attributes() {
        let probes = vec![
            probe("mock_driver", true, &[("driver.mock", "true")]),
            probe(
                "docker",
                true,
                &[
                    ("driver.docker", "true"),
                    ("driver.docker.version", "18.09.6"),
                ],
            ),
            probe("qemu", false, &[("driver.qemu.version", "8.0")]),
        ];
        validate(&probes).unwrap();
        let mut attrs = BTreeMap::new();
        apply(&probes, &mut attrs);
        let expected: BTreeMap<String, String> = [
            ("driver.docker", "1"),
            ("driver.docker.version", "18.09.6"),
            ("driver.mock", "true"),
            ("driver.mock_driver", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(attrs, expected);
    }

    #[test]
    fn invalid_probes_are_rejected() {
        for bad in [
            vec![probe("", true, &[])],
            vec![probe("raw exec", true, &[])],
            vec![probe("a.b", true, &[])],
            vec![probe("exec", true, &[]), probe("exec", false, &[])],
            vec![probe("exec", true, &[("cpu.arch", "evil")])],
        ] {
            let err = validate(&bad).unwrap_err();
            assert!(matches!(err, FingerprintError::InvalidConfig(_)), "{err}");
        }
    }
}
