// The shared cache end to end: an in-process Sluice with `cache: true` in front of node:http
// backends that count what reaches them. Every test uses its own paths, so they run concurrently.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { type RunningSluice, startSluice } from '../../src/sluice.ts';
import { httpRequest, type Reply } from '../support/http.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** What the backend saw: every request per path, with its method and headers. */
const seen = new Map<string, { method: string; headers: http.IncomingHttpHeaders }[]>();
const handlers = new Map<string, Handler>();
let backend: NodeBackend;
let sluice: RunningSluice;
let port: number;
let adminPort: number;
const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });

const MAX_OBJECT = 64 * 1024;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    const list = seen.get(path) ?? [];
    list.push({ method: request.method ?? '', headers: request.headers });
    seen.set(path, list);
    const handler = handlers.get(path);
    if (handler) handler(request, response);
    else {
      response.statusCode = 404;
      response.end('no handler');
    }
  });
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
cache: { maxBytes: 4MiB, maxObjectBytes: ${MAX_OBJECT}, staleIfError: 0s, lockTimeout: 5s }
pools:
  web:
    servers: [127.0.0.1:${backend.port}]
routes:
  - host: nocache.test
    pool: web
  - host: rules.test
    pool: web
    cache: true
    headers:
      set: { Cache-Control: no-cache }
  - host: "*"
    pool: web
    cache: true
