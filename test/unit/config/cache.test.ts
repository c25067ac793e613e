// The top-level `cache` section: limits of the shared response cache and their error messages.
import test, { type ExecutionContext } from 'ava';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

const ONE_POOL = 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n';

function issuesOf(t: ExecutionContext, text: string): string[] {
  const error = t.throws(() => parseConfig(text), { instanceOf: ConfigError });
  return error?.issues ?? [];
}

const rejects = test.macro({
  exec(t, text: string, expected: string[]) {
    t.deepEqual(issuesOf(t, text), expected);
  },
  title: (given = '') => `rejects: ${given}`,
});

test('defaults: 256 MiB in all, 8 MiB per object, an hour of stale-if-error, 5 s lock', (t) => {
  const config = parseConfig(ONE_POOL);
  t.deepEqual(config.cache, {
    maxBytes: 256 * 1024 * 1024,
    maxObjectBytes: 8 * 1024 * 1024,
    staleIfError: 3_600_000,
    lockTimeout: 5000,
    storeWithCookie: false,
  });
});

test('sizes and durations in file units; an empty section takes the defaults', (t) => {
  const config = parseConfig(
    `cache: { maxBytes: 1GiB, maxObjectBytes: 64MiB, staleIfError: 10m, lockTimeout: 250ms }\n${ONE_POOL}`,
  );
  t.deepEqual(config.cache, {
    maxBytes: 1024 ** 3,
    maxObjectBytes: 64 * 1024 ** 2,
    staleIfError: 600_000,
    lockTimeout: 250,
    storeWithCookie: false,
  });
  t.deepEqual(parseConfig(`cache:\n${ONE_POOL}`).cache, parseConfig(ONE_POOL).cache);
});

test('staleIfError: 0 (or 0s) turns serving stale on backend errors off', (t) => {
  t.is(parseConfig(`cache: { staleIfError: 0 }\n${ONE_POOL}`).cache.staleIfError, 0);
  t.is(parseConfig(`cache: { staleIfError: 0s }\n${ONE_POOL}`).cache.staleIfError, 0);
});

test('route cache flag is a YAML boolean', (t) => {
  const config = parseConfig(`${ONE_POOL}routes:\n  - pool: web\n    cache: true\n`);
  t.true(config.routes[0]?.cache);
});

test('bad total size', rejects, `cache: { maxBytes: lots }\n${ONE_POOL}`, [
  'cache.maxBytes: expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB (got "lots")',
]);

test('total size too small', rejects, `cache: { maxBytes: 100 }\n${ONE_POOL}`, [
  'cache.maxBytes: must be at least 1024 bytes',
]);

test('negative object size', rejects, `cache: { maxObjectBytes: -1 }\n${ONE_POOL}`, [
  'cache.maxObjectBytes: must not be negative (got -1)',
]);

test(
  'object limit above the total',
  rejects,
  `cache: { maxBytes: 1MiB, maxObjectBytes: 2MiB }\n${ONE_POOL}`,
  ['cache.maxObjectBytes: must not be larger than maxBytes (2097152 bytes > 1048576 bytes)'],
);

test('object limit above the default total', rejects, `cache: { maxObjectBytes: 512MiB }\n${ONE_POOL}`, [
  'cache.maxObjectBytes: must not be larger than maxBytes (536870912 bytes > 268435456 bytes)',
]);

test('bad stale-if-error duration', rejects, `cache: { staleIfError: forever }\n${ONE_POOL}`, [
  'cache.staleIfError: expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h (got "forever")',
]);

test('negative stale-if-error', rejects, `cache: { staleIfError: -5s }\n${ONE_POOL}`, [
  'cache.staleIfError: must be greater than 0 (got "-5s")',
]);

test('zero lock timeout', rejects, `cache: { lockTimeout: 0s }\n${ONE_POOL}`, [
  'cache.lockTimeout: must be greater than 0 (got "0s")',
]);

test('unknown cache key with a suggestion', rejects, `cache: { maxByte: 1MiB }\n${ONE_POOL}`, [
  'cache.maxByte: unknown key (did you mean "maxBytes"?)',
]);

test('cache that is not a mapping', rejects, `cache: true\n${ONE_POOL}`, [
  'cache: expected a mapping (got true)',
]);

test(
  'route cache flag that is not a boolean',
  rejects,
  `${ONE_POOL}routes:\n  - pool: web\n    cache: sometimes\n`,
  ['routes[0].cache: expected true or false (got "sometimes")'],
);
