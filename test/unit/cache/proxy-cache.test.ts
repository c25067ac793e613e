// The cache's shell without sockets: CacheFlow decisions against a store, with a fake clock,
// a fake pool and a head serializer that shows what would go to the backend.
import test from 'ava';
import { Coalescer } from '../../../src/cache/coalesce.ts';
import { LEADER_STALL_GRACE_MS } from '../../../src/cache/flow.ts';
import { prepareEntry, servingDecision } from '../../../src/cache/policy.ts';
import {
  type CacheFlow,
  type CacheStep,
  entryInfo,
  type FlowRequest,
  ProxyCache,
  renderEntry,
  validatorsDiffer,
  withoutConditionals,
} from '../../../src/cache/proxy-cache.ts';
import { CacheStore } from '../../../src/cache/store.ts';
import type { CacheConfig } from '../../../src/config/types.ts';
import type { BodyFraming, HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';
import { clientResponseHead } from '../../../src/http/response-heads.ts';
import type { BackendPool } from '../../../src/upstream/pool.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });
const date = (ms: number) => new Date(ms).toUTCString();

const CONFIG: CacheConfig = {
  maxBytes: 1024 * 1024,
  maxObjectBytes: 4096,
  staleIfError: 0,
  lockTimeout: 5000,
  storeWithCookie: false,
};

function setup(config: Partial<CacheConfig> = {}) {
  const clock = { now: T0 };
  const cache = new ProxyCache({
    config: { ...CONFIG, ...config },
    refreshTimeout: 1000,
    now: () => clock.now,
  });
  return { cache, clock };
}

const pool = (name = 'web') => ({ name }) as unknown as BackendPool;
/** What the flow would send: request line and fields, one per line. */
const headFor = (head: RequestHead) =>
  [`${head.method} ${head.target}`, ...head.headers.map((f) => `${f.name}: ${f.value}`)].join('\n');

function req(target = '/a', headers: HeaderField[] = [], method = 'GET'): RequestHead {
  return { method, target, versionMinor: 1, headers: [h('Host', 'site.test'), ...headers] };
}

function res(status: number, ...headers: HeaderField[]): ResponseHead {
  return { versionMinor: 1, status, reason: status === 304 ? 'Not Modified' : 'OK', headers };
}

const LENGTH = (n: number): BodyFraming => ({ kind: 'length', length: n });

/** A request nothing forwards: its fields are the forwarded ones (no host: every decision reads them). */
const unforwarded = (request: RequestHead): FlowRequest => ({
  client: request,
  host: undefined,
  forwarded: () => request,
  headFor,
});

function open(cache: ProxyCache, request: RequestHead, poolName = 'web'): CacheFlow {
  return cache.open(unforwarded(request), pool(poolName), true);
}

/** Runs a miss through a flow: the response is stored with `body`. */
function fill(
  cache: ProxyCache,
  request: RequestHead,
  response: ResponseHead,
  body = 'hello',
  poolName = 'web',
) {
  const flow = open(cache, request, poolName);
  const step = flow.begin();
  if (step.kind !== 'forward') throw new Error(`expected forward, got ${step.kind}`);
  const action = flow.onResponse(response, LENGTH(body.length));
  if (action.kind !== 'pass') throw new Error('expected pass');
  action.sink?.(Buffer.from(body));
  flow.done(true);
  return { flow, action };
}

test('a miss forwards, stores the teed body and labels MISS; the next request is a HIT', (t) => {
  const { cache, clock } = setup();
  const { flow, action } = fill(
    cache,
    req(),
    res(200, h('Cache-Control', 'max-age=60'), h('Date', date(T0))),
  );
  t.is(flow.result, 'miss');
  t.deepEqual(action.kind === 'pass' ? action.extra.map((f) => `${f.name}: ${f.value}`) : [], [
    'X-Cache: MISS',
  ]);
  t.is(cache.store.count, 1);
  clock.now = T0 + 10_500;
  const hit = open(cache, req());
  t.deepEqual(hit.begin(), { kind: 'answer' });
  const answer = hit.render(true);
  t.is(hit.result, 'hit');
  t.is(answer.status, 200);
  t.regex(answer.head, /\r\nAge: 10\r\nX-Cache: HIT\r\nContent-Length: 5\r\n\r\n$/);
  t.is(Buffer.concat(answer.body).toString(), 'hello');
});

test('keys include the pool: the same URL in two pools is two entries', (t) => {
  const { cache } = setup();
  const response = res(200, h('Cache-Control', 'max-age=60'));
  fill(cache, req(), response, 'from web', 'web');
  const probe = open(cache, req(), 'api');
  t.is(probe.begin().kind, 'forward');
  probe.done(false);
  fill(cache, req(), response, 'from api', 'api');
  t.is(cache.store.count, 2);
  const web = open(cache, req(), 'web');
  web.begin();
  t.is(Buffer.concat(web.render(true).body).toString(), 'from web');
  t.is(cache.keyOf(req(), 'web'), 'http://site.test/a web');
});

test('purge by URL covers every pool; by prefix, optionally one pool; unsafe requests invalidate', (t) => {
  const { cache } = setup();
  const response = res(200, h('Cache-Control', 'max-age=60'));
  for (const poolName of ['web', 'api'])
    for (const path of ['/p/1', '/p/2', '/q']) fill(cache, req(path), response, 'x', poolName);
  t.is(cache.store.count, 6);
  t.is(cache.purgeUrl('http://SITE.test:80/p/1'), 2);
  t.is(cache.purgePrefix('http://site.test/p/', 'api'), 1);
  t.is(cache.purgePrefix('http://site.test/p/'), 1);
  t.is(cache.purgeUrl('http://site.test/q', 'web'), 1);
  t.is(cache.store.count, 1);
  const post = open(cache, req('/q', [], 'POST'));
  t.is(post.begin().kind, 'forward');
  post.onResponse(res(200), { kind: 'none' });
  post.done(true);
  t.is(post.result, 'bypass');
  t.is(cache.store.count, 0);
});

test('no-store, private and Set-Cookie responses are BYPASS and release coalesced followers', async (t) => {
  for (const header of [
    h('Cache-Control', 'no-store'),
    h('Cache-Control', 'private, max-age=9'),
    h('Set-Cookie', 'a=1'),
  ]) {
    const { cache } = setup();
    const leader = open(cache, req());
    leader.begin();
    const follower = open(cache, req()).begin();
    t.is(follower.kind, 'wait');
    const action = leader.onResponse(res(200, h('Cache-Control', 'max-age=60'), header), LENGTH(1));
    t.is(action.kind === 'pass' ? action.extra[0]?.value : '', 'BYPASS');
    t.is(action.kind === 'pass' ? action.sink : 'x', undefined);
    if (follower.kind === 'wait') await follower.ready;
    t.is(cache.flights.size, 0);
    leader.done(true);
    t.is(leader.result, 'bypass');
    t.is(cache.store.count, 0);
  }
});

test('coalescing: followers wait for the leader, then find the stored copy', async (t) => {
  const { cache } = setup();
  const leader = open(cache, req());
  t.is(leader.begin().kind, 'forward');
  const followers = [open(cache, req()), open(cache, req()), open(cache, req())];
  const steps = followers.map((f) => f.begin());
  t.deepEqual(
    steps.map((s) => s.kind),
    ['wait', 'wait', 'wait'],
  );
  t.is(cache.flights.followers(cache.keyOf(req(), 'web')), 3);
  const action = leader.onResponse(res(200, h('Cache-Control', 'max-age=60')), LENGTH(2));
  if (action.kind === 'pass') action.sink?.(Buffer.from('ok'));
  leader.done(true);
  for (const [i, step] of steps.entries()) {
    if (step.kind === 'wait') await step.ready;
    const flow = followers[i] as CacheFlow;
    t.is(flow.begin().kind, 'answer');
    t.is(flow.result, 'hit');
  }
});

test('a failed leader lets followers go to the backend themselves, without a new flight', async (t) => {
  const { cache } = setup();
  const leader = open(cache, req());
  leader.begin();
  const follower = open(cache, req());
  const step = follower.begin();
  leader.done(false);
  if (step.kind === 'wait') await step.ready;
  t.is(follower.begin().kind, 'forward');
  t.is(cache.flights.size, 0);
});

test('a leader whose client holds the backend past the grace releases its followers: one leads anew, the others follow it', async (t) => {
  const { cache } = setup();
  const key = cache.keyOf(req(), 'web');
  const leader = open(cache, req());
  t.is(leader.begin().kind, 'forward');
  const action = leader.onResponse(res(200, h('Cache-Control', 'max-age=60')), LENGTH(4));
  if (action.kind === 'pass') action.sink?.(Buffer.from('ab'));
  const followers = [open(cache, req()), open(cache, req()), open(cache, req())];
  const steps = followers.map((f) => f.begin());
  // Short pauses, summed: 3 × 50 ms is still within the grace.
  for (let i = 0; i < 3; i++) {
    leader.backendPaused(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    leader.backendPaused(false);
  }
  t.is(cache.flights.followers(key), 3);
  const started = Date.now();
  leader.backendPaused(true);
  // The flow's timers are unref'd: this one keeps the test process alive meanwhile.
  const alive = setTimeout(() => {}, 5000);
  for (const step of steps) if (step.kind === 'wait') await step.ready;
  clearTimeout(alive);
  t.true(Date.now() - started < LEADER_STALL_GRACE_MS, 'released once the paused time adds up to the grace');
  t.deepEqual(
    followers.map((f) => f.begin().kind),
    ['forward', 'wait', 'wait'],
  );
  t.is(cache.flights.followers(key), 2);
  // The released leader still stores its copy; the new leader's ends the new flight.
  if (action.kind === 'pass') action.sink?.(Buffer.from('cd'));
  leader.done(true);
  t.is(cache.flights.size, 1);
  (followers[0] as CacheFlow).done(false);
  t.is(cache.flights.size, 0);
});

test('only plain GETs lead; HEAD and conditional GETs follow a flight in progress; Authorization and no-cache never coalesce', (t) => {
  const { cache } = setup();
  const key = cache.keyOf(req(), 'web');
  t.is(open(cache, req('/a', [], 'HEAD')).begin().kind, 'forward');
  t.is(open(cache, req('/a', [h('If-None-Match', '"x"')])).begin().kind, 'forward');
  t.is(open(cache, req('/a', [h('Range', 'bytes=0-1')])).begin().kind, 'forward');
  t.false(cache.flights.has(key));
  open(cache, req()).begin();
  t.true(cache.flights.has(key));
  t.is(open(cache, req('/a', [], 'HEAD')).begin().kind, 'wait');
  t.is(open(cache, req('/a', [h('If-None-Match', '"x"')])).begin().kind, 'wait');
  t.is(open(cache, req('/a', [h('Authorization', 'Basic eDp5')])).begin().kind, 'forward');
  t.is(open(cache, req('/a', [h('Cache-Control', 'no-cache')])).begin().kind, 'forward');
  t.is(open(cache, req('/a', [h('Pragma', 'no-cache')])).begin().kind, 'forward');
});

test('requests with a body or an Upgrade, and no-store requests, bypass', (t) => {
  const { cache } = setup();
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=60')));
  const upgrade = cache.open(unforwarded(req()), pool(), false);
  t.deepEqual(upgrade.begin(), { kind: 'forward', head: undefined });
  const noStore = open(cache, req('/a', [h('Cache-Control', 'no-store')]));
  t.deepEqual(noStore.begin(), { kind: 'forward', head: undefined });
  noStore.done(true);
  t.is(noStore.result, 'bypass');
  t.is(noStore.headerLine, 'x-cache: BYPASS\r\n');
});

test('only-if-cached without an entry renders a 504 with X-Cache: MISS', (t) => {
  const { cache } = setup();
  const flow = open(cache, req('/a', [h('Cache-Control', 'only-if-cached')]));
  t.is(flow.begin().kind, 'answer');
  const answer = flow.render(false);
  t.is(answer.status, 504);
  t.regex(answer.head, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
  t.regex(answer.head, /x-cache: MISS\r\n/);
  t.regex(answer.head, /connection: close\r\n/);
});

test('revalidation: the conditional replaces the client validators; a 304 freshens and answers REVALIDATED', (t) => {
  const { cache, clock } = setup();
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=10'), h('ETag', '"e1"'), h('X-V', 'a')));
  clock.now = T0 + 20_000;
  const flow = open(cache, req('/a', [h('If-None-Match', '"mine"')]));
  const step = flow.begin();
  t.is(step.kind, 'forward');
  t.is(step.kind === 'forward' ? step.head : '', 'GET /a\nHost: site.test\nIf-None-Match: "e1"');
  clock.now = T0 + 20_100;
  const action = flow.onResponse(
    res(304, h('ETag', '"e1"'), h('X-V', 'b'), h('Cache-Control', 'max-age=60')),
    {
      kind: 'none',
    },
  );
  t.is(action.kind, 'answer');
  const answer = flow.render(true);
  t.is(flow.result, 'revalidated');
  t.is(answer.status, 200, 'the client validator does not match');
  t.regex(answer.head, /X-V: b\r\n/);
  t.regex(answer.head, /X-Cache: REVALIDATED\r\n/);
  clock.now = T0 + 30_000;
  const hit = open(cache, req());
  t.is(hit.begin().kind, 'answer');
  // 0.1 s of response delay + 9.9 s in the cache.
  t.regex(hit.render(true).head, /\r\nAge: 10\r\n/);
});

test('a 304 naming another representation restarts without conditionals and drops the entry', (t) => {
  const { cache, clock } = setup();
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=10'), h('ETag', '"e1"')));
  clock.now = T0 + 20_000;
  const flow = open(cache, req('/a', [h('If-Modified-Since', date(T0))]));
  flow.begin();
  const action = flow.onResponse(res(304, h('ETag', '"e2"')), { kind: 'none' });
  t.deepEqual(action, { kind: 'restart', head: 'GET /a\nHost: site.test' });
  t.is(cache.store.count, 0);
  const again = flow.onResponse(res(200, h('Cache-Control', 'max-age=10'), h('ETag', '"e2"')), LENGTH(1));
  t.is(again.kind, 'pass');
});

test('stale-if-error: a 5xx or a failure serves the stale copy within the allowance', (t) => {
  const { cache, clock } = setup({ staleIfError: 30_000 });
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=10'), h('ETag', '"e"')));
  clock.now = T0 + 25_000;
  const on5xx = open(cache, req());
  on5xx.begin();
  t.is(on5xx.onResponse(res(503), LENGTH(4)).kind, 'answer');
  t.is(on5xx.result, 'stale');
  t.regex(on5xx.render(true).head, /X-Cache: STALE\r\n/);
  const onFailure = open(cache, req());
  onFailure.begin();
  t.is(onFailure.onFailure(), 'stale');
  clock.now = T0 + 45_000;
  const tooOld = open(cache, req());
  tooOld.begin();
  t.is(tooOld.onFailure(), undefined);
  t.is(tooOld.headerLine, 'x-cache: MISS\r\n');
});

test('a failure on a stale copy under must-revalidate, proxy-revalidate or s-maxage: must-revalidate, never stale', (t) => {
  for (const directives of ['max-age=10, must-revalidate', 'max-age=10, proxy-revalidate', 's-maxage=10']) {
    const { cache, clock } = setup({ staleIfError: 3600_000 });
    fill(cache, req(), res(200, h('Cache-Control', directives), h('ETag', '"e"')));
    clock.now = T0 + 20_000;
    const flow = open(cache, req());
    flow.begin();
    t.is(flow.onFailure(), 'must-revalidate', directives);
    t.is(flow.headerLine, 'x-cache: MISS\r\n');
  }
});

test('an object over maxObjectBytes is abandoned while streaming: BYPASS in the metrics, nothing stored', async (t) => {
  const { cache } = setup();
  const leader = open(cache, req());
  leader.begin();
  const follower = open(cache, req()).begin();
  const action = leader.onResponse(res(200, h('Cache-Control', 'max-age=60')), { kind: 'chunked' });
  t.is(action.kind, 'pass');
  if (action.kind === 'pass') {
    action.sink?.(Buffer.alloc(3000));
    action.sink?.(Buffer.alloc(3000));
  }
  if (follower.kind === 'wait') await follower.ready;
  leader.done(true);
  t.is(leader.result, 'bypass');
  t.is(cache.store.count, 0);
  // A declared length over the limit is not even begun.
  const declared = open(cache, req('/big'));
  declared.begin();
  const big = declared.onResponse(res(200, h('Cache-Control', 'max-age=60')), LENGTH(5000));
  t.is(big.kind === 'pass' ? big.sink : 'x', undefined);
});

test('HEAD is answered from a stored GET with its Content-Length and no body', (t) => {
  const { cache } = setup();
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=60')), 'twelve bytes');
  const head = open(cache, req('/a', [], 'HEAD'));
  t.is(head.begin().kind, 'answer');
  const answer = head.render(true);
  t.regex(answer.head, /Content-Length: 12\r\n/);
  t.deepEqual(answer.body, []);
  t.is(answer.bodyBytes, 0);
});

test('the fast path of a hit agrees with servingDecision', (t) => {
  const { cache, clock } = setup();
  const cases: HeaderField[][] = [
    [h('Cache-Control', 'max-age=30')],
    [h('Cache-Control', 'max-age=30'), h('Age', '25')],
    [h('Cache-Control', 's-maxage=5, max-age=100')],
    [h('Cache-Control', 'no-cache, max-age=100'), h('ETag', '"n"')],
    [h('Expires', date(T0 + 20_000)), h('Date', date(T0))],
    [h('Last-Modified', date(T0 - 100_000)), h('Date', date(T0))],
    [h('Cache-Control', 'max-age=30'), h('Date', date(T0 - 12_000))],
  ];
  cases.forEach((headers, i) => {
    clock.now = T0;
    const path = `/case-${i}`;
    fill(cache, req(path), res(200, ...headers));
    for (const after of [0, 4_000, 9_999, 10_001, 14_000, 19_000, 29_000, 31_000]) {
      clock.now = T0 + after;
      const entry = cache.store.get(cache.keyOf(req(path), 'web'), req(path));
      const expected = servingDecision(req(path), entry, clock.now).action === 'fresh';
      const flow = open(cache, req(path));
      const step: CacheStep = flow.begin();
      t.is(step.kind === 'answer', expected, `case ${i} after ${after} ms`);
      flow.done(false); // ends the flight a forwarded probe leads
    }
  });
});

test('renderEntry writes exactly the head clientResponseHead would', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100_000 });
  const stored = (status: number, ...headers: HeaderField[]) =>
    store.put(
      `k${status}${headers.length}`,
      prepareEntry(req(), res(status, ...headers), T0, T0),
      status === 204 ? [] : [Buffer.from('abc')],
    );
  const entries = [
    stored(200, h('Content-Type', 'text/plain'), h('Via', '1.0 origin'), h('Age', '3'), h('Date', date(T0))),
    stored(204, h('Cache-Control', 'max-age=60')),
    stored(404, h('Cache-Control', 'max-age=60'), h('Via', '1.1 a'), h('Via', '1.1 b')),
  ];
  for (const entry of entries) {
    if (!entry) throw new Error('not stored');
    for (const [method, versionMinor, keepAlive] of [
      ['GET', 1, true],
      ['GET', 1, false],
      ['GET', 0, true],
      ['HEAD', 1, true],
    ] as const) {
      const request: RequestHead = { ...req(), method, versionMinor };
      const answer = renderEntry(entry, request, T0 + 7000, 'HIT', keepAlive);
      const bodiless = entry.status === 204;
      const expected = clientResponseHead({
        head: {
          versionMinor: 1,
          status: entry.status,
          reason: entry.reason,
          headers: entry.headers.filter((f) => f.lower !== 'age'),
        },
        connectionTokens: [],
        framing: bodiless ? { kind: 'none' } : { kind: 'length', length: entry.bodyBytes },
        mode: 'raw',
        requestMethod: method,
        keepAlive,
        clientMinor: versionMinor,
        extra: [h('Age', entry.status === 200 ? '10' : '7'), h('X-Cache', 'HIT')],
      });
      t.is(answer.head, expected, `${entry.status} ${method} 1.${versionMinor} keepAlive=${keepAlive}`);
    }
  }
});

