// The shared cache in the proxy: the shell around the pure RFC 9111 core (policy.ts, store.ts,
// coalesce.ts). One ProxyCache per Sluice instance holds the store; each request on a route with
// `cache: true` gets a CacheFlow, which the exchange (src/proxy/exchange.ts) consults at a few
// narrow points:
//
//   flow.begin()            → answer from the cache now | forward (maybe a conditional head) |
//                             wait for a coalesced miss of the same key, then begin() again
//   flow.onResponse(head)   → pass the backend's response on (with X-Cache, body teed into the
//                             store through `sink`) | answer from the cache instead (a 304 that
//                             freshened the entry, a 5xx under stale-if-error) | restart
//                             unconditionally (a 304 for another representation)
//   flow.onFailure()        → the backend failed before answering: serve stale if allowed
//   flow.render(keepAlive)  → the bytes of an answer made from the cache
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
//   is served stale within the largest of the response's and the request's `stale-if-error` and
//   `cache.staleIfError` (RFC 9111 4.2.4 permits stale responses when disconnected), never under
//   must-revalidate, proxy-revalidate or no-cache. Every stale answer carries `X-Cache: STALE`
//   and `Warning: 110 - "Response is Stale"`: RFC 9111 obsoleted Warning, but clients and
//   monitoring still read it, and the project asked for a warning header on stale content.
// - Times are Date.now() (ms), not the proxy's coarse tick clock, so Age is exact.
// - The hot path of a hit: a request without Cache-Control, Pragma, If-Match or
//   If-Unmodified-Since is checked against figures kept per stored entry (freshness lifetime,
//   initial age, the serialized head without Age), the same answer servingDecision gives
//   without re-parsing the stored fields on every request.
// - Cache answers are counted in sluice_cache_requests_total only: no backend took part, so they
//   are not in the per-backend sluice_http_requests_total.
import type { CacheConfig } from '../config/types.ts';
import {
  type BodyFraming,
  type HeaderField,
  headerValue,
  type RequestHead,
  type ResponseHead,
} from '../http/message.ts';
import { plainResponse } from '../http/responses.ts';
import { field } from '../http/serialize.ts';
import type { CacheResult, Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { Coalescer, type FlightOutcome } from './coalesce.ts';
import { requestCacheControl } from './directives.ts';
import {
  cacheKey,
  invalidatedKeys,
  isCacheableRequest,
  isStaleIfErrorStatus,
  type PolicyOptions,
  prepareEntry,
  servingDecision,
  staleIfErrorAllowed,
  storageDecision,
  updateFrom304,
  urlKey,
} from './policy.ts';
import { refresh } from './refresher.ts';
import { type CacheAnswer, entryInfo, renderEntry, withoutConditionals } from './render.ts';
import { type CacheEntry, CacheStore, type CacheWriter } from './store.ts';

export { type CacheAnswer, type EntryInfo, entryInfo, renderEntry, withoutConditionals } from './render.ts';

export interface ProxyCacheOptions {
  config: CacheConfig;
  /** How long a background revalidation may take in all (ms). */
  refreshTimeout: number;
  metrics?: Metrics;
  /** ms since the epoch (default Date.now). */
  now?: () => number;
}

export type CacheStep =
  | { kind: 'answer' }
  /** Go to the backend; `head` replaces the request's own upstream head when defined. */
  | { kind: 'forward'; head: string | undefined }
  /** A coalesced miss: wait for `ready`, then call begin() again. */
  | { kind: 'wait'; ready: Promise<void> };

export type ResponseAction =
  | { kind: 'pass'; extra: HeaderField[]; sink: ((data: Buffer) => void) | undefined }
  | { kind: 'answer' }
  | { kind: 'restart'; head: string };

const ANSWER: CacheStep = Object.freeze({ kind: 'answer' });
const FORWARD: CacheStep = Object.freeze({ kind: 'forward', head: undefined });
/** A request with any of these does not lead a coalesced flight (its answer may not be storable). */
const NOT_LEADING = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
]);

/** Request fields that take a request off the fast path of a hit (directives, preconditions). */
const DIRECTIVE_FIELDS = new Set(['cache-control', 'pragma', 'if-match', 'if-unmodified-since']);

