//! The records the metadata store keeps. Protocol-neutral: no header names,
//! no XML; times are unix seconds (one-second resolution, as OSS lists them).

use serde::{Deserialize, Serialize};

/// An account (tenant). Everything else is owned by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Numeric account UID, as in Alibaba Cloud ARNs.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created: i64,
}

/// An access key pair. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The public id (`AccessKeyId`).
    pub id: String,
    /// The shared secret used for HMAC signatures.
    pub secret: String,
    /// The account the key acts for.
    pub account_id: String,
    /// Disabled keys authenticate nothing.
    pub enabled: bool,
    /// Creation time.
    pub created: i64,
    /// The RAM user the key belongs to; `None` for the account's root key.
    pub user: Option<String>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("enabled", &self.enabled)
            .field("user", &self.user)
            .finish()
    }
}

/// A bucket and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Globally unique name.
    pub name: String,
    /// Owning account id.
    pub owner: String,
    /// Region id (e.g. `cn-hangzhou`) the bucket lives in and is served from.
    pub region: String,
    /// Canned ACL: `private`, `public-read`, `public-read-write`.
    pub acl: String,
    /// Default storage class.
    pub storage_class: String,
    /// `LRS` or `ZRS`.
    pub redundancy: String,
    /// Creation time.
    pub created: i64,
    /// Default encryption for new objects (none when absent).
    #[serde(default)]
    pub encryption: Option<EncryptionRule>,
    /// Bucket policy document (validated JSON text), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A bucket's default server-side encryption. Stored as configured: KMS key
/// ids are checked when a write uses them, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionRule {
    /// `AES256`, `SM4` or `KMS`.
    pub algorithm: String,
    /// CMK id or alias (KMS only).
    pub kms_key_id: Option<String>,
    /// `SM4` to encrypt KMS objects' data with SM4 (KMS only).
    pub kms_data_encryption: Option<String>,
}

/// How an object (or upload) is encrypted. The data key is stored only
/// wrapped, bound to the object's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `AES256`, `SM4` or `KMS`.
    pub algorithm: String,
    /// Stream format suite id (1 AES-256-GCM, 2 SM4-GCM).
    pub suite: u8,
    /// The master key (service key or CMK) that wrapped the data key.
    pub key_id: String,
    /// Its version.
    pub key_version: u32,
    /// The wrapped data key, hex.
    pub wrapped_key: String,
    /// Stream format version.
    pub format: u8,
}

/// One version of a master key, its material sealed under the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyVersion {
    /// Key id.
    pub key_id: String,
    /// Version number, from 1.
    pub version: u32,
    /// Sealed key material.
    pub sealed: Vec<u8>,
    /// Creation time.
    pub created: i64,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What kind of object a record is, as OSS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// Written by one PutObject or CopyObject.
    Normal,
    /// Assembled by CompleteMultipartUpload.
    Multipart,
    /// Created and grown by AppendObject.
    Appendable,
}

/// A named user metadata entry (`x-oss-meta-<name>`). The value is kept as raw
/// bytes: clients send raw UTF-8 and expect it back byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMeta {
    /// Lower-case name without the `x-oss-meta-` prefix.
    pub name: String,
    /// Raw value bytes.
    pub value: Vec<u8>,
}

/// The descriptive attributes of an object (set at upload, replaced by a
/// metadata-replacing copy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    /// Media type; `application/octet-stream` when the client sent none.
    pub content_type: String,
    /// Stored standard headers, returned on GET/HEAD.
    pub cache_control: Option<String>,
    /// See [`ObjectAttrs::cache_control`].
    pub content_disposition: Option<String>,
    /// See [`ObjectAttrs::cache_control`].
    pub content_encoding: Option<String>,
    /// See [`ObjectAttrs::cache_control`].
    pub content_language: Option<String>,
    /// See [`ObjectAttrs::cache_control`].
    pub expires: Option<String>,
    /// User metadata, sorted by name.
    pub user_meta: Vec<UserMeta>,
    /// Object ACL: `default` (inherit the bucket's) or a canned ACL.
    pub acl: String,
    /// Storage class.
    pub storage_class: String,
}

