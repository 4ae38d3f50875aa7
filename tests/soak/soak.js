#!/usr/bin/env node
// Soak and churn: one stelar-lua process, N connections opened and closed over
// both transports, then a check that nothing stayed behind.
//
//   node tests/soak/soak.js [--connections N] [--quick] [--concurrency C]
//                           [--bin build/stelar-lua] [--script tests/soak/soak_server.lua]
//
// The mix, by connection index (i % 20):
//   0-6   WebSocket (the `ws` client): join a room, echo, room message, ACK,
//         then a clean close or an abrupt terminate
//   7-12  TCP: wait for CONNECT, JOIN, echo, ACK, then DISCONNECT or destroy
//   13-14 WebSocket killed mid-frame: handshake, half a masked frame, destroy
//   15-16 TCP killed mid-frame: half a frame, destroy
//   17-18 WebSocket killed mid-handshake: half an HTTP upgrade request, destroy
//   19    TCP dropped at once: connect, destroy before reading anything
//
// A warm-up of max(400, N/10) connections of the same mix runs first; then
// the baselines are taken: open descriptors (/proc/PID/fd), RSS
// (/proc/PID/status), Lua heap (getStats through an ACK that collects
// first). After the run it waits for the server to settle and checks:
// descriptors back to the baseline (within 2), RSS within 10%, Lua heap
// within 10% or 256 KiB, rooms back to the baseline, no "handler error" in
// the log, and every well-behaved client served. It prints one result line
// and exits non-zero on any failure.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const HOST = '127.0.0.1';
const root = path.resolve(__dirname, '..', '..');

function parseArgs(argv) {
  const o = {
    connections: 20000,
    concurrency: 200,
    bin: path.join(root, 'build', 'stelar-lua'),
    script: path.join(__dirname, 'soak_server.lua'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.connections = 2000;
    else if (a === '--connections') o.connections = parseInt(next(), 10);
    else if (a === '--concurrency') o.concurrency = parseInt(next(), 10);
    else if (a === '--bin') o.bin = path.resolve(next());
    else if (a === '--script') o.script = path.resolve(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.connections > 0) || !(o.concurrency > 0)) throw new Error('counts must be positive');
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Rejects after ms unless p settles first; cleanup runs either way.
function bounded(p, ms, what, cleanup) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(t);
    if (cleanup) cleanup();
  });
}

// ---- the binary TCP protocol (PROTOCOL.md section 4): the integration tests' codec ----

const { T, encodeFrame: frame, Deframer } = require('../integration/tcpwire');

// A TCP client that deframes what it reads and lets callers wait for a frame.
class TcpClient {
  constructor(port) {
    this.sock = net.connect(port, HOST);
    this.sock.setNoDelay(true);
    this.deframer = new Deframer();
    this.frames = [];
    this.waiters = [];
    this.closed = false;
    this.error = null;
    this.sock.on('data', (chunk) => this.push(chunk));
    this.sock.on('error', (e) => { this.error = e; });
    this.sock.on('close', () => {
      this.closed = true;
      this.flush();
    });
  }

  push(chunk) {
    try {
      this.frames.push(...this.deframer.push(chunk));
    } catch (e) { // a frame no server of ours would send
      this.error = e;
      this.sock.destroy();
    }
    this.flush();
  }

  flush() {
    this.waiters = this.waiters.filter((w) => {
      const i = this.frames.findIndex(w.match);
      if (i >= 0) {
        w.resolve(this.frames.splice(i, 1)[0]);
        return false;
      }
      if (this.closed) {
        w.reject(new Error(`tcp closed while waiting${this.error ? `: ${this.error.message}` : ''}`));
        return false;
      }
      return true;
    });
  }

  wait(match, ms, what) {
    const p = new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve, reject });
      this.flush();
    });
    return bounded(p, ms, what);
  }

  send(buf) {
    this.sock.write(buf);
  }

  destroy() {
    this.sock.destroy();
  }

  closedPromise(ms) {
    if (this.closed) return Promise.resolve();
    return bounded(new Promise((r) => this.sock.once('close', r)), ms, 'tcp close');
  }
}

// ---- the server ----

