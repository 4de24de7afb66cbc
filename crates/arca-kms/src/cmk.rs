//! Customer master keys: the KMS model of Alibaba Cloud KMS (spec
//! `kms-ram.md` Part A) — key states, aliases, versions and rotation, data
//! keys, Encrypt/Decrypt with an encryption context, the deletion window,
//! the OSS service key `alias/acs/oss`, and metering of every call.

use std::collections::BTreeMap;
use std::sync::Arc;

use arca_crypto::{DataKey, Suite, aead_open, aead_seal};
use arca_iam::{Audit, AuditEvent};
use arca_meta::{Cmk, KmsUsage, MetaStore};
use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::{KeyManager, KmsError, now};

/// Key states.
pub const ENABLED: &str = "Enabled";
/// See [`ENABLED`].
pub const DISABLED: &str = "Disabled";
/// See [`ENABLED`].
pub const PENDING_DELETION: &str = "PendingDeletion";
/// See [`ENABLED`].
pub const PENDING_IMPORT: &str = "PendingImport";
/// The alias of the account's default OSS key.
pub const OSS_ALIAS: &str = "alias/acs/oss";

/// Who a KMS call is for: the account and the region it is served in, and
/// the principal acting (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsContext {
    /// Account id.
    pub account: String,
    /// Region id.
    pub region: String,
    /// ARN of the principal acting (`acs:ram::{account}:user/{name}`, …).
    pub principal: String,
}

impl KmsContext {
    /// A call by the account's root identity.
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        let account = account.into();
        KmsContext { principal: format!("acs:ram::{account}:root"), account, region: region.into() }
    }

    /// The same call made by `principal`.
    pub fn acting_as(mut self, principal: impl Into<String>) -> Self {
        self.principal = principal.into();
        self
    }
}

/// What CreateKey asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// `Aliyun_AES_256` (default) or `Aliyun_SM4`.
    pub spec: Option<String>,
    /// `Aliyun_KMS` (default) or `EXTERNAL`.
    pub origin: Option<String>,
    /// Description.
    pub description: String,
    /// Automatic rotation period.
    pub rotation_secs: Option<u64>,
}

/// A data key from GenerateDataKey.
pub struct GeneratedKey {
    /// Resolved key id.
    pub key_id: String,
    /// Primary version id used.
    pub version_id: String,
    /// The raw data key (callers send it base64-encoded, or use it directly).
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The wrapped data key.
    pub blob: Vec<u8>,
}

/// Result of Decrypt: the sealed plaintext text and where it came from.
pub struct Decrypted {
    /// Key id.
    pub key_id: String,
    /// Version id.
    pub version_id: String,
    /// Exactly the text that was sealed (base64, per KMS semantics).
    pub plaintext: Zeroizing<String>,
}

/// Rotation bounds: 7 to 730 days.
pub const MIN_ROTATION_SECS: u64 = 7 * 86400;
/// See [`MIN_ROTATION_SECS`].
pub const MAX_ROTATION_SECS: u64 = 730 * 86400;

/// How long a key record, alias or KMS switch read from the store is reused.
/// Writes through this `Kms` clear the cache at once; writes by another
/// process (the `arca kms` CLI, another node) are seen within this bound.
pub const LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A small time-bounded cache of store reads (`None` values are cached too:
/// "no such alias" is as hot a question as any).
#[derive(Default)]
struct Lookups {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Option<String>)>>,
    /// Facts that never change once written (version id → key and number).
    immutable: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Lookups {
    fn get(&self, name: &str) -> Option<Option<String>> {
        let entries = self.entries.lock().expect("lookups lock");
        entries.get(name).filter(|(at, _)| at.elapsed() < LOOKUP_TTL).map(|(_, v)| v.clone())
    }

    fn put(&self, name: String, value: Option<String>) {
        let mut entries = self.entries.lock().expect("lookups lock");
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(name, (std::time::Instant::now(), value));
    }

    fn clear(&self) {
        self.entries.lock().expect("lookups lock").clear();
        // Immutable facts stay.
    }

    fn get_forever(&self, name: &str) -> Option<Option<String>> {
        self.immutable.lock().expect("lookups lock").get(name).cloned().map(Some)
    }

    fn put_forever(&self, name: String, value: String) {
        let mut entries = self.immutable.lock().expect("lookups lock");
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(name, value);
    }
}

/// The built-in KMS.
pub struct Kms {
    meta: Arc<dyn MetaStore>,
    keys: Arc<KeyManager>,
    pending_usage: std::sync::Mutex<std::collections::HashMap<(String, String, String), u64>>,
    /// Recently read key records, aliases and KMS switches (see [`LOOKUP_TTL`]).
    lookups: Lookups,
    /// Serializes read-modify-write of key records in this process, so a
    /// rotation cannot write back a state that a DisableKey just changed.
    /// (Several nodes over one store would need compare-and-swap writes.)
    write_lock: tokio::sync::Mutex<()>,
    /// Length of a "day" of the deletion window, in seconds (86400; tests shorten it).
    day_secs: u64,
    /// Where key uses are recorded.
    audit: Arc<Audit>,
}

fn spec_suite(spec: &str) -> Result<Suite, KmsError> {
    match spec {
        "Aliyun_AES_256" => Ok(Suite::Aes256Gcm),
        "Aliyun_SM4" => Ok(Suite::Sm4Gcm),
        _ => Err(KmsError::InvalidParameter("KeySpec".into())),
    }
}

/// Canonical digest of an encryption context: a JSON object of string
/// values, compared by content (key order and spacing do not matter).
pub fn context_digest(context: Option<&str>) -> Result<[u8; 32], KmsError> {
    let map: BTreeMap<String, String> = match context.map(str::trim).filter(|c| !c.is_empty()) {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text).map_err(|_| KmsError::InvalidParameter("EncryptionContext".into()))?,
    };
    let canonical = map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let d = digest::digest(&digest::SHA256, canonical.as_bytes());
    Ok(d.as_ref().try_into().expect("32 bytes"))
}

