'use strict';
// A client quiet for over a second gives back its parser state and its
// reusable ctx (issue 4's idle memory); when it speaks again everything is
// made anew, and a frame or message left half-sent across the pause is
// still read whole (the state is kept then). Raw sockets, so the pause can
// fall anywhere in the byte stream.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { startServer, fixture, frame, upgradeRequest, parseFrames, sleep, withTimeout } = require('./harness');
const { startApp, wsConnect } = require('./tlshelp');

const QUIET_MS = 1600; // past the server's one-second idle release and a 100 ms tick

// A raw WebSocket client past its 101; frames() parses what came after it.
async function rawClient(port) {
  const sock = net.connect(port, '127.0.0.1');
  let data = Buffer.alloc(0);
  sock.on('data', (d) => { data = Buffer.concat([data, d]); });
  await new Promise((resolve, reject) => { sock.on('connect', resolve); sock.on('error', reject); });
  sock.write(upgradeRequest());
  await withTimeout((async () => { while (!data.includes('\r\n\r\n')) await sleep(10); })(), 2000, 'the 101');
  const head = () => data.indexOf('\r\n\r\n') + 4;
  return {
    sock,
    frames: () => parseFrames(data.subarray(head())),
    async echoes(n, ms = 2000) {
      const start = Date.now();
      for (;;) {
        const got = this.frames().filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload));
        if (got.length >= n) return got;
        if (Date.now() - start > ms) throw new Error(`${got.length} of ${n} echoes within ${ms} ms`);
        await sleep(10);
      }
    },
  };
}

const echo = (n) => JSON.stringify({ event: 'echo', data: n });

test('idle release: quiet clients are answered afterwards, and a pause inside a frame or message loses nothing', async (t) => {
  const server = await startServer(fixture('echo.lua'));
  const socks = [];
  t.after(async () => { socks.forEach((s) => s.destroy()); await server.stop(); });

  // Silent from the start, then speaks.
  const silent = await rawClient(server.port);
  socks.push(silent.sock);
  // Spoke, fell quiet, speaks again.
  const again = await rawClient(server.port);
  socks.push(again.sock);
  again.sock.write(frame(1, echo(1)));
  assert.deepStrictEqual((await again.echoes(1))[0], { event: 'echo', data: 1 });
  // Quiet in the middle of a frame header, and in the middle of a payload.
  const midHeader = await rawClient(server.port);
  socks.push(midHeader.sock);
  const f1 = frame(1, echo(2));
  midHeader.sock.write(f1.subarray(0, 1));
  const midPayload = await rawClient(server.port);
  socks.push(midPayload.sock);
  const f2 = frame(1, echo(3));
  midPayload.sock.write(f2.subarray(0, 10));
  // Quiet between the fragments of one message.
  const midMessage = await rawClient(server.port);
  socks.push(midMessage.sock);
  const whole = echo(4);
  midMessage.sock.write(frame(1, whole.slice(0, 7), { fin: false }));

  await sleep(QUIET_MS);
  silent.sock.write(frame(1, echo(0)));
  again.sock.write(frame(1, echo(5)));
  midHeader.sock.write(f1.subarray(1));
  midPayload.sock.write(f2.subarray(10));
  midMessage.sock.write(frame(0, whole.slice(7)));

  assert.deepStrictEqual(await silent.echoes(1), [{ event: 'echo', data: 0 }]);
  assert.deepStrictEqual(await again.echoes(2), [{ event: 'echo', data: 1 }, { event: 'echo', data: 5 }]);
  assert.deepStrictEqual(await midHeader.echoes(1), [{ event: 'echo', data: 2 }]);
  assert.deepStrictEqual(await midPayload.echoes(1), [{ event: 'echo', data: 3 }]);
  assert.deepStrictEqual(await midMessage.echoes(1), [{ event: 'echo', data: 4 }]);
  // A PING after the pause is answered too, and a close is a clean close.
  silent.sock.write(frame(9, 'still there?'));
  await withTimeout((async () => { while (!silent.frames().some((f) => f.opcode === 10)) await sleep(10); })(), 2000, 'the PONG');
  assert.strictEqual(silent.frames().find((f) => f.opcode === 10).payload.toString(), 'still there?');
  silent.sock.write(frame(8, Buffer.from([0x03, 0xe8])));
  await withTimeout((async () => { while (!silent.frames().some((f) => f.opcode === 8)) await sleep(10); })(), 2000, 'the CLOSE');
  assert.strictEqual(silent.frames().find((f) => f.opcode === 8).code, 1000);
});

test('idle release with compression: a client that keeps its deflate context across the pause is still understood', async (t) => {
  const server = await startApp(t); // compression on
  const c = await wsConnect(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } });
  t.after(() => c.ws.terminate());
  assert.match(c.ws.extensions, /^permessage-deflate/);
  // The client keeps its compressor's window (no client_no_context_takeover),
  // so the second message is mostly a back-reference into the first: the
  // server's inflater must have lived through the pause.
  const data = { text: 'the same words again and again '.repeat(40) };
  c.emit('echo', data);
  assert.deepStrictEqual((await c.next('echo')).data, data);
  await sleep(QUIET_MS);
  c.emit('echo', data);
  assert.deepStrictEqual((await c.next('echo')).data, data);
  await sleep(QUIET_MS);
  c.emit('echo', { text: 'and something new' });
  assert.deepStrictEqual((await c.next('echo')).data, { text: 'and something new' });
});
