'use strict';
// Room limits and the v3 hooks, from Lua (issue 5, PROTOCOL.md §5):
// maxRoomsPerClient / maxRooms at their edges with their hooks, the hooks
// that may refuse (onClientJoinRoom, onClientLeaveRoom, onBeforeBroadcast),
// and the info tables of onClientConnect / onClientDisconnect /
// onInvalidMessage.
const test = require('node:test');
const assert = require('node:assert');
const { limServer, wsEcho, tcpEcho, T } = require('./limitshelp');

// Joins room; resolves true on joined-room, false when nothing comes back.
async function join(c, room) {
  c.emit('join-room', room);
  return !(await c.nothing((m) => m.event === 'joined-room' && m.data === room, 300));
}

async function roomsOf(c) {
  const r = (await c.ack('rooms')).data;
  return { mine: [...r.mine].sort(), all: [...r.all].sort() };
}

test('maxRoomsPerClient = 2 and maxRooms = 3: joins at the edge, refusals silent, hook info exact', async (t) => {
  const h = await limServer(t, {
    opts: { maxRoomsPerClient: 2, maxRooms: 3, tcpPort: 0 },
    hooks: ['onMaxRoomsReached', 'onMaxRoomsPerClientReached'],
  });
  const a = await h.ws();
  const b = await h.ws();

  assert.strictEqual(await join(a, 'r1'), true);
  assert.strictEqual(await join(a, 'r2'), true);
  // A's third room: refused, no reply, the per-client hook.
  assert.strictEqual(await join(a, 'r3'), false, 'a third room for one client was joined');
  assert.deepStrictEqual((await h.waitHook('onMaxRoomsPerClientReached', 1))[0],
    { clientId: a.id, room: 'r3', currentRooms: 2, max: 2 });
  assert.deepStrictEqual(await roomsOf(a), { mine: ['r1', 'r2'], all: ['r1', 'r2'] });
  // Joining a room A is already in is no new room.
  assert.strictEqual(await join(a, 'r1'), true);
  assert.strictEqual(h.hooks('onMaxRoomsPerClientReached').length, 1);

  // B makes the third room (the edge), then a fourth is refused.
  assert.strictEqual(await join(b, 'r3'), true);
  assert.strictEqual(await join(b, 'r4'), false, 'a fourth room was created');
  assert.deepStrictEqual((await h.waitHook('onMaxRoomsReached', 1))[0],
    { clientId: b.id, room: 'r4', totalRooms: 3, max: 3 });
  // An existing room can still be joined at the total limit.
  assert.strictEqual(await join(b, 'r1'), true);
  assert.deepStrictEqual(await roomsOf(b), { mine: ['r1', 'r3'], all: ['r1', 'r2', 'r3'] });

  // Over TCP: JOIN of a new room is refused the same way (no joined-room).
  const c = await h.tcp();
  c.join('r5');
  assert.ok(await c.nothing('joined-room', 300), 'a TCP client created a fourth room');
  assert.deepStrictEqual((await h.waitHook('onMaxRoomsReached', 2))[1],
    { clientId: c.id, room: 'r5', totalRooms: 3, max: 3 });
  c.join('r2');
  assert.strictEqual((await c.next('joined-room')).json(), 'r2');

  // A leaves r2; C is still in it, so there are still 3 rooms. C leaves too:
  // r2 is gone and a new room fits again.
  a.emit('leave-room', 'r2');
  assert.strictEqual((await a.next('left-room')).data, 'r2');
  assert.strictEqual(await join(a, 'r4'), false);
  c.leave('r2');
  assert.strictEqual((await c.next('left-room')).json(), 'r2');
  assert.strictEqual(await join(a, 'r4'), true);
  assert.deepStrictEqual(await roomsOf(a), { mine: ['r1', 'r4'], all: ['r1', 'r3', 'r4'] });
  assert.strictEqual((await h.health()).json.totalRooms, 3);

  await wsEcho(a);
  await wsEcho(b);
  await tcpEcho(c);
  h.alive();
});

test('updateConfig({maxRoomsPerClient = 1}) applies to the next join', async (t) => {
  const h = await limServer(t, { hooks: ['onMaxRoomsPerClientReached'] });
  const a = await h.ws();
  assert.strictEqual(await join(a, 'x1'), true);
  assert.strictEqual(await join(a, 'x2'), true);
  await a.ack('update', { maxRoomsPerClient: 1 });
  assert.strictEqual(await join(a, 'x3'), false);
  assert.deepStrictEqual((await h.waitHook('onMaxRoomsPerClientReached', 1))[0],
    { clientId: a.id, room: 'x3', currentRooms: 2, max: 1 });
  assert.deepStrictEqual((await roomsOf(a)).mine, ['x1', 'x2']);
});

