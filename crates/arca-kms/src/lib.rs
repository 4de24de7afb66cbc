//! Arca's key manager.
//!
//! Owns every master key: their versions, rotation, and the sealing of their
//! material under the root key. Today that is the service master keys of
//! SSE-OSS (one per account, region and suite: `AES256` wraps with
//! AES-256-GCM, `SM4` with SM4-GCM); customer CMKs and the KMS API build on
//! the same versioned store.
//!
//! Versions are immutable once written, so unsealed versions are cached for
//! the life of the process (zeroized when dropped). Which version is current
//! is re-read at most every few seconds, so nodes sharing one metadata store
//! agree quickly after a rotation.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod cmk;

pub use cmk::{DISABLED, ENABLED, PENDING_DELETION, PENDING_IMPORT};
pub use cmk::{
    Decrypted, GeneratedKey, ImportParams, Kms, KmsContext, MAX_ROTATION_SECS, MIN_ROTATION_SECS, NewKey, OSS_ALIAS,
    context_digest,
};

use arca_crypto::{DataKey, Suite, seal_with_root, unseal_with_root};
use arca_meta::{KeyVersion, MetaError, MetaStore};

/// Failures of the key manager.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The key or version does not exist.
    #[error("key not found: {0}")]
    NotFound(String),
    /// Stored material failed to unseal (wrong root key or tampering).
    #[error("key material of {0} failed to unseal")]
    Unseal(String),
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// No such key (or not in this account and region).
    #[error("The specified Key is not found.")]
    KeyNotFound,
    /// No such alias.
    #[error("The specified Alias is not found.")]
    AliasNotFound,
    /// No such key version.
    #[error("The specified Key version is not found.")]
    KeyVersionNotFound,
    /// A parameter is missing.
    #[error("The parameter \"{0}\" is needed but not provided.")]
    MissingParameter(String),
    /// A parameter has a bad value.
    #[error("The specified parameter \"{0}\" is not valid.")]
    InvalidParameter(String),
    /// The key's state does not allow the operation (`Rejected.<State>`).
    #[error("The request was rejected because the key state is {0}.")]
    Rejected(String),
    /// A state change that the key's state does not allow.
    #[error("Keystate modified failed.")]
    StateModifiedFailed,
    /// CreateAlias of an existing alias.
    #[error("AliasName Already Exists.")]
    AliasAlreadyExists,
    /// The key's origin does not allow the operation.
    #[error("This key origin is not valid for this api.")]
    UnsupportedOrigin,
    /// Not supported for this key (e.g. deleting a service key).
    #[error("Unsupported operation.")]
    UnsupportedOperation,
    /// KMS is switched off for the account.
    #[error("Kms service is not Enabled for current user. Please get access permission first.")]
    ServiceNotEnabled,
    /// The key is the default of buckets; deleting it needs force.
    #[error("The key is the default encryption key of buckets: {}. Change their encryption first, or force the deletion.", .0.join(", "))]
    KeyInUse(Vec<String>),
    /// Imported material that is malformed or differs from the key's.
    #[error("key material is invalid.")]
    InvalidKeyMaterial,
    /// An import token that is unknown or for another key.
    #[error("import token is invalid.")]
    InvalidImportToken,
    /// An import token past its 24 hours.
    #[error("import token is expired.")]
    ExpiredImportToken,
}

/// A master key version, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// Key id.
    pub key_id: String,
    /// Version.
    pub version: u32,
}

/// How long the "current version" of a key is trusted before re-reading.
const CURRENT_TTL: Duration = Duration::from_secs(5);

/// The key manager.
pub struct KeyManager {
    meta: Arc<dyn MetaStore>,
    root: DataKey,
    rotation: Duration,
    unsealed: Mutex<HashMap<(String, u32), Arc<DataKey>>>,
    current: Mutex<HashMap<String, (u32, i64, Instant)>>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn suite_name(suite: Suite) -> &'static str {
    match suite {
        Suite::Aes256Gcm => "aes256",
        Suite::Sm4Gcm => "sm4",
    }
}

fn label(key_id: &str, version: u32) -> Vec<u8> {
    format!("{key_id}/{version}").into_bytes()
}

