"""Shared helpers for the Arca black-box test suite.

Everything here talks to a real `arca serve` process over HTTP: the server is
started from the binary named by ARCA_BIN (default <repo>/target/debug/arca)
with a throw-away data dir, and driven with the real oss2 SDK or with raw
`requests` calls signed by oss2's own signers.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import oss2
import oss2.http
import oss2.utils
import requests

REPO = Path(__file__).resolve().parents[2]
ARCA_BIN = os.environ.get("ARCA_BIN", str(REPO / "target" / "debug" / "arca"))

ACCESS_KEY_ID = "LTAItestrootkey0001"
ACCESS_KEY_SECRET = "sk-" + secrets.token_hex(16)
REGION = "cn-hangzhou"
DOMAIN = "aliyuncs.com"

START_TIMEOUT = float(os.environ.get("ARCA_START_TIMEOUT", "30"))

SKEW_MESSAGE = "The difference between the request time and the current time is too large."
BAD_REGION_MESSAGE = "The signing region in credential is invalid."


# --------------------------------------------------------------------------
# small utilities


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crc64(data, init=0):
    c = oss2.utils.Crc64(init)
    c.update(data)
    return c.crc


def md5_hex_upper(data):
    return hashlib.md5(data).hexdigest().upper()


def quoted_etag(data):
    return '"' + md5_hex_upper(data) + '"'


def content_md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def unique_bucket_name(tag="b"):
    slug = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-") or "b"
    suffix = uuid.uuid4().hex[:8]
    name = "arca-" + slug[: 63 - len("arca-") - 1 - len(suffix)].strip("-") + "-" + suffix
    assert 3 <= len(name) <= 63
    return name


def dir_size(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# the server under test


def _toml_str(s):
    return json.dumps(str(s))


class ArcaServer:
    """One `arca serve` process with its own data dir and listeners.

    `regions` is a list of extra region names; each gets its own listener.
    The ports and the data dir survive stop()/kill9()/start(), so a restart
    serves the same endpoints over the same data.
    """

    instances = []

    def __init__(self, base_dir, region=REGION, regions=(), domain=DOMAIN, extra_config=None, env=None):
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base_dir / "data"
        self.config_path = self.base_dir / "arca.toml"
        self.stdout_path = self.base_dir / "arca.stdout.log"
        self.stderr_path = self.base_dir / "arca.stderr.log"
        self.region = region
        self.domain = domain
        self.port = free_port()
        self.kms_port = free_port()
        self.console_port = free_port()
        self.region_ports = {r: free_port() for r in regions}
        self.extra_config = dict(extra_config or {})
        self.extra_env = dict(env or {})
        self.proc = None
        self._out = None
        self._err = None
        ArcaServer.instances.append(self)

    # -- configuration ------------------------------------------------------
    def write_config(self):
        lines = [
            "data_dir = " + _toml_str(self.data_dir),
            "listen = " + _toml_str("127.0.0.1:%d" % self.port),
            "region = " + _toml_str(self.region),
            "domain = " + _toml_str(self.domain),
            "kms_listen = " + _toml_str("127.0.0.1:%d" % self.kms_port),
            "console_listen = " + _toml_str("127.0.0.1:%d" % self.console_port),
        ]
        for k, v in self.extra_config.items():
            if isinstance(v, bool):
                lines.append("%s = %s" % (k, "true" if v else "false"))
            elif isinstance(v, (int, float)):
                lines.append("%s = %s" % (k, v))
            else:
                lines.append("%s = %s" % (k, _toml_str(v)))
        for name, port in self.region_ports.items():
            lines += [
                "",
                "[[regions]]",
                "name = " + _toml_str(name),
                "listen = " + _toml_str("127.0.0.1:%d" % port),
            ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # -- endpoints ------------------------------------------------------------
    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def kms_endpoint(self):
        return "http://127.0.0.1:%d" % self.kms_port

    @property
    def console_url(self):
        return "http://127.0.0.1:%d" % self.console_port

    def endpoint_for(self, region):
        if region == self.region:
            return self.endpoint
        return "http://127.0.0.1:%d" % self.region_ports[region]

    def port_for(self, region):
        if region == self.region:
            return self.port
        return self.region_ports[region]

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle --------------------------------------------------------------
    def start(self, timeout=START_TIMEOUT, **config_overrides):
        """Start (or restart) on the same ports and data dir; keyword args add/override top-level config keys."""
        assert not self.is_running(), "server already running"
        self.extra_config.update(config_overrides)
        if not os.path.exists(ARCA_BIN):
            raise RuntimeError("arca binary not found at %s (set ARCA_BIN)" % ARCA_BIN)
        self.write_config()
        env = dict(os.environ)
        env["ARCA_ROOT_ACCESS_KEY_ID"] = ACCESS_KEY_ID
        env["ARCA_ROOT_ACCESS_KEY_SECRET"] = ACCESS_KEY_SECRET
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.extra_env)
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [ARCA_BIN, "serve", "--config", str(self.config_path)],
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(self.base_dir),
        )
        ports = [self.port] + list(self.region_ports.values())
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._close_logs()
                raise RuntimeError(
                    "arca exited with code %s during startup\n--- stderr tail ---\n%s"
                    % (rc, self.log_tail())
                )
            port = pending[0]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(
                    "arca did not listen on %s within %.0fs\n--- stderr tail ---\n%s"
                    % (pending, timeout, self.log_tail())
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout=20):
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout=10)
        self._close_logs()
        return rc

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(timeout=10)
        self._close_logs()
        return rc

    def restart(self, graceful=True):
        if self.is_running():
            if graceful:
                self.stop()
            else:
                self.kill9()
        return self.start()

    def _close_logs(self):
        for f in (self._out, self._err):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._out = self._err = None

    def log_tail(self, lines=40):
        out = []
        for p in (self.stderr_path, self.stdout_path):
            try:
                text = p.read_bytes().decode("utf-8", "replace").splitlines()
            except FileNotFoundError:
                continue
            if text:
                out.append("[%s]" % p.name)
                out.extend(text[-lines:])
        return "\n".join(out)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # -- convenience ------------------------------------------------------------
    def bucket(self, name, auth=None, region=None, **kw):
        region = region or self.region
        return oss2.Bucket(auth or v1_auth(), self.endpoint_for(region), name, region=region, **kw)

    def service(self, auth=None, region=None):
        region = region or self.region
        return oss2.Service(auth or v1_auth(), self.endpoint_for(region), region=region)


def v1_auth(secret=None, key_id=None):
    return oss2.Auth(key_id or ACCESS_KEY_ID, secret or ACCESS_KEY_SECRET)


def v4_auth(secret=None, key_id=None):
    return oss2.AuthV4(key_id or ACCESS_KEY_ID, secret or ACCESS_KEY_SECRET)


# --------------------------------------------------------------------------
# raw requests


def raw_request(
    endpoint,
    method,
    bucket=None,
    key="",
    params=None,
    headers=None,
    data=None,
    auth="v1",
    region=REGION,
    virtual_host=None,
    stream=False,
    timeout=120,
):
    """Send one request with `requests`, signed by oss2's own signer.

    Path style by default: /<bucket>/<quote(key, safe='')>. With
    `virtual_host` (e.g. "<bucket>.oss-cn-hangzhou.aliyuncs.com") the URL is
    http://127.0.0.1:<port>/<quote(key)> and the Host header names the bucket,
    as ali-oss does for IP endpoints. `auth` is "v1", "v4", None (anonymous)
    or an oss2 auth object.
    """
    params = dict(params or {})
    headers = oss2.http.CaseInsensitiveDict(headers or {})
    if virtual_host:
        url = endpoint.rstrip("/") + "/" + quote(key, safe="/")
        headers["Host"] = virtual_host
    elif bucket:
        url = endpoint.rstrip("/") + "/" + bucket + "/" + quote(key, safe="")
    else:
        url = endpoint.rstrip("/") + "/"
    if auth == "v1":
        auth = v1_auth()
    elif auth == "v4":
        auth = v4_auth()
    if auth is not None:
        req = oss2.http.Request(method, url, data=None, params=params, headers=headers, region=region, product="oss")
        auth._sign_request(req, bucket, key)
        headers = req.headers
        params = req.params
    send_headers = {k: v for k, v in headers.items() if v is not None}
    send_headers.setdefault("Accept-Encoding", "identity")
    return requests.request(
        method,
        url,
        params=params,
        headers=send_headers,
        data=data,
        stream=stream,
        timeout=timeout,
        allow_redirects=False,
    )


def error_details(resp):
    """Error fields of a raw response as a dict (body XML, or x-oss-err for HEAD)."""
    body = resp.content
    if not body and resp.headers.get("x-oss-err"):
        body = base64.b64decode(resp.headers["x-oss-err"])
    if not body:
        return {}
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: (child.text or "") for child in root}


def xml_root(resp):
    return ET.fromstring(resp.content)


# --------------------------------------------------------------------------
# cleanup


def cleanup_bucket(bucket):
    """Delete every object and multipart upload, then the bucket. Best effort."""
    try:
        for up in oss2.MultipartUploadIterator(bucket):
            if up.is_prefix():
                continue
            try:
                bucket.abort_multipart_upload(up.key, up.upload_id)
            except oss2.exceptions.NoSuchUpload:
                pass
        keys = [o.key for o in oss2.ObjectIterator(bucket)]
        for i in range(0, len(keys), 500):
            bucket.batch_delete_objects(keys[i : i + 500])
        bucket.delete_bucket()
    except oss2.exceptions.NoSuchBucket:
        pass


# --------------------------------------------------------------------------
# the data dir (read-only peeks for the at-rest tests)


def object_records(data_dir):
    """{(bucket, key): record dict} of every object in <data_dir>/meta.sqlite (readable while the server runs)."""
    import sqlite3

    db = sqlite3.connect("file:%s?mode=ro" % (Path(data_dir) / "meta.sqlite"), uri=True)
    try:
        rows = db.execute("SELECT bucket, key, record FROM objects").fetchall()
    finally:
        db.close()
    return {(b, bytes(k).decode() if isinstance(k, (bytes, memoryview)) else k): json.loads(r) for b, k, r in rows}


def blob_file(data_dir, blob):
    """Path of a blob id: <data_dir>/blobs/<first 2 hex>/<blob>."""
    return Path(data_dir) / "blobs" / blob[:2] / blob
