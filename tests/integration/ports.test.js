'use strict';
// A taken port moves on to the next one, like v3 (PROTOCOL.md §1), for both
// listeners; the server then serves on the ports it reports.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { startServer, connect, fixture } = require('./harness');
const { T, tcpConnect } = require('./tcpwire');

function occupy(port = 0) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

test('taken ports: both listeners move to the next free port and serve there', async (t) => {
  // Two taken ports in a row for WebSocket, one for TCP, found dynamically.
  const a = await occupy();
  const base = a.address().port;
  const held = [a];
  t.after(() => held.forEach((s) => s.close()));
  try { held.push(await occupy(base + 1)); } catch { /* taken by someone else: also fine */ }
  const tcpTaken = await occupy();
  held.push(tcpTaken);
  const tcpBase = tcpTaken.address().port;

  const server = await startServer(fixture('ports.lua'), { env: { PORT: String(base), TCP_PORT: String(tcpBase) } });
  t.after(() => server.stop());
  assert.ok(server.port > base, `bound ${server.port}, above the taken ${base}`);
  assert.match(server.logs(), new RegExp(`port ${base} is in use, trying ${base + 1}`));
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  assert.ok(tcpPort > tcpBase, `tcp bound ${tcpPort}, above the taken ${tcpBase}`);

  const c = await connect(server.port);
  c.emit('echo', 1);
  assert.deepStrictEqual((await c.next('echo')).data, { data: 1, port: server.port });
  const tc = await tcpConnect(tcpPort);
  await tc.next(T.CONNECT);
  tc.emit('echo', 2);
  assert.deepStrictEqual((await tc.next('echo')).json(), { data: 2, port: server.port });
  tc.destroy();
  await c.close();
  const exit = await server.stop();
  assert.strictEqual(exit.code, 0, 'a clean exit (no libuv assertion) after the fallback');
});
