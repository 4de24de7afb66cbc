"""Server-side encryption through oss2 (spec oss-api.md section 7): bucket
default rules, per-object headers on every API, precedence, ranges, and what
is stored on disk (no plaintext, tamper detection, service-key rotation)."""

import hashlib
import json
import os
import sqlite3
import time

import oss2
import pytest
import requests
from oss2.models import PartInfo, ServerSideEncryptionRule

from arca_testlib import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ArcaServer, crc64, unique_bucket_name

SSE = "x-oss-server-side-encryption"
SSE_KEY = "x-oss-server-side-encryption-key-id"
SSE_DATA = "x-oss-server-side-data-encryption"
SEG = 65536


def sse_of(headers):
    return headers.get(SSE), headers.get(SSE_DATA), headers.get(SSE_KEY)


# ----------------------------------------------------------------- 7.5 bucket rules


@pytest.mark.parametrize(
    "algorithm,key_id,data,expected",
    [
        ("AES256", None, None, ("AES256", None, None)),
        ("KMS", None, None, ("KMS", None, None)),
        ("KMS", "test_wrong", None, ("KMS", "test_wrong", None)),
        ("KMS", "123", None, ("KMS", "123", None)),
        ("KMS", None, "SM4", ("KMS", None, "SM4")),
        ("KMS", "123", "SM4", ("KMS", "123", "SM4")),
        ("AES256", None, "SM4", ("AES256", None, None)),
        ("SM4", None, "SM4", ("SM4", None, None)),
        ("SM4", None, None, ("SM4", None, None)),
    ],
)
def test_bucket_encryption_rules_accepted(bucket, algorithm, key_id, data, expected):
    rule = ServerSideEncryptionRule(sse_algorithm=algorithm, kms_master_keyid=key_id, kms_data_encryption=data)
    bucket.put_bucket_encryption(rule)
    got = bucket.get_bucket_encryption()
    assert (got.sse_algorithm, got.kms_master_keyid, got.kms_data_encryption) == expected
    info = bucket.get_bucket_info().bucket_encryption_rule
    assert (info.sse_algorithm, info.kms_master_keyid, info.kms_data_encryption) == expected


def test_bucket_encryption_rules_rejected_and_defaults(bucket):
    with pytest.raises(oss2.exceptions.NoSuchServerSideEncryptionRule):
        bucket.get_bucket_encryption()
    assert bucket.get_bucket_info().bucket_encryption_rule.sse_algorithm is None
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="AES256", kms_master_keyid="test"))
    with pytest.raises(oss2.exceptions.InvalidEncryptionAlgorithmError):
        bucket.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="random"))
    with pytest.raises(oss2.exceptions.NoSuchServerSideEncryptionRule):
        bucket.get_bucket_encryption()
    assert bucket.delete_bucket_encryption().status == 204
    bucket.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="AES256"))
    assert bucket.delete_bucket_encryption().status == 204


@pytest.mark.parametrize(
    "headers,expected",
    [
        ({SSE: "KMS", SSE_DATA: "SM4", SSE_KEY: "9468da86-3509-4f8d-a61e-6eab1eac"}, ("KMS", "9468da86-3509-4f8d-a61e-6eab1eac", "SM4")),
        ({SSE: "KMS"}, ("KMS", None, None)),
        ({SSE: "SM4"}, ("SM4", None, None)),
    ],
)
def test_put_bucket_headers_set_the_default(server, auth, bucket_name, headers, expected):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    b.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ, oss2.models.BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_IA), headers=dict(headers, **{"x-oss-acl": "private"}))
    info = b.get_bucket_info()
    rule = info.bucket_encryption_rule
    assert (rule.sse_algorithm, rule.kms_master_keyid, rule.kms_data_encryption) == expected
    assert info.storage_class == "IA" and info.acl.grant == "public-read"


# ----------------------------------------------------------------- 7.2 / 7.4 object headers


def test_put_object_response_headers(bucket):
    cases = [
        ({}, (None, None)),
        ({SSE: "AES256"}, ("AES256", None)),
        ({SSE: "SM4"}, ("SM4", None)),
        ({SSE: "AES256", SSE_DATA: "SM4"}, ("AES256", None)),
        ({SSE: "SM4", SSE_DATA: "SM4"}, ("SM4", None)),
        ({SSE_DATA: "SM4"}, (None, None)),
        ({SSE: "KMS"}, ("KMS", None)),
        ({SSE: "KMS", SSE_DATA: "SM4"}, ("KMS", "SM4")),
    ]
    for i, (headers, (alg, data)) in enumerate(cases):
        r = bucket.put_object("o%d" % i, b"a", headers=headers)
        got = sse_of(r.headers)
        assert got[:2] == (alg, data), (headers, got)
        assert (got[2] is not None) == (alg == "KMS"), "a key id exactly for KMS objects"
        h = bucket.head_object("o%d" % i)
        assert sse_of(h.headers) == got
        assert r.etag == "0CC175B9C0F1B6A831C399E269772661" and r.crc == crc64(b"a")


