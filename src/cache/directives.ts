// Parsing for the cache's header fields: Cache-Control (RFC 9111 5.2), Pragma (5.4), HTTP-dates
// (RFC 9110 5.6.7), delta-seconds (RFC 9111 1.2.2) and comma-separated lists (RFC 9110 5.6.1).
// Pure: no clock is read unless a caller omits `now` for a two-digit RFC 850 year.
//
// API
//   parseCacheControl(values)        every Cache-Control field value of a message → CacheControl
//   requestCacheControl(headers)     a request's directives; `Pragma: no-cache` counts as
//                                    `no-cache` when there is no Cache-Control field at all
//   responseCacheControl(headers)    a response's directives (Pragma is ignored, RFC 9111 5.4)
//   parseDeltaSeconds(value)         1*DIGIT → seconds, capped at 2147483648; else undefined
//   parseHttpDate(value, now?)       IMF-fixdate, RFC 850 or asctime → ms since the epoch; else undefined
//   formatHttpDate(ms)               IMF-fixdate
//   listMembers(value)               the members of a list field value, quotes respected, empties dropped
//   fieldValues(headers, lower)      the values of every field line named `lower`
//
// Parsing rules (what a standards suite such as http-tests/cache-tests checks):
// - Directive names are case-insensitive; arguments are a token or a quoted-string (unescaped).
//   `max-age="60"` is accepted (RFC 9111 5.2: recipients accept both forms).
// - A malformed element (`max-age =60`, `max-age= 60`, an unterminated quote) is ignored, except
//   that a restrictive directive it names (no-store, no-cache, private, must-revalidate,
//   proxy-revalidate) still applies unqualified: when in doubt, be the most restrictive.
// - Numeric arguments must be delta-seconds (1*DIGIT); `60a`, `-1`, `60.0` or `'60'` are ignored
//   as if absent; values above 2147483648 are taken as 2147483648 (RFC 9111 1.2.2).
// - Duplicates: the first valid occurrence of a valued directive wins, across field lines
//   (RFC 9111 4.2.1 allows "first occurrence"); conflicting directives are all kept and the
//   policy honours the most restrictive (e.g. `max-age=60, no-cache` revalidates).
// - `no-cache="a, b"` and `private="a"` (or the token form `no-cache=a`) are qualified: they
//   name fields instead of applying to the whole response. A qualified form that names no field
//   is treated as unqualified; an unqualified occurrence always wins over a qualified one.
// - A directive with a field name that matches a quoted string's content (`ext="max-age=9"`) is
//   never confused with a real one: quotes are parsed, not searched.
import type { HeaderField } from '../http/message.ts';

/** The directives of one message. Durations are seconds; absent means "not given (validly)". */
export interface CacheControl {
  maxAge?: number;
  sMaxAge?: number;
  /** Request: `max-stale` alone is Infinity (any staleness); `max-stale=N` is N. */
  maxStale?: number;
  minFresh?: number;
  staleWhileRevalidate?: number;
  staleIfError?: number;
  /** Unqualified `no-cache` (or a qualified one naming nothing). */
  noCache: boolean;
  /** Field names (lower case) of qualified `no-cache="…"`. */
  noCacheFields: string[];
  noStore: boolean;
  /** Unqualified `private` (or a qualified one naming nothing). */
  private: boolean;
  /** Field names (lower case) of qualified `private="…"`: a shared cache must not store them. */
  privateFields: string[];
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  mustUnderstand: boolean;
  noTransform: boolean;
  onlyIfCached: boolean;
  immutable: boolean;
}

const DELTA_CAP = 2147483648;
const TCHARS = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const DIRECTIVE = new RegExp(`^(${TCHARS})(?:=(?:(${TCHARS})|"((?:[^"\\\\]|\\\\.)*)"))?$`);
const LEADING_TOKEN = new RegExp(`^(${TCHARS})`);
const TOKEN = new RegExp(`^${TCHARS}$`);
const RESTRICTIVE = new Set(['no-store', 'no-cache', 'private', 'must-revalidate', 'proxy-revalidate']);

