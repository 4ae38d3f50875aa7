'use strict';
// permessage-deflate (RFC 7692, issue 7): negotiation of every parameter,
// compressed frames both ways (RSV1 seen on the raw wire), context takeover,
// bounded inflate (a deflate bomb closes 1009), a corrupt stream (1007),
// compression = false, and the same over wss://.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  makeCert, startApp, memory, tracker, wsConnect, deflateMessage, contextDeflater, inflateMessage,
  parseExtension, rawWs, sleep,
} = require('./tlshelp');

const PMD = 'permessage-deflate';
const MAX_PAYLOAD = 100000;

let dir;
let cert;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stelar-pmd-'));
  cert = makeCert(dir);
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const envelope = (event, data) => JSON.stringify({ event, data });

// The answered extension's parameters as a plain object (null: none).
function answered(headers) {
  const ext = parseExtension(headers['sec-websocket-extensions']);
  if (!ext) return null;
  assert.strictEqual(ext.name, PMD);
  return Object.fromEntries(ext.params);
}

// A fresh client is served: a new ws client gets its echo back.
async function servesFresh(server, track, { perMessageDeflate = { threshold: 0 } } = {}) {
  server.alive();
  const c = track(await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate }));
  const data = { fresh: true, text: 'served after a bad client '.repeat(8) };
  c.emit('echo', data);
  assert.deepStrictEqual((await c.next('echo')).data, data);
  c.ws.terminate();
}

test('the ws client with perMessageDeflate negotiates; messages round-trip; clientInfo.compressed', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const c = track(await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } }));
  const params = answered(c.upgradeHeaders);
  assert.ok(params, `no ${PMD} in the 101: ${JSON.stringify(c.upgradeHeaders)}`);
  assert.strictEqual(params.server_no_context_takeover, true, `answer: ${c.upgradeHeaders['sec-websocket-extensions']}`);
  assert.strictEqual(params.client_no_context_takeover, undefined, 'the client keeps its context unless it asks');
  assert.match(c.ws.extensions, /^permessage-deflate/, 'the ws client accepted the answer');

  // Count the compressed messages the ws client receives (its receiver
  // records RSV1 of the frame being read).
  let compressedIn = 0;
  const receiver = c.ws._receiver;
  const origGetData = receiver.getData.bind(receiver);
  receiver.getData = (cb) => {
    if (receiver._compressed) compressedIn++;
    return origGetData(cb);
  };

  for (const data of ['hi', { n: 1 }, 'x'.repeat(63), 'deflate me '.repeat(500), { list: Array.from({ length: 300 }, (_, i) => i) }]) {
    c.emit('echo', data);
    assert.deepStrictEqual((await c.next('echo')).data, data);
  }
  assert.ok(compressedIn >= 2, `the large echoes arrived compressed (${compressedIn} compressed messages)`);

  const info = (await c.ack('info', null)).data;
  assert.strictEqual(info.compressed, true, `clientInfo: ${JSON.stringify(info)}`);
  assert.strictEqual(info.secure, false);
  assert.strictEqual(info.configCompression, true, 'getConfig().compression');
  assert.strictEqual(info.configTls, false, 'getConfig().tls');

  // A client that does not offer the extension on the same server.
  const plain = track(await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false }));
  assert.strictEqual(plain.upgradeHeaders['sec-websocket-extensions'], undefined);
  assert.strictEqual((await plain.ack('info', null)).data.compressed, false);
  plain.emit('echo', 'deflate me '.repeat(500));
  assert.strictEqual((await plain.next('echo')).data, 'deflate me '.repeat(500));
  server.alive();
});

