// Which trailer fields go on (both ways). A trailer arrives after the head was filtered and
// forwarded, so a field there must not do what the filter stopped in the head: frame or route
// the message, claim an identity, carry credentials or cookies, or control caching (RFC 9110
// 6.5.1 lists what a trailer may not be; recipients may merge trailers into the head).
import { isHopByHop } from '../http/hop-by-hop.ts';
import type { HeaderField } from '../http/message.ts';
import { canonicalName, isIdentityField } from './forwarding.ts';

const forbidden = new Set([
  'host',
  'authorization',
  'cookie',
  'set-cookie',
  'set-cookie2',
  'www-authenticate',
  'cache-control',
  'pragma',
  'expires',
  'age',
  'vary',
  'date',
  'location',
  'content-type',
  'content-encoding',
  'content-range',
  'content-location',
  'expect',
  'max-forwards',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'x-cache',
]);

/** Whether a trailer field may be forwarded (fields with `_` in their names never are). */
export function trailerAllowed(field: HeaderField): boolean {
  const lower = field.lower;
  if (lower.includes('_')) return false;
  return !forbidden.has(lower) && !isHopByHop(lower, []) && !isIdentityField(canonicalName(lower));
}
