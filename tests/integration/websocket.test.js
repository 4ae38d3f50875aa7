'use strict';
// The WebSocket side of PROTOCOL.md section 3 on the raw wire: masking,
// fragmentation, control frames, the close handshake, UTF-8, size limits
// (fixture: maxPayloadSize 1024, maxFrameSize 512), and envelopes that are
// ignored (invalid JSON, no event, reserved names, bad binary headers).
// Every bad input is followed by a check that the same server still serves a
// fresh, normal WebSocket client.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { startServer, connect, fixture, frame, sleep, upgradeRequest, withTimeout } = require('./harness');
const { RawWs, rawWs, tracker, servesFresh, envelope } = require('./wire');

const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

// The server for one test; raw clients opened on it are destroyed before it
// stops (a client left open would make it wait for a CLOSE reply).
async function start(t) {
  const track = tracker(t);
  const server = await startServer(fixture('proto_app.lua'));
  t.after(() => server.stop());
  server.track = track;
  return server;
}

// A raw client after a successful handshake.
async function open(t, server) {
  const c = server.track(await rawWs(server.port));
  assert.strictEqual(c.head.statusLine, 'HTTP/1.1 101 Switching Protocols');
  return c;
}

// The server sends CLOSE with code, then closes the TCP socket; nothing but
// control frames came before it from this exchange, and nothing after it.
async function expectClose(c, code, what) {
  const f = await c.nextFrame(OP.CLOSE, 2000).catch((e) => {
    throw new Error(`${what}: no CLOSE frame (${e.message}); frames: ${JSON.stringify(c.frames.map((x) => x.opcode))}`);
  });
  assert.strictEqual(f.code, code, `${what}: close code ${f.code} (${f.reason})`);
  assert.strictEqual(f.masked, false, `${what}: the server's CLOSE is unmasked`);
  assert.strictEqual(f.fin, true);
  const closedAt = await c.waitClose(3000);
  assert.ok(closedAt >= f.at, 'the socket closes after the CLOSE frame');
  const i = c.frames.indexOf(f);
  assert.deepStrictEqual(c.frames.slice(i + 1).map((x) => x.opcode), [], `${what}: nothing after CLOSE`);
  return f;
}

// An echo round trip on a raw client; returns the reply frame.
async function rawEcho(c, data) {
  c.sendText(envelope('echo', data));
  const f = await c.nextFrame(OP.TEXT);
  assert.deepStrictEqual(JSON.parse(f.payload.toString()), { event: 'echo', data });
  return f;
}

// A text envelope of exactly n bytes: {"event":"echo","data":"xxx..."}.
function envelopeOfSize(n, ch = 'x') {
  const base = envelope('echo', '').length;
  return envelope('echo', ch.repeat(n - base));
}

// ---------------------------------------------------------------- framing

test('the server\'s frames are unmasked, final, and text for JSON', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const f = await rawEcho(c, { hello: 'wörld', n: [1, 2] });
  assert.strictEqual(f.opcode, OP.TEXT);
  assert.strictEqual(f.masked, false, 'a server frame is never masked (RFC 6455 5.1)');
  assert.strictEqual(f.fin, true);
  assert.strictEqual(f.rsv, 0, 'no RSV bits without a negotiated extension');
  // A binary event comes back as a binary frame in the [u32 len][header][bytes] layout.
  const bytes = Buffer.from([0, 1, 2, 250, 255]);
  const header = Buffer.from(JSON.stringify({ event: 'bin' }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  c.send(OP.BINARY, Buffer.concat([len, header, bytes]));
  const b = await c.nextFrame(OP.BINARY);
  assert.strictEqual(b.masked, false);
  const hlen = b.payload.readUInt32BE(0);
  assert.strictEqual(JSON.parse(b.payload.subarray(4, 4 + hlen).toString()).event, 'bin');
  assert.deepStrictEqual(b.payload.subarray(4 + hlen), bytes);
  assert.deepStrictEqual(c.frames.map((x) => x.masked), c.frames.map(() => false));
});

test('an unmasked client frame gets CLOSE 1002, then the socket closes', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  c.send(OP.TEXT, envelope('echo', 'unmasked'), { mask: false });
  await expectClose(c, 1002, 'unmasked frame');
  assert.deepStrictEqual(c.frames.filter((f) => f.opcode === OP.TEXT), [], 'the unmasked message was not dispatched');
  await servesFresh(server.port, 'an unmasked frame');
});

