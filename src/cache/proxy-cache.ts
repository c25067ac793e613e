// The shared cache in the proxy: the shell around the pure RFC 9111 core (policy.ts, store.ts,
// coalesce.ts). One ProxyCache per Sluice instance holds the store; each request on a route with
// `cache: true` gets a CacheFlow (./flow.ts), which the exchange (src/proxy/exchange.ts)
// consults at a few narrow points:
//
//   flow.begin()            → answer from the cache now | forward (maybe a conditional head) |
//                             wait for a coalesced miss of the same key, then begin() again
//   flow.onResponse(head)   → pass the backend's response on (with X-Cache, body teed into the
//                             store through `sink`) | answer from the cache instead (a 304 that
//                             freshened the entry, a 5xx under stale-if-error) | restart
//                             unconditionally (a 304 for another representation)
//   flow.onFailure()        → the backend failed before answering: serve stale if allowed, or
//                             say the stale copy must be revalidated (Sluice answers 504)
//   flow.render(keepAlive)  → the bytes of an answer made from the cache
//   flow.renderJoined(…)    → the usual hit as one buffer kept across requests, or undefined
//   flow.done(complete)     → commit or drop the stored copy, end the coalesced flight, count
//
// Keys: the primary key of policy.cacheKey (`http://host/target`), a space, and the route's
// pool: two pools behind the same host and path never share entries (they may be different
// applications). Purges and invalidations by URL therefore cover every pool seen so far.
//
// Choices:
// - A HEAD is answered from a stored GET; on a miss it is forwarded as a HEAD (not stored), and a
//   stale entry is revalidated with a conditional HEAD (a 304 freshens the entry, RFC 9111 4.3.5;
//   a 200 whose validators differ drops it). No GET is sent in its place, so a HEAD costs the
//   backend no body.
// - A miss carrying the client's own conditionals (If-None-Match, ...) or Range is forwarded as
//   it is; its answer (often a 304 or 206) is not stored. Only plain GETs lead coalesced flights;
//   other GETs and HEADs may follow one already in flight. Requests with Authorization or
//   `no-cache` never coalesce.
// - When the backend fails (no backend, refused, timed out, 500/502/503/504), a stored response
//   is served stale within the response's or the request's `stale-if-error`, else (neither gave
//   one) `cache.staleIfError` (RFC 9111 4.2.4 permits stale responses when disconnected), never under
//   must-revalidate, proxy-revalidate or no-cache. A stale copy under must-revalidate,
//   proxy-revalidate or s-maxage that could not be revalidated gets the client Sluice's 504
//   instead of its 502 or 503 (RFC 9111 5.2.2.2). Every stale answer carries `X-Cache: STALE`
//   and `Warning: 110 - "Response is Stale"`: RFC 9111 obsoleted Warning, but clients and
//   monitoring still read it, and the project asked for a warning header on stale content.
// - Times are Date.now() (ms), not the proxy's coarse tick clock, so Age is exact.
// - The hot path of a hit: a request without Cache-Control, Pragma, If-Match or
//   If-Unmodified-Since is checked against figures kept per stored entry (freshness lifetime,
//   initial age, the serialized head without Age), the same answer servingDecision gives
//   without re-parsing the stored fields on every request. On a route without header rules the
//   client's fields decide it (forwarding adds no directive, and sends the authority as Host);
//   the forwarded fields are made only for Vary, a directive, a conditional or a miss. The
//   usual answer (a GET on a kept HTTP/1.1 connection, up to limits.oneWrite of body) is kept as
//   one buffer per entry and Age value, at most render.JOINED_LIMIT (1 MiB) of them in all.
// - Cache answers are counted in sluice_cache_requests_total only: no backend took part, so they
//   are not in the per-backend sluice_http_requests_total.
import type { CacheConfig } from '../config/types.ts';
import type { HeaderField, RequestHead } from '../http/message.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { Coalescer } from './coalesce.ts';
import { CacheFlow, type FlowRequest } from './flow.ts';
import { cacheKey, type PolicyOptions, targetKey, urlKey } from './policy.ts';
import { refresh } from './refresher.ts';
import { withoutConditionals } from './render.ts';
import { type CacheEntry, CacheStore, type CacheWriter } from './store.ts';

export {
  CacheFlow,
  type CacheStep,
  type FlowRequest,
  type ResponseAction,
  validatorsDiffer,
} from './flow.ts';
export {
  type CacheAnswer,
  type EntryInfo,
  entryInfo,
  type JoinedAnswer,
  joinedHit,
  renderEntry,
  withoutConditionals,
} from './render.ts';

