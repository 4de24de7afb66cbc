//! Multipart uploads. Each part is its own blob; Complete makes the object
//! point at the chosen parts' blobs in one transaction (no data is copied),
//! and combines the part CRCs and MD5s without re-reading anything.

use std::sync::atomic::{AtomicU64, Ordering};

use arca_crypto::StreamParams;
use arca_meta::{Bucket, Encryption, Expect, Extent, ObjectAttrs, ObjectKind, ObjectRecord, Part, Upload};

use crate::checksum::{crc64_combine, multipart_etag, upper_hex};
use crate::objects::{CopySource, random_id};
use crate::sse::{self, SseRequest};
use crate::stream::{ByteStream, Sealing, discard, write_blob};
use crate::{Caller, CoreError, OBJECT_ACLS, ObjectService, Op, check_choice, names, now};

/// A part named in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletePart {
    /// Part number.
    pub number: u32,
    /// The ETag the client recorded for it.
    pub etag: String,
}

/// One page of ListParts.
#[derive(Debug, Clone)]
pub struct PartsPage {
    /// The upload.
    pub upload: Upload,
    /// Parts in ascending order.
    pub parts: Vec<Part>,
    /// Whether more follow.
    pub truncated: bool,
}

/// Upload ids increase in time order (clients list one key's uploads sorted
/// by id), and never repeat within a process.
fn new_upload_id() -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut prev = LAST.load(Ordering::SeqCst);
    let t = loop {
        let next = nanos.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break next,
            Err(actual) => prev = actual,
        }
    };
    format!("{t:016X}{}", hex::encode_upper(rand::random::<[u8; 8]>()))
}

fn check_part_number(n: u32) -> Result<(), CoreError> {
    if (1..=10000).contains(&n) {
        Ok(())
    } else {
        Err(CoreError::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive.",
            "partNumber",
            n.to_string(),
        ))
    }
}

impl ObjectService {
    async fn upload_for(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        action: &'static str,
    ) -> Result<(Bucket, Upload), CoreError> {
        names::check_key(key).map_err(CoreError::InvalidObjectName)?;
        let b = self.bucket(caller, region, bucket, Op::object(action, key)).await?;
        match self.meta.get_upload(upload_id).await? {
            Some(u) if u.bucket == bucket && u.key == key => Ok((b, u)),
            _ => Err(CoreError::NoSuchUpload),
        }
    }

    /// Starts a multipart upload. The encryption (request, else bucket
    /// default) and the data key are decided here; every part uses them.
    #[allow(clippy::too_many_arguments)]
    pub async fn initiate_upload(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        sse: &SseRequest,
        forbid_overwrite: bool,
    ) -> Result<Upload, CoreError> {
        names::check_key(key).map_err(CoreError::InvalidObjectName)?;
        check_choice(&attrs.acl, &OBJECT_ACLS, "x-oss-object-acl")?;
        let b = self.bucket(caller, region, bucket, Op::object("oss:PutObject", key)).await?;
        self.authorize_acl_header(caller, &b, key, &attrs.acl)?;
        let mut attrs = attrs;
        crate::objects::default_storage_class(&mut attrs, &b);
        if forbid_overwrite && self.meta.get_object(bucket, key).await?.is_some() {
            return Err(CoreError::FileAlreadyExists);
        }
        let version_id = random_id();
        let encryption = match sse::resolve(sse, &b)? {
            None => None,
            Some(plan) => Some(self.new_data_key(caller, &plan, &b, key, &version_id).await?.0),
        };
        let upload = Upload {
            upload_id: new_upload_id(),
            bucket: bucket.into(),
            key: key.into(),
            initiated: now(),
            attrs,
            version_id,
            encryption,
            forbid_overwrite,
        };
        self.meta.create_upload(upload.clone()).await?;
        Ok(upload)
    }

