//! Server-side encryption: which encryption a new object gets, its data key,
//! and the key of an existing object.
//!
//! Precedence: the request's algorithm, else the bucket's default rule, else
//! none. Each object version gets a fresh data key, wrapped by the newest
//! service key version (SSE-OSS) and bound to the object's identity, so a
//! wrapped key copied onto another record does not unwrap.

use std::sync::Arc;

use arca_crypto::{DataKey, FORMAT_VERSION, Suite, unwrap_data_key, wrap_data_key};
use arca_meta::{Bucket, Encryption, EncryptionRule};

use crate::{Caller, CoreError, ObjectService};

/// SSE algorithm names.
pub const AES256: &str = "AES256";
/// SM4 with a service key.
pub const SM4: &str = "SM4";
/// A KMS customer master key.
pub const KMS: &str = "KMS";
/// The stream suite id of SM4-GCM (so dialects can tell KMS + SM4 objects).
pub const SM4_SUITE_ID: u8 = 2;

/// Encryption asked for by a request (already checked for known values by the dialect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseRequest {
    /// `AES256`, `SM4` or `KMS`; `None` defers to the bucket default.
    pub algorithm: Option<String>,
    /// `SM4` for KMS objects whose data is SM4-encrypted.
    pub data_encryption: Option<String>,
    /// CMK id or alias (KMS only).
    pub key_id: Option<String>,
}

impl SseRequest {
    /// Whether the request carries any SSE setting at all.
    pub fn is_empty(&self) -> bool {
        self.algorithm.is_none() && self.data_encryption.is_none() && self.key_id.is_none()
    }
}

/// The encryption decided for a new object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub algorithm: &'static str,
    pub suite: Suite,
    /// KMS only: the CMK named by the request or rule (id, alias or ARN);
    /// `None` means the account's default key `alias/acs/oss`.
    pub kms_key: Option<String>,
}

/// Checks a rule (bucket default or request) and turns it into a plan.
fn plan_of(algorithm: &str, data_encryption: Option<&str>, key_id: Option<&str>) -> Result<Plan, CoreError> {
    let key_id = key_id.filter(|k| !k.is_empty());
    match algorithm {
        AES256 | SM4 if key_id.is_some() => Err(CoreError::invalid_argument(
            "KMSMasterKeyID is only allowed with the KMS algorithm.",
            "x-oss-server-side-encryption-key-id",
            key_id.unwrap_or_default(),
        )),
        AES256 => Ok(Plan { algorithm: AES256, suite: Suite::Aes256Gcm, kms_key: None }),
        SM4 => Ok(Plan { algorithm: SM4, suite: Suite::Sm4Gcm, kms_key: None }),
        KMS => {
            let suite = if data_encryption == Some(SM4) { Suite::Sm4Gcm } else { Suite::Aes256Gcm };
            Ok(Plan { algorithm: KMS, suite, kms_key: key_id.map(str::to_owned) })
        }
        other => Err(CoreError::InvalidEncryptionAlgorithm(other.to_owned())),
    }
}

/// Validates a bucket default rule (KMS key ids are not looked up here).
pub fn validate_rule(rule: &EncryptionRule) -> Result<EncryptionRule, CoreError> {
    match rule.algorithm.as_str() {
        AES256 | SM4 => {
            if rule.kms_key_id.as_deref().is_some_and(|k| !k.is_empty()) {
                return Err(CoreError::invalid_argument(
                    "KMSMasterKeyID is only allowed with the KMS algorithm.",
                    "KMSMasterKeyID",
                    rule.kms_key_id.clone().unwrap_or_default(),
                ));
            }
            // Data encryption only means something for KMS; it is dropped.
            Ok(EncryptionRule { algorithm: rule.algorithm.clone(), kms_key_id: None, kms_data_encryption: None })
        }
        KMS => {
            if let Some(d) = rule.kms_data_encryption.as_deref().filter(|d| *d != SM4) {
                return Err(CoreError::invalid_argument("KMSDataEncryption must be SM4.", "KMSDataEncryption", d));
            }
            Ok(EncryptionRule {
                algorithm: KMS.into(),
                kms_key_id: rule.kms_key_id.clone().filter(|k| !k.is_empty()),
                kms_data_encryption: rule.kms_data_encryption.clone(),
            })
        }
        other => Err(CoreError::InvalidEncryptionAlgorithm(other.to_owned())),
    }
}

/// The encryption a new object in `bucket` gets.
pub(crate) fn resolve(req: &SseRequest, bucket: &Bucket) -> Result<Option<Plan>, CoreError> {
    if let Some(a) = &req.algorithm {
        return plan_of(a, req.data_encryption.as_deref(), req.key_id.as_deref()).map(Some);
    }
    match &bucket.encryption {
        Some(rule) => {
            plan_of(&rule.algorithm, rule.kms_data_encryption.as_deref(), rule.kms_key_id.as_deref()).map(Some)
        }
        None => Ok(None),
    }
}

