// Sluice in front of three real nginx containers serving the demo site.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { httpRequest, type Reply } from '../support/http.ts';
import {
  accessLog,
  type NginxBackend,
  startNginxBackend,
  startNginxBackends,
  stopNginxBackends,
} from '../support/nginx.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

let backends: NginxBackend[] = [];
let sluice: RunningSluice;
let port: number;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function servers(list: readonly NginxBackend[]): string {
  return list
    .map((backend) => `      - address: ${backend.address}\n        name: ${backend.name}`)
    .join('\n');
}

test.before(async () => {
  backends = await startNginxBackends(3);
  const [one, two, three] = backends as [NginxBackend, NginxBackend, NginxBackend];
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: false
accessLog: false
pools:
  web:
    servers:
${servers(backends)}
  left:
    servers:
${servers([one, two])}
  right:
    servers:
${servers([three])}
routes:
  - host: left.test
    pool: left
  - host: right.test
    pool: right
    path: /api/
    stripPrefix: true
    headers:
      set: { X-Env: demo }
      remove: [X-Debug]
  - host: "*"
    pool: web
`);
  port = sluice.address.port;
});

test.after.always(async () => {
  agent.destroy();
  await sluice?.stop();
  await stopNginxBackends(backends);
});

function request(
  path: string,
  options: { method?: string; host?: string; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return httpRequest({ ...options, port, path, agent });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const web = (path: string) => readFile(new URL(`../../web/${path}`, import.meta.url));

test.serial('3000 GETs are split exactly evenly over the three backends', async (t) => {
  const counts = new Map<string, number>();
  const batch = 30;
  for (let sent = 0; sent < 3000; sent += batch) {
    const replies = await Promise.all(Array.from({ length: batch }, () => request('/1k.txt')));
    for (const reply of replies) {
      t.is(reply.status, 200);
      const name = String(reply.headers['x-backend']);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  }
  t.deepEqual(Object.fromEntries(counts), { 'nginx-1': 1000, 'nginx-2': 1000, 'nginx-3': 1000 });
});

test.serial('keep-alive reuses backend connections: 300 sequential GETs open one per backend', async (t) => {
  const pool = sluice.pools.get('web');
  const openedBefore = pool?.backends.map((backend) => backend.connections.opened) ?? [];
  const perConnection = new Map<string, number>();
  for (let index = 0; index < 300; index++) {
    const reply = await request('/');
    t.is(reply.status, 200);
    const key = `${reply.headers['x-backend']}#${reply.headers['x-conn']}`;
    perConnection.set(key, (perConnection.get(key) ?? 0) + 1);
  }
  const openedAfter = pool?.backends.map((backend) => backend.connections.opened) ?? [];
  t.deepEqual(
    openedAfter.map((count, index) => count - (openedBefore[index] ?? 0)),
    [0, 0, 0],
  );
  // Every request went over a connection the earlier test already opened.
  t.true(perConnection.size <= 48);
  t.is(
    [...perConnection.values()].reduce((sum, count) => sum + count, 0),
    300,
  );
});

test.serial(
  'a 1 MB and a 100 MB PUT arrive byte-identical at nginx (read back through Sluice)',
  async (t) => {
    for (const size of [1_000_000, 100_000_000]) {
      const body = randomBytes(size);
      const put = await request(`/upload/body-${size}.bin`, { method: 'PUT', body });
      t.true(put.status === 201 || put.status === 204, `PUT answered ${put.status}`);
      const target = String(put.headers['x-backend']);
      // Read it back from the same backend: the pool rotates, so ask until that one answers.
      let got: Reply | undefined;
      for (let attempt = 0; attempt < 3 && got?.headers['x-backend'] !== target; attempt++) {
        got = await request(`/upload/body-${size}.bin`);
      }
      t.is(got?.status, 200);
      t.is(got?.body.length, size);
      t.is(sha256(got?.body ?? Buffer.alloc(0)), sha256(body));
    }
  },
);

test.serial('the PNG and the PDF of the demo site arrive byte-identical', async (t) => {
  for (const [path, type] of [
    ['images/sluice.png', 'image/png'],
    ['docs/sluice.pdf', 'application/pdf'],
  ] as const) {
    const reply = await request(`/${path}`);
    t.is(reply.status, 200);
    t.is(reply.headers['content-type'], type);
    t.is(sha256(reply.body), sha256(await web(path)));
  }
});

