//! Wakes file followers when a directory changes (inotify), so bytes a task writes reach a
//! following reader at once instead of at the next poll. One inotify instance for the agent,
//! read by one thread (blocking reads: no `unsafe` fd registration with the runtime); each
//! watched directory has a broadcast channel its followers subscribe to. Where inotify is
//! unavailable, followers fall back to polling.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::sync::broadcast;

#[derive(Clone, Default)]
pub struct DirWatcher {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    inotify: Inotify,
    dirs: Mutex<HashMap<PathBuf, (WatchDescriptor, broadcast::Sender<()>)>>,
}

impl DirWatcher {
    /// A watcher with its reading task; polling only if inotify cannot be set up.
    pub fn start() -> DirWatcher {
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(error = %e, "no inotify: file followers poll");
                return DirWatcher::default();
            }
        };
        let inner = Arc::new(Inner {
            inotify,
            dirs: Mutex::new(HashMap::new()),
        });
        let reader = inner.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("caravan-inotify".to_owned())
            .spawn(move || read_events(&reader))
        {
            tracing::warn!(error = %e, "no inotify thread: file followers poll");
            return DirWatcher::default();
        }
        DirWatcher { inner: Some(inner) }
    }

    /// A receiver woken on every change in `dir` (files written, created, deleted, renamed).
    pub fn subscribe(&self, dir: &Path) -> Option<broadcast::Receiver<()>> {
        let inner = self.inner.as_ref()?;
        let mut dirs = inner.dirs.lock().ok()?;
        if let Some((_, tx)) = dirs.get(dir) {
            return Some(tx.subscribe());
        }
        let mask = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_ATTRIB;
        let wd = inner.inotify.add_watch(dir, mask).ok()?;
        let (tx, rx) = broadcast::channel(16);
        dirs.insert(dir.to_owned(), (wd, tx));
        Some(rx)
    }
}

/// Blocks on the inotify descriptor and wakes the subscribers of each changed directory.
fn read_events(inner: &Inner) {
    loop {
        let events = match inner.inotify.read_events() {
            Ok(events) => events,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading inotify events failed; followers poll");
                return;
            }
        };
        let Ok(mut dirs) = inner.dirs.lock() else {
            return;
        };
        for ev in &events {
            for (wd, tx) in dirs.values() {
                if *wd == ev.wd {
                    let _ = tx.send(());
                }
            }
            // The directory is gone (allocation collected): forget its watch.
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                dirs.retain(|_, (wd, _)| *wd != ev.wd);
            }
        }
    }
}
