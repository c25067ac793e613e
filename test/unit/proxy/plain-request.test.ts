// The plain lane for request heads (src/proxy/plain-request.ts) against the full path
// (forwardedFields, then one line per field): for every request, random and mutated, the head
// the backend gets is byte for byte what the full path writes, whether the lane took it or not;
// and the lane takes the usual requests. FUZZ_SEED=<seed> reproduces a failure.
import test from 'ava';
import type { RouteConfig } from '../../../src/config/types.ts';
import { requestFraming } from '../../../src/http/framing.ts';
import { connectionTokens } from '../../../src/http/hop-by-hop.ts';
import { HttpError } from '../../../src/http/message.ts';
import { parseRequestHead } from '../../../src/http/parser.ts';
import type { ForwardingContext } from '../../../src/proxy/forwarding.ts';
import { forwardedFields, serializeUpstreamHead, upstreamRequestHead } from '../../../src/proxy/heads.ts';
import { plainForwardedLines } from '../../../src/proxy/plain-request.ts';
import type { UpstreamRequest } from '../../../src/proxy/upstream-request.ts';
import { seeded } from '../../support/seeded.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

const route = (headers: RouteConfig['headers']): RouteConfig => ({
  host: '*',
  path: '/',
  stripPrefix: false,
  pool: 'web',
  headers,
  cache: false,
});
const plainRoute = route({ set: {}, remove: [] });
const routes = [plainRoute, plainRoute, plainRoute, route({ set: { 'X-Env': 'prod' }, remove: [] })];

function pick<T>(random: () => number, from: readonly T[]): T {
  return from[Math.floor(random() * from.length)] as T;
}

// Ordinary fields, and every kind the lane must leave out or leave to the full path.
const ordinary = [
  'User-Agent',
  'Accept',
  'accept-encoding',
  'Cookie',
  'X-App',
  'Content-Type',
  'If-None-Match',
];
const special = [
  'Connection',
  'Keep-Alive',
  'TE',
  'Upgrade',
  'Proxy-Connection',
  'Content-Length',
  'Transfer-Encoding',
  'X_App',
  'X_Forwarded_For',
  'X-Forwarded-For',
  'x-forwarded-for',
  'Forwarded',
  'X-Forwarded-Proto',
  'X-Real-IP',
  'True-Client-IP',
  'X-Forwarded-Port',
  'Via',
  'X-Request-Id',
  'Host',
  'HOST',
];
const values = [
  'v',
  'a b',
  'gzip, br',
  '"q"',
  '\xe9\xff',
  'keep-alive',
  'close, X-App',
  'host',
  '127.0.0.1',
  '0',
  '42',
  'chunked',
];
const spacing: readonly [string, string][] = [
  [' ', ''],
  [' ', ''],
  [' ', ''],
  ['', ''],
  ['  ', ''],
  ['\t', ''],
  [' ', ' '],
  [' ', '\t'],
];
const contexts = ['127.0.0.1', '10.0.0.7', '::1'];

interface Drawn {
  raw: string;
  request: UpstreamRequest;
}

/** A request as the client might send it, parsed and admitted as admission.ts would. */
function draw(random: () => number, plainOnly: boolean): Drawn | undefined {
  const host = pick(random, ['app.test', 'app.test:8080', '127.0.0.1:19180']);
  const lines: string[] = [];
  const hostLine = `${pick(random, plainOnly ? ['Host'] : ['Host', 'host', 'HOST'])}: ${host}`;
  const count = Math.floor(random() * 8);
  for (let i = 0; i < count; i++) {
    const special_ = !plainOnly && random() < 0.3;
    const name = special_ ? pick(random, special) : pick(random, ordinary);
    const [before, after] = plainOnly ? [' ', ''] : pick(random, spacing);
    const value = name === 'Host' || name === 'HOST' ? host : pick(random, values);
    lines.push(`${name}:${before}${value}${after}`);
  }
  if (plainOnly && random() < 0.5) lines.push('Connection: keep-alive');
  const minor = random() < 0.9 ? 1 : 0;
  // HTTP/1.0 has no Transfer-Encoding (a request with one gets 400).
  const bodies = minor === 1 ? ['Content-Length: 42', 'Transfer-Encoding: chunked'] : ['Content-Length: 42'];
  if (plainOnly && random() < 0.4) lines.push(pick(random, bodies));
  const hostAt = plainOnly || random() < 0.8 ? 0 : Math.floor(random() * (lines.length + 1));
  if (plainOnly || random() < 0.95) lines.splice(hostAt, 0, hostLine);
  const absolute = !plainOnly && random() < 0.1;
  const target = absolute ? `http://${pick(random, ['app.test', 'other.test:81'])}/p?q` : '/p?q';
  const raw = `GET ${target} HTTP/1.${minor}\r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`;
  let head: ReturnType<typeof parseRequestHead>;
  try {
    head = parseRequestHead(Buffer.from(raw, 'latin1'));
  } catch (error) {
    if (error instanceof HttpError) return undefined;
    throw error;
  }
  if (head === null) throw new Error(`incomplete: ${JSON.stringify(raw)}`);
  let framing: ReturnType<typeof requestFraming>;
  try {
    framing = requestFraming(head.head);
  } catch {
    return undefined;
  }
  const fieldHost = head.head.headers.find((field) => field.lower === 'host')?.value;
  const authority = absolute ? (target.split('/')[2] as string) : (fieldHost ?? 'local.test:8080');
  const forwarding: ForwardingContext = {
    clientAddress: pick(random, contexts),
    trusted: random() < 0.3,
    host: authority,
    requestId: `id-${Math.floor(random() * 1000)}`,
    port: pick(random, [8080, 19180, undefined]),
    prefix: pick(random, [undefined, undefined, '/v1']),
    via: pick(random, ['1.1 sluice-a', '1.1 sluice-b', undefined]),
    underscores: random() < 0.3,
  };
  const request: UpstreamRequest = {
    head: head.head,
    connectionTokens: connectionTokens(head.head.headers),
    framing,
    route: plainOnly ? plainRoute : pick(random, routes),
    path: '/p?q',
    authority,
    upgrade: !plainOnly && random() < 0.05 ? 'websocket' : undefined,
    forwarding,
  };
  return { raw, request };
}

