// The zod schema of the YAML configuration file. `validateConfig` turns the parsed YAML value
// into the fully defaulted `Config` of types.ts, or into a list of problems, each one line
// `path: message` (`pools.web.servers[1].address: expected host:port`), all of them at once.
//
// Leaves are parsed by the pure functions of values.ts (so the CLI overrides share the exact
// syntax and messages); zod supplies the structure: strict objects (unknown keys are errors, with
// a suggestion when a known key is close), lists, the pool mapping, and the cross-field checks.

import { z } from 'zod';
import { accessLog } from './access-log.ts';
import { BALANCE_ALGORITHMS, DEFAULTS, PANIC_MODES } from './defaults.ts';
import {
  boolean,
  choice,
  clean,
  duration,
  durationOrZero,
  integer,
  isRecord,
  leaf,
  listenAddress,
  nonEmptyString,
  notAbove,
  type Path,
  pairIssue,
  REQUIRED,
  ratio,
  section,
  size,
  strict,
} from './fields.ts';
import { parseHeaderRemove, parseHeaderSet } from './header-rules.ts';
import { type ConfigIssue, formatPath, issueLines, mapIssue } from './issues.ts';
import { parseProbePath, parseRoutePath } from './paths.ts';
import type {
  CacheConfig,
  Config,
  HealthConfig,
  ListenAddress,
  LogFormat,
  PoolConfig,
  RouteConfig,
  ServerConfig,
} from './types.ts';
import {
  addressesCollide,
  describeValue,
  formatAddress,
  formatDuration,
  LOG_FORMATS,
  LOG_LEVELS,
  type Parsed,
  parseAddress,
  parseAdminToken,
  parseChoice,
  parseDuration,
  parseHostHeader,
  parseHostPattern,
  parseIpOrCidr,
  parseSize,
  parseStatusRange,
  parseUpgrades,
  parseWorkers,
} from './values.ts';

// ---------------------------------------------------------------------------------------------
// The file

const trustedProxies = leaf(
  (value) => {
    if (!Array.isArray(value)) {
      return { ok: false, message: `expected a list of IP addresses or CIDRs (got ${describeValue(value)})` };
    }
    const out: string[] = [];
    const problems: { path: Path; message: string }[] = [];
    value.forEach((item, i) => {
      const r = parseIpOrCidr(item);
      if (r.ok) out.push(r.value);
      else problems.push({ path: [i], message: r.message });
    });
    return problems.length ? { ok: false, problems } : { ok: true, value: out };
  },
  () => [],
);

/** A request head is held whole while it arrives: beyond this, one client could take a lot. */
const MAX_HEAD = 1024 * 1024;

/** A size in a cross-field message. */
const bytes = (n: number) => `${n} bytes`;

const timeouts = strict({
  connect: duration(DEFAULTS.timeouts.connect),
  responseHeaders: duration(DEFAULTS.timeouts.responseHeaders),
  clientHeader: duration(DEFAULTS.timeouts.clientHeader),
  clientBody: duration(DEFAULTS.timeouts.clientBody),
  clientIdle: duration(DEFAULTS.timeouts.clientIdle),
  upstreamIdle: duration(DEFAULTS.timeouts.upstreamIdle),
  shutdown: duration(DEFAULTS.timeouts.shutdown),
  // Part of shutdown: what is left of it after the delay is for requests in flight.
  shutdownDelay: durationOrZero(DEFAULTS.timeouts.shutdownDelay),
}).superRefine(...notAbove('shutdownDelay', 'shutdown', formatDuration));

const limits = strict({
  maxRequestLine: size(DEFAULTS.limits.maxRequestLine, 64, MAX_HEAD),
  maxHead: size(DEFAULTS.limits.maxHead, 64, MAX_HEAD),
  maxBody: leaf(
    (v) => (v === null ? { ok: true, value: null } : parseSize(v)),
    (): number | null => null,
  ),
  replayBody: size(DEFAULTS.limits.replayBody, 0),
  oneWrite: size(DEFAULTS.limits.oneWrite, 0),
  maxConnections: integer(DEFAULTS.limits.maxConnections, 1, 1_000_000),
}).superRefine(...notAbove('maxRequestLine', 'maxHead', bytes));

