'use strict';
// Binary events: [u32 BE header length][{"event":"name"}][bytes] both ways
// (PROTOCOL.md §3), through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, binaryMessage, parseBinary } = require('./apihelp');

function allBytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i & 255;
  return b;
}

test('binary events', async (t) => {
  const h = await apiServer(t);

  for (const [what, bytes] of [
    ['0 bytes', Buffer.alloc(0)],
    ['1 byte', Buffer.from([0xff])],
    ['a NUL byte', Buffer.from([0])],
    ['100 KiB with every byte value', allBytes(100 * 1024)],
  ]) {
    await t.test(`client -> server: ${what} reach on(event) as a Lua string with isBinary; emitBinary returns them`, async () => {
      const c = await h.client();
      c.sendRaw(binaryMessage('bin', bytes));
      assert.deepStrictEqual((await c.next('bin-info', 3000)).data,
        { len: bytes.length, isBinary: true, event: 'bin', type: 'string' });
      const back = await c.next((m) => m.binary !== undefined, 3000);
      const p = parseBinary(back.binary);
      assert.strictEqual(p.headerText, '{"event":"bin"}');
      assert.strictEqual(p.hlen, Buffer.byteLength('{"event":"bin"}'));
      assert.strictEqual(back.binary.length, 4 + p.hlen + bytes.length);
      assert.ok(p.payload.equals(bytes), `payload differs (${p.payload.length} bytes back for ${bytes.length})`);
      await c.close();
    });
  }

  await t.test('a header with extra keys (v3 "_binary") still dispatches by event', async () => {
    const c = await h.client();
    c.sendRaw(binaryMessage('bin', Buffer.from('abc'), { event: 'bin', _binary: true }));
    assert.deepStrictEqual((await c.next('bin-info')).data, { len: 3, isBinary: true, event: 'bin', type: 'string' });
    const p = parseBinary((await c.next((m) => m.binary !== undefined)).binary);
    assert.strictEqual(p.payload.toString(), 'abc');
    await c.close();
  });

  await t.test('server:broadcastBinary reaches every client in the v3 layout; ctx:broadcastBinary skips the sender', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('bcast-bin', 'héllo\u0000!');
    const want = Buffer.from('héllo\u0000!', 'utf8');
    for (const c of [a, b]) {
      const m = await c.next((x) => x.binary !== undefined);
      const p = parseBinary(m.binary);
      assert.strictEqual(m.binary.readUInt32BE(0), Buffer.byteLength('{"event":"bb"}'));
      assert.deepStrictEqual(p.header, { event: 'bb' });
      assert.ok(p.payload.equals(want), `payload ${p.payload.toString('hex')}`);
    }
    a.emit('ctx-bcast-bin', 'others');
    const m = await b.next((x) => x.binary !== undefined);
    assert.strictEqual(parseBinary(m.binary).payload.toString(), 'others');
    assert.ok(await a.nothing((x) => x.binary !== undefined, 300), 'ctx:broadcastBinary reached the sender');
    await a.close();
    await b.close();
  });
});
