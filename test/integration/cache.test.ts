// The shared cache in front of real nginx containers: pages served with the backend stopped,
// stale pages revalidated with a 304 (seen in nginx's access log), coalesced misses, and the
// byte bound under a stream of distinct objects.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { parseExposition } from '../support/design-metrics.ts';
import { httpRequest, type Reply } from '../support/http.ts';
import {
  accessLog,
  defaultServerConf,
  HTML_ROOT,
  type NginxBackend,
  startNginxBackends,
  stopNginxBackends,
  UPLOAD_DIR,
} from '../support/nginx.ts';
import { startProxy } from '../support/sluice.ts';

const MAX_BYTES = 1024 * 1024;
const MAX_OBJECT = 64 * 1024;
/** 48 KiB sent at 48 KiB/s: a miss that takes about a second, long enough to pile up followers. */
const SLOW = randomBytes(48 * 1024);

let backends: NginxBackend[] = [];
let main: NginxBackend;
let doomed: NginxBackend;
let sluice: RunningSluice;
let port: number;
let adminPort: number;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// `expires` sets Expires and Cache-Control: max-age without replacing the server's add_header
// fields (an add_header in a location would); static files carry ETag and Last-Modified.
const locations = `
    location /hour/ { alias ${HTML_ROOT}/; expires 1h; }
    location /second/ { alias ${HTML_ROOT}/; expires 1s; }
    location /slow/ { alias ${HTML_ROOT}/slow/; expires 1h; limit_rate 48k; }
    location /objects/ { alias ${UPLOAD_DIR}/; expires 1h; }
`;

test.before(async () => {
  backends = await startNginxBackends(2, {
    serverConf: (name) => defaultServerConf(name, locations),
    files: () => [{ target: `${HTML_ROOT}/slow/file.bin`, content: SLOW }],
  });
  [main, doomed] = backends as [NginxBackend, NginxBackend];
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
cache: { maxBytes: ${MAX_BYTES}, maxObjectBytes: ${MAX_OBJECT} }
pools:
  web:
    servers:
      - address: ${main.address}
        name: ${main.name}
  doomed:
    servers:
      - address: ${doomed.address}
        name: ${doomed.name}
routes:
  - host: doomed.test
    pool: doomed
    cache: true
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
  await stopNginxBackends(backends);
});

function get(path: string, host = 'site.test'): Promise<Reply> {
  return httpRequest({ port, path, host, agent });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function cacheBytes(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const sample = parseExposition(text).samples.find((s) => s.name === 'sluice_cache_bytes');
  return sample?.value ?? Number.NaN;
}

test.serial('a stale page is revalidated: nginx answers the conditional GET with 304', async (t) => {
  const first = await get('/second/index.html');
  t.is(first.status, 200);
  t.is(first.headers['x-cache'], 'MISS');
  t.is(first.headers['cache-control'], 'max-age=1');
  t.truthy(first.headers.etag);
  await sleep(2100);
  const again = await get('/second/index.html');
  t.is(again.status, 200);
  t.is(again.headers['x-cache'], 'REVALIDATED');
  t.is(sha256(again.body), sha256(first.body));
  const log = await accessLog(main, { where: (e) => e.path === '/second/index.html', atLeast: 2 });
  t.deepEqual(
    log.map((e) => e.status),
    [200, 304],
  );
});

test.serial('50 concurrent misses reach nginx as one request', async (t) => {
  const replies = await Promise.all(Array.from({ length: 50 }, () => get('/slow/file.bin')));
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.is(sha256(reply.body), sha256(SLOW));
  }
  t.is(replies.filter((r) => r.headers['x-cache'] === 'MISS').length, 1);
  await sleep(300);
  const log = await accessLog(main, { where: (e) => e.path === '/slow/file.bin', atLeast: 1 });
  t.is(log.length, 1);
});

test.serial('the byte bound holds under a stream of 200 distinct objects', async (t) => {
  const objects = Array.from({ length: 200 }, (_, i) => randomBytes(8 * 1024 + ((i * 997) % (24 * 1024))));
  // Uploaded straight to nginx (WebDAV), then fetched through Sluice.
  await Promise.all(
    objects.map(async (body, i) => {
      const response = await fetch(main.url(`/upload/object-${i}.bin`), { method: 'PUT', body });
      t.true(response.status === 201 || response.status === 204);
    }),
  );
  let peak = 0;
  for (const [i, body] of objects.entries()) {
    const reply = await get(`/objects/object-${i}.bin`);
    t.is(reply.status, 200);
    t.is(reply.headers['x-cache'], 'MISS');
    t.is(sha256(reply.body), sha256(body));
    const bytes = await cacheBytes();
    t.true(bytes <= MAX_BYTES, `sluice_cache_bytes ${bytes} after object ${i}`);
    peak = Math.max(peak, bytes);
  }
  // The cache filled up to its bound (the 200 objects hold about 4 MB), then evicted.
  t.true(peak > MAX_BYTES * 0.9, `peak ${peak}`);
  t.true(sluice.cache.store.count < 200);
  // The most recent objects are still there; the first ones were evicted (LRU).
  t.is((await get('/objects/object-199.bin')).headers['x-cache'], 'HIT');
  t.is((await get('/objects/object-0.bin')).headers['x-cache'], 'MISS');
});

test.serial(
  'cached pages are served with nginx stopped: fresh ones as HIT, stale ones as STALE',
  async (t) => {
    const fresh = await get('/hour/index.html', 'doomed.test');
    const short = await get('/second/style.css', 'doomed.test');
    t.is(fresh.headers['x-cache'], 'MISS');
    t.is(fresh.headers['x-backend'], doomed.name);
    t.is(short.headers['x-cache'], 'MISS');
    await doomed.stop();
    const hit = await get('/hour/index.html', 'doomed.test');
    t.is(hit.status, 200);
    t.is(hit.headers['x-cache'], 'HIT');
    t.is(hit.headers['x-backend'], doomed.name);
    t.is(sha256(hit.body), sha256(fresh.body));
    await sleep(2100);
    // Stale, the backend gone: served stale (cache.staleIfError, 1 hour by default).
    const stale = await get('/second/style.css', 'doomed.test');
    t.is(stale.status, 200);
    t.is(stale.headers['x-cache'], 'STALE');
    t.is(stale.headers.warning, '110 - "Response is Stale"');
    t.is(sha256(stale.body), sha256(short.body));
    const never = await get('/hour/1k.txt', 'doomed.test');
    t.is(never.status, 502);
  },
);
