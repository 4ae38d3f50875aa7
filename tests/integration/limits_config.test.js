'use strict';
// Runtime configuration and message size (issue 5): getConfig() fields and
// its read-only snapshot, updateConfig, start-up errors naming a bad hook or
// option, maxPayloadSize over both transports with onPayloadTooLarge, and
// the getStats() fields.
const test = require('node:test');
const assert = require('node:assert');
const { runToExit, fixture } = require('./harness');
const { limServer, wsEcho, tcpEcho, T } = require('./limitshelp');

const OPTS = {
  maxConnections: 77,
  maxConnectionsPerIP: 7,
  maxRooms: 33,
  maxRoomsPerClient: 4,
  maxPayloadSize: 5000,
  heartbeatInterval: 20000,
  heartbeatTimeout: 40000,
  connectTimeout: 5000,
  shutdownTimeout: 2500,
  compression: true,
  eventRateLimits: { slow: { maxPoints: 2, windowMs: 1000 }, fast: { maxPoints: 50, windowMs: 1000 } },
  allowedOrigins: ['http://a.example', 'http://b.example'],
};

test('getConfig() returns every stelar-time-real field; updateConfig changes it; writing raises', async (t) => {
  const h = await limServer(t, { opts: OPTS, hooks: ['onClientConnect', 'onBeforeBroadcast'] });
  const a = await h.ws();
  const cfg = (await a.ack('config')).data;
  const sorted = (x) => (Array.isArray(x) ? [...x].sort() : x);
  assert.deepStrictEqual({
    maxConnections: cfg.maxConnections,
    maxConnectionsPerIP: cfg.maxConnectionsPerIP,
    maxRooms: cfg.maxRooms,
    maxRoomsPerClient: cfg.maxRoomsPerClient,
    maxPayloadSize: cfg.maxPayloadSize,
    heartbeatInterval: cfg.heartbeatInterval,
    heartbeatTimeout: cfg.heartbeatTimeout,
    connectTimeout: cfg.connectTimeout,
    shutdownTimeout: cfg.shutdownTimeout,
    compression: cfg.compression,
    hasCustomRateLimiter: cfg.hasCustomRateLimiter,
    hasCustomIPTracker: cfg.hasCustomIPTracker,
    hasCustomClientIdGenerator: cfg.hasCustomClientIdGenerator,
    hasCustomHealthHandler: cfg.hasCustomHealthHandler,
    eventRateLimits: sorted(cfg.eventRateLimits),
    hooks: sorted(cfg.hooks),
    allowedOrigins: cfg.allowedOrigins,
  }, {
    maxConnections: 77,
    maxConnectionsPerIP: 7,
    maxRooms: 33,
    maxRoomsPerClient: 4,
    maxPayloadSize: 5000,
    heartbeatInterval: 20000,
    heartbeatTimeout: 40000,
    connectTimeout: 5000,
    shutdownTimeout: 2500,
    compression: true,
    hasCustomRateLimiter: false,
    hasCustomIPTracker: false,
    hasCustomClientIdGenerator: false,
    hasCustomHealthHandler: false,
    eventRateLimits: ['fast', 'slow'],
    hooks: ['onBeforeBroadcast', 'onClientConnect'],
    allowedOrigins: ['http://a.example', 'http://b.example'],
  });

  // A snapshot: writing to it is an error and changes nothing.
  const w = (await a.ack('config-write', { field: 'maxConnections', value: 5 })).data;
  assert.strictEqual(w.ok, false, 'writing to getConfig() did not raise');
  assert.match(w.err, /read-only/);
  assert.strictEqual(w.after, 77);
  const w2 = (await a.ack('config-write', { field: 'somethingNew', value: 1 })).data;
  assert.strictEqual(w2.ok, false, 'adding a field to getConfig() did not raise');

  // updateConfig applies at once and getConfig shows it.
  await a.ack('update', { maxRooms: 34, shutdownTimeout: 1000, eventRateLimits: { other: { maxPoints: 1, windowMs: 1000 } } });
  const cfg2 = (await a.ack('config')).data;
  assert.strictEqual(cfg2.maxRooms, 34);
  assert.strictEqual(cfg2.shutdownTimeout, 1000);
  assert.strictEqual(cfg2.maxConnections, 77);
  assert.deepStrictEqual(cfg2.eventRateLimits, ['other']);
  await wsEcho(a);
});

