// The path Sluice routes on and forwards: one canonical spelling, so that a prefix rule cannot be
// walked around and a backend cannot be steered elsewhere by the spelling of a path.
//
// - Percent-encoded unreserved characters are decoded (`%2e` is `.`, `%7E` is `~`: the same URI,
//   RFC 3986 6.2.2.2); other escapes get upper-case hex; a malformed escape or `%00` is 400.
// - Empty segments are merged (`//a` is `/a`, as nginx's merge_slashes), so a target never
//   starts with `//` (which a backend may read as a network-path reference to another host).
// - Dot segments are removed (RFC 3986 5.2.4), never above the root.
// - A segment that is a dot segment only in a backend's eyes (`..%2f`, `..\`, `..;x`, `%2e%2e%5c`)
//   is 400: there is no safe way to forward it.
// The query is kept as sent.
// - A path that a backend may read as another path (`;params` dropped per segment as Tomcat and
//   Spring do, also when written `%3B`; `\`, `%2F` and `%5C` as `/` as IIS and many frameworks
//   do; as Windows does, a segment's trailing dots and spaces dropped, and an NTFS stream name
//   `::$DATA` too) has that reading in `backendReading`: admission refuses it when that reading
//   takes another route. (Case is not folded: routes are case-sensitive, as nginx's and
//   HAProxy's are, and a route may be written in capitals.)

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * `plain`: the path has nothing to normalize and nothing a backend reads otherwise (no `%`, `\`,
 * `;`, `::`, dot segment, segment ending in a dot or empty segment), so
 * `backendReading` is undefined: the common case, one scan.
 */
export type Normalized = { ok: true; target: string; plain: boolean } | { ok: false; message: string };

/** Normalizes an origin-form target (`/path?query`). */
export function normalizeTarget(target: string): Normalized {
  const mark = target.indexOf('?');
  const path = mark === -1 ? target : target.slice(0, mark);
  const query = mark === -1 ? '' : target.slice(mark);
  // The common case: nothing to do (no escapes, dots after a slash, doubled slashes, backslashes).
  if (!/%|\/\.|\/\/|\\|;|::|\.(?:\/|$)/.test(path)) return { ok: true, target, plain: true };
  const out: string[] = [];
  const segments = path.split('/');
  let trailing = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = decodeUnreserved(segments[i] as string);
    if (segment === undefined) return { ok: false, message: 'invalid percent-encoding in path' };
    const last = i === segments.length - 1;
    trailing = last && (segment === '' || segment === '.' || segment === '..');
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    if (hiddenDotSegment(segment)) return { ok: false, message: 'dot segment hidden in an encoded path' };
    out.push(segment);
  }
  const joined = `/${out.join('/')}${trailing && out.length > 0 ? '/' : ''}`;
  return { ok: true, target: `${joined}${query}`, plain: false };
}

/** The segment with unreserved escapes decoded and the others in upper case; undefined if malformed. */
function decodeUnreserved(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c !== '%') {
      out += c;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!HEX.test(hex) || hex === '00') return undefined;
    const decoded = String.fromCharCode(Number.parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** Whether a backend that decodes escapes, or reads `\` or `;` as separators, sees `.` or `..` here. */
function hiddenDotSegment(segment: string): boolean {
  if (!/[%\\;]/.test(segment)) return false;
  const decoded = segment.replace(/%([0-9A-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
  return decoded.split(/[/\\;]/).some((piece) => piece === '.' || piece === '..');
}

/**
 * The normalized origin-form `target` as a backend that drops `;params` (also `%3B`) from
 * segments, reads `\`, `%2F` and `%5C` as `/`, and drops a segment's trailing dots and spaces
 * (`%20`) and `::$DATA` would see it; undefined when that is the same target (or cannot be normalized, which
 * normalizeTarget already refused).
 */
export function backendReading(target: string): string | undefined {
  const mark = target.indexOf('?');
  const path = mark === -1 ? target : target.slice(0, mark);
  if (!/[;\\]|::|%2F|%5C|%3B|%3A|(?:\.|%20)(?:\/|$)/i.test(path)) return undefined;
  const read = path
    .replace(/\\|%2F|%5C/gi, '/')
    .replace(/(?::|%3A){2}(?:\$|%24)DATA(?=\/|$)/gi, '')
    .replace(/(?:;|%3B)[^/]*/gi, '')
    .replace(/(?:\.|%20)+(?=\/|$)/gi, '');
  const normalized = normalizeTarget(read === '' ? '/' : read);
  if (!normalized.ok || normalized.target === path) return undefined;
  return `${normalized.target}${mark === -1 ? '' : target.slice(mark)}`;
}