def test_invalid_object_sse_headers(bucket):
    with pytest.raises(oss2.exceptions.ServerError) as e:
        bucket.put_object("bad", b"x", headers={SSE: "AES128"})
    assert (e.value.status, e.value.code) == (400, "InvalidEncryptionAlgorithmError")
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object("bad", b"x", headers={SSE: "KMS", SSE_DATA: "AES"})
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object("bad", b"x", headers={SSE: "AES256", SSE_KEY: "some-key"})
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object("bad", b"x", headers={"x-oss-server-side-encryption-customer-algorithm": "AES256"})
    assert not bucket.object_exists("bad")


def test_append_keeps_the_first_encryption(bucket):
    r1 = bucket.append_object("app", 0, b"123", headers={SSE: "SM4"})
    r2 = bucket.append_object("app", 3, b"456", init_crc=r1.crc)
    r3 = bucket.append_object("app", 6, b"789", headers={SSE: "AES256"}, init_crc=r2.crc)
    assert [sse_of(r.headers)[0] for r in (r1, r2, r3)] == ["SM4", "SM4", "SM4"]
    assert r3.crc == crc64(b"123456789")
    g = bucket.get_object("app")
    assert g.read() == b"123456789" and g.headers[SSE] == "SM4"
    k1 = bucket.append_object("kapp", 0, b"123", headers={SSE: "KMS"})
    k2 = bucket.append_object("kapp", 3, b"456")
    k3 = bucket.append_object("kapp", 6, b"789", headers={SSE: "AES256"})
    assert k1.headers[SSE_KEY] == k2.headers[SSE_KEY] == k3.headers[SSE_KEY] and k3.headers[SSE] == "KMS"


@pytest.mark.parametrize("alg,data", [("SM4", None), ("AES256", None), ("KMS", "SM4")])
def test_multipart_with_encryption(bucket, alg, data):
    headers = {SSE: alg}
    if data:
        headers[SSE_DATA] = data
    content = os.urandom(1024 * 1024 + 77)
    parts_data = [content[i : i + 100 * 1024] for i in range(0, len(content), 100 * 1024)]
    up = bucket.init_multipart_upload("mp", headers=headers)
    assert sse_of(up.headers)[:2] == (alg, data)
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.upload_part("mp", up.upload_id, 1, parts_data[0], headers=headers)
    parts = []
    for i, d in enumerate(parts_data, 1):
        r = bucket.upload_part("mp", up.upload_id, i, d)
        assert sse_of(r.headers) == sse_of(up.headers)
        parts.append(PartInfo(i, r.etag))
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.complete_multipart_upload("mp", up.upload_id, parts, headers=headers)
    done = bucket.complete_multipart_upload("mp", up.upload_id, parts)
    assert done.status == 200 and sse_of(done.headers) == sse_of(up.headers)
    assert done.crc == crc64(content)
    assert bucket.get_object("mp").read() == content
    for start, end in [(102399, 102401), (SEG - 1, SEG + 1), (3 * 102400 - 5, 5 * 102400 + 5), (len(content) - 10, len(content) - 1)]:
        assert bucket.get_object("mp", byte_range=(start, end)).read() == content[start : end + 1]