const retries = strict({
  attempts: integer(DEFAULTS.retries.attempts, 1, 10),
  backoffMin: duration(DEFAULTS.retries.backoffMin),
  backoffMax: duration(DEFAULTS.retries.backoffMax),
  budgetRatio: ratio(DEFAULTS.retries.budgetRatio),
  budgetMinRetries: integer(DEFAULTS.retries.budgetMinRetries, 0, 1_000_000),
  budgetWindow: leaf(
    (v): Parsed<number> => {
      const r = parseDuration(v);
      return r.ok && r.value < 1000 ? { ok: false, message: 'must be at least 1s' } : r;
    },
    () => DEFAULTS.retries.budgetWindow,
  ),
}).superRefine(...notAbove('backoffMin', 'backoffMax', formatDuration));

const cache = strict({
  maxBytes: size(DEFAULTS.cache.maxBytes, 1024),
  maxObjectBytes: size(DEFAULTS.cache.maxObjectBytes, 1),
  staleIfError: durationOrZero(DEFAULTS.cache.staleIfError),
  lockTimeout: duration(DEFAULTS.cache.lockTimeout),
  storeWithCookie: boolean(DEFAULTS.cache.storeWithCookie),
})
  .superRefine(...notAbove('maxObjectBytes', 'maxBytes', bytes))
  .transform(
    (v): CacheConfig => ({
      maxBytes: v.maxBytes,
      maxObjectBytes: v.maxObjectBytes,
      staleIfError: v.staleIfError,
      lockTimeout: v.lockTimeout,
      storeWithCookie: v.storeWithCookie,
    }),
  );

const health = strict({
  path: leaf(parseProbePath, () => DEFAULTS.health.path),
  host: leaf(parseHostHeader, (): string | undefined => undefined),
  interval: duration(DEFAULTS.health.interval),
  timeout: duration(DEFAULTS.health.timeout),
  rise: integer(DEFAULTS.health.rise, 1, 100),
  fall: integer(DEFAULTS.health.fall, 1, 100),
  expectStatus: leaf(parseStatusRange, () => [...DEFAULTS.health.expectStatus] as const),
  ejectAfter: integer(DEFAULTS.health.ejectAfter, 1, 1000),
  ejection: duration(DEFAULTS.health.ejection),
  maxEjection: duration(DEFAULTS.health.maxEjection),
  ejectionDecay: duration(DEFAULTS.health.ejectionDecay),
  maxEjectedPercent: integer(DEFAULTS.health.maxEjectedPercent, 0, 100),
  slowStart: durationOrZero(DEFAULTS.health.slowStart),
})
  .superRefine(...notAbove('ejection', 'maxEjection', formatDuration))
  .superRefine(
    (v, ctx) => {
      const [timeout, interval] = [formatDuration(v.timeout), formatDuration(v.interval)];
      if (v.timeout >= v.interval) {
        pairIssue(
          ctx,
          'timeout',
          `must be less than interval (${timeout} >= ${interval})`,
          'interval',
          `must be greater than timeout (${interval} <= ${timeout})`,
        );
      }
    },
    { when: (p) => isRecord(p.value) && clean(p.issues, ['timeout'], ['interval']) },
  )
  .transform(
    (v): HealthConfig => ({
      path: v.path,
      host: v.host,
      interval: v.interval,
      timeout: v.timeout,
      rise: v.rise,
      fall: v.fall,
      expectStatus: v.expectStatus,
      ejectAfter: v.ejectAfter,
      ejection: v.ejection,
      maxEjection: v.maxEjection,
      ejectionDecay: v.ejectionDecay,
      maxEjectedPercent: v.maxEjectedPercent,
      slowStart: v.slowStart,
    }),
  );

const server = z.preprocess(
  (value) => (typeof value === 'string' || typeof value === 'number' ? { address: value } : value),
  strict({
    address: leaf(parseAddress, REQUIRED),
    weight: integer(DEFAULTS.server.weight, 1, 1000),
    name: leaf(nonEmptyString, (): string | undefined => undefined),
  }).transform(
    (v): ServerConfig => ({
      address: v.address.address,
      host: v.address.host,
      port: v.address.port,
      weight: v.weight,
      name: v.name ?? v.address.address,
    }),
  ),
);

/**
 * A list refinement: each item whose `keyOf` another item before it has is an issue at its index
 * (`message(key, firstIndex)`); items without a key (invalid ones, reported elsewhere) are skipped.
 */
