// Answers made from stored entries: the figures each entry needs for serving, worked out once
// (freshness lifetime, initial age, the head without Age), and the bytes of an answer, a 304
// when the request's own conditional matches.
import type { BodyFraming, HeaderField, RequestHead } from '../http/message.ts';
import { clientResponseHead, viaValue } from '../http/response-heads.ts';
import { field, serializeHead } from '../http/serialize.ts';
import { responseCacheControl } from './directives.ts';
import {
  ageHeaderValue,
  answerConditional,
  currentAge,
  freshnessLifetime,
  type PolicyOptions,
} from './policy.ts';
import type { CacheEntry } from './store.ts';

const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });
const CONDITIONALS = new Set(['if-none-match', 'if-modified-since']);

/** An answer made from the cache: the head (latin1) and the body buffers to write after it. */
export interface CacheAnswer {
  status: number;
  head: string;
  body: readonly Buffer[];
  bodyBytes: number;
}

/** What serving a stored entry needs, worked out once per entry (and again after a 304). */
export interface EntryInfo {
  /** The entry's fields these figures were made from (a 304 replaces the array). */
  readonly headers: readonly HeaderField[];
  readonly responseTime: number;
  /** corrected_initial_age (RFC 9111 4.2.3), seconds: the age at responseTime. */
  readonly initialAge: number;
  /** Freshness lifetime, seconds. */
  readonly lifetime: number;
  /** The response says `no-cache`: never served without revalidation. */
  readonly noCache: boolean;
  /** The head up to its variable part: status line, stored fields but Age, then Via. */
  readonly prefix: string;
}

const infos = new WeakMap<CacheEntry, EntryInfo>();

/** The figures of `entry`, made on first use and whenever its fields changed. */
export function entryInfo(entry: CacheEntry, policy: PolicyOptions = {}): EntryInfo {
  const known = infos.get(entry);
  if (known !== undefined && known.headers === entry.headers && known.responseTime === entry.responseTime)
    return known;
  const fields: HeaderField[] = [];
  const via: string[] = [];
  for (const header of entry.headers) {
    if (header.lower === 'via') via.push(header.value);
    else if (header.lower !== 'age') fields.push(header);
  }
  via.push(viaValue);
  fields.push(field('Via', via.join(', ')));
  const head = serializeHead(`HTTP/1.1 ${entry.status} ${entry.reason}`, fields);
  const info: EntryInfo = {
    headers: entry.headers,
    responseTime: entry.responseTime,
    initialAge: currentAge(entry, entry.responseTime),
    lifetime: freshnessLifetime(entry, policy),
    noCache: responseCacheControl(entry.headers).noCache,
    prefix: head.slice(0, -2),
  };
  infos.set(entry, info);
  return info;
}

/**
 * The bytes of a stored response answering `request` at `now` (a 304 when the request's own
 * conditional matches). The head is what clientResponseHead would make: the stored fields, Via,
 * Age, X-Cache, Content-Length, then Connection when needed.
 */
export function renderEntry(
  entry: CacheEntry,
  request: RequestHead,
  now: number,
  label: string,
  keepAlive: boolean,
  policy: PolicyOptions = {},
): CacheAnswer {
  const info = entryInfo(entry, policy);
  const age = ageHeaderValue(info.initialAge + Math.max(0, (now - info.responseTime) / 1000));
  const conditional = hasConditional(request) ? answerConditional(request, entry) : undefined;
  if (conditional !== undefined) {
    const head = clientResponseHead({
      head: { versionMinor: 1, status: 304, reason: conditional.reason, headers: conditional.headers },
      connectionTokens: [],
      framing: NO_BODY,
      mode: 'raw',
      requestMethod: request.method,
      keepAlive,
      clientMinor: request.versionMinor,
      extra:
        label === 'STALE'
          ? [field('Age', age), field('X-Cache', label), staleWarning]
          : [field('Age', age), field('X-Cache', label)],
    });
    return { status: 304, head, body: [], bodyBytes: 0 };
  }
  const status = entry.status;
  const bodiless = status === 204 || status === 304 || status < 200;
  let head = `${info.prefix}Age: ${age}\r\nX-Cache: ${label}\r\n`;
  if (label === 'STALE') head += `Warning: ${staleWarning.value}\r\n`;
  if (!bodiless) head += `Content-Length: ${entry.bodyBytes}\r\n`;
  if (!keepAlive) head += 'Connection: close\r\n';
  else if (request.versionMinor === 0) head += 'Connection: keep-alive\r\n';
  head += '\r\n';
  if (bodiless || request.method === 'HEAD') return { status, head, body: [], bodyBytes: 0 };
  return { status, head, body: entry.body, bodyBytes: entry.bodyBytes };
}

/** RFC 7234 5.5.1's warn-code for any stale answer. */
const staleWarning = field('Warning', '110 - "Response is Stale"');

export function hasConditional(request: RequestHead): boolean {
  for (const header of request.headers) if (CONDITIONALS.has(header.lower)) return true;
  return false;
}

/** The request's fields without the client's own If-None-Match and If-Modified-Since. */
export function withoutConditionals(headers: readonly HeaderField[]): HeaderField[] {
  return headers.filter((header) => !CONDITIONALS.has(header.lower));
}
