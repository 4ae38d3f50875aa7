'use strict';
// Clustering over Redis (issue 9): nodes of fixtures/cluster_app.lua share
// a private redis-server per test; WebSocket and TCP clients on different
// nodes must reach each other exactly once, see one another in cluster-wide
// queries, and survive Redis going away and coming back.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { connect, fixture, runToExit, sleep } = require('./harness');
const { T, TcpClient, tcpConnect } = require('./tcpwire');
const { binaryMessage, parseBinary, poll, escapeRe } = require('./apihelp');
const { freePort, redisCommand, startRedis, startNode } = require('./clusterhelp');

const NODE_TIMEOUT = 1500;

// A private Redis (unless redis: false) and a node per id; every client
// and process is stopped when t ends.
async function setup(t, ids, { redis: withRedis = true, nodeTimeout = NODE_TIMEOUT } = {}) {
  const nodes = {};
  const clients = [];
  let redis = null;
  t.after(async () => {
    for (const c of clients) {
      if (c instanceof TcpClient) c.sock.destroy();
      else c.ws.terminate();
    }
    await Promise.all(Object.values(nodes).map((n) => n.stop()));
    if (redis) await redis.stop();
  });
  if (withRedis) redis = await startRedis();
  const h = {
    redis,
    nodes,
    async node(id, opts = {}) {
      nodes[id] = await startNode(opts.url ?? redis.url, id, { nodeTimeout, ...opts });
      return nodes[id];
    },
    // A WebSocket client on node id, past its welcome.
    async ws(id) {
      const c = await connect(nodes[id].port);
      clients.push(c);
      c.id = (await c.next('welcome')).data.id;
      c.label = `ws ${c.id} on ${id}`;
      return c;
    },
    // A TCP client on node id, past CONNECT and welcome.
    async tcp(id) {
      const c = await tcpConnect(nodes[id].tcpPort);
      clients.push(c);
      c.id = (await c.next(T.CONNECT)).text();
      await c.next('welcome');
      c.label = `tcp ${c.id} on ${id}`;
      return c;
    },
  };
  for (const id of ids) await h.node(id);
  return h;
}

// The data of the next JSON event on either kind of client.
async function got(c, event, ms = 2000) {
  const m = await c.next(event, ms);
  return c instanceof TcpClient ? m.json() : m.data;
}

async function join(c, room) {
  if (c instanceof TcpClient) c.join(room);
  else c.emit('join-room', room);
  assert.strictEqual(await got(c, 'joined-room'), room);
}

async function leave(c, room) {
  if (c instanceof TcpClient) c.leave(room);
  else c.emit('leave-room', room);
  assert.strictEqual(await got(c, 'left-room'), room);
}

// An ACK from a WebSocket client that must not fail; its reply data.
async function ask(c, name, data, ms = 3000) {
  const r = await c.ack(name, data, ms);
  assert.strictEqual(r.error, undefined, `${name} failed: ${r.error}`);
  return r.data;
}

// After a pause, none of the clients holds (another) event: duplicates and
// deliveries to clients that must be skipped both show up here.
async function noMore(clients, event, ms = 300) {
  await sleep(ms);
  for (const c of clients) {
    const extra = c.queue.find((m) => m.event === event);
    assert.strictEqual(extra, undefined, `${c.label} got an extra ${event}: ${extra && (extra.text ? extra.text() : JSON.stringify(extra.data))}`);
  }
}

// The sorted ids of getRoomMembers's ids or getClients's {id, node, rooms}.
function idsOf(list) {
  return list.map((x) => (typeof x === 'string' ? x : x.id)).sort();
}

function sorted(...clients) {
  return clients.map((c) => c.id).sort();
}

// Asks `members` of room through c until its ids are want (the nodes
// register joins and departures with Redis asynchronously).
function membersBecome(c, room, want, ms = 3000) {
  return poll(() => ask(c, 'members', { room }), (d) => JSON.stringify(idsOf(d.members)) === JSON.stringify(want),
    ms, `members of ${room} to be ${want}`);
}

