//! Memory fingerprint: `memory.totalbytes` and `NodeResources.Memory.MemoryMB`.
//!
//! The total is `MemTotal` from `/proc/meminfo` (the kernel's usable RAM, what Nomad's gopsutil
//! reports), in bytes; sysinfo is the fallback where `/proc` is missing. `MemoryMB` is that
//! total in whole MiB.

use std::collections::BTreeMap;

use super::FingerprintError;

const MEMINFO: &str = "/proc/meminfo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryFingerprint {
    pub(crate) total_bytes: u64,
}

impl MemoryFingerprint {
    pub(crate) fn apply(&self, attrs: &mut BTreeMap<String, String>) {
        attrs.insert("memory.totalbytes".to_owned(), self.total_bytes.to_string());
    }
}

/// Reads `MemTotal` (in kB, which the kernel means as KiB) from `/proc/meminfo` text.
pub(crate) fn parse_meminfo_total(text: &str) -> Result<u64, FingerprintError> {
    for (index, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("MemTotal:") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let malformed = || {
            FingerprintError::parse(
                "/proc/meminfo",
                format!("line {}: bad MemTotal {:?}", index + 1, line.trim()),
            )
        };
        let kib: u64 = fields
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(malformed)?;
        match fields.next() {
            None | Some("kB") => {}
            Some(_) => return Err(malformed()),
        }
        if kib == 0 {
            return Err(malformed());
        }
        return kib.checked_mul(1024).ok_or_else(malformed);
    }
    Err(FingerprintError::parse("/proc/meminfo", "no MemTotal line"))
}

pub(crate) fn detect() -> Result<MemoryFingerprint, FingerprintError> {
    let from_proc = std::fs::read_to_string(MEMINFO)
        .map_err(|e| FingerprintError::io(MEMINFO, e))
        .and_then(|text| parse_meminfo_total(&text));
    match from_proc {
        Ok(total_bytes) => Ok(MemoryFingerprint { total_bytes }),
        Err(proc_err) => {
            tracing::debug!(error = %proc_err, "falling back to sysinfo for total memory");
            let mut sys = sysinfo::System::new().map_err(|e| {
                FingerprintError::Memory(format!("{proc_err}; sysinfo unavailable: {e}"))
            })?;
            sys.refresh_memory();
            match sys.total_memory() {
                0 => Err(FingerprintError::Memory(format!(
                    "{proc_err}; sysinfo reports no memory"
                ))),
                total_bytes => Ok(MemoryFingerprint { total_bytes }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_memtotal() {
        let text = "MemTotal:       16183276 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_meminfo_total(text).unwrap(), 16_183_276 * 1024);
    }

    #[test]
    fn malformed_meminfo_is_an_error() {
        for text in [
            "",
            "MemFree: 12 kB\n",
            "MemTotal: lots kB\n",
            "MemTotal: 12 MB\n",
            "MemTotal:\n",
            "MemTotal: 0 kB\n",
            "MemTotal: 99999999999999999999 kB\n",
        ] {
            let err = parse_meminfo_total(text).unwrap_err();
            assert!(
                matches!(err, FingerprintError::Parse { .. }),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn detects_memory_on_this_machine() {
        let mem = detect().unwrap();
        assert!(mem.total_bytes > 1024 * 1024);
    }
}
