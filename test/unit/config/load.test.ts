import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  applyOverrides,
  ConfigError,
  loadConfigFile,
  overridesFromEnv,
  parseConfig,
} from '../../../src/config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const base = parseConfig('pools:\n  web:\n    servers: [127.0.0.1:9001]\n');

test('loadConfigFile reads and validates a file', (t) => {
  const file = join(dir, 'ok.yaml');
  writeFileSync(file, 'listen: 127.0.0.1:8081\npools:\n  web:\n    servers: [127.0.0.1:9001]\n');
  const config = loadConfigFile(file);
  t.deepEqual(config.listen, { host: '127.0.0.1', port: 8081 });
  t.is(config.pools[0]?.name, 'web');
});

test('loadConfigFile names a missing file', (t) => {
  const file = join(dir, 'missing.yaml');
  const error = t.throws(() => loadConfigFile(file), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, [`${file}: file not found`]);
  t.is(error?.source, file);
});

test('loadConfigFile says when the path is a directory', (t) => {
  const error = t.throws(() => loadConfigFile(dir), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, [`${dir}: is a directory, not a file`]);
});

test('loadConfigFile reports problems in the file with the file as source', (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'pools:\n  web:\n    servers: [127.0.0.1]\n');
  const error = t.throws(() => loadConfigFile(file), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, ['pools.web.servers[0].address: expected host:port']);
  t.is(error?.source, file);
});

test('applyOverrides replaces listen, admin and logLevel without touching the original', (t) => {
  const next = applyOverrides(base, { listen: '127.0.0.1:8000', admin: '[::1]:9200', logLevel: 'debug' });
  t.deepEqual(next.listen, { host: '127.0.0.1', port: 8000 });
  t.deepEqual(next.admin, { host: '::1', port: 9200 });
  t.is(next.logLevel, 'debug');
  t.deepEqual(base.listen, { host: '0.0.0.0', port: 8080 });
  t.is(base.logLevel, 'info');
  t.deepEqual(next.pools, base.pools);
});

test('applyOverrides with nothing to apply gives an equal config', (t) => {
  t.deepEqual(applyOverrides(base, {}), base);
});

test('--admin off disables the admin listener', (t) => {
  t.is(applyOverrides(base, { admin: 'off' }).admin, null);
  t.is(applyOverrides(base, { admin: 'false' }).admin, null);
});

test('a bad --listen names the flag', (t) => {
  const error = t.throws(() => applyOverrides(base, { listen: '8080' }), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, ['--listen: expected host:port']);
  t.is(error?.message, '--listen: expected host:port');
});

