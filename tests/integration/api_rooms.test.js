'use strict';
// Rooms: the reserved join-room/leave-room events, ctx:joinRoom/leaveRoom,
// server:to / ctx:to, and the room queries, through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, poll } = require('./apihelp');

const sorted = (a) => [...a].sort();

async function rooms(c) {
  return (await c.ack('rooms')).data;
}

async function members(c, room) {
  return (await c.ack('room-members', room)).data;
}

test('rooms', async (t) => {
  const h = await apiServer(t);

  await t.test('join-room / leave-room reply joined-room / left-room with the room name', async () => {
    const c = await h.client();
    c.emit('join-room', 'r-basic');
    assert.deepStrictEqual(await c.next('joined-room'), { event: 'joined-room', data: 'r-basic' });
    assert.deepStrictEqual(await members(c, 'r-basic'), [c.id]);
    assert.deepStrictEqual((await c.ack('info')).data.clientInfo.rooms, ['r-basic']);
    c.emit('leave-room', 'r-basic');
    assert.deepStrictEqual(await c.next('left-room'), { event: 'left-room', data: 'r-basic' });
    assert.deepStrictEqual(await members(c, 'r-basic'), []);
    assert.ok(!(await rooms(c)).includes('r-basic'), 'the empty room is still listed');
    // A room name that is not a non-empty string is refused without a reply.
    c.emit('join-room', '');
    c.emit('join-room', 5);
    assert.ok(await c.nothing((m) => m.event === 'joined-room', 300));
    await c.close();
  });

  await t.test('ctx:joinRoom / ctx:leaveRoom return true and send no joined-room', async () => {
    const c = await h.client();
    c.emit('join-ctx', 'r-ctx');
    assert.deepStrictEqual((await c.next('join-ctx')).data, { room: 'r-ctx', ok: true, err: '<nil>' });
    assert.deepStrictEqual(await members(c, 'r-ctx'), [c.id]);
    assert.ok((await rooms(c)).includes('r-ctx'));
    c.emit('leave-ctx', 'r-ctx');
    assert.deepStrictEqual((await c.next('leave-ctx')).data, { room: 'r-ctx', ok: true, err: '<nil>' });
    assert.deepStrictEqual(await members(c, 'r-ctx'), []);
    assert.ok(await c.nothing((m) => m.event === 'joined-room' || m.event === 'left-room', 200));
    await c.close();
  });

  await t.test('ctx:joinRoom past maxRoomsPerClient (9) returns nil, "refused"', async () => {
    const c = await h.client();
    for (let i = 1; i <= 9; i++) {
      c.emit('join-ctx', `lim-${i}`);
      assert.deepStrictEqual((await c.next('join-ctx')).data, { room: `lim-${i}`, ok: true, err: '<nil>' });
    }
    c.emit('join-ctx', 'lim-10');
    assert.deepStrictEqual((await c.next('join-ctx')).data, { room: 'lim-10', ok: '<nil>', err: 'refused' });
    assert.deepStrictEqual(await members(c, 'lim-10'), []);
    // Joining a room it is in already is not a new room.
    c.emit('join-ctx', 'lim-1');
    assert.deepStrictEqual((await c.next('join-ctx')).data, { room: 'lim-1', ok: true, err: '<nil>' });
    assert.strictEqual((await c.ack('info')).data.clientInfo.rooms.length, 9);
    await c.close();
  });

  await t.test('server:to(room) reaches the members only; ctx:to(room) skips the sender', async () => {
    const a = await h.client();
    const b = await h.client();
    const out = await h.client();
    for (const c of [a, b]) {
      c.emit('join-room', 'r-to');
      await c.next('joined-room');
    }
    out.emit('to-room', { room: 'r-to', payload: { n: 1 } });
    for (const c of [a, b]) assert.deepStrictEqual(await c.next('room-msg'), { event: 'room-msg', data: { n: 1 } });
    assert.ok(await out.nothing((m) => m.event === 'room-msg', 300), 'a non-member got the room message');

    // excludeId on server:to.
    out.emit('to-room', { room: 'r-to', payload: { n: 2 }, exclude: a.id });
    assert.deepStrictEqual((await b.next('room-msg')).data, { n: 2 });
    assert.ok(await a.nothing((m) => m.event === 'room-msg', 300), 'the excluded member got the room message');

    a.emit('ctx-to-room', { room: 'r-to', payload: { n: 3 } });
    assert.strictEqual((await a.next('ctx-to-room')).data, true);
    assert.deepStrictEqual((await b.next('room-msg')).data, { n: 3 });
    assert.ok(await a.nothing((m) => m.event === 'room-msg', 300), 'ctx:to reached the sender');
    assert.ok(await out.nothing((m) => m.event === 'room-msg', 50), 'ctx:to reached a non-member');
    for (const c of [a, b, out]) await c.close();
  });

  await t.test('getRoomMembers, getRooms and getClients([room]) agree with the joins', async () => {
    const a = await h.client();
    const b = await h.client();
    for (const [c, room] of [[a, 'q1'], [b, 'q1'], [a, 'q2']]) {
      c.emit('join-room', room);
      await c.next('joined-room');
    }
    assert.deepStrictEqual(sorted(await members(a, 'q1')), sorted([a.id, b.id]));
    assert.deepStrictEqual(await members(a, 'q2'), [a.id]);
    assert.deepStrictEqual(await members(a, 'no-such-room'), []);
    const all = await rooms(a);
    assert.ok(all.includes('q1') && all.includes('q2'), `getRooms: ${JSON.stringify(all)}`);
    assert.strictEqual(new Set(all).size, all.length, 'getRooms lists a room twice');

    const inQ1 = (await a.ack('clients', 'q1')).data;
    assert.deepStrictEqual(inQ1.map((x) => x.id).sort(), sorted([a.id, b.id]));
    const entryA = inQ1.find((x) => x.id === a.id);
    assert.deepStrictEqual(sorted(entryA.rooms), ['q1', 'q2']);
    assert.deepStrictEqual(inQ1.find((x) => x.id === b.id), { id: b.id, rooms: ['q1'] });
    assert.deepStrictEqual((await a.ack('clients', 'no-such-room')).data, []);

    const everyone = (await a.ack('clients')).data;
    for (const c of [a, b]) assert.ok(everyone.some((x) => x.id === c.id), `getClients() lacks ${c.id}`);
    assert.deepStrictEqual(everyone.find((x) => x.id === b.id), { id: b.id, rooms: ['q1'] });
    for (const c of [a, b]) await c.close();
  });

  await t.test('a room disappears from getRooms when its last member leaves or disconnects', async () => {
    const a = await h.client();
    const b = await h.client();
    const watcher = await h.client();
    for (const c of [a, b]) {
      c.emit('join-room', 'r-gone');
      await c.next('joined-room');
    }
    a.emit('leave-room', 'r-gone');
    await a.next('left-room');
    assert.ok((await rooms(watcher)).includes('r-gone'), 'the room went while b was still in it');
    assert.deepStrictEqual(await members(watcher, 'r-gone'), [b.id]);
    b.emit('leave-room', 'r-gone');
    await b.next('left-room');
    assert.ok(!(await rooms(watcher)).includes('r-gone'), 'the room outlived its last member leaving');

    b.emit('join-room', 'r-gone2');
    await b.next('joined-room');
    assert.ok((await rooms(watcher)).includes('r-gone2'));
    await b.close();
    await poll(() => rooms(watcher), (r) => !r.includes('r-gone2'), 2000, 'r-gone2 to disappear after its member left');
    assert.deepStrictEqual(await members(watcher, 'r-gone2'), []);
    for (const c of [a, watcher]) await c.close();
  });

  await t.test('a disconnecting client is out of all its rooms before onDisconnect runs', async () => {
    const a = await h.client();
    const b = await h.client();
    for (const [c, room] of [[a, 'r-disc'], [b, 'r-disc'], [a, 'r-disc-solo']]) {
      c.emit('join-room', room);
      await c.next('joined-room');
    }
    a.emit('watch', { room: 'r-disc', name: 'alice' });
    await a.next('watch');
    await a.close();
    const gone = await b.next((m) => m.event === 'gone' && m.data.id === a.id, 3000);
    assert.deepStrictEqual(gone.data.members, [b.id], 'onDisconnect saw the client still in its room');
    assert.deepStrictEqual(gone.data.ownRooms, [], 'ctx.clientInfo.rooms in onDisconnect');
    assert.ok(gone.data.rooms.includes('r-disc'));
    assert.ok(!gone.data.rooms.includes('r-disc-solo'), 'the departed client\'s own room was still listed');
    assert.strictEqual(gone.data.name, 'alice');
    assert.strictEqual(gone.data.stillListed, false, 'server:toId still reached the departed client');
    await b.close();
  });
});
