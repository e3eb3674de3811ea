//! Host fingerprint: `kernel.name`, `kernel.version`, `kernel.arch`, `os.name`, `os.version`,
//! `os.signals`, `unique.hostname`.
//!
//! - `kernel.name`: the Go `GOOS` name of the running OS (`linux`).
//! - `kernel.version`: `uname -r` (sysinfo, else `/proc/sys/kernel/osrelease`).
//! - `kernel.arch`: `uname -m`, e.g. `x86_64` (sysinfo).
//! - `os.name` / `os.version`: `ID` / `VERSION_ID` of `/etc/os-release` (else
//!   `/usr/lib/os-release`, else `DISTRIB_ID` / `DISTRIB_RELEASE` of `/etc/lsb-release`). A
//!   rolling distribution without `VERSION_ID` reports `VERSION`, else `BUILD_ID`; with none of
//!   them `os.version` is omitted rather than invented.
//! - `os.signals`: the signal names the Linux kernel defines (a fixed ABI table, the set Nomad
//!   reports on Linux), comma-separated in signal-number order.
//! - `unique.hostname`: the host name (sysinfo, else `/proc/sys/kernel/hostname`).

use std::collections::BTreeMap;
use std::path::Path;

use super::FingerprintError;

const OS_RELEASE_FILES: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];
const LSB_RELEASE: &str = "/etc/lsb-release";
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
const HOSTNAME: &str = "/proc/sys/kernel/hostname";

/// Signal names of Linux, in signal-number order (`SIGIOT` is an alias of `SIGABRT`).
pub(crate) const SIGNALS: [&str; 29] = [
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGIOT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGCHLD",
    "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
    "SIGPROF", "SIGWINCH", "SIGIO", "SIGSYS",
];

/// The distribution, as `os.name` / `os.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OsIdentity {
    pub(crate) name: String,
    pub(crate) version: Option<String>,
}

/// The measured host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostFingerprint {
    pub(crate) kernel_name: &'static str,
    pub(crate) kernel_version: String,
    pub(crate) kernel_arch: String,
    pub(crate) os: Option<OsIdentity>,
    pub(crate) hostname: String,
}

impl HostFingerprint {
    pub(crate) fn apply(&self, attrs: &mut BTreeMap<String, String>) {
        attrs.insert("kernel.name".to_owned(), self.kernel_name.to_owned());
        attrs.insert("kernel.version".to_owned(), self.kernel_version.clone());
        attrs.insert("kernel.arch".to_owned(), self.kernel_arch.clone());
        if let Some(os) = &self.os {
            attrs.insert("os.name".to_owned(), os.name.clone());
            if let Some(version) = &os.version {
                attrs.insert("os.version".to_owned(), version.clone());
            }
        }
        attrs.insert("os.signals".to_owned(), SIGNALS.join(","));
        attrs.insert("unique.hostname".to_owned(), self.hostname.clone());
    }
}

/// Maps Rust's `target_os` name to Go's `GOOS` name.
pub(crate) fn go_os(rust_os: &'static str) -> &'static str {
    match rust_os {
        "macos" => "darwin",
        other => other,
    }
}

/// Parses the `KEY=value` format shared by `os-release` and `lsb-release`: blank lines and `#`
/// comments are skipped; values may be unquoted, `'single'` or `"double"` quoted (with `\"`,
/// `\\`, `\$` and `` \` `` escapes). A line without `=`, a bad key or an unterminated quote is an
/// error naming the line.
pub(crate) fn parse_os_release(text: &str) -> Result<BTreeMap<String, String>, FingerprintError> {
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            FingerprintError::parse("os-release", format!("line {}: {why}: {raw:?}", index + 1))
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=value"))?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("invalid key"));
        }
        let value = unquote(value).ok_or_else(|| bad("unterminated or stray quote"))?;
        values.insert(key.to_owned(), value);
    }
    Ok(values)
}

fn unquote(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return None,
                },
                '"' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    } else if let Some(inner) = value.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        (!inner.contains('\'')).then(|| inner.to_owned())
    } else if value.contains(['"', '\'']) {
        None
    } else {
        Some(value.to_owned())
    }
}

/// `os.name` / `os.version` from parsed `os-release` values (`ID` is required).
pub(crate) fn os_identity_from_os_release(values: &BTreeMap<String, String>) -> Option<OsIdentity> {
    let name = values
        .get("ID")
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())?;
    let version = ["VERSION_ID", "VERSION", "BUILD_ID"]
        .iter()
        .filter_map(|key| values.get(*key))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
        .map(str::to_owned);
    Some(OsIdentity {
        name: name.to_ascii_lowercase(),
        version,
    })
}

