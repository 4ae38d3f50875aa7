// A small client for stelar's binary TCP protocol (PROTOCOL.md §4):
// [u32 total length][u8 type][u16 event length][event][payload], the total
// counting the whole frame. Frames are deframed from a byte stream that may
// split a frame anywhere or carry several frames in one chunk.
'use strict';
const net = require('node:net');
const { withTimeout, sleep } = require('./harness');

const T = {
  JSON: 0x01,
  BINARY: 0x02,
  PING: 0x03,
  PONG: 0x04,
  ACK_REQ: 0x05,
  ACK_RES: 0x06,
  CONNECT: 0x07,
  DISCONNECT: 0x08,
  JOIN: 0x09,
  LEAVE: 0x0a,
  ERROR: 0x0b,
};
const TYPE_NAMES = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));

function toBuffer(payload) {
  if (payload === undefined || payload === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(payload)) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

// One well-formed frame.
function encodeFrame(type, event = '', payload) {
  const ev = Buffer.from(event || '', 'utf8');
  const pl = toBuffer(payload);
  const head = Buffer.alloc(7);
  head.writeUInt32BE(7 + ev.length + pl.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt16BE(ev.length, 5);
  return Buffer.concat([head, ev, pl]);
}

// A header whose fields may lie (for the bad-input tests).
function rawHeader(total, type, eventLen) {
  const head = Buffer.alloc(7);
  head.writeUInt32BE(total >>> 0, 0);
  head.writeUInt8(type, 4);
  head.writeUInt16BE(eventLen, 5);
  return head;
}

// Streaming deframer: push(chunk) returns the frames completed by it.
class Deframer {
  constructor() {
    this.pending = Buffer.alloc(0);
  }

  push(chunk) {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames = [];
    for (;;) {
      if (this.pending.length < 7) break;
      const total = this.pending.readUInt32BE(0);
      if (total < 7) throw new Error(`server sent a frame of total length ${total}`);
      if (this.pending.length < total) break;
      const type = this.pending[4];
      const evLen = this.pending.readUInt16BE(5);
      if (7 + evLen > total) throw new Error(`server sent event length ${evLen} past frame of ${total}`);
      frames.push(new Frame(type,
        this.pending.subarray(7, 7 + evLen).toString('utf8'),
        Buffer.from(this.pending.subarray(7 + evLen, total))));
      this.pending = this.pending.subarray(total);
    }
    if (this.pending.length === 0) this.pending = Buffer.alloc(0);
    return frames;
  }
}

class Frame {
  constructor(type, event, payload) {
    this.type = type;
    this.event = event;
    this.payload = payload;
  }

  get typeName() {
    return TYPE_NAMES[this.type] || `0x${this.type.toString(16)}`;
  }

  text() {
    return this.payload.toString('utf8');
  }

  json() {
    return JSON.parse(this.text());
  }

  toString() {
    const body = this.type === T.BINARY ? `<${this.payload.length} bytes>` : this.text().slice(0, 200);
    return `${this.typeName}(${this.event}) ${body}`;
  }
}

// Builds a matcher from a type number, a {type, event} object or a function.
function matcher(m) {
  if (m === undefined) return () => true;
  if (typeof m === 'function') return m;
  if (typeof m === 'number') return (f) => f.type === m;
  if (typeof m === 'string') return (f) => f.type === T.JSON && f.event === m;
  return (f) => (m.type === undefined || f.type === m.type) && (m.event === undefined || f.event === m.event);
}

class TcpClient {
  constructor(sock, { autoPong = true } = {}) {
    this.sock = sock;
    this.autoPong = autoPong;
    this.deframer = new Deframer();
    this.all = []; // every frame received, in order
    this.queue = [];
    this.waiters = [];
    this.pingsReceived = 0;
    this.ended = false;
    this.closed = false;
    this.error = null;
    this.corr = 0;
    this.closedPromise = new Promise((resolve) => {
      sock.on('close', () => {
        this.closed = true;
        resolve();
      });
    });
    sock.on('end', () => { this.ended = true; });
    sock.on('error', (e) => { this.error = e; });
    sock.on('data', (chunk) => {
      let frames;
      try {
        frames = this.deframer.push(chunk);
      } catch (e) {
        this.error = e;
        sock.destroy();
        return;
      }
      for (const f of frames) this.deliver(f);
    });
  }

  deliver(f) {
    this.all.push(f);
    if (f.type === T.PING) {
      this.pingsReceived++;
      if (this.autoPong && !this.sock.destroyed) this.sock.write(encodeFrame(T.PONG));
    }
    const w = this.waiters.findIndex((x) => x.match(f));
    if (w >= 0) this.waiters.splice(w, 1)[0].resolve(f);
    else this.queue.push(f);
  }

  // The next frame matching m (type number, JSON event name, {type,event} or
  // a function), within ms.
  next(m, ms = 2000) {
    const match = matcher(m);
    const i = this.queue.findIndex(match);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    let waiter;
    const p = new Promise((resolve) => { waiter = { match, resolve }; this.waiters.push(waiter); });
    return withTimeout(p, ms, `a frame matching ${m} (received so far: ${this.all.map(String).join(' | ')})`)
      .catch((e) => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        throw e;
      });
  }

  // The next frame whatever it is (no skipping), within ms.
  nextAny(ms = 2000) {
    return this.next(undefined, ms);
  }

  // True when nothing matching m arrives within ms.
  async nothing(m, ms = 300) {
    try {
      await this.next(m, ms);
      return false;
    } catch {
      return true;
    }
  }

  write(bytes) {
    if (!this.sock.destroyed) this.sock.write(bytes);
  }

  send(type, event, payload) {
    this.write(encodeFrame(type, event, payload));
  }

  emit(event, data) {
    this.send(T.JSON, event, JSON.stringify(data === undefined ? null : data));
  }

  emitBinary(event, bytes) {
    this.send(T.BINARY, event, bytes);
  }

  join(room) {
    this.send(T.JOIN, 'join-room', room);
  }

  leave(room) {
    this.send(T.LEAVE, 'leave-room', room);
  }

  // An ACK request with a correlation id; resolves with the parsed reply
  // payload of the ACK_RES carrying that id.
  async ack(name, data, ms = 2000) {
    const id = `c-${++this.corr}`;
    this.send(T.ACK_REQ, name, JSON.stringify({ data, _correlationId: id }));
    const f = await this.next((x) => x.type === T.ACK_RES && x.event === name && corrOf(x) === id, ms);
    return f.json();
  }

  // Resolves once the server closed the connection (EOF or close), within ms.
  async waitClose(ms = 3000) {
    const start = Date.now();
    while (!this.ended && !this.closed) {
      if (Date.now() - start > ms) throw new Error(`the server did not close within ${ms} ms`);
      await sleep(10);
    }
  }

  destroy() {
    this.sock.destroy();
    return withTimeout(this.closedPromise, 2000, 'the socket to close');
  }
}

function corrOf(f) {
  try {
    const j = f.json();
    return j && typeof j === 'object' ? j._correlationId : undefined;
  } catch {
    return undefined;
  }
}

// Connects to 127.0.0.1:port; resolves once the socket is connected (the
// CONNECT frame may not have arrived yet).
function tcpConnect(port, { ms = 3000, autoPong = true, noDelay = true } = {}) {
  const sock = net.connect({ port, host: '127.0.0.1' });
  if (noDelay) sock.setNoDelay(true);
  const client = new TcpClient(sock, { autoPong });
  return withTimeout(new Promise((resolve, reject) => {
    sock.once('connect', () => resolve(client));
    sock.once('error', reject);
  }), ms, 'the TCP connection to open');
}

// Connects and waits for CONNECT (the client's id) and the welcome event of
// the tcp_app fixture; resolves with the client, its id set.
async function tcpReady(port, opts) {
  const c = await tcpConnect(port, opts);
  const hello = await c.next(T.CONNECT);
  c.id = hello.text();
  await c.next('welcome');
  return c;
}

module.exports = { T, encodeFrame, rawHeader, Deframer, Frame, TcpClient, tcpConnect, tcpReady };