async function startServer(opts, logPath) {
  const logFd = fs.openSync(logPath, 'w');
  const child = spawn(opts.bin, [opts.script], { stdio: ['ignore', 'ignore', logFd] });
  fs.closeSync(logFd);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.exitedInfo = null;
  exited.then((info) => { child.exitedInfo = info; });
  child.exited = exited;
  for (let i = 0; i < 100; i++) {
    const log = fs.readFileSync(logPath, 'utf8');
    const ws = /listening on port (\d+) \(ws\)/.exec(log);
    const tcp = /listening on port (\d+) \(tcp\)/.exec(log);
    if (ws && tcp) return { child, wsPort: +ws[1], tcpPort: +tcp[1] };
    if (child.exitedInfo) throw new Error(`server exited at start:\n${log}`);
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server did not report its ports:\n${fs.readFileSync(logPath, 'utf8')}`);
}

async function stopServer(child) {
  if (child.exitedInfo) return child.exitedInfo;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15000);
  const info = await child.exited;
  clearTimeout(t);
  return info;
}

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? +m[1] * 1024 : NaN;
}

// ---- one connection of each kind; each resolves when its part is done ----

const ROOMS = 50;

async function wsNormal(ctx, i) {
  const ws = new WebSocket(`ws://${HOST}:${ctx.wsPort}/`);
  const inbox = [];
  let waiter = null;
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    inbox.push(JSON.parse(data.toString()));
    if (waiter) waiter();
  });
  ws.on('error', () => {});
  const closed = new Promise((r) => ws.once('close', r));
  const next = (match, what) => bounded(new Promise((resolve, reject) => {
    const check = () => {
      const k = inbox.findIndex(match);
      if (k >= 0) {
        waiter = null;
        resolve(inbox.splice(k, 1)[0]);
      } else if (ws.readyState >= WebSocket.CLOSING) {
        reject(new Error(`ws closed while waiting for ${what}`));
      }
    };
    waiter = check;
    ws.once('close', check);
    check();
  }), 15000, what);
  try {
    await bounded(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('close', () => reject(new Error('ws closed before open')));
    }), 15000, 'ws open');
    const room = `room-${i % ROOMS}`;
    ws.send(JSON.stringify({ event: 'join-room', data: room }));
    await next((m) => m.event === 'joined-room', 'joined-room');
    const token = crypto.randomBytes(6).toString('hex');
    ws.send(JSON.stringify({ event: 'echo', data: { i, token, text: 'ü€😀'.repeat(1 + (i % 7)) } }));
    await next((m) => m.event === 'echo' && m.data && m.data.token === token, 'echo');
    ws.send(JSON.stringify({ event: 'chat', data: { room, i } }));
    ws.send(JSON.stringify({ event: 'whoami', data: {}, _ackName: 'whoami', _correlationId: `c-${i}` }));
    await next((m) => m._isAck && m._correlationId === `c-${i}`, 'ACK reply');
    if (i % 2) {
      ws.close(1000);
      await bounded(closed, 15000, 'ws close handshake');
    } else {
      ws.terminate();
    }
  } finally {
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }
}

async function tcpNormal(ctx, i) {
  const c = new TcpClient(ctx.tcpPort);
  try {
    await c.wait((f) => f.type === T.CONNECT, 15000, 'CONNECT');
    const room = `room-${i % ROOMS}`;
    c.send(frame(T.JOIN, 'join-room', room));
    await c.wait((f) => f.type === T.JSON && f.event === 'joined-room', 15000, 'joined-room');
    const token = crypto.randomBytes(6).toString('hex');
    // Several frames in one write, and one frame split over two.
    const echo = frame(T.JSON, 'echo', JSON.stringify({ i, token }));
    c.send(Buffer.concat([frame(T.PING), echo.subarray(0, 5)]));
    c.send(Buffer.concat([echo.subarray(5), frame(T.JSON, 'chat', JSON.stringify({ room, i }))]));
    await c.wait((f) => f.type === T.JSON && f.event === 'echo' && f.payload.includes(token), 15000, 'echo');
    c.send(frame(T.ACK_REQ, 'whoami', JSON.stringify({ data: {}, _correlationId: `t-${i}` })));
    await c.wait((f) => f.type === T.ACK_RES && f.payload.includes(`t-${i}`), 15000, 'ACK reply');
    if (i % 2) {
      c.send(frame(T.DISCONNECT));
      await c.closedPromise(15000);
    }
  } finally {
    c.destroy();
  }
}