// Asks `clients` through c until every id in want is listed.
function clientsKnown(c, want, ms = 3000) {
  return poll(() => ask(c, 'clients'), (d) => want.every((id) => d.clients.some((x) => x.id === id)),
    ms, `clients ${want} to be known`);
}

test('a room spanning nodes: ctx:to from A reaches B\'s TCP member and A\'s other member once, not the sender', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const w1 = await h.ws('a');
  const w2 = await h.ws('a');
  const wOut = await h.ws('a');
  const t1 = await h.tcp('b');
  const tOut = await h.tcp('b');
  for (const c of [w1, w2, t1]) await join(c, 'r');
  await membersBecome(wOut, 'r', sorted(w1, w2, t1));
  const everyone = [w1, w2, wOut, t1, tOut];

  w1.emit('say', { room: 'r', text: 'from A' });
  assert.deepStrictEqual(await got(t1, 'said'), { text: 'from A', from: w1.id });
  assert.deepStrictEqual(await got(w2, 'said'), { text: 'from A', from: w1.id });
  await noMore(everyone, 'said');

  t1.emit('say', { room: 'r', text: 'from B' });
  assert.deepStrictEqual(await got(w1, 'said'), { text: 'from B', from: t1.id });
  assert.deepStrictEqual(await got(w2, 'said'), { text: 'from B', from: t1.id });
  await noMore(everyone, 'said');

  // server:to: the whole room, whoever asks (here a non-member on A)
  wOut.emit('tell', { room: 'r', text: 'all of r' });
  for (const c of [w1, w2, t1]) assert.deepStrictEqual(await got(c, 'told'), { text: 'all of r', from: wOut.id });
  await noMore(everyone, 'told');

  // a member that left on B no longer gets the room's messages from A
  await leave(t1, 'r');
  await membersBecome(wOut, 'r', sorted(w1, w2));
  w1.emit('say', { room: 'r', text: 'after leaving' });
  assert.deepStrictEqual(await got(w2, 'said'), { text: 'after leaving', from: w1.id });
  await noMore(everyone, 'said');
});

test('ctx:broadcast across nodes skips the sender, and its own node delivers once', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const a1 = await h.ws('a');
  const a2 = await h.ws('a');
  const b1 = await h.tcp('b');
  const b2 = await h.ws('b');
  const everyone = [a1, a2, b1, b2];
  await clientsKnown(a1, sorted(...everyone));

  a1.emit('shout', 'from a1');
  for (const c of [a2, b1, b2]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'from a1', from: a1.id });
  await noMore(everyone, 'shouted'); // a1 nothing; a2 not again through Redis

  b1.emit('shout', 'from b1');
  for (const c of [a1, a2, b2]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'from b1', from: b1.id });
  await noMore(everyone, 'shouted');
});

test('server:broadcast reaches every client on three nodes exactly once', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b', 'c']);
  const clients = [await h.ws('a'), await h.ws('a'), await h.tcp('b'), await h.ws('b'), await h.tcp('c'), await h.ws('c')];
  await clientsKnown(clients[0], sorted(...clients));

  for (const sender of [clients[0], clients[2], clients[5]]) {
    sender.emit('all', `from ${sender.label}`);
    for (const c of clients) {
      assert.deepStrictEqual(await got(c, 'announce'), { text: `from ${sender.label}`, from: sender.id }, c.label);
    }
    await noMore(clients, 'announce');
  }
  // and ctx:broadcast from the middle node: everyone else, once
  clients[3].emit('shout', 'from b');
  for (const c of clients) {
    if (c !== clients[3]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'from b', from: clients[3].id }, c.label);
  }
  await noMore(clients, 'shouted');
});

