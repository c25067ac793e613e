// Hostile clients (issue 10): what reaches the backend is exactly one well-formed request whose
// identity, authority and path Sluice vouches for, whatever the client spelled.
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { freePort } from '../support/node-backend.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import {
  fieldOf,
  reply,
  type ScriptedBackend,
  type ScriptedRequest,
  startScriptedBackend,
} from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

let web: ScriptedBackend;
let api: ScriptedBackend;
let sluice: RunningSluice;

const routes = `  - path: /api/
    stripPrefix: true
    pool: api
    headers: { remove: [X-Debug] }
  - pool: web`;

function config(extra = ''): string {
  return quietYaml({ web: [web.port], api: [api.port] }, { extra, routes });
}

test.before(async () => {
  const answer = (name: string) => (request: ScriptedRequest, socket: import('node:net').Socket) =>
    socket.write(reply(`${name} ${request.line}`));
  web = await startScriptedBackend(answer('web'));
  api = await startScriptedBackend(answer('api'));
  sluice = await startProxy(config());
});

test.after.always(async () => {
  await sluice?.stop();
  await web?.close();
  await api?.close();
});

/** Sends one request; returns the status and the request the backend saw (if any). */
async function forward(
  request: string,
  on = sluice,
): Promise<{ status: number; seen: ScriptedRequest | undefined; text: string }> {
  const [fromWeb, fromApi] = [web.requests.length, api.requests.length];
  const result = await rawExchange(on.address.port, request, { idleMs: 400 });
  // What the backends got meanwhile, less the health probes of a Sluice started for the test.
  const seen = [...web.requests.slice(fromWeb), ...api.requests.slice(fromApi)].find(
    (r) => fieldOf(r, 'user-agent') !== 'sluice-health/0.1' && result.text.includes(r.line),
  );
  return { status: statuses(result.text)[0] ?? 0, seen, text: result.text };
}

test.serial(
  'an absolute-form target is the authority of every forwarded field, whatever Host said',
  async (t) => {
    const { status, seen } = await forward(
      'GET http://cache.test/page HTTP/1.1\r\nHost: attacker.example\r\n\r\n',
    );
    t.is(status, 200);
    t.is(seen?.line, 'GET /page HTTP/1.1');
    t.is(fieldOf(seen as ScriptedRequest, 'host'), 'cache.test');
    t.is(fieldOf(seen as ScriptedRequest, 'x-forwarded-host'), 'cache.test');
    t.is(fieldOf(seen as ScriptedRequest, 'forwarded'), 'for=127.0.0.1;host=cache.test;proto=http');
    t.false(seen?.raw.includes('attacker'));
  },
);

test.serial('identity fields from an untrusted client are dropped or set by Sluice', async (t) => {
  const spoofed = [
    'X-Real-IP: 6.6.6.6',
    'True-Client-IP: 6.6.6.6',
    'X-Client-IP: 6.6.6.6',
    'CF-Connecting-IP: 6.6.6.6',
    'Fastly-Client-IP: 6.6.6.6',
    'X-Cluster-Client-IP: 6.6.6.6',
    'X-Forwarded-Port: 1',
    'X-Forwarded-Prefix: /evil',
    'X-Forwarded-Server: evil',
    'X-Forwarded-Scheme: https',
    'X-Original-URL: /admin',
    'X-Rewrite-URL: /admin',
    'X-Original-Forwarded-For: 6.6.6.6',
    'X-Forwarded-User: admin',
    'X-Auth-Request-Email: admin@evil',
    'Remote-User: admin',
    'X-Forwarded-Client-Cert: Hash=6.6.6.6',
    'X-SSL-Client-Verify: SUCCESS',
    'X-Forwarded-For: 6.6.6.6',
    'Forwarded: for=6.6.6.6',
  ].join('\r\n');
  const { seen } = await forward(`GET /page HTTP/1.1\r\nHost: a.test\r\n${spoofed}\r\n\r\n`);
  const request = seen as ScriptedRequest;
  t.false(request.raw.includes('6.6.6.6'));
  t.false(/evil|admin|SUCCESS|Client-Cert|X-Forwarded-Scheme|X-Forwarded-Server/i.test(request.raw));
  t.is(fieldOf(request, 'x-real-ip'), '127.0.0.1');
  t.is(fieldOf(request, 'x-forwarded-port'), String(sluice.address.port));
  t.is(fieldOf(request, 'x-forwarded-prefix'), undefined);
  const stripped = (
    await forward('GET /api/users HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Prefix: /evil\r\n\r\n')
  ).seen;
  t.is(stripped?.line, 'GET /users HTTP/1.1');
  t.is(fieldOf(stripped as ScriptedRequest, 'x-forwarded-prefix'), '/api');
});