test('a bad port in --listen', (t) => {
  const error = t.throws(() => applyOverrides(base, { listen: 'localhost:65536' }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(error?.issues, ['--listen: port must be between 0 and 65535 (got 65536)']);
});

test('bad --admin and --log-level are reported together', (t) => {
  const error = t.throws(() => applyOverrides(base, { admin: 'admin', logLevel: 'trace' }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(error?.issues, [
    '--admin: expected host:port (or off to disable the admin listener)',
    '--log-level: expected one of "error", "warn", "info", "debug" (got "trace")',
  ]);
});

test('--admin on the listen port is a conflict', (t) => {
  const error = t.throws(() => applyOverrides(base, { admin: '0.0.0.0:8080' }), { instanceOf: ConfigError });
  t.deepEqual(error?.issues, ['--admin: conflicts with listen (0.0.0.0:8080 and 0.0.0.0:8080)']);
  const error2 = t.throws(() => applyOverrides(base, { listen: '127.0.0.1:8099' }), {
    instanceOf: ConfigError,
  });
  t.deepEqual(error2?.issues, ['--listen: conflicts with admin (127.0.0.1:8099 and 127.0.0.1:8099)']);
});

test('overrides from the environment name the variable', (t) => {
  const error = t.throws(
    () => applyOverrides(base, {}, overridesFromEnv({ SLUICE_LISTEN: 'x', SLUICE_LOG_LEVEL: 'loud' })),
    { instanceOf: ConfigError },
  );
  t.deepEqual(error?.issues, [
    'SLUICE_LISTEN: expected host:port',
    'SLUICE_LOG_LEVEL: expected one of "error", "warn", "info", "debug" (got "loud")',
  ]);
});

test('overridesFromEnv reads SLUICE_LISTEN, SLUICE_ADMIN and SLUICE_LOG_LEVEL', (t) => {
  t.deepEqual(
    overridesFromEnv({
      SLUICE_LISTEN: '0.0.0.0:80',
      SLUICE_ADMIN: 'off',
      SLUICE_LOG_LEVEL: 'warn',
      SLUICE_OTHER: 'x',
      PATH: '/bin',
    }),
    { listen: '0.0.0.0:80', admin: 'off', logLevel: 'warn' },
  );
});

test('overridesFromEnv leaves out unset and empty variables', (t) => {
  t.deepEqual(overridesFromEnv({}), {});
  t.deepEqual(overridesFromEnv({ SLUICE_LISTEN: '', SLUICE_ADMIN: '  ', SLUICE_LOG_LEVEL: 'error' }), {
    logLevel: 'error',
  });
});

test('environment then flags: the flag wins', (t) => {
  const final = applyOverrides(
    base,
    { listen: '0.0.0.0:82' },
    overridesFromEnv({ SLUICE_LISTEN: '0.0.0.0:81', SLUICE_LOG_LEVEL: 'warn' }),
  );
  t.deepEqual(final.listen, { host: '0.0.0.0', port: 82 });
  t.is(final.logLevel, 'warn');
});

test('a bad or conflicting environment value that a flag replaces is no error', (t) => {
  const env = (vars: Record<string, string>) => overridesFromEnv(vars);
  t.is(applyOverrides(base, { workers: '1' }, env({ SLUICE_WORKERS: '0' })).workers, 1);
  t.is(applyOverrides(base, { logLevel: 'info' }, env({ SLUICE_LOG_LEVEL: 'trace' })).logLevel, 'info');
  t.is(applyOverrides(base, { admin: 'off' }, env({ SLUICE_LISTEN: '127.0.0.1:9901' })).admin, null);
  const both = applyOverrides(base, { listen: '127.0.0.1:9681' }, env({ SLUICE_ADMIN: '127.0.0.1:9680' }));
  t.deepEqual(
    [both.listen, both.admin],
    [
      { host: '127.0.0.1', port: 9681 },
      { host: '127.0.0.1', port: 9680 },
    ],
  );
});

test('problems of both layers are reported together, each named by where it came from', (t) => {
  const error = t.throws(
    () =>
      applyOverrides(
        base,
        { workers: 'many', listen: '127.0.0.1:1' },
        overridesFromEnv({ SLUICE_WORKERS: '0', SLUICE_LOG_LEVEL: 'trace', SLUICE_LISTEN: 'x' }),
      ),
    { instanceOf: ConfigError },
  );
  t.deepEqual(error?.issues, [
    'SLUICE_LOG_LEVEL: expected one of "error", "warn", "info", "debug" (got "trace")',
    '--workers: expected auto or an integer from 1 to 256 (got "many")',
  ]);
});

test('workers: auto or a number, in the file, from --workers or from SLUICE_WORKERS', (t) => {
  t.is(base.workers, 'auto');
  t.is(parseConfig('workers: 4\npools:\n  web:\n    servers: [127.0.0.1:9001]\n').workers, 4);
  t.is(applyOverrides(base, { workers: '2' }).workers, 2);
  t.is(applyOverrides(base, { workers: ' auto ' }).workers, 'auto');
  t.is(applyOverrides(base, {}, overridesFromEnv({ SLUICE_WORKERS: '1' })).workers, 1);
  const flag = t.throws(() => applyOverrides(base, { workers: 'many' }), { instanceOf: ConfigError });
  t.is(flag.message, '--workers: expected auto or an integer from 1 to 256 (got "many")');
  const env = t.throws(() => applyOverrides(base, {}, overridesFromEnv({ SLUICE_WORKERS: '0' })), {
    instanceOf: ConfigError,
  });
  t.is(env.message, 'SLUICE_WORKERS: expected auto or an integer from 1 to 256 (got "0")');
  const file = t.throws(() => parseConfig('workers: 2.5\npools:\n  web:\n    servers: [127.0.0.1:9001]\n'), {
    instanceOf: ConfigError,
  });
  t.is(file.message, 'workers: expected auto or an integer from 1 to 256 (got 2.5)');
});
