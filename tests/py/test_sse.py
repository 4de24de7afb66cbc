"""Server-side encryption, API level (spec oss-api.md 7.1-7.7, 5.4, 5.11).

Bucket default rules (PutBucketEncryption and PutBucket headers, mirrored by
GetBucketInfo), the SSE response headers of every object API for AES256 and
SM4, header validation, append/multipart/copy/UploadPartCopy rules, the
precedence request header > bucket default > none, plaintext ETag/CRC, and
ranges/conditions over the 64 KiB encryption segments.

KMS success paths are not tested here. Writes that resolve to KMS are tested
against a dedicated server whose account has KMS switched off (spec 7.6
`KmsServiceNotEnabled`): they must fail with 403 and store nothing.
"""

import hashlib
import os
import re
import subprocess
import time

import oss2
import pytest
from oss2.models import BucketCreateConfig, PartInfo, ServerSideEncryptionRule

from arca_testlib import (
    ARCA_BIN,
    ArcaServer,
    cleanup_bucket,
    crc64,
    error_details,
    md5_hex_upper,
    quoted_etag,
    raw_request,
    unique_bucket_name,
)

SSE = "x-oss-server-side-encryption"
SSE_KEY = "x-oss-server-side-encryption-key-id"
SSE_DATA = "x-oss-server-side-data-encryption"
SSE_C = "x-oss-server-side-encryption-customer-algorithm"
SEG = 65536
PART = 100 * 1024