test('a fragmented text message (text, continuation, continuation) is reassembled', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const text = envelope('echo', { parts: 'one-two-three', n: 3 });
  const a = text.slice(0, 10), b = text.slice(10, 20), rest = text.slice(20);
  // All three frames in one write.
  c.write(Buffer.concat([
    frame(OP.TEXT, a, { fin: false }),
    frame(OP.CONT, b, { fin: false }),
    frame(OP.CONT, rest, { fin: true }),
  ]));
  assert.deepStrictEqual(await c.nextJson(), { event: 'echo', data: { parts: 'one-two-three', n: 3 } });
  // The same, each frame in its own read.
  c.send(OP.TEXT, a, { fin: false });
  await sleep(30);
  c.send(OP.CONT, b, { fin: false });
  await sleep(30);
  c.send(OP.CONT, rest, { fin: true });
  assert.deepStrictEqual(await c.nextJson(), { event: 'echo', data: { parts: 'one-two-three', n: 3 } });
  // A multi-byte character split across fragments is valid UTF-8 once whole.
  const utf8 = Buffer.from(envelope('echo', 'κόσμε'));
  const cut = utf8.indexOf(Buffer.from('κ')) + 1; // inside the two bytes of κ
  c.send(OP.TEXT, utf8.subarray(0, cut), { fin: false });
  c.send(OP.CONT, utf8.subarray(cut), { fin: true });
  assert.deepStrictEqual(await c.nextJson(), { event: 'echo', data: 'κόσμε' });
  assert.strictEqual(c.isClosed, false);
});

test('a ping between fragments gets its pong, and the message still arrives', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const text = envelope('echo', 'interleaved');
  c.send(OP.TEXT, text.slice(0, 12), { fin: false });
  c.send(OP.PING, 'mid');
  c.send(OP.CONT, text.slice(12, 20), { fin: false });
  c.send(OP.CONT, text.slice(20), { fin: true });
  const pong = await c.nextFrame(OP.PONG);
  assert.strictEqual(pong.payload.toString(), 'mid');
  assert.deepStrictEqual(await c.nextJson(), { event: 'echo', data: 'interleaved' });
  const order = c.frames.map((f) => f.opcode);
  assert.deepStrictEqual(order, [OP.PONG, OP.TEXT], 'the pong leaves before the reply to the message it interrupted');
});

test('a ping with payload "abc" gets a pong with "abc"', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  c.send(OP.PING, 'abc');
  const pong = await c.nextFrame(OP.PONG);
  assert.strictEqual(pong.payload.toString(), 'abc');
  assert.strictEqual(pong.masked, false);
  assert.strictEqual(pong.fin, true);
  // An empty ping and a 125-byte ping too.
  c.send(OP.PING, '');
  assert.strictEqual((await c.nextFrame(OP.PONG)).payload.length, 0);
  const big = Buffer.alloc(125, 0x61);
  c.send(OP.PING, big);
  assert.deepStrictEqual((await c.nextFrame(OP.PONG)).payload, big);
  await rawEcho(c, 'still open');
});

test('a client CLOSE 1000 is answered with CLOSE 1000 and the socket closes', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  await rawEcho(c, 'before close');
  const payload = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]);
  const sentAt = Date.now();
  c.send(OP.CLOSE, payload);
  const f = await expectClose(c, 1000, 'client close');
  assert.strictEqual(f.opcode, OP.CLOSE);
  assert.ok(Date.now() - sentAt < 1500, `the socket closed ${Date.now() - sentAt} ms after the client's CLOSE`);
  await servesFresh(server.port, 'a client close');
});