test.serial('a chunked response from nginx arrives chunked and whole', async (t) => {
  const reply = await request('/chunked');
  t.is(reply.status, 200);
  t.is(reply.headers['transfer-encoding'], 'chunked');
  t.is(reply.headers['content-length'], undefined);
  t.deepEqual(reply.body, await web('1k.txt'));
});

test.serial('HEAD answers with the length of the page and no body', async (t) => {
  const page = await web('index.html');
  const reply = await request('/index.html', { method: 'HEAD' });
  t.is(reply.status, 200);
  t.is(reply.headers['content-length'], String(page.length));
  t.is(reply.body.length, 0);
  // The connection is still in step: the next GET on it works.
  t.deepEqual((await request('/index.html')).body, page);
});

test.serial('two domains reach two pools; the route strips its prefix and rewrites headers', async (t) => {
  const left = new Set<string>();
  for (let index = 0; index < 6; index++)
    left.add(String((await request('/', { host: 'left.test' })).headers['x-backend']));
  t.deepEqual([...left].sort(), ['nginx-1', 'nginx-2']);

  const right = await request('/api/index.html?x=1', { host: 'right.test', headers: { 'X-Debug': 'yes' } });
  t.is(right.status, 200);
  t.is(right.headers['x-backend'], 'nginx-3');
  t.is(right.headers['x-seen-uri'], '/index.html?x=1');
  t.is(right.headers['x-seen-env'], 'demo');
  t.is(right.headers['x-seen-debug'], undefined);
  t.is(right.headers['x-seen-host'], 'right.test');
  t.regex(String(right.headers['x-seen-via']), /^1\.1 sluice-[0-9a-f]{8}$/);
  t.is(right.headers['x-seen-forwarded-for'], '127.0.0.1');
  t.deepEqual(right.body, await web('index.html'));
});

test.serial('a malformed request gets 400, the connection closes and nginx never sees it', async (t) => {
  const result = await rawExchange(
    port,
    'POST /smuggled-outer HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-inner HTTP/1.1\r\n\r\n',
  );
  t.deepEqual(statuses(result.text), [400]);
  t.true(result.closed);
  // A well-formed request after it: once its line is in a log, the logs have caught up with
  // anything the malformed one could have caused. Docker delivers log lines late, so the
  // whole log is searched rather than the lines added since a snapshot.
  t.is((await request('/after-smuggling')).status, 404);
  const paths = await until('the access line of /after-smuggling', 3_000, async () => {
    const all = (await Promise.all(backends.map((backend) => accessLog(backend)))).flat();
    const seen = all.map((entry) => entry.path);
    return seen.includes('/after-smuggling') ? seen : undefined;
  });
  t.deepEqual(
    paths.filter((path) => path.startsWith('/smuggled') || path === '/after-smuggling'),
    ['/after-smuggling'],
  );
});

test.serial(
  'a stopped backend is retried on another, and a pool of only stopped ones gives 502 fast',
  async (t) => {
    const doomed = await startNginxBackend('doomed');
    const [one] = backends as [NginxBackend];
    const other = await startProxy(`listen: 127.0.0.1:0
admin: false
accessLog: false
pools:
  mixed:
    servers:
${servers([doomed, one])}
  dead:
    servers:
${servers([doomed])}
routes:
  - host: dead.test
    pool: dead
  - host: "*"
    pool: mixed
`);
    try {
      await doomed.stop();
      const started = Date.now();
      for (let index = 0; index < 10; index++) {
        const result = await rawExchange(
          other.address.port,
          'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
        );
        t.deepEqual(statuses(result.text), [200]);
        t.regex(result.text, /\r\nX-Backend: nginx-1\r\n/i);
      }
      const dead = await rawExchange(other.address.port, 'GET / HTTP/1.1\r\nHost: dead.test\r\n\r\n');
      t.deepEqual(statuses(dead.text), [502]);
      t.true(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      await other.stop();
      await doomed.stop();
    }
  },
);