def sse_of(headers):
    """Every x-oss-server-side-* response header, lower-cased name -> value."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-oss-server-side")}


def expect(alg):
    """The exact SSE response headers of an AES256/SM4/unencrypted object."""
    return {SSE: alg} if alg else {}


def rule_tuple(rule):
    return (rule.sse_algorithm, rule.kms_master_keyid, rule.kms_data_encryption)


def oss_error(status, code, fn, *args, **kwargs):
    with pytest.raises(oss2.exceptions.OssError) as e:
        fn(*args, **kwargs)
    assert (e.value.status, e.value.code) == (status, code), "%s %s: %s" % (e.value.status, e.value.code, e.value.message)
    return e.value


def uploads_of(bucket, key):
    return [u.upload_id for u in oss2.MultipartUploadIterator(bucket) if not u.is_prefix() and u.key == key]


def check_ranges(bucket, key, data, ranges):
    n = len(data)
    for start, end in ranges:
        r = bucket.get_object(key, byte_range=(start, end))
        body = r.read()
        if start is None:
            lo, hi = n - end, n - 1
        else:
            lo, hi = start, (n - 1 if end is None else end)
        assert r.status == 206, (start, end, r.status)
        assert r.headers["Content-Range"] == "bytes %d-%d/%d" % (lo, hi, n), (start, end)
        assert body == data[lo : hi + 1], (start, end)
        assert sse_of(r.headers) == sse_of(bucket.head_object(key).headers)


def boundary_ranges(n, extra=()):
    """Valid inclusive ranges around the 64 KiB segment boundaries (and `extra` offsets)."""
    cand = [(0, 0), (n - 1, n - 1), (0, n - 1), (1, n - 2), (n // 2, n - 1)]
    for b in [SEG, 2 * SEG, 3 * SEG] + list(extra):
        cand += [(b - 1, b - 1), (b - 1, b), (b, b), (b, b + 1), (b - 2, b + 2), (b - 1, b + SEG)]
    cand += [(SEG - 1, 2 * SEG), (SEG + 1, 3 * SEG - 1)]
    out = []
    for s, e in cand:
        e = min(e, n - 1)
        if 0 <= s <= e < n and (s, e) not in out:
            out.append((s, e))
    return out


@pytest.fixture
def bucket2(server, auth):
    b = oss2.Bucket(auth, server.endpoint, unique_bucket_name("sse-second"))
    b.create_bucket()
    yield b
    cleanup_bucket(b)


# ===================================================================== 7.5 bucket default rules

# (algorithm, key id, data encryption) sent -> (algorithm, key id, data encryption) stored
ACCEPTED_RULES = [
    (("AES256", None, None), ("AES256", None, None)),
    (("KMS", None, None), ("KMS", None, None)),
    (("KMS", "test_wrong", None), ("KMS", "test_wrong", None)),
    (("KMS", "123", None), ("KMS", "123", None)),
    (("KMS", None, "SM4"), ("KMS", None, "SM4")),
    (("KMS", "123", "SM4"), ("KMS", "123", "SM4")),
    (("AES256", None, "SM4"), ("AES256", None, None)),
    (("SM4", None, "SM4"), ("SM4", None, None)),
    (("SM4", None, None), ("SM4", None, None)),
]
REJECTED_RULES = [
    (("AES256", "test", None), (400, "InvalidArgument")),
    (("random", None, None), (400, "InvalidEncryptionAlgorithmError")),
]


def rule_headers(alg, key_id, data):
    h = {SSE: alg}
    if key_id:
        h[SSE_KEY] = key_id
    if data:
        h[SSE_DATA] = data
    return h


@pytest.mark.parametrize("sent,stored", ACCEPTED_RULES, ids=lambda v: "-".join(str(x) for x in v))
def test_rule_table_put_bucket_encryption(bucket, sent, stored):
    r = bucket.put_bucket_encryption(ServerSideEncryptionRule(*sent))
    assert r.status == 200
    assert rule_tuple(bucket.get_bucket_encryption()) == stored
    assert rule_tuple(bucket.get_bucket_info().bucket_encryption_rule) == stored


@pytest.mark.parametrize("sent,stored", ACCEPTED_RULES, ids=lambda v: "-".join(str(x) for x in v))
def test_rule_table_put_bucket_headers(bucket_name, server, auth, sent, stored):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    assert b.create_bucket(headers=rule_headers(*sent)).status == 200
    assert rule_tuple(b.get_bucket_encryption()) == stored
    assert rule_tuple(b.get_bucket_info().bucket_encryption_rule) == stored


@pytest.mark.parametrize("sent,error", REJECTED_RULES, ids=lambda v: "-".join(str(x) for x in v))
def test_rule_table_rejected(bucket, bucket_name, server, auth, sent, error):
    # PutBucketEncryption: rejected, and an existing rule stays untouched.
    oss_error(*error, bucket.put_bucket_encryption, ServerSideEncryptionRule(*sent))
    oss_error(404, "NoSuchServerSideEncryptionRule", bucket.get_bucket_encryption)
    assert bucket.get_bucket_info().bucket_encryption_rule.sse_algorithm is None
    bucket.put_bucket_encryption(ServerSideEncryptionRule("SM4"))
    oss_error(*error, bucket.put_bucket_encryption, ServerSideEncryptionRule(*sent))
    assert rule_tuple(bucket.get_bucket_encryption()) == ("SM4", None, None)
    # PutBucket headers: rejected, and no bucket is created.
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    oss_error(*error, b.create_bucket, headers=rule_headers(*sent))
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()


def test_put_bucket_encryption_sequence(bucket):
    """oss2 test_put_bucket_encryption: each PUT replaces the whole rule; both GETs agree."""
    steps = [
        (("SM4", None, None), ("SM4", None, None)),
        (("KMS", None, "SM4"), ("KMS", None, "SM4")),
        (("KMS", "123", "SM4"), ("KMS", "123", "SM4")),
        (("AES256", None, "SM4"), ("AES256", None, None)),
        (("SM4", None, "SM4"), ("SM4", None, None)),
        (("KMS", "test_wrong", None), ("KMS", "test_wrong", None)),
        (("AES256", None, None), ("AES256", None, None)),
    ]
    for sent, stored in steps:
        bucket.put_bucket_encryption(ServerSideEncryptionRule(*sent))
        assert rule_tuple(bucket.get_bucket_encryption()) == stored, sent
        assert rule_tuple(bucket.get_bucket_info().bucket_encryption_rule) == stored, sent


def test_bucket_encryption_wrong(bucket):
    """oss2 test_bucket_encryption_wrong."""
    e = oss_error(404, "NoSuchServerSideEncryptionRule", bucket.get_bucket_encryption)
    assert isinstance(e, oss2.exceptions.NoSuchServerSideEncryptionRule)
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_bucket_encryption(ServerSideEncryptionRule("AES256", "test"))
    with pytest.raises(oss2.exceptions.InvalidEncryptionAlgorithmError):
        bucket.put_bucket_encryption(ServerSideEncryptionRule("random"))
    with pytest.raises(oss2.exceptions.NoSuchServerSideEncryptionRule):
        bucket.get_bucket_encryption()
    assert bucket.delete_bucket_encryption().status == 204
    assert bucket.delete_bucket_encryption().status == 204
    # With a rule: DELETE removes it; then GET is 404 and GetBucketInfo says None again.
    bucket.put_bucket_encryption(ServerSideEncryptionRule("KMS", "123"))
    assert rule_tuple(bucket.get_bucket_info().bucket_encryption_rule) == ("KMS", "123", None)
    assert bucket.delete_bucket_encryption().status == 204
    oss_error(404, "NoSuchServerSideEncryptionRule", bucket.get_bucket_encryption)
    assert rule_tuple(bucket.get_bucket_info().bucket_encryption_rule) == (None, None, None)


def test_bucket_encryption_round_trip(bucket):
    """oss2 test_bucket::test_bucket_encryption: AES256 default, transparent decryption."""
    bucket.put_bucket_encryption(ServerSideEncryptionRule("AES256"))
    r = bucket.put_object("test", "test")
    assert sse_of(r.headers) == {SSE: "AES256"}
    g = bucket.get_object("test")
    assert g.read() == b"test" and sse_of(g.headers) == {SSE: "AES256"}


def test_bucket_encryption_raw_xml(bucket, server):
    """Empty <KMSMasterKeyID> is absent (the OSS doc's own AES256 example has one); GET returns the XML rule."""
    body = (
        "<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault>"
        "<SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID></KMSMasterKeyID>"
        "</ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>"
    )
    r = raw_request(server.endpoint, "PUT", bucket.bucket_name, params={"encryption": ""}, data=body.encode())
    assert r.status_code == 200, r.content
    assert rule_tuple(bucket.get_bucket_encryption()) == ("AES256", None, None)
    r = raw_request(server.endpoint, "GET", bucket.bucket_name, params={"encryption": ""})
    assert r.status_code == 200
    assert re.search(rb"<SSEAlgorithm>AES256</SSEAlgorithm>", r.content), r.content
    assert not re.search(rb"<KMSMasterKeyID>[^<]+</KMSMasterKeyID>", r.content), r.content
    r = raw_request(server.endpoint, "DELETE", bucket.bucket_name, params={"encryption": ""})
    assert r.status_code == 204
    r = raw_request(server.endpoint, "GET", bucket.bucket_name, params={"encryption": ""})
    assert r.status_code == 404 and error_details(r)["Code"] == "NoSuchServerSideEncryptionRule"


def test_bucket_info(bucket, server):
    """oss2 test_bucket_info: no rule -> SSEAlgorithm None (the literal text `None`)."""
    info = bucket.get_bucket_info()
    assert rule_tuple(info.bucket_encryption_rule) == (None, None, None)
    r = raw_request(server.endpoint, "GET", bucket.bucket_name, params={"bucketInfo": ""})
    assert r.status_code == 200
    assert b"<ServerSideEncryptionRule><SSEAlgorithm>None</SSEAlgorithm></ServerSideEncryptionRule>" in re.sub(rb">\s+<", b"><", r.content)
    bucket.put_bucket_encryption(ServerSideEncryptionRule("KMS", "123", "SM4"))
    r = raw_request(server.endpoint, "GET", bucket.bucket_name, params={"bucketInfo": ""})
    flat = re.sub(rb">\s+<", b"><", r.content)
    assert b"<SSEAlgorithm>KMS</SSEAlgorithm>" in flat and b"<KMSMasterKeyID>123</KMSMasterKeyID>" in flat
    assert b"<KMSDataEncryption>SM4</KMSDataEncryption>" in flat


@pytest.mark.parametrize(
    "headers,stored",
    [
        ({SSE: "KMS", SSE_DATA: "SM4", SSE_KEY: "9468da86-3509-4f8d-a61e-6eab1eac"}, ("KMS", "9468da86-3509-4f8d-a61e-6eab1eac", "SM4")),
        ({SSE: "KMS"}, ("KMS", None, None)),
        ({SSE: "SM4"}, ("SM4", None, None)),
    ],
    ids=["KMS_SM4", "SSE_KMS", "SM4"],
)
def test_bucket_header(bucket_name, server, auth, headers, stored):
    """oss2 test_bucket_header_KMS_SM4 / _SSE_KMS / _SM4: IA storage class and the ACL survive too."""
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    b.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ, BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_IA), headers=headers)
    info = b.get_bucket_info()
    assert rule_tuple(info.bucket_encryption_rule) == stored
    assert rule_tuple(b.get_bucket_encryption()) == stored
    assert info.storage_class == "IA" and info.acl.grant == "public-read"


