// /metrics on the admin port of an in-process Sluice in front of node:http backends, checked
// against the design's table: every metric with its type, and every series of every configured
// backend there at start, at 0. test/component/metrics-flow.test.ts has them move with traffic.
import { spawn } from 'node:child_process';
import type { AddressInfo, Server } from 'node:net';
import test from 'ava';
import { createAdminServer } from '../../src/admin/server.ts';
import { BACKEND_STATES, CACHE_RESULTS, HEALTH_RESULTS, Metrics } from '../../src/observe/metrics.ts';
import { listenOn } from '../../src/proxy/server.ts';
import type { RunningSluice } from '../../src/sluice.ts';
import {
  DESIGN_METRICS,
  type Exposition,
  OPERATOR_METRICS,
  parseExposition,
} from '../support/design-metrics.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { poolYaml, startProxy } from '../support/sluice.ts';

let backends: NodeBackend[] = [];
let sluice: RunningSluice;
let adminPort: number;
let atStart: Exposition;
let bare: Server;
let barePort: number;

test.before(async () => {
  backends = await Promise.all(
    [1, 2, 3].map(() => startNodeBackend((_request, response) => response.end('hello\n'))),
  );
  sluice = await startProxy(
    poolYaml(backends.map((b) => b.port)).replace('admin: false', 'admin: 127.0.0.1:0'),
  );
  adminPort = sluice.adminAddress?.port ?? 0;
  // Before any test sends traffic: what a fresh Sluice exposes.
  atStart = (await scrape()).exposition;
  bare = createAdminServer({ pools: () => sluice.pools, ready: () => true, now: () => Date.now() });
  barePort = (await listenOn(bare, '127.0.0.1', 0)).port;
});

test.after.always(async () => {
  bare?.close();
  await sluice?.stop();
  await Promise.all(backends.map((b) => b.close()));
});

async function scrape(): Promise<{ response: Response; text: string; exposition: Exposition }> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await response.text();
  return { response, text, exposition: parseExposition(text) };
}

const backendNames = () => [...sluice.pools.values()].flatMap((p) => p.backends.map((b) => [p.name, b.name]));

test('GET /metrics answers 200 in the Prometheus text format', async (t) => {
  const { response, text } = await scrape();
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.true(text.endsWith('\n'));
  const head = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(await head.text(), '');
});

test('every metric of the design table is listed with its type', async (t) => {
  const { exposition } = await scrape();
  for (const m of [...DESIGN_METRICS, ...OPERATOR_METRICS])
    t.is(exposition.types.get(m.name), m.type, m.name);
});

test('promtool check metrics finds nothing to say about the sluice_ metrics', async (t) => {
  const { text } = await scrape();
  const lint = await new Promise<string>((resolve, reject) => {
    const promtool = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    promtool.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    promtool.stderr.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    promtool.on('error', reject);
    promtool.on('close', () => resolve(out));
    promtool.stdin.end(text);
  });
  // prom-client's own nodejs_*_total gauges draw remarks; none of Sluice's may.
  t.deepEqual(
    lint.split('\n').filter((line) => line.startsWith('sluice_')),
    [],
  );
  t.true(text.includes('sluice_build_info{'), "the operators' metrics are in what was checked");
});

test("prom-client's default process and Node.js metrics are listed", async (t) => {
  const { exposition } = await scrape();
  for (const name of [
    'process_resident_memory_bytes',
    'process_cpu_seconds_total',
    'nodejs_eventloop_lag_seconds',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_heap_size_used_bytes',
  ]) {
    t.true(exposition.types.has(name), name);
  }
});

test('every series carries exactly the labels of the design table', async (t) => {
  const { exposition } = await scrape();
  for (const m of [...DESIGN_METRICS, ...OPERATOR_METRICS]) {
    const names =
      m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
    for (const sample of exposition.samples.filter((s) => names.includes(s.name))) {
      const expected = sample.name.endsWith('_bucket') ? [...m.labels, 'le'] : [...m.labels];
      t.deepEqual(
        Object.keys(sample.labels).sort(),
        expected.sort(),
        `${sample.name} ${JSON.stringify(sample.labels)}`,
      );
    }
  }
});