impl KeyManager {
    /// A manager over `meta`, sealing with `root`, rotating service keys
    /// when their newest version is older than `rotation`.
    pub fn new(meta: Arc<dyn MetaStore>, root: DataKey, rotation: Duration) -> Self {
        KeyManager { meta, root, rotation, unsealed: Mutex::default(), current: Mutex::default() }
    }

    /// The id of the SSE service key of an account, region and suite.
    pub fn service_key_id(account: &str, region: &str, suite: Suite) -> String {
        format!("acs/oss/sse-{}/{region}/{account}", suite_name(suite))
    }

    /// The version new data keys should be wrapped with, creating the first
    /// version or rotating when the newest is due.
    pub async fn current_service_key(
        &self,
        account: &str,
        region: &str,
        suite: Suite,
    ) -> Result<(KeyRef, Arc<DataKey>), KmsError> {
        let key_id = Self::service_key_id(account, region, suite);
        let cached = self.current.lock().expect("lock").get(&key_id).copied();
        let rotation_secs = self.rotation.as_secs() as i64;
        let version = match cached {
            Some((v, created, read_at))
                if read_at.elapsed() < CURRENT_TTL.min(self.rotation) && now() - created < rotation_secs =>
            {
                v
            }
            _ => {
                let versions = self.meta.key_versions(&key_id).await?;
                let newest = versions.last().map(|v| (v.version, v.created));
                let (v, created) = match newest {
                    Some((v, created)) if now() - created < rotation_secs => (v, created),
                    newest => self.add_version(&key_id, suite, newest.map_or(1, |(v, _)| v + 1)).await?,
                };
                self.current.lock().expect("lock").insert(key_id.clone(), (v, created, Instant::now()));
                v
            }
        };
        let key = self.key_version(&key_id, version).await?;
        Ok((KeyRef { key_id, version }, key))
    }

    /// Adds a new version now, whatever the schedule. Returns it.
    pub async fn rotate(&self, key_id: &str) -> Result<u32, KmsError> {
        let next = self.meta.key_versions(key_id).await?.last().map_or(1, |v| v.version + 1);
        let suite = self.key_version(key_id, next - 1).await.map(|k| k.suite()).unwrap_or(Suite::Aes256Gcm);
        let (v, created) = self.add_version(key_id, suite, next).await?;
        self.current.lock().expect("lock").insert(key_id.to_owned(), (v, created, Instant::now()));
        Ok(v)
    }

    async fn add_version(&self, key_id: &str, suite: Suite, version: u32) -> Result<(u32, i64), KmsError> {
        self.add_version_with(key_id, DataKey::generate(suite), version).await
    }

    /// Stores `material` as `version` of `key_id` (sealed under the root key).
    /// Returns the version and its creation time (another node's, if it won a race).
    pub(crate) async fn add_version_with(
        &self,
        key_id: &str,
        material: DataKey,
        version: u32,
    ) -> Result<(u32, i64), KmsError> {
        let sealed = seal_with_root(&self.root, &label(key_id, version), material.expose())
            .map_err(|_| KmsError::Unseal(key_id.to_owned()))?;
        let created = now();
        let row = KeyVersion { key_id: key_id.to_owned(), version, sealed, created };
        if self.meta.add_key_version(row).await? {
            tracing::info!(key_id, version, "master key version created");
            self.unsealed.lock().expect("lock").insert((key_id.to_owned(), version), Arc::new(material));
            Ok((version, created))
        } else {
            // Another node created this version first: use theirs.
            let theirs = self.meta.key_versions(key_id).await?;
            let v =
                theirs.iter().find(|v| v.version == version).ok_or_else(|| KmsError::NotFound(key_id.to_owned()))?;
            Ok((v.version, v.created))
        }
    }

    /// Drops every cached unsealed version of a key (its material was deleted).
    pub fn forget(&self, key_id: &str) {
        self.unsealed.lock().expect("lock").retain(|(k, _), _| k != key_id);
        self.current.lock().expect("lock").remove(key_id);
    }

