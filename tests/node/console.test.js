// End-to-end browser test of Arca's web console in headless Chromium (playwright-core
// driving the system's /usr/bin/chromium; no browser download).
//
// The acceptance scenario, in order, on one server and one browser:
//   1. sign in with the root access key pair;
//   2. create a CMK on the KMS page and read its id from the keys table;
//   3. create a bucket through the Create Bucket dialog, Server Encryption KMS with that CMK;
//   4. upload a file through the page with "Bucket default" encryption;
//   5. check through oss2 (Python SDK, tests/node/oss2_head.py) that it is SSE-KMS under the CMK;
//   6. Basic Settings → Configure → AES256 → Save (existing objects keep their encryption);
//   7. upload a second file; oss2 sees the first still KMS/CMK and the second AES256;
//   8. RAM: create a user, set its console password, create a custom policy (oss:* on the
//      bucket, no kms:Decrypt; a policy with a `//` comment is refused inline first), attach
//      it; sign in as that user: downloading the KMS object is refused with "This request is
//      forbidden by kms.", the AES256 object downloads;
//   9. as root, disable the CMK: the KMS object can no longer be downloaded (the key is
//      disabled), the AES256 object still can;
//  10. screenshots of the main pages under tests/output/screenshots/.
//
// Run: cd tests/node && ARCA_BIN=../../target/debug/arca node --test console.test.js
// (ARCA_PYTHON overrides the Python with oss2, default <repo>/.venv-test/bin/python;
//  CHROMIUM_PATH overrides /usr/bin/chromium.)

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ARCA_BIN = process.env.ARCA_BIN || path.join(REPO, 'target', 'debug', 'arca');
const PYTHON = process.env.ARCA_PYTHON || path.join(REPO, '.venv-test', 'bin', 'python');
const OSS2_HEAD = path.join(HERE, 'oss2_head.py');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(REPO, 'tests', 'output', 'screenshots');

const ACCESS_KEY_ID = 'LTAIconsoletest01';
const ACCESS_KEY_SECRET = 'sk-' + crypto.randomBytes(16).toString('hex');
const START_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 30_000;

const SSE = 'x-oss-server-side-encryption';
const SSE_KEY = 'x-oss-server-side-encryption-key-id';
const KMS_FORBIDDEN = 'This request is forbidden by kms.';

const execFileP = promisify(execFile);
const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// helpers

/** CRC-64/XZ as an unsigned decimal string (as OSS's x-oss-hash-crc64ecma). */
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
  let lo = 0xffffffff;
  let hi = 0xffffffff;
  for (let i = 0; i < buf.length; i++) {
    const idx = (lo ^ buf[i]) & 0xff;
    lo = (((lo >>> 8) | (hi << 24)) ^ CRC_TABLE.lo[idx]) >>> 0;
    hi = ((hi >>> 8) ^ CRC_TABLE.hi[idx]) >>> 0;
  }
  lo = (lo ^ 0xffffffff) >>> 0;
  hi = (hi ^ 0xffffffff) >>> 0;
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

const md5Upper = buf => crypto.createHash('md5').update(buf).digest('hex').toUpperCase();

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

// ---------------------------------------------------------------------------
// server lifecycle (as arca.test.js, but with fixed ports for the KMS API and the console)

const server = { proc: null, tmp: null, port: 0, kmsPort: 0, consolePort: 0, logTail: [], exited: null };

function pushLog(chunk) {
  server.logTail.push(...chunk.toString('utf8').split('\n'));
  if (server.logTail.length > 400) server.logTail.splice(0, server.logTail.length - 400);
}
const tail = (n = 80) => server.logTail.slice(-n).join('\n');

