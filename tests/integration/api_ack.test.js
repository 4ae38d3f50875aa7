'use strict';
// ACK request/response (PROTOCOL.md §3) through server:onAck handlers of
// fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, record, lineOf, handlerErrorRe, sleep } = require('./apihelp');

// The next text message, as its exact text.
function nextText(c) {
  return new Promise((resolve) => c.ws.once('message', (d) => resolve(d.toString())));
}

test('ACK requests', async (t) => {
  const h = await apiServer(t);

  await t.test('a reply echoes _correlationId (string or number) and carries the return value', async () => {
    const c = await h.client();
    assert.deepStrictEqual(await c.ack('add', { a: 2, b: 40 }),
      { event: 'add', data: { sum: 42 }, _isAck: true, _correlationId: 'c-1' });
    // A numeric id is echoed as a number.
    const text = nextText(c);
    c.sendRaw(JSON.stringify({ event: 'add', data: { a: 1, b: 1 }, _ackName: 'add', _correlationId: 77 }));
    assert.deepStrictEqual(JSON.parse(await text), { event: 'add', data: { sum: 2 }, _isAck: true, _correlationId: 77 });
    await c.next((m) => m._isAck);
    // Ids short and long (kept in the task, or allocated past 63 bytes of JSON), and structured.
    for (const id of ['x'.repeat(61), 'y'.repeat(62), 'z'.repeat(500), { trace: [1, 'two', null] }]) {
      c.sendRaw(JSON.stringify({ event: 'add', data: { a: 1, b: 2 }, _ackName: 'add', _correlationId: id }));
      const reply = await c.next((m) => m._isAck);
      assert.deepStrictEqual(reply, { event: 'add', data: { sum: 3 }, _isAck: true, _correlationId: id });
    }
    await c.close();
  });

  await t.test('without _correlationId the reply has none', async () => {
    const c = await h.client();
    const text = nextText(c);
    c.sendRaw(JSON.stringify({ event: 'add', data: { a: 3, b: 4 }, _ackName: 'add' }));
    assert.deepStrictEqual(JSON.parse(await text), { event: 'add', data: { sum: 7 }, _isAck: true });
    await c.next((m) => m._isAck);
    // _ackName alone (no event) suffices for an ACK.
    const text2 = nextText(c);
    c.sendRaw(JSON.stringify({ data: { a: 5, b: 5 }, _ackName: 'add', _correlationId: 'only-ack-name' }));
    assert.deepStrictEqual(JSON.parse(await text2),
      { event: 'add', data: { sum: 10 }, _isAck: true, _correlationId: 'only-ack-name' });
    await c.close();
  });

  await t.test('concurrent ACKs with distinct ids are each answered with their own result', async () => {
    const c = await h.client();
    const n = 20;
    // Later requests sleep less, so the replies come back out of order.
    const pending = [];
    for (let i = 0; i < n; i++) {
      const id = `cc-${i}`;
      pending.push(c.next((m) => m._isAck && m._correlationId === id, 3000));
      c.sendRaw(JSON.stringify({ event: 'slowadd', data: { a: i, b: 1000, ms: (n - i) * 5 }, _ackName: 'slowadd', _correlationId: id }));
    }
    const replies = await Promise.all(pending);
    for (let i = 0; i < n; i++) {
      assert.deepStrictEqual(replies[i], { event: 'slowadd', data: { sum: i + 1000, a: i, event: 'slowadd' }, _isAck: true, _correlationId: `cc-${i}` });
    }
    await c.close();
  });

  await t.test('a handler that raises gets the error reply, position stripped; the error is logged', async () => {
    const c = await h.client();
    const reply = await c.ack('fail', { id: 5 });
    assert.deepStrictEqual(reply, {
      event: 'fail', data: { error: 'id required: got 5' }, _isAck: true, _correlationId: 'c-1', error: 'id required: got 5',
    });
    // Key order as documented.
    const text = nextText(c);
    c.sendRaw(JSON.stringify({ event: 'fail', data: { id: 6 }, _ackName: 'fail', _correlationId: 'k' }));
    assert.strictEqual(await text,
      '{"event":"fail","data":{"error":"id required: got 6"},"_isAck":true,"_correlationId":"k","error":"id required: got 6"}');
    await h.server.waitForLog(handlerErrorRe('onAck', 'fail', c.id, 'api_app.lua', lineOf('ackfail'), 'id required: got 6'));
    // The connection goes on.
    assert.deepStrictEqual((await c.ack('add', { a: 1, b: 2 })).data, { sum: 3 });
    await c.close();
  });

  await t.test('a handler returning nil sends no reply; false is a reply', async () => {
    const c = await h.client();
    c.sendRaw(JSON.stringify({ event: 'nothing', data: 1, _ackName: 'nothing', _correlationId: 'n-1' }));
    assert.ok(await c.nothing(() => true, 400), 'a reply (or something) came for a nil return');
    assert.deepStrictEqual(await c.ack('falsy'), { event: 'falsy', data: false, _isAck: true, _correlationId: 'c-1' });
    await c.close();
  });

  await t.test('_ackName with no onAck handler is dispatched as a normal event to on(name)', async () => {
    const c = await h.client();
    const text = nextText(c);
    c.sendRaw(JSON.stringify({ event: 'echo', data: { v: 1 }, _ackName: 'echo', _correlationId: 'e-1' }));
    assert.strictEqual(await text, '{"event":"echo","data":{"v":1}}');
    await c.next('echo');
    assert.ok(await c.nothing((m) => m._isAck, 300), 'an ACK reply for a plain on() handler');
    await c.close();
  });

  await t.test('an ACK handler that sleeps replies after it; meanwhile another client is served', async () => {
    const a = await h.client();
    const b = await h.client();
    const seenA = record(a);
    const seenB = record(b);
    const start = Date.now();
    const reply = a.ack('slow', { ms: 100 }, 3000);
    await sleep(10);
    b.emit('echo', 'meanwhile');
    const echo = await b.next('echo', 1000);
    assert.strictEqual(echo.data, 'meanwhile');
    const r = await reply;
    assert.strictEqual(r.event, 'slow');
    assert.strictEqual(r._correlationId, 'c-1');
    assert.strictEqual(r.data.event, 'slow');
    assert.ok(r.data.slept >= 99, `slept only ${r.data.slept} ms`);
    const echoAt = seenB.find((s) => s.msg.event === 'echo').at;
    const replyAt = seenA.find((s) => s.msg._isAck).at;
    assert.ok(replyAt - start >= 95, `the reply came after ${replyAt - start} ms`);
    assert.ok(echoAt < replyAt, 'the other client waited for the sleeping handler');
    await a.close();
    await b.close();
  });

  await t.test('a client that leaves while its ACK handler sleeps: no reply, no crash', async () => {
    const a = await h.client();
    a.sendRaw(JSON.stringify({ event: 'slow', data: { ms: 150 }, _ackName: 'slow', _correlationId: 'gone' }));
    await sleep(20);
    await a.close();
    await sleep(250);
    assert.strictEqual(h.server.proc.exitCode, null, 'the server exited');
    assert.doesNotMatch(h.server.logs(), /handler error in onAck slow/);
    const b = await h.client();
    assert.deepStrictEqual((await b.ack('add', { a: 2, b: 2 })).data, { sum: 4 });
    await b.close();
  });

  await t.test('an ACK returning an unencodable value (a function) gets an error reply', async () => {
    const c = await h.client();
    const r = await c.ack('unencodable');
    assert.strictEqual(r.event, 'unencodable');
    assert.strictEqual(r._isAck, true);
    assert.strictEqual(r._correlationId, 'c-1');
    assert.match(r.error, /cannot encode a value of type function to JSON/);
    assert.deepStrictEqual(r.data, { error: r.error });
    const r2 = await c.ack('unencodable-nested');
    assert.match(r2.error, /function/);
    assert.deepStrictEqual(r2.data, { error: r2.error });
    await h.server.waitForLog(/handler error in onAck unencodable client=[0-9a-f]+: cannot encode a value of type function/);
    assert.deepStrictEqual((await c.ack('add', { a: 1, b: 1 })).data, { sum: 2 });
    await c.close();
  });
});
