import test from 'ava';
import type { RouteConfig } from '../../../src/config/types.ts';
import { connectionTokens } from '../../../src/http/hop-by-hop.ts';
import type { BodyFraming, RequestHead, ResponseHead } from '../../../src/http/message.ts';
import {
  clientResponseHead,
  responseMode,
  switchingProtocolsHead,
} from '../../../src/http/response-heads.ts';
import { field } from '../../../src/http/serialize.ts';
import { upstreamRequestHead } from '../../../src/proxy/heads.ts';

const route: RouteConfig = {
  host: 'api.example.test',
  path: '/v1/',
  stripPrefix: true,
  pool: 'api',
  headers: { set: { 'X-Env': 'demo' }, remove: ['X-Debug'] },
  cache: false,
};

function request(
  headers: RequestHead['headers'],
  target = '/v1/users?id=3',
  versionMinor: 0 | 1 = 1,
): RequestHead {
  return { method: 'POST', target, versionMinor, headers };
}

const forwarding = {
  clientAddress: '127.0.0.1',
  trusted: false,
  host: 'api.example.test',
  requestId: 'id-1',
};

test('the upstream request drops hop-by-hop fields, rewrites the path and applies route rules', (t) => {
  const head = request([
    field('Host', 'api.example.test'),
    field('Connection', 'keep-alive, X-Secret'),
    field('Keep-Alive', 'timeout=5'),
    field('X-Secret', 'hop'),
    field('TE', 'trailers'),
    field('Proxy-Authorization', 'Basic Zm9v'),
    field('X-Debug', '1'),
    field('Content-Type', 'application/json'),
    field('Content-Length', '2'),
  ]);
  const framing: BodyFraming = { kind: 'length', length: 2 };
  const text = upstreamRequestHead({
    head,
    connectionTokens: connectionTokens(head.headers),
    framing,
    route,
    path: '/users?id=3',
    authority: undefined,
    upgrade: undefined,
    forwarding,
  });
  t.is(
    text,
    'POST /users?id=3 HTTP/1.1\r\n' +
      'Host: api.example.test\r\n' +
      'Content-Type: application/json\r\n' +
      'X-Forwarded-For: 127.0.0.1\r\n' +
      'X-Forwarded-Proto: http\r\n' +
      'X-Forwarded-Host: api.example.test\r\n' +
      'Forwarded: for=127.0.0.1;host=api.example.test;proto=http\r\n' +
      'X-Real-IP: 127.0.0.1\r\n' +
      'Via: 1.1 sluice\r\n' +
      'X-Request-Id: id-1\r\n' +
      'X-Env: demo\r\n' +
      'Content-Length: 2\r\n\r\n',
  );
});

test('a chunked request stays chunked, an HTTP/1.0 request goes out as HTTP/1.1', (t) => {
  const head = request([field('Host', 'a'), field('Transfer-Encoding', 'chunked')], '/x', 0);
  const text = upstreamRequestHead({
    head,
    connectionTokens: [],
    framing: { kind: 'chunked' },
    route: { ...route, headers: { set: {}, remove: [] } },
    path: '/x',
    authority: undefined,
    upgrade: undefined,
    forwarding: { ...forwarding, host: 'a' },
  });
  t.true(text.startsWith('POST /x HTTP/1.1\r\nHost: a\r\n'));
  t.true(text.endsWith('Transfer-Encoding: chunked\r\n\r\n'));
  t.is(text.match(/Transfer-Encoding/g)?.length, 1);
});

test('an absolute-form target replaces Host with its authority (RFC 9112 3.2.2)', (t) => {
  const head = request([field('Host', 'ignored.test')], 'http://api.example.test:8080/v1/a');
  const text = upstreamRequestHead({
    head,
    connectionTokens: [],
    framing: { kind: 'none' },
    route: { ...route, headers: { set: {}, remove: [] } },
    path: '/a',
    authority: 'api.example.test:8080',
    upgrade: undefined,
    forwarding,
  });
  t.true(text.startsWith('POST /a HTTP/1.1\r\nHost: api.example.test:8080\r\n'));
  t.false(text.includes('ignored.test'));
});

test('an Upgrade request keeps its Upgrade and says Connection: upgrade', (t) => {
  const head: RequestHead = {
    method: 'GET',
    target: '/ws',
    versionMinor: 1,
    headers: [field('Host', 'a'), field('Connection', 'Upgrade'), field('Upgrade', 'websocket')],
  };
  const text = upstreamRequestHead({
    head,
    connectionTokens: connectionTokens(head.headers),
    framing: { kind: 'none' },
    route: { ...route, headers: { set: {}, remove: [] } },
    path: '/ws',
    authority: undefined,
    upgrade: 'websocket',
    forwarding: { ...forwarding, host: 'a' },
  });
  t.true(text.endsWith('Connection: upgrade\r\nUpgrade: websocket\r\n\r\n'));
  t.is(text.match(/Upgrade: websocket/g)?.length, 1);
});

