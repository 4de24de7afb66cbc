"""Authentication: V1/V2/V4 header signatures, presigned URLs, time checks, anonymous access."""

import datetime as _dt
import os
import time

import oss2
import oss2.auth
import pytest
import requests

from arca_testlib import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    BAD_REGION_MESSAGE,
    REGION,
    SKEW_MESSAGE,
    error_details,
    quoted_etag,
    raw_request,
    v1_auth,
    v4_auth,
    xml_root,
)


class _ShiftedDatetime(_dt.datetime):
    """datetime whose utcnow() is shifted; patched into oss2.auth for V4 signing."""

    shift = _dt.timedelta(0)

    @classmethod
    def utcnow(cls):
        return _dt.datetime.utcnow() + cls.shift


@pytest.fixture
def shifted_v4_clock(monkeypatch):
    def set_shift(seconds):
        cls = type("Shifted", (_ShiftedDatetime,), {"shift": _dt.timedelta(seconds=seconds)})
        monkeypatch.setattr(oss2.auth, "datetime", cls)

    return set_shift


# ---------------------------------------------------------------- V1 header


def test_v1_header_put_get(bucket):
    data = os.urandom(1000)
    r = bucket.put_object("v1/obj", data)
    assert r.status == 200
    assert r.request_id
    assert r.etag == quoted_etag(data).strip('"')
    g = bucket.get_object("v1/obj")
    assert g.status == 200
    assert g.read() == data


def test_v1_x_oss_date_replaces_date(server, bucket):
    """ali-oss style: x-oss-date (RFC 1123) on the date line and no Date header at all."""
    key = "alioss-style"
    data = b"payload-with-x-oss-date"
    req = oss2.http.Request("PUT", "%s/%s/%s" % (server.endpoint, bucket.bucket_name, key), headers={
        "x-oss-date": oss2.utils.http_date(),
        "Content-Type": "text/plain",
    })
    v1_auth()._sign_request(req, bucket.bucket_name, key)
    headers = {k: v for k, v in req.headers.items() if v is not None and k.lower() != "date"}
    assert "date" not in {k.lower() for k in headers}
    resp = requests.put(req.url, data=data, headers=headers)
    assert resp.status_code == 200, resp.content
    assert bucket.get_object(key).read() == data


def test_v1_x_oss_date_60s_in_future_accepted(bucket):
    future = oss2.utils.http_date(int(time.time()) + 60)
    r = bucket.put_object("future-ok", b"x", headers={"x-oss-date": future})
    assert r.status == 200
    assert bucket.get_object("future-ok").read() == b"x"


def test_v1_skewed_x_oss_date(bucket):
    past = oss2.utils.http_date(int(time.time()) - 20 * 60)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.put_object("skewed", b"x", headers={"x-oss-date": past})
    e = ei.value
    assert e.status == 403
    assert e.code == "RequestTimeTooSkewed"
    assert e.message == SKEW_MESSAGE
    assert not bucket.object_exists("skewed")


def test_v1_skewed_x_oss_date_future(bucket):
    future = oss2.utils.http_date(int(time.time()) + 20 * 60)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.get_object("whatever", headers={"x-oss-date": future})
    assert ei.value.status == 403
    assert ei.value.code == "RequestTimeTooSkewed"
    assert ei.value.message == SKEW_MESSAGE


def test_v1_wrong_secret(server, bucket):
    bucket.put_object("k", b"v")
    bad = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, "not-the-secret"), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bad.get_object("k")
    assert ei.value.status == 403
    assert ei.value.code == "SignatureDoesNotMatch"
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.put_object("k", b"overwritten")
    assert bucket.get_object("k").read() == b"v"


def test_v1_wrong_secret_on_head_carries_x_oss_err(server, bucket):
    bucket.put_object("k", b"v")
    bad = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, "not-the-secret"), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bad.head_object("k")
    assert ei.value.status == 403


def test_unknown_access_key(server, bucket):
    bad = oss2.Bucket(oss2.Auth("LTAIunknownkey000099", ACCESS_KEY_SECRET), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bad.get_object("k")
    assert ei.value.status == 403
    assert ei.value.code == "InvalidAccessKeyId"
    svc = oss2.Service(oss2.Auth("LTAIunknownkey000099", ACCESS_KEY_SECRET), server.endpoint)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        svc.list_buckets()
    assert ei.value.status == 403
    assert ei.value.code == "InvalidAccessKeyId"


def test_error_response_shape(server, bucket):
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "missing-key")
    assert resp.status_code == 404
    assert resp.headers.get("x-oss-request-id")
    assert resp.headers.get("Date")
    assert resp.headers.get("Content-Type", "").startswith("application/xml")
    d = error_details(resp)
    assert d["Code"] == "NoSuchKey"
    assert d.get("RequestId") == resp.headers["x-oss-request-id"]
    assert d.get("Message")


