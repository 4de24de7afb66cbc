//! Single-object operations: put, head/read, delete, copy, append, ACL.

use std::sync::Arc;

use arca_blob::BlobId;
use arca_crypto::{DataKey, StreamParams, Suite};
use arca_meta::{Bucket, Encryption, Expect, Extent, MetaError, ObjectAttrs, ObjectKind, ObjectRecord};

use crate::checksum::{crc64_combine, upper_hex};
use crate::sse::{self, SseRequest};
use crate::stream::{ByteStream, Decryption, Sealing, Written, discard, read_extents, write_blob};
use crate::{Caller, CoreError, OBJECT_ACLS, ObjectService, Op, check_choice, names, now};

/// PutObject arguments.
pub struct PutObject {
    /// Bucket name.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Attributes of the new object.
    pub attrs: ObjectAttrs,
    /// Expected MD5 of the body (`Content-MD5`).
    pub content_md5: Option<[u8; 16]>,
    /// Declared body length, if any (chunked bodies have none).
    pub content_length: Option<u64>,
    /// Refuse to replace an existing object.
    pub forbid_overwrite: bool,
    /// Server-side encryption asked for.
    pub sse: SseRequest,
    /// The body.
    pub body: ByteStream,
}

/// AppendObject arguments.
pub struct AppendObject {
    /// Bucket name.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Where this append must start: the object's current length.
    pub position: u64,
    /// Attributes, used only when the append creates the object.
    pub attrs: ObjectAttrs,
    /// Expected MD5 of this body.
    pub content_md5: Option<[u8; 16]>,
    /// Declared body length.
    pub content_length: Option<u64>,
    /// Encryption, used only when the append creates the object.
    pub sse: SseRequest,
    /// The bytes to append.
    pub body: ByteStream,
}

/// Preconditions on an object's current state (GET/HEAD, or a copy source).
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Must match the ETag (`*` matches any).
    pub if_match: Option<String>,
    /// Must not match the ETag.
    pub if_none_match: Option<String>,
    /// Must have changed after this time.
    pub if_modified_since: Option<i64>,
    /// Must not have changed after this time.
    pub if_unmodified_since: Option<i64>,
}

impl Conditions {
    /// Evaluates the conditions in OSS's order. `names` are the header names
    /// to report for the failing positive conditions (If-Match, If-Unmodified-Since).
    pub fn check(&self, rec: &ObjectRecord, names: [&'static str; 2]) -> Result<(), CoreError> {
        if let Some(m) = &self.if_match
            && !etag_matches(m, &rec.etag)
        {
            return Err(CoreError::PreconditionFailed { condition: names[0] });
        }
        if let Some(t) = self.if_unmodified_since
            && rec.last_modified > t
        {
            return Err(CoreError::PreconditionFailed { condition: names[1] });
        }
        if let Some(m) = &self.if_none_match
            && etag_matches(m, &rec.etag)
        {
            return Err(CoreError::NotModified);
        }
        if let Some(t) = self.if_modified_since
            && rec.last_modified <= t
        {
            return Err(CoreError::NotModified);
        }
        Ok(())
    }
}

/// Compares a client's ETag list with ours: quotes and `W/` stripped, case-insensitive.
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').any(|candidate| {
        let c = candidate.trim();
        let c = c.strip_prefix("W/").unwrap_or(c).trim_matches('"');
        c == "*" || c.eq_ignore_ascii_case(etag)
    })
}

/// Where a copy reads from.
#[derive(Debug, Clone)]
pub struct CopySource {
    /// Source bucket.
    pub bucket: String,
    /// Source key.
    pub key: String,
    /// Conditions on the source (`x-oss-copy-source-if-*`).
    pub conditions: Conditions,
}

/// CopyObject arguments.
pub struct CopyObject {
    /// The source.
    pub source: CopySource,
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// New attributes (`REPLACE`), or `None` to keep the source's (`COPY`);
    /// the ACL and storage class given here apply either way.
    pub replace_attrs: Option<ObjectAttrs>,
    /// ACL for the destination (`x-oss-object-acl`), if given.
    pub acl: Option<String>,
    /// Refuse to replace an existing destination.
    pub forbid_overwrite: bool,
    /// Encryption of the destination (never inherited from the source).
    pub sse: SseRequest,
}

pub(crate) fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn check_key(key: &str) -> Result<(), CoreError> {
    names::check_key(key).map_err(CoreError::InvalidObjectName)
}