`);
  port = sluice.address.port;
  adminPort = sluice.adminAddress?.port ?? 0;
});

test.after.always(async () => {
  agent.destroy();
  await sluice?.stop();
  await backend?.close();
});

function request(
  path: string,
  options: {
    method?: string;
    host?: string;
    headers?: Record<string, string>;
    body?: string;
    port?: number;
  } = {},
): Promise<Reply> {
  return httpRequest({ ...options, port: options.port ?? port, path, agent });
}

const count = (path: string) => seen.get(path)?.length ?? 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A handler answering `body` with these headers. */
function serve(
  path: string,
  headers: Record<string, string>,
  body: string | Buffer = `body of ${path}`,
): void {
  handlers.set(path, (_request, response) => {
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    response.end(body);
  });
}

test('a MISS is stored; the next request is a HIT whose Age grows exactly with time', async (t) => {
  handlers.set('/age', (_request, response) => {
    // No Date: Sluice adds the time it received the response, so the age is the origin's 5 s
    // plus the time spent in the cache, to the second.
    response.sendDate = false;
    response.setHeader('cache-control', 'max-age=100');
    response.setHeader('age', '5');
    response.end('aged');
  });
  const first = await request('/age');
  t.is(first.headers['x-cache'], 'MISS');
  t.is(first.headers.age, '5');
  const hit = await request('/age');
  t.is(hit.status, 200);
  t.is(hit.headers['x-cache'], 'HIT');
  t.is(hit.headers.warning, undefined);
  t.is(hit.headers.age, '5');
  t.is(hit.body.toString(), 'aged');
  t.is(hit.headers['content-length'], '4');
  t.regex(String(hit.headers.via), /1\.1 sluice/);
  t.truthy(hit.headers.date);
  await sleep(1500);
  t.is((await request('/age')).headers.age, '6');
  await sleep(1000);
  t.is((await request('/age')).headers.age, '7');
  t.is(count('/age'), 1);
});

test('a route whose header rules add a directive: the cache reads the request as forwarded', async (t) => {
  serve('/rules', { 'cache-control': 'max-age=60', etag: '"r1"' });
  t.is((await request('/rules', { host: 'rules.test' })).headers['x-cache'], 'MISS');
  // Stored, but every request reaches the backend with no-cache, so each one is revalidated
  // (this backend answers 200 again: a MISS).
  const again = await request('/rules', { host: 'rules.test' });
  t.is(again.status, 200);
  t.is(again.headers['x-cache'], 'MISS');
  t.is(count('/rules'), 2);
  t.is(seen.get('/rules')?.[1]?.headers['if-none-match'], '"r1"');
  t.is(seen.get('/rules')?.[1]?.headers['cache-control'], 'no-cache');
});

test('no-store is never stored', async (t) => {
  serve('/no-store', { 'cache-control': 'no-store, max-age=60' });
  const replies = [await request('/no-store'), await request('/no-store')];
  t.deepEqual(
    replies.map((r) => r.headers['x-cache']),
    ['BYPASS', 'BYPASS'],
  );
  t.is(count('/no-store'), 2);
});

test('a request with no-store bypasses the cache', async (t) => {
  serve('/request-no-store', { 'cache-control': 'max-age=60' });
  const first = await request('/request-no-store', { headers: { 'cache-control': 'no-store' } });
  t.is(first.headers['x-cache'], 'BYPASS');
  t.is(
    (await request('/request-no-store', { headers: { 'cache-control': 'no-store' } })).headers['x-cache'],
    'BYPASS',
  );
  t.is(count('/request-no-store'), 2);
});

test('private is not stored by a shared cache', async (t) => {
  serve('/private', { 'cache-control': 'private, max-age=60' });
  await request('/private');
  const second = await request('/private');
  t.is(second.headers['x-cache'], 'BYPASS');
  t.is(count('/private'), 2);
});

test('Vary: Accept-Encoding keeps one variant per value', async (t) => {
  handlers.set('/vary', (request, response) => {
    response.setHeader('cache-control', 'max-age=60');
    response.setHeader('vary', 'Accept-Encoding');
    response.end(`encoding ${request.headers['accept-encoding'] ?? 'none'}`);
  });
  const gzip = { 'accept-encoding': 'gzip' };
  const br = { 'accept-encoding': 'br' };
  t.is((await request('/vary', { headers: gzip })).headers['x-cache'], 'MISS');
  t.is((await request('/vary', { headers: br })).headers['x-cache'], 'MISS');
  const gzipHit = await request('/vary', { headers: gzip });
  const brHit = await request('/vary', { headers: br });
  t.is(gzipHit.headers['x-cache'], 'HIT');
  t.is(gzipHit.body.toString(), 'encoding gzip');
  t.is(brHit.headers['x-cache'], 'HIT');
  t.is(brHit.body.toString(), 'encoding br');
  t.is(gzipHit.headers.vary, 'Accept-Encoding');
  t.is(count('/vary'), 2);
});

test('HEAD is answered from a stored GET: same Content-Length, no body', async (t) => {
  serve('/head', { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, 'ten bytes!');
  await request('/head');
  const raw = await rawExchange(port, 'HEAD /head HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
  t.regex(raw.text, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(raw.text, /\r\ncontent-length: 10\r\n/i);
  t.regex(raw.text, /\r\nx-cache: HIT\r\n/i);
  t.true(raw.text.endsWith('\r\n\r\n'), 'no body after the head');
  t.deepEqual(
    seen.get('/head')?.map((r) => r.method),
    ['GET'],
  );
});

test('a HEAD miss goes to the backend as a HEAD and is not stored', async (t) => {
  serve('/head-miss', { 'cache-control': 'max-age=60' }, 'body');
  const head = await request('/head-miss', { method: 'HEAD' });
  t.is(head.headers['x-cache'], 'BYPASS');
  t.is((await request('/head-miss')).headers['x-cache'], 'MISS');
  t.is((await request('/head-miss', { method: 'HEAD' })).headers['x-cache'], 'HIT');
  t.deepEqual(
    seen.get('/head-miss')?.map((r) => r.method),
    ['HEAD', 'GET'],
  );
});

test("the client's If-None-Match is answered 304 from the cache without the backend", async (t) => {
  serve('/etag', { 'cache-control': 'max-age=60', etag: '"v1"', 'content-type': 'text/plain' });
  await request('/etag');
  const notModified = await request('/etag', { headers: { 'if-none-match': '"v1"' } });
  t.is(notModified.status, 304);
  t.is(notModified.headers['x-cache'], 'HIT');
  t.is(notModified.headers.etag, '"v1"');
  t.is(notModified.body.length, 0);
  const other = await request('/etag', { headers: { 'if-none-match': '"v0"' } });
  t.is(other.status, 200);
  t.is(other.body.toString(), 'body of /etag');
  t.is(count('/etag'), 1);
});

test('a stale entry is revalidated with If-None-Match; the 304 updates its headers (REVALIDATED)', async (t) => {
  handlers.set('/reval', (request, response) => {
    if (request.headers['if-none-match'] === '"r1"') {
      response.writeHead(304, { 'cache-control': 'max-age=60', etag: '"r1"', 'x-version': 'b' });
      response.end();
      return;
    }
    response.writeHead(200, { 'cache-control': 'max-age=1', etag: '"r1"', 'x-version': 'a' });
    response.end('revalidated body');
  });
  const first = await request('/reval');
  t.is(first.headers['x-version'], 'a');
  await sleep(2100);
  const revalidated = await request('/reval');
  t.is(revalidated.status, 200);
  t.is(revalidated.headers['x-cache'], 'REVALIDATED');
  t.is(revalidated.headers['x-version'], 'b');
  t.is(revalidated.headers['cache-control'], 'max-age=60');
  t.is(revalidated.body.toString(), 'revalidated body');
  const hit = await request('/reval');
  t.is(hit.headers['x-cache'], 'HIT');
  t.is(hit.headers['x-version'], 'b');
  const sent = seen.get('/reval') ?? [];
  t.is(sent.length, 2);
  t.is(sent[1]?.headers['if-none-match'], '"r1"');
});

test('a client conditional on a stale entry: revalidated, then answered 304 from the freshened entry', async (t) => {
  handlers.set('/reval-304', (request, response) => {
    if (request.headers['if-none-match'] === '"c1"') {
      response.writeHead(304, { 'cache-control': 'max-age=60', etag: '"c1"' });
      response.end();
      return;
    }
    response.writeHead(200, { 'cache-control': 'max-age=1', etag: '"c1"' });
    response.end('c');
  });
  await request('/reval-304');
  await sleep(2100);
  const reply = await request('/reval-304', { headers: { 'if-none-match': '"c1"' } });
  t.is(reply.status, 304);
  t.is(reply.headers['x-cache'], 'REVALIDATED');
  t.is(count('/reval-304'), 2);
});

test('a 304 naming another representation is followed by an unconditional request', async (t) => {
  let version = 1;
  handlers.set('/reval-other', (request, response) => {
    if (request.headers['if-none-match'] !== undefined) {
      response.writeHead(304, { etag: '"other"' });
      response.end();
      return;
    }
    response.writeHead(200, { 'cache-control': 'max-age=1', etag: `"v${version}"` });
    response.end(`version ${version++}`);
  });
  t.is((await request('/reval-other')).body.toString(), 'version 1');
  await sleep(2100);
  const reply = await request('/reval-other');
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'version 2');
  t.is(reply.headers['x-cache'], 'MISS');
  t.deepEqual(
    seen.get('/reval-other')?.map((r) => r.headers['if-none-match'] ?? null),
    [null, '"v1"', null],
  );
});

test('only-if-cached on a miss is a 504 without asking the backend', async (t) => {
  const reply = await request('/only-if-cached', { headers: { 'cache-control': 'only-if-cached' } });
  t.is(reply.status, 504);
  t.is(reply.headers['x-cache'], 'MISS');
  t.is(count('/only-if-cached'), 0);
  serve('/only-if-cached-hit', { 'cache-control': 'max-age=60' });
  await request('/only-if-cached-hit');
  const hit = await request('/only-if-cached-hit', { headers: { 'cache-control': 'only-if-cached' } });
  t.is(hit.status, 200);
  t.is(hit.headers['x-cache'], 'HIT');
});

test('request max-age=0 and no-cache revalidate; max-stale accepts a stale entry', async (t) => {
  let n = 0;
  handlers.set('/directives', (request, response) => {
    n++;
    if (request.headers['if-none-match'] === '"d"') {
      response.writeHead(304, { etag: '"d"', 'cache-control': 'max-age=1' });
      response.end();
      return;
    }
    response.writeHead(200, { etag: '"d"', 'cache-control': 'max-age=1' });
    response.end('d');
  });
  await request('/directives');
  t.is(
    (await request('/directives', { headers: { 'cache-control': 'no-cache' } })).headers['x-cache'],
    'REVALIDATED',
  );
  t.is(
    (await request('/directives', { headers: { 'cache-control': 'max-age=0' } })).headers['x-cache'],
    'REVALIDATED',
  );
  t.is(n, 3);
  await sleep(2100);
  const stale = await request('/directives', { headers: { 'cache-control': 'max-stale=60' } });
  t.is(stale.headers['x-cache'], 'STALE');
  t.is(stale.headers.warning, '110 - "Response is Stale"');
  t.is(n, 3);
  const fresh = await request('/directives', { headers: { 'cache-control': 'min-fresh=30' } });
  t.is(fresh.headers['x-cache'], 'REVALIDATED');
  t.is(n, 4);
});

test('POST, PUT, DELETE and PATCH invalidate the target URI and a same-origin Location', async (t) => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const path = `/invalidate-${method.toLowerCase()}`;
    handlers.set(path, (request, response) => {
      if (request.method === 'GET') {
        response.setHeader('cache-control', 'max-age=60');
        response.end(`get ${count(path)}`);
      } else {
        request.resume();
        request.on('end', () => response.end('changed'));
      }
    });
    await request(path);
    t.is((await request(path)).headers['x-cache'], 'HIT');
    const change = await request(path, { method, body: 'x' });
    t.is(change.headers['x-cache'], 'BYPASS');
    t.is((await request(path)).headers['x-cache'], 'MISS', method);
  }
  serve('/created', { 'cache-control': 'max-age=60' });
  handlers.set('/collection', (request, response) => {
    request.resume();
    response.writeHead(201, { location: 'http://site.test/created' });
    response.end();
  });
  await request('/created');
  t.is((await request('/created')).headers['x-cache'], 'HIT');
  await request('/collection', { method: 'POST', body: 'new' });
  t.is((await request('/created')).headers['x-cache'], 'MISS');
});

test('an unsafe request that fails invalidates nothing', async (t) => {
  handlers.set('/invalidate-error', (request, response) => {
    if (request.method === 'GET') {
      response.setHeader('cache-control', 'max-age=60');
      response.end('kept');
    } else {
      request.resume();
      response.statusCode = 500;
      response.end('failed');
    }
  });
  await request('/invalidate-error');
  await request('/invalidate-error', { method: 'POST', body: 'x' });
  t.is((await request('/invalidate-error')).headers['x-cache'], 'HIT');
});

test('stale-if-error: a stale entry answers when the backend fails with a 5xx', async (t) => {
  let fail = false;
  handlers.set('/stale-if-error', (_request, response) => {
    if (fail) {
      response.statusCode = 503;
      response.end('down');
      return;
    }
    response.setHeader('cache-control', 'max-age=1, stale-if-error=60');
    response.end('good');
  });
  await request('/stale-if-error');
  fail = true;
  await sleep(2100);
  const reply = await request('/stale-if-error');
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'good');
  t.is(reply.headers['x-cache'], 'STALE');
  t.is(reply.headers.warning, '110 - "Response is Stale"');
  t.is(count('/stale-if-error'), 2);
});

test('without stale-if-error (and cache.staleIfError 0) the backend error is passed on', async (t) => {
  let fail = false;
  handlers.set('/no-stale-if-error', (_request, response) => {
    response.statusCode = fail ? 503 : 200;
    response.setHeader('cache-control', 'max-age=1');
    response.end(fail ? 'down' : 'good');
  });
  await request('/no-stale-if-error');
  fail = true;
  await sleep(2100);
  const reply = await request('/no-stale-if-error');
  t.is(reply.status, 503);
  t.is(reply.body.toString(), 'down');
});

test('stale-while-revalidate: stale answers at once and the backend sees one background revalidation', async (t) => {
  handlers.set('/swr', (request, response) => {
    if (request.headers['if-none-match'] === '"s1"') {
      // A slow revalidation: clients must not wait for it.
      setTimeout(() => {
        response.writeHead(304, { etag: '"s1"', 'cache-control': 'max-age=60', 'x-refreshed': 'yes' });
        response.end();
      }, 400);
      return;
    }
    response.writeHead(200, { etag: '"s1"', 'cache-control': 'max-age=1, stale-while-revalidate=60' });
    response.end('swr body');
  });
  await request('/swr');
  await sleep(2100);
  const started = performance.now();
  const replies = await Promise.all(Array.from({ length: 10 }, () => request('/swr')));
  const elapsed = performance.now() - started;
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.is(reply.headers['x-cache'], 'STALE');
    t.is(reply.body.toString(), 'swr body');
  }
  t.true(elapsed < 300, `stale answers took ${elapsed.toFixed(0)} ms`);
  await sleep(700);
  const hit = await request('/swr');
  t.is(hit.headers['x-cache'], 'HIT');
  t.is(hit.headers['x-refreshed'], 'yes');
  const sent = seen.get('/swr') ?? [];
  t.is(sent.length, 2);
  t.is(sent[1]?.headers['if-none-match'], '"s1"');
});

test('50 concurrent misses for one URL send exactly one request to the backend', async (t) => {
  handlers.set('/coalesce', (_request, response) => {
    setTimeout(() => {
      response.setHeader('cache-control', 'max-age=60');
      response.end('coalesced');
    }, 200);
  });
  const replies = await Promise.all(Array.from({ length: 50 }, () => request('/coalesce')));
  t.is(count('/coalesce'), 1);
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.is(reply.body.toString(), 'coalesced');
  }
  const labels = replies.map((r) => r.headers['x-cache']);
  t.is(labels.filter((l) => l === 'MISS').length, 1);
  t.is(labels.filter((l) => l === 'HIT').length, 49);
});

test('coalesced followers of an uncacheable answer go to the backend themselves', async (t) => {
  handlers.set('/coalesce-private', (_request, response) => {
    setTimeout(() => {
      response.setHeader('cache-control', 'private');
      response.end('mine');
    }, 100);
  });
  const replies = await Promise.all(Array.from({ length: 5 }, () => request('/coalesce-private')));
  t.is(count('/coalesce-private'), 5);
  for (const reply of replies) t.is(reply.body.toString(), 'mine');
});

test('an object over maxObjectBytes passes through uncached and intact (length and chunked)', async (t) => {
  const big = randomBytes(MAX_OBJECT * 3);
  serve('/big', { 'cache-control': 'max-age=60' }, big);
  handlers.set('/big-chunked', (_request, response) => {
    response.setHeader('cache-control', 'max-age=60');
    for (let i = 0; i < big.length; i += 16 * 1024) response.write(big.subarray(i, i + 16 * 1024));
    response.end();
  });
  for (const path of ['/big', '/big-chunked']) {
    const first = await request(path);
    const second = await request(path);
    t.is(sha256(first.body), sha256(big), path);
    t.is(sha256(second.body), sha256(big), path);
    t.not(second.headers['x-cache'], 'HIT', path);
    t.is(count(path), 2, path);
  }
  t.is((await request('/big')).headers['x-cache'], 'BYPASS');
});

test('a chunked response under the limit is stored decoded and served with a Content-Length', async (t) => {
  const body = randomBytes(20_000);
  handlers.set('/chunked-small', (_request, response) => {
    response.setHeader('cache-control', 'max-age=60');
    response.write(body.subarray(0, 7000));
    setTimeout(() => response.end(body.subarray(7000)), 20);
  });
  const first = await request('/chunked-small');
  t.is(first.headers['transfer-encoding'], 'chunked');
  const hit = await request('/chunked-small');
  t.is(hit.headers['x-cache'], 'HIT');
  t.is(hit.headers['content-length'], String(body.length));
  t.is(sha256(hit.body), sha256(body));
});

test('purge by URL and by prefix on the admin port', async (t) => {
  for (const path of ['/purge/a', '/purge/b', '/purge-other']) serve(path, { 'cache-control': 'max-age=60' });
  for (const path of ['/purge/a', '/purge/b', '/purge-other']) await request(path);
  const admin = (query: string, method = 'POST') =>
    request(`/cache/purge?${query}`, { method, port: adminPort, host: '127.0.0.1' });
  const one = await admin(`url=${encodeURIComponent('http://site.test/purge/a')}`);
  t.is(one.status, 200);
  t.deepEqual(JSON.parse(one.body.toString()), { purged: 1 });
  t.is((await request('/purge/a')).headers['x-cache'], 'MISS');
  t.is((await request('/purge/b')).headers['x-cache'], 'HIT');
  const prefix = await admin(`prefix=${encodeURIComponent('http://site.test/purge/')}`);
  t.deepEqual(JSON.parse(prefix.body.toString()), { purged: 2 });
  t.is((await request('/purge/a')).headers['x-cache'], 'MISS');
  t.is((await request('/purge/b')).headers['x-cache'], 'MISS');
  t.is((await request('/purge-other')).headers['x-cache'], 'HIT');
  t.deepEqual(JSON.parse((await admin('url=http://site.test/never-stored')).body.toString()), { purged: 0 });
  t.is((await admin('url=http://site.test/purge/a', 'GET')).status, 405);
  t.is((await admin('')).status, 400);
  t.is((await admin('url=/relative')).status, 400);
  t.is((await admin('url=http://a/&prefix=http://a/')).status, 400);
  const unknown = await admin(`url=${encodeURIComponent('http://site.test/purge/a')}&pool=nope`);
  t.is(unknown.status, 404, 'a pool that does not exist is named, not an empty purge');
  t.deepEqual(JSON.parse(unknown.body.toString()), { error: 'no pool "nope"' });
});

test('X-Cache on every response of a cache route, none on other routes', async (t) => {
  serve('/labels', { 'cache-control': 'max-age=60' });
  t.is((await request('/labels', { host: 'nocache.test' })).headers['x-cache'], undefined);
  t.is((await request('/labels', { host: 'nocache.test' })).headers['x-cache'], undefined);
  const missing = await request('/labels-missing');
  t.is(missing.status, 404);
  t.is(missing.headers['x-cache'], 'BYPASS');
  t.is((await request('/labels', { method: 'POST', body: 'x' })).headers['x-cache'], 'BYPASS');
});

test('pipelined requests answered from the cache come back in order on one connection', async (t) => {
  serve('/pipelined-1', { 'cache-control': 'max-age=60' }, 'one');
  serve('/pipelined-2', { 'cache-control': 'max-age=60' }, 'two');
  await request('/pipelined-1');
  await request('/pipelined-2');
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: site.test\r\n\r\n`;
  const raw = await rawExchange(port, get('/pipelined-1') + get('/pipelined-2') + get('/pipelined-1'), {
    idleMs: 300,
  });
  t.deepEqual(statuses(raw.text), [200, 200, 200]);
  t.deepEqual(
    [...raw.text.matchAll(/\r\n\r\n(one|two)/g)].map((m) => m[1]),
    ['one', 'two', 'one'],
  );
});

