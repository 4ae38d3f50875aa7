'use strict';
// Headless Chromium (Debian's package) against stelar-lua with TLS and
// permessage-deflate (issue 7): a page on https://127.0.0.1:<port>, served
// here by node:https with the same self-signed certificate, opens the
// browser's own WebSocket to wss://127.0.0.1:<stelar port>, sends a 2 KB
// repetitive JSON event and gets the server's echo, which says whether the
// server sees the connection as compressed.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { makeCert, startApp } = require('./tlshelp');
const { withTimeout } = require('./harness');

const CHROMIUM = '/usr/bin/chromium';

let skipReason = null;
let playwright = null;
let dir;
let cert;

// scripts/setup --tests installs Debian's chromium; a machine without it
// (a developer's, say) skips this test and says why.
function ensureChromium() {
  if (!fs.existsSync(CHROMIUM)) skipReason = `${CHROMIUM} is missing: run scripts/setup --tests`;
}

before(() => {
  ensureChromium();
  if (skipReason) return;
  try {
    playwright = require('playwright-core');
  } catch (e) {
    skipReason = `npm package playwright-core is not installed (npm ci in tests/): ${e.message}`;
    return;
  }
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stelar-chromium-'));
  cert = makeCert(dir);
}, { timeout: 600000 });

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function pageHtml(wsPort, payload, repeats) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>stelar-lua wss test</title></head>
<body><pre id="out">running</pre>
<script>
(function () {
  const payload = ${JSON.stringify(payload)};
  const result = { replies: [], errors: [] };
  const ws = new WebSocket('wss://127.0.0.1:${wsPort}/');
  ws.onopen = function () {
    result.extensions = ws.extensions;
    ws.send(JSON.stringify({ event: 'echoinfo', data: payload }));
    for (let i = 0; i < ${repeats}; i++) {
      ws.send(JSON.stringify({ event: 'echo', data: { seq: i, items: payload.items } }));
    }
  };
  ws.onmessage = function (e) {
    result.replies.push(JSON.parse(e.data));
    if (result.replies.length === ${repeats} + 1) {
      ws.close(1000, 'done');
    }
  };
  ws.onerror = function () { result.errors.push('error event'); };
  ws.onclose = function (e) {
    result.closeCode = e.code;
    window.__result = result;
    document.getElementById('out').textContent = 'done';
  };
})();
</script></body></html>`;
}

test('headless Chromium: the browser WebSocket exchanges compressed messages over wss://', { timeout: 60000 }, async (t) => {
  if (skipReason) {
    t.skip(skipReason);
    return;
  }
  const server = await startApp(t, { TLS_CERT: cert.cert, TLS_KEY: cert.key });

  // A 2 KB repetitive JSON payload.
  const items = [];
  while (JSON.stringify(items).length < 2048) items.push({ user: 'alice', room: 'general', text: 'hello from chromium' });
  const payload = { items };
  assert.ok(JSON.stringify(payload).length >= 2048);
  const repeats = 10;

  // The page, on its own HTTPS port with the same certificate.
  const html = pageHtml(server.port, payload, repeats);
  const web = https.createServer({ cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    web.closeAllConnections();
    web.close(() => resolve());
  }));
  const webPort = web.address().port;

  const userDataDir = fs.mkdtempSync(path.join(dir, 'profile-'));
  const context = await playwright.chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    timeout: 20000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
  t.after(() => withTimeout(context.close(), 10000, 'chromium to close').catch(() => {}));

  const page = context.pages()[0] || await context.newPage();
  await page.goto(`https://127.0.0.1:${webPort}/`, { timeout: 10000 });
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 15000 });
  const result = await page.evaluate(() => window.__result);

  assert.deepStrictEqual(result.errors, [], `browser errors; server log:\n${server.logs()}`);
  assert.match(result.extensions || '', /permessage-deflate/, `negotiated extensions: "${result.extensions}"`);
  assert.strictEqual(result.replies.length, repeats + 1, JSON.stringify(result).slice(0, 500));

  const info = result.replies.find((r) => r.event === 'echoinfo');
  assert.ok(info, 'the echoinfo reply arrived');
  assert.deepStrictEqual(info.data.data, payload, 'the 2 KB payload came back intact');
  assert.strictEqual(info.data.compressed, true, 'the server sees ctx.clientInfo.compressed');
  assert.strictEqual(info.data.secure, true, 'the server sees ctx.clientInfo.secure');
  assert.strictEqual(info.data.protocol, 'ws');

  // Chromium keeps its compression context between messages: every echo decodes.
  const echoes = result.replies.filter((r) => r.event === 'echo');
  assert.deepStrictEqual(echoes.map((r) => r.data.seq), Array.from({ length: repeats }, (_, i) => i));
  for (const r of echoes) assert.deepStrictEqual(r.data.items, items);
  assert.strictEqual(result.closeCode, 1000);
  server.alive();
});