fn blob_aad(version_id: &str, ctx: &[u8; 32]) -> Vec<u8> {
    [b"arca/v1/kms".as_slice(), version_id.as_bytes(), ctx].concat()
}

fn new_uuid() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system RNG");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl Kms {
    /// The KMS over the key manager's store.
    pub fn new(meta: Arc<dyn MetaStore>, keys: Arc<KeyManager>, day_secs: u64) -> Self {
        Kms {
            meta,
            keys,
            pending_usage: Default::default(),
            write_lock: Default::default(),
            day_secs: day_secs.max(1),
            audit: Arc::new(Audit::disabled()),
            lookups: Lookups::default(),
        }
    }

    /// A key record, from the lookup cache or the store.
    async fn cmk_record(&self, key_id: &str) -> Result<Option<Cmk>, KmsError> {
        let name = format!("cmk/{key_id}");
        if let Some(v) = self.lookups.get(&name) {
            return Ok(v.and_then(|json| serde_json::from_str(&json).ok()));
        }
        let cmk = self.meta.get_cmk(key_id).await?;
        self.lookups.put(name, cmk.as_ref().and_then(|c| serde_json::to_string(c).ok()));
        Ok(cmk)
    }

    /// Which key and version number a version id belongs to. Immutable once
    /// written, so it is cached without expiry (deleted keys fail later, on
    /// the key record).
    async fn version_of(&self, version_id: &str) -> Result<(String, u32), KmsError> {
        let name = format!("version/{version_id}");
        if let Some(Some(v)) = self.lookups.get_forever(&name)
            && let Some((key, n)) = v.rsplit_once('/')
            && let Ok(n) = n.parse()
        {
            return Ok((key.to_owned(), n));
        }
        let (key_id, n) = self.meta.get_kms_version(version_id).await?.ok_or(KmsError::KeyNotFound)?;
        self.lookups.put_forever(name, format!("{key_id}/{n}"));
        Ok((key_id, n))
    }

    /// The key an alias points at, from the lookup cache or the store.
    async fn alias_target(&self, account: &str, region: &str, alias: &str) -> Result<Option<String>, KmsError> {
        let name = format!("alias/{account}/{region}/{alias}");
        if let Some(v) = self.lookups.get(&name) {
            return Ok(v);
        }
        let target = self.meta.get_alias(account, region, alias).await?;
        self.lookups.put(name, target.clone());
        Ok(target)
    }

    async fn store_cmk(&self, cmk: Cmk) -> Result<(), KmsError> {
        let r = self.meta.put_cmk(cmk).await;
        self.lookups.clear();
        Ok(r?)
    }

    async fn remove_cmk(&self, key_id: &str) -> Result<(), KmsError> {
        let r = self.meta.delete_cmk(key_id).await;
        self.lookups.clear();
        Ok(r?)
    }

    async fn store_alias(
        &self,
        account: &str,
        region: &str,
        alias: &str,
        key_id: &str,
        replace: bool,
    ) -> Result<bool, KmsError> {
        let r = self.meta.put_alias(account, region, alias, key_id, replace).await;
        self.lookups.clear();
        Ok(r?)
    }

    async fn remove_alias(&self, account: &str, region: &str, alias: &str) -> Result<bool, KmsError> {
        let r = self.meta.delete_alias(account, region, alias).await;
        self.lookups.clear();
        Ok(r?)
    }

    /// Records every key use (GenerateDataKey, Encrypt, Decrypt) in `audit`.
    pub fn with_audit(mut self, audit: Arc<Audit>) -> Self {
        self.audit = audit;
        self
    }

    fn audit_use(&self, ctx: &KmsContext, action: &str, cmk_arn: &str, key_id: &str, version_id: &str) {
        self.audit.record(&AuditEvent {
            decision: "allow",
            principal: &ctx.principal,
            action: &format!("kms:{action}"),
            resource: cmk_arn,
            reason: None,
            key_id: Some(key_id),
            key_version: Some(version_id),
            source_ip: None,
        });
    }

    /// The ARN of a key.
    pub fn arn(cmk: &Cmk) -> String {
        format!("acs:kms:{}:{}:key/{}", cmk.region, cmk.account, cmk.key_id)
    }

    /// Counts a call in memory; [`Kms::flush_usage`] writes the counts in
    /// one transaction (every second in the server, at shutdown, and before
    /// any read of the usage), so metering costs no write per call.
    async fn count(&self, ctx: &KmsContext, key_id: &str, action: &str) -> Result<(), KmsError> {
        let mut pending = self.pending_usage.lock().expect("lock");
        *pending.entry((ctx.account.clone(), key_id.to_owned(), action.to_owned())).or_insert(0) += 1;
        Ok(())
    }

    /// Writes the counted calls to the store.
    pub async fn flush_usage(&self) -> Result<(), KmsError> {
        let calls: Vec<(String, String, String, u64)> = {
            let mut pending = self.pending_usage.lock().expect("lock");
            pending.drain().map(|((a, k, act), n)| (a, k, act, n)).collect()
        };
        if calls.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.meta.add_kms_calls(calls.clone()).await {
            // Keep them for the next flush rather than lose billable calls.
            let mut pending = self.pending_usage.lock().expect("lock");
            for (a, k, act, n) in calls {
                *pending.entry((a, k, act)).or_insert(0) += n;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Counts a call that names no key (ListKeys, CreateKey, …).
    pub async fn meter(&self, ctx: &KmsContext, key_id: &str, action: &str) -> Result<(), KmsError> {
        self.count(ctx, key_id, action).await
    }

    /// Call counts of the account (exact: pending counts are written first).
    pub async fn usage(&self, account: &str) -> Result<Vec<KmsUsage>, KmsError> {
        self.flush_usage().await?;
        Ok(self.meta.kms_usage(account).await?)
    }

    /// Finds a key by id, alias or ARN in the caller's account and region.
    /// A key whose deletion window has passed is destroyed here.
    pub async fn resolve(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        self.check_service(&ctx.account).await?;
        let key_ref = key_ref.trim();
        if key_ref.is_empty() {
            return Err(KmsError::MissingParameter("KeyId".into()));
        }
        let (region, account, rest) = match key_ref.strip_prefix("acs:kms:") {
            Some(arn) => {
                let mut p = arn.splitn(3, ':');
                match (p.next(), p.next(), p.next()) {
                    (Some(r), Some(a), Some(rest)) => (r, a, rest),
                    _ => return Err(KmsError::InvalidParameter("KeyId".into())),
                }
            }
            None => (ctx.region.as_str(), ctx.account.as_str(), key_ref),
        };
        if region != ctx.region || account != ctx.account {
            return Err(KmsError::KeyNotFound);
        }
        let key_id = if rest.starts_with("alias/") {
            self.alias_target(account, region, rest).await?.ok_or(KmsError::AliasNotFound)?
        } else {
            rest.strip_prefix("key/").unwrap_or(rest).to_owned()
        };
        let cmk = self.cmk_record(&key_id).await?.ok_or(KmsError::KeyNotFound)?;
        if cmk.account != ctx.account || cmk.region != ctx.region {
            return Err(KmsError::KeyNotFound);
        }
        self.expire(cmk).await
    }

    /// Destroys a key whose deletion date has passed (crypto-shredding), and
    /// deletes imported material whose expiry has passed.
    async fn expire(&self, mut cmk: Cmk) -> Result<Cmk, KmsError> {
        if cmk.state == PENDING_DELETION && cmk.delete_at.is_some_and(|t| now() >= t) {
            self.remove_cmk(&cmk.key_id).await?;
            self.keys.forget(&cmk.key_id);
            tracing::warn!(key_id = %cmk.key_id, "key deleted at the end of its deletion window; what it protected is unreadable");
            return Err(KmsError::KeyNotFound);
        }
        if cmk.state != PENDING_DELETION && cmk.material_expire.is_some_and(|t| now() >= t) {
            self.meta.delete_key_versions(&cmk.key_id).await?;
            self.keys.forget(&cmk.key_id);
            cmk.state = PENDING_IMPORT.into();
            cmk.material_expire = None;
            self.store_cmk(cmk.clone()).await?;
            tracing::warn!(key_id = %cmk.key_id, "imported key material expired and was deleted");
        }
        Ok(cmk)
    }

    /// Whether KMS is switched on for the account (it is unless switched off).
    pub async fn check_service(&self, account: &str) -> Result<(), KmsError> {
        let name = format!("kms-service/{account}");
        let state = match self.lookups.get(&name) {
            Some(v) => v,
            None => {
                let v = self.meta.get_setting(&name).await?;
                self.lookups.put(name, v.clone());
                v
            }
        };
        match state.as_deref() {
            Some("off") => Err(KmsError::ServiceNotEnabled),
            _ => Ok(()),
        }
    }

    /// Switches KMS on or off for an account.
    pub async fn set_service(&self, account: &str, on: bool) -> Result<(), KmsError> {
        self.meta.put_setting(&format!("kms-service/{account}"), if on { "on" } else { "off" }).await?;
        self.lookups.clear();
        Ok(())
    }

    /// Rotates every key whose automatic rotation is due (the scheduler's tick).
    pub async fn rotate_due_keys(&self) -> Result<usize, KmsError> {
        let mut rotated = 0;
        for cmk in self.meta.all_cmks().await? {
            let before = cmk.versions.len();
            let after = self.rotate_if_due(cmk).await?;
            if after.versions.len() > before {
                tracing::info!(key_id = %after.key_id, version = after.versions.len(), "key rotated on schedule");
                rotated += 1;
            }
        }
        Ok(rotated)
    }

    /// Buckets whose default encryption names this key (by id, ARN or alias).
    async fn buckets_naming(&self, cmk: &Cmk) -> Result<Vec<String>, KmsError> {
        let aliases: Vec<String> = self
            .meta
            .list_aliases(&cmk.account, &cmk.region)
            .await?
            .into_iter()
            .filter(|(_, k)| *k == cmk.key_id)
            .map(|(a, _)| a)
            .collect();
        let arn = Self::arn(cmk);
        let buckets = self.meta.list_buckets(&cmk.account, "", "", usize::MAX).await?;
        Ok(buckets
            .into_iter()
            .filter(|b| b.region == cmk.region)
            .filter(|b| {
                b.encryption
                    .as_ref()
                    .and_then(|r| r.kms_key_id.as_deref())
                    .is_some_and(|k| k == cmk.key_id || k == arn || aliases.iter().any(|a| a == k))
            })
            .map(|b| b.name)
            .collect())
    }

    async fn add_version(&self, cmk: &mut Cmk, material: Option<DataKey>) -> Result<(), KmsError> {
        let suite = spec_suite(&cmk.spec)?;
        let number = cmk.versions.len() as u32 + 1;
        let material = material.unwrap_or_else(|| DataKey::generate(suite));
        let (_, created) = self.keys.add_version_with(&cmk.key_id, material, number).await?;
        let version_id = new_uuid();
        self.meta.put_kms_version(&version_id, &cmk.key_id, number).await?;
        cmk.versions.push(version_id);
        cmk.last_rotation = created;
        Ok(())
    }

    /// CreateKey.
    pub async fn create_key(&self, ctx: &KmsContext, req: NewKey) -> Result<Cmk, KmsError> {
        self.create(ctx, req, "User").await
    }

    async fn create(&self, ctx: &KmsContext, req: NewKey, creator_type: &str) -> Result<Cmk, KmsError> {
        self.check_service(&ctx.account).await?;
        let spec = req.spec.unwrap_or_else(|| "Aliyun_AES_256".into());
        spec_suite(&spec)?;
        let origin = req.origin.unwrap_or_else(|| "Aliyun_KMS".into());
        if origin != "Aliyun_KMS" && origin != "EXTERNAL" {
            return Err(KmsError::InvalidParameter("Origin".into()));
        }
        if let Some(r) = req.rotation_secs {
            if !(MIN_ROTATION_SECS..=MAX_ROTATION_SECS).contains(&r) {
                return Err(KmsError::InvalidParameter("RotationInterval".into()));
            }
            if origin == "EXTERNAL" {
                return Err(KmsError::UnsupportedOrigin);
            }
        }
        let mut cmk = Cmk {
            key_id: new_uuid(),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            spec,
            state: if origin == "EXTERNAL" { PENDING_IMPORT.into() } else { ENABLED.into() },
            origin,
            description: req.description,
            creator_type: creator_type.into(),
            created: now(),
            delete_at: None,
            rotation_secs: req.rotation_secs,
            versions: Vec::new(),
            last_rotation: now(),
            material_expire: None,
            material_fingerprint: None,
        };
        if cmk.origin == "Aliyun_KMS" {
            self.add_version(&mut cmk, None).await?;
        }
        self.store_cmk(cmk.clone()).await?;
        self.count(ctx, &cmk.key_id, "CreateKey").await?;
        Ok(cmk)
    }

    /// The account's default OSS key in the region, created on first use.
    pub async fn oss_service_key(&self, ctx: &KmsContext) -> Result<Cmk, KmsError> {
        if let Some(id) = self.alias_target(&ctx.account, &ctx.region, OSS_ALIAS).await?
            && let Some(cmk) = self.cmk_record(&id).await?
        {
            return Ok(cmk);
        }
        let req = NewKey { description: "default key of OSS server-side encryption".into(), ..Default::default() };
        let cmk = self.create(ctx, req, "Service").await?;
        if !self.store_alias(&ctx.account, &ctx.region, OSS_ALIAS, &cmk.key_id, false).await? {
            // Another request created it first: use theirs; ours stays unused.
            self.remove_cmk(&cmk.key_id).await?;
            let id = self.meta.get_alias(&ctx.account, &ctx.region, OSS_ALIAS).await?.ok_or(KmsError::AliasNotFound)?;
            return self.meta.get_cmk(&id).await?.ok_or(KmsError::KeyNotFound);
        }
        tracing::info!(account = %ctx.account, region = %ctx.region, key_id = %cmk.key_id, "created the default OSS key alias/acs/oss");
        Ok(cmk)
    }

    /// Rotates the key if its automatic rotation is due (lazily, on use).
    async fn rotate_if_due(&self, cmk: Cmk) -> Result<Cmk, KmsError> {
        let due = |c: &Cmk| c.rotation_secs.is_some_and(|p| c.state == ENABLED && now() - c.last_rotation >= p as i64);
        if !due(&cmk) {
            return Ok(cmk);
        }
        let _guard = self.write_lock.lock().await;
        let Some(mut cmk) = self.meta.get_cmk(&cmk.key_id).await? else { return Err(KmsError::KeyNotFound) };
        if let Some(period) = cmk.rotation_secs
            && cmk.state == ENABLED
            && now() - cmk.last_rotation >= period as i64
        {
            self.add_version(&mut cmk, None).await?;
            self.store_cmk(cmk.clone()).await?;
        }
        Ok(cmk)
    }

    fn usable(cmk: &Cmk) -> Result<(), KmsError> {
        match cmk.state.as_str() {
            ENABLED => Ok(()),
            other => Err(KmsError::Rejected(other.to_owned())),
        }
    }

    /// GenerateDataKey: a fresh data key of `bytes` bytes, sealed under the
    /// key's primary version with the encryption context as AAD. The blob
    /// holds the base64 text of the key (KMS semantics). `action` is the name
    /// metered (GenerateDataKey or GenerateDataKeyWithoutPlaintext).
    pub async fn generate_data_key(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        bytes: usize,
        context: Option<&str>,
        action: &str,
    ) -> Result<GeneratedKey, KmsError> {
        if !(1..=1024).contains(&bytes) {
            return Err(KmsError::InvalidParameter("NumberOfBytes".into()));
        }
        let mut key = Zeroizing::new(vec![0u8; bytes]);
        aws_lc_rs::rand::fill(&mut key).expect("system RNG");
        let b64 = Zeroizing::new(base64_encode(&key));
        let (key_id, version_id, blob) = self.seal(ctx, key_ref, b64.as_bytes(), context, action).await?;
        Ok(GeneratedKey { key_id, version_id, plaintext: key, blob })
    }

    /// Encrypt: seals the caller's (base64) plaintext text as given.
    pub async fn encrypt(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        plaintext: &str,
        context: Option<&str>,
    ) -> Result<(String, String, Vec<u8>), KmsError> {
        if plaintext.len() > 8 * 1024 {
            return Err(KmsError::InvalidParameter("Plaintext".into()));
        }
        self.seal(ctx, key_ref, plaintext.as_bytes(), context, "Encrypt").await
    }

    async fn seal(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        text: &[u8],
        context: Option<&str>,
        action: &str,
    ) -> Result<(String, String, Vec<u8>), KmsError> {
        let digest = context_digest(context)?;
        let cmk = self.resolve(ctx, key_ref).await?;
        Self::usable(&cmk)?;
        let cmk = self.rotate_if_due(cmk).await?;
        let number = cmk.versions.len() as u32;
        let version_id = cmk.versions.last().cloned().ok_or(KmsError::Rejected(PENDING_IMPORT.into()))?;
        let master = self.keys.key_version(&cmk.key_id, number).await?;
        let mut blob = version_id.as_bytes().to_vec();
        blob.extend_from_slice(&aead_seal(&master, &blob_aad(&version_id, &digest), text));
        tracing::debug!(account = %ctx.account, key_id = %cmk.key_id, version_id = %version_id, action, "sealed under the primary version");
        self.count(ctx, &cmk.key_id, action).await?;
        self.audit_use(ctx, action, &Self::arn(&cmk), &cmk.key_id, &version_id);
        Ok((cmk.key_id, version_id, blob))
    }

    /// The id of the key a CiphertextBlob was sealed under (for authorizing
    /// Decrypt before it runs).
    pub async fn blob_key_id(&self, blob: &[u8]) -> Result<String, KmsError> {
        let version_id = blob
            .get(..36)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| KmsError::InvalidParameter("CiphertextBlob".into()))?;
        Ok(self.version_of(version_id).await?.0)
    }

    /// Decrypt: the key version is named inside the blob; the context must be
    /// equivalent to the one used to seal.
    pub async fn decrypt(&self, ctx: &KmsContext, blob: &[u8], context: Option<&str>) -> Result<Decrypted, KmsError> {
        let digest = context_digest(context)?;
        if blob.len() < 36 + 12 + 16 {
            return Err(KmsError::InvalidParameter("CiphertextBlob".into()));
        }
        let version_id =
            std::str::from_utf8(&blob[..36]).map_err(|_| KmsError::InvalidParameter("CiphertextBlob".into()))?;
        let (key_id, number) = self.version_of(version_id).await?;
        let cmk = self.resolve(ctx, &key_id).await?;
        Self::usable(&cmk)?;
        let master = self.keys.key_version(&key_id, number).await.map_err(|_| KmsError::KeyNotFound)?;
        let text = aead_open(&master, &blob_aad(version_id, &digest), &blob[36..])
            .map_err(|_| KmsError::InvalidParameter("CiphertextBlob".into()))?;
        let plaintext = Zeroizing::new(
            String::from_utf8(text.to_vec()).map_err(|_| KmsError::InvalidParameter("CiphertextBlob".into()))?,
        );
        tracing::debug!(account = %ctx.account, key_id = %key_id, version_id, "decrypted");
        self.count(ctx, &key_id, "Decrypt").await?;
        self.audit_use(ctx, "Decrypt", &Self::arn(&cmk), &key_id, version_id);
        Ok(Decrypted { key_id, version_id: version_id.to_owned(), plaintext })
    }

    /// Applies a state change checked against the operation matrix.
    async fn transition_locked(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        action: &str,
        f: impl FnOnce(&mut Cmk) -> Result<(), KmsError>,
    ) -> Result<Cmk, KmsError> {
        let mut cmk = self.resolve(ctx, key_ref).await?;
        f(&mut cmk)?;
        self.store_cmk(cmk.clone()).await?;
        self.count(ctx, &cmk.key_id, action).await?;
        Ok(cmk)
    }

    async fn transition(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        action: &str,
        f: impl FnOnce(&mut Cmk) -> Result<(), KmsError>,
    ) -> Result<Cmk, KmsError> {
        let _guard = self.write_lock.lock().await;
        self.transition_locked(ctx, key_ref, action, f).await
    }

    /// EnableKey.
    pub async fn enable_key(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        self.transition(ctx, key_ref, "EnableKey", |c| match c.state.as_str() {
            ENABLED | DISABLED => {
                c.state = ENABLED.into();
                Ok(())
            }
            _ => Err(KmsError::StateModifiedFailed),
        })
        .await
    }

    /// DisableKey.
    pub async fn disable_key(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        self.transition(ctx, key_ref, "DisableKey", |c| match c.state.as_str() {
            ENABLED | DISABLED => {
                c.state = DISABLED.into();
                Ok(())
            }
            _ => Err(KmsError::StateModifiedFailed),
        })
        .await
    }

    /// ScheduleKeyDeletion: 7–366 "days" (a day is `day_secs`).
    /// A key that a bucket's default encryption names is refused unless `force`.
    pub async fn schedule_deletion(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        days: u64,
        force: bool,
    ) -> Result<Cmk, KmsError> {
        if !(7..=366).contains(&days) {
            return Err(KmsError::InvalidParameter("PendingWindowInDays".into()));
        }
        if !force {
            let cmk = self.resolve(ctx, key_ref).await?;
            let buckets = self.buckets_naming(&cmk).await?;
            if !buckets.is_empty() {
                return Err(KmsError::KeyInUse(buckets));
            }
        }
        let day = self.day_secs as i64;
        self.transition(ctx, key_ref, "ScheduleKeyDeletion", |c| {
            if c.state == PENDING_DELETION {
                return Err(KmsError::StateModifiedFailed);
            }
            if c.creator_type == "Service" {
                return Err(KmsError::UnsupportedOperation);
            }
            c.state = PENDING_DELETION.into();
            c.delete_at = Some(now() + days as i64 * day);
            Ok(())
        })
        .await
    }

    /// CancelKeyDeletion (back to Enabled).
    pub async fn cancel_deletion(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        self.transition(ctx, key_ref, "CancelKeyDeletion", |c| {
            if c.state != PENDING_DELETION {
                return Err(KmsError::StateModifiedFailed);
            }
            c.state = if c.versions.is_empty() { PENDING_IMPORT.into() } else { ENABLED.into() };
            c.delete_at = None;
            Ok(())
        })
        .await
    }

    /// UpdateKeyDescription.
    pub async fn update_description(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        description: &str,
    ) -> Result<Cmk, KmsError> {
        self.transition(ctx, key_ref, "UpdateKeyDescription", |c| {
            if c.state == PENDING_DELETION {
                return Err(KmsError::Rejected(PENDING_DELETION.into()));
            }
            c.description = description.to_owned();
            Ok(())
        })
        .await
    }

    /// UpdateRotationPolicy.
    pub async fn update_rotation(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        rotation_secs: Option<u64>,
    ) -> Result<Cmk, KmsError> {
        if rotation_secs.is_some_and(|r| !(MIN_ROTATION_SECS..=MAX_ROTATION_SECS).contains(&r)) {
            return Err(KmsError::InvalidParameter("RotationInterval".into()));
        }
        let cmk = self
            .transition(ctx, key_ref, "UpdateRotationPolicy", |c| {
                Self::usable(c)?;
                if c.origin == "EXTERNAL" || c.creator_type == "Service" {
                    return Err(KmsError::UnsupportedOrigin);
                }
                c.rotation_secs = rotation_secs;
                Ok(())
            })
            .await?;
        // A policy whose next rotation date lies in the past rotates now.
        self.rotate_if_due(cmk).await
    }

    /// CreateKeyVersion: a new primary version now.
    pub async fn create_key_version(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        let _guard = self.write_lock.lock().await;
        let mut cmk = self.resolve(ctx, key_ref).await?;
        Self::usable(&cmk)?;
        if cmk.origin == "EXTERNAL" {
            return Err(KmsError::UnsupportedOrigin);
        }
        if cmk.creator_type == "Service" {
            return Err(KmsError::UnsupportedOperation);
        }
        self.add_version(&mut cmk, None).await?;
        self.store_cmk(cmk.clone()).await?;
        self.count(ctx, &cmk.key_id, "CreateKeyVersion").await?;
        Ok(cmk)
    }

    /// Keys of the account in the region (expired ones are destroyed first).
    pub async fn list_keys(&self, ctx: &KmsContext) -> Result<Vec<Cmk>, KmsError> {
        self.check_service(&ctx.account).await?;
        let mut out = Vec::new();
        for cmk in self.meta.list_cmks(&ctx.account, &ctx.region).await? {
            if let Ok(c) = self.expire(cmk).await {
                out.push(c);
            }
        }
        self.count(ctx, "", "ListKeys").await?;
        Ok(out)
    }

    /// CreateAlias (`alias/…`, not `alias/acs…`) or UpdateAlias (`replace`).
    pub async fn put_alias(&self, ctx: &KmsContext, alias: &str, key_ref: &str, replace: bool) -> Result<(), KmsError> {
        let name = alias.strip_prefix("alias/").ok_or_else(|| KmsError::InvalidParameter("AliasName".into()))?;
        if name.is_empty() || name.len() > 255 || alias.starts_with("alias/acs") {
            return Err(KmsError::InvalidParameter("AliasName".into()));
        }
        let cmk = self.resolve(ctx, key_ref).await?;
        if cmk.state == PENDING_DELETION {
            return Err(if replace {
                KmsError::Rejected(PENDING_DELETION.into())
            } else {
                KmsError::StateModifiedFailed
            });
        }
        if replace && self.meta.get_alias(&ctx.account, &ctx.region, alias).await?.is_none() {
            return Err(KmsError::AliasNotFound);
        }
        if !self.store_alias(&ctx.account, &ctx.region, alias, &cmk.key_id, replace).await? {
            return Err(KmsError::AliasAlreadyExists);
        }
        self.count(ctx, &cmk.key_id, if replace { "UpdateAlias" } else { "CreateAlias" }).await
    }

    /// DeleteAlias.
    pub async fn delete_alias(&self, ctx: &KmsContext, alias: &str) -> Result<(), KmsError> {
        if alias.starts_with("alias/acs") {
            return Err(KmsError::InvalidParameter("AliasName".into()));
        }
        if !self.remove_alias(&ctx.account, &ctx.region, alias).await? {
            return Err(KmsError::AliasNotFound);
        }
        self.count(ctx, "", "DeleteAlias").await
    }

    /// Aliases of the account in the region, optionally of one key.
    pub async fn list_aliases(
        &self,
        ctx: &KmsContext,
        key_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, KmsError> {
        let all = self.meta.list_aliases(&ctx.account, &ctx.region).await?;
        self.count(ctx, key_id.unwrap_or(""), if key_id.is_some() { "ListAliasesByKeyId" } else { "ListAliases" })
            .await?;
        Ok(all.into_iter().filter(|(_, k)| key_id.is_none_or(|id| id == k)).collect())
    }

    /// Version creation times, in order (the last is the primary).
    pub async fn versions(&self, cmk: &Cmk) -> Result<Vec<(String, i64)>, KmsError> {
        let stored = self.meta.key_versions(&cmk.key_id).await?;
        Ok(cmk.versions.iter().zip(stored.iter()).map(|(id, v)| (id.clone(), v.created)).collect())
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What GetParametersForImport returns.
pub struct ImportParams {
    /// Key id.
    pub key_id: String,
    /// Opaque token (base64).
    pub token: String,
    /// The wrapping public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// Token expiry (24 hours).
    pub expires: i64,
}

const IMPORT_TOKEN_SECS: i64 = 24 * 3600;

#[derive(serde::Serialize, serde::Deserialize)]
struct ImportToken {
    key_id: String,
    algorithm: String,
    sealed_private_key: String,
    expires: i64,
}

fn token_setting(token_id: &str) -> String {
    format!("kms-import/{token_id}")
}

impl Kms {
    /// GetParametersForImport: an RSA-2048 wrapping key and a token, valid
    /// 24 hours, bound to the key and the wrapping algorithm.
    pub async fn get_parameters_for_import(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        wrapping_spec: &str,
        algorithm: &str,
    ) -> Result<ImportParams, KmsError> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
        let cmk = self.resolve(ctx, key_ref).await?;
        if cmk.origin != "EXTERNAL" {
            return Err(KmsError::UnsupportedOrigin);
        }
        if wrapping_spec != "RSA_2048" {
            return Err(KmsError::InvalidParameter("WrappingKeySpec".into()));
        }
        if !["RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"].contains(&algorithm) {
            return Err(KmsError::InvalidParameter("WrappingAlgorithm".into()));
        }
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).map_err(|_| KmsError::Unseal("rsa".into()))?;
        let pkcs8 = Zeroizing::new(private.as_der().map_err(|_| KmsError::Unseal("rsa".into()))?.as_ref().to_vec());
        let public_key_der =
            private.public_key().as_der().map_err(|_| KmsError::Unseal("rsa".into()))?.as_ref().to_vec();
        let token_id = new_uuid();
        let expires = now() + IMPORT_TOKEN_SECS;
        let record = ImportToken {
            key_id: cmk.key_id.clone(),
            algorithm: algorithm.to_owned(),
            sealed_private_key: hex::encode(self.keys.seal(token_setting(&token_id).as_bytes(), &pkcs8)?),
            expires,
        };
        let json = serde_json::to_string(&record).map_err(|e| KmsError::Unseal(e.to_string()))?;
        self.meta.put_setting(&token_setting(&token_id), &json).await?;
        self.count(ctx, &cmk.key_id, "GetParametersForImport").await?;
        Ok(ImportParams { key_id: cmk.key_id, token: base64_encode(token_id.as_bytes()), public_key_der, expires })
    }

    /// ImportKeyMaterial: unwraps the material with the token's private key;
    /// a key only ever accepts the same material again.
    pub async fn import_key_material(
        &self,
        ctx: &KmsContext,
        key_ref: &str,
        encrypted_material: &[u8],
        token: &str,
        expire_unix: Option<i64>,
    ) -> Result<Cmk, KmsError> {
        use aws_lc_rs::rsa::{
            OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, Pkcs1PrivateDecryptingKey,
            PrivateDecryptingKey,
        };
        use base64::Engine as _;
        let _guard = self.write_lock.lock().await;
        let mut cmk = self.resolve(ctx, key_ref).await?;
        if cmk.origin != "EXTERNAL" {
            return Err(KmsError::UnsupportedOrigin);
        }
        if cmk.state == PENDING_DELETION {
            return Err(KmsError::StateModifiedFailed);
        }
        if expire_unix.is_some_and(|t| t != 0 && t <= now()) {
            return Err(KmsError::InvalidParameter("KeyMaterialExpireUnix".into()));
        }
        let token_id = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(KmsError::InvalidImportToken)?;
        let json = self.meta.get_setting(&token_setting(&token_id)).await?.ok_or(KmsError::InvalidImportToken)?;
        let record: ImportToken = serde_json::from_str(&json).map_err(|_| KmsError::InvalidImportToken)?;
        if record.key_id != cmk.key_id {
            return Err(KmsError::InvalidImportToken);
        }
        if now() > record.expires {
            return Err(KmsError::ExpiredImportToken);
        }
        let sealed = hex::decode(&record.sealed_private_key).map_err(|_| KmsError::InvalidImportToken)?;
        let pkcs8 = self.keys.unseal(token_setting(&token_id).as_bytes(), &sealed)?;
        let private = PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| KmsError::InvalidImportToken)?;
        let mut out = Zeroizing::new(vec![0u8; 512]);
        let material: &[u8] = match record.algorithm.as_str() {
            "RSAES_PKCS1_V1_5" => Pkcs1PrivateDecryptingKey::new(private)
                .map_err(|_| KmsError::InvalidImportToken)?
                .decrypt(encrypted_material, &mut out)
                .map_err(|_| KmsError::InvalidKeyMaterial)?,
            alg => {
                let oaep = if alg == "RSAES_OAEP_SHA_1" { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
                OaepPrivateDecryptingKey::new(private)
                    .map_err(|_| KmsError::InvalidImportToken)?
                    .decrypt(oaep, encrypted_material, &mut out, None)
                    .map_err(|_| KmsError::InvalidKeyMaterial)?
            }
        };
        let suite = spec_suite(&cmk.spec)?;
        let key = DataKey::from_bytes(suite, material).map_err(|_| KmsError::InvalidKeyMaterial)?;
        let fingerprint = self.keys.fingerprint(key.expose());
        if cmk.material_fingerprint.as_ref().is_some_and(|f| *f != fingerprint) {
            return Err(KmsError::InvalidKeyMaterial);
        }
        self.keys.forget(&cmk.key_id);
        if cmk.versions.is_empty() {
            self.add_version(&mut cmk, Some(key)).await?;
        } else {
            // The same material again: version 1 comes back, so what it protected reads again.
            self.meta.delete_key_versions(&cmk.key_id).await?;
            self.keys.add_version_with(&cmk.key_id, key, 1).await?;
        }
        cmk.material_fingerprint = Some(fingerprint);
        cmk.material_expire = expire_unix.filter(|t| *t != 0);
        if cmk.state == PENDING_IMPORT {
            cmk.state = ENABLED.into();
        }
        self.store_cmk(cmk.clone()).await?;
        self.count(ctx, &cmk.key_id, "ImportKeyMaterial").await?;
        Ok(cmk)
    }

    /// DeleteKeyMaterial: the imported material is gone (what it protects is
    /// unreadable until the same material is imported again).
    pub async fn delete_key_material(&self, ctx: &KmsContext, key_ref: &str) -> Result<Cmk, KmsError> {
        let _guard = self.write_lock.lock().await;
        let mut cmk = self.resolve(ctx, key_ref).await?;
        if cmk.origin != "EXTERNAL" {
            return Err(KmsError::UnsupportedOrigin);
        }
        self.meta.delete_key_versions(&cmk.key_id).await?;
        self.keys.forget(&cmk.key_id);
        if cmk.state != PENDING_DELETION {
            cmk.state = PENDING_IMPORT.into();
        }
        cmk.material_expire = None;
        self.store_cmk(cmk.clone()).await?;
        self.count(ctx, &cmk.key_id, "DeleteKeyMaterial").await?;
        Ok(cmk)
    }
}
