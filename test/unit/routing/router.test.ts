import test from 'ava';
import type { RouteConfig } from '../../../src/config/types.ts';
import { hostName, Router } from '../../../src/proxy/router.ts';

function route(host: string, path: string, pool: string, stripPrefix = false): RouteConfig {
  return { host, path, stripPrefix, pool, headers: { set: {}, remove: [] }, cache: false };
}

// Each route has its own pool name, so a match is identified by pool.
const routes: RouteConfig[] = [
  // The two routes of DESIGN.md.
  route('api.example.test', '/v1/', 'api', true),
  route('*', '/', 'web'),
  // More of the same host, wildcards of two depths, a catch-all prefix, IP literals.
  route('*.example.test', '/', 'wild'),
  route('*.b.example.test', '/', 'wildb'),
  route('api.example.test', '/v1/admin/', 'admin'),
  route('api.example.test', '/v2', 'v2', true),
  route('api.example.test', '/v3', 'v3'),
  route('*', '/static/', 'static', true),
  route('[::1]', '/', 'ipv6'),
  route('127.0.0.1', '/', 'ipv4'),
  route('*.example.test', '/docs', 'docs', true),
];

type Row = [host: string | undefined, target: string, pool: string | undefined, path?: string];

const rows: Row[] = [
  // DESIGN.md example and stripPrefix with a slash-ended prefix.
  ['api.example.test', '/v1/users?id=3', 'api', '/users?id=3'],
  ['api.example.test', '/v1/users', 'api', '/users'],
  ['api.example.test', '/v1/', 'api', '/'],
  ['api.example.test', '/v1/?q=1', 'api', '/?q=1'],
  // `/v1/` does not match `/v1`: falls through to the wildcard host.
  ['api.example.test', '/v1', 'wild', '/v1'],
  // Longest prefix within the same host.
  ['api.example.test', '/v1/admin/x', 'admin', '/v1/admin/x'],
  ['api.example.test', '/v1/admin/', 'admin', '/v1/admin/'],
  ['api.example.test', '/v1/adminx', 'api', '/adminx'],
  // Prefix without a slash: segment boundary and strip forms.
  ['api.example.test', '/v2', 'v2', '/'],
  ['api.example.test', '/v2?x=1', 'v2', '/?x=1'],
  ['api.example.test', '/v2/', 'v2', '/'],
  ['api.example.test', '/v2/a/b?c=d', 'v2', '/a/b?c=d'],
  ['api.example.test', '/v2x', 'wild', '/v2x'],
  ['api.example.test', '/v2x?y', 'wild', '/v2x?y'],
  ['api.example.test', '/v3/z', 'v3', '/v3/z'],
  ['api.example.test', '/v3', 'v3', '/v3'],
  // Case-sensitive paths.
  ['api.example.test', '/V1/a', 'wild', '/V1/a'],
  // Host case, port, trailing dot.
  ['API.Example.TEST', '/v1/a', 'api', '/a'],
  ['api.example.test:8080', '/v1/a', 'api', '/a'],
  ['api.example.test.', '/v1/a', 'api', '/a'],
  ['Api.Example.Test.:443', '/v1/a', 'api', '/a'],
  // Wildcards: one label, deeper, longer suffix first, not the bare suffix.
  ['other.example.test', '/v1/a', 'wild', '/v1/a'],
  ['b.example.test', '/', 'wild', '/'],
  ['a.b.example.test', '/', 'wildb', '/'],
  ['x.y.b.example.test:80', '/q?r', 'wildb', '/q?r'],
  ['example.test', '/', 'web', '/'],
  ['EXAMPLE.TEST.', '/x', 'web', '/x'],
  ['notexample.test', '/', 'web', '/'],
  // Exact host without a matching path falls to the wildcard, not to `*`.
  ['api.example.test', '/static/a', 'wild', '/static/a'],
  ['www.example.test', '/docs', 'docs', '/'],
  ['www.example.test', '/docs/guide?v=2', 'docs', '/guide?v=2'],
  ['www.example.test', '/docsx', 'wild', '/docsx'],
  // Catch-all host with its own longest prefix.
  ['example.test', '/static/css/a.css', 'static', '/css/a.css'],
  ['example.test', '/static', 'web', '/static'],
  [undefined, '/x', 'web', '/x'],
  ['', '/static/', 'static', '/'],
  // IP literals.
  ['[::1]:8080', '/a', 'ipv6', '/a'],
  ['[::1]', '/a?b', 'ipv6', '/a?b'],
  ['[0:0:0:0:0:0:0:1]', '/a', 'web', '/a'],
  ['127.0.0.1:8080', '/', 'ipv4', '/'],
  ['127.0.0.1.', '/', 'ipv4', '/'],
  // Absolute-form: the authority wins over the Host header, the path is the origin-form part.
  ['elsewhere.test', 'http://API.example.test:8080/v1/users?id=3', 'api', '/users?id=3'],
  ['api.example.test', 'http://other.test/v1/users', 'web', '/v1/users'],
  ['api.example.test', 'http://api.example.test', 'wild', '/'],
  ['api.example.test', 'http://api.example.test?x=1', 'wild', '/?x=1'],
  ['api.example.test', 'HTTP://[::1]:9000/z', 'ipv6', '/z'],
  [undefined, 'https://a.b.example.test./x', 'wildb', '/x'],
  // Asterisk-form matches only a route whose prefix is `/`.
  ['api.example.test', '*', 'wild', '*'],
  ['nothing.test:80', '*', 'web', '*'],
  ['[::1]', '*', 'ipv6', '*'],
  // Authority-form (CONNECT) and garbage never route.
  ['api.example.test', 'api.example.test:443', undefined],
  ['api.example.test', '', undefined],
];

