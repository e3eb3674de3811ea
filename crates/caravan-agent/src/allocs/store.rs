//! The agent's own persisted state, so a restarted agent re-attaches to its tasks:
//! `<data_dir>/client/allocs/<alloc_id>/alloc.json` (the allocation as last received, with its
//! job) and `tasks/<task>.json` (the task's state and driver handle). Files are replaced
//! atomically (write + rename): a kill -9 at any moment leaves the old or the new version.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use caravan_drivers::HandleState;
use caravan_structs::{Allocation, TaskState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct LocalState {
    base: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedTask {
    pub state: TaskState,
    pub handle: Option<HandleState>,
}

/// One allocation as a previous agent process left it.
#[derive(Debug, Clone)]
pub struct SavedAlloc {
    pub alloc: Allocation,
    pub tasks: BTreeMap<String, SavedTask>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl LocalState {
    pub fn new(data_dir: &Path) -> LocalState {
        LocalState {
            base: data_dir.join("client").join("allocs"),
        }
    }

    fn dir(&self, alloc_id: &str) -> PathBuf {
        self.base.join(alloc_id)
    }

    /// A private directory of the agent for one task (executor files).
    pub fn run_dir(&self, alloc_id: &str, task: &str) -> PathBuf {
        self.dir(alloc_id).join("run").join(task)
    }

    pub fn save_alloc(&self, alloc: &Allocation) -> io::Result<()> {
        let dir = self.dir(&alloc.id);
        std::fs::create_dir_all(dir.join("tasks"))?;
        // The job travels with the allocation to the agent; keep it so a restart needs no server.
        let mut doc = serde_json::to_value(alloc).map_err(io::Error::other)?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("JobVersion".to_owned(), alloc.job_version.into());
        }
        write_atomic(
            &dir.join("alloc.json"),
            &serde_json::to_vec(&doc).map_err(io::Error::other)?,
        )
    }

    pub fn save_task(
        &self,
        alloc_id: &str,
        task: &str,
        state: &TaskState,
        handle: Option<&HandleState>,
    ) -> io::Result<()> {
        let dir = self.dir(alloc_id).join("tasks");
        std::fs::create_dir_all(&dir)?;
        let saved = SavedTask {
            state: state.clone(),
            handle: handle.cloned(),
        };
        write_atomic(
            &dir.join(format!("{task}.json")),
            &serde_json::to_vec(&saved).map_err(io::Error::other)?,
        )
    }

    pub fn remove(&self, alloc_id: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.dir(alloc_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every saved allocation; unreadable ones are skipped with a warning.
    pub fn load_all(&self) -> Vec<SavedAlloc> {
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            match load_one(&dir) {
                Ok(saved) => out.push(saved),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "skipping unreadable saved allocation")
                }
            }
        }
        out
    }
}

fn load_one(dir: &Path) -> io::Result<SavedAlloc> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("alloc.json"))?)
        .map_err(io::Error::other)?;
    let version = doc.get("JobVersion").and_then(|v| v.as_u64()).unwrap_or(0);
    let mut alloc: Allocation = serde_json::from_value(doc).map_err(io::Error::other)?;
    alloc.job_version = version;
    let mut tasks = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("tasks")) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let saved: SavedTask =
                serde_json::from_slice(&std::fs::read(&path)?).map_err(io::Error::other)?;
            tasks.insert(name.to_owned(), saved);
        }
    }
    Ok(SavedAlloc { alloc, tasks })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allocations_and_tasks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::new(dir.path());
        let alloc = Allocation {
            id: "a1".to_owned(),
            job_version: 3,
            ..Allocation::default()
        };
        state.save_alloc(&alloc).unwrap();
        let ts = TaskState {
            state: "running".to_owned(),
            restarts: 2,
            ..TaskState::default()
        };
        let handle = HandleState {
            driver: "raw_exec".to_owned(),
            state: serde_json::json!({"task_pid": 7}),
        };
        state.save_task("a1", "web", &ts, Some(&handle)).unwrap();
        let all = state.load_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].alloc.job_version, 3);
        assert_eq!(all[0].tasks["web"].state.restarts, 2);
        assert_eq!(all[0].tasks["web"].handle, Some(handle));
        state.remove("a1").unwrap();
        assert!(state.load_all().is_empty());
    }
}
