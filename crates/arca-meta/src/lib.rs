//! Arca's metadata store.
//!
//! One trait, [`MetaStore`], with an embedded SQLite engine ([`Sqlite`]) as
//! the default; a PostgreSQL engine for scale-out implements the same trait
//! and must pass the same behaviour tests (`tests/behavior.rs`).
//!
//! Every write that makes data visible is one transaction. Object writes are
//! compare-and-swap on the current version ([`Expect`]), so concurrent
//! writers to one key end with exactly one whole version, and appends cannot
//! lose each other's bytes. Blobs that a write or delete stops referencing are
//! queued as garbage in the same transaction, so a crash never leaks them and
//! never deletes a blob that is still referenced.

#![warn(missing_docs)]

mod model;
mod sqlite;

pub use model::*;
pub use sqlite::Sqlite;

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The named bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// A bucket with that name exists already (owned by the given account).
    #[error("bucket exists")]
    BucketExists(Box<Bucket>),
    /// The bucket still holds objects or unfinished uploads.
    #[error("bucket not empty")]
    BucketNotEmpty,
    /// The multipart upload does not exist (never did, completed or aborted).
    #[error("no such upload")]
    NoSuchUpload,
    /// The parts of an upload changed while Complete was assembling them.
    #[error("parts changed during completion")]
    PartsChanged,
    /// The object's current state is not what the write expected.
    #[error("object changed concurrently or precondition failed")]
    Conflict(Option<Box<ObjectRecord>>),
    /// The engine failed.
    #[error("metadata engine: {0}")]
    Engine(String),
}

/// What a conditional object write expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Overwrite whatever is there.
    Any,
    /// The key must not exist.
    Absent,
    /// The key must hold exactly this version with this size (appends).
    Current {
        /// Version id of the record read before the write.
        version_id: String,
        /// Its size.
        size: u64,
    },
}

/// Where a listing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From the first key.
    First,
    /// Strictly after this key.
    After(String),
    /// At or after these key bytes (used to skip a whole common prefix).
    AtOrAfter(Vec<u8>),
}

