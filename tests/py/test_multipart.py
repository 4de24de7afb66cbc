"""Multipart upload: initiate, parts, copy parts, complete, abort, listings, resumable transfers."""

import os
import re

import oss2
import pytest
from oss2.models import PartInfo

from arca_testlib import content_md5, crc64, error_details, md5_hex_upper, raw_request, xml_root

MIN_PART = 100 * 1024  # 102400: the smallest legal non-last part


def upload_parts(bucket, key, upload_id, chunks, start=1):
    parts = []
    for i, chunk in enumerate(chunks, start=start):
        r = bucket.upload_part(key, upload_id, i, chunk)
        parts.append(PartInfo(i, r.etag, size=len(chunk), part_crc=r.crc))
    return parts


def test_multipart_basic(bucket):
    key = "mp/basic.bin"
    chunks = [os.urandom(MIN_PART), os.urandom(MIN_PART + 7), os.urandom(1234)]
    data = b"".join(chunks)
    init = bucket.init_multipart_upload(key, headers={"Content-Type": "application/x-mp", "x-oss-meta-kind": "mp"})
    assert init.status == 200
    upload_id = init.upload_id
    assert upload_id
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        r = bucket.upload_part(key, upload_id, i, chunk)
        assert r.status == 200
        assert r.etag == md5_hex_upper(chunk)
        assert r.crc == crc64(chunk)
        parts.append(PartInfo(i, r.etag, size=len(chunk), part_crc=r.crc))
    # part_crc given, so oss2 checks the combined CRC of Complete against the parts
    done = bucket.complete_multipart_upload(key, upload_id, parts)
    assert done.status == 200
    assert re.fullmatch(r"[0-9A-F]{32}-3", done.etag), done.etag
    assert done.headers["ETag"] == '"%s"' % done.etag
    assert done.crc == crc64(data)
    g = bucket.get_object(key)
    assert g.read() == data
    assert g.headers["x-oss-object-type"] == "Multipart"
    assert g.headers["ETag"] == '"%s"' % done.etag
    assert g.headers["Content-Type"] == "application/x-mp"
    assert g.headers["x-oss-meta-kind"] == "mp"
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    # ranged read across the part boundary
    r = bucket.get_object(key, byte_range=(MIN_PART - 10, MIN_PART + 9))
    assert r.read() == data[MIN_PART - 10 : MIN_PART + 10]
    # the upload is gone after Complete
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)


def test_initiate_and_complete_xml(server, bucket):
    key = "mp/raw key+x"
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, key, params={"uploads": ""})
    assert resp.status_code == 200, resp.content
    root = xml_root(resp)
    assert root.tag == "InitiateMultipartUploadResult"
    assert root.findtext("Bucket") == bucket.bucket_name
    assert root.findtext("Key") == key
    upload_id = root.findtext("UploadId")
    assert upload_id
    part = os.urandom(5000)
    etag = bucket.upload_part(key, upload_id, 1, part).etag
    body = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"%s\"</ETag></Part>"
            "</CompleteMultipartUpload>" % etag).encode()
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, key, params={"uploadId": upload_id}, data=body)
    assert resp.status_code == 200, resp.content
    root = xml_root(resp)
    assert root.tag == "CompleteMultipartUploadResult"
    assert root.findtext("Bucket") == bucket.bucket_name
    assert root.findtext("Key") == key
    assert re.fullmatch(r'"[0-9A-F]{32}-1"', root.findtext("ETag"))
    assert root.findtext("Location")
    assert resp.headers["x-oss-hash-crc64ecma"] == str(crc64(part))
    assert bucket.get_object(key).read() == part


def test_reupload_part_replaces(bucket):
    key = "mp/replace"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"first version")
    r = bucket.upload_part(key, upload_id, 1, b"second version")
    parts = bucket.list_parts(key, upload_id).parts
    assert [(p.part_number, p.size) for p in parts] == [(1, len(b"second version"))]
    bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r.etag)])
    assert bucket.get_object(key).read() == b"second version"


def test_complete_uses_only_listed_parts(bucket):
    key = "mp/subset"
    upload_id = bucket.init_multipart_upload(key).upload_id
    p1 = os.urandom(MIN_PART)
    p3 = os.urandom(100)
    r1 = bucket.upload_part(key, upload_id, 1, p1)
    bucket.upload_part(key, upload_id, 2, os.urandom(MIN_PART))
    r3 = bucket.upload_part(key, upload_id, 3, p3)
    bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(3, r3.etag)])
    assert bucket.get_object(key).read() == p1 + p3