test.serial(
  'field names with underscores are dropped by default, so X_Debug cannot get round remove: [X-Debug]',
  async (t) => {
    const { seen } = await forward(
      'GET /api/x HTTP/1.1\r\nHost: a.test\r\nX_Debug: 1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nX-Keep: yes\r\n\r\n',
    );
    t.false(seen?.raw.includes('_'));
    t.is(fieldOf(seen as ScriptedRequest, 'x-keep'), 'yes');
  },
);

test.serial(
  'underscoresInHeaders: true lets them through, but rules and identity still see the dashed name',
  async (t) => {
    const open = await startProxy(config('underscoresInHeaders: true'));
    t.teardown(() => open.stop());
    const { seen } = await forward(
      'GET /api/x HTTP/1.1\r\nHost: a.test\r\nX_Debug: 1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Custom: kept\r\n\r\n',
      open,
    );
    t.is(fieldOf(seen as ScriptedRequest, 'x_custom'), 'kept');
    t.is(fieldOf(seen as ScriptedRequest, 'x_debug'), undefined);
    t.false(seen?.raw.includes('6.6.6.6'));
  },
);

test.serial(
  'Connection cannot strip Host, and an HTTP/1.0 request without Host gets the address it reached',
  async (t) => {
    const named = (
      await forward('GET /page HTTP/1.1\r\nHost: shop.test\r\nConnection: host, x-forwarded-host\r\n\r\n')
    ).seen;
    t.is(fieldOf(named as ScriptedRequest, 'host'), 'shop.test');
    t.is(fieldOf(named as ScriptedRequest, 'x-forwarded-host'), 'shop.test');
    const old = (await forward('GET /page HTTP/1.0\r\n\r\n')).seen;
    t.is(old?.line, 'GET /page HTTP/1.1');
    t.is(fieldOf(old as ScriptedRequest, 'host'), `127.0.0.1:${sluice.address.port}`);
    t.is(old?.headers.filter(([name]) => name.toLowerCase() === 'host').length, 1);
  },
);

