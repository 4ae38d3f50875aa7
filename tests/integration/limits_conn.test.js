'use strict';
// Connection admission (issue 5, PROTOCOL.md §5): maxConnections,
// maxConnectionsPerIP (the peer address, X-Forwarded-For only with
// trustProxy), connectTimeout; each at its edge, over both transports, and
// the server still serving the others after every refusal.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { sleep, withTimeout } = require('./harness');
const { limServer, wsEcho, tcpEcho } = require('./limitshelp');

test('maxConnections = 3: the 4th client is refused with 1008 "Server full", the hook sees 3 of 3', async (t) => {
  const h = await limServer(t, {
    opts: { maxConnections: 3, tcpPort: 0 },
    hooks: ['onMaxConnectionsReached'],
  });
  const a = await h.ws();
  const b = await h.ws();
  const c = await h.ws();
  for (const x of [a, b, c]) await wsEcho(x);
  const fds = h.server.openFds();

  const refused = await h.wsRefused();
  assert.deepStrictEqual(refused, { code: 1008, reason: 'Server full' });
  const calls = await h.waitHook('onMaxConnectionsReached', 1);
  assert.deepStrictEqual(calls[0], { activeConnections: 3, max: 3, ip: '127.0.0.1' });
  for (const x of [a, b, c]) await wsEcho(x); // the others are still served
  assert.strictEqual((await h.health()).json.activeConnections, 3);

  // A TCP client at the limit: an ERROR frame with the reason, then close.
  assert.strictEqual(await h.tcpRefused(), 'Server full');
  const calls2 = await h.waitHook('onMaxConnectionsReached', 2);
  assert.deepStrictEqual(calls2[1], { activeConnections: 3, max: 3, ip: '127.0.0.1' });

  await h.fdsBackTo(fds); // nothing of the refused clients is left open

  // One leaves: there is room for exactly one more, of either transport.
  await c.close();
  await h.until('activeConnections', 2);
  const d = await h.tcp();
  await tcpEcho(d);
  assert.deepStrictEqual(await h.wsRefused(), { code: 1008, reason: 'Server full' });
  await wsEcho(a);
  await tcpEcho(d);
  assert.strictEqual(h.hooks('onMaxConnectionsReached').length, 3);
  h.alive();
});

test('maxConnectionsPerIP = 2 with trustProxy: counted per X-Forwarded-For address', async (t) => {
  const h = await limServer(t, { opts: { maxConnectionsPerIP: 2, trustProxy: true } });
  const fwd = (ip) => ({ 'X-Forwarded-For': ip });
  const a = await h.ws(fwd('10.0.0.1'));
  const b = await h.ws(fwd('10.0.0.1, 192.168.1.1'));
  assert.deepStrictEqual(await h.wsRefused(fwd('10.0.0.1')), { code: 1008, reason: 'Too many connections' });
  const c = await h.ws(fwd('10.0.0.2'));
  const d = await h.ws(fwd('10.0.0.2'));
  assert.deepStrictEqual(await h.wsRefused(fwd('10.0.0.2')), { code: 1008, reason: 'Too many connections' });
  for (const x of [a, b, c, d]) await wsEcho(x);
  // The socket's own address (127.0.0.1) is a third address with its own count.
  const e = await h.ws();
  await wsEcho(e);
  // One from 10.0.0.1 leaves: 10.0.0.1 may have one more, not two.
  await a.close();
  await h.until('activeConnections', 4);
  const f = await h.ws(fwd('10.0.0.1'));
  await wsEcho(f);
  assert.deepStrictEqual(await h.wsRefused(fwd('10.0.0.1')), { code: 1008, reason: 'Too many connections' });
  await wsEcho(b);
  h.alive();
});

test('maxConnectionsPerIP = 2 without trustProxy: X-Forwarded-For is ignored, TCP counts too', async (t) => {
  const h = await limServer(t, { opts: { maxConnectionsPerIP: 2, tcpPort: 0 } });
  const a = await h.ws({ 'X-Forwarded-For': '10.0.0.1' });
  const b = await h.tcp();
  // Both came from 127.0.0.1: a third one is refused whatever it claims.
  assert.deepStrictEqual(await h.wsRefused({ 'X-Forwarded-For': '10.0.0.7' }),
    { code: 1008, reason: 'Too many connections' });
  assert.strictEqual(await h.tcpRefused(), 'Too many connections');
  await wsEcho(a);
  await tcpEcho(b);
  h.alive();
});

test('updateConfig({maxConnections = 1}) applies to the next connection, not to those open', async (t) => {
  const h = await limServer(t, { opts: { maxConnections: 3 }, hooks: ['onMaxConnectionsReached'] });
  const a = await h.ws();
  const b = await h.ws();
  assert.strictEqual((await a.ack('update', { maxConnections: 1 })).data, true);
  assert.strictEqual((await a.ack('config')).data.maxConnections, 1);
  // Nobody is dropped, but nobody new comes in.
  await wsEcho(a);
  await wsEcho(b);
  assert.deepStrictEqual(await h.wsRefused(), { code: 1008, reason: 'Server full' });
  const calls = await h.waitHook('onMaxConnectionsReached', 1);
  assert.deepStrictEqual(calls[0], { activeConnections: 2, max: 1, ip: '127.0.0.1' });
  // Raised again: one more fits, then the limit holds at 3.
  assert.strictEqual((await b.ack('update', { maxConnections: 3 })).data, true);
  const c = await h.ws();
  await wsEcho(c);
  assert.deepStrictEqual(await h.wsRefused(), { code: 1008, reason: 'Server full' });
  h.alive();
});

test('connectTimeout: a socket that never sends its handshake is closed', async (t) => {
  const h = await limServer(t, { opts: { connectTimeout: 300 } });
  const start = Date.now();
  const closedAfter = await withTimeout(new Promise((resolve) => {
    const sock = net.connect(h.port, '127.0.0.1');
    h.track(sock);
    sock.on('error', () => {});
    sock.on('close', () => resolve(Date.now() - start));
  }), 3000, 'the silent socket to be closed');
  assert.ok(closedAfter >= 250, `closed after ${closedAfter} ms, before connectTimeout`);
  // A client that does handshake is still welcome.
  const c = await h.ws();
  await wsEcho(c);
  await sleep(400);
  await wsEcho(c);
  h.alive();
});
