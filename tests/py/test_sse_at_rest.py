"""Server-side encryption at rest: what lands in the data dir (spec oss-api.md 7,
docs/format.md).

- No plaintext of an encrypted object anywhere under the data dir (blobs,
  meta.sqlite and its -wal/-shm, root.key), for simple, multipart, append,
  copy and UploadPartCopy writes under AES256 and SM4 — with an unencrypted
  control object whose marker must be found, so the scan can fail.
- Tampered blobs (flipped byte, truncation, swapped segments, spliced blobs)
  are never served as data.
- Service-key rotation (`service_key_rotation_secs`): new objects use a new
  key version, old ones stay readable.
- `root_key_file`: the root key lives where configured, not in the data dir.
"""

import os
import time
from types import SimpleNamespace

import pytest
import requests
from oss2.models import PartInfo, ServerSideEncryptionRule

from arca_testlib import ArcaServer, blob_file, error_details, object_records, unique_bucket_name

SSE = "x-oss-server-side-encryption"
SEG = 65536
TAG = 16
CSEG = SEG + TAG  # a stored segment: ciphertext + GCM tag
PART = 100 * 1024


def records_by_key(srv, bucket):
    return {k: r for (b, k), r in object_records(srv.data_dir).items() if b == bucket.bucket_name}


# ===================================================================== no plaintext at rest


