'use strict';
// The binary TCP transport (PROTOCOL.md §4), driven with raw sockets against
// the real binary running fixtures/tcp_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture, sleep } = require('./harness');
const { T, encodeFrame, rawHeader, Deframer, TcpClient, tcpConnect } = require('./tcpwire');

// Starts tcp_app.lua (env: MAX_FRAME, HB_INTERVAL, HB_TIMEOUT) and returns
// helpers that make clients closed with the server when the test ends.
async function setup(t, env = {}) {
  const server = await startServer(fixture('tcp_app.lua'), { env });
  const clients = [];
  t.after(async () => {
    for (const c of clients) {
      if (c instanceof TcpClient) c.sock.destroy();
      else c.ws.terminate();
    }
    await server.stop();
  });
  const m = await server.waitForLog(/listening on port (\d+) \(tcp\)/);
  const tcpPort = Number(m[1]);
  assert.ok(tcpPort > 0 && tcpPort !== server.port, `tcp port ${tcpPort}, ws port ${server.port}`);
  const h = {
    server,
    tcpPort,
    // A TCP client past CONNECT and welcome, with c.id set.
    async tcp(opts) {
      const c = await tcpConnect(tcpPort, opts);
      clients.push(c);
      const hello = await c.next(T.CONNECT);
      c.id = hello.text();
      await c.next('welcome');
      return c;
    },
    // A connected TCP socket; nothing awaited.
    async raw(opts) {
      const c = await tcpConnect(tcpPort, opts);
      clients.push(c);
      return c;
    },
    // A WebSocket client past its welcome, with c.id set.
    async ws() {
      const c = await connect(server.port);
      clients.push(c);
      c.id = (await c.next('welcome')).data.id;
      return c;
    },
    alive() {
      assert.strictEqual(server.proc.exitCode, null, `the server exited; log:\n${server.logs()}`);
      assert.strictEqual(server.proc.signalCode, null, `the server died; log:\n${server.logs()}`);
    },
  };
  return h;
}

// An echo round trip on a TCP client: the JSON frame's payload is the data.
async function echoes(c, data = { ping: Math.random() }) {
  c.emit('echo', data);
  const f = await c.next('echo');
  assert.strictEqual(f.type, T.JSON);
  assert.deepStrictEqual(f.json(), data);
}

test('tcpwire deframer: frames split anywhere and several per chunk', () => {
  const stream = Buffer.concat([
    encodeFrame(T.JSON, 'a', '{"x":1}'),
    encodeFrame(T.PING),
    encodeFrame(T.BINARY, 'b', Buffer.from([0, 255, 7])),
  ]);
  for (let k = 0; k <= stream.length; k++) {
    const d = new Deframer();
    const got = [...d.push(stream.subarray(0, k)), ...d.push(stream.subarray(k))];
    assert.deepStrictEqual(got.map((f) => [f.type, f.event, f.payload.toString('hex')]),
      [[T.JSON, 'a', Buffer.from('{"x":1}').toString('hex')], [T.PING, '', ''], [T.BINARY, 'b', '00ff07']]);
  }
  const d = new Deframer();
  const one = [];
  for (const b of stream) one.push(...d.push(Buffer.from([b])));
  assert.strictEqual(one.length, 3);
});

test('CONNECT comes first; middleware (ctx.req == nil) runs before onConnection; early frames wait', async (t) => {
  const h = await setup(t);
  const c = await h.raw();
  c.emit('order', null); // sent before the server has said anything
  const first = await c.nextAny();
  assert.strictEqual(first.type, T.CONNECT, `first frame: ${first}`);
  assert.strictEqual(first.event, 'connect');
  const id = first.text();
  assert.match(id, /^.{1,64}$/);
  const welcome = await c.next('welcome');
  assert.deepStrictEqual(welcome.json(), { id, reqNil: true, protocol: 'tcp' });
  const order = await c.next('order');
  assert.deepStrictEqual(order.json(), ['middleware', 'connection', 'order']);
  assert.deepStrictEqual(c.all.map((f) => f.type === T.JSON ? f.event : f.typeName), ['CONNECT', 'welcome', 'order']);

  // the WebSocket side of the same app sees a request (so reqNil above is real)
  const w = await connect(h.server.port);
  t.after(() => w.ws.terminate());
  const ww = await w.next('welcome');
  assert.deepStrictEqual({ reqNil: ww.data.reqNil, protocol: ww.data.protocol }, { reqNil: false, protocol: 'ws' });
});

