// One row per header combination: whether a shared cache stores the response, its freshness
// lifetime, and what servingDecision says when a later request comes `elapsed` seconds after
// the response arrived. Each title starts with the RFC 9111 section it follows (RFC 9110 or
// RFC 5861 where named). Times: the request is sent at T0, the response arrives `delay` s later;
// `@n` in a field value is the HTTP-date T0 + n seconds.
import test from 'ava';
import { formatHttpDate } from '../../../src/cache/directives.ts';
import {
  freshnessLifetime,
  type NoStoreReason,
  type PolicyOptions,
  prepareEntry,
  type ServingDecision,
  servingDecision,
  storageDecision,
} from '../../../src/cache/policy.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);

interface Row {
  title: string;
  status?: number;
  /** Response fields, `Name: value`. */
  res: string[];
  /** Method and fields of the request that fetched the response. */
  method?: string;
  req?: string[];
  /** Seconds between sending the request and receiving the response. */
  delay?: number;
  /** Method and fields of the later request. */
  laterMethod?: string;
  later?: string[];
  /** Seconds after the response arrived at which the later request is decided. */
  elapsed?: number;
  options?: PolicyOptions;
  store: true | NoStoreReason;
  lifetime?: number;
  expect: string;
  /** Fields the stored entry must not keep. */
  without?: string[];
}

function fields(lines: readonly string[]): HeaderField[] {
  return lines.map((line) => {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    let value = line.slice(colon + 1).trim();
    const at = /^@(-?[0-9]+)$/.exec(value);
    if (at) value = formatHttpDate(T0 + Number(at[1]) * 1000);
    return { name, lower: name.toLowerCase(), value };
  });
}

function request(method: string, lines: readonly string[]): RequestHead {
  return { method, target: '/r', versionMinor: 1, headers: fields(['Host: example.test', ...lines]) };
}

function summary(d: ServingDecision): string {
  const names = (hs: HeaderField[]) =>
    `[${hs.map((h) => (h.lower === 'if-none-match' ? 'INM' : h.lower === 'if-modified-since' ? 'IMS' : h.name)).join(',')}]`;
  switch (d.action) {
    case 'fresh':
    case 'stale-ok':
      return `${d.action} age=${d.age}`;
    case 'stale-while-revalidate':
      return `swr age=${d.age} ${names(d.conditionalHeaders)}`;
    case 'revalidate':
      return `revalidate:${d.reason} ${names(d.conditionalHeaders)}`;
    case 'miss':
      return `miss:${d.reason}`;
    case 'gateway-timeout':
      return 'gateway-timeout';
  }
}

const ETAG = 'ETag: "v1"';
const DATE = 'Date: @0';

