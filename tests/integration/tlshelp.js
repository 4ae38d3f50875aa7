// Helpers for the TLS and permessage-deflate tests: a self-signed
// certificate made with openssl, the tls_app.lua server with its two ports,
// clients over wss://, raw TLS on the TCP port, and a raw WebSocket client
// that sees each frame's RSV1 bit.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const zlib = require('node:zlib');
const WebSocket = require('ws');
const {
  fixture, startServer, Client, withTimeout, sleep, upgradeRequest, frame,
} = require('./harness');

const APP = fixture('tls_app.lua');

// ---- certificates ----

// A fresh temporary folder, removed when the test ends.
function tempDir(t, prefix = 'stelar-tls-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A self-signed certificate for 127.0.0.1 and its key, made by openssl in
// dir: { cert, key } paths.
function makeCert(dir, name = 'server') {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30000 });
  return { cert, key };
}

// ---- the server ----

// Starts tls_app.lua with env (TLS_CERT, TLS_KEY, COMPRESSION, MAX_PAYLOAD,
// MAX_FRAME) and stops it when the test ends. Resolves with the server, its
// .port (WebSocket/HTTP) and .tcpPort set.
async function startApp(t, env = {}) {
  const server = await startServer(APP, { env });
  t.after(() => server.stop());
  const m = await server.waitForLog(/listening on port (\d+) \(tcp\)/);
  server.tcpPort = Number(m[1]);
  server.alive = () => {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
      throw new Error(`the server is gone (${server.proc.exitCode}/${server.proc.signalCode}); log:\n${server.logs()}`);
    }
  };
  return server;
}