test('raw wire: server messages of 64 bytes or more carry RSV1, smaller ones do not; client frames are inflated', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const r = track(await rawWs(server.port, { extensions: PMD }));
  assert.strictEqual(r.status, 101, r.head);
  assert.deepStrictEqual(answered(r.headers), { server_no_context_takeover: true }, r.head);

  // Around the 64-byte threshold, by the length of the envelope sent back.
  const seen = { small: 0, large: 0 };
  for (let n = 30; n <= 45; n++) {
    r.sendText(envelope('echo', 'y'.repeat(n)));
    const m = await r.message();
    assert.strictEqual(m.json.data, 'y'.repeat(n));
    const len = Buffer.byteLength(m.text);
    assert.strictEqual(m.frame.rsv1, len >= 64, `a ${len}-byte message ${m.frame.rsv1 ? 'was' : 'was not'} compressed`);
    seen[len >= 64 ? 'large' : 'small']++;
  }
  assert.ok(seen.small && seen.large, `both sides of the threshold were tried: ${JSON.stringify(seen)}`);

  // Large messages: compressed, smaller on the wire, and each one inflates
  // on its own (server_no_context_takeover).
  for (let i = 0; i < 3; i++) {
    const data = `message ${i}: ${'the quick brown fox jumps over the lazy dog. '.repeat(100)}`;
    r.sendText(envelope('echo', data));
    const m = await r.message();
    assert.strictEqual(m.frame.rsv1, true);
    assert.strictEqual(m.frame.rsv23, 0, 'RSV2/RSV3 stay clear');
    assert.ok(m.frame.payload.length < m.text.length / 4, `${m.frame.payload.length} bytes for ${m.text.length}`);
    assert.strictEqual(m.json.data, data);
  }

  // Compressed by the client (no context kept between them), large and small.
  for (const data of ['compressed by the client '.repeat(50), 'tiny', { deep: { list: [1, 2, 3] } }]) {
    r.sendCompressed(deflateMessage(envelope('echo', data)));
    assert.deepStrictEqual((await r.message()).json.data, data);
  }
  r.sendCompressed(deflateMessage(envelope('info', null)));
  const info = (await r.message()).json.data;
  assert.strictEqual(info.compressed, true, JSON.stringify(info));

  // A compressed message in three fragments (RSV1 on the first only), with
  // a PING between them.
  const frag = 'fragmented and compressed '.repeat(100);
  const bytes = deflateMessage(envelope('echo', frag));
  const third = Math.floor(bytes.length / 3);
  r.send(1, bytes.subarray(0, third), { rsv: 4, fin: false });
  r.send(9, Buffer.from('mid'));
  r.send(0, bytes.subarray(third, 2 * third), { fin: false });
  r.send(0, bytes.subarray(2 * third));
  const pong = await r.next((f) => f.opcode === 10);
  assert.strictEqual(pong.payload.toString(), 'mid');
  assert.strictEqual((await r.message()).json.data, frag);

  // RSV1 on a continuation frame is a protocol error (RFC 7692 §6.1).
  r.send(1, bytes.subarray(0, third), { rsv: 4, fin: false });
  r.send(0, bytes.subarray(third), { rsv: 4 });
  const close = await r.closeFrame();
  assert.ok(close, 'a CLOSE frame');
  assert.strictEqual(close.code, 1002);
  await servesFresh(server, track);
});

test('compression = false: the extension is not answered and nothing is compressed', async (t) => {
  const server = await startApp(t, { COMPRESSION: '0' });
  const track = tracker(t);
  const c = track(await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } }));
  assert.strictEqual(c.upgradeHeaders['sec-websocket-extensions'], undefined, JSON.stringify(c.upgradeHeaders));
  assert.strictEqual(c.ws.extensions, '');
  const big = 'not compressed '.repeat(400);
  c.emit('echo', big);
  assert.strictEqual((await c.next('echo')).data, big);
  const info = (await c.ack('info', null)).data;
  assert.strictEqual(info.compressed, false);
  assert.strictEqual(info.configCompression, false, 'getConfig().compression');

  const r = track(await rawWs(server.port, { extensions: `${PMD}; client_max_window_bits` }));
  assert.strictEqual(r.status, 101);
  assert.strictEqual(r.headers['sec-websocket-extensions'], undefined, r.head);
  r.sendText(envelope('echo', big));
  const m = await r.message();
  assert.strictEqual(m.frame.rsv1, false);
  assert.strictEqual(m.json.data, big);
  // RSV1 on a connection without the extension is a protocol error.
  r.sendCompressed(deflateMessage(envelope('echo', big)));
  const close = await r.closeFrame();
  assert.ok(close, 'the server closed with a CLOSE frame');
  assert.strictEqual(close.code, 1002);
  await servesFresh(server, track, { perMessageDeflate: false });
});