test('a middleware that rejects closes the TCP client with an ERROR frame, then closes', async (t) => {
  const h = await setup(t);
  const ctl = await h.ws();

  // ctx:reject(reason)
  ctl.emit('reject-next', { how: 'reject', reason: 'go away' });
  await ctl.next('reject-next');
  const c = await h.raw();
  c.emit('echo', 'must not be dispatched');
  const hello = await c.nextAny();
  assert.strictEqual(hello.type, T.CONNECT);
  const err = await c.nextAny();
  assert.strictEqual(err.type, T.ERROR, `expected ERROR, got ${err}`);
  assert.strictEqual(err.event, 'error');
  assert.match(err.text(), /go away/);
  await c.waitClose();
  assert.deepStrictEqual(c.all.map((f) => f.typeName), ['CONNECT', 'ERROR']);

  // not calling next()
  ctl.emit('reject-next', { how: 'silent' });
  await ctl.next('reject-next');
  const c2 = await h.raw();
  c2.emit('echo', 'must not be dispatched');
  await c2.next(T.CONNECT);
  const err2 = await c2.nextAny();
  assert.strictEqual(err2.type, T.ERROR, `expected ERROR, got ${err2}`);
  assert.ok(err2.text().length > 0, 'the ERROR frame carries a message');
  await c2.waitClose();
  assert.deepStrictEqual(c2.all.map((f) => f.typeName), ['CONNECT', 'ERROR']);

  // the next client is accepted again
  const ok = await h.tcp();
  await echoes(ok, 'fine');
});

// The ERROR + close reach the client at once; the server must then also
// forget the client (stats, limits) when it hangs up, not keep it around.
test('a TCP client rejected by middleware is no longer counted once it hung up', async (t) => {
  const h = await setup(t);
  const ctl = await h.ws();
  const stats = async () => {
    ctl.emit('stats', null);
    return (await ctl.next('stats')).data;
  };
  for (const how of ['silent', 'reject']) {
    ctl.emit('reject-next', { how, reason: 'go away' });
    await ctl.next('reject-next');
    const c = await h.raw();
    await c.next(T.ERROR);
    await c.waitClose();
    await c.destroy();
    let s;
    const until = Date.now() + 1000;
    do {
      s = await stats();
      if (s.tcp === 0) break;
      await sleep(25);
    } while (Date.now() < until);
    assert.deepStrictEqual(s, { tcp: 0, ws: 1, active: 1 },
      `1 s after a client rejected by ${how === 'reject' ? 'ctx:reject()' : 'not calling next()'} hung up`);
  }
});

test('JSON event round trip', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const values = [
    { text: 'hello', n: 42, nested: { list: [1, 2, { deep: true }] } },
    [1, 'two', null, false],
    'ünïcödé ✓ 😀',
    -12.5,
    null,
    true,
    {},
  ];
  for (const v of values) {
    c.emit('echo', v);
    const f = await c.next('echo');
    assert.strictEqual(f.type, T.JSON);
    assert.deepStrictEqual(f.json(), v);
  }
});

