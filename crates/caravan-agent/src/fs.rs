//! The files of this node's allocations, served to gateways over gRPC (`ClientFs`): listings,
//! stats, raw reads (cat, readat) and framed streams of a file or of a task's rotated logs.
//!
//! Every path is taken relative to the allocation directory and must stay inside it: `..`
//! that climbs out, and symlinks (even ones a task planted) that resolve outside, are refused.
//! Streams are produced into a small channel, so a slow reader slows the file reading (memory
//! stays flat), and a reader that goes away ends the producer and closes its file.

use std::io::SeekFrom;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_drivers::logs::existing_indexes;
use caravan_proto::v1::client_fs_server::ClientFs;
use caravan_proto::v1::{
    FileChunk, FileInfo, FsPathRequest, ListFilesResponse, ReadFileRequest, StatFileResponse,
    StreamFileRequest, StreamFrame, StreamLogsRequest,
};
use caravan_proto::{ErrorCode, to_status};
use caravan_structs::Time;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::allocs::events::STATE_DEAD;
use crate::allocs::manager::AllocManager;
use crate::allocs::runner::AllocRunner;
use crate::fswatch::DirWatcher;

/// Largest data of one frame or chunk (Nomad's 64 KiB frames).
const CHUNK: usize = 64 * 1024;
/// Frames a stream may have in flight: the back-pressure window.
const WINDOW: usize = 8;
/// How often a followed file is looked at again when no change notification comes (and
/// always, where inotify is unavailable).
const POLL: Duration = Duration::from_millis(100);
const POLL_WITH_NOTIFY: Duration = Duration::from_millis(500);
/// An empty frame at least this often while a stream is idle (Nomad's rate).
const HEARTBEAT: Duration = Duration::from_secs(1);

pub const FILE_DELETED: &str = "file deleted";
pub const FILE_TRUNCATED: &str = "file truncated";

fn bad(message: impl Into<String>) -> Status {
    to_status(ErrorCode::BadRequest, message)
}

fn not_found(message: impl Into<String>) -> Status {
    to_status(ErrorCode::NotFound, message)
}

fn internal(message: impl Into<String>) -> Status {
    to_status(ErrorCode::Internal, message)
}

fn escapes() -> Status {
    bad("Path escapes the alloc directory")
}

/// The normalized relative path (no `.`, no `..`, no root), or an escape.
fn normalize(requested: &str) -> Result<PathBuf, Status> {
    let mut out = PathBuf::new();
    for c in Path::new(requested).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(escapes());
                }
            }
            Component::Normal(part) => out.push(part),
            Component::Prefix(_) => return Err(escapes()),
        }
    }
    Ok(out)
}

/// A path inside an allocation directory, resolved and checked.
struct Resolved {
    /// As the caller named it, normalized (for messages and frames).
    rel: PathBuf,
    /// On the host, symlinks resolved.
    host: PathBuf,
}

/// Resolves `requested` inside `root`; symlinks must not lead outside it. A path that does not
/// exist is a 404 naming the path as asked.
fn resolve(root: &Path, requested: &str) -> Result<Resolved, Status> {
    let rel = normalize(requested)?;
    let canon_root = root
        .canonicalize()
        .map_err(|e| not_found(format!("allocation directory unavailable: {e}")))?;
    let host = root.join(&rel);
    match host.canonicalize() {
        Ok(real) if real.starts_with(&canon_root) => Ok(Resolved { rel, host: real }),
        Ok(_) => Err(escapes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink pointing outside is an escape too, not a missing file.
            if let Ok(target) = std::fs::read_link(&host) {
                let target = host.parent().unwrap_or(root).join(target);
                if !lexically_inside(&target, root) {
                    return Err(escapes());
                }
            }
            Err(not_found(format!(
                "stat {}: no such file or directory",
                shown(&rel)
            )))
        }
        Err(e) => Err(bad(format!("stat {}: {e}", shown(&rel)))),
    }
}

fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut depth: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                depth.pop();
            }
            Component::CurDir => {}
            other => depth.push(other),
        }
    }
    depth.iter().collect::<PathBuf>().starts_with(root)
}

fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// Go's `FileMode.String()`: type letters (`dalTLDpSugct`), or `-`, then `rwxrwxrwx`.
pub fn file_mode(meta: &std::fs::Metadata) -> String {
    let ft = meta.file_type();
    let mode = meta.permissions().mode();
    let mut s = String::new();
    if ft.is_dir() {
        s.push('d');
    }
    if ft.is_symlink() {
        s.push('L');
    }
    if ft.is_block_device() || ft.is_char_device() {
        s.push('D');
    }
    if ft.is_fifo() {
        s.push('p');
    }
    if ft.is_socket() {
        s.push('S');
    }
    if mode & 0o4000 != 0 {
        s.push('u');
    }
    if mode & 0o2000 != 0 {
        s.push('g');
    }
    if ft.is_char_device() {
        s.push('c');
    }
    if mode & 0o1000 != 0 {
        s.push('t');
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

fn info(name: String, meta: &std::fs::Metadata) -> FileInfo {
    let modified = meta
        .modified()
        .map(Time::from_system_time)
        .unwrap_or(Time::ZERO);
    FileInfo {
        name,
        is_dir: meta.is_dir(),
        size: i64::try_from(meta.size()).unwrap_or(i64::MAX),
        file_mode: file_mode(meta),
        mod_time: modified.to_string(),
        content_type: String::new(),
    }
}

/// The content type Nomad sniffs from a file's first 512 bytes; HTML is never answered as
/// HTML (stored XSS, CVE-2020-10944).
pub fn content_type(path: &Path, head: &[u8]) -> String {
    if path.extension().is_some_and(|e| e == "json") {
        return "application/json".to_owned();
    }
    let magic: [(&[u8], &str); 7] = [
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"\x1f\x8b\x08", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x7fELF", "application/octet-stream"),
    ];
    if let Some((_, t)) = magic.iter().find(|(m, _)| head.starts_with(m)) {
        return (*t).to_owned();
    }
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the 512-byte mark is still text.
        Err(e) => e.error_len().is_none(),
    };
    let binary = head
        .iter()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f));
    if text && !binary {
        "text/plain; charset=utf-8".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

/// `<task>/secrets` and `<task>/private` are never served.
fn check_readable(rel: &Path) -> Result<(), Status> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_ascii_lowercase())
        .collect();
    match parts.get(1).map(String::as_str) {
        Some("secrets") => Err(to_status(
            ErrorCode::PermissionDenied,
            format!("Reading secret file prohibited: {}", shown(rel)),
        )),
        Some("private") => Err(to_status(
            ErrorCode::PermissionDenied,
            format!("Reading private file prohibited: {}", shown(rel)),
        )),
        _ => Ok(()),
    }
}

pub struct ClientFsService {
    manager: AllocManager,
    watcher: DirWatcher,
}

impl ClientFsService {
    pub fn new(manager: AllocManager) -> ClientFsService {
        ClientFsService {
            manager,
            watcher: DirWatcher::start(),
        }
    }

    fn runner(&self, alloc_id: &str) -> Result<Arc<AllocRunner>, Status> {
        if self.manager.was_collected(alloc_id) {
            return Err(not_found(format!(
                "state for allocation {alloc_id} not found on client"
            )));
        }
        let runner = self
            .manager
            .get(alloc_id)
            .ok_or_else(|| not_found(format!("Unknown allocation {alloc_id:?}")))?;
        if !runner.dir().exists() {
            return Err(not_found(format!(
                "state for allocation {alloc_id} not found on client"
            )));
        }
        Ok(runner)
    }

