import test, { type ExecutionContext } from 'ava';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';

const ONE_POOL = 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n';

/** The issue lines parseConfig throws for `text`. */
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

test(
  'bad address',
  rejects,
  'pools:\n  web:\n    servers:\n      - address: 127.0.0.1:9001\n      - address: 127.0.0.1\n',
  ['pools.web.servers[1].address: expected host:port'],
);

test('address that is not a string', rejects, `listen: 8080\n${ONE_POOL}`, ['listen: expected host:port']);

test('port out of range', rejects, 'pools:\n  web:\n    servers: [127.0.0.1:70000]\n', [
  'pools.web.servers[0].address: port must be between 1 and 65535 (got 70000)',
]);

test(
  'port zero for a server (listeners may use 0 for any free port)',
  rejects,
  'pools:\n  web:\n    servers: [127.0.0.1:0]\n',
  ['pools.web.servers[0].address: port must be between 1 and 65535 (got 0)'],
);

test('listen port out of range', rejects, `listen: 0.0.0.0:65536\n${ONE_POOL}`, [
  'listen: port must be between 0 and 65535 (got 65536)',
]);

test('port that is not a number', rejects, `listen: localhost:http\n${ONE_POOL}`, [
  'listen: expected host:port',
]);

test('invalid host name', rejects, 'pools:\n  web:\n    servers: ["exa mple:80"]\n', [
  'pools.web.servers[0].address: invalid host "exa mple"',
]);

test('IPv6 without brackets', rejects, `listen: "::1:8080"\n${ONE_POOL}`, [
  'listen: expected host:port (write IPv6 addresses in brackets: [::1]:8080)',
]);

test('bad admin address', rejects, `admin: nowhere\n${ONE_POOL}`, [
  'admin: expected host:port (or false to disable the admin listener)',
]);

test('admin on the listen address', rejects, `listen: 0.0.0.0:8080\nadmin: 127.0.0.1:8080\n${ONE_POOL}`, [
  'admin: conflicts with listen (127.0.0.1:8080 and 0.0.0.0:8080)',
]);

test(
  'admin on localhost, listen on the address it is',
  rejects,
  `listen: 127.0.0.1:8080\nadmin: localhost:8080\n${ONE_POOL}`,
  ['admin: conflicts with listen (localhost:8080 and 127.0.0.1:8080)'],
);

test('an access log buffer over 16 MiB', rejects, `accessLog: { buffer: 100GiB }\n${ONE_POOL}`, [
  'accessLog.buffer: at most 16MiB: a bigger buffer only holds lines back longer',
]);

test('bad duration', rejects, `${ONE_POOL}    health: { interval: 2 sec }\n`, [
  'pools.web.health.interval: expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h (got "2 sec")',
]);

test('zero duration', rejects, `timeouts: { connect: 0s }\n${ONE_POOL}`, [
  'timeouts.connect: must be greater than 0 (got "0s")',
]);

test('duration of the wrong type', rejects, `timeouts: { shutdown: true }\n${ONE_POOL}`, [
  'timeouts.shutdown: expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h (got true)',
]);

test(
  'shutdown delay longer than the shutdown it is part of',
  rejects,
  `timeouts: { shutdown: 5s, shutdownDelay: 6s }\n${ONE_POOL}`,
  ['timeouts.shutdownDelay: must not be larger than shutdown (6s > 5s)'],
);

test('bad size', rejects, `limits: { maxHead: 16 kb }\n${ONE_POOL}`, [
  'limits.maxHead: expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB (got "16 kb")',
]);

test('request line limit above the head limit', rejects, `limits: { maxRequestLine: 32KiB }\n${ONE_POOL}`, [
  'limits.maxRequestLine: must not be larger than maxHead (32768 bytes > 16384 bytes)',
]);

test('unknown key with a suggestion', rejects, `${ONE_POOL}    helth: { path: / }\n`, [
  'pools.web.helth: unknown key (did you mean "health"?)',
]);

test(
  'unknown key in snake_case suggests the camelCase key',
  rejects,
  `${ONE_POOL}routes:\n  - pool: web\n    strip_prefix: true\n`,
  ['routes[0].strip_prefix: unknown key (did you mean "stripPrefix"?)'],
);

