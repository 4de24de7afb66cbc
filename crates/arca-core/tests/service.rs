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
    meta: Arc<dyn MetaStore>,
    keys: Arc<arca_kms::KeyManager>,
    kms: Arc<arca_kms::Kms>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let meta: Arc<dyn MetaStore> = Arc::new(Sqlite::open(&root.join("meta.sqlite")).unwrap());
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalDisk::open(&root).unwrap());
    let limits = Limits { garbage_delay: Duration::ZERO, ..Limits::default() };
    let root_key = arca_crypto::DataKey::from_bytes(arca_crypto::Suite::Aes256Gcm, &[9; 32]).unwrap();
    let keys = Arc::new(arca_kms::KeyManager::new(meta.clone(), root_key, Duration::from_secs(3600)));
    let kms = Arc::new(arca_kms::Kms::new(meta.clone(), keys.clone(), 1));
    let svc = ObjectService::new(meta.clone(), blobs, keys.clone(), kms.clone(), limits);
    let owner = Caller::account("1000");
    let spec = CreateBucket {
        name: "bkt".into(),
        region: "r1".into(),
        acl: "private".into(),
        storage_class: "Standard".into(),
        redundancy: "LRS".into(),
        encryption: None,
    };
    svc.create_bucket(&owner, spec).await.unwrap();
    Env { _dir: dir, root, svc, owner, meta, keys, kms }
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))))
}

fn attrs() -> ObjectAttrs {
    ObjectAttrs { content_type: "application/octet-stream".into(), acl: "default".into(), ..Default::default() }
}

fn put(key: &str, data: &[u8]) -> PutObject {
    PutObject {
        bucket: "bkt".into(),
        key: key.into(),
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        forbid_overwrite: false,
        sse: SseRequest::default(),
        body: body(data.chunks(7).map(<[u8]>::to_vec).collect()),
    }
}

async fn bkt(e: &Env) -> arca_meta::Bucket {
    e.meta.get_bucket("bkt").await.unwrap().unwrap()
}