def test_upload_part_bad_md5(bucket):
    key = "mp/badmd5"
    upload_id = bucket.init_multipart_upload(key).upload_id
    data = os.urandom(MIN_PART)
    with pytest.raises(oss2.exceptions.InvalidDigest) as ei:
        bucket.upload_part(key, upload_id, 1, data, headers={"Content-MD5": content_md5(b"other")})
    assert ei.value.status == 400
    assert bucket.list_parts(key, upload_id).parts == []
    r = bucket.upload_part(key, upload_id, 1, data, headers={"Content-MD5": content_md5(data)})
    assert r.etag == md5_hex_upper(data)


def test_upload_part_chunked(bucket):
    key = "mp/chunked"
    upload_id = bucket.init_multipart_upload(key).upload_id
    blocks = [os.urandom(10000) for _ in range(15)]
    data = b"".join(blocks)
    r = bucket.upload_part(key, upload_id, 1, iter(blocks))
    assert r.etag == md5_hex_upper(data)
    bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r.etag)])
    assert bucket.get_object(key).read() == data


def test_upload_part_copy(bucket):
    src = os.urandom(3 * MIN_PART + 500)
    bucket.put_object("copy-src", src)
    key = "mp/copied"
    upload_id = bucket.init_multipart_upload(key).upload_id
    r1 = bucket.upload_part_copy(bucket.bucket_name, "copy-src", (0, MIN_PART - 1), key, upload_id, 1)
    assert r1.status == 200
    assert r1.etag == md5_hex_upper(src[:MIN_PART])
    r2 = bucket.upload_part_copy(bucket.bucket_name, "copy-src", (MIN_PART, None), key, upload_id, 2)
    assert r2.etag == md5_hex_upper(src[MIN_PART:])
    done = bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(2, r2.etag)])
    assert done.crc == crc64(src)
    assert bucket.get_object(key).read() == src


def test_upload_part_copy_xml_and_header(server, bucket):
    bucket.put_object("copy-src", b"0123456789")
    key = "mp/copied-raw"
    upload_id = bucket.init_multipart_upload(key).upload_id
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, key,
                       params={"partNumber": "1", "uploadId": upload_id},
                       headers={"x-oss-copy-source": "/%s/copy-src" % bucket.bucket_name,
                                "x-oss-copy-source-range": "bytes=2-5"})
    assert resp.status_code == 200, resp.content
    root = xml_root(resp)
    assert root.tag == "CopyPartResult"
    assert root.findtext("ETag") == '"%s"' % md5_hex_upper(b"2345")
    assert resp.headers["ETag"] == '"%s"' % md5_hex_upper(b"2345")
    parts = bucket.list_parts(key, upload_id).parts
    assert [(p.part_number, p.size) for p in parts] == [(1, 4)]


def test_upload_part_copy_missing_source(bucket):
    upload_id = bucket.init_multipart_upload("mp/x").upload_id
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.upload_part_copy(bucket.bucket_name, "nope", (0, 9), "mp/x", upload_id, 1)


def test_complete_invalid_part(bucket):
    key = "mp/invalid-part"
    upload_id = bucket.init_multipart_upload(key).upload_id
    r1 = bucket.upload_part(key, upload_id, 1, os.urandom(MIN_PART))
    bucket.upload_part(key, upload_id, 2, b"tail")
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(2, "0" * 32)])
    assert (ei.value.status, ei.value.code) == (400, "InvalidPart")
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(5, r1.etag)])
    assert (ei.value.status, ei.value.code) == (400, "InvalidPart")
    assert not bucket.object_exists(key)
    # the upload survives a failed Complete
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2]


def _complete_xml(parts):
    body = "".join("<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>" % (n, e) for n, e in parts)
    return ("<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % body).encode()


def test_complete_invalid_part_order(server, bucket):
    """oss2 sorts the part list itself, so the out-of-order bodies are sent raw."""
    key = "mp/order"
    upload_id = bucket.init_multipart_upload(key).upload_id
    r1 = bucket.upload_part(key, upload_id, 1, os.urandom(MIN_PART))
    r2 = bucket.upload_part(key, upload_id, 2, os.urandom(MIN_PART))
    for parts in ([(2, r2.etag), (1, r1.etag)], [(1, r1.etag), (1, r1.etag), (2, r2.etag)]):
        resp = raw_request(server.endpoint, "POST", bucket.bucket_name, key, params={"uploadId": upload_id},
                           data=_complete_xml(parts))
        assert resp.status_code == 400, resp.content
        assert error_details(resp)["Code"] == "InvalidPartOrder"
    assert not bucket.object_exists(key)
    done = bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(2, r2.etag)])
    assert done.status == 200


