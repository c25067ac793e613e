// Hop-by-hop fields describe one connection and never travel past a proxy (RFC 9110 7.6.1).
import type { HeaderField } from './message.ts';
import { headerTokens } from './serialize.ts';

/**
 * The hop-by-hop fields (and framing, which Sluice writes itself: it re-frames every body). A
 * switch on the length, not a Set: a name parsed a moment ago has no hash yet, and computing one
 * for each field of every message was a measurable part of a request's cost.
 */
function isHopByHopName(lower: string): boolean {
  switch (lower.length) {
    case 2:
      return lower === 'te';
    case 7:
      return lower === 'trailer' || lower === 'upgrade';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 14:
      return lower === 'content-length';
    case 16:
      return lower === 'proxy-connection';
    case 17:
      return lower === 'transfer-encoding';
    case 18:
      return lower === 'proxy-authenticate';
    case 19:
      return lower === 'proxy-authorization';
    default:
      return false;
  }
}

/** The Connection tokens of a message, read once and shared by the checks that need them. */
export function connectionTokens(headers: readonly HeaderField[]): readonly string[] {
  return headerTokens(headers, 'connection');
}

/** Whether a field named `lower` stops at this hop: hop-by-hop, framing, or named in Connection. */
export function isHopByHop(lower: string, tokens: readonly string[]): boolean {
  return isHopByHopName(lower) || (tokens.length > 0 && tokens.includes(lower));
}

/**
 * The end-to-end fields of a message: hop-by-hop fields, fields named in Connection and
 * framing fields removed. Returns the input array itself when there is nothing to remove.
 */
export function endToEndFields(headers: readonly HeaderField[], tokens: readonly string[]): HeaderField[] {
  let keep = true;
  for (const header of headers) {
    if (isHopByHop(header.lower, tokens)) {
      keep = false;
      break;
    }
  }
  if (keep) return headers as HeaderField[];
  return headers.filter((header) => !isHopByHop(header.lower, tokens));
}
