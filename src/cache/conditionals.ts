// Conditional requests of a shared cache: revalidating a stored copy with its validators and
// freshening it from a 304 (RFC 9111 4.3), and answering a client's own conditional GET or HEAD
// from a stored copy (RFC 9110 13). Pure functions, as policy.ts.
import { connectionTokens, endToEndFields } from '../http/hop-by-hop.ts';
import { type HeaderField, headerValue, type RequestHead, type ResponseHead } from '../http/message.ts';
import { field } from '../http/serialize.ts';
import {
  fieldValues,
  formatHttpDate,
  listMembers,
  parseHttpDate,
  responseCacheControl,
} from './directives.ts';
import { responseVary } from './keys.ts';
import { type CachedResponse, dateField, type Freshened, has, type PolicyOptions } from './policy.ts';

/** Fields never taken from a 304 (RFC 9111 3.2), besides hop-by-hop ones. */
const NOT_UPDATED = new Set(['content-length', 'content-range', 'proxy-authentication-info']);
/** Fields a 304 carries when answering from the cache (RFC 9110 15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']);

function parseTag(tag: string): { weak: boolean; opaque: string } {
  let t = tag.trim();
  const weak = /^w\//i.test(t);
  if (weak) t = t.slice(2);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1);
  return { weak, opaque: t };
}

/** Weak comparison (RFC 9110 8.8.3.2), lenient about missing quotes. */
function weakMatch(a: string, b: string): boolean {
  return parseTag(a).opaque === parseTag(b).opaque;
}

/**
 * The entry's fields freshened by a 304 from revalidating it (RFC 9111 4.3.4, 3.2), or
 * undefined when the 304 identifies another representation (then fetch anew): another
 * validator, or another Vary, whose variants the stored copy was not keyed by. `keep` is false
 * when the freshened fields forbid a shared cache to keep it (no-store, private): it answers
 * this request and is dropped.
 * The 304's fields replace every stored field of the same name, except Content-Length,
 * Content-Range, hop-by-hop fields and (unless shareSetCookie) Set-Cookie; a 304 without Age
 * drops the stored Age and one without Date gets `responseTime` as Date, so the age restarts
 * from this exchange. `requestTime`/`responseTime` are those of the revalidation.
 */
export function updateFrom304(
  entry: CachedResponse,
  res304: ResponseHead,
  requestTime: number,
  responseTime: number,
  options: PolicyOptions = {},
): Freshened | undefined {
  const newTag = headerValue(res304.headers, 'etag');
  if (newTag !== undefined) {
    const oldTag = headerValue(entry.headers, 'etag');
    if (oldTag === undefined) return undefined;
    const n = parseTag(newTag);
    const o = parseTag(oldTag);
    if (n.opaque !== o.opaque || (!n.weak && o.weak)) return undefined;
  } else {
    const newLm = dateField(res304.headers, 'last-modified', responseTime);
    const oldLm = dateField(entry.headers, 'last-modified', responseTime);
    if (newLm !== undefined && oldLm !== undefined && newLm !== oldLm) return undefined;
  }
  if (has(res304.headers, 'vary') && responseVary(res304.headers) !== entry.vary) return undefined;
  const incoming = endToEndFields(res304.headers, connectionTokens(res304.headers)).filter(
    (f) =>
      !NOT_UPDATED.has(f.lower) &&
      (options.shareSetCookie || (f.lower !== 'set-cookie' && f.lower !== 'set-cookie2')),
  );
  const replaced = new Set(incoming.map((f) => f.lower));
  replaced.add('age');
  replaced.add('date');
  let headers = entry.headers.filter((f) => !replaced.has(f.lower)).concat(incoming);
  if (!has(headers, 'date')) headers.push(field('Date', formatHttpDate(responseTime)));
  const cc = responseCacheControl(headers);
  const dropped = new Set([...cc.noCacheFields, ...cc.privateFields]);
  if (dropped.size > 0) headers = headers.filter((f) => !dropped.has(f.lower));
  const keep = !cc.private && (!cc.noStore || cc.mustUnderstand);
  return { headers, requestTime, responseTime, keep };
}

/**
 * A 304 answering the client's own conditional GET/HEAD from `entry` (RFC 9110 13.1.1-13.1.3,
 * 13.2.2; RFC 9111 4.3.2): If-None-Match (weak comparison, `*` matches) takes precedence; else
 * a valid single If-Modified-Since at or after Last-Modified (or Date, or responseTime).
 * The headers are those a 304 must carry; add Age (and Via) when sending. Undefined: send the
 * full response. Call only for an entry you may serve (fresh, stale-ok or just revalidated).
 */
export function answerConditional(
  req: RequestHead,
  entry: CachedResponse,
): { status: 304; reason: 'Not Modified'; headers: HeaderField[] } | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  // Preconditions are for a 2xx answer (RFC 9110 13.2.1): a stored 404 or 301 is sent whole.
  if (entry.status < 200 || entry.status > 299) return undefined;
  const notModified = () => ({
    status: 304 as const,
    reason: 'Not Modified' as const,
    headers: entry.headers.filter((f) => NOT_MODIFIED_FIELDS.has(f.lower)),
  });
  const inm = fieldValues(req.headers, 'if-none-match');
  if (inm.length > 0) {
    const etag = headerValue(entry.headers, 'etag');
    const members = inm.flatMap((value) => listMembers(value));
    const match = members.some((m) => m === '*' || (etag !== undefined && weakMatch(m, etag)));
    return match ? notModified() : undefined;
  }
  const ims = fieldValues(req.headers, 'if-modified-since');
  if (ims.length !== 1) return undefined;
  const since = parseHttpDate(ims[0] as string, entry.responseTime);
  if (since === undefined) return undefined;
  const modified =
    dateField(entry.headers, 'last-modified', entry.responseTime) ??
    dateField(entry.headers, 'date', entry.responseTime) ??
    entry.responseTime;
  return modified <= since ? notModified() : undefined;
}