test('entryInfo is made again when a 304 replaced the fields', (t) => {
  const store = new CacheStore({ maxBytes: 100_000, maxObjectBytes: 100_000 });
  const entry = store.put('k', prepareEntry(req(), res(200, h('Cache-Control', 'max-age=5')), T0, T0), []);
  if (!entry) throw new Error('not stored');
  t.is(entryInfo(entry).lifetime, 5);
  t.is(entryInfo(entry), entryInfo(entry));
  store.update(entry, {
    headers: [h('Cache-Control', 'max-age=50'), h('Date', date(T0))],
    requestTime: T0,
    responseTime: T0,
  });
  t.is(entryInfo(entry).lifetime, 50);
});

test('helpers: withoutConditionals and validatorsDiffer', (t) => {
  t.deepEqual(
    withoutConditionals([
      h('Host', 'a'),
      h('If-None-Match', '"x"'),
      h('If-Modified-Since', date(T0)),
      h('If-Match', '"y"'),
    ]).map((f) => f.name),
    ['Host', 'If-Match'],
  );
  t.false(validatorsDiffer([h('ETag', '"a"')], [h('ETag', '"a"')]));
  t.true(validatorsDiffer([h('ETag', '"a"')], [h('ETag', '"b"')]));
  t.false(validatorsDiffer([h('ETag', '"a"')], []));
  t.true(validatorsDiffer([], [h('Last-Modified', date(T0))]));
});