test(
  'unknown key with nothing close lists the known keys',
  rejects,
  `${ONE_POOL}timeouts: { frobnicate: 1s }\n`,
  [
    'timeouts.frobnicate: unknown key (known keys: connect, responseHeaders, clientHeader, clientBody, clientIdle, upstreamIdle, shutdown, shutdownDelay)',
  ],
);

test(
  'unknown pool',
  rejects,
  `${ONE_POOL}  api:\n    servers: [127.0.0.1:9004]\nroutes:\n  - pool: apii\n  - { path: /web/, pool: web }\n`,
  ['routes[0].pool: unknown pool "apii" (pools are: api, web)'],
);

test('route without a pool', rejects, `${ONE_POOL}routes:\n  - host: "*"\n`, ['routes[0].pool: required']);

test('several pools and no routes', rejects, `${ONE_POOL}  api:\n    servers: [127.0.0.1:9004]\n`, [
  'routes: required when there are several pools',
]);

test('empty route list', rejects, `${ONE_POOL}routes: []\n`, ['routes: at least one route is required']);

test('bad balance value lists the allowed ones', rejects, `${ONE_POOL}    balance: least-conn\n`, [
  'pools.web.balance: expected one of "round-robin", "random", "p2c" (got "least-conn")',
]);

test('bad panic value', rejects, `${ONE_POOL}    panic: maybe\n`, [
  'pools.web.panic: expected one of "open", "closed" (got "maybe")',
]);

test('bad log level', rejects, `logLevel: verbose\n${ONE_POOL}`, [
  'logLevel: expected one of "error", "warn", "info", "debug" (got "verbose")',
]);

test('weight zero', rejects, 'pools:\n  web:\n    servers:\n      - { address: a:1, weight: 0 }\n', [
  'pools.web.servers[0].weight: expected an integer from 1 to 1000 (got 0)',
]);

test(
  'weight too large and fractional',
  rejects,
  'pools:\n  web:\n    servers:\n      - { address: a:1, weight: 1001 }\n      - { address: b:1, weight: 1.5 }\n',
  [
    'pools.web.servers[0].weight: expected an integer from 1 to 1000 (got 1001)',
    'pools.web.servers[1].weight: expected an integer from 1 to 1000 (got 1.5)',
  ],
);

test('weight as a string', rejects, 'pools:\n  web:\n    servers:\n      - { address: a:1, weight: "2" }\n', [
  'pools.web.servers[0].weight: expected an integer from 1 to 1000 (got "2")',
]);

test(
  'health timeout not below the interval',
  rejects,
  `${ONE_POOL}    health: { interval: 1s, timeout: 1s }\n`,
  ['pools.web.health.timeout: must be less than interval (1s >= 1s)'],
);

test(
  'health timeout default against a short interval',
  rejects,
  `${ONE_POOL}    health: { interval: 500ms }\n`,
  ['pools.web.health.interval: must be greater than timeout (500ms <= 1s)'],
);

test('bad expectStatus', rejects, `${ONE_POOL}    health: { expectStatus: 2xx }\n`, [
  'pools.web.health.expectStatus: expected a status range like 200-399 or [200, 399] (got "2xx")',
]);

test(
  'expectStatus out of range and reversed',
  rejects,
  `${ONE_POOL}  b:\n    servers: [b:1]\n    health: { expectStatus: 200-600 }\n  c:\n    servers: [c:1]\n    health: { expectStatus: [399, 200] }\nroutes: [{ pool: web }]\n`,
  [
    'pools.b.health.expectStatus: statuses must be between 100 and 599 (got 200-600)',
    'pools.c.health.expectStatus: range is empty: 399 is greater than 200',
  ],
);

test('bad health path', rejects, `${ONE_POOL}    health: { path: healthz }\n`, [
  'pools.web.health.path: must start with "/" (got "healthz")',
]);