function response(status: number, headers: ResponseHead['headers']): ResponseHead {
  return { versionMinor: 1, status, reason: status === 200 ? 'OK' : 'Not Modified', headers };
}

const cases: Array<{
  title: string;
  head: ResponseHead;
  framing: BodyFraming;
  method?: string;
  clientMinor: 0 | 1;
  keepAlive: boolean;
  expected: string;
}> = [
  {
    title: 'a sized body keeps its length and gains Via',
    head: response(200, [
      field('Content-Type', 'text/html'),
      field('Content-Length', '5'),
      field('Connection', 'keep-alive'),
    ]),
    framing: { kind: 'length', length: 5 },
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nVia: 1.1 sluice\r\nContent-Length: 5\r\n\r\n',
  },
  {
    title: 'a chunked body passes chunked to an HTTP/1.1 client',
    head: response(200, [field('Transfer-Encoding', 'chunked'), field('Via', '1.1 nginx')]),
    framing: { kind: 'chunked' },
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 200 OK\r\nVia: 1.1 nginx, 1.1 sluice\r\nTransfer-Encoding: chunked\r\n\r\n',
  },
  {
    title: 'a chunked body goes unframed to an HTTP/1.0 client, which is then closed',
    head: response(200, [field('Transfer-Encoding', 'chunked')]),
    framing: { kind: 'chunked' },
    clientMinor: 0,
    keepAlive: false,
    expected: 'HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nConnection: close\r\n\r\n',
  },
  {
    title: 'a close-delimited body is chunked for an HTTP/1.1 client',
    head: response(200, [field('Connection', 'close')]),
    framing: { kind: 'close' },
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nTransfer-Encoding: chunked\r\n\r\n',
  },
  {
    title: 'an HTTP/1.0 client that asked for keep-alive is told it is kept',
    head: response(200, [field('Content-Length', '0')]),
    framing: { kind: 'none' },
    clientMinor: 0,
    keepAlive: true,
    expected: 'HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n',
  },
  {
    title: 'an empty body is announced with Content-Length: 0',
    head: { versionMinor: 1, status: 201, reason: 'Created', headers: [field('Content-Length', '0')] },
    framing: { kind: 'none' },
    method: 'PUT',
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 201 Created\r\nVia: 1.1 sluice\r\nContent-Length: 0\r\n\r\n',
  },
  {
    title: 'a 204 carries no Content-Length',
    head: { versionMinor: 1, status: 204, reason: 'No Content', headers: [field('Content-Length', '0')] },
    framing: { kind: 'none' },
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 204 No Content\r\nVia: 1.1 sluice\r\n\r\n',
  },
  {
    title: 'HEAD keeps the Content-Length that describes the GET body',
    head: response(200, [field('Content-Length', '876')]),
    framing: { kind: 'none' },
    method: 'HEAD',
    clientMinor: 1,
    keepAlive: true,
    expected: 'HTTP/1.1 200 OK\r\nVia: 1.1 sluice\r\nContent-Length: 876\r\n\r\n',
  },
  {
    title: 'a 304 keeps its Content-Length and Sluice closes when told to',
    head: response(304, [field('ETag', '"x"'), field('Content-Length', '12')]),
    framing: { kind: 'none' },
    clientMinor: 1,
    keepAlive: false,
    expected:
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nVia: 1.1 sluice\r\nContent-Length: 12\r\nConnection: close\r\n\r\n',
  },
];

for (const item of cases) {
  test(`client response head: ${item.title}`, (t) => {
    const text = clientResponseHead({
      head: item.head,
      connectionTokens: connectionTokens(item.head.headers),
      framing: item.framing,
      mode: responseMode(item.framing, item.clientMinor),
      requestMethod: item.method ?? 'GET',
      keepAlive: item.keepAlive,
      clientMinor: item.clientMinor,
    });
    t.is(text, item.expected);
  });
}

test('a 101 answer keeps Upgrade and says Connection: upgrade', (t) => {
  const head: ResponseHead = {
    versionMinor: 1,
    status: 101,
    reason: 'Switching Protocols',
    headers: [
      field('Upgrade', 'websocket'),
      field('Connection', 'Upgrade'),
      field('Sec-WebSocket-Accept', 'abc'),
    ],
  };
  t.is(
    switchingProtocolsHead(head, connectionTokens(head.headers)),
    'HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\nVia: 1.1 sluice\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
});