test('negotiation: client_no_context_takeover and server_max_window_bits=10 are echoed', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const r = track(await rawWs(server.port, { extensions: `${PMD}; client_no_context_takeover; server_max_window_bits=10` }));
  assert.strictEqual(r.status, 101, r.head);
  assert.deepStrictEqual(answered(r.headers), {
    server_no_context_takeover: true,
    client_no_context_takeover: true,
    server_max_window_bits: '10',
  }, r.head);

  // Data whose repeats are 3000 bytes apart: a 32 KB window would reach
  // back to them, a 1 KB one cannot; the server's frames must inflate with
  // a 10-bit window.
  const chunk = crypto.randomBytes(1500).toString('hex');
  const data = chunk + chunk + chunk;
  r.sendText(envelope('echo', data));
  const f = await r.next();
  assert.strictEqual(f.rsv1, true);
  const text = inflateMessage(f.payload, 10).toString();
  assert.strictEqual(JSON.parse(text).data, data);

  // The client resets its compressor for every message, as it said.
  for (let i = 0; i < 3; i++) {
    const d = `independent ${i} `.repeat(30);
    r.sendCompressed(deflateMessage(envelope('echo', d)));
    const m = await r.message(3000, 10);
    assert.strictEqual(m.json.data, d);
  }

  // Other window sizes: answered with the value asked, frames within it.
  for (const bits of [9, 12, 15]) {
    const rb = track(await rawWs(server.port, { extensions: `${PMD}; server_max_window_bits=${bits}` }));
    assert.deepStrictEqual(answered(rb.headers), { server_no_context_takeover: true, server_max_window_bits: String(bits) }, rb.head);
    rb.sendText(envelope('echo', data));
    const fb = await rb.next();
    assert.strictEqual(fb.rsv1, true);
    assert.strictEqual(JSON.parse(inflateMessage(fb.payload, bits).toString()).data, data, `window ${bits}`);
    rb.destroy();
  }
  server.alive();
});

test('negotiation: client_max_window_bits with a value is honoured and echoed', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const r = track(await rawWs(server.port, { extensions: `${PMD}; client_max_window_bits=9` }));
  assert.strictEqual(r.status, 101, r.head);
  const params = answered(r.headers);
  assert.deepStrictEqual(params, { server_no_context_takeover: true, client_max_window_bits: '9' }, r.head);
  // Compressed with a 9-bit window, with context kept between messages.
  const z = contextDeflater(9);
  t.after(() => z.close());
  for (let i = 0; i < 5; i++) {
    const d = `small window ${i} `.repeat(40);
    r.sendCompressed(await z.message(envelope('echo', d)));
    assert.strictEqual((await r.message()).json.data, d);
  }

  // Without a value the offer is accepted too.
  const r2 = track(await rawWs(server.port, { extensions: `${PMD}; client_max_window_bits` }));
  assert.strictEqual(r2.status, 101);
  const p2 = answered(r2.headers);
  assert.ok(p2 && p2.server_no_context_takeover === true, r2.head);
  server.alive();
});

test('negotiation: server_max_window_bits=8 alone is declined; an acceptable later offer is taken', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const r = track(await rawWs(server.port, { extensions: `${PMD}; server_max_window_bits=8` }));
  assert.strictEqual(r.status, 101, r.head);
  assert.strictEqual(r.headers['sec-websocket-extensions'], undefined, `declined: ${r.head}`);
  const big = 'uncompressed because declined '.repeat(40);
  r.sendText(envelope('echo', big));
  const m = await r.message();
  assert.strictEqual(m.frame.rsv1, false);
  assert.strictEqual(m.json.data, big);
  r.sendText(envelope('info', null));
  assert.strictEqual((await r.message()).json.data.compressed, false);

  // A list of offers: the first acceptable one wins.
  const r2 = track(await rawWs(server.port, {
    extensions: `${PMD}; server_max_window_bits=8, ${PMD}; client_no_context_takeover`,
  }));
  assert.deepStrictEqual(answered(r2.headers), { server_no_context_takeover: true, client_no_context_takeover: true }, r2.head);

  // Unknown parameters and other extensions are declined.
  for (const offer of [`${PMD}; no_such_param`, 'x-webkit-deflate-frame', `${PMD}; server_max_window_bits=16`]) {
    const r3 = track(await rawWs(server.port, { extensions: offer }));
    assert.strictEqual(r3.status, 101, r3.head);
    assert.strictEqual(r3.headers['sec-websocket-extensions'], undefined, `offer "${offer}" answered: ${r3.head}`);
  }
  server.alive();
});

