"""Object APIs: put/get/head/meta, ranges, conditions, metadata, delete, copy, append, ACL."""

import base64
import os
import time
import xml.etree.ElementTree as ET

import oss2
import pytest

from arca_testlib import (
    content_md5,
    crc64,
    error_details,
    md5_hex_upper,
    raw_request,
    unique_bucket_name,
    xml_root,
)

HELLO_ETAG = "5D41402ABC4B2A76B9719D911017C592"
HELLO_CRC = 11177612005948864433


# ---------------------------------------------------------------- put / get / head


def test_put_hello_etag_and_crc(bucket):
    r = bucket.put_object("hello", b"hello")
    assert r.status == 200
    assert r.headers["ETag"] == '"%s"' % HELLO_ETAG
    assert r.etag == HELLO_ETAG
    assert r.crc == HELLO_CRC
    assert r.headers["x-oss-hash-crc64ecma"] == str(HELLO_CRC)
    assert r.request_id


def test_get_object_headers(bucket):
    bucket.put_object("hello.txt", b"hello")
    g = bucket.get_object("hello.txt")
    assert g.status == 200
    assert g.read() == b"hello"
    h = g.headers
    assert h["ETag"] == '"%s"' % HELLO_ETAG
    assert h["Content-Length"] == "5"
    assert h["Content-Type"] == "text/plain"
    assert h["x-oss-object-type"] == "Normal"
    assert h["x-oss-storage-class"] == "Standard"
    assert h["x-oss-hash-crc64ecma"] == str(HELLO_CRC)
    assert h["Accept-Ranges"] == "bytes"
    assert h["x-oss-request-id"]
    assert "x-oss-delete-marker" not in h
    # RFC 1123 with two-digit day (oss2 parses it strictly)
    assert abs(oss2.utils.http_to_unixtime(h["Last-Modified"]) - time.time()) < 600
    assert g.last_modified == oss2.utils.http_to_unixtime(h["Last-Modified"])


