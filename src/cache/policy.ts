// The RFC 9111 shared-cache policy as pure functions: what may be stored, how long it stays
// fresh, how old it is, whether a stored response may answer a request, how to revalidate it
// and what an unsafe request invalidates. No I/O and no clock: every time is a parameter.
//
// Units: points in time (`now`, `requestTime`, `responseTime`) are ms since the epoch, like
// Date.now() and the proxy's Clock; durations (ages, lifetimes, directive values) are seconds,
// as HTTP counts them, and may be fractional (ms precision) until `ageHeaderValue` floors them.
//
// API
//   isCacheableRequest(req)                      may this request use the cache at all?
//   storageDecision(req, res, options?)          { store: true } | { store: false, reason }
//   prepareEntry(req, res, requestTime, responseTime)   the CachedResponse to store
//   freshnessLifetime(res, options?)             seconds (s-maxage > max-age > Expires > heuristic)
//   currentAge(entry, now)                       seconds (RFC 9111 4.2.3)
//   servingDecision(req, entry | undefined, now, options?)   fresh / stale-ok /
//                                                stale-while-revalidate / revalidate / miss / gateway-timeout
//   staleIfErrorAllowed(req, entry, now, options?)   may a stale entry answer when the backend failed?
//   isStaleIfErrorStatus(status)                 500, 502, 503, 504 (RFC 5861 4)
//   mustRevalidateStale(entry, now, options?)    stale under must-revalidate: 504 when disconnected
//   responseVary(headers) / varyKey(req, vary)   secondary key (RFC 9111 4.1)
//   cacheKey(req, scheme?) / urlKey(url)         primary key: scheme://host[:port]target
//   targetKey(target, host, scheme?)             the same from a target and a Host value
//   conditionalHeaders(entry)                    If-None-Match / If-Modified-Since to revalidate
//   (conditionals.ts: freshening a copy from a 304, and answering a client's own conditional)
//   invalidatedKeys(req, res, scheme?)           keys an unsafe request invalidates (4.4)
//   ageHeaderValue(age)                          the Age field value to send
//
// Choices beyond the letter of RFC 9111, each a shared-cache reading of it:
// - HEAD responses are not stored (they have no body to serve a GET); a stored GET answers HEAD.
// - Set-Cookie responses are never stored unless `shareSetCookie` (even with `public`): a shared
//   copy would hand one user's cookie to everyone. Set-Cookie is never taken from a 304 either.
// - A heuristically cacheable response (RFC 9110 15.1) with no explicit freshness is stored when
//   it has Last-Modified (heuristic lifetime) or an ETag (stored stale, revalidated on use).
// - `s-maxage` implies proxy-revalidate (RFC 9111 5.2.2.10), so a request's max-stale cannot
//   stretch it; but the origin's own `stale-while-revalidate` / `stale-if-error` in the same
//   response still apply (they are the origin's explicit grant, as CDNs read `s-maxage=60,
//   stale-while-revalidate=30`). `must-revalidate`, `proxy-revalidate` and `no-cache` always win.
// - Requests with If-Match or If-Unmodified-Since are passed to the origin (RFC 9111 4.3.2:
//   those preconditions are for the origin server).
// - No Warning header here: RFC 9111 obsoleted it (the proxy adds `110` to stale answers, see
//   proxy-cache.ts).
// - Stored fields never include Content-Length or other framing (the proxy re-frames; use the
//   entry's body length) and keep the origin's Age, which currentAge folds in: when serving,
//   replace Age with ageHeaderValue(decision.age).
import { connectionTokens, endToEndFields } from '../http/hop-by-hop.ts';
import { type HeaderField, headerValue, type RequestHead, type ResponseHead } from '../http/message.ts';
import { field } from '../http/serialize.ts';
import {
  type CacheControl,
  formatHttpDate,
  listMembers,
  parseHttpDate,
  requestCacheControl,
  responseCacheControl,
} from './directives.ts';
import { responseVary, varyKey } from './keys.ts';

export { cacheKey, invalidatedKeys, responseVary, targetKey, urlKey, varyKey } from './keys.ts';

