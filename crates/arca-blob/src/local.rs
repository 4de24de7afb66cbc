//! Blobs as plain files under a directory:
//! `blobs/<first two hex chars>/<id>` for finished blobs and `tmp/` for writes
//! in progress. A write goes to a temp file, is fsynced, renamed into place,
//! and the directory is fsynced, so a finished blob survives a crash and an
//! unfinished one never appears under its id.
//!
//! Large writes start their writeback early: every [`FLUSH_EVERY`] bytes a
//! flusher thread `fdatasync`s what has been written so far while the writer
//! goes on, so the fsync that acknowledges the blob only waits for the tail
//! instead of the whole object.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{BlobId, BlobStore, BlobWriter};

/// The local-disk engine.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl LocalDisk {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        Ok(LocalDisk { blobs, tmp })
    }

    fn path_of(&self, id: &BlobId) -> PathBuf {
        self.blobs.join(&id.as_str()[..2]).join(id.as_str())
    }
}

/// Bytes written between early writeback requests.
const FLUSH_EVERY: u64 = 8 * 1024 * 1024;

struct LocalWriter {
    file: Option<File>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    id: BlobId,
    unflushed: u64,
    flusher: Option<Flusher>,
}

/// A thread that syncs the file's data written so far, on request, while the
/// writer keeps writing.
struct Flusher {
    requests: std::sync::mpsc::SyncSender<()>,
    worker: std::thread::JoinHandle<io::Result<()>>,
}

impl Flusher {
    fn start(file: &File) -> io::Result<Self> {
        // A duplicate descriptor shares the open file (and its writeback
        // errors), so an error the flusher sees is returned by `finish`.
        let file = file.try_clone()?;
        let (requests, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let worker = std::thread::Builder::new().name("arca-blob-flush".into()).spawn(move || {
            for () in rx {
                file.sync_data()?;
            }
            Ok(())
        })?;
        Ok(Flusher { requests, worker })
    }

    /// Asks for a sync unless one is already queued (then it covers these bytes too).
    fn request(&self) {
        let _ = self.requests.try_send(());
    }

    /// Waits for the sync in progress; its error, if any.
    fn stop(self) -> io::Result<()> {
        drop(self.requests);
        self.worker.join().map_err(|_| io::Error::other("the blob flusher panicked"))?
    }
}

impl BlobWriter for LocalWriter {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        file.write_all(buf)?;
        self.unflushed += buf.len() as u64;
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            if self.flusher.is_none() {
                self.flusher = Some(Flusher::start(file)?);
            }
            self.flusher.as_ref().expect("started above").request();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<BlobId> {
        if let Some(flusher) = self.flusher.take() {
            flusher.stop()?; // before `file` is taken: an error still discards the partial file
        }
        let file = self.file.take().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        file.sync_all()?;
        drop(file);
        let dir = self.final_path.parent().expect("blob path has a parent");
        fs::create_dir_all(dir)?;
        fs::rename(&self.tmp_path, &self.final_path)?;
        File::open(dir)?.sync_all()?;
        Ok(self.id.clone())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Abandoned: the partial bytes must not linger.
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

impl BlobStore for LocalDisk {
    fn create(&self) -> io::Result<Box<dyn BlobWriter>> {
        let id = BlobId::random();
        let tmp_path = self.tmp.join(format!("{id}.part"));
        let file = File::options().write(true).create_new(true).open(&tmp_path)?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            final_path: self.path_of(&id),
            tmp_path,
            id,
            unflushed: 0,
            flusher: None,
        }))
    }

    fn open(&self, id: &BlobId, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut file = File::open(self.path_of(id))?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(Box::new(file))
    }

    fn delete(&self, id: &BlobId) -> io::Result<()> {
        match fs::remove_file(self.path_of(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn list_older_than(&self, min_age: Duration) -> io::Result<Vec<BlobId>> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let Some(id) = entry.file_name().to_str().and_then(BlobId::parse) else {
                    continue;
                };
                if is_older_than(&entry.metadata()?, min_age) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    fn clean_partial(&self, min_age: Duration) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if is_older_than(&entry.metadata()?, min_age) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn is_older_than(meta: &fs::Metadata, min_age: Duration) -> bool {
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    SystemTime::now().duration_since(modified).map(|age| age >= min_age).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_finish_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::open(dir.path()).unwrap();
        let mut w = store.create().unwrap();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let id = w.finish().unwrap();
        let mut s = String::new();
        store.open(&id, 6).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "world");
        assert_eq!(store.list_older_than(Duration::ZERO).unwrap(), vec![id.clone()]);
        store.delete(&id).unwrap();
        store.delete(&id).unwrap();
        assert_eq!(store.open(&id, 0).err().unwrap().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn large_writes_flushed_early_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::open(dir.path()).unwrap();
        let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut w = store.create().unwrap();
        for _ in 0..(FLUSH_EVERY * 3 / chunk.len() as u64 + 1) {
            w.write_all(&chunk).unwrap();
        }
        let id = w.finish().unwrap();
        let mut back = Vec::new();
        store.open(&id, 0).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len() as u64, (FLUSH_EVERY * 3 / chunk.len() as u64 + 1) * chunk.len() as u64);
        assert!(back.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
    }

    #[test]
    fn abandoned_large_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::open(dir.path()).unwrap();
        let mut w = store.create().unwrap();
        w.write_all(&vec![7u8; FLUSH_EVERY as usize + 1]).unwrap(); // a flush is under way
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::open(dir.path()).unwrap();
        let mut w = store.create().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(store.list_older_than(Duration::ZERO).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn partial_files_from_a_crash_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDisk::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp/deadbeef.part"), b"x").unwrap();
        assert_eq!(store.clean_partial(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(store.clean_partial(Duration::ZERO).unwrap(), 1);
    }

    #[test]
    fn ids_are_validated() {
        assert!(BlobId::parse("../../etc/passwd").is_none());
        assert!(BlobId::parse(BlobId::random().as_str()).is_some());
    }
}
