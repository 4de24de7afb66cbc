//! Arca's object service, free of any wire protocol.
//!
//! A dialect (OSS today, S3 later) authenticates the caller, parses the
//! request into the calls below, and renders their results and
//! [`CoreError`]s. The core owns the rules every dialect shares: naming,
//! region placement, access (bucket owner and canned ACLs until RAM lands),
//! preconditions, multipart and append semantics, and the single streaming
//! pass that stores and checksums object bytes.

#![warn(missing_docs)]

mod authz;
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
use arca_iam::{Audit, Context, Identity};
use arca_kms::{KeyManager, Kms};
use arca_meta::MetaStore;

pub use arca_meta::{
    AccessKey, Account, Bucket, BucketStat, Encryption, EncryptionRule, ObjectAttrs, ObjectKind, ObjectRecord, Part,
    Upload, UserMeta,
};
pub use authz::{Access, KMS_FORBIDDEN, Op, oss_arn};
pub use error::CoreError;
pub use list::{ListParams, Listing, UploadListParams, UploadListing};
pub use multipart::{CompletePart, PartsPage};
pub use objects::{AppendObject, Conditions, CopyObject, CopySource, PutObject};
pub use sse::SseRequest;
pub use stream::ByteStream;

/// The bucket type, re-exported for dialects.
pub type BucketInfo = Bucket;

/// Who is calling, and the request's condition values (source IP, time, …).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated identity with its policies.
    pub identity: Identity,
    /// Condition values of the request (`acs:SourceIp`, `acs:CurrentTime`, …).
    pub context: Context,
}

impl Caller {
    /// An authenticated (or anonymous) caller.
    pub fn new(identity: Identity, context: Context) -> Self {
        Caller { identity, context }
    }

    /// An anonymous caller.
    pub fn anonymous() -> Self {
        Caller::new(Identity::anonymous(), Context::new())
    }

    /// The root identity of `account`.
    pub fn account(account: impl Into<String>) -> Self {
        Caller::new(Identity::root(account), Context::new())
    }