/** A stored response without its body: what the policy needs. */
export interface CachedResponse {
  status: number;
  reason: string;
  /** Stored fields: hop-by-hop, framing and no-cache/private-qualified fields removed; Date always present. */
  headers: HeaderField[];
  /** ms: when the request that produced this response was sent (request_time, RFC 9111 4.2.3). */
  requestTime: number;
  /** ms: when the response head was received (response_time). */
  responseTime: number;
  /** The response's Vary names, lower case, sorted, joined by ', ' ('' for none, '*' for *). */
  vary: string;
  /** varyKey(request, vary) of the request that produced it. */
  varyKey: string;
}

export interface PolicyOptions {
  /** Store responses that carry Set-Cookie (default false, even with `public`). */
  shareSetCookie?: boolean;
  /**
   * Store answers to requests with Cookie that do not say `public` or `s-maxage` (default false:
   * an answer to a request with a session cookie is usually that user's own page).
   */
  storeWithCookie?: boolean;
  /** Fraction of (Date - Last-Modified) taken as heuristic lifetime (default 0.1, RFC 9111 4.2.2). */
  heuristicFraction?: number;
  /** Cap of a heuristic lifetime in seconds (default 86400). */
  maxHeuristicSeconds?: number;
  /** Seconds of staleness allowed on backend errors when the response grants none (default 0). */
  staleIfError?: number;
}

export type NoStoreReason =
  | 'method'
  | 'request-no-store'
  | 'status'
  | 'partial'
  | 'must-understand'
  | 'no-store'
  | 'private'
  | 'authorization'
  | 'cookie'
  | 'set-cookie'
  | 'vary-star'
  | 'no-freshness';

export type StorageDecision = { store: true } | { store: false; reason: NoStoreReason };

export type RevalidateReason =
  | 'no-cache'
  | 'request-no-cache'
  | 'request-max-age'
  | 'request-min-fresh'
  | 'stale';
export type MissReason = 'no-entry' | 'method' | 'request-no-store' | 'precondition' | 'no-validator';

export type ServingDecision =
  /** Serve the entry as it is; `age` in seconds. */
  | { action: 'fresh'; age: number }
  /** Serve the stale entry: the request's max-stale allows it. */
  | { action: 'stale-ok'; age: number }
  /** Serve the stale entry now and revalidate in the background with `conditionalHeaders`. */
  | { action: 'stale-while-revalidate'; age: number; conditionalHeaders: HeaderField[] }
  /** Ask the origin with `conditionalHeaders` (never empty); a 304 freshens the entry. */
  | { action: 'revalidate'; reason: RevalidateReason; conditionalHeaders: HeaderField[] }
  /** Go to the origin as if nothing were stored. */
  | { action: 'miss'; reason: MissReason }
  /** only-if-cached and nothing usable: answer 504 (RFC 9111 5.2.1.7). */
  | { action: 'gateway-timeout' };

/** The fields freshened by a 304 (RFC 9111 4.3.4) and the exchange's times. */
export interface Freshened {
  headers: HeaderField[];
  requestTime: number;
  responseTime: number;
  /** A shared cache may keep it (the 304 said neither no-store nor private). */
  keep: boolean;
}

const MAX_AGE_VALUE = 2147483648;
/** RFC 9110 15.1: heuristically cacheable (206 among them, but ranges are not stored). */
const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);
/** Final status codes whose caching rules Sluice implements (for must-understand). */
const UNDERSTOOD_STATUSES = new Set([
  200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407,
  408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
]);

export function has(headers: readonly HeaderField[], lower: string): boolean {
  return headers.some((field) => field.lower === lower);
}

export function dateField(headers: readonly HeaderField[], lower: string, now?: number): number | undefined {
  const value = headerValue(headers, lower);
  return value === undefined ? undefined : parseHttpDate(value, now);
}

// --- requests and storage ----------------------------------------------------------------

/** GET or HEAD without `Cache-Control: no-store` (RFC 9111 3, 5.2.1.5): may use the cache. */
export function isCacheableRequest(req: RequestHead): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  return !requestCacheControl(req.headers).noStore;
}