impl ObjectService {
    /// Stores an object, replacing any current one (unless forbidden).
    pub async fn put_object(&self, caller: &Caller, region: &str, req: PutObject) -> Result<ObjectRecord, CoreError> {
        check_key(&req.key)?;
        check_choice(&req.attrs.acl, &OBJECT_ACLS, "x-oss-object-acl")?;
        let bucket = self.bucket(caller, region, &req.bucket, Op::object("oss:PutObject", &req.key)).await?;
        self.authorize_acl_header(caller, &bucket, &req.key, &req.attrs.acl)?;
        let mut req = req;
        default_storage_class(&mut req.attrs, &bucket);
        if req.forbid_overwrite && self.meta.get_object(&req.bucket, &req.key).await?.is_some() {
            return Err(CoreError::FileAlreadyExists);
        }
        let version_id = random_id();
        let (encryption, sealing) = self.seal_new(caller, &req.sse, &bucket, &req.key, &version_id, 0).await?;
        let salt = sealing.as_ref().map(|s| hex::encode(s.params.salt));
        let w = write_blob(
            &self.blobs,
            req.body,
            req.content_length,
            self.limits.max_object_size,
            req.content_md5,
            sealing,
        )
        .await?;
        let record = ObjectRecord {
            bucket: req.bucket,
            key: req.key,
            version_id,
            kind: ObjectKind::Normal,
            size: w.len,
            etag: upper_hex(&w.md5),
            crc64: w.crc64,
            last_modified: now(),
            attrs: req.attrs,
            extents: vec![Extent { blob: w.blob.to_string(), len: w.len, salt, part: 0 }],
            encryption,
        };
        let expect = if req.forbid_overwrite { Expect::Absent } else { Expect::Any };
        self.commit(record, expect, vec![w.blob]).await
    }

    /// The encryption of a new object version and the sealing of its first
    /// stream (`part` is the stream's part number).
    async fn seal_new(
        &self,
        caller: &Caller,
        req: &SseRequest,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
        part: u32,
    ) -> Result<(Option<Encryption>, Option<Sealing>), CoreError> {
        match sse::resolve(req, bucket)? {
            None => Ok((None, None)),
            Some(plan) => {
                let (enc, data_key) = self.new_data_key(caller, &plan, bucket, key, version_id).await?;
                Ok((Some(enc), Some(Sealing { key: data_key, params: StreamParams::random(plan.suite, part) })))
            }
        }
    }

    /// The data key and suite of an existing encrypted version (`None` if plaintext).
    pub(crate) async fn decryption(
        &self,
        caller: &Caller,
        enc: Option<&Encryption>,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
    ) -> Result<Option<(Arc<DataKey>, Suite)>, CoreError> {
        let Some(enc) = enc else { return Ok(None) };
        let suite =
            Suite::from_id(enc.suite).ok_or_else(|| CoreError::internal(format!("unknown suite {}", enc.suite)))?;
        Ok(Some((self.data_key(caller, enc, bucket, key, version_id).await?, suite)))
    }

    /// Writes `record`; on failure discards `new_blobs` and maps conflicts.
    async fn commit(
        &self,
        record: ObjectRecord,
        expect: Expect,
        new_blobs: Vec<BlobId>,
    ) -> Result<ObjectRecord, CoreError> {
        match self.meta.put_object(record.clone(), expect.clone()).await {
            Ok(()) => Ok(record),
            Err(e) => {
                discard(&self.blobs, new_blobs).await;
                Err(match (e, expect) {
                    (MetaError::Conflict(_), Expect::Absent) => CoreError::FileAlreadyExists,
                    (MetaError::Conflict(Some(cur)), Expect::Current { .. }) => {
                        CoreError::PositionNotEqualToLength { next: cur.size }
                    }
                    (MetaError::Conflict(None), Expect::Current { .. }) => {
                        CoreError::PositionNotEqualToLength { next: 0 }
                    }
                    (e, _) => e.into(),
                })
            }
        }
    }