def test_resumable_upload_and_download_with_sse(bucket, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(11 * 1024 * 1024)
    src.write_bytes(data)
    small = tmp_path / "small.bin"
    small.write_bytes(data[: 150 * 1024])
    r = oss2.resumable_upload(bucket, "small", str(small), headers={SSE: "KMS", SSE_DATA: "SM4"}, multipart_threshold=200 * 1024)
    assert sse_of(r.headers)[:2] == ("KMS", "SM4") and r.headers[SSE_KEY]
    r = oss2.resumable_upload(
        bucket, "big", str(src), headers={SSE: "SM4"}, multipart_threshold=200 * 1024, part_size=100 * 1024, num_threads=2,
        store=oss2.ResumableStore(root=str(tmp_path)),
    )
    assert r.status == 200
    assert bucket.head_object("big").headers[SSE] == "SM4"
    out = tmp_path / "back.bin"
    oss2.resumable_download(bucket, "big", str(out), multiget_threshold=1024 * 1024, part_size=1024 * 1024, num_threads=2,
                            store=oss2.ResumableDownloadStore(root=str(tmp_path)))
    assert out.read_bytes() == data


def test_copy_never_inherits_and_reencrypts(server, auth, bucket):
    r = bucket.put_object("src", os.urandom(1024), headers={"x-oss-meta-user1": "user_value", SSE: "KMS", SSE_DATA: "SM4"})
    assert sse_of(r.headers)[:2] == ("KMS", "SM4")
    h = bucket.head_object("src")
    assert h.headers["x-oss-meta-user1"] == "user_value" and h.headers[SSE] == "KMS"
    bucket.copy_object(bucket.bucket_name, "src", "plain-copy")
    assert sse_of(bucket.head_object("plain-copy").headers) == (None, None, None)
    bucket.copy_object(bucket.bucket_name, "src", "aes-copy", headers={"x-oss-meta-user1": "user_value", SSE: "AES256"})
    assert sse_of(bucket.head_object("aes-copy").headers) == ("AES256", None, None)
    assert bucket.get_object("aes-copy").read() == bucket.get_object("src").read()
    # Across buckets with different defaults.
    other = oss2.Bucket(auth, server.endpoint, unique_bucket_name("sse-dst"))
    other.create_bucket()
    try:
        other.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="SM4"))
        other.copy_object(bucket.bucket_name, "src", "x")
        assert other.head_object("x").headers[SSE] == "SM4"
        up = other.init_multipart_upload("pc")
        assert up.headers[SSE] == "SM4"
        r = other.upload_part_copy(bucket.bucket_name, "src", (0, 511), "pc", up.upload_id, 1)
        other.complete_multipart_upload("pc", up.upload_id, [PartInfo(1, r.etag)])
        assert other.get_object("pc").read() == bucket.get_object("src").read()[:512]
    finally:
        for k in ["x", "pc"]:
            other.delete_object(k)
        other.delete_bucket_encryption()
        other.delete_bucket()


@pytest.mark.parametrize("alg", ["AES256", "SM4"])
def test_round_trips_ranges_and_conditions(bucket, tmp_path, alg):
    for n in [0, 1, SEG - 1, SEG, SEG + 1, 10 * 1024 * 1024]:
        data = os.urandom(n)
        r = bucket.put_object("k%d" % n, data, headers={SSE: alg})
        assert r.etag == hashlib.md5(data).hexdigest().upper() and r.crc == crc64(data)
        assert bucket.get_object("k%d" % n).read() == data
        if n > 2:
            for start, end in [(0, 0), (n - 1, n - 1), (n // 2, n - 1)]:
                assert bucket.get_object("k%d" % n, byte_range=(start, end)).read() == data[start : end + 1]
            assert bucket.get_object("k%d" % n, byte_range=(None, 2)).read() == data[-2:]
    big = 10 * 1024 * 1024
    out = tmp_path / "f"
    bucket.get_object_to_file("k%d" % big, str(out))
    assert os.path.getsize(out) == big
    etag = bucket.head_object("k%d" % SEG).etag
    assert bucket.get_object("k%d" % SEG, headers={"If-Match": etag}).read()
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("k%d" % SEG, headers={"If-None-Match": etag})
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("k%d" % SEG, headers={"If-Match": '"00000000000000000000000000000000"'})


def test_bucket_default_precedence_and_stat(bucket):
    bucket.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="SM4"))
    assert bucket.put_object("a", b"1234567").headers[SSE] == "SM4"
    assert bucket.put_object("b", b"x", headers={SSE: "AES256"}).headers[SSE] == "AES256"
    bucket.put_bucket_encryption(ServerSideEncryptionRule(sse_algorithm="AES256"))
    assert bucket.head_object("a").headers[SSE] == "SM4", "existing objects keep their encryption"
    bucket.delete_bucket_encryption()
    assert SSE not in bucket.put_object("c", b"y").headers
    assert bucket.get_object("a").read() == b"1234567"
    assert bucket.get_bucket_stat().storage_size_in_bytes == 9


# ----------------------------------------------------------------- what is on disk