/// What a wrapped data key is bound to.
pub(crate) fn identity(bucket: &Bucket, key: &str, version_id: &str, algorithm: &str) -> Vec<u8> {
    [bucket.owner.as_str(), bucket.region.as_str(), bucket.name.as_str(), key, version_id, algorithm]
        .join("\0")
        .into_bytes()
}

fn hex_decode(s: &str) -> Result<Vec<u8>, CoreError> {
    hex::decode(s).map_err(|_| CoreError::internal("malformed hex in encryption metadata"))
}

/// Parses a stored salt.
pub(crate) fn salt_of(s: &str) -> Result<[u8; 16], CoreError> {
    hex_decode(s)?.try_into().map_err(|_| CoreError::internal("malformed stream salt in metadata"))
}

impl ObjectService {
    /// A fresh data key for a new object version under `plan`, and its record.
    pub(crate) async fn new_data_key(
        &self,
        caller: &Caller,
        plan: &Plan,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
    ) -> Result<(Encryption, Arc<DataKey>), CoreError> {
        if plan.algorithm == KMS {
            return self.new_kms_data_key(caller, plan, bucket, key, version_id).await;
        }
        let (kref, master) = self
            .keys
            .current_service_key(&bucket.owner, &bucket.region, plan.suite)
            .await
            .map_err(CoreError::internal)?;
        let data_key = DataKey::generate(plan.suite);
        let wrapped = wrap_data_key(&master, &identity(bucket, key, version_id, plan.algorithm), &data_key);
        let enc = Encryption {
            algorithm: plan.algorithm.to_owned(),
            suite: plan.suite.id(),
            key_id: kref.key_id,
            key_version: kref.version,
            wrapped_key: hex::encode(wrapped),
            format: FORMAT_VERSION,
        };
        Ok((enc, Arc::new(data_key)))
    }

    /// SSE-KMS: the data key comes from the built-in KMS (GenerateDataKey on
    /// behalf of the caller, metered), under the named CMK or the account's
    /// `alias/acs/oss`, bound to the object by the encryption context.
    async fn new_kms_data_key(
        &self,
        caller: &Caller,
        plan: &Plan,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
    ) -> Result<(Encryption, Arc<DataKey>), CoreError> {
        if caller.account_id().is_none() {
            self.audit_deny(caller, "kms:GenerateDataKey", &crate::oss_arn(bucket, Some(key)), "anonymous");
            return Err(CoreError::AccessDenied(crate::KMS_FORBIDDEN.into()));
        }
        let ctx = kms_context(bucket, caller);
        let cmk = match &plan.kms_key {
            Some(k) => {
                // Checked before any key is generated: a refused request is not metered.
                let key_id = self.authorize_kms(caller, bucket, k, &["kms:GenerateDataKey"]).await?;
                self.kms.resolve(&ctx, &key_id).await.map_err(kms_error)?
            }
            None => self.kms.oss_service_key(&ctx).await.map_err(kms_error)?,
        };
        let context = encryption_context(bucket, key, version_id);
        let g = self
            .kms
            .generate_data_key(&ctx, &cmk.key_id, plan.suite.key_len(), Some(&context), "GenerateDataKey")
            .await
            .map_err(kms_error)?;
        let data_key = DataKey::from_bytes(plan.suite, &g.plaintext).map_err(CoreError::internal)?;
        let enc = Encryption {
            algorithm: KMS.to_owned(),
            suite: plan.suite.id(),
            key_id: g.key_id,
            key_version: cmk.versions.len() as u32,
            wrapped_key: hex::encode(&g.blob),
            format: FORMAT_VERSION,
        };
        Ok((enc, Arc::new(data_key)))
    }

    /// Unwraps the data key of an existing object version.
    pub(crate) async fn data_key(
        &self,
        caller: &Caller,
        enc: &Encryption,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
    ) -> Result<Arc<DataKey>, CoreError> {
        let suite = Suite::from_id(enc.suite)
            .ok_or_else(|| CoreError::internal(format!("unknown suite {} in metadata", enc.suite)))?;
        if enc.format != FORMAT_VERSION {
            return Err(CoreError::internal(format!("unknown format version {} in metadata", enc.format)));
        }
        let wrapped = hex_decode(&enc.wrapped_key)?;
        if enc.algorithm == KMS {
            self.authorize_kms_read(caller, bucket, Some(enc)).await?;
            let context = encryption_context(bucket, key, version_id);
            let d =
                self.kms.decrypt(&kms_context(bucket, caller), &wrapped, Some(&context)).await.map_err(kms_error)?;
            let raw = base64_decode(&d.plaintext)?;
            return DataKey::from_bytes(suite, &raw).map(Arc::new).map_err(CoreError::internal);
        }
        let master = self.keys.key_version(&enc.key_id, enc.key_version).await.map_err(CoreError::internal)?;
        let dk = unwrap_data_key(&master, &identity(bucket, key, version_id, &enc.algorithm), &wrapped, suite).map_err(|_| {
            tracing::error!(bucket = %bucket.name, key, "integrity error: the data key does not unwrap for this object");
            CoreError::Integrity
        })?;
        Ok(Arc::new(dk))
    }
}