test('context takeover: 20 similar messages from clients that keep their context all decode', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const similar = (i) => ({ seq: i, user: 'alice', room: 'general', text: `hello number ${i}, the same words as before again` });

  // The ws client keeps its compressor's context by default.
  const c = track(await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } }));
  assert.strictEqual(answered(c.upgradeHeaders).client_no_context_takeover, undefined);
  for (let i = 0; i < 20; i++) c.emit('echo', similar(i));
  for (let i = 0; i < 20; i++) assert.deepStrictEqual((await c.next('echo')).data, similar(i), `message ${i}`);

  // The same from the raw wire, where the sizes show the shared context:
  // after the first, each message is mostly back-references into earlier ones.
  const r = track(await rawWs(server.port, { extensions: PMD }));
  const z = contextDeflater(15);
  t.after(() => z.close());
  const sizes = [];
  for (let i = 0; i < 20; i++) {
    const bytes = await z.message(envelope('echo', similar(i)));
    sizes.push(bytes.length);
    r.sendCompressed(bytes);
  }
  for (let i = 0; i < 20; i++) assert.deepStrictEqual((await r.message()).json.data, similar(i), `raw message ${i}`);
  assert.ok(Math.max(...sizes.slice(1)) < sizes[0] / 2, `later messages use the context: sizes ${sizes}`);
  server.alive();
});

test('a deflate bomb closes 1009 without the server allocating it', async (t) => {
  const server = await startApp(t, { MAX_PAYLOAD: String(MAX_PAYLOAD) });
  const track = tracker(t);

  // Exactly maxPayloadSize once inflated is still a message.
  const prefix = '{"event":"echo","data":"';
  const exact = `${prefix}${'a'.repeat(MAX_PAYLOAD - prefix.length - 2)}"}`;
  assert.strictEqual(exact.length, MAX_PAYLOAD);
  const ok = track(await rawWs(server.port, { extensions: PMD }));
  ok.sendCompressed(deflateMessage(exact));
  assert.strictEqual((await ok.message(5000)).json.data.length, MAX_PAYLOAD - prefix.length - 2);

  // One byte more is too big.
  const over = track(await rawWs(server.port, { extensions: PMD }));
  over.sendCompressed(deflateMessage(`${prefix}${'a'.repeat(MAX_PAYLOAD - prefix.length - 1)}"}`));
  const close1 = await over.closeFrame();
  assert.ok(close1, 'a CLOSE frame');
  assert.strictEqual(close1.code, 1009);

  // The bomb: ~20 KB on the wire, 24 MB inflated.
  const bomb = deflateMessage(Buffer.concat([Buffer.from(prefix), Buffer.alloc(24 << 20, 0x61), Buffer.from('"}')]));
  assert.ok(bomb.length < 64 * 1024, `bomb of ${bomb.length} bytes`);
  await sleep(100);
  const mem0 = memory(server.proc.pid);
  const b = track(await rawWs(server.port, { extensions: PMD }));
  b.sendCompressed(bomb);
  const close = await b.closeFrame(5000);
  assert.ok(close, 'the bomb is answered with a CLOSE frame');
  assert.strictEqual(close.code, 1009, `close ${close.code} ${close.reason}`);
  await b.waitClose(5000);
  const mem1 = memory(server.proc.pid);
  const grew = Math.max(mem1.rss - mem0.rss, mem1.peak - mem0.peak);
  assert.ok(grew < 8 << 20, `the server's memory grew by ${(grew / 1048576).toFixed(1)} MB (rss ${mem0.rss} -> ${mem1.rss}, peak ${mem0.peak} -> ${mem1.peak})`);

  // The same bomb split over continuation frames.
  const half = bomb.length >> 1;
  const b2 = track(await rawWs(server.port, { extensions: PMD }));
  b2.send(1, bomb.subarray(0, half), { rsv: 4, fin: false });
  b2.send(0, bomb.subarray(half));
  const close2 = await b2.closeFrame(5000);
  assert.ok(close2, 'a CLOSE frame for the fragmented bomb');
  assert.strictEqual(close2.code, 1009);
  const mem2 = memory(server.proc.pid);
  assert.ok(mem2.peak - mem0.peak < 8 << 20, `peak grew by ${((mem2.peak - mem0.peak) / 1048576).toFixed(1)} MB`);

  // The first client is unaffected, and a fresh one is served.
  ok.sendText(envelope('echo', 'still fine'));
  assert.strictEqual((await ok.message()).json.data, 'still fine');
  await servesFresh(server, track);
});

