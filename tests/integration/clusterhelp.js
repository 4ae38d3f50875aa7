// Redis and cluster nodes for cluster.test.js: a private redis-server per
// test on a free 127.0.0.1 port (no persistence, so a restart starts empty,
// as after a crash), and stelar-lua nodes of fixtures/cluster_app.lua
// pointed at it. The tests stop every process started here (t.after);
// every wait is bounded.
'use strict';
const { spawn } = require('node:child_process');
const net = require('node:net');
const { startServer, fixture, sleep } = require('./harness');

// A port nobody listens on right now: bind port 0, read it, close.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// True when whatever listens on port answers PING with +PONG within ms.
function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    sock.on('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

// Starts redis-server; resolves with { port, url, logs(), start(), stop(),
// restart() }. stop() is SIGKILL (Redis vanishing, as in a crash);
// start() brings it back on the same port, empty.
async function startRedis({ port = 0 } = {}) {
  const fixed = port !== 0;
  let proc = null;
  let exited = null;
  let out = '';
  const redis = {
    port,
    url: '',
    logs: () => out,
    async start(ms = 5000) {
      if (proc) throw new Error('redis-server is already running');
      proc = spawn('redis-server', [
        '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1',
        '--port', String(redis.port), '--daemonize', 'no',
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      const p = proc;
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { out += d; });
      exited = new Promise((resolve) => p.on('exit', () => { if (proc === p) proc = null; resolve(); }));
      const start = Date.now();
      while (!(await ping(redis.port))) {
        if (proc !== p) throw new Error(`redis-server exited before answering PING on ${redis.port}:\n${out}`);
        if (Date.now() - start > ms) {
          await redis.stop();
          throw new Error(`redis-server did not answer PING on ${redis.port} within ${ms} ms:\n${out}`);
        }
        await sleep(20);
      }
    },
    async stop() {
      if (!proc) return;
      proc.kill('SIGKILL');
      await exited;
    },
    // SIGSTOP / SIGCONT: a Redis that stalls without closing anything.
    pause() { if (proc) proc.kill('SIGSTOP'); },
    resume() { if (proc) proc.kill('SIGCONT'); },
    async restart() {
      await redis.stop();
      await redis.start();
    },
  };
  // Another process may take a free port between our look and Redis's
  // bind: then try another (unless the caller asked for this one).
  for (let attempt = 1; ; attempt++) {
    if (!fixed) redis.port = await freePort();
    redis.url = `redis://127.0.0.1:${redis.port}`;
    try {
      await redis.start();
      return redis;
    } catch (e) {
      if (fixed || attempt === 3) throw e;
    }
  }
}

// Starts a node of fixtures/cluster_app.lua with nodeId `nodeId` on Redis
// at redisUrl ('' for a server without the cluster option). Resolves with
// harness's server plus tcpPort and nodeId, once it listens on both ports
// and (unless connected is false) has logged its connection to Redis.
async function startNode(redisUrl, nodeId, { nodeTimeout, connected = true } = {}) {
  // REDIS_URL is always set, so one from the caller's environment cannot leak in.
  const env = { REDIS_URL: redisUrl || '', NODE_ID: nodeId || '', NODE_TIMEOUT: nodeTimeout ? String(nodeTimeout) : '' };
  const server = await startServer(fixture('cluster_app.lua'), { env });
  try {
    const m = await server.waitForLog(/listening on port (\d+) \(tcp\)/);
    server.tcpPort = Number(m[1]);
    server.nodeId = nodeId;
    if (redisUrl && connected) await server.waitForLog(new RegExp(`cluster: node ${nodeId} connected to redis`), 3000);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

// Sends one command to Redis on port (RESP, bulk strings; an argument may
// be a Buffer); resolves with
// the first line of the reply.
function redisCommand(port, args, ms = 2000) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${args[0]}: no reply in ${ms} ms`)); }, ms);
    let got = '';
    sock.on('connect', () => sock.write(Buffer.concat(parts)));
    sock.on('data', (d) => {
      got += d;
      if (!got.includes('\r\n')) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(got.slice(0, got.indexOf('\r\n')));
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

module.exports = { freePort, ping, redisCommand, startRedis, startNode };
