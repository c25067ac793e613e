// The zod schema of the YAML configuration file. `validateConfig` turns the parsed YAML value
// into the fully defaulted `Config` of types.ts, or into a list of problems, each one line
// `path: message` (`pools.web.servers[1].address: expected host:port`), all of them at once.
//
// Leaves are parsed by the pure functions of values.ts (so the CLI overrides share the exact
// syntax and messages); zod supplies the structure: strict objects (unknown keys are errors, with
// a suggestion when a known key is close), lists, the pool mapping, and the cross-field checks.

import { z } from 'zod';
import type {
  BalanceAlgorithm,
  CacheConfig,
  Config,
  HealthConfig,
  ListenAddress,
  PoolConfig,
  RouteConfig,
  ServerConfig,
} from './types.ts';
import {
  addressesCollide,
  closest,
  describeValue,
  formatAddress,
  formatDuration,
  isToken,
  LOG_LEVELS,
  type Parsed,
  parseAddress,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseHeaderValue,
  parseHostHeader,
  parseHostPattern,
  parseInteger,
  parseIpOrCidr,
  parsePath,
  parseSize,
  parseStatusRange,
} from './values.ts';

export const BALANCE_ALGORITHMS: readonly BalanceAlgorithm[] = ['round-robin', 'random', 'p2c'];
export const PANIC_MODES: readonly PoolConfig['panic'][] = ['open', 'closed'];

/** Every default of the file, in the units of `Config` (ms, bytes). */
export const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '127.0.0.1', port: 9100 },
  logLevel: 'info',
  accessLog: true,
  timeouts: {
    connect: 3_000,
    responseHeaders: 30_000,
    clientHeader: 10_000,
    clientIdle: 60_000,
    upstreamIdle: 30_000,
    shutdown: 30_000,
  },
  limits: { maxRequestLine: 8 * 1024, maxHead: 16 * 1024, maxBody: null },
  retries: { attempts: 3 },
  dnsRefresh: 30_000,
  pool: { balance: 'round-robin', maxIdlePerBackend: 64, panic: 'open' },
  health: { path: '/', interval: 2_000, timeout: 1_000, rise: 2, fall: 3, expectStatus: [200, 399] },
  server: { weight: 1 },
  route: { host: '*', path: '/', stripPrefix: false, cache: false },
  cache: {
    maxBytes: 256 * 1024 ** 2,
    maxObjectBytes: 8 * 1024 ** 2,
    staleIfError: 3_600_000,
    lockTimeout: 5_000,
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Building blocks

type Path = PropertyKey[];

const REQUIRED = Symbol('required');

/**
 * A leaf value parsed by `parse`; when the key is absent, `fallback()` (or the issue `required`).
 * A parse may report several problems at sub-paths (header maps do).
 */
function leaf<T>(
  parse: (value: unknown) => Parsed<T> | { ok: false; problems: { path: Path; message: string }[] },
  fallback: (() => T) | typeof REQUIRED,
) {
  return z
    .unknown()
    .optional()
    .transform((value, ctx): T => {
      if (value === undefined) {
        if (fallback !== REQUIRED) return fallback();
        ctx.issues.push({ code: 'custom', message: 'required', input: value });
        return z.NEVER;
      }
      const result = parse(value);
      if (result.ok) return result.value;
      const problems = 'problems' in result ? result.problems : [{ path: [], message: result.message }];
      for (const p of problems) {
        ctx.issues.push({
          code: 'custom',
          message: p.message,
          input: value,
          path: p.path as (string | number)[],
        });
      }
      return z.NEVER;
    });
}

const UNKNOWN_KEYS = 'unknown-keys:';

/** An object whose unknown keys are errors; the message carries the known keys for suggestions. */
function strict<S extends z.ZodRawShape>(shape: S) {
  const known = JSON.stringify(Object.keys(shape));
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? UNKNOWN_KEYS + known : undefined),
  });
}

/** A nested mapping whose keys all have defaults: absent or null means `{}`. */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((value) => value ?? {}, schema);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** No issue so far at or below any of these paths (relative to the schema being refined). */
function clean(issues: readonly { path?: PropertyKey[] }[], ...paths: Path[]): boolean {
  return !issues.some((iss) => paths.some((p) => p.every((seg, i) => iss.path?.[i] === seg)));
}

