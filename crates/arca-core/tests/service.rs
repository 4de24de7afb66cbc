//! The object service over the real engines (SQLite + local disk).

use std::sync::Arc;
use std::time::Duration;

use arca_blob::{BlobStore, LocalDisk};
use arca_core::*;
use arca_meta::{MetaStore, Sqlite};
use bytes::Bytes;
use futures_util::StreamExt;

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    svc: ObjectService,
    owner: Caller,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&root.join("meta.sqlite")).unwrap());
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalDisk::open(&root).unwrap());
    let limits = Limits {
        garbage_delay: Duration::ZERO,
        ..Limits::default()
    };
    let svc = ObjectService::new(meta, blobs, limits);
    let owner = Caller::account("1000");
    let spec = CreateBucket {
        name: "bkt".into(),
        region: "r1".into(),
        acl: "private".into(),
        storage_class: "Standard".into(),
        redundancy: "LRS".into(),
    };
    svc.create_bucket(&owner, spec).await.unwrap();
    Env {
        _dir: dir,
        root,
        svc,
        owner,
    }
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from(c))),
    ))
}

fn attrs() -> ObjectAttrs {
    ObjectAttrs {
        content_type: "application/octet-stream".into(),
        acl: "default".into(),
        ..Default::default()
    }
}

fn put(key: &str, data: &[u8]) -> PutObject {
    PutObject {
        bucket: "bkt".into(),
        key: key.into(),
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        forbid_overwrite: false,
        body: body(data.chunks(7).map(<[u8]>::to_vec).collect()),
    }
}

