// Helpers for the production-limits tests (limits_*.test.js): a server
// running fixtures/lim_app.lua (or another lim_ fixture) with options and
// hooks chosen per test, clients that are cleaned up with it, and readers for
// what the fixture's hooks log.
'use strict';
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const { startServer, connect, fixture, sleep, withTimeout, upgradeRequest, frame, splitResponse } = require('./harness');
const { T, TcpClient, tcpConnect } = require('./tcpwire');

// Every "HOOK <name> <json>" line the fixture logged for name, parsed.
function hookCalls(server, name) {
  const out = [];
  const re = new RegExp(`HOOK ${name} (.*)$`, 'gm');
  for (const m of server.logs().matchAll(re)) out.push(JSON.parse(m[1]));
  return out;
}

// Waits until name has been called at least n times; resolves with the calls.
async function waitHook(server, name, n = 1, ms = 2000) {
  const start = Date.now();
  for (;;) {
    const calls = hookCalls(server, name);
    if (calls.length >= n) return calls;
    if (Date.now() - start > ms) {
      throw new Error(`hook ${name} called ${calls.length} times, wanted ${n}, within ${ms} ms; log:\n${server.logs()}`);
    }
    await sleep(20);
  }
}

// GET path on the server's HTTP port: {status, headers, body, json}.
function httpGet(port, path = '/health', ms = 2000) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        let json;
        try { json = JSON.parse(body); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
  }), ms, `GET ${path}`);
}

// The process's resident set, in bytes.
function rssOf(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) * 1024;
}

// A WebSocket client on a bare socket, for tests that must not read (or not
// answer a close): resolves once the 101 arrived. data holds every byte
// received; frames() parses what came after the HTTP head.
function rawWs(port, ms = 3000) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const raw = {
      sock,
      chunks: [],
      ended: false,
      closed: false,
      data() { return Buffer.concat(this.chunks); },
      frames() { return splitResponse(this.data()).frames; },
      send(text) { sock.write(frame(1, text)); },
      emit(event, data) { this.send(JSON.stringify({ event, data })); },
    };
    let open = false;
    sock.on('data', (d) => {
      raw.chunks.push(d);
      if (!open && raw.data().includes('\r\n\r\n')) {
        open = true;
        if (!raw.data().toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(`no 101: ${raw.data()}`));
        else resolve(raw);
      }
    });
    sock.on('end', () => { raw.ended = true; });
    sock.on('close', () => { raw.closed = true; });
    sock.on('error', (e) => { if (!open) reject(e); });
    sock.on('connect', () => sock.write(upgradeRequest()));
  }), ms, 'a raw WebSocket upgrade');
}

// Starts a lim_ fixture. opts becomes LIM_OPTS; hooks and veto are lists of
// hook names (see fixtures/lim_app.lua). Every client made through the
// returned object is destroyed, and the server stopped, when the test ends.
async function limServer(t, { script = 'lim_app.lua', opts = {}, hooks = [], veto = [], env = {} } = {}) {
  const server = await startServer(fixture(script), {
    env: {
      LIM_OPTS: JSON.stringify(opts),
      LIM_HOOKS: hooks.join(','),
      LIM_VETO: veto.join(','),
      ...env,
    },
  });
  const clients = [];
  t.after(async () => {
    for (const c of clients) {
      if (c instanceof TcpClient || c instanceof net.Socket) (c.sock || c).destroy();
      else if (c.ws) c.ws.terminate();
    }
    await server.stop();
  });
  let tcpPort = 0;
  if (opts.tcpPort !== undefined || script === 'lim_custom.lua') {
    tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  }
  const h = {
    server,
    port: server.port,
    tcpPort,
    track(c) { clients.push(c); return c; },
    // A WebSocket client past its welcome, with c.id set.
    async ws(headers = {}) {
      const c = h.track(await connect(server.port, { headers }));
      const w = await c.next('welcome');
      c.id = w.data.id;
      return c;
    },
    // A WebSocket client that the server is expected to refuse after the
    // upgrade: resolves with its close {code, reason}; fails if it was
    // welcomed instead.
    async wsRefused(headers = {}) {
      const c = h.track(await connect(server.port, { headers }));
      const closed = await c.waitClose(3000);
      assert.ok(!c.queue.some((m) => m.event === 'welcome'), 'a refused client was welcomed');
      return closed;
    },
    // A TCP client past CONNECT and welcome, with c.id set.
    async tcp(opts2) {
      const c = h.track(await tcpConnect(tcpPort, opts2));
      const hello = await c.next(T.CONNECT);
      c.id = hello.text();
      await c.next('welcome');
      return c;
    },
    async rawWs() {
      const r = await rawWs(server.port);
      clients.push(r.sock);
      return r;
    },
    // A connected TCP socket; nothing awaited.
    async rawTcp(opts2) {
      return h.track(await tcpConnect(tcpPort, opts2));
    },
    // A TCP client that the server is expected to refuse: its first frame
    // is an ERROR, then the socket closes, and it never got CONNECT.
    // Resolves with the ERROR's text.
    async tcpRefused() {
      const raw = await h.rawTcp();
      const err = await raw.next(() => true, 2000);
      assert.strictEqual(err.type, T.ERROR, `first frame ${err}`);
      assert.strictEqual(err.event, 'error');
      await raw.waitClose(3000);
      assert.ok(!raw.all.some((f) => f.type === T.CONNECT), 'a refused TCP client got CONNECT');
      return err.text();
    },
    hooks(name) { return hookCalls(server, name); },
    waitHook(name, n, ms) { return waitHook(server, name, n, ms); },
    health() { return httpGet(server.port, '/health'); },
    rss() { return rssOf(server.proc.pid); },
    alive() {
      assert.strictEqual(server.proc.exitCode, null, `the server exited; log:\n${server.logs()}`);
      assert.strictEqual(server.proc.signalCode, null, `the server died; log:\n${server.logs()}`);
    },
    // Polls the server's open file descriptors until they are back to want.
    async fdsBackTo(want, ms = 3000) {
      const start = Date.now();
      for (;;) {
        const n = server.openFds();
        if (n <= want) return n;
        if (Date.now() - start > ms) throw new Error(`${n} open fds, ${want} before: a refused or cut client leaked`);
        await sleep(25);
      }
    },
    // Polls /health until field equals want (the server saw clients go).
    async until(field, want, ms = 3000) {
      const start = Date.now();
      let last;
      for (;;) {
        last = (await h.health()).json;
        if (last && last[field] === want) return last;
        if (Date.now() - start > ms) throw new Error(`/health ${field} stayed ${last && last[field]}, wanted ${want}`);
        await sleep(25);
      }
    },
  };
  return h;
}

// An echo round trip on a WebSocket (or, with tcp, a TCP) client.
async function wsEcho(c, data = { n: Math.random() }) {
  c.emit('echo', data);
  const m = await c.next('echo');
  assert.deepStrictEqual(m.data, data);
}

async function tcpEcho(c, data = { n: Math.random() }) {
  c.emit('echo', data);
  const f = await c.next('echo');
  assert.strictEqual(f.type, T.JSON);
  assert.deepStrictEqual(f.json(), data);
}

module.exports = { rawWs, hookCalls, waitHook, httpGet, rssOf, limServer, wsEcho, tcpEcho, T };