test('a corrupt compressed frame closes 1007', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  // 0xff starts a final block of the reserved type 3: never valid deflate,
  // whatever random bytes follow.
  const junk = () => Buffer.concat([Buffer.from([0xff]), crypto.randomBytes(200)]);
  const cases = [
    ['text, random bytes', (r) => r.sendCompressed(junk())],
    // Binary: no UTF-8 check could be what closes it.
    ['binary, random bytes', (r) => r.send(2, junk(), { rsv: 4 })],
    // A complete stream with bytes after its end.
    ['data after the final block', (r) => r.sendCompressed(Buffer.concat([
      require('node:zlib').deflateRawSync(Buffer.from(envelope('echo', 'x'))), Buffer.from('trailing junk')]))],
    // Valid deflate, invalid UTF-8 once inflated: only we can see it (wslay
    // checks the UTF-8 of uncompressed text itself).
    ['text whose inflated bytes are not UTF-8', (r) => r.sendCompressed(
      require('node:zlib').deflateRawSync(Buffer.from([0x7b, 0xce, 0xba, 0xed, 0xa0, 0x80, 0x7d])))],
  ];
  for (const [what, send] of cases) {
    const r = track(await rawWs(server.port, { extensions: PMD }));
    r.sendText(envelope('echo', 'before'));
    assert.strictEqual((await r.message()).json.data, 'before');
    send(r);
    const close = await r.closeFrame();
    assert.ok(close, `${what}: a CLOSE frame`);
    assert.strictEqual(close.code, 1007, `${what}: close ${close.code} ${close.reason}`);
    await r.waitClose();
    await servesFresh(server, track);
  }
});

test('broadcast: every deflate recipient decodes it; recipients with the same parameters get the same bytes', async (t) => {
  const server = await startApp(t);
  const track = tracker(t);
  const a = track(await rawWs(server.port, { extensions: PMD }));
  const b = track(await rawWs(server.port, { extensions: `${PMD}; client_no_context_takeover` }));
  const w10 = track(await rawWs(server.port, { extensions: `${PMD}; server_max_window_bits=10` }));
  const plain = track(await rawWs(server.port));
  const data = { text: 'broadcast to everyone '.repeat(60), chunk: crypto.randomBytes(1200).toString('hex').repeat(2) };
  a.sendText(envelope('shout', data));
  const fa = await a.next();
  const fb = await b.next();
  const f10 = await w10.next();
  const fp = await plain.next();
  for (const [name, f, bits] of [['a', fa, 15], ['b', fb, 15], ['w10', f10, 10]]) {
    assert.strictEqual(f.rsv1, true, `${name} got it compressed`);
    assert.deepStrictEqual(JSON.parse(inflateMessage(f.payload, bits).toString()), { event: 'shouted', data }, name);
  }
  assert.strictEqual(fp.rsv1, false);
  assert.deepStrictEqual(JSON.parse(fp.payload.toString()), { event: 'shouted', data });
  assert.ok(fa.payload.equals(fb.payload), 'the same compressed bytes for recipients with the same server parameters');
  server.alive();
});

test('over wss://: TLS and permessage-deflate together', async (t) => {
  const server = await startApp(t, { TLS_CERT: cert.cert, TLS_KEY: cert.key });
  const track = tracker(t);
  const c = track(await wsConnect(`wss://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } }));
  assert.ok(answered(c.upgradeHeaders), JSON.stringify(c.upgradeHeaders));
  const big = 'secure and compressed '.repeat(2000);
  c.emit('echo', big);
  assert.strictEqual((await c.next('echo', 4000)).data, big);
  const info = (await c.ack('info', null)).data;
  assert.strictEqual(info.secure, true, JSON.stringify(info));
  assert.strictEqual(info.compressed, true, JSON.stringify(info));

  const r = track(await rawWs(server.port, { extensions: PMD, secure: true }));
  assert.strictEqual(r.status, 101, r.head);
  r.sendCompressed(deflateMessage(envelope('echo', big)));
  const m = await r.message(4000);
  assert.strictEqual(m.frame.rsv1, true);
  assert.strictEqual(m.json.data, big);

  // A bomb over TLS is refused the same way.
  r.sendCompressed(deflateMessage(Buffer.concat([Buffer.from('{"event":"echo","data":"'), Buffer.alloc(8 << 20, 0x62), Buffer.from('"}')])));
  const close = await r.closeFrame(5000);
  assert.ok(close, 'a CLOSE frame');
  assert.strictEqual(close.code, 1009);
  server.alive();
});
