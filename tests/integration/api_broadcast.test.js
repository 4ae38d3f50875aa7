'use strict';
// server:broadcast (with excludeId), ctx:broadcast and server:toId /
// ctx:toId, through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer } = require('./apihelp');

test('broadcast and toId', async (t) => {
  const h = await apiServer(t);

  await t.test('server:broadcast reaches every client, the sender too', async () => {
    const cs = [await h.client(), await h.client(), await h.client()];
    cs[0].emit('bcast', { payload: { hello: 'all' } });
    for (const c of cs) assert.deepStrictEqual(await c.next((m) => m.event === 'bc' && m.data.hello === 'all'), { event: 'bc', data: { hello: 'all' } });
    for (const c of cs) assert.ok(await c.nothing((m) => m.event === 'bc', 100), 'a broadcast arrived twice');
    for (const c of cs) await c.close();
  });

  await t.test('server:broadcast with excludeId skips exactly that client', async () => {
    const cs = [await h.client(), await h.client(), await h.client()];
    cs[0].emit('bcast', { payload: 'not-b', exclude: cs[1].id });
    assert.strictEqual((await cs[0].next((m) => m.event === 'bc' && m.data === 'not-b')).data, 'not-b');
    assert.strictEqual((await cs[2].next((m) => m.event === 'bc' && m.data === 'not-b')).data, 'not-b');
    assert.ok(await cs[1].nothing((m) => m.event === 'bc', 300), 'the excluded client got the broadcast');
    // An unknown excludeId excludes nobody.
    cs[0].emit('bcast', { payload: 'everyone', exclude: 'no-such-id' });
    for (const c of cs) await c.next((m) => m.event === 'bc' && m.data === 'everyone');
    for (const c of cs) await c.close();
  });

  await t.test('ctx:broadcast skips the sender and returns true', async () => {
    const cs = [await h.client(), await h.client(), await h.client()];
    cs[0].emit('ctx-bcast', { from: 'a' });
    assert.strictEqual((await cs[0].next('ctx-bcast')).data, true);
    for (const c of cs.slice(1)) assert.deepStrictEqual(await c.next((m) => m.event === 'bc' && m.data.from === 'a'), { event: 'bc', data: { from: 'a' } });
    assert.ok(await cs[0].nothing((m) => m.event === 'bc', 300), 'ctx:broadcast reached the sender');
    for (const c of cs) await c.close();
  });

  await t.test('server:toId reaches exactly one client and returns true; false for an unknown id', async () => {
    const cs = [await h.client(), await h.client(), await h.client()];
    const r = await cs[0].ack('to-id', { id: cs[1].id, payload: { secret: 1 } });
    assert.deepStrictEqual(r.data, { result: true, type: 'boolean' });
    assert.deepStrictEqual(await cs[1].next('direct'), { event: 'direct', data: { secret: 1 } });
    assert.ok(await cs[0].nothing((m) => m.event === 'direct', 300));
    assert.ok(await cs[2].nothing((m) => m.event === 'direct', 50));
    assert.deepStrictEqual((await cs[0].ack('to-id', { id: 'ffffffffffffffff', payload: 1 })).data, { result: false, type: 'boolean' });
    assert.deepStrictEqual((await cs[0].ack('to-id', { id: '', payload: 1 })).data, { result: false, type: 'boolean' });
    // ctx:toId: true, or nil + "closed" for an id that is not there.
    assert.deepStrictEqual((await cs[0].ack('ctx-to-id', { id: cs[2].id, payload: 2 })).data, { a: true, b: '<nil>' });
    assert.deepStrictEqual(await cs[2].next('direct'), { event: 'direct', data: 2 });
    assert.deepStrictEqual((await cs[0].ack('ctx-to-id', { id: 'nobody', payload: 2 })).data, { a: '<nil>', b: 'closed' });
    // A client that left is unknown.
    const goneId = cs[1].id;
    await cs[1].close();
    let last;
    for (let i = 0; i < 40; i++) {
      last = (await cs[0].ack('to-id', { id: goneId, payload: 3 })).data;
      if (last.result === false) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.deepStrictEqual(last, { result: false, type: 'boolean' });
    for (const c of [cs[0], cs[2]]) await c.close();
  });
});
