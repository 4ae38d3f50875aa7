'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture } = require('./harness');

test('an event round-trips through a Lua handler', async (t) => {
  const server = await startServer(fixture('echo.lua'));
  t.after(() => server.stop());
  const c = await connect(server.port);
  c.emit('echo', { text: 'héllo', n: 42, list: [1, 2, 3], nested: { ok: true } });
  const reply = await c.next('echo');
  assert.deepStrictEqual(reply, { event: 'echo', data: { text: 'héllo', n: 42, list: [1, 2, 3], nested: { ok: true } } });
  await c.close();
});