/** The values of every field line named `lower` (already lower case), in order. */
export function fieldValues(headers: readonly HeaderField[], lower: string): string[] {
  const out: string[] = [];
  for (const field of headers) if (field.lower === lower) out.push(field.value);
  return out;
}

/**
 * The members of a comma-separated list, trimmed, empty members dropped (RFC 9110 5.6.1).
 * Commas inside quoted strings do not split; an unterminated quote runs to the end.
 */
export function listMembers(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) {
      quoted = true;
    } else if (c === 0x2c /* , */) {
      const member = value.slice(start, i).trim();
      if (member) out.push(member);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}

/** `1*DIGIT` as seconds, capped at 2147483648 (RFC 9111 1.2.2); anything else is undefined. */
export function parseDeltaSeconds(value: string): number | undefined {
  if (!/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  return Math.min(n, DELTA_CAP);
}

function emptyCacheControl(): CacheControl {
  return {
    noCache: false,
    noCacheFields: [],
    noStore: false,
    private: false,
    privateFields: [],
    public: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    mustUnderstand: false,
    noTransform: false,
    onlyIfCached: false,
    immutable: false,
  };
}

type DeltaKey = 'maxAge' | 'sMaxAge' | 'minFresh' | 'staleWhileRevalidate' | 'staleIfError';
const DELTA_DIRECTIVES: Record<string, DeltaKey> = {
  'max-age': 'maxAge',
  's-maxage': 'sMaxAge',
  'min-fresh': 'minFresh',
  'stale-while-revalidate': 'staleWhileRevalidate',
  'stale-if-error': 'staleIfError',
};

function fieldNames(arg: string): string[] {
  return listMembers(arg)
    .map((name) => name.toLowerCase())
    .filter((name) => TOKEN.test(name));
}

function apply(cc: CacheControl, name: string, arg: string | undefined): void {
  const delta = DELTA_DIRECTIVES[name];
  if (delta !== undefined) {
    if (cc[delta] !== undefined || arg === undefined) return;
    const seconds = parseDeltaSeconds(arg);
    if (seconds !== undefined) cc[delta] = seconds;
    return;
  }
  switch (name) {
    case 'max-stale':
      if (cc.maxStale !== undefined) return;
      if (arg === undefined) cc.maxStale = Number.POSITIVE_INFINITY;
      else {
        const seconds = parseDeltaSeconds(arg);
        if (seconds !== undefined) cc.maxStale = seconds;
      }
      return;
    case 'no-cache':
    case 'private': {
      const names = arg === undefined ? [] : fieldNames(arg);
      if (names.length === 0) {
        if (name === 'no-cache') cc.noCache = true;
        else cc.private = true;
      } else if (name === 'no-cache') cc.noCacheFields.push(...names);
      else cc.privateFields.push(...names);
      return;
    }
    case 'no-store':
      cc.noStore = true;
      return;
    case 'public':
      cc.public = true;
      return;
    case 'must-revalidate':
      cc.mustRevalidate = true;
      return;
    case 'proxy-revalidate':
      cc.proxyRevalidate = true;
      return;
    case 'must-understand':
      cc.mustUnderstand = true;
      return;
    case 'no-transform':
      cc.noTransform = true;
      return;
    case 'only-if-cached':
      cc.onlyIfCached = true;
      return;
    case 'immutable':
      cc.immutable = true;
      return;
  }
}

/** Parses the values of every Cache-Control field line of one message, in order. */
export function parseCacheControl(values: readonly string[]): CacheControl {
  const cc = emptyCacheControl();
  for (const value of values) {
    for (const element of listMembers(value)) {
      const m = DIRECTIVE.exec(element);
      if (m) {
        const name = (m[1] as string).toLowerCase();
        const arg = m[2] ?? (m[3] === undefined ? undefined : m[3].replace(/\\(.)/g, '$1'));
        apply(cc, name, arg);
        continue;
      }
      // Malformed: only a restrictive directive survives, unqualified.
      const lead = LEADING_TOKEN.exec(element)?.[1]?.toLowerCase();
      if (lead !== undefined && RESTRICTIVE.has(lead)) apply(cc, lead, undefined);
    }
  }
  return cc;
}

/** A request's directives; `Pragma: no-cache` means `no-cache` when Cache-Control is absent. */
export function requestCacheControl(headers: readonly HeaderField[]): CacheControl {
  const values = fieldValues(headers, 'cache-control');
  const cc = parseCacheControl(values);
  if (values.length === 0) {
    for (const pragma of fieldValues(headers, 'pragma')) {
      if (listMembers(pragma).some((m) => m.toLowerCase() === 'no-cache')) cc.noCache = true;
    }
  }
  return cc;
}

/** A response's directives (a response's Pragma has no defined meaning and is ignored). */
export function responseCacheControl(headers: readonly HeaderField[]): CacheControl {
  return parseCacheControl(fieldValues(headers, 'cache-control'));
}

// --- HTTP-date ---------------------------------------------------------------------------

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAYS_LONG = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

// Names are matched case-insensitively (RFC 9110 5.6.7 encourages robust parsing); the
// layout (commas, single spaces, digit counts, GMT) is strict, so near-misses are invalid.
const IMF_FIXDATE =
  /^([A-Za-z]{3}), ([0-9]{2}) ([A-Za-z]{3}) ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT$/i;
const RFC850 = /^([A-Za-z]{6,9}), ([0-9]{2})-([A-Za-z]{3})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT$/i;
const ASCTIME = /^([A-Za-z]{3}) ([A-Za-z]{3}) ([0-9]{2}| [0-9]) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})$/;

