import test from 'ava';
import {
  formatHttpDate,
  listMembers,
  parseCacheControl,
  parseDeltaSeconds,
  parseHttpDate,
  requestCacheControl,
  responseCacheControl,
} from '../../../src/cache/directives.ts';
import type { HeaderField } from '../../../src/http/message.ts';

const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });

test('5.2 typed directives of a response, names case-insensitive', (t) => {
  const cc = parseCacheControl(['Max-Age=60, S-MAXAGE=30, no-cache, Must-Revalidate, public, immutable']);
  t.is(cc.maxAge, 60);
  t.is(cc.sMaxAge, 30);
  t.true(cc.noCache);
  t.true(cc.mustRevalidate);
  t.true(cc.public);
  t.true(cc.immutable);
  t.false(cc.noStore);
  t.false(cc.private);
});

test('5.2 quoted-string arguments are unescaped and never read as directives', (t) => {
  const cc = parseCacheControl(['ext="a\\"b, max-age=9", max-age="5"']);
  t.is(cc.maxAge, 5);
});

test('4.2.1 duplicates: the first valid occurrence wins, across field lines', (t) => {
  t.is(parseCacheControl(['max-age=1800', 'max-age=1']).maxAge, 1800);
  t.is(parseCacheControl(['max-age=1, max-age=1800']).maxAge, 1);
  t.is(parseCacheControl(['max-age=abc, max-age=7']).maxAge, 7);
});

test('1.2.2 delta-seconds: digits only, capped at 2147483648', (t) => {
  t.is(parseDeltaSeconds('003600'), 3600);
  t.is(parseDeltaSeconds('99999999999'), 2147483648);
  for (const bad of ['', '-1', '1.0', '60a', 'a60', "'60'", ' 60'])
    t.is(parseDeltaSeconds(bad), undefined, bad);
  t.is(parseCacheControl(['max-age=3600.5']).maxAge, undefined);
  t.is(parseCacheControl(["max-age='3600'"]).maxAge, undefined);
  t.is(parseCacheControl(['max-age= 3600']).maxAge, undefined);
});

test('5.2.2.4 and 5.2.2.7 qualified no-cache and private name fields, token or quoted', (t) => {
  const cc = parseCacheControl(['no-cache="X-A, x-b", private=X-C']);
  t.false(cc.noCache);
  t.false(cc.private);
  t.deepEqual(cc.noCacheFields, ['x-a', 'x-b']);
  t.deepEqual(cc.privateFields, ['x-c']);
});

test('5.2.2.4 an unqualified no-cache wins over a qualified one; an empty qualification is unqualified', (t) => {
  t.true(parseCacheControl(['no-cache="a", no-cache']).noCache);
  t.true(parseCacheControl(['no-cache=""']).noCache);
  t.true(parseCacheControl(['private=""']).private);
});

test('5.2 malformed restrictive directives still apply, unqualified', (t) => {
  t.true(parseCacheControl(['no-store =1']).noStore);
  t.true(parseCacheControl(['private ="x"']).private);
  t.true(parseCacheControl(['no-cache="a']).noCache);
  t.true(parseCacheControl(['must-revalidate=']).mustRevalidate);
  // A malformed permissive one does not.
  t.false(parseCacheControl(['public =1']).public);
});

test('5.2.1.2 max-stale without a value is unlimited; an invalid value is ignored', (t) => {
  t.is(parseCacheControl(['max-stale']).maxStale, Number.POSITIVE_INFINITY);
  t.is(parseCacheControl(['max-stale=20']).maxStale, 20);
  t.is(parseCacheControl(['max-stale=abc']).maxStale, undefined);
});

test('5.2.1 request directives: min-fresh, only-if-cached, no-store, stale-if-error', (t) => {
  const cc = requestCacheControl([
    h('Cache-Control', 'min-fresh=5, only-if-cached, no-store, stale-if-error=60'),
  ]);
  t.is(cc.minFresh, 5);
  t.true(cc.onlyIfCached);
  t.true(cc.noStore);
  t.is(cc.staleIfError, 60);
});

test('5.4 Pragma: no-cache counts only without a Cache-Control field, and only in requests', (t) => {
  t.true(requestCacheControl([h('Pragma', 'No-Cache')]).noCache);
  t.false(requestCacheControl([h('Pragma', 'no-cache'), h('Cache-Control', 'max-age=5')]).noCache);
  t.false(requestCacheControl([h('Pragma', 'x-other')]).noCache);
  t.false(responseCacheControl([h('Pragma', 'no-cache')]).noCache);
});

test('RFC 9110 5.6.1 list members: quotes respected, empties dropped', (t) => {
  t.deepEqual(listMembers(' a ,, "b, c" ,d,'), ['a', '"b, c"', 'd']);
  t.deepEqual(listMembers('"x\\"y, z", w'), ['"x\\"y, z"', 'w']);
  t.deepEqual(listMembers(''), []);
});

const SUNDAY = Date.UTC(1994, 10, 6, 8, 49, 37);

test('RFC 9110 5.6.7 the three HTTP-date formats', (t) => {
  t.is(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), SUNDAY);
  t.is(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', Date.UTC(2024, 0, 1)), SUNDAY);
  t.is(parseHttpDate('Sun Nov  6 08:49:37 1994'), SUNDAY);
  t.is(parseHttpDate('Sun Nov 16 08:49:37 1994'), Date.UTC(1994, 10, 16, 8, 49, 37));
});

test('RFC 9110 5.6.7 names are matched case-insensitively', (t) => {
  t.is(parseHttpDate('SUN, 06 NOV 1994 08:49:37 gmt'), SUNDAY);
});

test('RFC 9110 5.6.7 a two-digit year more than 50 years ahead is in the past century', (t) => {
  const now = Date.UTC(2024, 5, 1);
  t.is(parseHttpDate('Thursday, 01-Jan-70 00:00:00 GMT', now), Date.UTC(2070, 0, 1));
  t.is(parseHttpDate('Monday, 01-Jan-74 00:00:00 GMT', now), Date.UTC(2074, 0, 1));
  t.is(parseHttpDate('Wednesday, 01-Jan-75 00:00:00 GMT', now), Date.UTC(1975, 0, 1));
  t.is(parseHttpDate('Monday, 01-Jan-80 00:00:00 GMT', now), Date.UTC(1980, 0, 1));
});

test('RFC 9110 5.6.7 invalid dates are undefined', (t) => {
  for (const bad of [
    '0',
    '',
    'Thu, 18 Aug 2050 02:01:18 UTC',
    'Thu, 18 Aug 50 02:01:18 GMT',
    'Thu 18 Aug 2050 02:01:18 GMT',
    'Thu, 18  Aug  2050 02:01:18 GMT',
    'Thu, 18-Aug-2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 02.01.18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT',
    'Thu, 30 Feb 2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 24:00:00 GMT',
    'Xyz, 18 Aug 2050 02:01:18 GMT',
    'Thu, 18 Foo 2050 02:01:18 GMT',
  ]) {
    t.is(parseHttpDate(bad), undefined, bad);
  }
});

test('RFC 9110 5.6.7 a leap second is accepted', (t) => {
  t.is(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT'), Date.UTC(2017, 0, 1));
});

test('formatHttpDate writes IMF-fixdate and round-trips', (t) => {
  t.is(formatHttpDate(SUNDAY), 'Sun, 06 Nov 1994 08:49:37 GMT');
  const ms = Date.UTC(2030, 2, 4, 5, 6, 7);
  t.is(parseHttpDate(formatHttpDate(ms)), ms);
});
