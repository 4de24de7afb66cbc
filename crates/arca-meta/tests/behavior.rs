//! Behaviour tests every metadata engine must pass. Today they run against
//! SQLite; a PostgreSQL engine runs the same `check_*` functions.

use arca_meta::*;

fn bucket(name: &str) -> Bucket {
    Bucket {
        name: name.into(),
        owner: "1000".into(),
        region: "cn-hangzhou".into(),
        acl: "private".into(),
        storage_class: "Standard".into(),
        redundancy: "LRS".into(),
        created: 1,
        encryption: None,
        policy: None,
    }
}

fn object(bucket: &str, key: &str, blobs: &[&str]) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: format!("v-{key}-{}", blobs.join("-")),
        kind: ObjectKind::Normal,
        size: blobs.len() as u64,
        etag: "E".into(),
        crc64: 0,
        last_modified: 1,
        attrs: ObjectAttrs::default(),
        encryption: None,
        extents: blobs.iter().map(|b| Extent { blob: (*b).into(), len: 1, salt: None, part: 0 }).collect(),
    }
}

fn upload(bucket: &str, key: &str, id: &str) -> Upload {
    Upload {
        upload_id: id.into(),
        bucket: bucket.into(),
        key: key.into(),
        initiated: 1,
        attrs: ObjectAttrs::default(),
        version_id: format!("v-{id}"),
        encryption: None,
        forbid_overwrite: false,
    }
}

fn part(n: u32, blob: &str) -> Part {
    Part { number: n, blob: blob.into(), size: 1, etag: "E".into(), crc64: 0, last_modified: 1, salt: None }
}

async fn garbage(m: &dyn MetaStore) -> Vec<String> {
    let mut g = m.take_garbage(i64::MAX, 1000).await.unwrap();
    g.sort();
    g
}

async fn check_buckets(m: &dyn MetaStore) {
    m.create_bucket(bucket("b1")).await.unwrap();
    assert!(matches!(m.create_bucket(bucket("b1")).await, Err(MetaError::BucketExists(_))));
    m.create_bucket(bucket("b2")).await.unwrap();
    let names: Vec<String> = m.list_buckets("1000", "", "b1", 10).await.unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, vec!["b2"]);
    assert_eq!(m.list_buckets("1000", "b", "", 1).await.unwrap().len(), 1);
    assert!(m.list_buckets("other", "", "", 10).await.unwrap().is_empty());
    m.put_object(object("b2", "k", &["x1"]), Expect::Any).await.unwrap();
    assert!(matches!(m.delete_bucket("b2").await, Err(MetaError::BucketNotEmpty)));
    m.delete_object("b2", "k").await.unwrap();
    assert_eq!(garbage(m).await, vec!["x1"]);
    m.forget_garbage(&["x1".into()]).await.unwrap();
    m.create_upload(upload("b2", "k", "U1")).await.unwrap();
    assert!(matches!(m.delete_bucket("b2").await, Err(MetaError::BucketNotEmpty)));
    m.abort_upload("U1").await.unwrap();
    m.delete_bucket("b2").await.unwrap();
    assert!(matches!(m.delete_bucket("b2").await, Err(MetaError::NoSuchBucket)));
    assert!(m.get_bucket("b2").await.unwrap().is_none());
}