// RFC 6455 7.1.1: after the close handshake the server closes the TCP
// connection, first. It lets go of the socket at once rather than holding
// it half-closed until the client's FIN (which this client never sends).
test('after the close handshake the server closes its socket without waiting for the client', async (t) => {
  const server = await start(t);
  const sock = await new Promise((resolve, reject) => {
    const s = net.connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
  t.after(() => sock.destroy());
  const c = new RawWs(sock);
  sock.write(upgradeRequest());
  await c.waitHead();
  await rawEcho(c, 'before close');
  const fds = server.openFds();
  const ended = new Promise((resolve) => sock.once('end', resolve));
  c.send(OP.CLOSE, Buffer.from([0x03, 0xe8]));
  assert.strictEqual((await c.nextFrame(OP.CLOSE)).code, 1000);
  await withTimeout(ended, 1000, "the server's FIN");
  let now = fds;
  for (let i = 0; i < 50 && now >= fds; i++) {
    await sleep(10);
    now = server.openFds();
  }
  assert.strictEqual(now, fds - 1, 'the server still holds the socket while the client keeps its side open');
  assert.strictEqual(sock.writable, true, 'the client has not ended its side');
  await servesFresh(server.port, 'a close without the client FIN');
});

test('an invalid UTF-8 text message gets CLOSE 1007', async (t) => {
  const server = await start(t);
  const bad = Buffer.from('cebae1bdb9cebcceb5eda080656469746564', 'hex'); // κόσμε + a surrogate + "edited"
  // As a whole message.
  const c = await open(t, server);
  c.send(OP.TEXT, bad);
  await expectClose(c, 1007, 'invalid UTF-8');
  // Inside an envelope, fragmented.
  const c2 = await open(t, server);
  const msg = Buffer.concat([Buffer.from('{"event":"echo","data":"'), bad, Buffer.from('"}')]);
  c2.send(OP.TEXT, msg.subarray(0, 20), { fin: false });
  c2.send(OP.CONT, msg.subarray(20), { fin: true });
  await expectClose(c2, 1007, 'invalid UTF-8 in fragments');
  assert.deepStrictEqual(c2.frames.filter((f) => f.opcode === OP.TEXT), [], 'nothing was dispatched');
  await servesFresh(server.port, 'invalid UTF-8');
});

// Frames RFC 6455 forbids, each answered with its CLOSE code, the socket
// closed after it and nothing dispatched; the server goes on serving.
const forbidden = [
  ['a reserved data opcode (3)', (c) => c.send(3, 'x'), 1002],
  ['a reserved control opcode (11)', (c) => c.send(11, 'x'), 1002],
  ['RSV1 without a negotiated extension', (c) => c.send(OP.TEXT, envelope('echo', 1), { rsv: 4 }), 1002],
  ['RSV2', (c) => c.send(OP.TEXT, envelope('echo', 1), { rsv: 2 }), 1002],
  ['RSV3 on a ping', (c) => c.send(OP.PING, 'x', { rsv: 1 }), 1002],
  ['a continuation with no message begun', (c) => c.send(OP.CONT, envelope('echo', 1)), 1002],
  ['a new text frame inside a fragmented message', (c) => {
    c.send(OP.TEXT, '{"event":', { fin: false });
    c.send(OP.TEXT, envelope('echo', 1));
  }, 1002],
  ['a ping of 126 bytes', (c) => c.send(OP.PING, Buffer.alloc(126, 1)), 1002],
  ['a fragmented ping', (c) => c.send(OP.PING, 'x', { fin: false }), 1002],
  ['a close with a 1-byte payload', (c) => c.send(OP.CLOSE, Buffer.from([3])), 1002],
  ['a close with code 1005 (never sent on the wire)', (c) => c.send(OP.CLOSE, Buffer.from([0x03, 0xed])), 1002],
  ['a close with code 999', (c) => c.send(OP.CLOSE, Buffer.from([0x03, 0xe7])), 1002],
  ['a close with code 2000', (c) => c.send(OP.CLOSE, Buffer.from([0x07, 0xd0])), 1002],
  ['a close with code 1015 (never sent on the wire)', (c) => c.send(OP.CLOSE, Buffer.from([0x03, 0xf7])), 1002],
  ['a close whose reason is not UTF-8', (c) => c.send(OP.CLOSE, Buffer.from([0x03, 0xe8, 0xc3, 0x28])), 1007],
];

for (const [what, sendBad, code] of forbidden) {
  test(`${what} gets CLOSE ${code}`, async (t) => {
    const server = await start(t);
    const c = await open(t, server);
    await rawEcho(c, 'before');
    sendBad(c);
    await expectClose(c, code, what);
    assert.strictEqual(c.frames.filter((f) => f.opcode === OP.TEXT).length, 1, 'only the first echo came back');
    await servesFresh(server.port, what);
  });
}

test('a client CLOSE 1012 (registered: service restart) is answered with 1012', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  c.send(OP.CLOSE, Buffer.from([0x03, 0xf4]));
  await expectClose(c, 1012, 'close 1012');
});

test('a close without a payload is answered with an empty CLOSE', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  c.send(OP.CLOSE, Buffer.alloc(0));
  const f = await c.nextFrame(OP.CLOSE, 2000);
  assert.strictEqual(f.payload.length, 0);
  await c.waitClose(3000);
});

