// Writes message heads. Values were decoded as latin1, so writing them back as latin1
// reproduces the received bytes exactly (obs-text included).
import type { HeaderField } from './message.ts';

export function serializeHead(startLine: string, headers: readonly HeaderField[]): string {
  return `${startLine}\r\n${fieldLines(headers)}\r\n`;
}

/** The field lines, each `Name: value` and its CRLF. */
export function fieldLines(headers: readonly HeaderField[]): string {
  let out = '';
  for (const field of headers) out += `${field.name}: ${field.value}\r\n`;
  return out;
}

/** Lower-case names of the fields Sluice writes (a fixed set, plus the config's rules). */
const lowerNames = new Map<string, string>();

export function field(name: string, value: string): HeaderField {
  let lower = lowerNames.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    // Names come from Sluice's code and config, but a bound keeps this a cache whatever calls it.
    if (lowerNames.size < 1024) lowerNames.set(name, lower);
  }
  return { name, lower, value };
}

/** No tokens: shared, so a message without the field costs no array. */
const noTokens: readonly string[] = Object.freeze([]);

/** The comma-separated tokens of every field named `lower`, lower-cased (e.g. Connection). */
export function headerTokens(headers: readonly HeaderField[], lower: string): readonly string[] {
  let tokens: string[] | undefined;
  for (const header of headers) {
    if (header.lower !== lower) continue;
    tokens ??= [];
    const value = header.value;
    if (!value.includes(',')) {
      // The usual single token (`Connection: keep-alive`): no list to split.
      const only = value.trim().toLowerCase();
      if (only) tokens.push(only);
      continue;
    }
    for (const token of value.split(',')) {
      const trimmed = token.trim().toLowerCase();
      if (trimmed) tokens.push(trimmed);
    }
  }
  return tokens ?? noTokens;
}