test('toId across nodes: ctx:toId and server:toId reach one client on another node, and say so', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const a = await h.ws('a');
  const b = await h.tcp('b');
  const bOther = await h.ws('b');
  const aOther = await h.ws('a');
  const everyone = [a, b, bOther, aOther];
  await clientsKnown(a, sorted(...everyone));
  await clientsKnown(bOther, sorted(...everyone));

  a.emit('dm', { to: b.id, text: 'psst' });
  assert.deepStrictEqual(await got(b, 'dm'), { text: 'psst', from: a.id });
  assert.deepStrictEqual(await got(a, 'dm-sent'), { ok: true });
  await noMore(everyone, 'dm');

  b.emit('dm', { to: a.id, text: 'back' });
  assert.deepStrictEqual(await got(a, 'dm'), { text: 'back', from: b.id });
  assert.deepStrictEqual(await got(b, 'dm-sent'), { ok: true });
  await noMore(everyone, 'dm');

  bOther.emit('poke', { to: aOther.id });
  assert.deepStrictEqual(await got(aOther, 'poked'), { from: bOther.id });
  assert.deepStrictEqual(await got(bOther, 'poke-sent'), { ok: true });
  await noMore(everyone, 'poked');
});

test('broadcastBinary across nodes: the same bytes to every WebSocket and TCP client once', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const a1 = await h.ws('a');
  const a2 = await h.ws('a');
  const b1 = await h.tcp('b');
  const b2 = await h.ws('b');
  const everyone = [a1, a2, b1, b2];
  await clientsKnown(a1, sorted(...everyone));
  const isBlob = (c) => (c instanceof TcpClient ? { type: T.BINARY, event: 'blob' } : (m) => m.binary !== undefined);
  const blob = async (c) => {
    const m = await c.next(isBlob(c));
    if (c instanceof TcpClient) return m.payload;
    const p = parseBinary(m.binary);
    assert.deepStrictEqual(p.header, { event: 'blob' });
    return p.payload;
  };
  const none = async () => {
    await sleep(300);
    for (const c of everyone) assert.ok(await c.nothing(isBlob(c), 1), `${c.label} got an extra blob`);
  };
  const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, ...Buffer.from('é\u0000!')]);

  // ctx:broadcastBinary from a WebSocket client on A: everyone else
  a1.sendRaw(binaryMessage('bin', bytes), { binary: true });
  for (const c of [a2, b1, b2]) assert.ok((await blob(c)).equals(bytes), c.label);
  await none();

  // server:broadcastBinary from a TCP client on B: everyone
  b1.emitBinary('bin-all', bytes);
  for (const c of everyone) assert.ok((await blob(c)).equals(bytes), c.label);
  await none();
});

test('cluster-wide queries: getRoomMembers waiting and with a callback, getClients with each client\'s node', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const wa = await h.ws('a');
  const tb = await h.tcp('b');
  const wb = await h.ws('b');
  await join(wa, 'r');
  await join(tb, 'r');
  await join(wb, 's');

  // the waiting form, from either node
  const fromA = await membersBecome(wa, 'r', sorted(wa, tb));
  assert.strictEqual(fromA.err, undefined);
  const fromB = await membersBecome(wb, 'r', sorted(wa, tb));
  assert.strictEqual(fromB.err, undefined);
  assert.ok(fromA.members.every((m) => typeof m === 'string'), `members are ids: ${JSON.stringify(fromA.members)}`);

  // the callback form
  wb.emit('members-cb', { room: 'r' });
  const cb = await got(wb, 'members-cb', 3000);
  assert.strictEqual(cb.room, 'r');
  assert.deepStrictEqual(idsOf(cb.members), sorted(wa, tb));
  assert.strictEqual(cb.err, undefined);
  wa.emit('members-cb', { room: 'nobody-here' });
  assert.deepStrictEqual(idsOf((await got(wa, 'members-cb', 3000)).members), []);

  // getClients: everyone, with the node each is on and its rooms
  const { clients, err } = await ask(wa, 'clients');
  assert.strictEqual(err, undefined);
  const byId = Object.fromEntries(clients.map((x) => [x.id, x]));
  assert.deepStrictEqual(Object.keys(byId).sort(), sorted(wa, tb, wb));
  const roomsOf = (x) => Object.values(x.rooms || {}).sort();
  assert.deepStrictEqual({ node: byId[wa.id].node, rooms: roomsOf(byId[wa.id]) }, { node: 'a', rooms: ['r'] });
  assert.deepStrictEqual({ node: byId[tb.id].node, rooms: roomsOf(byId[tb.id]) }, { node: 'b', rooms: ['r'] });
  assert.deepStrictEqual({ node: byId[wb.id].node, rooms: roomsOf(byId[wb.id]) }, { node: 'b', rooms: ['s'] });

  // a client that disconnects from B leaves the answers
  await tb.destroy();
  await membersBecome(wa, 'r', sorted(wa));
  await poll(() => ask(wa, 'clients'), (d) => !d.clients.some((x) => x.id === tb.id), 3000, 'the TCP client to leave getClients');
});