    /// A regular file to read: resolved, readable, not a directory; with its size.
    fn readable_file(&self, alloc_id: &str, path: &str) -> Result<(Resolved, u64), Status> {
        let runner = self.runner(alloc_id)?;
        // A missing file is a 400 for the reading endpoints, as in Nomad (ls and stat: 404).
        let resolved = resolve(runner.dir().root(), path).map_err(|e| {
            if e.code() == tonic::Code::NotFound && e.message().starts_with("stat ") {
                bad(e.message())
            } else {
                e
            }
        })?;
        check_readable(&resolved.rel)?;
        let meta = std::fs::metadata(&resolved.host)
            .map_err(|e| bad(format!("stat {}: {e}", shown(&resolved.rel))))?;
        if meta.is_dir() {
            return Err(bad(format!(
                "file {:?} is a directory",
                shown(&resolved.rel)
            )));
        }
        Ok((resolved, meta.len()))
    }
}

fn offset_in(offset: i64, size: u64) -> Result<u64, Status> {
    let offset = u64::try_from(offset).map_err(|_| bad("offset must not be negative"))?;
    if offset > size {
        return Err(bad(format!(
            "offset {offset} is beyond the end of the file ({size} bytes)"
        )));
    }
    Ok(offset)
}

type FrameStream = ReceiverStream<Result<StreamFrame, Status>>;
type ChunkStream = ReceiverStream<Result<FileChunk, Status>>;