test('onClientJoinRoom / onClientLeaveRoom returning false refuse, without a reply', async (t) => {
  const h = await limServer(t, {
    opts: { tcpPort: 0 },
    hooks: ['onClientJoinRoom', 'onClientLeaveRoom'],
    veto: ['onClientJoinRoom', 'onClientLeaveRoom'],
  });
  const a = await h.ws();
  assert.strictEqual(await join(a, 'deny-vip'), false, 'a join refused by the hook was answered');
  assert.strictEqual(await join(a, 'lobby'), true);
  const joins = await h.waitHook('onClientJoinRoom', 2);
  assert.deepStrictEqual(joins[0], { clientId: a.id, room: 'deny-vip', metadata: {} });
  assert.deepStrictEqual(joins[1], { clientId: a.id, room: 'lobby', metadata: {} });
  assert.deepStrictEqual(await roomsOf(a), { mine: ['lobby'], all: ['lobby'] });

  // Leaving a room the hook allows: answered, with the hook's info.
  a.emit('leave-room', 'lobby');
  assert.strictEqual((await a.next('left-room')).data, 'lobby');
  const leaves = await h.waitHook('onClientLeaveRoom', 1);
  assert.deepStrictEqual(leaves[0], { clientId: a.id, room: 'lobby' });

  // TCP: JOIN refused by the hook gets no joined-room either.
  const c = await h.tcp();
  c.join('deny-tcp');
  assert.ok(await c.nothing('joined-room', 300));
  c.join('ok-tcp');
  assert.strictEqual((await c.next('joined-room')).json(), 'ok-tcp');
  await tcpEcho(c);
  await wsEcho(a);
});

test('onClientLeaveRoom returning false keeps the client in the room', async (t) => {
  // Only the leave hook vetoes here, so a "deny" room can be joined.
  const h = await limServer(t, { hooks: ['onClientLeaveRoom'], veto: ['onClientLeaveRoom'] });
  const a = await h.ws();
  assert.strictEqual(await join(a, 'deny-stuck'), true);
  a.emit('leave-room', 'deny-stuck');
  assert.ok(await a.nothing((m) => m.event === 'left-room', 300), 'a refused leave was answered');
  assert.deepStrictEqual((await h.waitHook('onClientLeaveRoom', 1))[0], { clientId: a.id, room: 'deny-stuck' });
  assert.deepStrictEqual((await roomsOf(a)).mine, ['deny-stuck']);
  await wsEcho(a);
});

test('ctx:joinRoom / ctx:leaveRoom from a handler obey the same limits and hooks', async (t) => {
  const h = await limServer(t, {
    opts: { maxRoomsPerClient: 1 },
    hooks: ['onClientJoinRoom', 'onClientLeaveRoom', 'onMaxRoomsPerClientReached'],
    veto: ['onClientJoinRoom', 'onClientLeaveRoom'],
  });
  const a = await h.ws();
  const viaCtx = async (what, room) => {
    a.emit(what, room);
    return (await a.next(what)).data;
  };
  assert.deepStrictEqual(await viaCtx('join-ctx', 'deny-a'), { room: 'deny-a', ok: false, err: 'refused' });
  assert.deepStrictEqual(await viaCtx('join-ctx', 'r1'), { room: 'r1', ok: true, err: 'none' });
  assert.deepStrictEqual(await viaCtx('join-ctx', 'r2'), { room: 'r2', ok: false, err: 'refused' });
  const joins = await h.waitHook('onClientJoinRoom', 3);
  assert.deepStrictEqual(joins.map((j) => [j.clientId, j.room]), [[a.id, 'deny-a'], [a.id, 'r1'], [a.id, 'r2']]);
  assert.deepStrictEqual((await h.waitHook('onMaxRoomsPerClientReached', 1))[0],
    { clientId: a.id, room: 'r2', currentRooms: 1, max: 1 });
  // A join from a handler is not answered with joined-room (the handler decides what to say).
  assert.ok(a.queue.every((m) => m.event !== 'joined-room'));
  assert.deepStrictEqual(await roomsOf(a), { mine: ['r1'], all: ['r1'] });
  assert.deepStrictEqual(await viaCtx('leave-ctx', 'r1'), { room: 'r1', ok: true, err: 'none' });
  assert.deepStrictEqual((await h.waitHook('onClientLeaveRoom', 1))[0], { clientId: a.id, room: 'r1' });
  assert.deepStrictEqual(await roomsOf(a), { mine: [], all: [] });
  await wsEcho(a);
});