/// The metadata store.
///
/// # Behavior
/// - Listings are in byte-wise order of the UTF-8 key.
/// - Writes that replace or delete records queue the blobs no longer
///   referenced by any record; [`MetaStore::take_garbage`] hands them out.
#[async_trait::async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Creates an account unless one with that id exists.
    async fn ensure_account(&self, account: Account) -> Result<(), MetaError>;
    /// Stores an access key, replacing one with the same id.
    async fn put_access_key(&self, key: AccessKey) -> Result<(), MetaError>;
    /// Looks up an access key by id.
    async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError>;
    /// Every access key of an account (root's and its users'), oldest first.
    async fn list_access_keys(&self, account: &str) -> Result<Vec<AccessKey>, MetaError>;
    /// Deletes an access key; false when there was none.
    async fn delete_access_key(&self, id: &str) -> Result<bool, MetaError>;
    /// Every account, oldest first.
    async fn list_accounts(&self) -> Result<Vec<Account>, MetaError>;

    /// Reads one identity record (`kind` is e.g. `user`, `group`, `policy`;
    /// the body is the identity crate's JSON).
    async fn iam_get(&self, account: &str, kind: &str, name: &str) -> Result<Option<String>, MetaError>;
    /// Every identity record of a kind in an account, by name.
    async fn iam_list(&self, account: &str, kind: &str) -> Result<Vec<String>, MetaError>;
    /// Stores an identity record. With `create`, an existing record is kept
    /// and false returned; otherwise it is replaced.
    async fn iam_put(&self, account: &str, kind: &str, name: &str, body: &str, create: bool)
    -> Result<bool, MetaError>;
    /// Deletes an identity record; false when there was none.
    async fn iam_delete(&self, account: &str, kind: &str, name: &str) -> Result<bool, MetaError>;

    /// Reads a deployment setting (e.g. which account is the root account).
    async fn get_setting(&self, name: &str) -> Result<Option<String>, MetaError>;
    /// Stores a deployment setting.
    async fn put_setting(&self, name: &str, value: &str) -> Result<(), MetaError>;

    /// Every version of a master key, ascending.
    async fn key_versions(&self, key_id: &str) -> Result<Vec<KeyVersion>, MetaError>;
    /// Deletes every version of a key (imported material deleted; the key stays).
    async fn delete_key_versions(&self, key_id: &str) -> Result<(), MetaError>;
    /// Adds a key version; `false` if that version exists already (another
    /// node rotated first).
    async fn add_key_version(&self, version: KeyVersion) -> Result<bool, MetaError>;

    /// Records which CMK and version a KMS key version id (UUID) names.
    async fn put_kms_version(&self, version_id: &str, key_id: &str, version: u32) -> Result<(), MetaError>;
    /// The CMK and version of a KMS key version id.
    async fn get_kms_version(&self, version_id: &str) -> Result<Option<(String, u32)>, MetaError>;
    /// Stores a CMK record (insert or replace).
    async fn put_cmk(&self, cmk: Cmk) -> Result<(), MetaError>;
    /// Reads a CMK.
    async fn get_cmk(&self, key_id: &str) -> Result<Option<Cmk>, MetaError>;
    /// Every CMK (for the rotation scheduler).
    async fn all_cmks(&self) -> Result<Vec<Cmk>, MetaError>;
    /// CMKs of an account in a region, by creation time.
    async fn list_cmks(&self, account: &str, region: &str) -> Result<Vec<Cmk>, MetaError>;
    /// Removes a CMK, its aliases and its versions (crypto-shredding).
    async fn delete_cmk(&self, key_id: &str) -> Result<(), MetaError>;
    /// Binds an alias; `false` if it exists already (unless `replace`).
    async fn put_alias(
        &self,
        account: &str,
        region: &str,
        alias: &str,
        key_id: &str,
        replace: bool,
    ) -> Result<bool, MetaError>;
    /// Key id an alias points to.
    async fn get_alias(&self, account: &str, region: &str, alias: &str) -> Result<Option<String>, MetaError>;
    /// Removes an alias; `false` if it did not exist.
    async fn delete_alias(&self, account: &str, region: &str, alias: &str) -> Result<bool, MetaError>;
    /// Aliases of an account in a region as (alias, key id), sorted by alias.
    async fn list_aliases(&self, account: &str, region: &str) -> Result<Vec<(String, String)>, MetaError>;
    /// Adds KMS calls to the metering, in one transaction: (account, key id, action, count).
    async fn add_kms_calls(&self, calls: Vec<(String, String, String, u64)>) -> Result<(), MetaError>;
    /// Call counts of an account.
    async fn kms_usage(&self, account: &str) -> Result<Vec<KmsUsage>, MetaError>;

    /// Creates a bucket; [`MetaError::BucketExists`] if the name is taken.
    async fn create_bucket(&self, bucket: Bucket) -> Result<(), MetaError>;
    /// Reads a bucket.
    async fn get_bucket(&self, name: &str) -> Result<Option<Bucket>, MetaError>;
    /// Replaces a bucket's settings (not its name).
    async fn update_bucket(&self, bucket: Bucket) -> Result<(), MetaError>;
    /// Buckets of `owner` whose name starts with `prefix`, after `marker`, sorted, at most `limit`.
    async fn list_buckets(
        &self,
        owner: &str,
        prefix: &str,
        marker: &str,
        limit: usize,
    ) -> Result<Vec<Bucket>, MetaError>;
    /// Deletes an empty bucket (no objects, no unfinished uploads).
    async fn delete_bucket(&self, name: &str) -> Result<(), MetaError>;
    /// Usage numbers.
    async fn bucket_stat(&self, name: &str) -> Result<BucketStat, MetaError>;

    /// Reads the current record of a key.
    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, MetaError>;
    /// Makes `record` the current version of its key if `expect` holds;
    /// otherwise [`MetaError::Conflict`] with the current record.
    async fn put_object(&self, record: ObjectRecord, expect: Expect) -> Result<(), MetaError>;
    /// Deletes a key (no error when absent); returns whether it existed.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, MetaError>;
    /// Objects whose key starts with `prefix`, from `start`, at most `limit`.
    async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start: &Start,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>, MetaError>;

    /// Registers a new multipart upload.
    async fn create_upload(&self, upload: Upload) -> Result<(), MetaError>;
    /// Reads an upload.
    async fn get_upload(&self, upload_id: &str) -> Result<Option<Upload>, MetaError>;
    /// Uploads whose key starts with `prefix`, ordered by (key, upload id),
    /// strictly after (`key_marker`, `upload_id_marker`) — an empty upload id
    /// marker means after every upload of `key_marker` — or from `skip_to`.
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        start: &UploadStart,
        limit: usize,
    ) -> Result<Vec<Upload>, MetaError>;
    /// Stores a part (replacing one with the same number);
    /// [`MetaError::NoSuchUpload`] if the upload is gone.
    async fn put_part(&self, upload_id: &str, part: Part) -> Result<(), MetaError>;
    /// Parts with a number greater than `after`, ascending, at most `limit`.
    async fn list_parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<Part>, MetaError>;
    /// Atomically ends the upload and makes `record` the current version.
    /// Parts whose blobs `record` does not use are discarded.
    async fn complete_upload(&self, upload_id: &str, record: ObjectRecord, expect: Expect) -> Result<(), MetaError>;
    /// Ends the upload and discards its parts.
    async fn abort_upload(&self, upload_id: &str) -> Result<(), MetaError>;

    /// Every blob id some record references (for orphan collection).
    async fn referenced_blobs(&self) -> Result<Vec<String>, MetaError>;
    /// Up to `limit` queued garbage blobs queued at or before `queued_before`.
    async fn take_garbage(&self, queued_before: i64, limit: usize) -> Result<Vec<String>, MetaError>;
    /// Forgets garbage entries once their blobs are deleted.
    async fn forget_garbage(&self, blobs: &[String]) -> Result<(), MetaError>;
}

/// Where an uploads listing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// From the first upload.
    First,
    /// Strictly after (key, upload id); empty upload id = after every upload of key.
    After {
        /// Key marker.
        key: String,
        /// Upload id marker.
        upload_id: String,
    },
    /// At or after these key bytes (skips a common prefix).
    AtOrAfter(Vec<u8>),
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` if there is none (prefix empty or all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor_of_prefixes() {
        assert_eq!(prefix_successor(b"dir/"), Some(b"dir0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
