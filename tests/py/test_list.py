"""ListObjects (v1) and ListObjectsV2: prefixes, delimiters, paging, URL encoding."""

import time
from urllib.parse import unquote

import oss2
import pytest

from arca_testlib import error_details, md5_hex_upper, raw_request, xml_root

AWKWARD_KEYS = [
    "space key.txt",
    "plus+key.txt",
    "percent%20key.txt",
    "question?key.txt",
    "中文/文件.txt",
    "ctl\x0ckey.txt",
    "del\x7fkey.txt",
    "trailing/",
    "amp&lt<gt>.txt",
    "阿里云/加油/:?;@&=+$, /<>{}[]|/",
]


def put_keys(bucket, keys, data=b"x"):
    for k in keys:
        bucket.put_object(k, data)


# ---------------------------------------------------------------- v1


def test_list_v1_empty(bucket):
    r = bucket.list_objects()
    assert r.object_list == []
    assert r.prefix_list == []
    assert r.is_truncated is False


def test_list_v1_contents_fields(bucket):
    data = b"hello world"
    bucket.put_object("a/b.txt", data)
    r = bucket.list_objects()
    assert len(r.object_list) == 1
    o = r.object_list[0]
    assert o.key == "a/b.txt"
    assert o.size == len(data)
    assert o.etag == md5_hex_upper(data)
    assert o.type == "Normal"
    assert o.storage_class == "Standard"
    assert o.owner is not None and o.owner.id and o.owner.display_name
    head = bucket.head_object("a/b.txt")
    assert o.last_modified == head.last_modified
    assert abs(o.last_modified - time.time()) < 600


def test_list_v1_prefix_delimiter(bucket):
    keys = ["a.txt", "dir/1.txt", "dir/2.txt", "dir/sub/3.txt", "dir/sub2/4.txt", "other/5.txt", "z.txt"]
    put_keys(bucket, keys)
    r = bucket.list_objects()
    assert [o.key for o in r.object_list] == sorted(keys)
    r = bucket.list_objects(delimiter="/")
    assert [o.key for o in r.object_list] == ["a.txt", "z.txt"]
    assert r.prefix_list == ["dir/", "other/"]
    r = bucket.list_objects(prefix="dir/", delimiter="/")
    assert [o.key for o in r.object_list] == ["dir/1.txt", "dir/2.txt"]
    assert r.prefix_list == ["dir/sub/", "dir/sub2/"]
    r = bucket.list_objects(prefix="dir/sub")
    assert [o.key for o in r.object_list] == ["dir/sub/3.txt", "dir/sub2/4.txt"]
    r = bucket.list_objects(prefix="nothing")
    assert r.object_list == [] and r.prefix_list == []


def test_list_v1_marker_and_max_keys(bucket):
    keys = ["k%02d" % i for i in range(7)]
    put_keys(bucket, keys)
    r = bucket.list_objects(max_keys=3)
    assert [o.key for o in r.object_list] == keys[:3]
    assert r.is_truncated is True
    assert r.next_marker == keys[2]
    r = bucket.list_objects(marker=r.next_marker, max_keys=3)
    assert [o.key for o in r.object_list] == keys[3:6]
    assert r.is_truncated is True
    r = bucket.list_objects(marker=r.next_marker, max_keys=3)
    assert [o.key for o in r.object_list] == keys[6:]
    assert r.is_truncated is False
    # marker is exclusive and need not be an existing key
    r = bucket.list_objects(marker="k03")
    assert [o.key for o in r.object_list] == keys[4:]
    r = bucket.list_objects(marker="k035")
    assert [o.key for o in r.object_list] == keys[4:]


def test_list_v1_max_keys_counts_prefixes(bucket):
    put_keys(bucket, ["a/1", "b/1", "c", "d/1", "e"])
    r = bucket.list_objects(delimiter="/", max_keys=3)
    assert len(r.object_list) + len(r.prefix_list) == 3
    assert r.prefix_list == ["a/", "b/"]
    assert [o.key for o in r.object_list] == ["c"]
    assert r.is_truncated is True
    r = bucket.list_objects(delimiter="/", marker=r.next_marker, max_keys=3)
    assert r.prefix_list == ["d/"]
    assert [o.key for o in r.object_list] == ["e"]
    assert r.is_truncated is False


def test_list_v1_sorted_bytewise(bucket):
    keys = ["B", "a", "_", "é", "中", "Z", "0", "~"]
    put_keys(bucket, keys)
    got = [o.key for o in bucket.list_objects().object_list]
    assert got == sorted(keys, key=lambda k: k.encode("utf-8"))


