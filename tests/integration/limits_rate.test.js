'use strict';
// Rate limiting (issue 5, PROTOCOL.md §5): token buckets of maxPoints
// refilled per windowMs, one point per message; the onRateLimitExceeded hook
// that may keep the client; per-event and per-client limits with their
// priority; the bucket count in getStats().rateLimiterEntries.
const test = require('node:test');
const assert = require('node:assert');
const { sleep } = require('./harness');
const { limServer, wsEcho, tcpEcho, T } = require('./limitshelp');

const FIVE = { maxPoints: 5, windowMs: 1000 };

// Sends n echo (or other) events at once; resolves with the data.i of the
// replies, as soon as all n came or when ms passed without the next one.
async function burst(c, n, { event = 'echo', ms = 400 } = {}) {
  for (let i = 0; i < n; i++) c.emit(event, { i });
  const got = [];
  while (got.length < n) {
    try {
      got.push((await c.next(event, ms)).data.i);
    } catch {
      break;
    }
  }
  return got;
}

test('rateLimit {maxPoints = 5}: 5 messages pass, the 6th closes 1008 "Rate limit exceeded"', async (t) => {
  const h = await limServer(t, { opts: { rateLimit: FIVE, tcpPort: 0 } });
  const a = await h.ws();
  const other = await h.ws();
  // Exactly 5: all answered and the client stays (one message costs one point).
  assert.deepStrictEqual(await burst(a, 5), [0, 1, 2, 3, 4]);
  assert.strictEqual(a.closed, null, 'closed after 5 messages');
  a.emit('echo', { i: 5 });
  assert.deepStrictEqual(await a.waitClose(2000), { code: 1008, reason: 'Rate limit exceeded' });
  assert.ok(!a.queue.some((m) => m.event === 'echo'), 'the 6th message was answered');
  await wsEcho(other);

  // TCP: ERROR "Rate limit exceeded", then close.
  const c = await h.tcp();
  for (let i = 0; i < 5; i++) c.emit('echo', { i });
  for (let i = 0; i < 5; i++) assert.deepStrictEqual((await c.next('echo')).json(), { i });
  c.emit('echo', { i: 5 });
  const err = await c.next(T.ERROR, 2000);
  assert.strictEqual(err.event, 'error');
  assert.strictEqual(err.text(), 'Rate limit exceeded');
  await c.waitClose(3000);
  assert.ok(!c.all.some((f) => f.type === T.JSON && f.event === 'echo' && f.json().i === 5), 'the 6th was answered');
  await wsEcho(other);
  h.alive();
});

test('an ACK request and a join-room cost one point each, like any message', async (t) => {
  const h = await limServer(t, { opts: { rateLimit: FIVE } });
  const a = await h.ws();
  const replies = await Promise.all([1, 2, 3, 4].map(() => a.ack('stats', null)));
  assert.strictEqual(replies.length, 4);
  a.emit('join-room', 'r');
  assert.strictEqual((await a.next('joined-room')).data, 'r');
  assert.strictEqual(a.closed, null, 'closed within its 5 points');
  a.ack('stats', null).catch(() => {});
  assert.deepStrictEqual(await a.waitClose(2000), { code: 1008, reason: 'Rate limit exceeded' });
});

test('the bucket refills: after the window a client may send its 5 again', async (t) => {
  const h = await limServer(t, { opts: { rateLimit: FIVE } });
  const a = await h.ws();
  assert.deepStrictEqual(await burst(a, 5), [0, 1, 2, 3, 4]);
  await sleep(1100);
  // ...but only 5: the refill is capped at maxPoints.
  assert.deepStrictEqual(await burst(a, 6), [0, 1, 2, 3, 4]);
  assert.deepStrictEqual(await a.waitClose(2000), { code: 1008, reason: 'Rate limit exceeded' });
});