function hasExplicitFreshness(cc: CacheControl, headers: readonly HeaderField[]): boolean {
  return cc.sMaxAge !== undefined || cc.maxAge !== undefined || has(headers, 'expires');
}

/** May a shared cache store `res`, the answer to `req`? RFC 9111 section 3. */
export function storageDecision(
  req: RequestHead,
  res: ResponseHead,
  options: PolicyOptions = {},
): StorageDecision {
  if (req.method !== 'GET') return { store: false, reason: 'method' };
  if (requestCacheControl(req.headers).noStore) return { store: false, reason: 'request-no-store' };
  if (res.status < 200 || res.status === 304) return { store: false, reason: 'status' };
  if (res.status === 206) return { store: false, reason: 'partial' };
  const cc = responseCacheControl(res.headers);
  if (cc.mustUnderstand) {
    // 5.2.2.3: only a cache that understands the status may store; it then ignores no-store.
    if (!UNDERSTOOD_STATUSES.has(res.status)) return { store: false, reason: 'must-understand' };
  } else if (cc.noStore) {
    return { store: false, reason: 'no-store' };
  }
  if (cc.private) return { store: false, reason: 'private' };
  if (has(req.headers, 'authorization') && !cc.public && !cc.mustRevalidate && cc.sMaxAge === undefined) {
    return { store: false, reason: 'authorization' };
  }
  if (!options.storeWithCookie && has(req.headers, 'cookie') && !cc.public && cc.sMaxAge === undefined) {
    return { store: false, reason: 'cookie' };
  }
  if (!options.shareSetCookie && (has(res.headers, 'set-cookie') || has(res.headers, 'set-cookie2'))) {
    return { store: false, reason: 'set-cookie' };
  }
  if (responseVary(res.headers) === '*') return { store: false, reason: 'vary-star' };
  if (hasExplicitFreshness(cc, res.headers) || cc.public) return { store: true };
  if (HEURISTIC_STATUSES.has(res.status) && (has(res.headers, 'last-modified') || has(res.headers, 'etag'))) {
    return { store: true };
  }
  return { store: false, reason: 'no-freshness' };
}

/**
 * The fields a shared cache keeps (RFC 9111 3.1): no hop-by-hop or framing fields, no fields
 * named by Connection, no Proxy-Authentication-Info, none named by `no-cache="…"` or `private="…"`.
 */
function storedFields(headers: readonly HeaderField[], cc: CacheControl): HeaderField[] {
  const dropped = new Set([...cc.noCacheFields, ...cc.privateFields, 'proxy-authentication-info']);
  return endToEndFields(headers, connectionTokens(headers)).filter((field) => !dropped.has(field.lower));
}

/** The CachedResponse to store for `res` (call after storageDecision said yes). */
export function prepareEntry(
  req: RequestHead,
  res: ResponseHead,
  requestTime: number,
  responseTime: number,
): CachedResponse {
  const headers = storedFields(res.headers, responseCacheControl(res.headers));
  // RFC 9110 6.6.1: a cache adds the Date it received the response at when there is none.
  if (!has(headers, 'date')) headers.push(field('Date', formatHttpDate(responseTime)));
  const vary = responseVary(res.headers);
  return {
    status: res.status,
    reason: res.reason,
    headers,
    requestTime,
    responseTime,
    vary,
    varyKey: varyKey(req, vary),
  };
}

// --- freshness and age -------------------------------------------------------------------

/**
 * Freshness lifetime in seconds for a shared cache (RFC 9111 4.2.1): s-maxage, else max-age,
 * else Expires - Date (an invalid Expires means already expired), else a heuristic (4.2.2) of
 * `heuristicFraction` of Date - Last-Modified, floored, capped at `maxHeuristicSeconds`, for
 * heuristically cacheable statuses or `public`. A missing Date counts as `responseTime`.
 */
