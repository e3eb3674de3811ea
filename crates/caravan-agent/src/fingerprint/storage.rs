//! Storage fingerprint: `unique.storage.volume`, `unique.storage.bytestotal`,
//! `unique.storage.bytesfree`, and `NodeResources.Disk.DiskMB`.
//!
//! Measures the file system holding the data dir (its nearest existing ancestor when it does
//! not exist yet): the mount is found among sysinfo's disks (the `/proc/mounts` entries) by
//! device id and longest mount-point prefix; its statvfs gives the total (`f_blocks × f_frsize`)
//! and the space available to unprivileged users (`f_bavail × f_frsize`), which is what Nomad
//! calls free. The volume is the mount's source, as the `Filesystem` column of `df` (e.g.
//! `/dev/vda`, `tmpfs`, `overlay`). When sysinfo does not list the mount (network file systems
//! are skipped to avoid hanging on them), `df -kP` is asked, as Nomad does. `DiskMB` is the free
//! space in whole MiB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::FingerprintError;

/// The measured volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageFingerprint {
    pub(crate) volume: String,
    pub(crate) total_bytes: u64,
    pub(crate) free_bytes: u64,
}

impl StorageFingerprint {
    pub(crate) fn apply(&self, attrs: &mut BTreeMap<String, String>) {
        attrs.insert("unique.storage.volume".to_owned(), self.volume.clone());
        attrs.insert(
            "unique.storage.bytestotal".to_owned(),
            self.total_bytes.to_string(),
        );
        attrs.insert(
            "unique.storage.bytesfree".to_owned(),
            self.free_bytes.to_string(),
        );
    }
}

/// A mounted file system as sysinfo lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) mount_point: PathBuf,
    pub(crate) device_id: Option<u64>,
}

/// The absolute, symlink-free form of `path`'s nearest existing ancestor (itself if it exists).
pub(crate) fn existing_ancestor(path: &Path) -> Result<PathBuf, FingerprintError> {
    let absolute = std::path::absolute(path).map_err(|e| FingerprintError::Storage {
        path: path.to_path_buf(),
        reason: format!("cannot make the path absolute: {e}"),
    })?;
    let mut candidate = absolute.as_path();
    loop {
        match std::fs::canonicalize(candidate) {
            Ok(found) => return Ok(found),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FingerprintError::io(candidate, e)),
        }
        candidate = candidate
            .parent()
            .ok_or_else(|| FingerprintError::Storage {
                path: absolute.clone(),
                reason: "no existing ancestor".to_owned(),
            })?;
    }
}

/// Picks the mount holding `path` (absolute and canonical) among `mounts`: the longest mount
/// point that is a prefix of the path, among those with the path's device id when it is known
/// (a later entry wins a tie: it is mounted over the earlier one). With a known device id and
/// no prefix match (a bind mount), any mount of that device is taken; with a known id and no
/// mount of that device, there is no answer (the real mount is not listed).
pub(crate) fn pick_mount(path: &Path, path_device: Option<u64>, mounts: &[Mount]) -> Option<usize> {
    let same_device = |m: &Mount| path_device.is_none() || m.device_id == path_device;
    let longest = |filter: &dyn Fn(&Mount) -> bool| {
        mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| filter(m))
            .max_by_key(|(index, m)| (m.mount_point.components().count(), *index))
            .map(|(index, _)| index)
    };
    longest(&|m| same_device(m) && path.starts_with(&m.mount_point))
        .or_else(|| path_device.and_then(|_| longest(&|m| same_device(m))))
}

/// Parses `df -kP <path>` output: a header, then `Filesystem 1024-blocks Used Available
/// Capacity Mounted-on` (the file system name may contain spaces). Returns the volume, total and
/// available bytes.
pub(crate) fn parse_df_output(text: &str) -> Result<StorageFingerprint, FingerprintError> {
    let bad = |why: &str| FingerprintError::parse("df output", why.to_owned());
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| bad("empty"))?;
    if !header.trim_start().starts_with("Filesystem") {
        return Err(bad("missing the Filesystem header"));
    }
    let line = lines.next().ok_or_else(|| bad("no file system line"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let start = (1..fields.len())
        .find(|&i| {
            fields.len() > i + 3
                && fields[i..i + 3].iter().all(|f| is_number(f))
                && fields[i + 3].ends_with('%')
        })
        .ok_or_else(|| bad("expected: filesystem, size, used, available, capacity, mount"))?;
    let kib = |s: &str| {
        s.parse::<u64>()
            .ok()
            .and_then(|k| k.checked_mul(1024))
            .ok_or_else(|| bad("size out of range"))
    };
    Ok(StorageFingerprint {
        volume: fields[..start].join(" "),
        total_bytes: kib(fields[start])?,
        free_bytes: kib(fields[start + 2])?,
    })
}

#[cfg(unix)]
fn device_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
}

#[cfg(not(unix))]
fn device_of(_path: &Path) -> Option<u64> {
    None
}

fn from_sysinfo(path: &Path) -> Option<StorageFingerprint> {
    let disks = sysinfo::Disks::new_with_refreshed_list()
        .inspect_err(|e| tracing::debug!(error = %e, "sysinfo cannot list disks"))
        .ok()?;
    let mounts: Vec<Mount> = disks
        .iter()
        .map(|d| Mount {
            mount_point: d.mount_point().to_path_buf(),
            device_id: d.id(),
        })
        .collect();
    let disk = disks.get(pick_mount(path, device_of(path), &mounts)?)?;
    let volume = disk.name().to_string_lossy().into_owned();
    if volume.is_empty() || disk.total_space() == 0 {
        return None;
    }
    Some(StorageFingerprint {
        volume,
        total_bytes: disk.total_space(),
        free_bytes: disk.available_space(),
    })
}