test('serverSideEmit reaches onServerEvent on every other node, not the sender\'s', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b', 'c']);
  const a1 = await h.ws('a');
  const a2 = await h.tcp('a');
  const b = await h.tcp('b');
  const c = await h.ws('c');
  const everyone = [a1, a2, b, c];
  await clientsKnown(a1, sorted(...everyone));

  a1.emit('sse', { n: 1, list: [1, 'two'] });
  for (const x of [b, c]) assert.deepStrictEqual(await got(x, 'from-node'), { data: { n: 1, list: [1, 'two'] }, from: 'a' }, x.label);
  await noMore(everyone, 'from-node'); // node a's own clients: nothing

  c.emit('sse', 'hi from c');
  for (const x of [a1, a2, b]) assert.deepStrictEqual(await got(x, 'from-node'), { data: 'hi from c', from: 'c' }, x.label);
  await noMore(everyone, 'from-node');
});

test('a node killed with SIGKILL leaves the queries within nodeTimeout; a node stopped gracefully leaves at once', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b', 'c']);
  const wa = await h.ws('a');
  const tb = await h.tcp('b');
  const wc = await h.ws('c');
  for (const x of [wa, tb, wc]) await join(x, 'r');
  await membersBecome(wa, 'r', sorted(wa, tb, wc));

  const killed = Date.now();
  h.nodes.b.proc.kill('SIGKILL');
  await h.nodes.b.exited;
  await membersBecome(wa, 'r', sorted(wa, wc), NODE_TIMEOUT + 1000);
  const gone = Date.now() - killed;
  assert.ok(gone <= NODE_TIMEOUT + 1000, `the killed node's member went after ${gone} ms`);
  t.diagnostic(`killed node's member gone after ${gone} ms (nodeTimeout ${NODE_TIMEOUT})`);
  const { clients } = await ask(wa, 'clients');
  assert.deepStrictEqual(idsOf(clients), sorted(wa, wc));

  // SIGTERM: the node drains its clients and leaves before it exits, so
  // the very first query after its exit no longer lists them
  const r = await h.nodes.c.stop();
  assert.deepStrictEqual(r, { code: 0, signal: null }, `node c did not stop gracefully; log:\n${h.nodes.c.logs()}`);
  const after = await ask(wa, 'members', { room: 'r' });
  assert.deepStrictEqual(idsOf(after.members), sorted(wa));
  assert.deepStrictEqual(idsOf((await ask(wa, 'clients')).clients), sorted(wa));
});

