"""Service and bucket APIs: ListBuckets, PutBucket, DeleteBucket, info, location, stat, ACL."""

import time
import uuid

import oss2
import pytest

from arca_testlib import (
    REGION,
    cleanup_bucket,
    error_details,
    raw_request,
    unique_bucket_name,
    xml_root,
)


def test_create_bucket_listed(service, server, auth, bucket_name):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    r = b.create_bucket()
    assert r.status == 200
    before = time.time()
    result = service.list_buckets(prefix=bucket_name)
    assert [x.name for x in result.buckets] == [bucket_name]
    info = result.buckets[0]
    assert info.location == "oss-" + REGION
    assert info.region == REGION
    assert info.storage_class == "Standard"
    assert info.extranet_endpoint
    assert info.intranet_endpoint
    assert abs(info.creation_date - before) < 600
    assert result.is_truncated is False
    assert result.owner.id


def test_list_buckets_paging(server, auth, service):
    prefix = "arca-lbp-%s-" % uuid.uuid4().hex[:6]
    names = sorted(prefix + s for s in ["e", "a", "c", "b", "d"])
    buckets = [oss2.Bucket(auth, server.endpoint, n) for n in names]
    try:
        for b in buckets:
            b.create_bucket()
        page1 = service.list_buckets(prefix=prefix, max_keys=2)
        assert [b.name for b in page1.buckets] == names[:2]
        assert page1.is_truncated is True
        assert page1.next_marker == names[1]
        page2 = service.list_buckets(prefix=prefix, marker=page1.next_marker, max_keys=2)
        assert [b.name for b in page2.buckets] == names[2:4]
        assert page2.is_truncated is True
        page3 = service.list_buckets(prefix=prefix, marker=page2.next_marker, max_keys=2)
        assert [b.name for b in page3.buckets] == names[4:]
        assert page3.is_truncated is False
        # marker is exclusive
        after = service.list_buckets(prefix=prefix, marker=names[2])
        assert [b.name for b in after.buckets] == names[3:]
        assert [b.name for b in oss2.BucketIterator(service, prefix=prefix, max_keys=2)] == names
    finally:
        for b in buckets:
            cleanup_bucket(b)


def test_delete_bucket(server, auth, service, bucket_name):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    b.create_bucket()
    r = b.delete_bucket()
    assert r.status == 204
    assert service.list_buckets(prefix=bucket_name).buckets == []
    with pytest.raises(oss2.exceptions.NoSuchBucket) as ei:
        b.delete_bucket()
    assert ei.value.status == 404


def test_delete_bucket_not_empty(bucket):
    bucket.put_object("obj", b"data")
    with pytest.raises(oss2.exceptions.BucketNotEmpty) as ei:
        bucket.delete_bucket()
    assert ei.value.status == 409
    bucket.delete_object("obj")
    # an unfinished multipart upload also keeps the bucket non-empty
    upload_id = bucket.init_multipart_upload("mp").upload_id
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        bucket.delete_bucket()
    bucket.abort_multipart_upload("mp", upload_id)
    assert bucket.delete_bucket().status == 204
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.get_bucket_info()


def test_no_such_bucket(server, auth):
    b = oss2.Bucket(auth, server.endpoint, unique_bucket_name("missing"))
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_info()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.list_objects()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.list_objects_v2()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.put_object("k", b"v")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_object("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.delete_object("k")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.get_bucket_acl()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        b.init_multipart_upload("k")


def test_bucket_info(bucket):
    info = bucket.get_bucket_info()
    assert info.name == bucket.bucket_name
    assert info.storage_class == "Standard"
    assert info.location == "oss-" + REGION
    assert info.extranet_endpoint
    assert info.intranet_endpoint
    assert oss2.utils.iso8601_to_unixtime(info.creation_date) > time.time() - 600
    assert info.owner.id
    assert info.owner.display_name
    assert info.acl.grant == "private"
    assert info.comment is not None
    assert info.data_redundancy_type is not None
    assert info.versioning_status is None
    assert info.bucket_encryption_rule is not None
    assert info.bucket_encryption_rule.sse_algorithm is None
    assert info.bucket_encryption_rule.kms_master_keyid is None


def test_bucket_info_raw_sse_none(server, bucket):
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "", params={"bucketInfo": ""})
    assert resp.status_code == 200
    root = xml_root(resp)
    assert root.tag == "BucketInfo"
    assert root.findtext("Bucket/ServerSideEncryptionRule/SSEAlgorithm") == "None"
    assert root.find("Bucket/Comment") is not None
    assert root.find("Bucket/Versioning") is None


