'use strict';
// At descriptor exhaustion (EMFILE) the server keeps serving the clients it
// has and accepts again once descriptors are free (issue 8).
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startServer, connect, fixture, sleep } = require('./harness');

// Resolves with an open client, or null when the server could not take it.
function tryOpen(port) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const timer = setTimeout(() => { ws.terminate(); resolve(null); }, 1000);
    ws.on('open', () => { clearTimeout(timer); resolve(ws); });
    ws.on('error', () => { clearTimeout(timer); resolve(null); });
  });
}

function echo(ws, n) {
  return new Promise((resolve) => {
    ws.once('message', (m) => resolve(JSON.parse(m.toString())));
    ws.send(JSON.stringify({ event: 'echo', data: n }));
  });
}

test('EMFILE: existing clients are served, accepting recovers when descriptors free up', async (t) => {
  const server = await startServer(fixture('emfile.lua'), { fdLimit: 64 });
  const clients = [];
  t.after(async () => { clients.forEach((c) => c && c.terminate()); await server.stop(); });
  for (let i = 0; i < 80; i++) clients.push(await tryOpen(server.port));
  const open = clients.filter(Boolean);
  assert.ok(open.length < 64, `the limit bit: ${open.length} of 80 opened under ulimit -n 64`);
  assert.ok(open.length > 30, `${open.length} opened`);
  assert.deepStrictEqual(await echo(open[0], 1), { event: 'echo', data: 1 }, 'an existing client is served');
  assert.deepStrictEqual(await echo(open[open.length - 1], 2), { event: 'echo', data: 2 });

  for (const c of open.slice(0, 20)) c.terminate();
  await sleep(300);
  const fresh = await connect(server.port);
  fresh.emit('echo', 3);
  assert.deepStrictEqual((await fresh.next('echo')).data, 3, 'a new client is accepted and served');
  await fresh.close();
  assert.strictEqual(server.proc.exitCode, null, 'the server is still running');
});