async fn read_range(svc: &ObjectService, rec: &ObjectRecord, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let caller = Caller::account("1000");
    let (bucket, _) = svc.locate_object(&caller, "r1", &rec.bucket, &rec.key).await.unwrap();
    let mut s = svc.read_object(&caller, &bucket, rec, start, end).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

async fn read_all(svc: &ObjectService, rec: &ObjectRecord, start: u64, end: u64) -> Vec<u8> {
    read_range(svc, rec, start, end).await.unwrap()
}

fn blob_count(root: &std::path::Path) -> usize {
    walk(&root.join("blobs")) + walk(&root.join("tmp"))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map_or(0, |rd| rd.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { walk(&p) } else { 1 }).sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn put_get_overwrite_and_garbage() {
    let e = env().await;
    let rec = e.svc.put_object(&e.owner, "r1", put("k", b"hello")).await.unwrap();
    assert_eq!(rec.etag, "5D41402ABC4B2A76B9719D911017C592");
    assert_eq!(rec.crc64, 11177612005948864433);
    let got = e.svc.head_object(&e.owner, "r1", "bkt", "k").await.unwrap();
    assert_eq!(read_all(&e.svc, &got, 0, got.size).await, b"hello");
    assert_eq!(read_all(&e.svc, &got, 1, 3).await, b"el");
    e.svc.put_object(&e.owner, "r1", put("k", b"world!")).await.unwrap();
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
    assert!(matches!(e.svc.put_object(&e.owner, "r1", p).await, Err(CoreError::InvalidDigest)));
    let mut p = put("k", b"hello");
    p.content_length = Some(10);
    assert!(matches!(e.svc.put_object(&e.owner, "r1", p).await, Err(CoreError::IncompleteBody)));
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("client went away")),
    ]));
    let p = PutObject { body: failing, content_length: None, ..put("k", b"") };
    assert!(e.svc.put_object(&e.owner, "r1", p).await.is_err());
    assert!(matches!(e.svc.head_object(&e.owner, "r1", "bkt", "k").await, Err(CoreError::NoSuchKey)));
    assert_eq!(blob_count(&e.root), 0, "no partial or refused blob remains");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_puts_leave_one_whole_version() {
    let e = env().await;
    let a = vec![b'a'; 300_000];
    let b = vec![b'b'; 200_000];
    let (ra, rb) =
        tokio::join!(e.svc.put_object(&e.owner, "r1", put("k", &a)), e.svc.put_object(&e.owner, "r1", put("k", &b)));
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
        sse: SseRequest::default(),
        body: body(vec![data.to_vec()]),
    };
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", app(3, b"x")).await,
        Err(CoreError::PositionNotEqualToLength { next: 0 })
    ));
    e.svc.append_object(&e.owner, "r1", app(0, b"hel")).await.unwrap();
    let rec = e.svc.append_object(&e.owner, "r1", app(3, b"lo")).await.unwrap();
    assert_eq!(rec.crc64, checksum::crc64(b"hello"));
    assert_eq!(rec.kind, ObjectKind::Appendable);
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", app(3, b"!")).await,
        Err(CoreError::PositionNotEqualToLength { next: 5 })
    ));
    assert_eq!(read_all(&e.svc, &rec, 2, 5).await, b"llo");
    e.svc.put_object(&e.owner, "r1", put("plain", b"x")).await.unwrap();
    let mut a = app(1, b"y");
    a.key = "plain".into();
    assert!(matches!(e.svc.append_object(&e.owner, "r1", a).await, Err(CoreError::ObjectNotAppendable)));
    // Racing appends at the same position: exactly one wins.
    let (x, y) = tokio::join!(
        e.svc.append_object(&e.owner, "r1", app(5, b"1")),
        e.svc.append_object(&e.owner, "r1", app(5, b"2"))
    );
    assert!(x.is_ok() != y.is_ok());
    let rec = e.svc.head_object(&e.owner, "r1", "bkt", "log").await.unwrap();
    assert_eq!(rec.size, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_assembles_without_copying() {
    let e = env().await;
    let up = e.svc.initiate_upload(&e.owner, "r1", "bkt", "mp", attrs(), &SseRequest::default(), false).await.unwrap();
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
    let a = part(1, &p1).await.unwrap().0;
    let b = part(2, &p2).await.unwrap().0;
    let listed =
        vec![CompletePart { number: 2, etag: b.etag.clone() }, CompletePart { number: 1, etag: a.etag.clone() }];
    assert!(matches!(
        e.svc.complete_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id, Some(listed), None, false).await,
        Err(CoreError::InvalidPartOrder)
    ));
    let bad = vec![CompletePart { number: 1, etag: "\"00\"".into() }];
    assert!(matches!(
        e.svc.complete_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id, Some(bad), None, false).await,
        Err(CoreError::InvalidPart)
    ));
    let small_first =
        vec![CompletePart { number: 2, etag: b.etag.clone() }, CompletePart { number: 3, etag: "x".into() }];
    assert!(
        e.svc
            .complete_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id, Some(small_first), None, false)
            .await
            .is_err()
    );
    let ok = vec![
        CompletePart { number: 1, etag: format!("\"{}\"", a.etag.to_lowercase()) },
        CompletePart { number: 2, etag: b.etag.clone() },
    ];
    let rec = e.svc.complete_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id, Some(ok), None, false).await.unwrap();
    let whole = [p1.clone(), p2.clone()].concat();
    assert_eq!(rec.crc64, checksum::crc64(&whole));
    assert!(rec.etag.ends_with("-2"));
    assert_eq!(read_all(&e.svc, &rec, 102_395, 102_405).await, whole[102_395..102_405]);
    assert_eq!(blob_count(&e.root), 2, "parts became the object's extents");
    assert!(matches!(
        e.svc.abort_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id).await,
        Err(CoreError::NoSuchUpload)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_collected_and_referenced_blobs_kept() {
    let e = env().await;
    e.svc.put_object(&e.owner, "r1", put("keep", b"data")).await.unwrap();
    // A blob written but never committed (a crash between the two steps).
    let store = LocalDisk::open(&e.root).unwrap();
    let mut w = store.create().unwrap();
    w.write_all(b"orphan").unwrap();
    w.finish().unwrap();
    std::fs::write(e.root.join("tmp/0123.part"), b"partial").unwrap();
    assert_eq!(blob_count(&e.root), 3);
    assert_eq!(e.svc.collect_orphans(Duration::from_secs(3600)).await.unwrap(), 0, "young blobs are left alone");
    assert_eq!(e.svc.collect_orphans(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(blob_count(&e.root), 1);
    let got = e.svc.head_object(&e.owner, "r1", "bkt", "keep").await.unwrap();
    assert_eq!(read_all(&e.svc, &got, 0, 4).await, b"data");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_and_region_rules() {
    let e = env().await;
    let stranger = Caller::account("2000");
    let anon = Caller::anonymous();
    assert!(
        matches!(e.svc.bucket(&e.owner, "r2", "bkt", Op::bucket("oss:GetBucketInfo")).await, Err(CoreError::WrongRegion { region }) if region == "r1")
    );
    assert!(matches!(e.svc.put_object(&anon, "r1", put("k", b"x")).await, Err(CoreError::AccessDenied(_))));
    e.svc.put_bucket_acl(&e.owner, "r1", "bkt", "public-read").await.unwrap();
    e.svc.put_object(&e.owner, "r1", put("k", b"x")).await.unwrap();
    assert!(e.svc.head_object(&anon, "r1", "bkt", "k").await.is_ok());
    assert!(matches!(e.svc.put_object(&stranger, "r1", put("k", b"y")).await, Err(CoreError::AccessDenied(_))));
    e.svc.put_object_acl(&e.owner, "r1", "bkt", "k", "private").await.unwrap();
    assert!(matches!(e.svc.head_object(&anon, "r1", "bkt", "k").await, Err(CoreError::AccessDenied(_))));
    assert!(matches!(
        e.svc.put_bucket_acl(&e.owner, "r1", "bkt", "wide-open").await,
        Err(CoreError::InvalidArgument { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_rolls_up_prefixes_once_per_page_boundary() {
    let e = env().await;
    for k in ["a/1", "a/2", "b/1", "c", "d/1", "d/2", "e"] {
        e.svc.put_object(&e.owner, "r1", put(k, b"x")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = ListParams { delimiter: "/".into(), after: after.clone(), max_keys: 2, ..Default::default() };
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

// ---------------------------------------------------------------- encryption

fn sse(alg: &str) -> SseRequest {
    SseRequest { algorithm: Some(alg.into()), ..Default::default() }
}

fn put_sse(key: &str, data: &[u8], alg: &str) -> PutObject {
    PutObject { sse: sse(alg), ..put(key, data) }
}

const S: usize = 65536;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_round_trips_and_ranges() {
    let e = env().await;
    for alg in ["AES256", "SM4"] {
        for n in [0, 1, S - 1, S, S + 1, 3 * S + 5] {
            let data = pattern(n);
            let rec = e.svc.put_object(&e.owner, "r1", put_sse("k", &data, alg)).await.unwrap();
            let enc = rec.encryption.clone().expect("encrypted");
            assert_eq!(enc.algorithm, alg);
            assert_eq!(rec.etag, checksum::upper_hex(&checksum::md5(&data)), "ETag is the plaintext MD5");
            assert_eq!(rec.crc64, checksum::crc64(&data));
            let got = e.svc.head_object(&e.owner, "r1", "bkt", "k").await.unwrap();
            assert_eq!(read_all(&e.svc, &got, 0, got.size).await, data, "{alg} {n}");
            for (a, b) in [(0, 1), (S as u64 - 1, S as u64 + 1), (S as u64, 2 * S as u64), (5, n as u64)] {
                if b <= n as u64 && a < b {
                    assert_eq!(read_all(&e.svc, &got, a, b).await, data[a as usize..b as usize], "{alg} {n} {a}-{b}");
                }
            }
        }
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The data key of a record, unwrapped the way docs/format.md describes.
async fn data_key_of(e: &Env, rec: &ObjectRecord) -> Vec<u8> {
    let enc = rec.encryption.as_ref().unwrap();
    let master = e.keys.key_version(&enc.key_id, enc.key_version).await.unwrap();
    let identity = ["1000", "r1", &rec.bucket, &rec.key, &rec.version_id, &enc.algorithm].join("\0");
    let suite = arca_crypto::Suite::from_id(enc.suite).unwrap();
    let wrapped = hex::decode(&enc.wrapped_key).unwrap();
    arca_crypto::unwrap_data_key(&master, identity.as_bytes(), &wrapped, suite).unwrap().expose().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_or_data_key_at_rest() {
    let e = env().await;
    let marker = b"ARCA-PLAINTEXT-MARKER-7f3a9c";
    let data: Vec<u8> = marker.iter().copied().cycle().take(200_000).collect();
    let mut records = Vec::new();
    for alg in ["AES256", "SM4"] {
        records.push(e.svc.put_object(&e.owner, "r1", put_sse(&format!("simple-{alg}"), &data, alg)).await.unwrap());
        let up = e
            .svc
            .initiate_upload(&e.owner, "r1", "bkt", &format!("mp-{alg}"), attrs(), &sse(alg), false)
            .await
            .unwrap();
        let mut parts = Vec::new();
        for (i, chunk) in data.chunks(102_400).enumerate() {
            let n = i as u32 + 1;
            let (p, enc) = e
                .svc
                .upload_part(
                    &e.owner,
                    "r1",
                    "bkt",
                    &up.key,
                    &up.upload_id,
                    n,
                    None,
                    Some(chunk.len() as u64),
                    body(vec![chunk.to_vec()]),
                )
                .await
                .unwrap();
            assert_eq!(enc.unwrap().algorithm, alg);
            parts.push(CompletePart { number: n, etag: p.etag });
        }
        let rec = e
            .svc
            .complete_upload(&e.owner, "r1", "bkt", &up.key, &up.upload_id, Some(parts), None, false)
            .await
            .unwrap();
        assert_eq!(read_all(&e.svc, &rec, 0, rec.size).await, data);
        records.push(rec);
    }
    let mut keys = Vec::new();
    for r in &records {
        keys.push(data_key_of(&e, r).await);
    }
    let files = files_under(&e.root);
    assert!(files.iter().any(|f| f.to_string_lossy().contains("meta.sqlite")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, marker), "plaintext marker found in {}", f.display());
        for k in &keys {
            assert!(!contains(&bytes, k), "a data key found in {}", f.display());
        }
    }
}

/// Long encrypted reads decrypt on a second thread while the next run of
/// segments is read (when cores are free), and go inline otherwise: both give
/// the same bytes for every range, and both refuse tampered or cut blobs.
#[tokio::test(flavor = "multi_thread")]
async fn long_encrypted_reads_alone_and_concurrent() {
    let e = env().await;
    let n = 40 * S + 123;
    let data = pattern(n);
    let rec = e.svc.put_object(&e.owner, "r1", put_sse("long", &data, "AES256")).await.unwrap();
    let ranges = [(0, n), (1, n - 1), (4 * S - 1, 9 * S + 5), (39 * S, n), (20 * S + 7, 20 * S + 8), (0, 12 * S)];
    for (a, b) in ranges {
        assert_eq!(read_all(&e.svc, &rec, a as u64, b as u64).await, data[a..b], "alone {a}-{b}");
    }
    // More readers than cores: some take the inline path, all get their bytes.
    let reads = (0..6).map(|i| {
        let (a, b) = ranges[i % ranges.len()];
        let (svc, rec) = (&e.svc, &rec);
        async move { (a, b, read_all(svc, rec, a as u64, b as u64).await) }
    });
    for (a, b, got) in futures_util::future::join_all(reads).await {
        assert_eq!(got, data[a..b], "concurrent {a}-{b}");
    }

    let path = only_blob(&e.root);
    let original = std::fs::read(&path).unwrap();
    let seg = S + 16;
    let mut flipped = original.clone();
    flipped[30 * seg + 5] ^= 0x80;
    std::fs::write(&path, &flipped).unwrap();
    assert_eq!(read_result(&e.svc, &rec).await.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    std::fs::write(&path, &original[..20 * seg + 9]).unwrap();
    assert!(read_result(&e.svc, &rec).await.is_err(), "a blob cut mid-segment");
    std::fs::write(&path, &original).unwrap();
    assert_eq!(read_result(&e.svc, &rec).await.unwrap(), data);
}

fn only_blob(root: &std::path::Path) -> std::path::PathBuf {
    let blobs = files_under(&root.join("blobs"));
    assert_eq!(blobs.len(), 1);
    blobs.into_iter().next().unwrap()
}

async fn read_result(svc: &ObjectService, rec: &ObjectRecord) -> std::io::Result<Vec<u8>> {
    read_range(svc, rec, 0, rec.size).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_blobs_are_never_served() {
    let e = env().await;
    let data = pattern(3 * S);
    let rec = e.svc.put_object(&e.owner, "r1", put_sse("k", &data, "AES256")).await.unwrap();
    let path = only_blob(&e.root);
    let original = std::fs::read(&path).unwrap();
    let seg = S + 16;

    let mut flipped = original.clone();
    flipped[seg + 100] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    let err = read_result(&e.svc, &rec).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

    std::fs::write(&path, &original[..2 * seg]).unwrap(); // truncated at a segment boundary
    assert!(read_result(&e.svc, &rec).await.is_err());

    let swapped = [&original[seg..2 * seg], &original[..seg], &original[2 * seg..]].concat();
    std::fs::write(&path, &swapped).unwrap();
    assert!(read_result(&e.svc, &rec).await.is_err());

    std::fs::write(&path, &original).unwrap();
    assert_eq!(read_result(&e.svc, &rec).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrapped_key_moved_to_another_object_does_not_unwrap() {
    let e = env().await;
    let a = e.svc.put_object(&e.owner, "r1", put_sse("a", b"secret a", "AES256")).await.unwrap();
    let b = e.svc.put_object(&e.owner, "r1", put_sse("b", b"secret b", "AES256")).await.unwrap();
    let forged = ObjectRecord { encryption: a.encryption.clone(), extents: a.extents.clone(), ..b.clone() };
    e.meta.put_object(forged.clone(), arca_meta::Expect::Any).await.unwrap();
    assert!(matches!(
        e.svc.read_object(&e.owner, &bkt(&e).await, &forged, 0, forged.size).await,
        Err(CoreError::Integrity)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_old_objects_readable() {
    let e = env().await;
    let old = e.svc.put_object(&e.owner, "r1", put_sse("old", b"before rotation", "SM4")).await.unwrap();
    let key_id = old.encryption.as_ref().unwrap().key_id.clone();
    assert_eq!(old.encryption.as_ref().unwrap().key_version, 1);
    assert_eq!(e.keys.rotate(&key_id).await.unwrap(), 2);
    let new = e.svc.put_object(&e.owner, "r1", put_sse("new", b"after rotation", "SM4")).await.unwrap();
    assert_eq!(new.encryption.as_ref().unwrap().key_version, 2);
    assert_eq!(new.encryption.as_ref().unwrap().key_id, key_id);
    assert_eq!(read_all(&e.svc, &old, 0, old.size).await, b"before rotation");
    assert_eq!(read_all(&e.svc, &new, 0, new.size).await, b"after rotation");
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_default_applies_to_new_objects_only() {
    let e = env().await;
    let rule = |a: &str| EncryptionRule { algorithm: a.into(), kms_key_id: None, kms_data_encryption: None };
    e.svc.put_bucket_encryption(&e.owner, "r1", "bkt", rule("SM4")).await.unwrap();
    let first = e.svc.put_object(&e.owner, "r1", put("first", b"1")).await.unwrap();
    assert_eq!(first.encryption.as_ref().unwrap().algorithm, "SM4");
    e.svc.put_bucket_encryption(&e.owner, "r1", "bkt", rule("AES256")).await.unwrap();
    let second = e.svc.put_object(&e.owner, "r1", put("second", b"2")).await.unwrap();
    assert_eq!(second.encryption.as_ref().unwrap().algorithm, "AES256");
    let overridden = e.svc.put_object(&e.owner, "r1", put_sse("third", b"3", "SM4")).await.unwrap();
    assert_eq!(overridden.encryption.as_ref().unwrap().algorithm, "SM4");
    e.svc.delete_bucket_encryption(&e.owner, "r1", "bkt").await.unwrap();
    let plain = e.svc.put_object(&e.owner, "r1", put("fourth", b"4")).await.unwrap();
    assert!(plain.encryption.is_none());
    let first_now = e.svc.head_object(&e.owner, "r1", "bkt", "first").await.unwrap();
    assert_eq!(first_now.encryption, first.encryption, "existing objects keep their encryption");
    let kms = e.svc.put_object(&e.owner, "r1", put_sse("kms", b"x", "KMS")).await.unwrap();
    assert_eq!(kms.encryption.as_ref().unwrap().algorithm, "KMS");
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_reencrypt_under_the_destination_rule() {
    let e = env().await;
    let data = pattern(2 * S + 3);
    let src = e.svc.put_object(&e.owner, "r1", put_sse("src", &data, "SM4")).await.unwrap();
    let copy = |key: &str, sse: SseRequest| CopyObject {
        source: CopySource { bucket: "bkt".into(), key: "src".into(), conditions: Conditions::default() },
        bucket: "bkt".into(),
        key: key.into(),
        replace_attrs: None,
        acl: None,
        forbid_overwrite: false,
        sse,
    };
    let plain = e.svc.copy_object(&e.owner, "r1", copy("plain", SseRequest::default())).await.unwrap();
    assert!(plain.encryption.is_none(), "a copy never inherits the source's encryption");
    assert_eq!(read_all(&e.svc, &plain, 0, plain.size).await, data);
    let aes = e.svc.copy_object(&e.owner, "r1", copy("aes", sse("AES256"))).await.unwrap();
    assert_eq!(aes.encryption.as_ref().unwrap().algorithm, "AES256");
    assert_eq!(read_all(&e.svc, &aes, 0, aes.size).await, data);
    // Onto itself with the same encryption: metadata only, same data key.
    let same = e.svc.copy_object(&e.owner, "r1", copy("src", sse("SM4"))).await.unwrap();
    assert_eq!(same.encryption, src.encryption);
    // Onto itself without SSE headers: re-written in the clear (the bucket has no default).
    let cleared = e.svc.copy_object(&e.owner, "r1", copy("src", SseRequest::default())).await.unwrap();
    assert!(cleared.encryption.is_none());
    assert_eq!(read_all(&e.svc, &cleared, 0, cleared.size).await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_appends_keep_the_first_encryption() {
    let e = env().await;
    let app = |pos: u64, data: &[u8], alg: Option<&str>| AppendObject {
        bucket: "bkt".into(),
        key: "log".into(),
        position: pos,
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        sse: SseRequest { algorithm: alg.map(Into::into), ..Default::default() },
        body: body(vec![data.to_vec()]),
    };
    let chunks = [pattern(S + 7), pattern(10), pattern(2 * S)];
    let r1 = e.svc.append_object(&e.owner, "r1", app(0, &chunks[0], Some("SM4"))).await.unwrap();
    let r2 = e.svc.append_object(&e.owner, "r1", app(r1.size, &chunks[1], None)).await.unwrap();
    let r3 = e.svc.append_object(&e.owner, "r1", app(r2.size, &chunks[2], Some("AES256"))).await.unwrap();
    assert_eq!(r3.encryption, r1.encryption);
    assert_eq!(r3.extents.iter().map(|x| x.part).collect::<Vec<_>>(), vec![0, 1, 2]);
    let whole = chunks.concat();
    assert_eq!(r3.crc64, checksum::crc64(&whole));
    assert_eq!(read_all(&e.svc, &r3, 0, r3.size).await, whole);
    let (a, b) = (S as u64, S as u64 + 20);
    assert_eq!(read_all(&e.svc, &r3, a, b).await, whole[a as usize..b as usize]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_format_or_suite_in_metadata_is_refused() {
    let e = env().await;
    let rec = e.svc.put_object(&e.owner, "r1", put_sse("k", b"data", "AES256")).await.unwrap();
    for (format, suite) in [(2u8, 1u8), (1, 9)] {
        let mut bad = rec.clone();
        let enc = bad.encryption.as_mut().unwrap();
        enc.format = format;
        enc.suite = suite;
        assert!(
            matches!(e.svc.read_object(&e.owner, &bkt(&e).await, &bad, 0, bad.size).await, Err(CoreError::Internal(_))),
            "{format}/{suite}"
        );
    }
    // An extent claiming to be plaintext inside an encrypted object is not served either.
    let mut mixed = rec.clone();
    mixed.extents[0].salt = None;
    assert!(read_result(&e.svc, &mixed).await.is_err());
}

// ---------------------------------------------------------------- SSE-KMS

fn kms_ctx() -> arca_kms::KmsContext {
    arca_kms::KmsContext::new("1000", "r1")
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_kms_with_the_default_key_and_a_named_key() {
    let e = env().await;
    let data = pattern(2 * S + 9);
    let a = e.svc.put_object(&e.owner, "r1", put_sse("a", &data, "KMS")).await.unwrap();
    let b = e.svc.put_object(&e.owner, "r1", put_sse("b", b"x", "KMS")).await.unwrap();
    let default_key = e.kms.resolve(&kms_ctx(), arca_kms::OSS_ALIAS).await.unwrap();
    assert_eq!(a.encryption.as_ref().unwrap().key_id, default_key.key_id, "alias/acs/oss created on first use");
    assert_eq!(b.encryption.as_ref().unwrap().key_id, default_key.key_id, "and reused");
    assert_eq!(read_all(&e.svc, &a, 0, a.size).await, data);

    let named = e
        .kms
        .create_key(&kms_ctx(), arca_kms::NewKey { spec: Some("Aliyun_SM4".into()), ..Default::default() })
        .await
        .unwrap();
    e.kms.put_alias(&kms_ctx(), "alias/named", &named.key_id, false).await.unwrap();
    let sse_named = |k: &str, data_sm4: bool| SseRequest {
        algorithm: Some("KMS".into()),
        data_encryption: data_sm4.then(|| "SM4".into()),
        key_id: Some(k.into()),
    };
    let c = e
        .svc
        .put_object(&e.owner, "r1", PutObject { sse: sse_named("alias/named", true), ..put("c", &data) })
        .await
        .unwrap();
    let enc = c.encryption.clone().unwrap();
    assert_eq!((enc.key_id.as_str(), enc.suite), (named.key_id.as_str(), 2), "alias resolved to the key id; SM4 data");
    assert_eq!(read_all(&e.svc, &c, S as u64 - 3, S as u64 + 3).await, data[S - 3..S + 3]);

    // Disabled → writes and reads fail; enabled → both work.
    e.kms.disable_key(&kms_ctx(), &named.key_id).await.unwrap();
    let put_err =
        e.svc.put_object(&e.owner, "r1", PutObject { sse: sse_named(&named.key_id, false), ..put("d", b"x") }).await;
    assert!(matches!(put_err, Err(CoreError::KmsKeyState(s)) if s == "Disabled"));
    assert!(matches!(e.svc.head_object(&e.owner, "r1", "bkt", "d").await, Err(CoreError::NoSuchKey)), "nothing stored");
    assert!(matches!(e.svc.read_object(&e.owner, &bkt(&e).await, &c, 0, c.size).await, Err(CoreError::KmsKeyState(_))));
    e.kms.enable_key(&kms_ctx(), &named.key_id).await.unwrap();
    assert_eq!(read_all(&e.svc, &c, 0, c.size).await, data);

    // A key of another region or a missing key fails the write and stores nothing.
    let missing =
        e.svc.put_object(&e.owner, "r1", PutObject { sse: sse_named("no-such-key", false), ..put("e", b"x") }).await;
    assert!(matches!(missing, Err(CoreError::KmsKeyNotFound)));
    let other = arca_kms::KmsContext { region: "r2".into(), ..kms_ctx() };
    let far = e.kms.create_key(&other, arca_kms::NewKey::default()).await.unwrap();
    let far_put =
        e.svc.put_object(&e.owner, "r1", PutObject { sse: sse_named(&far.key_id, false), ..put("f", b"x") }).await;
    assert!(matches!(far_put, Err(CoreError::KmsKeyNotFound)));

    // Deletion after the window: unreadable forever.
    e.kms.schedule_deletion(&kms_ctx(), &named.key_id, 7, false).await.unwrap();
    assert!(
        matches!(e.svc.read_object(&e.owner, &bkt(&e).await, &c, 0, c.size).await, Err(CoreError::KmsKeyState(s)) if s == "PendingDeletion")
    );
    tokio::time::sleep(Duration::from_millis(7200)).await;
    assert!(matches!(e.svc.read_object(&e.owner, &bkt(&e).await, &c, 0, c.size).await, Err(CoreError::KmsKeyNotFound)));

    // Metering: GenerateDataKey per KMS write, Decrypt per read.
    let usage = e.kms.usage("1000").await.unwrap();
    let gdk: u64 = usage.iter().filter(|u| u.action == "GenerateDataKey").map(|u| u.count).sum();
    assert_eq!(gdk, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_multipart_append_and_copy() {
    let e = env().await;
    let up = e.svc.initiate_upload(&e.owner, "r1", "bkt", "mp", attrs(), &sse("KMS"), false).await.unwrap();
    let p1 = pattern(102_400);
    let (a, enc) = e
        .svc
        .upload_part(&e.owner, "r1", "bkt", "mp", &up.upload_id, 1, None, Some(p1.len() as u64), body(vec![p1.clone()]))
        .await
        .unwrap();
    assert_eq!(enc.unwrap().algorithm, "KMS");
    let (b, _) = e
        .svc
        .upload_part(&e.owner, "r1", "bkt", "mp", &up.upload_id, 2, None, Some(3), body(vec![b"end".to_vec()]))
        .await
        .unwrap();
    let parts = vec![CompletePart { number: 1, etag: a.etag }, CompletePart { number: 2, etag: b.etag }];
    let rec =
        e.svc.complete_upload(&e.owner, "r1", "bkt", "mp", &up.upload_id, Some(parts), None, false).await.unwrap();
    assert_eq!(read_all(&e.svc, &rec, 0, rec.size).await, [p1, b"end".to_vec()].concat());

    let app = |pos: u64, data: &[u8], req: SseRequest| AppendObject {
        bucket: "bkt".into(),
        key: "log".into(),
        position: pos,
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        sse: req,
        body: body(vec![data.to_vec()]),
    };
    let named = SseRequest { algorithm: Some("KMS".into()), key_id: Some("x".into()), ..Default::default() };
    assert!(matches!(
        e.svc.append_object(&e.owner, "r1", app(0, b"1", named)).await,
        Err(CoreError::InvalidArgument { .. })
    ));
    let r1 = e.svc.append_object(&e.owner, "r1", app(0, b"123", sse("KMS"))).await.unwrap();
    let r2 = e.svc.append_object(&e.owner, "r1", app(3, b"456", sse("AES256"))).await.unwrap();
    assert_eq!(r2.encryption, r1.encryption);
    assert_eq!(read_all(&e.svc, &r2, 0, 6).await, b"123456");

    let copy = CopyObject {
        source: CopySource { bucket: "bkt".into(), key: "mp".into(), conditions: Conditions::default() },
        bucket: "bkt".into(),
        key: "mp-copy".into(),
        replace_attrs: None,
        acl: None,
        forbid_overwrite: false,
        sse: sse("KMS"),
    };
    let c = e.svc.copy_object(&e.owner, "r1", copy).await.unwrap();
    assert_ne!(
        c.encryption.as_ref().unwrap().wrapped_key,
        rec.encryption.as_ref().unwrap().wrapped_key,
        "a new data key"
    );
    assert_eq!(read_all(&e.svc, &c, 0, c.size).await, read_all(&e.svc, &rec, 0, rec.size).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn review_regressions_empty_appends_kms_self_copy_anonymous_kms_forbid_overwrite() {
    let e = env().await;
    // An empty append in the middle of an encrypted appendable object.
    let app = |pos: u64, data: &[u8]| AppendObject {
        bucket: "bkt".into(),
        key: "log".into(),
        position: pos,
        attrs: attrs(),
        content_md5: None,
        content_length: Some(data.len() as u64),
        sse: sse("AES256"),
        body: body(vec![data.to_vec()]),
    };
    e.svc.append_object(&e.owner, "r1", app(0, b"abc")).await.unwrap();
    e.svc.append_object(&e.owner, "r1", app(3, b"")).await.unwrap();
    let rec = e.svc.append_object(&e.owner, "r1", app(3, b"def")).await.unwrap();
    assert_eq!(read_all(&e.svc, &rec, 0, 6).await, b"abcdef");
    assert_eq!(read_all(&e.svc, &rec, 3, 4).await, b"d");

    // A self-copy naming another CMK re-encrypts under it.
    let k1 = e.kms.create_key(&kms_ctx(), arca_kms::NewKey::default()).await.unwrap();
    let k2 = e.kms.create_key(&kms_ctx(), arca_kms::NewKey::default()).await.unwrap();
    let with_key = |k: &str| SseRequest { algorithm: Some("KMS".into()), key_id: Some(k.into()), ..Default::default() };
    e.svc.put_object(&e.owner, "r1", PutObject { sse: with_key(&k1.key_id), ..put("k", b"secret") }).await.unwrap();
    let copy = CopyObject {
        source: CopySource { bucket: "bkt".into(), key: "k".into(), conditions: Conditions::default() },
        bucket: "bkt".into(),
        key: "k".into(),
        replace_attrs: None,
        acl: None,
        forbid_overwrite: false,
        sse: with_key(&k2.key_id),
    };
    let moved = e.svc.copy_object(&e.owner, "r1", copy).await.unwrap();
    assert_eq!(moved.encryption.as_ref().unwrap().key_id, k2.key_id);
    e.kms.disable_key(&kms_ctx(), &k1.key_id).await.unwrap();
    assert_eq!(read_all(&e.svc, &moved, 0, moved.size).await, b"secret");

    // Anonymous requests against SSE-KMS objects are refused, even where the ACL allows them.
    e.svc.put_bucket_acl(&e.owner, "r1", "bkt", "public-read-write").await.unwrap();
    let anon = Caller::anonymous();
    assert!(
        matches!(e.svc.head_object(&anon, "r1", "bkt", "k").await, Err(CoreError::AccessDenied(m)) if m.contains("kms"))
    );
    assert!(e.svc.head_object(&anon, "r1", "bkt", "log").await.is_ok(), "AES256 objects follow the ACL");

    // forbid-overwrite given at Initiate holds at Complete.
    let up =
        e.svc.initiate_upload(&e.owner, "r1", "bkt", "fresh", attrs(), &SseRequest::default(), true).await.unwrap();
    assert!(matches!(
        e.svc.initiate_upload(&e.owner, "r1", "bkt", "k", attrs(), &SseRequest::default(), true).await,
        Err(CoreError::FileAlreadyExists)
    ));
    let (p, _) = e
        .svc
        .upload_part(&e.owner, "r1", "bkt", "fresh", &up.upload_id, 1, None, Some(1), body(vec![b"x".to_vec()]))
        .await
        .unwrap();
    e.svc.put_object(&e.owner, "r1", put("fresh", b"created meanwhile")).await.unwrap();
    let done = e
        .svc
        .complete_upload(
            &e.owner,
            "r1",
            "bkt",
            "fresh",
            &up.upload_id,
            Some(vec![CompletePart { number: 1, etag: p.etag }]),
            None,
            false,
        )
        .await;
    assert!(matches!(done, Err(CoreError::FileAlreadyExists)));
}
