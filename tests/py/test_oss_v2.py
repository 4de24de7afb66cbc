"""The newer Python SDK, alibabacloud-oss-v2: V4 by default, path style for an IP endpoint, keys with literal '/'."""

import os

import alibabacloud_oss_v2 as oss
import pytest

from arca_testlib import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, crc64, md5_hex_upper, unique_bucket_name


def make_client(server, signature_version=None):
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    cfg.region = REGION
    cfg.endpoint = server.endpoint  # http://127.0.0.1:<port>: IP, so path style
    cfg.use_path_style = True
    cfg.disable_ssl = True
    cfg.retry_max_attempts = 1
    if signature_version:
        cfg.signature_version = signature_version
    return oss.Client(cfg)


@pytest.fixture
def client(server):
    return make_client(server)


def service_error(exc_info):
    err = exc_info.value
    inner = err.unwrap() if hasattr(err, "unwrap") else err
    assert isinstance(inner, oss.exceptions.ServiceError), repr(err)
    return inner


def test_put_get_head_delete(client, bucket):
    key = "v2/dir/sub/a b+c.txt"
    data = os.urandom(10000)
    r = client.put_object(oss.PutObjectRequest(bucket=bucket.bucket_name, key=key, body=data,
                                               metadata={"owner": "v2"}))
    assert r.status_code == 200
    assert r.etag == '"%s"' % md5_hex_upper(data)
    assert r.hash_crc64 == str(crc64(data))
    g = client.get_object(oss.GetObjectRequest(bucket=bucket.bucket_name, key=key))
    assert g.status_code == 200
    assert g.body.read() == data
    assert g.content_length == len(data)
    assert g.metadata.get("owner") == "v2"
    assert g.object_type == "Normal"
    rg = client.get_object(oss.GetObjectRequest(bucket=bucket.bucket_name, key=key, range_header="bytes=100-199"))
    assert rg.status_code == 206
    assert rg.body.read() == data[100:200]
    assert rg.content_range == "bytes 100-199/10000"
    h = client.head_object(oss.HeadObjectRequest(bucket=bucket.bucket_name, key=key))
    assert h.content_length == len(data)
    assert h.etag == '"%s"' % md5_hex_upper(data)
    # the same object through oss2
    assert bucket.get_object(key).read() == data
    d = client.delete_object(oss.DeleteObjectRequest(bucket=bucket.bucket_name, key=key))
    assert d.status_code == 204
    assert not bucket.object_exists(key)


def test_list_objects_v2(client, bucket):
    keys = ["p/a", "p/b", "p/sub/c", "p/sub/d", "p/zz/e", "q"]
    for k in keys:
        client.put_object(oss.PutObjectRequest(bucket=bucket.bucket_name, key=k, body=b"x"))
    r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket.bucket_name, prefix="p/", delimiter="/"))
    assert r.status_code == 200
    assert [o.key for o in r.contents] == ["p/a", "p/b"]
    assert [p.prefix for p in r.common_prefixes] == ["p/sub/", "p/zz/"]
    assert r.is_truncated is False
    assert r.key_count == 4
    for o in r.contents:
        assert o.size == 1
        assert o.etag == '"%s"' % md5_hex_upper(b"x")
    pages = list(client.list_objects_v2_paginator().iter_page(
        oss.ListObjectsV2Request(bucket=bucket.bucket_name), limit=2))
    assert [len(p.contents) for p in pages] == [2, 2, 2]
    assert [o.key for p in pages for o in p.contents] == keys
    assert pages[0].is_truncated is True and pages[-1].is_truncated is False


def test_v1_signer(server, bucket):
    client = make_client(server, signature_version="v1")
    client.put_object(oss.PutObjectRequest(bucket=bucket.bucket_name, key="v1/k", body=b"signed v1"))
    g = client.get_object(oss.GetObjectRequest(bucket=bucket.bucket_name, key="v1/k"))
    assert g.body.read() == b"signed v1"
    r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket.bucket_name, prefix="v1/"))
    assert [o.key for o in r.contents] == ["v1/k"]


def test_errors(client, bucket):
    with pytest.raises(Exception) as ei:
        client.get_object(oss.GetObjectRequest(bucket=bucket.bucket_name, key="missing"))
    e = service_error(ei)
    assert e.status_code == 404
    assert e.code == "NoSuchKey"
    assert e.request_id
    with pytest.raises(Exception) as ei:
        client.head_object(oss.HeadObjectRequest(bucket=bucket.bucket_name, key="missing"))
    e = service_error(ei)
    assert e.status_code == 404
    assert e.code == "NoSuchKey"
    with pytest.raises(Exception) as ei:
        client.list_objects_v2(oss.ListObjectsV2Request(bucket=unique_bucket_name("v2-nope")))
    e = service_error(ei)
    assert e.status_code == 404
    assert e.code == "NoSuchBucket"


def test_bucket_lifecycle_via_v2(client, bucket_name):
    r = client.put_bucket(oss.PutBucketRequest(bucket=bucket_name, acl="private"))
    assert r.status_code == 200
    info = client.get_bucket_info(oss.GetBucketInfoRequest(bucket=bucket_name))
    assert info.bucket_info.name == bucket_name
    loc = client.get_bucket_location(oss.GetBucketLocationRequest(bucket=bucket_name))
    assert loc.location == "oss-" + REGION
    d = client.delete_bucket(oss.DeleteBucketRequest(bucket=bucket_name))
    assert d.status_code == 204


def test_multipart_via_v2(client, bucket):
    key = "v2/mp.bin"
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket.bucket_name, key=key))
    chunks = [os.urandom(100 * 1024), os.urandom(777)]
    parts = []
    for i, c in enumerate(chunks, start=1):
        up = client.upload_part(oss.UploadPartRequest(bucket=bucket.bucket_name, key=key, upload_id=init.upload_id,
                                                      part_number=i, body=c))
        assert up.etag == '"%s"' % md5_hex_upper(c)
        parts.append(oss.UploadPart(part_number=i, etag=up.etag))
    done = client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
        bucket=bucket.bucket_name, key=key, upload_id=init.upload_id,
        complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert done.status_code == 200
    assert done.hash_crc64 == str(crc64(b"".join(chunks)))
    assert bucket.get_object(key).read() == b"".join(chunks)