test('onRateLimitExceeded returning false drops the extra messages and keeps the client', async (t) => {
  const h = await limServer(t, {
    opts: { rateLimit: FIVE, tcpPort: 0 },
    hooks: ['onRateLimitExceeded'],
    veto: ['onRateLimitExceeded'],
  });
  const a = await h.ws();
  assert.deepStrictEqual(await burst(a, 8), [0, 1, 2, 3, 4]);
  assert.strictEqual(a.closed, null, 'a client whose hook returned false was closed');
  const calls = await h.waitHook('onRateLimitExceeded', 3);
  assert.strictEqual(calls.length, 3);
  for (const c of calls) assert.deepStrictEqual(c, { clientId: a.id, event: 'echo', protocol: 'ws' });
  await sleep(1100);
  await wsEcho(a);

  const c = await h.tcp();
  for (let i = 0; i < 6; i++) c.emit('echo', { i });
  for (let i = 0; i < 5; i++) assert.deepStrictEqual((await c.next('echo')).json(), { i });
  assert.ok(await c.nothing('echo', 300), 'the 6th TCP message was answered');
  assert.ok(await c.nothing(T.ERROR, 10));
  const tcpCall = (await h.waitHook('onRateLimitExceeded', 4))[3];
  assert.deepStrictEqual(tcpCall, { clientId: c.id, event: 'echo', protocol: 'tcp' });
  await sleep(1100);
  await tcpEcho(c);
  assert.strictEqual(c.closed, false);
  h.alive();
});

test('eventRateLimits {slow = 2/s} limits only that event, apart from the global bucket', async (t) => {
  const h = await limServer(t, {
    opts: { rateLimit: FIVE, eventRateLimits: { slow: { maxPoints: 2, windowMs: 1000 } } },
    hooks: ['onRateLimitExceeded'],
    veto: ['onRateLimitExceeded'],
  });
  const a = await h.ws();
  assert.deepStrictEqual(await burst(a, 3, { event: 'slow' }), [0, 1]);
  assert.deepStrictEqual((await h.waitHook('onRateLimitExceeded', 1))[0],
    { clientId: a.id, event: 'slow', protocol: 'ws' });
  // The global bucket is untouched by "slow": 5 echoes still pass.
  assert.deepStrictEqual(await burst(a, 6), [0, 1, 2, 3, 4]);
  assert.strictEqual(h.hooks('onRateLimitExceeded').length, 2);
  // Without the hook's veto the same client would be gone; it is not.
  assert.strictEqual(a.closed, null);
});

test('eventRateLimits on "join-room" limit joins over both transports (TCP JOIN acts like join-room)', async (t) => {
  const h = await limServer(t, {
    opts: { rateLimit: FIVE, eventRateLimits: { 'join-room': { maxPoints: 2, windowMs: 1000 } }, tcpPort: 0 },
    hooks: ['onRateLimitExceeded'],
    veto: ['onRateLimitExceeded'],
  });
  const a = await h.ws();
  for (const r of ['a1', 'a2', 'a3']) a.emit('join-room', r);
  assert.strictEqual((await a.next('joined-room')).data, 'a1');
  assert.strictEqual((await a.next('joined-room')).data, 'a2');
  assert.ok(await a.nothing('joined-room', 300), 'a third join within the join-room limit');
  const c = await h.tcp();
  for (const r of ['c1', 'c2', 'c3']) c.join(r);
  assert.strictEqual((await c.next('joined-room')).json(), 'c1');
  assert.strictEqual((await c.next('joined-room')).json(), 'c2');
  assert.ok(await c.nothing('joined-room', 300), 'a third TCP JOIN passed the join-room limit');
  const calls = await h.waitHook('onRateLimitExceeded', 2);
  assert.deepStrictEqual(calls, [
    { clientId: a.id, event: 'join-room', protocol: 'ws' },
    { clientId: c.id, event: 'join-room', protocol: 'tcp' },
  ]);
});

test('setEventRateLimit / removeEventRateLimit at run time', async (t) => {
  const h = await limServer(t, { opts: { rateLimit: false }, hooks: ['onRateLimitExceeded'], veto: ['onRateLimitExceeded'] });
  const admin = await h.ws();
  const a = await h.ws();
  // More than the default 100 points at once: rateLimit = false means no limit.
  assert.deepStrictEqual(await burst(a, 150), Array.from({ length: 150 }, (_, i) => i), 'rateLimit = false limits');
  await admin.ack('set-event-rate', { event: 'echo', limit: { maxPoints: 3, windowMs: 1000 } });
  assert.deepStrictEqual(await burst(a, 4), [0, 1, 2]);
  assert.deepStrictEqual(await burst(a, 4, { event: 'slow' }), [0, 1, 2, 3]);
  assert.deepStrictEqual((await admin.ack('config')).data.eventRateLimits, ['echo']);
  await admin.ack('remove-event-rate', { event: 'echo' });
  assert.deepStrictEqual(await burst(a, 10), Array.from({ length: 10 }, (_, i) => i));
  assert.deepStrictEqual((await admin.ack('config')).data.eventRateLimits, []);
});

