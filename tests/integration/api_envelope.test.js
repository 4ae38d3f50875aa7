'use strict';
// The envelope and JSON <-> Lua values, through real handlers of
// fixtures/api_app.lua.
const test = require('node:test');
const assert = require('node:assert');
const { apiServer, record, binaryMessage } = require('./apihelp');

test('envelope and JSON types', async (t) => {
  const h = await apiServer(t);

  await t.test('strings with unicode and escapes round-trip exactly', async () => {
    const c = await h.client();
    const strings = [
      '',
      'héllo wörld',
      '☃ snowman, 𝄞 clef, 😀 emoji, 中文, עברית',
      'quote " backslash \\ slash / ',
      'controls \n \r \t \b \f \u0001 \u001f \u007f',
      'nul \u0000 inside',
      '\u2028\u2029',
    ];
    for (const s of strings) {
      c.emit('echo', s);
      const m = await c.next('echo');
      assert.strictEqual(m.data, s, `string ${JSON.stringify(s)}`);
    }
    // Escaped forms on the wire decode to the same characters.
    c.sendRaw('{"event":"echo","data":"\\u00e9\\ud834\\udd1e\\n\\"\\\\\\/"}');
    assert.strictEqual((await c.next('echo')).data, 'é𝄞\n"\\/');
    await c.close();
  });

  await t.test('numbers: integers up to 2^53 exact, floats exact', async () => {
    const c = await h.client();
    const numbers = [0, 1, -1, 42, 2 ** 31, 2 ** 32 + 1, 2 ** 53, -(2 ** 53), 2 ** 53 - 1, 123456789012345,
      1234567890123456, 0.1, -2.5, 3.141592653589793, 1 / 3, 1e-7, 2.5e-10, 1e300, 1.7976931348623157e308,
      5e-324, 1e21, 123.456];
    c.emit('echo', numbers);
    const m = await c.next('echo');
    assert.deepStrictEqual(m.data, numbers);
    // Integers are sent as integers, not in exponent form.
    c.sendRaw('{"event":"echo","data":[9007199254740992,-9007199254740992,100]}');
    const raw = await new Promise((resolve) => c.ws.once('message', (d) => resolve(d.toString())));
    assert.strictEqual(raw, '{"event":"echo","data":[9007199254740992,-9007199254740992,100]}');
    await c.next('echo');
    await c.close();
  });

  await t.test('booleans, null inside arrays and objects, empty {} vs [] and nesting round-trip', async () => {
    const c = await h.client();
    const value = {
      t: true,
      f: false,
      arr: [1, null, 'x', null],
      onlyNull: [null],
      obj: { a: null, b: { c: null } },
      emptyObj: {},
      emptyArr: [],
      nested: { deep: [[[], {}], [{ x: [[[1]]] }]] },
      mixed: [{}, [], null, 0, '', false],
    };
    c.emit('echo', value);
    assert.deepStrictEqual((await c.next('echo')).data, value);
    // The exact text: key order aside, [] stays [] and {} stays {}.
    for (const [sent, want] of [['[]', '[]'], ['{}', '{}'], ['[[]]', '[[]]'], ['[{}]', '[{}]'], ['{"a":[]}', '{"a":[]}'],
      ['null', 'null'], ['[null,null]', '[null,null]'], ['{"k":null}', '{"k":null}'], ['true', 'true'], ['"s"', '"s"']]) {
      const got = new Promise((resolve) => c.ws.once('message', (d) => resolve(d.toString())));
      c.sendRaw(`{"event":"echo","data":${sent}}`);
      assert.strictEqual(await got, `{"event":"echo","data":${want}}`, `data ${sent}`);
      await c.next('echo');
    }
    await c.close();
  });

  await t.test('decoded values have the documented Lua types (stelar.null, marked arrays)', async () => {
    const c = await h.client();
    c.emit('types', { n: null, a: [], o: {}, s: 's', i: 1, b: false, arr: [1] });
    assert.deepStrictEqual((await c.next('types')).data, {
      n: 'null', a: 'array', o: 'table', s: 'string', i: 'number', b: 'boolean', arr: 'array',
    });
    await c.close();
  });

  await t.test('values built in Lua encode as documented (stelar.null, stelar.array, {} as object)', async () => {
    const c = await h.client();
    c.emit('built');
    const m = await c.next('built');
    assert.deepStrictEqual(m.data, {
      nullInArray: [1, null, 3],
      nullInObject: { a: null, b: 1 },
      emptyObject: {},
      emptyArray: [],
      emptyArray2: [],
      maxInt: 2 ** 53,
      minInt: -(2 ** 53),
      float: 0.1,
      third: 1 / 3,
      huge: 1e300,
      str: 'héllo ☃ 𝄞 "q" \\ \n\t\u0001',
      yes: true,
      no: false,
      nested: { x: [[], {}, { y: [1, 2] }] },
    });
    await c.close();
  });

  await t.test('missing data gives ctx.data == nil; data null gives stelar.null', async () => {
    const c = await h.client();
    c.sendRaw('{"event":"describe"}');
    assert.deepStrictEqual((await c.next('described')).data,
      { type: 'nil', isNil: true, isNull: false, event: 'describe', isBinary: false });
    c.sendRaw('{"event":"describe","data":null}');
    assert.deepStrictEqual((await c.next('described')).data,
      { type: 'userdata', isNil: false, isNull: true, event: 'describe', isBinary: false });
    c.sendRaw('{"data":5,"event":"describe"}');
    assert.deepStrictEqual((await c.next('described')).data,
      { type: 'number', isNil: false, isNull: false, event: 'describe', isBinary: false });
    // An emit of nil data sends data: null.
    c.sendRaw('{"event":"echo"}');
    const raw = await new Promise((resolve) => c.ws.once('message', (d) => resolve(d.toString())));
    assert.strictEqual(raw, '{"event":"echo","data":null}');
    await c.close();
  });

  await t.test('registering a handler again under the same name replaces it', async () => {
    const c = await h.client();
    c.emit('dup');
    assert.strictEqual((await c.next('dup')).data, 'second');
    assert.ok(await c.nothing((m) => m.event === 'dup', 200), 'both handlers ran');
    assert.strictEqual((await c.ack('dup-ack')).data, 'second');
    await c.close();
  });

  await t.test('onAll runs after the specific handler, with (event, ctx), also for events with no handler', async () => {
    const c = await h.client();
    c.emit('want-all');
    await c.next('want-all');
    // want-all itself went through onAll after the metadata was set.
    assert.deepStrictEqual((await c.next('all')).data,
      { event: 'want-all', ctxEvent: 'want-all', onRanFor: '<nil>', isBinary: false, dataType: 'nil' });
    const seen = record(c);
    c.emit('echo', { x: 1 });
    const all1 = await c.next('all');
    assert.deepStrictEqual(all1.data,
      { event: 'echo', ctxEvent: 'echo', onRanFor: 'echo', isBinary: false, dataType: 'table' });
    const order = seen.map((s) => s.msg.event);
    assert.deepStrictEqual(order, ['echo', 'all'], 'the specific handler ran first');
    await c.next('echo');

    c.emit('no-such-handler', 'x');
    assert.deepStrictEqual((await c.next('all')).data,
      { event: 'no-such-handler', ctxEvent: 'no-such-handler', onRanFor: '<nil>', isBinary: false, dataType: 'string' });

    c.sendRaw(binaryMessage('unhandled-bin', Buffer.from([1, 2, 3])));
    assert.deepStrictEqual((await c.next('all')).data,
      { event: 'unhandled-bin', ctxEvent: 'unhandled-bin', onRanFor: '<nil>', isBinary: true, dataType: 'string' });

    // Reserved events never reach handlers, onAll included.
    c.emit('join-room', 'all-room');
    await c.next('joined-room');
    c.emit('ping', 1);
    c.emit('disconnect');
    c.emit('echo', 'after');
    await c.next('echo');
    await c.next('all');
    assert.deepStrictEqual(seen.filter((s) => s.msg.event === 'all').map((s) => s.msg.data.event),
      ['echo', 'no-such-handler', 'unhandled-bin', 'echo'], 'onAll saw a reserved event');
    await c.close();
  });
});
