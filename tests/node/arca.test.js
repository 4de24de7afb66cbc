// Black-box integration test: drive a real `arca serve` with the Node SDK `ali-oss`.
//
// The point is ali-oss's addressing for an IP endpoint: it sends `http://IP:PORT/<key>`
// (no bucket in the path) with `Host: <bucket>.oss-cn-hangzhou.aliyuncs.com`, so the
// server must route by the Host header (spec shared/spec/oss-api.md, sections 1.2 and 1.3).
// Every request ali-oss makes is recorded so the test can assert that form on the wire.
//
// Run: cd tests/node && npm ci && npm test      (ARCA_BIN overrides the server binary)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OSS from 'ali-oss';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ARCA_BIN = process.env.ARCA_BIN || path.join(REPO, 'target', 'debug', 'arca');

const ACCESS_KEY_ID = 'LTAInodetest0001';
const ACCESS_KEY_SECRET = 'sk-' + crypto.randomBytes(16).toString('hex');
const SDK_REGION = 'oss-cn-hangzhou'; // ali-oss form; V4 scope uses `cn-hangzhou`
const HOST_SUFFIX = 'oss-cn-hangzhou.aliyuncs.com';
const START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// helpers

/** CRC-64/XZ (ECMA-182 reflected, init and xorout all ones) as an unsigned decimal string. */
const CRC_TABLE = (() => {
  const lo = new Uint32Array(256);
  const hi = new Uint32Array(256);
  const poly = 0xc96c5795d7870f42n;
  for (let i = 0; i < 256; i++) {
    let c = BigInt(i);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    lo[i] = Number(c & 0xffffffffn);
    hi[i] = Number(c >> 32n);
  }
  return { lo, hi };
})();

function crc64(buf) {
  const data = Buffer.isBuffer(buf) ? buf : Buffer.from(buf);
  let lo = 0xffffffff;
  let hi = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    const idx = (lo ^ data[i]) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ CRC_TABLE.lo[idx]) >>> 0;
    hi = ((hi >>> 8) ^ CRC_TABLE.hi[idx]) >>> 0;
  }
  lo = (lo ^ 0xffffffff) >>> 0;
  hi = (hi ^ 0xffffffff) >>> 0;
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