test('setClientRateLimit overrides event and global limits for one client; removeClientRateLimit restores', async (t) => {
  const h = await limServer(t, {
    opts: { rateLimit: FIVE, eventRateLimits: { slow: { maxPoints: 2, windowMs: 1000 } }, tcpPort: 0 },
    hooks: ['onRateLimitExceeded'],
    veto: ['onRateLimitExceeded'],
  });
  const admin = await h.tcp(); // its messages are charged to itself, not to a or b
  const a = await h.ws();
  const b = await h.ws();
  await admin.ack('set-client-rate', { id: a.id, limit: { maxPoints: 1, windowMs: 1000 } });
  // a's single point goes to "slow" (per-client beats per-event)...
  assert.deepStrictEqual(await burst(a, 1, { event: 'slow' }), [0]);
  // ...and leaves nothing for "echo" (per-client beats global).
  assert.deepStrictEqual(await burst(a, 1), []);
  const calls = await h.waitHook('onRateLimitExceeded', 1);
  assert.deepStrictEqual(calls[0], { clientId: a.id, event: 'echo', protocol: 'ws' });
  // b is not affected.
  assert.deepStrictEqual(await burst(b, 5), [0, 1, 2, 3, 4]);
  assert.deepStrictEqual(await burst(b, 2, { event: 'slow' }), [0, 1]);

  await admin.ack('remove-client-rate', { id: a.id });
  // Back to the global 5 (and the per-event 2 for slow).
  assert.deepStrictEqual(await burst(a, 6), [0, 1, 2, 3, 4]);
  assert.deepStrictEqual(await burst(a, 3, { event: 'slow' }), [0, 1]);
  assert.strictEqual(a.closed, null);
  await tcpEcho(admin);
});

test('updateConfig({rateLimit = ...}) applies to the next messages; rateLimit = false lifts it', async (t) => {
  const h = await limServer(t, { opts: { rateLimit: FIVE, tcpPort: 0 }, hooks: ['onRateLimitExceeded'], veto: ['onRateLimitExceeded'] });
  const admin = await h.tcp();
  const a = await h.ws();
  await admin.ack('update', { rateLimit: { maxPoints: 2, windowMs: 1000 } });
  assert.deepStrictEqual((await admin.ack('config')).data.rateLimit, { maxPoints: 2, windowMs: 1000 });
  assert.deepStrictEqual(await burst(a, 3), [0, 1]);
  await admin.ack('update', { rateLimit: false });
  assert.strictEqual((await admin.ack('config')).data.rateLimit, false);
  assert.deepStrictEqual(await burst(a, 120), Array.from({ length: 120 }, (_, i) => i));
  assert.strictEqual(h.hooks('onRateLimitExceeded').length, 1);
});

test('getStats().rateLimiterEntries counts buckets in use and drops to 0 when the clients leave', async (t) => {
  const h = await limServer(t, {
    opts: { rateLimit: FIVE, eventRateLimits: { slow: { maxPoints: 2, windowMs: 1000 } } },
  });
  assert.strictEqual((await h.health()).json.rateLimiterEntries, 0);
  const a = await h.ws();
  const b = await h.ws();
  await wsEcho(a);
  await wsEcho(b);
  b.emit('slow', { i: 0 });
  await b.next('slow');
  const during = (await h.health()).json.rateLimiterEntries;
  assert.ok(during > 0, `rateLimiterEntries ${during} while two clients are limited`);
  assert.ok(during <= 3, `rateLimiterEntries ${during}: more than one bucket per client and event`);
  await a.close();
  await b.close();
  await h.until('activeConnections', 0);
  assert.strictEqual((await h.health()).json.rateLimiterEntries, 0);
});