const paths: [string, string, string | number][] = [
  // sent, pool, forwarded target (or the status Sluice answers itself)
  ['/x/../api/users', 'api', '/users'],
  ['/x/%2e%2e/api/users', 'api', '/users'],
  ['/x/.%2E/api/users?q=/../', 'api', '/users?q=/../'],
  ['/%61pi/users', 'api', '/users'],
  ['/api/../secret', 'web', '/secret'],
  ['/api/%2E%2E/secret', 'web', '/secret'],
  ['/api/./users/.', 'api', '/users/'],
  ['/../../etc/passwd', 'web', '/etc/passwd'],
  ['//evil.example/x', 'web', '/evil.example/x'],
  ['/api//evil.example/x', 'api', '/evil.example/x'],
  ['/api/%2F%2Fevil.example/x', 'api', '/%2F%2Fevil.example/x'],
  ['http://h.test//evil.example/x', 'web', '/evil.example/x'],
  ['/api/..%2fsecret', 'none', 400],
  ['/api/..%5Csecret', 'none', 400],
  ['/api/..\\secret', 'none', 400],
  ['/api/..;/secret', 'none', 400],
  ['/api/%2e%2e%2fsecret', 'none', 400],
  ['/a/%zz', 'none', 400],
  ['/a/%00', 'none', 400],
  ['/a/%4', 'none', 400],
  // Another route as a backend may read the path (`;params` dropped, `\`, %2F, %5C as `/`): 400.
  ['/api;x/users', 'none', 400],
  ['/api;jsessionid=1/users', 'none', 400],
  ['/;/api/users', 'none', 400],
  ['/\\api/users', 'none', 400],
  ['/%2Fapi/users', 'none', 400],
  ['/%5capi/users', 'none', 400],
  // `;` written %3B; a segment's trailing dots and spaces, which Windows drops.
  ['/api%3Bx/users', 'none', 400],
  ['/api%3b/users', 'none', 400],
  ['/api./users', 'none', 400],
  ['/api.', 'web', '/api.'], // /api is not under the route's /api/ either way
  ['/api%20/users', 'none', 400],
  ['/api.%20./users', 'none', 400],
  ['/api::$DATA/users', 'none', 400],
  // The same route either way: forwarded as sent.
  ['/page;jsessionid=1', 'web', '/page;jsessionid=1'],
  ['/api/users;v=1', 'api', '/users;v=1'],
  ['/api/group%2Fproject', 'api', '/group%2Fproject'],
  ['/page.', 'web', '/page.'],
  ['/api/users.', 'api', '/users.'],
  ['/api/a%20/b', 'api', '/a%20/b'],
];
for (const [sent, pool, expected] of paths) {
  test.serial(
    `path ${sent} is routed ${typeof expected === 'number' ? `nowhere (${expected})` : `to ${pool} as ${expected}`}`,
    async (t) => {
      const { status, seen, text } = await forward(`GET ${sent} HTTP/1.1\r\nHost: h.test\r\n\r\n`);
      if (typeof expected === 'number') {
        t.is(status, expected);
        t.is(seen, undefined);
        return;
      }
      t.is(status, 200);
      t.is(seen?.line, `GET ${expected} HTTP/1.1`);
      t.true(text.endsWith(`${pool} GET ${expected} HTTP/1.1`), text);
    },
  );
}

test.serial(
  'a pool that points at Sluice itself gets 508 at once; a chain of two Sluices still works',
  async (t) => {
    const port = await freePort();
    const loop = await startProxy(quietYaml({ self: [port] }, { listen: `127.0.0.1:${port}` }));
    t.teardown(() => loop.stop());
    const result = await rawExchange(port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: via\r\n\r\n', {
      idleMs: 300,
    });
    t.is(statuses(result.text)[0], 508);
    t.regex(result.text, /loop detected/);
    const front = await startProxy(quietYaml({ next: [sluice.address.port] }));
    t.teardown(() => front.stop());
    const chained = await forward('GET /page HTTP/1.1\r\nHost: a.test\r\n\r\n', front);
    t.is(chained.status, 200);
    t.regex(
      fieldOf(chained.seen as ScriptedRequest, 'via') ?? '',
      /^1\.1 sluice-[0-9a-f]{8}, 1\.1 sluice-[0-9a-f]{8}$/,
    );
  },
);

test.serial('only allowed Upgrade protocols are offered to the backend (h2c is not)', async (t) => {
  const h2c = (
    await forward(
      'GET /page HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n',
    )
  ).seen;
  t.false(/upgrade|http2-settings/i.test(h2c?.raw ?? 'upgrade'));
  const mixed = (
    await forward('GET /page HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, WebSocket\r\n\r\n')
  ).seen;
  t.is(fieldOf(mixed as ScriptedRequest, 'upgrade'), 'websocket');
  t.is(fieldOf(mixed as ScriptedRequest, 'connection'), 'upgrade');
});

test.serial(
  'request trailers are filtered like fields: no framing, routing or identity smuggled in',
  async (t) => {
    const body =
      '5\r\nhello\r\n0\r\nContent-Length: 5\r\nHost: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\nX_Real_IP: 1\r\nTransfer-Encoding: chunked\r\nAuthorization: x\r\nX-Checksum: abc\r\n\r\n';
    const { status, seen } = await forward(
      `POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    );
    t.is(status, 200);
    t.true(seen?.raw.endsWith('\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n'), seen?.raw);
  },
);
