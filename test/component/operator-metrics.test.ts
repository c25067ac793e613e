// The metrics operators look for beyond the design's table, moving as a scenario runs: build
// info, connections per backend (open, idle, attempts, reuses), effective weight through a slow
// start, the last state change, retries refused by the budget, the cache's objects, evictions
// and bound.
import test from 'ava';
import { buildInfo } from '../../src/observe/build-info.ts';
import type { RunningSluice } from '../../src/sluice.ts';
import { type Exposition, parseExposition } from '../support/design-metrics.ts';
import { closedPort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

let web: NodeBackend;
let deadPorts: number[];
let sluice: RunningSluice;
let started = 0;

test.before(async () => {
  web = await startNodeBackend((request, response) => {
    // Cacheable pages of 2 KB (about 4.7 KB charged with fields and bookkeeping): a 16 KiB cache holds a few.
    response.setHeader('cache-control', 'max-age=60');
    response.end('x'.repeat(request.url?.startsWith('/page') ? 2000 : 10));
  });
  deadPorts = [await closedPort(), await closedPort()];
  started = Date.now();
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
cache: { maxBytes: 16KiB, maxObjectBytes: 8KiB }
pools:
  web:
    servers:
      - address: 127.0.0.1:${web.port}
        name: web-1
        weight: 3
  gone:
    health: { interval: 200ms, timeout: 100ms, rise: 1, fall: 1 }
    servers:
      - address: 127.0.0.1:${deadPorts[0]}
        name: gone-1
      - address: 127.0.0.1:${deadPorts[1]}
        name: gone-2
routes:
  - host: cache.test
    pool: web
    cache: true
  - host: gone.test
    pool: gone
  - pool: web
`);
});

test.after.always(async () => {
  await sluice?.stop();
  await web?.close();
});

async function scrape(): Promise<Exposition> {
  const { text } = await rawExchange(
    sluice.adminAddress?.port ?? 0,
    'GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n',
  );
  return parseExposition(text.slice(text.indexOf('\r\n\r\n') + 4));
}

function value(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return exposition.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([key, v]) => s.labels[key] === v),
  )?.value;
}

/** `count` requests on one kept-alive connection (the last asks to close). */
async function keepAlive(host: string, count: number): Promise<number[]> {
  let request = '';
  for (let i = 1; i <= count; i++) {
    request += `GET /${i} HTTP/1.1\r\nHost: ${host}\r\n${i === count ? 'Connection: close\r\n' : ''}\r\n`;
  }
  return statuses((await rawExchange(sluice.address.port, request)).text);
}

/** `count` requests on one kept-alive connection, each sent a moment after the answer before. */
async function oneAtATime(host: string, count: number): Promise<number[]> {
  const socket = await openSocket(sluice.address.port);
  const answered: number[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      socket.write(`GET /${i} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      answered.push(...statuses(await readUntil(socket, (text) => /\r\n\r\nx{10}$/.test(text))));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    socket.destroy();
  }
  return answered;
}

test.serial('sluice_build_info says which Sluice runs', async (t) => {
  const build = (await scrape()).samples.filter((s) => s.name === 'sluice_build_info');
  const info = buildInfo();
  t.deepEqual(build, [
    {
      name: 'sluice_build_info',
      labels: { version: info.version, revision: info.revision, node: process.version },
      value: 1,
    },
  ]);
});

test.serial('connections per backend: attempts, reuses, open and idle', async (t) => {
  const web1 = { pool: 'web', backend: 'web-1' };
  const before = await scrape();
  t.is(value(before, 'sluice_backend_connection_attempts_total', web1), 0);
  t.is(value(before, 'sluice_backend_connection_reuses_total', web1), 0);
  // Five requests in a row, one at a time: one connection opened, then reused four times.
  t.deepEqual(await oneAtATime('www.test', 5), [200, 200, 200, 200, 200]);
  const after = await scrape();
  t.is(value(after, 'sluice_backend_connection_attempts_total', web1), 1);
  t.is(value(after, 'sluice_backend_connection_reuses_total', web1), 4);
  t.is(value(after, 'sluice_backend_open_connections', web1), 1);
  t.is(value(after, 'sluice_backend_idle_connections', web1), 1);
  t.is(value(after, 'sluice_backend_effective_weight', web1), 3);
});

test.serial(
  'the last state change and the effective weight follow the backend through drain and slow start',
  async (t) => {
    const web1 = { pool: 'web', backend: 'web-1' };
    const admin = (request: string) =>
      rawExchange(
        sluice.adminAddress?.port ?? 0,
        `${request} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
    const atStart = value(await scrape(), 'sluice_backend_last_state_change_timestamp_seconds', web1) ?? 0;
    t.true(atStart >= Math.floor(started / 1000) - 1 && atStart <= Date.now() / 1000, `${atStart}`);
    const beforeDrain = Date.now() / 1000;
    await admin('POST /backends/web/web-1/drain');
    const drained = await scrape();
    const drainedAt = value(drained, 'sluice_backend_last_state_change_timestamp_seconds', web1) ?? 0;
    // State changes are stamped with the proxy's coarse clock (a tick every 100 ms, later when
    // the loop is busy), so the stamp may be a little before the drain was asked for.
    t.true(drainedAt >= beforeDrain - 1 && drainedAt <= Date.now() / 1000 + 1, `${drainedAt}`);
    t.is(value(drained, 'sluice_backend_state', { ...web1, state: 'draining' }), 1);
    // Back in slow start: the weight ramps from 10% of 3.
    await admin('POST /backends/web/web-1/undrain');
    const ramping = await scrape();
    const weight = value(ramping, 'sluice_backend_effective_weight', web1) ?? 0;
    t.true(weight >= 0.3 && weight < 3, `effective weight ${weight} in slow start`);
    t.true((value(ramping, 'sluice_backend_last_state_change_timestamp_seconds', web1) ?? 0) >= drainedAt);
  },
);

test.serial('retries the budget refuses are counted per pool', async (t) => {
  // Both backends refuse: each request wants two retries; the budget allows 10 in 10 s.
  const results = await Promise.all(Array.from({ length: 12 }, () => keepAlive('gone.test', 1)));
  t.deepEqual([...new Set(results.flat())], [502]);
  const metrics = await scrape();
  const refused = value(metrics, 'sluice_retry_budget_exhausted_total', { pool: 'gone' }) ?? 0;
  const retries = metrics.samples
    .filter((s) => s.name === 'sluice_retries_total' && s.labels.pool === 'gone')
    .reduce((sum, s) => sum + s.value, 0);
  t.is(retries, 10, 'the budget floor');
  t.true(refused >= 2, `${refused} refused: every retry past the floor`);
  t.is(value(metrics, 'sluice_retry_budget_exhausted_total', { pool: 'web' }), 0);
});

test.serial('the cache: objects, evictions beyond the bound, the bound itself', async (t) => {
  const before = await scrape();
  t.is(value(before, 'sluice_cache_max_bytes'), 16 * 1024);
  t.is(value(before, 'sluice_cache_objects'), 0);
  t.is(value(before, 'sluice_cache_evictions_total'), 0);
  for (let i = 0; i < 12; i++) {
    const answered = await keepAlive('cache.test', 1);
    // A 503 here was seen once in CI and not since: say whether web-1 was unroutable or a local
    // resource ran out.
    if (answered[0] === 503)
      t.log(
        (await scrape()).samples.filter(
          (s) =>
            (s.name === 'sluice_backend_state' && s.value === 1) ||
            s.name === 'sluice_local_errors_total' ||
            (s.name === 'sluice_http_requests_total' && s.labels.backend === '(none)'),
        ),
      );
    t.deepEqual(answered, [200]);
    await rawExchange(
      sluice.address.port,
      `GET /page${i} HTTP/1.1\r\nHost: cache.test\r\nConnection: close\r\n\r\n`,
    );
  }
  const after = await scrape();
  const objects = value(after, 'sluice_cache_objects') ?? 0;
  const evictions = value(after, 'sluice_cache_evictions_total') ?? 0;
  t.true(objects > 0 && objects < 13, `${objects} objects`);
  t.is(objects + evictions, 13, 'every stored page is held or was evicted');
  t.true((value(after, 'sluice_cache_bytes') ?? 0) <= 16 * 1024);
});