test('onBeforeBroadcast returning false cancels server:broadcast and ctx:broadcast', async (t) => {
  const h = await limServer(t, { hooks: ['onBeforeBroadcast'], veto: ['onBeforeBroadcast'] });
  const a = await h.ws();
  const b = await h.ws();

  a.emit('shout', { deny: true, n: 1 });
  assert.ok(await b.nothing('shouted', 400), 'a cancelled server:broadcast reached b');
  assert.ok(await a.nothing('shouted', 50), 'a cancelled server:broadcast reached a');
  assert.deepStrictEqual((await h.waitHook('onBeforeBroadcast', 1))[0],
    { event: 'shouted', data: { deny: true, n: 1 } });

  a.emit('shout', { n: 2 });
  assert.deepStrictEqual((await b.next('shouted')).data, { n: 2 });
  assert.deepStrictEqual((await a.next('shouted')).data, { n: 2 });

  // ctx:broadcast: excludeId is the sender; cancelled the same way.
  a.emit('shout-others', { deny: true, n: 3 });
  assert.ok(await b.nothing('shouted', 400), 'a cancelled ctx:broadcast reached b');
  a.emit('shout-others', { n: 4 });
  assert.deepStrictEqual((await b.next('shouted')).data, { n: 4 });
  assert.ok(await a.nothing('shouted', 200), 'ctx:broadcast reached its sender');
  const calls = await h.waitHook('onBeforeBroadcast', 4);
  assert.deepStrictEqual(calls.slice(2), [
    { event: 'shouted', data: { deny: true, n: 3 }, excludeId: a.id },
    { event: 'shouted', data: { n: 4 }, excludeId: a.id },
  ]);
  await wsEcho(a);
  await wsEcho(b);
});

test('onClientConnect and onClientDisconnect: id, ip, protocol, metadata, rooms at disconnect', async (t) => {
  const h = await limServer(t, {
    opts: { tcpPort: 0 },
    hooks: ['onClientConnect', 'onClientDisconnect'],
  });
  const a = await h.ws();
  const c = await h.tcp();
  const connects = await h.waitHook('onClientConnect', 2);
  assert.deepStrictEqual(connects[0], { clientId: a.id, ip: '127.0.0.1', protocol: 'ws', metadata: {} });
  assert.deepStrictEqual(connects[1], { clientId: c.id, ip: '127.0.0.1', protocol: 'tcp', metadata: {} });

  assert.strictEqual(await join(a, 'alpha'), true);
  assert.strictEqual(await join(a, 'beta'), true);
  c.join('gamma');
  await c.next('joined-room');
  await a.close();
  const gone = await h.waitHook('onClientDisconnect', 1);
  gone[0].rooms.sort();
  assert.deepStrictEqual(gone[0], { clientId: a.id, ip: '127.0.0.1', protocol: 'ws', rooms: ['alpha', 'beta'] });
  await c.destroy();
  const gone2 = await h.waitHook('onClientDisconnect', 2);
  assert.deepStrictEqual(gone2[1], { clientId: c.id, ip: '127.0.0.1', protocol: 'tcp', rooms: ['gamma'] });
  // A client without rooms: an empty array, not an object.
  const b = await h.ws();
  await b.close();
  const gone3 = await h.waitHook('onClientDisconnect', 3);
  assert.deepStrictEqual(gone3[2].rooms, []);
  await wsEcho(await h.ws());
});

test('onInvalidMessage: bad JSON and a missing event, over both transports; the client stays', async (t) => {
  const h = await limServer(t, { opts: { tcpPort: 0 }, hooks: ['onInvalidMessage'] });
  const a = await h.ws();
  a.sendRaw('{not json');
  a.sendRaw(JSON.stringify({ data: 1 }));
  const calls = await h.waitHook('onInvalidMessage', 2);
  for (const call of calls) {
    assert.strictEqual(call.clientId, a.id);
    assert.strictEqual(call.protocol, 'ws');
    assert.strictEqual(typeof call.reason, 'string');
    assert.ok(call.reason.length > 0);
  }
  await wsEcho(a);
  const c = await h.tcp();
  c.send(T.JSON, 'echo', '{oops');
  const tcpCall = (await h.waitHook('onInvalidMessage', 3))[2];
  assert.strictEqual(tcpCall.clientId, c.id);
  assert.strictEqual(tcpCall.protocol, 'tcp');
  await tcpEcho(c);
});