const md5Upper = buf => crypto.createHash('md5').update(buf).digest('hex').toUpperCase();
const quotedEtag = buf => `"${md5Upper(buf)}"`;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tryConnect(port) {
  return new Promise(resolve => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/** Await a promise that must reject; return the error. */
async function expectError(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail(`${what}: expected an error, the call succeeded`);
}

/** Raw HTTP request (node:http lets us set the Host header; fetch silently drops it). */
function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const xmlField = (xml, name) => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return m ? m[1] : null;
};

// ---------------------------------------------------------------------------
// server lifecycle

const server = {
  proc: null,
  port: 0,
  tmp: null,
  logTail: [],
  exited: null,
};

function pushLog(chunk) {
  const lines = chunk.toString('utf8').split('\n');
  server.logTail.push(...lines);
  if (server.logTail.length > 400) server.logTail.splice(0, server.logTail.length - 400);
}

async function startServer() {
  if (!fs.existsSync(ARCA_BIN)) {
    throw new Error(`arca binary not found at ${ARCA_BIN} (build it, or set ARCA_BIN)`);
  }
  server.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arca-node-'));
  server.port = await freePort();
  const proc = spawn(
    ARCA_BIN,
    ['serve', '--data-dir', path.join(server.tmp, 'data'), '--listen', `127.0.0.1:${server.port}`, '--kms-listen', '127.0.0.1:0', '--console-listen', '127.0.0.1:0'],
    {
      env: {
        ...process.env,
        ARCA_ROOT_ACCESS_KEY_ID: ACCESS_KEY_ID,
        ARCA_ROOT_ACCESS_KEY_SECRET: ACCESS_KEY_SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  server.proc = proc;
  proc.stdout.on('data', pushLog);
  proc.stderr.on('data', pushLog);
  proc.on('exit', (code, signal) => {
    server.exited = { code, signal };
  });

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exited) {
      throw new Error(`arca exited during start-up (${JSON.stringify(server.exited)}):\n${tail()}`);
    }
    if (await tryConnect(server.port)) return;
    await sleep(100);
  }
  throw new Error(`arca did not accept connections on port ${server.port} within ${START_TIMEOUT_MS} ms:\n${tail()}`);
}

async function stopServer() {
  const { proc } = server;
  if (proc && !server.exited) {
    proc.kill('SIGTERM');
    const deadline = Date.now() + 10_000;
    while (!server.exited && Date.now() < deadline) await sleep(50);
    if (!server.exited) proc.kill('SIGKILL');
  }
  if (server.tmp) fs.rmSync(server.tmp, { recursive: true, force: true });
}

const tail = (n = 80) => server.logTail.slice(-n).join('\n');

// ---------------------------------------------------------------------------
// clients

/** Requests as ali-oss handed them to its HTTP layer: { method, url, host }. */
const wire = [];

function recordRequests(client) {
  const inner = client.urllib;
  client.urllib = {
    request(url, params) {
      wire.push({ method: params.method, url, host: params.headers && params.headers.host });
      return inner.request(url, params);
    },
  };
  return client;
}

function lastWire(method) {
  for (let i = wire.length - 1; i >= 0; i--) if (wire[i].method === method) return wire[i];
  return null;
}

function ipClient(bucket, extra = {}) {
  return recordRequests(
    new OSS({
      region: SDK_REGION,
      accessKeyId: ACCESS_KEY_ID,
      accessKeySecret: ACCESS_KEY_SECRET,
      bucket,
      endpoint: `http://127.0.0.1:${server.port}`,
      secure: false,
      cname: false,
      sldEnable: false,
      timeout: 20_000,
      ...extra,
    }),
  );
}

// ---------------------------------------------------------------------------

let failed = false;
/** Wrap a test body so a failure is remembered (to dump the server log at the end). */
const step = fn => async t => {
  try {
    await fn(t);
  } catch (err) {
    failed = true;
    throw err;
  }
};

const BUCKET = `arca-node-${crypto.randomBytes(4).toString('hex')}`;
const SMALL = Buffer.from('hello');
const SMALL_ETAG = '"5D41402ABC4B2A76B9719D911017C592"'; // spec 0.2
const SMALL_CRC = '11177612005948864433'; // spec 4.3
const BIG = crypto.randomBytes(1024 * 1024);
const MULTI = crypto.randomBytes(600 * 1024);
const PART = 102400;

describe('arca via ali-oss (Host-header addressing with an IP endpoint)', () => {
  let client; // V1 signatures
  let v4; // V4 signatures

  before(async () => {
    // Self-check of the CRC helper against the spec's known answers (4.3).
    assert.equal(crc64(Buffer.alloc(0)), '0');
    assert.equal(crc64('123456789'), '11051210869376104954');
    assert.equal(crc64('hello'), SMALL_CRC);

    try {
      await startServer();
    } catch (err) {
      failed = true;
      throw err;
    }
    client = ipClient(BUCKET);
    v4 = ipClient(BUCKET, { authorizationV4: true });
  });

  after(async () => {
    if (failed) {
      console.error(`---- arca log tail (port ${server.port}) ----\n${tail()}\n---- end of arca log ----`);
    }
    await stopServer();
  });

  it('putBucket: URL has no bucket, Host carries it; the bucket exists afterwards', step(async () => {
    const res = await client.putBucket(BUCKET);
    assert.equal(res.res.status, 200);

    const req = lastWire('PUT');
    assert.equal(req.url, `http://127.0.0.1:${server.port}/`);
    assert.equal(req.host, `${BUCKET}.${HOST_SUFFIX}`);

    const loc = await client.getBucketLocation(BUCKET);
    assert.equal(loc.location, 'oss-cn-hangzhou');
    const locReq = new URL(lastWire('GET').url);
    assert.equal(locReq.pathname, '/');
    assert.ok(locReq.searchParams.has('location'), lastWire('GET').url);

    const info = await client.getBucketInfo(BUCKET);
    assert.equal(info.bucket.Name, BUCKET);
  }));

  it('put a small object and a 1 MiB random object (ETag, CRC-64)', step(async () => {
    const r1 = await client.put('dir/hello.txt', SMALL);
    assert.equal(r1.res.status, 200);
    assert.equal(r1.res.headers.etag, SMALL_ETAG);
    assert.equal(r1.res.headers['x-oss-hash-crc64ecma'], SMALL_CRC);
    const req = lastWire('PUT');
    assert.equal(req.url, `http://127.0.0.1:${server.port}/dir/hello.txt`, 'ali-oss must not put the bucket in the path');
    assert.equal(req.host, `${BUCKET}.${HOST_SUFFIX}`);

    const r2 = await client.put('big/random.bin', BIG);
    assert.equal(r2.res.status, 200);
    assert.equal(r2.res.headers.etag, quotedEtag(BIG));
    assert.equal(r2.res.headers['x-oss-hash-crc64ecma'], crc64(BIG));
  }));

  it('get both objects back byte for byte', step(async () => {
    const g1 = await client.get('dir/hello.txt');
    assert.equal(g1.res.status, 200);
    assert.ok(Buffer.isBuffer(g1.content));
    assert.ok(g1.content.equals(SMALL), `got ${JSON.stringify(g1.content.toString())}`);

    const g2 = await client.get('big/random.bin');
    assert.equal(g2.res.status, 200);
    assert.equal(g2.content.length, BIG.length);
    assert.ok(g2.content.equals(BIG), '1 MiB object differs from what was uploaded');
    assert.equal(g2.res.headers['x-oss-hash-crc64ecma'], crc64(BIG));

    const ranged = await client.get('big/random.bin', { headers: { Range: 'bytes=100-199' } });
    assert.equal(ranged.res.status, 206);
    assert.ok(ranged.content.equals(BIG.subarray(100, 200)));
  }));

  it('head: quoted upper-case MD5 ETag, CRC-64, size, object type', step(async () => {
    const h = await client.head('big/random.bin');
    assert.equal(h.status, 200);
    const hd = h.res.headers;
    assert.match(hd.etag, /^"[0-9A-F]{32}"$/);
    assert.equal(hd.etag, quotedEtag(BIG));
    assert.equal(hd['x-oss-hash-crc64ecma'], crc64(BIG));
    assert.equal(hd['content-length'], String(BIG.length));
    assert.equal(hd['x-oss-object-type'], 'Normal');

    const hs = await client.head('dir/hello.txt');
    assert.equal(hs.res.headers.etag, SMALL_ETAG);
    assert.equal(hs.res.headers['x-oss-hash-crc64ecma'], SMALL_CRC);
  }));

  it('list (v1) and listV2 with a prefix, delimiter and paging', step(async () => {
    for (const k of ['list/a', 'list/b', 'list/sub/c', 'listing-not-under-prefix']) {
      await client.put(k, Buffer.from(`content of ${k}`));
    }

    const l1 = await client.list({ prefix: 'list/', 'max-keys': 100 });
    assert.deepEqual(l1.objects.map(o => o.name), ['list/a', 'list/b', 'list/sub/c']);
    const a = l1.objects[0];
    assert.equal(a.size, Buffer.byteLength('content of list/a'));
    assert.equal(a.etag, quotedEtag(Buffer.from('content of list/a')));
    assert.equal(l1.isTruncated, false);

    const l2 = await client.list({ prefix: 'list/', delimiter: '/' });
    assert.deepEqual(l2.objects.map(o => o.name), ['list/a', 'list/b']);
    assert.deepEqual(l2.prefixes, ['list/sub/']);

    const p1 = await client.listV2({ prefix: 'list/', 'max-keys': 2 });
    assert.deepEqual(p1.objects.map(o => o.name), ['list/a', 'list/b']);
    assert.equal(p1.isTruncated, true);
    assert.equal(p1.keyCount, 2);
    assert.ok(p1.nextContinuationToken, 'truncated listV2 page must carry NextContinuationToken');

    const p2 = await client.listV2({ prefix: 'list/', 'max-keys': 2, 'continuation-token': p1.nextContinuationToken });
    assert.deepEqual(p2.objects.map(o => o.name), ['list/sub/c']);
    assert.equal(p2.isTruncated, false);
  }));

  it('copy an object within the bucket', step(async () => {
    const c = await client.copy('copy/of-hello.txt', 'dir/hello.txt');
    assert.equal(c.res.status, 200);
    assert.equal(c.data.etag, SMALL_ETAG);
    const req = lastWire('PUT');
    assert.equal(req.url, `http://127.0.0.1:${server.port}/copy/of-hello.txt`);

    const g = await client.get('copy/of-hello.txt');
    assert.ok(g.content.equals(SMALL));
    assert.equal(g.res.headers.etag, SMALL_ETAG);
  }));

  it('delete an object, then it is gone', step(async () => {
    const d = await client.delete('copy/of-hello.txt');
    assert.equal(d.res.status, 204);
    const err = await expectError(client.get('copy/of-hello.txt'), 'get after delete');
    assert.equal(err.code, 'NoSuchKey');
    assert.equal(err.status, 404);
    // deleting a missing key is still 204 (spec 6.5)
    const again = await client.delete('copy/of-hello.txt');
    assert.equal(again.res.status, 204);
  }));

  it('deleteMulti removes several keys (missing keys reported as deleted)', step(async () => {
    const r = await client.deleteMulti(['list/a', 'list/b', 'list/does-not-exist']);
    assert.equal(r.res.status, 200);
    assert.deepEqual(r.deleted.map(d => d.Key).sort(), ['list/a', 'list/b', 'list/does-not-exist']);
    const req = lastWire('POST');
    const reqUrl = new URL(req.url);
    assert.equal(`${reqUrl.host}${reqUrl.pathname}`, `127.0.0.1:${server.port}/`);
    assert.ok(reqUrl.searchParams.has('delete'), req.url);
    assert.equal(req.host, `${BUCKET}.${HOST_SUFFIX}`);

    const l = await client.list({ prefix: 'list/' });
    assert.deepEqual(l.objects.map(o => o.name), ['list/sub/c']);

    const quiet = await client.deleteMulti(['list/sub/c', 'listing-not-under-prefix'], { quiet: true });
    assert.equal(quiet.res.status, 200);
    assert.deepEqual(quiet.deleted, []);
    const l2 = await client.list({ prefix: 'list' });
    assert.deepEqual(l2.objects, []);
  }));

  it('multipartUpload of a 600 KiB buffer with 100 KiB parts', step(async () => {
    const parts = [];
    const r = await client.multipartUpload('mp/buffer.bin', MULTI, {
      partSize: PART,
      parallel: 2,
      progress: (p, cpt) => {
        if (cpt && cpt.doneParts) parts.splice(0, parts.length, ...cpt.doneParts);
      },
    });
    assert.equal(r.res.status, 200);
    assert.equal(parts.length, 6, 'ali-oss should have uploaded 6 parts');
    // `"<32 upper hex>-<part count>"` (spec 4.2)
    assert.match(r.etag, /^"[0-9A-F]{32}-6"$/);

    const g = await client.get('mp/buffer.bin');
    assert.equal(g.content.length, MULTI.length);
    assert.ok(g.content.equals(MULTI), 'multipart object differs from the uploaded buffer');
    assert.equal(g.res.headers.etag, r.etag);

    const h = await client.head('mp/buffer.bin');
    assert.equal(h.res.headers['x-oss-object-type'], 'Multipart');
    assert.equal(h.res.headers['x-oss-hash-crc64ecma'], crc64(MULTI));
    assert.equal(h.res.headers['content-length'], String(MULTI.length));
  }));

  it('multipartUpload of a file on disk (3 parts, last one short)', step(async () => {
    const data = crypto.randomBytes(2 * PART + 1234);
    const file = path.join(server.tmp, 'upload.bin');
    fs.writeFileSync(file, data);
    const r = await client.multipartUpload('mp/file.bin', file, { partSize: PART });
    assert.match(r.etag, /^"[0-9A-F]{32}-3"$/);
    const g = await client.get('mp/file.bin');
    assert.ok(g.content.equals(data), 'multipart object from file differs');
    assert.equal(g.res.headers['x-oss-hash-crc64ecma'], crc64(data));
  }));

  it('append: positions, content, type, CRC and the wrong-position error', step(async () => {
    const a1 = await client.append('app/log.txt', Buffer.from('hello '));
    assert.equal(a1.res.status, 200);
    assert.equal(a1.nextAppendPosition, '6');
    assert.equal(a1.res.headers['x-oss-hash-crc64ecma'], crc64('hello '));

    const a2 = await client.append('app/log.txt', Buffer.from('world'), { position: a1.nextAppendPosition });
    assert.equal(a2.nextAppendPosition, '11');
    assert.equal(a2.res.headers['x-oss-hash-crc64ecma'], crc64('hello world'));

    const g = await client.get('app/log.txt');
    assert.equal(g.content.toString(), 'hello world');
    assert.equal(g.res.headers['x-oss-object-type'], 'Appendable');

    const err = await expectError(client.append('app/log.txt', Buffer.from('!'), { position: 3 }), 'append at a wrong position');
    assert.equal(err.code, 'PositionNotEqualToLength');
    assert.equal(err.status, 409);

    const notAppendable = await expectError(
      client.append('dir/hello.txt', Buffer.from('!'), { position: SMALL.length }),
      'append to a Normal object',
    );
    assert.equal(notAppendable.code, 'ObjectNotAppendable');
    assert.equal(notAppendable.status, 409);
  }));

  it('signatureUrl (V1) fetched with plain fetch; tampered and expired URLs are refused', step(async () => {
    // ali-oss refuses to sign URLs for an IP endpoint ("can not get the object URL when
    // endpoint is IP"), so the signer uses `localhost` with sldEnable (path style /<bucket>/<key>).
    const signer = new OSS({
      region: SDK_REGION,
      accessKeyId: ACCESS_KEY_ID,
      accessKeySecret: ACCESS_KEY_SECRET,
      bucket: BUCKET,
      endpoint: `http://localhost:${server.port}`,
      secure: false,
      sldEnable: true,
    });
    const url = signer.signatureUrl('dir/hello.txt', { expires: 300 });
    assert.ok(url.startsWith(`http://localhost:${server.port}/${BUCKET}/dir/hello.txt?`), url);
    assert.match(url, /[?&]OSSAccessKeyId=/);

    const ok = await fetch(url);
    assert.equal(ok.status, 200);
    assert.ok(Buffer.from(await ok.arrayBuffer()).equals(SMALL));
    assert.equal(ok.headers.get('etag'), SMALL_ETAG);

    const u = new URL(url);
    const sig = u.searchParams.get('Signature');
    u.searchParams.set('Signature', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    const bad = await fetch(u);
    assert.equal(bad.status, 403);
    assert.equal(xmlField(await bad.text(), 'Code'), 'SignatureDoesNotMatch');

    const expired = signer.signatureUrl('dir/hello.txt', { expires: -60 });
    const ex = await fetch(expired);
    assert.equal(ex.status, 403);
    assert.equal(xmlField(await ex.text(), 'Code'), 'AccessDenied');

    // A presigned PUT, also through plain fetch. Content-Type is part of the V1 string to
    // sign (spec 2.2), and fetch sends one for a string body, so sign that same value.
    const contentType = 'text/plain;charset=UTF-8';
    const putUrl = signer.signatureUrl('signed/put.txt', { method: 'PUT', expires: 300, 'Content-Type': contentType });
    const put = await fetch(putUrl, { method: 'PUT', body: 'via signed url', headers: { 'content-type': contentType } });
    assert.equal(put.status, 200, await put.clone().text());
    const wrongType = await fetch(putUrl, { method: 'PUT', body: 'x', headers: { 'content-type': 'image/png' } });
    assert.equal(wrongType.status, 403);
    assert.equal(xmlField(await wrongType.text(), 'Code'), 'SignatureDoesNotMatch');
    const back = await client.get('signed/put.txt');
    assert.equal(back.content.toString(), 'via signed url');
  }));

  it('signatureUrlV4 for the IP endpoint, sent with the bucket Host header', step(async () => {
    const url = await v4.signatureUrlV4('GET', 300, undefined, 'dir/hello.txt');
    assert.ok(url.startsWith(`http://127.0.0.1:${server.port}/dir/hello.txt?`), url);
    assert.match(url, /x-oss-signature-version=OSS4-HMAC-SHA256/);
    const r = await rawRequest(url, { headers: { host: `${BUCKET}.${HOST_SUFFIX}` } });
    assert.equal(r.status, 200, r.body.toString());
    assert.ok(r.body.equals(SMALL));
  }));

  it('V4 header signatures (authorizationV4: true): put, get, head, list, delete', step(async () => {
    const body = crypto.randomBytes(4096);
    const p = await v4.put('v4/object.bin', body);
    assert.equal(p.res.status, 200);
    assert.equal(p.res.headers.etag, quotedEtag(body));
    const req = lastWire('PUT');
    assert.equal(req.url, `http://127.0.0.1:${server.port}/v4/object.bin`);
    assert.equal(req.host, `${BUCKET}.${HOST_SUFFIX}`);

    const g = await v4.get('v4/object.bin');
    assert.ok(g.content.equals(body));
    assert.equal(g.res.headers['x-oss-hash-crc64ecma'], crc64(body));

    const h = await v4.head('v4/object.bin');
    assert.equal(h.res.headers.etag, quotedEtag(body));

    const l = await v4.listV2({ prefix: 'v4/' });
    assert.deepEqual(l.objects.map(o => o.name), ['v4/object.bin']);

    const mp = await v4.multipartUpload('v4/multipart.bin', MULTI.subarray(0, 2 * PART + 10), { partSize: PART });
    assert.match(mp.etag, /^"[0-9A-F]{32}-3"$/);
    const mg = await v4.get('v4/multipart.bin');
    assert.ok(mg.content.equals(MULTI.subarray(0, 2 * PART + 10)));

    const d = await v4.deleteMulti(['v4/object.bin', 'v4/multipart.bin']);
    assert.equal(d.deleted.length, 2);
    const gone = await expectError(v4.get('v4/object.bin'), 'V4 get after delete');
    assert.equal(gone.code, 'NoSuchKey');
  }));

  it('errors: NoSuchKey, NoSuchBucket (by Host), SignatureDoesNotMatch (V1 and V4)', step(async () => {
    const missing = await expectError(client.get('no/such/key'), 'get of a missing key');
    assert.equal(missing.code, 'NoSuchKey');
    assert.equal(missing.status, 404);

    const missingHead = await expectError(client.head('no/such/key'), 'head of a missing key');
    assert.equal(missingHead.status, 404);
    assert.equal(missingHead.code, 'NoSuchKey');

    // Same URL path, only the Host differs: the server must look at the Host to answer this.
    const other = ipClient(`arca-node-missing-${crypto.randomBytes(3).toString('hex')}`);
    const noBucket = await expectError(other.get('dir/hello.txt'), 'get from a bucket that does not exist');
    assert.equal(noBucket.code, 'NoSuchBucket');
    assert.equal(noBucket.status, 404);

    const wrongV1 = ipClient(BUCKET, { accessKeySecret: 'definitely-not-the-secret' });
    const e1 = await expectError(wrongV1.get('dir/hello.txt'), 'V1 request with a wrong secret');
    assert.equal(e1.code, 'SignatureDoesNotMatch');
    assert.equal(e1.status, 403);

    const e1put = await expectError(wrongV1.put('wrong/secret.txt', Buffer.from('x')), 'V1 put with a wrong secret');
    assert.equal(e1put.code, 'SignatureDoesNotMatch');

    const wrongV4 = ipClient(BUCKET, { accessKeySecret: 'definitely-not-the-secret', authorizationV4: true });
    const e4 = await expectError(wrongV4.get('dir/hello.txt'), 'V4 request with a wrong secret');
    assert.equal(e4.code, 'SignatureDoesNotMatch');
    assert.equal(e4.status, 403);

    const unknownKey = ipClient(BUCKET, { accessKeyId: 'LTAInosuchkey999' });
    const ek = await expectError(unknownKey.get('dir/hello.txt'), 'request with an unknown AccessKeyId');
    assert.equal(ek.code, 'InvalidAccessKeyId');
    assert.equal(ek.status, 403);

    // nothing was written by the rejected put
    const notThere = await expectError(client.get('wrong/secret.txt'), 'object from a rejected put');
    assert.equal(notThere.code, 'NoSuchKey');
  }));

  it('deleteBucket: refused while not empty, then deleted', step(async () => {
    const notEmpty = await expectError(client.deleteBucket(BUCKET), 'delete of a non-empty bucket');
    assert.equal(notEmpty.code, 'BucketNotEmpty');
    assert.equal(notEmpty.status, 409);

    const all = await client.list({ 'max-keys': 1000 });
    const names = all.objects.map(o => o.name);
    assert.deepEqual(names.sort(), ['app/log.txt', 'big/random.bin', 'dir/hello.txt', 'mp/buffer.bin', 'mp/file.bin', 'signed/put.txt']);
    await client.deleteMulti(names, { quiet: true });

    const d = await client.deleteBucket(BUCKET);
    assert.ok([200, 204].includes(d.res.status), `status ${d.res.status}`);
    const req = lastWire('DELETE');
    assert.equal(req.url, `http://127.0.0.1:${server.port}/`);
    assert.equal(req.host, `${BUCKET}.${HOST_SUFFIX}`);

    const gone = await expectError(client.getBucketInfo(BUCKET), 'getBucketInfo after deleteBucket');
    assert.equal(gone.code, 'NoSuchBucket');
    assert.equal(gone.status, 404);
  }));
});
