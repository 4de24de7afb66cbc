"""Streaming: a 1 GiB object goes in and out without the server buffering it in memory."""

import hashlib
import os
import threading

import oss2
import pytest

from arca_testlib import ArcaServer, raw_request, unique_bucket_name, v1_auth

MiB = 1024 * 1024
GiB = 1024 * MiB
RSS_BUDGET_KIB = 100 * 1024


class RssSampler(threading.Thread):
    def __init__(self, server, interval=0.2):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                rss = self.server.rss_kib()
            except (FileNotFoundError, ProcessLookupError):
                break
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(10)


@pytest.fixture
def mem_server(tmp_path):
    srv = ArcaServer(tmp_path / "srv")
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.slow
@pytest.mark.parametrize("sse", [None, "AES256"])
def test_1gib_streaming_put_get_bounded_rss(mem_server, sse):
    srv = mem_server
    b = oss2.Bucket(v1_auth(), srv.endpoint, unique_bucket_name("mem"))
    b.create_bucket()
    # warm up the code paths (one small put/get) before taking the idle reading
    b.put_object("warmup", os.urandom(256 * 1024))
    assert len(b.get_object("warmup").read()) == 256 * 1024
    idle_kib = srv.rss_kib()

    base = os.urandom(MiB)
    n_blocks = GiB // MiB
    upload_md5 = hashlib.md5()

    def body():
        for i in range(n_blocks):
            # a different 8-byte header per block, so the object is not one block repeated
            block = i.to_bytes(8, "big") + base[8:]
            upload_md5.update(block)
            yield block

    sampler = RssSampler(srv)
    sampler.start()
    try:
        headers = {"Content-Type": "application/octet-stream"}
        if sse:
            headers["x-oss-server-side-encryption"] = sse
        resp = raw_request(srv.endpoint, "PUT", b.bucket_name, "big", data=body(), headers=headers, timeout=600)
        assert resp.status_code == 200, resp.content[:500]
        assert resp.headers["ETag"] == '"%s"' % upload_md5.hexdigest().upper()
        put_peak_kib = sampler.peak

        head = b.head_object("big")
        assert head.content_length == GiB
        assert head.headers.get("x-oss-server-side-encryption") == sse

        resp = raw_request(srv.endpoint, "GET", b.bucket_name, "big", stream=True, timeout=600)
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(GiB)
        download_md5 = hashlib.md5()
        received = 0
        for chunk in resp.iter_content(chunk_size=MiB):
            download_md5.update(chunk)
            received += len(chunk)
        resp.close()
    finally:
        sampler.stop()

    assert received == GiB
    assert download_md5.hexdigest() == upload_md5.hexdigest()
    assert sampler.samples > 5
    growth = sampler.peak - idle_kib
    print("rss idle=%d KiB peak=%d KiB (put peak %d KiB) samples=%d" % (idle_kib, sampler.peak, put_peak_kib,
                                                                      sampler.samples))
    assert growth < RSS_BUDGET_KIB, (
        "server RSS grew by %d KiB (idle %d KiB, peak %d KiB, peak during PUT %d KiB); budget %d KiB"
        % (growth, idle_kib, sampler.peak, put_peak_kib, RSS_BUDGET_KIB)
    )
    b.delete_object("big")
    b.delete_object("warmup")
    b.delete_bucket()
