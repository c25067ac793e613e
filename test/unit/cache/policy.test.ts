import test from 'ava';
import { answerConditional, updateFrom304 } from '../../../src/cache/conditionals.ts';
import { formatHttpDate } from '../../../src/cache/directives.ts';
import {
  ageHeaderValue,
  type CachedResponse,
  cacheKey,
  conditionalHeaders,
  currentAge,
  freshnessLifetime,
  invalidatedKeys,
  isCacheableRequest,
  isStaleIfErrorStatus,
  type PolicyOptions,
  prepareEntry,
  responseVary,
  servingDecision,
  staleIfErrorAllowed,
  urlKey,
  varyKey,
} from '../../../src/cache/policy.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const at = (s: number): string => formatHttpDate(T0 + s * 1000);
const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });

function req(method: string, target: string, ...headers: HeaderField[]): RequestHead {
  return { method, target, versionMinor: 1, headers: [h('Host', 'example.test'), ...headers] };
}

function res(status: number, ...headers: HeaderField[]): ResponseHead {
  return { versionMinor: 1, status, reason: 'OK', headers };
}

function entryOf(...headers: HeaderField[]): CachedResponse {
  return prepareEntry(req('GET', '/r'), res(200, ...headers), T0, T0);
}

const value = (headers: readonly HeaderField[], lower: string): string | undefined =>
  headers.find((f) => f.lower === lower)?.value;

// --- requests ------------------------------------------------------------------------------

test('3 isCacheableRequest: GET and HEAD without no-store', (t) => {
  t.true(isCacheableRequest(req('GET', '/')));
  t.true(isCacheableRequest(req('HEAD', '/')));
  t.true(isCacheableRequest(req('GET', '/', h('Authorization', 'Basic x'))));
  t.false(isCacheableRequest(req('POST', '/')));
  t.false(isCacheableRequest(req('GET', '/', h('Cache-Control', 'no-store'))));
});

// --- Vary ----------------------------------------------------------------------------------

test('4.1 responseVary: lower case, deduplicated, sorted; * wins', (t) => {
  t.is(
    responseVary([h('Vary', 'Accept-Encoding, accept-language'), h('Vary', 'ACCEPT-ENCODING')]),
    'accept-encoding, accept-language',
  );
  t.is(responseVary([h('Vary', ', ')]), '');
  t.is(responseVary([h('Vary', 'Foo, *')]), '*');
  t.is(responseVary([]), '');
});

test('4.1 varyKey normalises whitespace and combines field lines', (t) => {
  const a = varyKey(req('GET', '/', h('Foo', '1,2')), 'Foo');
  t.is(a, 'foo: 1, 2');
  t.is(varyKey(req('GET', '/', h('Foo', ' 1, 2 ')), 'Foo'), a);
  t.is(varyKey(req('GET', '/', h('foo', '1'), h('FOO', '2')), 'Foo'), a);
  t.is(varyKey(req('GET', '/', h('Foo', 'a   b')), 'foo'), 'foo: a b');
});

test('4.1 varyKey: a missing field differs from an empty one', (t) => {
  t.is(varyKey(req('GET', '/'), 'Foo'), 'foo');
  t.is(varyKey(req('GET', '/', h('Foo', '')), 'Foo'), 'foo: ');
  t.not(varyKey(req('GET', '/'), 'Foo'), varyKey(req('GET', '/', h('Foo', '')), 'Foo'));
});

test('4.1 varyKey: the order of names in Vary does not matter; no Vary is empty; * matches nothing', (t) => {
  const r = req('GET', '/', h('B', '2'), h('A', '1'));
  t.is(varyKey(r, 'B, A'), varyKey(r, 'a,b'));
  t.is(varyKey(r, 'a, b'), 'a: 1\nb: 2');
  t.is(varyKey(r, ''), '');
  t.is(varyKey(r, '*'), '*');
});

test('4.1 prepareEntry records the Vary names and the selecting values of its request', (t) => {
  const entry = prepareEntry(
    req('GET', '/', h('Accept-Encoding', 'gzip')),
    res(200, h('Vary', 'Accept-Encoding'), h('Cache-Control', 'max-age=5')),
    T0,
    T0,
  );
  t.is(entry.vary, 'accept-encoding');
  t.is(entry.varyKey, 'accept-encoding: gzip');
  t.is(value(entry.headers, 'date'), at(0));
});

