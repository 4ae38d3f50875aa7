'use strict';
// Graceful shutdown (issue 5): on SIGTERM/SIGINT the server stops accepting,
// sends close 1001 (TCP: DISCONNECT) to every client, waits up to
// shutdownTimeout for them to go, forces the rest, runs onShutdown(signal,
// forced) and exits 0 — or 1 when it had to force.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { sleep, tryConnect, withTimeout } = require('./harness');
const { TcpClient } = require('./tcpwire');
const { limServer, wsEcho, tcpEcho, T } = require('./limitshelp');

// A TCP client that never closes its side: it ignores DISCONNECT and the
// server's FIN.
function stubbornTcp(h) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect({ port: h.tcpPort, host: '127.0.0.1', allowHalfOpen: true });
    const c = new TcpClient(sock);
    h.track(c);
    sock.once('connect', () => resolve(c));
    sock.once('error', reject);
  }), 3000, 'a TCP connection');
}


test('SIGTERM: ws client gets 1001, TCP client DISCONNECT, onShutdown("SIGTERM", false), exit 0', async (t) => {
  const h = await limServer(t, { opts: { tcpPort: 0, shutdownTimeout: 3000 } });
  const a = await h.ws();
  const c = await h.tcp();
  await wsEcho(a);
  await tcpEcho(c);
  const start = Date.now();
  const exit = await h.server.stop();
  const took = Date.now() - start;
  assert.deepStrictEqual(exit, { code: 0, signal: null }, `exit ${JSON.stringify(exit)}; log:\n${h.server.logs()}`);
  assert.ok(took < 2500, `a graceful shutdown with willing clients took ${took} ms`);
  const closed = await a.waitClose(1000);
  assert.strictEqual(closed.code, 1001);
  await c.waitClose(1000);
  const disc = c.all.find((f) => f.type === T.DISCONNECT);
  assert.ok(disc, `the TCP client got no DISCONNECT: ${c.all.map(String).join(' | ')}`);
  assert.strictEqual(disc.payload.length, 0);
  assert.ok(!c.all.some((f) => f.type === T.ERROR), 'an ERROR frame on graceful shutdown');
  assert.match(h.server.logs(), /SHUTDOWN SIGTERM false/);
  assert.strictEqual(h.server.logs().match(/SHUTDOWN /g).length, 1, 'onShutdown ran more than once');
});

test('SIGINT with no clients: onShutdown("SIGINT", false), exit 0', async (t) => {
  const h = await limServer(t);
  h.server.proc.kill('SIGINT');
  const exit = await withTimeout(h.server.exited, 3000, 'the server to exit on SIGINT');
  assert.deepStrictEqual(exit, { code: 0, signal: null });
  assert.match(h.server.logs(), /SHUTDOWN SIGINT false/);
});

test('forced: a TCP client that ignores DISCONNECT is cut after shutdownTimeout; exit 1, onShutdown(..., true)', async (t) => {
  const h = await limServer(t, { opts: { tcpPort: 0, shutdownTimeout: 300 } });
  const a = await h.ws();
  const stubborn = await stubbornTcp(h);
  await stubborn.next(T.CONNECT);
  await stubborn.next('welcome');
  const start = Date.now();
  h.server.proc.kill('SIGTERM');
  // Draining: the listeners are closed, the willing client goes at once.
  await sleep(100);
  assert.strictEqual(await tryConnect(h.port), 'ECONNREFUSED', 'the server accepted during its drain');
  assert.strictEqual(await tryConnect(h.tcpPort), 'ECONNREFUSED', 'the TCP listener accepted during the drain');
  assert.strictEqual((await a.waitClose(1000)).code, 1001);
  const exit = await withTimeout(h.server.exited, 2500, 'the forced shutdown');
  const took = Date.now() - start;
  assert.deepStrictEqual(exit, { code: 1, signal: null }, `exit ${JSON.stringify(exit)}; log:\n${h.server.logs()}`);
  assert.ok(took >= 280, `forced after ${took} ms, before shutdownTimeout`);
  assert.ok(stubborn.all.some((f) => f.type === T.DISCONNECT), 'the stubborn client got no DISCONNECT');
  assert.match(h.server.logs(), /SHUTDOWN SIGTERM true/);
  assert.doesNotMatch(h.server.logs(), /SHUTDOWN SIGTERM false/);
});

test('forced: a raw WebSocket client that never answers the close; exit 1, onShutdown(..., true)', async (t) => {
  const h = await limServer(t, { opts: { shutdownTimeout: 300 } });
  const raw = await h.rawWs();
  const start = Date.now();
  const exit = await h.server.stop();
  const took = Date.now() - start;
  assert.deepStrictEqual(exit, { code: 1, signal: null }, `exit ${JSON.stringify(exit)}; log:\n${h.server.logs()}`);
  assert.ok(took >= 280 && took < 2500, `forced after ${took} ms`);
  const close = raw.frames().find((f) => f.opcode === 8);
  assert.ok(close, 'the raw client got no close frame');
  assert.strictEqual(close.code, 1001);
  assert.match(h.server.logs(), /SHUTDOWN SIGTERM true/);
});

test('server:stop() closes every client at once, without the drain or onShutdown', async (t) => {
  const h = await limServer(t, { opts: { tcpPort: 0, shutdownTimeout: 5000 } });
  const a = await h.ws();
  const b = await h.ws();
  const c = await h.tcp();
  const start = Date.now();
  a.emit('stop-server', null);
  await b.waitClose(1000);
  await c.waitClose(1000);
  await a.waitClose(1000);
  const took = Date.now() - start;
  assert.ok(took < 1000, `server:stop() took ${took} ms`);
  assert.strictEqual(await tryConnect(h.port), 'ECONNREFUSED');
  assert.strictEqual(await tryConnect(h.tcpPort), 'ECONNREFUSED');
  assert.doesNotMatch(h.server.logs(), /SHUTDOWN/);
});