async fn check_conditional_writes(m: &dyn MetaStore) {
    m.create_bucket(bucket("cw")).await.unwrap();
    assert!(matches!(m.put_object(object("nope", "k", &["z"]), Expect::Any).await, Err(MetaError::NoSuchBucket)));
    m.put_object(object("cw", "k", &["a1"]), Expect::Absent).await.unwrap();
    match m.put_object(object("cw", "k", &["a2"]), Expect::Absent).await {
        Err(MetaError::Conflict(Some(cur))) => assert_eq!(cur.extents[0].blob, "a1"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let cur = m.get_object("cw", "k").await.unwrap().unwrap();
    // An append-style write that expects the current version succeeds once.
    let mut next = object("cw", "k", &["a1", "a3"]);
    next.version_id = cur.version_id.clone();
    let expect = Expect::Current { version_id: cur.version_id.clone(), size: cur.size };
    m.put_object(next.clone(), expect.clone()).await.unwrap();
    assert!(matches!(m.put_object(next, expect).await, Err(MetaError::Conflict(_))));
    // The kept blob a1 is not garbage; a3 replaced nothing.
    assert!(garbage(m).await.is_empty());
    m.put_object(object("cw", "k", &["a4"]), Expect::Any).await.unwrap();
    assert_eq!(garbage(m).await, vec!["a1", "a3"]);
    m.forget_garbage(&["a1".into(), "a3".into()]).await.unwrap();
    assert!(m.delete_object("cw", "k").await.unwrap());
    assert!(!m.delete_object("cw", "k").await.unwrap());
    assert_eq!(garbage(m).await, vec!["a4"]);
    m.forget_garbage(&["a4".into()]).await.unwrap();
}

async fn check_listing_order(m: &dyn MetaStore) {
    m.create_bucket(bucket("lo")).await.unwrap();
    for k in ["b", "a/2", "a/1", "a0", "中", "a", "\u{7f}"] {
        m.put_object(object("lo", k, &[]), Expect::Any).await.unwrap();
    }
    let keys = |v: Vec<ObjectRecord>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
    assert_eq!(
        keys(m.list_objects("lo", "", &Start::First, 100).await.unwrap()),
        vec!["a", "a/1", "a/2", "a0", "b", "\u{7f}", "中"]
    );
    assert_eq!(keys(m.list_objects("lo", "a/", &Start::First, 100).await.unwrap()), vec!["a/1", "a/2"]);
    assert_eq!(keys(m.list_objects("lo", "", &Start::After("a/1".into()), 2).await.unwrap()), vec!["a/2", "a0"]);
    assert_eq!(keys(m.list_objects("lo", "", &Start::AtOrAfter(b"a0".to_vec()), 1).await.unwrap()), vec!["a0"]);
    assert_eq!(keys(m.list_objects("lo", "a/", &Start::After("0".into()), 100).await.unwrap()), vec!["a/1", "a/2"]);
    let stat = m.bucket_stat("lo").await.unwrap();
    assert_eq!(stat.objects, 7);
}

async fn check_multipart(m: &dyn MetaStore) {
    m.create_bucket(bucket("mp")).await.unwrap();
    for (k, id) in [("k", "U2"), ("k", "U1"), ("j", "U3"), ("d/x", "U4")] {
        m.create_upload(upload("mp", k, id)).await.unwrap();
    }
    let ids = |v: Vec<Upload>| v.into_iter().map(|u| u.upload_id).collect::<Vec<_>>();
    assert_eq!(ids(m.list_uploads("mp", "", &UploadStart::First, 10).await.unwrap()), vec!["U4", "U3", "U1", "U2"]);
    let after_k_u1 = UploadStart::After { key: "k".into(), upload_id: "U1".into() };
    assert_eq!(ids(m.list_uploads("mp", "", &after_k_u1, 10).await.unwrap()), vec!["U2"]);
    let after_j = UploadStart::After { key: "j".into(), upload_id: String::new() };
    assert_eq!(ids(m.list_uploads("mp", "", &after_j, 10).await.unwrap()), vec!["U1", "U2"]);
    assert_eq!(ids(m.list_uploads("mp", "d/", &UploadStart::First, 10).await.unwrap()), vec!["U4"]);

    m.put_part("U1", part(1, "p1")).await.unwrap();
    m.put_part("U1", part(2, "p2")).await.unwrap();
    m.put_part("U1", part(2, "p2b")).await.unwrap(); // replaces p2
    m.put_part("U1", part(3, "p3")).await.unwrap();
    assert!(matches!(m.put_part("nope", part(1, "q")).await, Err(MetaError::NoSuchUpload)));
    let nums: Vec<u32> = m.list_parts("U1", 1, 10).await.unwrap().into_iter().map(|p| p.number).collect();
    assert_eq!(nums, vec![2, 3]);
    assert_eq!(garbage(m).await, vec!["p2"]);
    m.forget_garbage(&["p2".into()]).await.unwrap();

    // Complete with parts 1 and 3: part 2's blob becomes garbage, the upload is gone.
    m.complete_upload("U1", object("mp", "k", &["p1", "p3"]), Expect::Any).await.unwrap();
    assert!(m.get_upload("U1").await.unwrap().is_none());
    assert_eq!(garbage(m).await, vec!["p2b"]);
    assert!(matches!(m.complete_upload("U1", object("mp", "k", &[]), Expect::Any).await, Err(MetaError::NoSuchUpload)));
    let refs = m.referenced_blobs().await.unwrap();
    assert!(refs.contains(&"p1".to_string()) && refs.contains(&"p3".to_string()));
    m.forget_garbage(&["p2b".into()]).await.unwrap();

    // A failed complete (expect absent, key exists) changes nothing.
    m.put_part("U2", part(1, "q1")).await.unwrap();
    assert!(matches!(
        m.complete_upload("U2", object("mp", "k", &["q1"]), Expect::Absent).await,
        Err(MetaError::Conflict(_))
    ));
    assert!(m.get_upload("U2").await.unwrap().is_some());
    assert_eq!(m.list_parts("U2", 0, 10).await.unwrap().len(), 1);
    m.abort_upload("U2").await.unwrap();
    assert_eq!(garbage(m).await, vec!["q1"]);
}

async fn check_keys_and_settings(m: &dyn MetaStore) {
    assert!(m.get_setting("x").await.unwrap().is_none());
    m.put_setting("x", "1").await.unwrap();
    m.put_setting("x", "2").await.unwrap();
    assert_eq!(m.get_setting("x").await.unwrap().as_deref(), Some("2"));
    let key = AccessKey {
        id: "AK".into(),
        secret: "S3CRET".into(),
        account_id: "1000".into(),
        enabled: true,
        created: 1,
        user: None,
    };
    m.put_access_key(key.clone()).await.unwrap();
    assert_eq!(m.get_access_key("AK").await.unwrap(), Some(key.clone()));
    assert!(!format!("{key:?}").contains("S3CRET"));
    let user_key = AccessKey { id: "AK2".into(), user: Some("alice".into()), created: 2, ..key.clone() };
    m.put_access_key(user_key.clone()).await.unwrap();
    assert_eq!(m.list_access_keys("1000").await.unwrap(), vec![key.clone(), user_key.clone()]);
    assert!(m.list_access_keys("2000").await.unwrap().is_empty());
    assert!(m.delete_access_key("AK2").await.unwrap());
    assert!(!m.delete_access_key("AK2").await.unwrap());
    assert_eq!(m.get_access_key("AK2").await.unwrap(), None);
    // Identity records: create-only inserts keep the first, puts replace, lists are by name.
    assert!(m.iam_put("1000", "user", "bob", "{\"v\":1}", true).await.unwrap());
    assert!(!m.iam_put("1000", "user", "bob", "{\"v\":2}", true).await.unwrap());
    assert_eq!(m.iam_get("1000", "user", "bob").await.unwrap().as_deref(), Some("{\"v\":1}"));
    assert!(m.iam_put("1000", "user", "bob", "{\"v\":3}", false).await.unwrap());
    assert!(m.iam_put("1000", "user", "alice", "a", true).await.unwrap());
    assert!(m.iam_put("1000", "group", "g", "g", true).await.unwrap());
    assert_eq!(m.iam_list("1000", "user").await.unwrap(), vec!["a".to_owned(), "{\"v\":3}".to_owned()]);
    assert!(m.iam_get("2000", "user", "bob").await.unwrap().is_none());
    assert!(m.iam_delete("1000", "user", "bob").await.unwrap());
    assert!(!m.iam_delete("1000", "user", "bob").await.unwrap());
    let acct = |id: &str, created| arca_meta::Account { id: id.into(), name: format!("n{id}"), created };
    m.ensure_account(acct("1000", 1)).await.unwrap();
    m.ensure_account(acct("2000", 2)).await.unwrap();
    m.ensure_account(Account { name: "renamed".into(), ..acct("1000", 1) }).await.unwrap();
    assert_eq!(m.list_accounts().await.unwrap(), vec![acct("1000", 1), acct("2000", 2)]);
    let v = |n: u32| KeyVersion { key_id: "svc".into(), version: n, sealed: vec![n as u8; 4], created: n as i64 };
    assert!(m.add_key_version(v(1)).await.unwrap());
    assert!(m.add_key_version(v(2)).await.unwrap());
    assert!(!m.add_key_version(v(2)).await.unwrap(), "a version is written once");
    let got = m.key_versions("svc").await.unwrap();
    assert_eq!(
        got.iter().map(|k| (k.version, k.sealed.clone())).collect::<Vec<_>>(),
        vec![(1, vec![1; 4]), (2, vec![2; 4])]
    );
    assert!(!format!("{:?}", got[0]).contains("[1, 1"), "Debug hides sealed material");
    assert!(m.key_versions("other").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_engine() {
    let dir = tempfile::tempdir().unwrap();
    let m = Sqlite::open(&dir.path().join("meta.sqlite")).unwrap();
    check_buckets(&m).await;
    check_conditional_writes(&m).await;
    check_listing_order(&m).await;
    check_multipart(&m).await;
    check_keys_and_settings(&m).await;
    // Reopening runs no migration twice and keeps the data.
    drop(m);
    let m = Sqlite::open(&dir.path().join("meta.sqlite")).unwrap();
    assert!(m.get_bucket("lo").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn complete_refuses_parts_replaced_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let m = Sqlite::open(&dir.path().join("meta.sqlite")).unwrap();
    m.create_bucket(bucket("race")).await.unwrap();
    m.create_upload(upload("race", "k", "UR")).await.unwrap();
    m.put_part("UR", part(1, "first")).await.unwrap();
    // Complete built its record from part 1 = "first"; a retried upload replaced it.
    m.put_part("UR", part(1, "second")).await.unwrap();
    assert!(matches!(
        m.complete_upload("UR", object("race", "k", &["first"]), Expect::Any).await,
        Err(MetaError::PartsChanged)
    ));
    assert!(m.get_object("race", "k").await.unwrap().is_none());
    m.complete_upload("UR", object("race", "k", &["second"]), Expect::Any).await.unwrap();
    assert_eq!(m.get_object("race", "k").await.unwrap().unwrap().extents[0].blob, "second");
}
