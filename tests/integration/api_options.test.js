'use strict';
// Start-up errors for bad options, and --check.
const test = require('node:test');
const assert = require('node:assert');
const { lineOf } = require('./apihelp');
const { fixture, runToExit } = require('./harness');

test('an unknown option name: non-zero exit, a message naming it, the script\'s file:line', async () => {
  const file = fixture('api_badopt_unknown.lua');
  const r = await runToExit(file);
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + `started with an unknown option:\n${r.out}`);
  assert.match(r.out, /unknown option 'maxRoomPerClient'/);
  assert.match(r.out, new RegExp(`api_badopt_unknown\\.lua:${lineOf('unknownopt', file)}:`));
  assert.doesNotMatch(r.out, /listening on port/);
});

test('port = "x": non-zero exit, a message naming the option and the script\'s file:line', async () => {
  const file = fixture('api_badopt_type.lua');
  const r = await runToExit(file);
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + `started with port = "x":\n${r.out}`);
  assert.match(r.out, /option 'port' must be a number/);
  assert.match(r.out, new RegExp(`api_badopt_type\\.lua:${lineOf('badtype', file)}:`));
  assert.doesNotMatch(r.out, /listening on port/);
});

test('other wrong types and values name the option', async () => {
  const file = fixture('api_badopt_env.lua');
  const cases = [
    ['maxConnections', '-1'],
    ['gracefulShutdown', '"yes"'],
    ['healthEndpoint', '"health"'],
    ['logger', '"loud"'],
    ['busyPoll', '-1'],
    ['busyPoll', '"fast"'],
    ['busyPoll', 'true'],
    ['busyPoll', '3600000001'],
  ];
  const results = await Promise.all(cases.map(([name, value]) =>
    runToExit(file, { env: { API_OPT_NAME: name, API_OPT_JSON: value } })));
  const line = lineOf('envopt', file);
  results.forEach((r, i) => {
    const [name, value] = cases[i];
    assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + `${name} = ${value} started:\n${r.out}`);
    assert.match(r.out, new RegExp(`'${name}'`), `${name} = ${value}: the message does not name the option:\n${r.out}`);
    assert.match(r.out, new RegExp(`api_badopt_env\\.lua:${line}:`), `${name} = ${value}: no file:line:\n${r.out}`);
    assert.doesNotMatch(r.out, /listening on port/);
  });
});

test('--check good.lua runs the top level, binds nothing, exits 0', async () => {
  const file = fixture('api_check_good.lua');
  const r = await runToExit(file, { args: ['--check'] });
  assert.strictEqual(r.code, 0, r.out);
  assert.match(r.out, /CHECK TOP LEVEL RAN/);
  assert.ok(r.out.includes(`${file}: ok`), r.out);
  assert.doesNotMatch(r.out, /listening on port/);
  assert.doesNotMatch(r.out, /CHECK START CALLBACK/, 'start() ran its callback under --check');
  // The API app checks too.
  const app = await runToExit(fixture('api_app.lua'), { args: ['--check'] });
  assert.strictEqual(app.code, 0, app.out);
  assert.doesNotMatch(app.out, /listening on port/);
});

test('--check with a syntax error exits non-zero with file:line', async () => {
  const file = fixture('api_check_bad.lua');
  const r = await runToExit(file, { args: ['--check'] });
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + r.out);
  assert.match(r.out, new RegExp(`api_check_bad\\.lua:${lineOf('syntax', file)}:`));
  assert.doesNotMatch(r.out, /listening on port/);
});

test('--check with an error at the top level exits non-zero with file:line', async () => {
  const file = fixture('api_check_runtime_error.lua');
  const r = await runToExit(file, { args: ['--check'] });
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + r.out);
  assert.match(r.out, new RegExp(`api_check_runtime_error\\.lua:${lineOf('toperror', file)}: attempt to index`));
});

test('--check on a bad option exits non-zero naming it', async () => {
  const r = await runToExit(fixture('api_badopt_unknown.lua'), { args: ['--check'] });
  assert.ok(r.code > 0 && r.signal === null, `exit ${r.code}/${r.signal}; ` + r.out);
  assert.match(r.out, /unknown option 'maxRoomPerClient'/);
});
