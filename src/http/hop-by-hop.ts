// Hop-by-hop fields describe one connection and never travel past a proxy (RFC 9110 7.6.1).
import type { HeaderField } from './message.ts';
import { headerTokens } from './serialize.ts';

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Sluice re-frames every body itself, so it writes its own Content-Length.
  'content-length',
]);

/** The Connection tokens of a message, read once and shared by the checks that need them. */
export function connectionTokens(headers: readonly HeaderField[]): string[] {
  return headerTokens(headers, 'connection');
}

/** Whether a field named `lower` stops at this hop: hop-by-hop, framing, or named in Connection. */
export function isHopByHop(lower: string, tokens: readonly string[]): boolean {
  return hopByHop.has(lower) || (tokens.length > 0 && tokens.includes(lower));
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
