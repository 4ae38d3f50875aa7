// Starts real stelar-lua processes on ephemeral ports and drives them with
// real clients. Every process started here is stopped by the test (stop()),
// and every wait is bounded in time.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.STELAR_BIN || path.join(ROOT, 'build', 'stelar-lua');
const FIXTURES = path.join(__dirname, 'fixtures');

function fixture(name) {
  return path.join(FIXTURES, name);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Runs `stelar-lua script [args]` and resolves once it listens.
// fdLimit runs it under `ulimit -n fdLimit` (descriptor exhaustion tests).
async function startServer(script, { args = [], env = {}, timeout = 5000, fdLimit = 0 } = {}) {
  const argv = [...args, script];
  const proc = fdLimit
    ? spawn('bash', ['-c', `ulimit -n ${fdLimit} && exec "$0" "$@"`, BIN, ...argv], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    : spawn(BIN, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const onData = (d) => { out += d.toString(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const server = {
    proc,
    port: 0,
    exited,
    logs: () => out,
    // Resolves with the match once the log has a line matching re.
    async waitForLog(re, ms = 3000) {
      const start = Date.now();
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (Date.now() - start > ms) throw new Error(`no log line matching ${re} within ${ms} ms; log:\n${out}`);
        await sleep(20);
      }
    },
    // Stops the process (SIGTERM, then SIGKILL) and resolves with its exit.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
    openFds() {
      return fs.readdirSync(`/proc/${proc.pid}/fd`).length;
    },
  };
  try {
    const m = await Promise.race([
      server.waitForLog(/listening on port (\d+)/, timeout),
      exited.then((r) => { throw new Error(`stelar-lua exited (${JSON.stringify(r)}) before listening:\n${out}`); }),
    ]);
    server.port = Number(m[1]);
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return server;
}

// Runs stelar-lua to completion (e.g. --check, or a script that fails).
function runToExit(script, { args = [], env = {}, timeout = 5000 } = {}) {
  return withTimeout(new Promise((resolve) => {
    const proc = spawn(BIN, [...args, script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    // 'close', not 'exit': the output streams may still hold the last lines.
    proc.on('close', (code, signal) => resolve({ code, signal, out }));
  }), timeout, `stelar-lua ${script} to exit`);
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// A WebSocket client that queues what it receives for next().
class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    this.corr = 0;
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? { binary: Buffer.from(data) } : JSON.parse(data.toString());
      const w = this.waiters.findIndex((x) => x.match(msg));
      if (w >= 0) this.waiters.splice(w, 1)[0].resolve(msg);
      else this.queue.push(msg);
    });
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
      });
    });
    ws.on('error', () => {});
  }

  // Next message for which match(msg) holds (default: any), within ms.
  next(match = () => true, ms = 2000) {
    if (typeof match === 'string') {
      const event = match;
      match = (m) => m.event === event;
    }
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    let waiter;
    const p = new Promise((resolve) => { waiter = { match, resolve }; this.waiters.push(waiter); });
    return withTimeout(p, ms, 'a message').catch((e) => {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      throw e;
    });
  }

  // Resolves true if no message matching arrives within ms.
  async nothing(match = () => true, ms = 300) {
    try {
      await this.next(match, ms);
      return false;
    } catch {
      return true;
    }
  }

  emit(event, data) {
    this.ws.send(JSON.stringify({ event, data }));
  }

  // An ACK request; resolves with the reply envelope.
  ack(name, data, ms = 2000) {
    const id = `c-${++this.corr}`;
    this.ws.send(JSON.stringify({ event: name, data, _ackName: name, _correlationId: id }));
    return this.next((m) => m._isAck && m._correlationId === id, ms);
  }

  sendRaw(data, opts) {
    this.ws.send(data, opts);
  }

  close(code = 1000, reason = '') {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    return this.waitClose();
  }

  waitClose(ms = 3000) {
    return withTimeout(this.closedPromise, ms, 'the connection to close');
  }
}

// Connects a WebSocket client; resolves once open.
function connect(port, { path: p = '/', headers = {}, ms = 3000 } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${p}`, { headers });
  const client = new Client(ws);
  return withTimeout(new Promise((resolve, reject) => {
    ws.on('open', () => resolve(client));
    ws.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  }), ms, 'the WebSocket to open');
}

// Resolves with the error code of a connection attempt (null if it opened).
function tryConnect(port) {
  return withTimeout(new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(null); });
    s.on('error', (e) => resolve(e.code));
  }), 2000, 'a connection attempt');
}

// Sends raw bytes on a TCP socket and collects everything the server sends
// until it closes the socket (or ms passes).
function rawExchange(port, bytes, { ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('connect', () => { if (bytes) sock.write(bytes); });
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
  });
}

// The HTTP request lines for a WebSocket upgrade, with overrides.
function upgradeRequest({ path: p = '/', key = 'dGhlIHNhbXBsZSBub25jZQ==', version = '13', extra = '' } = {}) {
  let req = `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
  if (key !== null) req += `Sec-WebSocket-Key: ${key}\r\n`;
  if (version !== null) req += `Sec-WebSocket-Version: ${version}\r\n`;
  return req + extra + '\r\n';
}

// A client frame; masked unless mask === false.
function frame(opcode, payload, { fin = true, mask = true, rsv = 0 } = {}) {
  payload = Buffer.from(payload);
  const len = payload.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// Parses server frames out of bytes (after the HTTP response head).
function parseFrames(buf) {
  const frames = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    const opcode = buf[i] & 15;
    let len = buf[i + 1] & 127;
    let off = i + 2;
    if (len === 126) { len = buf.readUInt16BE(off); off += 2; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(off)); off += 8; }
    if (off + len > buf.length) break;
    const payload = buf.subarray(off, off + len);
    const f = { opcode, fin: !!(buf[i] & 0x80), payload };
    if (opcode === 8 && len >= 2) { f.code = payload.readUInt16BE(0); f.reason = payload.subarray(2).toString(); }
    frames.push(f);
    i = off + len;
  }
  return frames;
}

// Splits a raw exchange into the HTTP head and the frames after it.
function splitResponse(data) {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return { head: data.toString(), frames: [] };
  return { head: data.subarray(0, end).toString(), frames: parseFrames(data.subarray(end + 4)) };
}

module.exports = {
  tryConnect,
  BIN, fixture, startServer, runToExit, connect, Client, sleep, withTimeout,
  rawExchange, upgradeRequest, frame, parseFrames, splitResponse,
};