/** The routes in a few fixed orders: as written, reversed, and interleaved shuffles. */
function orders(list: readonly RouteConfig[]): RouteConfig[][] {
  const out = [list.slice(), list.slice().reverse()];
  for (const step of [3, 5, 7]) {
    const shuffled: RouteConfig[] = [];
    for (let i = 0; i < list.length; i++) shuffled.push(list[(i * step) % list.length] as RouteConfig);
    out.push(shuffled);
  }
  return out;
}

test('routes table, in every file order', (t) => {
  t.true(rows.length >= 30);
  for (const order of orders(routes)) {
    t.is(new Set(order).size, routes.length);
    const router = new Router(order);
    for (const [host, target, pool, path] of rows) {
      const m = router.match(host, target);
      const label = `${String(host)} ${target}`;
      if (pool === undefined) {
        t.is(m, undefined, label);
      } else {
        t.is(m?.route.pool, pool, label);
        t.is(m?.path, path, label);
      }
    }
  }
});

test('the matched route is the configured object', (t) => {
  const router = new Router(routes);
  t.is(router.match('api.example.test', '/v1/x')?.route, routes[0]);
});

test('equal specificity goes by file order', (t) => {
  const a = route('dup.test', '/x', 'first');
  const b = route('dup.test', '/x', 'second');
  const c = route('*.dup.test', '/', 'w1');
  const d = route('*.dup.test', '/', 'w2');
  t.is(new Router([a, b]).match('dup.test', '/x')?.route.pool, 'first');
  t.is(new Router([b, a]).match('dup.test', '/x')?.route.pool, 'second');
  t.is(new Router([c, d]).match('q.dup.test', '/')?.route.pool, 'w1');
  t.is(new Router([d, c]).match('q.dup.test', '/')?.route.pool, 'w2');
});

test('no match gives undefined', (t) => {
  const router = new Router([route('api.example.test', '/v1/', 'api', true), route('*.x.test', '/a', 'x')]);
  t.is(router.match('other.test', '/v1/a'), undefined);
  t.is(router.match('api.example.test', '/v2'), undefined);
  t.is(router.match(undefined, '/v1/a'), undefined);
  t.is(router.match('x.test', '/a'), undefined);
  t.is(router.match('q.x.test', '/b'), undefined);
  t.is(router.match('api.example.test', '*'), undefined);
  t.is(new Router([]).match('a', '/'), undefined);
});

test('route hosts are normalized too: case, trailing dot, bare IPv6', (t) => {
  const router = new Router([
    route('Mixed.Example.Test.', '/', 'mixed'),
    route('::1', '/', 'v6'),
    route('*.Wild.Test.', '/', 'wild'),
  ]);
  t.is(router.match('mixed.example.test', '/')?.route.pool, 'mixed');
  t.is(router.match('[::1]:80', '/')?.route.pool, 'v6');
  t.is(router.match('a.wild.test', '/')?.route.pool, 'wild');
});

test('hostName', (t) => {
  t.is(hostName('Example.COM'), 'example.com');
  t.is(hostName('example.com:8080'), 'example.com');
  t.is(hostName('example.com.'), 'example.com');
  t.is(hostName('example.com.:8080'), 'example.com');
  t.is(hostName('[::1]:8080'), '[::1]');
  t.is(hostName('[FE80::1]'), '[fe80::1]');
  t.is(hostName('::1'), '[::1]');
  t.is(hostName(''), '');
});
