'use strict';
// Server methods: getPort and the start callback, a second start(),
// getStats, getConfig, stop() from a handler; through fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, poll } = require('./apihelp');
const { tryConnect, withTimeout, startServer, connect, fixture } = require('./harness');
const net = require('node:net');
const { tcpConnect } = require('./tcpwire');


test('server methods', async (t) => {
  const h = await apiServer(t);

  await t.test('getPort equals the bound port; the start callback received it', async () => {
    const c = await h.client();
    assert.deepStrictEqual((await c.ack('port')).data, { getPort: h.port, startPort: h.port });
    assert.match(h.server.logs(), new RegExp(`START CALLBACK port=${h.port} getPort=${h.port}\\n`));
    await c.close();
  });

  await t.test('a second start() is a no-op: one listener, no second callback, the script goes on', async () => {
    const logs = h.server.logs();
    assert.strictEqual(logs.match(/listening on port/g).length, 1, logs);
    assert.strictEqual(logs.match(/START CALLBACK/g).length, 1, logs);
    assert.doesNotMatch(logs, /SECOND START CALLBACK/);
    assert.match(logs, /after second start/);
  });

  await t.test('getStats: the documented fields, with exact counts', async () => {
    const a = await h.client();
    const b = await h.client();
    // The first test's client may still be on its way out.
    const s1 = (await poll(() => a.ack('stats'), (r) => r.data.activeConnections === 2, 2000, 'two active connections')).data;
    for (const k of ['totalConnections', 'activeConnections', 'totalMessagesReceived', 'totalMessagesSent', 'totalRooms',
      'uptime', 'wsConnections', 'tcpConnections']) {
      assert.strictEqual(typeof s1[k], 'number', `stats.${k} is ${typeof s1[k]}`);
    }
    assert.strictEqual(s1.totalConnections, 3);
    assert.strictEqual(s1.activeConnections, 2);
    assert.strictEqual(s1.wsConnections, 2);
    assert.strictEqual(s1.tcpConnections, 0);
    assert.strictEqual(s1.totalRooms, 0);
    assert.ok(s1.uptime >= 0 && s1.uptime < 60000, `uptime ${s1.uptime}`);
    assert.ok(s1.memoryUsage.rss > 1e6, `rss ${s1.memoryUsage.rss}`);
    assert.ok(s1.memoryUsage.luaHeap > 1e4, `luaHeap ${s1.memoryUsage.luaHeap}`);

    for (let i = 0; i < 3; i++) {
      a.emit('echo', i);
      await a.next('echo');
    }
    b.emit('join-room', 'stats-room');
    await b.next('joined-room');
    const s2 = (await a.ack('stats')).data;
    // In: 3 echo + join-room + the second stats request. Out: the first
    // stats reply + 3 echo + joined-room.
    assert.strictEqual(s2.totalMessagesReceived - s1.totalMessagesReceived, 5);
    assert.strictEqual(s2.totalMessagesSent - s1.totalMessagesSent, 5);
    assert.strictEqual(s2.totalRooms, 1);
    assert.strictEqual(s2.totalConnections, 3);
    assert.ok(s2.uptime >= s1.uptime);
    await b.close();
    const s3 = (await poll(() => a.ack('stats'), (r) => r.data.activeConnections === 1, 2000, 'one active connection')).data;
    assert.strictEqual(s3.wsConnections, 1);
    assert.strictEqual(s3.totalRooms, 0, 'the room of the client that left still counts');
    assert.strictEqual(s3.totalConnections, 3);
    await a.close();
  });

  await t.test('getConfig reports the options and the bound port; assigning to it raises', async () => {
    const c = await h.client();
    assert.deepStrictEqual((await c.ack('config')).data, {
      port: h.port,
      host: '127.0.0.1',
      maxRoomsPerClient: 9,
      maxPayloadSize: 1234567,
      heartbeatInterval: 25000,
      heartbeatTimeout: 50000,
      maxConnections: 10000,
      namespace: '/',
      gracefulShutdown: true,
      rateLimit: false,
    });
    const w = (await c.ack('config-write', { field: 'maxRoomsPerClient', value: 1 })).data;
    assert.strictEqual(w.ok, false, 'assigning to getConfig() did not raise');
    assert.match(w.err, /read-only/);
    assert.strictEqual(w.after, 9);
    const w2 = (await c.ack('config-write', { field: 'brandNew', value: 1 })).data;
    assert.strictEqual(w2.ok, false);
    assert.strictEqual(w2.after, '<nil>');
    await c.close();
  });

  await t.test('stop() from a handler closes every client and the listener; the process exits 0', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('stop-server');
    await a.waitClose(2000);
    await b.waitClose(2000);
    const exit = await withTimeout(h.server.exited, 3000, 'the process to exit after server:stop()');
    assert.deepStrictEqual(exit, { code: 0, signal: null }, h.server.logs());
    assert.match(h.server.logs(), /STOPPED from a handler/);
    assert.doesNotMatch(h.server.logs(), /handler error/);
    assert.strictEqual(await tryConnect(h.port), 'ECONNREFUSED');
  });
});