def test_bucket_header_default_applies_to_objects(bucket_name, server, auth):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    b.create_bucket(headers={SSE: "SM4", SSE_DATA: "SM4"})
    assert rule_tuple(b.get_bucket_encryption()) == ("SM4", None, None)
    r = b.put_object("o", b"payload")
    assert sse_of(r.headers) == {SSE: "SM4"}
    assert sse_of(b.head_object("o").headers) == {SSE: "SM4"}
    assert b.get_object("o").read() == b"payload"


# ===================================================================== 7.2 / 7.4 object headers

PUT_ROWS = [
    ({}, None),
    ({SSE: "AES256"}, "AES256"),
    ({SSE: "SM4"}, "SM4"),
    ({SSE: "AES256", SSE_DATA: "SM4"}, "AES256"),
    ({SSE: "SM4", SSE_DATA: "SM4"}, "SM4"),
    ({SSE_DATA: "SM4"}, None),
]


def test_put_object_with_encryption(bucket):
    """oss2 test_put_object_with_encryption without the KMS rows (see the KMS-off tests)."""
    for i, (headers, alg) in enumerate(PUT_ROWS):
        key = "o%d" % i
        r = bucket.put_object(key, b"a", headers=headers)
        assert sse_of(r.headers) == expect(alg), headers
        assert r.headers["ETag"] == '"0CC175B9C0F1B6A831C399E269772661"'
        assert r.crc == crc64(b"a")
        h = bucket.head_object(key)
        assert sse_of(h.headers) == expect(alg), headers
        assert h.headers["ETag"] == '"0CC175B9C0F1B6A831C399E269772661"' and h.content_length == 1
        g = bucket.get_object(key)
        assert g.read() == b"a" and sse_of(g.headers) == expect(alg), headers
        assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(b"a")
        m = bucket.get_object_meta(key)
        assert sse_of(m.headers) == expect(alg), headers
        assert m.headers["ETag"] == '"0CC175B9C0F1B6A831C399E269772661"'


def test_overwrite_changes_encryption(bucket):
    """A PUT over an existing key takes the new request's encryption (nothing inherited from the old object)."""
    bucket.put_object("k", b"one", headers={SSE: "SM4"})
    assert sse_of(bucket.put_object("k", b"two", headers={SSE: "AES256"}).headers) == {SSE: "AES256"}
    assert sse_of(bucket.head_object("k").headers) == {SSE: "AES256"}
    assert sse_of(bucket.put_object("k", b"three").headers) == {}
    assert sse_of(bucket.head_object("k").headers) == {}
    assert bucket.get_object("k").read() == b"three"


@pytest.mark.parametrize(
    "headers,status,code",
    [
        ({SSE: "random"}, 400, "InvalidEncryptionAlgorithmError"),
        ({SSE: "AES128"}, 400, "InvalidEncryptionAlgorithmError"),
        ({SSE: "SM4", SSE_DATA: "AES"}, 400, "InvalidArgument"),
        ({SSE_DATA: "AES"}, 400, "InvalidArgument"),
        ({SSE: "AES256", SSE_KEY: "some-key"}, 400, "InvalidArgument"),
        ({SSE: "SM4", SSE_KEY: "some-key"}, 400, "InvalidArgument"),
        ({SSE_C: "AES256"}, 400, "InvalidArgument"),
        ({SSE: "AES256", SSE_C: "AES256"}, 400, "InvalidArgument"),
    ],
    ids=["random", "AES128", "SM4-data-AES", "data-AES", "AES256-keyid", "SM4-keyid", "sse-c", "AES256-sse-c"],
)
def test_invalid_object_sse_headers(bucket, server, headers, status, code):
    # PutObject
    r = raw_request(server.endpoint, "PUT", bucket.bucket_name, "bad", headers=headers, data=b"x")
    assert (r.status_code, error_details(r).get("Code")) == (status, code), r.content
    assert not bucket.object_exists("bad")
    # InitiateMultipartUpload
    oss_error(status, code, bucket.init_multipart_upload, "bad-mp", headers=headers)
    assert uploads_of(bucket, "bad-mp") == []
    # first AppendObject
    oss_error(status, code, bucket.append_object, "bad-app", 0, b"x", headers=headers)
    assert not bucket.object_exists("bad-app")
    # CopyObject
    bucket.put_object("src", b"source")
    oss_error(status, code, bucket.copy_object, bucket.bucket_name, "src", "bad-copy", headers=headers)
    assert not bucket.object_exists("bad-copy")