# ---------------------------------------------------------------- V1 presigned URLs


def test_v1_presigned_get(bucket):
    key = "presigned/dir/obj.bin"
    data = os.urandom(3000)
    bucket.put_object(key, data)
    url = bucket.sign_url("GET", key, 300)
    assert "OSSAccessKeyId=" in url and "Signature=" in url
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.content == data
    # Range is not part of the V1 string to sign
    resp = requests.get(url, headers={"Range": "bytes=10-19"})
    assert resp.status_code == 206
    assert resp.content == data[10:20]
    # slash_safe keeps '/' literal in the path
    url2 = bucket.sign_url("GET", key, 300, slash_safe=True)
    assert "/presigned/dir/obj.bin?" in url2
    resp = requests.get(url2)
    assert resp.status_code == 200
    assert resp.content == data


def test_v1_presigned_get_with_response_override(bucket):
    bucket.put_object("img", b"not really a jpeg", headers={"Content-Type": "text/plain"})
    url = bucket.sign_url("GET", "img", 300, params={"response-content-type": "image/jpeg"})
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.headers["Content-Type"] == "image/jpeg"


def test_v1_presigned_put(bucket):
    key = "upload.jpg"
    data = os.urandom(2048)
    url = bucket.sign_url("PUT", key, 300)
    resp = requests.put(url, data=data)
    assert resp.status_code == 200, resp.content
    assert resp.headers["ETag"] == quoted_etag(data)
    head = bucket.head_object(key)
    assert head.content_type == "application/octet-stream"
    assert bucket.get_object(key).read() == data