function build(
  year: number,
  monthName: string,
  day: string,
  h: string,
  m: string,
  s: string,
): number | undefined {
  const month = MONTHS.indexOf(monthName.toLowerCase());
  if (month < 0) return undefined;
  const d = Number(day.trim());
  const hour = Number(h);
  const minute = Number(m);
  const second = Number(s);
  if (hour > 23 || minute > 59 || second > 60 || d < 1) return undefined;
  const ms = Date.UTC(year, month, d, hour, minute, Math.min(second, 59));
  // Rejects 31 Feb and the like: the day must survive the round trip.
  const check = new Date(ms);
  if (check.getUTCMonth() !== month || check.getUTCDate() !== d) return undefined;
  return second === 60 ? ms + 1000 : ms;
}

/**
 * An HTTP-date (IMF-fixdate, obsolete RFC 850 or asctime) as ms since the epoch; undefined when
 * invalid. A two-digit RFC 850 year more than 50 years after `now`'s year is taken as the most
 * recent past year with those digits (RFC 9110 5.6.7); `now` defaults to the clock.
 */
export function parseHttpDate(value: string, now?: number): number | undefined {
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) {
    if (!DAYS.includes((m[1] as string).toLowerCase())) return undefined;
    return build(
      Number(m[4]),
      m[3] as string,
      m[2] as string,
      m[5] as string,
      m[6] as string,
      m[7] as string,
    );
  }
  m = RFC850.exec(v);
  if (m) {
    if (!DAYS_LONG.includes((m[1] as string).toLowerCase())) return undefined;
    const nowYear = new Date(now ?? Date.now()).getUTCFullYear();
    let year = nowYear - (nowYear % 100) + Number(m[4]);
    if (year > nowYear + 50) year -= 100;
    return build(year, m[3] as string, m[2] as string, m[5] as string, m[6] as string, m[7] as string);
  }
  m = ASCTIME.exec(v);
  if (m) {
    if (!DAYS.includes((m[1] as string).toLowerCase())) return undefined;
    return build(
      Number(m[7]),
      m[2] as string,
      m[3] as string,
      m[4] as string,
      m[5] as string,
      m[6] as string,
    );
  }
  return undefined;
}

/** `ms` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