test('bad CIDR', rejects, `trustedProxies: [10.0.0.0/33, 10.1.2, "fd00::/129"]\n${ONE_POOL}`, [
  'trustedProxies[0]: prefix length must be between 0 and 32 (got "10.0.0.0/33")',
  'trustedProxies[1]: expected an IP address or CIDR like 10.0.0.0/8 or fd00::/8 (got "10.1.2")',
  'trustedProxies[2]: prefix length must be between 0 and 128 (got "fd00::/129")',
]);

test('trustedProxies not a list', rejects, `trustedProxies: 10.0.0.0/8\n${ONE_POOL}`, [
  'trustedProxies: expected a list of IP addresses or CIDRs (got "10.0.0.0/8")',
]);

test('route path without a leading slash', rejects, `${ONE_POOL}routes: [{ pool: web, path: api/ }]\n`, [
  'routes[0].path: must start with "/" (got "api/")',
]);

test(
  'bad route host',
  rejects,
  `${ONE_POOL}routes:\n  - { pool: web, host: "api.*" }\n  - { pool: web, host: "ex ample.test" }\n`,
  [
    'routes[0].host: expected a host name, "*.domain" or "*" (got "api.*")',
    'routes[1].host: expected a host name, "*.domain" or "*" (got "ex ample.test")',
  ],
);

test(
  'bad header names',
  rejects,
  `${ONE_POOL}routes:\n  - pool: web\n    headers:\n      set: { "X Env": demo, X-Ok: "a" }\n      remove: ["X:Debug", 7]\n`,
  [
    'routes[0].headers.set["X Env"]: invalid header name',
    'routes[0].headers.remove[0]: invalid header name "X:Debug"',
    'routes[0].headers.remove[1]: expected a header name (got 7)',
  ],
);

test(
  'header set twice in different case',
  rejects,
  `${ONE_POOL}routes:\n  - pool: web\n    headers: { set: { X-Env: a, x-env: b } }\n`,
  ['routes[0].headers.set.x-env: duplicate header name (same as "X-Env")'],
);

test(
  'duplicate server names',
  rejects,
  'pools:\n  web:\n    servers:\n      - 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n        name: one\n      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9003\n        name: one\n',
  [
    'pools.web.servers[2]: duplicate server name "127.0.0.1:9001" (same as servers[0]; set a distinct name)',
    'pools.web.servers[3]: duplicate server name "one" (same as servers[1]; set a distinct name)',
  ],
);

test('pool without servers', rejects, 'pools:\n  web:\n    servers: []\n', [
  'pools.web.servers: at least one server is required',
]);

test('server list that is not a list', rejects, 'pools:\n  web:\n    servers: 127.0.0.1:9001\n', [
  'pools.web.servers: expected a list (got "127.0.0.1:9001")',
]);

test('a server that is a bare number', rejects, 'pools:\n  web:\n    servers: [9001]\n', [
  'pools.web.servers[0].address: expected host:port',
]);

test('server without an address', rejects, 'pools:\n  web:\n    servers: [{ weight: 2 }]\n', [
  'pools.web.servers[0].address: required',
]);

test('no pools', rejects, 'listen: 0.0.0.0:8080\n', ['pools: required']);

test('empty file', rejects, '', ['pools: required']);

test('empty pool mapping', rejects, 'pools: {}\n', ['pools: at least one pool is required']);

test('pool name that cannot be a label', rejects, 'pools:\n  "web pool":\n    servers: [a:1]\n', [
  'pools["web pool"]: invalid pool name (use letters, digits, "_", "-" and ".")',
]);

test('a file that is not a mapping', rejects, '- a\n- b\n', ['(root): expected a mapping (got a list)']);

test('a section of the wrong type', rejects, `timeouts: 5s\n${ONE_POOL}`, [
  'timeouts: expected a mapping (got "5s")',
]);

test('boolean of the wrong type', rejects, `${ONE_POOL}routes:\n  - pool: web\n    stripPrefix: "yes"\n`, [
  'routes[0].stripPrefix: expected true or false (got "yes")',
]);

test('accessLog of the wrong type', rejects, `accessLog: "yes"\n${ONE_POOL}`, [
  'accessLog: expected true, false or a mapping with to, buffer, flush (got "yes")',
]);

