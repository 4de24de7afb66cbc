"""Crash safety: kill -9 mid-upload never tears an object, and leaves no garbage after restart."""

import os
import threading

import oss2
import pytest
import requests
from oss2.models import PartInfo

from arca_testlib import (
    ArcaServer,
    crc64,
    dir_size,
    md5_hex_upper,
    raw_request,
    unique_bucket_name,
    v1_auth,
    wait_until,
)

MiB = 1024 * 1024


@pytest.fixture
def crash_server(tmp_path):
    srv = ArcaServer(tmp_path / "srv")
    srv.start()
    yield srv
    if srv.is_running():
        srv.stop()


def test_kill9_during_put_keeps_old_version(crash_server):
    srv = crash_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("crash-put"))
    b.create_bucket()
    old = os.urandom(64 * 1024)
    b.put_object("k", old)
    base_size = dir_size(srv.data_dir)

    block = os.urandom(MiB)
    total_blocks = 200
    pause_after = 48  # MiB sent before the generator stalls; the kill happens while it waits
    sent = [0]
    paused = threading.Event()
    resume = threading.Event()
    outcome = {}

    def body():
        for i in range(total_blocks):
            if i == pause_after:
                paused.set()
                resume.wait(60)
            yield block
            sent[0] += len(block)

    def upload():
        try:
            resp = raw_request(srv.endpoint, "PUT", b.bucket_name, "k", data=body(),
                               headers={"Content-Type": "application/octet-stream"}, timeout=120)
            outcome["status"] = resp.status_code
        except requests.RequestException as e:
            outcome["error"] = e

    t = threading.Thread(target=upload, daemon=True)
    t.start()
    assert paused.wait(120), "the upload did not get going (sent %d bytes)" % sent[0]
    # give the server a bounded chance to spool what it received into its data dir
    wait_until(lambda: dir_size(srv.data_dir) - base_size >= 16 * MiB, timeout=10)
    grown = dir_size(srv.data_dir) - base_size
    print("killing after %d bytes sent; data dir grew by %d bytes" % (sent[0], grown))
    srv.kill9()
    resume.set()
    t.join(60)
    assert not t.is_alive()
    assert "status" not in outcome, "upload finished before the kill: %r" % outcome

    srv.start()
    g = b.get_object("k")
    assert g.read() == old
    assert g.etag == md5_hex_upper(old)
    assert int(g.headers["x-oss-hash-crc64ecma"]) == crc64(old)
    assert [o.key for o in b.list_objects().object_list] == ["k"]
    assert [o.size for o in b.list_objects().object_list] == [len(old)]

    # the partial upload's temp data is cleaned up after the restart
    cleaned = wait_until(lambda: dir_size(srv.data_dir) < 10 * MiB, timeout=10, interval=0.2)
    assert cleaned, "data dir still holds %d bytes after restart (grew by %d before the kill)" % (
        dir_size(srv.data_dir), grown)

    # and the key is writable again
    new = os.urandom(1000)
    b.put_object("k", new)
    assert b.get_object("k").read() == new


def test_kill9_keeps_unfinished_multipart_upload(crash_server):
    srv = crash_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("crash-mp"))
    b.create_bucket()
    key = "mp/after-crash.bin"
    chunks = [os.urandom(100 * 1024), os.urandom(100 * 1024 + 1), os.urandom(5000)]
    upload_id = b.init_multipart_upload(key).upload_id
    etags = []
    for i, c in enumerate(chunks, start=1):
        etags.append(b.upload_part(key, upload_id, i, c).etag)
    srv.kill9()
    srv.start()

    uploads = b.list_multipart_uploads().upload_list
    assert [(u.key, u.upload_id) for u in uploads] == [(key, upload_id)]
    parts = b.list_parts(key, upload_id).parts
    assert [(p.part_number, p.size, p.etag) for p in parts] == [
        (i, len(c), e) for i, (c, e) in enumerate(zip(chunks, etags), start=1)
    ]
    done = b.complete_multipart_upload(key, upload_id, [PartInfo(p.part_number, p.etag) for p in parts])
    assert done.crc == crc64(b"".join(chunks))
    assert b.get_object(key).read() == b"".join(chunks)
    assert b.head_object(key).object_type == "Multipart"


def test_kill9_after_put_keeps_acknowledged_data(crash_server):
    srv = crash_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("crash-ack"))
    b.create_bucket()
    objs = {"o%d" % i: os.urandom(1000 * (i + 1)) for i in range(5)}
    for k, v in objs.items():
        b.put_object(k, v)
    b.append_object("app", 0, b"abc")
    b.delete_object("o0")
    srv.kill9()
    srv.start()
    assert sorted(o.key for o in b.list_objects().object_list) == ["app", "o1", "o2", "o3", "o4"]
    for k in ["o1", "o2", "o3", "o4"]:
        assert b.get_object(k).read() == objs[k]
    r = b.append_object("app", 3, b"def")
    assert r.next_position == 6
    assert b.get_object("app").read() == b"abcdef"


def test_graceful_restart_keeps_data(crash_server):
    srv = crash_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("restart"))
    b.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ)
    data = os.urandom(300 * 1024)
    b.put_object("persist", data, headers={"x-oss-meta-tag": "kept"})
    rc = srv.stop()
    assert rc != -9, "the server ignored SIGTERM and had to be killed"
    srv.start()
    g = b.get_object("persist")
    assert g.read() == data
    assert g.headers["x-oss-meta-tag"] == "kept"
    assert b.get_bucket_acl().acl == oss2.BUCKET_ACL_PUBLIC_READ


def test_kill9_during_complete_is_all_or_nothing(crash_server):
    """Complete is one metadata transaction: a kill at any moment leaves either
    the whole object (and no upload) or no object (and the upload with all its
    parts), never a mix. The kill lands at a different point each round."""
    srv = crash_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("crash-complete"))
    b.create_bucket()
    outcomes = set()
    for round_no in range(8):
        key = "c/%d" % round_no
        chunks = [os.urandom(100 * 1024) for _ in range(3)] + [os.urandom(777)]
        upload_id = b.init_multipart_upload(key).upload_id
        parts = [PartInfo(i, b.upload_part(key, upload_id, i, c).etag) for i, c in enumerate(chunks, start=1)]

        def complete():
            try:
                b.complete_multipart_upload(key, upload_id, parts)
            except Exception:
                pass  # the server died under it; the state is checked below

        t = threading.Thread(target=complete)
        t.start()
        threading.Event().wait(round_no * 0.002)
        srv.kill9()
        t.join()
        srv.start()

        listed = [u.upload_id for u in b.list_multipart_uploads(prefix=key).upload_list]
        if b.object_exists(key):
            assert listed == [], "object visible but its upload survived"
            assert b.get_object(key).read() == b"".join(chunks)
            outcomes.add("completed")
        else:
            assert listed == [upload_id], "neither object nor upload after the crash"
            assert [p.part_number for p in b.list_parts(key, upload_id).parts] == [1, 2, 3, 4]
            b.complete_multipart_upload(key, upload_id, parts)
            assert b.get_object(key).read() == b"".join(chunks)
            outcomes.add("not completed")
    # Whatever the timing, nothing is left over after a restart: exactly one
    # blob per part of the eight objects, and no partial writes.
    srv.kill9()
    srv.start()
    assert len(b.list_objects(prefix="c/").object_list) == 8
    blobs = [f for _, _, files in os.walk(os.path.join(srv.data_dir, "blobs")) for f in files]
    assert len(blobs) == 8 * 4
    assert os.listdir(os.path.join(srv.data_dir, "tmp")) == []
