// joinedHit: the usual hit kept ready as one buffer, which must always equal what renderEntry
// makes at that moment (the same bytes), and is made again only when something in it changes.
import test from 'ava';
import { prepareEntry } from '../../../src/cache/policy.ts';
import { entryInfo, JOINED_LIMIT, joinedHit, renderEntry } from '../../../src/cache/render.ts';
import { type CacheEntry, CacheStore } from '../../../src/cache/store.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';
import { withHead } from '../../../src/http/one-write.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });
const get: RequestHead = { method: 'GET', target: '/a', versionMinor: 1, headers: [h('Host', 'site.test')] };
const MAX_BODY = 16 * 1024;

function res(...headers: HeaderField[]): ResponseHead {
  return { versionMinor: 1, status: 200, reason: 'OK', headers };
}

function stored(store: CacheStore, key: string, body: Buffer, ...headers: HeaderField[]): CacheEntry {
  const fields = [h('Date', new Date(T0).toUTCString()), h('Cache-Control', 'max-age=3600'), ...headers];
  const entry = store.put(key, prepareEntry(get, res(...fields), T0, T0), [body]);
  if (!entry) throw new Error('not stored');
  return entry;
}

const rendered = (entry: CacheEntry, request: RequestHead, now: number) => {
  const answer = renderEntry(entry, request, now, 'HIT', true);
  return Buffer.from(withHead(answer.head, answer.body) as Buffer);
};

test('the joined hit is renderEntry’s bytes, kept while the Age stays and made again when it changes', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100_000 });
  const entry = stored(store, 'a', Buffer.from('x'.repeat(1024)), h('Content-Type', 'text/plain'));
  const first = joinedHit(entry, get, T0 + 2000, 'HIT', true, MAX_BODY);
  if (!first) throw new Error('no joined answer');
  t.deepEqual(Buffer.from(first.bytes as Buffer), rendered(entry, get, T0 + 2000));
  t.is(first.status, 200);
  t.is(first.bodyBytes, 1024);
  t.regex(
    first.bytes.toString('latin1'),
    /\r\nAge: 2\r\nX-Cache: HIT\r\nContent-Length: 1024\r\n\r\nx{1024}$/,
  );
  // Later in the same second: the very same buffer.
  t.is(joinedHit(entry, get, T0 + 2999, 'HIT', true, MAX_BODY), first);
  // The next second: new bytes, with the new Age.
  const next = joinedHit(entry, get, T0 + 3000, 'HIT', true, MAX_BODY);
  t.not(next, first);
  t.deepEqual(Buffer.from(next?.bytes as Buffer), rendered(entry, get, T0 + 3000));
  t.regex(next?.bytes.toString('latin1') ?? '', /\r\nAge: 3\r\n/);
});

test('answers other than the usual hit are left to renderEntry', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100_000 });
  const entry = stored(store, 'b', Buffer.from('hello'));
  const now = T0 + 1000;
  t.truthy(joinedHit(entry, get, now, 'HIT', true, MAX_BODY));
  t.is(joinedHit(entry, get, now, 'STALE', true, MAX_BODY), undefined);
  t.is(joinedHit(entry, get, now, 'REVALIDATED', true, MAX_BODY), undefined);
  t.is(joinedHit(entry, get, now, 'HIT', false, MAX_BODY), undefined, 'Connection: close');
  t.is(joinedHit(entry, { ...get, versionMinor: 0 }, now, 'HIT', true, MAX_BODY), undefined, 'HTTP/1.0');
  t.is(joinedHit(entry, { ...get, method: 'HEAD' }, now, 'HIT', true, MAX_BODY), undefined, 'HEAD');
  const conditional = { ...get, headers: [...get.headers, h('If-None-Match', '"x"')] };
  t.is(joinedHit(entry, conditional, now, 'HIT', true, MAX_BODY), undefined, 'a conditional');
  t.is(joinedHit(entry, get, now, 'HIT', true, 4), undefined, 'a body over maxBody');
});

test('a 304 that replaced the fields makes the joined hit again', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100_000 });
  const entry = stored(store, 'c', Buffer.from('body'), h('ETag', '"v1"'));
  const before = joinedHit(entry, get, T0, 'HIT', true, MAX_BODY);
  t.regex(before?.bytes.toString('latin1') ?? '', /\r\nETag: "v1"\r\n/);
  store.update(entry, {
    headers: [h('Date', new Date(T0).toUTCString()), h('Cache-Control', 'max-age=3600'), h('ETag', '"v2"')],
    requestTime: T0,
    responseTime: T0,
  });
  const after = joinedHit(entry, get, T0, 'HIT', true, MAX_BODY);
  t.deepEqual(Buffer.from(after?.bytes as Buffer), rendered(entry, get, T0));
  t.regex(after?.bytes.toString('latin1') ?? '', /\r\nETag: "v2"\r\n/);
});

test('joined hits kept stay within JOINED_LIMIT: the least recently made ones are dropped', (t) => {
  const store = new CacheStore({ maxBytes: 64 * 1024 * 1024, maxObjectBytes: 2 * JOINED_LIMIT });
  const size = Math.floor(JOINED_LIMIT / 5) + 1; // five do not fit
  const entries = Array.from({ length: 5 }, (_, i) => stored(store, `big${i}`, Buffer.alloc(size, 0x61 + i)));
  const firsts = entries.map((entry) => joinedHit(entry, get, T0, 'HIT', true, size));
  // The newest is still kept; the oldest made way for it and is made again (same bytes).
  t.is(joinedHit(entries[4] as CacheEntry, get, T0, 'HIT', true, size), firsts[4]);
  const again = joinedHit(entries[0] as CacheEntry, get, T0, 'HIT', true, size);
  t.not(again, firsts[0]);
  t.deepEqual(Buffer.from(again?.bytes as Buffer), Buffer.from(firsts[0]?.bytes as Buffer));
  // An answer larger than the limit is made, not kept.
  const huge = stored(store, 'huge', Buffer.alloc(JOINED_LIMIT, 0x7a));
  const made = joinedHit(huge, get, T0, 'HIT', true, JOINED_LIMIT);
  t.truthy(made);
  t.not(joinedHit(huge, get, T0, 'HIT', true, JOINED_LIMIT), made);
});

test('many small joined hits kept stay within JOINED_LIMIT with what each holds beyond its bytes', (t) => {
  const store = new CacheStore({ maxBytes: 1 << 30, maxObjectBytes: 1 << 20 });
  const entries = Array.from({ length: 10_000 }, (_, i) => stored(store, `tiny${i}`, Buffer.from('x')));
  const made = entries.map((entry) => joinedHit(entry, get, T0, 'HIT', true, MAX_BODY));
  const one = made[0]?.bytes as Buffer;
  // Its own buffer: a slice of Node's shared 8 KiB pool would keep the whole slab alive.
  t.is(one.buffer.byteLength, one.length);
  const kept = entries.filter((entry) => entryInfo(entry).joined !== undefined).length;
  // A buffer and its JoinedAnswer hold about 500 bytes beyond the answer's own (store.ts's
  // measurement of a body chunk, entry-size.ts), so far fewer than JOINED_LIMIT / length fit.
  t.true(kept > 0);
  t.true(
    kept <= Math.floor(JOINED_LIMIT / (one.length + 500)),
    `${kept} joined answers of ${one.length} bytes kept`,
  );
});