export function freshnessLifetime(
  res: { status: number; headers: readonly HeaderField[]; responseTime?: number },
  options: PolicyOptions = {},
): number {
  const cc = responseCacheControl(res.headers);
  if (cc.sMaxAge !== undefined) return cc.sMaxAge;
  if (cc.maxAge !== undefined) return cc.maxAge;
  const now = res.responseTime;
  const date = dateField(res.headers, 'date', now) ?? res.responseTime;
  const expiresValue = headerValue(res.headers, 'expires');
  if (expiresValue !== undefined) {
    const expires = parseHttpDate(expiresValue, now);
    if (expires === undefined || date === undefined) return 0;
    return Math.max(0, (expires - date) / 1000);
  }
  if (!HEURISTIC_STATUSES.has(res.status) && !cc.public) return 0;
  const lastModified = dateField(res.headers, 'last-modified', now);
  if (lastModified === undefined || date === undefined || lastModified > date) return 0;
  const fraction = options.heuristicFraction ?? 0.1;
  const cap = options.maxHeuristicSeconds ?? 86400;
  return Math.min(Math.floor(((date - lastModified) / 1000) * fraction + 1e-9), cap);
}

/** The Age field's value in seconds: first member of the first line, else 0 (RFC 9111 5.1). */
function ageValue(headers: readonly HeaderField[]): number {
  const value = headerValue(headers, 'age');
  if (value === undefined) return 0;
  const member = listMembers(value)[0] ?? '';
  if (!/^[0-9]+$/.test(member)) return 0;
  return Math.min(Number(member), MAX_AGE_VALUE);
}

/** current_age in seconds, exactly as RFC 9111 4.2.3 computes it. */
export function currentAge(
  entry: { headers: readonly HeaderField[]; requestTime: number; responseTime: number },
  now: number,
): number {
  const dateValue = dateField(entry.headers, 'date', entry.responseTime) ?? entry.responseTime;
  const apparentAge = Math.max(0, (entry.responseTime - dateValue) / 1000);
  const responseDelay = Math.max(0, (entry.responseTime - entry.requestTime) / 1000);
  const correctedAgeValue = ageValue(entry.headers) + responseDelay;
  const correctedInitialAge = Math.max(apparentAge, correctedAgeValue);
  const residentTime = Math.max(0, (now - entry.responseTime) / 1000);
  return correctedInitialAge + residentTime;
}

/** The Age field value to send: whole seconds, capped at 2147483648 (RFC 9111 5.1, 1.2.2). */
export function ageHeaderValue(age: number): string {
  if (!(age > 0)) return '0';
  return String(Math.min(Math.floor(age), MAX_AGE_VALUE));
}

// --- serving -----------------------------------------------------------------------------

function hasPrecondition(req: RequestHead): boolean {
  return has(req.headers, 'if-match') || has(req.headers, 'if-unmodified-since');
}

/**
 * May `entry` answer `req` at `now`, and how (RFC 9111 4, 4.2.4, 5.2.1, 5.2.2; RFC 5861)?
 * `entry` is the variant the store selected for this request (Vary already matched), or
 * undefined when there is none.
 */
