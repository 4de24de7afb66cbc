//! The CMK model over a real SQLite store: states, aliases, versions,
//! data keys with encryption contexts, the deletion window and metering.

use std::sync::Arc;
use std::time::Duration;

use arca_crypto::{DataKey, Suite};
use arca_kms::*;
use arca_meta::{MetaStore, Sqlite};

struct Env {
    _dir: tempfile::TempDir,
    kms: Kms,
    ctx: KmsContext,
    meta: Arc<dyn MetaStore>,
}

fn env(day_secs: u64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&dir.path().join("m.sqlite")).unwrap());
    let root = DataKey::from_bytes(Suite::Aes256Gcm, &[3; 32]).unwrap();
    let keys = Arc::new(KeyManager::new(meta.clone(), root, Duration::from_secs(3600)));
    let kms = Kms::new(meta.clone(), keys, day_secs);
    Env { _dir: dir, kms, ctx: KmsContext::new("1416614965936597", "cn-hangzhou"), meta }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread")]
async fn data_keys_round_trip_with_equivalent_context() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    assert_eq!((k.state.as_str(), k.spec.as_str(), k.versions.len()), ("Enabled", "Aliyun_AES_256", 1));
    let g =
        e.kms.generate_data_key(&e.ctx, &k.key_id, 32, Some(r#"{"a":"1","b":"2"}"#), "GenerateDataKey").await.unwrap();
    assert_eq!(g.plaintext.len(), 32);
    assert_eq!(g.key_id, k.key_id);
    // Same content, other order and spacing: equivalent.
    let d = e.kms.decrypt(&e.ctx, &g.blob, Some(r#"{ "b": "2", "a": "1" }"#)).await.unwrap();
    assert_eq!(d.plaintext.as_str(), b64(&g.plaintext));
    assert_eq!(d.version_id, g.version_id);
    assert!(matches!(e.kms.decrypt(&e.ctx, &g.blob, Some(r#"{"a":"1"}"#)).await, Err(KmsError::InvalidParameter(_))));
    assert!(matches!(e.kms.decrypt(&e.ctx, &g.blob, None).await, Err(KmsError::InvalidParameter(_))));
    assert!(matches!(e.kms.decrypt(&e.ctx, &g.blob[..40], None).await, Err(KmsError::InvalidParameter(_))));
    let (kid, _, blob) = e.kms.encrypt(&e.ctx, &k.key_id, "aGVsbG8=", None).await.unwrap();
    assert_eq!(kid, k.key_id);
    assert_eq!(e.kms.decrypt(&e.ctx, &blob, None).await.unwrap().plaintext.as_str(), "aGVsbG8=");
    let other_region = KmsContext { region: "cn-shanghai".into(), ..e.ctx.clone() };
    assert!(matches!(e.kms.decrypt(&other_region, &blob, None).await, Err(KmsError::KeyNotFound)));
    assert!(matches!(e.kms.encrypt(&other_region, &k.key_id, "eA==", None).await, Err(KmsError::KeyNotFound)));
    assert!(matches!(
        e.kms.generate_data_key(&e.ctx, &k.key_id, 0, None, "GenerateDataKey").await,
        Err(KmsError::InvalidParameter(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn states_follow_the_operation_matrix() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey { spec: Some("Aliyun_SM4".into()), ..Default::default() }).await.unwrap();
    let (_, _, blob) = e.kms.encrypt(&e.ctx, &k.key_id, "eA==", None).await.unwrap();
    e.kms.disable_key(&e.ctx, &k.key_id).await.unwrap();
    e.kms.disable_key(&e.ctx, &k.key_id).await.unwrap(); // idempotent
    assert!(
        matches!(e.kms.encrypt(&e.ctx, &k.key_id, "eA==", None).await, Err(KmsError::Rejected(s)) if s == "Disabled")
    );
    assert!(matches!(e.kms.decrypt(&e.ctx, &blob, None).await, Err(KmsError::Rejected(s)) if s == "Disabled"));
    e.kms.enable_key(&e.ctx, &k.key_id).await.unwrap();
    assert!(e.kms.decrypt(&e.ctx, &blob, None).await.is_ok());
    e.kms.schedule_deletion(&e.ctx, &k.key_id, 7, false).await.unwrap();
    assert!(matches!(e.kms.decrypt(&e.ctx, &blob, None).await, Err(KmsError::Rejected(s)) if s == "PendingDeletion"));
    assert!(matches!(e.kms.enable_key(&e.ctx, &k.key_id).await, Err(KmsError::StateModifiedFailed)));
    assert!(matches!(e.kms.schedule_deletion(&e.ctx, &k.key_id, 7, false).await, Err(KmsError::StateModifiedFailed)));
    e.kms.cancel_deletion(&e.ctx, &k.key_id).await.unwrap();
    assert!(matches!(e.kms.cancel_deletion(&e.ctx, &k.key_id).await, Err(KmsError::StateModifiedFailed)));
    assert_eq!(e.kms.decrypt(&e.ctx, &blob, None).await.unwrap().plaintext.as_str(), "eA==");
    assert!(matches!(e.kms.schedule_deletion(&e.ctx, &k.key_id, 6, false).await, Err(KmsError::InvalidParameter(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_window_end_shreds_the_key() {
    let e = env(1); // a "day" of one second
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    let g = e.kms.generate_data_key(&e.ctx, &k.key_id, 32, None, "GenerateDataKey").await.unwrap();
    e.kms.schedule_deletion(&e.ctx, &k.key_id, 7, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(7200)).await;
    assert!(matches!(e.kms.decrypt(&e.ctx, &g.blob, None).await, Err(KmsError::KeyNotFound)));
    assert!(matches!(e.kms.resolve(&e.ctx, &k.key_id).await, Err(KmsError::KeyNotFound)));
    assert!(e.kms.list_keys(&e.ctx).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn aliases_arns_and_the_oss_service_key() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    e.kms.put_alias(&e.ctx, "alias/app", &k.key_id, false).await.unwrap();
    assert!(matches!(e.kms.put_alias(&e.ctx, "alias/app", &k.key_id, false).await, Err(KmsError::AliasAlreadyExists)));
    assert!(matches!(
        e.kms.put_alias(&e.ctx, "alias/acs/mine", &k.key_id, false).await,
        Err(KmsError::InvalidParameter(_))
    ));
    assert!(matches!(e.kms.put_alias(&e.ctx, "noprefix", &k.key_id, false).await, Err(KmsError::InvalidParameter(_))));
    assert_eq!(e.kms.resolve(&e.ctx, "alias/app").await.unwrap().key_id, k.key_id);
    assert_eq!(e.kms.resolve(&e.ctx, &Kms::arn(&k)).await.unwrap().key_id, k.key_id);
    assert!(matches!(e.kms.resolve(&e.ctx, "alias/nope").await, Err(KmsError::AliasNotFound)));
    let a = e.kms.oss_service_key(&e.ctx).await.unwrap();
    let b = e.kms.oss_service_key(&e.ctx).await.unwrap();
    assert_eq!(a.key_id, b.key_id);
    assert_eq!(a.creator_type, "Service");
    assert_eq!(e.kms.resolve(&e.ctx, OSS_ALIAS).await.unwrap().key_id, a.key_id);
    assert!(matches!(e.kms.schedule_deletion(&e.ctx, &a.key_id, 7, false).await, Err(KmsError::UnsupportedOperation)));
    assert!(matches!(e.kms.delete_alias(&e.ctx, OSS_ALIAS).await, Err(KmsError::InvalidParameter(_))));
    let by_key = e.kms.list_aliases(&e.ctx, Some(&k.key_id)).await.unwrap();
    assert_eq!(by_key, vec![("alias/app".to_string(), k.key_id.clone())]);
    e.kms.delete_alias(&e.ctx, "alias/app").await.unwrap();
    assert!(matches!(e.kms.delete_alias(&e.ctx, "alias/app").await, Err(KmsError::AliasNotFound)));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_versions_encrypt_old_versions_still_decrypt() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    let old = e.kms.generate_data_key(&e.ctx, &k.key_id, 16, None, "GenerateDataKey").await.unwrap();
    let k2 = e.kms.create_key_version(&e.ctx, &k.key_id).await.unwrap();
    assert_eq!(k2.versions.len(), 2);
    let new = e.kms.generate_data_key(&e.ctx, &k.key_id, 16, None, "GenerateDataKey").await.unwrap();
    assert_ne!(old.version_id, new.version_id);
    assert_eq!(new.version_id, k2.versions[1]);
    assert_eq!(e.kms.decrypt(&e.ctx, &old.blob, None).await.unwrap().version_id, old.version_id);
    assert!(matches!(e.kms.update_rotation(&e.ctx, &k.key_id, Some(3600)).await, Err(KmsError::InvalidParameter(_))));
    e.kms.update_rotation(&e.ctx, &k.key_id, Some(MIN_ROTATION_SECS)).await.unwrap();
    assert_eq!(e.kms.versions(&k2).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_is_metered() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    for _ in 0..3 {
        e.kms.generate_data_key(&e.ctx, &k.key_id, 32, None, "GenerateDataKey").await.unwrap();
    }
    let (_, _, blob) = e.kms.encrypt(&e.ctx, &k.key_id, "eA==", None).await.unwrap();
    e.kms.decrypt(&e.ctx, &blob, None).await.unwrap();
    let _ = e.kms.decrypt(&e.ctx, b"garbage-garbage-garbage-garbage-garbage-garbage-garbage-garbage-", None).await;
    let usage = e.kms.usage(&e.ctx.account).await.unwrap();
    let count = |action: &str| usage.iter().find(|u| u.key_id == k.key_id && u.action == action).map_or(0, |u| u.count);
    assert_eq!((count("CreateKey"), count("GenerateDataKey"), count("Encrypt"), count("Decrypt")), (1, 3, 1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_named_by_a_bucket_default_needs_force_to_delete() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    e.kms.put_alias(&e.ctx, "alias/bucket-key", &k.key_id, false).await.unwrap();
    let bucket = |name: &str, key: &str| arca_meta::Bucket {
        name: name.into(),
        owner: e.ctx.account.clone(),
        region: e.ctx.region.clone(),
        acl: "private".into(),
        storage_class: "Standard".into(),
        redundancy: "LRS".into(),
        created: 1,
        encryption: Some(arca_meta::EncryptionRule {
            algorithm: "KMS".into(),
            kms_key_id: Some(key.into()),
            kms_data_encryption: None,
        }),
        policy: None,
    };
    e.meta.create_bucket(bucket("by-alias", "alias/bucket-key")).await.unwrap();
    e.meta.create_bucket(bucket("by-id", &k.key_id)).await.unwrap();
    e.meta.create_bucket(bucket("other", "some-other-key")).await.unwrap();
    match e.kms.schedule_deletion(&e.ctx, &k.key_id, 7, false).await {
        Err(KmsError::KeyInUse(buckets)) => assert_eq!(buckets, vec!["by-alias".to_string(), "by-id".to_string()]),
        other => panic!("expected KeyInUse, got {:?}", other.map(|c| c.state)),
    }
    assert_eq!(e.kms.resolve(&e.ctx, &k.key_id).await.unwrap().state, "Enabled");
    assert_eq!(e.kms.schedule_deletion(&e.ctx, &k.key_id, 7, true).await.unwrap().state, "PendingDeletion");
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_switched_off_for_an_account_refuses_everything() {
    let e = env(86400);
    let k = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    let (_, _, blob) = e.kms.encrypt(&e.ctx, &k.key_id, "eA==", None).await.unwrap();
    e.kms.set_service(&e.ctx.account, false).await.unwrap();
    assert!(matches!(e.kms.decrypt(&e.ctx, &blob, None).await, Err(KmsError::ServiceNotEnabled)));
    assert!(matches!(e.kms.create_key(&e.ctx, NewKey::default()).await, Err(KmsError::ServiceNotEnabled)));
    assert!(matches!(e.kms.list_keys(&e.ctx).await, Err(KmsError::ServiceNotEnabled)));
    let other = KmsContext { account: "2".into(), ..e.ctx.clone() };
    assert!(e.kms.create_key(&other, NewKey::default()).await.is_ok(), "other accounts are not affected");
    e.kms.set_service(&e.ctx.account, true).await.unwrap();
    assert!(e.kms.decrypt(&e.ctx, &blob, None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_rotates_due_keys() {
    let e = env(86400);
    let k = e
        .kms
        .create_key(&e.ctx, NewKey { rotation_secs: Some(MIN_ROTATION_SECS), ..Default::default() })
        .await
        .unwrap();
    let idle = e.kms.create_key(&e.ctx, NewKey::default()).await.unwrap();
    assert_eq!(e.kms.rotate_due_keys().await.unwrap(), 0);
    // Eight days later (moved back in the record instead of waiting).
    let mut aged = e.meta.get_cmk(&k.key_id).await.unwrap().unwrap();
    aged.last_rotation -= 8 * 86400;
    e.meta.put_cmk(aged).await.unwrap();
    assert_eq!(e.kms.rotate_due_keys().await.unwrap(), 1);
    assert_eq!(e.kms.resolve(&e.ctx, &k.key_id).await.unwrap().versions.len(), 2);
    assert_eq!(e.kms.resolve(&e.ctx, &idle.key_id).await.unwrap().versions.len(), 1);
}