fn from_df(path: &Path) -> Result<StorageFingerprint, FingerprintError> {
    let output = std::process::Command::new("df")
        .arg("-kP")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| FingerprintError::Storage {
            path: path.to_path_buf(),
            reason: format!("cannot run df: {e}"),
        })?;
    if !output.status.success() {
        return Err(FingerprintError::Storage {
            path: path.to_path_buf(),
            reason: format!(
                "df failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    parse_df_output(&String::from_utf8_lossy(&output.stdout))
}

pub(crate) fn detect(data_dir: &Path) -> Result<StorageFingerprint, FingerprintError> {
    let path = existing_ancestor(data_dir)?;
    let storage = match from_sysinfo(&path) {
        Some(storage) => storage,
        None => {
            tracing::debug!(path = %path.display(), "volume not listed by sysinfo, asking df");
            from_df(&path)?
        }
    };
    if storage.free_bytes > storage.total_bytes {
        return Err(FingerprintError::Storage {
            path,
            reason: format!(
                "more free space ({}) than total space ({})",
                storage.free_bytes, storage.total_bytes
            ),
        });
    }
    Ok(storage)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn mount(point: &str, dev: Option<u64>) -> Mount {
        Mount {
            mount_point: PathBuf::from(point),
            device_id: dev,
        }
    }

    #[test]
    fn picks_the_longest_matching_mount_of_the_device() {
        let mounts = [
            mount("/", Some(1)),
            mount("/var", Some(2)),
            mount("/var/lib", Some(3)),
            mount("/var/lib/caravan-other", Some(4)),
        ];
        let p = Path::new("/var/lib/caravan/data");
        assert_eq!(pick_mount(p, Some(3), &mounts), Some(2));
        assert_eq!(pick_mount(p, None, &mounts), Some(2));
        assert_eq!(pick_mount(Path::new("/home/x"), Some(1), &mounts), Some(0));
        // bind mount: device known, no prefix match of that device
        assert_eq!(pick_mount(Path::new("/srv/x"), Some(4), &mounts), Some(3));
        // the real mount is not listed: no answer rather than the wrong volume
        assert_eq!(pick_mount(p, Some(9), &mounts), None);
        // over-mounted: the later entry wins
        let stacked = [
            mount("/", Some(1)),
            mount("/data", Some(5)),
            mount("/data", Some(5)),
        ];
        assert_eq!(pick_mount(Path::new("/data/x"), Some(5), &stacked), Some(2));
        assert_eq!(pick_mount(p, None, &[]), None);
    }

    #[test]
    fn parses_df_output() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/vda         264212084 12962100  82323788      14% /\n";
        assert_eq!(
            parse_df_output(text).unwrap(),
            StorageFingerprint {
                volume: "/dev/vda".to_owned(),
                total_bytes: 264_212_084 * 1024,
                free_bytes: 82_323_788 * 1024,
            }
        );
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      my share 100 40 60 40% /mnt/my share\n";
        let parsed = parse_df_output(spaced).unwrap();
        assert_eq!(parsed.volume, "my share");
        assert_eq!(parsed.free_bytes, 60 * 1024);
    }

    #[test]
    fn malformed_df_output_is_an_error() {
        for text in [
            "",
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n",
            "Size Used\n/dev/sda 1 2 3 4% /\n",
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda 1 2\n",
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda x y z 4% /\n",
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
             /dev/sda 99999999999999999999 1 1 4% /\n",
        ] {
            let err = parse_df_output(text).unwrap_err();
            assert!(matches!(err, FingerprintError::Parse { .. }), "{text:?}");
        }
    }

    #[test]
    fn missing_data_dir_measures_its_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        assert_eq!(
            existing_ancestor(&missing).unwrap(),
            std::fs::canonicalize(dir.path()).unwrap()
        );
    }

    /// The volume, total and free space come from the data dir's own file system: they agree
    /// with `df` on it (free space moves a little between the two reads).
    #[test]
    fn measures_the_data_dir_volume() {
        let dir = tempfile::tempdir().unwrap();
        let storage = detect(dir.path()).unwrap();
        assert!(!storage.volume.is_empty());
        assert!(storage.total_bytes > 0);
        assert!(storage.free_bytes <= storage.total_bytes);

        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        if cfg!(target_os = "linux") {
            assert!(
                from_sysinfo(&canonical).is_some(),
                "sysinfo lists the mount"
            );
        }
        let Ok(df) = from_df(&canonical) else {
            eprintln!("df unavailable; skipping the cross-check");
            return;
        };
        assert_eq!(storage.volume, df.volume);
        assert_eq!(storage.total_bytes / 1024, df.total_bytes / 1024);
        let drift = storage.free_bytes.abs_diff(df.free_bytes);
        assert!(drift < 256 * 1024 * 1024, "free space drift {drift}");
    }

    #[test]
    fn data_dir_on_tmpfs_reports_tmpfs() {
        // /dev/shm is tmpfs on Linux hosts and most containers; skip where it is not.
        let shm = Path::new("/dev/shm");
        let Ok(df) = from_df(shm) else { return };
        if df.volume != "tmpfs" {
            return;
        }
        // measured through sysinfo (its `linux-tmpfs` feature), not the df fallback
        let storage = from_sysinfo(&std::fs::canonicalize(shm).unwrap()).unwrap();
        assert_eq!(storage, detect(shm).unwrap());
        assert_eq!(storage.volume, "tmpfs");
        assert_eq!(storage.total_bytes / 1024, df.total_bytes / 1024);
    }
}