test(
  'accessLog mapping: bad values and unknown keys, each named',
  rejects,
  `accessLog: { to: "", buffer: lots, flush: 0s, format: json }\n${ONE_POOL}`,
  [
    'accessLog.to: expected a non-empty string (got "")',
    'accessLog.buffer: expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB (got "lots")',
    'accessLog.flush: must be greater than 0 (got "0s")',
    'accessLog.format: unknown key (known: to, buffer, flush)',
  ],
);

test('retries out of range', rejects, `retries: { attempts: 0 }\n${ONE_POOL}`, [
  'retries.attempts: expected an integer from 1 to 10 (got 0)',
]);

test(
  'a backoff whose lower bound is above its upper one',
  rejects,
  `retries: { backoffMin: 1s, backoffMax: 500ms }\n${ONE_POOL}`,
  ['retries.backoffMin: must not be larger than backoffMax (1s > 500ms)'],
);

test('a retry budget ratio above 1', rejects, `retries: { budgetRatio: 1.5 }\n${ONE_POOL}`, [
  'retries.budgetRatio: expected a number from 0 to 1 (got 1.5)',
]);

test('a retry budget window under a second', rejects, `retries: { budgetWindow: 500ms }\n${ONE_POOL}`, [
  'retries.budgetWindow: must be at least 1s',
]);

test(
  'passive-health ejection longer than its cap',
  rejects,
  `${ONE_POOL}    health: { ejection: 10m, maxEjection: 5m }\n`,
  ['pools.web.health.ejection: must not be larger than maxEjection (10m > 5m)'],
);

test('an ejected share over 100%', rejects, `${ONE_POOL}    health: { maxEjectedPercent: 150 }\n`, [
  'pools.web.health.maxEjectedPercent: expected an integer from 0 to 100 (got 150)',
]);

test('a replay limit that is not a size', rejects, `limits: { replayBody: lots }\n${ONE_POOL}`, [
  'limits.replayBody: expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB (got "lots")',
]);

test(
  'YAML syntax error reports line and column',
  rejects,
  'pools:\n  web:\n    servers: [127.0.0.1:9001\nroutes: []\n',
  ['line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
);

test('duplicate YAML key reports its line', rejects, `${ONE_POOL}listen: 0.0.0.0:80\nlisten: 0.0.0.0:81\n`, [
  'line 5, column 1: listen: duplicate key',
]);

test('unresolved YAML alias', rejects, `listen: *addr\n${ONE_POOL}`, [
  'yaml: Unresolved alias (the anchor must be set before the alias): addr',
]);

test(
  'several problems are reported together',
  rejects,
  `
listen: 0.0.0.0
logLevel: loud
timeouts:
  conect: 3s
pools:
  web:
    balance: rr
    servers:
      - address: 127.0.0.1:9001
        weight: 0
      - address: 127.0.0.1:99999
    health:
      interval: 1s
      timeout: 2s
routes:
  - pool: wbe
    path: nope
`,
  [
    'listen: expected host:port',
    'logLevel: expected one of "error", "warn", "info", "debug" (got "loud")',
    'timeouts.conect: unknown key (did you mean "connect"?)',
    'pools.web.balance: expected one of "round-robin", "random", "p2c" (got "rr")',
    'pools.web.servers[0].weight: expected an integer from 1 to 1000 (got 0)',
    'pools.web.servers[1].address: port must be between 1 and 65535 (got 99999)',
    'pools.web.health.timeout: must be less than interval (2s >= 1s)',
    'routes[0].path: must start with "/" (got "nope")',
    'routes[0].pool: unknown pool "wbe" (pools are: web)',
  ],
);

test('the error message is the issue lines joined by newlines', (t) => {
  const error = t.throws(() => parseConfig('listen: x\nadmin: y\n'), { instanceOf: ConfigError });
  t.is(
    error?.message,
    [
      'listen: expected host:port',
      'admin: expected host:port (or false to disable the admin listener)',
      'pools: required',
    ].join('\n'),
  );
  t.is(error?.name, 'ConfigError');
});

test('the source is kept on the error', (t) => {
  const error = t.throws(() => parseConfig('pools: {}\n', 'sluice.yaml'), { instanceOf: ConfigError });
  t.is(error?.source, 'sluice.yaml');
});