function rawUpgrade(port) {
  const key = crypto.randomBytes(16).toString('base64');
  const req = `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return Buffer.from(req);
}

function maskedFrame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
  const body = Buffer.from(payload);
  for (let k = 0; k < body.length; k++) body[k] ^= mask[k & 3];
  return Buffer.concat([head, mask, body]);
}

async function wsMidFrame(ctx, i) {
  const s = net.connect(ctx.wsPort, HOST);
  s.on('error', () => {});
  try {
    await bounded(new Promise((r) => s.once('connect', r)), 15000, 'connect');
    s.write(rawUpgrade(ctx.wsPort));
    let got = '';
    await bounded(new Promise((resolve, reject) => {
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) resolve();
      });
      s.once('close', () => reject(new Error('closed during handshake')));
    }), 15000, '101');
    if (!got.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${got.split('\r\n')[0]}`);
    const f = maskedFrame(1, Buffer.from(JSON.stringify({ event: 'echo', data: 'x'.repeat(200 + (i % 300)) })));
    s.write(f.subarray(0, 2 + (i % (f.length - 2)))); // anywhere from inside the header to the last byte
    await sleep(i % 3);
  } finally {
    s.destroy();
  }
}

async function tcpMidFrame(ctx, i) {
  const c = new TcpClient(ctx.tcpPort);
  try {
    await c.wait((f) => f.type === T.CONNECT, 15000, 'CONNECT');
    const f = frame(T.JSON, 'echo', JSON.stringify({ i, pad: 'y'.repeat(100 + (i % 500)) }));
    c.send(f.subarray(0, 1 + (i % (f.length - 1))));
    await sleep(i % 3);
  } finally {
    c.destroy();
  }
}

async function wsMidHandshake(ctx, i) {
  const s = net.connect(ctx.wsPort, HOST);
  s.on('error', () => {});
  try {
    await bounded(new Promise((r) => s.once('connect', r)), 15000, 'connect');
    const req = rawUpgrade(ctx.wsPort);
    s.write(req.subarray(0, 1 + (i % (req.length - 5))));
    await sleep(i % 3);
  } finally {
    s.destroy();
  }
}

async function tcpDropped(ctx) {
  const s = net.connect(ctx.tcpPort, HOST);
  s.on('error', () => {});
  await bounded(new Promise((resolve) => {
    s.once('connect', resolve);
    s.once('close', resolve);
  }), 15000, 'connect');
  s.destroy();
}

const KINDS = [
  ...Array(7).fill(['ws', wsNormal]),
  ...Array(6).fill(['tcp', tcpNormal]),
  ...Array(2).fill(['ws-mid-frame', wsMidFrame]),
  ...Array(2).fill(['tcp-mid-frame', tcpMidFrame]),
  ...Array(2).fill(['ws-mid-handshake', wsMidHandshake]),
  ['tcp-dropped', tcpDropped],
];

