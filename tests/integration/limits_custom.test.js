'use strict';
// The scripted extension points (issue 5): generateClientId,
// customIPTracker, customRateLimiter, customHealthHandler — each consulted
// when given, over real sockets (fixtures/lim_custom.lua).
const test = require('node:test');
const assert = require('node:assert');
const { limServer, wsEcho, tcpEcho, httpGet } = require('./limitshelp');

function custom(t, env = {}) {
  return limServer(t, { script: 'lim_custom.lua', env });
}

// Lines "<WHAT> ..." the fixture logged, split into words.
function calls(h, what) {
  return [...h.server.logs().matchAll(new RegExp(`${what} (.*)$`, 'gm'))].map((m) => m[1].split(' '));
}

test('generateClientId: "user-<n>" is the id clients see, over both transports and in hooks', async (t) => {
  const h = await custom(t, { LIM_RATE_MAX: '100', LIM_IP_MAX: '10' });
  const a = await h.ws();
  assert.strictEqual(a.id, 'user-1');
  const c = await h.tcp();
  assert.strictEqual(c.id, 'user-2'); // the CONNECT frame carries it
  const b = await h.ws();
  assert.strictEqual(b.id, 'user-3');
  const connects = await h.waitHook('onClientConnect', 3);
  assert.deepStrictEqual(connects.map((x) => x.clientId), ['user-1', 'user-2', 'user-3']);
  await wsEcho(a);
  await tcpEcho(c);
});

test('customIPTracker: check/add/remove consulted; check false refuses with "Too many connections"', async (t) => {
  const h = await custom(t, { LIM_RATE_MAX: '100', LIM_IP_MAX: '2' });
  const a = await h.ws();
  const c = await h.tcp();
  assert.deepStrictEqual(await h.wsRefused(), { code: 1008, reason: 'Too many connections' });
  assert.strictEqual(await h.tcpRefused(), 'Too many connections');
  await wsEcho(a);
  await tcpEcho(c);
  const track = calls(h, 'TRACK').map((w) => w.slice(0, 3).join(' '));
  assert.deepStrictEqual(track, [
    'check 127.0.0.1 true', 'add 127.0.0.1 1',
    'check 127.0.0.1 true', 'add 127.0.0.1 2',
    'check 127.0.0.1 false',
    'check 127.0.0.1 false',
  ]);
  // One leaves: remove is called, and there is room for one again.
  await a.close();
  const start = Date.now();
  while (!calls(h, 'TRACK').some((w) => w[0] === 'remove') && Date.now() - start < 2000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepStrictEqual(calls(h, 'TRACK').filter((w) => w[0] === 'remove').map((w) => w.slice(0, 3).join(' ')),
    ['remove 127.0.0.1 1']);
  const d = await h.ws();
  await wsEcho(d);
  assert.deepStrictEqual(await h.wsRefused(), { code: 1008, reason: 'Too many connections' });
  // How the tracker was called (for the report): one style throughout.
  const styles = new Set(calls(h, 'TRACK').map((w) => w[w.length - 1]));
  assert.strictEqual(styles.size, 1, `mixed call styles ${[...styles]}`);
  t.diagnostic(`customIPTracker called in ${[...styles][0]}`);
});

test('customRateLimiter: check(id, 1) per message decides, reset on leave, size in rateLimiterEntries', async (t) => {
  const h = await custom(t, { LIM_RATE_MAX: '3', LIM_IP_MAX: '10' });
  const a = await h.ws();
  const b = await h.ws();
  for (let i = 0; i < 3; i++) a.emit('echo', { i });
  for (let i = 0; i < 3; i++) assert.deepStrictEqual((await a.next('echo')).data, { i });
  a.emit('echo', { i: 3 });
  // The limiter said no and there is no hook: closed as for the built-in limit.
  assert.deepStrictEqual(await a.waitClose(2000), { code: 1008, reason: 'Rate limit exceeded' });
  assert.ok(!a.queue.some((m) => m.event === 'echo'));
  const checks = calls(h, 'RATE check').filter((w) => w[0] === a.id);
  assert.deepStrictEqual(checks.map((w) => w.slice(0, 3).join(' ')), [
    `${a.id} cost=1 ok=true`, `${a.id} cost=1 ok=true`, `${a.id} cost=1 ok=true`, `${a.id} cost=1 ok=false`,
  ], 'the limiter was not asked once per message with cost 1');
  // reset(id) once a is gone.
  const start = Date.now();
  while (!calls(h, 'RATE reset').length && Date.now() - start < 2000) await new Promise((r) => setTimeout(r, 20));
  assert.deepStrictEqual(calls(h, 'RATE reset').map((w) => w[0]), [a.id]);

  // b has its own count; size() is what rateLimiterEntries reports.
  b.emit('echo', { i: 0 });
  await b.next('echo');
  const cfg = (await b.ack('config')).data; // b's second message
  assert.deepStrictEqual(cfg, {
    hasCustomRateLimiter: true, hasCustomIPTracker: true, hasCustomClientIdGenerator: true, hasCustomHealthHandler: true,
  });
  b.emit('echo', { i: 2 });
  await b.next('echo');
  b.emit('echo', { i: 3 });
  assert.deepStrictEqual(await b.waitClose(2000), { code: 1008, reason: 'Rate limit exceeded' });
  const styles = new Set(calls(h, 'RATE').map((w) => w[w.length - 1]));
  t.diagnostic(`customRateLimiter called in ${[...styles]}`);
  // A new client: the limiter holds one id (size() = 1) while it is connected.
  const c = await h.ws();
  await wsEcho(c);
  const r = await httpGet(h.port, '/health');
  assert.strictEqual(r.status, 503); // the custom handler answers /health here
  assert.strictEqual(r.json.active, 1);
  assert.strictEqual(r.json.entries, 1, 'rateLimiterEntries is not the limiter\'s size()');
});

test('customHealthHandler(req, stats) -> status, headers, body answers GET /health', async (t) => {
  const h = await custom(t, { LIM_RATE_MAX: '100', LIM_IP_MAX: '10' });
  const a = await h.ws();
  const b = await h.tcp();
  const r = await httpGet(h.port, '/health?probe=1');
  assert.strictEqual(r.status, 503);
  assert.strictEqual(r.headers['x-custom'], 'yes');
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.deepStrictEqual(r.json, { status: 'degraded', path: '/health', method: 'GET', active: 2, entries: 0 });
  // Other paths are not the handler's.
  const other = await httpGet(h.port, '/');
  assert.strictEqual(other.status, 200);
  await wsEcho(a);
  await tcpEcho(b);
});