    /// Looks up an object for reading (GET, HEAD, copy source).
    pub async fn head_object(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectRecord, CoreError> {
        Ok(self.locate_object(caller, region, bucket, key).await?.1)
    }

    /// [`head_object`](Self::head_object), with the bucket record that
    /// [`read_object`](Self::read_object) needs (so a read looks it up once).
    pub async fn locate_object(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(Bucket, ObjectRecord), CoreError> {
        check_key(key)?;
        let b = self.located_bucket(region, bucket).await?;
        let rec = self.meta.get_object(bucket, key).await?;
        self.authorize(caller, &b, &Op::object("oss:GetObject", key), rec.as_ref().map(|r| r.attrs.acl.as_str()))?;
        match rec {
            Some(rec)
                if caller.account_id().is_none()
                    && rec.encryption.as_ref().is_some_and(|e| e.algorithm == sse::KMS) =>
            {
                self.audit_deny(caller, "kms:Decrypt", &crate::oss_arn(&b, Some(key)), "anonymous");
                Err(CoreError::AccessDenied(crate::KMS_FORBIDDEN.into()))
            }
            Some(rec) => Ok((b, rec)),
            None => Err(CoreError::NoSuchKey),
        }
    }

    /// Streams plaintext bytes `[start, end)` of an object found by
    /// [`ObjectService::head_object`], decrypting if it is encrypted. Only the
    /// segments covering the range are read; a segment that fails
    /// authentication ends the stream with an error (and is logged).
    pub async fn read_object(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        record: &ObjectRecord,
        start: u64,
        end: u64,
    ) -> Result<ByteStream, CoreError> {
        if bucket.name != record.bucket {
            return Err(CoreError::internal("read_object: the record is not in this bucket"));
        }
        let decryption = match &record.encryption {
            None => None,
            Some(enc) => self
                .decryption(caller, Some(enc), bucket, &record.key, &record.version_id)
                .await?
                .map(|(key, suite)| Decryption { key, suite }),
        };
        let label = format!("{}/{}", record.bucket, record.key);
        Ok(read_extents(&self.blobs, record.extents.clone(), start, end.min(record.size), decryption, label))
    }

    /// Deletes an object; deleting a missing key succeeds.
    pub async fn delete_object(&self, caller: &Caller, region: &str, bucket: &str, key: &str) -> Result<(), CoreError> {
        check_key(key)?;
        self.bucket(caller, region, bucket, Op::object("oss:DeleteObject", key)).await?;
        self.meta.delete_object(bucket, key).await?;
        Ok(())
    }

    /// Deletes several keys; each result says whether that key was handled.
    pub async fn delete_objects(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<Result<(), CoreError>>, CoreError> {
        // Every key is authorized before any is deleted: a refusal changes nothing.
        let b = self.located_bucket(region, bucket).await?;
        for key in keys {
            self.authorize(caller, &b, &Op::object("oss:DeleteObject", key), None)?;
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let r = match check_key(key) {
                Ok(()) => self.meta.delete_object(bucket, key).await.map(|_| ()).map_err(CoreError::from),
                Err(e) => Err(e),
            };
            out.push(r);
        }
        Ok(out)
    }

    /// An object and its bucket, for GetObjectAcl.
    pub async fn get_object_acl(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(crate::BucketInfo, ObjectRecord), CoreError> {
        check_key(key)?;
        let b = self.bucket(caller, region, bucket, Op::object("oss:GetObjectAcl", key)).await?;
        let rec = self.meta.get_object(bucket, key).await?.ok_or(CoreError::NoSuchKey)?;
        Ok((b, rec))
    }

    /// Sets an object's ACL.
    pub async fn put_object_acl(
        &self,
        caller: &Caller,
        region: &str,
        bucket: &str,
        key: &str,
        acl: &str,
    ) -> Result<(), CoreError> {
        check_key(key)?;
        check_choice(acl, &OBJECT_ACLS, "x-oss-object-acl")?;
        self.bucket(caller, region, bucket, Op::object("oss:PutObjectAcl", key)).await?;
        loop {
            let mut rec = self.meta.get_object(bucket, key).await?.ok_or(CoreError::NoSuchKey)?;
            let expect = Expect::Current { version_id: rec.version_id.clone(), size: rec.size };
            rec.attrs.acl = acl.to_owned();
            match self.meta.put_object(rec, expect).await {
                Err(MetaError::Conflict(_)) => continue, // raced with a write: apply to the new version
                r => return r.map_err(CoreError::from),
            }
        }
    }

    /// Copies an object: decrypts the source and writes a new version under
    /// the destination's encryption (never the source's) with a new data key.
    /// A copy onto itself that keeps the encryption replaces metadata only.
    pub async fn copy_object(&self, caller: &Caller, region: &str, req: CopyObject) -> Result<ObjectRecord, CoreError> {
        check_key(&req.key)?;
        if let Some(acl) = &req.acl {
            check_choice(acl, &OBJECT_ACLS, "x-oss-object-acl")?;
        }
        let (src_bucket, src) = self.locate_object(caller, region, &req.source.bucket, &req.source.key).await?;
        req.source.conditions.check(&src, ["x-oss-copy-source-if-match", "x-oss-copy-source-if-unmodified-since"])?;
        let dest = self.bucket(caller, region, &req.bucket, Op::object("oss:PutObject", &req.key)).await?;
        if let Some(acl) = req.acl.as_deref() {
            self.authorize_acl_header(caller, &dest, &req.key, acl)?;
        }
        // Every KMS permission is checked before any key is used: the source's first.
        self.authorize_kms_read(caller, &src_bucket, src.encryption.as_ref()).await?;
        let mut attrs = req.replace_attrs.unwrap_or_else(|| src.attrs.clone());
        default_storage_class(&mut attrs, &dest);
        attrs.acl = req.acl.unwrap_or_else(|| if attrs.acl.is_empty() { "default".into() } else { attrs.acl.clone() });
        let plan = sse::resolve(&req.sse, &dest)?;
        let same_key = req.source.bucket == req.bucket && req.source.key == req.key;
        let same_encryption = match (&plan, &src.encryption) {
            (None, None) => true,
            // A KMS self-copy may name another CMK: always re-encrypt under the one asked for.
            (Some(p), Some(e)) => p.algorithm == e.algorithm && p.suite.id() == e.suite && p.algorithm != sse::KMS,
            _ => false,
        };
        if same_key && same_encryption {
            if req.forbid_overwrite {
                return Err(CoreError::FileAlreadyExists);
            }
            let record = ObjectRecord { attrs, last_modified: now(), ..src.clone() };
            let expect = Expect::Current { version_id: src.version_id, size: src.size };
            return self.commit(record, expect, Vec::new()).await.map_err(|e| match e {
                CoreError::PositionNotEqualToLength { .. } => CoreError::internal("object changed during copy"),
                e => e,
            });
        }
        if req.forbid_overwrite && self.meta.get_object(&req.bucket, &req.key).await?.is_some() {
            return Err(CoreError::FileAlreadyExists);
        }
        let version_id = random_id();
        let (encryption, sealing) = self.seal_new(caller, &req.sse, &dest, &req.key, &version_id, 0).await?;
        let salt = sealing.as_ref().map(|s| hex::encode(s.params.salt));
        let body = self.read_object(caller, &src_bucket, &src, 0, src.size).await?;
        let w = write_blob(&self.blobs, body, Some(src.size), self.limits.max_object_size, None, sealing).await?;
        // A multipart or appendable source gets the MD5 ETag of its content.
        let etag = if src.kind == ObjectKind::Normal { src.etag.clone() } else { upper_hex(&w.md5) };
        let record = ObjectRecord {
            bucket: req.bucket,
            key: req.key,
            version_id,
            kind: ObjectKind::Normal,
            size: w.len,
            etag,
            crc64: w.crc64,
            last_modified: now(),
            attrs,
            extents: vec![Extent { blob: w.blob.to_string(), len: w.len, salt, part: 0 }],
            encryption,
        };
        let expect = if req.forbid_overwrite { Expect::Absent } else { Expect::Any };
        self.commit(record, expect, vec![w.blob]).await
    }

    /// Appends to an appendable object (creating it at position 0). The
    /// first append fixes the encryption; later appends reuse the object's
    /// data key with a new stream per extent and ignore their SSE headers.
    pub async fn append_object(
        &self,
        caller: &Caller,
        region: &str,
        req: AppendObject,
    ) -> Result<ObjectRecord, CoreError> {
        check_key(&req.key)?;
        check_choice(&req.attrs.acl, &OBJECT_ACLS, "x-oss-object-acl")?;
        let bucket = self.bucket(caller, region, &req.bucket, Op::object("oss:PutObject", &req.key)).await?;
        self.authorize_acl_header(caller, &bucket, &req.key, &req.attrs.acl)?;
        let mut req = req;
        default_storage_class(&mut req.attrs, &bucket);
        let current = self.meta.get_object(&req.bucket, &req.key).await?;
        check_append_position(current.as_ref(), req.position)?;
        let room = self.limits.max_object_size.saturating_sub(req.position);
        let (version_id, encryption, sealing) = match &current {
            None => {
                if req.sse.algorithm.as_deref() == Some(sse::KMS) && req.sse.key_id.is_some() {
                    return Err(CoreError::invalid_argument(
                        "A KMS key id cannot be specified for appendable objects.",
                        "x-oss-server-side-encryption-key-id",
                        req.sse.key_id.clone().unwrap_or_default(),
                    ));
                }
                let version_id = random_id();
                let (enc, sealing) = self.seal_new(caller, &req.sse, &bucket, &req.key, &version_id, 0).await?;
                (version_id, enc, sealing)
            }
            Some(cur) => {
                let index = u32::try_from(cur.extents.len()).map_err(|_| CoreError::EntityTooLarge)?;
                let sealing = self
                    .decryption(caller, cur.encryption.as_ref(), &bucket, &cur.key, &cur.version_id)
                    .await?
                    .map(|(key, suite)| Sealing { key, params: StreamParams::random(suite, index) });
                (cur.version_id.clone(), cur.encryption.clone(), sealing)
            }
        };
        let salt = sealing.as_ref().map(|s| hex::encode(s.params.salt));
        let part = sealing.as_ref().map_or(0, |s| s.params.part_number);
        let w = write_blob(&self.blobs, req.body, req.content_length, room, req.content_md5, sealing).await?;
        let Written { blob, len, crc64, .. } = w;
        let extent = Extent { blob: blob.to_string(), len, salt, part };
        let (mut record, expect) = match current {
            None => (
                ObjectRecord {
                    bucket: req.bucket,
                    key: req.key,
                    version_id,
                    kind: ObjectKind::Appendable,
                    size: len,
                    etag: String::new(),
                    crc64,
                    last_modified: now(),
                    attrs: req.attrs,
                    extents: vec![extent],
                    encryption,
                },
                Expect::Absent,
            ),
            Some(cur) => {
                let expect = Expect::Current { version_id: cur.version_id.clone(), size: cur.size };
                let mut extents = cur.extents;
                extents.push(extent);
                let rec = ObjectRecord {
                    size: cur.size + len,
                    crc64: crc64_combine(cur.crc64, crc64, len),
                    last_modified: now(),
                    extents,
                    ..cur
                };
                (rec, expect)
            }
        };
        record.etag = append_etag(&record);
        let (bucket_name, key) = (record.bucket.clone(), record.key.clone());
        match self.commit(record, expect, vec![blob]).await {
            Err(CoreError::FileAlreadyExists | CoreError::PositionNotEqualToLength { .. }) => {
                // Another writer got there first: report the state it left.
                let cur = self.meta.get_object(&bucket_name, &key).await?;
                let next = cur.as_ref().map_or(0, |c| c.size);
                Err(check_append_position(cur.as_ref(), req.position)
                    .err()
                    .unwrap_or(CoreError::PositionNotEqualToLength { next }))
            }
            r => r,
        }
    }
}

/// Objects without an explicit storage class take the bucket's.
pub(crate) fn default_storage_class(attrs: &mut ObjectAttrs, bucket: &arca_meta::Bucket) {
    if attrs.storage_class.is_empty() {
        attrs.storage_class = bucket.storage_class.clone();
    }
}

/// Appendable objects get an ETag derived from size and CRC (their bytes are
/// never hashed as a whole); it changes with every append.
fn append_etag(rec: &ObjectRecord) -> String {
    upper_hex(&[rec.crc64.to_be_bytes(), rec.size.to_be_bytes()].concat())
}

fn check_append_position(current: Option<&ObjectRecord>, position: u64) -> Result<(), CoreError> {
    match current {
        None if position == 0 => Ok(()),
        None => Err(CoreError::PositionNotEqualToLength { next: 0 }),
        Some(c) if c.kind != ObjectKind::Appendable => Err(CoreError::ObjectNotAppendable),
        Some(c) if c.size != position => Err(CoreError::PositionNotEqualToLength { next: c.size }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_comparison_is_lenient() {
        assert!(etag_matches("\"ABC\"", "ABC"));
        assert!(etag_matches("abc", "ABC"));
        assert!(etag_matches("W/\"abc\"", "ABC"));
        assert!(etag_matches("\"x\", \"abc\"", "ABC"));
        assert!(etag_matches("*", "ABC"));
        assert!(!etag_matches("\"abd\"", "ABC"));
    }
}