// --- keys ----------------------------------------------------------------------------------

test('cacheKey: scheme and lower-case host, default port removed, target as sent', (t) => {
  const r = (host: string, target = '/a?b=1') => ({ ...req('GET', target), headers: [h('Host', host)] });
  t.is(cacheKey(r('Example.TEST')), 'http://example.test/a?b=1');
  t.is(cacheKey(r('example.test:80')), 'http://example.test/a?b=1');
  t.is(cacheKey(r('example.test:8080')), 'http://example.test:8080/a?b=1');
  t.is(cacheKey(r('example.test:443'), 'https'), 'https://example.test/a?b=1');
  t.is(cacheKey(r('example.test:80'), 'https'), 'https://example.test:80/a?b=1');
  t.is(cacheKey(r('[::1]:80')), 'http://[::1]/a?b=1');
  t.is(cacheKey(r('example.test.')), 'http://example.test/a?b=1');
  t.is(cacheKey(r('x', 'HTTP://Other.Test:80/p')), 'http://other.test/p');
  t.not(cacheKey(r('x', '/a?b=1')), cacheKey(r('x', '/a?b=2')));
});

test('urlKey normalises an absolute URL for purging', (t) => {
  t.is(urlKey('http://Example.test:80'), 'http://example.test/');
  t.is(urlKey('https://example.test:443/x?y#frag'), 'https://example.test/x?y');
});

// --- invalidation --------------------------------------------------------------------------

test('4.4 an unsafe method with a 2xx invalidates the target URI', (t) => {
  t.deepEqual(invalidatedKeys(req('POST', '/items'), res(201)), ['http://example.test/items']);
  t.deepEqual(invalidatedKeys(req('M-SEARCH', '/x'), res(200)), ['http://example.test/x']);
  t.deepEqual(invalidatedKeys(req('DELETE', '/x'), res(303)), ['http://example.test/x']);
});

test('4.4 same-origin Location and Content-Location are invalidated too', (t) => {
  const keys = invalidatedKeys(
    req('PUT', '/dir/item'),
    res(200, h('Location', 'other'), h('Content-Location', 'http://EXAMPLE.test:80/cl?x=1')),
  );
  t.deepEqual(keys, [
    'http://example.test/dir/item',
    'http://example.test/dir/other',
    'http://example.test/cl?x=1',
  ]);
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(201, h('Location', '/b#frag'))), [
    'http://example.test/a',
    'http://example.test/b',
  ]);
});

test('4.4 other-origin Location is not invalidated', (t) => {
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(201, h('Location', 'http://evil.test/a'))), [
    'http://example.test/a',
  ]);
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(201, h('Location', '//evil.test/a'))), [
    'http://example.test/a',
  ]);
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(201, h('Location', 'https://example.test/a'))), [
    'http://example.test/a',
  ]);
});

test('4.4 safe methods and error statuses invalidate nothing', (t) => {
  t.deepEqual(invalidatedKeys(req('GET', '/a'), res(200)), []);
  t.deepEqual(invalidatedKeys(req('OPTIONS', '/a'), res(200)), []);
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(500)), []);
  t.deepEqual(invalidatedKeys(req('POST', '/a'), res(404)), []);
});

// --- validation ----------------------------------------------------------------------------

test('4.3.1 conditionalHeaders: If-None-Match from ETag, If-Modified-Since from Last-Modified', (t) => {
  const headers = conditionalHeaders(entryOf(h('ETag', 'W/"x1"'), h('Last-Modified', at(-100))));
  t.deepEqual(
    headers.map((f) => [f.name, f.value]),
    [
      ['If-None-Match', 'W/"x1"'],
      ['If-Modified-Since', at(-100)],
    ],
  );
});

test('4.3.1 conditionalHeaders quotes a bare ETag and skips an invalid Last-Modified', (t) => {
  const headers = conditionalHeaders(entryOf(h('ETag', 'abc'), h('Last-Modified', 'yesterday')));
  t.deepEqual(
    headers.map((f) => [f.name, f.value]),
    [['If-None-Match', '"abc"']],
  );
  t.deepEqual(conditionalHeaders(entryOf(h('Cache-Control', 'max-age=1'))), []);
});

