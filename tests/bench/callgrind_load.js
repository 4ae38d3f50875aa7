'use strict';
// The load of `scripts/bench --callgrind`: one WebSocket client sends
// `count` echo events of bench_server.lua (~64-byte JSON data), keeping 64 in
// flight, and exits once every echo is back. A count, not a duration, so
// that the server's instruction total is the same from run to run.
//   node callgrind_load.js PORT COUNT
const WebSocket = require('ws');

const [port, count] = process.argv.slice(2).map(Number);
const DEPTH = 64;
const message = JSON.stringify({ event: 'echo', data: { t: 0, p: 'x'.repeat(40) } });
const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
let sent = 0;
let received = 0;
const timer = setTimeout(() => {
  console.error(`callgrind_load: ${received} of ${count} echoes in 600 s`);
  process.exit(1);
}, 600000);
const send = () => { ws.send(message); sent++; };
ws.on('open', () => { while (sent < Math.min(DEPTH, count)) send(); });
ws.on('message', () => {
  received++;
  if (sent < count) send();
  if (received === count) {
    clearTimeout(timer);
    ws.close();
  }
});
ws.on('error', (e) => {
  console.error(`callgrind_load: ${e.message}`);
  process.exit(1);
});