#[tonic::async_trait]
impl ClientFs for ClientFsService {
    async fn list_files(
        &self,
        request: Request<FsPathRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        let req = request.into_inner();
        let runner = self.runner(&req.alloc_id)?;
        let resolved = resolve(runner.dir().root(), &req.path)?;
        let entries = std::fs::read_dir(&resolved.host).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotADirectory {
                bad(format!("{} is not a directory", shown(&resolved.rel)))
            } else {
                internal(format!("open {}: {e}", shown(&resolved.rel)))
            }
        })?;
        let mut files: Vec<FileInfo> = entries
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some(info(e.file_name().to_string_lossy().into_owned(), &meta))
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(ListFilesResponse { files }))
    }

    async fn stat_file(
        &self,
        request: Request<FsPathRequest>,
    ) -> Result<Response<StatFileResponse>, Status> {
        let req = request.into_inner();
        let runner = self.runner(&req.alloc_id)?;
        let resolved = resolve(runner.dir().root(), &req.path)?;
        let meta = std::fs::metadata(&resolved.host)
            .map_err(|e| internal(format!("stat {}: {e}", shown(&resolved.rel))))?;
        let name = resolved
            .rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned());
        let mut file = info(name, &meta);
        file.content_type = if meta.is_dir() {
            "application/octet-stream".to_owned()
        } else {
            let mut head = vec![0u8; 512];
            let n = match std::fs::File::open(&resolved.host) {
                Ok(mut f) => std::io::Read::read(&mut f, &mut head).unwrap_or(0),
                Err(_) => 0,
            };
            content_type(&resolved.rel, &head[..n])
        };
        Ok(Response::new(StatFileResponse { file: Some(file) }))
    }

    type ReadFileStream = ChunkStream;

    async fn read_file(
        &self,
        request: Request<ReadFileRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let req = request.into_inner();
        let (resolved, size) = self.readable_file(&req.alloc_id, &req.path)?;
        let offset = offset_in(req.offset, size)?;
        let limit = u64::try_from(req.limit).ok().filter(|l| *l > 0);
        let mut file = tokio::fs::File::open(&resolved.host)
            .await
            .map_err(|e| internal(format!("open {}: {e}", shown(&resolved.rel))))?;
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| internal(format!("seek: {e}")))?;
        let (tx, rx) = mpsc::channel(WINDOW);
        tokio::spawn(async move {
            let mut left = limit.unwrap_or(u64::MAX);
            let mut first = true;
            let mut buf = vec![0u8; CHUNK];
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = match file.read(&mut buf[..want]).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(internal(format!("read: {e}")))).await;
                        return;
                    }
                };
                left -= n as u64;
                let content_type = if first {
                    first = false;
                    content_type(&resolved.rel, &buf[..n.min(512)])
                } else {
                    String::new()
                };
                let chunk = FileChunk {
                    data: bytes::Bytes::copy_from_slice(&buf[..n]),
                    content_type,
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    return; // The reader went away.
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type StreamFileStream = FrameStream;

    async fn stream_file(
        &self,
        request: Request<StreamFileRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        let req = request.into_inner();
        let (resolved, size) = self.readable_file(&req.alloc_id, &req.path)?;
        let offset = u64::try_from(req.offset).map_err(|_| bad("offset must not be negative"))?;
        let start = if req.origin_end {
            size.saturating_sub(offset)
        } else {
            offset_in(req.offset, size)?
        };
        let (tx, rx) = mpsc::channel(WINDOW);
        let follow = req.follow;
        let wake = if follow {
            resolved
                .host
                .parent()
                .and_then(|d| self.watcher.subscribe(d))
        } else {
            None
        };
        tokio::spawn(async move {
            let file = resolved.rel.to_string_lossy().into_owned();
            let mut wake = wake;
            let _ = follow_file(&tx, &resolved.host, &file, start, follow, None, &mut wake).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type StreamLogsStream = FrameStream;

    async fn stream_logs(
        &self,
        request: Request<StreamLogsRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        let req = request.into_inner();
        if req.log_type != "stdout" && req.log_type != "stderr" {
            return Err(bad("must provide log type (stdout/stderr)"));
        }
        let runner = self.runner(&req.alloc_id)?;
        let task = runner
            .task(&req.task)
            .ok_or_else(|| bad(format!("unknown task name {:?}", req.task)))?;
        if task.log_config.as_ref().is_some_and(|l| l.disabled) {
            return Err(not_found(format!(
                "logging is disabled for task {:?}",
                req.task
            )));
        }
        let started = runner
            .view()
            .task_states
            .as_ref()
            .and_then(|s| s.get(&req.task))
            .is_some_and(|s| !s.started_at.is_zero() || s.state == STATE_DEAD);
        let logs_dir = runner.dir().logs();
        let prefix = format!("{}.{}.", req.task, req.log_type);
        let mut indexes = existing_indexes(&logs_dir, &prefix)
            .map_err(|e| internal(format!("listing the logs: {e}")))?;
        indexes.sort_unstable();
        if indexes.is_empty() {
            return Err(not_found(if started {
                format!(
                    "log entry for task {:?} and log type {:?} not found",
                    req.task, req.log_type
                )
            } else {
                format!("task {:?} not started yet. No logs available", req.task)
            }));
        }
        let offset = u64::try_from(req.offset).map_err(|_| bad("offset must not be negative"))?;
        let (index, pos) = log_start(&logs_dir, &prefix, &indexes, offset, req.origin_end)?;
        let (tx, rx) = mpsc::channel(WINDOW);
        let wake = if req.follow {
            self.watcher.subscribe(&logs_dir)
        } else {
            None
        };
        let logs = LogStream {
            wake,
            runner,
            task: req.task,
            dir: logs_dir,
            prefix,
            follow: req.follow,
            newest_at_start: indexes.last().copied().unwrap_or(0),
        };
        tokio::spawn(async move { logs.run(tx, index, pos).await });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Where a log stream starts: from the oldest file skipping `offset` bytes, or back `offset`
/// bytes from the end of the newest (clamped to the oldest file's start).
fn log_start(
    dir: &Path,
    prefix: &str,
    indexes: &[u64],
    offset: u64,
    origin_end: bool,
) -> Result<(u64, u64), Status> {
    let len = |i: u64| file_len(&dir.join(format!("{prefix}{i}")));
    if origin_end {
        let mut left = offset;
        for &i in indexes.iter().rev() {
            let l = len(i);
            if left <= l {
                return Ok((i, l - left));
            }
            left -= l;
        }
        return Ok((indexes[0], 0));
    }
    let mut left = offset;
    for &i in indexes {
        let l = len(i);
        if left <= l {
            return Ok((i, left));
        }
        left -= l;
    }
    Err(bad(format!(
        "offset {offset} is beyond the end of the logs"
    )))
}

/// Sends `file`'s bytes from `pos` as frames until EOF, then (when following) waits for more,
/// reporting truncation and deletion. Returns the position reached, or `None` when the reader
/// went away. `more` tells a follower when to stop instead of waiting (log rotation, a dead
/// task).
async fn follow_file(
    tx: &mpsc::Sender<Result<StreamFrame, Status>>,
    host: &Path,
    file: &str,
    mut pos: u64,
    follow: bool,
    stop: Option<&(dyn Fn() -> bool + Send + Sync)>,
    wake: &mut Option<broadcast::Receiver<()>>,
) -> Option<u64> {
    let mut opened = tokio::fs::File::open(host).await.ok()?;
    opened.seek(SeekFrom::Start(pos)).await.ok()?;
    let mut buf = vec![0u8; CHUNK];
    let mut event = String::new();
    let mut last_sent = Instant::now();
    let mut stopping = false;
    loop {
        let n = match opened.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(internal(format!("read {file}: {e}")))).await;
                return None;
            }
        };
        if n > 0 {
            pos += n as u64;
            let frame = StreamFrame {
                data: bytes::Bytes::copy_from_slice(&buf[..n]),
                file: file.to_owned(),
                file_event: std::mem::take(&mut event),
                offset: i64::try_from(pos).unwrap_or(i64::MAX),
            };
            tx.send(Ok(frame)).await.ok()?;
            last_sent = Instant::now();
            continue;
        }
        // At the end of what is there now.
        if !follow || stopping {
            return Some(pos);
        }
        if let Some(stop) = stop
            && stop()
        {
            // One more pass for bytes written just before the stop condition held.
            stopping = true;
            continue;
        }
        match tokio::fs::metadata(host).await {
            Err(_) => {
                let frame = StreamFrame {
                    file: file.to_owned(),
                    file_event: FILE_DELETED.to_owned(),
                    offset: i64::try_from(pos).unwrap_or(i64::MAX),
                    ..StreamFrame::default()
                };
                let _ = tx.send(Ok(frame)).await;
                return None;
            }
            Ok(meta) if meta.len() < pos => {
                pos = 0;
                opened.seek(SeekFrom::Start(0)).await.ok()?;
                event = FILE_TRUNCATED.to_owned();
                continue;
            }
            Ok(_) => {}
        }
        if last_sent.elapsed() >= HEARTBEAT {
            tx.send(Ok(StreamFrame::default())).await.ok()?;
            last_sent = Instant::now();
        }
        // Wake on a change of the directory (or after a poll period), and early when the
        // reader leaves, so its file handle goes at once.
        match wake.as_mut() {
            Some(rx) => tokio::select! {
                _ = rx.recv() => {}
                () = tokio::time::sleep(POLL_WITH_NOTIFY) => {}
                () = tx.closed() => return None,
            },
            None => tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => return None,
            },
        }
    }
}

/// A task's logs across its rotated files.
struct LogStream {
    /// Changes of the logs directory (rotations, writes), when inotify is there.
    wake: Option<broadcast::Receiver<()>>,
    runner: Arc<AllocRunner>,
    task: String,
    dir: PathBuf,
    prefix: String,
    follow: bool,
    /// Without follow the stream ends after the file that was newest at the request.
    newest_at_start: u64,
}

impl LogStream {
    fn path(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{}{index}", self.prefix))
    }

    fn next_index(&self, after: u64) -> Option<u64> {
        existing_indexes(&self.dir, &self.prefix)
            .ok()?
            .into_iter()
            .filter(|i| *i > after)
            .min()
    }

    fn task_dead(&self) -> bool {
        self.runner
            .view()
            .task_states
            .as_ref()
            .and_then(|s| s.get(&self.task))
            .is_some_and(|s| s.state == STATE_DEAD)
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<Result<StreamFrame, Status>>,
        mut index: u64,
        pos: u64,
    ) {
        let mut pos = pos;
        let mut wake = self.wake.take();
        loop {
            let file = format!("alloc/logs/{}{index}", self.prefix);
            let path = self.path(index);
            if !self.follow {
                if follow_file(&tx, &path, &file, pos, false, None, &mut wake)
                    .await
                    .is_none()
                {
                    return;
                }
                match self.next_index(index) {
                    Some(next) if next <= self.newest_at_start => {
                        index = next;
                        pos = 0;
                        continue;
                    }
                    _ => return,
                }
            }
            // Following: this file until a newer one appears or the task is dead.
            let rotated = || self.next_index(index).is_some() || self.task_dead();
            if follow_file(&tx, &path, &file, pos, true, Some(&rotated), &mut wake)
                .await
                .is_none()
            {
                return;
            }
            match self.next_index(index) {
                Some(next) => {
                    index = next;
                    pos = 0;
                }
                // The task is dead and its last bytes are out: the stream ends cleanly.
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_stay_inside_the_alloc_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("alloc/logs")).unwrap();
        std::fs::write(root.join("alloc/logs/a"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("alloc/up")).unwrap();
        std::os::unix::fs::symlink("logs/a", root.join("alloc/in")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).unwrap();
        assert!(resolve(root, "/alloc/logs/a").is_ok());
        assert!(resolve(root, "alloc/../alloc/logs/a").is_ok());
        assert!(resolve(root, "alloc/in").is_ok());
        assert!(resolve(root, "/").is_ok());
        for escape in [
            "..",
            "../x",
            "alloc/../../etc",
            "out",
            "out/passwd",
            "alloc/up",
            "dangling",
        ] {
            let err = resolve(root, escape).err().unwrap();
            assert_eq!(
                err.message(),
                "Path escapes the alloc directory",
                "{escape}"
            );
        }
        let err = resolve(root, "alloc/nope").err().unwrap();
        assert_eq!(err.message(), "stat /alloc/nope: no such file or directory");
    }

    #[test]
    fn modes_read_like_go() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(file_mode(&std::fs::metadata(&f).unwrap()), "-rw-r--r--");
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(file_mode(&std::fs::metadata(&d).unwrap()), "dtrwxrwxrwx");
    }

    #[test]
    fn content_is_sniffed_without_html() {
        let p = Path::new("x");
        assert_eq!(content_type(p, b"hello\n"), "text/plain; charset=utf-8");
        assert_eq!(
            content_type(p, b"<html><script>"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(p, b"\x00\x01\x02"), "application/octet-stream");
        assert_eq!(content_type(p, b"\x89PNG\r\n\x1a\nxx"), "image/png");
        assert_eq!(content_type(Path::new("a.json"), b"{}"), "application/json");
    }

    #[test]
    fn log_starts_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        for (i, body) in ["aaaa", "bbbb", "cc"].iter().enumerate() {
            std::fs::write(dir.path().join(format!("t.stdout.{i}")), body).unwrap();
        }
        let idx = [0, 1, 2];
        let p = "t.stdout.";
        assert_eq!(log_start(dir.path(), p, &idx, 0, false).unwrap(), (0, 0));
        assert_eq!(log_start(dir.path(), p, &idx, 6, false).unwrap(), (1, 2));
        assert_eq!(log_start(dir.path(), p, &idx, 1, true).unwrap(), (2, 1));
        assert_eq!(log_start(dir.path(), p, &idx, 5, true).unwrap(), (1, 1));
        assert_eq!(log_start(dir.path(), p, &idx, 99, true).unwrap(), (0, 0));
        assert!(log_start(dir.path(), p, &idx, 99, false).is_err());
    }
}