def test_bucket_location(bucket):
    assert bucket.get_bucket_location().location == "oss-" + REGION


def test_bucket_stat(bucket):
    s = bucket.get_bucket_stat()
    assert s.storage_size_in_bytes == 0
    assert s.object_count == 0
    bucket.put_object("seven", b"1234567")
    bucket.put_object("hundred", b"x" * 100)
    bucket.init_multipart_upload("pending")
    s = bucket.get_bucket_stat()
    assert s.storage_size_in_bytes == 107
    assert s.object_count == 2
    assert s.multi_part_upload_count == 1
    bucket.delete_object("hundred")
    s = bucket.get_bucket_stat()
    assert s.storage_size_in_bytes == 7
    assert s.object_count == 1


def test_bucket_acl(bucket):
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PRIVATE
    for acl in (oss2.BUCKET_ACL_PUBLIC_READ, oss2.BUCKET_ACL_PUBLIC_READ_WRITE, oss2.BUCKET_ACL_PRIVATE):
        assert bucket.put_bucket_acl(acl).status == 200
        assert bucket.get_bucket_acl().acl == acl
        assert bucket.get_bucket_info().acl.grant == acl


def test_bucket_acl_invalid(bucket):
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    with pytest.raises(oss2.exceptions.InvalidArgument) as ei:
        bucket.put_bucket_acl("world-writable")
    assert ei.value.status == 400
    assert bucket.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ


def test_create_bucket_with_acl(server, auth, bucket_name):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    # the permission argument wins over an x-oss-acl in headers (oss2 overwrites it)
    b.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ, headers={"x-oss-acl": "private"})
    assert b.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ


def test_create_bucket_invalid_acl(server, bucket_name):
    resp = raw_request(server.endpoint, "PUT", bucket_name, "", headers={"x-oss-acl": "bogus"})
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "InvalidArgument"


def test_create_bucket_storage_class_ia(server, auth, service, bucket_name):
    b = oss2.Bucket(auth, server.endpoint, bucket_name)
    b.create_bucket(input=oss2.models.BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_IA))
    assert b.get_bucket_info().storage_class == "IA"
    listed = service.list_buckets(prefix=bucket_name).buckets
    assert [x.storage_class for x in listed] == ["IA"]
    b.put_object("o", b"data")
    assert b.head_object("o").headers["x-oss-storage-class"] == "IA"


def test_create_bucket_malformed_xml(server, bucket_name):
    resp = raw_request(server.endpoint, "PUT", bucket_name, "", data=b"<CreateBucketConfiguration><StorageClass>")
    assert resp.status_code == 400
    assert error_details(resp)["Code"] == "MalformedXML"


@pytest.mark.parametrize("name", ["Upper-Case-Bucket", "ab", "-leading-dash", "trailing-dash-", "under_score",
                                  "x" * 64])
def test_invalid_bucket_name(server, name):
    resp = raw_request(server.endpoint, "PUT", name, "")
    assert resp.status_code == 400, resp.content
    assert error_details(resp)["Code"] == "InvalidBucketName"


def test_recreate_existing_bucket_same_settings(server, auth, bucket):
    """Re-creating your own bucket with the same settings does not fail or empty it."""
    bucket.put_object("keep", b"me")
    try:
        bucket.create_bucket()
    except oss2.exceptions.ServerError as e:
        assert (e.status, e.code) == (409, "BucketAlreadyExists")
    assert bucket.get_object("keep").read() == b"me"


def test_recreate_bucket_with_other_storage_class(bucket):
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.create_bucket(input=oss2.models.BucketCreateConfig(oss2.BUCKET_STORAGE_CLASS_ARCHIVE))
    assert ei.value.status == 409
    assert ei.value.code == "BucketAlreadyExists"
    assert bucket.get_bucket_info().storage_class == "Standard"


def test_list_live_channels_answers(bucket):
    """oss2's own test teardown lists live channels; anything but a hang/5xx is fine."""
    try:
        result = bucket.list_live_channel()
        assert result.status == 200
    except oss2.exceptions.ServerError as e:
        assert 400 <= e.status < 500