test('an HTTP/1.0 client gets a cached answer with a length, kept alive only when asked', async (t) => {
  serve('/http10', { 'cache-control': 'max-age=60' }, 'old');
  await request('/http10');
  const raw = await rawExchange(port, 'GET /http10 HTTP/1.0\r\nHost: site.test\r\n\r\n');
  t.regex(raw.text, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(raw.text, /\r\nconnection: close\r\n/i);
  t.true(raw.text.endsWith('\r\n\r\nold'));
  t.true(raw.closed);
});

// Serial: the other tests of this file fill the same cache, and the byte count must hold still
// between the scrape and the comparison.
test.serial('sluice_cache_* metrics count results and bytes held', async (t) => {
  serve('/metrics-probe', { 'cache-control': 'max-age=60' });
  await request('/metrics-probe');
  await request('/metrics-probe');
  const text = (await request('/metrics', { port: adminPort, host: '127.0.0.1' })).body.toString();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  t.true(value(/^sluice_cache_requests_total\{result="hit"\} (\d+)/m) >= 1);
  t.true(value(/^sluice_cache_requests_total\{result="miss"\} (\d+)/m) >= 1);
  const bytes = value(/^sluice_cache_bytes (\d+)/m);
  t.true(bytes > 0);
  t.is(bytes, sluice.cache.bytes);
  t.true(bytes <= 4 * 1024 * 1024);
});

test('stale content is served when every backend is down (cache.staleIfError)', async (t) => {
  const fragile = await startNodeBackend((_request, response) => {
    response.setHeader('cache-control', 'max-age=1');
    response.end('from before the outage');
  });
  const proxy = await startProxy(`listen: 127.0.0.1:0
admin: false
accessLog: false
retries: { attempts: 2 }
pools:
  web:
    servers: [127.0.0.1:${fragile.port}]
routes:
  - host: "*"
    pool: web
    cache: true
`);
  try {
    const first = await request('/outage', { port: proxy.address.port });
    t.is(first.headers['x-cache'], 'MISS');
    await fragile.close();
    await sleep(2100);
    const reply = await request('/outage', { port: proxy.address.port });
    t.is(reply.status, 200);
    t.is(reply.headers['x-cache'], 'STALE');
    t.is(reply.body.toString(), 'from before the outage');
    const miss = await request('/never-cached', { port: proxy.address.port });
    t.is(miss.status, 502);
    t.is(miss.headers['x-cache'], 'MISS');
  } finally {
    await proxy.stop();
    await fragile.close();
  }
});

test('a stale copy under must-revalidate with every backend down: 504, logged and counted as the 502 of a miss', async (t) => {
  const fragile = await startNodeBackend((request, response) => {
    const mustRevalidate = request.url === '/must-revalidate';
    response.setHeader('cache-control', mustRevalidate ? 'max-age=1, must-revalidate' : 'max-age=1');
    response.end('from before the outage');
  });
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-cache-')), 'access.log');
  const config = parseConfig(
    `listen: 127.0.0.1:0
admin: false
accessLog: { to: ${file}, flush: 1h }
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers:
      - address: 127.0.0.1:${fragile.port}
        name: b1
routes:
  - host: "*"
    pool: web
    cache: true
`,
    'test',
  );
  const proxy = await startSluice(config, createLogger('error', true));
  const get = (path: string) =>
    rawExchange(proxy.address.port, `GET ${path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`);
  try {
    t.regex((await get('/must-revalidate')).text, /^HTTP\/1\.1 200 [\s\S]*\r\nX-Cache: MISS\r\n/);
    t.regex((await get('/may-go-stale')).text, /^HTTP\/1\.1 200 [\s\S]*\r\nX-Cache: MISS\r\n/);
    await fragile.close();
    await sleep(2100);
    const mustRevalidate = await get('/must-revalidate');
    const body = 'stored copy must be revalidated: backend failed\n';
    t.is(
      mustRevalidate.text,
      'HTTP/1.1 504 Gateway Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n' +
        `content-length: ${body.length}\r\nx-cache: MISS\r\nconnection: close\r\n\r\n${body}`,
    );
    // Without must-revalidate, cache.staleIfError (1 h by default) lets the copy answer.
    const mayGoStale = await get('/may-go-stale');
    t.regex(
      mayGoStale.text,
      /^HTTP\/1\.1 200 [\s\S]*\r\nX-Cache: STALE\r\n[\s\S]*\r\n\r\nfrom before the outage$/,
    );
    const miss = await get('/never-cached');
    t.is(
      miss.text,
      'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n' +
        'content-length: 15\r\nx-cache: MISS\r\nconnection: close\r\n\r\nbackend failed\n',
    );
    const metrics = (await proxy.metrics.render()).body;
    t.regex(metrics, /^sluice_http_requests_total\{pool="web",backend="b1",method="GET",code="504"\} 1$/m);
    t.regex(metrics, /^sluice_http_requests_total\{pool="web",backend="b1",method="GET",code="502"\} 1$/m);
  } finally {
    await proxy.stop();
    await fragile.close();
  }
  // The 504 is logged as the 502 of the miss is: the same fields, its own status and path.
  const lines = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const generated = lines.filter((line) => line.status === 504 || line.status === 502);
  const comparable = ({
    timestamp,
    requestId,
    clientPort,
    durationMs,
    upstreamMs,
    bytesOut,
    ...rest
  }: Record<string, unknown>) => rest;
  t.deepEqual(generated.map(comparable), [
    { ...comparable(generated[1] ?? {}), status: 504, path: '/must-revalidate' },
    { ...comparable(generated[0] ?? {}), status: 502, path: '/never-cached' },
  ]);
  t.like(generated[0], { status: 504, cache: 'miss', error: 'refused', backend: 'b1', type: 'access' });
});

test('a client that reads slowly gets every pipelined cached answer whole (backpressure)', async (t) => {
  const body = randomBytes(60 * 1024);
  serve('/slow-reader', { 'cache-control': 'max-age=60' }, body);
  await request('/slow-reader');
  const socket = await openSocket(port);
  socket.pause();
  const n = 200;
  socket.write('GET /slow-reader HTTP/1.1\r\nHost: site.test\r\n\r\n'.repeat(n));
  await sleep(300);
  const chunks: Buffer[] = [];
  let size = 0;
  const expected = n * body.length;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${size} bytes`)), 10_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= expected + n * 100) {
        const text = Buffer.concat(chunks).toString('latin1');
        if (statuses(text).length === n && text.endsWith(body.toString('latin1'))) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    socket.resume();
  });
  socket.destroy();
  const all = Buffer.concat(chunks);
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const headEnd = all.indexOf('\r\n\r\n', offset) + 4;
    t.regex(all.toString('latin1', offset, headEnd), /X-Cache: HIT/);
    t.is(sha256(all.subarray(headEnd, headEnd + body.length)), sha256(body));
    offset = headEnd + body.length;
  }
  t.is(offset, all.length);
});