test('invalid UTF-8 is refused at the fragment that holds it, before the message ends', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  // The first fragment already holds a byte no UTF-8 text can have; the
  // rest of the message is never sent, so only a fail-fast check answers.
  c.send(OP.TEXT, Buffer.concat([Buffer.from('{"event":"echo","data":"'), Buffer.from([0xc3, 0x28])]), { fin: false });
  await expectClose(c, 1007, 'invalid UTF-8 in a first fragment');
  await servesFresh(server.port, 'fail-fast UTF-8');
});

test('a character split between fragments (and a control frame between them) is accepted', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const msg = Buffer.from(envelope('echo', 'caf\u00e9 \u{1F600} done'));
  const at = msg.indexOf(0xf0) + 2; // inside the four bytes of the emoji
  c.send(OP.TEXT, msg.subarray(0, at), { fin: false });
  c.send(OP.PING, 'between');
  c.send(OP.CONT, msg.subarray(at));
  const f = await c.nextFrame(OP.TEXT);
  assert.deepStrictEqual(JSON.parse(f.payload.toString()), { event: 'echo', data: 'caf\u00e9 \u{1F600} done' });
  assert.strictEqual((await c.nextFrame(OP.PONG)).payload.toString(), 'between');
});

// ---------------------------------------------------------------- size limits

test('maxPayloadSize 1024: a 2000-byte message gets CLOSE 1009', async (t) => {
  const server = await start(t);
  const msg = Buffer.from(envelopeOfSize(2000));
  // In four 500-byte fragments: every frame is under maxFrameSize (512).
  const c = await open(t, server);
  for (let i = 0; i < 4; i++) c.send(i ? OP.CONT : OP.TEXT, msg.subarray(i * 500, i * 500 + 500), { fin: i === 3 });
  await expectClose(c, 1009, 'a 2000-byte message in fragments');
  assert.deepStrictEqual(c.frames.filter((f) => f.opcode === OP.TEXT), [], 'nothing was dispatched');
  // In one frame.
  const c2 = await open(t, server);
  c2.send(OP.TEXT, msg);
  await expectClose(c2, 1009, 'a 2000-byte message in one frame');
  // A binary message over the limit, too.
  const c3 = await open(t, server);
  c3.send(OP.BINARY, Buffer.alloc(500), { fin: false });
  c3.send(OP.CONT, Buffer.alloc(500), { fin: false });
  c3.send(OP.CONT, Buffer.alloc(500), { fin: true });
  await expectClose(c3, 1009, 'a 1500-byte binary message in fragments');
  await servesFresh(server.port, 'oversized messages');
});

test('maxFrameSize 512: a 600-byte single frame gets CLOSE 1009', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  c.send(OP.TEXT, envelopeOfSize(600));
  await expectClose(c, 1009, 'a 600-byte frame');
  assert.deepStrictEqual(c.frames.filter((f) => f.opcode === OP.TEXT), [], 'nothing was dispatched');
  await servesFresh(server.port, 'an oversized frame');
});

test('a 1000-byte message in two 500-byte fragments is accepted (maxFrameSize 512, maxPayloadSize 1024)', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const msg = Buffer.from(envelopeOfSize(1000, 'y'));
  assert.strictEqual(msg.length, 1000);
  c.send(OP.TEXT, msg.subarray(0, 500), { fin: false });
  c.send(OP.CONT, msg.subarray(500), { fin: true });
  const reply = await c.nextFrame(OP.TEXT);
  assert.deepStrictEqual(JSON.parse(reply.payload.toString()), JSON.parse(msg.toString()));
  // Exactly at the limits: a 512-byte frame, a 1024-byte message.
  const exact = Buffer.from(envelopeOfSize(1024, 'z'));
  c.send(OP.TEXT, exact.subarray(0, 512), { fin: false });
  c.send(OP.CONT, exact.subarray(512), { fin: true });
  assert.deepStrictEqual(await c.nextJson(), JSON.parse(exact.toString()));
  c.send(OP.TEXT, envelopeOfSize(512, 'w'));
  assert.deepStrictEqual(await c.nextJson(), JSON.parse(envelopeOfSize(512, 'w')));
  assert.strictEqual(c.isClosed, false);
  assert.deepStrictEqual(c.frames.filter((f) => f.opcode === OP.CLOSE), []);
});