export class ProxyCache {
  readonly store: CacheStore;
  readonly flights = new Coalescer();
  readonly refreshes = new Coalescer();
  readonly now: () => number;
  readonly metrics: Metrics | undefined;
  config: CacheConfig;
  policy: PolicyOptions;
  refreshTimeout: number;
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
   * The flow of one request on a cache route. `headFor` serializes a variant of the request for
   * the backend (the exchange's own upstream head, with other fields); `eligible` is false for
   * requests that must never use the cache (a body, an Upgrade).
   */
  open(
    request: RequestHead,
    pool: BackendPool,
    headFor: (head: RequestHead) => string,
    eligible: boolean,
  ): CacheFlow {
    return new CacheFlow(this, request, pool, headFor, eligible);
  }

  keyOf(request: RequestHead, pool: string): string {
    return `${cacheKey(request)} ${pool}`;
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

  /** Primary keys (without pool) an unsafe request invalidated. */
  invalidate(keys: readonly string[]): void {
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

export class CacheFlow {
  /** For sluice_cache_requests_total and the access log. */
  result: CacheResult = 'bypass';
  /** The client got an answer made by the cache (no backend response passed through). */
  answered = false;
  readonly request: RequestHead;
  readonly pool: BackendPool;
  readonly headFor: (head: RequestHead) => string;
  private readonly cache: ProxyCache;
  private readonly eligible: boolean;
  /** The X-Cache value. */
  private label = 'BYPASS';
  private mode: 'bypass' | 'miss' | 'revalidate' = 'bypass';
  private key = '';
  /** The stored variant for this request: to serve, to revalidate, or to fall back on. */
  private entry: CacheEntry | undefined;
  private gatewayTimeout = false;
  private finishFlight: ((outcome: FlightOutcome) => void) | undefined;
  private writer: CacheWriter | undefined;
  private requestTime = 0;
  private waited = false;
  private counted = false;

  constructor(
    cache: ProxyCache,
    request: RequestHead,
    pool: BackendPool,
    headFor: (head: RequestHead) => string,
    eligible: boolean,
  ) {
    this.cache = cache;
    this.request = request;
    this.pool = pool;
    this.headFor = headFor;
    this.eligible = eligible;
  }

  /** `x-cache: …` as a raw head line, for answers Sluice makes itself (502, 503, 504). */
  get headerLine(): string {
    return `x-cache: ${this.label}\r\n`;
  }

  /** Looks the request up and says what to do. Call again after a `wait` step resolved. */
  begin(): CacheStep {
    const request = this.request;
    if (!this.eligible) return FORWARD;
    const plain = isPlain(request);
    if (!plain && !isCacheableRequest(request)) return FORWARD;
    const cache = this.cache;
    const now = cache.now();
    if (this.key === '') this.key = cache.keyOf(request, this.pool.name);
    const entry = cache.store.get(this.key, request);
    this.entry = entry;
    if (plain && entry !== undefined) {
      // servingDecision's answer for a request without directives, from the kept figures.
      const info = entryInfo(entry, cache.policy);
      if (!info.noCache && info.lifetime > info.initialAge + Math.max(0, (now - info.responseTime) / 1000))
        return this.serve('hit', 'HIT');
    }
    const decision = servingDecision(request, entry, now, cache.policy);
    switch (decision.action) {
      case 'fresh':
        return this.serve('hit', 'HIT');
      case 'stale-ok':
        return this.serve('stale', 'STALE');
      case 'stale-while-revalidate':
        if (entry) cache.revalidateInBackground(this, entry, decision.conditionalHeaders);
        return this.serve('stale', 'STALE');
      case 'gateway-timeout':
        this.result = 'miss';
        this.label = 'MISS';
        this.gatewayTimeout = true;
        return ANSWER;
      case 'revalidate':
        this.mode = 'revalidate';
        break;
      case 'miss':
        this.mode = 'miss';
        break;
    }
    this.result = 'miss';
    this.label = 'MISS';
    if (!this.waited && this.mayCoalesce()) {
      const flights = cache.flights;
      if (this.mayLead() || flights.has(this.key)) {
        const flight = flights.join(this.key);
        if (!flight.leader) return { kind: 'wait', ready: this.waitFor(flight.wait) };
        this.finishFlight = flight.finish;
      }
    }
    this.requestTime = now;
    if (decision.action !== 'revalidate') return FORWARD;
    const headers = [...withoutConditionals(request.headers), ...decision.conditionalHeaders];
    return { kind: 'forward', head: this.headFor({ ...request, headers }) };
  }

  /** The backend's response head arrived: pass it on (and store it), or answer from the cache. */
  onResponse(head: ResponseHead, framing: BodyFraming): ResponseAction {
    const cache = this.cache;
    const request = this.request;
    // One X-Cache per response, ours: an upstream cache's own is neither passed on nor stored.
    if (headerValue(head.headers, 'x-cache') !== undefined)
      head.headers = head.headers.filter((header) => header.lower !== 'x-cache');
    if (this.mode === 'bypass') {
      if (request.method !== 'GET' && request.method !== 'HEAD')
        cache.invalidate(invalidatedKeys(request, head));
      return this.pass(undefined);
    }
    const now = cache.now();
    const entry = this.entry;
    if (this.mode === 'revalidate' && entry !== undefined && head.status === 304) {
      const freshened = updateFrom304(entry, head, this.requestTime, now, cache.policy);
      if (freshened !== undefined) {
        // Evicted meanwhile: still answer this request with the freshened copy.
        if (!cache.store.update(entry, freshened)) this.entry = { ...entry, ...freshened };
        this.end('stored');
        this.serve('revalidated', 'REVALIDATED');
        return { kind: 'answer' };
      }
      // The 304 names another representation: ask again without conditions (RFC 9111 4.3.3).
      cache.store.delete(entry);
      this.entry = undefined;
      this.mode = 'miss';
      this.requestTime = now;
      return {
        kind: 'restart',
        head: this.headFor({ ...request, headers: withoutConditionals(request.headers) }),
      };
    }
    if (
      entry !== undefined &&
      isStaleIfErrorStatus(head.status) &&
      staleIfErrorAllowed(request, entry, now, cache.policy)
    ) {
      this.end('failed');
      this.serve('stale', 'STALE');
      return { kind: 'answer' };
    }
    if (request.method === 'HEAD') {
      if (entry !== undefined && head.status === 200 && validatorsDiffer(entry.headers, head.headers))
        cache.store.delete(entry);
      return this.bypass();
    }
    const decision = storageDecision(request, head, cache.policy);
    if (!decision.store || (framing.kind === 'length' && framing.length > cache.config.maxObjectBytes))
      return this.bypass();
    // A body under a transfer coding other than chunked (gzip …) is not the representation.
    if (framing.kind !== 'none' && framing.kind !== 'length' && framing.codings !== undefined)
      return this.bypass();
    this.writer = cache.beginWrite(
      this.key,
      this.pool.name,
      prepareEntry(request, head, this.requestTime, now),
    );
    return this.pass(this.sink);
  }

  /** The backend failed before a response: true when a stale copy answers instead. */
  onFailure(): boolean {
    const entry = this.entry;
    if (this.mode === 'bypass' || entry === undefined) {
      this.end('failed');
      return false;
    }
    this.end('failed');
    if (!staleIfErrorAllowed(this.request, entry, this.cache.now(), this.cache.policy)) return false;
    this.serve('stale', 'STALE');
    return true;
  }

  /** The answer made from the cache (after an `answer` step or action, or onFailure() === true). */
  render(keepAlive: boolean): CacheAnswer {
    this.answered = true;
    const request = this.request;
    const entry = this.entry;
    if (this.gatewayTimeout || entry === undefined) {
      const head = plainResponse(504, 'not in the cache (only-if-cached)', {
        close: !keepAlive,
        head: request.method === 'HEAD',
        extra: this.headerLine,
      });
      return { status: 504, head, body: [], bodyBytes: 0 };
    }
    return renderEntry(entry, request, this.cache.now(), this.label, keepAlive, this.cache.policy);
  }

  /** The exchange ended; `complete`: the whole response reached the client. */
  done(complete: boolean): void {
    const writer = this.writer;
    if (writer !== undefined) {
      this.writer = undefined;
      if (complete) this.end(writer.commit() === undefined ? 'uncacheable' : 'stored');
      else writer.abort();
    }
    this.end(complete ? 'uncacheable' : 'failed');
    if (!this.counted) {
      this.counted = true;
      this.cache.metrics?.cacheResult(this.result);
    }
  }

  /** Each decoded body chunk of a response being stored (the client's copy is not delayed). */
  private readonly sink = (data: Buffer): void => {
    const writer = this.writer;
    if (writer === undefined || writer.write(data)) return;
    // Over maxObjectBytes: passed through uncached.
    this.writer = undefined;
    this.result = 'bypass';
    this.end('uncacheable');
  };

  private serve(result: CacheResult, label: string): CacheStep {
    this.result = result;
    this.label = label;
    return ANSWER;
  }

  private pass(sink: ((data: Buffer) => void) | undefined): ResponseAction {
    return { kind: 'pass', extra: [field('X-Cache', this.label)], sink };
  }

  private bypass(): ResponseAction {
    this.result = 'bypass';
    this.label = 'BYPASS';
    this.end('uncacheable');
    return this.pass(undefined);
  }

  /** Ends the coalesced flight this request leads, if any (once). */
  private end(outcome: FlightOutcome): void {
    const finish = this.finishFlight;
    if (finish === undefined) return;
    this.finishFlight = undefined;
    finish(outcome);
  }

  private mayCoalesce(): boolean {
    const headers = this.request.headers;
    return headerValue(headers, 'authorization') === undefined && !requestCacheControl(headers).noCache;
  }

  private mayLead(): boolean {
    if (this.request.method !== 'GET') return false;
    for (const header of this.request.headers) if (NOT_LEADING.has(header.lower)) return false;
    return true;
  }

  /** The leader's outcome, or the lock timeout, whichever comes first. */
  private waitFor(wait: Promise<FlightOutcome>): Promise<void> {
    this.waited = true;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.cache.config.lockTimeout);
      timer.unref();
      void wait.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** No directive or precondition: a hit can be decided from the entry's kept figures. */
function isPlain(request: RequestHead): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  for (const header of request.headers) if (DIRECTIVE_FIELDS.has(header.lower)) return false;
  return true;
}

/** A response's ETag or Last-Modified names another representation than the stored one. */
export function validatorsDiffer(stored: readonly HeaderField[], received: readonly HeaderField[]): boolean {
  for (const name of ['etag', 'last-modified']) {
    const now = headerValue(received, name);
    if (now !== undefined && now !== headerValue(stored, name)) return true;
  }
  return false;
}