    /// Stores one part (replacing an earlier part with the same number),
    /// encrypted under the upload's data key with its own stream. Returns the
    /// part and the upload's encryption.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        content_md5: Option<[u8; 16]>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<(Part, Option<Encryption>), CoreError> {
        check_part_number(number)?;
        let (b, upload) = self.upload_for(caller, region, bucket, key, upload_id, "oss:PutObject").await?;
        let sealing = self
            .decryption(caller, upload.encryption.as_ref(), &b, key, &upload.version_id)
            .await?
            .map(|(key, suite)| Sealing { key, params: StreamParams::random(suite, number) });
        let salt = sealing.as_ref().map(|s| hex::encode(s.params.salt));
        let w = write_blob(&self.blobs, body, content_length, self.limits.max_part_size, content_md5, sealing).await?;
        let part = Part {
            number,
            blob: w.blob.to_string(),
            size: w.len,
            etag: upper_hex(&w.md5),
            crc64: w.crc64,
            last_modified: now(),
            salt,
        };
        if let Err(e) = self.meta.put_part(upload_id, part.clone()).await {
            discard(&self.blobs, vec![w.blob]).await;
            return Err(e.into());
        }
        Ok((part, upload.encryption))
    }

    /// Stores a part copied from (a byte range of) an existing object: the
    /// source is decrypted and the part encrypted under the upload's key.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        source: &CopySource,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<(Part, Option<Encryption>), CoreError> {
        check_part_number(number)?;
        let (b, upload) = self.upload_for(caller, region, bucket, key, upload_id, "oss:PutObject").await?;
        let (src_bucket, src) = self.locate_object(caller, region, &source.bucket, &source.key).await?;
        // Every KMS permission is checked before any key is used.
        self.authorize_kms_read(caller, &b, upload.encryption.as_ref()).await?;
        self.authorize_kms_read(caller, &src_bucket, src.encryption.as_ref()).await?;
        source.conditions.check(&src, ["x-oss-copy-source-if-match", "x-oss-copy-source-if-unmodified-since"])?;
        let (start, end) = match range {
            None => (0, src.size),
            Some((s, e)) => {
                let end = e.map_or(src.size, |e| e.saturating_add(1).min(src.size));
                if s >= src.size || s >= end {
                    return Err(CoreError::invalid_argument(
                        "The specified copy source range is not valid.",
                        "x-oss-copy-source-range",
                        format!("{s}"),
                    ));
                }
                (s, end)
            }
        };
        let body = self.read_object(caller, &src_bucket, &src, start, end).await?;
        self.upload_part(caller, region, bucket, key, upload_id, number, None, Some(end - start), body).await
    }

    /// Lists parts with numbers above `marker`.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_parts(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<PartsPage, CoreError> {
        let (_, upload) = self.upload_for(caller, region, bucket, key, upload_id, "oss:ListParts").await?;
        let mut parts = self.meta.list_parts(upload_id, marker, max + 1).await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok(PartsPage { upload, parts, truncated })
    }

    /// Ends an upload and discards its parts.
    pub async fn abort_upload(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), CoreError> {
        self.upload_for(caller, region, bucket, key, upload_id, "oss:AbortMultipartUpload").await?;
        Ok(self.meta.abort_upload(upload_id).await?)
    }

    /// Assembles the object from the listed parts (or, with `None`, from every
    /// uploaded part in order). `acl` overrides the ACL given at initiation.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_upload(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: Option<Vec<CompletePart>>,
        acl: Option<String>,
        forbid_overwrite: bool,
    ) -> Result<ObjectRecord, CoreError> {
        if let Some(a) = &acl {
            check_choice(a, &OBJECT_ACLS, "x-oss-object-acl")?;
        }
        let (b, upload) = self.upload_for(caller, region, bucket, key, upload_id, "oss:PutObject").await?;
        if let Some(a) = &acl {
            self.authorize_acl_header(caller, &b, key, a)?;
        }
        let uploaded = self.meta.list_parts(upload_id, 0, 10001).await?;
        let chosen: Vec<Part> = match listed {
            None => uploaded,
            Some(listed) => {
                if listed.is_empty() {
                    return Err(CoreError::InvalidPart);
                }
                if listed.windows(2).any(|w| w[0].number >= w[1].number) {
                    return Err(CoreError::InvalidPartOrder);
                }
                let mut chosen = Vec::with_capacity(listed.len());
                for lp in &listed {
                    let part = uploaded.iter().find(|p| p.number == lp.number).ok_or(CoreError::InvalidPart)?;
                    let etag = lp.etag.trim().trim_matches('"');
                    if !etag.eq_ignore_ascii_case(&part.etag) {
                        return Err(CoreError::InvalidPart);
                    }
                    chosen.push(part.clone());
                }
                chosen
            }
        };
        if chosen.is_empty() {
            return Err(CoreError::InvalidPart);
        }
        if chosen[..chosen.len() - 1].iter().any(|p| p.size < self.limits.min_part_size) {
            return Err(CoreError::EntityTooSmall);
        }
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        if size > self.limits.max_object_size {
            return Err(CoreError::EntityTooLarge);
        }
        let crc64 = chosen.iter().fold(0u64, |acc, p| crc64_combine(acc, p.crc64, p.size));
        let md5s: Vec<[u8; 16]> = chosen
            .iter()
            .map(|p| {
                let mut m = [0u8; 16];
                hex::decode_to_slice(&p.etag, &mut m).map(|_| m).map_err(CoreError::internal)
            })
            .collect::<Result<_, _>>()?;
        let mut attrs = upload.attrs;
        if let Some(a) = acl {
            attrs.acl = a;
        }
        let record = ObjectRecord {
            bucket: bucket.into(),
            key: key.into(),
            version_id: upload.version_id,
            kind: ObjectKind::Multipart,
            size,
            etag: multipart_etag(&md5s),
            crc64,
            last_modified: now(),
            attrs,
            extents: chosen
                .iter()
                .map(|p| Extent { blob: p.blob.clone(), len: p.size, salt: p.salt.clone(), part: p.number })
                .collect(),
            encryption: upload.encryption,
        };
        let expect = if forbid_overwrite || upload.forbid_overwrite { Expect::Absent } else { Expect::Any };
        match self.meta.complete_upload(upload_id, record.clone(), expect).await {
            Ok(()) => Ok(record),
            Err(arca_meta::MetaError::Conflict(_)) => Err(CoreError::FileAlreadyExists),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::new_upload_id;

    #[test]
    fn upload_ids_increase() {
        let ids: Vec<String> = (0..1000).map(|_| new_upload_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ids.iter()
                .all(|i| { i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()) })
        );
    }
}
