// The `sluice` command as a shell sees it: --version, check (exit codes, file:line:col, the
// overrides serve applies, --resolve), healthcheck, and the log format. Child processes of the
// real entry point; the only network is loopback.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { closedPort, startNodeBackend } from '../support/node-backend.ts';
import { envWithoutSluice, type Run, runCommand } from '../support/run.ts';
import { until } from '../support/wait.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function sluice(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runCommand(process.execPath, [main, ...args], { env: envWithoutSluice(env) });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const good = () =>
  file('good.yaml', 'pools:\n  web:\n    servers:\n      - 127.0.0.1:9001\n      - localhost:9002\n');

test('--version and -V print version, revision and Node version on one line', async (t) => {
  for (const flag of ['--version', '-V']) {
    const run = await sluice([flag]);
    t.is(run.code, 0);
    t.regex(
      run.stdout,
      /^sluice version 0\.1\.0 \(revision ([0-9a-f]{12}|unknown), node v\d+\.\d+\.\d+\)\n$/,
    );
    t.true(run.stdout.includes(`node ${process.version})`));
  }
});

test('check FILE: positional or --config, ok exits 0', async (t) => {
  const path = good();
  for (const args of [
    ['check', path],
    ['check', '--config', path],
  ]) {
    const run = await sluice(args);
    t.is(run.code, 0, run.stderr);
    t.is(run.stdout, `${path}: ok (1 pools, 2 servers, 1 routes)\n`);
  }
});

test('check without a file checks SLUICE_CONFIG, as serve reads it; a file given wins', async (t) => {
  // Files of its own: good() is rewritten by the tests running beside this one.
  const path = file(
    'env.yaml',
    'pools:\n  web:\n    servers:\n      - 127.0.0.1:9001\n      - localhost:9002\n',
  );
  const other = file('env-other.yaml', 'pools: 3\n');
  const fromEnv = await sluice(['check'], { SLUICE_CONFIG: path });
  t.deepEqual(fromEnv, { code: 0, stdout: `${path}: ok (1 pools, 2 servers, 1 routes)\n`, stderr: '' });
  for (const args of [
    ['check', path],
    ['check', '--config', path],
  ]) {
    const run = await sluice(args, { SLUICE_CONFIG: other });
    t.deepEqual(run, { code: 0, stdout: `${path}: ok (1 pools, 2 servers, 1 routes)\n`, stderr: '' });
  }
  const neither = await sluice(['check']);
  t.is(neither.code, 2);
  t.is(neither.stdout, '');
  t.is(
    neither.stderr.split('\n')[0],
    'sluice check: which file? sluice check FILE, --config FILE or SLUICE_CONFIG',
  );
});

test('check: an invalid config exits 1, each problem as file:line:col: key path: message', async (t) => {
  const path = file(
    'bad.yaml',
    [
      'pools:',
      '  web:',
      '    servers:',
      '      - 127.0.0.1:9001',
      '      - address: nowhere',
      '    helth: {}',
      'timeouts:',
      '  connect: 1m30x',
      '',
    ].join('\n'),
  );
  const run = await sluice(['check', path]);
  t.is(run.code, 1);
  t.is(run.stdout, '');
  t.deepEqual(run.stderr.trimEnd().split('\n'), [
    `${path}:8:3: timeouts.connect: expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h (got "1m30x")`,
    `${path}:5:9: pools.web.servers[1].address: expected host:port`,
    `${path}:6:5: pools.web.helth: unknown key (did you mean "health"?)`,
  ]);
  const syntax = await sluice(['check', file('syntax.yaml', 'pools:\n  web: [\n')]);
  t.is(syntax.code, 1);
  t.regex(syntax.stderr, new RegExp(`^${join(dir, 'syntax.yaml')}:\\d+:\\d+: `));
  const missing = await sluice(['check', join(dir, 'missing.yaml')]);
  t.is(missing.code, 1);
  t.is(missing.stderr, `${join(dir, 'missing.yaml')}: file not found\n`);
});