def test_complete_entity_too_small(bucket):
    key = "mp/small"
    upload_id = bucket.init_multipart_upload(key).upload_id
    r1 = bucket.upload_part(key, upload_id, 1, os.urandom(MIN_PART - 1))
    r2 = bucket.upload_part(key, upload_id, 2, os.urandom(10))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, r1.etag), PartInfo(2, r2.etag)])
    assert (ei.value.status, ei.value.code) == (400, "EntityTooSmall")
    assert not bucket.object_exists(key)


def test_complete_malformed_xml(server, bucket):
    key = "mp/malformed"
    upload_id = bucket.init_multipart_upload(key).upload_id
    resp = raw_request(server.endpoint, "POST", bucket.bucket_name, key, params={"uploadId": upload_id},
                       data=b"<CompleteMultipartUpload><Part>")
    assert resp.status_code == 400
    assert xml_root(resp).findtext("Code") == "MalformedXML"


def test_abort(bucket):
    key = "mp/abort"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"part")
    r = bucket.abort_multipart_upload(key, upload_id)
    assert r.status == 204
    with pytest.raises(oss2.exceptions.NoSuchUpload) as ei:
        bucket.upload_part(key, upload_id, 2, b"late")
    assert ei.value.status == 404
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, md5_hex_upper(b"part"))])
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload(key, upload_id)
    assert not bucket.object_exists(key)
    assert [u.upload_id for u in bucket.list_multipart_uploads().upload_list] == []


def test_unknown_upload_id(bucket):
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("k", "0123456789ABCDEF0123456789ABCDEF", 1, b"x")


def test_upload_id_for_other_key(bucket):
    upload_id = bucket.init_multipart_upload("key-a").upload_id
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("key-b", upload_id, 1, b"x")


@pytest.mark.parametrize("part_number", ["0", "10001", "abc"])
def test_invalid_part_number(server, bucket, part_number):
    upload_id = bucket.init_multipart_upload("pn").upload_id
    resp = raw_request(server.endpoint, "PUT", bucket.bucket_name, "pn",
                       params={"partNumber": part_number, "uploadId": upload_id}, data=b"x")
    assert resp.status_code == 400, resp.content


# ---------------------------------------------------------------- listings


def test_list_multipart_uploads(bucket):
    ids = {}
    for key in ["a/1", "a/2", "b/1", "c", "d"]:
        ids[key] = bucket.init_multipart_upload(key).upload_id
    r = bucket.list_multipart_uploads()
    assert [(u.key, u.upload_id) for u in r.upload_list] == sorted(ids.items())
    assert r.is_truncated is False
    for u in r.upload_list:
        assert u.initiation_date > 0
    # paging
    p1 = bucket.list_multipart_uploads(max_uploads=2)
    assert [u.key for u in p1.upload_list] == ["a/1", "a/2"]
    assert p1.is_truncated is True
    assert p1.next_key_marker == "a/2"
    p2 = bucket.list_multipart_uploads(key_marker=p1.next_key_marker,
                                       upload_id_marker=p1.next_upload_id_marker, max_uploads=2)
    assert [u.key for u in p2.upload_list] == ["b/1", "c"]
    p3 = bucket.list_multipart_uploads(key_marker=p2.next_key_marker,
                                       upload_id_marker=p2.next_upload_id_marker, max_uploads=2)
    assert [u.key for u in p3.upload_list] == ["d"]
    assert p3.is_truncated is False
    # prefix and delimiter
    r = bucket.list_multipart_uploads(prefix="a/")
    assert [u.key for u in r.upload_list] == ["a/1", "a/2"]
    r = bucket.list_multipart_uploads(delimiter="/")
    assert r.prefix_list == ["a/", "b/"]
    assert [u.key for u in r.upload_list] == ["c", "d"]


def test_multipart_upload_iterator_delimiter(bucket):
    for key in ["a/1", "a/2", "a/3", "b/1", "b/2", "c", "d/x/1", "e"]:
        bucket.init_multipart_upload(key)
    items = list(oss2.MultipartUploadIterator(bucket, delimiter="/", max_uploads=2))
    prefixes = [i.key for i in items if i.is_prefix()]
    uploads = [i.key for i in items if not i.is_prefix()]
    assert prefixes == ["a/", "b/", "d/"]
    assert uploads == ["c", "e"]
    all_keys = [i.key for i in oss2.MultipartUploadIterator(bucket, max_uploads=3)]
    assert all_keys == ["a/1", "a/2", "a/3", "b/1", "b/2", "c", "d/x/1", "e"]