def test_head_object(bucket):
    data = os.urandom(12345)
    bucket.put_object("blob", data)
    h = bucket.head_object("blob")
    assert h.status == 200
    assert h.content_length == 12345
    assert h.etag == md5_hex_upper(data)
    assert h.object_type == "Normal"
    assert h.content_type == "application/octet-stream"
    assert int(h.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    assert h.resp.read() == b""


def test_get_object_meta(bucket):
    bucket.put_object("hello", b"hello")
    m = bucket.get_object_meta("hello")
    assert m.status == 200
    assert m.etag == HELLO_ETAG
    assert m.content_length == 5
    assert m.last_modified == bucket.head_object("hello").last_modified


def test_empty_object(bucket):
    r = bucket.put_object("empty", b"")
    assert r.crc == 0
    assert r.etag == md5_hex_upper(b"")
    g = bucket.get_object("empty")
    assert g.read() == b""
    assert g.headers["x-oss-hash-crc64ecma"] == "0"
    assert bucket.head_object("empty").content_length == 0


def test_default_content_type_and_standard_headers(server, bucket):
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, "noext", data=b"abc")
    assert resp.status_code == 200
    assert bucket.head_object("noext").content_type == "application/octet-stream"
    headers = {
        "Content-Type": "application/x-custom",
        "Cache-Control": "no-cache",
        "Content-Disposition": 'attachment; filename="f.bin"',
        "Content-Encoding": "identity",
        "Expires": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    bucket.put_object("std", b"abc", headers=headers)
    h = bucket.head_object("std").headers
    for k, v in headers.items():
        assert h[k] == v


def test_overwrite_replaces(bucket):
    bucket.put_object("k", b"first", headers={"x-oss-meta-a": "1"})
    bucket.put_object("k", b"second")
    g = bucket.get_object("k")
    assert g.read() == b"second"
    assert "x-oss-meta-a" not in g.headers
    assert g.etag == md5_hex_upper(b"second")


def test_get_missing(bucket):
    with pytest.raises(oss2.exceptions.NoSuchKey) as ei:
        bucket.get_object("nope")
    assert ei.value.status == 404
    assert ei.value.request_id
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("nope")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_meta("nope")


def test_head_missing_bucket_x_oss_err(server, auth):
    b = oss2.Bucket(auth, server.endpoint, unique_bucket_name("nobucket"))
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.head_object("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_object_meta("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.object_exists("k")
    resp = raw_request(server.endpoint, "HEAD", b.bucket_name, "k")
    assert resp.status_code == 404
    assert resp.content == b""
    err = ET.fromstring(base64.b64decode(resp.headers["x-oss-err"]))
    assert err.findtext("Code") == "NoSuchBucket"


def test_object_exists(bucket):
    assert bucket.object_exists("x") is False
    bucket.put_object("x", b"1")
    assert bucket.object_exists("x") is True
    bucket.delete_object("x")
    assert bucket.object_exists("x") is False


def test_unicode_key(bucket):
    key = "中文/文件 名.txt"
    bucket.put_object(key, b"zh")
    assert bucket.get_object(key).read() == b"zh"
    assert [o.key for o in bucket.list_objects().object_list] == [key]


def test_key_with_control_chars_and_specials(bucket):
    keys = ["a\x0cb", "a\x0db", "a\x0eb", "a\x7fb", "dir//double", "./dot", "dir/../up", "trailing/"]
    for k in keys:
        bucket.put_object(k, k.encode())
    for k in keys:
        assert bucket.get_object(k).read() == k.encode()
    assert sorted(o.key for o in bucket.list_objects().object_list) == sorted(keys)


# ---------------------------------------------------------------- metadata


def test_user_metadata(bucket):
    bucket.put_object("m", b"v", headers={"x-oss-meta-author": "alice", "X-Oss-Meta-Key2": "Value Two"})
    h = bucket.head_object("m").headers
    assert h["x-oss-meta-author"] == "alice"
    assert h["x-oss-meta-key2"] == "Value Two"
    g = bucket.get_object("m")
    assert g.headers["x-oss-meta-author"] == "alice"


def test_user_metadata_raw_utf8(bucket):
    value = "测试".encode("utf-8")
    bucket.put_object("unicode-meta", b"v", headers={"x-oss-meta-unicode": value})
    h = bucket.head_object("unicode-meta").headers
    # http.client decodes header bytes as latin-1; re-encode to get the raw bytes back
    assert h["x-oss-meta-unicode"].encode("latin-1") == value
    g = bucket.get_object("unicode-meta")
    assert g.headers["x-oss-meta-unicode"].encode("latin-1") == value


# ---------------------------------------------------------------- ranges


@pytest.fixture
def thousand(bucket):
    data = os.urandom(1000)
    bucket.put_object("r", data)
    return data


@pytest.mark.parametrize(
    "byte_range,start,end",
    [((0, 499), 0, 499), ((500, None), 500, 999), ((None, 199), 801, 999), ((3, 3), 3, 3), ((0, 999), 0, 999)],
)
def test_range_valid(bucket, thousand, byte_range, start, end):
    g = bucket.get_object("r", byte_range=byte_range)
    assert g.status == 206
    assert g.read() == thousand[start : end + 1]
    assert g.headers["Content-Range"] == "bytes %d-%d/1000" % (start, end)
    assert g.headers["Content-Length"] == str(end - start + 1)
    # CRC header is the whole object's
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(thousand)


@pytest.mark.parametrize("header", ["bytes=0-1000", "bytes=1000-2000", "bytes=1000-", "bytes=-2000",
                                    "byte=0-499", "bytes=500-100", "bytes=abc"])
def test_range_invalid_returns_whole(bucket, thousand, header):
    g = bucket.get_object("r", headers={"Range": header})
    assert g.status == 200
    assert g.read() == thousand
    assert "Content-Range" not in g.headers
    assert g.headers["Content-Length"] == "1000"


def test_range_standard_behavior(bucket, thousand):
    std = {"x-oss-range-behavior": "standard"}
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.get_object("r", headers=dict(std, Range="bytes=1000-2000"))
    assert ei.value.status == 416
    assert ei.value.code == "InvalidRange"
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.get_object("r", headers=dict(std, Range="bytes=1000-"))
    assert ei.value.status == 416
    # end beyond the size is clipped
    g = bucket.get_object("r", headers=dict(std, Range="bytes=990-2000"))
    assert g.status == 206
    assert g.read() == thousand[990:]
    assert g.headers["Content-Range"] == "bytes 990-999/1000"


def test_range_on_head(bucket, thousand):
    h = bucket.head_object("r", headers={"Range": "bytes=0-9"})
    assert h.status in (200, 206)
    assert h.resp.read() == b""


def test_range_via_presigned_url(bucket, thousand):
    import requests

    url = bucket.sign_url("GET", "r", 60)
    resp = requests.get(url, headers={"Range": "bytes=100-199"})
    assert resp.status_code == 206
    assert resp.content == thousand[100:200]


# ---------------------------------------------------------------- conditional requests


def test_if_match(bucket):
    bucket.put_object("c", b"hello")
    assert bucket.get_object("c", headers={"If-Match": '"%s"' % HELLO_ETAG}).read() == b"hello"
    assert bucket.get_object("c", headers={"If-Match": HELLO_ETAG}).read() == b"hello"
    assert bucket.get_object("c", headers={"If-Match": HELLO_ETAG.lower()}).read() == b"hello"
    with pytest.raises(oss2.exceptions.PreconditionFailed) as ei:
        bucket.get_object("c", headers={"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    assert ei.value.status == 412
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.head_object("c", headers={"If-Match": "0123456789ABCDEF0123456789ABCDEF"})


def test_if_none_match(bucket):
    bucket.put_object("c", b"hello")
    with pytest.raises(oss2.exceptions.NotModified) as ei:
        bucket.get_object("c", headers={"If-None-Match": '"%s"' % HELLO_ETAG})
    assert ei.value.status == 304
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.head_object("c", headers={"If-None-Match": HELLO_ETAG})
    g = bucket.get_object("c", headers={"If-None-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    assert g.read() == b"hello"


def test_not_modified_has_no_body_or_x_oss_err(server, bucket):
    bucket.put_object("c", b"hello")
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "c", headers={"If-None-Match": HELLO_ETAG})
    assert resp.status_code == 304
    assert resp.content == b""
    assert "x-oss-err" not in resp.headers


def test_if_modified_since(bucket):
    bucket.put_object("c", b"hello")
    future = oss2.utils.http_date(int(time.time()) + 60)
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-Modified-Since": future})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", byte_range=(0, 1), headers={"If-Modified-Since": future})
    past = oss2.utils.http_date(int(time.time()) - 3600)
    assert bucket.get_object("c", headers={"If-Modified-Since": past}).read() == b"hello"


def test_if_unmodified_since(bucket):
    bucket.put_object("c", b"hello")
    past = oss2.utils.http_date(int(time.time()) - 3600)
    with pytest.raises(oss2.exceptions.PreconditionFailed) as ei:
        bucket.get_object("c", headers={"If-Unmodified-Since": past})
    assert ei.value.status == 412
    future = oss2.utils.http_date(int(time.time()) + 3600)
    assert bucket.get_object("c", headers={"If-Unmodified-Since": future}).read() == b"hello"


def test_etag_changes_with_content(bucket):
    bucket.put_object("c", b"version-1")
    old = bucket.head_object("c").etag
    bucket.put_object("c", b"version-2")
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c", byte_range=(0, 3), headers={"If-Match": old})


# ---------------------------------------------------------------- response overrides


def test_response_header_overrides(bucket):
    bucket.put_object("o", b"data", headers={"Content-Type": "text/plain"})
    params = {
        "response-content-type": "image/jpeg",
        "response-content-disposition": "attachment; filename=x.jpg",
        "response-cache-control": "max-age=60",
        "response-content-language": "zh-CN",
        "response-content-encoding": "identity",
        "response-expires": "Thu, 01 Dec 2033 16:00:00 GMT",
    }
    g = bucket.get_object("o", params=dict(params))
    assert g.read() == b"data"
    assert g.headers["Content-Type"] == "image/jpeg"
    assert g.headers["Content-Disposition"] == "attachment; filename=x.jpg"
    assert g.headers["Cache-Control"] == "max-age=60"
    assert g.headers["Content-Language"] == "zh-CN"
    assert g.headers["Expires"] == "Thu, 01 Dec 2033 16:00:00 GMT"
    # the stored metadata is unchanged
    assert bucket.head_object("o").content_type == "text/plain"


# ---------------------------------------------------------------- integrity


def test_content_md5_ok(bucket):
    data = os.urandom(5000)
    r = bucket.put_object("md5", data, headers={"Content-MD5": content_md5(data)})
    assert r.etag == md5_hex_upper(data)


def test_content_md5_mismatch(bucket):
    bucket.put_object("md5", b"original")
    with pytest.raises(oss2.exceptions.InvalidDigest) as ei:
        bucket.put_object("md5", b"new content", headers={"Content-MD5": content_md5(b"other content")})
    assert ei.value.status == 400
    assert bucket.get_object("md5").read() == b"original"
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5-new", b"abc", headers={"Content-MD5": content_md5(b"xyz")})
    assert bucket.object_exists("md5-new") is False


def test_content_md5_malformed(bucket):
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("md5-bad", b"abc", headers={"Content-MD5": "not-base64!!"})
    assert bucket.object_exists("md5-bad") is False


def test_chunked_upload_generator(bucket):
    blocks = [os.urandom(64 * 1024 + i) for i in range(20)]
    data = b"".join(blocks)

    def gen():
        yield from blocks

    r = bucket.put_object("chunked", gen())
    assert r.status == 200
    assert r.crc == crc64(data)
    assert r.etag == md5_hex_upper(data)
    assert bucket.get_object("chunked").read() == data
    assert bucket.head_object("chunked").content_length == len(data)


def test_get_object_to_file_checks_crc(bucket, tmp_path):
    data = os.urandom(300 * 1024)
    bucket.put_object("f", data)
    out = tmp_path / "f"
    bucket.get_object_to_file("f", str(out))
    assert out.read_bytes() == data


def test_get_with_content_length_but_no_body(server, bucket):
    """oss2's test_sign sends a GET with Content-Length: 9 and no body; the server must not wait for one."""
    bucket.put_object("cl", b"content")
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "cl", headers={"Content-Length": "9"}, timeout=20)
    assert resp.status_code == 200
    assert resp.content == b"content"


# ---------------------------------------------------------------- delete


def test_delete_object(bucket):
    bucket.put_object("d", b"x")
    r = bucket.delete_object("d")
    assert r.status == 204
    assert not bucket.object_exists("d")
    r = bucket.delete_object("d")
    assert r.status == 204
    r = bucket.delete_object("never-existed")
    assert r.status == 204


def test_batch_delete(bucket):
    keys = ["a", "b/c", "d e"]
    for k in keys:
        bucket.put_object(k, b"x")
    bucket.put_object("keep", b"x")
    r = bucket.batch_delete_objects(keys + ["missing"])
    assert sorted(r.deleted_keys) == sorted(keys + ["missing"])
    assert [o.key for o in bucket.list_objects().object_list] == ["keep"]


def test_batch_delete_control_chars(bucket):
    keys = ["中文!@#$%^&*()-=文件\x0c-2.txt", "plain\x0c.txt"]
    for k in keys:
        bucket.put_object(k, b"x")
    r = bucket.batch_delete_objects(keys)
    assert sorted(r.deleted_keys) == sorted(keys)
    assert bucket.list_objects().object_list == []


def test_batch_delete_quiet(server, bucket):
    for k in ("q1", "q2"):
        bucket.put_object(k, b"x")
    body = b"<Delete><Quiet>true</Quiet><Object><Key>q1</Key></Object><Object><Key>q2</Key></Object></Delete>"
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, "", params={"delete": ""}, data=body,
                       headers={"Content-MD5": content_md5(body), "Content-Type": "application/xml"})
    assert resp.status_code == 200, resp.content
    if resp.content.strip():
        assert xml_root(resp).findall("Deleted") == []
    assert bucket.list_objects().object_list == []


def test_batch_delete_bad_md5(server, bucket):
    bucket.put_object("q1", b"x")
    body = b"<Delete><Quiet>false</Quiet><Object><Key>q1</Key></Object></Delete>"
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, "", params={"delete": ""}, data=body,
                       headers={"Content-MD5": content_md5(b"something else")})
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "InvalidDigest"
    assert bucket.object_exists("q1")


def test_batch_delete_malformed_xml(server, bucket):
    body = b"<Delete><Object><Key>q1</Key></Object>"
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, "", params={"delete": ""}, data=body,
                       headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "MalformedXML"


# ---------------------------------------------------------------- copy


def test_copy_object_copy_directive(bucket):
    data = os.urandom(2000)
    bucket.put_object("src", data, headers={"Content-Type": "text/x-src", "x-oss-meta-origin": "src"})
    r = bucket.copy_object(bucket.bucket_name, "src", "dst")
    assert r.status == 200
    assert r.etag == md5_hex_upper(data)
    g = bucket.get_object("dst")
    assert g.read() == data
    assert g.headers["Content-Type"] == "text/x-src"
    assert g.headers["x-oss-meta-origin"] == "src"
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    # source untouched
    assert bucket.get_object("src").read() == data


def test_copy_object_result_xml(server, bucket):
    bucket.put_object("src", b"hello")
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, "dst",
                       headers={"x-oss-copy-source": "/%s/src" % bucket.bucket_name})
    assert resp.status_code == 200, resp.content
    root = xml_root(resp)
    assert root.tag == "CopyObjectResult"
    assert root.findtext("ETag") == '"%s"' % HELLO_ETAG
    assert oss2.utils.iso8601_to_unixtime(root.findtext("LastModified")) > time.time() - 600
    assert resp.headers["ETag"] == '"%s"' % HELLO_ETAG


