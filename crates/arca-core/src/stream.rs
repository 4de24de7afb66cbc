//! Moving object bytes between a client stream and blobs in one pass.
//!
//! Writes: the async side pulls the client body and hands chunks through a
//! small bounded channel to one blocking task that hashes (MD5 + CRC-64) and
//! writes them, so a slow disk slows the client and memory stays at a few
//! chunks whatever the object size. Reads: one blocking task reads blob
//! extents in order and feeds a bounded channel that becomes the response body.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;

use arca_blob::{BlobId, BlobStore};
use arca_meta::Extent;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::checksum::Hashes;
use crate::error::CoreError;

/// A stream of body bytes (client upload or response body).
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Chunks in flight between the network and the disk, per request.
const CHANNEL_CHUNKS: usize = 4;
/// Read size for response bodies.
const READ_CHUNK: usize = 256 * 1024;

/// A body turned into a finished blob.
#[derive(Debug)]
pub(crate) struct Written {
    pub blob: BlobId,
    pub len: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
}

enum Msg {
    Data(Bytes),
    End,
}

/// Streams `body` into a new blob. `expected_len` is the declared length (if
/// any); more than `max_len` bytes fails with `EntityTooLarge`. On any error the
/// partial blob is discarded. `content_md5`, if given, must match.
pub(crate) async fn write_blob(
    blobs: &Arc<dyn BlobStore>,
    mut body: ByteStream,
    expected_len: Option<u64>,
    max_len: u64,
    content_md5: Option<[u8; 16]>,
) -> Result<Written, CoreError> {
    if expected_len.is_some_and(|n| n > max_len) {
        return Err(CoreError::EntityTooLarge);
    }
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_CHUNKS);
    let store = blobs.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<Option<Written>> {
        let mut w = store.create()?;
        let mut hashes = Hashes::default();
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Data(chunk) => {
                    hashes.update(&chunk);
                    w.write_all(&chunk)?;
                }
                Msg::End => {
                    let len = hashes.len();
                    let (md5, crc64) = hashes.finish();
                    let blob = w.finish()?;
                    return Ok(Some(Written {
                        blob,
                        len,
                        md5,
                        crc64,
                    }));
                }
            }
        }
        Ok(None) // sender gone without End: abandoned, the writer's drop discards it
    });

    let mut seen: u64 = 0;
    let outcome: Result<(), CoreError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| CoreError::IncompleteBody)?;
            seen += chunk.len() as u64;
            if seen > max_len {
                return Err(CoreError::EntityTooLarge);
            }
            if expected_len.is_some_and(|n| seen > n) {
                return Err(CoreError::IncompleteBody);
            }
            if tx.send(Msg::Data(chunk)).await.is_err() {
                return Ok(()); // writer failed; its error is reported below
            }
        }
        if expected_len.is_some_and(|n| seen != n) {
            return Err(CoreError::IncompleteBody);
        }
        let _ = tx.send(Msg::End).await;
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer
        .await
        .map_err(CoreError::internal)?
        .map_err(CoreError::internal);
    outcome?;
    let written = written?.ok_or_else(|| CoreError::internal("blob writer stopped early"))?;
    if content_md5.is_some_and(|m| m != written.md5) {
        discard(blobs, vec![written.blob]).await;
        return Err(CoreError::InvalidDigest);
    }
    Ok(written)
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

/// Streams bytes `[start, end)` of the content made of `extents`.
pub(crate) fn read_extents(
    blobs: &Arc<dyn BlobStore>,
    extents: Vec<Extent>,
    start: u64,
    end: u64,
) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let store = blobs.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = pump_extents(&*store, &extents, start, end, &tx) {
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
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let mut ext_start = 0u64;
    for ext in extents {
        let ext_end = ext_start + ext.len;
        if ext_end > start && ext_start < end {
            let from = start.saturating_sub(ext_start);
            let to = end.min(ext_end) - ext_start;
            let id = BlobId::parse(&ext.blob)
                .ok_or_else(|| io::Error::other("malformed blob id in metadata"))?;
            let mut reader = store.open(&id, from)?;
            let mut left = to - from;
            while left > 0 {
                let mut buf = BytesMut::zeroed(READ_CHUNK.min(left as usize));
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("blob {id} is shorter than recorded"),
                    ));
                }
                buf.truncate(n);
                left -= n as u64;
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return Ok(()); // client went away
                }
            }
        }
        ext_start = ext_end;
        if ext_start >= end {
            break;
        }
    }
    Ok(())
}