const fullPath = (request: UpstreamRequest) =>
  serializeUpstreamHead(request.head.method, forwardedFields(request), request);

test('any request: the backend gets the full path’s head byte for byte, lane or not', (t) => {
  const random = seeded(seed);
  let taken = 0;
  let declined = 0;
  for (let round = 0; round < 20000; round++) {
    const drawn = draw(random, false);
    if (drawn === undefined) continue;
    const { raw, request } = drawn;
    if (plainForwardedLines(request) === undefined) declined++;
    else taken++;
    t.is(upstreamRequestHead(request), fullPath(request), `seed ${seed}: ${JSON.stringify(raw)}`);
  }
  t.true(taken > 2000 && declined > 2000, `lane took ${taken}, declined ${declined}: the draw missed a side`);
});

test('the usual request, with a body or not, Connection: keep-alive or not: the lane takes it', (t) => {
  const random = seeded(seed + 1);
  let framed = 0;
  for (let round = 0; round < 3000; round++) {
    const drawn = draw(random, true);
    if (drawn === undefined) {
      t.fail(`seed ${seed}: a plain request failed to parse`);
      continue;
    }
    const lines = plainForwardedLines(drawn.request);
    t.not(lines, undefined, `seed ${seed}: ${JSON.stringify(drawn.raw)}`);
    t.is(upstreamRequestHead(drawn.request), fullPath(drawn.request));
    if (drawn.request.framing.kind !== 'none') framed++;
  }
  t.true(framed > 600, `only ${framed} requests had a body: framing went untested`);
});

/** What admission makes of `raw` on a route without rules: no body, no Upgrade, Host the authority. */
function admitted(raw: string, path: string, forwarding: ForwardingContext): UpstreamRequest {
  const parsed = parseRequestHead(Buffer.from(raw, 'latin1'));
  if (parsed === null) throw new Error(`incomplete: ${JSON.stringify(raw)}`);
  return {
    head: parsed.head,
    connectionTokens: connectionTokens(parsed.head.headers),
    framing: { kind: 'none' },
    route: plainRoute,
    path,
    authority: forwarding.host,
    upgrade: undefined,
    forwarding,
  };
}

test('wrk’s request gets the exact head, the client’s lines first and X-Request-Id last', (t) => {
  const request = admitted(
    'GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n',
    '/1k.txt',
    {
      clientAddress: '10.1.2.3',
      trusted: false,
      host: '127.0.0.1:8080',
      requestId: 'abc',
      port: 8080,
      via: '1.1 sluice-x',
    },
  );
  t.is(
    upstreamRequestHead(request),
    'GET /1k.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nX-Forwarded-For: 10.1.2.3\r\n' +
      'X-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:8080\r\n' +
      'Forwarded: for=10.1.2.3;host="127.0.0.1:8080";proto=http\r\nX-Real-IP: 10.1.2.3\r\n' +
      'X-Forwarded-Port: 8080\r\nVia: 1.1 sluice-x\r\nX-Request-Id: abc\r\n\r\n',
  );
  t.not(plainForwardedLines(request), undefined);
  // Fields a cache or a rule rebuilt are not the received lines any more: the full path writes them.
  const rebuilt = { ...request, head: { ...request.head, headers: [...request.head.headers] } };
  t.is(plainForwardedLines(rebuilt), undefined);
  t.is(upstreamRequestHead(rebuilt), upstreamRequestHead(request));
});

test('a Host the Connection field names is dropped by the full path, which writes its own: no lane', (t) => {
  const request = admitted('GET / HTTP/1.1\r\nHOST: app.test\r\nConnection: host\r\n\r\n', '/', {
    clientAddress: '10.1.2.3',
    trusted: false,
    host: 'app.test',
    requestId: 'abc',
  });
  t.is(plainForwardedLines(request), undefined);
  t.true(
    upstreamRequestHead(request).startsWith(
      'GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 10.1.2.3\r\n',
    ),
  );
});
