//! Moving object bytes between a client stream and blobs in one pass.
//!
//! Writes: the async side pulls the client body and hands chunks through a
//! small bounded channel to one blocking task that hashes (CRC-64, and MD5
//! itself or, for large bodies, on a thread of its own), seals and writes
//! them, so a slow disk slows the client and memory stays at a few chunks
//! whatever the object size. Reads: one blocking task reads blob extents in
//! order (for long encrypted reads, with a second thread reading ahead) and
//! feeds a bounded channel that becomes the response body.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;

use arca_blob::{BlobId, BlobStore};
use arca_crypto::{DataKey, StreamOpener, StreamParams, StreamSealer, Suite};
use arca_meta::Extent;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::checksum::{Hashes, SplitHashes};
use crate::error::CoreError;

/// A stream of body bytes (client upload or response body).
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Chunks in flight between the network and the disk, per request.
const CHANNEL_CHUNKS: usize = 4;
/// Read size for response bodies.
const READ_CHUNK: usize = 256 * 1024;
/// Encrypted segments read, opened and sent together (4 × 64 KiB = the
/// plaintext path's read size).
const SEGMENTS_PER_READ: u64 = 4;
/// Encrypted reads at least this many segments long read and decrypt on
/// two threads.
const PIPELINE_MIN_SEGMENTS: u64 = 32;
/// Typical sealed output per pushed chunk.
const CHANNEL_CHUNK_HINT: usize = 256 * 1024;

/// A body turned into a finished blob.
#[derive(Debug)]
pub(crate) struct Written {
    pub blob: BlobId,
    /// Plaintext length.
    pub len: u64,
    /// MD5 of the plaintext.
    pub md5: [u8; 16],
    /// CRC-64 of the plaintext.
    pub crc64: u64,
}

/// Encryption of one stream being written: the object's data key and the
/// stream's parameters (suite, part number, salt).
pub(crate) struct Sealing {
    pub key: Arc<DataKey>,
    pub params: StreamParams,
}

enum Msg {
    Data(Bytes),
    End,
}

