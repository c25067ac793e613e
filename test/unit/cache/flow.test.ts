// A flow whose request knows its Host without forwarding (a route without header rules): a hit
// is decided and answered from the client's head, the forwarded fields made only when a decision
// reads them (Vary, directives, a conditional), with the same answers as when they are made first.
import test from 'ava';
import { type FlowRequest, ProxyCache } from '../../../src/cache/proxy-cache.ts';
import type { HeaderField, RequestHead, ResponseHead } from '../../../src/http/message.ts';
import type { BackendPool } from '../../../src/upstream/pool.ts';

const T0 = Date.UTC(2024, 0, 15, 12, 0, 0);
const h = (name: string, value: string): HeaderField => ({ name, lower: name.toLowerCase(), value });
const pool = { name: 'web' } as unknown as BackendPool;
const headFor = (head: RequestHead) =>
  [`${head.method} ${head.target}`, ...head.headers.map((f) => `${f.name}: ${f.value}`)].join('\n');

function setup() {
  const clock = { now: T0 };
  const cache = new ProxyCache({
    config: {
      maxBytes: 1 << 20,
      maxObjectBytes: 4096,
      staleIfError: 0,
      lockTimeout: 5000,
      storeWithCookie: false,
    },
    refreshTimeout: 1000,
    now: () => clock.now,
  });
  return { cache, clock };
}

/**
 * A request as the proxy gives it: the client's head, and forwarded fields as `forward` makes
 * them (Host replaced by the authority, a field added), counted each time they are made.
 */
function subject(client: RequestHead, forward: (fields: HeaderField[]) => HeaderField[] = (f) => f) {
  const made = { count: 0 };
  let forwarded: RequestHead | undefined;
  const source: FlowRequest = {
    client,
    host: 'site.test',
    forwarded() {
      if (forwarded === undefined) {
        made.count++;
        const fields = client.headers.filter((f) => f.lower !== 'host');
        forwarded = {
          ...client,
          headers: forward([h('Host', 'site.test'), ...fields, h('X-Forwarded-For', '10.0.0.1')]),
        };
      }
      return forwarded;
    },
    headFor,
  };
  return { source, made };
}

const get = (headers: HeaderField[] = [], method = 'GET'): RequestHead => ({
  method,
  target: '/a',
  versionMinor: 1,
  headers: [h('Host', 'SITE.test:80'), ...headers],
});

function res(...headers: HeaderField[]): ResponseHead {
  return {
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [h('Cache-Control', 'max-age=60'), ...headers],
  };
}

/** Stores `body` for a request through a flow, as a miss does. */
function fill(cache: ProxyCache, request: RequestHead, response: ResponseHead, body: string) {
  const flow = cache.open(subject(request).source, pool, true);
  const step = flow.begin();
  if (step.kind !== 'forward') throw new Error(`expected forward, got ${step.kind}`);
  const action = flow.onResponse(response, { kind: 'length', length: body.length });
  if (action.kind !== 'pass') throw new Error('expected pass');
  action.sink?.(Buffer.from(body));
  flow.done(true);
}

test('a hit without Vary never makes the forwarded fields, and answers as if it had', (t) => {
  const { cache, clock } = setup();
  fill(cache, get(), res(h('Content-Type', 'text/plain')), 'hello');
  clock.now = T0 + 3000;
  const { source, made } = subject(get());
  const hit = cache.open(source, pool, true);
  t.deepEqual(hit.begin(), { kind: 'answer' });
  const joined = hit.renderJoined(true, 16 * 1024);
  t.is(made.count, 0);
  t.is(hit.result, 'hit');
  // The same answer a flow that made its forwarded fields first renders.
  const eager = subject(get());
  eager.source.forwarded();
  const other = cache.open({ ...eager.source, host: undefined }, pool, true);
  t.deepEqual(other.begin(), { kind: 'answer' });
  const answer = other.render(true);
  t.is(joined?.bytes.toString('latin1'), answer.head + Buffer.concat(answer.body).toString('latin1'));
  t.regex(answer.head, /\r\nAge: 3\r\nX-Cache: HIT\r\n/);
});

