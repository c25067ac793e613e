// Every default of the configuration file, in the units of `Config` (ms, bytes), and the
// choices of its enumerated keys. The README's Configuration section lists the same values.
import type { BalanceAlgorithm, PoolConfig } from './types.ts';

export const BALANCE_ALGORITHMS: readonly BalanceAlgorithm[] = ['round-robin', 'random', 'p2c'];
export const PANIC_MODES: readonly PoolConfig['panic'][] = ['open', 'closed'];

/** Every default of the file, in the units of `Config` (ms, bytes). */
export const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '127.0.0.1', port: 8099 },
  logLevel: 'info',
  workers: 'auto',
  accessLog: { to: 'stdout', buffer: 64 * 1024, flush: 1_000 },
  timeouts: {
    connect: 3_000,
    responseHeaders: 30_000,
    clientHeader: 10_000,
    clientBody: 10_000,
    clientIdle: 60_000,
    upstreamIdle: 30_000,
    shutdown: 30_000,
    shutdownDelay: 0,
  },
  limits: {
    maxRequestLine: 8 * 1024,
    maxHead: 16 * 1024,
    maxBody: null,
    replayBody: 64 * 1024,
    oneWrite: 16 * 1024,
    maxConnections: 10_000,
  },
  upgrades: ['websocket'],
  underscoresInHeaders: false,
  retries: {
    attempts: 3,
    backoffMin: 25,
    backoffMax: 250,
    budgetRatio: 0.2,
    budgetMinRetries: 10,
    budgetWindow: 10_000,
  },
  dnsRefresh: 30_000,
  pool: { balance: 'round-robin', maxIdlePerBackend: 10_000, panic: 'open' },
  health: {
    path: '/',
    interval: 2_000,
    timeout: 1_000,
    rise: 2,
    fall: 3,
    expectStatus: [200, 399],
    ejectAfter: 5,
    ejection: 30_000,
    maxEjection: 300_000,
    ejectionDecay: 30_000,
    maxEjectedPercent: 50,
    slowStart: 10_000,
  },
  server: { weight: 1 },
  route: { host: '*', path: '/', stripPrefix: false, cache: false },
  cache: {
    maxBytes: 256 * 1024 ** 2,
    maxObjectBytes: 8 * 1024 ** 2,
    staleIfError: 3_600_000,
    lockTimeout: 5_000,
    storeWithCookie: false,
  },
} as const;