function stored(): CachedResponse {
  return entryOf(
    h('Cache-Control', 'max-age=1'),
    h('ETag', '"v1"'),
    h('Content-Type', 'text/plain'),
    h('Content-Length', '5'),
    h('X-Test', 'A'),
    h('Age', '100'),
    h('Date', at(0)),
  );
}

test('4.3.4 a 304 with another Vary names another representation: fetch anew', (t) => {
  const stored = prepareEntry(
    req('GET', '/r', h('Accept-Encoding', 'gzip')),
    res(200, h('ETag', '"v"'), h('Vary', 'Accept-Encoding')),
    T0,
    T0,
  );
  t.is(updateFrom304(stored, res(304, h('ETag', '"v"'), h('Vary', 'Accept-Language')), T0, T0), undefined);
  t.truthy(updateFrom304(stored, res(304, h('ETag', '"v"'), h('Vary', 'accept-encoding')), T0, T0));
  t.truthy(updateFrom304(stored, res(304, h('ETag', '"v"')), T0, T0), 'a 304 without Vary keeps it');
});

test('3, 4.3.4 a 304 that says private or no-store: the copy answers once and is not kept', (t) => {
  const stored = entryOf(h('ETag', '"v"'), h('Cache-Control', 'max-age=0'));
  for (const cc of ['private, max-age=600', 'no-store']) {
    t.false(updateFrom304(stored, res(304, h('ETag', '"v"'), h('Cache-Control', cc)), T0, T0)?.keep, cc);
  }
  t.true(updateFrom304(stored, res(304, h('ETag', '"v"'), h('Cache-Control', 'max-age=600')), T0, T0)?.keep);
});

test('4.3.4 updateFrom304 replaces stored fields with the 304s and keeps the rest', (t) => {
  const r304 = res(
    304,
    h('Cache-Control', 'max-age=3600'),
    h('ETag', '"v1"'),
    h('X-Test', 'B'),
    h('Content-Length', '0'),
    h('Date', at(100)),
  );
  const fresh = updateFrom304(stored(), r304, T0 + 99_000, T0 + 100_000);
  if (fresh === undefined) return t.fail();
  t.is(value(fresh.headers, 'x-test'), 'B');
  t.is(value(fresh.headers, 'cache-control'), 'max-age=3600');
  t.is(value(fresh.headers, 'content-type'), 'text/plain');
  t.is(value(fresh.headers, 'date'), at(100));
  t.is(value(fresh.headers, 'age'), undefined, 'the old Age belongs to the old response');
  t.is(fresh.headers.filter((f) => f.lower === 'x-test').length, 1);
  t.is(fresh.requestTime, T0 + 99_000);
  t.is(fresh.responseTime, T0 + 100_000);
});

test('4.3.4 after a 304 the age restarts and the new lifetime applies', (t) => {
  const entry = stored();
  t.is(currentAge(entry, T0 + 100_000), 200);
  const r304 = res(304, h('Cache-Control', 'max-age=3600'), h('ETag', '"v1"'));
  const fresh = updateFrom304(entry, r304, T0 + 100_000, T0 + 101_000);
  if (fresh === undefined) return t.fail();
  const updated = { ...entry, ...fresh };
  t.is(value(updated.headers, 'date'), at(101), 'a 304 without Date gets the time it was received');
  t.is(currentAge(updated, T0 + 111_000), 11);
  t.is(freshnessLifetime(updated), 3600);
  t.deepEqual(servingDecision(req('GET', '/r'), updated, T0 + 111_000), { action: 'fresh', age: 11 });
});

test('4.3.4 a 304 whose strong ETag differs updates nothing', (t) => {
  t.is(updateFrom304(stored(), res(304, h('ETag', '"v2"')), T0, T0), undefined);
  // A strong validator in the 304 does not select a weakly tagged response.
  const weak = entryOf(h('ETag', 'W/"v1"'));
  t.is(updateFrom304(weak, res(304, h('ETag', '"v1"')), T0, T0), undefined);
  t.not(updateFrom304(weak, res(304, h('ETag', 'W/"v1"')), T0, T0), undefined);
  t.is(
    updateFrom304(entryOf(h('Last-Modified', at(-10))), res(304, h('Last-Modified', at(-5))), T0, T0),
    undefined,
  );
});

