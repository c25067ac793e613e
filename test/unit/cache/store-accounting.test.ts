// What an entry is charged against maxBytes: an honest upper estimate of the memory it holds
// (src/cache/entry-size.ts has the formula and the measurement). Literal numbers on purpose:
// these tests pin the charge of known shapes, so a change of the constants is seen here.
import test from 'ava';
import { prepareEntry } from '../../../src/cache/policy.ts';
import { CacheStore } from '../../../src/cache/store.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';

const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });
const get: RequestHead = { method: 'GET', target: '/', versionMinor: 1, headers: [] };
const now = Date.UTC(2024, 0, 15, 12, 0, 0);
/** The audit's tiny answer: 1 byte, Cache-Control and Date, as the backend sent it. */
const tinyHead: ResponseHead = {
  versionMinor: 1,
  status: 200,
  reason: 'OK',
  headers: [h('Cache-Control', 'public, max-age=600'), h('Date', 'Mon, 15 Jan 2024 12:00:00 GMT')],
};
/** Keys of one length, as many distinct URLs of one route make them. */
const keyOf = (i: number): string => `http://shop.example/item/${String(i).padStart(6, '0')} web`;

/**
 * The charge of one tiny entry: ENTRY_OVERHEAD 1300 + key 35 + reason 2 × 2
 * + Cache-Control (160 + 4 × (13 + 19)) + Date (160 + 4 × (4 + 29)) + body (400 + 1).
 * It holds about 1,720 bytes (1,620 on the heap, measured by bench/cache-entry-cost.ts, and a
 * backing store record); the old charge was 175.
 */
const TINY_CHARGE = 1300 + 35 + 4 + (160 + 128) + (160 + 132) + 401;

function storeTiny(store: CacheStore, i: number): void {
  const writer = store.beginWrite(keyOf(i), prepareEntry(get, tinyHead, now, now));
  writer.write(Buffer.from('x'));
  writer.commit();
}

test('many tiny entries: the store keeps maxBytes / (charge per entry) of them, never more than maxBytes', (t) => {
  const maxBytes = 4 * 1024 * 1024;
  const store = new CacheStore({ maxBytes, maxObjectBytes: 1024 * 1024 });
  storeTiny(store, 0);
  t.is(store.bytes, TINY_CHARGE, 'the charge of one tiny entry');
  t.true(TINY_CHARGE >= 1720, 'at least what a tiny entry was measured to hold');
  for (let i = 1; i < 10_000; i++) {
    storeTiny(store, i);
    if (store.bytes > maxBytes) return t.fail(`${store.bytes} bytes charged after ${i + 1} entries`);
  }
  t.is(store.count, Math.floor(maxBytes / TINY_CHARGE)); // 1,807
  t.is(store.bytes, store.count * TINY_CHARGE);
  t.true(store.bytes <= maxBytes);
  t.is(store.evictions, 10_000 - store.count);
});

test('the old flat 64-byte bookkeeping would keep about ten times as many tiny entries as memory allows', (t) => {
  // 1 MiB held by entries of about 1,720 bytes each is at most 610 entries.
  const maxBytes = 1024 * 1024;
  const store = new CacheStore({ maxBytes, maxObjectBytes: maxBytes });
  for (let i = 0; i < 6000; i++) storeTiny(store, i);
  t.true(store.count <= Math.floor(maxBytes / 1720), `${store.count} entries kept in ${maxBytes} bytes`);
});

test('a small body is stored in a buffer of its own, not a slice of a shared 8 KiB pool slab', (t) => {
  const store = new CacheStore({ maxBytes: 1 << 20, maxObjectBytes: 1 << 20 });
  const writer = store.beginWrite(keyOf(1), prepareEntry(get, tinyHead, now, now));
  writer.write(Buffer.from('x'));
  const entry = writer.commit();
  const chunk = entry?.body[0];
  t.is(chunk?.length, 1);
  t.is(chunk?.buffer.byteLength, 1, 'one byte kept alive for a one-byte body');
});

test('a small body streamed in many chunks is stored as one buffer, and charged as one', (t) => {
  const store = new CacheStore({ maxBytes: 1 << 20, maxObjectBytes: 1 << 20 });
  const writer = store.beginWrite(keyOf(1), prepareEntry(get, tinyHead, now, now));
  for (let i = 0; i < 8; i++) writer.write(Buffer.alloc(100, 0x61 + i));
  const entry = writer.commit();
  t.is(entry?.body.length, 1);
  t.is(
    entry?.body[0]?.toString('latin1'),
    'abcdefgh'
      .split('')
      .map((c) => c.repeat(100))
      .join(''),
  );
  t.is(store.bytes, TINY_CHARGE - 401 + 400 + 800);
});

test('strings are charged as V8 stores them: two bytes a character when one is beyond U+00FF', (t) => {
  const store = new CacheStore({ maxBytes: 1 << 20, maxObjectBytes: 1 << 20 });
  const meta = prepareEntry(get, tinyHead, now, now);
  const narrow = store.put('http://shop.example/caf\u00e9', meta, [Buffer.from('x')]);
  const wide = store.put('http://shop.example/caf\u20ac', meta, [Buffer.from('x')]);
  t.is((wide?.size ?? 0) - (narrow?.size ?? 0), 'http://shop.example/caf\u20ac'.length);
});