def test_copy_object_replace_directive(bucket):
    bucket.put_object("src", b"abc", headers={"Content-Type": "text/x-src", "x-oss-meta-origin": "src"})
    bucket.copy_object(bucket.bucket_name, "src", "dst", headers={
        "x-oss-metadata-directive": "REPLACE",
        "Content-Type": "text/x-new",
        "x-oss-meta-fresh": "yes",
    })
    h = bucket.head_object("dst").headers
    assert h["Content-Type"] == "text/x-new"
    assert h["x-oss-meta-fresh"] == "yes"
    assert "x-oss-meta-origin" not in h
    assert bucket.get_object("dst").read() == b"abc"


def test_copy_object_invalid_directive(bucket):
    bucket.put_object("src", b"abc")
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.copy_object(bucket.bucket_name, "src", "dst", headers={"x-oss-metadata-directive": "MERGE"})


def test_update_object_meta(bucket):
    data = os.urandom(1000)
    bucket.put_object("u", data, headers={"x-oss-meta-old": "1"})
    etag = bucket.head_object("u").etag
    bucket.update_object_meta("u", {"Content-Type": "whatever", "x-oss-meta-category": "novel"})
    h = bucket.head_object("u")
    assert h.content_type == "whatever"
    assert h.headers["x-oss-meta-category"] == "novel"
    assert "x-oss-meta-old" not in h.headers
    assert h.etag == etag
    assert bucket.get_object("u").read() == data


