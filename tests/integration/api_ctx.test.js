'use strict';
// The ctx userdata: fields, clientInfo, metadata, close, a ctx kept after
// its client left; through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, parseBinary } = require('./apihelp');

test('ctx', async (t) => {
  const h = await apiServer(t);

  await t.test('ctx.id is the id the client learnt in onConnection, and is listed by getClients', async () => {
    const c = await h.client();
    assert.match(c.id, /^[0-9a-f]{16}$/);
    assert.strictEqual(c.welcome.mwSeen.id, c.id, 'the middleware saw another id');
    const info = (await c.ack('info')).data;
    assert.strictEqual(info.id, c.id);
    assert.strictEqual(info.clientInfo.id, c.id);
    const d = await h.client();
    assert.notStrictEqual(d.id, c.id);
    const listed = (await c.ack('clients')).data.map((x) => x.id);
    assert.ok(listed.includes(c.id) && listed.includes(d.id), `getClients: ${listed}`);
    await c.close();
    await d.close();
  });

  await t.test('ctx.event and ctx.isBinary', async () => {
    const c = await h.client();
    c.emit('describe', 1);
    const m = await c.next('described');
    assert.strictEqual(m.data.event, 'describe');
    assert.strictEqual(m.data.isBinary, false);
    const info = (await c.ack('info')).data;
    assert.strictEqual(info.event, 'info');
    assert.strictEqual(info.isBinary, false);
    await c.close();
  });

  await t.test('ctx.clientInfo: id, protocol, remoteAddress, connectedAt, rooms, message counts', async () => {
    const before = Date.now();
    const c = await h.client();
    const after = Date.now();
    c.emit('join-room', 'info-room');
    await c.next('joined-room');
    c.emit('echo', 1);
    await c.next('echo');
    const r = (await c.ack('info')).data;
    const ci = r.clientInfo;
    assert.strictEqual(ci.id, c.id);
    assert.strictEqual(ci.protocol, 'ws');
    assert.ok(['127.0.0.1', '::ffff:127.0.0.1'].includes(ci.remoteAddress), `remoteAddress ${ci.remoteAddress}`);
    assert.deepStrictEqual(ci.rooms, ['info-room']);
    assert.strictEqual(ci.roomsIsArray, true);
    // Received: join-room, echo, info. Sent: welcome, joined-room, echo.
    assert.strictEqual(ci.messagesReceived, 3);
    assert.strictEqual(ci.messagesSent, 3);
    // connectedAt is a time in ms on the clock of stelar.now() / Date.now().
    assert.strictEqual(typeof ci.connectedAt, 'number');
    assert.ok(ci.connectedAt >= before - 1000 && ci.connectedAt <= after + 1000,
      `connectedAt ${ci.connectedAt} is not between ${before} and ${after} (stelar.now() said ${r.now})`);
    assert.ok(ci.connectedAt <= r.now, `connectedAt ${ci.connectedAt} is after stelar.now() ${r.now}`);
    await c.close();
  });

  await t.test('setMetadata/getMetadata persist across events and hold any Lua value', async () => {
    const c = await h.client();
    c.emit('meta-set', { key: 'role', value: { name: 'admin', level: 3 } });
    await c.next('meta-set');
    assert.deepStrictEqual((await c.ack('meta-get', { key: 'role' })).data, { value: { name: 'admin', level: 3 }, type: 'table' });
    assert.deepStrictEqual((await c.ack('meta-get', { key: 'unset' })).data, { value: '<nil>', type: 'nil' });
    c.emit('meta-lua');
    await c.next('meta-lua');
    assert.deepStrictEqual((await c.ack('meta-lua-check')).data, { fn: 42, same: true, numeric: 'numeric key' });
    // Metadata is per client.
    const d = await h.client();
    assert.deepStrictEqual((await d.ack('meta-get', { key: 'role' })).data, { value: '<nil>', type: 'nil' });
    await c.close();
    await d.close();
  });

  await t.test('metadata is readable in onDisconnect', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('watch', { room: 'meta-room', name: 'bob' });
    await a.next('watch');
    await a.close();
    const gone = await b.next((m) => m.event === 'gone' && m.data.id === a.id, 3000);
    assert.strictEqual(gone.data.name, 'bob');
    assert.strictEqual(gone.data.room, 'meta-room');
    await b.close();
  });

  await t.test('ctx:close(4000, "bye") gives the client 4000/"bye"; ctx:close() 1000', async () => {
    const c = await h.client();
    c.emit('close-me', { code: 4000, reason: 'bye' });
    assert.deepStrictEqual(await c.waitClose(), { code: 4000, reason: 'bye' });
    const d = await h.client();
    d.emit('close-me', {});
    assert.strictEqual((await d.waitClose()).code, 1000);
    const e = await h.client();
    e.emit('close-me', { code: 1012, reason: 'restarting' }); // registered: service restart
    assert.deepStrictEqual(await e.waitClose(), { code: 1012, reason: 'restarting' });
  });

  await t.test('ctx:close with a code no endpoint may send raises, and the client stays', async () => {
    const c = await h.client();
    const r = await c.ack('close-bad-codes');
    assert.deepStrictEqual(Object.keys(r.data).sort(), ['1004', '1005', '1006', '1015', '2000', '4294968296', '5000', '999']);
    for (const [code, err] of Object.entries(r.data)) assert.match(err, /bad argument #2 .*close code must be/, code);
    c.emit('close-me', { code: 4001 });
    assert.strictEqual((await c.waitClose()).code, 4001, 'still open after the refused calls');
  });

  await t.test('ctx:emit / emitBinary return true while the client is there', async () => {
    const c = await h.client();
    const r = await c.ack('emit-returns');
    assert.deepStrictEqual(r.data, { emit: true, second: '<nil>', emitBinary: true });
    assert.deepStrictEqual(await c.next('emitted'), { event: 'emitted', data: 1 });
    const bin = await c.next((m) => m.binary !== undefined);
    assert.deepStrictEqual(parseBinary(bin.binary).header, { event: 'emitted-bin' });
    assert.strictEqual(parseBinary(bin.binary).payload.toString(), 'xy');
    await c.close();
  });

  await t.test('ctx methods called on anything but a ctx (a table, a string, a number, the server, other userdata, a file, stelar.null) raise', async () => {
    const c = await h.client();
    const r = await c.ack('bad-self');
    assert.strictEqual(r.data.length, 9);
    for (const err of r.data) assert.match(err, /bad argument #1 .*stelar\.ctx expected/);
    await c.close();
  });

  await t.test('a ctx kept after disconnect: sending gives nil, "closed"; ctx.id still reads', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('meta-set', { key: 'name', value: 'kept-name' });
    await a.next('meta-set');
    a.emit('keep', { after: 300 });
    await a.next('keep');
    await a.close();
    const report = await b.next('kept-report', 3000);
    assert.deepStrictEqual(report.data, {
      emit: ['<nil>', 'closed'],
      emitBinary: ['<nil>', 'closed'],
      joinRoom: ['<nil>', 'closed'],
      close: ['<nil>', 'closed'],
      send: ['<nil>', 'closed'],
      id: a.id,
      keptId: a.id,
      infoId: a.id,
      tostring: `stelar.ctx(${a.id}, closed)`,
      meta: 'kept-name',
    });
    // The server is fine afterwards.
    b.emit('echo', 'still here');
    assert.strictEqual((await b.next('echo')).data, 'still here');
    await b.close();
  });

  await t.test('ctx:getClients([room]) matches server:getClients([room])', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('join-room', 'gc-room');
    await a.next('joined-room');
    const viaCtx = (await b.ack('ctx-clients')).data;
    const viaServer = (await b.ack('clients')).data;
    const byId = (list) => Object.fromEntries(list.map((x) => [x.id, x]));
    assert.deepStrictEqual(byId(viaCtx), byId(viaServer));
    assert.deepStrictEqual(byId(viaCtx)[a.id], { id: a.id, rooms: ['gc-room'] });
    assert.deepStrictEqual(byId(viaCtx)[b.id], { id: b.id, rooms: [] });
    assert.deepStrictEqual((await b.ack('ctx-clients', 'gc-room')).data, [{ id: a.id, rooms: ['gc-room'] }]);
    await a.close();
    await b.close();
  });
});