test('4.3.4 a 304 without validators updates the entry', (t) => {
  t.not(updateFrom304(stored(), res(304, h('Cache-Control', 'max-age=9')), T0, T0), undefined);
});

test('3.2 a 304 never brings Set-Cookie, hop-by-hop or framing fields into the shared copy', (t) => {
  const r304 = res(
    304,
    h('Set-Cookie', 'id=2'),
    h('Connection', 'X-Hop'),
    h('X-Hop', '1'),
    h('Transfer-Encoding', 'chunked'),
    h('Content-Range', 'bytes 0-1/2'),
  );
  const fresh = updateFrom304(stored(), r304, T0, T0);
  if (fresh === undefined) return t.fail();
  for (const name of [
    'set-cookie',
    'connection',
    'x-hop',
    'transfer-encoding',
    'content-range',
    'content-length',
  ]) {
    t.is(value(fresh.headers, name), undefined, name);
  }
  const shared = updateFrom304(stored(), r304, T0, T0, { shareSetCookie: true });
  t.is(value(shared?.headers ?? [], 'set-cookie'), 'id=2');
});

// --- answering conditionals ----------------------------------------------------------------

const tagged = () =>
  entryOf(h('ETag', '"abc"'), h('Last-Modified', at(-3000)), h('Cache-Control', 'max-age=60'));

test('RFC 9110 13.1.2 If-None-Match with a matching ETag gets a 304 with the required fields', (t) => {
  const answer = answerConditional(req('GET', '/r', h('If-None-Match', '"abc"')), tagged());
  t.is(answer?.status, 304);
  t.deepEqual(answer?.headers.map((f) => f.lower).sort(), ['cache-control', 'date', 'etag']);
});

test('RFC 9110 8.8.3.2 If-None-Match uses weak comparison, lists and *', (t) => {
  const weakEntry = entryOf(h('ETag', 'W/"abc"'));
  t.is(answerConditional(req('GET', '/r', h('If-None-Match', '"abc"')), weakEntry)?.status, 304);
  t.is(answerConditional(req('GET', '/r', h('If-None-Match', '"1", W/"abc", "2"')), tagged())?.status, 304);
  t.is(answerConditional(req('HEAD', '/r', h('If-None-Match', '*')), tagged())?.status, 304);
  t.is(answerConditional(req('GET', '/r', h('If-None-Match', '"zzz"')), tagged()), undefined);
});

test('RFC 9110 13.2.1 a stored answer other than 2xx is sent whole, whatever the preconditions', (t) => {
  for (const status of [301, 404, 410]) {
    const stored = prepareEntry(
      req('GET', '/r'),
      res(status, h('ETag', '"abc"'), h('Last-Modified', at(-3000)), h('Cache-Control', 'max-age=60')),
      T0,
      T0,
    );
    t.is(answerConditional(req('GET', '/r', h('If-None-Match', '*')), stored), undefined, `${status}`);
    t.is(answerConditional(req('GET', '/r', h('If-None-Match', '"abc"')), stored), undefined, `${status}`);
    t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(0))), stored), undefined, `${status}`);
  }
  t.is(answerConditional(req('GET', '/r', h('If-None-Match', '*')), tagged())?.status, 304);
});

test('RFC 9110 13.2.2 If-None-Match takes precedence over If-Modified-Since', (t) => {
  const r = req('GET', '/r', h('If-None-Match', '"zzz"'), h('If-Modified-Since', at(0)));
  t.is(answerConditional(r, tagged()), undefined);
});

test('RFC 9110 13.1.3 If-Modified-Since at or after Last-Modified gets a 304', (t) => {
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(-3000))), tagged())?.status, 304);
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(-2000))), tagged())?.status, 304);
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(-4000))), tagged()), undefined);
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', 'garbage')), tagged()), undefined);
});

