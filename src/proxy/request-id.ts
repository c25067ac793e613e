// Request ids: RFC 9562 version 4 UUIDs, made from a pool of random bytes refilled 256 ids at a
// time, and written as one string straight from a scratch buffer. crypto.randomUUID builds each
// id from twenty small strings (about 0.6 KB of garbage per request, measured).
import { randomFillSync } from 'node:crypto';

const idsPerFill = 256;
const pool = Buffer.allocUnsafe(16 * idsPerFill);
let used = idsPerFill;
const hex = Buffer.from('0123456789abcdef', 'latin1');
const text = Buffer.allocUnsafe(36);
/** Where each of the 16 bytes goes in `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`. */
const positions = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
for (const dash of [8, 13, 18, 23]) text[dash] = 0x2d;

/** A new random (version 4) UUID in lower-case hex. */
export function newRequestId(): string {
  if (used === idsPerFill) {
    randomFillSync(pool);
    used = 0;
  }
  const base = 16 * used++;
  for (let i = 0; i < 16; i++) {
    let byte = pool[base + i] as number;
    if (i === 6)
      byte = (byte & 0x0f) | 0x40; // version 4
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // variant 10
    const at = positions[i] as number;
    text[at] = hex[byte >> 4] as number;
    text[at + 1] = hex[byte & 0x0f] as number;
  }
  return text.toString('latin1', 0, 36);
}