function uniqueBy(
  keyOf: (item: unknown) => string | undefined,
  message: (key: string, first: number) => string,
): (list: unknown[], ctx: z.RefinementCtx) => void {
  return (list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((item, i) => {
      const key = keyOf(item);
      if (key === undefined) return;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else ctx.addIssue({ code: 'custom', path: [i], message: message(key, first) });
    });
  };
}

const servers = z
  .array(server)
  .min(1, 'at least one server is required')
  .superRefine(
    uniqueBy(
      (s) => (isRecord(s) && typeof s.name === 'string' && typeof s.port === 'number' ? s.name : undefined),
      (name, first) => `duplicate server name "${name}" (same as servers[${first}]; set a distinct name)`,
    ),
    { when: (p) => Array.isArray(p.value) },
  );

const pool = strict({
  balance: choice(BALANCE_ALGORITHMS, DEFAULTS.pool.balance),
  servers,
  health: section(health),
  maxIdlePerBackend: integer(DEFAULTS.pool.maxIdlePerBackend, 0, 100_000),
  panic: choice(PANIC_MODES, DEFAULTS.pool.panic),
});

const POOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

// A `__proto__` key would set the prototype of zod's output, not add a pool: refused by name.
const refuseProto = (value: unknown, ctx: z.RefinementCtx) => {
  if (isRecord(value) && Object.hasOwn(value, '__proto__'))
    ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'invalid pool name (a reserved word)' });
  return value;
};

const pools = z.preprocess(refuseProto, z.record(z.string(), pool)).superRefine(
  (record, ctx) => {
    const names = Object.keys(record);
    if (names.length === 0) ctx.addIssue({ code: 'custom', message: 'at least one pool is required' });
    for (const name of names) {
      if (!POOL_NAME.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'invalid pool name (use letters, digits, "_", "-" and ".")',
        });
      }
    }
  },
  { when: (p) => isRecord(p.value) },
);

const headerSet = leaf(parseHeaderSet, (): Record<string, string> => ({}));
const headerRemove = leaf(parseHeaderRemove, (): string[] => []);

const route = strict({
  host: leaf(parseHostPattern, () => DEFAULTS.route.host),
  path: leaf(parseRoutePath, () => DEFAULTS.route.path),
  stripPrefix: boolean(DEFAULTS.route.stripPrefix),
  pool: leaf(nonEmptyString, REQUIRED),
  headers: section(strict({ set: headerSet, remove: headerRemove })),
  cache: boolean(DEFAULTS.route.cache),
}).transform(
  (v): RouteConfig => ({
    host: v.host,
    path: v.path,
    stripPrefix: v.stripPrefix,
    pool: v.pool,
    headers: { set: v.headers.set, remove: v.headers.remove },
    cache: v.cache,
  }),
);

const routes = z.preprocess(
  (value) => value ?? undefined,
  z
    .array(route)
    .min(1, 'at least one route is required')
    .superRefine(
      // The first of two routes with one host and path takes all their requests (as nginx
      // refuses a duplicate location).
      uniqueBy(
        (r) =>
          isRecord(r) && typeof r.host === 'string' && typeof r.path === 'string'
            ? `${r.host} ${r.path}`
            : undefined,
        (key, first) => `same host and path as routes[${first}] (${key}): it would never match`,
      ),
      { when: (p) => Array.isArray(p.value) },
    )
    .optional(),
);

function defaultRoute(pool: string): RouteConfig {
  return { ...DEFAULTS.route, pool, headers: { set: {}, remove: [] } };
}