/// Streams `body` into a new blob, hashing the plaintext and, with
/// `sealing`, encrypting it in the same pass (plaintext never reaches disk).
/// `expected_len` is the declared length (if any); more than `max_len` bytes
/// fails with `EntityTooLarge`. On any error the partial blob is discarded.
/// `content_md5`, if given, must match.
pub(crate) async fn write_blob(
    blobs: &Arc<dyn BlobStore>,
    mut body: ByteStream,
    expected_len: Option<u64>,
    max_len: u64,
    content_md5: Option<[u8; 16]>,
    sealing: Option<Sealing>,
) -> Result<Written, CoreError> {
    if expected_len.is_some_and(|n| n > max_len) {
        return Err(CoreError::EntityTooLarge);
    }
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    let store = blobs.clone();
    // Bodies beyond a few chunks hash MD5 on a second thread (see SplitHashes).
    let split = expected_len.is_none_or(|n| n > 4 * CHANNEL_CHUNK_HINT as u64);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<Option<Written>> {
        let mut w = store.create()?;
        let mut hashes = if split { Hasher::Split(SplitHashes::start()?) } else { Hasher::Inline(Hashes::default()) };
        let mut sealer = match sealing {
            Some(s) => Some(StreamSealer::new(&s.key, s.params).map_err(io::Error::other)?),
            None => None,
        };
        let mut sealed = Vec::with_capacity(CHANNEL_CHUNK_HINT);
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Data(chunk) => {
                    hashes.update(&chunk)?;
                    match sealer.as_mut() {
                        Some(s) => {
                            s.push(&chunk, &mut sealed).map_err(io::Error::other)?;
                            w.write_all(&sealed)?;
                            sealed.clear();
                        }
                        None => w.write_all(&chunk)?,
                    }
                }
                Msg::End => {
                    if let Some(s) = sealer.take() {
                        s.finish(&mut sealed).map_err(io::Error::other)?;
                        w.write_all(&sealed)?;
                    }
                    let len = hashes.len();
                    let (md5, crc64) = hashes.finish()?;
                    let blob = w.finish()?;
                    return Ok(Some(Written { blob, len, md5, crc64 }));
                }
            }
        }
        Ok(None) // sender gone without End: abandoned, the writer's drop discards it
    });

    let mut seen: u64 = 0;
    // HTTP/1 bodies arrive in frames of a few KiB; hand the writer ~256 KiB at
    // a time, so a large PUT costs a few hundred channel hand-offs and writes,
    // not tens of thousands.
    let mut pending = bytes::BytesMut::new();
    let outcome: Result<(), CoreError> = async {
        while let Some(chunk) = body.next().await {
            // A client body that breaks is an incomplete upload; a copy source
            // that fails to read or authenticate is the server's problem.
            let chunk = chunk.map_err(|e| match e.kind() {
                std::io::ErrorKind::Other => CoreError::IncompleteBody,
                std::io::ErrorKind::InvalidData => CoreError::Integrity,
                _ => CoreError::internal(e),
            })?;
            seen += chunk.len() as u64;
            if seen > max_len {
                return Err(CoreError::EntityTooLarge);
            }
            if expected_len.is_some_and(|n| seen > n) {
                return Err(CoreError::IncompleteBody);
            }
            let chunk = if pending.is_empty() && chunk.len() >= CHANNEL_CHUNK_HINT {
                chunk
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() < CHANNEL_CHUNK_HINT {
                    continue;
                }
                pending.split().freeze()
            };
            if tx.send(Msg::Data(chunk)).await.is_err() {
                return Ok(()); // writer failed; its error is reported below
            }
        }
        if expected_len.is_some_and(|n| seen != n) {
            return Err(CoreError::IncompleteBody);
        }
        if !pending.is_empty() && tx.send(Msg::Data(pending.split().freeze())).await.is_err() {
            return Ok(());
        }
        let _ = tx.send(Msg::End).await;
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(CoreError::internal)?.map_err(CoreError::internal);
    outcome?;
    let written = written?.ok_or_else(|| CoreError::internal("blob writer stopped early"))?;
    if content_md5.is_some_and(|m| m != written.md5) {
        discard(blobs, vec![written.blob]).await;
        return Err(CoreError::InvalidDigest);
    }
    Ok(written)
}

/// MD5 + CRC-64 on the writer's thread, or MD5 on a thread of its own.
enum Hasher {
    Inline(Hashes),
    Split(SplitHashes),
}

impl Hasher {
    fn update(&mut self, chunk: &Bytes) -> io::Result<()> {
        match self {
            Hasher::Inline(h) => {
                h.update(chunk);
                Ok(())
            }
            Hasher::Split(h) => h.update(chunk),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Hasher::Inline(h) => h.len(),
            Hasher::Split(h) => h.len(),
        }
    }

    fn finish(self) -> io::Result<([u8; 16], u64)> {
        match self {
            Hasher::Inline(h) => Ok(h.finish()),
            Hasher::Split(h) => h.finish(),
        }
    }
}

/// Deletes blobs that no record will reference (failed or refused writes).
pub(crate) async fn discard(blobs: &Arc<dyn BlobStore>, ids: Vec<BlobId>) {
    let store = blobs.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for id in ids {
            if let Err(e) = store.delete(&id) {
                tracing::warn!(blob = %id, error = %e, "could not delete discarded blob; orphan collection will retry");
            }
        }
    })
    .await;
}

/// How to read an object's extents: in the clear, or decrypting each
/// extent's stream with the object's data key.
#[derive(Clone)]
pub(crate) struct Decryption {
    pub key: Arc<DataKey>,
    pub suite: Suite,
}