test('ACK_REQ with and without _correlationId; without a handler it is an event', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();

  c.send(T.ACK_REQ, 'add', JSON.stringify({ data: { a: 2, b: 3 }, _correlationId: 'c-1' }));
  const r1 = await c.next(T.ACK_RES);
  assert.strictEqual(r1.event, 'add');
  assert.deepStrictEqual(r1.json(), { data: 5, _correlationId: 'c-1' });

  c.send(T.ACK_REQ, 'add', JSON.stringify({ a: 20, b: 22 })); // a bare value: data, no id
  const r2 = await c.next(T.ACK_RES);
  assert.strictEqual(r2.event, 'add');
  assert.deepStrictEqual(r2.json(), 42);

  // an ACK name with no onAck handler is dispatched as a normal event
  c.send(T.ACK_REQ, 'echo', JSON.stringify({ data: { via: 'ack' }, _correlationId: 'c-2' }));
  const e = await c.next('echo');
  assert.deepStrictEqual(e.json(), { via: 'ack' });
  assert.ok(await c.nothing(T.ACK_RES, 200), 'no ACK_RES without an ACK handler');
});

test('concurrent ACKs: each reply carries its own correlation id and result', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const reqs = [
    { id: 'slow-a', ms: 250, v: 'A' },
    { id: 'slow-b', ms: 10, v: 'B' },
    { id: 'slow-c', ms: 120, v: 'C' },
  ];
  // one write: the three requests and an event behind them
  c.write(Buffer.concat([
    ...reqs.map((r) => encodeFrame(T.ACK_REQ, 'slow', JSON.stringify({ data: { ms: r.ms, v: r.v }, _correlationId: r.id }))),
    encodeFrame(T.JSON, 'echo', '"not blocked"'),
  ]));
  const replies = [];
  for (let i = 0; i < 3; i++) replies.push((await c.next(T.ACK_RES)).json());
  for (const r of replies) {
    const req = reqs.find((q) => q.id === r._correlationId);
    assert.ok(req, `unknown correlation id in ${JSON.stringify(r)}`);
    assert.deepStrictEqual(r, { data: { v: req.v }, _correlationId: req.id });
  }
  // a waiting handler does not hold up the others
  assert.deepStrictEqual(replies.map((r) => r._correlationId), ['slow-b', 'slow-c', 'slow-a']);
  const order = c.all.filter((f) => f.type === T.ACK_RES || f.event === 'echo')
    .map((f) => (f.type === T.ACK_RES ? f.json()._correlationId : f.event));
  assert.ok(order.indexOf('echo') < order.indexOf('slow-a'), `echo answered before the slowest ACK: ${order}`);
});

test('an ACK handler error replies {data:{error}, _correlationId, error}', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  c.send(T.ACK_REQ, 'fail', JSON.stringify({ data: 7, _correlationId: 'c-err' }));
  const f = await c.next(T.ACK_RES, 2000);
  assert.strictEqual(f.event, 'fail');
  const r = f.json();
  assert.deepStrictEqual(Object.keys(r).sort(), ['_correlationId', 'data', 'error']);
  assert.strictEqual(r._correlationId, 'c-err');
  assert.match(r.error, /boom 7/);
  assert.deepStrictEqual(r.data, { error: r.error });

  // without an id the reply still comes at once and names the error
  c.send(T.ACK_REQ, 'fail', '8');
  const f2 = await c.next(T.ACK_RES, 2000);
  assert.strictEqual(f2.event, 'fail');
  assert.match(f2.text(), /boom 8/);

  await echoes(c, 'still here');
  h.alive();
});

test('BINARY payloads of 0 bytes, 1 byte and 1 MiB come back intact', async (t) => {
  const h = await setup(t, { MAX_FRAME: String(4 << 20) });
  const c = await h.tcp();
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 255;
  for (const payload of [Buffer.alloc(0), Buffer.from([0xa5]), big]) {
    c.emitBinary('bin', payload);
    const f = await c.next({ type: T.BINARY, event: 'bin' }, 5000);
    assert.strictEqual(f.payload.length, payload.length);
    assert.ok(f.payload.equals(payload), `payload of ${payload.length} bytes changed`);
  }
  assert.ok(await c.nothing('problem', 50), 'the handler saw ctx.isBinary');
  await echoes(c);
});

test('PING is answered with PONG', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  c.send(T.PING);
  const f = await c.next((x) => x.type !== T.PING);
  assert.strictEqual(f.type, T.PONG, `expected PONG, got ${f}`);
  assert.strictEqual(f.event, '');
  assert.strictEqual(f.payload.length, 0);
  await echoes(c);
});