const duration = (fallback: number) => leaf(parseDuration, () => fallback);
const size = (fallback: number, min: number) =>
  leaf(
    (v) => {
      const r = parseSize(v);
      return r.ok && r.value < min ? { ok: false, message: `must be at least ${min} bytes` } : r;
    },
    () => fallback,
  );
const integer = (fallback: number, min: number, max: number) =>
  leaf(
    (v) => parseInteger(v, min, max),
    () => fallback,
  );
const boolean = (fallback: boolean) => leaf(parseBoolean, () => fallback);
const choice = <T extends string>(choices: readonly T[], fallback: T) =>
  leaf(
    (v) => parseChoice(v, choices),
    () => fallback,
  );
const listenAddress = (fallback: ListenAddress) =>
  leaf(
    (v): Parsed<ListenAddress> => {
      const r = parseAddress(v, { listening: true });
      return r.ok ? { ok: true, value: { host: r.value.host, port: r.value.port } } : r;
    },
    () => ({ ...fallback }),
  );

function nonEmptyString(value: unknown): Parsed<string> {
  if (typeof value !== 'string' || value.trim() === '') {
    return { ok: false, message: `expected a non-empty string (got ${describeValue(value)})` };
  }
  return { ok: true, value: value.trim() };
}

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

const timeouts = strict({
  connect: duration(DEFAULTS.timeouts.connect),
  responseHeaders: duration(DEFAULTS.timeouts.responseHeaders),
  clientHeader: duration(DEFAULTS.timeouts.clientHeader),
  clientIdle: duration(DEFAULTS.timeouts.clientIdle),
  upstreamIdle: duration(DEFAULTS.timeouts.upstreamIdle),
  shutdown: duration(DEFAULTS.timeouts.shutdown),
});

const limits = strict({
  maxRequestLine: size(DEFAULTS.limits.maxRequestLine, 64),
  maxHead: size(DEFAULTS.limits.maxHead, 64),
  maxBody: leaf(
    (v) => (v === null ? { ok: true, value: null } : parseSize(v)),
    (): number | null => null,
  ),
}).superRefine(
  (v, ctx) => {
    if (v.maxRequestLine > v.maxHead) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxRequestLine'],
        message: `must not be larger than maxHead (${v.maxRequestLine} > ${v.maxHead} bytes)`,
      });
    }
  },
  { when: (p) => isRecord(p.value) && clean(p.issues, ['maxRequestLine'], ['maxHead']) },
);

const retries = strict({ attempts: integer(DEFAULTS.retries.attempts, 1, 10) });

/** A duration that may be zero (`0`, `0s`): the feature is off. */
const durationOrZero = (fallback: number) =>
  leaf(
    (v): Parsed<number> =>
      v === 0 || (typeof v === 'string' && /^0+(?:\.0+)?\s*(?:ms|s|m|h)?$/.test(v.trim()))
        ? { ok: true, value: 0 }
        : parseDuration(v),
    () => fallback,
  );

const cache = strict({
  maxBytes: size(DEFAULTS.cache.maxBytes, 1024),
  maxObjectBytes: size(DEFAULTS.cache.maxObjectBytes, 1),
  staleIfError: durationOrZero(DEFAULTS.cache.staleIfError),
  lockTimeout: duration(DEFAULTS.cache.lockTimeout),
})
  .superRefine(
    (v, ctx) => {
      if (v.maxObjectBytes > v.maxBytes) {
        ctx.addIssue({
          code: 'custom',
          path: ['maxObjectBytes'],
          message: `must not be larger than maxBytes (${v.maxObjectBytes} > ${v.maxBytes} bytes)`,
        });
      }
    },
    { when: (p) => isRecord(p.value) && clean(p.issues, ['maxObjectBytes'], ['maxBytes']) },
  )
  .transform(
    (v): CacheConfig => ({
      maxBytes: v.maxBytes,
      maxObjectBytes: v.maxObjectBytes,
      staleIfError: v.staleIfError,
      lockTimeout: v.lockTimeout,
    }),
  );

