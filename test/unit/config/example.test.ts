import test from 'ava';
import { parseConfig } from '../../../src/config/load.ts';
import type { Config, HealthConfig } from '../../../src/config/types.ts';

// The configuration contract of DESIGN.md, verbatim: it must be accepted as it is.
const DESIGN_EXAMPLE = `listen: 0.0.0.0:8080
admin: 127.0.0.1:8099          # /metrics, /healthz, /readyz, /status
pools:
  web:
    balance: round-robin        # round-robin | random | p2c
    servers:
      - address: 127.0.0.1:9001
      - address: 127.0.0.1:9002
        weight: 2
      - address: web.internal:80  # a DNS name: every address it resolves to is a server
    health:
      path: /
      interval: 2s
      timeout: 1s
      rise: 2
      fall: 3
  api:
    servers:
      - address: 127.0.0.1:9004
routes:
  - host: api.example.test      # Host header; "*.example.test" and "*" also work
    path: /v1/                  # prefix
    stripPrefix: true           # /v1/users -> /users
    pool: api
    headers:
      set: { X-Env: demo }
      remove: [X-Debug]
  - host: "*"
    pool: web
`;

/** The passive-health and slow-start defaults of every pool's health section. */
const passiveDefaults = {
  ejectAfter: 5,
  ejection: 30_000,
  maxEjection: 300_000,
  ejectionDecay: 30_000,
  maxEjectedPercent: 50,
  slowStart: 10_000,
};

const defaultHealth: HealthConfig = {
  path: '/',
  host: undefined,
  interval: 2000,
  timeout: 1000,
  rise: 2,
  fall: 3,
  expectStatus: [200, 399],
  ...passiveDefaults,
};

const defaultTop = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '127.0.0.1', port: 8099 },
  logLevel: 'info',
  logFormat: undefined,
  workers: 'auto',
  accessLog: { to: 'stdout', buffer: 65536, flush: 1000 },
  trustedProxies: [],
  adminToken: undefined,
  upgrades: ['websocket'],
  underscoresInHeaders: false,
  timeouts: {
    connect: 3000,
    responseHeaders: 30000,
    clientHeader: 10000,
    clientBody: 10000,
    clientIdle: 60000,
    upstreamIdle: 30000,
    shutdown: 30000,
    shutdownDelay: 0,
  },
  limits: {
    maxRequestLine: 8192,
    maxHead: 16384,
    maxBody: null,
    replayBody: 65_536,
    oneWrite: 16_384,
    maxConnections: 10_000,
  },
  retries: {
    attempts: 3,
    backoffMin: 25,
    backoffMax: 250,
    budgetRatio: 0.2,
    budgetMinRetries: 10,
    budgetWindow: 10_000,
  },
  dnsRefresh: 30_000,
  cache: {
    maxBytes: 268_435_456,
    maxObjectBytes: 8_388_608,
    staleIfError: 3_600_000,
    lockTimeout: 5_000,
    storeWithCookie: false,
  },
} as const satisfies Partial<Config>;

test('the DESIGN.md example parses to the exact Config', (t) => {
  const expected: Config = {
    ...defaultTop,
    trustedProxies: [],
    pools: [
      {
        name: 'web',
        balance: 'round-robin',
        servers: [
          { address: '127.0.0.1:9001', host: '127.0.0.1', port: 9001, weight: 1, name: '127.0.0.1:9001' },
          { address: '127.0.0.1:9002', host: '127.0.0.1', port: 9002, weight: 2, name: '127.0.0.1:9002' },
          { address: 'web.internal:80', host: 'web.internal', port: 80, weight: 1, name: 'web.internal:80' },
        ],
        health: defaultHealth,
        maxIdlePerBackend: 10_000,
        panic: 'open',
      },
      {
        name: 'api',
        balance: 'round-robin',
        servers: [
          { address: '127.0.0.1:9004', host: '127.0.0.1', port: 9004, weight: 1, name: '127.0.0.1:9004' },
        ],
        health: defaultHealth,
        maxIdlePerBackend: 10_000,
        panic: 'open',
      },
    ],
    routes: [
      {
        host: 'api.example.test',
        path: '/v1/',
        stripPrefix: true,
        pool: 'api',
        headers: { set: { 'X-Env': 'demo' }, remove: ['X-Debug'] },
        cache: false,
      },
      {
        host: '*',
        path: '/',
        stripPrefix: false,
        pool: 'web',
        headers: { set: {}, remove: [] },
        cache: false,
      },
    ],
  };
  t.deepEqual(parseConfig(DESIGN_EXAMPLE), expected);
});

test('a single pool is all a file needs: every default filled in, one catch-all route', (t) => {
  const config = parseConfig('pools:\n  web:\n    servers: [127.0.0.1:9001]\n');
  const expected: Config = {
    ...defaultTop,
    trustedProxies: [],
    pools: [
      {
        name: 'web',
        balance: 'round-robin',
        servers: [
          { address: '127.0.0.1:9001', host: '127.0.0.1', port: 9001, weight: 1, name: '127.0.0.1:9001' },
        ],
        health: defaultHealth,
        maxIdlePerBackend: 10_000,
        panic: 'open',
      },
    ],
    routes: [
      {
        host: '*',
        path: '/',
        stripPrefix: false,
        pool: 'web',
        headers: { set: {}, remove: [] },
        cache: false,
      },
    ],
  };
  t.deepEqual(config, expected);
  t.true('host' in (config.pools[0]?.health ?? {}), 'health.host is present, as undefined');
});

