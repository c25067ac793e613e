// Route paths are spelled as requests are routed (normalized), or refused where no request could
// match them; probe paths are checked as what a request could carry.
import test from 'ava';
import { ConfigError, parseConfig } from '../../../src/config/load.ts';
import { normalizeTarget } from '../../../src/http/normalize.ts';
import { Router } from '../../../src/proxy/router.ts';

const POOLS = 'pools:\n  web:\n    servers: [127.0.0.1:9001]\n  api:\n    servers: [127.0.0.1:9002]\n';

const withRoute = (path: string) =>
  `${POOLS}routes:\n  - { path: "/", pool: web }\n  - { path: ${JSON.stringify(path)}, pool: api }\n`;

test('a route path is stored in the spelling requests are routed by, and requests reach it', (t) => {
  for (const [written, stored, request] of [
    ['/api//v1', '/api/v1', '/api//v1/x'],
    ['/%7Euser/', '/~user/', '/%7Euser/x'],
    ['/%7euser/', '/~user/', '/~user/x'],
    ['/é/', '/%C3%A9/', '/%c3%a9/x'],
    ['/a%2fb/', '/a%2Fb/', '/a%2Fb/c'],
  ] as const) {
    const config = parseConfig(withRoute(written));
    t.is(config.routes[1]?.path, stored, written);
    const target = normalizeTarget(request);
    t.true(target.ok);
    const match = new Router(config.routes).match('site.test', target.ok ? target.target : '');
    t.is(match?.route.pool, 'api', `${written} takes ${request}`);
  }
});

test('a route path no request can match is refused, naming the key and where it is', (t) => {
  for (const [written, message] of [
    ['/q?x=1', 'must not contain "?": requests are routed on their path, without the query'],
    ['/a/../b/', 'must not contain "." or ".." segments: requests are routed after they are removed'],
    ['/a/%2E/', 'must not contain "." or ".." segments: requests are routed after they are removed'],
    ['/a#b', 'must not contain "#" (a fragment is never sent in a request)'],
    ['/%zz/', 'invalid percent-encoding in path'],
    ['/a/..%2f/', 'dot segment hidden in an encoded path'],
  ] as const) {
    const error = t.throws(() => parseConfig(withRoute(written), 'c.yaml'), { instanceOf: ConfigError });
    t.deepEqual(error?.lines, [`c.yaml:8:7: routes[1].path: ${message}`], written);
  }
});

test('a probe path keeps its query, gets non-ASCII encoded, and refuses a fragment or a bad escape', (t) => {
  const probe = (path: string) =>
    `pools:\n  web:\n    servers: [127.0.0.1:9001]\n    health: { path: ${JSON.stringify(path)} }\n`;
  t.is(parseConfig(probe('/ready?full=1')).pools[0]?.health.path, '/ready?full=1');
  t.is(parseConfig(probe('/é')).pools[0]?.health.path, '/%C3%A9');
  for (const [written, message] of [
    ['/a?b=1#x', 'must not contain "#" (a fragment is never sent in a request)'],
    ['/%zz', 'invalid percent-encoding in path'],
  ] as const) {
    const error = t.throws(() => parseConfig(probe(written), 'c.yaml'), { instanceOf: ConfigError });
    t.deepEqual(error?.lines, [`c.yaml:4:15: pools.web.health.path: ${message}`], written);
  }
});