test('check: a period short enough to cost CPU is a warning at its line; the file is still ok', async (t) => {
  const path = file(
    'eager.yaml',
    [
      'dnsRefresh: 1',
      'pools:',
      '  web:',
      '    servers: [127.0.0.1:9001]',
      '    health:',
      '      interval: 2',
      '      timeout: 1',
      '',
    ].join('\n'),
  );
  const run = await sluice(['check', path]);
  t.is(run.code, 0);
  t.is(run.stdout, `${path}: ok (1 pools, 1 servers, 1 routes)\n`);
  t.deepEqual(run.stderr.trimEnd().split('\n'), [
    `${path}:1:1: warning: dnsRefresh: 1ms is below 1s; resolving names that often costs CPU and loads the DNS server (default 30s)`,
    `${path}:6:7: warning: pools.web.health.interval: 2ms is below 100ms; probing that often costs CPU and loads the backends (default 2s)`,
  ]);
  t.is((await sluice(['check', good()])).stderr, '');
});

test('check applies the SLUICE_* overrides serve applies', async (t) => {
  const run = await sluice(['check', good()], { SLUICE_LOG_LEVEL: 'trace' });
  t.is(run.code, 1);
  t.is(run.stderr, 'SLUICE_LOG_LEVEL: expected one of "error", "warn", "info", "debug" (got "trace")\n');
  t.is((await sluice(['check', good()], { SLUICE_LOG_LEVEL: 'debug', SLUICE_LOG_FORMAT: 'text' })).code, 0);
});

