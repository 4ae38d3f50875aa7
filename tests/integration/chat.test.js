'use strict';
// The chat example that the README's run command starts.
const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { startServer, connect } = require('./harness');

const CHAT = path.resolve(__dirname, '..', '..', 'lua', 'examples', 'chat.lua');

test('chat example: nicknames, rooms, history, members ACK, departures', async (t) => {
  const server = await startServer(CHAT, { env: { PORT: '0' } });
  t.after(() => server.stop());
  const alice = await connect(server.port);
  const bob = await connect(server.port);
  const aliceId = (await alice.next('welcome')).data.id;
  const bobId = (await bob.next('welcome')).data.id;

  alice.emit('nick', 'alice');
  assert.deepStrictEqual((await bob.next('nick-changed')).data.to, 'alice');
  bob.emit('nick', 'bob');
  await alice.next('nick-changed');

  alice.emit('join', 'lobby');
  assert.deepStrictEqual((await alice.next('history')).data, { room: 'lobby', messages: [] });
  alice.emit('say', { room: 'lobby', text: 'first' });
  const first = await alice.next('message');
  assert.strictEqual(first.data.text, 'first');
  assert.strictEqual(first.data.nick, 'alice');

  bob.emit('join', 'lobby');
  const hist = await bob.next('history');
  assert.deepStrictEqual(hist.data.messages.map((m) => m.text), ['first']);
  assert.deepStrictEqual((await alice.next('joined')).data, { room: 'lobby', id: bobId, nick: 'bob' });

  const members = await alice.ack('members', { room: 'lobby' });
  const byId = Object.fromEntries(members.data.members.map((m) => [m.id, m.nick]));
  assert.deepStrictEqual(byId, { [aliceId]: 'alice', [bobId]: 'bob' });
  const bad = await alice.ack('members', {});
  assert.match(bad.error, /members needs \{room\}/);

  bob.emit('say', { room: 'lobby', text: 'hi alice' });
  assert.strictEqual((await alice.next('message')).data.text, 'hi alice');

  alice.emit('nick', '');
  assert.match((await alice.next('problem')).data.message, /nickname/);

  await bob.close();
  assert.deepStrictEqual((await alice.next('gone')).data, { id: bobId, nick: 'bob' });
  const after = await alice.ack('members', { room: 'lobby' });
  assert.deepStrictEqual(after.data.members.map((m) => m.id), [aliceId]);
  await alice.close();
});