test('Redis stopped and restarted: local delivery goes on, cross-node messages are dropped and counted, then all heals', { timeout: 40000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const { a, b } = h.nodes;
  const addr = escapeRe(`127.0.0.1:${h.redis.port}`);
  assert.match(a.logs(), new RegExp(`cluster: node a connected to redis ${addr} \\(prefix stelar\\)`));
  const a1 = await h.ws('a');
  const a2 = await h.ws('a');
  const b1 = await h.tcp('b');
  const everyone = [a1, a2, b1];
  await join(a2, 'r');
  await join(b1, 'r');
  await membersBecome(a1, 'r', sorted(a2, b1));

  a1.emit('shout', 'before');
  for (const c of [a2, b1]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'before', from: a1.id });
  await noMore(everyone, 'shouted');
  const before = await ask(a1, 'stats');
  assert.strictEqual(before.enabled, true);
  assert.strictEqual(before.nodeId, 'a');
  assert.strictEqual(before.connected, true);
  assert.ok(before.published >= 1, `published ${before.published}`);
  const bStats = await ask(await h.ws('b'), 'stats');
  assert.ok(bStats.received >= 1, `node b received ${bStats.received}`);

  // Redis goes away
  const down = Date.now();
  await h.redis.stop();
  for (const n of [a, b]) await n.waitForLog(new RegExp(`cluster degraded: lost redis ${addr} \\(`), 3000);
  assert.strictEqual((await ask(a1, 'stats')).connected, false);

  a1.emit('shout', 'while down');
  assert.deepStrictEqual(await got(a2, 'shouted'), { text: 'while down', from: a1.id });
  assert.ok(await b1.nothing('shouted', 500), 'a message reached node b while Redis was down');
  const during = await ask(a1, 'stats');
  assert.ok(during.dropped >= before.dropped + 1, `dropped ${before.dropped} -> ${during.dropped}`);

  // a cluster query says so and answers with what this node knows
  const local = await ask(a1, 'members', { room: 'r' });
  assert.strictEqual(local.err, 'cluster unavailable');
  assert.deepStrictEqual(idsOf(local.members), sorted(a2));

  // Redis comes back, empty: the nodes reconnect and register again
  await sleep(300);
  await h.redis.start();
  const healed = {};
  for (const n of [a, b]) {
    const m = await n.waitForLog(new RegExp(`cluster healed: node ${n.nodeId} reconnected to redis ${addr} after (\\d+) ms`), 4000);
    healed[n.nodeId] = Number(m[1]);
  }
  const outage = Date.now() - down;
  for (const [id, ms] of Object.entries(healed)) assert.ok(ms > 0 && ms <= outage + 100, `node ${id} healed after ${ms} ms of an outage of at most ${outage} ms`);
  assert.strictEqual((await ask(a1, 'stats')).connected, true);

  await membersBecome(a1, 'r', sorted(a2, b1));
  a1.emit('shout', 'after');
  for (const c of [a2, b1]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'after', from: a1.id });
  b1.emit('say', { room: 'r', text: 'b is back' });
  assert.deepStrictEqual(await got(a2, 'said'), { text: 'b is back', from: b1.id });
  await noMore(everyone, 'shouted');
  await noMore(everyone, 'said', 0);
  const end = await ask(a1, 'stats');
  assert.ok(end.published > during.published, `published ${during.published} -> ${end.published}`);
});

test('Redis down at start: the node serves its local clients, logs degraded, and joins once Redis appears', { timeout: 30000 }, async (t) => {
  const port = await freePort(); // nobody listens here yet
  const h = await setup(t, [], { redis: false });
  const url = `redis://127.0.0.1:${port}`;
  const a = await h.node('a', { url, connected: false });
  await a.waitForLog(new RegExp(`cluster degraded: redis ${escapeRe(`127.0.0.1:${port}`)} unreachable \\(`), 3000);

  const a1 = await h.ws('a');
  const a2 = await h.tcp('a');
  a1.emit('shout', 'alone');
  assert.deepStrictEqual(await got(a2, 'shouted'), { text: 'alone', from: a1.id });
  const stats = await ask(a1, 'stats');
  assert.deepStrictEqual({ enabled: stats.enabled, nodeId: stats.nodeId, connected: stats.connected },
    { enabled: true, nodeId: 'a', connected: false });
  await join(a2, 'r');
  const local = await ask(a1, 'members', { room: 'r' });
  assert.strictEqual(local.err, 'cluster unavailable');
  assert.deepStrictEqual(idsOf(local.members), sorted(a2));

  // Redis appears on that port: the node connects on its own (backoff at
  // most 2 s) and a second node sees its clients and messages
  const redis = await startRedis({ port });
  t.after(() => redis.stop());
  await a.waitForLog(/cluster: node a connected to redis|cluster healed: node a reconnected/, 4000);
  assert.strictEqual((await ask(a1, 'stats')).connected, true);
  await h.node('b', { url });
  const b1 = await h.ws('b');
  await membersBecome(b1, 'r', sorted(a2));
  b1.emit('shout', 'hello a');
  for (const c of [a1, a2]) assert.deepStrictEqual(await got(c, 'shouted'), { text: 'hello a', from: b1.id });
});