async function startServer() {
  if (!fs.existsSync(ARCA_BIN)) throw new Error(`arca binary not found at ${ARCA_BIN} (build it, or set ARCA_BIN)`);
  server.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arca-console-'));
  server.port = await freePort();
  server.kmsPort = await freePort();
  server.consolePort = await freePort();
  const proc = spawn(
    ARCA_BIN,
    [
      'serve',
      '--data-dir', path.join(server.tmp, 'data'),
      '--listen', `127.0.0.1:${server.port}`,
      '--kms-listen', `127.0.0.1:${server.kmsPort}`,
      '--console-listen', `127.0.0.1:${server.consolePort}`,
    ],
    {
      env: { ...process.env, ARCA_ROOT_ACCESS_KEY_ID: ACCESS_KEY_ID, ARCA_ROOT_ACCESS_KEY_SECRET: ACCESS_KEY_SECRET },
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
  const ports = [server.port, server.kmsPort, server.consolePort];
  while (Date.now() < deadline) {
    if (server.exited) throw new Error(`arca exited during start-up (${JSON.stringify(server.exited)}):\n${tail()}`);
    const up = await Promise.all(ports.map(tryConnect));
    if (up.every(Boolean)) return;
    await sleep(100);
  }
  throw new Error(`arca did not listen on ${ports.join(', ')} within ${START_TIMEOUT_MS} ms:\n${tail()}`);
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

const endpoint = () => `http://127.0.0.1:${server.port}`;
const consoleUrl = (p = '/') => `http://127.0.0.1:${server.consolePort}${p}`;

/** HEAD objects through oss2 (outside the console); { key: { status, x-oss-server-side-encryption, … } }. */
async function oss2Head(bucket, ...keys) {
  const { stdout } = await execFileP(PYTHON, [OSS2_HEAD, endpoint(), bucket, ...keys], {
    env: { ...process.env, ARCA_ROOT_ACCESS_KEY_ID: ACCESS_KEY_ID, ARCA_ROOT_ACCESS_KEY_SECRET: ACCESS_KEY_SECRET },
    timeout: 20_000,
  });
  return JSON.parse(stdout);
}

// ---------------------------------------------------------------------------
// browser helpers

let browser;
let context;
let page;

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

const text = async selector => ((await page.locator(selector).first().textContent()) ?? '').trim();

/** The notice a redirect handed to the page (`p.notice[role=status]` under the title). */
const pageNotice = () => text('main > p.notice[role=status]');

/** Click something that submits a form and wait until the URL satisfies `until`. */
async function submit(selector, until) {
  await Promise.all([page.waitForURL(until), page.click(selector)]);
}

async function signInWithKey(id, secret) {
  await page.goto(consoleUrl('/login'));
  await page.fill('#access_key_id', id);
  await page.fill('#access_key_secret', secret);
  await submit('#login-key', /\/buckets$/);
}

async function signInWithPassword(account, user, password) {
  await page.goto(consoleUrl('/login'));
  await page.fill('#account', account);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await submit('#login-password', /\/buckets$/);
}

async function signOut() {
  await submit('header form button[type=submit]', /\/login\?/);
  assert.equal(await pageNotice(), 'Signed out.');
}

/** Upload `buffer` as `name` through the bucket page's uploader; returns the notice shown. */
async function uploadThroughPage(bucket, name, buffer, sse) {
  await page.goto(consoleUrl(`/buckets/${bucket}`));
  await page.setInputFiles('#upload-file', { name, mimeType: 'text/plain', buffer });
  await page.selectOption('#upload-sse', sse);
  await submit('#upload-submit', url => (url.searchParams.get('notice') || '').startsWith(`Uploaded ${name} `));
  await page.locator(`#objects tr[data-key="${name}"]`).waitFor();
  return pageNotice();
}

/** Click a download link in the objects table; a successful download yields its bytes. */
async function downloadFromTable(key) {
  const link = page.locator(`#objects tr[data-key="${key}"] a`, { hasText: 'Download' });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const failure = await download.failure();
  if (failure) return { failure, name: download.suggestedFilename() };
  const file = await download.path();
  return { failure: null, name: download.suggestedFilename(), body: fs.readFileSync(file) };
}

/**
 * Click the Download link of an object whose download the server refuses and
 * report what the user gets to see: the refusal page, or (when the link makes
 * the browser treat the answer as a file) a failed download and no message.
 */
async function refusedDownloadFromTable(key) {
  const link = page.locator(`#objects tr[data-key="${key}"] a`, { hasText: 'Download' });
  const downloaded = page.waitForEvent('download', { timeout: 10_000 }).then(d => d, () => null);
  const navigated = page
    .waitForURL(/\/download\?/, { timeout: 10_000 })
    .then(() => true, () => false);
  await link.click();
  const download = await Promise.race([downloaded, navigated.then(ok => (ok ? 'page' : null))]);
  if (download === 'page') {
    return { shown: true, status: null, message: await text('main p.error') };
  }
  // What the server answered (the same GET, with the page's session cookie).
  const href = await link.getAttribute('href');
  const answer = await page.request.get(new URL(href, page.url()).toString());
  const served = { status: answer.status(), error: /<p class="error"[^>]*>([^<]*)</.exec(await answer.text())?.[1] };
  if (download && typeof download === 'object') {
    return { shown: false, failure: await download.failure(), url: page.url(), served };
  }
  return { shown: false, failure: 'nothing happened', url: page.url(), served };
}

/** Open the object's details and click its Download button (a plain link, no `download` attribute). */
async function downloadFromDetails(bucket, key) {
  await page.goto(consoleUrl(`/buckets/${bucket}/object?key=${encodeURIComponent(key)}`));
  const [response] = await Promise.all([
    page.waitForResponse(r => r.url().includes('/download?')),
    page.click('#download'),
  ]);
  await page.waitForURL(/\/download\?/);
  await page.locator('main p.error').waitFor();
  return { status: response.status(), title: await text('main h1'), message: await text('main p.error') };
}

// ---------------------------------------------------------------------------
// the scenario

let failed = false;
const defects = []; // console problems found on the way (reported in the last test)

/** A step of the scenario: skipped once an earlier step failed (they build on each other). */
const step = fn => async t => {
  if (failed) {
    t.skip('an earlier step failed');
    return;
  }
  try {
    await fn(t);
  } catch (err) {
    failed = true;
    throw err;
  }
};

const TAG = crypto.randomBytes(3).toString('hex');
const BUCKET = `console-e2e-${TAG}`;
const USER = `console-user-${TAG}`;
const PASSWORD = `Pw-${crypto.randomBytes(6).toString('hex')}!`;
const POLICY = `bucket-${TAG}-oss-only`;
const KMS_OBJ = 'kms-object.txt';
const AES_OBJ = 'aes-object.txt';
const KMS_BODY = Buffer.from(`encrypted under the console CMK ${crypto.randomBytes(8).toString('hex')}\n`);
const AES_BODY = Buffer.from(`encrypted with AES256 ${crypto.randomBytes(8).toString('hex')}\n`);

const state = { accountId: '', cmk: '' };

describe('arca web console end to end (headless Chromium)', { timeout: 120_000 }, () => {
  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    fs.rmSync(path.join(SHOTS, 'zz-failure.png'), { force: true });
    try {
      await startServer();
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ],
      });
      context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
      context.setDefaultTimeout(15_000);
      context.setDefaultNavigationTimeout(15_000);
      page = await context.newPage();
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  after(async () => {
    if (failed) {
      if (page) {
        await page.screenshot({ path: path.join(SHOTS, 'zz-failure.png'), fullPage: true }).catch(() => {});
        console.error(`---- page at failure: ${page.url()} ----`);
      }
      console.error(`---- arca log tail (console port ${server.consolePort}) ----\n${tail()}\n---- end ----`);
    }
    try {
      if (browser) await browser.close();
    } finally {
      await stopServer();
    }
  });

  it('1. signs in with the root access key pair', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await page.goto(consoleUrl('/'));
    await page.waitForURL(/\/login$/); // not signed in: sent to the sign-in page
    await shot('01-sign-in.png');

    // A wrong secret is refused on the page.
    await page.fill('#access_key_id', ACCESS_KEY_ID);
    await page.fill('#access_key_secret', 'wrong-secret');
    await page.click('#login-key');
    await page.locator('#login-error').waitFor();
    assert.match(await text('#login-error'), /Wrong or inactive access key pair/);

    await signInWithKey(ACCESS_KEY_ID, ACCESS_KEY_SECRET);
    const who = await text('header .who');
    const m = /^root of (\S+)$/.exec(who);
    assert.ok(m, `header should say "root of <account id>", got ${JSON.stringify(who)}`);
    state.accountId = m[1];
  }));

  it('2. creates a CMK on the KMS page and reads its id from the keys table', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await page.click('header nav a[href="/kms"]');
    await page.waitForURL(/\/kms$/);
    await page.fill('#key-description', 'console-cmk');
    await page.fill('#key-alias', `alias/console-cmk-${TAG}`);
    await submit('#create-key', url => url.pathname === '/kms' && url.searchParams.has('notice'));

    // The id, from the table row carrying the alias given above.
    const row = page.locator('#keys tbody tr', { hasText: `alias/console-cmk-${TAG}` });
    assert.equal(await row.count(), 1, 'exactly one row has the new alias');
    state.cmk = await row.getAttribute('data-key-id');
    assert.ok(state.cmk, 'the row carries data-key-id');
    assert.equal(((await row.locator('td.state').textContent()) || '').trim(), 'Enabled');
    assert.equal(await row.locator('button[data-op="disable"]').count(), 1, 'an Enabled key offers Disable');
    assert.equal(await pageNotice(), `Key ${state.cmk} created.`);
    await shot('02-kms-keys.png');
  }));

  it('3. creates a bucket in the Create Bucket dialog with SSE-KMS under that CMK', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await page.click('header nav a[href="/buckets"]');
    await page.waitForURL(/\/buckets$/);
    await page.click('#create-bucket-open');
    await page.waitForURL(/\/buckets\?create=1$/);
    const dialog = page.locator('dialog#create-bucket');
    await dialog.waitFor({ state: 'visible' });

    await page.fill('#bucket-name', BUCKET);
    const region = await page.inputValue('#bucket-region');
    assert.ok(region, 'a region is preselected');
    await page.selectOption('#bucket-acl', 'private');
    await page.selectOption('#bucket-class', 'Standard');
    const kmsOptions = dialog.locator('.kms-options');
    assert.equal(await kmsOptions.isVisible(), false, 'the CMK choice is hidden until KMS is chosen');
    await page.check('#create-sse-KMS');
    await kmsOptions.waitFor({ state: 'visible' });
    // The new CMK is offered (with its description), and chosen.
    const option = page.locator(`#create-kms-key option[value="${state.cmk}"]`);
    assert.match((await option.textContent()) || '', /console-cmk/);
    await page.selectOption('#create-kms-key', state.cmk);
    assert.equal(await page.isChecked('#create-kms-sm4'), false);
    await dialog.screenshot({ path: path.join(SHOTS, '03-create-bucket-dialog.png') });

    await submit('#create-bucket-submit', url => url.pathname === `/buckets/${BUCKET}`);
    assert.equal(await pageNotice(), `Bucket ${BUCKET} created.`);

    // The list shows the bucket with its default encryption.
    await page.goto(consoleUrl('/buckets'));
    const row = page.locator('#buckets tbody tr', { hasText: BUCKET });
    assert.equal(((await row.locator('td.encryption').textContent()) || '').trim(), `KMS (${state.cmk})`);
    await shot('04-buckets-list.png');
  }));

  it('4. uploads a file through the page with the bucket default encryption', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    const notice = await uploadThroughPage(BUCKET, KMS_OBJ, KMS_BODY, '');
    assert.equal(notice, `Uploaded ${KMS_OBJ} (encryption: KMS).`);
    const row = page.locator(`#objects tr[data-key="${KMS_OBJ}"]`);
    assert.equal(((await row.locator('td').nth(3).textContent()) || '').trim(), 'KMS');
    await shot('05-bucket-objects.png');
  }));

  it('5. oss2 sees the object SSE-KMS under the CMK', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    const heads = await oss2Head(BUCKET, KMS_OBJ);
    const h = heads[KMS_OBJ];
    assert.equal(h.status, 200, JSON.stringify(h));
    assert.equal(h[SSE], 'KMS');
    assert.equal(h[SSE_KEY], state.cmk);
    assert.equal(h.etag, `"${md5Upper(KMS_BODY)}"`);
    assert.equal(h['x-oss-hash-crc64ecma'], crc64(KMS_BODY));
  }));

  it('6. Basic Settings: Configure → AES256 → Save', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await page.goto(consoleUrl(`/buckets/${BUCKET}`));
    await page.click('#basic-settings');
    await page.waitForURL(url => url.pathname === `/buckets/${BUCKET}/settings`);
    assert.equal(await text('#current-encryption'), `KMS (${state.cmk})`);
    assert.equal(await page.locator('details#configure-encryption').getAttribute('open'), null, 'Configure starts closed');
    await page.click('details#configure-encryption > summary');
    await page.locator('#save-encryption').waitFor({ state: 'visible' });
    // The form starts from the bucket's rule.
    assert.equal(await page.isChecked('#settings-sse-KMS'), true);
    assert.equal(await page.inputValue('#settings-kms-key'), state.cmk);
    await page.check('#settings-sse-AES256');
    await page.locator('details#configure-encryption .kms-options').waitFor({ state: 'hidden' });
    assert.match(
      await text('details#configure-encryption p.notice'),
      /existing objects keep the encryption they were written with/i,
    );
    await shot('06-basic-settings-configure.png');

    await submit('#save-encryption', url => url.searchParams.has('notice'));
    assert.equal(await pageNotice(), 'Server encryption saved. Existing objects keep their encryption.');
    assert.equal(await text('#current-encryption'), 'AES256');
  }));

  it('7. a second upload is AES256; the first object is still KMS under the CMK (oss2)', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    const notice = await uploadThroughPage(BUCKET, AES_OBJ, AES_BODY, '');
    assert.equal(notice, `Uploaded ${AES_OBJ} (encryption: AES256).`);
    const cell = key => page.locator(`#objects tr[data-key="${key}"] td`).nth(3);
    assert.equal(((await cell(AES_OBJ).textContent()) || '').trim(), 'AES256');
    assert.equal(((await cell(KMS_OBJ).textContent()) || '').trim(), 'KMS');

    const heads = await oss2Head(BUCKET, KMS_OBJ, AES_OBJ);
    assert.equal(heads[KMS_OBJ][SSE], 'KMS', JSON.stringify(heads));
    assert.equal(heads[KMS_OBJ][SSE_KEY], state.cmk);
    assert.equal(heads[AES_OBJ][SSE], 'AES256', JSON.stringify(heads));
    assert.equal(heads[AES_OBJ][SSE_KEY], null);

    // Object details of the KMS object.
    await page.click(`#objects tr[data-key="${KMS_OBJ}"] td a`);
    await page.waitForURL(url => url.pathname === `/buckets/${BUCKET}/object`);
    assert.equal(await text('#detail-encryption'), 'KMS');
    assert.equal(await text('#detail-cmk'), state.cmk);
    assert.ok(await text('#detail-key-version'), 'a key version is shown');
    assert.match(await text('#detail-etag'), new RegExp(md5Upper(KMS_BODY)));
    assert.equal(await text('#detail-crc64'), crc64(KMS_BODY));
    await shot('07-object-details.png');
  }));

  it('8. RAM: a user with oss:* on the bucket but no kms:Decrypt', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await page.click('header nav a[href="/ram"]');
    await page.waitForURL(/\/ram$/);
    await shot('08-ram.png');

    // The user, its console password and (shown once) an access key.
    await page.fill('#new-user', USER);
    await submit('#create-user', url => url.pathname === `/ram/users/${USER}`);
    assert.equal(await pageNotice(), `User ${USER} created.`);
    await page.fill('#console-password', PASSWORD);
    await submit('#set-password', url => url.searchParams.get('notice') === 'Saved.');
    await submit('#create-access-key', url => url.searchParams.has('new_key_id'));
    const newKeyId = await text('#new-key-id');
    assert.ok(newKeyId && (await text('#new-key-secret')), 'the new key and its secret are shown');
    assert.equal(await page.locator('#access-keys tbody tr', { hasText: newKeyId }).count(), 1);
    await page.goto(consoleUrl(`/ram/users/${USER}`));
    assert.equal(await page.locator('#new-key-secret').count(), 0, 'the secret is shown only once');

    // A policy with a // comment: refused inline, naming line/column and comments.
    await page.goto(consoleUrl('/ram'));
    const commented = [
      '{',
      '  "Version": "1",',
      '  // only this bucket',
      '  "Statement": [{"Effect": "Allow", "Action": ["oss:*"], "Resource": ["*"]}]',
      '}',
    ].join('\n');
    await page.fill('#policy-name', `${POLICY}-commented`);
    await page.fill('#policy-document', commented);
    await page.click('#create-policy');
    await page.locator('#policy-error').waitFor();
    const policyError = await text('#policy-error');
    assert.match(policyError, /line 3, column \d+/i, policyError);
    assert.match(policyError, /comment/i, policyError);
    assert.equal(await page.inputValue('#policy-document'), commented, 'the draft is kept for fixing');
    await page.locator('#policy-error').scrollIntoViewIfNeeded();
    await shot('09-ram-policy-error.png');

    // The real policy: oss:* on the bucket and its objects, nothing on KMS.
    const document = JSON.stringify({
      Version: '1',
      Statement: [{ Effect: 'Allow', Action: ['oss:*'], Resource: [`acs:oss:*:*:${BUCKET}`, `acs:oss:*:*:${BUCKET}/*`] }],
    }, null, 2);
    await page.fill('#policy-name', POLICY);
    await page.fill('#policy-document', document);
    await submit('#create-policy', url => url.pathname === `/ram/policies/${POLICY}`);
    assert.match(await text('#policy-in-force'), new RegExp(`acs:oss:\\*:\\*:${BUCKET}/\\*`));

    // Attach it to the user.
    await page.goto(consoleUrl(`/ram/users/${USER}`));
    await page.selectOption('#attach-policy', `Custom:${POLICY}`);
    await submit('#attach-policy-submit', url => url.searchParams.get('notice') === 'Saved.');
    assert.match(await text('#attached-policies'), new RegExp(`${POLICY} \\(Custom\\)`));
    await shot('10-ram-user.png');

    // The simulator agrees: GetObject allowed, kms:Decrypt not.
    await page.goto(consoleUrl('/ram'));
    await page.fill('#sim-user', USER);
    await page.fill('#sim-action', 'oss:GetObject');
    await page.fill('#sim-resource', `acs:oss:*:${state.accountId}:${BUCKET}/${KMS_OBJ}`);
    await page.click('#simulate');
    await page.locator('#simulate-result').waitFor();
    assert.match(await text('#simulate-result'), /^Allow/);
    await page.fill('#sim-user', USER);
    await page.fill('#sim-action', 'kms:Decrypt');
    await page.fill('#sim-resource', `acs:kms:*:${state.accountId}:key/${state.cmk}`);
    await page.click('#simulate');
    await page.locator('#simulate-result').waitFor();
    assert.match(await text('#simulate-result'), /^Implicit deny/);
  }));

  it('8b. as the RAM user: the KMS object is refused by kms, the AES256 object downloads', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await signOut();
    // A wrong password is refused.
    await page.fill('#account', state.accountId);
    await page.fill('#user', USER);
    await page.fill('#password', 'not-the-password');
    await page.click('#login-password');
    await page.locator('#login-error').waitFor();

    await signInWithPassword(state.accountId, USER, PASSWORD);
    assert.equal(await text('header .who'), `${USER} @ ${state.accountId}`);

    await page.goto(consoleUrl(`/buckets/${BUCKET}`));
    await page.locator(`#objects tr[data-key="${KMS_OBJ}"]`).waitFor();
    await page.locator(`#objects tr[data-key="${AES_OBJ}"]`).waitFor();

    // Download in the objects table.
    const got = await refusedDownloadFromTable(KMS_OBJ);
    if (!got.shown) {
      defects.push(
        `Objects table (/buckets/${BUCKET}), RAM user without kms:Decrypt clicks "Download" on ${KMS_OBJ}: ` +
          `expected the refusal page "${KMS_OBJ} cannot be downloaded: ${KMS_FORBIDDEN}"; got no message at all — ` +
          `the link carries the HTML \`download\` attribute, so Chromium treats the 403 page as a file and the ` +
          `download just fails (playwright: "${got.failure}"), the page stays at ${new URL(got.url).pathname}; ` +
          `the server did answer ${got.served.status} "${got.served.error}".`,
      );
    } else {
      assert.ok(got.message.includes(KMS_FORBIDDEN), got.message);
    }

    // The same refusal through the object details' Download button (a plain link).
    const refused = await downloadFromDetails(BUCKET, KMS_OBJ);
    assert.equal(refused.status, 403);
    assert.equal(refused.title, 'Download refused');
    assert.ok(refused.message.includes(KMS_FORBIDDEN), refused.message);
    assert.equal(refused.message, `${KMS_OBJ} cannot be downloaded: ${KMS_FORBIDDEN}`);
    await shot('11-user-download-refused-by-kms.png');

    // The AES256 object downloads, byte for byte.
    await page.goto(consoleUrl(`/buckets/${BUCKET}`));
    const ok = await downloadFromTable(AES_OBJ);
    assert.equal(ok.failure, null);
    assert.equal(ok.name, AES_OBJ);
    assert.ok(ok.body.equals(AES_BODY), `downloaded ${JSON.stringify(ok.body.toString())}`);
  }));

  it('9. as root, disabling the CMK stops downloads of the KMS object only', { timeout: STEP_TIMEOUT_MS }, step(async () => {
    await signOut();
    await signInWithKey(ACCESS_KEY_ID, ACCESS_KEY_SECRET);

    await page.click('header nav a[href="/kms"]');
    await page.waitForURL(/\/kms$/);
    const row = () => page.locator(`#keys tr[data-key-id="${state.cmk}"]`);
    await submit(`#keys tr[data-key-id="${state.cmk}"] button[data-op="disable"]`, url =>
      url.pathname === `/kms/keys/${state.cmk}` && url.searchParams.has('notice'));
    assert.equal(await text('#key-state'), 'Disabled');
    await page.goto(consoleUrl('/kms'));
    assert.equal(((await row().locator('td.state').textContent()) || '').trim(), 'Disabled');
    assert.equal(await row().locator('button[data-op="enable"]').count(), 1, 'a Disabled key offers Enable');
    await shot('12-kms-key-disabled.png');

    // A disabled key is no longer offered for new buckets.
    await page.goto(consoleUrl('/buckets?create=1'));
    assert.equal(await page.locator(`#create-kms-key option[value="${state.cmk}"]`).count(), 0);

    // Download in the objects table.
    await page.goto(consoleUrl(`/buckets/${BUCKET}`));
    const got = await refusedDownloadFromTable(KMS_OBJ);
    if (!got.shown) {
      defects.push(
        `Objects table (/buckets/${BUCKET}), root clicks "Download" on ${KMS_OBJ} after its CMK was disabled: ` +
          `expected the error page saying the key is disabled; got a silently failed download ` +
          `(playwright: "${got.failure}") and no message (same \`download\` attribute problem); ` +
          `the server did answer ${got.served.status} "${got.served.error}".`,
      );
    } else {
      assert.match(got.message, /disabled/i);
    }

    // Through the object details' Download button.
    const refused = await downloadFromDetails(BUCKET, KMS_OBJ);
    assert.ok(refused.status >= 400, `status ${refused.status}`);
    assert.match(refused.message, /disabled/i, refused.message);
    assert.ok(refused.message.startsWith(`${KMS_OBJ} cannot be downloaded: `), refused.message);
    await shot('13-root-download-key-disabled.png');

    // The AES256 object still downloads.
    await page.goto(consoleUrl(`/buckets/${BUCKET}`));
    const ok = await downloadFromTable(AES_OBJ);
    assert.equal(ok.failure, null);
    assert.ok(ok.body.equals(AES_BODY), `downloaded ${JSON.stringify(ok.body.toString())}`);
  }));

  it('10. screenshots of the main pages were saved', step(async () => {
    for (const name of [
      '01-sign-in.png', '02-kms-keys.png', '03-create-bucket-dialog.png', '04-buckets-list.png',
      '05-bucket-objects.png', '06-basic-settings-configure.png', '07-object-details.png', '08-ram.png',
      '10-ram-user.png',
    ]) {
      const file = path.join(SHOTS, name);
      assert.ok(fs.existsSync(file) && fs.statSync(file).size > 1000, `${file} missing or empty`);
    }
  }));

  it('no console defects were found along the way', () => {
    assert.deepEqual(defects, [], `console defects:\n- ${defects.join('\n- ')}`);
  });
});