def test_copy_across_buckets_and_escaped_key(server, auth, bucket):
    src_key = "阿里云/加油/:?;@&=+$, /<>{}[]|/"
    data = os.urandom(512)
    bucket.put_object(src_key, data)
    other = oss2.Bucket(auth, server.endpoint, unique_bucket_name("copydst"))
    other.create_bucket()
    try:
        r = other.copy_object(bucket.bucket_name, src_key, "copied " + src_key)
        assert r.status == 200
        assert other.get_object("copied " + src_key).read() == data
    finally:
        from arca_testlib import cleanup_bucket

        cleanup_bucket(other)


def test_copy_source_conditions(bucket):
    bucket.put_object("src", b"hello")
    with pytest.raises(oss2.exceptions.PreconditionFailed) as ei:
        bucket.copy_object(bucket.bucket_name, "src", "dst",
                           headers={"x-oss-copy-source-if-match": '"0123456789ABCDEF0123456789ABCDEF"'})
    assert ei.value.status == 412
    assert not bucket.object_exists("dst")
    past = oss2.utils.http_date(int(time.time()) - 3600)
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.copy_object(bucket.bucket_name, "src", "dst", headers={"x-oss-copy-source-if-unmodified-since": past})
    r = bucket.copy_object(bucket.bucket_name, "src", "dst", headers={"x-oss-copy-source-if-match": '"%s"' % HELLO_ETAG})
    assert r.status == 200
    assert bucket.get_object("dst").read() == b"hello"