/// One contiguous run of the object's bytes, stored in one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// Blob id (see `arca-blob`).
    pub blob: String,
    /// Number of object bytes in this extent.
    pub len: u64,
    /// Stream salt, hex (encrypted extents only).
    #[serde(default)]
    pub salt: Option<String>,
    /// Stream part number (multipart part number, append index, or 0).
    #[serde(default)]
    pub part: u32,
}

/// One object version: what it is and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Bucket name.
    pub bucket: String,
    /// Object key (valid UTF-8, 1–1023 bytes).
    pub key: String,
    /// Random id fixed when this version was created; appends keep it.
    pub version_id: String,
    /// Normal, Multipart or Appendable.
    pub kind: ObjectKind,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes (upper-case hex MD5, or `<hex>-<parts>`).
    pub etag: String,
    /// CRC-64/XZ of the content.
    pub crc64: u64,
    /// Last modification time.
    pub last_modified: i64,
    /// Descriptive attributes.
    pub attrs: ObjectAttrs,
    /// The content, in order.
    pub extents: Vec<Extent>,
    /// Server-side encryption, if any.
    #[serde(default)]
    pub encryption: Option<Encryption>,
}

/// An unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Upload id: 32 upper-case hex characters, increasing in time order.
    pub upload_id: String,
    /// Bucket name.
    pub bucket: String,
    /// Target key.
    pub key: String,
    /// Initiation time.
    pub initiated: i64,
    /// Attributes the completed object will have.
    pub attrs: ObjectAttrs,
    /// Version id the completed object will have (its data key is bound to it).
    #[serde(default)]
    pub version_id: String,
    /// Encryption decided at initiation; every part uses it.
    #[serde(default)]
    pub encryption: Option<Encryption>,
    /// `x-oss-forbid-overwrite` given at initiation: Complete must not replace an object.
    #[serde(default)]
    pub forbid_overwrite: bool,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// 1–10000.
    pub number: u32,
    /// Where the part's bytes are.
    pub blob: String,
    /// Size in bytes.
    pub size: u64,
    /// Upper-case hex MD5 of the part, without quotes.
    pub etag: String,
    /// CRC-64/XZ of the part.
    pub crc64: u64,
    /// Upload time.
    pub last_modified: i64,
    /// Stream salt, hex (encrypted uploads only).
    #[serde(default)]
    pub salt: Option<String>,
}

/// Usage numbers of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketStat {
    /// Sum of object sizes.
    pub storage: u64,
    /// Number of objects.
    pub objects: u64,
    /// Number of unfinished multipart uploads.
    pub uploads: u64,
    /// Newest object modification time (0 when empty).
    pub last_modified: i64,
}

/// A customer master key (or a service key such as `alias/acs/oss`) of the
/// built-in KMS. Key material lives in `KeyVersion`s, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmk {
    /// UUID.
    pub key_id: String,
    /// Owning account.
    pub account: String,
    /// Region the key lives in.
    pub region: String,
    /// `Aliyun_AES_256` or `Aliyun_SM4`.
    pub spec: String,
    /// `Aliyun_KMS` or `EXTERNAL`.
    pub origin: String,
    /// Free text.
    pub description: String,
    /// `Enabled`, `Disabled`, `PendingDeletion` or `PendingImport`.
    pub state: String,
    /// `User`, or `Service` for keys cloud services create.
    pub creator_type: String,
    /// Creation time.
    pub created: i64,
    /// When a key pending deletion is destroyed.
    pub delete_at: Option<i64>,
    /// Automatic rotation period, if enabled.
    pub rotation_secs: Option<u64>,
    /// Version UUIDs in order; the last is the primary.
    pub versions: Vec<String>,
    /// Creation time of the newest version.
    pub last_rotation: i64,
    /// Imported material expiry (EXTERNAL keys), if any.
    pub material_expire: Option<i64>,
    /// Fingerprint of imported material, so only the same material can be re-imported.
    pub material_fingerprint: Option<String>,
}

/// One KMS call count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsUsage {
    /// Key the call used ("" for calls without a key).
    pub key_id: String,
    /// API action, e.g. `GenerateDataKey`.
    pub action: String,
    /// Number of calls.
    pub count: u64,
}