test('heartbeat: the server PINGs, and closes a client that stays silent', async (t) => {
  const h = await setup(t, { HB_INTERVAL: '200', HB_TIMEOUT: '600' });
  const live = await h.tcp(); // answers every PING with PONG
  const silent = await h.raw({ autoPong: false });
  const t0 = Date.now();
  await silent.next(T.CONNECT);
  await silent.next('welcome');
  await silent.next(T.PING, 1500);
  await silent.waitClose(3000);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 550, `closed after ${elapsed} ms, before heartbeatTimeout (600 ms)`);
  assert.ok(elapsed <= 2500, `closed only after ${elapsed} ms`);
  assert.ok(silent.pingsReceived >= 1);

  // the client that answers stays, well past the timeout
  const wait = 1200 - (Date.now() - t0);
  if (wait > 0) await sleep(wait);
  assert.ok(!live.ended && !live.closed, 'a client answering PINGs was closed');
  assert.ok(live.pingsReceived >= 3, `only ${live.pingsReceived} PINGs in ~1.2 s at a 200 ms interval`);
  await echoes(live, 'alive');
});

test('JOIN and LEAVE reply joined-room / left-room as JSON frames', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const w = await h.ws();
  const room = 'lobby-ü';
  c.join(room);
  const j = await c.next('joined-room');
  assert.strictEqual(j.type, T.JSON);
  assert.deepStrictEqual(j.json(), room);

  w.emit('say', { room, text: 'in' });
  assert.deepStrictEqual((await c.next('said')).json(), { from: w.id, text: 'in' });

  c.leave(room);
  const l = await c.next('left-room');
  assert.deepStrictEqual(l.json(), room);
  w.emit('say', { room, text: 'out' });
  assert.ok(await c.nothing('said', 300), 'a client that left still gets the room');
});

test('a mixed room: TCP and WebSocket members see each other via ctx:to', async (t) => {
  const h = await setup(t);
  const a = await h.tcp();
  const b = await h.ws();
  const outsiderTcp = await h.tcp();
  const outsiderWs = await h.ws();
  a.join('mix');
  await a.next('joined-room');
  b.emit('join-room', 'mix');
  assert.strictEqual((await b.next('joined-room')).data, 'mix');

  a.emit('say', { room: 'mix', text: 'from tcp' });
  assert.deepStrictEqual((await b.next('said')).data, { from: a.id, text: 'from tcp' });
  b.emit('say', { room: 'mix', text: 'from ws' });
  const f = await a.next('said');
  assert.strictEqual(f.type, T.JSON);
  assert.deepStrictEqual(f.json(), { from: b.id, text: 'from ws' });

  // ctx:to skips the sender; outsiders get nothing
  assert.ok(await a.nothing((x) => x.event === 'said' && x.json().from === a.id, 200));
  assert.ok(await b.nothing((m) => m.event === 'said' && m.data.from === b.id, 50));
  assert.ok(await outsiderTcp.nothing('said', 50));
  assert.ok(await outsiderWs.nothing('said', 50));
});

test('server:broadcast reaches TCP and WebSocket clients', async (t) => {
  const h = await setup(t);
  const a = await h.tcp();
  const a2 = await h.tcp();
  const b = await h.ws();
  a.emit('shout', 'hear ye');
  const want = { from: a.id, text: 'hear ye' };
  assert.deepStrictEqual((await a.next('shouted')).json(), want);
  assert.deepStrictEqual((await a2.next('shouted')).json(), want);
  assert.deepStrictEqual((await b.next('shouted')).data, want);
  b.emit('shout', 'and you');
  assert.deepStrictEqual((await a.next('shouted')).json(), { from: b.id, text: 'and you' });
});

test('ctx.clientInfo of a TCP client says protocol "tcp"', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  c.emit('info', null);
  const info = (await c.next('info')).json();
  assert.strictEqual(info.protocol, 'tcp');
  assert.strictEqual(info.id, c.id);
  assert.match(info.remoteAddress, /127\.0\.0\.1/);
  const w = await h.ws();
  w.emit('info', null);
  assert.strictEqual((await w.next('info')).data.protocol, 'ws');
});

