// The keys of the shared cache (RFC 9111 2, 4.1, 4.4): the primary key of a request (its
// absolute URL, normalized), the secondary key of its Vary values, and the keys an unsafe
// request invalidates (its own URL and same-origin Location and Content-Location).
import { type HeaderField, headerValue, type RequestHead, type ResponseHead } from '../http/message.ts';
import { fieldValues, listMembers } from './directives.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** The Vary names of a response: lower case, deduplicated, sorted, ', '-joined; '*' if any is *. */
export function responseVary(headers: readonly HeaderField[]): string {
  return normalizeVary(fieldValues(headers, 'vary').join(','));
}

function normalizeVary(vary: string): string {
  const names = new Set<string>();
  for (const member of listMembers(vary)) {
    const name = member.toLowerCase();
    if (name === '*') return '*';
    names.add(name);
  }
  return [...names].sort().join(', ');
}

/**
 * The request's selecting header values for a Vary value (raw or normalised), one line per name:
 * `name: value` with the field lines combined by ', ', list members trimmed, whitespace runs
 * collapsed; a missing field is the bare `name`, which differs from an empty one (`name: `).
 * '' when there is nothing to vary on; '*' matches nothing.
 */
export function varyKey(req: { headers: readonly HeaderField[] }, vary: string): string {
  const normalized = normalizeVary(vary);
  if (normalized === '' || normalized === '*') return normalized;
  const lines: string[] = [];
  for (const name of normalized.split(', ')) {
    const values = fieldValues(req.headers, name);
    if (values.length === 0) {
      lines.push(name);
      continue;
    }
    const members = listMembers(values.join(',')).map((m) => m.replace(/[ \t]+/g, ' '));
    lines.push(`${name}: ${members.join(', ')}`);
  }
  return lines.join('\n');
}

/** The authority normalized last: a site's requests repeat one Host value. */
let lastAuthority = { authority: '', scheme: '', normalized: '' };

/**
 * One spelling of an authority: host in lower case, no trailing dot, no default port. The proxy
 * routes and forwards this spelling, and the cache keys on it, so an entry is filled and served
 * under one Host whatever a client spelled.
 */
export function normalizeAuthority(authority: string, scheme = 'http'): string {
  const last = lastAuthority;
  if (authority === last.authority && scheme === last.scheme) return last.normalized;
  const normalized = normalizedAuthority(authority, scheme);
  lastAuthority = { authority, scheme, normalized };
  return normalized;
}

function normalizedAuthority(authority: string, scheme: string): string {
  let host = authority.trim().toLowerCase();
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);
  let port = '';
  const close = host.lastIndexOf(']');
  const colon = host.lastIndexOf(':');
  if (colon > close && (close >= 0 || host.indexOf(':') === colon)) {
    port = host.slice(colon + 1);
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  const defaultPort = scheme === 'https' ? '443' : scheme === 'http' ? '80' : '';
  if (port !== '' && port !== defaultPort) return `${host}:${port}`;
  return host;
}

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/;

/** The key of an absolute URL: scheme and host lower case, default port removed, fragment dropped. */
export function urlKey(url: string): string {
  const m = ABSOLUTE.exec(url);
  if (!m) return url;
  const scheme = (m[1] as string).toLowerCase();
  let rest = m[3] as string;
  if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
  return `${scheme}://${normalizeAuthority(m[2] as string, scheme)}${rest}`;
}

/**
 * The primary cache key, the same for every method: `scheme://host[:port]target` with the host
 * lower case and a default port removed; the target as sent (absolute-form targets use their
 * own authority, RFC 9112 3.2.2). Query strings are part of the key.
 */
export function cacheKey(req: RequestHead, scheme = 'http'): string {
  return targetKey(req.target, headerValue(req.headers, 'host') ?? '', scheme);
}

/** cacheKey of a request for `target` whose Host field is `host`. */
export function targetKey(target: string, host: string, scheme = 'http'): string {
  // Origin-form (a slash first) is the usual target and never absolute.
  if (target.charCodeAt(0) !== 0x2f && ABSOLUTE.test(target)) return urlKey(target);
  const s = scheme.toLowerCase();
  return `${s}://${normalizeAuthority(host, s)}${target}`;
}

function originOf(key: string): string {
  const slash = key.indexOf('/', key.indexOf('://') + 3);
  return slash < 0 ? key : key.slice(0, slash);
}

/** The key of a URI reference (Location, Content-Location) resolved against `base`, if same origin. */
function sameOriginKey(reference: string, base: string): string | undefined {
  const ref = reference.trim().split('#')[0] ?? '';
  if (ref === '') return undefined;
  const origin = originOf(base);
  let key: string;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(ref)) key = urlKey(ref);
  else if (ref.startsWith('//')) key = urlKey(`${origin.slice(0, origin.indexOf(':'))}:${ref}`);
  else if (ref.startsWith('/')) key = `${origin}${ref}`;
  else {
    try {
      const url = new URL(ref, base);
      key = `${origin}${url.pathname}${url.search}`;
    } catch {
      return undefined;
    }
  }
  return originOf(key) === origin ? key : undefined;
}

/**
 * The keys to purge after `res` answered the unsafe request `req` (RFC 9111 4.4): none for safe
 * methods or error (non-2xx/3xx) statuses; else the target and the same-origin Location and
 * Content-Location. Every variant of each key goes.
 */
export function invalidatedKeys(req: RequestHead, res: ResponseHead, scheme = 'http'): string[] {
  if (SAFE_METHODS.has(req.method)) return [];
  if (res.status < 200 || res.status >= 400) return [];
  const target = cacheKey(req, scheme);
  const keys = [target];
  for (const name of ['location', 'content-location']) {
    const value = headerValue(res.headers, name);
    if (value === undefined) continue;
    const key = sameOriginKey(value, target);
    if (key !== undefined && !keys.includes(key)) keys.push(key);
  }
  return keys;
}