def test_copy_missing_source(server, auth, bucket):
    with pytest.raises(oss2.exceptions.NoSuchKey) as ei:
        bucket.copy_object(bucket.bucket_name, "no-such-source", "dst")
    assert ei.value.status == 404
    assert not bucket.object_exists("dst")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.copy_object(unique_bucket_name("nosrcbucket"), "k", "dst")


def test_copy_forbid_overwrite(bucket):
    bucket.put_object("src", b"new")
    bucket.put_object("dst", b"old")
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.copy_object(bucket.bucket_name, "src", "dst", headers={"x-oss-forbid-overwrite": "true"})
    assert (ei.value.status, ei.value.code) == (409, "FileAlreadyExists")
    assert bucket.get_object("dst").read() == b"old"


# ---------------------------------------------------------------- append


def test_append_object(bucket):
    r1 = bucket.append_object("ap", 0, b"abc")
    assert r1.status == 200
    assert r1.next_position == 3
    assert r1.crc == crc64(b"abc")
    r2 = bucket.append_object("ap", r1.next_position, b"defgh", init_crc=r1.crc)
    assert r2.next_position == 8
    assert r2.crc == crc64(b"abcdefgh")
    g = bucket.get_object("ap")
    assert g.read() == b"abcdefgh"
    assert g.headers["x-oss-object-type"] == "Appendable"
    assert g.headers["x-oss-next-append-position"] == "8"
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(b"abcdefgh")
    h = bucket.head_object("ap")
    assert h.object_type == "Appendable"
    assert h.content_length == 8