def test_list_v1_awkward_keys_url_encoded(bucket):
    put_keys(bucket, AWKWARD_KEYS)
    got = [o.key for o in bucket.list_objects().object_list]
    assert got == sorted(AWKWARD_KEYS, key=lambda k: k.encode("utf-8"))
    for k in AWKWARD_KEYS:
        assert bucket.get_object(k).read() == b"x"


def test_list_v1_awkward_keys_paging(bucket):
    """NextMarker is URL-encoded too, and paging over awkward keys neither skips nor repeats one."""
    put_keys(bucket, AWKWARD_KEYS)
    expected = sorted(AWKWARD_KEYS, key=lambda k: k.encode("utf-8"))
    assert [i.key for i in oss2.ObjectIterator(bucket, max_keys=3)] == expected
    items = list(oss2.ObjectIterator(bucket, delimiter="/", max_keys=2))
    assert [i.key for i in items if i.is_prefix()] == ["trailing/", "中文/", "阿里云/"]


def test_list_v1_raw_encoding(server, bucket):
    put_keys(bucket, AWKWARD_KEYS)
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "",
                       params={"encoding-type": "url", "prefix": "", "delimiter": "/"})
    assert resp.status_code == 200
    assert b"\x0c" not in resp.content and b"\x7f" not in resp.content
    root = xml_root(resp)
    assert root.findtext("EncodingType") == "url"
    assert root.findtext("Delimiter") == "%2F" or unquote(root.findtext("Delimiter")) == "/"
    raw_keys = [c.findtext("Key") for c in root.findall("Contents")]
    raw_prefixes = [c.findtext("Prefix") for c in root.findall("CommonPrefixes")]
    decoded = sorted([unquote(k) for k in raw_keys] + [unquote(p) for p in raw_prefixes],
                     key=lambda k: k.encode("utf-8"))
    expected_keys = sorted(k for k in AWKWARD_KEYS if "/" not in k)
    assert sorted(unquote(k) for k in raw_keys) == expected_keys
    assert sorted(unquote(p) for p in raw_prefixes) == ["trailing/", "中文/", "阿里云/"]
    assert len(decoded) == len(set(decoded))
    for k in raw_keys:
        assert " " not in k  # never '+' or a raw space for a space
    assert any(unquote(k) == "space key.txt" and "+" not in k for k in raw_keys)


def test_list_v1_no_such_bucket_raw(server):
    resp = raw_request(server.endpoint, "GET", "arca-never-created-xyz", "")
    assert resp.status_code == 404
    assert error_details(resp)["Code"] == "NoSuchBucket"


# ---------------------------------------------------------------- ObjectIterator


def _tree(bucket):
    keys = []
    for d in range(5):
        for f in range(3):
            keys.append("d%d/f%d" % (d, f))
    keys += ["top0", "top1", "top2"]
    put_keys(bucket, keys)
    return keys


def test_object_iterator_delimiter_each_prefix_once(bucket):
    _tree(bucket)
    items = list(oss2.ObjectIterator(bucket, delimiter="/", max_keys=4))
    prefixes = [i.key for i in items if i.is_prefix()]
    objects = [i.key for i in items if not i.is_prefix()]
    assert prefixes == ["d0/", "d1/", "d2/", "d3/", "d4/"]
    assert objects == ["top0", "top1", "top2"]


def test_object_iterator_no_delimiter(bucket):
    keys = _tree(bucket)
    assert [i.key for i in oss2.ObjectIterator(bucket, max_keys=4)] == sorted(keys)
    assert [i.key for i in oss2.ObjectIterator(bucket, prefix="d3/", max_keys=2)] == ["d3/f0", "d3/f1", "d3/f2"]


def test_object_iterator_v2_delimiter_each_prefix_once(bucket):
    _tree(bucket)
    items = list(oss2.ObjectIteratorV2(bucket, delimiter="/", max_keys=4))
    prefixes = [i.key for i in items if i.is_prefix()]
    objects = [i.key for i in items if not i.is_prefix()]
    assert prefixes == ["d0/", "d1/", "d2/", "d3/", "d4/"]
    assert objects == ["top0", "top1", "top2"]


def test_object_iterator_v2_no_delimiter(bucket):
    keys = _tree(bucket)
    assert [i.key for i in oss2.ObjectIteratorV2(bucket, max_keys=4)] == sorted(keys)


# ---------------------------------------------------------------- v2


def test_list_v2_empty(bucket):
    r = bucket.list_objects_v2()
    assert r.object_list == []
    assert r.prefix_list == []
    assert r.is_truncated is False
    assert r.next_continuation_token == ""


