// A streamed body is copied into 64 KiB blocks (src/cache/body-blocks.ts), so what it is charged
// does not depend on the sizes of the reads it came in (audit M, D1: a 600,000-byte body read in
// 2,000 pieces of 300 bytes was charged 400 B per piece, passed maxObjectBytes 1 MiB and was
// never stored).
import test from 'ava';
import { type CachedResponse, prepareEntry } from '../../../src/cache/policy.ts';
import { BUFFER_OVERHEAD, CacheStore, headSize } from '../../../src/cache/store.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';

const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });
const get: RequestHead = { method: 'GET', target: '/', versionMinor: 1, headers: [] };
const now = Date.UTC(2024, 0, 15, 12, 0, 0);
const head: ResponseHead = {
  versionMinor: 1,
  status: 200,
  reason: 'OK',
  headers: [h('Cache-Control', 'public, max-age=600'), h('Content-Length', '600000')],
};
const meta: CachedResponse = prepareEntry(get, head, now, now);
const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

/** A deterministic generator (so a failure can be replayed): floats in [0, 1). */
function generator(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function bodyOf(n: number, random: () => number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (random() * 256) | 0;
  return out;
}

/** `body` cut into pieces of `size(i)` bytes. */
function pieces(body: Buffer, size: (i: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < body.length; i++) {
    const n = Math.max(1, size(i));
    out.push(body.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** The charge of an entry whose body is stored in blocks: one buffer per 64 KiB begun. */
const blockCharge = (key: string, bytes: number): number =>
  headSize(key, meta) + bytes + Math.ceil(bytes / BLOCK) * BUFFER_OVERHEAD;

function stream(store: CacheStore, key: string, chunks: readonly Buffer[]) {
  const writer = store.beginWrite(key, meta);
  let peak = 0;
  for (const chunk of chunks) {
    if (!writer.write(chunk)) return { entry: undefined, peak };
    peak = Math.max(peak, store.bytes);
  }
  return { entry: writer.commit(), peak };
}

test('a 600,000-byte body read in 2,000 pieces of 300 bytes is stored (maxObjectBytes 1 MiB), charged its bytes and a buffer per 64 KiB', (t) => {
  const store = new CacheStore({ maxBytes: 64 * MiB, maxObjectBytes: MiB });
  const body = bodyOf(600_000, generator(2));
  const { entry, peak } = stream(
    store,
    'http://x/file',
    pieces(body, () => 300),
  );
  if (entry === undefined) return t.fail('not stored');
  t.true(Buffer.concat(entry.body).equals(body), 'served byte for byte');
  t.is(entry.bodyBytes, 600_000);
  t.is(entry.body.length, 10, 'ten buffers: nine blocks of 64 KiB and the rest');
  t.is(entry.size, blockCharge('http://x/file', 600_000));
  t.true(entry.size <= headSize('http://x/file', meta) + 600_000 + 10 * BUFFER_OVERHEAD);
  t.is(store.bytes, entry.size, 'the write gave back what it held beyond the entry');
  t.true(peak <= entry.size + BLOCK + BUFFER_OVERHEAD, `at most a block more while written: ${peak}`);
  t.is(store.get('http://x/file', get), entry);
});

test('the same body gets the same buffers and charge in one chunk as in 2,000', (t) => {
  const body = bodyOf(600_000, generator(3));
  const one = new CacheStore({ maxBytes: 64 * MiB, maxObjectBytes: MiB });
  const many = new CacheStore({ maxBytes: 64 * MiB, maxObjectBytes: MiB });
  const a = stream(one, 'k', [body]).entry;
  const b = stream(
    many,
    'k',
    pieces(body, () => 300),
  ).entry;
  t.truthy(a);
  t.is(b?.size, a?.size);
  t.deepEqual(
    b?.body.map((buffer) => buffer.length),
    a?.body.map((buffer) => buffer.length),
  );
  t.is(one.bytes, many.bytes);
  // A small body is one buffer whatever its pieces, charged as one.
  const small = body.subarray(0, 50_000);
  const c = stream(one, 's', [small]).entry;
  const d = stream(
    many,
    's',
    pieces(small, () => 7),
  ).entry;
  t.is(d?.body.length, 1);
  t.is(d?.size, c?.size);
  t.is(d?.size, blockCharge('s', 50_000));
});

test('random bodies in random pieces (1 B to 100 KiB) read back identical; the charge never passes maxBytes', (t) => {
  const maxBytes = 3 * MiB;
  const maxObjectBytes = MiB;
  const random = generator(20241129);
  const store = new CacheStore({ maxBytes, maxObjectBytes });
  // One at a time: each fits, and is stored exactly.
  for (let i = 0; i < 40; i++) {
    const n = i === 0 ? 0 : (random() * (random() < 0.3 ? 70 * KiB : maxObjectBytes)) | 0;
    const body = bodyOf(n, random);
    const key = `http://x/${i}`;
    const chunks = pieces(body, () => 1 + ((random() < 0.2 ? random() * 16 : random() * 100 * KiB) | 0));
    const writer = store.beginWrite(key, meta);
    for (const chunk of chunks) {
      t.true(writer.write(chunk));
      if (store.bytes > maxBytes) return t.fail(`${store.bytes} bytes charged writing ${key}`);
    }
    const entry = writer.commit();
    if (entry === undefined) return t.fail(`${key} (${n} bytes) not stored`);
    t.true(Buffer.concat(entry.body).equals(body), `${key}: ${n} bytes in ${chunks.length} pieces`);
    t.is(entry.size, blockCharge(key, n), key);
    t.true(store.bytes <= maxBytes);
  }
  // Interleaved: eight fills of distinct objects at once, a piece to each in turn; the ones
  // that cannot have room are abandoned, the others are stored intact.
  for (let round = 0; round < 5; round++) {
    const fills = Array.from({ length: 8 }, (_, i) => {
      const body = bodyOf((random() * maxObjectBytes) | 0, random);
      const key = `http://y/${round}/${i}`;
      return {
        key,
        body,
        chunks: pieces(body, () => 1 + ((random() * 100 * KiB) | 0)),
        writer: store.beginWrite(key, meta),
        open: true,
      };
    });
    for (let step = 0; fills.some((fill) => fill.open && step < fill.chunks.length); step++) {
      for (const fill of fills) {
        const chunk = fill.chunks[step];
        if (!fill.open || chunk === undefined) continue;
        fill.open = fill.writer.write(chunk);
        if (store.bytes > maxBytes) return t.fail(`${store.bytes} bytes charged in round ${round}`);
      }
    }
    for (const fill of fills) {
      const entry = fill.writer.commit();
      t.is(entry !== undefined, fill.open, fill.key);
      if (entry !== undefined) t.true(Buffer.concat(entry.body).equals(fill.body), fill.key);
      t.true(store.bytes <= maxBytes);
    }
    t.true(
      fills.some((fill) => fill.open),
      'some are stored',
    );
  }
  const held = [...Array(40).keys()]
    .map((i) => store.get(`http://x/${i}`, get))
    .reduce((sum, entry) => sum + (entry?.size ?? 0), 0);
  t.true(held <= store.bytes);
});

test('a body whose charge fits maxBytes is stored even where a whole last block would not', (t) => {
  // maxObjectBytes = maxBytes, as a worker's share makes it: 1,000,000 bytes charged about
  // 1,009,000 fit in 1 MiB, though 983,040 bytes and a 64 KiB block to come would not.
  const store = new CacheStore({ maxBytes: MiB, maxObjectBytes: MiB });
  const body = bodyOf(1_000_000, generator(5));
  const { entry, peak } = stream(
    store,
    'k',
    pieces(body, () => 10_000),
  );
  if (entry === undefined) return t.fail('not stored');
  t.true(Buffer.concat(entry.body).equals(body));
  t.true(peak <= MiB);
  t.true(entry.size <= MiB);
});

test('an abandoned or aborted write gives back everything it was charged', (t) => {
  const store = new CacheStore({ maxBytes: 4 * MiB, maxObjectBytes: 200 * KiB });
  const body = bodyOf(300 * KiB, generator(6));
  const over = store.beginWrite('over', meta);
  let accepted = 0;
  for (const chunk of pieces(body, () => 3000)) {
    if (!over.write(chunk)) break;
    accepted += chunk.length;
  }
  t.true(accepted <= 200 * KiB && accepted > 190 * KiB, `${accepted} bytes taken`);
  t.is(store.bytes, 0, 'abandoned past maxObjectBytes');
  t.is(over.commit(), undefined);
  const aborted = store.beginWrite('aborted', meta);
  for (const chunk of pieces(body.subarray(0, 100 * KiB), () => 999)) aborted.write(chunk);
  t.true(store.bytes > 100 * KiB);
  aborted.abort();
  t.is(store.bytes, 0);
});