def test_append_wrong_position(bucket):
    bucket.append_object("ap", 0, b"123456")
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as ei:
        bucket.append_object("ap", 3, b"x")
    assert ei.value.status == 409
    assert ei.value.next_position == 6
    assert bucket.get_object("ap").read() == b"123456"
    with pytest.raises(oss2.exceptions.PositionNotEqualToLength) as ei:
        bucket.append_object("fresh", 5, b"x")
    assert ei.value.next_position == 0
    assert not bucket.object_exists("fresh")


def test_append_to_normal_object(bucket):
    bucket.put_object("normal", b"abc")
    with pytest.raises(oss2.exceptions.ObjectNotAppendable) as ei:
        bucket.append_object("normal", 3, b"d")
    assert ei.value.status == 409
    assert isinstance(ei.value, oss2.exceptions.Conflict)
    assert bucket.get_object("normal").read() == b"abc"


def test_append_keeps_first_metadata(bucket):
    bucket.append_object("ap.txt", 0, b"a", headers={"x-oss-meta-first": "1", "Content-Type": "text/x-first"})
    bucket.append_object("ap.txt", 1, b"b", headers={"x-oss-meta-second": "2", "Content-Type": "text/x-second"})
    h = bucket.head_object("ap.txt").headers
    assert h["Content-Type"] == "text/x-first"
    assert h["x-oss-meta-first"] == "1"
    assert bucket.get_object("ap.txt").read() == b"ab"


def test_append_then_overwrite_with_put(bucket):
    bucket.append_object("ap", 0, b"abc")
    bucket.put_object("ap", b"normal now")
    h = bucket.head_object("ap")
    assert h.object_type == "Normal"
    with pytest.raises(oss2.exceptions.ObjectNotAppendable):
        bucket.append_object("ap", 10, b"x")


def test_append_content_md5_mismatch(bucket):
    bucket.append_object("ap", 0, b"abc")
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.append_object("ap", 3, b"def", headers={"Content-MD5": content_md5(b"xyz")})
    assert bucket.get_object("ap").read() == b"abc"


def test_append_missing_position(server, bucket):
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, "ap", params={"append": ""}, data=b"abc")
    assert resp.status_code == 400, resp.content
    assert not bucket.object_exists("ap")


# ---------------------------------------------------------------- object ACL


def test_object_acl(bucket):
    bucket.put_object("acl", b"x")
    assert bucket.get_object_acl("acl").acl == oss2.OBJECT_ACL_DEFAULT
    for acl in (oss2.OBJECT_ACL_PUBLIC_READ, oss2.OBJECT_ACL_PRIVATE, oss2.OBJECT_ACL_PUBLIC_READ_WRITE,
                oss2.OBJECT_ACL_DEFAULT):
        assert bucket.put_object_acl("acl", acl).status == 200
        assert bucket.get_object_acl("acl").acl == acl
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object_acl("acl", "everyone")
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object_acl("missing")


def test_object_acl_at_put(server, bucket):
    bucket.put_object("pub", b"public", headers={"x-oss-object-acl": "public-read"})
    assert bucket.get_object_acl("pub").acl == "public-read"
    anon = oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, bucket.bucket_name)
    assert anon.get_object("pub").read() == b"public"
    bucket.put_object("priv", b"private")
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.get_object("priv")


