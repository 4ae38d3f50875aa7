'use strict';
// TLS on both listeners (issue 7): wss:// and HTTPS on the HTTP port, TLS on
// the binary TCP port, the minimum version, ALPN, failed handshakes (counted,
// never registered) and certificates that cannot be used at start-up.
// The certificate is self-signed, made here with openssl.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  APP, makeCert, startApp, tracker, wsConnect, tlsConnect, httpsGet,
} = require('./tlshelp');
const { runToExit, rawExchange } = require('./harness');
const { T, TcpClient } = require('./tcpwire');

let dir;
let cert;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stelar-tls-'));
  cert = makeCert(dir);
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function tlsEnv(extra = {}) {
  return { TLS_CERT: cert.cert, TLS_KEY: cert.key, ...extra };
}

async function stats(client) {
  const r = await client.ack('stats', null);
  assert.ok(r.data && typeof r.data.tlsHandshakeFailures === 'number', `stats reply: ${JSON.stringify(r)}`);
  return r.data;
}

test('wss:// with the ws client: events both ways, clientInfo.secure, getConfig().tls', async (t) => {
  const server = await startApp(t, tlsEnv());
  const track = tracker(t);
  const c = track(await wsConnect(`wss://127.0.0.1:${server.port}/`));
  assert.ok(['TLSv1.2', 'TLSv1.3'].includes(c.ws._socket.getProtocol()), 'the WebSocket runs over TLS 1.2+');

  c.emit('echo', { hello: 'tls', list: [1, 2, 3], nested: { ok: true } });
  assert.deepStrictEqual((await c.next('echo')).data, { hello: 'tls', list: [1, 2, 3], nested: { ok: true } });

  // Larger than one TLS record (16 KB) both ways.
  const big = 'stelar over tls '.repeat(4000);
  c.emit('echo', big);
  assert.strictEqual((await c.next('echo', 4000)).data, big);

  const info = (await c.ack('info', null)).data;
  assert.strictEqual(info.secure, true, `clientInfo: ${JSON.stringify(info)}`);
  assert.strictEqual(info.protocol, 'ws');
  assert.strictEqual(info.compressed, false, 'no permessage-deflate was offered');
  assert.strictEqual(info.configTls, true, 'getConfig().tls');

  // A second client gets broadcasts from the first over its own TLS session.
  const d = track(await wsConnect(`wss://127.0.0.1:${server.port}/`));
  c.emit('shout', { from: 'c' });
  assert.deepStrictEqual((await d.next('shouted')).data, { from: 'c' });
  assert.deepStrictEqual((await c.next('shouted')).data, { from: 'c' });

  // The port speaks only TLS: a cleartext ws:// client is not served.
  await assert.rejects(wsConnect(`ws://127.0.0.1:${server.port}/`, { ms: 4000 }));
  server.alive();
});

test('TLS 1.2 or later; ALPN http/1.1 offered is selected', async (t) => {
  const server = await startApp(t, tlsEnv());
  const track = tracker(t);
  for (const port of [server.port, server.tcpPort]) {
    const s = track(await tlsConnect(port, { ALPNProtocols: ['http/1.1'] }));
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(s.getProtocol()), `negotiated ${s.getProtocol()} on ${port}`);
    assert.strictEqual(s.alpnProtocol, 'http/1.1', `ALPN on port ${port}`);
    s.destroy();

    const s2 = track(await tlsConnect(port, { ALPNProtocols: ['h2', 'http/1.1'] }));
    assert.strictEqual(s2.alpnProtocol, 'http/1.1', 'http/1.1 picked out of h2, http/1.1');
    s2.destroy();

    // TLS 1.2 exactly is accepted (it is the minimum, not excluded).
    const s3 = track(await tlsConnect(port, { maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }));
    assert.strictEqual(s3.getProtocol(), 'TLSv1.2');
    assert.strictEqual(s3.alpnProtocol, 'http/1.1');
    s3.destroy();
  }
  server.alive();
});

