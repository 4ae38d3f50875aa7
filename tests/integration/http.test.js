'use strict';
// The HTTP side of PROTOCOL.md section 2: the upgrade handshake and its
// refusals, namespace, allowed origins, /health, OPTIONS, the banner, and bad
// or slow requests. Every refusal is followed by a check that the same server
// still serves a fresh, normal WebSocket client.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture, upgradeRequest } = require('./harness');
const { acceptFor, newKey, httpExchange, httpRequest, rawWs, tracker, servesFresh } = require('./wire');

const GOOD = 'https://good.example';
const EVIL = 'https://evil.example';

async function start(t, name = 'proto_app.lua') {
  const server = await startServer(fixture(name));
  t.after(() => server.stop());
  return server;
}

// A refusal: the exact status line, a text/plain body, and the socket closed.
function assertRefused(r, statusLine, what) {
  assert.strictEqual(r.statusLine, statusLine, `${what}: got head\n${r.head}`);
  assert.strictEqual(r.closed, true, `${what}: the server closes the socket after the refusal`);
  assert.ok(!/^sec-websocket-accept:/im.test(r.head), `${what}: a refusal carries no Sec-WebSocket-Accept`);
}

// The stats /health reports, as JSON.
async function health(port, path = '/health', headers = {}) {
  const r = await httpExchange(port, httpRequest('GET', path, headers));
  assert.strictEqual(r.statusLine, 'HTTP/1.1 200 OK', `GET ${path}: ${r.head}`);
  assert.strictEqual(r.headers['content-type'], 'application/json');
  assert.strictEqual(Number(r.headers['content-length']), r.bodyBytes.length, 'Content-Length is the body length');
  return { r, json: JSON.parse(r.body) };
}

// ---------------------------------------------------------------- handshake