    /// A keyed fingerprint of secret material (HMAC-SHA256 under a key
    /// derived from the root key), so equality can be checked later without
    /// keeping the material.
    pub fn fingerprint(&self, material: &[u8]) -> String {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.root.expose());
        let tag = aws_lc_rs::hmac::sign(&k, &[b"arca/v1/fingerprint".as_slice(), material].concat());
        hex::encode(tag.as_ref())
    }

    /// Seals bytes under the root key with a label.
    pub fn seal(&self, label: &[u8], data: &[u8]) -> Result<Vec<u8>, KmsError> {
        seal_with_root(&self.root, label, data).map_err(|_| KmsError::Unseal("sealing".into()))
    }

    /// Opens what [`KeyManager::seal`] sealed.
    pub fn unseal(&self, label: &[u8], sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, KmsError> {
        unseal_with_root(&self.root, label, sealed)
            .map_err(|_| KmsError::Unseal(String::from_utf8_lossy(label).into_owned()))
    }

    /// A specific version (to unwrap what it wrapped).
    pub async fn key_version(&self, key_id: &str, version: u32) -> Result<Arc<DataKey>, KmsError> {
        if let Some(k) = self.unsealed.lock().expect("lock").get(&(key_id.to_owned(), version)) {
            return Ok(k.clone());
        }
        let versions = self.meta.key_versions(key_id).await?;
        let row = versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| KmsError::NotFound(format!("{key_id} v{version}")))?;
        let material = unseal_with_root(&self.root, &label(key_id, version), &row.sealed)
            .map_err(|_| KmsError::Unseal(format!("{key_id} v{version}")))?;
        // The material's length tells the suite: 32 bytes AES-256, 16 bytes SM4.
        let suite = if material.len() == 16 { Suite::Sm4Gcm } else { Suite::Aes256Gcm };
        let key = Arc::new(DataKey::from_bytes(suite, &material).map_err(|_| KmsError::Unseal(key_id.to_owned()))?);
        self.unsealed.lock().expect("lock").insert((key_id.to_owned(), version), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_meta::Sqlite;

    fn manager(dir: &std::path::Path, rotation: Duration, root: &[u8; 32]) -> KeyManager {
        let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&dir.join("m.sqlite")).unwrap());
        KeyManager::new(meta, DataKey::from_bytes(Suite::Aes256Gcm, root).unwrap(), rotation)
    }

    #[tokio::test]
    async fn first_use_creates_version_one_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let km = manager(dir.path(), Duration::from_secs(3600), &[7; 32]);
        let (a, ka) = km.current_service_key("1", "cn-hangzhou", Suite::Sm4Gcm).await.unwrap();
        let (b, kb) = km.current_service_key("1", "cn-hangzhou", Suite::Sm4Gcm).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.version, 1);
        assert_eq!(ka.expose(), kb.expose());
        assert_eq!(ka.suite(), Suite::Sm4Gcm);
        let (other, _) = km.current_service_key("1", "cn-shanghai", Suite::Sm4Gcm).await.unwrap();
        assert_ne!(other.key_id, a.key_id);
    }

    #[tokio::test]
    async fn rotation_adds_versions_and_keeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let km = manager(dir.path(), Duration::from_secs(3600), &[7; 32]);
        let (v1, k1) = km.current_service_key("1", "r", Suite::Aes256Gcm).await.unwrap();
        assert_eq!(km.rotate(&v1.key_id).await.unwrap(), 2);
        let (v2, k2) = km.current_service_key("1", "r", Suite::Aes256Gcm).await.unwrap();
        assert_eq!(v2.version, 2);
        assert_ne!(k1.expose(), k2.expose());
        // A fresh manager (another node, or after restart) unseals both from storage.
        let km2 = manager(dir.path(), Duration::from_secs(3600), &[7; 32]);
        assert_eq!(km2.key_version(&v1.key_id, 1).await.unwrap().expose(), k1.expose());
        assert_eq!(km2.key_version(&v1.key_id, 2).await.unwrap().expose(), k2.expose());
        // A wrong root key cannot unseal.
        let wrong = manager(dir.path(), Duration::from_secs(3600), &[8; 32]);
        assert!(matches!(wrong.key_version(&v1.key_id, 1).await, Err(KmsError::Unseal(_))));
        assert!(matches!(km2.key_version(&v1.key_id, 9).await, Err(KmsError::NotFound(_))));
    }

    #[tokio::test]
    async fn due_keys_rotate_on_use() {
        let dir = tempfile::tempdir().unwrap();
        let km = manager(dir.path(), Duration::from_secs(1), &[7; 32]);
        let (v1, _) = km.current_service_key("1", "r", Suite::Aes256Gcm).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (v2, _) = km.current_service_key("1", "r", Suite::Aes256Gcm).await.unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
    }
}