test('every key set explicitly is carried over in Config units', (t) => {
  const config = parseConfig(`
listen: "[::1]:8443"
admin: false
logLevel: debug
logFormat: text
workers: 3
accessLog: false
trustedProxies: [10.0.0.0/8, 192.168.1.7, "fd00::/8", "::1"]
timeouts:
  connect: 250ms
  responseHeaders: 1.5s
  clientHeader: 5000
  clientIdle: 2m
  upstreamIdle: 1h
  shutdown: 1m30s
  shutdownDelay: 2s
limits:
  maxRequestLine: 4KiB
  maxHead: 1MiB
  maxBody: 10MB
retries:
  attempts: 5
dnsRefresh: 1m
cache:
  maxBytes: 64MiB
  maxObjectBytes: 1MiB
  staleIfError: 0s
  lockTimeout: 2s
pools:
  static:
    balance: p2c
    maxIdlePerBackend: 0
    panic: closed
    servers:
      - 10.0.0.1:80
      - address: 10.0.0.2:80
        weight: 1000
        name: second
    health:
      path: /healthz
      host: static.example.test
      interval: 5s
      timeout: 4999ms
      rise: 1
      fall: 10
      expectStatus: 200-204
routes:
  - host: "*.Example.TEST"
    path: /assets/
    pool: static
    cache: true
    headers:
      set: { Cache-Control: "public, max-age=60", X-Num: 5 }
`);
  const expected: Config = {
    listen: { host: '::1', port: 8443 },
    admin: null,
    logLevel: 'debug',
    logFormat: 'text',
    workers: 3,
    accessLog: false,
    trustedProxies: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'],
    adminToken: undefined,
    upgrades: ['websocket'],
    underscoresInHeaders: false,
    timeouts: {
      connect: 250,
      responseHeaders: 1500,
      clientHeader: 5000,
      clientBody: 10_000,
      clientIdle: 120_000,
      upstreamIdle: 3_600_000,
      shutdown: 90_000,
      shutdownDelay: 2000,
    },
    limits: {
      maxRequestLine: 4096,
      maxHead: 1_048_576,
      maxBody: 10_000_000,
      replayBody: 65_536,
      oneWrite: 16_384,
      maxConnections: 10_000,
    },
    retries: {
      attempts: 5,
      backoffMin: 25,
      backoffMax: 250,
      budgetRatio: 0.2,
      budgetMinRetries: 10,
      budgetWindow: 10_000,
    },
    dnsRefresh: 60_000,
    cache: {
      maxBytes: 67_108_864,
      maxObjectBytes: 1_048_576,
      staleIfError: 0,
      lockTimeout: 2000,
      storeWithCookie: false,
    },
    pools: [
      {
        name: 'static',
        balance: 'p2c',
        servers: [
          { address: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, name: '10.0.0.1:80' },
          { address: '10.0.0.2:80', host: '10.0.0.2', port: 80, weight: 1000, name: 'second' },
        ],
        health: {
          path: '/healthz',
          host: 'static.example.test',
          interval: 5000,
          timeout: 4999,
          rise: 1,
          fall: 10,
          expectStatus: [200, 204],
          ...passiveDefaults,
        },
        maxIdlePerBackend: 0,
        panic: 'closed',
      },
    ],
    routes: [
      {
        host: '*.example.test',
        path: '/assets/',
        stripPrefix: false,
        pool: 'static',
        headers: { set: { 'Cache-Control': 'public, max-age=60', 'X-Num': '5' }, remove: [] },
        cache: true,
      },
    ],
  };
  t.deepEqual(config, expected);
});

test('admin: null disables the admin listener; empty sections take their defaults', (t) => {
  const config = parseConfig(
    'admin: null\ntimeouts:\nlimits: {}\npools:\n  a:\n    servers: [a.internal:80]\n    health:\n',
  );
  t.is(config.admin, null);
  t.deepEqual(config.timeouts, defaultTop.timeouts);
  t.deepEqual(config.limits, defaultTop.limits);
  t.deepEqual(config.pools[0]?.health, defaultHealth);
});

test('expectStatus accepts a list and a single status', (t) => {
  const one = parseConfig('pools:\n  a:\n    servers: [a:1]\n    health: { expectStatus: [200, 299] }\n');
  t.deepEqual(one.pools[0]?.health.expectStatus, [200, 299]);
  const two = parseConfig('pools:\n  a:\n    servers: [a:1]\n    health: { expectStatus: 204 }\n');
  t.deepEqual(two.pools[0]?.health.expectStatus, [204, 204]);
});

test('accessLog: true takes the defaults; a mapping sets the destination, buffer and flush', (t) => {
  t.deepEqual(
    parseConfig(`accessLog: true\n${'pools:\n  web:\n    servers: [127.0.0.1:9001]\n'}`).accessLog,
    {
      to: 'stdout',
      buffer: 65536,
      flush: 1000,
    },
  );
  const config = parseConfig(
    'accessLog: { to: /var/log/sluice/access.log, buffer: 8KiB, flush: 250ms }\npools:\n  web:\n    servers: [127.0.0.1:9001]\n',
  );
  t.deepEqual(config.accessLog, { to: '/var/log/sluice/access.log', buffer: 8192, flush: 250 });
});

test('maxBody: null means no limit', (t) => {
  const config = parseConfig('limits: { maxBody: null }\npools: { a: { servers: [a:1] } }\n');
  t.is(config.limits.maxBody, null);
});
