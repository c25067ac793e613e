// Problems `sluice check` reports at the key the user wrote, with its name, and inputs that must
// be refused (or accepted) as such rather than dropped, crashed on or misread.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, loadConfigFile, parseConfig } from '../../../src/config/load.ts';

const POOL = 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n';

function linesOf(t: ExecutionContext, text: string): string[] {
  return t.throws(() => parseConfig(text, 'c.yaml'), { instanceOf: ConfigError })?.lines ?? [];
}

test('a duplicate key is named by its path', (t) => {
  t.deepEqual(linesOf(t, `timeouts:\n  connect: 1s\n  connect: 2s\n${POOL}`), [
    'c.yaml:3:3: timeouts.connect: duplicate key',
  ]);
  t.deepEqual(linesOf(t, 'pools:\n  web:\n    servers:\n      - {address: a:1, address: b:2}\n'), [
    'c.yaml:4:24: pools.web.servers[0].address: duplicate key',
  ]);
});

test('a cross-field problem is told at the key the file has', (t) => {
  t.deepEqual(linesOf(t, `limits:\n  maxHead: 4KiB\n${POOL}`), [
    'c.yaml:2:3: limits.maxHead: must not be smaller than maxRequestLine (4096 bytes < 8192 bytes)',
  ]);
  t.deepEqual(linesOf(t, `cache: {maxBytes: 1024}\n${POOL}`), [
    'c.yaml:1:9: cache.maxBytes: must not be smaller than maxObjectBytes (1024 bytes < 8388608 bytes)',
  ]);
  t.deepEqual(linesOf(t, `retries: {backoffMax: 10ms}\n${POOL}`), [
    'c.yaml:1:11: retries.backoffMax: must not be smaller than backoffMin (10ms < 25ms)',
  ]);
  t.deepEqual(linesOf(t, `${POOL}    health: {interval: 500ms}\n`), [
    'c.yaml:4:14: pools.web.health.interval: must be greater than timeout (500ms <= 1s)',
  ]);
  // Both written, or only the smaller one: at the smaller one, as before.
  t.deepEqual(linesOf(t, `limits: {maxHead: 4KiB, maxRequestLine: 8KiB}\n${POOL}`), [
    'c.yaml:1:25: limits.maxRequestLine: must not be larger than maxHead (8192 bytes > 4096 bytes)',
  ]);
});

test('unknown YAML tags and merge keys are errors, with the line', (t) => {
  t.deepEqual(linesOf(t, `listen: !env 127.0.0.1:25080\n${POOL}`), ['c.yaml:1:9: Unresolved tag: !env']);
  t.deepEqual(
    linesOf(t, 'pools:\n  web: &w\n    servers: [127.0.0.1:1]\n  api:\n    <<: *w\nroutes: [{pool: web}]\n'),
    [
      'c.yaml:4:3: pools.api.servers: required',
      'c.yaml:5:5: pools.api["<<"]: merge keys (<<) are not supported',
    ],
  );
});

test('zero in any spelling where zero is allowed', (t) => {
  for (const zero of ['0', '0s', '0m', '0m0s', '0h0m0s0ms']) {
    t.is(parseConfig(`timeouts: {shutdownDelay: ${zero}}\n${POOL}`).timeouts.shutdownDelay, 0, zero);
  }
  t.deepEqual(linesOf(t, `timeouts: {connect: 0m0s}\n${POOL}`), [
    'c.yaml:1:12: timeouts.connect: must be greater than 0 (got "0m0s")',
  ]);
  t.deepEqual(linesOf(t, `timeouts: {shutdownDelay: -1s}\n${POOL}`), [
    'c.yaml:1:12: timeouts.shutdownDelay: must be greater than 0 (got "-1s")',
  ]);
});

test('a second route with the same host and path is refused, naming it', (t) => {
  const pools = 'pools: {web: {servers: [127.0.0.1:1]}, api: {servers: [127.0.0.1:2]}}\n';
  t.deepEqual(linesOf(t, `${pools}routes:\n  - {path: /a, pool: web}\n  - {path: //a, pool: api}\n`), [
    'c.yaml:4:5: routes[1]: same host and path as routes[0] (* /a): it would never match',
  ]);
});

test('a pool named __proto__ is refused by name', (t) => {
  t.deepEqual(linesOf(t, 'pools: {__proto__: {servers: [127.0.0.1:1]}}\n'), [
    'c.yaml:1:9: pools.__proto__: invalid pool name (a reserved word)',
  ]);
});

test('a huge list is one problem; thousands of bad items show the first hundred', (t) => {
  const list = (n: number) => `pools:\n  web:\n    servers:\n${'      - x\n'.repeat(n)}`;
  t.deepEqual(linesOf(t, list(130_000)), ['c.yaml:3:5: pools.web.servers: at most 10000 items (got 130000)']);
  const lines = linesOf(t, list(5000));
  t.is(lines.length, 101);
  t.is(lines[99], 'c.yaml:103:9: pools.web.servers[99].address: expected host:port');
  t.is(lines[100], 'c.yaml: and 4900 more problems');
});

test('bytes that are not UTF-8 are refused at their line and column', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-utf8-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'c.yaml');
  writeFileSync(
    path,
    Buffer.from('pools:\n  web:\n    servers:\n      - {address: a:1, name: "ab\xff"}\n', 'latin1'),
  );
  const error = t.throws(() => loadConfigFile(path), { instanceOf: ConfigError });
  t.deepEqual(error?.lines, [`${path}:4:33: the file is not UTF-8 (an invalid byte)`]);
});