def test_uploads_of_one_key_sorted_by_id(bucket):
    ids = [bucket.init_multipart_upload("same").upload_id for _ in range(5)]
    bucket.init_multipart_upload("samf")
    assert ids == sorted(ids), "upload ids must increase in string order"
    listed = [u.upload_id for u in oss2.ObjectUploadIterator(bucket, "same", max_uploads=2)]
    assert listed == sorted(ids)
    # key-marker + upload-id-marker resume strictly after the marker
    r = bucket.list_multipart_uploads(key_marker="same", upload_id_marker=ids[1])
    assert [(u.key, u.upload_id) for u in r.upload_list][:3] == [("same", ids[2]), ("same", ids[3]), ("same", ids[4])]
    assert [u.key for u in r.upload_list][3:] == ["samf"]
    # an empty upload-id-marker means "after every upload of key-marker"
    r = bucket.list_multipart_uploads(key_marker="same")
    assert [u.key for u in r.upload_list] == ["samf"]


def test_list_parts_paging(bucket):
    key = "mp/parts"
    upload_id = bucket.init_multipart_upload(key).upload_id
    contents = {}
    for n in [1, 3, 6, 7, 9, 10]:
        contents[n] = os.urandom(1000 + n)
        bucket.upload_part(key, upload_id, n, contents[n])
    r = bucket.list_parts(key, upload_id)
    assert [p.part_number for p in r.parts] == [1, 3, 6, 7, 9, 10]
    assert r.is_truncated is False
    for p in r.parts:
        assert p.etag == md5_hex_upper(contents[p.part_number])
        assert p.size == len(contents[p.part_number])
        assert p.last_modified > 0
    r = bucket.list_parts(key, upload_id, max_parts=2)
    assert [p.part_number for p in r.parts] == [1, 3]
    assert r.is_truncated is True
    assert r.next_marker == "3"
    r = bucket.list_parts(key, upload_id, marker="3", max_parts=3)
    assert [p.part_number for p in r.parts] == [6, 7, 9]
    assert r.is_truncated is True
    r = bucket.list_parts(key, upload_id, marker=r.next_marker, max_parts=3)
    assert [p.part_number for p in r.parts] == [10]
    assert r.is_truncated is False
    parts = list(oss2.PartIterator(bucket, key, upload_id, max_parts=2))
    assert [p.part_number for p in parts] == [1, 3, 6, 7, 9, 10]
    assert [p.etag for p in parts] == [md5_hex_upper(contents[n]) for n in [1, 3, 6, 7, 9, 10]]


def test_list_parts_crc_element(server, bucket):
    key = "mp/crc"
    upload_id = bucket.init_multipart_upload(key).upload_id
    data = os.urandom(4321)
    bucket.upload_part(key, upload_id, 1, data)
    resp = raw_request(server.endpoint, "GET", bucket.bucket_name, key, params={"uploadId": upload_id})
    assert resp.status_code == 200
    root = xml_root(resp)
    assert root.findtext("UploadId") == upload_id
    assert root.findtext("NextPartNumberMarker") is not None
    part = root.find("Part")
    assert part.findtext("HashCrc64ecma") == str(crc64(data))
    assert part.findtext("Size") == "4321"


# ---------------------------------------------------------------- resumable transfers


def test_resumable_upload_and_download(bucket, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    store = oss2.ResumableStore(root=str(tmp_path / "ustore"))
    r = oss2.resumable_upload(bucket, "big/file.bin", str(src), store=store,
                              multipart_threshold=1024 * 1024, part_size=512 * 1024, num_threads=2)
    assert r.status == 200
    head = bucket.head_object("big/file.bin")
    assert head.object_type == "Multipart"
    assert head.content_length == len(data)
    assert int(head.headers["x-oss-hash-crc64ecma"]) == crc64(data)
    assert re.fullmatch(r"[0-9A-F]{32}-[0-9]+", head.etag), head.etag
    dst = tmp_path / "dst.bin"
    dstore = oss2.ResumableDownloadStore(root=str(tmp_path / "dstore"))
    oss2.resumable_download(bucket, "big/file.bin", str(dst), store=dstore,
                            multiget_threshold=1024 * 1024, part_size=1024 * 1024, num_threads=2)
    assert dst.read_bytes() == data


def test_resumable_upload_with_acl(bucket, tmp_path):
    data = os.urandom(1024 * 1024 + 1)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    store = oss2.ResumableStore(root=str(tmp_path / "ustore"))
    oss2.resumable_upload(bucket, "acl.bin", str(src), store=store, headers={"x-oss-object-acl": "public-read"},
                          multipart_threshold=512 * 1024, part_size=MIN_PART * 3, num_threads=1)
    assert bucket.get_object_acl("acl.bin").acl == "public-read"
    assert bucket.get_object("acl.bin").read() == data
