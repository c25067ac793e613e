import test from 'ava';
import { type CachedResponse, prepareEntry } from '../../../src/cache/policy.ts';
import { CacheStore, chunkSize, FIELD_OVERHEAD, headSize } from '../../../src/cache/store.ts';
import type { HeaderField, RequestHead } from '../../../src/http/message.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });

function req(...headers: HeaderField[]): RequestHead {
  return { method: 'GET', target: '/', versionMinor: 1, headers };
}

/** A stored response with no fields at all, so sizes are easy to reason about. */
function bare(vary = '', varyKey = ''): CachedResponse {
  return { status: 200, reason: 'OK', headers: [], requestTime: T0, responseTime: T0, vary, varyKey };
}

const body = (n: number, fill = 0x61): Buffer[] => [Buffer.alloc(n, fill)];
/** The charge of an entry under `key` with an n-byte body in one chunk. */
const size = (key: string, n: number, meta: CachedResponse = bare()): number =>
  headSize(key, meta) + chunkSize(n);
const has = (store: CacheStore, key: string): boolean => store.get(key, req()) !== undefined;

test('an entry accounts body, fields, key and overhead', (t) => {
  const store = new CacheStore({ maxBytes: 10_000, maxObjectBytes: 10_000 });
  const meta = { ...bare(), headers: [h('Content-Type', 'text/plain')] };
  const entry = store.put('k', meta, body(100));
  t.is(entry?.size, size('k', 100, meta));
  t.is(store.bytes, entry?.size ?? -1);
  t.is(store.count, 1);
});

test('LRU: a get makes an entry recent; puts evict the least recently used, in order', (t) => {
  const one = size('k1', 100);
  const store = new CacheStore({ maxBytes: 3 * one, maxObjectBytes: one });
  store.put('k1', bare(), body(100));
  store.put('k2', bare(), body(100));
  store.put('k3', bare(), body(100));
  t.is(store.bytes, 3 * one);
  t.truthy(store.get('k1', req())); // order now k2, k3, k1
  t.is(store.evictions, 0);
  store.put('k4', bare(), body(100)); // evicts k2
  store.put('k5', bare(), body(100)); // evicts k3
  t.is(store.count, 3);
  t.is(store.evictions, 2);
  t.is(store.limit, 3 * one);
  // A purge is not an eviction.
  store.purge('k4');
  t.is(store.evictions, 2);
  store.put('k4', bare(), body(100));
  t.deepEqual(
    ['k1', 'k2', 'k3', 'k4', 'k5'].map((k) => has(store, k)),
    [true, false, false, true, true],
  );
  // Reading k1, k4, k5 in that order leaves k1 least recent: the next put evicts it.
  store.put('k6', bare(), body(100));
  t.deepEqual(
    ['k1', 'k4', 'k5', 'k6'].map((k) => has(store, k)),
    [false, true, true, true],
  );
});

test('LRU: the newest entry hit again stays newest, and one deleted while newest is ordered anew', (t) => {
  const one = size('k1', 100);
  const store = new CacheStore({ maxBytes: 3 * one, maxObjectBytes: one });
  store.put('k1', bare(), body(100));
  store.put('k2', bare(), body(100));
  store.put('k3', bare(), body(100));
  for (let i = 0; i < 3; i++) t.truthy(store.get('k3', req())); // already newest: order k1, k2, k3
  t.truthy(store.get('k1', req())); // k2, k3, k1
  t.truthy(store.get('k1', req()));
  store.purge('k1'); // the newest goes: k2, k3
  store.put('k1', bare(), body(100)); // k2, k3, k1
  t.truthy(store.get('k2', req())); // k3, k1, k2
  t.truthy(store.get('k2', req()));
  store.put('k4', bare(), body(100)); // evicts k3
  t.deepEqual(
    ['k1', 'k2', 'k3', 'k4'].map((k) => has(store, k)),
    [true, true, false, true],
  );
  // has() reads in order, so k4 is newest now and k1 the least recent.
  store.put('k5', bare(), body(100));
  t.deepEqual(
    ['k1', 'k2', 'k4', 'k5'].map((k) => has(store, k)),
    [false, true, true, true],
  );
});

