//! Arca's object service, free of any wire protocol.
//!
//! A dialect (OSS today, S3 later) authenticates the caller, parses the
//! request into the calls below, and renders their results and
//! [`CoreError`]s. The core owns the rules every dialect shares: naming,
//! region placement, access (bucket owner and canned ACLs until RAM lands),
//! preconditions, multipart and append semantics, and the single streaming
//! pass that stores and checksums object bytes.

#![warn(missing_docs)]

pub mod checksum;
mod error;
mod gc;
mod list;
mod multipart;
pub mod names;
mod objects;
pub mod sse;
mod stream;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arca_blob::BlobStore;
use arca_kms::{KeyManager, Kms};
use arca_meta::{Bucket, MetaStore};

pub use arca_meta::{
    AccessKey, Account, BucketStat, Encryption, EncryptionRule, ObjectAttrs, ObjectKind, ObjectRecord, Part, Upload,
    UserMeta,
};
pub use error::CoreError;
pub use list::{ListParams, Listing, UploadListParams, UploadListing};
pub use multipart::{CompletePart, PartsPage};
pub use objects::{AppendObject, Conditions, CopyObject, CopySource, PutObject};
pub use sse::SseRequest;
pub use stream::ByteStream;

/// The bucket type, re-exported for dialects.
pub type BucketInfo = Bucket;

/// Who is calling: an account, or nobody (anonymous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account the request acts for; `None` for anonymous requests.
    pub account: Option<String>,
}

impl Caller {
    /// An anonymous caller.
    pub fn anonymous() -> Self {
        Caller { account: None }
    }

    /// A caller acting for `account`.
    pub fn account(account: impl Into<String>) -> Self {
        Caller { account: Some(account.into()) }
    }
}

/// What a request wants to do, for the access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read object data or listings.
    Read,
    /// Write or delete objects.
    Write,
    /// Manage the bucket itself (ACL, delete, info).
    Owner,
}

/// Limits, with OSS's values as defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest object written in one request (PutObject, CopyObject, AppendObject total).
    pub max_object_size: u64,
    /// Largest part.
    pub max_part_size: u64,
    /// Smallest part except the last.
    pub min_part_size: u64,
    /// Buckets per account and region.
    pub max_buckets: usize,
    /// How long a blob stays after its last reference goes, so reads that
    /// already looked up the old version can finish.
    pub garbage_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_size: 5 * 1024 * 1024 * 1024,
            max_part_size: 5 * 1024 * 1024 * 1024,
            min_part_size: 100 * 1024,
            max_buckets: 100,
            garbage_delay: Duration::from_secs(300),
        }
    }
}

/// A new bucket's settings.
#[derive(Debug, Clone)]
pub struct CreateBucket {
    /// Name.
    pub name: String,
    /// Region id.
    pub region: String,
    /// Canned ACL.
    pub acl: String,
    /// Storage class.
    pub storage_class: String,
    /// `LRS` or `ZRS`.
    pub redundancy: String,
    /// Default encryption of new objects.
    pub encryption: Option<EncryptionRule>,
}

/// The object service.
#[derive(Clone)]
pub struct ObjectService {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    keys: Arc<KeyManager>,
    kms: Arc<Kms>,
    limits: Limits,
    /// Serializes read-modify-write of bucket settings (ACL, encryption).
    bucket_settings: Arc<tokio::sync::Mutex<()>>,
}

/// Current time in unix seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Canned ACL values of buckets.
pub const BUCKET_ACLS: [&str; 3] = ["private", "public-read", "public-read-write"];
/// Canned ACL values of objects (`default` inherits the bucket's).
pub const OBJECT_ACLS: [&str; 4] = ["default", "private", "public-read", "public-read-write"];
/// Storage classes.
pub const STORAGE_CLASSES: [&str; 5] = ["Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"];

impl ObjectService {
    /// Builds the service over a metadata store and a blob store.
    pub fn new(
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        keys: Arc<KeyManager>,
        kms: Arc<Kms>,
        limits: Limits,
    ) -> Self {
        ObjectService { meta, blobs, keys, kms, limits, bucket_settings: Arc::default() }
    }