const health = strict({
  path: leaf(parsePath, () => DEFAULTS.health.path),
  host: leaf(parseHostHeader, (): string | undefined => undefined),
  interval: duration(DEFAULTS.health.interval),
  timeout: duration(DEFAULTS.health.timeout),
  rise: integer(DEFAULTS.health.rise, 1, 100),
  fall: integer(DEFAULTS.health.fall, 1, 100),
  expectStatus: leaf(parseStatusRange, () => [...DEFAULTS.health.expectStatus] as const),
})
  .superRefine(
    (v, ctx) => {
      if (v.timeout >= v.interval) {
        ctx.addIssue({
          code: 'custom',
          path: ['timeout'],
          message: `must be less than interval (${formatDuration(v.timeout)} >= ${formatDuration(v.interval)})`,
        });
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

const servers = z
  .array(server)
  .min(1, 'at least one server is required')
  .superRefine(
    (list, ctx) => {
      const seen = new Map<string, number>();
      list.forEach((s, i) => {
        if (!isRecord(s) || typeof s.name !== 'string' || typeof s.port !== 'number') return;
        const first = seen.get(s.name);
        if (first === undefined) seen.set(s.name, i);
        else {
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `duplicate server name "${s.name}" (same as servers[${first}]; set a distinct name)`,
          });
        }
      });
    },
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

const pools = z.record(z.string(), pool).superRefine(
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

const headerSet = leaf(
  (value) => {
    if (!isRecord(value))
      return {
        ok: false,
        message: `expected a mapping of header names to values (got ${describeValue(value)})`,
      };
    const out: Record<string, string> = {};
    const lower = new Map<string, string>();
    const problems: { path: Path; message: string }[] = [];
    for (const [name, raw] of Object.entries(value)) {
      if (!isToken(name)) {
        problems.push({ path: [name], message: 'invalid header name' });
        continue;
      }
      const previous = lower.get(name.toLowerCase());
      if (previous !== undefined) {
        problems.push({ path: [name], message: `duplicate header name (same as "${previous}")` });
        continue;
      }
      lower.set(name.toLowerCase(), name);
      const r = parseHeaderValue(raw);
      if (r.ok) out[name] = r.value;
      else problems.push({ path: [name], message: r.message });
    }
    return problems.length ? { ok: false, problems } : { ok: true, value: out };
  },
  (): Record<string, string> => ({}),
);

const headerRemove = leaf(
  (value) => {
    if (!Array.isArray(value))
      return { ok: false, message: `expected a list of header names (got ${describeValue(value)})` };
    const problems: { path: Path; message: string }[] = [];
    value.forEach((name, i) => {
      if (typeof name !== 'string') {
        problems.push({ path: [i], message: `expected a header name (got ${describeValue(name)})` });
      } else if (!isToken(name)) {
        problems.push({ path: [i], message: `invalid header name ${describeValue(name)}` });
      }
    });
    return problems.length ? { ok: false, problems } : { ok: true, value: value as string[] };
  },
  (): string[] => [],
);

const route = strict({
  host: leaf(parseHostPattern, () => DEFAULTS.route.host),
  path: leaf(parsePath, () => DEFAULTS.route.path),
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
  z.array(route).min(1, 'at least one route is required').optional(),
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
  accessLog: boolean(DEFAULTS.accessLog),
  trustedProxies,
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
      accessLog: v.accessLog,
      trustedProxies: v.trustedProxies,
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
// Problems as lines

/** `pools.web.servers[1].address`; keys that are not plain words are quoted: `pools["a b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? '(root)' : out;
}

const mapIssue: z.core.$ZodErrorMap = (iss) => {
  if (iss.input === undefined && (iss.code === 'invalid_type' || iss.code === 'custom')) return 'required';
  if (iss.code === 'invalid_type') {
    const expected =
      iss.expected === 'object' || iss.expected === 'record'
        ? 'a mapping'
        : iss.expected === 'array'
          ? 'a list'
          : iss.expected;
    return `expected ${expected} (got ${describeValue(iss.input)})`;
  }
  return undefined;
};

function issueLines(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    const known: string[] = issue.message.startsWith(UNKNOWN_KEYS)
      ? JSON.parse(issue.message.slice(UNKNOWN_KEYS.length))
      : [];
    return issue.keys.map((key) => {
      const suggestion = closest(key, known);
      const hint = suggestion
        ? ` (did you mean "${suggestion}"?)`
        : known.length
          ? ` (known keys: ${known.join(', ')})`
          : '';
      return `${formatPath([...issue.path, key])}: unknown key${hint}`;
    });
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}

export type Validation = { ok: true; config: Config } | { ok: false; issues: string[] };

/** Validate the value parsed from YAML (or built by hand) and fill every default. */
export function validateConfig(input: unknown): Validation {
  const result = configSchema.safeParse(input === null || input === undefined ? {} : input, {
    error: mapIssue,
  });
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, issues: result.error.issues.flatMap(issueLines) };
}
