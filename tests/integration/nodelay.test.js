'use strict';
// Every accepted socket has TCP_NODELAY (inherited from its listener): a
// small message sent while the previous one is still unacknowledged leaves
// at once. With Nagle's algorithm on, it waits for the client's delayed ACK,
// ~40 ms on Linux, on every such pair.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture } = require('./harness');
const { tcpConnect } = require('./tcpwire');

const ROUNDS = 15;
const LIMIT_MS = 20; // the server waits 2 ms between the two; Nagle adds ~40

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Milliseconds between "first" and "second" in each round, the client
// answering as an interactive one does (which is what turns delayed ACKs on).
async function gaps(client) {
  const out = [];
  for (let i = 0; i < ROUNDS; i++) {
    client.emit('pair', i);
    await client.next('first');
    const t = process.hrtime.bigint();
    await client.next('second');
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}

test('no Nagle delay between two small messages', async (t) => {
  const server = await startServer(fixture('nodelay_app.lua'));
  const closers = [];
  t.after(async () => {
    for (const close of closers) close();
    await server.stop();
  });
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);

  await t.test('WebSocket', async () => {
    const c = await connect(server.port);
    closers.push(() => c.ws.terminate());
    const g = await gaps(c);
    assert.ok(median(g) < LIMIT_MS, `gaps (ms): ${g.map((x) => x.toFixed(1)).join(' ')}`);
  });

  await t.test('TCP protocol', async () => {
    const c = await tcpConnect(tcpPort);
    closers.push(() => c.destroy());
    const g = await gaps(c);
    assert.ok(median(g) < LIMIT_MS, `gaps (ms): ${g.map((x) => x.toFixed(1)).join(' ')}`);
  });
});