test('4.3.2 without Last-Modified, If-Modified-Since is compared with Date', (t) => {
  const entry = entryOf(h('Cache-Control', 'max-age=60'), h('Date', at(0)));
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(-3000))), entry), undefined);
  t.is(answerConditional(req('GET', '/r', h('If-Modified-Since', at(0))), entry)?.status, 304);
});

test('RFC 9110 13.1.3 conditionals are only answered for GET and HEAD', (t) => {
  t.is(answerConditional(req('POST', '/r', h('If-None-Match', '"abc"')), tagged()), undefined);
});

// --- stale-if-error ------------------------------------------------------------------------

function sie(
  cc: string,
  elapsed: number,
  requestFields: HeaderField[] = [],
  options?: PolicyOptions,
): boolean {
  const entry = entryOf(h('Cache-Control', cc), h('Date', at(0)));
  return staleIfErrorAllowed(req('GET', '/r', ...requestFields), entry, T0 + elapsed * 1000, options);
}

test('RFC 5861 4 stale-if-error in the response allows stale within its window', (t) => {
  t.true(sie('max-age=60, stale-if-error=100', 160));
  t.false(sie('max-age=60, stale-if-error=100', 161));
  t.true(sie('max-age=60', 30), 'a fresh entry may always be served');
  t.false(sie('max-age=60', 61), 'no permission, no stale');
});

test('RFC 5861 4 stale-if-error in the request, and a configured default', (t) => {
  t.true(sie('max-age=60', 100, [h('Cache-Control', 'stale-if-error=50')]));
  t.false(sie('max-age=60', 111, [h('Cache-Control', 'stale-if-error=50')]));
  t.true(sie('max-age=60', 100, [], { staleIfError: 40 }));
});

test("RFC 5861 4 the origin's or the client's stale-if-error replaces the configured one", (t) => {
  t.false(sie('max-age=60, stale-if-error=1', 65, [], { staleIfError: 3600 }), "the origin's 1 s, not 3600");
  t.false(sie('max-age=60', 65, [h('Cache-Control', 'stale-if-error=1')], { staleIfError: 3600 }));
  t.true(
    sie('max-age=60, stale-if-error=1', 65, [h('Cache-Control', 'stale-if-error=10')], {
      staleIfError: 3600,
    }),
  );
  t.true(sie('max-age=60', 65, [], { staleIfError: 3600 }), 'neither gave one: the configured');
});

test('4.2.4 must-revalidate, proxy-revalidate and no-cache forbid stale-if-error', (t) => {
  t.false(sie('max-age=60, stale-if-error=100, must-revalidate', 70));
  t.false(sie('max-age=60, stale-if-error=100, proxy-revalidate', 70));
  t.false(sie('max-age=60, stale-if-error=100, no-cache', 30));
  t.false(sie('max-age=60, stale-if-error=100', 70, [h('Cache-Control', 'no-cache')]));
});

test("5.2.2.10 with s-maxage only the origin's own stale-if-error counts", (t) => {
  t.true(sie('s-maxage=60, stale-if-error=100', 70));
  t.false(sie('s-maxage=60', 70, [h('Cache-Control', 'stale-if-error=100')]));
  t.false(sie('s-maxage=60', 70, [], { staleIfError: 100 }));
});

test('RFC 5861 4 the error statuses', (t) => {
  t.deepEqual(
    [200, 404, 500, 501, 502, 503, 504].filter((s) => isStaleIfErrorStatus(s)),
    [500, 502, 503, 504],
  );
});

// --- Age -----------------------------------------------------------------------------------

test('5.1 ageHeaderValue: whole seconds, never negative, capped at 2147483648', (t) => {
  t.is(ageHeaderValue(0), '0');
  t.is(ageHeaderValue(12.9), '12');
  t.is(ageHeaderValue(-3), '0');
  t.is(ageHeaderValue(Number.NaN), '0');
  t.is(ageHeaderValue(1e12), '2147483648');
});

test('4.2.3 currentAge keeps ms precision until the Age header is written', (t) => {
  const entry = entryOf(h('Cache-Control', 'max-age=60'), h('Date', at(0)));
  t.is(currentAge(entry, T0 + 1500), 1.5);
  t.is(ageHeaderValue(currentAge(entry, T0 + 1500)), '1');
});