const rows: Row[] = [
  // --- 3: storing responses -----------------------------------------------------------------
  {
    title: '3 a 200 with max-age is stored and fresh at once',
    res: ['Cache-Control: max-age=60', DATE],
    store: true,
    lifetime: 60,
    expect: 'fresh age=0',
  },
  {
    title: '3 a response to POST is not stored',
    method: 'POST',
    res: ['Cache-Control: max-age=60', DATE],
    store: 'method',
    expect: 'miss:no-entry',
  },
  {
    title: '3 (RFC 9110 9.3.2) a response to HEAD is not stored: it has no content for a GET',
    method: 'HEAD',
    res: ['Cache-Control: max-age=60', DATE],
    store: 'method',
    expect: 'miss:no-entry',
  },
  {
    title: '3 a 304 is not stored',
    status: 304,
    res: ['Cache-Control: max-age=60', DATE],
    store: 'status',
    expect: 'miss:no-entry',
  },
  {
    title: '3 a 1xx is not a final response and is not stored',
    status: 103,
    res: ['Cache-Control: max-age=60'],
    store: 'status',
    expect: 'miss:no-entry',
  },
  {
    title: '3.3 a 206 is not stored (ranges are not combined)',
    status: 206,
    res: ['Cache-Control: max-age=60', DATE],
    store: 'partial',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2.2.5 no-store forbids storing, even with max-age and Expires',
    res: ['Cache-Control: max-age=10000, no-store', 'Expires: @10000', DATE],
    store: 'no-store',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2 directive names are case-insensitive: No-StOrE',
    res: ['Cache-Control: No-StOrE', DATE],
    store: 'no-store',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2.1.5 a request with no-store: its response is not stored',
    req: ['Cache-Control: no-store'],
    res: ['Cache-Control: max-age=60', DATE],
    store: 'request-no-store',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2.2.7 unqualified private is not stored by a shared cache',
    res: ['Cache-Control: private, max-age=3600', DATE],
    store: 'private',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2.2.7 private="X-User" is stored without the named field',
    res: ['Cache-Control: private="X-User", max-age=60', 'X-User: alice', DATE],
    elapsed: 10,
    store: true,
    lifetime: 60,
    expect: 'fresh age=10',
    without: ['x-user'],
  },
  {
    title: '5.2.2.4 no-cache="X-Token" is stored without that field and served without revalidation',
    res: [
      'Cache-Control: no-cache="X-Token"',
      'X-Token: 1',
      'X-Other: 2',
      'Cache-Control: max-age=3600',
      DATE,
    ],
    elapsed: 5,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=5',
    without: ['x-token'],
  },
  {
    title: '3.1 Connection, the fields it names and hop-by-hop fields are not stored',
    res: ['Connection: x-hop', 'X-Hop: 1', 'Keep-Alive: timeout=5', 'Cache-Control: max-age=60', DATE],
    store: true,
    lifetime: 60,
    expect: 'fresh age=0',
    without: ['connection', 'x-hop', 'keep-alive'],
  },
  {
    title: '3.5 a response to a request with Authorization is not stored by default',
    req: ['Authorization: Basic YTpi'],
    res: ['Cache-Control: max-age=60', DATE],
    store: 'authorization',
    expect: 'miss:no-entry',
  },
  {
    title: '3.5 Authorization with public: stored and reused',
    req: ['Authorization: Basic YTpi'],
    res: ['Cache-Control: max-age=3600, public', DATE],
    elapsed: 1,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=1',
  },
  {
    title: '3.5 Authorization with must-revalidate: stored and reused while fresh',
    req: ['Authorization: Basic YTpi'],
    res: ['Cache-Control: max-age=3600, must-revalidate', DATE],
    elapsed: 1,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=1',
  },
  {
    title: '3.5 Authorization with s-maxage: stored and reused',
    req: ['Authorization: Basic YTpi'],
    res: ['Cache-Control: s-maxage=3600', DATE],
    elapsed: 1,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=1',
  },
  {
    title: '7.3 Set-Cookie does not inhibit caching, but a shared copy would leak it: not stored by default',
    res: ['Cache-Control: max-age=60, public', 'Set-Cookie: id=1', DATE],
    store: 'set-cookie',
    expect: 'miss:no-entry',
  },
  {
    title: '7.3 Set-Cookie responses are stored when shareSetCookie is set',
    res: ['Cache-Control: max-age=60', 'Set-Cookie: id=1', DATE],
    options: { shareSetCookie: true },
    store: true,
    lifetime: 60,
    expect: 'fresh age=0',
  },
  {
    title: '4.1 Vary: * is never stored',
    res: ['Cache-Control: max-age=60', 'Vary: *', DATE],
    store: 'vary-star',
    expect: 'miss:no-entry',
  },
  {
    title: '4.1 Vary: Foo, * on two lines is never stored',
    res: ['Cache-Control: max-age=60', 'Vary: Foo', 'Vary: *', DATE],
    store: 'vary-star',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2.2.3 must-understand with an understood status overrides no-store',
    res: ['Cache-Control: must-understand, no-store, max-age=60', DATE],
    elapsed: 30,
    store: true,
    lifetime: 60,
    expect: 'fresh age=30',
  },
  {
    title: '5.2.2.3 must-understand with an unknown status (599) is not stored',
    status: 599,
    res: ['Cache-Control: must-understand, no-store, max-age=60', DATE],
    store: 'must-understand',
    expect: 'miss:no-entry',
  },
  {
    title: '3 a 200 without freshness information or validator is not stored',
    res: [DATE],
    store: 'no-freshness',
    expect: 'miss:no-entry',
  },
  {
    title: '4.2.2 (RFC 9110 15.1) a 201 is not heuristically cacheable',
    status: 201,
    res: ['Last-Modified: @-10000', DATE],
    store: 'no-freshness',
    expect: 'miss:no-entry',
  },
  {
    title: '4.2.2 (RFC 9110 15.1) a 404 with Last-Modified is heuristically fresh for 10% of its age',
    status: 404,
    res: ['Last-Modified: @-10000', DATE],
    elapsed: 999,
    store: true,
    lifetime: 1000,
    expect: 'fresh age=999',
  },
  {
    title: '5.2.2.9 public makes an unknown status (599) heuristically cacheable',
    status: 599,
    res: ['Cache-Control: public', 'Last-Modified: @-10000', DATE],
    store: true,
    lifetime: 1000,
    expect: 'fresh age=0',
  },
  {
    title: '3 a 500 with explicit freshness is stored',
    status: 500,
    res: ['Cache-Control: max-age=60', DATE],
    elapsed: 30,
    store: true,
    lifetime: 60,
    expect: 'fresh age=30',
  },
  {
    title: '4.3.1 a 200 with only an ETag is stored stale and revalidated on use',
    res: [ETAG, DATE],
    store: true,
    lifetime: 0,
    expect: 'revalidate:stale [INM]',
  },
  // --- 4.2.1: freshness lifetime ------------------------------------------------------------
  {
    title: '5.2.2.10 s-maxage overrides max-age for a shared cache',
    res: ['Cache-Control: max-age=3600, s-maxage=10', ETAG, DATE],
    elapsed: 11,
    store: true,
    lifetime: 10,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.2.2.10 s-maxage longer than max-age is used by a shared cache',
    res: ['Cache-Control: max-age=1, s-maxage=3600', DATE],
    elapsed: 100,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=100',
  },
  {
    title: '4.2.1 max-age overrides a past Expires',
    res: ['Cache-Control: max-age=3600', 'Expires: @-10000', DATE],
    elapsed: 60,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=60',
  },
  {
    title: '4.2.1 max-age=0 overrides a future Expires (no validator: fetch anew)',
    res: ['Expires: @10000', 'Cache-Control: max-age=0', DATE],
    store: true,
    lifetime: 0,
    expect: 'miss:no-validator',
  },
  {
    title: '4.2.1 Expires minus Date is the lifetime',
    res: ['Expires: @600', DATE],
    elapsed: 599,
    store: true,
    lifetime: 600,
    expect: 'fresh age=599',
  },
  {
    title: '4.2 a response whose age equals its lifetime is stale',
    res: ['Expires: @600', ETAG, DATE],
    elapsed: 600,
    store: true,
    lifetime: 600,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.3 an invalid Expires means already expired',
    res: ['Expires: 0', ETAG, DATE],
    store: true,
    lifetime: 0,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '4.2.1 Expires before Date gives lifetime 0',
    res: ['Expires: @-60', ETAG, DATE],
    store: true,
    lifetime: 0,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '4.2.1 Expires without Date counts from the time the response was received',
    res: ['Expires: @300'],
    elapsed: 10,
    store: true,
    lifetime: 300,
    expect: 'fresh age=10',
  },
  {
    title: '1.2.2 max-age above 2^31 is taken as 2147483648',
    res: ['Cache-Control: max-age=99999999999', DATE],
    store: true,
    lifetime: 2147483648,
    expect: 'fresh age=0',
  },
  {
    title: '5.2 max-age in quoted-string form is accepted',
    res: ['Cache-Control: max-age="60"', DATE],
    elapsed: 59,
    store: true,
    lifetime: 60,
    expect: 'fresh age=59',
  },
  {
    title: '5.2 max-age with a space before "=" is ignored',
    res: ['Cache-Control: max-age =60', DATE],
    store: 'no-freshness',
    expect: 'miss:no-entry',
  },
  {
    title: '1.2.2 max-age=60a is not delta-seconds and is ignored',
    res: ['Cache-Control: max-age=60a', DATE],
    store: 'no-freshness',
    expect: 'miss:no-entry',
  },
  {
    title: '1.2.2 a negative max-age is ignored',
    res: ['Cache-Control: max-age=-60', DATE],
    store: 'no-freshness',
    expect: 'miss:no-entry',
  },
  {
    title: '5.2 "max-age" inside an extension\'s quoted string is not a directive',
    res: ['Cache-Control: ext="max-age=3600", max-age=1', ETAG, DATE],
    elapsed: 2,
    store: true,
    lifetime: 1,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '4.2.1 duplicate max-age on two lines: the first occurrence is used',
    res: ['Cache-Control: max-age=1800', 'Cache-Control: max-age=1', DATE],
    elapsed: 100,
    store: true,
    lifetime: 1800,
    expect: 'fresh age=100',
  },
  {
    title: '4.2.2 heuristic lifetime is 10% of Date minus Last-Modified',
    res: ['Last-Modified: @-36000', DATE],
    elapsed: 3599,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=3599',
  },
  {
    title: '4.2.2 heuristic lifetime is capped at one day',
    res: ['Last-Modified: @-2000000', DATE],
    elapsed: 86400,
    store: true,
    lifetime: 86400,
    expect: 'revalidate:stale [IMS]',
  },
  {
    title: '4.2.2 the heuristic fraction is configurable',
    res: ['Last-Modified: @-1000', DATE],
    options: { heuristicFraction: 0.5 },
    elapsed: 499,
    store: true,
    lifetime: 500,
    expect: 'fresh age=499',
  },
  {
    title: '4.2.2 a Last-Modified after Date gives no heuristic lifetime',
    res: ['Last-Modified: @100', DATE],
    store: true,
    lifetime: 0,
    expect: 'revalidate:stale [IMS]',
  },
  // --- 4.2.3: age -----------------------------------------------------------------------------
  {
    title: '4.2.3 an upstream Age adds to current_age',
    res: ['Cache-Control: max-age=600', 'Age: 30', DATE],
    elapsed: 10,
    store: true,
    lifetime: 600,
    expect: 'fresh age=40',
  },
  {
    title: '4.2.3 an Age above max-age makes the response stale on arrival',
    res: ['Cache-Control: max-age=10', 'Age: 15', ETAG, DATE],
    store: true,
    lifetime: 10,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '4.2.3 apparent_age: a Date older than response_time',
    res: ['Cache-Control: max-age=600', 'Date: @-100'],
    store: true,
    lifetime: 600,
    expect: 'fresh age=100',
  },
  {
    title: '4.2.3 response_delay is added to the Age value',
    res: ['Cache-Control: max-age=600', 'Age: 10', 'Date: @2'],
    delay: 2,
    elapsed: 5,
    store: true,
    lifetime: 600,
    expect: 'fresh age=17',
  },
  {
    title: '4.2.3 corrected_initial_age is the larger of apparent_age and corrected_age_value',
    res: ['Cache-Control: max-age=600', 'Age: 20', 'Date: @-50'],
    elapsed: 10,
    store: true,
    lifetime: 600,
    expect: 'fresh age=60',
  },
  {
    title: '4.2.3 a Date in the future gives apparent_age 0',
    res: ['Cache-Control: max-age=600', 'Date: @100'],
    elapsed: 10,
    store: true,
    lifetime: 600,
    expect: 'fresh age=10',
  },
  {
    title: '5.1 a non-numeric Age is ignored',
    res: ['Cache-Control: max-age=600', 'Age: abc', DATE],
    elapsed: 10,
    store: true,
    lifetime: 600,
    expect: 'fresh age=10',
  },
  {
    title: '5.1 a negative Age is ignored',
    res: ['Cache-Control: max-age=3600', 'Age: -7200', DATE],
    elapsed: 10,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=10',
  },
  {
    title: '5.1 a list-valued Age uses its first member',
    res: ['Cache-Control: max-age=3600', 'Age: 7200, 0', DATE],
    later: ['Cache-Control: max-stale=4000'],
    store: true,
    lifetime: 3600,
    expect: 'stale-ok age=7200',
  },
  // --- 5.2.1: request directives -------------------------------------------------------------
  {
    title: '5.2.1.4 request no-cache revalidates a fresh response',
    res: ['Cache-Control: max-age=3600', ETAG, DATE],
    later: ['Cache-Control: no-cache'],
    store: true,
    lifetime: 3600,
    expect: 'revalidate:request-no-cache [INM]',
  },
  {
    title: '5.4 request Pragma: no-cache without Cache-Control acts as no-cache',
    res: ['Cache-Control: max-age=3600', 'Last-Modified: @-10', DATE],
    later: ['Pragma: no-cache'],
    store: true,
    lifetime: 3600,
    expect: 'revalidate:request-no-cache [IMS]',
  },
  {
    title: '5.4 request Pragma is ignored when Cache-Control is present',
    res: ['Cache-Control: max-age=3600', DATE],
    later: ['Cache-Control: max-age=1000', 'Pragma: no-cache'],
    elapsed: 10,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=10',
  },
  {
    title: '5.4 response Pragma: no-cache has no effect',
    res: ['Cache-Control: max-age=3600', 'Pragma: no-cache', DATE],
    elapsed: 10,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=10',
  },
  {
    title: '5.2.1.1 request max-age below the current age revalidates',
    res: ['Cache-Control: max-age=3600', ETAG, 'Last-Modified: @-100', DATE],
    later: ['Cache-Control: max-age=5'],
    elapsed: 10,
    store: true,
    lifetime: 3600,
    expect: 'revalidate:request-max-age [INM,IMS]',
  },
  {
    title: '5.2.1.1 request max-age at least the current age accepts the response',
    res: ['Cache-Control: max-age=3600', DATE],
    later: ['Cache-Control: max-age=10'],
    elapsed: 10,
    store: true,
    lifetime: 3600,
    expect: 'fresh age=10',
  },
  {
    title: '5.2.1.3 request min-fresh needs that much freshness left',
    res: ['Cache-Control: max-age=600', ETAG, DATE],
    later: ['Cache-Control: min-fresh=200'],
    elapsed: 500,
    store: true,
    lifetime: 600,
    expect: 'revalidate:request-min-fresh [INM]',
  },
  {
    title: '5.2.1.3 request min-fresh within the remaining freshness is satisfied',
    res: ['Cache-Control: max-age=600', DATE],
    later: ['Cache-Control: min-fresh=50'],
    elapsed: 500,
    store: true,
    lifetime: 600,
    expect: 'fresh age=500',
  },
  {
    title: '5.2.1.2 request max-stale=50 accepts 40 s of staleness',
    res: ['Cache-Control: max-age=60', ETAG, DATE],
    later: ['Cache-Control: max-stale=50'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'stale-ok age=100',
  },
  {
    title: '5.2.1.2 request max-stale=30 does not accept 40 s of staleness',
    res: ['Cache-Control: max-age=60', ETAG, DATE],
    later: ['Cache-Control: max-stale=30'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.2.1.2 request max-stale without a value accepts any staleness',
    res: ['Cache-Control: max-age=60', DATE],
    later: ['Cache-Control: max-stale'],
    elapsed: 100000,
    store: true,
    lifetime: 60,
    expect: 'stale-ok age=100000',
  },
  {
    title: '5.2.2.2 must-revalidate: max-stale cannot serve it stale',
    res: ['Cache-Control: max-age=60, must-revalidate', ETAG, DATE],
    later: ['Cache-Control: max-stale'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.2.2.8 proxy-revalidate binds a shared cache: max-stale cannot serve it stale',
    res: ['Cache-Control: max-age=60, proxy-revalidate', ETAG, DATE],
    later: ['Cache-Control: max-stale'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.2.2.10 s-maxage implies proxy-revalidate: max-stale cannot serve it stale',
    res: ['Cache-Control: s-maxage=60', ETAG, DATE],
    later: ['Cache-Control: max-stale'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '5.2.1.7 only-if-cached with a fresh response serves it',
    res: ['Cache-Control: max-age=60', DATE],
    later: ['Cache-Control: only-if-cached'],
    elapsed: 10,
    store: true,
    lifetime: 60,
    expect: 'fresh age=10',
  },
  {
    title: '5.2.1.7 only-if-cached with only a stale response answers 504',
    res: ['Cache-Control: max-age=60', ETAG, DATE],
    later: ['Cache-Control: only-if-cached'],
    elapsed: 100,
    store: true,
    lifetime: 60,
    expect: 'gateway-timeout',
  },
  {
    title: '5.2.1.7 only-if-cached with nothing stored answers 504',
    res: ['Cache-Control: no-store', DATE],
    later: ['Cache-Control: only-if-cached'],
    store: 'no-store',
    expect: 'gateway-timeout',
  },
  {
    title: '5.2.2.4 response no-cache revalidates even a fresh response',
    res: ['Cache-Control: max-age=10000, no-cache', 'Expires: @10000', ETAG, DATE],
    store: true,
    lifetime: 10000,
    expect: 'revalidate:no-cache [INM]',
  },
  {
    title: '5.2.2.4 response No-CaChE without a validator: fetch anew',
    res: ['Cache-Control: max-age=10000, No-CaChE', DATE],
    store: true,
    lifetime: 10000,
    expect: 'miss:no-validator',
  },
  // --- 4.2.4 and RFC 5861: serving stale ----------------------------------------------------
  {
    title: '4.2.4 (RFC 5861 3) stale-while-revalidate serves stale inside its window',
    res: ['Cache-Control: max-age=60, stale-while-revalidate=30', ETAG, DATE],
    elapsed: 80,
    store: true,
    lifetime: 60,
    expect: 'swr age=80 [INM]',
  },
  {
    title: '4.2.4 (RFC 5861 3) past the stale-while-revalidate window: revalidate first',
    res: ['Cache-Control: max-age=60, stale-while-revalidate=30', ETAG, DATE],
    elapsed: 91,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: '4.2.4 must-revalidate overrides stale-while-revalidate',
    res: ['Cache-Control: max-age=60, stale-while-revalidate=30, must-revalidate', ETAG, DATE],
    elapsed: 80,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [INM]',
  },
  {
    title: "4.2.4 (RFC 5861 3) s-maxage with the origin's own stale-while-revalidate still serves stale",
    res: ['Cache-Control: s-maxage=60, stale-while-revalidate=30', ETAG, DATE],
    elapsed: 80,
    store: true,
    lifetime: 60,
    expect: 'swr age=80 [INM]',
  },
  {
    title: '4.2.4 (RFC 5861 3) stale-while-revalidate without a validator revalidates unconditionally',
    res: ['Cache-Control: max-age=0, stale-while-revalidate=3600', DATE],
    elapsed: 10,
    store: true,
    lifetime: 0,
    expect: 'swr age=10 []',
  },
  {
    title: '4.2.4 a stale response is not served without explicit permission',
    res: ['Cache-Control: max-age=60', 'Last-Modified: @-5000', DATE],
    elapsed: 61,
    store: true,
    lifetime: 60,
    expect: 'revalidate:stale [IMS]',
  },
  // --- 4: which requests a stored response answers ------------------------------------------
  {
    title: '4 (RFC 9110 9.3.2) a stored GET response answers HEAD',
    res: ['Cache-Control: max-age=60', DATE],
    laterMethod: 'HEAD',
    elapsed: 3,
    store: true,
    lifetime: 60,
    expect: 'fresh age=3',
  },
  {
    title: '4 a POST is never answered from the cache',
    res: ['Cache-Control: max-age=60', DATE],
    laterMethod: 'POST',
    store: true,
    lifetime: 60,
    expect: 'miss:method',
  },
  {
    title: '4.3.2 If-Match is a precondition for the origin: go there',
    res: ['Cache-Control: max-age=60', ETAG, DATE],
    later: ['If-Match: "v1"'],
    store: true,
    lifetime: 60,
    expect: 'miss:precondition',
  },
  {
    title: '5.2.1.5 a later request with no-store is not answered from the cache',
    res: ['Cache-Control: max-age=60', DATE],
    later: ['Cache-Control: no-store'],
    store: true,
    lifetime: 60,
    expect: 'miss:request-no-store',
  },
  {
    title: '5.2.1 request directive names are case-insensitive: NO-CACHE',
    res: ['Cache-Control: max-age=60', ETAG, DATE],
    later: ['Cache-Control: NO-CACHE'],
    store: true,
    lifetime: 60,
    expect: 'revalidate:request-no-cache [INM]',
  },
];

for (const row of rows) {
  test(row.title, (t) => {
    const req = request(row.method ?? 'GET', row.req ?? []);
    const res: ResponseHead = {
      versionMinor: 1,
      status: row.status ?? 200,
      reason: 'X',
      headers: fields(row.res),
    };
    const responseTime = T0 + (row.delay ?? 0) * 1000;
    const now = responseTime + (row.elapsed ?? 0) * 1000;
    const decision = storageDecision(req, res, row.options);
    t.deepEqual(decision, row.store === true ? { store: true } : { store: false, reason: row.store });
    const entry = decision.store ? prepareEntry(req, res, T0, responseTime) : undefined;
    if (entry !== undefined) {
      t.is(freshnessLifetime(entry, row.options), row.lifetime ?? Number.NaN);
      for (const name of row.without ?? [])
        t.false(
          entry.headers.some((f) => f.lower === name),
          name,
        );
    }
    const later = request(row.laterMethod ?? 'GET', row.later ?? []);
    t.is(summary(servingDecision(later, entry, now, row.options)), row.expect);
  });
}

test('the table has at least 60 rows, each citing a section', (t) => {
  t.true(rows.length >= 60, String(rows.length));
  for (const row of rows) t.regex(row.title, /^[0-9]+(\.[0-9]+)* /);
});