test('store.resize evicts down to new limits; Coalescer.has', (t) => {
  // Each entry is charged about 2,250 bytes beyond its body (store.ts, entry-size.ts).
  const store = new CacheStore({ maxBytes: 20_000, maxObjectBytes: 10_000 });
  const meta = prepareEntry(req(), res(200, h('Cache-Control', 'max-age=60')), T0, T0);
  store.put('a', meta, [Buffer.alloc(1000)]);
  store.put('b', meta, [Buffer.alloc(3000)]);
  store.put('c', meta, [Buffer.alloc(1000)]);
  store.resize({ maxBytes: 20_000, maxObjectBytes: 2999 }); // bodies over it go
  t.deepEqual(
    ['a', 'b', 'c'].map((k) => store.get(k, req()) !== undefined),
    [true, false, true],
  );
  store.resize({ maxBytes: 4000, maxObjectBytes: 4000 });
  t.is(store.count, 1);
  t.true(store.bytes <= 4000);
  const flights = new Coalescer();
  t.false(flights.has('k'));
  const flight = flights.join('k');
  t.true(flights.has('k'));
  if (flight.leader) flight.finish('stored');
  t.false(flights.has('k'));
});

test('configure applies new limits to the live store', (t) => {
  const { cache } = setup();
  fill(cache, req(), res(200, h('Cache-Control', 'max-age=60')), 'x'.repeat(3000));
  cache.configure({ ...CONFIG, maxObjectBytes: 1000 }, 1000);
  t.is(cache.store.count, 0);
  t.is(cache.config.maxObjectBytes, 1000);
});

test('a follower stops waiting after lockTimeout and goes to the backend itself', async (t) => {
  const { cache } = setup({ lockTimeout: 30 });
  const leader = open(cache, req());
  leader.begin();
  const follower = open(cache, req());
  const step = follower.begin();
  t.is(step.kind, 'wait');
  const started = Date.now();
  // The lock timer is unref'd (a server's sockets keep the process alive); here a timer does.
  const alive = setTimeout(() => {}, 1000);
  if (step.kind === 'wait') await step.ready;
  clearTimeout(alive);
  t.true(Date.now() - started >= 25);
  t.is(follower.begin().kind, 'forward');
  leader.done(false);
});

test("an upstream cache's X-Cache is dropped: neither passed on nor stored", (t) => {
  const { cache } = setup();
  const response = res(200, h('Cache-Control', 'max-age=60'), h('X-Cache', 'HIT from upstream'));
  fill(cache, req(), response);
  t.deepEqual(
    response.headers.map((f) => f.name),
    ['Cache-Control'],
  );
  const hit = open(cache, req());
  hit.begin();
  t.is(hit.render(true).head.match(/X-Cache/gi)?.length, 1);
});
