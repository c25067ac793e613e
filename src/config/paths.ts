// Route paths and probe paths. Requests are routed on their normalized path (http/normalize.ts):
// a route path is spelled the same way here, or refused when no request could ever match it, so
// that its traffic cannot silently fall through to another route.

import { normalizeTarget } from '../http/normalize.ts';
import { describeValue, fail, ok, type Parsed } from './values.ts';

/**
 * A health probe's request-target, sent as written (a query too), and the start of a route path:
 * starts with `/`, no whitespace, control characters or `#`, characters beyond ASCII
 * percent-encoded as UTF-8 (as a client sends them: a raw one is never in a request), escapes
 * well-formed.
 */
export function parseProbePath(value: unknown): Parsed<string> {
  if (typeof value !== 'string')
    return fail(`expected a path starting with "/" (got ${describeValue(value)})`);
  if (!value.startsWith('/')) return fail(`must start with "/" (got ${describeValue(value)})`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return fail('must not contain spaces or control characters');
  if (value.includes('#')) return fail('must not contain "#" (a fragment is never sent in a request)');
  let text: string;
  try {
    text = value.replace(/[^ -~]+/gu, (s) => encodeURIComponent(s));
  } catch {
    return fail('must be valid Unicode');
  }
  const normalized = normalizeTarget(text);
  if (!normalized.ok) return fail(normalized.message);
  return ok(text);
}

/**
 * A route's path prefix, in the spelling requests are routed by: `/%7Euser/` is `/~user/`,
 * `/api//v1` is `/api/v1`, `/é/` is `/%C3%A9/`. A query, or a `.` or `..` segment, is refused:
 * requests are routed without their query and after their dot segments are removed.
 */
export function parseRoutePath(value: unknown): Parsed<string> {
  const r = parseProbePath(value);
  if (!r.ok) return r;
  if (r.value.includes('?'))
    return fail('must not contain "?": requests are routed on their path, without the query');
  if (r.value.split('/').some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment)))
    return fail('must not contain "." or ".." segments: requests are routed after they are removed');
  const normalized = normalizeTarget(r.value);
  return normalized.ok ? ok(normalized.target) : fail(normalized.message);
}
