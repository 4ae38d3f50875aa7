'use strict';
// busyPoll (src/busypoll.c): for that many microseconds after a read the
// loop polls without sleeping, then sleeps in the kernel again; "auto" by
// default, a window of at most 50 us learnt from the gaps between reads
// (its rule has unit tests: tests/unit/test_busypoll.c). What shows it from
// outside is the server's CPU time: a loop that does not sleep uses its
// core while it waits, a sleeping one uses none.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, connect, fixture, sleep } = require('./harness');
const { tcpConnect } = require('./tcpwire');

// Nanoseconds the server's main thread has run (schedstat's first field).
function cpuNs(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

// The share of one core the server used over the next ms milliseconds.
async function cpuShare(server, ms) {
  const c0 = cpuNs(server.proc.pid);
  const t0 = process.hrtime.bigint();
  await sleep(ms);
  const wall = Number(process.hrtime.bigint() - t0);
  return (cpuNs(server.proc.pid) - c0) / wall;
}

// Times the server's main thread gave up its core (it slept) so far.
function voluntarySwitches(pid) {
  const status = fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(status)[1]);
}

const SLEEPING = 0.05;

// Whether the server polled through the next ms milliseconds: it never
// slept, and it ran. How much of a core it got depends on what else the
// machine runs (other tests share it), so that is not the test; a loop
// that sleeps gives its core up at least once and uses almost none.
async function spinning(server, ms) {
  const pid = server.proc.pid;
  const s0 = voluntarySwitches(pid);
  const share = await cpuShare(server, ms);
  const slept = voluntarySwitches(pid) - s0;
  return { ok: slept === 0 && share > SLEEPING, why: `slept ${slept} times, ${(share * 100).toFixed(0)}% of a core` };
}

async function setup(t, busyPoll) {
  const env = busyPoll === undefined ? {} : { BUSY_POLL: String(busyPoll) };
  const server = await startServer(fixture('busypoll_app.lua'), { env });
  const closers = [];
  t.after(async () => {
    for (const close of closers) close();
    await server.stop();
  });
  const ws = await connect(server.port);
  closers.push(() => ws.ws.terminate());
  return { server, ws, closers };
}

test('busyPoll keeps the loop awake after a read, then lets it sleep', async (t) => {
  const { server, ws } = await setup(t, 400000); // 400 ms
  ws.emit('config');
  assert.strictEqual((await ws.next('config')).data, 400000, 'getConfig().busyPoll');
  ws.emit('echo', 'x');
  assert.strictEqual((await ws.next('echo')).data, 'x');
  const busy = await spinning(server, 150);
  assert.ok(busy.ok, `within the window the server ${busy.why}`);
  await sleep(400); // past the window, counted from the last read
  const after = await cpuShare(server, 200);
  assert.ok(after < SLEEPING, `after the window the server used ${(after * 100).toFixed(0)}% of a core`);
});

test('busyPoll = false: the loop sleeps between messages', async (t) => {
  const { server, ws } = await setup(t, false);
  ws.emit('config');
  assert.strictEqual((await ws.next('config')).data, 0, 'false reads back as 0');
  ws.emit('echo', 'x');
  assert.strictEqual((await ws.next('echo')).data, 'x');
  const share = await cpuShare(server, 150);
  assert.ok(share < SLEEPING, `the server used ${(share * 100).toFixed(0)}% of a core while idle`);
});

// A burst read in quick turns grows the learnt window to its bound; once
// the messages stop, the loop polls for that window at most, then sleeps.
test('by default ("auto") the loop sleeps once messages pause, after a burst too', async (t) => {
  const { server, ws } = await setup(t, undefined);
  ws.emit('config');
  assert.strictEqual((await ws.next('config')).data, 'auto', 'getConfig().busyPoll');
  const N = 500;
  for (let i = 0; i < N; i++) ws.emit('echo', i);
  for (let i = 0; i < N; i++) assert.strictEqual((await ws.next('echo')).data, i);
  await sleep(20);
  const share = await cpuShare(server, 200);
  assert.ok(share < SLEEPING, `after the burst the server used ${(share * 100).toFixed(0)}% of a core`);
});

// A fixed window of a minute, then updateConfig: off (0) or "auto" (learnt
// afresh, from nothing) both stop the spinning at once.
for (const [event, read] of [['off', true], ['auto', 'auto']]) {
  test(`updateConfig({busyPoll = ${event === 'off' ? '0' : '"auto"'}}) after a fixed window stops the spinning at once`, async (t) => {
    const { server, ws } = await setup(t, 60000000);
    ws.emit('echo', 'x');
    await ws.next('echo');
    const busy = await spinning(server, 100);
    assert.ok(busy.ok, `spinning: ${busy.why}`);
    ws.emit(event);
    assert.strictEqual((await ws.next(event)).data, read);
    await sleep(20);
    const after = await cpuShare(server, 200);
    assert.ok(after < SLEEPING, `after ${event} the server used ${(after * 100).toFixed(0)}% of a core`);
  });
}

// A hot reload applies a changed busyPoll as updateConfig does.
test('a reload from a fixed window to busyPoll = false stops the spinning', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stelar-busypoll-'));
  const file = path.join(dir, 'app.lua');
  const write = (value) => {
    const tmp = path.join(dir, '.app.lua.tmp'); // write-then-rename, as editors save
    fs.writeFileSync(tmp, `local stelar = require("stelar")
local server = stelar.server { host = "127.0.0.1", port = 0, rateLimit = false, busyPoll = ${value} }
server:on("echo", function(ctx) ctx:emit("echo", ctx.data) end)
server:on("config", function(ctx) ctx:emit("config", server:getConfig().busyPoll) end)
server:start()
`);
    fs.renameSync(tmp, file);
  };
  write(60000000); // a minute
  const server = await startServer(file);
  const ws = await connect(server.port);
  t.after(async () => {
    ws.ws.terminate();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  ws.emit('echo', 'x');
  await ws.next('echo');
  const busy = await spinning(server, 100);
  assert.ok(busy.ok, `spinning: ${busy.why}`);
  write('false');
  server.proc.kill('SIGHUP');
  await server.waitForLog(/reloaded \S+ \(SIGHUP\)/);
  ws.emit('config');
  assert.strictEqual((await ws.next('config')).data, 0, 'getConfig().busyPoll after the reload');
  await sleep(20);
  const after = await cpuShare(server, 200);
  assert.ok(after < SLEEPING, `after the reload the server used ${(after * 100).toFixed(0)}% of a core`);
});

for (const busyPoll of [100000, undefined]) test(`every message arrives, in order, on both transports (busyPoll ${busyPoll ?? '"auto"'})`, async (t) => {
  const { server, ws, closers } = await setup(t, busyPoll);
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  const tcp = await tcpConnect(tcpPort);
  closers.push(() => tcp.destroy());
  const N = 300;
  for (let i = 0; i < N; i++) {
    ws.emit('echo', i);
    tcp.emit('echo', i);
  }
  for (let i = 0; i < N; i++) {
    assert.strictEqual((await ws.next('echo')).data, i);
    assert.strictEqual((await tcp.next('echo')).json(), i);
  }
});
