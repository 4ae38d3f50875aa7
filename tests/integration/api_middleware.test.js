'use strict';
// server:use middleware: chain order, rejection, ctx.req, waiting
// middleware; through fixtures/api_app.lua (the query's mw= picks the
// first middleware's behaviour).
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, queued } = require('./apihelp');

test('middleware', async (t) => {
  const h = await apiServer(t);

  await t.test('use() runs in registration order before onConnection; a second next() is a no-op', async () => {
    const c = await h.client();
    assert.deepStrictEqual(c.welcome.order, ['first', 'second', 'third']);
    assert.strictEqual(c.welcome.slept, '<nil>');
    assert.ok(await c.nothing((m) => m.event === 'welcome', 200), 'onConnection ran twice');
    c.emit('echo', 1);
    assert.strictEqual((await c.next('echo')).data, 1);
    await c.close();
  });

  await t.test('not calling next() closes 1008 and onConnection does not run', async () => {
    const c = await h.raw({ path: '/?mw=nonext' });
    const closed = await c.waitClose();
    assert.strictEqual(closed.code, 1008);
    assert.ok(!c.queue.some((m) => m.event === 'welcome'), 'onConnection ran for a client middleware did not accept');
  });

  await t.test('ctx:reject("no token") closes 1008 with reason "no token"', async () => {
    const c = await h.raw({ path: '/?mw=reject' });
    assert.deepStrictEqual(await c.waitClose(), { code: 1008, reason: 'no token' });
    assert.ok(!c.queue.some((m) => m.event === 'welcome'), 'onConnection ran for a rejected client');
  });

  await t.test('ctx.req: method, path, parsed query and lower-case headers are visible in middleware', async () => {
    const c = await h.client({ path: '/chat/room?token=abc&x=1%202&flag&plus=a+b', headers: { 'X-Api-Test': 'Hello Value' } });
    assert.deepStrictEqual(c.welcome.mwSeen, {
      method: 'GET',
      path: '/chat/room',
      query: { token: 'abc', x: '1 2', flag: '', plus: 'a b' },
      header: 'Hello Value',
      upperHeader: '<nil>',
      host: `127.0.0.1:${h.port}`,
      id: c.id,
    });
    await c.close();
    // No query string: an empty table (it encodes as {}).
    const d = await h.client({ path: '/' });
    assert.deepStrictEqual(d.welcome.mwSeen.query, {});
    assert.strictEqual(d.welcome.mwSeen.path, '/');
    assert.strictEqual(d.welcome.mwSeen.header, '<nil>');
    await d.close();
  });

  await t.test('a middleware that sleeps 50 ms then calls next() accepts; onConnection runs after; its emit arrives first', async () => {
    const start = Date.now();
    const c = await h.raw({ path: '/?mw=sleep' });
    // Sent at once: held until the client is accepted, so it is answered
    // after the welcome.
    c.emit('echo', 'early');
    const q = await queued(c, 2);
    assert.ok(Date.now() - start >= 45, 'the welcome came before the middleware slept');
    assert.deepStrictEqual(q.map((m) => m.event), ['welcome', 'echo']);
    const [welcome, echo] = q;
    assert.deepStrictEqual(welcome.data.order, ['first', 'second', 'third']);
    assert.ok(welcome.data.slept >= 49, `slept ${welcome.data.slept} ms`);
    assert.strictEqual(echo.data, 'early');
    assert.strictEqual(c.closed, null);
    await c.close();
  });

  await t.test('for an accepted client the onConnection emit is the first message', async () => {
    const c = await h.raw({ path: '/' });
    c.emit('echo', 'x');
    const q = await queued(c, 2);
    assert.deepStrictEqual(q.map((m) => m.event), ['welcome', 'echo']);
    await c.close();
  });
});
