// Pure parsers for the value syntaxes of the configuration file: addresses, durations, sizes,
// IPs and CIDRs, host patterns, header names, status ranges. Each returns either the parsed value
// or a message that completes the line `path: message`. No I/O; shared by the schema, the
// command-line overrides and anyone else who reads the same syntax.

import { isIPv4, isIPv6 } from 'node:net';
import type { ListenAddress, LogFormat, LogLevel } from './types.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

/** A short rendering of an offending value for error messages: `"text"`, `5`, `a list`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** `"a", "b", "c"` */
export function quoteList(items: readonly string[]): string {
  return items.map((s) => JSON.stringify(s)).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Host names and addresses

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** A DNS name (letters, digits, `-`, `_`, dot-separated labels) or a dotted IPv4 address. */
export function isHostname(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  if (/^[\d.]+$/.test(text)) return isIPv4(text);
  return text.split('.').every((label) => LABEL.test(label));
}

export interface ParsedAddress extends ListenAddress {
  /** The address as written. */
  address: string;
}

const ADDRESS_HINT = 'expected host:port';

/**
 * `host:port`, `[v6]:port`; the host is an IPv4 address, a bracketed IPv6 address or a DNS name.
 * Port 0 (any free port) is only for addresses Sluice listens on.
 */
export function parseAddress(value: unknown, options: { listening?: boolean } = {}): Parsed<ParsedAddress> {
  if (typeof value !== 'string') return fail(ADDRESS_HINT);
  const text = value.trim();
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
    if (!m) return fail(ADDRESS_HINT);
    host = m[1] ?? '';
    portText = m[2] ?? '';
    if (!isIPv6(host)) return fail(`invalid IPv6 address "${host}"`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return fail(ADDRESS_HINT);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':'))
      return fail(`${ADDRESS_HINT} (write IPv6 addresses in brackets: [${host}]:${portText})`);
    if (!isHostname(host)) return fail(`invalid host "${host}"`);
  }
  if (!/^\d+$/.test(portText)) return fail(ADDRESS_HINT);
  const port = Number(portText);
  const lowest = options.listening ? 0 : 1;
  if (port < lowest || port > 65535)
    return fail(`port must be between ${lowest} and 65535 (got ${portText})`);
  return ok({ address: text, host, port });
}

/** Two listeners that cannot both bind: same port and the same host, or a wildcard host on either side. */
export function addressesCollide(a: ListenAddress, b: ListenAddress): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
  return sameHost(a.host, b.host) || wildcard(a.host) || wildcard(b.host);
}

/** `localhost` is the loopback address it resolves to (Node's lookup puts IPv4 first). */
function sameHost(a: string, b: string): boolean {
  const loopback = (h: string) => (h.toLowerCase() === 'localhost' ? '127.0.0.1' : h);
  return loopback(a) === loopback(b);
}

export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

// ---------------------------------------------------------------------------------------------
// Durations and sizes

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** The longest delay a Node timer takes (2^31 - 1 ms). */
export const MAX_DURATION_MS = 2 ** 31 - 1;
const DURATION_HINT = 'expected a duration like 250ms, 2s, 1.5s, 1m30s or 1h';
/** One number and unit of a compound duration (`1h30m`, `1m30.5s`, as Go and Prometheus write them). */
const DURATION_TERM = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/**
 * `250ms`, `2s`, `1.5s`, `1m`, `1h`, compound ones (`1m30s`, `1h15m`), or a bare number of
 * milliseconds. Rounded to whole ms. Zero in any spelling (`0`, `0s`, `0m0s`) only with `zero`.
 */
export function parseDuration(value: unknown, zero = false): Parsed<number> {
  let ms: number | undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return fail(`${DURATION_HINT} (got ${describeValue(value)})`);
    ms = value;
  } else if (typeof value === 'string') {
    const text = value.trim();
    const m = /^(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text);
    ms = m ? Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] ?? 1) : compoundDuration(text);
  }
  if (ms === undefined) return fail(`${DURATION_HINT} (got ${describeValue(value)})`);
  if (zero && ms === 0) return ok(0);
  ms = Math.round(ms);
  if (ms <= 0) return fail(`must be greater than 0 (got ${describeValue(value)})`);
  // Node fires a timer set beyond this after 1 ms (with a warning): a 30-day timeout would be none.
  if (ms > MAX_DURATION_MS)
    return fail(`must be at most ${MAX_DURATION_MS}ms (about 24.8 days) (got ${describeValue(value)})`);
  return ok(ms);
}