async fn read_all(svc: &ObjectService, rec: &ObjectRecord, start: u64, end: u64) -> Vec<u8> {
    let mut s = svc.read_object(rec, start, end);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

fn blob_count(root: &std::path::Path) -> usize {
    walk(&root.join("blobs")) + walk(&root.join("tmp"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { walk(&p) } else { 1 })
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_overwrite_and_garbage() {
    let e = env().await;
    let rec = e
        .svc
        .put_object(&e.owner, "r1", put("k", b"hello"))
        .await
        .unwrap();
    assert_eq!(rec.etag, "5D41402ABC4B2A76B9719D911017C592");
    assert_eq!(rec.crc64, 11177612005948864433);
    let got = e.svc.head_object(&e.owner, "r1", "bkt", "k").await.unwrap();
    assert_eq!(read_all(&e.svc, &got, 0, got.size).await, b"hello");
    assert_eq!(read_all(&e.svc, &got, 1, 3).await, b"el");
    e.svc
        .put_object(&e.owner, "r1", put("k", b"world!"))
        .await
        .unwrap();
    assert_eq!(blob_count(&e.root), 2, "old blob stays until collected");
    assert_eq!(e.svc.collect_garbage().await.unwrap(), 1);
    assert_eq!(blob_count(&e.root), 1);
    let got = e.svc.head_object(&e.owner, "r1", "bkt", "k").await.unwrap();
    assert_eq!(read_all(&e.svc, &got, 0, got.size).await, b"world!");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_digest_and_short_body_store_nothing() {
    let e = env().await;
    let mut p = put("k", b"hello");
    p.content_md5 = Some([0; 16]);
    assert!(matches!(
        e.svc.put_object(&e.owner, "r1", p).await,
        Err(CoreError::InvalidDigest)
    ));
    let mut p = put("k", b"hello");
    p.content_length = Some(10);
    assert!(matches!(
        e.svc.put_object(&e.owner, "r1", p).await,
        Err(CoreError::IncompleteBody)
    ));
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("client went away")),
    ]));
    let p = PutObject {
        body: failing,
        content_length: None,
        ..put("k", b"")
    };
    assert!(e.svc.put_object(&e.owner, "r1", p).await.is_err());
    assert!(matches!(
        e.svc.head_object(&e.owner, "r1", "bkt", "k").await,
        Err(CoreError::NoSuchKey)
    ));
    assert_eq!(blob_count(&e.root), 0, "no partial or refused blob remains");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_puts_leave_one_whole_version() {
    let e = env().await;
    let a = vec![b'a'; 300_000];
    let b = vec![b'b'; 200_000];
    let (ra, rb) = tokio::join!(
        e.svc.put_object(&e.owner, "r1", put("k", &a)),
        e.svc.put_object(&e.owner, "r1", put("k", &b))
    );
    ra.unwrap();
    rb.unwrap();
    let got = e.svc.head_object(&e.owner, "r1", "bkt", "k").await.unwrap();
    let data = read_all(&e.svc, &got, 0, got.size).await;
    assert!(data == a || data == b);
    e.svc.collect_garbage().await.unwrap();
    assert_eq!(blob_count(&e.root), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_check_position_and_combine_crc() {
    let e = env().await;
    let app = |pos: u64, data: &[u8]| AppendObject {
        bucket: "bkt".into(),
        key: "log".into(),
        position: pos,
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        body: body(vec![data.to_vec()]),
    };
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", app(3, b"x")).await,
        Err(CoreError::PositionNotEqualToLength { next: 0 })
    ));
    e.svc
        .append_object(&e.owner, "r1", app(0, b"hel"))
        .await
        .unwrap();
    let rec = e
        .svc
        .append_object(&e.owner, "r1", app(3, b"lo"))
        .await
        .unwrap();
    assert_eq!(rec.crc64, checksum::crc64(b"hello"));
    assert_eq!(rec.kind, ObjectKind::Appendable);
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", app(3, b"!")).await,
        Err(CoreError::PositionNotEqualToLength { next: 5 })
    ));
    assert_eq!(read_all(&e.svc, &rec, 2, 5).await, b"llo");
    e.svc
        .put_object(&e.owner, "r1", put("plain", b"x"))
        .await
        .unwrap();
    let mut a = app(1, b"y");
    a.key = "plain".into();
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", a).await,
        Err(CoreError::ObjectNotAppendable)
    ));
    // Racing appends at the same position: exactly one wins.
    let (x, y) = tokio::join!(
        e.svc.append_object(&e.owner, "r1", app(5, b"1")),
        e.svc.append_object(&e.owner, "r1", app(5, b"2"))
    );
    assert!(x.is_ok() != y.is_ok());
    let rec = e
        .svc
        .head_object(&e.owner, "r1", "bkt", "log")
        .await
        .unwrap();
    assert_eq!(rec.size, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_assembles_without_copying() {
    let e = env().await;
    let up = e
        .svc
        .initiate_upload(&e.owner, "r1", "bkt", "mp", attrs())
        .await
        .unwrap();
    let p1 = vec![1u8; 102_400];
    let p2 = vec![2u8; 10];
    let part = |n: u32, d: &[u8]| {
        e.svc.upload_part(
            &e.owner,
            "r1",
            "bkt",
            "mp",
            &up.upload_id,
            n,
            None,
            Some(d.len() as u64),
            body(vec![d.to_vec()]),
        )
    };
    let a = part(1, &p1).await.unwrap();
    let b = part(2, &p2).await.unwrap();
    let listed = vec![
        CompletePart {
            number: 2,
            etag: b.etag.clone(),
        },
        CompletePart {
            number: 1,
            etag: a.etag.clone(),
        },
    ];
    assert!(matches!(
        e.svc
            .complete_upload(
                &e.owner,
                "r1",
                "bkt",
                "mp",
                &up.upload_id,
                Some(listed),
                None,
                false
            )
            .await,
        Err(CoreError::InvalidPartOrder)
    ));
    let bad = vec![CompletePart {
        number: 1,
        etag: "\"00\"".into(),
    }];
    assert!(matches!(
        e.svc
            .complete_upload(
                &e.owner,
                "r1",
                "bkt",
                "mp",
                &up.upload_id,
                Some(bad),
                None,
                false
            )
            .await,
        Err(CoreError::InvalidPart)
    ));
    let small_first = vec![
        CompletePart {
            number: 2,
            etag: b.etag.clone(),
        },
        CompletePart {
            number: 3,
            etag: "x".into(),
        },
    ];
    assert!(
        e.svc
            .complete_upload(
                &e.owner,
                "r1",
                "bkt",
                "mp",
                &up.upload_id,
                Some(small_first),
                None,
                false
            )
            .await
            .is_err()
    );
    let ok = vec![
        CompletePart {
            number: 1,
            etag: format!("\"{}\"", a.etag.to_lowercase()),
        },
        CompletePart {
            number: 2,
            etag: b.etag.clone(),
        },
    ];
    let rec = e
        .svc
        .complete_upload(
            &e.owner,
            "r1",
            "bkt",
            "mp",
            &up.upload_id,
            Some(ok),
            None,
            false,
        )
        .await
        .unwrap();
    let whole = [p1.clone(), p2.clone()].concat();
    assert_eq!(rec.crc64, checksum::crc64(&whole));
    assert!(rec.etag.ends_with("-2"));
    assert_eq!(
        read_all(&e.svc, &rec, 102_395, 102_405).await,
        whole[102_395..102_405]
    );
    assert_eq!(blob_count(&e.root), 2, "parts became the object's extents");
    assert!(matches!(
        e.svc
            .abort_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id)
            .await,
        Err(CoreError::NoSuchUpload)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_collected_and_referenced_blobs_kept() {
    let e = env().await;
    e.svc
        .put_object(&e.owner, "r1", put("keep", b"data"))
        .await
        .unwrap();
    // A blob written but never committed (a crash between the two steps).
    let store = LocalDisk::open(&e.root).unwrap();
    let mut w = store.create().unwrap();
    w.write_all(b"orphan").unwrap();
    w.finish().unwrap();
    std::fs::write(e.root.join("tmp/0123.part"), b"partial").unwrap();
    assert_eq!(blob_count(&e.root), 3);
    assert_eq!(
        e.svc
            .collect_orphans(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "young blobs are left alone"
    );
    assert_eq!(e.svc.collect_orphans(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(blob_count(&e.root), 1);
    let got = e
        .svc
        .head_object(&e.owner, "r1", "bkt", "keep")
        .await
        .unwrap();
    assert_eq!(read_all(&e.svc, &got, 0, 4).await, b"data");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_and_region_rules() {
    let e = env().await;
    let stranger = Caller::account("2000");
    let anon = Caller::anonymous();
    assert!(
        matches!(e.svc.bucket(&e.owner, "r2", "bkt", Access::Read).await, Err(CoreError::WrongRegion { region }) if region == "r1")
    );
    assert!(matches!(
        e.svc.put_object(&anon, "r1", put("k", b"x")).await,
        Err(CoreError::AccessDenied(_))
    ));
    e.svc
        .put_bucket_acl(&e.owner, "r1", "bkt", "public-read")
        .await
        .unwrap();
    e.svc
        .put_object(&e.owner, "r1", put("k", b"x"))
        .await
        .unwrap();
    assert!(e.svc.head_object(&anon, "r1", "bkt", "k").await.is_ok());
    assert!(matches!(
        e.svc.put_object(&stranger, "r1", put("k", b"y")).await,
        Err(CoreError::AccessDenied(_))
    ));
    e.svc
        .put_object_acl(&e.owner, "r1", "bkt", "k", "private")
        .await
        .unwrap();
    assert!(matches!(
        e.svc.head_object(&anon, "r1", "bkt", "k").await,
        Err(CoreError::AccessDenied(_))
    ));
    assert!(matches!(
        e.svc
            .put_bucket_acl(&e.owner, "r1", "bkt", "wide-open")
            .await,
        Err(CoreError::InvalidArgument { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_rolls_up_prefixes_once_per_page_boundary() {
    let e = env().await;
    for k in ["a/1", "a/2", "b/1", "c", "d/1", "d/2", "e"] {
        e.svc
            .put_object(&e.owner, "r1", put(k, b"x"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = ListParams {
            delimiter: "/".into(),
            after: after.clone(),
            max_keys: 2,
            ..Default::default()
        };
        let l = e.svc.list_objects(&e.owner, "r1", "bkt", &p).await.unwrap();
        seen.extend(l.objects.iter().map(|o| o.key.clone()));
        seen.extend(l.prefixes.iter().cloned());
        if !l.truncated {
            break;
        }
        after = l.next_marker;
    }
    seen.sort();
    assert_eq!(seen, vec!["a/", "b/", "c", "d/", "e"]);
}