test('a server started from a timer, after the script ran, serves WebSocket and TCP clients', async (t) => {
  const server = await startServer(fixture('late_start.lua'));
  t.after(() => server.stop());
  const ws = await connect(server.port);
  ws.emit('echo', 'late');
  assert.strictEqual((await ws.next('echo')).data, 'late');
  await ws.close();
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  const tcp = await tcpConnect(tcpPort);
  t.after(() => tcp.sock.destroy());
  tcp.emit('echo', 'late too');
  assert.strictEqual((await tcp.next('echo')).json(), 'late too');
});

// The TCP protocol runs onConnection as the client is accepted, while the
// server goes through the turn's accepted connections (src/accept.c).
test('server:stop() from onConnection of a TCP client: the server stops and exits cleanly', async (t) => {
  const server = await startServer(fixture('stop_on_connect.lua'));
  t.after(() => server.stop());
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  const sock = net.connect(tcpPort, '127.0.0.1');
  sock.on('error', () => {});
  t.after(() => sock.destroy());
  const exit = await withTimeout(server.exited, 5000, 'the server to exit');
  assert.match(server.logs(), /stopping for /);
  assert.deepStrictEqual(exit, { code: 0, signal: null }, server.logs());
});

// A connection's socket closes with the turn's io_uring batch; a stop from
// a timer, with no server left to run a turn, must still close them.
test('server:stop() from a timer while the process runs on: WebSocket and TCP clients are closed at once', async (t) => {
  const server = await startServer(fixture('stop_from_timer.lua'));
  t.after(() => server.stop());
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  const a = await connect(server.port);
  t.after(() => a.ws.terminate());
  const tcp = await tcpConnect(tcpPort);
  t.after(() => tcp.sock.destroy());
  const tcpEnded = new Promise((resolve) => tcp.sock.once('close', resolve));
  a.emit('stop-soon', null);
  await a.waitClose(1500);
  await withTimeout(tcpEnded, 1500, 'the TCP client to be closed');
  await server.waitForLog(/stopped from a timer/, 1500);
  assert.strictEqual(server.proc.exitCode, null, 'the process still runs (its 5 s timer)');
  assert.doesNotMatch(server.logs(), /still running/);
});

// With STELAR_IO_URING=0 a handler runs while the events of one wait are
// handled; the listener's event comes after it in the same wait.
test('server:stop() from a handler, a connection waiting on the listener in the same wait: the server exits cleanly', async (t) => {
  const server = await startServer(fixture('stop_in_batch.lua'), { env: { STELAR_IO_URING: '0' } });
  t.after(() => server.stop());
  const a = await connect(server.port);
  t.after(() => a.ws.terminate());
  a.emit('stall', 300);
  await new Promise((r) => setTimeout(r, 50));
  a.emit('stop', null); // readable before the listener below
  await new Promise((r) => setTimeout(r, 20));
  const late = net.connect(server.port, '127.0.0.1');
  late.on('error', () => {});
  t.after(() => late.destroy());
  const exit = await withTimeout(server.exited, 5000, 'the server to exit');
  assert.match(server.logs(), /stopping/);
  assert.deepStrictEqual(exit, { code: 0, signal: null }, server.logs());
});