def test_etag_and_crc_are_of_the_plaintext(bucket, server):
    data = os.urandom(SEG * 2 + 123)
    for alg in ("AES256", "SM4"):
        r = raw_request(server.endpoint, "PUT", bucket.bucket_name, "p-" + alg, headers={SSE: alg}, data=data)
        assert r.status_code == 200
        assert r.headers["ETag"] == quoted_etag(data)
        assert re.fullmatch(r'"[0-9A-F]{32}"', r.headers["ETag"])
        assert r.headers["x-oss-hash-crc64ecma"] == str(crc64(data))
        for method in ("GET", "HEAD"):
            g = raw_request(server.endpoint, method, bucket.bucket_name, "p-" + alg)
            assert g.headers["ETag"] == quoted_etag(data) and g.headers["x-oss-hash-crc64ecma"] == str(crc64(data))
            assert g.headers["Content-Length"] == str(len(data))
            assert sse_of(g.headers) == {SSE: alg}
        assert bucket.get_object("p-" + alg).read() == data


# ===================================================================== AppendObject


def test_append_object_with_encryption(bucket):
    """oss2 test_append_object_with_encryption, with SM4 in place of KMS."""
    r1 = bucket.append_object("app", 0, b"123", headers={SSE: "SM4"})
    assert sse_of(r1.headers) == {SSE: "SM4"} and r1.next_position == 3 and r1.crc == crc64(b"123")
    r2 = bucket.append_object("app", 3, b"456", init_crc=r1.crc)
    assert sse_of(r2.headers) == {SSE: "SM4"} and r2.next_position == 6 and r2.crc == crc64(b"123456")
    r3 = bucket.append_object("app", 6, b"789", headers={SSE: "AES256"}, init_crc=r2.crc)
    assert sse_of(r3.headers) == {SSE: "SM4"} and r3.next_position == 9
    assert r3.crc == crc64(b"123456789") == 11051210869376104954
    r4 = bucket.append_object("app", 9, b"0", headers={SSE: "SM4", SSE_DATA: "SM4"}, init_crc=r3.crc)
    assert sse_of(r4.headers) == {SSE: "SM4"}
    g = bucket.get_object("app")
    assert g.read() == b"1234567890" and sse_of(g.headers) == {SSE: "SM4"}
    assert g.headers["x-oss-object-type"] == "Appendable"
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(b"1234567890")
    assert sse_of(bucket.head_object("app").headers) == {SSE: "SM4"}
    assert sse_of(bucket.get_object_meta("app").headers) == {SSE: "SM4"}
    # An unencrypted appendable object stays unencrypted when a later append asks for SM4.
    bucket.append_object("plain", 0, b"ab")
    r = bucket.append_object("plain", 2, b"cd", headers={SSE: "SM4"})
    assert sse_of(r.headers) == {} and sse_of(bucket.head_object("plain").headers) == {}
    assert bucket.get_object("plain").read() == b"abcd"
    # AES256 + data SM4 on the first append -> AES256 only.
    r = bucket.append_object("aes", 0, b"x", headers={SSE: "AES256", SSE_DATA: "SM4"})
    assert sse_of(r.headers) == {SSE: "AES256"}


@pytest.mark.parametrize("alg", ["AES256", "SM4"])
def test_append_ranges_across_append_and_segment_boundaries(bucket, alg):
    chunks = [os.urandom(70000), os.urandom(SEG), os.urandom(1), os.urandom(SEG - 1), os.urandom(5000)]
    data = b""
    crc = 0
    for i, c in enumerate(chunks):
        r = bucket.append_object("app", len(data), c, headers={SSE: alg} if i == 0 else None, init_crc=crc)
        data += c
        crc = r.crc
        assert r.crc == crc64(data) and r.next_position == len(data)
        assert sse_of(r.headers) == {SSE: alg}
    assert bucket.get_object("app").read() == data
    edges = []
    pos = 0
    for c in chunks[:-1]:
        pos += len(c)
        edges.append(pos)
    check_ranges(bucket, "app", data, boundary_ranges(len(data), extra=edges))
    check_ranges(bucket, "app", data, [(None, 1), (None, 5001), (None, SEG + 2), (70000, None)])
    etag = bucket.head_object("app").etag
    assert bucket.get_object("app", byte_range=(69999, 70000), headers={"If-Match": etag}).read() == data[69999:70001]
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("app", headers={"If-None-Match": etag})


# ===================================================================== multipart


def _parts(content):
    return [content[i : i + PART] for i in range(0, len(content), PART)]


@pytest.mark.parametrize("alg,init_extra", [("SM4", {}), ("AES256", {SSE_DATA: "SM4"})], ids=["SM4", "AES256+dataSM4"])
def test_multipart_upload_with_encryption(bucket, alg, init_extra):
    """oss2 test_multipart_upload with SM4/AES256 in place of KMS."""
    content = os.urandom(1024 * 1024 + 777)
    chunks = _parts(content)
    assert len(chunks) == 11
    up = bucket.init_multipart_upload("mp", headers=dict({SSE: alg}, **init_extra))
    assert sse_of(up.headers) == {SSE: alg}
    for bad in ({SSE: alg}, {SSE_DATA: "SM4"}, {SSE: "AES256" if alg == "SM4" else "SM4"}):
        oss_error(400, "InvalidArgument", bucket.upload_part, "mp", up.upload_id, 1, chunks[0], headers=bad)
    parts = []
    for i, d in enumerate(chunks, 1):
        r = bucket.upload_part("mp", up.upload_id, i, d)
        assert sse_of(r.headers) == {SSE: alg}, i
        assert r.etag == md5_hex_upper(d) and r.crc == crc64(d)
        parts.append(PartInfo(i, r.etag, size=len(d), part_crc=r.crc))
    listed = bucket.list_parts("mp", up.upload_id)
    assert [(p.part_number, p.etag, p.size) for p in listed.parts] == [(i, md5_hex_upper(d), len(d)) for i, d in enumerate(chunks, 1)]
    for bad in ({SSE: alg}, {SSE_DATA: "SM4"}):
        oss_error(400, "InvalidArgument", bucket.complete_multipart_upload, "mp", up.upload_id, parts, headers=bad)
    assert not bucket.object_exists("mp") and uploads_of(bucket, "mp") == [up.upload_id]
    done = bucket.complete_multipart_upload("mp", up.upload_id, parts)
    assert done.status == 200 and sse_of(done.headers) == {SSE: alg}
    assert done.crc == crc64(content)
    assert re.fullmatch(r'"[0-9A-F]{32}-11"', done.headers["ETag"]), done.headers["ETag"]
    g = bucket.get_object("mp")
    assert g.read() == content and sse_of(g.headers) == {SSE: alg}
    assert g.headers["x-oss-object-type"] == "Multipart"
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(content)
    assert sse_of(bucket.head_object("mp").headers) == {SSE: alg}
    assert sse_of(bucket.get_object_meta("mp").headers) == {SSE: alg}
    n = len(content)
    ranges = [
        (PART - 1, PART), (PART - 100, PART + 100), (PART + SEG - 1, PART + SEG), (2 * PART - 1, 2 * PART + SEG),
        (3 * PART - 5, 5 * PART + 5), (10 * PART - 1, 10 * PART), (10 * PART, n - 1), (0, n - 1), (SEG, 3 * PART),
    ]
    check_ranges(bucket, "mp", content, ranges + [(None, 30000), (None, n - 5), (PART * 7 + 3, None)])
    etag = bucket.head_object("mp").etag
    assert bucket.get_object("mp", byte_range=(PART - 1, PART), headers={"If-Match": etag}).read() == content[PART - 1 : PART + 1]
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("mp", byte_range=(PART - 1, PART), headers={"If-None-Match": etag})


