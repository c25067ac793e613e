// One request's way through the shared cache (src/cache/proxy-cache.ts has the cache itself and
// the API this flow follows): the lookup, the decision, storing the backend's answer, and the
// answers made from stored entries.
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
import type { Coalescer, FlightOutcome } from './coalesce.ts';
import { updateFrom304 } from './conditionals.ts';
import { requestCacheControl } from './directives.ts';
import { StallWatch } from './leader-stall.ts';
import { hasMethodOverride } from './method-override.ts';
import {
  invalidatedKeys,
  isCacheableRequest,
  isStaleIfErrorStatus,
  mustRevalidateStale,
  type PolicyOptions,
  prepareEntry,
  servingDecision,
  staleIfErrorAllowed,
  storageDecision,
} from './policy.ts';
import {
  type CacheAnswer,
  entryInfo,
  hasConditional,
  type JoinedAnswer,
  joinedHit,
  renderEntry,
  withoutConditionals,
} from './render.ts';
import type { CacheEntry, CacheStore, CacheWriter } from './store.ts';

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

/** What answers when the backend failed before a response (CacheFlow.onFailure). */
export type FailureFallback = 'stale' | 'must-revalidate' | undefined;

/**
 * How long in all a flight's leader may keep the backend paused for its own slow client before
 * its followers are released (one of them leads anew). Why not read the backend on into the store
 * regardless of the client, as nginx does with temp files: Sluice has no disk buffer, and what
 * the slow client has not read yet would be a second in-memory copy, outside maxBytes, held per
 * slow client for as long as it takes (see test/component/slow-clients.test.ts: a client that
 * does not read holds no more than a socket's worth). Releasing costs the backend one more
 * request per slow leader and no memory.
 */
export const LEADER_STALL_GRACE_MS = 200;

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

/** What a flow uses of its cache: ProxyCache (./proxy-cache.ts, which makes flows). */
export interface FlowCache {
  readonly store: CacheStore;
  readonly flights: Coalescer;
  readonly metrics: Metrics | undefined;
  readonly config: CacheConfig;
  readonly policy: PolicyOptions;
  now(): number;
  keyOf(request: RequestHead, pool: string): string;
  keyAt(host: string, target: string, pool: string): string;
  beginWrite(key: string, pool: string, meta: Parameters<CacheStore['beginWrite']>[1]): CacheWriter;
  invalidate(keys: readonly string[]): void;
  revalidateInBackground(flow: CacheFlow, entry: CacheEntry, conditional: readonly HeaderField[]): void;
}

/**
 * The request a flow serves, as the proxy admitted it (src/proxy/heads.ts CacheSubject). The
 * cache keys, matches Vary and stores on the fields as forwarded; a hit never forwards them, so
 * they are made only when a decision reads them.
 */
export interface FlowRequest {
  /** The client's head with the normalized target. */
  readonly client: RequestHead;
  /**
   * The Host the backend gets, when forwarding adds no field the cache reads (no header rules:
   * then the forwarded request has a directive or conditional field only if `client` has it);
   * undefined when only forwarded() tells.
   */
  readonly host: string | undefined;
  /** The request as the backend gets it (the fields as forwarded); the same object every time. */
  forwarded(): RequestHead;
  /** The bytes for the backend of a variant of forwarded() with other fields. */
  headFor(head: RequestHead): string;
}

export class CacheFlow {
  /** For sluice_cache_requests_total and the access log. */
  result: CacheResult = 'bypass';
  /** The client got an answer made by the cache (no backend response passed through). */
  answered = false;
  readonly pool: BackendPool;
  private readonly source: FlowRequest;
  private readonly cache: FlowCache;
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
  /** When a follower stops waiting (the lock timeout, across flights it joins); 0 before it waits. */
  private waitUntil = 0;
  private counted = false;
  /** While this request leads a flight: how long its client has held the backend. */
  private stall: StallWatch | undefined;

  constructor(cache: FlowCache, source: FlowRequest, pool: BackendPool, eligible: boolean) {
    this.cache = cache;
    this.source = source;
    this.pool = pool;
    this.eligible = eligible;
  }

  /** The request as forwarded (made on first use). */
  get request(): RequestHead {
    return this.source.forwarded();
  }

  /** The fields as forwarded, which Vary selects on (the store reads them for a Vary entry only). */
  get headers(): readonly HeaderField[] {
    return this.source.forwarded().headers;
  }

  headFor(head: RequestHead): string {
    return this.source.headFor(head);
  }

  /** `x-cache: …` as a raw head line, for answers Sluice makes itself (502, 503, 504). */
  get headerLine(): string {
    return `x-cache: ${this.label}\r\n`;
  }