test('without the cluster option: getStats().cluster is {enabled = false} and nothing is logged about it', { timeout: 30000 }, async (t) => {
  const h = await setup(t, [], { redis: false });
  const n = await h.node('solo', { url: '' });
  const c = await h.ws('solo');
  assert.deepStrictEqual(await ask(c, 'stats'), { enabled: false });
  assert.doesNotMatch(n.logs(), /cluster/i);
});

test('a bad cluster option stops the start-up with a message that names it', async () => {
  const cases = [
    [{ REDIS_URL: 'http://127.0.0.1:6379' }, /option 'cluster\.redis' \(http:\/\/127\.0\.0\.1:6379\): it must start with redis:\/\//],
    [{ REDIS_URL: 'redis://127.0.0.1:99999' }, /option 'cluster\.redis' .*: the port must be 1 to 65535/],
    [{ REDIS_URL: 'redis://:6379' }, /option 'cluster\.redis' .*: it names no host/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379', NODE_TIMEOUT: '10' }, /option 'cluster\.nodeTimeout' must be whole ms from 300/],
    [{ REDIS_URL: 'redis://127.0.0.1:6379', NODE_ID: 'x'.repeat(65) }, /option 'cluster\.nodeId' must be a string of 1 to 64 bytes/],
  ];
  for (const [env, want] of cases) {
    const r = await runToExit(fixture('cluster_app.lua'), { env: { REDIS_URL: '', NODE_ID: '', NODE_TIMEOUT: '', ...env } });
    assert.strictEqual(r.code, 1, `${JSON.stringify(env)}: exit ${r.code}\n${r.out}`);
    assert.match(r.out, want);
  }
});

test('a malformed message on a cluster channel is logged and ignored; the node goes on', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a']);
  const a1 = await h.ws('a');
  const a2 = await h.ws('a');
  const junk = [
    '', 'x', '\x01e\x05', // short
    '\x02e\x01a\x00\x00\x01z{}', // another version
    '\x01e\x01b\x00\x00\x00', // no event name
    '\x01q\x01b\x00\x00\x01z{}', // an unknown kind
    '\x01e\x01b\x00\x00\x01z{"unclosed":', // data that is not JSON
    '\x01e\x01b\x00\x00\x02\xc3\x28null', // an event name that is not UTF-8
  ];
  for (const bytes of junk) {
    await redisCommand(h.redis.port, ['PUBLISH', 'stelar:all', Buffer.from(bytes, 'latin1')]);
  }
  await poll(async () => (h.nodes.a.logs().match(/cluster: ignored a malformed message on stelar:all/g) || []).length,
    (n) => n === junk.length, 3000, `${junk.length} malformed messages logged`);
  assert.ok(await a2.nothing(() => true, 300), 'a malformed message was delivered');
  a1.emit('shout', 'still fine');
  assert.deepStrictEqual(await got(a2, 'shouted'), { text: 'still fine', from: a1.id });
});

test('a stalled Redis: what it has not taken is bounded (64 MiB), the rest dropped and counted', { timeout: 60000 }, async (t) => {
  const h = await setup(t, ['a']);
  const a1 = await h.ws('a');
  t.after(() => h.redis.resume());
  const rssMiB = () => Number(fs.readFileSync(`/proc/${h.nodes.a.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;
  const rssBefore = rssMiB();
  h.redis.pause();
  a1.emit('flood', { count: 200, size: 1 << 20 }); // 200 MiB published into a stalled Redis
  const flooded = await got(a1, 'flooded', 20000);
  assert.ok(flooded.dropped >= 100, `dropped ${flooded.dropped} of 200 1-MiB messages`);
  assert.ok(flooded.published <= 100, `published ${flooded.published}`);
  if (!process.env.ASAN_OPTIONS) { // ASan keeps freed blocks resident on purpose
    const grew = rssMiB() - rssBefore;
    assert.ok(grew < 180, `RSS grew ${grew.toFixed(0)} MiB for 200 MiB published`);
  }
  // Once Redis has taken the backlog (it needs a moment), messages are
  // published again, on the same connection.
  h.redis.resume();
  const after = await poll(async () => {
    a1.emit('flood', { count: 1, size: 10 });
    return got(a1, 'flooded', 5000);
  }, (st) => st.published > flooded.published, 10000,
  'a message published after the stall');
  assert.strictEqual(after.connected, true);
  assert.doesNotMatch(h.nodes.a.logs(), /cluster degraded/);
});

test('a hot reload (SIGHUP) keeps the node in the cluster: no restart warning, nothing delivered twice', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const a1 = await h.ws('a');
  const b1 = await h.tcp('b');
  await join(b1, 'r');
  await membersBecome(a1, 'r', sorted(b1));
  for (const n of [h.nodes.a, h.nodes.b]) {
    n.proc.kill('SIGHUP');
    await n.waitForLog(/reloaded .*cluster_app\.lua/);
  }
  for (const n of [h.nodes.a, h.nodes.b]) assert.doesNotMatch(n.logs(), /takes effect after a restart|cluster degraded/);
  a1.emit('say', { room: 'r', text: 'after the reload' });
  assert.deepStrictEqual(await got(b1, 'said'), { text: 'after the reload', from: a1.id });
  a1.emit('sse', 'still linked');
  assert.deepStrictEqual(await got(b1, 'from-node'), { data: 'still linked', from: 'a' });
  await noMore([a1, b1], 'said');
  await noMore([a1, b1], 'from-node', 0);
  assert.deepStrictEqual(idsOf((await ask(a1, 'members', { room: 'r' })).members), sorted(b1));
});

test('room names are bytes: one with a NUL or a colon in it spans nodes like any other', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b']);
  const a1 = await h.ws('a');
  const b1 = await h.ws('b');
  const b2 = await h.ws('b');
  for (const [c, room] of [[b1, 'x\u0000y'], [b2, 'x'], [a1, 'r:x']]) await join(c, room);
  await membersBecome(a1, 'x\u0000y', sorted(b1));
  a1.emit('say', { room: 'x\u0000y', text: 'to the room with a NUL' });
  assert.deepStrictEqual(await got(b1, 'said'), { text: 'to the room with a NUL', from: a1.id });
  b1.emit('say', { room: 'r:x', text: 'to the room with a colon' });
  assert.deepStrictEqual(await got(a1, 'said'), { text: 'to the room with a colon', from: b1.id });
  await noMore([a1, b1, b2], 'said');
});

test('one PUBLISH per message whatever the number of nodes, and only nodes with a member of the room receive it', { timeout: 30000 }, async (t) => {
  const h = await setup(t, ['a', 'b', 'c']);
  const a1 = await h.ws('a');
  const b1 = await h.ws('b');
  const c1 = await h.ws('c');
  await join(b1, 'only-b');
  await membersBecome(a1, 'only-b', sorted(b1));
  const stats = async () => Object.fromEntries(await Promise.all(
    [['a', a1], ['b', b1], ['c', c1]].map(async ([id, c]) => [id, await ask(c, 'stats')])));
  const before = await stats();

  a1.emit('say', { room: 'only-b', text: 'for b' });
  assert.deepStrictEqual(await got(b1, 'said'), { text: 'for b', from: a1.id });
  a1.emit('all', 'for everyone');
  for (const c of [a1, b1, c1]) await got(c, 'announce');
  await noMore([a1, b1, c1], 'said');
  const after = await stats();

  assert.strictEqual(after.a.published - before.a.published, 2, 'node a published each message once');
  assert.strictEqual(after.b.received - before.b.received, 2, 'node b received the room message and the broadcast');
  assert.strictEqual(after.c.received - before.c.received, 1, 'node c, with no member of the room, received only the broadcast');
  assert.strictEqual(after.a.received - before.a.received, 0, 'node a does not count its own messages as received');
});