export interface ProxyCacheOptions {
  config: CacheConfig;
  /** How long a background revalidation may take in all (ms). */
  refreshTimeout: number;
  metrics?: Metrics;
  /** ms since the epoch (default Date.now). */
  now?: () => number;
}

export class ProxyCache {
  readonly store: CacheStore;
  readonly flights = new Coalescer();
  readonly refreshes = new Coalescer();
  readonly now: () => number;
  readonly metrics: Metrics | undefined;
  config: CacheConfig;
  policy: PolicyOptions;
  refreshTimeout: number;
  private lastKey: { host: string; target: string; pool: string; key: string } | undefined;
  /** Pools that have stored something: the key suffixes a purge by URL covers. */
  private readonly pools = new Set<string>();

  constructor(options: ProxyCacheOptions) {
    this.config = options.config;
    this.policy = policyOf(options.config);
    this.refreshTimeout = options.refreshTimeout;
    this.metrics = options.metrics;
    this.now = options.now ?? Date.now;
    this.store = new CacheStore({
      maxBytes: options.config.maxBytes,
      maxObjectBytes: options.config.maxObjectBytes,
    });
  }

  /** A reloaded config: new limits apply at once (evicting down to them); entries stay. */
  configure(config: CacheConfig, refreshTimeout: number): void {
    this.config = config;
    this.policy = policyOf(config);
    this.refreshTimeout = refreshTimeout;
    this.store.resize(config);
  }

  get bytes(): number {
    return this.store.bytes;
  }

  /**
   * The flow of one request on a cache route; `eligible` is false for requests that must never
   * use the cache (a body, an Upgrade).
   */
  open(request: FlowRequest, pool: BackendPool, eligible: boolean): CacheFlow {
    return new CacheFlow(this, request, pool, eligible);
  }

  keyOf(request: RequestHead, pool: string): string {
    return `${cacheKey(request)} ${pool}`;
  }

  /**
   * keyOf for a request whose Host is `host`, without its fields. The last key made is kept: a
   * hot entry asked for again gets the same string, whose hash the store's map already knows.
   */
  keyAt(host: string, target: string, pool: string): string {
    const last = this.lastKey;
    if (last !== undefined && target === last.target && host === last.host && pool === last.pool)
      return last.key;
    const key = `${targetKey(target, host)} ${pool}`;
    this.lastKey = { host, target, pool, key };
    return key;
  }

  /** Removes every variant of `url` (an absolute http URL), in `pool` or in every pool. */
  purgeUrl(url: string, pool?: string): number {
    const key = urlKey(url);
    if (pool !== undefined) return this.store.purge(`${key} ${pool}`);
    let n = 0;
    for (const name of this.pools) n += this.store.purge(`${key} ${name}`);
    return n;
  }

  /** Removes every entry whose URL starts with `prefix`, in `pool` or in every pool. */
  purgePrefix(prefix: string, pool?: string): number {
    const suffix = ` ${pool}`;
    return this.store.purgePrefix(
      urlKey(prefix),
      pool === undefined ? undefined : (key) => key.endsWith(suffix),
    );
  }

  /** Told of the keys this process invalidated: a cluster's worker passes them to the others. */
  onInvalidate: ((keys: readonly string[]) => void) | undefined;

  /** Primary keys (without pool) an unsafe request invalidated. */
  invalidate(keys: readonly string[]): void {
    this.forget(keys);
    this.onInvalidate?.(keys);
  }

  /** Removes every pool's copies of these primary keys (here, or another worker's invalidation). */
  forget(keys: readonly string[]): void {
    for (const key of keys) for (const name of this.pools) this.store.purge(`${key} ${name}`);
  }

  beginWrite(key: string, pool: string, meta: Parameters<CacheStore['beginWrite']>[1]): CacheWriter {
    this.pools.add(pool);
    return this.store.beginWrite(key, meta);
  }

  /** stale-while-revalidate: one background revalidation per stored variant at a time. */
  revalidateInBackground(flow: CacheFlow, entry: CacheEntry, conditional: readonly HeaderField[]): void {
    const flight = this.refreshes.join(`${entry.key}\n${entry.varyKey}`);
    if (!flight.leader) return;
    const request = flow.request;
    const base = withoutConditionals(request.headers);
    const get: RequestHead = { method: 'GET', target: request.target, versionMinor: 1, headers: base };
    refresh({
      pool: flow.pool,
      head: flow.headFor({ ...get, headers: [...base, ...conditional] }),
      request: get,
      entry,
      cache: this,
      timeoutMs: this.refreshTimeout,
    }).then(
      (outcome) => flight.finish(outcome),
      () => flight.finish('failed'),
    );
  }
}

function policyOf(config: CacheConfig): PolicyOptions {
  return { staleIfError: config.staleIfError / 1000, storeWithCookie: config.storeWithCookie };
}