/// Streams plaintext bytes `[start, end)` of the content made of `extents`.
/// Encrypted extents are read segment by segment: only the segments covering
/// the range, each authenticated before any of its bytes is sent. `label`
/// names the object in integrity errors.
pub(crate) fn read_extents(
    blobs: &Arc<dyn BlobStore>,
    extents: Vec<Extent>,
    start: u64,
    end: u64,
    decryption: Option<Decryption>,
    label: String,
) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let store = blobs.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = pump_extents(&*store, &extents, start, end, decryption.as_ref(), &tx) {
            if e.kind() == io::ErrorKind::InvalidData {
                tracing::error!(object = %label, error = %e, "integrity error: stored data failed authentication; response aborted");
            } else {
                tracing::error!(object = %label, error = %e, "read error; response aborted");
            }
            let _ = tx.blocking_send(Err(e));
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn pump_extents(
    store: &dyn BlobStore,
    extents: &[Extent],
    start: u64,
    end: u64,
    decryption: Option<&Decryption>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let mut ext_start = 0u64;
    for ext in extents {
        let ext_end = ext_start + ext.len;
        // An empty extent (a zero-byte append) holds no bytes to read.
        if ext.len > 0 && ext_end > start && ext_start < end {
            let from = start.saturating_sub(ext_start);
            let to = end.min(ext_end) - ext_start;
            let id = BlobId::parse(&ext.blob).ok_or_else(|| io::Error::other("malformed blob id in metadata"))?;
            let more = match (decryption, &ext.salt) {
                (Some(d), Some(salt)) => pump_sealed(store, &id, ext, d, salt, from, to, tx)?,
                (None, None) => pump_plain(store, &id, from, to, tx)?,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "extent encryption does not match the object's",
                    ));
                }
            };
            if !more {
                return Ok(()); // client went away
            }
        }
        ext_start = ext_end;
        if ext_start >= end {
            break;
        }
    }
    Ok(())
}

/// Buffers for response bodies, recycled: a buffer handed to the network
/// comes back when the last `Bytes` pointing into it is dropped, so reads
/// neither zero-fill nor page-fault fresh memory. Sized for a run of sealed
/// segments (the plaintext path uses the first `READ_CHUNK` bytes).
struct ReadBuffers {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept for reuse at most (8 MiB); more in flight are simply freed.
const POOLED_BUFFERS: usize = 32;
const BUFFER_SIZE: usize = (SEGMENTS_PER_READ * (arca_crypto::SEGMENT_SIZE + arca_crypto::TAG_SIZE)) as usize;

static READ_BUFFERS: ReadBuffers = ReadBuffers { free: std::sync::Mutex::new(Vec::new()) };

impl ReadBuffers {
    fn take(&'static self) -> Vec<u8> {
        let reused = self.free.lock().unwrap_or_else(|p| p.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0; BUFFER_SIZE])
    }

    /// Returns a buffer for reuse (unless the pool is full).
    fn give(&'static self, buf: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < POOLED_BUFFERS && buf.len() == BUFFER_SIZE {
            free.push(buf);
        }
    }

    /// The first `len` bytes of `buf` as `Bytes`; `buf` returns to the pool
    /// once they are dropped.
    fn share(&'static self, buf: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(Recycled { buf, len, pool: self })
    }
}