test('the key comes from the forwarded Host, not the client’s', (t) => {
  const { cache } = setup();
  fill(cache, get(), res(), 'x');
  // An absolute-form request whose Host field says something else: forwarded with the authority.
  const absolute = { ...get([]), headers: [h('Host', 'elsewhere.test')] };
  const hit = cache.open(subject(absolute).source, pool, true);
  t.is(hit.begin().kind, 'answer');
  t.is(cache.keyAt('SITE.test:80', '/a', 'web'), cache.keyOf(get(), 'web'));
});

test('Vary selects on the forwarded fields, made only then', (t) => {
  const { cache } = setup();
  // The backend varies on a field forwarding adds.
  fill(cache, get(), res(h('Vary', 'X-Forwarded-For')), 'for 10.0.0.1');
  const { source, made } = subject(get());
  const hit = cache.open(source, pool, true);
  t.deepEqual(hit.begin(), { kind: 'answer' });
  t.is(made.count, 1);
  t.is(Buffer.concat(hit.render(true).body).toString(), 'for 10.0.0.1');
  // Another forwarded value is another variant, whatever the client sent.
  const other = subject(get(), (fields) =>
    fields.map((f) => (f.lower === 'x-forwarded-for' ? h(f.name, '10.0.0.2') : f)),
  );
  const miss = cache.open(other.source, pool, true);
  t.is(miss.begin().kind, 'forward');
  miss.done(false);
});

test('a conditional the forwarding dropped is not answered with a 304', (t) => {
  const { cache } = setup();
  fill(cache, get(), res(h('ETag', '"v1"')), 'body');
  // The client named If-None-Match in Connection: it is not forwarded, so the answer is a 200.
  const dropped = subject(get([h('If-None-Match', '"v1"')]), (fields) =>
    fields.filter((f) => f.lower !== 'if-none-match'),
  );
  const flow = cache.open(dropped.source, pool, true);
  t.is(flow.begin().kind, 'answer');
  t.is(flow.renderJoined(true, 16 * 1024)?.status, 200);
  t.is(dropped.made.count, 1);
  // Forwarded as sent, it is.
  const kept = cache.open(subject(get([h('If-None-Match', '"v1"')])).source, pool, true);
  t.is(kept.begin().kind, 'answer');
  t.is(kept.render(true).status, 304);
});

test('a directive in the client’s fields takes the request off the quick path', (t) => {
  const { cache } = setup();
  fill(cache, get(), res(), 'x');
  const { source, made } = subject(get([h('Cache-Control', 'no-cache')]));
  const flow = cache.open(source, pool, true);
  t.is(flow.begin().kind, 'forward');
  t.is(made.count, 1);
  flow.done(false);
});

test('keyAt is keyOf for a Host value, whatever was asked just before', (t) => {
  const { cache } = setup();
  const cases: [string, string, string][] = [
    ['SITE.test:80', '/a', 'web'],
    ['SITE.test:80', '/a', 'web'],
    ['site.test', '/a', 'api'],
    ['site.test:8080', '/a', 'api'],
    ['site.test:8080', '/b?x=1', 'api'],
    ['[::1]:80', '/b?x=1', 'api'],
    ['SITE.test:80', '/a', 'web'],
  ];
  for (const [host, target, poolName] of cases) {
    const request: RequestHead = { method: 'GET', target, versionMinor: 1, headers: [h('Host', host)] };
    t.is(
      cache.keyAt(host, target, poolName),
      cache.keyOf(request, poolName),
      `${host} ${target} ${poolName}`,
    );
  }
  t.is(cache.keyAt('SITE.test:80', '/a', 'web'), 'http://site.test/a web');
});