test('an unknown hook name, or a misspelt option, is a start-up error naming it', async () => {
  const bad = await runToExit(fixture('lim_badhook.lua'));
  assert.notStrictEqual(bad.code, 0, `started with an unknown hook:\n${bad.out}`);
  assert.match(bad.out, /onNoSuchHook/);
  assert.doesNotMatch(bad.out, /listening on port/);
  const typo = await runToExit(fixture('lim_badoption.lua'));
  assert.notStrictEqual(typo.code, 0, `started with an unknown option:\n${typo.out}`);
  assert.match(typo.out, /maxConection/);
});

// A text envelope {"event":"echo","data":"xx…"} of exactly n bytes.
function envelopeOf(n) {
  const base = JSON.stringify({ event: 'echo', data: '' }).length;
  const s = JSON.stringify({ event: 'echo', data: 'x'.repeat(n - base) });
  assert.strictEqual(s.length, n);
  return s;
}

test('maxPayloadSize = 1000 over WebSocket: 1000 bytes pass, 1001 close 1009 with onPayloadTooLarge', async (t) => {
  const h = await limServer(t, { opts: { maxPayloadSize: 1000 }, hooks: ['onPayloadTooLarge'] });
  const a = await h.ws();
  const other = await h.ws();
  a.sendRaw(envelopeOf(1000));
  assert.strictEqual((await a.next('echo')).data, JSON.parse(envelopeOf(1000)).data);
  assert.deepStrictEqual(h.hooks('onPayloadTooLarge'), []);
  a.sendRaw(envelopeOf(1001));
  const closed = await a.waitClose(2000);
  assert.strictEqual(closed.code, 1009);
  const info = (await h.waitHook('onPayloadTooLarge', 1))[0];
  assert.deepStrictEqual(info, { clientId: a.id, size: 1001, max: 1000 });
  assert.ok(!a.queue.some((m) => m.event === 'echo'), 'the oversized message was dispatched');
  await wsEcho(other);
  h.alive();
});

test('maxPayloadSize = 1000 over TCP: a 1001-byte JSON payload is dropped, the client stays', async (t) => {
  const h = await limServer(t, { opts: { maxPayloadSize: 1000, tcpPort: 0 }, hooks: ['onPayloadTooLarge'] });
  const c = await h.tcp();
  const exact = JSON.stringify('x'.repeat(998)); // 1000 bytes
  c.send(T.JSON, 'echo', exact);
  assert.strictEqual((await c.next('echo')).text(), exact);
  c.send(T.JSON, 'echo', JSON.stringify('y'.repeat(999))); // 1001 bytes
  assert.ok(await c.nothing('echo', 300), 'the oversized payload was dispatched');
  assert.ok(!c.all.some((f) => f.type === T.ERROR), 'an oversized TCP payload got an ERROR');
  const info = (await h.waitHook('onPayloadTooLarge', 1))[0];
  assert.deepStrictEqual(info, { clientId: c.id, event: 'echo', size: 1001, max: 1000 });
  await tcpEcho(c);
  assert.strictEqual(c.closed, false);
  h.alive();
});

test('getStats() (as /health shows it) has every field, counting both transports', async (t) => {
  const h = await limServer(t, { opts: { tcpPort: 0 } });
  const a = await h.ws();
  const c = await h.tcp();
  await wsEcho(a);
  await tcpEcho(c);
  const s = (await a.ack('stats')).data;
  for (const k of ['totalConnections', 'activeConnections', 'totalMessagesReceived', 'totalMessagesSent',
    'totalRooms', 'uptime', 'wsConnections', 'tcpConnections', 'rateLimiterEntries']) {
    assert.strictEqual(typeof s[k], 'number', `getStats().${k}`);
  }
  assert.strictEqual(s.activeConnections, 2);
  assert.strictEqual(s.wsConnections, 1);
  assert.strictEqual(s.tcpConnections, 1);
  assert.ok(s.totalMessagesReceived >= 3, `totalMessagesReceived ${s.totalMessagesReceived}`);
  assert.ok(s.memoryUsage.rss > 1 << 20, `memoryUsage.rss ${s.memoryUsage.rss}`);
  const heap = Object.entries(s.memoryUsage).filter(([k]) => k !== 'rss');
  assert.ok(heap.length >= 1 && heap.every(([, v]) => typeof v === 'number' && v > 0),
    `memoryUsage has no Lua heap: ${JSON.stringify(s.memoryUsage)}`);
  const health = (await h.health()).json;
  for (const k of Object.keys(s)) assert.ok(k in health, `/health lacks ${k}`);
});