// ---------------------------------------------------------------- ignored messages

test('invalid JSON is ignored (onInvalidMessage fires) and the connection stays', async (t) => {
  const server = await start(t);
  const c = await connect(server.port);
  server.track(c);
  for (const bad of ['{not json', '', 'null', '[1,2,3]', '"event"', '{"event":"echo","data":}']) c.sendRaw(bad);
  c.emit('echo', 'after bad JSON');
  assert.deepStrictEqual(await c.next(), { event: 'echo', data: 'after bad JSON' }, 'the next message is the echo');
  assert.strictEqual(c.closed, null);
  await server.waitForLog(/INVALID invalid JSON/);
  await server.waitForLog(/INVALID message is not a JSON object/);
  await servesFresh(server.port, 'invalid JSON');
});

test('a message without an event is ignored and the connection stays', async (t) => {
  const server = await start(t);
  const c = await connect(server.port);
  server.track(c);
  for (const bad of [{ data: 1 }, { event: '', data: 2 }, { event: null, data: 3 }, { event: 42, data: 4 }, {}]) {
    c.sendRaw(JSON.stringify(bad));
  }
  c.emit('echo', 'after no event');
  assert.deepStrictEqual(await c.next(), { event: 'echo', data: 'after no event' });
  assert.strictEqual(c.closed, null);
  await server.waitForLog(/INVALID message has no event/);
  await servesFresh(server.port, 'messages without an event');
});

test('ping, connect, disconnect and error from a client never reach on() handlers', async (t) => {
  const server = await start(t);
  const c = await connect(server.port);
  server.track(c);
  for (const name of ['ping', 'connect', 'disconnect', 'error']) {
    c.emit(name, { from: 'client' });
    c.sendRaw(JSON.stringify({ event: name, data: 1, _ackName: name, _correlationId: `x-${name}` }));
  }
  c.emit('echo', 'after reserved');
  assert.deepStrictEqual(await c.next(), { event: 'echo', data: 'after reserved' }, 'nothing came before the echo');
  assert.ok(await c.nothing(() => true, 300), `nothing else arrives; queue: ${JSON.stringify(c.queue)}`);
  assert.doesNotMatch(server.logs(), /LEAK/, 'no on() handler under a reserved name ran');
  await server.waitForLog(/INVALID reserved event name/);
  // The connection is still open, and closing it does not fire on("disconnect") either.
  assert.strictEqual(c.closed, null);
  await c.close();
  await sleep(100);
  assert.doesNotMatch(server.logs(), /LEAK/);
  await servesFresh(server.port, 'reserved events');
});

test('a binary message with a malformed header is ignored and the connection stays', async (t) => {
  const server = await start(t);
  const c = await open(t, server);
  const header = Buffer.from(JSON.stringify({ event: 'bin' }));
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
  const bad = [
    Buffer.concat([u32(100), header, Buffer.from('xy')]),     // length prefix past the end
    Buffer.concat([u32(0xffffffff), header]),                  // far past the end
    Buffer.from([0, 0]),                                       // shorter than the prefix
    Buffer.concat([u32(0), header]),                           // empty header
    Buffer.concat([u32(5), Buffer.from('{"ev"'), Buffer.from('zz')]), // not JSON
    Buffer.concat([u32(11), Buffer.from('{"data":11}')]),      // no event
  ];
  for (const b of bad) c.send(OP.BINARY, b);
  c.send(OP.BINARY, Buffer.concat([u32(header.length), header, Buffer.from('ok')]));
  const reply = await c.nextFrame(OP.BINARY);
  const hlen = reply.payload.readUInt32BE(0);
  assert.strictEqual(JSON.parse(reply.payload.subarray(4, 4 + hlen).toString()).event, 'bin');
  assert.strictEqual(reply.payload.subarray(4 + hlen).toString(), 'ok');
  assert.deepStrictEqual(c.frames.map((f) => f.opcode), [OP.BINARY], 'only the good message was answered');
  await rawEcho(c, 'after bad binary');
  assert.strictEqual(c.isClosed, false);
  await server.waitForLog(/INVALID malformed binary header/);
  await servesFresh(server.port, 'malformed binary headers');
});