struct Recycled {
    buf: Vec<u8>,
    len: usize,
    pool: &'static ReadBuffers,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Encrypted reads in progress in this process.
struct ActiveSealedReads;

static ACTIVE_SEALED_READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl ActiveSealedReads {
    fn enter() -> Self {
        ACTIVE_SEALED_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ActiveSealedReads
    }

    fn count() -> usize {
        ACTIVE_SEALED_READS.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for ActiveSealedReads {
    fn drop(&mut self) {
        ACTIVE_SEALED_READS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many encrypted reads at once may each use a second thread: half the
/// cores (each pipelined read keeps about two busy).
fn pipeline_slots() -> usize {
    static SLOTS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SLOTS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

fn pump_plain(
    store: &dyn BlobStore,
    id: &BlobId,
    from: u64,
    to: u64,
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<bool> {
    let mut reader = store.open(id, from)?;
    let mut left = to - from;
    while left > 0 {
        let want = READ_CHUNK.min(left as usize);
        let mut buf = READ_BUFFERS.take();
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("blob {id} is shorter than recorded")));
        }
        left -= n as u64;
        if tx.blocking_send(Ok(READ_BUFFERS.share(buf, n))).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn pump_sealed(
    store: &dyn BlobStore,
    id: &BlobId,
    ext: &Extent,
    d: &Decryption,
    salt: &str,
    from: u64,
    to: u64,
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<bool> {
    use arca_crypto::{SEGMENT_SIZE, TAG_SIZE, segment_offset, segments_for_range};
    let salt = crate::sse::salt_of(salt).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let params = StreamParams { suite: d.suite, part_number: ext.part, salt };
    let opener = StreamOpener::new(&d.key, params, ext.len)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let (first, last) = segments_for_range(from, to);
    // Runs of segments: each read with one read, opened into one contiguous
    // plaintext buffer without the tags, and handed on as one message (as few
    // channel messages as the plaintext path).
    let runs = (first..=last).step_by(SEGMENTS_PER_READ as usize).map(|i| (i, (i + SEGMENTS_PER_READ - 1).min(last)));
    let stored_len = |index: u64, run_end: u64| {
        let run_plain = ((run_end + 1) * SEGMENT_SIZE).min(ext.len) - index * SEGMENT_SIZE;
        run_plain + (run_end - index + 1) * TAG_SIZE
    };
    let mut reader = store.open(id, segment_offset(first))?;
    let mut read_run = move |index: u64, run_end: u64| -> io::Result<Vec<u8>> {
        let mut buf = READ_BUFFERS.take();
        reader.read_exact(&mut buf[..stored_len(index, run_end) as usize]).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {id} segments {index}..={run_end} are truncated: {e}"),
            )
        })?;
        Ok(buf)
    };
    // Each segment is opened from the read buffer straight into its place in
    // a second buffer: the plaintext ends up contiguous without a copy.
    let open_run = |index: u64, run_end: u64, sealed: Vec<u8>| -> io::Result<Bytes> {
        let mut plain = READ_BUFFERS.take();
        let (mut read_at, mut write_at) = (0usize, 0usize);
        for i in index..=run_end {
            let seg_stored = (ext.len - i * SEGMENT_SIZE).min(SEGMENT_SIZE) as usize + TAG_SIZE as usize;
            write_at +=
                opener.open_into(i, &sealed[read_at..read_at + seg_stored], &mut plain[write_at..]).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("blob {id} segment {i} failed authentication"))
                })?;
            read_at += seg_stored;
        }
        READ_BUFFERS.give(sealed);
        let run_start = index * SEGMENT_SIZE;
        let lo = from.saturating_sub(run_start) as usize;
        let hi = (to - run_start).min(write_at as u64) as usize;
        Ok(READ_BUFFERS.share(plain, write_at).slice(lo..hi))
    };
    // Decrypting beside the read pays off only where cores would otherwise
    // idle: with more encrypted reads in flight than `pipeline_slots`, the
    // others already keep the cores busy.
    let _reading = ActiveSealedReads::enter();
    if last - first < PIPELINE_MIN_SEGMENTS || ActiveSealedReads::count() > pipeline_slots() {
        for (index, run_end) in runs {
            let plain = open_run(index, run_end, read_run(index, run_end)?)?;
            if tx.blocking_send(Ok(plain)).is_err() {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    // Long reads on a machine with cores to spare: the next run is read on a
    // second thread while this one is decrypted, so the cipher runs beside the
    // disk and the network instead of between them.
    std::thread::scope(|scope| {
        let (run_tx, run_rx) = std::sync::mpsc::sync_channel::<io::Result<(u64, u64, Vec<u8>)>>(2);
        scope.spawn(move || {
            for (index, run_end) in runs {
                let run = read_run(index, run_end).map(|buf| (index, run_end, buf));
                let failed = run.is_err();
                if run_tx.send(run).is_err() || failed {
                    return; // the opener stopped (client gone, error) or this read failed
                }
            }
        });
        for run in run_rx {
            let (index, run_end, buf) = run?;
            if tx.blocking_send(Ok(open_run(index, run_end, buf)?)).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    })
}
