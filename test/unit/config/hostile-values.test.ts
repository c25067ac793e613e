// Values the config once accepted and then misbehaved on (issue 10): timers beyond Node's range
// (they fire after 1 ms) and header rules that rewrite framing or inject control characters.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

const ONE_POOL = 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n';

function issuesOf(t: ExecutionContext, text: string): string[] {
  const error = t.throws(() => parseConfig(text), { instanceOf: ConfigError });
  return error?.issues ?? [];
}

function routeWith(headers: string): string {
  return `${ONE_POOL}routes:\n  - pool: web\n    headers:\n${headers}`;
}

const tooLong = [
  ['timeouts.connect', 'timeouts: { connect: 2147483648 }'],
  ['timeouts.responseHeaders', 'timeouts: { responseHeaders: 2147483648 }'],
  ['timeouts.clientIdle', 'timeouts: { clientIdle: 597h }'],
  ['timeouts.clientBody', 'timeouts: { clientBody: 1000h }'],
  ['timeouts.shutdown', 'timeouts: { shutdown: 2147484s }'],
  ['dnsRefresh', 'dnsRefresh: 999999h'],
  ['cache.lockTimeout', 'cache: { lockTimeout: 40000m }'],
];
for (const [key, yaml] of tooLong) {
  test(`a duration beyond 2^31-1 ms is refused: ${key}`, (t) => {
    const issues = issuesOf(t, `${yaml}\n${ONE_POOL}`);
    t.is(issues.length, 1);
    t.true(issues[0]?.startsWith(`${key}: must be at most 2147483647ms`), issues[0]);
  });
}

test('the largest timer Node takes is accepted', (t) => {
  const config = parseConfig(`timeouts: { clientIdle: 2147483647 }\n${ONE_POOL}`);
  t.is(config.timeouts.clientIdle, 2147483647);
});

for (const name of [
  'Transfer-Encoding',
  'content-length',
  'Host',
  'Connection',
  'Keep-Alive',
  'TE',
  'Upgrade',
  'Trailer',
]) {
  test(`headers.set may not write ${name}`, (t) => {
    const issues = issuesOf(t, routeWith(`      set: { ${name}: x }\n`));
    t.deepEqual(issues, [
      `routes[0].headers.set.${name}: ${name} is written by Sluice itself (framing and routing fields cannot be set or removed)`,
    ]);
  });
}

test('headers.remove may not drop Host', (t) => {
  t.deepEqual(issuesOf(t, routeWith('      remove: [X-Debug, host]\n')), [
    'routes[0].headers.remove[1]: host is written by Sluice itself (framing and routing fields cannot be set or removed)',
  ]);
});

for (const [what, value] of [
  ['CR LF', '"a\\r\\nX-Evil: 1"'],
  ['NUL', '"a\\u0000b"'],
  ['a bare LF', '"a\\nb"'],
  ['ESC', '"a\\u001bb"'],
  ['DEL', '"a\\u007fb"'],
  ['a vertical tab', '"a\\u000bb"'],
]) {
  test(`headers.set values may not hold ${what}`, (t) => {
    t.deepEqual(issuesOf(t, routeWith(`      set: { X-Env: ${value} }\n`)), [
      'routes[0].headers.set.X-Env: header value must not contain control characters (CR, LF, NUL …)',
    ]);
  });
}

test('headers.set values beyond latin1 are refused, tabs and obs-text pass', (t) => {
  t.deepEqual(issuesOf(t, routeWith('      set: { X-Env: "caf\\u00e9 \\u2603" }\n')), [
    'routes[0].headers.set.X-Env: header value must be latin1 (no characters beyond U+00FF)',
  ]);
  const config = parseConfig(routeWith('      set: { X-Env: "a\\tcaf\\u00e9" }\n'));
  t.deepEqual(config.routes[0]?.headers.set, { 'X-Env': 'a\tcafé' });
});

test('new keys have range checks: maxConnections, adminToken, upgrades', (t) => {
  t.deepEqual(
    issuesOf(t, `limits: { maxConnections: 0 }\nadminToken: short\nupgrades: websocket\n${ONE_POOL}`),
    [
      'adminToken: expected a token of at least 16 letters, digits or -._~+/ (got "short")',
      'upgrades: expected a list of protocol names like [websocket] (got "websocket")',
      'limits.maxConnections: expected an integer from 1 to 1000000 (got 0)',
    ],
  );
});

test('sluice check rejects them and names the key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-check-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, `timeouts: { clientIdle: 600h }\n${routeWith('      set: { Content-Length: "0" }\n')}`);
  const main = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
  const error = t.throws(() =>
    execFileSync(process.execPath, [main, 'check', '--config', file], { stdio: 'pipe' }),
  );
  const stderr = String((error as unknown as { stderr: Buffer }).stderr);
  t.is((error as unknown as { status: number }).status, 1);
  t.regex(stderr, /timeouts\.clientIdle: must be at most 2147483647ms/);
  t.regex(stderr, /routes\[0\]\.headers\.set\.Content-Length: Content-Length is written by Sluice itself/);
});

test('sizes out of range are refused: a head limit above 1 MiB, sizes beyond 2^53', (t) => {
  t.deepEqual(
    issuesOf(t, `limits: { maxHead: 2MiB, maxBody: 1e300 }\ncache: { maxBytes: 1e300 }\n${ONE_POOL}`),
    [
      'limits.maxHead: must be at most 1048576 bytes',
      'limits.maxBody: must be at most 9007199254740991 bytes',
      'cache.maxBytes: must be at most 9007199254740991 bytes',
    ],
  );
});
