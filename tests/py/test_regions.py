"""Two regions on one server: each region has its own listener; buckets are served only at theirs."""

import os

import oss2
import pytest

from arca_testlib import (
    BAD_REGION_MESSAGE,
    ArcaServer,
    cleanup_bucket,
    error_details,
    raw_request,
    unique_bucket_name,
    v1_auth,
    v4_auth,
)

HZ = "cn-hangzhou"
SH = "cn-shanghai"


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory):
    srv = ArcaServer(tmp_path_factory.mktemp("arca-regions"), region=HZ, regions=[SH])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def sh_bucket(two_regions):
    b = oss2.Bucket(v1_auth(), two_regions.endpoint_for(SH), unique_bucket_name("sh"))
    b.create_bucket()
    yield b
    cleanup_bucket(b)


@pytest.fixture
def hz_bucket(two_regions):
    b = oss2.Bucket(v1_auth(), two_regions.endpoint_for(HZ), unique_bucket_name("hz"))
    b.create_bucket()
    yield b
    cleanup_bucket(b)


def test_location_per_region(sh_bucket, hz_bucket):
    assert sh_bucket.get_bucket_location().location == "oss-" + SH
    assert hz_bucket.get_bucket_location().location == "oss-" + HZ
    assert sh_bucket.get_bucket_info().location == "oss-" + SH
    assert hz_bucket.get_bucket_info().location == "oss-" + HZ


def test_objects_in_shanghai(sh_bucket):
    data = os.urandom(2000)
    sh_bucket.put_object("k", data)
    assert sh_bucket.get_object("k").read() == data
    assert [o.key for o in sh_bucket.list_objects().object_list] == ["k"]


def right_endpoints(srv, region):
    """What may name the right endpoint: the public-style host name or this server's listener for the region."""
    return {"oss-%s.aliyuncs.com" % region, "127.0.0.1:%d" % srv.port_for(region)}


def test_wrong_endpoint_access_denied(two_regions, sh_bucket, hz_bucket):
    sh_bucket.put_object("k", b"v")
    via_hz = oss2.Bucket(v1_auth(), two_regions.endpoint_for(HZ), sh_bucket.bucket_name)
    with pytest.raises(oss2.exceptions.AccessDenied) as ei:
        via_hz.get_object("k")
    e = ei.value
    assert e.status == 403
    assert e.details.get("Endpoint") in right_endpoints(two_regions, SH)
    with pytest.raises(oss2.exceptions.AccessDenied):
        via_hz.put_object("k2", b"v")
    with pytest.raises(oss2.exceptions.AccessDenied):
        via_hz.list_objects()
    with pytest.raises(oss2.exceptions.AccessDenied):
        via_hz.head_object("k")
    assert not sh_bucket.object_exists("k2")
    # and the other way round
    via_sh = oss2.Bucket(v1_auth(), two_regions.endpoint_for(SH), hz_bucket.bucket_name)
    with pytest.raises(oss2.exceptions.AccessDenied) as ei:
        via_sh.get_bucket_info()
    assert ei.value.details.get("Endpoint") in right_endpoints(two_regions, HZ)


def test_wrong_endpoint_message_names_endpoint(two_regions, sh_bucket):
    via_hz = oss2.Bucket(v1_auth(), two_regions.endpoint_for(HZ), sh_bucket.bucket_name)
    with pytest.raises(oss2.exceptions.AccessDenied) as ei:
        via_hz.get_bucket_info()
    message = ei.value.message
    assert any(ep in message for ep in right_endpoints(two_regions, SH)), message


def test_wrong_endpoint_raw_xml(two_regions, sh_bucket):
    resp = raw_request(two_regions.endpoint_for(HZ), "GET", sh_bucket.bucket_name, "k")
    assert resp.status_code == 403
    d = error_details(resp)
    assert d["Code"] == "AccessDenied"
    assert d.get("Endpoint") in right_endpoints(two_regions, SH)


def test_list_buckets_all_regions(two_regions, sh_bucket, hz_bucket):
    for region in (HZ, SH):
        svc = oss2.Service(v1_auth(), two_regions.endpoint_for(region))
        buckets = {b.name: b for b in oss2.BucketIterator(svc)}
        assert sh_bucket.bucket_name in buckets and hz_bucket.bucket_name in buckets
        sh = buckets[sh_bucket.bucket_name]
        hz = buckets[hz_bucket.bucket_name]
        assert (sh.region, sh.location) == (SH, "oss-" + SH)
        assert (hz.region, hz.location) == (HZ, "oss-" + HZ)


def test_v4_signing_region_must_match_listener(two_regions, sh_bucket):
    sh_bucket.put_object("k", b"v4")
    good = oss2.Bucket(v4_auth(), two_regions.endpoint_for(SH), sh_bucket.bucket_name, region=SH)
    assert good.get_object("k").read() == b"v4"
    bad = oss2.Bucket(v4_auth(), two_regions.endpoint_for(SH), sh_bucket.bucket_name, region=HZ)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bad.get_object("k")
    assert ei.value.status in (400, 403)
    assert ei.value.message == BAD_REGION_MESSAGE


def test_create_bucket_v4_in_shanghai(two_regions):
    name = unique_bucket_name("sh-v4")
    b = oss2.Bucket(v4_auth(), two_regions.endpoint_for(SH), name, region=SH)
    try:
        b.create_bucket()
        assert b.get_bucket_location().location == "oss-" + SH
    finally:
        cleanup_bucket(b)


def test_bucket_name_is_global(two_regions, hz_bucket):
    again = oss2.Bucket(v1_auth(), two_regions.endpoint_for(SH), hz_bucket.bucket_name)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        again.create_bucket()
    assert ei.value.status == 409
    assert ei.value.code == "BucketAlreadyExists"
    assert hz_bucket.get_bucket_location().location == "oss-" + HZ


def test_virtual_host_in_shanghai(two_regions, sh_bucket):
    host = "%s.oss-%s.aliyuncs.com" % (sh_bucket.bucket_name, SH)
    resp = raw_request(two_regions.endpoint_for(SH), "PUT", sh_bucket.bucket_name, "vh", data=b"vh-data",
                       virtual_host=host)
    assert resp.status_code == 200, resp.content
    assert sh_bucket.get_object("vh").read() == b"vh-data"
