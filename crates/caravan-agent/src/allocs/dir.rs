//! The allocation directory, laid out as Nomad's: `<data_dir>/alloc/<alloc_id>/` holding the
//! shared `alloc/` (`logs/`, `data/`, `tmp/`) and one directory per task (`local/`,
//! `secrets/`, `tmp/`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocDir {
    root: PathBuf,
}

fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl AllocDir {
    pub fn new(base: &Path, alloc_id: &str) -> AllocDir {
        AllocDir {
            root: base.join(alloc_id),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory every task of the allocation shares.
    pub fn shared(&self) -> PathBuf {
        self.root.join("alloc")
    }

    pub fn logs(&self) -> PathBuf {
        self.shared().join("logs")
    }

    pub fn task_dir(&self, task: &str) -> PathBuf {
        self.root.join(task)
    }

    /// Creates the shared directories (idempotent).
    pub fn build(&self) -> io::Result<()> {
        mkdir(&self.root, 0o755)?;
        // World-writable like Nomad's: tasks may run as other users.
        mkdir(&self.shared(), 0o777)?;
        mkdir(&self.logs(), 0o777)?;
        mkdir(&self.shared().join("data"), 0o777)?;
        mkdir(&self.shared().join("tmp"), 0o1777)
    }

    /// Creates one task's directories (idempotent).
    pub fn build_task(&self, task: &str) -> io::Result<PathBuf> {
        let dir = self.task_dir(task);
        mkdir(&dir, 0o777)?;
        mkdir(&dir.join("local"), 0o777)?;
        mkdir(&dir.join("secrets"), 0o777)?;
        mkdir(&dir.join("tmp"), 0o1777)?;
        Ok(dir)
    }

    pub fn exists(&self) -> bool {
        self.root.exists()
    }

    /// Removes everything; a missing directory is fine.
    pub fn destroy(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Bytes used by the directory's files.
    pub fn disk_usage(&self) -> u64 {
        fn walk(path: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(path) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        }
        walk(&self.root)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn layout_matches_nomad() {
        let base = tempfile::tempdir().unwrap();
        let dir = AllocDir::new(base.path(), "a1");
        dir.build().unwrap();
        dir.build_task("web").unwrap();
        for p in [
            "alloc/logs",
            "alloc/data",
            "alloc/tmp",
            "web/local",
            "web/secrets",
            "web/tmp",
        ] {
            assert!(base.path().join("a1").join(p).is_dir(), "{p}");
        }
        std::fs::write(dir.logs().join("web.stdout.0"), "12345").unwrap();
        assert_eq!(dir.disk_usage(), 5);
        dir.destroy().unwrap();
        assert!(!dir.exists());
        dir.destroy().unwrap();
    }
}
