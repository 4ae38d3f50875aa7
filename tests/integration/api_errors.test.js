'use strict';
// Handler errors are caught and logged with file:line and a traceback; the
// server and the client's connection go on. Through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, lineOf, handlerErrorRe } = require('./apihelp');

const FILE = 'api_app.lua';

test('handler errors', async (t) => {
  const h = await apiServer(t);

  // After each case: the process is up and serves a new client.
  async function alive() {
    assert.strictEqual(h.server.proc.exitCode, null, 'the process exited');
    const c = await h.client();
    c.emit('echo', 'alive');
    assert.strictEqual((await c.next('echo')).data, 'alive');
    await c.close();
  }

  await t.test('on(): logged with file:line and traceback; the client stays and its next event works; others unaffected', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('boom', 1);
    assert.strictEqual((await a.next('before-boom')).data, true);
    const m = await h.server.waitForLog(handlerErrorRe('on', 'boom', a.id, FILE, lineOf('boom'), 'kaboom 1'));
    assert.match(m[0], /stack traceback:/);
    a.emit('echo', 'next');
    assert.strictEqual((await a.next('echo')).data, 'next');
    assert.strictEqual(a.closed, null);
    b.emit('echo', 'other');
    assert.strictEqual((await b.next('echo')).data, 'other');
    // Again, and an ACK on the same connection.
    a.emit('boom', 2);
    await h.server.waitForLog(handlerErrorRe('on', 'boom', a.id, FILE, lineOf('boom'), 'kaboom 2'));
    assert.deepStrictEqual((await a.ack('add', { a: 1, b: 2 })).data, { sum: 3 });
    await a.close();
    await b.close();
  });

  await t.test('an encoding error in ctx:emit is raised in the handler that sent it', async () => {
    const c = await h.client();
    c.emit('encode-error');
    await h.server.waitForLog(handlerErrorRe('on', 'encode-error', c.id, FILE, lineOf('encodeerror'),
      'cannot encode a value of type function to JSON'));
    assert.ok(await c.nothing((m) => m.event === 'bad', 200));
    c.emit('echo', 'ok');
    assert.strictEqual((await c.next('echo')).data, 'ok');
    await c.close();
  });

  await t.test('onConnection: logged with file:line; the client stays connected', async () => {
    const c = await h.client({ path: '/?boom=connection' });
    await h.server.waitForLog(handlerErrorRe('onConnection', null, c.id, FILE, lineOf('connerror'), 'connection exploded'));
    c.emit('echo', 'after');
    assert.strictEqual((await c.next('echo')).data, 'after');
    assert.strictEqual(c.closed, null);
    await c.close();
    await alive();
  });

  await t.test('middleware: logged with file:line; the client is closed 1008', async () => {
    const c = await h.raw({ path: '/?mw=error' });
    const closed = await c.waitClose();
    assert.strictEqual(closed.code, 1008);
    assert.ok(!c.queue.some((m) => m.event === 'welcome'), 'onConnection ran after a middleware error');
    await h.server.waitForLog(new RegExp(`handler error in use client=[0-9a-f]{16}: [^\\n]*${FILE}:${lineOf('mwerror')}: middleware exploded\\n[\\s\\S]*?stack traceback:`));
    await alive();
  });

  await t.test('onDisconnect: logged with file:line', async () => {
    const c = await h.client();
    c.emit('boom-on-disconnect');
    await c.next('boom-on-disconnect');
    await c.close();
    await h.server.waitForLog(handlerErrorRe('onDisconnect', null, c.id, FILE, lineOf('discerror'), 'disconnect exploded'));
    await alive();
  });

  await t.test('timer: logged with file:line', async () => {
    const c = await h.client();
    c.emit('timer-boom');
    await c.next('timer-boom');
    await h.server.waitForLog(handlerErrorRe('timer', null, '-', FILE, lineOf('timerboom'), 'timer exploded'));
    c.emit('echo', 'after timer');
    assert.strictEqual((await c.next('echo')).data, 'after timer');
    await c.close();
    await alive();
  });

  await t.test('invalid messages are ignored, firing onInvalidMessage once each; the connection stays', async () => {
    const c = await h.client();
    const sent = [
      '{not json',
      '{"data":1}',
      '{"event":"","data":1}',
      '[1,2]',
      '{"event":"echo","data":{bad}}',
      '{"event":"ping","data":1}',
      '{"event":"connect"}',
      '{"event":"disconnect"}',
      '{"event":"error","data":"x"}',
    ];
    for (const text of sent) c.sendRaw(text);
    c.sendRaw(Buffer.from([0, 0, 0, 50, 1, 2])); // a binary header longer than the message
    c.emit('echo', 'still');
    assert.strictEqual((await c.next('echo')).data, 'still');
    assert.ok(await c.nothing((m) => m.event !== 'echo', 100), 'an invalid message reached a handler');
    const calls = () => [...h.server.logs().matchAll(/INVALID (.*)$/gm)].map((m) => JSON.parse(m[1])).filter((r) => r.clientId === c.id);
    const want = sent.length + 1;
    for (let i = 0; i < 100 && calls().length < want; i++) await new Promise((r) => setTimeout(r, 20));
    const got = calls();
    assert.strictEqual(got.length, want, `onInvalidMessage calls: ${JSON.stringify(got)}`);
    for (const r of got) assert.ok(typeof r.reason === 'string' && r.reason.length > 0, `no reason: ${JSON.stringify(r)}`);
    assert.strictEqual(c.closed, null);
    await c.close();
  });
});
