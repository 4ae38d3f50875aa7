'use strict';
// A loop turn's reads, then its writes, each in one io_uring submission
// (src/iobatch.c, src/reads.c), or one system call per connection where
// io_uring is off: both paths must take and deliver every byte, in order,
// for each client, read on when a message is larger than one read, read
// directly when more sockets are ready than the batch holds, fall back to
// a waiting write when a socket is full, and let go of clients that leave.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { startServer, connect, fixture, sleep } = require('./harness');
const { tcpConnect } = require('./tcpwire');

const PATTERN = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY';
const BLOB = 12 * 1024 * 1024; // more than the loopback socket buffers hold

function blobText(n) {
  return PATTERN.repeat(Math.floor(n / PATTERN.length)) + PATTERN.slice(0, n % PATTERN.length);
}

function ioUringAllowed() {
  try {
    return fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim() === '0';
  } catch {
    return false; // a kernel without the switch may still have io_uring: then only the log says
  }
}

const MODES = [
  { name: 'batched', env: {}, log: /reads and writes: one io_uring submission each per loop turn|reads and writes: one system call per connection \(io_uring: / },
  { name: 'per connection', env: { STELAR_IO_URING: '0' },
    log: /reads and writes: one system call per connection \(io_uring: turned off by STELAR_IO_URING=0\)/ },
];

async function setup(t, mode) {
  const server = await startServer(fixture('iobatch_app.lua'), { env: mode.env, args: ['--log-level', 'debug'] });
  const closers = [];
  t.after(async () => {
    for (const close of closers) close();
    await server.stop();
  });
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  return {
    server,
    async ws() {
      const c = await connect(server.port);
      closers.push(() => c.ws.terminate());
      return c;
    },
    async tcp() {
      const c = await tcpConnect(tcpPort);
      closers.push(() => c.sock.destroy());
      return c;
    },
  };
}

// Resident KiB of the server binary's zero-initialised data (its .bss, an
// anonymous mapping right after the binary's own), where the batch's read
// buffers live.
function bssRssKib(pid) {
  const lines = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  let afterBinary = false;
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i].match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (!head) continue;
    if (head[1].endsWith('/stelar-lua')) {
      afterBinary = true;
    } else if (afterBinary) {
      if (head[1] !== '') break;
      for (let k = i + 1; k < lines.length && !/^[0-9a-f]+-/.test(lines[k]); k++) {
        const m = lines[k].match(/^Rss:\s+(\d+) kB/);
        if (m) return Number(m[1]);
      }
    }
  }
  throw new Error('no anonymous mapping after the stelar-lua binary in smaps');
}

// Each client sends n echoes at once; each must get its own n back, in order.
async function pipelined(clients, n, emit, next) {
  for (const [i, c] of clients.entries()) for (let k = 0; k < n; k++) emit(c, { who: i, k });
  await Promise.all(clients.map(async (c, i) => {
    for (let k = 0; k < n; k++) assert.deepStrictEqual(await next(c), { who: i, k });
  }));
}

test('after a quiet half second the batch\'s read buffers give their pages back', { skip: !ioUringAllowed() && 'io_uring is not allowed here' }, async (t) => {
  const h = await setup(t, MODES[0]);
  const pid = h.server.proc.pid;
  const clients = await Promise.all(Array.from({ length: 100 }, () => h.ws()));
  const text = blobText(12 * 1024); // four pages of a read buffer each
  // All 100 messages arrive while the server is held, so one turn reads them all.
  async function burst() {
    clients[0].emit('stall', 200);
    await sleep(50);
    for (const c of clients) c.emit('echo', text);
    for (const c of clients) assert.ok((await c.next('echo', 5000)).data === text);
    return bssRssKib(pid);
  }
  const busy = await burst();
  await sleep(1200);
  const quiet = bssRssKib(pid);
  assert.ok(busy - quiet >= 256, `resident .bss ${busy} KiB after the burst, ${quiet} KiB after a quiet second`);
  const again = await burst();
  assert.ok(again - quiet >= 256, `touched again by the next burst: ${again} KiB`);
  await sleep(1200);
  assert.ok(bssRssKib(pid) <= quiet + 8, 'and given back again');
});