def test_upload_part_copy_rejects_sse_headers_and_echoes(bucket):
    bucket.put_object("src", os.urandom(PART), headers={SSE: "AES256"})
    up = bucket.init_multipart_upload("mp", headers={SSE: "SM4"})
    for bad in ({SSE: "SM4"}, {SSE: "AES256"}, {SSE_DATA: "SM4"}):
        oss_error(400, "InvalidArgument", bucket.upload_part_copy, bucket.bucket_name, "src", (0, 99), "mp", up.upload_id, 1, headers=bad)
    r = bucket.upload_part_copy(bucket.bucket_name, "src", (0, 99), "mp", up.upload_id, 1)
    assert sse_of(r.headers) == {SSE: "SM4"}
    bucket.abort_multipart_upload("mp", up.upload_id)


def test_multipart_without_sse_has_no_headers(bucket):
    up = bucket.init_multipart_upload("mp", headers={SSE_DATA: "SM4"})
    assert sse_of(up.headers) == {}
    r = bucket.upload_part("mp", up.upload_id, 1, b"abc")
    assert sse_of(r.headers) == {}
    done = bucket.complete_multipart_upload("mp", up.upload_id, [PartInfo(1, r.etag)])
    assert sse_of(done.headers) == {} and sse_of(bucket.head_object("mp").headers) == {}


