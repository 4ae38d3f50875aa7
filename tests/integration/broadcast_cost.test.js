'use strict';
// A broadcast builds each wire form once and shares the bytes (issue 2 point
// 9, issue 3): framesEncoded grows by one per form, not per recipient.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, connect, fixture } = require('./harness');
const { T, tcpConnect } = require('./tcpwire');

async function encoded(c) {
  c.emit('count');
  return (await c.next('count')).data;
}

test('broadcast to 20 WebSocket clients encodes one frame; a mixed room one WebSocket and one TCP frame', async (t) => {
  const server = await startServer(fixture('fanout.lua'));
  t.after(() => server.stop());
  const tcpPort = Number((await server.waitForLog(/listening on port (\d+) \(tcp\)/))[1]);
  const ws = [];
  for (let i = 0; i < 20; i++) ws.push(await connect(server.port));
  const ctl = ws[0];

  let before = await encoded(ctl);
  ctl.emit('everyone', { n: 1 });
  for (const c of ws) assert.deepStrictEqual((await c.next('news')).data, { n: 1 });
  let after = await encoded(ctl);
  // +1 for the news frame, +1 for the 'count' reply itself
  assert.strictEqual(after - before, 2, 'one frame for 20 recipients (plus the count reply)');

  const tcp = [];
  for (let i = 0; i < 5; i++) {
    const c = await tcpConnect(tcpPort);
    await c.next(T.CONNECT);
    c.join('r');
    await c.next('joined-room');
    tcp.push(c);
  }
  for (const c of ws.slice(1, 6)) {
    c.emit('join-room', 'r');
    await c.next('joined-room');
  }
  before = await encoded(ctl);
  ctl.emit('room', { n: 2 });
  for (const c of tcp) assert.deepStrictEqual((await c.next('news')).json(), { n: 2 });
  for (const c of ws.slice(1, 6)) assert.deepStrictEqual((await c.next('news')).data, { n: 2 });
  after = await encoded(ctl);
  assert.strictEqual(after - before, 3, 'one WebSocket frame and one TCP frame for 10 members (plus the count reply)');
  for (const c of tcp) c.destroy();
  for (const c of ws) await c.close();
});