// Resident set size of a process, in bytes, now (VmRSS) and at its peak
// (VmHWM: a buffer allocated and freed again still shows there).
function memory(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+) kB`))[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

// ---- WebSocket over TLS ----

// Tracks clients and sockets so that every one is closed when the test ends.
function tracker(t) {
  const items = [];
  t.after(() => {
    for (const x of items) {
      try {
        if (x instanceof Client) x.ws.terminate();
        else if (x.destroy) x.destroy();
      } catch { /* already gone */ }
    }
  });
  return (x) => { items.push(x); return x; };
}

// A harness Client over ws:// or wss:// (self-signed certificate accepted).
// Resolves once open; client.upgradeHeaders holds the 101's headers.
function wsConnect(url, { perMessageDeflate = false, ms = 4000, headers = {} } = {}) {
  const ws = new WebSocket(url, { rejectUnauthorized: false, perMessageDeflate, headers });
  const client = new Client(ws);
  ws.on('upgrade', (res) => { client.upgradeHeaders = res.headers; });
  return withTimeout(new Promise((resolve, reject) => {
    ws.on('open', () => resolve(client));
    ws.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  }), ms, `the WebSocket ${url} to open`).catch((e) => {
    ws.terminate();
    throw e;
  });
}

// A TLS connection to 127.0.0.1:port; resolves with the socket once the
// handshake is done, rejects with the TLS error.
function tlsConnect(port, opts = {}, ms = 4000) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    sock.once('secureConnect', () => resolve(sock));
    sock.once('error', (e) => { sock.destroy(); reject(e); });
    sock.once('close', () => reject(new Error('closed before the handshake completed')));
  }), ms, `a TLS handshake with port ${port}`);
}

// GET over HTTPS; resolves with { status, headers, body }.
function httpsGet(port, p, ms = 4000) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, socket: res.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  }), ms, `GET ${p} over HTTPS`);
}

// ---- a raw WebSocket client that sees RSV1 ----

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// One message deflated as permessage-deflate sends it: raw deflate, sync
// flush, the trailing 00 00 ff ff removed.
function deflateMessage(data, windowBits = 15) {
  const out = zlib.deflateRawSync(Buffer.from(data), { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assertTail(out);
  return out.subarray(0, out.length - 4);
}

function assertTail(out) {
  if (out.length < 4 || !out.subarray(out.length - 4).equals(TAIL)) throw new Error('deflate output lacks 00 00 ff ff');
}

// A compressor that keeps its context between messages (context takeover).
function contextDeflater(windowBits = 15) {
  const z = zlib.createDeflateRaw({ windowBits });
  const chunks = [];
  z.on('data', (d) => chunks.push(d));
  return {
    message(data) {
      return new Promise((resolve, reject) => {
        z.write(Buffer.from(data));
        z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          const out = Buffer.concat(chunks.splice(0));
          try { assertTail(out); } catch (e) { return reject(e); }
          resolve(out.subarray(0, out.length - 4));
        });
      });
    },
    close() { z.close(); },
  };
}

// Inflates one server message (no context takeover: each on its own).
// Output comes in 64-byte chunks, so that only the window itself (not the
// whole output) can serve back-references: a stream made with a larger
// window than windowBits fails with "invalid distance too far back".
function inflateMessage(payload, windowBits = 15) {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), {
    windowBits, chunkSize: 64, finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
}

// Parses the parameters of one Sec-WebSocket-Extensions value into
// { name, params: Map } (a header with several extensions is refused).
function parseExtension(value) {
  if (value === undefined) return null;
  if (value.includes(',')) throw new Error(`more than one extension answered: ${value}`);
  const [name, ...rest] = value.split(';').map((s) => s.trim());
  const params = new Map();
  for (const p of rest) {
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim();
    if (params.has(k)) throw new Error(`parameter ${k} answered twice: ${value}`);
    params.set(k, eq < 0 ? true : p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return { name, params };
}

class RawWs {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.head = null;
    this.headers = {};
    this.frames = [];
    this.waiters = [];
    this.closed = false;
    this.closedPromise = new Promise((resolve) => sock.on('close', () => { this.closed = true; resolve(); this.wake(); }));
    sock.on('error', () => {});
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      if (!this.head) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        this.head = this.buf.subarray(0, end).toString();
        this.buf = this.buf.subarray(end + 4);
        const lines = this.head.split('\r\n');
        this.status = Number(lines[0].split(' ')[1]);
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          const k = l.slice(0, i).trim().toLowerCase();
          const v = l.slice(i + 1).trim();
          this.headers[k] = this.headers[k] === undefined ? v : `${this.headers[k]}, ${v}`;
        }
      }
      this.parse();
      this.wake();
    });
  }

  parse() {
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 127;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b[1] & 0x80) throw new Error('the server sent a masked frame');
      if (b.length < off + len) return;
      const f = {
        fin: !!(b[0] & 0x80), rsv1: !!(b[0] & 0x40), rsv23: (b[0] & 0x30) >> 4, opcode: b[0] & 15,
        payload: Buffer.from(b.subarray(off, off + len)),
      };
      if (f.opcode === 8 && len >= 2) {
        f.code = f.payload.readUInt16BE(0);
        f.reason = f.payload.subarray(2).toString();
      }
      if (f.opcode === 9) this.send(10, f.payload); // PONG
      if (f.opcode === 8 && !this.closeSent) { // answer CLOSE, as a client does
        this.closeSent = true;
        this.send(8, f.payload.subarray(0, 2));
      }
      this.frames.push(f);
      this.buf = b.subarray(off + len);
    }
  }

  wake() {
    for (const w of [...this.waiters]) {
      const i = this.frames.findIndex(w.match);
      if (i >= 0 || (w.head && this.head !== null) || this.closed) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(i >= 0 ? this.frames.splice(i, 1)[0] : null);
      }
    }
  }

  // Resolves once the HTTP response head is in.
  waitHead(ms = 3000) {
    if (this.head !== null) return Promise.resolve(this.head);
    let w;
    const p = new Promise((resolve) => { w = { head: true, match: () => false, resolve }; this.waiters.push(w); });
    return withTimeout(p, ms, 'the HTTP response head').then(() => {
      if (this.head === null) throw new Error('the server closed before answering');
      return this.head;
    });
  }

  // The next frame for which match(f) holds (default: a data frame); null
  // when the socket closes first.
  next(match = (f) => f.opcode === 1 || f.opcode === 2, ms = 3000) {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    if (this.closed) return Promise.resolve(null);
    let w;
    const p = new Promise((resolve) => { w = { match, resolve }; this.waiters.push(w); });
    return withTimeout(p, ms, 'a WebSocket frame').catch((e) => {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      throw e;
    });
  }

  // The next text message, inflated when RSV1 is set: { frame, text, json }.
  async message(ms = 3000, windowBits = 15) {
    const f = await this.next(undefined, ms);
    if (!f) throw new Error('the connection closed instead of a message');
    const bytes = f.rsv1 ? inflateMessage(f.payload, windowBits) : f.payload;
    const text = bytes.toString();
    return { frame: f, text, json: JSON.parse(text) };
  }

  // The CLOSE frame (null if the socket closed without one).
  closeFrame(ms = 3000) {
    return this.next((f) => f.opcode === 8, ms);
  }

  send(opcode, payload, opts) {
    if (!this.sock.destroyed) this.sock.write(frame(opcode, payload, opts));
  }

  sendText(text) {
    this.send(1, Buffer.from(text));
  }

  // A text message sent compressed (RSV1 set).
  sendCompressed(bytes) {
    this.send(1, bytes, { rsv: 4 });
  }

  waitClose(ms = 3000) {
    return withTimeout(this.closedPromise, ms, 'the server to close the socket');
  }

  destroy() {
    this.sock.destroy();
  }
}

// Opens a raw WebSocket on port (over TLS when secure) with the given
// Sec-WebSocket-Extensions offer (none when undefined); resolves once the
// response head is in.
async function rawWs(port, { extensions, secure = false, ms = 3000 } = {}) {
  const sock = secure
    ? await tlsConnect(port)
    : await withTimeout(new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    }), ms, 'a TCP connection');
  sock.setNoDelay(true);
  const c = new RawWs(sock);
  const extra = extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  sock.write(upgradeRequest({ extra }));
  await c.waitHead(ms);
  return c;
}

module.exports = {
  APP, tempDir, makeCert, startApp, memory, tracker, wsConnect, tlsConnect, httpsGet,
  deflateMessage, contextDeflater, inflateMessage, parseExtension,
  RawWs, rawWs, sleep,
};