/** `1h30m`, `1m30s`, `2s500ms`: terms from the largest unit down, each unit once; else undefined. */
function compoundDuration(text: string): number | undefined {
  const order = ['h', 'm', 's', 'ms'];
  let total = 0;
  let last = -1;
  DURATION_TERM.lastIndex = 0;
  while (DURATION_TERM.lastIndex < text.length) {
    const term = DURATION_TERM.exec(text);
    const rank = term ? order.indexOf(term[2] ?? '') : -1;
    if (!term || rank <= last) return undefined;
    last = rank;
    total += Number(term[1]) * (DURATION_UNITS[term[2] ?? ''] ?? 0);
  }
  return last === -1 ? undefined : total;
}

/** A duration in ms, written the way the file would: `250ms`, `2s`, `1.5s`, `1m`, `1h`. */
export function formatDuration(ms: number): string {
  for (const [unit, factor] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= factor && (ms % factor === 0 || (unit === 's' && ms % 100 === 0)))
      return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};
const SIZE_HINT = 'expected a size like 512, 16KiB, 1MiB, 1GiB or 10MB';

/** `512`, `16KiB`, `1MiB`, `1GiB`, `10KB`, `10MB`, `1GB`; a bare number is bytes. Rounded down. */
export function parseSize(value: unknown): Parsed<number> {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return fail(`${SIZE_HINT} (got ${describeValue(value)})`);
    bytes = value;
  } else if (typeof value === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/.exec(value.trim());
    if (!m) return fail(`${SIZE_HINT} (got ${describeValue(value)})`);
    bytes = Number(m[1]) * (SIZE_UNITS[m[2] ?? 'B'] ?? 1);
  } else {
    return fail(`${SIZE_HINT} (got ${describeValue(value)})`);
  }
  bytes = Math.floor(bytes);
  if (bytes < 0) return fail(`must not be negative (got ${describeValue(value)})`);
  if (bytes > Number.MAX_SAFE_INTEGER) return fail(`must be at most ${Number.MAX_SAFE_INTEGER} bytes`);
  return ok(bytes);
}

// ---------------------------------------------------------------------------------------------
// IPs and CIDRs

/** An IPv4 or IPv6 address, optionally with a `/prefix` (0..32 or 0..128). Returned as written, trimmed. */
export function parseIpOrCidr(value: unknown): Parsed<string> {
  const hint = `expected an IP address or CIDR like 10.0.0.0/8 or fd00::/8 (got ${describeValue(value)})`;
  if (typeof value !== 'string') return fail(hint);
  const text = value.trim();
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const max = isIPv4(ip) ? 32 : isIPv6(ip) ? 128 : 0;
  if (max === 0) return fail(hint);
  if (slash >= 0) {
    const prefix = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
      return fail(`prefix length must be between 0 and ${max} (got ${describeValue(value)})`);
    }
  }
  return ok(text);
}

// ---------------------------------------------------------------------------------------------
// HTTP bits

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An RFC 9110 token, the syntax of a header field name. */
export function isToken(text: string): boolean {
  return TOKEN.test(text);
}

/** A route's host pattern: `*`, `*.suffix` or a host name; returned lower-cased. */
export function parseHostPattern(value: unknown): Parsed<string> {
  const hint = `expected a host name, "*.domain" or "*" (got ${describeValue(value)})`;
  if (typeof value !== 'string') return fail(hint);
  const text = value.trim().toLowerCase();
  if (text === '*') return ok(text);
  if (text.startsWith('*.')) return isHostname(text.slice(2)) ? ok(text) : fail(hint);
  if (isHostname(text)) return ok(text);
  if (text.startsWith('[') && text.endsWith(']') && isIPv6(text.slice(1, -1))) return ok(text);
  return fail(hint);
}

/** A Host header value: a host name, IPv4 or bracketed IPv6, optionally with `:port`. */
export function parseHostHeader(value: unknown): Parsed<string> {
  const hint = `expected a host name, optionally with :port (got ${describeValue(value)})`;
  if (typeof value !== 'string') return fail(hint);
  const text = value.trim();
  if (isHostname(text) || (text.startsWith('[') && text.endsWith(']') && isIPv6(text.slice(1, -1)))) {
    return ok(text);
  }
  return parseAddress(text).ok ? ok(text) : fail(hint);
}

