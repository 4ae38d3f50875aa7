// Helpers for the Lua API tests (api_*.test.js): the api_app.lua server,
// clients that are closed with it, the binary layout, and the fixture's
// marked lines for file:line checks.
'use strict';
const fs = require('node:fs');
const { startServer, connect, fixture, sleep } = require('./harness');

const APP = fixture('api_app.lua');

// The line number of the fixture line marked "-- LINE:<name>".
function lineOf(name, file = APP) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`-- LINE:${name}`));
  if (i < 0) throw new Error(`no line marked LINE:${name} in ${file}`);
  return i + 1;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// Starts api_app.lua (or another fixture); every client made through the
// returned helper is closed, and the server stopped, when t ends.
async function apiServer(t, script = APP, opts = {}) {
  const server = await startServer(script, opts);
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.ws.terminate();
    await server.stop();
  });
  return {
    server,
    port: server.port,
    // A connected client and the welcome its onConnection sent.
    async client({ path = '/', headers = {} } = {}) {
      const c = await connect(server.port, { path, headers });
      clients.push(c);
      const welcome = await c.next('welcome');
      c.id = welcome.data.id;
      c.welcome = welcome.data;
      return c;
    },
    // A connection whose fate is decided by middleware: no welcome awaited.
    async raw({ path = '/', headers = {} } = {}) {
      const c = await connect(server.port, { path, headers });
      clients.push(c);
      return c;
    },
  };
}

// The binary layout: [u32 BE header length][{"event":name}][bytes].
function binaryMessage(event, bytes, header = { event }) {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length);
  return Buffer.concat([len, h, Buffer.from(bytes)]);
}

function parseBinary(buf) {
  const hlen = buf.readUInt32BE(0);
  const headerText = buf.subarray(4, 4 + hlen).toString();
  return { hlen, headerText, header: JSON.parse(headerText), payload: buf.subarray(4 + hlen) };
}

// Every message the client receives from now on, in arrival order, with
// the time it arrived.
function record(c) {
  const seen = [];
  c.ws.on('message', (data, isBinary) => {
    const msg = isBinary ? { binary: Buffer.from(data) } : JSON.parse(data.toString());
    seen.push({ at: Date.now(), msg });
  });
  return seen;
}

// Waits until the client's queue (messages no next() took, in arrival
// order since the connection opened) holds n messages; returns it.
async function queued(c, n, ms = 2000) {
  const start = Date.now();
  while (c.queue.length < n) {
    if (Date.now() - start > ms) throw new Error(`only ${c.queue.length} messages queued within ${ms} ms, wanted ${n}`);
    await sleep(10);
  }
  return c.queue;
}

// Calls fn until pred(result) holds (resolves with that result) or ms pass.
async function poll(fn, pred, ms = 2000, what = 'a condition') {
  const start = Date.now();
  let last;
  for (;;) {
    last = await fn();
    if (pred(last)) return last;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(25);
  }
}

// The "handler error in ..." log line for kind/name, as a RegExp source
// ending at the message.
function handlerErrorRe(kind, name, clientId, file, line, msg) {
  const who = name ? `${kind} ${escapeRe(name)}` : kind;
  return new RegExp(`handler error in ${who} client=${escapeRe(clientId)}: [^\\n]*${escapeRe(file)}:${line}: ${escapeRe(msg)}\\n[\\s\\S]*?stack traceback:`);
}

module.exports = { APP, lineOf, escapeRe, apiServer, binaryMessage, parseBinary, record, queued, poll, handlerErrorRe, sleep };
