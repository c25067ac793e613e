// What a stored response is charged against cache.maxBytes: an upper estimate of the memory it
// holds, worked out from the entry itself.
//
//   headSize(key, meta)      the entry without its body: ENTRY_OVERHEAD, its key, reason and Vary
//                            strings, and per field FIELD_OVERHEAD + 4 × (name + value)
//   chunkSize(bytes)         one body buffer: its bytes + BUFFER_OVERHEAD. A streamed body is
//                            kept in 64 KiB blocks (body-blocks.ts), whatever its read sizes,
//                            so this is charged about once per 64 KiB; while it is written a
//                            block is charged its capacity
//   stringBytes(s)           a string's characters as V8 keeps them: 1 byte each, 2 when any
//                            is beyond U+00FF
//
// Why 4 × (name + value) per field: a stored field holds its name, its lower-case name and its
// value, which were sliced from the text of the backend's head (values of 13 characters or more
// are V8 slices that keep that whole text alive), and the first hit adds the head Sluice serves
// (render.ts, entryInfo), the fields once more. The fixed costs (the entry object, its field
// objects and string headers, its body array, its places in the store's Map, array and LRU Set,
// its EntryInfo, the Via line) are the constants.
//
// Measured with `node --expose-gc bench/cache-entry-cost.ts 50000` (Node 24.21, x64): 50,000
// entries stored as the proxy stores them, a fresh process per shape, heapUsed + arrayBuffers
// after full GCs before and after, divided by the count (two runs agreed within 10 B):
//
//   shape                                               held      charged   old charge
//   tiny: 1-byte body, Cache-Control and Date fields    1,620 B   2,327 B     182 B
//   fields: tiny and ten 35-byte fields                 3,854 B   5,358 B     579 B
//   chunks: an 8 KiB body written in eight 1 KiB chunks 9,721 B  10,518 B   8,373 B
//   vary: tiny with Vary: Accept-Encoding               1,871 B   2,599 B     241 B
//
// (With the old pooled copies the same entries held 1,685, 4,329, 10,625 and 1,981 B: a 1-byte
// body kept part of a pool slab alive.) From these: a field holds about 140 B beyond its
// characters (its object, three string headers), an entry about 1,010 B beyond its fields, key
// and body (the entry object, its arrays, its places in the Map and the LRU Set, its EntryInfo,
// the Via line), and a body chunk about 230 B of heap (a Buffer and its own ArrayBuffer) plus its
// native backing store record, which heapUsed does not show: 200,000 one-byte allocUnsafeSlow
// buffers took about 100 B more RSS each than the heap figures. The constants add 20-30 % to
// these. RSS grows beyond them by what V8 keeps committed for its heap: in the bench about
// 2.5 KiB per tiny entry more while it fills (the garbage of making them included).

/** Bytes charged per entry beyond its strings and fields: objects, map and list slots, EntryInfo, Via. */
export const ENTRY_OVERHEAD = 1300;
/** Bytes charged per stored field beyond 4 × its characters: the object and its three strings. */
export const FIELD_OVERHEAD = 160;
/** Bytes charged per body buffer beyond its length: the Buffer, its ArrayBuffer and backing store. */
export const BUFFER_OVERHEAD = 400;

interface SizedHead {
  readonly reason: string;
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  readonly vary: string;
  readonly varyKey: string;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is the point
const WIDE = /[^\u0000-\u00ff]/;

/** Bytes V8 keeps for the characters of `s`: one per character, two if any needs more than 8 bits. */
export function stringBytes(s: string): number {
  return WIDE.test(s) ? 2 * s.length : s.length;
}

/** The charge of an entry without its body. */
export function headSize(key: string, meta: SizedHead): number {
  let size =
    ENTRY_OVERHEAD +
    stringBytes(key) +
    2 * stringBytes(meta.reason) +
    stringBytes(meta.vary) +
    stringBytes(meta.varyKey);
  for (const field of meta.headers)
    size += FIELD_OVERHEAD + 4 * (stringBytes(field.name) + stringBytes(field.value));
  return size;
}

/** The charge of one body buffer of `bytes` bytes (a block's capacity while it is written). */
export function chunkSize(bytes: number): number {
  return bytes + BUFFER_OVERHEAD;
}