test('a bad flag value is a usage error (exit 2), as an unknown option is', async (t) => {
  const path = file('flag-values.yaml', 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n');
  for (const [args, stderr] of [
    [['--log-format', 'yaml'], '--log-format: expected one of "json", "text" (got "yaml")\n'],
    [['--workers', '0'], '--workers: expected auto or an integer from 1 to 256 (got "0")\n'],
    [['--listen', ':8080'], '--listen: expected host:port\n'],
  ] as const) {
    const run = await sluice(['check', path, ...args]);
    t.deepEqual([run.code, run.stderr], [2, stderr], args.join(' '));
  }
});

test('flags override SLUICE_* before validation; problems of both layers are reported together', async (t) => {
  const path = file('flag-over-env.yaml', 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n');
  for (const [env, args] of [
    [{ SLUICE_WORKERS: '0' }, ['--workers', '1']],
    [{ SLUICE_LOG_LEVEL: 'trace' }, ['--log-level', 'info']],
    [{ SLUICE_LISTEN: '127.0.0.1:9899' }, ['--admin', 'off']],
    [{ SLUICE_ADMIN: '127.0.0.1:9880' }, ['--listen', '127.0.0.1:9881']],
  ] as const) {
    const run = await sluice(['check', path, ...args], env);
    t.is(run.code, 0, `${JSON.stringify(env)} ${args.join(' ')}: ${run.stderr}`);
  }
  const both = await sluice(['check', path, '--workers', 'many'], { SLUICE_LOG_LEVEL: 'trace' });
  t.is(both.code, 2);
  t.is(
    both.stderr,
    'SLUICE_LOG_LEVEL: expected one of "error", "warn", "info", "debug" (got "trace")\n' +
      '--workers: expected auto or an integer from 1 to 256 (got "many")\n',
  );
});

test('check --resolve looks up every DNS name (localhost resolves)', async (t) => {
  const run = await sluice(['check', '--resolve', good()]);
  t.is(run.code, 0, run.stderr);
});

test('usage errors exit 2', async (t) => {
  for (const args of [['check'], ['bogus'], ['--frob'], ['check', 'a', 'b']]) {
    const run = await sluice(args);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, /^sluice( check)?: .*\nusage:/, args.join(' '));
  }
});

test('an option the command does not take is a usage error (exit 2), and nothing starts', async (t) => {
  for (const [args, line] of [
    [['demo', '--config', 'sluice.yaml'], 'sluice demo: --config is not an option of demo'],
    [['healthcheck', '--workers', '3'], 'sluice healthcheck: --workers is not an option of healthcheck'],
    [['serve', '--resolve', '--config', 'sluice.yaml'], 'sluice serve: --resolve is not an option of serve'],
    [['demo', '--workers', '2'], 'sluice demo: --workers is not an option of demo'],
  ] as const) {
    const run = await sluice([...args]);
    t.deepEqual([run.code, run.stdout, run.stderr.split('\n')[0]], [2, '', line], args.join(' '));
  }
});

test('bin/sluice.js under an older Node says which Node it needs, without a stack trace', async (t) => {
  const older =
    'data:text/javascript,Object.defineProperty(process,"versions",{value:{...process.versions,node:"22.21.0"}})';
  const bin = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
  const run = await runCommand(process.execPath, ['--import', older, bin, '--version'], {
    env: envWithoutSluice(),
  });
  t.deepEqual(
    [run.code, run.stdout, run.stderr],
    [1, '', 'sluice: needs Node >= 22.22 (this is Node 22.21.0)\n'],
  );
});

test('serve with an invalid config exits 1, as nginx and haproxy do', async (t) => {
  const run = await sluice(['--config', file('serve-bad.yaml', 'pools: {}\n')]);
  t.is(run.code, 1);
  t.regex(run.stderr, /serve-bad\.yaml:1:1: pools: at least one pool is required/);
});

test('healthcheck: 0 when /healthz answers 200 on the admin address, 1 otherwise', async (t) => {
  let status = 200;
  const admin = await startNodeBackend((request, response) => {
    response.statusCode = request.url === '/healthz' ? status : 404;
    response.end('ok\n');
  });
  try {
    t.is((await sluice(['healthcheck', '--admin', `127.0.0.1:${admin.port}`])).code, 0);
    t.is(
      (await sluice(['healthcheck'], { SLUICE_ADMIN: `0.0.0.0:${admin.port}` })).code,
      0,
      'wildcard: loopback',
    );
    const config = file(
      'admin.yaml',
      `admin: 127.0.0.1:${admin.port}\npools:\n  web:\n    servers: [127.0.0.1:9001]\n`,
    );
    t.is((await sluice(['healthcheck', '--config', config])).code, 0);
    t.is((await sluice(['healthcheck'], { SLUICE_CONFIG: config })).code, 0);
    // No such file (the image's SLUICE_CONFIG while it runs the demo): the default address.
    const missing = await sluice(['healthcheck', '--config', join(dir, 'none.yaml')]);
    t.regex(missing.stderr, /connection refused by 127\.0\.0\.1:8099|^$/);
    status = 503;
    const unhealthy = await sluice(['healthcheck', '--admin', `127.0.0.1:${admin.port}`]);
    t.is(unhealthy.code, 1);
    t.regex(unhealthy.stderr, /the server answered 503/);
    status = 302;
    const moved = await sluice(['healthcheck', '--admin', `127.0.0.1:${admin.port}`]);
    t.is(moved.code, 1);
    t.is(moved.stderr, `sluice healthcheck: http://127.0.0.1:${admin.port}/healthz answered 302, not 2xx\n`);
  } finally {
    await admin.close();
  }
  const closed = await closedPort();
  const refused = await sluice(['healthcheck', '--admin', `127.0.0.1:${closed}`]);
  t.is(refused.code, 1);
  t.is(
    refused.stderr,
    `sluice healthcheck: connection refused by 127.0.0.1:${closed} — is the balancer running?\n`,
  );
  const off = file('off.yaml', 'admin: false\npools:\n  web:\n    servers: [127.0.0.1:9001]\n');
  const noAdmin = await sluice(['healthcheck', '--config', off]);
  t.is(noAdmin.code, 1);
  t.regex(noAdmin.stderr, /the admin listener is off/);
});

test('--log-format text: one readable line per event; JSON lines by default off a terminal', async (t) => {
  const lines = async (args: string[]) => {
    const child = spawn(
      process.execPath,
      [main, 'demo', '--listen', '127.0.0.1:0', '--admin', 'off', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // Generous: the other tests of this file start node processes at the same time.
      await until('the demo started', 60_000, async () => (out.includes('demo ready') ? true : undefined));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    return out.split('\n');
  };
  const text = await lines(['--log-format', 'text']);
  t.regex(
    text[0] ?? '',
    /^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}sluice started listen=127\.0\.0\.1:\d+ admin=null pools=\[/,
  );
  const json = await lines([]);
  t.like(JSON.parse(json[0] ?? '{}'), { level: 'info', message: 'sluice started' });
});