    /// The metadata store (for account and key administration).
    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// Looks up an access key (dialects verify signatures with its secret).
    pub async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, CoreError> {
        Ok(self.meta.get_access_key(id).await?)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads a bucket for a request served in `region` and checks access.
    ///
    /// # Errors
    /// `NoSuchBucket`; `WrongRegion` when the bucket lives elsewhere;
    /// `AccessDenied` when neither ownership nor the bucket ACL allows `access`.
    pub async fn bucket(&self, caller: &Caller, region: &str, name: &str, access: Access) -> Result<Bucket, CoreError> {
        let bucket = self.meta.get_bucket(name).await?.ok_or(CoreError::NoSuchBucket)?;
        if bucket.region != region {
            return Err(CoreError::WrongRegion { region: bucket.region });
        }
        if !acl_allows(caller, &bucket, None, access) {
            return Err(denied());
        }
        Ok(bucket)
    }

    /// Creates a bucket owned by the caller in `spec.region`. Re-creating
    /// one's own bucket with the same region succeeds without change.
    pub async fn create_bucket(&self, caller: &Caller, spec: CreateBucket) -> Result<Bucket, CoreError> {
        let owner = caller.account.clone().ok_or_else(denied)?;
        if !names::valid_bucket_name(&spec.name) {
            return Err(CoreError::InvalidBucketName);
        }
        check_choice(&spec.acl, &BUCKET_ACLS, "x-oss-acl")?;
        check_choice(&spec.storage_class, &STORAGE_CLASSES, "StorageClass")?;
        check_choice(&spec.redundancy, &["LRS", "ZRS"], "DataRedundancyType")?;
        let encryption = spec.encryption.as_ref().map(sse::validate_rule).transpose()?;
        let owned = self.meta.list_buckets(&owner, "", "", usize::MAX).await?;
        if owned.iter().filter(|b| b.region == spec.region).count() >= self.limits.max_buckets {
            return Err(CoreError::TooManyBuckets);
        }
        let bucket = Bucket {
            name: spec.name,
            owner,
            region: spec.region,
            acl: spec.acl,
            storage_class: spec.storage_class,
            redundancy: spec.redundancy,
            created: now(),
            encryption,
        };
        match self.meta.create_bucket(bucket.clone()).await {
            Ok(()) => Ok(bucket),
            Err(arca_meta::MetaError::BucketExists(existing))
                if existing.owner == bucket.owner
                    && existing.region == bucket.region
                    && existing.storage_class == bucket.storage_class =>
            {
                Ok(*existing)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's buckets (all regions), sorted by name, after `marker`.
    /// Returns the page and whether more follow.
    pub async fn list_buckets(
        &self,
        caller: &Caller,
        prefix: &str,
        marker: &str,
        max: usize,
    ) -> Result<(Vec<Bucket>, bool), CoreError> {
        let owner = caller.account.clone().ok_or_else(denied)?;
        let mut page = self.meta.list_buckets(&owner, prefix, marker, max + 1).await?;
        let truncated = page.len() > max;
        page.truncate(max);
        Ok((page, truncated))
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, caller: &Caller, region: &str, name: &str) -> Result<(), CoreError> {
        self.bucket(caller, region, name, Access::Owner).await?;
        Ok(self.meta.delete_bucket(name).await?)
    }

    /// Sets the bucket's canned ACL.
    pub async fn put_bucket_acl(&self, caller: &Caller, region: &str, name: &str, acl: &str) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Access::Owner).await?;
        check_choice(acl, &BUCKET_ACLS, "x-oss-acl")?;
        bucket.acl = acl.to_owned();
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Sets the bucket's default encryption (replacing the whole rule).
    /// Existing objects keep theirs.
    pub async fn put_bucket_encryption(
        &self,
        caller: &Caller,
        region: &str,
        name: &str,
        rule: EncryptionRule,
    ) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Access::Owner).await?;
        bucket.encryption = Some(sse::validate_rule(&rule)?);
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Removes the bucket's default encryption (no error when there is none).
    pub async fn delete_bucket_encryption(&self, caller: &Caller, region: &str, name: &str) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Access::Owner).await?;
        bucket.encryption = None;
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Storage and object counts.
    pub async fn bucket_stat(&self, caller: &Caller, region: &str, name: &str) -> Result<BucketStat, CoreError> {
        self.bucket(caller, region, name, Access::Owner).await?;
        Ok(self.meta.bucket_stat(name).await?)
    }

    /// Starts the garbage collector: queued garbage every `interval`, orphans
    /// (older than an hour) now and then. Call [`ObjectService::collect_orphans`]
    /// with a zero age once before serving: at start no write is in flight.
    pub fn spawn_gc(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        gc::spawn(self.clone(), interval)
    }
}

fn denied() -> CoreError {
    CoreError::AccessDenied("You have no right to access this object because of bucket acl.".into())
}

fn check_choice(value: &str, allowed: &[&str], name: &str) -> Result<(), CoreError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(CoreError::invalid_argument(format!("{name} is not valid: {value}"), name, value))
    }
}

/// Owner may do anything; others only what the canned ACLs grant (the object
/// ACL, unless `default`, overrides the bucket's for object access).
fn acl_allows(caller: &Caller, bucket: &Bucket, object_acl: Option<&str>, access: Access) -> bool {
    if caller.account.as_deref() == Some(bucket.owner.as_str()) {
        return true;
    }
    let acl = match object_acl {
        Some(a) if a != "default" => a,
        _ => bucket.acl.as_str(),
    };
    match access {
        Access::Read => acl == "public-read" || acl == "public-read-write",
        Access::Write => acl == "public-read-write",
        Access::Owner => false,
    }
}