for (const mode of MODES) {
  test(`reads and writes ${mode.name}`, async (t) => {
    await t.test('the log says how reads and writes happen', async () => {
      const h = await setup(t, mode);
      const m = await h.server.waitForLog(mode.log);
      if (mode.name === 'batched' && ioUringAllowed()) {
        assert.match(m[0], /one io_uring submission each per loop turn/, 'io_uring is allowed here, so I/O is batched');
      }
    });

    await t.test('a 1 MiB message, many reads long, arrives whole and is echoed whole', async () => {
      const h = await setup(t, mode);
      const c = await h.ws();
      const big = blobText(1 << 20);
      c.emit('echo', big);
      const reply = await c.next('echo', 10000);
      assert.ok(reply.data === big, `the echo came back byte for byte (${reply.data.length} chars)`);
      const tcp = await h.tcp();
      tcp.emit('echo', big);
      assert.ok((await tcp.next('echo', 10000)).json() === big, 'the same over TCP');
    });

    await t.test('300 clients sending at once (more ready sockets than one batch reads) are all answered', async () => {
      const h = await setup(t, mode);
      const clients = await Promise.all(Array.from({ length: 300 }, () => h.ws()));
      await pipelined(clients, 3, (c, d) => c.emit('echo', d), async (c) => (await c.next('echo', 5000)).data);
    });

    await t.test('1100 clients ready in the same turn (more than one epoll batch takes) are all answered', async () => {
      const h = await setup(t, mode);
      const clients = [];
      for (let i = 0; i < 1100; i += 100) clients.push(...await Promise.all(Array.from({ length: 100 }, () => h.ws())));
      clients[0].emit('stall', 300); // meanwhile every other client's echo arrives
      await sleep(50);
      await pipelined(clients.slice(1), 1, (c, d) => c.emit('echo', d), async (c) => (await c.next('echo', 10000)).data);
    });

    await t.test('clients that hang up or reset are let go; the rest are served', async () => {
      const h = await setup(t, mode);
      const watcher = await h.ws();
      const leavers = await Promise.all(Array.from({ length: 20 }, () => h.ws()));
      leavers.forEach((c, i) => (i % 2 ? c.ws._socket.end() : c.ws._socket.resetAndDestroy()));
      let active;
      for (let i = 0; i < 100; i++) {
        watcher.emit('stats', null);
        active = (await watcher.next('stats')).data.activeConnections;
        if (active === 1) break;
        await sleep(20);
      }
      assert.strictEqual(active, 1, 'only the watcher is left');
      await pipelined([watcher], 10, (c, d) => c.emit('echo', d), async (c) => (await c.next('echo')).data);
    });

    await t.test('20 WebSocket clients with 100 echoes each in flight (more buffers than one send carries) get theirs, in order', async () => {
      const h = await setup(t, mode);
      const clients = await Promise.all(Array.from({ length: 20 }, () => h.ws()));
      await pipelined(clients, 100, (c, d) => c.emit('echo', d), async (c) => (await c.next('echo')).data);
    });

    await t.test('WebSocket and TCP clients written in the same turns each get their own', async () => {
      const h = await setup(t, mode);
      const clients = [];
      for (let i = 0; i < 10; i++) clients.push(await h.ws(), await h.tcp());
      await pipelined(clients, 10, (c, d) => c.emit('echo', d),
        async (c) => (c.ws ? (await c.next('echo')).data : (await c.next('echo')).json()));
    });

    await t.test('a room of 30 gets all 40 shouts, in order', async () => {
      const h = await setup(t, mode);
      const receivers = await Promise.all(Array.from({ length: 30 }, () => h.ws()));
      for (const r of receivers) {
        r.emit('join', null);
        await r.next('joined');
      }
      const sender = await h.ws();
      for (let k = 0; k < 40; k++) sender.emit('shout', k);
      await Promise.all(receivers.map(async (r) => {
        for (let k = 0; k < 40; k++) assert.strictEqual((await r.next('shout')).data, k);
      }));
    });

    await t.test('a reply larger than the socket takes arrives whole to a client that stopped reading a while; others are served meanwhile', async () => {
      const h = await setup(t, mode);
      const slow = await h.ws();
      const other = await h.ws();
      slow.ws._socket.pause();
      slow.emit('blob', BLOB);
      await sleep(200); // the server has sent what fits and waits for the rest
      other.emit('echo', 'meanwhile');
      assert.strictEqual((await other.next('echo')).data, 'meanwhile');
      slow.ws._socket.resume();
      const reply = await slow.next('blob', 10000);
      assert.strictEqual(reply.data.length, BLOB);
      assert.ok(reply.data === blobText(BLOB), 'the blob arrived byte for byte');
      slow.emit('echo', 'after');
      assert.strictEqual((await slow.next('echo')).data, 'after');
    });

    await t.test('a client reset while its large reply is being written does not stop the others', async () => {
      const h = await setup(t, mode);
      const gone = await h.ws();
      const stays = await h.ws();
      gone.ws._socket.pause();
      gone.emit('blob', BLOB);
      await sleep(100);
      gone.ws._socket.resetAndDestroy();
      await pipelined([stays], 20, (c, d) => c.emit('echo', d), async (c) => (await c.next('echo')).data);
      const again = await h.ws();
      again.emit('echo', 'new');
      assert.strictEqual((await again.next('echo')).data, 'new');
      assert.strictEqual(h.server.proc.exitCode, null, 'the server is still running');
    });
  });
}