test('the byte bound holds over a stream of 1000 distinct objects, evicting exactly in LRU order', (t) => {
  const maxBytes = 50_000;
  const maxObjectBytes = 8_000;
  const store = new CacheStore({ maxBytes, maxObjectBytes });
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  // A model of the expected contents: keys, least recent first, with their sizes.
  const model: { key: string; size: number }[] = [];
  let refused = 0;
  for (let i = 0; i < 1000; i++) {
    const key = `http://example.test/object/${i}`;
    const n = Math.floor(random() * 9_000);
    const entry = store.put(key, bare(), body(n));
    const size = headSize(key, bare()) + chunkSize(n);
    if (n > maxObjectBytes) {
      t.is(entry, undefined);
      refused++;
    } else {
      t.is(entry?.size, size);
      let total = model.reduce((sum, e) => sum + e.size, 0);
      while (total + size > maxBytes) total -= (model.shift() as { size: number }).size;
      model.push({ key, size });
    }
    t.true(store.bytes <= maxBytes, `bytes ${store.bytes} after ${i}`);
    // Every 10th object is read back, which makes it most recently used.
    if (i % 10 === 0 && model.length > 0) {
      const oldest = model[0] as { key: string; size: number };
      t.truthy(store.get(oldest.key, req()));
      model.push(model.shift() as { key: string; size: number });
    }
  }
  t.true(refused > 0);
  t.is(store.count, model.length);
  t.is(
    store.bytes,
    model.reduce((sum, e) => sum + e.size, 0),
  );
  for (const { key } of model) t.true(has(store, key), key);
});

test('put refuses an object over maxObjectBytes and leaves the store as it was', (t) => {
  // maxObjectBytes bounds the body's bytes (README), maxBytes the charge.
  const store = new CacheStore({ maxBytes: 10_000, maxObjectBytes: 100 });
  t.truthy(store.put('a', bare(), body(100)), 'a body of exactly maxObjectBytes, charged more');
  const before = store.bytes;
  t.is(store.put('b', bare(), body(101)), undefined);
  t.is(store.bytes, before);
  t.is(store.count, 1);
  const wide = new CacheStore({ maxBytes: 10_000, maxObjectBytes: 10_000 });
  t.is(
    wide.put('c', bare(), body(9_000)),
    undefined,
    'a body under maxObjectBytes whose charge passes maxBytes',
  );
});

function variant(encoding: string | undefined, bodyByte: number): [CachedResponse, Buffer[]] {
  const r = req(...(encoding === undefined ? [] : [h('Accept-Encoding', encoding)]));
  const meta = prepareEntry(
    { ...r, headers: [h('Host', 'x'), ...r.headers] },
    { versionMinor: 1, status: 200, reason: 'OK', headers: [h('Vary', 'Accept-Encoding'), h('Date', 'x')] },
    T0,
    T0,
  );
  return [meta, body(4, bodyByte)];
}

test('4.1 variants: get picks the one whose selecting header values match', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  store.put('k', ...variant('gzip', 0x67));
  store.put('k', ...variant('br', 0x62));
  store.put('k', ...variant(undefined, 0x6e));
  t.is(store.count, 3);
  t.is(store.get('k', req(h('Accept-Encoding', 'gzip')))?.body[0]?.[0], 0x67);
  t.is(store.get('k', req(h('accept-encoding', ' br ')))?.body[0]?.[0], 0x62);
  t.is(store.get('k', req())?.body[0]?.[0], 0x6e);
  t.is(store.get('k', req(h('Accept-Encoding', 'deflate'))), undefined);
  t.is(store.get('k', req(h('Accept-Encoding', ''))), undefined, 'empty is not missing');
});

test('4.1 a new response for the same variant replaces it; other variants stay', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  store.put('k', ...variant('gzip', 0x31));
  store.put('k', ...variant('br', 0x32));
  store.put('k', ...variant('gzip', 0x33));
  t.is(store.count, 2);
  t.is(store.get('k', req(h('Accept-Encoding', 'gzip')))?.body[0]?.[0], 0x33);
  t.is(store.get('k', req(h('Accept-Encoding', 'br')))?.body[0]?.[0], 0x32);
});

test('4.1 when the origin changes its Vary, older variants are dropped', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  store.put('k', ...variant('gzip', 0x31));
  store.put('k', ...variant('br', 0x32));
  store.put('k', bare(), body(4, 0x33)); // no Vary now
  t.is(store.count, 1);
  t.is(store.get('k', req(h('Accept-Encoding', 'gzip')))?.body[0]?.[0], 0x33);
});

test('variants per key are capped, the oldest dropped first', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000, maxVariants: 2 });
  store.put('k', bare('x', 'x: 1'), body(1));
  store.put('k', bare('x', 'x: 2'), body(1));
  store.put('k', bare('x', 'x: 3'), body(1));
  t.is(store.count, 2);
  t.is(store.get('k', req(h('X', '1'))), undefined);
  t.truthy(store.get('k', req(h('X', '3'))));
});

test('purge removes every variant of a key; purgePrefix every key under a prefix', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  store.put('http://a.test/x', bare('v', 'v: 1'), body(1));
  store.put('http://a.test/x', bare('v', 'v: 2'), body(1));
  store.put('http://a.test/x/y', bare(), body(1));
  store.put('http://a.test/z', bare(), body(1));
  store.put('http://b.test/x', bare(), body(1));
  t.is(store.purge('http://a.test/x'), 2);
  t.is(store.purge('http://a.test/x'), 0);
  store.put('http://a.test/x', bare(), body(1));
  t.is(store.purgePrefix('http://a.test/x'), 2);
  t.is(store.count, 2);
  t.is(store.purgePrefix('http://'), 2);
  t.is(store.count, 0);
  t.is(store.bytes, 0);
});

