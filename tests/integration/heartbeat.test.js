'use strict';
// Heartbeat and liveness (PROTOCOL.md section 3, "Control frames"), with
// fixtures/proto_heartbeat.lua: PING every 200 ms, a client silent for
// 600 ms is closed; PONG frames, the "pong" event and any inbound frame
// count as liveness.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture, sleep } = require('./harness');
const { rawWs, tracker, servesFresh, envelope } = require('./wire');

const OP = { TEXT: 1, CLOSE: 8, PING: 9, PONG: 10 };
const INTERVAL = 200;
const TIMEOUT = 600;

// The server for one test; clients given to server.track are destroyed
// before it stops.
async function start(t) {
  const track = tracker(t);
  const server = await startServer(fixture('proto_heartbeat.lua'));
  t.after(() => server.stop());
  server.track = track;
  return server;
}

async function open(server) {
  const c = server.track(await rawWs(server.port));
  assert.strictEqual(c.head.statusLine, 'HTTP/1.1 101 Switching Protocols');
  return c;
}

// Calls fn every ms until the returned stop() is called.
function every(ms, fn) {
  const timer = setInterval(fn, ms);
  return () => clearInterval(timer);
}

test('a raw client receives a PING frame about every heartbeatInterval (200 ms)', async (t) => {
  const server = await start(t);
  const c = await open(server);
  c.onFrame = (f) => { if (f.opcode === OP.PING) c.send(OP.PONG, f.payload); };
  await sleep(1300);
  const pings = c.frames.filter((f) => f.opcode === OP.PING);
  const times = pings.map((f) => f.at);
  t.diagnostic(`ping times: ${times}`);
  assert.ok(pings.length >= 4 && pings.length <= 9, `${pings.length} pings in 1.3 s at ${times}`);
  assert.ok(times[0] <= 450, `the first ping came ${times[0]} ms after the 101`);
  // The rhythm, not each gap: a loaded machine (CI runs suites side by side)
  // may delay one ping, but pings do not drift from the interval.
  const gaps = times.slice(1).map((at, i) => at - times[i]);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  assert.ok(mean >= 150 && mean <= 300, `mean gap ${mean} ms between pings (times ${times})`);
  for (const gap of gaps) assert.ok(gap >= 50 && gap <= 600, `gap of ${gap} ms between pings (times ${times})`);
  for (const p of pings) {
    assert.strictEqual(p.masked, false);
    assert.strictEqual(p.fin, true);
    assert.ok(p.payload.length <= 125);
  }
  assert.deepStrictEqual(c.frames.filter((f) => f.opcode !== OP.PING).map((f) => f.opcode), [], 'only pings came');
  assert.strictEqual(c.isClosed, false, 'a client answering pings stays');
});

test('a raw client that sends nothing after the handshake is closed within ~0.6-3 s', async (t) => {
  const server = await start(t);
  const c = await open(server);
  const closedAt = await c.waitClose(4000);
  const close = c.frames.find((f) => f.opcode === OP.CLOSE);
  // When the server started to close: its CLOSE frame, else the TCP close.
  const closingAt = close ? close.at : closedAt;
  assert.ok(closingAt >= TIMEOUT - 50, `closing began ${closingAt} ms after the 101, before heartbeatTimeout`);
  assert.ok(closingAt <= 1500, `closing began ${closingAt} ms after the 101`);
  assert.ok(closedAt <= 3200, `the socket closed ${closedAt} ms after the 101`);
  if (close) {
    assert.strictEqual(close.masked, false);
    assert.ok([1000, 1001, 1008].includes(close.code), `close code ${close.code} (${close.reason})`);
  }
  assert.ok(c.frames.filter((f) => f.opcode === OP.PING).length >= 2, 'it was pinged before being closed');
  await servesFresh(server.port, 'a silent client');
});

test('clients that keep sending frames every 150 ms stay connected for 1.5 s', async (t) => {
  const server = await start(t);
  const pongs = await open(server);   // unsolicited PONG frames
  const events = await open(server);  // {"event":"pong"} text messages
  const pings = await open(server);   // PING frames (any frame counts)
  const silent = await open(server);  // control: sends nothing
  const stops = [
    every(150, () => pongs.send(OP.PONG, '')),
    every(150, () => events.sendText(envelope('pong', Date.now()))),
    every(150, () => pings.send(OP.PING, 'k')),
  ];
  t.after(() => stops.forEach((s) => s()));
  await sleep(1500);
  stops.forEach((s) => s());
  for (const [what, c] of [['PONG frames', pongs], ['pong events', events], ['PING frames', pings]]) {
    assert.strictEqual(c.isClosed, false, `${what}: still connected`);
    assert.deepStrictEqual(c.frames.filter((f) => f.opcode === OP.CLOSE), [], `${what}: no CLOSE`);
    assert.ok(c.frames.filter((f) => f.opcode === OP.PING).length >= 4, `${what}: pinged meanwhile`);
    c.sendText(envelope('echo', what));
    const reply = await c.nextFrame(OP.TEXT);
    assert.deepStrictEqual(JSON.parse(reply.payload.toString()), { event: 'echo', data: what });
  }
  assert.ok(pings.frames.filter((f) => f.opcode === OP.PONG && f.payload.toString() === 'k').length >= 5,
    'its pings were answered');
  assert.strictEqual(events.frames.filter((f) => f.opcode === OP.TEXT).length, 1, 'pong events get no reply');
  assert.ok(silent.frames.some((f) => f.opcode === OP.CLOSE) || silent.isClosed, 'the silent one was closed meanwhile');
});

test('the ws client (answering pings itself) stays connected for 1.5 s', async (t) => {
  const server = await start(t);
  const c = server.track(await connect(server.port));
  let pinged = 0;
  c.ws.on('ping', () => { pinged++; });
  await sleep(1500);
  assert.strictEqual(c.closed, null, `closed: ${JSON.stringify(c.closed)}`);
  assert.ok(pinged >= 5, `${pinged} pings in 1.5 s`);
  c.emit('echo', 'still here');
  assert.deepStrictEqual(await c.next('echo'), { event: 'echo', data: 'still here' });
  await c.close();
  await servesFresh(server.port, 'a long-lived client');
});
