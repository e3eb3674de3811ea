//! Rotated log files, as Nomad's logmon writes them: `<dir>/<task>.<stream>.<N>` with `N`
//! counting up from 0, each file at most `max_file_bytes`, at most `max_files` kept (the oldest
//! are deleted). A writer started again (task restart, re-launched executor) continues after
//! the newest existing file, so the logs endpoint can follow one ever-growing sequence.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes one stream (`stdout` or `stderr`) of one task.
#[derive(Debug)]
pub struct RotatingWriter {
    dir: PathBuf,
    /// `<task>.<stream>.`
    prefix: String,
    max_files: u32,
    max_file_bytes: u64,
    index: u64,
    file: File,
    written: u64,
}

impl RotatingWriter {
    pub fn open(
        dir: &Path,
        task: &str,
        stream: &str,
        max_files: u32,
        max_file_bytes: u64,
    ) -> io::Result<RotatingWriter> {
        std::fs::create_dir_all(dir)?;
        let prefix = format!("{task}.{stream}.");
        let index = existing_indexes(dir, &prefix)?
            .into_iter()
            .max()
            .unwrap_or(0);
        let (file, written) = open_append(&dir.join(format!("{prefix}{index}")))?;
        let mut writer = RotatingWriter {
            dir: dir.to_owned(),
            prefix,
            max_files: max_files.max(1),
            max_file_bytes: max_file_bytes.max(1),
            index,
            file,
            written,
        };
        if writer.written >= writer.max_file_bytes {
            writer.rotate()?;
        }
        Ok(writer)
    }

    /// The file being written now.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}{}", self.prefix, self.index))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.index += 1;
        let (file, written) = open_append(&self.current_path())?;
        self.file = file;
        self.written = written;
        self.purge()
    }

    /// Deletes the files older than the newest `max_files`.
    fn purge(&self) -> io::Result<()> {
        let keep_from = (self.index + 1).saturating_sub(u64::from(self.max_files));
        for index in existing_indexes(&self.dir, &self.prefix)? {
            if index < keep_from {
                match std::fs::remove_file(self.dir.join(format!("{}{index}", self.prefix))) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written >= self.max_file_bytes {
            self.rotate()?;
        }
        let room = usize::try_from(self.max_file_bytes - self.written).unwrap_or(usize::MAX);
        let n = self.file.write(&buf[..buf.len().min(room)])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// The indexes of the files named `<prefix><N>` in `dir`, unordered.
pub fn existing_indexes(dir: &Path, prefix: &str) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(index);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn rotates_at_the_size_limit_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = RotatingWriter::open(dir.path(), "web", "stdout", 2, 4).unwrap();
        w.write_all(b"abcdefghij").unwrap();
        w.flush().unwrap();
        // 0: abcd (deleted), 1: efgh, 2: ij
        assert_eq!(
            files(dir.path()),
            vec![
                ("web.stdout.1".to_owned(), "efgh".to_owned()),
                ("web.stdout.2".to_owned(), "ij".to_owned()),
            ]
        );
    }

    #[test]
    fn a_new_writer_continues_after_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = RotatingWriter::open(dir.path(), "t", "stderr", 10, 4).unwrap();
            w.write_all(b"abcdef").unwrap();
        }
        let mut w = RotatingWriter::open(dir.path(), "t", "stderr", 10, 4).unwrap();
        assert!(w.current_path().ends_with("t.stderr.1"));
        w.write_all(b"gh").unwrap();
        w.write_all(b"ij").unwrap();
        assert_eq!(
            files(dir.path()),
            vec![
                ("t.stderr.0".to_owned(), "abcd".to_owned()),
                ("t.stderr.1".to_owned(), "efgh".to_owned()),
                ("t.stderr.2".to_owned(), "ij".to_owned()),
            ]
        );
    }

    #[test]
    fn other_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.stdout.x"), "keep").unwrap();
        std::fs::write(dir.path().join("u.stdout.0"), "keep").unwrap();
        let mut w = RotatingWriter::open(dir.path(), "t", "stdout", 1, 2).unwrap();
        w.write_all(b"123456").unwrap();
        let names: Vec<_> = files(dir.path()).into_iter().map(|f| f.0).collect();
        assert_eq!(names, vec!["t.stdout.2", "t.stdout.x", "u.stdout.0"]);
    }
}