test('HTTPS: GET /health and the banner over TLS', async (t) => {
  const server = await startApp(t, tlsEnv());
  const health = await httpsGet(server.port, '/health');
  assert.strictEqual(health.status, 200, health.body);
  assert.match(health.headers['content-type'], /application\/json/);
  const body = JSON.parse(health.body);
  assert.strictEqual(body.status, 'ok');
  assert.strictEqual(typeof body.tlsHandshakeFailures, 'number', `health: ${health.body}`);
  assert.strictEqual(body.tlsHandshakeFailures, 0);

  const banner = await httpsGet(server.port, '/');
  assert.strictEqual(banner.status, 200);
  assert.match(banner.body, /stelar/);
  server.alive();
});

test('raw TLS client on the TCP port: CONNECT first, then an echo round trip', async (t) => {
  const server = await startApp(t, tlsEnv());
  const track = tracker(t);
  const sock = track(await tlsConnect(server.tcpPort));
  const c = new TcpClient(sock);

  const first = await c.next();
  assert.strictEqual(first.type, T.CONNECT, `first frame type ${first.type} (${first.event})`);
  assert.ok(first.payload.length > 0, 'CONNECT carries the client id');

  c.emit('echo', { over: 'tls', n: 42 });
  const echo = await c.next((f) => f.type === T.JSON && f.event === 'echo');
  assert.deepStrictEqual(JSON.parse(echo.payload.toString()), { over: 'tls', n: 42 });

  // A frame larger than a TLS record, split over several records.
  const big = 'x'.repeat(40000);
  c.emit('echo', big);
  const bigEcho = await c.next((f) => f.type === T.JSON && f.event === 'echo', 4000);
  assert.strictEqual(JSON.parse(bigEcho.payload.toString()), big);

  c.emit('info', null);
  const info = JSON.parse((await c.next((f) => f.type === T.JSON && f.event === 'info')).payload.toString());
  assert.strictEqual(info.secure, true, `clientInfo over TLS TCP: ${JSON.stringify(info)}`);
  assert.strictEqual(info.protocol, 'tcp');
  assert.strictEqual(info.compressed, false);
  server.alive();
});

test('garbage instead of a ClientHello: closed, counted, never registered; the server keeps serving', async (t) => {
  const server = await startApp(t, tlsEnv());
  const track = tracker(t);
  const good = track(await wsConnect(`wss://127.0.0.1:${server.port}/`));
  const before = await stats(good);
  assert.strictEqual(before.tlsHandshakeFailures, 0);

  const garbage = [
    [server.port, Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    [server.port, Buffer.concat([Buffer.from([0x47]), crypto.randomBytes(511)])],
    // A TLS handshake record header whose body is not a ClientHello.
    [server.port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(64, 0xee)])],
    [server.tcpPort, Buffer.concat([Buffer.from([0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x04]), Buffer.from('echo{}{}{}')])],
  ];
  for (const [port, bytes] of garbage) {
    const r = await rawExchange(port, bytes, { ms: 4000 });
    assert.strictEqual(r.closed, true, `the server kept a garbage client on port ${port} open`);
    // Whatever came back is a TLS alert (or nothing), never a registration.
    if (r.data.length) assert.strictEqual(r.data[0], 0x15, `answer to garbage: ${r.data.toString('hex').slice(0, 40)}`);
  }

  const afterStats = await stats(good);
  assert.strictEqual(afterStats.tlsHandshakeFailures, before.tlsHandshakeFailures + garbage.length,
    `tlsHandshakeFailures ${before.tlsHandshakeFailures} -> ${afterStats.tlsHandshakeFailures}`);
  assert.strictEqual(afterStats.active, before.active, 'activeConnections unchanged');
  assert.strictEqual(afterStats.total, before.total, 'totalConnections unchanged');
  assert.strictEqual(afterStats.connections, before.connections, 'onConnection never ran for them');
  assert.match(server.logs(), /TLS[^\n]*handshake[^\n]*fail/i, 'the failed handshake is logged');

  // /health shows the counter too.
  const health = JSON.parse((await httpsGet(server.port, '/health')).body);
  assert.strictEqual(health.tlsHandshakeFailures, garbage.length);

  // Still serving: the old client, a new wss client and a TLS TCP client.
  good.emit('echo', 'still here');
  assert.strictEqual((await good.next('echo')).data, 'still here');
  const fresh = track(await wsConnect(`wss://127.0.0.1:${server.port}/`));
  fresh.emit('echo', 'fresh');
  assert.strictEqual((await fresh.next('echo')).data, 'fresh');
  const tcp = new TcpClient(track(await tlsConnect(server.tcpPort)));
  assert.strictEqual((await tcp.next()).type, T.CONNECT);
  server.alive();
});