test('getStats counts tcpConnections and wsConnections separately', async (t) => {
  const h = await setup(t);
  const a = await h.tcp();
  const b = await h.tcp();
  const w = await h.ws();
  a.emit('stats', null);
  assert.deepStrictEqual((await a.next('stats')).json(), { tcp: 2, ws: 1, active: 3 });
  w.emit('stats', null);
  assert.deepStrictEqual((await w.next('stats')).data, { tcp: 2, ws: 1, active: 3 });

  await b.destroy();
  let s;
  const until = Date.now() + 2000;
  do {
    a.emit('stats', null);
    s = (await a.next('stats')).json();
    if (s.tcp === 1) break;
    await sleep(20);
  } while (Date.now() < until);
  assert.deepStrictEqual(s, { tcp: 1, ws: 1, active: 2 });
});

// Bad input: ERROR (type 11, event "error") with a clear message, then the
// socket closes; a client already connected and a new one are still served.
test('bad frames get an ERROR frame and a close; everyone else is still served', async (t) => {
  const h = await setup(t); // maxFrameSize = 65536
  const bystander = await h.tcp();
  const bystanderWs = await h.ws();
  const cases = [
    ['total length below 7', rawHeader(3, T.JSON, 0), /7|header|short/i],
    ['total length 0', rawHeader(0, T.PING, 0), /7|header|short/i],
    ['total length over maxFrameSize', Buffer.concat([rawHeader(65537, T.BINARY, 3), Buffer.from('bin')]), /maxFrameSize|too (long|large|big)|exceed/i],
    ['total length 4 GiB - 1', rawHeader(0xffffffff, T.JSON, 4), /maxFrameSize|too (long|large|big)|exceed/i],
    ['event length past the frame', Buffer.concat([rawHeader(10, T.JSON, 20), Buffer.from('abc')]), /event length/i],
    ['event of 257 bytes', encodeFrame(T.JSON, 'a'.repeat(257), '1'), /event name/i],
    ['event with a space', encodeFrame(T.JSON, 'bad event', '1'), /event name/i],
    ['event with a forbidden character (_)', encodeFrame(T.BINARY, 'bad_event', 'x'), /event name/i],
    ['empty event on JSON', encodeFrame(T.JSON, '', '1'), /event name/i],
  ];
  for (const [name, bytes, re] of cases) {
    await t.test(name, async () => {
      const bad = await h.tcp();
      bad.write(bytes);
      const f = await bad.next((x) => x.type !== T.PING);
      assert.strictEqual(f.type, T.ERROR, `expected ERROR, got ${f}`);
      assert.strictEqual(f.event, 'error');
      assert.match(f.text(), re);
      await bad.waitClose(3000);
      assert.strictEqual(bad.all[bad.all.length - 1].type, T.ERROR, 'ERROR is the last frame');
      await echoes(bystander, { after: name });
      bystanderWs.emit('echo', name);
      assert.strictEqual((await bystanderWs.next('echo')).data, name);
      const fresh = await h.tcp();
      await echoes(fresh, { fresh: name });
      fresh.sock.destroy();
      h.alive();
    });
  }

  await t.test('a frame of exactly maxFrameSize is accepted', async () => {
    const c = await h.tcp();
    const payload = Buffer.alloc(65536 - 7 - 3, 0x5a);
    c.emitBinary('bin', payload);
    const f = await c.next({ type: T.BINARY, event: 'bin' });
    assert.ok(f.payload.equals(payload));
  });
});

test('invalid JSON in a JSON frame is dropped; the connection stays', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  c.send(T.JSON, 'echo', '{nope');
  c.send(T.JSON, 'echo', '');
  assert.ok(await c.nothing((f) => f.type !== T.PING, 300), `got ${c.all.slice(2).map(String)}`);
  assert.ok(!c.ended && !c.closed, 'the connection was closed');
  await echoes(c, { next: 'works' });
});