def test_no_plaintext_at_rest(tmp_path):
    srv = ArcaServer(tmp_path / "srv")
    srv.start()
    try:
        b = srv.bucket(unique_bucket_name("atrest"))
        b.create_bucket()
        d = srv.bucket(unique_bucket_name("atrest-default"))
        d.create_bucket()
        d.put_bucket_encryption(ServerSideEncryptionRule("SM4"))
        markers = {alg: os.urandom(20).hex().encode() for alg in ("AES256", "SM4")}
        control_marker = os.urandom(20).hex().encode()
        assert len(set(markers.values()) | {control_marker}) == 3
        secrets_ = {alg: m * (300 * 1024 // len(m)) for alg, m in markers.items()}
        expected = {}
        for alg, secret in secrets_.items():
            assert len(secret) == 3 * PART
            h = {SSE: alg}
            b.put_object("simple-" + alg, secret, headers=h)
            expected["simple-" + alg] = secret
            up = b.init_multipart_upload("mp-" + alg, headers=h)
            parts = [PartInfo(i, b.upload_part("mp-" + alg, up.upload_id, i, secret[(i - 1) * PART : i * PART]).etag) for i in (1, 2, 3)]
            b.complete_multipart_upload("mp-" + alg, up.upload_id, parts)
            expected["mp-" + alg] = secret
            pos = 0
            for i in range(3):
                pos = b.append_object("app-" + alg, pos, secret[i * PART : (i + 1) * PART], headers=h if i == 0 else None).next_position
            expected["app-" + alg] = secret
            b.copy_object(b.bucket_name, "simple-" + alg, "copy-" + alg, headers=h)
            expected["copy-" + alg] = secret
            up = b.init_multipart_upload("upc-" + alg, headers=h)
            r1 = b.upload_part_copy(b.bucket_name, "mp-" + alg, (0, 2 * PART - 1), "upc-" + alg, up.upload_id, 1)
            r2 = b.upload_part_copy(b.bucket_name, "app-" + alg, (2 * PART, 3 * PART - 1), "upc-" + alg, up.upload_id, 2)
            b.complete_multipart_upload("upc-" + alg, up.upload_id, [PartInfo(1, r1.etag), PartInfo(2, r2.etag)])
            expected["upc-" + alg] = secret
        # Bucket default SM4, no request header.
        d.put_object("default-SM4", secrets_["SM4"])
        d.copy_object(b.bucket_name, "simple-AES256", "default-copy-of-AES256")
        b.put_object("control", control_marker * (300 * 1024 // len(control_marker)))
        for key, data in expected.items():
            assert b.get_object(key).read() == data, key
        assert d.get_object("default-SM4").read() == secrets_["SM4"]
        assert d.get_object("default-copy-of-AES256").read() == secrets_["AES256"]

        recs = records_by_key(srv, b)
        for key in expected:
            enc = recs[key]["encryption"]
            alg = key.rsplit("-", 1)[1]
            assert enc and enc["algorithm"] == alg and enc["suite"] == {"AES256": 1, "SM4": 2}[alg], (key, enc)
            assert all(e["salt"] for e in recs[key]["extents"]), key
        assert not recs["control"].get("encryption")
        # A fresh data key per object; one service key (id and version) per suite within the rotation period.
        wrapped = [recs[k]["encryption"]["wrapped_key"] for k in expected]
        assert len(set(wrapped)) == len(wrapped)
        for alg in ("AES256", "SM4"):
            ids = {(recs[k]["encryption"]["key_id"], recs[k]["encryption"]["key_version"]) for k in expected if k.endswith(alg)}
            assert len(ids) == 1, ids
        assert (srv.data_dir / "root.key").is_file(), "without root_key_file the root key is generated into the data dir"
    finally:
        srv.stop()  # SIGTERM: SQLite checkpoints its WAL

    scanned = []
    control_found_in = []
    for path in sorted(p for p in srv.base_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        scanned.append(path.relative_to(srv.base_dir).as_posix())
        for alg, m in markers.items():
            assert m not in content, "plaintext of an %s object in %s" % (alg, path)
        if control_marker in content:
            control_found_in.append(path)
    assert any(p.startswith("data/blobs/") for p in scanned) and "data/meta.sqlite" in scanned, scanned
    assert "data/root.key" in scanned
    assert any("blobs" in p.parts for p in control_found_in), "the unencrypted control object must be found, or the scan proves nothing"


# ===================================================================== a server for tampering and rotation


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = ArcaServer(tmp_path_factory.mktemp("arca-sse-disk"), extra_config={"service_key_rotation_secs": 1})
    s.start()
    yield s
    s.stop()


@pytest.fixture
def disk_bucket(srv):
    b = srv.bucket(unique_bucket_name("disk"))
    b.create_bucket()
    return b


def blob_of(srv, bucket, key, extent=0):
    rec = records_by_key(srv, bucket)[key]
    return blob_file(srv.data_dir, rec["extents"][extent]["blob"])


class Fetch:
    """One GET, streamed: status, headers, the body bytes that arrived, and whether the stream broke."""

    def __init__(self, url, range_header=None):
        headers = {"Accept-Encoding": "identity"}
        if range_header:
            headers["Range"] = range_header
        self.body = b""
        self.broken = None
        self.status = None
        self.headers = {}
        try:
            r = requests.get(url, headers=headers, stream=True, timeout=60)
        except requests.exceptions.ConnectionError as e:
            self.broken = e
            return
        self.status = r.status_code
        self.headers = r.headers
        try:
            for chunk in r.iter_content(16384):
                self.body += chunk
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as e:
            self.broken = e
        finally:
            r.close()


def assert_not_served(f, data, first_bad, start=0):
    """A GET over tampered data failed: a 5xx, or the stream broke before Content-Length bytes arrived.

    Whatever did arrive must be genuine plaintext from before the first bad
    segment (plaintext offset `first_bad`; the request's range starts at `start`).
    """
    if f.status is not None and f.status >= 500:
        return
    assert f.status in (None, 200, 206), f.status
    assert f.broken is not None, "a tampered object was served completely (status %s, %d bytes, %s)" % (
        f.status, len(f.body), "equal to the data" if f.body == data[start : start + len(f.body)] else "DIFFERENT from the data")
    if "Content-Length" in f.headers:
        assert len(f.body) < int(f.headers["Content-Length"])
    assert f.body == data[start : start + len(f.body)], "bytes that are not the object's plaintext were served"
    assert start + len(f.body) <= max(first_bad, start), "plaintext of the tampered segment was served"


def assert_500_before_body(f):
    assert f.status == 500, (f.status, f.broken, len(f.body))
    assert error_details(SimpleNamespace(content=f.body, headers=f.headers))["Code"] == "InternalError"


@pytest.mark.parametrize("alg", ["SM4", "AES256"])
def test_tampered_blobs_are_never_served(srv, disk_bucket, alg):
    b = disk_bucket
    data = os.urandom(200 * 1024)  # segments of 65536, 65536, 65536, 8192
    b.put_object("t", data, headers={SSE: alg})
    path = blob_of(srv, b, "t")
    original = path.read_bytes()
    assert len(original) == len(data) + 4 * TAG, "docs/format.md: p + 16 * ceil(p / 65536)"
    url = b.sign_url("GET", "t", 600)

    def put(content):
        path.write_bytes(content)

    def flipped(offset):
        c = bytearray(original)
        c[offset] ^= 0x01
        return bytes(c)

    assert Fetch(url).body == data

    # (a) one flipped byte in the middle (segment 1)
    put(flipped(len(original) // 2))
    assert len(original) // 2 // CSEG == 1
    assert_not_served(Fetch(url), data, first_bad=SEG)
    f = Fetch(url, "bytes=0-99")
    assert (f.status, f.body) == (206, data[:100]), "an untouched segment still reads"
    f = Fetch(url, "bytes=131072-196607")
    assert (f.status, f.body) == (206, data[131072:196608])
    f = Fetch(url, "bytes=200000-204799")
    assert (f.status, f.body) == (206, data[200000:])
    assert_500_before_body(Fetch(url, "bytes=70000-70099"))
    assert_not_served(Fetch(url, "bytes=65000-70000"), data, first_bad=SEG, start=65000)
    assert_not_served(Fetch(url, "bytes=-140000"), data, first_bad=SEG, start=len(data) - 140000)

    # (b) a flipped byte in the first segment: a clean 500 before any body
    put(flipped(10))
    assert_500_before_body(Fetch(url))
    put(flipped(CSEG - 1))  # the first segment's tag
    assert_500_before_body(Fetch(url))
    put(flipped(len(original) - 1))  # the last segment's tag
    assert_not_served(Fetch(url), data, first_bad=3 * SEG)

    # (c) truncation at segment boundaries, and in the middle of a segment
    for cut in (2 * CSEG, 3 * CSEG, 3 * CSEG + 100, CSEG):
        put(original[:cut])
        assert_not_served(Fetch(url), data, first_bad=(cut // CSEG) * SEG)

    # (d) reordered segments
    put(original[CSEG : 2 * CSEG] + original[:CSEG] + original[2 * CSEG :])
    assert_not_served(Fetch(url), data, first_bad=0)
    put(original[:CSEG] + original[2 * CSEG : 3 * CSEG] + original[CSEG : 2 * CSEG] + original[3 * CSEG :])
    assert_not_served(Fetch(url), data, first_bad=SEG)
    put(original[:CSEG] + original[:CSEG] + original[2 * CSEG :])  # duplicated segment 0
    assert_not_served(Fetch(url), data, first_bad=SEG)

    # restored: served again
    put(original)
    f = Fetch(url)
    assert (f.status, f.body, f.broken) == (200, data, None)

    # (e) deep inside a larger object (past what a server checks before answering): a flipped byte in
    # segment 28 of 32 — a 5xx, or the stream breaks with only genuine bytes from before that segment.
    big = os.urandom(32 * SEG)
    b.put_object("big", big, headers={SSE: alg})
    bpath = blob_of(srv, b, "big")
    borig = bpath.read_bytes()
    c = bytearray(borig)
    c[28 * CSEG + 5] ^= 0x01
    bpath.write_bytes(bytes(c))
    burl = b.sign_url("GET", "big", 600)
    assert_not_served(Fetch(burl), big, first_bad=28 * SEG)
    f = Fetch(burl, "bytes=%d-%d" % (27 * SEG, 28 * SEG - 1))
    assert (f.status, f.body) == (206, big[27 * SEG : 28 * SEG])
    bpath.write_bytes(borig)
    assert Fetch(burl).body == big


@pytest.mark.parametrize("alg", ["SM4", "AES256"])
def test_spliced_blobs_are_never_served(srv, disk_bucket, alg):
    """Each extent has its own stream key: a blob moved to another part or object does not decrypt."""
    b = disk_bucket
    data = os.urandom(2 * PART)
    up = b.init_multipart_upload("mp", headers={SSE: alg})
    parts = [PartInfo(i, b.upload_part("mp", up.upload_id, i, data[(i - 1) * PART : i * PART]).etag) for i in (1, 2)]
    b.complete_multipart_upload("mp", up.upload_id, parts)
    other = os.urandom(PART)
    b.put_object("other", other, headers={SSE: alg})
    p1, p2 = blob_of(srv, b, "mp", 0), blob_of(srv, b, "mp", 1)
    po = blob_of(srv, b, "other")
    c1, c2, co = p1.read_bytes(), p2.read_bytes(), po.read_bytes()
    assert len(c1) == len(c2) == len(co)
    url = b.sign_url("GET", "mp", 600)
    try:
        p1.write_bytes(c2)
        p2.write_bytes(c1)
        assert_not_served(Fetch(url), data, first_bad=0)
        p1.write_bytes(c1)
        p2.write_bytes(c1)
        assert_not_served(Fetch(url), data, first_bad=PART)
        p2.write_bytes(co)  # another object's blob of the same size and suite
        assert_not_served(Fetch(url), data, first_bad=PART)
    finally:
        p1.write_bytes(c1)
        p2.write_bytes(c2)
    f = Fetch(url)
    assert (f.status, f.body) == (200, data)
    assert b.get_object("other").read() == other


# ===================================================================== service-key rotation


def test_service_key_rotation(srv, disk_bucket):
    b = disk_bucket
    for alg in ("SM4", "AES256"):
        b.put_object("old-" + alg, b"before " + alg.encode(), headers={SSE: alg})
    time.sleep(2.2)  # past the 1 s rotation period
    for alg in ("SM4", "AES256"):
        b.put_object("new-" + alg, b"after " + alg.encode(), headers={SSE: alg})
    for alg in ("SM4", "AES256"):
        assert b.get_object("old-" + alg).read() == b"before " + alg.encode()
        assert b.get_object("new-" + alg).read() == b"after " + alg.encode()
    recs = records_by_key(srv, b)
    key_ids = {}
    for alg in ("SM4", "AES256"):
        old, new = recs["old-" + alg]["encryption"], recs["new-" + alg]["encryption"]
        assert old["algorithm"] == new["algorithm"] == alg
        assert old["key_id"] == new["key_id"], (old, new)
        assert new["key_version"] > old["key_version"], (old, new)
        assert old["wrapped_key"] != new["wrapped_key"]
        key_ids[alg] = old["key_id"]
    assert key_ids["SM4"] != key_ids["AES256"], "one service key per suite"
    # Old versions survive a restart and still unwrap.
    srv.restart()
    for alg in ("SM4", "AES256"):
        assert b.get_object("old-" + alg).read() == b"before " + alg.encode()
        assert b.get_object("new-" + alg).read() == b"after " + alg.encode()


# ===================================================================== root_key_file


def test_root_key_file(tmp_path):
    key_file = tmp_path / "keys" / "root.key"
    key_file.parent.mkdir()
    key_file.write_text(os.urandom(32).hex())
    srv = ArcaServer(tmp_path / "srv", extra_config={"root_key_file": str(key_file)})
    srv.start()
    try:
        b = srv.bucket(unique_bucket_name("rootkey"))
        b.create_bucket()
        data = os.urandom(SEG + 5)
        b.put_object("o", data, headers={SSE: "SM4"})
        b.put_object("p", b"plain")
        assert not (srv.data_dir / "root.key").exists(), "with root_key_file no root key is generated into the data dir"
        srv.restart()
        assert b.get_object("o").read() == data
        srv.stop()
        # Another root key: the encrypted object must not be served (the server may refuse to start).
        key_file.write_text(os.urandom(32).hex())
        try:
            srv.start()
        except RuntimeError:
            return
        assert_not_served(Fetch(b.sign_url("GET", "o", 600)), data, first_bad=0)
    finally:
        srv.stop()