def test_v1_presigned_put_content_type_mismatch(bucket):
    key = "typed.txt"
    # signed with a Content-Type, sent without
    url = bucket.sign_url("PUT", key, 300, headers={"Content-Type": "text/plain"})
    resp = requests.put(url, data=b"abc")
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"
    # signed and sent with the same Content-Type
    resp = requests.put(url, data=b"abc", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200, resp.content
    assert bucket.head_object(key).content_type == "text/plain"
    # signed without, sent with
    url = bucket.sign_url("PUT", key, 300)
    resp = requests.put(url, data=b"xyz", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"
    assert bucket.get_object(key).read() == b"abc"


def test_v1_presigned_tampered_signature(bucket):
    bucket.put_object("k", b"v")
    url = bucket.sign_url("GET", "k", 300)
    resp = requests.get(url.replace("Signature=", "Signature=AAAA"))
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"


def test_v1_presigned_long_expiry(bucket):
    """V1 `Expires` is absolute with no upper bound (oss2 tests sign for ~52 years)."""
    bucket.put_object("k", b"v")
    url = bucket.sign_url("GET", "k", 1650801600)
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"v"


def test_v1_presigned_expired(bucket):
    bucket.put_object("k", b"v")
    url = bucket.sign_url("GET", "k", -60)
    resp = requests.get(url)
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "AccessDenied"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.get_object_with_url(url)


def test_v1_presigned_forbid_overwrite_header(bucket):
    bucket.put_object("exists", b"old")
    url = bucket.sign_url("PUT", "exists", 300, headers={"x-oss-forbid-overwrite": "true"})
    resp = requests.put(url, data=b"new", headers={"x-oss-forbid-overwrite": "true"})
    assert resp.status_code == 409
    assert error_details(resp)["Code"] == "FileAlreadyExists"
    assert bucket.get_object("exists").read() == b"old"


# ---------------------------------------------------------------- V2


def test_v2_header(server, bucket):
    b2 = oss2.Bucket(oss2.AuthV2(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.endpoint, bucket.bucket_name)
    data = os.urandom(500)
    r = b2.put_object("v2/a b+c.txt", data, headers={"x-oss-meta-a": "1"})
    assert r.status == 200
    g = b2.get_object("v2/a b+c.txt", byte_range=(0, 9))
    assert g.status == 206
    assert g.read() == data[:10]
    keys = [o.key for o in b2.list_objects(prefix="v2/").object_list]
    assert keys == ["v2/a b+c.txt"]


def test_v2_presigned(server, bucket):
    b2 = oss2.Bucket(oss2.AuthV2(ACCESS_KEY_ID, ACCESS_KEY_SECRET), server.endpoint, bucket.bucket_name)
    bucket.put_object("v2url", b"hello v2")
    url = b2.sign_url("GET", "v2url", 300)
    assert "x-oss-signature-version=OSS2" in url
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"hello v2"


def test_v2_wrong_secret(server, bucket):
    b2 = oss2.Bucket(oss2.AuthV2(ACCESS_KEY_ID, "wrong"), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        b2.get_object("x")


# ---------------------------------------------------------------- V4 header


def test_v4_header_object_ops(bucket_v4):
    key = "v4/a b/c+d?e"
    data = os.urandom(4096)
    r = bucket_v4.put_object(key, data, headers={"x-oss-meta-who": "v4"})
    assert r.status == 200
    assert r.etag == quoted_etag(data).strip('"')
    g = bucket_v4.get_object(key)
    assert g.read() == data
    assert g.headers["x-oss-meta-who"] == "v4"
    assert bucket_v4.head_object(key).content_length == 4096
    assert [o.key for o in bucket_v4.list_objects(prefix="v4/").object_list] == [key]
    assert [o.key for o in bucket_v4.list_objects_v2(prefix="v4/").object_list] == [key]
    assert bucket_v4.get_bucket_info().name == bucket_v4.bucket_name
    assert bucket_v4.delete_object(key).status == 204
    assert not bucket_v4.object_exists(key)


def test_v4_service_list_buckets(server, bucket, auth_v4):
    svc = oss2.Service(auth_v4, server.endpoint, region=REGION)
    names = [b.name for b in svc.list_buckets(prefix=bucket.bucket_name).buckets]
    assert names == [bucket.bucket_name]


def test_v4_wrong_secret(server, bucket):
    bad = oss2.Bucket(v4_auth(secret="nope"), server.endpoint, bucket.bucket_name, region=REGION)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bad.put_object("k", b"v")
    assert ei.value.status == 403
    assert not bucket.object_exists("k")


def test_v4_unknown_access_key(server, bucket):
    bad = oss2.Bucket(v4_auth(key_id="LTAIunknownkey000099"), server.endpoint, bucket.bucket_name, region=REGION)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bad.get_object("k")
    assert ei.value.status == 403
    assert ei.value.code == "InvalidAccessKeyId"


@pytest.mark.parametrize("bad_region", ["", "cn-beijing"])
def test_v4_invalid_signing_region(server, bucket, bad_region):
    bad = oss2.Bucket(v4_auth(), server.endpoint, bucket.bucket_name, region=bad_region)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bad.put_object("no-region", b"v")
    assert ei.value.status in (400, 403)
    assert ei.value.message == BAD_REGION_MESSAGE
    assert not bucket.object_exists("no-region")


def test_v4_skewed_date(bucket_v4, shifted_v4_clock):
    shifted_v4_clock(-20 * 60)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket_v4.get_object("k")
    assert ei.value.status == 403
    assert ei.value.code == "RequestTimeTooSkewed"
    assert ei.value.message == SKEW_MESSAGE


def test_v4_small_skew_accepted(bucket_v4, shifted_v4_clock):
    shifted_v4_clock(60)
    r = bucket_v4.put_object("small-skew", b"ok")
    assert r.status == 200


# ---------------------------------------------------------------- V4 presigned URLs


def test_v4_presigned_get_put(bucket_v4):
    key = "v4url/obj"
    data = os.urandom(1500)
    put_url = bucket_v4.sign_url("PUT", key, 300)
    assert "x-oss-signature-version=OSS4-HMAC-SHA256" in put_url
    resp = requests.put(put_url, data=data)
    assert resp.status_code == 200, resp.content
    get_url = bucket_v4.sign_url("GET", key, 300)
    resp = requests.get(get_url)
    assert resp.status_code == 200, resp.content
    assert resp.content == data


def test_v4_presigned_seven_days(bucket_v4):
    bucket_v4.put_object("week", b"w")
    url = bucket_v4.sign_url("GET", "week", 604800)
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"w"


def test_v4_presigned_content_type_mismatch(bucket_v4):
    url = bucket_v4.sign_url("PUT", "ct", 300, headers={"Content-Type": "text/plain"})
    resp = requests.put(url, data=b"abc")
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"
    resp = requests.put(url, data=b"abc", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200, resp.content
    url = bucket_v4.sign_url("PUT", "ct", 300)
    resp = requests.put(url, data=b"xyz", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"
    assert bucket_v4.get_object("ct").read() == b"abc"


def test_v4_presigned_additional_headers(bucket_v4):
    bucket_v4.put_object("addl", b"content")
    headers = {"custom-header": "abc", "x-oss-meta-x": "1"}
    url = bucket_v4.sign_url("GET", "addl", 300, headers=headers, additional_headers=["custom-header"])
    assert "x-oss-additional-headers=custom-header" in url
    resp = requests.get(url, headers=headers)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"content"
    resp = requests.get(url, headers={"custom-header": "different", "x-oss-meta-x": "1"})
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "SignatureDoesNotMatch"


def test_v4_presigned_expired(bucket_v4, shifted_v4_clock):
    bucket_v4.put_object("k", b"v")
    shifted_v4_clock(-2 * 3600)
    url = bucket_v4.sign_url("GET", "k", 60)
    resp = requests.get(url)
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "AccessDenied"


def test_v4_presigned_dated_in_the_future(bucket_v4, shifted_v4_clock):
    """A V4 URL whose x-oss-date lies more than 15 minutes ahead is not valid yet."""
    bucket_v4.put_object("k", b"v")
    shifted_v4_clock(30 * 60)
    url = bucket_v4.sign_url("GET", "k", 60)
    resp = requests.get(url)
    assert resp.status_code == 403, resp.content


# ---------------------------------------------------------------- anonymous


def test_anonymous_denied_on_private(server, bucket):
    bucket.put_object("private-obj", b"secret")
    anon = oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, bucket.bucket_name)
    with pytest.raises(oss2.exceptions.AccessDenied) as ei:
        anon.get_object("private-obj")
    assert ei.value.status == 403
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.put_object("anon-put", b"x")
    assert not bucket.object_exists("anon-put")
    resp = requests.get("%s/%s/private-obj" % (server.endpoint, bucket.bucket_name))
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "AccessDenied"
    resp = requests.get("%s/" % server.endpoint)
    assert resp.status_code == 403
    assert error_details(resp)["Code"] == "AccessDenied"


def test_anonymous_public_read_write_then_private(server, bucket):
    anon = oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, bucket.bucket_name)
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ_WRITE)
    assert anon.put_object("anon", b"anonymous data").status == 200
    assert anon.get_object("anon").read() == b"anonymous data"
    # unknown query parameters are ignored (oss2's anonymous sign_url adds para1=test)
    url = anon.sign_url("GET", "anon", 60, params={"para1": "test"})
    resp = requests.get(url)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"anonymous data"
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.get_object("anon")
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.put_object("anon", b"again")
    assert bucket.get_object("anon").read() == b"anonymous data"


def test_anonymous_public_read(server, bucket):
    bucket.put_object("pub", b"readable")
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    anon = oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, bucket.bucket_name)
    assert anon.get_object("pub").read() == b"readable"
    with pytest.raises(oss2.exceptions.AccessDenied):
        anon.put_object("pub", b"overwrite")
    assert bucket.get_object("pub").read() == b"readable"


# ---------------------------------------------------------------- virtual-hosted style


@pytest.mark.parametrize("scheme", ["v1", "v4"])
def test_virtual_host_style(server, bucket, scheme):
    host = "%s.oss-%s.aliyuncs.com" % (bucket.bucket_name, REGION)
    key = "vh/dir/a b+c.txt"
    data = os.urandom(777)
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, key, data=data, auth=scheme,
                       virtual_host=host, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200, resp.content
    assert resp.headers["ETag"] == quoted_etag(data)
    # visible through path style with oss2
    assert bucket.get_object(key).read() == data
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, key, auth=scheme, virtual_host=host)
    assert resp.status_code == 200, resp.content
    assert resp.content == data
    # bucket-level request through the virtual host
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "", auth=scheme, virtual_host=host,
                       params={"prefix": "vh/"})
    assert resp.status_code == 200, resp.content
    root = xml_root(resp)
    assert root.tag == "ListBucketResult"
    assert root.findtext("Name") == bucket.bucket_name
    assert [c.findtext("Key") for c in root.findall("Contents")] == [key]
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "", auth=scheme, virtual_host=host,
                       params={"acl": ""})
    assert resp.status_code == 200, resp.content
    assert xml_root(resp).findtext("AccessControlList/Grant") == "private"


def test_virtual_host_unknown_bucket(server):
    host = "arca-no-such-bucket-vh.oss-%s.aliyuncs.com" % REGION
    resp = raw_request(server.endpoint, "GET", "arca-no-such-bucket-vh", "k", virtual_host=host)
    assert resp.status_code == 404
    assert error_details(resp)["Code"] == "NoSuchBucket"


def test_service_endpoint_host_is_path_style(server, bucket):
    """Host = oss-<region>.aliyuncs.com is the service domain, so the path names the bucket."""
    bucket.put_object("svc-host", b"v")
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "svc-host",
                       headers={"Host": "oss-%s.aliyuncs.com" % REGION})
    assert resp.status_code == 200, resp.content
    assert resp.content == b"v"
