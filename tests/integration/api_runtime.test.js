'use strict';
// Runtime helpers: timers, stelar.now, stelar.json, stelar.log,
// stelar.shared, stelar.version, stelar.sleep outside a handler; through
// fixtures/api_app.lua and api_sleep_top.lua.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const { apiServer, lineOf, sleep } = require('./apihelp');
const { BIN, fixture, runToExit } = require('./harness');

test('runtime helpers', async (t) => {
  const h = await apiServer(t);

  await t.test('stelar.setTimeout fires once, after its delay', async () => {
    const c = await h.client();
    const start = Date.now();
    c.emit('timeout', { ms: 80, tag: 't1' });
    const m = await c.next((x) => x.event === 'timeout-fired' && x.data.tag === 't1', 2000);
    const took = Date.now() - start;
    assert.strictEqual(m.data.ms, 80);
    assert.ok(m.data.elapsed >= 79, `fired after ${m.data.elapsed} ms (Lua clock)`);
    assert.ok(took >= 75 && took < 1500, `fired after ${took} ms`);
    assert.ok(await c.nothing((x) => x.event === 'timeout-fired', 200), 'a timeout fired twice');
    await c.close();
  });

  await t.test('stelar.clearTimer stops a timeout before it fires', async () => {
    const c = await h.client();
    c.emit('timeout-cleared', { tag: 'cl' });
    assert.strictEqual((await c.next('timeout-cleared')).data, 'cl');
    assert.ok(await c.nothing((x) => x.event === 'cleared-fired', 200), 'a cleared timeout fired');
    await c.close();
  });

  await t.test('stelar.setInterval ticks until clearTimer, then stops', async () => {
    const c = await h.client();
    const start = Date.now();
    c.emit('interval', { ms: 20, count: 5 });
    const ticks = [];
    for (let i = 0; i < 5; i++) ticks.push((await c.next('tick', 1000)).data);
    assert.deepStrictEqual(ticks, [1, 2, 3, 4, 5]);
    const took = Date.now() - start;
    assert.ok(took >= 95, `5 ticks of 20 ms took ${took} ms`);
    assert.ok(await c.nothing((x) => x.event === 'tick', 200), 'the interval ticked after clearTimer');
    await c.close();
  });

  await t.test('stelar.now() is wall-clock ms, close to Date.now()', async () => {
    const c = await h.client();
    const before = Date.now();
    const now = (await c.ack('now')).data;
    const after = Date.now();
    assert.strictEqual(typeof now, 'number');
    assert.ok(now >= before - 50 && now <= after + 50, `stelar.now() ${now} not within [${before}, ${after}]`);
    await c.close();
  });

  await t.test('stelar.json.encode / decode', async () => {
    const c = await h.client();
    const r = (await c.ack('json')).data;
    const { encodeFunctionErr, decodeBadErr, ...rest } = r;
    assert.deepStrictEqual(rest, {
      object: '{"a":1}',
      array: '[1,2,3]',
      emptyObject: '{}',
      emptyArray: '[]',
      nullValue: 'null',
      string: '"a\\"b"',
      number: '9007199254740992',
      decodedNull: true,
      decodedString: 'é',
      decodedLen: 3,
      reencodedEmpty: '[]{}',
      roundTrip: '[1,"two",{"three":[3]},null,true]',
      encodeFunctionOk: false,
      decodeBadOk: false,
    });
    assert.match(encodeFunctionErr, /cannot encode a value of type function to JSON/);
    assert.match(decodeBadErr, /invalid JSON/);
    await c.close();
  });

  await t.test('stelar.log.info writes a line with its fields; warn too', async () => {
    const c = await h.client();
    c.emit('log', { tag: 'L1' });
    await c.next('log');
    const m = await h.server.waitForLog(/^\S+ info api log line L1( .*)$/m);
    const fields = m[1];
    assert.match(fields, / count=3( |$)/);
    assert.match(fields, / who="lua"( |$)/);
    assert.match(fields, / list=\[1,2\]( |$)/);
    await h.server.waitForLog(/^\S+ warn api warn line L1$/m);
    await c.close();
  });

  await t.test('stelar.shared is a table that keeps state; stelar.version is the binary\'s version', async () => {
    const c = await h.client();
    const a = (await c.ack('meta')).data;
    const b = (await c.ack('meta')).data;
    const version = execFileSync(BIN, ['--version']).toString().trim();
    assert.strictEqual(a.sharedType, 'table');
    assert.strictEqual(b.counter, a.counter + 1);
    assert.strictEqual(a.versionType, 'string');
    assert.strictEqual(`stelar-lua ${a.version}`, version);
    assert.strictEqual(a.nullType, 'userdata');
    assert.strictEqual(a.arrayType, 'function');
    await c.close();
  });

  await t.test('a timer created in a handler keeps running after its client left', async () => {
    const a = await h.client();
    const b = await h.client();
    a.emit('timeout', { ms: 150, tag: 'orphan' });
    await sleep(20);
    await a.close();
    const m = await b.next((x) => x.event === 'timeout-fired' && x.data.tag === 'orphan', 2000);
    assert.ok(m.data.elapsed >= 149);
    await b.close();
  });
});

test('stelar.sleep at the top level is an error that says so', async () => {
  const file = fixture('api_sleep_top.lua');
  const r = await runToExit(file);
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + `exited 0:\n${r.out}`);
  assert.match(r.out, new RegExp(`api_sleep_top\\.lua:${lineOf('sleeptop', file)}: stelar\\.sleep can only wait inside a handler`));
  assert.doesNotMatch(r.out, /listening on port/);
});