test('every configured backend has its series from the start, at 0', (t) => {
  const exposition = atStart;
  const series = (name: string, labels: Record<string, string>) =>
    exposition.samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
  const one = (name: string, labels: Record<string, string>) => {
    const found = series(name, labels);
    t.is(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} series`);
    return found[0]?.value;
  };
  t.is(backendNames().length, 3);
  for (const [pool, backend] of backendNames() as [string, string][]) {
    const pb = { pool, backend };
    const address = sluice.pools.get(pool)?.backends.find((b) => b.name === backend)?.address ?? '';
    t.is(one('sluice_backend_info', { ...pb, address }), 1);
    t.is(one('sluice_backend_up', pb), 1, 'a backend starts up (routable), as the proxy does');
    for (const state of BACKEND_STATES)
      t.is(one('sluice_backend_state', { ...pb, state }), state === 'up' ? 1 : 0);
    for (const to of BACKEND_STATES) t.is(one('sluice_backend_state_transitions_total', { ...pb, to }), 0);
    // The first health probe runs at start, so these exist but need not be 0 any more.
    for (const result of HEALTH_RESULTS)
      t.true((one('sluice_health_checks_total', { ...pb, result }) ?? -1) >= 0);
    t.is(one('sluice_http_requests_in_flight', pb), 0);
    t.is(one('sluice_http_request_bytes_total', pb), 0);
    t.is(one('sluice_http_response_bytes_total', pb), 0);
    for (const name of [
      'sluice_backend_response_duration_seconds',
      'sluice_backend_connect_duration_seconds',
      'sluice_health_check_duration_seconds',
    ]) {
      // Health probes may already have run; request histograms must be empty.
      if (!name.startsWith('sluice_health')) {
        t.is(one(`${name}_count`, pb), 0);
        t.is(one(`${name}_sum`, pb), 0);
      }
      t.is(series(`${name}_bucket`, pb).length, 17, `${name}: 16 buckets and +Inf`);
    }
    for (const name of [
      'sluice_retries_total',
      'sluice_backend_errors_total',
      'sluice_backend_ejections_total',
    ]) {
      const found = series(name, pb);
      t.true(found.length > 0, `${name} has series for ${backend}`);
      t.true(
        found.every((s) => s.value === 0),
        name,
      );
    }
  }
  t.is(one('sluice_pool_panic', { pool: 'web' }), 0);
  for (const result of CACHE_RESULTS) t.is(one('sluice_cache_requests_total', { result }), 0);
  t.is(one('sluice_cache_bytes', {}), 0);
  for (const side of ['client', 'backend']) t.is(one('sluice_open_connections', { side }), 0);
});

test('latency histograms use the buckets of the design (dense below 10 ms, up to 30 s)', async (t) => {
  const { exposition } = await scrape();
  const [pool, backend] = backendNames()[0] as [string, string];
  const bounds = exposition.samples
    .filter((s) => s.name === 'sluice_backend_connect_duration_seconds_bucket')
    .filter((s) => s.labels.pool === pool && s.labels.backend === backend)
    .map((s) => s.labels.le);
  t.deepEqual(bounds, [
    '0.0005',
    '0.001',
    '0.0025',
    '0.005',
    '0.0075',
    '0.01',
    '0.025',
    '0.05',
    '0.1',
    '0.25',
    '0.5',
    '1',
    '2.5',
    '5',
    '10',
    '30',
    '+Inf',
  ]);
});

test('the other admin endpoints are unchanged, and /metrics is 404 without Metrics', async (t) => {
  const healthz = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
  t.is(healthz.status, 200);
  t.is(await healthz.text(), 'ok\n');
  const readyz = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  t.is(readyz.status, 200);
  const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as {
    pools: { backends: unknown[] }[];
  };
  t.is(status.pools[0]?.backends.length, 3);
  const missing = await fetch(`http://127.0.0.1:${barePort}/metrics`);
  t.is(missing.status, 404);
  await missing.text();
  const post = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { method: 'POST' });
  t.is(post.status, 405);
  await post.text();
});

test('two Sluice instances in one process keep separate registries', async (t) => {
  const other = new Metrics({ defaultMetrics: false });
  other.registerBackend('web', 'elsewhere', '10.0.0.1:80').requestFinished('GET', 200, 0.001, 0, 10);
  const { text } = await scrape();
  t.false(text.includes('elsewhere'));
  t.true((await other.render()).body.includes('backend="elsewhere"'));
});

test('the proxy still answers through the backends (the admin server is independent of it)', async (t) => {
  const address = sluice.address as AddressInfo;
  const response = await fetch(`http://127.0.0.1:${address.port}/`);
  t.is(response.status, 200);
  t.is(await response.text(), 'hello\n');
});