/// `os.name` / `os.version` from parsed `lsb-release` values (`DISTRIB_ID` is required).
pub(crate) fn os_identity_from_lsb_release(
    values: &BTreeMap<String, String>,
) -> Option<OsIdentity> {
    let name = values
        .get("DISTRIB_ID")
        .map(|id| id.trim())
        .filter(|id| !id.is_empty())?;
    let version = values
        .get("DISTRIB_RELEASE")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    Some(OsIdentity {
        name: name.to_ascii_lowercase(),
        version,
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(path))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn detect_os() -> Option<OsIdentity> {
    for path in OS_RELEASE_FILES {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        match parse_os_release(&text) {
            Ok(values) => {
                if let Some(os) = os_identity_from_os_release(&values) {
                    return Some(os);
                }
                tracing::warn!(path, "os-release has no ID");
            }
            Err(e) => tracing::warn!(path, error = %e, "ignoring os-release"),
        }
    }
    let text = std::fs::read_to_string(LSB_RELEASE).ok()?;
    match parse_os_release(&text) {
        Ok(values) => os_identity_from_lsb_release(&values),
        Err(e) => {
            tracing::warn!(path = LSB_RELEASE, error = %e, "ignoring lsb-release");
            None
        }
    }
}

pub(crate) fn detect() -> Result<HostFingerprint, FingerprintError> {
    let kernel_version = sysinfo::System::kernel_version()
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .or_else(|| read_trimmed(OSRELEASE))
        .ok_or_else(|| FingerprintError::Host("kernel version unavailable".to_owned()))?;
    let kernel_arch = sysinfo::System::cpu_arch().trim().to_owned();
    if kernel_arch.is_empty() {
        return Err(FingerprintError::Host(
            "kernel architecture unavailable".to_owned(),
        ));
    }
    let hostname = sysinfo::System::host_name()
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| read_trimmed(HOSTNAME))
        .ok_or_else(|| FingerprintError::Host("host name unavailable".to_owned()))?;
    let os = detect_os();
    if os.is_none() {
        tracing::warn!("no os-release or lsb-release: os.name and os.version omitted");
    }
    Ok(HostFingerprint {
        kernel_name: go_os(std::env::consts::OS),
        kernel_version,
        kernel_arch,
        os,
        hostname,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn parses_debian_os_release() {
        let values = parse_os_release(DEBIAN).unwrap();
        assert_eq!(values["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(values["VERSION_CODENAME"], "bookworm");
        assert_eq!(
            os_identity_from_os_release(&values).unwrap(),
            OsIdentity {
                name: "debian".to_owned(),
                version: Some("12".to_owned()),
            }
        );
    }

    #[test]
    fn parses_quoting_comments_and_rolling_releases() {
        let text =
            "# comment\n\n  ID='arch'  \nBUILD_ID=rolling\nNAME=\"A \\\"quoted\\\" \\$name\"\n";
        let values = parse_os_release(text).unwrap();
        assert_eq!(values["NAME"], "A \"quoted\" $name");
        assert_eq!(
            os_identity_from_os_release(&values).unwrap(),
            OsIdentity {
                name: "arch".to_owned(),
                version: Some("rolling".to_owned()),
            }
        );
        // NixOS-style quoted VERSION_ID loses its quotes (the sample shows gopsutil keeping them).
        let nixos =
            parse_os_release("ID=nixos\nVERSION_ID=\"19.03.173017.85f820d6e41\"\n").unwrap();
        assert_eq!(
            os_identity_from_os_release(&nixos)
                .unwrap()
                .version
                .as_deref(),
            Some("19.03.173017.85f820d6e41")
        );
    }

    #[test]
    fn malformed_os_release_is_an_error() {
        for text in [
            "ID=debian\nthis line is broken\n",
            "ID=\"debian\n",
            "ID='debian\n",
            "ID=deb\"ian\n",
            "=debian\n",
            "I D=debian\n",
            "ID=\"a\"b\"\n",
        ] {
            let err = parse_os_release(text).unwrap_err();
            assert!(matches!(err, FingerprintError::Parse { .. }), "{text:?}");
            assert!(err.to_string().contains("line "), "{err}");
        }
        // parsable but without ID: no identity
        let values = parse_os_release("NAME=Foo\n").unwrap();
        assert_eq!(os_identity_from_os_release(&values), None);
    }

    #[test]
    fn parses_lsb_release() {
        let values =
            parse_os_release("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n")
                .unwrap();
        assert_eq!(
            os_identity_from_lsb_release(&values).unwrap(),
            OsIdentity {
                name: "ubuntu".to_owned(),
                version: Some("22.04".to_owned()),
            }
        );
    }

    #[test]
    fn signals_are_unique_sig_names() {
        let unique: std::collections::BTreeSet<_> = SIGNALS.iter().collect();
        assert_eq!(unique.len(), SIGNALS.len());
        assert!(SIGNALS.iter().all(|s| s.starts_with("SIG")));
    }

    #[test]
    fn detects_this_host() {
        let host = detect().unwrap();
        assert_eq!(host.kernel_name, go_os(std::env::consts::OS));
        assert!(!host.kernel_version.is_empty());
        assert!(!host.kernel_arch.is_empty());
        assert!(!host.hostname.is_empty());
        if cfg!(target_os = "linux") {
            let os = host.os.expect("os-release on this machine");
            assert!(!os.name.is_empty());
            assert!(os.name.chars().all(|c| !c.is_ascii_uppercase()));
        }
    }
}