test('a writer stores a streamed body on commit, copying its chunks', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  const writer = store.beginWrite('k', bare());
  const chunk = Buffer.from('hello ');
  t.true(writer.write(chunk));
  chunk.fill(0x58); // the caller reuses its buffer
  t.true(writer.write(Buffer.from('world')));
  t.is(store.count, 0, 'nothing is visible before commit');
  const entry = writer.commit();
  t.is(Buffer.concat(entry?.body ?? []).toString(), 'hello world');
  t.is(entry?.bodyBytes, 11);
  t.is(store.get('k', req()), entry);
  t.is(writer.commit(), undefined, 'commit is once');
});

test('a writer is abandoned once the object passes maxObjectBytes', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100 });
  const writer = store.beginWrite('k', bare());
  t.true(writer.write(Buffer.alloc(60)));
  t.true(writer.write(Buffer.alloc(40)), 'exactly at the limit is fine');
  t.false(writer.write(Buffer.alloc(1)));
  t.false(writer.write(Buffer.alloc(1)), 'stays abandoned');
  t.is(writer.commit(), undefined);
  t.is(store.count, 0);
  t.is(store.bytes, 0);
});

test('an aborted writer stores nothing', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  const writer = store.beginWrite('k', bare());
  writer.write(Buffer.from('partial'));
  writer.abort();
  t.false(writer.write(Buffer.from('more')));
  t.is(writer.commit(), undefined);
  t.is(store.count, 0);
});

test('a committed writer evicts like a put', (t) => {
  const one = size('k1', 50);
  const store = new CacheStore({ maxBytes: 2 * one, maxObjectBytes: one });
  store.put('k1', bare(), body(50));
  store.put('k2', bare(), body(50));
  const writer = store.beginWrite('k3', bare());
  writer.write(Buffer.alloc(50));
  t.truthy(writer.commit());
  t.false(has(store, 'k1'));
  t.true(store.bytes <= 2 * one);
});

test('bodies being written count against maxBytes: many open writers of distinct objects stay within it', (t) => {
  const maxBytes = 20_000;
  const store = new CacheStore({ maxBytes, maxObjectBytes: 12_000 });
  const writers = Array.from({ length: 40 }, (_, i) => ({
    writer: store.beginWrite(`k${i}`, bare()),
    held: 0,
    abandoned: false,
  }));
  // 1,000 bytes to each in turn, as slow clients' fills of distinct objects would come.
  for (let round = 0; round < 7; round++)
    for (const fill of writers) {
      if (fill.writer.write(Buffer.alloc(1000))) fill.held += 1000;
      else fill.abandoned = true;
      t.true(store.bytes <= maxBytes, `${store.bytes} bytes held`);
    }
  const kept = writers.filter((fill) => !fill.abandoned);
  const bodies = kept.reduce((sum, fill) => sum + fill.held, 0);
  t.true(bodies <= maxBytes, `${bodies} bytes of bodies kept by ${kept.length} open writers`);
  t.true(kept.length > 0 && kept.length < writers.length);
  t.true(store.bytes >= bodies);
  for (const fill of writers) fill.writer.abort();
  t.is(store.bytes, 0, 'an aborted write gives its bytes back');
});

test('a write in flight makes room as a put would, and its bytes move to the entry on commit', (t) => {
  const one = size('k1', 50);
  const store = new CacheStore({ maxBytes: 2 * one, maxObjectBytes: one });
  store.put('k1', bare(), body(50));
  store.put('k2', bare(), body(50));
  const writer = store.beginWrite('k3', bare());
  t.true(writer.write(Buffer.alloc(50)));
  t.false(has(store, 'k1'), 'the least recently used entry made room while the body streamed');
  t.true(has(store, 'k2'));
  t.is(store.bytes, 2 * one);
  t.truthy(writer.commit());
  t.is(store.bytes, 2 * one);
  t.true(has(store, 'k3'));
});

test('update applies freshened fields and re-accounts bytes', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 10_000 });
  const entry = store.put('k', bare(), body(10));
  if (entry === undefined) return t.fail();
  const before = store.bytes;
  t.true(store.update(entry, { headers: [h('X-New', '12345')], requestTime: T0 + 5, responseTime: T0 + 6 }));
  t.is(store.bytes, before + FIELD_OVERHEAD + 4 * ('X-New'.length + 5));
  t.is(entry.responseTime, T0 + 6);
  store.delete(entry);
  t.false(store.update(entry, { headers: [], requestTime: T0, responseTime: T0 }));
  t.is(store.bytes, 0);
});