test('a TLS 1.1-only client is refused', async (t) => {
  const server = await startApp(t, tlsEnv());
  const track = tracker(t);
  const good = track(await wsConnect(`wss://127.0.0.1:${server.port}/`));
  const before = await stats(good);
  for (const port of [server.port, server.tcpPort]) {
    // SECLEVEL=0 lets this client's OpenSSL offer TLS 1.1 at all, so that
    // the refusal is the server's (a protocol_version alert).
    const err = await tlsConnect(port, {
      minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0',
    }).then((s) => { s.destroy(); return null; }, (e) => e);
    assert.ok(err, `a TLS 1.1 handshake succeeded on port ${port}`);
    // A protocol_version alert, or the socket closed/reset by the server:
    // never a local "no protocols available" (that would prove nothing).
    assert.match(`${err.code} ${err.message}`,
      /PROTOCOL_VERSION|protocol version|ECONNRESET|disconnected before secure TLS|closed before the handshake/i,
      `TLS 1.1 on port ${port} failed with: ${err.code} ${err.message}`);
    assert.doesNotMatch(`${err.code} ${err.message}`, /NO_PROTOCOLS_AVAILABLE|no protocols available/i);
  }
  const afterStats = await stats(good);
  assert.strictEqual(afterStats.tlsHandshakeFailures, before.tlsHandshakeFailures + 2, 'both refusals counted');
  assert.strictEqual(afterStats.active, before.active);
  assert.strictEqual(afterStats.total, before.total, 'never registered');
  // The server's log says why: the version.
  const refusals = server.logs().match(/TLS[^\n]*handshake[^\n]*fail[^\n]*(unsupported protocol|version)[^\n]*/gi) || [];
  assert.strictEqual(refusals.length, 2, `log:\n${server.logs()}`);
  server.alive();
});

test('start-up: a missing certificate file is an error naming it', async () => {
  const missing = path.join(dir, 'no-such-cert.pem');
  const r = await runToExit(APP, { env: { TLS_CERT: missing, TLS_KEY: cert.key }, timeout: 8000 });
  assert.notStrictEqual(r.code, 0, `exit ${r.code}; output:\n${r.out}`);
  assert.ok(r.out.includes(missing), `the message names ${missing}:\n${r.out}`);
  assert.doesNotMatch(r.out, /listening on port/);
});

test('start-up: a missing key file, or a certificate that is not one, is an error naming it', async () => {
  const missingKey = path.join(dir, 'no-such-key.pem');
  let r = await runToExit(APP, { env: { TLS_CERT: cert.cert, TLS_KEY: missingKey }, timeout: 8000 });
  assert.notStrictEqual(r.code, 0, `exit ${r.code}; output:\n${r.out}`);
  assert.ok(r.out.includes(missingKey), `the message names ${missingKey}:\n${r.out}`);

  const junk = path.join(dir, 'junk-cert.pem');
  fs.writeFileSync(junk, 'this is not a certificate\n');
  r = await runToExit(APP, { env: { TLS_CERT: junk, TLS_KEY: cert.key }, timeout: 8000 });
  assert.notStrictEqual(r.code, 0, `exit ${r.code}; output:\n${r.out}`);
  assert.ok(r.out.includes(junk), `the message names ${junk}:\n${r.out}`);
  assert.doesNotMatch(r.out, /listening on port/);
});

test('start-up: a key that does not match the certificate is an error naming the key file', async () => {
  const other = makeCert(dir, 'other'); // a second, unrelated key pair
  const r = await runToExit(APP, { env: { TLS_CERT: cert.cert, TLS_KEY: other.key }, timeout: 8000 });
  assert.notStrictEqual(r.code, 0, `exit ${r.code}; output:\n${r.out}`);
  assert.ok(r.out.includes(other.key), `the message names the key file ${other.key}:\n${r.out}`);
  assert.doesNotMatch(r.out, /listening on port/);
});