/** The schema of the whole file; its output is the complete `Config`. */
export const configSchema = strict({
  listen: listenAddress(DEFAULTS.listen),
  admin: leaf(
    (value): Parsed<ListenAddress | null> => {
      if (value === null || value === false) return { ok: true, value: null };
      const r = parseAddress(value, { listening: true });
      if (r.ok) return { ok: true, value: { host: r.value.host, port: r.value.port } };
      return { ok: false, message: `${r.message} (or false to disable the admin listener)` };
    },
    (): ListenAddress | null => ({ ...DEFAULTS.admin }),
  ),
  logLevel: choice(LOG_LEVELS, DEFAULTS.logLevel),
  logFormat: leaf(
    (v) => parseChoice(v, LOG_FORMATS),
    (): LogFormat | undefined => undefined,
  ),
  workers: leaf(parseWorkers, (): number | 'auto' => DEFAULTS.workers),
  accessLog,
  trustedProxies,
  adminToken: leaf(parseAdminToken, (): string | undefined => undefined),
  upgrades: leaf(parseUpgrades, () => [...DEFAULTS.upgrades]),
  underscoresInHeaders: boolean(DEFAULTS.underscoresInHeaders),
  timeouts: section(timeouts),
  limits: section(limits),
  retries: section(retries),
  dnsRefresh: duration(DEFAULTS.dnsRefresh),
  cache: section(cache),
  pools,
  routes,
})
  .superRefine(
    (v, ctx) => {
      // Routes name defined pools; without routes, the only pool takes everything.
      const poolsUsable =
        clean(
          ctx.issues.filter((i) => i.path?.length === 1),
          ['pools'],
        ) && isRecord(v.pools);
      const names = poolsUsable ? Object.keys(v.pools).sort() : [];
      if (names.length > 0) {
        if (v.routes === undefined && names.length > 1) {
          ctx.addIssue({
            code: 'custom',
            path: ['routes'],
            message: 'required when there are several pools',
          });
        }
        if (Array.isArray(v.routes)) {
          v.routes.forEach((r: unknown, i: number) => {
            if (!isRecord(r) || typeof r.pool !== 'string' || names.includes(r.pool)) return;
            ctx.addIssue({
              code: 'custom',
              path: ['routes', i, 'pool'],
              message: `unknown pool "${r.pool}" (pools are: ${names.join(', ')})`,
            });
          });
        }
      }
      const listen: unknown = v.listen;
      const admin: unknown = v.admin;
      if (isListen(listen) && isListen(admin) && addressesCollide(listen, admin)) {
        ctx.addIssue({
          code: 'custom',
          path: ['admin'],
          message: `conflicts with listen (${formatAddress(admin)} and ${formatAddress(listen)})`,
        });
      }
    },
    { when: (p) => isRecord(p.value) },
  )
  .transform(
    (v): Config => ({
      listen: v.listen,
      admin: v.admin,
      logLevel: v.logLevel,
      logFormat: v.logFormat,
      workers: v.workers,
      accessLog: v.accessLog,
      trustedProxies: v.trustedProxies,
      adminToken: v.adminToken,
      upgrades: v.upgrades,
      underscoresInHeaders: v.underscoresInHeaders,
      timeouts: v.timeouts,
      limits: v.limits,
      retries: v.retries,
      dnsRefresh: v.dnsRefresh,
      cache: v.cache,
      pools: Object.entries(v.pools).map(
        ([name, p]): PoolConfig => ({
          name,
          balance: p.balance,
          servers: p.servers,
          health: p.health,
          maxIdlePerBackend: p.maxIdlePerBackend,
          panic: p.panic,
        }),
      ),
      routes: v.routes ?? [defaultRoute(Object.keys(v.pools)[0] ?? '')],
    }),
  );

function isListen(value: unknown): value is ListenAddress {
  return isRecord(value) && typeof value.host === 'string' && typeof value.port === 'number';
}

// ---------------------------------------------------------------------------------------------
// Validation (the problems as lines: issues.ts)

export type Validation = { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] };

/**
 * Longer lists are refused before zod sees them: no list of the file needs as many, and zod
 * gathers the problems of each item with push(...issues), which overflows the stack near 100,000.
 */
const MAX_ITEMS = 10_000;

function longLists(value: unknown, path: PropertyKey[] = []): ConfigIssue[] {
  if (Array.isArray(value)) {
    if (value.length > MAX_ITEMS)
      return [{ path, text: `${formatPath(path)}: at most ${MAX_ITEMS} items (got ${value.length})` }];
    return value.flatMap((item, i) => longLists(item, [...path, i]));
  }
  return isRecord(value) ? Object.entries(value).flatMap(([key, v]) => longLists(v, [...path, key])) : [];
}

/** Validate the value parsed from YAML (or built by hand) and fill every default. */
export function validateConfig(input: unknown): Validation {
  const tooLong = longLists(input);
  if (tooLong.length > 0) return { ok: false, issues: tooLong };
  const result = configSchema.safeParse(input === null || input === undefined ? {} : input, {
    error: mapIssue,
  });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, issues: result.error.issues.flatMap(issueLines) };
}
