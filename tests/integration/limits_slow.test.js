'use strict';
// Slow consumers (issue 5, PROTOCOL.md §5): a client that stops reading
// while the server floods it is cut off once its outbound queue passes
// maxBufferedBytes (1 MiB here), with 1008 / an ERROR frame; its queue is
// freed, the server's memory does not follow the flood, and other clients
// are served meanwhile.
const test = require('node:test');
const assert = require('node:assert');
const { sleep } = require('./harness');
const { limServer, wsEcho, T } = require('./limitshelp');

const MiB = 1 << 20;
const BLOB = 64 * 1024;
const FLOOD = { size: BLOB, count: 4000, perTick: 2 }; // at most 250 MiB if never cut

// Runs echo round trips on fast and samples the server's RSS until the log
// says id was cut off (or ms pass). Resolves with what it saw.
async function watchFlood(h, fast, id, ms = 15000) {
  const cut = new RegExp(`closing client ${id}: (\\d+) bytes queued, over maxBufferedBytes`);
  const start = Date.now();
  let maxRss = h.rss();
  let echoes = 0;
  let slowest = 0;
  for (;;) {
    const m = h.server.logs().match(cut);
    if (m) return { queued: Number(m[1]), maxRss, echoes, slowest };
    if (Date.now() - start > ms) throw new Error(`${id} was not cut off within ${ms} ms; log:\n${h.server.logs()}`);
    const t0 = Date.now();
    await wsEcho(fast, { n: echoes });
    slowest = Math.max(slowest, Date.now() - t0);
    echoes++;
    maxRss = Math.max(maxRss, h.rss());
    await sleep(10);
  }
}

async function sentBeforeStop(h) {
  const m = await h.server.waitForLog(/FLOOD (stopped|done) sent=(\d+)/, 5000);
  assert.strictEqual(m[1], 'stopped', `the flood was never refused: ${m[0]}`);
  return Number(m[2]);
}

test('a TCP client that stops reading is cut off near maxBufferedBytes; others are served; RSS bounded', async (t) => {
  const h = await limServer(t, { opts: { maxBufferedBytes: MiB, tcpPort: 0, rateLimit: false } });
  const fast = await h.ws();
  const fds = h.server.openFds();
  const slow = await h.tcp();
  const rss0 = h.rss();
  slow.sock.pause(); // reads nothing more: the kernel buffers fill, then the server's queue
  slow.emit('flood', FLOOD);
  await h.server.waitForLog(/FLOOD started/);
  const seen = await watchFlood(h, fast, slow.id);
  const sent = await sentBeforeStop(h);

  assert.ok(seen.queued > MiB && seen.queued <= MiB + BLOB + 64,
    `cut off with ${seen.queued} bytes queued, not just past maxBufferedBytes (${MiB})`);
  assert.ok(sent < FLOOD.count, `the flood ran to its end (${sent})`);
  assert.ok(seen.maxRss - rss0 < 64 * MiB, `RSS grew ${((seen.maxRss - rss0) / MiB).toFixed(1)} MiB during the flood`);
  assert.ok(seen.echoes >= 1, 'no echo of another client completed during the flood');
  assert.ok(seen.slowest < 1000, `an echo of another client took ${seen.slowest} ms during the flood`);
  await wsEcho(fast);

  // Reading again: whole frames up to the cut, then ERROR "Slow consumer" and the end.
  slow.sock.resume();
  await slow.waitClose(5000);
  assert.strictEqual(slow.error, null, `the stream did not deframe: ${slow.error}`);
  const last = slow.all[slow.all.length - 1];
  assert.strictEqual(last.type, T.ERROR, `last frame ${last}`);
  assert.strictEqual(last.text(), 'Slow consumer');
  const blobs = slow.all.filter((f) => f.type === T.BINARY);
  assert.ok(blobs.every((f) => f.event === 'blob' && f.payload.length === BLOB), 'a cut frame');
  // What was queued past the limit was dropped, not delivered late.
  assert.ok(blobs.length < sent, `received ${blobs.length} of ${sent}: the queue was not dropped`);
  t.diagnostic(`sent ${sent}, received ${blobs.length}, queued ${seen.queued} at the cut, RSS +${((seen.maxRss - rss0) / MiB).toFixed(1)} MiB, ${seen.echoes} echoes`);

  assert.strictEqual((await h.health()).json.activeConnections, 1);
  await h.fdsBackTo(fds);
  const after = h.rss();
  assert.ok(after - rss0 < 64 * MiB, `RSS after the cut: +${((after - rss0) / MiB).toFixed(1)} MiB`);
  h.alive();
});

test('a WebSocket client that stops reading is closed 1008 "Slow consumer"', async (t) => {
  const h = await limServer(t, { opts: { maxBufferedBytes: MiB, rateLimit: false } });
  const fast = await h.ws();
  const slow = await h.rawWs();
  const rss0 = h.rss();
  slow.sock.pause();
  slow.emit('flood', FLOOD);
  const started = await h.server.waitForLog(/FLOOD started for (\S+)/);
  const seen = await watchFlood(h, fast, started[1]);
  const sent = await sentBeforeStop(h);
  assert.ok(seen.queued > MiB && seen.queued <= MiB + BLOB + 64, `cut off with ${seen.queued} bytes queued`);
  assert.ok(seen.maxRss - rss0 < 64 * MiB, `RSS grew ${((seen.maxRss - rss0) / MiB).toFixed(1)} MiB`);
  await wsEcho(fast);

  slow.sock.resume();
  const start = Date.now();
  let frames = [];
  for (;;) {
    frames = slow.frames();
    if (frames.some((f) => f.opcode === 8) || slow.ended || Date.now() - start > 5000) break;
    await sleep(20);
  }
  const close = frames.find((f) => f.opcode === 8);
  assert.ok(close, `no close frame after ${frames.length} frames`);
  assert.strictEqual(close.code, 1008);
  assert.strictEqual(close.reason, 'Slow consumer');
  assert.strictEqual(frames[frames.length - 1], close, 'frames after the close');
  const blobs = frames.filter((f) => f.opcode === 2);
  assert.ok(blobs.length < sent, `received ${blobs.length} of ${sent}: the queue was not dropped`);
  await wsEcho(fast);
  h.alive();
});

test('a broadcast flood: the reader gets everything, the one that stopped reading is cut off', async (t) => {
  const h = await limServer(t, { opts: { maxBufferedBytes: MiB, tcpPort: 0, rateLimit: false } });
  const fast = await h.ws();
  let got = 0;
  fast.ws.on('message', (d, isBinary) => { if (isBinary) got++; });
  const slow = await h.tcp();
  const rss0 = h.rss();
  slow.sock.pause();
  fast.emit('flood', { ...FLOOD, broadcast: true, watch: slow.id });
  const seen = await watchFlood(h, fast, slow.id);
  const sent = await sentBeforeStop(h);
  assert.ok(sent < FLOOD.count, `the flood ran to its end (${sent})`);
  const start = Date.now();
  while (got < sent && Date.now() - start < 10000) await sleep(20);
  assert.strictEqual(got, sent, 'the reading client missed broadcast messages');
  assert.ok(seen.queued > MiB && seen.queued <= MiB + BLOB + 64, `cut off with ${seen.queued} bytes queued`);
  assert.ok(seen.maxRss - rss0 < 64 * MiB, `RSS grew ${((seen.maxRss - rss0) / MiB).toFixed(1)} MiB`);
  await wsEcho(fast);
  h.alive();
});