async function churn(ctx, first, count, concurrency, tally) {
  let next = first;
  const end = first + count;
  async function worker() {
    while (next < end) {
      const i = next++;
      const [kind, fn] = KINDS[i % KINDS.length];
      tally.kinds[kind] = (tally.kinds[kind] || 0) + 1;
      try {
        await fn(ctx, i);
      } catch (e) {
        tally.errors++;
        if (tally.samples.length < 5) tally.samples.push(`${kind} #${i}: ${e.message}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

// ---- measuring ----

class StatsProbe {
  constructor(port) {
    this.c = new TcpClient(port);
    this.n = 0;
  }

  async ready() {
    await this.c.wait((f) => f.type === T.CONNECT, 15000, 'stats CONNECT');
  }

  async stats() {
    const id = `stats-${++this.n}`;
    this.c.send(frame(T.ACK_REQ, 'stats', JSON.stringify({ data: null, _correlationId: id })));
    const f = await this.c.wait((x) => x.type === T.ACK_RES && x.payload.includes(id), 15000, 'stats ACK');
    return JSON.parse(f.payload.toString()).data;
  }

  close() {
    this.c.destroy();
  }
}

// Waits until only the probe is connected and the descriptor count has
// stopped moving (close callbacks run after the last byte).
async function settle(ctx, probe, baseFds) {
  let last = -1;
  let stable = 0;
  let st;
  for (let k = 0; k < 300; k++) {
    st = await probe.stats();
    const fds = fdCount(ctx.pid);
    if (st.activeConnections <= 1 && fds === last) stable++;
    else stable = 0;
    if (stable >= 3 && (baseFds === undefined || fds <= baseFds + 2)) break;
    last = fds;
    await sleep(100);
  }
  return st;
}

function mib(n) {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function kib(n) {
  return `${Math.round(n / 1024)} KiB`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const logPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stelar-soak-')), 'server.log');
  const srv = await startServer(opts, logPath);
  const ctx = { wsPort: srv.wsPort, tcpPort: srv.tcpPort, pid: srv.child.pid };
  const failures = [];
  let probe;
  const started = Date.now();
  const hardStop = setTimeout(() => {
    console.log('soak: FAIL: the run did not finish within its time bound');
    srv.child.kill('SIGKILL');
    process.exit(1);
  }, Math.max(300000, opts.connections * 60));
  try {
    probe = new StatsProbe(ctx.tcpPort);
    await probe.ready();

    const warm = Math.max(400, Math.floor(opts.connections / 10));
    const warmTally = { kinds: {}, errors: 0, samples: [] };
    await churn(ctx, 0, warm, opts.concurrency, warmTally);
    const base = await settle(ctx, probe);
    const baseFds = fdCount(ctx.pid);
    const baseRss = rssBytes(ctx.pid);
    const baseHeap = base.memoryUsage.luaHeap;
    const baseRooms = base.totalRooms;

    const t0 = Date.now();
    const tally = { kinds: {}, errors: 0, samples: [] };
    await churn(ctx, warm, opts.connections, opts.concurrency, tally);
    const secs = (Date.now() - t0) / 1000;
    const end = await settle(ctx, probe, baseFds);
    const fds = fdCount(ctx.pid);
    const rss = rssBytes(ctx.pid);
    const heap = end.memoryUsage.luaHeap;

    const log = fs.readFileSync(logPath, 'utf8');
    const handlerErrors = (log.match(/handler error/g) || []).length;
    const heapSlack = Math.max(0.1 * baseHeap, 256 * 1024);
    if (Math.abs(fds - baseFds) > 2) failures.push(`open descriptors ${baseFds} -> ${fds}`);
    if (Math.abs(rss - baseRss) > 0.1 * baseRss) failures.push(`RSS ${mib(baseRss)} -> ${mib(rss)}`);
    if (Math.abs(heap - baseHeap) > heapSlack) failures.push(`Lua heap ${kib(baseHeap)} -> ${kib(heap)}`);
    if (end.totalRooms !== baseRooms) failures.push(`rooms ${baseRooms} -> ${end.totalRooms}`);
    if (end.activeConnections !== 1) failures.push(`${end.activeConnections - 1} connections still open`);
    if (handlerErrors) failures.push(`${handlerErrors} handler errors in the log`);
    if (warmTally.errors + tally.errors) {
      failures.push(`${warmTally.errors + tally.errors} client flows failed (${[...warmTally.samples, ...tally.samples].slice(0, 3).join('; ')})`);
    }
    if (srv.child.exitedInfo) failures.push(`the server exited (${JSON.stringify(srv.child.exitedInfo)})`);

    const mix = Object.entries(tally.kinds).map(([k, n]) => `${k} ${n}`).join(', ');
    const pct = (a, b) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)}%`;
    console.log(`soak: ${opts.connections} connections after a warm-up of ${warm}, ${opts.concurrency} at a time, ` +
      `in ${secs.toFixed(1)} s (${Math.round(opts.connections / secs)}/s): ${mix}`);
    console.log(`soak: fds ${baseFds} -> ${fds}; RSS ${mib(baseRss)} -> ${mib(rss)} (${pct(rss, baseRss)}); ` +
      `Lua heap ${kib(baseHeap)} -> ${kib(heap)} (${pct(heap, baseHeap)}); rooms ${baseRooms} -> ${end.totalRooms}; ` +
      `server totalConnections ${end.totalConnections}; handler errors ${handlerErrors}; client errors ${tally.errors + warmTally.errors}`);
  } catch (e) {
    failures.push(e.stack || String(e));
  } finally {
    if (probe) probe.close();
    clearTimeout(hardStop);
    const info = await stopServer(srv.child);
    if (info.signal && info.signal !== 'SIGTERM') failures.push(`server ended by ${info.signal}`);
    else if (info.code) failures.push(`server exited with status ${info.code}`);
  }
  const total = ((Date.now() - started) / 1000).toFixed(1);
  if (failures.length) {
    console.log(`soak: FAIL after ${total} s: ${failures.join('; ')} (server log: ${logPath})`);
    process.exit(1);
  }
  console.log(`soak: PASS after ${total} s`);
  fs.rmSync(path.dirname(logPath), { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
