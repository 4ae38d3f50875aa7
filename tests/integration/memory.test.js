'use strict';
// A handler that allocates until the Lua heap budget refuses meets an
// ordinary error: the process, its other clients and the handler's own
// connection go on, and the memory comes back (issue 8).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { startServer, runToExit, connect, fixture } = require('./harness');

const BUDGET_MIB = 64;

function rssMiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) / 1024;
}

test('a handler that allocates without bound gets "not enough memory", nothing else is lost', async (t) => {
  const server = await startServer(fixture('hungry.lua'), { args: ['--lua-memory', String(BUDGET_MIB)] });
  const hungry = await connect(server.port);
  const other = await connect(server.port);
  t.after(async () => { hungry.ws.terminate(); other.ws.terminate(); await server.stop(); });

  for (let i = 0; i < 3; i++) {
    hungry.emit('hog', null);
    other.emit('echo', i);
    assert.strictEqual((await other.next('echo', 5000)).data, i, `another client is served after hog ${i}`);
  }
  await server.waitForLog(/handler error in on hog client=\S+: not enough memory/, 5000);

  // Middleware that runs out refuses its connection like any raising middleware.
  const refused = await connect(server.port, { path: '/?hog=1' });
  assert.deepStrictEqual(await refused.waitClose(5000), { code: 1008, reason: 'Rejected: middleware error' });
  await server.waitForLog(/handler error in use client=\S+: not enough memory/, 5000);

  const reply = await hungry.ack('hogack', null, 5000);
  assert.strictEqual(reply.error, 'not enough memory', 'the ACK is answered with the error');
  hungry.emit('echo', 'still here');
  assert.strictEqual((await hungry.next('echo')).data, 'still here', 'the connection that ran out is kept');

  hungry.emit('heap', null);
  const heap = (await hungry.next('heap')).data;
  assert.ok(heap < 16 * 1024 * 1024, `the garbage was collected: Lua heap ${heap} bytes`);
  // ASan's quarantine keeps freed blocks resident on purpose: RSS says
  // something only on the release build.
  if (!process.env.ASAN_OPTIONS) {
    const rss = rssMiB(server.proc.pid);
    assert.ok(rss < BUDGET_MIB * 3, `RSS ${rss.toFixed(1)} MiB stays near the ${BUDGET_MIB} MiB budget`);
  }
  assert.strictEqual(server.proc.exitCode, null, 'the server is still running');
});

test('a handler that raises on every message: each is logged, nothing else is lost, the heap stays flat', async (t) => {
  const server = await startServer(fixture('hungry.lua'));
  const noisy = await connect(server.port);
  const other = await connect(server.port);
  t.after(async () => { noisy.ws.terminate(); other.ws.terminate(); await server.stop(); });
  const heap = async () => { other.emit('heap', null); return (await other.next('heap')).data; };
  const N = 2000;
  const burst = async (from) => {
    for (let i = from; i < from + N; i++) noisy.emit('boom', i);
    noisy.emit('echo', from);
    assert.strictEqual((await noisy.next('echo', 10000)).data, from, 'the raising client is still served, in order');
  };
  await burst(0);
  const warm = await heap();
  await burst(N);
  const after = await heap();
  const errors = server.logs().match(/handler error in on boom client=\S+: .*boom \d+/g) || [];
  assert.strictEqual(errors.length, 2 * N, 'every error is logged once');
  assert.match(server.logs(), /hungry\.lua:\d+: boom 3999/, 'with file:line');
  assert.ok(after < warm + 256 * 1024, `Lua heap ${warm} -> ${after} bytes over ${N} more errors`);
  other.emit('echo', 'fine');
  assert.strictEqual((await other.next('echo')).data, 'fine');
  assert.strictEqual(server.proc.exitCode, null);
});

test('--lua-memory refuses what is not a number of MiB', async () => {
  const r = await runToExit(fixture('hungry.lua'), { args: ['--lua-memory', 'lots'] });
  assert.strictEqual(r.code, 2);
  assert.match(r.out, /--lua-memory wants a number of MiB, not 'lots'/);
});