def test_list_v2_paging(bucket):
    keys = ["obj%02d" % i for i in range(13)]
    put_keys(bucket, keys)
    r = bucket.list_objects_v2(max_keys=10)
    assert [o.key for o in r.object_list] == keys[:10]
    assert r.is_truncated is True
    assert r.next_continuation_token
    r2 = bucket.list_objects_v2(continuation_token=r.next_continuation_token)
    assert [o.key for o in r2.object_list] == keys[10:]
    assert r2.is_truncated is False


def test_list_v2_key_count_and_echo(server, bucket):
    put_keys(bucket, ["a/1", "a/2", "b", "c/1"])
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "",
                       params={"list-type": "2", "delimiter": "/", "max-keys": "2"})
    assert resp.status_code == 200
    root = xml_root(resp)
    assert root.findtext("KeyCount") == "2"
    assert root.findtext("MaxKeys") == "2"
    assert root.findtext("IsTruncated") == "true"
    token = root.findtext("NextContinuationToken")
    assert token
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "",
                       params={"list-type": "2", "delimiter": "/", "continuation-token": token})
    root = xml_root(resp)
    assert root.findtext("ContinuationToken") == token
    assert root.findtext("KeyCount") == "1"
    assert [p.findtext("Prefix") for p in root.findall("CommonPrefixes")] == ["c/"]
    assert root.findtext("IsTruncated") == "false"


def test_list_v2_prefix_delimiter_owner(bucket):
    put_keys(bucket, ["test-dir/sub-file.txt", "test-dir/sub-dir/f.txt", "test-dir/sub-dir/g.txt", "other"])
    r = bucket.list_objects_v2(prefix="test-dir/", delimiter="/")
    assert [o.key for o in r.object_list] == ["test-dir/sub-file.txt"]
    assert r.object_list[0].owner is None
    assert r.prefix_list == ["test-dir/sub-dir/"]


def test_list_v2_start_after(bucket):
    put_keys(bucket, ["a.txt", "y.txt", "z", "z1.txt", "z2.txt", "z3.txt"])
    r = bucket.list_objects_v2(start_after="z")
    assert [o.key for o in r.object_list] == ["z1.txt", "z2.txt", "z3.txt"]
    r = bucket.list_objects_v2(start_after="b")
    assert [o.key for o in r.object_list] == ["y.txt", "z", "z1.txt", "z2.txt", "z3.txt"]


def test_list_v2_fetch_owner(bucket):
    put_keys(bucket, ["o1", "o2"])
    r = bucket.list_objects_v2(fetch_owner=True)
    assert len(r.object_list) == 2
    for o in r.object_list:
        assert o.owner is not None
        assert o.owner.id
        assert o.owner.display_name
    r = bucket.list_objects_v2(fetch_owner=False)
    assert all(o.owner is None for o in r.object_list)


def test_list_v2_bad_continuation_token(bucket):
    bucket.put_object("k", b"v")
    with pytest.raises(oss2.exceptions.InvalidArgument) as ei:
        bucket.list_objects_v2(continuation_token="err-token")
    assert ei.value.status == 400
    assert ei.value.code == "InvalidArgument"


def test_list_v2_awkward_keys(bucket):
    put_keys(bucket, AWKWARD_KEYS)
    got = [o.key for o in bucket.list_objects_v2(encoding_type="url").object_list]
    assert got == sorted(AWKWARD_KEYS, key=lambda k: k.encode("utf-8"))
    items = list(oss2.ObjectIteratorV2(bucket, max_keys=3))
    assert [i.key for i in items] == sorted(AWKWARD_KEYS, key=lambda k: k.encode("utf-8"))


def test_list_v2_control_chars_need_encoding(bucket):
    """Without encoding-type a key with raw control characters cannot be listed in valid XML:
    either the client's XML parser fails or the server answers with an error."""
    bucket.put_object("ctl\x01\x07key", b"v")
    try:
        r = bucket.list_objects_v2(encoding_type=None)
    except Exception:  # noqa: BLE001 - ParseError or ServerError are both acceptable
        pass
    else:
        pytest.fail("raw control characters were listed without encoding: %r" % [o.key for o in r.object_list])
    r = bucket.list_objects_v2(encoding_type="url")
    assert [o.key for o in r.object_list] == ["ctl\x01\x07key"]


@pytest.mark.parametrize("max_keys", ["1001", "abc", "-1"])
def test_list_invalid_max_keys(server, bucket, max_keys):
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "", params={"max-keys": max_keys})
    assert resp.status_code == 400, resp.content
    assert error_details(resp)["Code"] == "InvalidArgument"


def test_list_v1_default_max_keys(server, bucket):
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, "")
    assert resp.status_code == 200
    root = xml_root(resp)
    assert root.findtext("MaxKeys") == "100"
    assert root.findtext("Name") == bucket.bucket_name