export function servingDecision(
  req: RequestHead,
  entry: CachedResponse | undefined,
  now: number,
  options: PolicyOptions = {},
): ServingDecision {
  const rcc = requestCacheControl(req.headers);
  if (entry === undefined) {
    return rcc.onlyIfCached ? { action: 'gateway-timeout' } : { action: 'miss', reason: 'no-entry' };
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return { action: 'miss', reason: 'method' };
  if (rcc.noStore) return { action: 'miss', reason: 'request-no-store' };
  if (hasPrecondition(req)) return { action: 'miss', reason: 'precondition' };

  const cc = responseCacheControl(entry.headers);
  const age = currentAge(entry, now);
  const lifetime = freshnessLifetime(entry, options);

  const revalidate = (reason: RevalidateReason): ServingDecision => {
    if (rcc.onlyIfCached) return { action: 'gateway-timeout' };
    const conditional = conditionalHeaders(entry);
    if (conditional.length === 0) return { action: 'miss', reason: 'no-validator' };
    return { action: 'revalidate', reason, conditionalHeaders: conditional };
  };

  if (cc.noCache) return revalidate('no-cache');
  if (rcc.noCache) return revalidate('request-no-cache');
  if (rcc.maxAge !== undefined && age > rcc.maxAge) return revalidate('request-max-age');
  if (rcc.minFresh !== undefined && lifetime - age < rcc.minFresh) return revalidate('request-min-fresh');
  if (lifetime > age) return { action: 'fresh', age };

  const staleness = age - lifetime;
  const strict = cc.mustRevalidate || cc.proxyRevalidate;
  if (!strict && cc.sMaxAge === undefined && rcc.maxStale !== undefined && staleness <= rcc.maxStale) {
    return { action: 'stale-ok', age };
  }
  if (!strict && cc.staleWhileRevalidate !== undefined && staleness <= cc.staleWhileRevalidate) {
    return { action: 'stale-while-revalidate', age, conditionalHeaders: conditionalHeaders(entry) };
  }
  return revalidate('stale');
}

/** RFC 5861 4: the statuses (besides no answer at all) that count as an error for stale-if-error. */
export function isStaleIfErrorStatus(status: number): boolean {
  return status === 500 || status === 502 || status === 503 || status === 504;
}

/**
 * May `entry` be served because the backend failed (no answer, or an isStaleIfErrorStatus)?
 * Fresh entries always may. Stale ones within the larger of the response's and the request's
 * stale-if-error, else (neither gave one) `options.staleIfError`; never with must-revalidate,
 * proxy-revalidate or no-cache; with s-maxage only by the response's own stale-if-error; a
 * request with no-cache only by its own stale-if-error.
 */
export function staleIfErrorAllowed(
  req: RequestHead,
  entry: CachedResponse,
  now: number,
  options: PolicyOptions = {},
): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const cc = responseCacheControl(entry.headers);
  const rcc = requestCacheControl(req.headers);
  if (rcc.noStore || cc.noCache || cc.mustRevalidate || cc.proxyRevalidate) return false;
  if (rcc.noCache && rcc.staleIfError === undefined) return false;
  const staleness = currentAge(entry, now) - freshnessLifetime(entry, options);
  if (staleness < 0) return true;
  // The origin's or the client's grant; the configured one only when neither gave one.
  let allowance = cc.staleIfError ?? -1;
  if (cc.sMaxAge === undefined) {
    allowance =
      cc.staleIfError === undefined && rcc.staleIfError === undefined
        ? (options.staleIfError ?? -1)
        : Math.max(allowance, rcc.staleIfError ?? -1);
  }
  return staleness <= allowance;
}

/**
 * Is `entry` stale under must-revalidate, proxy-revalidate or s-maxage (which implies it for a
 * shared cache)? Then a cache that cannot reach the origin answers 504 (RFC 9111 5.2.2.2).
 */
export function mustRevalidateStale(
  entry: CachedResponse,
  now: number,
  options: PolicyOptions = {},
): boolean {
  const cc = responseCacheControl(entry.headers);
  if (!cc.mustRevalidate && !cc.proxyRevalidate && cc.sMaxAge === undefined) return false;
  return currentAge(entry, now) >= freshnessLifetime(entry, options);
}

// --- validation --------------------------------------------------------------------------

const ENTITY_TAG = /^(?:W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;

/**
 * The validators to revalidate `entry` with (RFC 9111 4.3.1): If-None-Match from its ETag
 * (quoted if the origin sent it bare) and If-Modified-Since from a valid Last-Modified.
 * Empty when it has neither.
 */
export function conditionalHeaders(entry: {
  headers: readonly HeaderField[];
  responseTime: number;
}): HeaderField[] {
  const out: HeaderField[] = [];
  const etag = headerValue(entry.headers, 'etag');
  if (etag !== undefined) {
    if (ENTITY_TAG.test(etag)) out.push(field('If-None-Match', etag));
    else if (etag !== '' && !etag.includes('"')) out.push(field('If-None-Match', `"${etag}"`));
  }
  const lastModified = headerValue(entry.headers, 'last-modified');
  if (lastModified !== undefined && parseHttpDate(lastModified, entry.responseTime) !== undefined) {
    out.push(field('If-Modified-Since', lastModified));
  }
  return out;
}