    /// The account the caller acts for; `None` when anonymous.
    pub fn account_id(&self) -> Option<&str> {
        self.identity.principal.account()
    }
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
    audit: Arc<Audit>,
    /// Serializes read-modify-write of bucket settings (ACL, encryption, policy).
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
        let audit = Arc::new(Audit::disabled());
        ObjectService { meta, blobs, keys, kms, limits, audit, bucket_settings: Arc::default() }
    }

    /// Records denied requests in `audit`.
    pub fn with_audit(mut self, audit: Arc<Audit>) -> Self {
        self.audit = audit;
        self
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

    /// Loads a bucket for a request served in `region` and authorizes `op` on it.
    ///
    /// # Errors
    /// `NoSuchBucket`; `WrongRegion` when the bucket lives elsewhere;
    /// `AccessDenied` when no policy or ACL allows `op`.
    pub async fn bucket(&self, caller: &Caller, region: &str, name: &str, op: Op<'_>) -> Result<Bucket, CoreError> {
        let bucket = self.located_bucket(region, name).await?;
        self.authorize(caller, &bucket, &op, None)?;
        Ok(bucket)
    }

    /// Loads a bucket served in `region`, without authorizing anything.
    pub(crate) async fn located_bucket(&self, region: &str, name: &str) -> Result<Bucket, CoreError> {
        let bucket = self.meta.get_bucket(name).await?.ok_or(CoreError::NoSuchBucket)?;
        if bucket.region != region {
            return Err(CoreError::WrongRegion { region: bucket.region });
        }
        Ok(bucket)
    }

    /// Creates a bucket owned by the caller's account in `spec.region`.
    /// Re-creating one's own bucket with the same region succeeds without change.
    pub async fn create_bucket(&self, caller: &Caller, spec: CreateBucket) -> Result<Bucket, CoreError> {
        let account = caller.account_id().unwrap_or_default();
        let arn = format!("acs:oss:{}:{account}:{}", spec.region, spec.name);
        let owner = self.authorize_account(caller, "oss:PutBucket", &arn)?;
        if spec.acl != "private" {
            // Creating a public bucket also sets its ACL.
            self.authorize_account(caller, "oss:PutBucketAcl", &arn)?;
        }
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
        let mut bucket = Bucket {
            name: spec.name,
            owner,
            region: spec.region,
            acl: spec.acl,
            storage_class: spec.storage_class,
            redundancy: spec.redundancy,
            created: now(),
            encryption: None,
            policy: None,
        };
        if let Some(rule) = encryption {
            // Creating with a default encryption also configures it.
            self.authorize_account(caller, "oss:PutBucketEncryption", &arn)?;
            bucket.encryption = Some(self.check_kms_rule(caller, &bucket, rule).await?);
        }
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

    /// A KMS default naming a CMK: the caller may list and describe it (spec B5).
    async fn check_kms_rule(
        &self,
        caller: &Caller,
        bucket: &Bucket,
        rule: EncryptionRule,
    ) -> Result<EncryptionRule, CoreError> {
        if let Some(key) = rule.kms_key_id.as_deref() {
            self.authorize_kms_rule(caller, bucket, key).await?;
        }
        Ok(rule)
    }

    /// The caller's account's buckets (all regions), sorted by name, after
    /// `marker`. Returns the page and whether more follow.
    pub async fn list_buckets(
        &self,
        caller: &Caller,
        prefix: &str,
        marker: &str,
        max: usize,
    ) -> Result<(Vec<Bucket>, bool), CoreError> {
        let account = caller.account_id().unwrap_or_default();
        let owner = self.authorize_account(caller, "oss:ListBuckets", &format!("acs:oss:*:{account}:*"))?;
        let mut page = self.meta.list_buckets(&owner, prefix, marker, max + 1).await?;
        let truncated = page.len() > max;
        page.truncate(max);
        Ok((page, truncated))
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, caller: &Caller, region: &str, name: &str) -> Result<(), CoreError> {
        self.bucket(caller, region, name, Op::bucket("oss:DeleteBucket")).await?;
        Ok(self.meta.delete_bucket(name).await?)
    }

    /// Sets the bucket's canned ACL.
    pub async fn put_bucket_acl(&self, caller: &Caller, region: &str, name: &str, acl: &str) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Op::bucket("oss:PutBucketAcl")).await?;
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
        let mut bucket = self.bucket(caller, region, name, Op::bucket("oss:PutBucketEncryption")).await?;
        let rule = sse::validate_rule(&rule)?;
        bucket.encryption = Some(self.check_kms_rule(caller, &bucket, rule).await?);
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Removes the bucket's default encryption (no error when there is none).
    pub async fn delete_bucket_encryption(&self, caller: &Caller, region: &str, name: &str) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Op::bucket("oss:DeleteBucketEncryption")).await?;
        bucket.encryption = None;
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Sets the bucket policy (validated; at most 16 KiB).
    ///
    /// # Errors
    /// `MalformedPolicy` with the line, column and reason of the first problem.
    pub async fn put_bucket_policy(
        &self,
        caller: &Caller,
        region: &str,
        name: &str,
        document: &str,
    ) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Op::bucket("oss:PutBucketPolicy")).await?;
        if document.len() > 16 * 1024 {
            return Err(CoreError::MalformedPolicy("the policy is larger than 16 KiB".into()));
        }
        let policy = arca_iam::Policy::parse(document, arca_iam::PolicyKind::Resource)
            .map_err(|e| CoreError::MalformedPolicy(e.to_string()))?;
        // Resources must lie in this bucket (spec B3).
        let in_bucket = |r: &str| r.split(':').nth(4).is_some_and(|rest| rest.split('/').next() == Some(&bucket.name));
        for s in &policy.statements {
            if let Some(r) = s.resources.values.iter().find(|r| !in_bucket(r)) {
                return Err(CoreError::MalformedPolicy(format!(
                    "resource {r:?} is not in bucket {0}; write acs:oss:*:*:{0} or acs:oss:*:*:{0}/…",
                    bucket.name
                )));
            }
        }
        bucket.policy = Some(document.to_owned());
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// The bucket policy document.
    ///
    /// # Errors
    /// `NoSuchBucketPolicy` when none is set.
    pub async fn get_bucket_policy(&self, caller: &Caller, region: &str, name: &str) -> Result<String, CoreError> {
        let bucket = self.bucket(caller, region, name, Op::bucket("oss:GetBucketPolicy")).await?;
        bucket.policy.ok_or(CoreError::NoSuchBucketPolicy)
    }

    /// Removes the bucket policy (no error when there is none).
    pub async fn delete_bucket_policy(&self, caller: &Caller, region: &str, name: &str) -> Result<(), CoreError> {
        let _guard = self.bucket_settings.lock().await;
        let mut bucket = self.bucket(caller, region, name, Op::bucket("oss:DeleteBucketPolicy")).await?;
        bucket.policy = None;
        Ok(self.meta.update_bucket(bucket).await?)
    }

    /// Storage and object counts.
    pub async fn bucket_stat(&self, caller: &Caller, region: &str, name: &str) -> Result<BucketStat, CoreError> {
        self.bucket(caller, region, name, Op::bucket("oss:GetBucketStat")).await?;
        Ok(self.meta.bucket_stat(name).await?)
    }

    /// Starts the garbage collector: queued garbage every `interval`, orphans
    /// (older than an hour) now and then. Call [`ObjectService::collect_orphans`]
    /// with a zero age once before serving: at start no write is in flight.
    pub fn spawn_gc(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        gc::spawn(self.clone(), interval)
    }
}

fn check_choice(value: &str, allowed: &[&str], name: &str) -> Result<(), CoreError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(CoreError::invalid_argument(format!("{name} is not valid: {value}"), name, value))
    }
}