def _blob_path(data_dir, key):
    db = sqlite3.connect(str(data_dir / "meta.sqlite"))
    try:
        for k, record in db.execute("SELECT key, record FROM objects"):
            if bytes(k).decode() == key:
                blob = json.loads(record)["extents"][0]["blob"]
                return data_dir / "blobs" / blob[:2] / blob
    finally:
        db.close()
    raise KeyError(key)


@pytest.fixture
def own_server(tmp_path):
    srv = ArcaServer(tmp_path / "srv", extra_config={"service_key_rotation_secs": 1})
    srv.start()
    yield srv
    if srv.is_running():
        srv.stop()


def test_no_plaintext_at_rest(own_server, tmp_path):
    srv = own_server
    b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("atrest"))
    b.create_bucket()
    secret_marker = os.urandom(20).hex().encode()
    plain_marker = os.urandom(20).hex().encode()
    secret = secret_marker * 8000
    for alg in ["AES256", "SM4", "KMS"]:
        b.put_object("simple-" + alg, secret, headers={SSE: alg})
        up = b.init_multipart_upload("mp-" + alg, headers={SSE: alg})
        parts = [PartInfo(i, b.upload_part("mp-" + alg, up.upload_id, i, secret[(i - 1) * 102400 : i * 102400]).etag) for i in (1, 2, 3)]
        b.complete_multipart_upload("mp-" + alg, up.upload_id, parts)
        pos = 0
        for i in range(3):
            pos = b.append_object("app-" + alg, pos, secret[:50000], headers={SSE: alg}).next_position
        b.copy_object(b.bucket_name, "simple-" + alg, "copy-" + alg, headers={SSE: alg})
    b.put_object("control", plain_marker * 100)
    srv.stop()
    found_plain = False
    for path in sorted(p for p in srv.data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert secret_marker not in content, "plaintext of an encrypted object in %s" % path
        found_plain = found_plain or plain_marker in content
    assert found_plain, "the unencrypted control object must be found, or the scan proves nothing"


@pytest.mark.parametrize("alg", ["SM4", "AES256"])
def test_tampered_blobs_are_never_served(own_server, alg):
    srv = own_server
    b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("tamper"))
    b.create_bucket()
    data = os.urandom(200 * 1024)
    b.put_object("t", data, headers={SSE: alg})
    path = _blob_path(srv.data_dir, "t")
    original = path.read_bytes()
    seg = SEG + 16
    url = b.sign_url("GET", "t", 600)

    def fetch(range_header=None):
        headers = {"Range": range_header} if range_header else {}
        try:
            r = requests.get(url, headers=headers, timeout=30)
            return r.status_code, r.content
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
            return None, None

    def assert_fails():
        status, body = fetch()
        assert status != 200 or body != data
        assert status is None or status >= 500 or len(body) < len(data), (status, len(body or b""))

    flipped = bytearray(original)
    flipped[seg + 100] ^= 1
    path.write_bytes(bytes(flipped))
    assert_fails()
    # An untouched segment still reads.
    assert fetch("bytes=0-99") == (206, data[:100])
    flipped = bytearray(original)
    flipped[10] ^= 1
    path.write_bytes(bytes(flipped))
    status, body = fetch()
    assert status == 500 and b"InternalError" in body, "a first-segment failure is a clean 500 before any body"
    path.write_bytes(original[: 2 * seg])
    assert_fails()
    path.write_bytes(original[seg : 2 * seg] + original[:seg] + original[2 * seg :])
    assert_fails()
    path.write_bytes(original)
    assert fetch() == (200, data)


def test_service_key_rotation_keeps_old_objects_readable(own_server):
    srv = own_server
    b = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), srv.endpoint, unique_bucket_name("rotate"))
    b.create_bucket()
    for alg in ["SM4", "AES256"]:
        b.put_object("old-" + alg, b"before " + alg.encode(), headers={SSE: alg})
    time.sleep(2.5)  # past the 1 s rotation period
    for alg in ["SM4", "AES256"]:
        b.put_object("new-" + alg, b"after " + alg.encode(), headers={SSE: alg})
        assert b.get_object("old-" + alg).read() == b"before " + alg.encode()
        assert b.get_object("new-" + alg).read() == b"after " + alg.encode()
    db = sqlite3.connect(str(srv.data_dir / "meta.sqlite"))
    enc = {bytes(k).decode(): json.loads(r)["encryption"] for k, r in db.execute("SELECT key, record FROM objects")}
    db.close()
    for alg in ["SM4", "AES256"]:
        old, new = enc["old-" + alg], enc["new-" + alg]
        assert old["key_id"] == new["key_id"]
        assert new["key_version"] > old["key_version"]
