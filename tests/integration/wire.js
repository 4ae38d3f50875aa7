// Helpers for the protocol tests (http, websocket, heartbeat): raw HTTP
// exchanges parsed into status/headers/body, a WebSocket client on a bare
// socket that sees every frame (with its mask bit and arrival time), and a
// check that a server still serves a fresh, normal client.
'use strict';
const assert = require('node:assert');
const crypto = require('node:crypto');
const net = require('node:net');
const { connect, withTimeout, upgradeRequest, frame, sleep } = require('./harness');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// base64(SHA1(key ++ GUID)), RFC 6455 section 4.2.2.
function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

// A fresh random Sec-WebSocket-Key (base64 of 16 bytes).
function newKey() {
  return crypto.randomBytes(16).toString('base64');
}

// Parses an HTTP response head: {statusLine, status, headers (lower-case
// names; repeated names joined with ", "), headerLines}.
function parseHead(text) {
  const lines = text.split('\r\n');
  const statusLine = lines[0];
  const m = statusLine.match(/^HTTP\/1\.1 (\d{3})/);
  const headers = {};
  const headerLines = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    headerLines.push(line);
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { statusLine, status: m ? Number(m[1]) : null, headers, headerLines };
}

// Parses server frames out of bytes: {opcode, fin, rsv, masked, payload,
// code?, reason?}; rest holds the bytes of an incomplete last frame.
function parseFrames(buf) {
  const frames = [];
  let i = 0;
  for (;;) {
    if (i + 2 > buf.length) break;
    const b0 = buf[i], b1 = buf[i + 1];
    let len = b1 & 127;
    let off = i + 2;
    if (len === 126) {
      if (off + 2 > buf.length) break;
      len = buf.readUInt16BE(off); off += 2;
    } else if (len === 127) {
      if (off + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(off)); off += 8;
    }
    const masked = !!(b1 & 0x80);
    let key = null;
    if (masked) {
      if (off + 4 > buf.length) break;
      key = buf.subarray(off, off + 4); off += 4;
    }
    if (off + len > buf.length) break;
    let payload = Buffer.from(buf.subarray(off, off + len));
    if (key) for (let k = 0; k < payload.length; k++) payload[k] ^= key[k & 3];
    const f = { opcode: b0 & 15, fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, masked, payload };
    if (f.opcode === 8 && len >= 2) { f.code = payload.readUInt16BE(0); f.reason = payload.subarray(2).toString(); }
    frames.push(f);
    i = off + len;
  }
  return { frames, rest: buf.subarray(i) };
}