test('a frame sent one byte at a time, 1 ms apart, is decoded', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const bytes = Buffer.concat([
    encodeFrame(T.JSON, 'echo', JSON.stringify({ split: 'into single bytes', n: 1 })),
    encodeFrame(T.ACK_REQ, 'add', JSON.stringify({ data: { a: 1, b: 2 }, _correlationId: 'b-1' })),
  ]);
  for (const b of bytes) {
    c.write(Buffer.from([b]));
    await sleep(1);
  }
  assert.deepStrictEqual((await c.next('echo')).json(), { split: 'into single bytes', n: 1 });
  assert.deepStrictEqual((await c.next(T.ACK_RES)).json(), { data: 3, _correlationId: 'b-1' });
});

test('the read that completes a split frame may carry more frames and another partial one', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const stream = Buffer.concat([1, 2, 3, 4].map((i) => encodeFrame(T.JSON, 'echo', JSON.stringify({ i }))));
  const one = stream.length / 4;
  // [half of 1] ... [rest of 1, all of 2, header of 3] ... [rest of 3, 4]
  const cuts = [Math.floor(one / 2), 2 * one + 4, stream.length];
  let from = 0;
  for (const to of cuts) {
    c.write(stream.subarray(from, to));
    from = to;
    await sleep(25);
  }
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await c.next('echo')).json().i);
  assert.deepStrictEqual(got, [1, 2, 3, 4]);
});

test('50 frames coalesced in one write are all answered, in order', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const frames = [];
  for (let i = 0; i < 50; i++) frames.push(encodeFrame(T.JSON, 'echo', JSON.stringify({ i })));
  c.write(Buffer.concat(frames));
  const got = [];
  for (let i = 0; i < 50; i++) got.push((await c.next('echo')).json().i);
  assert.deepStrictEqual(got, [...Array(50).keys()]);
});

test('a client disconnecting mid-frame does not disturb the others', async (t) => {
  const h = await setup(t);
  const other = await h.tcp();
  const w = await h.ws();
  // cut inside the header, and inside the body of a declared 1000-byte frame
  const cuts = [
    encodeFrame(T.JSON, 'echo', '"x"').subarray(0, 3),
    Buffer.concat([rawHeader(1000, T.BINARY, 3), Buffer.from('bin'), Buffer.alloc(100, 1)]),
  ];
  for (const cut of cuts) {
    const x = await h.tcp();
    x.write(cut);
    await sleep(30);
    await x.destroy();
    await echoes(other, { cut: cut.length });
    w.emit('echo', cut.length);
    assert.strictEqual((await w.next('echo')).data, cut.length);
    const fresh = await h.tcp();
    await echoes(fresh);
    h.alive();
  }
  other.emit('stats', null);
  const s = (await other.next('stats')).json();
  assert.ok(s.tcp <= 3, `disconnected clients still counted: ${JSON.stringify(s)}`);
});

test('ctx:close() on a TCP client sends DISCONNECT, then closes', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const other = await h.tcp();
  c.emit('close-me', null);
  const f = await c.next((x) => x.type !== T.PING);
  assert.strictEqual(f.type, T.DISCONNECT, `expected DISCONNECT, got ${f}`);
  assert.strictEqual(f.event, '');
  assert.strictEqual(f.payload.length, 0);
  await c.waitClose(3000);
  assert.strictEqual(c.all[c.all.length - 1].type, T.DISCONNECT);
  await echoes(other);
});

test('on SIGTERM a TCP client gets DISCONNECT and is closed', async (t) => {
  const h = await setup(t);
  const c = await h.tcp();
  const stopped = h.server.stop();
  const f = await c.next((x) => x.type !== T.PING, 3000);
  assert.strictEqual(f.type, T.DISCONNECT, `expected DISCONNECT, got ${f}`);
  await c.waitClose(3000);
  const r = await stopped;
  assert.ok(r.code === 0 || r.signal === 'SIGTERM', `exit ${JSON.stringify(r)}`);
});