def test_resumable_upload_and_download_with_sm4(bucket, tmp_path):
    """oss2 test_resumable_uoload with SM4: PutObject below the threshold, multipart above it."""
    data = os.urandom(11 * 1024 * 1024)
    small = tmp_path / "small.bin"
    small.write_bytes(data[: 150 * 1024])
    r = oss2.resumable_upload(bucket, "small", str(small), headers={SSE: "SM4"}, multipart_threshold=200 * 1024,
                              store=oss2.ResumableStore(root=str(tmp_path)))
    assert sse_of(r.headers) == {SSE: "SM4"}
    assert bucket.head_object("small").headers["x-oss-object-type"] == "Normal"
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    r = oss2.resumable_upload(
        bucket, "big", str(big), headers={SSE: "SM4"}, multipart_threshold=200 * 1024, part_size=100 * 1024,
        num_threads=2, store=oss2.ResumableStore(root=str(tmp_path)),
    )
    assert r.status == 200 and sse_of(r.headers) == {SSE: "SM4"}
    h = bucket.head_object("big")
    assert sse_of(h.headers) == {SSE: "SM4"} and h.headers["x-oss-object-type"] == "Multipart"
    assert h.content_length == len(data) and int(h.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    out = tmp_path / "back.bin"
    oss2.resumable_download(bucket, "big", str(out), multiget_threshold=1024 * 1024, part_size=1024 * 1024 + 1,
                            num_threads=2, store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert hashlib.md5(out.read_bytes()).digest() == hashlib.md5(data).digest()
    out2 = tmp_path / "small.back"
    oss2.resumable_download(bucket, "small", str(out2), store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert out2.read_bytes() == data[: 150 * 1024]


# ===================================================================== CopyObject / UploadPartCopy


def test_copy_object_with_encryption(bucket):
    """oss2 test_copy_object with SM4 in place of KMS+SM4."""
    data = os.urandom(1024)
    r = bucket.put_object("src", data, headers={"x-oss-meta-user1": "user_value", SSE: "SM4"})
    assert sse_of(r.headers) == {SSE: "SM4"}
    h = bucket.head_object("src")
    assert sse_of(h.headers) == {SSE: "SM4"} and h.headers["x-oss-meta-user1"] == "user_value"
    c = bucket.copy_object(bucket.bucket_name, "src", "plain-copy")
    assert sse_of(c.headers) == {}
    h = bucket.head_object("plain-copy")
    assert sse_of(h.headers) == {} and h.headers["x-oss-meta-user1"] == "user_value"
    assert h.headers["ETag"] == quoted_etag(data) and int(h.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    assert bucket.get_object("plain-copy").read() == data
    c = bucket.copy_object(bucket.bucket_name, "src", "aes-copy", headers={"x-oss-meta-user1": "user_value", SSE: "AES256"})
    assert sse_of(c.headers) == {SSE: "AES256"}
    assert c.headers["ETag"] == quoted_etag(data) and c.crc == crc64(data)
    assert sse_of(bucket.head_object("aes-copy").headers) == {SSE: "AES256"}
    assert bucket.get_object("aes-copy").read() == data
    # AES256 + data SM4 -> AES256 only; data SM4 alone -> unencrypted.
    c = bucket.copy_object(bucket.bucket_name, "aes-copy", "aes-copy2", headers={SSE: "AES256", SSE_DATA: "SM4"})
    assert sse_of(c.headers) == {SSE: "AES256"} and sse_of(bucket.head_object("aes-copy2").headers) == {SSE: "AES256"}
    c = bucket.copy_object(bucket.bucket_name, "aes-copy", "data-only", headers={SSE_DATA: "SM4"})
    assert sse_of(c.headers) == {} and sse_of(bucket.head_object("data-only").headers) == {}
    # REPLACE directive: metadata from the request, encryption from the request.
    c = bucket.copy_object(bucket.bucket_name, "src", "replaced",
                           headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-user2": "v2", SSE: "SM4"})
    h = bucket.head_object("replaced")
    assert sse_of(h.headers) == {SSE: "SM4"} and h.headers["x-oss-meta-user2"] == "v2" and "x-oss-meta-user1" not in h.headers
    # An unencrypted source copied with SM4 gets encrypted.
    bucket.put_object("plain", data)
    c = bucket.copy_object(bucket.bucket_name, "plain", "plain-to-sm4", headers={SSE: "SM4"})
    assert sse_of(c.headers) == {SSE: "SM4"} and bucket.get_object("plain-to-sm4").read() == data
    # Self-copy asking for another algorithm re-encrypts under it.
    c = bucket.copy_object(bucket.bucket_name, "src", "src", headers={SSE: "AES256"})
    assert sse_of(c.headers) == {SSE: "AES256"} and sse_of(bucket.head_object("src").headers) == {SSE: "AES256"}
    assert bucket.get_object("src").read() == data


def test_copy_across_buckets_with_different_defaults(bucket, bucket2):
    a, b = bucket, bucket2
    a.put_bucket_encryption(ServerSideEncryptionRule("SM4"))
    b.put_bucket_encryption(ServerSideEncryptionRule("AES256"))
    data = os.urandom(3 * SEG + 7)
    assert sse_of(a.put_object("src", data).headers) == {SSE: "SM4"}
    c = b.copy_object(a.bucket_name, "src", "dst")
    assert sse_of(c.headers) == {SSE: "AES256"}
    assert sse_of(b.head_object("dst").headers) == {SSE: "AES256"} and b.get_object("dst").read() == data
    c = a.copy_object(b.bucket_name, "dst", "back")
    assert sse_of(c.headers) == {SSE: "SM4"} and a.get_object("back").read() == data
    c = b.copy_object(a.bucket_name, "src", "dst-sm4", headers={SSE: "SM4"})
    assert sse_of(c.headers) == {SSE: "SM4"} and sse_of(b.head_object("dst-sm4").headers) == {SSE: "SM4"}
    # Within bucket A (default SM4), an AES256 source copied without headers gets the default, not the source's.
    a.put_object("aes", data, headers={SSE: "AES256"})
    c = a.copy_object(a.bucket_name, "aes", "aes-copy")
    assert sse_of(c.headers) == {SSE: "SM4"} and sse_of(a.head_object("aes-copy").headers) == {SSE: "SM4"}
    check_ranges(b, "dst", data, [(SEG - 1, SEG), (2 * SEG, 3 * SEG + 6), (None, 8)])


def test_upload_part_copy_from_encrypted_sources(bucket, bucket2):
    src = os.urandom(3 * PART)
    bucket.put_object("sm4-src", src, headers={SSE: "SM4"})
    other = os.urandom(PART + 10)
    bucket2.put_object("aes-src", other, headers={SSE: "AES256"})
    up = bucket2.init_multipart_upload("mp", headers={SSE: "AES256"})
    assert sse_of(up.headers) == {SSE: "AES256"}
    plan = [
        (bucket.bucket_name, "sm4-src", (SEG - 1, SEG - 1 + PART - 1), src[SEG - 1 : SEG - 1 + PART]),
        (bucket.bucket_name, "sm4-src", (0, PART - 1), src[:PART]),
        (bucket2.bucket_name, "aes-src", (0, PART + 9), other),
        (bucket.bucket_name, "sm4-src", (2 * PART, 3 * PART - 1), src[2 * PART :]),
    ]
    parts, expected = [], b""
    for i, (sb, sk, rng, want) in enumerate(plan, 1):
        r = bucket2.upload_part_copy(sb, sk, rng, "mp", up.upload_id, i)
        assert sse_of(r.headers) == {SSE: "AES256"}
        assert r.etag == md5_hex_upper(want), i
        parts.append(PartInfo(i, r.etag))
        expected += want
    r = bucket2.upload_part("mp", up.upload_id, len(plan) + 1, b"tail")
    parts.append(PartInfo(len(plan) + 1, r.etag))
    expected += b"tail"
    done = bucket2.complete_multipart_upload("mp", up.upload_id, parts)
    assert sse_of(done.headers) == {SSE: "AES256"} and done.crc == crc64(expected)
    g = bucket2.get_object("mp")
    assert g.read() == expected and sse_of(g.headers) == {SSE: "AES256"}
    check_ranges(bucket2, "mp", expected, [(PART - 1, PART), (2 * PART + 5, 3 * PART + 15), (None, 10)])


# ===================================================================== round trips, ranges, conditions


@pytest.mark.parametrize("alg", ["AES256", "SM4"])
def test_round_trips_ranges_and_conditions(bucket, tmp_path, alg):
    for n in [0, 1, SEG - 1, SEG, SEG + 1, 10 * 1024 * 1024]:
        key = "k%d" % n
        data = os.urandom(n)
        r = bucket.put_object(key, data, headers={SSE: alg})
        assert sse_of(r.headers) == {SSE: alg}
        assert r.headers["ETag"] == quoted_etag(data) and r.crc == crc64(data), n
        g = bucket.get_object(key)
        assert g.status == 200 and g.read() == data, n
        assert g.headers["ETag"] == quoted_etag(data) and int(g.headers["Content-Length"]) == n
        assert sse_of(g.headers) == {SSE: alg}
        out = tmp_path / key
        bucket.get_object_to_file(key, str(out))  # oss2 checks the CRC of the whole download
        assert out.read_bytes() == data, n
        if n == 0:
            g = bucket.get_object(key, byte_range=(0, 0))  # invalid range on an empty object -> 200, whole (empty)
            assert g.status == 200 and g.read() == b""
            continue
        # (SM4 is slow in a debug build: on the 10 MiB object keep ranges short, except the open-ended tail.)
        short = lambda rs: [(s, e) for s, e in rs if n <= 1024 * 1024 or (e if e is not None else n - 1) - (s or 0) < 300000]
        check_ranges(bucket, key, data, short(boundary_ranges(n)))
        check_ranges(bucket, key, data, [(None, k) for k in (1, 16, SEG - 1, SEG, SEG + 1) if k <= n])
        check_ranges(bucket, key, data, short([(s, None) for s in (0, SEG - 1, SEG, n - SEG - 1, n - 1) if 0 <= s < n]))
        # An invalid range is ignored: 200 with the whole object.
        g = bucket.get_object(key, byte_range=(n, n + 10))
        assert g.status == 200 and "Content-Range" not in g.headers and g.read() == data
        # Conditions.
        etag = g.headers["ETag"]
        if n <= 1024 * 1024:
            g = bucket.get_object(key, headers={"If-Match": etag})
            assert g.status == 200 and g.read() == data
        g = bucket.get_object(key, byte_range=(0, 0), headers={"If-Match": etag.strip('"')})
        assert g.status == 206 and g.read() == data[:1]
        with pytest.raises(oss2.exceptions.NotModified):
            bucket.get_object(key, headers={"If-None-Match": etag})
        with pytest.raises(oss2.exceptions.NotModified):
            bucket.get_object(key, byte_range=(0, 0), headers={"If-None-Match": etag})
        with pytest.raises(oss2.exceptions.PreconditionFailed):
            bucket.get_object(key, headers={"If-Match": '"00000000000000000000000000000000"'})
        g = bucket.get_object(key, byte_range=(n - 1, n - 1), headers={"If-None-Match": '"00000000000000000000000000000000"'})
        assert g.status == 206 and g.read() == data[-1:]
        with pytest.raises(oss2.exceptions.NotModified):
            bucket.head_object(key, headers={"If-None-Match": etag})


# ===================================================================== 7.3 precedence


def test_bucket_default_precedence_and_stat(bucket):
    bucket.put_bucket_encryption(ServerSideEncryptionRule("SM4"))
    first = os.urandom(70000)
    assert sse_of(bucket.put_object("a", first).headers) == {SSE: "SM4"}
    assert sse_of(bucket.put_object("b", b"bbbbb", headers={SSE: "AES256"}).headers) == {SSE: "AES256"}
    assert sse_of(bucket.put_object("d", b"d", headers={SSE_DATA: "SM4"}).headers) == {SSE: "SM4"}
    assert sse_of(bucket.append_object("app", 0, b"ap").headers) == {SSE: "SM4"}
    assert sse_of(bucket.copy_object(bucket.bucket_name, "b", "b-copy").headers) == {SSE: "SM4"}
    up = bucket.init_multipart_upload("mp")
    assert sse_of(up.headers) == {SSE: "SM4"}
    p1 = bucket.upload_part("mp", up.upload_id, 1, b"m" * PART)
    # Change the default: nothing existing changes, the open upload keeps what Initiate fixed.
    bucket.put_bucket_encryption(ServerSideEncryptionRule("AES256"))
    for k in ("a", "d", "app", "b-copy"):
        assert sse_of(bucket.head_object(k).headers) == {SSE: "SM4"}, k
    assert sse_of(bucket.head_object("b").headers) == {SSE: "AES256"}
    p2 = bucket.upload_part("mp", up.upload_id, 2, b"n" * 10)
    assert sse_of(p2.headers) == {SSE: "SM4"}
    done = bucket.complete_multipart_upload("mp", up.upload_id, [PartInfo(1, p1.etag), PartInfo(2, p2.etag)])
    assert sse_of(done.headers) == {SSE: "SM4"}
    r = bucket.append_object("app", 2, b"pp")
    assert sse_of(r.headers) == {SSE: "SM4"}
    assert sse_of(bucket.put_object("e", b"e").headers) == {SSE: "AES256"}
    assert sse_of(bucket.put_object("f", b"f", headers={SSE: "SM4"}).headers) == {SSE: "SM4"}
    # Delete the default: new writes are unencrypted, old ones keep theirs.
    bucket.delete_bucket_encryption()
    assert sse_of(bucket.put_object("c", b"ccc").headers) == {}
    assert sse_of(bucket.head_object("c").headers) == {}
    assert sse_of(bucket.head_object("a").headers) == {SSE: "SM4"}
    assert sse_of(bucket.head_object("e").headers) == {SSE: "AES256"}
    assert bucket.get_object("a").read() == first
    assert bucket.get_object("app").read() == b"appp"
    assert bucket.get_object("mp").read() == b"m" * PART + b"n" * 10
    sizes = {"a": 70000, "b": 5, "d": 1, "app": 4, "b-copy": 5, "mp": PART + 10, "e": 1, "f": 1, "c": 3}
    stat = bucket.get_bucket_stat()
    assert stat.object_count == len(sizes)
    assert stat.storage_size_in_bytes == sum(sizes.values())


# ===================================================================== writes that resolve to KMS, KMS switched off


class KmsOff:
    def __init__(self, srv, plain, kms_default, kms_sm4_default, sm4_default):
        self.srv = srv
        self.plain = plain
        self.kms_default = kms_default
        self.kms_sm4_default = kms_sm4_default
        self.sm4_default = sm4_default


@pytest.fixture(scope="module")
def kms_off(tmp_path_factory):
    """A server whose root account has KMS switched off (`arca kms service off`, spec 7.6).

    Buckets: `plain` (no default), `kms_default` (PutBucketEncryption KMS),
    `kms_sm4_default` (PutBucket headers KMS + key id 123 + data SM4), `sm4_default` (SM4).
    """
    srv = ArcaServer(tmp_path_factory.mktemp("arca-kms-off"))
    srv.start()
    try:
        buckets = []
        for tag in ("plain", "kmsdef", "kmssm4def", "sm4def"):
            b = srv.bucket(unique_bucket_name("kmsoff-" + tag))
            buckets.append(b)
        buckets[0].create_bucket()
        buckets[1].create_bucket()
        buckets[1].put_bucket_encryption(ServerSideEncryptionRule("KMS"))
        buckets[2].create_bucket(headers={SSE: "KMS", SSE_KEY: "123", SSE_DATA: "SM4"})
        buckets[3].create_bucket(headers={SSE: "SM4"})
        buckets[0].put_object("sm4-src", b"0123456789", headers={SSE: "SM4"})
        buckets[0].append_object("sm4-app", 0, b"abc", headers={SSE: "SM4"})
        subprocess.run([ARCA_BIN, "kms", "--config", str(srv.config_path), "service", "off"], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        time.sleep(1.1)  # another process switched KMS off: the server sees it within 1 s (LOOKUP_TTL)
        yield KmsOff(srv, *buckets)
    finally:
        srv.stop()


def _kms_refused(fn, *args, **kwargs):
    oss_error(403, "KmsServiceNotEnabled", fn, *args, **kwargs)


KMS_HEADER_ROWS = [{SSE: "KMS"}, {SSE: "KMS", SSE_DATA: "SM4"}, {SSE: "KMS", SSE_KEY: "123"}]


def test_kms_off_put_object_rows(kms_off):
    """The KMS rows of test_put_object_with_encryption: 403 KmsServiceNotEnabled, nothing stored."""
    b = kms_off.plain
    for i, h in enumerate(KMS_HEADER_ROWS):
        _kms_refused(b.put_object, "kms%d" % i, b"a", headers=h)
        assert not b.object_exists("kms%d" % i), h
    # The same over a raw request: status, code, and nothing replaced at an existing key.
    b.put_object("exists", b"old", headers={SSE: "SM4"})
    r = raw_request(kms_off.srv.endpoint, "PUT", b.bucket_name, "exists", headers={SSE: "KMS"}, data=b"new")
    assert (r.status_code, error_details(r).get("Code")) == (403, "KmsServiceNotEnabled")
    assert b.get_object("exists").read() == b"old" and sse_of(b.head_object("exists").headers) == {SSE: "SM4"}
    # Non-KMS writes are unaffected.
    for i, (headers, alg) in enumerate(PUT_ROWS):
        assert sse_of(b.put_object("ok%d" % i, b"a", headers=headers).headers) == expect(alg)


def test_kms_off_append_initiate_copy(kms_off):
    b = kms_off.plain
    for h in KMS_HEADER_ROWS:
        if SSE_KEY in h:  # a CMK id is not allowed for appendable objects (spec 6.8/7.2): refused before KMS
            oss_error(400, "InvalidArgument", b.append_object, "kapp", 0, b"123", headers=h)
        else:
            _kms_refused(b.append_object, "kapp", 0, b"123", headers=h)
        assert not b.object_exists("kapp")
        _kms_refused(b.init_multipart_upload, "kmp", headers=h)
        assert uploads_of(b, "kmp") == []
        _kms_refused(b.copy_object, b.bucket_name, "sm4-src", "kcopy", headers=h)
        assert not b.object_exists("kcopy")
    # A later append ignores SSE headers, KMS included: no error, the object stays SM4.
    size = b.head_object("sm4-app").content_length
    r = b.append_object("sm4-app", size, b"def", headers={SSE: "KMS"})
    assert sse_of(r.headers) == {SSE: "SM4"}
    assert b.get_object("sm4-app").read()[-3:] == b"def"


@pytest.mark.parametrize("which", ["kms_default", "kms_sm4_default"])
def test_kms_off_bucket_default(kms_off, which):
    b = getattr(kms_off, which)
    _kms_refused(b.put_object, "o", b"a")
    assert not b.object_exists("o")
    _kms_refused(b.put_object, "o", b"a", headers={SSE_DATA: "SM4"})
    assert not b.object_exists("o")
    _kms_refused(b.append_object, "app", 0, b"a")
    assert not b.object_exists("app")
    _kms_refused(b.init_multipart_upload, "mp")
    assert uploads_of(b, "mp") == []
    _kms_refused(b.copy_object, kms_off.plain.bucket_name, "sm4-src", "cp")
    assert not b.object_exists("cp")
    assert b.get_bucket_stat().object_count == 0
    # The request header wins over the KMS default.
    for alg in ("AES256", "SM4"):
        assert sse_of(b.put_object("o-" + alg, b"a", headers={SSE: alg}).headers) == {SSE: alg}
        assert sse_of(b.append_object("app-" + alg, 0, b"a", headers={SSE: alg}).headers) == {SSE: alg}
        up = b.init_multipart_upload("mp-" + alg, headers={SSE: alg})
        assert sse_of(up.headers) == {SSE: alg}
        b.abort_multipart_upload("mp-" + alg, up.upload_id)
        c = b.copy_object(kms_off.plain.bucket_name, "sm4-src", "cp-" + alg, headers={SSE: alg})
        assert sse_of(c.headers) == {SSE: alg} and b.get_object("cp-" + alg).read() == b"0123456789"


def test_kms_off_copy_into_kms_default_from_sm4_default(kms_off):
    src = kms_off.sm4_default
    assert sse_of(src.put_object("s", b"xyz").headers) == {SSE: "SM4"}
    _kms_refused(kms_off.kms_default.copy_object, src.bucket_name, "s", "d")
    assert not kms_off.kms_default.object_exists("d")
    c = src.copy_object(src.bucket_name, "s", "s2")
    assert sse_of(c.headers) == {SSE: "SM4"}