// Sends bytes on a new socket and collects the reply until the server closes
// the socket (or ms passes; or, with untilHead, once the response head is
// in): {head, status, statusLine, headers, body, data, closed, closedAfter
// (ms from connect to close, or null)}.
function httpExchange(port, bytes, { ms = 3000, untilHead = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    let t0 = Date.now();
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const closedAfter = closed ? Date.now() - t0 : null;
      sock.destroy();
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      const head = end < 0 ? data.toString() : data.subarray(0, end).toString();
      const body = end < 0 ? Buffer.alloc(0) : data.subarray(end + 4);
      resolve({ ...parseHead(head), head, body: body.toString(), bodyBytes: body, data, closed, closedAfter });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('connect', () => {
      t0 = Date.now();
      if (bytes) sock.write(bytes);
    });
    sock.on('data', (d) => {
      chunks.push(d);
      if (untilHead && Buffer.concat(chunks).includes('\r\n\r\n')) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
  });
}

// A plain GET (or other method) request with the given headers.
function httpRequest(method, path, headers = {}) {
  let req = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
  return req + '\r\n';
}

// A JSON envelope as the client sends it.
function envelope(event, data) {
  return JSON.stringify({ event, data });
}

// A WebSocket client on a bare socket. Every byte after the HTTP head is
// parsed into frames, each stamped with its arrival time (ms since the 101).
class RawWs {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.head = null;         // the parsed 101 (or refusal) head
    this.frames = [];         // every frame received, in order
    this.unread = [];         // frames not yet taken by nextFrame()
    this.waiters = [];
    this.openedAt = null;
    this.closedAt = null;     // ms since the 101 when the socket closed
    this.onFrame = null;      // optional callback(frame)
    this.headWaiter = null;
    this.closedPromise = new Promise((resolve) => {
      sock.on('close', () => {
        this.closedAt = this.openedAt === null ? 0 : Date.now() - this.openedAt;
        resolve(this.closedAt);
        for (const w of this.waiters.splice(0)) w.reject(new Error('the socket closed'));
        if (this.headWaiter) this.headWaiter.reject(new Error('the socket closed before the HTTP head'));
      });
    });
    sock.on('error', () => {});
    sock.on('data', (d) => this._data(d));
  }

  _data(d) {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.head) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = parseHead(this.buf.subarray(0, end).toString());
      this.buf = this.buf.subarray(end + 4);
      this.openedAt = Date.now();
      if (this.headWaiter) this.headWaiter.resolve(this.head);
    }
    const { frames, rest } = parseFrames(this.buf);
    this.buf = Buffer.from(rest);
    for (const f of frames) {
      f.at = Date.now() - this.openedAt;
      this.frames.push(f);
      if (this.onFrame) this.onFrame(f);
      const w = this.waiters.findIndex((x) => x.match(f));
      if (w >= 0) this.waiters.splice(w, 1)[0].resolve(f);
      else this.unread.push(f);
    }
  }

  waitHead(ms = 3000) {
    if (this.head) return Promise.resolve(this.head);
    return withTimeout(new Promise((resolve, reject) => { this.headWaiter = { resolve, reject }; }), ms, 'the HTTP response head');
  }

  // The next frame for which match(frame) holds, within ms.
  nextFrame(match = () => true, ms = 2000) {
    if (typeof match === 'number') {
      const opcode = match;
      match = (f) => f.opcode === opcode;
    }
    const i = this.unread.findIndex(match);
    if (i >= 0) return Promise.resolve(this.unread.splice(i, 1)[0]);
    let waiter;
    const p = new Promise((resolve, reject) => { waiter = { match, resolve, reject }; this.waiters.push(waiter); });
    return withTimeout(p, ms, 'a frame').catch((e) => {
      const k = this.waiters.indexOf(waiter);
      if (k >= 0) this.waiters.splice(k, 1);
      throw e;
    });
  }

  // The next text frame's JSON.
  async nextJson(ms = 2000) {
    const f = await this.nextFrame(1, ms);
    return JSON.parse(f.payload.toString());
  }

  write(bytes) {
    this.sock.write(bytes);
  }

  // A masked client frame (see harness frame()).
  send(opcode, payload, opts) {
    this.sock.write(frame(opcode, payload, opts));
  }

  sendText(text) {
    this.send(1, Buffer.from(text));
  }

  get isClosed() {
    return this.closedAt !== null;
  }

  // Resolves with ms since the 101 at which the socket closed.
  waitClose(ms = 3000) {
    return withTimeout(this.closedPromise, ms, 'the server to close the socket');
  }

  destroy() {
    this.sock.destroy();
  }
}

// Opens a socket, sends an upgrade request (harness upgradeRequest options:
// path, key, version, extra) and resolves once the response head arrived.
async function rawWs(port, { ms = 3000, ...req } = {}) {
  const sock = await withTimeout(new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  }), ms, 'a TCP connection');
  sock.setNoDelay(true);
  const c = new RawWs(sock);
  sock.write(upgradeRequest(req));
  await c.waitHead(ms);
  return c;
}

// Destroys every raw socket / ws client handed to it when the test ends.
function tracker(t) {
  const items = [];
  t.after(() => {
    for (const c of items) {
      if (c instanceof RawWs) c.destroy();
      else if (c && c.ws) c.ws.terminate();
    }
  });
  return (c) => { items.push(c); return c; };
}

// The server still serves a fresh, normal client: a ws client connects and
// gets its echo back; then it closes normally.
async function servesFresh(port, what = '') {
  const c = await connect(port);
  try {
    const data = { fresh: true, nonce: crypto.randomBytes(6).toString('hex') };
    c.emit('echo', data);
    const reply = await c.next('echo');
    assert.deepStrictEqual(reply, { event: 'echo', data }, `echo after ${what}`);
  } finally {
    await c.close().catch(() => c.ws.terminate());
  }
}

module.exports = {
  GUID, acceptFor, newKey, parseHead, parseFrames, httpExchange, httpRequest, envelope,
  RawWs, rawWs, tracker, servesFresh, sleep,
};
