// The validated, defaulted configuration every other module reads. Durations are milliseconds,
// sizes are bytes. `src/config/schema.ts` turns YAML, flags and environment into this shape.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
/** JSON lines, or `time level message key=value` lines for a person at a terminal. */
export type LogFormat = 'json' | 'text';
export type BalanceAlgorithm = 'round-robin' | 'random' | 'p2c';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface ServerConfig {
  /** The address as written in the file, e.g. `127.0.0.1:9001` or `web.internal:80`. */
  address: string;
  host: string;
  port: number;
  weight: number;
  /** Stable label for logs and metrics; defaults to `address`. */
  name: string;
}

export interface HealthConfig {
  path: string;
  /** Host header of the probe; defaults to the server's address. */
  host: string | undefined;
  interval: number;
  timeout: number;
  rise: number;
  fall: number;
  /** Inclusive status range that counts as a pass. */
  expectStatus: readonly [number, number];
  /** Consecutive failures of real requests (passive checks) that eject a backend. */
  ejectAfter: number;
  /** The first ejection's length (ms); each further one doubles it, up to maxEjection. */
  ejection: number;
  maxEjection: number;
  /** Time not ejected after which the doubling steps back once (ms). */
  ejectionDecay: number;
  /** Passive checks never eject more than this share of a pool (so never a pool's only backend). */
  maxEjectedPercent: number;
  /** The weight ramp of a backend coming back (ms); 0 turns slow start off. */
  slowStart: number;
}

export interface PoolConfig {
  name: string;
  balance: BalanceAlgorithm;
  servers: ServerConfig[];
  health: HealthConfig;
  /** Most idle keep-alive connections kept per backend. */
  maxIdlePerBackend: number;
  /** When nothing is routable: `open` tries every backend anyway, `closed` answers 503. */
  panic: 'open' | 'closed';
}

export interface HeaderRules {
  set: Record<string, string>;
  remove: string[];
}

export interface RouteConfig {
  /** `api.example.test`, `*.example.test` or `*`, lower case. */
  host: string;
  /** Path prefix, starting with `/`. */
  path: string;
  stripPrefix: boolean;
  pool: string;
  headers: HeaderRules;
  cache: boolean;
}

export interface TimeoutsConfig {
  connect: number;
  responseHeaders: number;
  clientHeader: number;
  /**
   * A request body must progress by at least 1 KiB within this, or it gets 408 (the client's
   * slowness, never counted against the backend).
   */
  clientBody: number;
  clientIdle: number;
  upstreamIdle: number;
  /** How long SIGTERM waits for in-flight work before closing everything (the delay included). */
  shutdown: number;
  /**
   * After SIGTERM, how long /readyz answers 503 while new connections are still served (each
   * response with `Connection: close`), so that what sends traffic here (keepalived, Kubernetes
   * endpoints) turns away first; then the listener closes. 0: at once.
   */
  shutdownDelay: number;
}

export interface LimitsConfig {
  maxRequestLine: number;
  maxHead: number;
  /** Largest request body accepted, or null for no limit. */
  maxBody: number | null;
  /** A complete request body up to this size is kept, so the request can go to another backend. */
  replayBody: number;
  /** A response body up to this size goes to the client in the same write as its head. */
  oneWrite: number;
  /**
   * Most client connections open at once; further ones are closed at accept. Lowered at start to
   * what the descriptor limit allows once backend connections and probes have theirs.
   */
  maxConnections: number;
}

export interface RetryConfig {
  /** Total attempts per request, the first included. */
  attempts: number;
  /** Bounds of the jittered exponential backoff between attempts (ms). */
  backoffMin: number;
  backoffMax: number;
  /** Retries a pool allows per request over the budget window... */
  budgetRatio: number;
  /** ...and at least this many in the window, however few the requests. */
  budgetMinRetries: number;
  /** The sliding window of the retry budget (ms, whole seconds). */
  budgetWindow: number;
}

/** The shared response cache, used by routes with `cache: true` (one store for all of them). */
export interface CacheConfig {
  /** Bytes the cache may hold in all (bodies, fields and bookkeeping); LRU eviction beyond. */
  maxBytes: number;
  /** Largest object stored; a larger response passes through uncached. */
  maxObjectBytes: number;
  /**
   * How long (ms) past its freshness a stored response may still answer when the backend fails
   * (refused, timed out, 5xx) and the response itself grants no `stale-if-error`; 0: never.
   */
  staleIfError: number;
  /** How long (ms) a request waits for a coalesced miss of the same URL before it goes itself. */
  lockTimeout: number;
  /**
   * Store answers to requests that carry Cookie even when the response does not say `public` or
   * `s-maxage` (default false: such answers are often personal).
   */
  storeWithCookie: boolean;
}

/** The access log (src/observe/access-log.ts): buffered JSON lines. */
export interface AccessLogConfig {
  /** `stdout`, or the path of a file (appended to; reopened on SIGUSR1, for logrotate). */
  to: string;
  /** Bytes buffered before a write. */
  buffer: number;
  /** Most time (ms) a line waits in the buffer. */
  flush: number;
}

export interface Config {
  listen: ListenAddress;
  /** The admin listener (/healthz, /readyz, /status, later /metrics), or null for none. */
  admin: ListenAddress | null;
  logLevel: LogLevel;
  /** undefined: text when stdout is a terminal, JSON otherwise. */
  logFormat: LogFormat | undefined;
  /** Proxy processes sharing the listen port; `auto`: one per core this process may use. */
  workers: number | 'auto';
  /** One line per request, or false for none. */
  accessLog: AccessLogConfig | false;
  /** Peers (IPs or CIDRs) whose X-Forwarded-For and Forwarded values are kept. */
  trustedProxies: string[];
  /** Bearer token the admin port asks for (every endpoint but /healthz and /readyz), if any. */
  adminToken: string | undefined;
  /** Upgrade protocols tunnelled (lower case); others are not offered to the backend. */
  upgrades: string[];
  /** Pass request fields whose names contain `_` (default false: dropped, as nginx does). */
  underscoresInHeaders: boolean;
  timeouts: TimeoutsConfig;
  limits: LimitsConfig;
  retries: RetryConfig;
  /** How often DNS names of servers are resolved again (ms). */
  dnsRefresh: number;
  cache: CacheConfig;
  pools: PoolConfig[];
  routes: RouteConfig[];
}