/// KMS calls for an object act in the bucket owner's account and region,
/// on behalf of the caller.
pub(crate) fn kms_context(bucket: &Bucket, caller: &Caller) -> arca_kms::KmsContext {
    arca_kms::KmsContext::new(bucket.owner.clone(), bucket.region.clone()).acting_as(caller.identity.principal.arn())
}

/// The KMS encryption context of an object version: its OSS ARN and version id.
fn encryption_context(bucket: &Bucket, key: &str, version_id: &str) -> String {
    let arn = format!("acs:oss:{}:{}:{}/{}", bucket.region, bucket.owner, bucket.name, key);
    serde_json::json!({ "acs:oss:arn": arn, "arca:version-id": version_id }).to_string()
}

fn base64_decode(s: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, CoreError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| CoreError::internal("KMS returned a data key that is not base64"))
}

/// KMS failures as object-service errors.
pub(crate) fn kms_error(e: arca_kms::KmsError) -> CoreError {
    use arca_kms::KmsError as K;
    match e {
        K::KeyNotFound | K::AliasNotFound | K::KeyVersionNotFound => CoreError::KmsKeyNotFound,
        K::Rejected(state) => CoreError::KmsKeyState(state),
        K::ServiceNotEnabled => CoreError::KmsServiceNotEnabled,
        K::InvalidParameter(p) if p == "CiphertextBlob" => {
            tracing::error!("integrity error: a KMS-wrapped data key does not decrypt for its object");
            CoreError::Integrity
        }
        other => CoreError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(a: &str, k: Option<&str>, d: Option<&str>) -> EncryptionRule {
        EncryptionRule { algorithm: a.into(), kms_key_id: k.map(Into::into), kms_data_encryption: d.map(Into::into) }
    }

    #[test]
    fn bucket_rule_validation_table() {
        assert!(matches!(validate_rule(&rule("AES256", Some("test"), None)), Err(CoreError::InvalidArgument { .. })));
        assert!(matches!(validate_rule(&rule("random", None, None)), Err(CoreError::InvalidEncryptionAlgorithm(_))));
        assert_eq!(validate_rule(&rule("AES256", None, Some("SM4"))).unwrap(), rule("AES256", None, None));
        assert_eq!(validate_rule(&rule("SM4", None, Some("SM4"))).unwrap(), rule("SM4", None, None));
        assert_eq!(
            validate_rule(&rule("KMS", Some("123"), Some("SM4"))).unwrap(),
            rule("KMS", Some("123"), Some("SM4"))
        );
        assert_eq!(validate_rule(&rule("KMS", Some(""), None)).unwrap(), rule("KMS", None, None));
        assert_eq!(validate_rule(&rule("AES256", Some(""), None)).unwrap(), rule("AES256", None, None));
    }

    #[test]
    fn request_overrides_bucket_default() {
        let mut b = Bucket {
            name: "b".into(),
            owner: "1".into(),
            region: "r".into(),
            acl: "private".into(),
            storage_class: "Standard".into(),
            redundancy: "LRS".into(),
            created: 0,
            encryption: Some(rule("SM4", None, None)),
            policy: None,
        };
        let none = SseRequest::default();
        assert_eq!(resolve(&none, &b).unwrap().unwrap().algorithm, SM4);
        let aes = SseRequest { algorithm: Some("AES256".into()), data_encryption: Some("SM4".into()), key_id: None };
        assert_eq!(
            resolve(&aes, &b).unwrap().unwrap(),
            Plan { algorithm: AES256, suite: Suite::Aes256Gcm, kms_key: None }
        );
        b.encryption = None;
        let data_only = SseRequest { data_encryption: Some("SM4".into()), ..Default::default() };
        assert_eq!(resolve(&data_only, &b).unwrap(), None);
        let kms = SseRequest { algorithm: Some("KMS".into()), data_encryption: Some("SM4".into()), key_id: None };
        assert_eq!(resolve(&kms, &b).unwrap().unwrap(), Plan { algorithm: KMS, suite: Suite::Sm4Gcm, kms_key: None });
    }
}
