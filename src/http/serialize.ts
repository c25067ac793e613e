// Writes message heads. Values were decoded as latin1, so writing them back as latin1
// reproduces the received bytes exactly (obs-text included).
import type { HeaderField } from './message.ts';

export function serializeHead(startLine: string, headers: readonly HeaderField[]): string {
  let out = `${startLine}\r\n`;
  for (const field of headers) out += `${field.name}: ${field.value}\r\n`;
  return `${out}\r\n`;
}

export function field(name: string, value: string): HeaderField {
  return { name, lower: name.toLowerCase(), value };
}

/** The comma-separated tokens of every field named `lower`, lower-cased (e.g. Connection). */
export function headerTokens(headers: readonly HeaderField[], lower: string): string[] {
  const tokens: string[] = [];
  for (const header of headers) {
    if (header.lower !== lower) continue;
    for (const token of header.value.split(',')) {
      const trimmed = token.trim().toLowerCase();
      if (trimmed) tokens.push(trimmed);
    }
  }
  return tokens;
}