test('a valid upgrade gets 101 with the RFC 6455 Sec-WebSocket-Accept', async (t) => {
  const track = tracker(t); // registered first: the raw client goes before the server stops
  const server = await start(t);
  assert.strictEqual(acceptFor('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'the test computes the RFC sample');

  const raw = track(await rawWs(server.port, { key: 'dGhlIHNhbXBsZSBub25jZQ==' }));
  const sample = raw.head;
  assert.strictEqual(sample.statusLine, 'HTTP/1.1 101 Switching Protocols', sample.headerLines.join('\n'));
  assert.strictEqual(sample.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.strictEqual(sample.headers.upgrade.toLowerCase(), 'websocket');
  assert.match(sample.headers.connection, /\bupgrade\b/i);
  // The upgraded socket speaks WebSocket at once.
  raw.sendText(JSON.stringify({ event: 'echo', data: 'after 101' }));
  assert.deepStrictEqual(await raw.nextJson(), { event: 'echo', data: 'after 101' });
  assert.strictEqual(raw.isClosed, false, 'the upgraded socket stays open');

  for (let i = 0; i < 3; i++) {
    const key = newKey();
    const r = await httpExchange(server.port, upgradeRequest({ key }), { untilHead: true });
    assert.strictEqual(r.statusLine, 'HTTP/1.1 101 Switching Protocols', r.head);
    assert.strictEqual(r.headers['sec-websocket-accept'], acceptFor(key), `key ${key}`);
  }
  await servesFresh(server.port, 'the handshakes');
});

test('a missing Sec-WebSocket-Key gets 400', async (t) => {
  const server = await start(t);
  const r = await httpExchange(server.port, upgradeRequest({ key: null }));
  assertRefused(r, 'HTTP/1.1 400 Bad Request', 'no key');
  await servesFresh(server.port, 'a missing key');
});

test('a Sec-WebSocket-Key that is not base64 of 16 bytes gets 400', async (t) => {
  const server = await start(t);
  const bad = {
    'too short': 'abc',
    'base64 of 15 bytes': Buffer.alloc(15, 7).toString('base64'),
    'base64 of 17 bytes': Buffer.alloc(17, 7).toString('base64'),
    'base64 of 18 bytes': Buffer.alloc(18, 7).toString('base64'),
    'not base64 at all': '!!!!!!!!!!!!!!!!!!!!!!==',
    empty: '',
  };
  for (const [what, key] of Object.entries(bad)) {
    const r = await httpExchange(server.port, upgradeRequest({ key }));
    assertRefused(r, 'HTTP/1.1 400 Bad Request', `key ${what} (${JSON.stringify(key)})`);
  }
  await servesFresh(server.port, 'bad keys');
});

test('Sec-WebSocket-Version 8 gets 426 with Sec-WebSocket-Version: 13', async (t) => {
  const server = await start(t);
  const r = await httpExchange(server.port, upgradeRequest({ version: '8' }));
  assertRefused(r, 'HTTP/1.1 426 Upgrade Required', 'version 8');
  assert.strictEqual(r.headers['sec-websocket-version'], '13', r.head);
  await servesFresh(server.port, 'version 8');
});

test('an upgrade without Connection: Upgrade gets 400', async (t) => {
  const server = await start(t);
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const variants = {
    'no Connection header':
      `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    'Connection: keep-alive':
      `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  };
  for (const [what, req] of Object.entries(variants)) {
    const r = await httpExchange(server.port, req);
    assertRefused(r, 'HTTP/1.1 400 Bad Request', what);
  }
  await servesFresh(server.port, 'upgrades without Connection: Upgrade');
});

test('refused upgrades leave nothing registered', async (t) => {
  const server = await start(t);
  await httpExchange(server.port, upgradeRequest({ key: null }));
  await httpExchange(server.port, upgradeRequest({ version: '8' }));
  await httpExchange(server.port, upgradeRequest({ extra: `Origin: ${EVIL}\r\n` }));
  const { json } = await health(server.port);
  assert.strictEqual(json.totalConnections, 0, JSON.stringify(json));
  assert.strictEqual(json.activeConnections, 0, JSON.stringify(json));
  assert.strictEqual(json.wsConnections, 0, JSON.stringify(json));
});

// ---------------------------------------------------------------- namespace

test('namespace "/chat": /chat upgrades, /other gets 404', async (t) => {
  const server = await start(t, 'proto_ns.lua');
  for (const path of ['/chat', '/chat?token=abc']) {
    const key = newKey();
    const r = await httpExchange(server.port, upgradeRequest({ path, key }), { untilHead: true });
    assert.strictEqual(r.statusLine, 'HTTP/1.1 101 Switching Protocols', `${path}: ${r.head}`);
    assert.strictEqual(r.headers['sec-websocket-accept'], acceptFor(key));
  }
  for (const path of ['/other', '/', '/chat/room', '/chatx']) {
    const r = await httpExchange(server.port, upgradeRequest({ path }));
    assertRefused(r, 'HTTP/1.1 404 Not Found', `upgrade to ${path}`);
  }
  // A real client in the namespace works end to end.
  const c = await connect(server.port, { path: '/chat' });
  c.emit('echo', { ns: true });
  assert.deepStrictEqual(await c.next('echo'), { event: 'echo', data: { ns: true } });
  await c.close();
});

test('the default namespace "/" accepts any path', async (t) => {
  const server = await start(t);
  for (const path of ['/', '/chat', '/any/deep/path', '/x?y=1']) {
    const key = newKey();
    const r = await httpExchange(server.port, upgradeRequest({ path, key }), { untilHead: true });
    assert.strictEqual(r.statusLine, 'HTTP/1.1 101 Switching Protocols', `${path}: ${r.head}`);
    assert.strictEqual(r.headers['sec-websocket-accept'], acceptFor(key));
  }
  const c = await connect(server.port, { path: '/some/where' });
  c.emit('echo', 'deep');
  assert.deepStrictEqual(await c.next('echo'), { event: 'echo', data: 'deep' });
  await c.close();
});

// ---------------------------------------------------------------- origins

test('allowedOrigins: an unlisted Origin gets 403', async (t) => {
  const server = await start(t);
  const r = await httpExchange(server.port, upgradeRequest({ extra: `Origin: ${EVIL}\r\n` }));
  assertRefused(r, 'HTTP/1.1 403 Forbidden', `Origin ${EVIL}`);
  assert.strictEqual(r.headers['access-control-allow-origin'], undefined);
  await servesFresh(server.port, 'a forbidden origin');
});

test('allowedOrigins: the listed Origin gets 101 with Access-Control-Allow-Origin', async (t) => {
  const server = await start(t);
  const key = newKey();
  const r = await httpExchange(server.port, upgradeRequest({ key, extra: `Origin: ${GOOD}\r\n` }), { untilHead: true });
  assert.strictEqual(r.statusLine, 'HTTP/1.1 101 Switching Protocols', r.head);
  assert.strictEqual(r.headers['sec-websocket-accept'], acceptFor(key));
  assert.strictEqual(r.headers['access-control-allow-origin'], GOOD, r.head);
  // And a ws client sending that Origin exchanges messages.
  const c = await connect(server.port, { headers: { Origin: GOOD } });
  c.emit('echo', 'good');
  assert.deepStrictEqual(await c.next('echo'), { event: 'echo', data: 'good' });
  await c.close();
});

test('allowedOrigins: no Origin header is accepted', async (t) => {
  const server = await start(t);
  const key = newKey();
  const r = await httpExchange(server.port, upgradeRequest({ key }), { untilHead: true });
  assert.strictEqual(r.statusLine, 'HTTP/1.1 101 Switching Protocols', r.head);
  assert.strictEqual(r.headers['sec-websocket-accept'], acceptFor(key));
  assert.strictEqual(r.headers['access-control-allow-origin'], undefined, 'nothing to echo without an Origin');
  await servesFresh(server.port, 'no origin');
});

// ---------------------------------------------------------------- /health

const STATS_FIELDS = [
  'totalConnections', 'activeConnections', 'totalMessagesReceived', 'totalMessagesSent', 'totalRooms',
  'uptime', 'wsConnections', 'tcpConnections', 'rateLimiterEntries',
];

test('GET /health: 200 application/json with status ok and every getStats field', async (t) => {
  const server = await start(t);
  const { json } = await health(server.port);
  assert.strictEqual(json.status, 'ok');
  for (const f of [...STATS_FIELDS, 'uptimeSeconds', 'memoryMB']) {
    assert.strictEqual(typeof json[f], 'number', `${f} is a number in ${JSON.stringify(json)}`);
    assert.ok(json[f] >= 0, `${f} >= 0`);
  }
  assert.strictEqual(typeof json.memoryUsage, 'object', JSON.stringify(json));
  assert.ok(json.memoryUsage.rss > 0, `memoryUsage.rss: ${JSON.stringify(json.memoryUsage)}`);
  assert.ok(json.memoryUsage.luaHeap > 0, `memoryUsage.luaHeap: ${JSON.stringify(json.memoryUsage)}`);
  assert.ok(Math.abs(json.memoryMB - json.memoryUsage.rss / 1048576) < 0.02, `memoryMB ${json.memoryMB} vs rss ${json.memoryUsage.rss}`);
  assert.strictEqual(json.uptimeSeconds, Math.floor(json.uptime / 1000), `uptimeSeconds ${json.uptimeSeconds} vs uptime ${json.uptime}`);
  assert.strictEqual(json.activeConnections, 0);
  assert.strictEqual(json.totalConnections, 0);
});

test('/health counts a connected client; /health?x=1 matches too', async (t) => {
  const server = await start(t);
  const c = await connect(server.port);
  c.emit('echo', 1);
  await c.next('echo');
  for (const path of ['/health', '/health?x=1']) {
    const { json } = await health(server.port, path);
    assert.strictEqual(json.status, 'ok', path);
    assert.strictEqual(json.activeConnections, 1, `${path}: ${JSON.stringify(json)}`);
    assert.strictEqual(json.wsConnections, 1, `${path}: ${JSON.stringify(json)}`);
    assert.strictEqual(json.tcpConnections, 0, `${path}: ${JSON.stringify(json)}`);
    assert.strictEqual(json.totalConnections, 1, `${path}: ${JSON.stringify(json)}`);
    assert.strictEqual(json.totalMessagesReceived, 1, `${path}: ${JSON.stringify(json)}`);
    assert.strictEqual(json.totalMessagesSent, 1, `${path}: ${JSON.stringify(json)}`);
  }
  await c.close();
  // Once the client is gone, the count goes back down.
  let json;
  for (let i = 0; i < 50; i++) {
    ({ json } = await health(server.port));
    if (json.activeConnections === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.strictEqual(json.activeConnections, 0, JSON.stringify(json));
  assert.strictEqual(json.totalConnections, 1, JSON.stringify(json));
});

test('/health with an allowed Origin carries the CORS headers; an unlisted one does not', async (t) => {
  const server = await start(t);
  const { r } = await health(server.port, '/health', { Origin: GOOD });
  assert.strictEqual(r.headers['access-control-allow-origin'], GOOD, r.head);
  assert.strictEqual(r.headers['access-control-allow-methods'], 'GET, OPTIONS', r.head);
  assert.strictEqual(r.headers['access-control-max-age'], '86400', r.head);
  const { r: evil } = await health(server.port, '/health', { Origin: EVIL });
  assert.strictEqual(evil.headers['access-control-allow-origin'], undefined, evil.head);
});

test('healthEndpoint = false: /health gets the banner', async (t) => {
  const server = await start(t, 'proto_nohealth.lua');
  const r = await httpExchange(server.port, httpRequest('GET', '/health'));
  assert.strictEqual(r.statusLine, 'HTTP/1.1 200 OK', r.head);
  assert.strictEqual(r.headers['content-type'], 'text/plain');
  assert.match(r.body, /stelar-lua/);
  assert.throws(() => JSON.parse(r.body), 'the banner is not the health JSON');
  await servesFresh(server.port, 'GET /health');
});

test('healthEndpoint = "/status" serves health there; /health is the banner', async (t) => {
  const server = await start(t, 'proto_ns.lua');
  const { json } = await health(server.port, '/status');
  assert.strictEqual(json.status, 'ok');
  for (const f of STATS_FIELDS) assert.strictEqual(typeof json[f], 'number', `${f} in ${JSON.stringify(json)}`);
  const { json: q } = await health(server.port, '/status?probe=1');
  assert.strictEqual(q.status, 'ok');
  const r = await httpExchange(server.port, httpRequest('GET', '/health'));
  assert.strictEqual(r.statusLine, 'HTTP/1.1 200 OK', r.head);
  assert.strictEqual(r.headers['content-type'], 'text/plain');
  assert.match(r.body, /stelar-lua/);
});

// ---------------------------------------------------------------- OPTIONS, banner

test('OPTIONS gets 204 with the CORS headers for an allowed Origin', async (t) => {
  const server = await start(t);
  for (const path of ['/health', '/']) {
    const r = await httpExchange(server.port, httpRequest('OPTIONS', path, {
      Origin: GOOD, 'Access-Control-Request-Method': 'GET',
    }));
    assert.strictEqual(r.statusLine, 'HTTP/1.1 204 No Content', `${path}: ${r.head}`);
    assert.strictEqual(r.headers['access-control-allow-origin'], GOOD, r.head);
    assert.strictEqual(r.headers['access-control-allow-methods'], 'GET, OPTIONS', r.head);
    assert.strictEqual(r.headers['access-control-max-age'], '86400', r.head);
    assert.strictEqual(r.body, '', '204 has no body');
  }
  const evil = await httpExchange(server.port, httpRequest('OPTIONS', '/health', { Origin: EVIL }));
  assert.strictEqual(evil.statusLine, 'HTTP/1.1 204 No Content', evil.head);
  assert.strictEqual(evil.headers['access-control-allow-origin'], undefined, evil.head);
});

test('any other GET gets 200 text/plain with the banner', async (t) => {
  const server = await start(t);
  for (const path of ['/', '/index.html', '/healthz', '/chat?x=1']) {
    const r = await httpExchange(server.port, httpRequest('GET', path));
    assert.strictEqual(r.statusLine, 'HTTP/1.1 200 OK', `${path}: ${r.head}`);
    assert.strictEqual(r.headers['content-type'], 'text/plain', r.head);
    assert.match(r.body, /stelar-lua/, `${path}: body ${JSON.stringify(r.body)}`);
    assert.strictEqual(Number(r.headers['content-length']), r.bodyBytes.length);
    assert.strictEqual(r.closed, true);
  }
  await servesFresh(server.port, 'plain GETs');
});

// ---------------------------------------------------------------- bad and slow requests

test('garbage instead of HTTP gets 400 and the socket is closed', async (t) => {
  const server = await start(t);
  const inputs = [
    Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n', 'latin1'), // a TLS hello
    Buffer.from('HELLO THERE\r\n\r\n'),
    Buffer.from('GET / HTTP/9.9 nonsense\r\n\r\n'),
    Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]),
  ];
  for (const bytes of inputs) {
    const r = await httpExchange(server.port, bytes);
    assertRefused(r, 'HTTP/1.1 400 Bad Request', `garbage ${JSON.stringify(bytes.toString('latin1'))}`);
  }
  await servesFresh(server.port, 'garbage');
});

test('a request that never completes is closed after connectTimeout (300 ms)', async (t) => {
  const server = await start(t);
  const [half, nothing] = await Promise.all([
    httpExchange(server.port, 'GET /hea', { ms: 4000 }),
    httpExchange(server.port, null, { ms: 4000 }),
  ]);
  for (const [what, r] of [['half a request line', half], ['nothing at all', nothing]]) {
    assert.strictEqual(r.closed, true, `${what}: closed`);
    assert.ok(r.closedAfter >= 250, `${what}: closed after ${r.closedAfter} ms, not before connectTimeout`);
    assert.ok(r.closedAfter <= 2000, `${what}: closed after ${r.closedAfter} ms, within ~2 s`);
  }
  await servesFresh(server.port, 'timed-out handshakes');
});

test('oversized headers (> 16 KiB) sent in pieces get 431', async (t) => {
  const server = await start(t);
  const r = await httpExchange(server.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(17 * 1024)}`);
  assertRefused(r, 'HTTP/1.1 431 Request Header Fields Too Large', 'an unfinished 17 KiB header');
  await servesFresh(server.port, 'an oversized header');
});

test('oversized headers (> 16 KiB) in a complete request get 431', async (t) => {
  const server = await start(t);
  const big = `X-Big: ${'a'.repeat(17 * 1024)}\r\n`;
  const plain = await httpExchange(server.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n${big}\r\n`, { ms: 1000 });
  assertRefused(plain, 'HTTP/1.1 431 Request Header Fields Too Large', 'a complete GET with a 17 KiB header');
  const many = Array.from({ length: 40 }, (_, i) => `X-H${i}: ${'b'.repeat(500)}\r\n`).join('');
  const upgrade = await httpExchange(server.port, upgradeRequest({ extra: many }), { ms: 1000 });
  assertRefused(upgrade, 'HTTP/1.1 431 Request Header Fields Too Large', 'an upgrade with 20 KiB of headers');
  await servesFresh(server.port, 'oversized complete requests');
});
