//! Garbage collection of blobs.
//!
//! Two sources: blobs queued by the metadata store when a write or delete
//! stopped referencing them (deleted after [`Limits::garbage_delay`] so reads
//! that started on the old version can finish), and orphans — blobs that no
//! record names, left by a crash between writing a blob and committing its
//! record. Orphans are looked for at start and then periodically, only among
//! blobs older than an hour (younger ones may belong to a write in flight).
//!
//! [`Limits::garbage_delay`]: crate::Limits::garbage_delay

use std::collections::HashSet;
use std::time::Duration;

use arca_blob::BlobId;

use crate::{ObjectService, now};

const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);

pub(crate) fn spawn(svc: ObjectService, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = svc.collect_garbage().await {
                tracing::warn!(error = %e, "garbage collection failed");
            }
            rounds += 1;
            if rounds.is_multiple_of(60)
                && let Err(e) = svc.collect_orphans(ORPHAN_MIN_AGE).await
            {
                tracing::warn!(error = %e, "orphan collection failed");
            }
        }
    })
}

impl ObjectService {
    /// Deletes queued garbage blobs whose delay has passed. Returns how many.
    pub async fn collect_garbage(&self) -> Result<usize, crate::CoreError> {
        let before = now() - self.limits.garbage_delay.as_secs() as i64;
        let mut total = 0;
        loop {
            let batch = self.meta.take_garbage(before, 500).await?;
            if batch.is_empty() {
                return Ok(total);
            }
            let store = self.blobs.clone();
            let ids = batch.clone();
            tokio::task::spawn_blocking(move || {
                for id in ids.iter().filter_map(|s| BlobId::parse(s)) {
                    store.delete(&id)?;
                }
                Ok::<_, std::io::Error>(())
            })
            .await
            .map_err(crate::CoreError::internal)?
            .map_err(crate::CoreError::internal)?;
            self.meta.forget_garbage(&batch).await?;
            total += batch.len();
        }
    }

    /// Deletes blobs at least `min_age` old that no record references, and
    /// partial writes as old. Returns how many blobs went.
    pub async fn collect_orphans(&self, min_age: Duration) -> Result<usize, crate::CoreError> {
        let store = self.blobs.clone();
        let candidates = tokio::task::spawn_blocking(move || {
            store.clean_partial(min_age)?;
            store.list_older_than(min_age)
        })
        .await
        .map_err(crate::CoreError::internal)?
        .map_err(crate::CoreError::internal)?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let referenced: HashSet<String> = self.meta.referenced_blobs().await?.into_iter().collect();
        let orphans: Vec<BlobId> = candidates.into_iter().filter(|id| !referenced.contains(id.as_str())).collect();
        let n = orphans.len();
        if n > 0 {
            tracing::info!(count = n, "collecting orphan blobs");
            crate::stream::discard(&self.blobs, orphans).await;
        }
        Ok(n)
    }
}