/**
 * A header field value: a string or number of visible characters, spaces and tabs (RFC 9110
 * field-value; obs-text as latin1). Control characters and anything beyond latin1 are refused:
 * they would be refused from a client, and could split or corrupt the head on the wire.
 */
export function parseHeaderValue(value: unknown): Parsed<string> {
  if (typeof value === 'number' && Number.isFinite(value)) return ok(String(value));
  if (typeof value !== 'string') return fail(`expected a string (got ${describeValue(value)})`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value))
    return fail('header value must not contain control characters (CR, LF, NUL …)');
  if (/[\u0100-\uffff]/.test(value)) return fail('header value must be latin1 (no characters beyond U+00FF)');
  return ok(value.trim());
}

/** A bearer token for the admin port: at least 16 characters of RFC 6750's b64token alphabet. */
export function parseAdminToken(value: unknown): Parsed<string> {
  if (typeof value !== 'string' || !/^[A-Za-z0-9\-._~+/]{16,}=*$/.test(value))
    return fail(`expected a token of at least 16 letters, digits or -._~+/ (got ${describeValue(value)})`);
  return ok(value);
}

/** Upgrade protocol names (tokens), e.g. `[websocket]`, lower-cased; `[]` tunnels nothing. */
export function parseUpgrades(value: unknown): Parsed<string[]> {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && TOKEN.test(v)))
    return fail(`expected a list of protocol names like [websocket] (got ${describeValue(value)})`);
  return ok(value.map((v: string) => v.toLowerCase()));
}

/** `200-399`, `[200, 399]`, or a single status `200`; statuses 100..599, low <= high. */
export function parseStatusRange(value: unknown): Parsed<readonly [number, number]> {
  const hint = `expected a status range like 200-399 or [200, 399] (got ${describeValue(value)})`;
  let pair: [unknown, unknown];
  if (typeof value === 'number') pair = [value, value];
  else if (typeof value === 'string') {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(value);
    if (!m) return fail(hint);
    pair = [Number(m[1]), Number(m[2] ?? m[1])];
  } else if (Array.isArray(value) && value.length === 2) pair = [value[0], value[1]];
  else return fail(hint);
  const [lo, hi] = pair;
  if (!Number.isInteger(lo) || !Number.isInteger(hi)) return fail(hint);
  const low = lo as number;
  const high = hi as number;
  if (low < 100 || high > 599) return fail(`statuses must be between 100 and 599 (got ${low}-${high})`);
  if (low > high) return fail(`range is empty: ${low} is greater than ${high}`);
  return ok([low, high] as const);
}

/** An integer in `[min, max]`. */
export function parseInteger(value: unknown, min: number, max: number): Parsed<number> {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    return fail(`expected an integer from ${min} to ${max} (got ${describeValue(value)})`);
  }
  return ok(value);
}

/** `auto` (one worker per usable core) or a number of worker processes; a string from a flag or variable too. */
export function parseWorkers(value: unknown): Parsed<number | 'auto'> {
  const text = typeof value === 'string' ? value.trim() : value;
  if (text === 'auto') return ok('auto');
  const n = typeof text === 'string' && /^\d+$/.test(text) ? Number(text) : text;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS) return ok(n);
  return fail(`expected auto or an integer from 1 to ${MAX_WORKERS} (got ${describeValue(value)})`);
}

/** More worker processes than this is a typo, not a machine. */
export const MAX_WORKERS = 256;

export function parseBoolean(value: unknown): Parsed<boolean> {
  return typeof value === 'boolean'
    ? ok(value)
    : fail(`expected true or false (got ${describeValue(value)})`);
}

/** One of a fixed set of strings. */
export function parseChoice<T extends string>(value: unknown, choices: readonly T[]): Parsed<T> {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return ok(value as T);
  return fail(`expected one of ${quoteList(choices)} (got ${describeValue(value)})`);
}

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

// ---------------------------------------------------------------------------------------------
// Suggestions for typos

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known word closest to `word` (ignoring case, `-` and `_`), if it is close enough to be a typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const w = norm(word);
  const limit = w.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(w, norm(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}