  /** Looks the request up and says what to do. Call again after a `wait` step resolved. */
  begin(): CacheStep {
    if (!this.eligible) return FORWARD;
    const { client, host } = this.source;
    // Without header rules, forwarding adds no directive: the client's fields tell.
    const plain = host !== undefined ? isPlain(client) : isPlain(this.request);
    if (!plain && (!isCacheableRequest(this.request) || hasMethodOverride(this.request.headers)))
      return FORWARD;
    const cache = this.cache;
    const now = cache.now();
    if (this.key === '')
      this.key =
        host !== undefined
          ? cache.keyAt(host, client.target, this.pool.name)
          : cache.keyOf(this.request, this.pool.name);
    const entry = cache.store.get(this.key, this);
    this.entry = entry;
    if (plain && entry !== undefined) {
      // servingDecision's answer for a request without directives, from the kept figures.
      const info = entryInfo(entry, cache.policy);
      if (!info.noCache && info.lifetime > info.initialAge + Math.max(0, (now - info.responseTime) / 1000))
        return this.serve('hit', 'HIT');
    }
    const request = this.request;
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
        // Evicted meanwhile, or not to be kept: still answer this request with the freshened copy.
        if (!freshened.keep) cache.store.delete(entry);
        if (!freshened.keep || !cache.store.update(entry, freshened)) this.entry = { ...entry, ...freshened };
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
    // A closure made only here, where a body is stored: a hit makes none.
    return this.pass((data) => this.take(data));
  }

  /**
   * The backend failed before a response: `stale` when a stale copy answers instead,
   * `must-revalidate` when the stale copy may not answer without the origin (then 504), else
   * undefined.
   */
  onFailure(): FailureFallback {
    this.end('failed');
    const entry = this.entry;
    if (this.mode === 'bypass' || entry === undefined) return undefined;
    const cache = this.cache;
    const now = cache.now();
    if (staleIfErrorAllowed(this.request, entry, now, cache.policy)) {
      this.serve('stale', 'STALE');
      return 'stale';
    }
    return mustRevalidateStale(entry, now, cache.policy) ? 'must-revalidate' : undefined;
  }

  /** The answer made from the cache (after an `answer` step or action, or onFailure() === 'stale'). */
  render(keepAlive: boolean): CacheAnswer {
    this.answered = true;
    const request = this.answering;
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

  /**
   * The usual hit (see joinedHit) as one buffer kept across requests, with no body over
   * `maxBody`; undefined for any other answer, which render() makes.
   */
  renderJoined(keepAlive: boolean, maxBody: number): JoinedAnswer | undefined {
    const entry = this.entry;
    if (this.gatewayTimeout || entry === undefined) return undefined;
    const joined = joinedHit(
      entry,
      this.answering,
      this.cache.now(),
      this.label,
      keepAlive,
      maxBody,
      this.cache.policy,
    );
    if (joined !== undefined) this.answered = true;
    return joined;
  }

  /**
   * The exchange paused the backend for its client's backpressure (true) or resumed it (false).
   * A leader whose client holds the backend for LEADER_STALL_GRACE_MS in all releases its
   * followers; it still gets its whole answer, and still stores it if it can.
   */
  backendPaused(paused: boolean): void {
    if (this.finishFlight === undefined) return;
    if (!paused) this.stall?.resume();
    else {
      this.stall ??= new StallWatch(LEADER_STALL_GRACE_MS, () => this.end('released'));
      this.stall.pause();
    }
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

  /**
   * The head an answer reads (method, version, conditionals): the client's when forwarding adds
   * no field (no header rules) and the client sent no conditional that forwarding might drop.
   */
  private get answering(): RequestHead {
    const { client, host } = this.source;
    return host !== undefined && !hasConditional(client) ? client : this.request;
  }

  /** Each decoded body chunk of a response being stored (the client's copy is not delayed). */
  private take(data: Buffer): void {
    const writer = this.writer;
    if (writer === undefined || writer.write(data)) return;
    // Over maxObjectBytes: passed through uncached.
    this.writer = undefined;
    this.result = 'bypass';
    this.end('uncacheable');
  }

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
    this.stall?.cancel();
    this.stall = undefined;
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

  /**
   * The leader's outcome, or the lock timeout, whichever comes first. Released by its leader, a
   * follower joins again (and may lead), within what is left of its lock timeout.
   */
  private waitFor(wait: Promise<FlightOutcome>): Promise<void> {
    this.waited = true;
    if (this.waitUntil === 0) this.waitUntil = this.cache.now() + this.cache.config.lockTimeout;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, this.waitUntil - this.cache.now()));
      timer.unref();
      void wait.then((outcome) => {
        clearTimeout(timer);
        if (outcome === 'released') this.waited = false;
        resolve();
      });
    });
  }
}

/** No directive or precondition: a hit can be decided from the entry's kept figures. */
function isPlain(request: RequestHead): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  for (const header of request.headers) if (isDirectiveField(header.lower)) return false;
  return true;
}

/**
 * Request fields that take a request off the fast path of a hit (directives, preconditions, a
 * method override, which bypasses the cache). A
 * switch on the length, not a Set: a name parsed a moment ago has no hash yet.
 */
function isDirectiveField(lower: string): boolean {
  switch (lower.length) {
    case 6:
      return lower === 'pragma';
    case 8:
      return lower === 'if-match';
    case 13:
      return lower === 'cache-control' || lower === 'x-http-method';
    case 17:
      return lower === 'x-method-override' || lower === 'x-original-method';
    case 18:
      return lower === 'x-forwarded-method';
    case 19:
      return lower === 'if-unmodified-since';
    case 22:
      return lower === 'x-http-method-override';
    default:
      return false;
  }
}

/** A response's ETag or Last-Modified names another representation than the stored one. */
export function validatorsDiffer(stored: readonly HeaderField[], received: readonly HeaderField[]): boolean {
  for (const name of ['etag', 'last-modified']) {
    const now = headerValue(received, name);
    if (now !== undefined && now !== headerValue(stored, name)) return true;
  }
  return false;
}
