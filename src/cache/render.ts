// Answers made from stored entries: the figures each entry needs for serving, worked out once
// (freshness lifetime, initial age, the head without Age), and the bytes of an answer, a 304
// when the request's own conditional matches. The usual hit is kept ready as one buffer per
// entry (joinedHit), made again only when its Age changes.
import type { BodyFraming, HeaderField, RequestHead } from '../http/message.ts';
import { clientResponseHead, viaValue } from '../http/response-heads.ts';
import { field, serializeHead } from '../http/serialize.ts';
import { answerConditional } from './conditionals.ts';
import { responseCacheControl } from './directives.ts';
import { BUFFER_OVERHEAD } from './entry-size.ts';
import { ageHeaderValue, currentAge, freshnessLifetime, type PolicyOptions } from './policy.ts';
import type { CacheEntry } from './store.ts';

const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });

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
  /** The usual hit, kept while it is among the newest kept (joinedHit). */
  joined: JoinedAnswer | undefined;
}

/** A whole answer (head and body) ready to write, right while its Age value is. */
export interface JoinedAnswer {
  readonly status: number;
  /** The head and the body, one buffer (the head alone, latin1, for an empty body). */
  readonly bytes: Buffer | string;
  readonly bodyBytes: number;
  /** The Age value in `bytes`. */
  readonly age: string;
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
    joined: undefined,
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
  const age = ageAt(info, now);
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

/**
 * Bytes of joined answers kept in all: a hot set larger than this makes some answers per hit.
 * Each is charged its length and JOINED_OVERHEAD (its buffer, as a stored chunk's, and the
 * JoinedAnswer with its Age string and place in the set), so many small ones stay within it too.
 */
export const JOINED_LIMIT = 1024 * 1024;
export const JOINED_OVERHEAD = BUFFER_OVERHEAD + 100;
/** Entries whose info keeps a joined answer, the least recently made first. */
const joinedHolders = new Set<EntryInfo>();
let joinedBytes = 0;

/**
 * The usual hit — a GET on a kept HTTP/1.1 connection, without a conditional, labelled HIT, its
 * body at most `maxBody` bytes — as the bytes renderEntry would make, joined in one buffer. The
 * same buffer answers every such request while the Age value stays (a second at most), so a hit
 * costs no head rendering and no copy; the other answers get undefined (renderEntry's way).
 */
export function joinedHit(
  entry: CacheEntry,
  request: RequestHead,
  now: number,
  label: string,
  keepAlive: boolean,
  maxBody: number,
  policy: PolicyOptions = {},
): JoinedAnswer | undefined {
  if (label !== 'HIT' || !keepAlive || request.versionMinor !== 1 || request.method !== 'GET')
    return undefined;
  if (entry.bodyBytes > maxBody || hasConditional(request)) return undefined;
  const info = entryInfo(entry, policy);
  const age = ageAt(info, now);
  const known = info.joined;
  if (known !== undefined && known.age === age) return known;
  const answer = renderEntry(entry, request, now, label, keepAlive, policy);
  const joined: JoinedAnswer = {
    status: answer.status,
    bytes: joinedBytesOf(answer.head, answer.body),
    bodyBytes: answer.bodyBytes,
    age,
  };
  keepJoined(info, joined);
  return joined;
}

/**
 * The head and body in one buffer of its own (a small Buffer.allocUnsafe would be a slice of
 * Node's shared 8 KiB pool, which this long-kept answer would keep alive); the head alone when
 * there is no body.
 */
function joinedBytesOf(head: string, body: readonly Buffer[]): Buffer | string {
  if (body.length === 0) return head;
  let size = head.length;
  for (const part of body) size += part.length;
  const out = Buffer.allocUnsafeSlow(size);
  let offset = out.write(head, 0, 'latin1');
  for (const part of body) offset += part.copy(out, offset);
  return out;
}

/** What a kept joined answer is charged against JOINED_LIMIT. */
function joinedCost(joined: JoinedAnswer): number {
  return joined.bytes.length + JOINED_OVERHEAD;
}

/** Keeps `joined` on `info` as the newest, dropping the oldest kept until all fit JOINED_LIMIT. */
function keepJoined(info: EntryInfo, joined: JoinedAnswer): void {
  if (info.joined !== undefined) {
    joinedBytes -= joinedCost(info.joined);
    joinedHolders.delete(info);
  }
  info.joined = undefined;
  const size = joinedCost(joined);
  if (size > JOINED_LIMIT) return;
  for (const oldest of joinedHolders) {
    if (joinedBytes + size <= JOINED_LIMIT) break;
    joinedBytes -= joinedCost(oldest.joined as JoinedAnswer);
    oldest.joined = undefined;
    joinedHolders.delete(oldest);
  }
  info.joined = joined;
  joinedHolders.add(info);
  joinedBytes += size;
}

/** The Age value of an entry at `now`. */
function ageAt(info: EntryInfo, now: number): string {
  return ageHeaderValue(info.initialAge + Math.max(0, (now - info.responseTime) / 1000));
}

/** RFC 7234 5.5.1's warn-code for any stale answer. */
const staleWarning = field('Warning', '110 - "Response is Stale"');

export function hasConditional(request: RequestHead): boolean {
  for (const header of request.headers) if (isConditional(header.lower)) return true;
  return false;
}

/** The request's fields without the client's own If-None-Match and If-Modified-Since. */
export function withoutConditionals(headers: readonly HeaderField[]): HeaderField[] {
  return headers.filter((header) => !isConditional(header.lower));
}

/** If-None-Match and If-Modified-Since, by length first (a name parsed a moment ago has no hash). */
function isConditional(lower: string): boolean {
  return lower.length === 13
    ? lower === 'if-none-match'
    : lower.length === 17 && lower === 'if-modified-since';
}