# ---------------------------------------------------------------- forbid overwrite / names


def test_forbid_overwrite(bucket):
    bucket.put_object("f", b"old")
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.put_object("f", b"new", headers={"x-oss-forbid-overwrite": "true"})
    assert ei.value.status == 409
    assert ei.value.code == "FileAlreadyExists"
    assert bucket.get_object("f").read() == b"old"
    r = bucket.put_object("g", b"fresh", headers={"x-oss-forbid-overwrite": "true"})
    assert r.status == 200
    r = bucket.put_object("f", b"newer", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object("f").read() == b"newer"


def test_key_too_long(server, bucket):
    long_key = "k" * 1024
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, long_key, data=b"x")
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "InvalidObjectName"
    ok_key = "k" * 1023
    assert bucket.put_object(ok_key, b"x").status == 200
    assert bucket.get_object(ok_key).read() == b"x"
    # 1024 bytes of UTF-8 (342 chars * 3 bytes = 1026)
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, "中" * 342, data=b"x")
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "InvalidObjectName"


def test_key_starting_with_backslash(bucket):
    with pytest.raises(oss2.exceptions.InvalidObjectName) as ei:
        bucket.put_object("\\invalid-object-name", b"x")
    assert ei.value.status == 400


def test_key_starting_with_question_mark(server, auth, bucket):
    relaxed = oss2.Bucket(auth, server.endpoint, bucket.bucket_name, is_verify_object_strict=False)
    assert relaxed.put_object("?123.txt", b"q").status == 200
    assert relaxed.get_object("?123.txt").read() == b"q"
    assert relaxed.delete_object("?123.txt").status == 204


# ---------------------------------------------------------------- early errors on uploads


def test_early_error_on_large_upload_is_seen(server, auth, bucket):
    """An upload rejected before its body is read must still yield the error response, not a broken pipe."""
    data = os.urandom(8 * 1024 * 1024)
    missing = oss2.Bucket(auth, server.endpoint, unique_bucket_name("nobkt"))
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        missing.put_object("big", data)
    bad = oss2.Bucket(oss2.Auth(_key_id(), "wrong-secret"), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.put_object("big", data)
    # the same client keeps working afterwards
    assert bucket.put_object("after", b"ok").status == 200
    assert bucket.get_object("after").read() == b"ok"
    assert not bucket.object_exists("big")


def _key_id():
    from arca_testlib import ACCESS_KEY_ID

    return ACCESS_KEY_ID


def _signed_put_headers(bucket_name, key, length):
    """V1-signed headers for a raw PUT sent over a bare socket."""
    req = oss2.http.Request("PUT", "http://x/%s/%s" % (bucket_name, key), headers=oss2.http.CaseInsensitiveDict({"Content-Length": str(length)}))
    from arca_testlib import v1_auth

    v1_auth()._sign_request(req, bucket_name, key)
    return {k: v for k, v in req.headers.items() if v is not None}


def _raw_exchange(server, bucket_name, key, declared, body, close_write=False):
    import socket
    from urllib.parse import urlparse

    u = urlparse(server.endpoint)
    headers = _signed_put_headers(bucket_name, key, declared)
    lines = ["PUT /%s/%s HTTP/1.1" % (bucket_name, key), "Host: %s" % u.netloc] + ["%s: %s" % kv for kv in headers.items()]
    s = socket.create_connection((u.hostname, u.port), timeout=20)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    if close_write:
        s.shutdown(socket.SHUT_WR)
    chunks = []
    while True:
        try:
            c = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not c:
            break
        chunks.append(c)
        if b"</Error>" in b"".join(chunks):
            break
    s.close()
    return b"".join(chunks)


def test_put_over_5_gib_is_entity_too_large(server, bucket):
    resp = _raw_exchange(server, bucket.bucket_name, "huge", 5 * 1024**3 + 1, b"")
    assert resp.startswith(b"HTTP/1.1 400"), resp[:200]
    assert b"<Code>EntityTooLarge</Code>" in resp
    assert not bucket.object_exists("huge")


def test_body_shorter_than_content_length_stores_nothing(server, bucket):
    bucket.put_object("short", b"old")
    _raw_exchange(server, bucket.bucket_name, "short", 100, b"x" * 50, close_write=True)
    assert bucket.get_object("short").read() == b"old"
