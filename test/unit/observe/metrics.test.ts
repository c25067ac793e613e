// The Metrics API of src/observe/metrics.ts: what each call does to the exposition.
import test from 'ava';
import { Metrics } from '../../../src/observe/metrics.ts';
import { parseExposition } from '../../support/design-metrics.ts';

async function samples(metrics: Metrics) {
  return parseExposition((await metrics.render()).body).samples;
}

/** The value of the one series of `name` whose labels include `labels` (undefined if none). */
async function value(metrics: Metrics, name: string, labels: Record<string, string> = {}) {
  const found = (await samples(metrics)).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} series`);
  return found[0]?.value;
}

const fresh = () => new Metrics({ defaultMetrics: false });

test('requestFinished counts by method and code (as strings) and observes duration by code class', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  b.requestFinished('GET', 200, 0.003, 10, 1000, 0.001);
  b.requestFinished('GET', 200, 0.004, 0, 500, 0.002);
  b.requestFinished('POST', 503, 0.2, 7, 20);
  const pb = { pool: 'web', backend: 'web-1' };
  t.is(await value(m, 'sluice_http_requests_total', { ...pb, method: 'GET', code: '200' }), 2);
  t.is(await value(m, 'sluice_http_requests_total', { ...pb, method: 'POST', code: '503' }), 1);
  t.is(await value(m, 'sluice_http_request_duration_seconds_count', { ...pb, code_class: '2xx' }), 2);
  t.is(await value(m, 'sluice_http_request_duration_seconds_count', { ...pb, code_class: '5xx' }), 1);
  t.is(await value(m, 'sluice_http_request_duration_seconds_sum', { ...pb, code_class: '5xx' }), 0.2);
  t.is(await value(m, 'sluice_http_request_bytes_total', pb), 17);
  t.is(await value(m, 'sluice_http_response_bytes_total', pb), 1520);
  // Time to first byte only for the requests that had one.
  t.is(await value(m, 'sluice_backend_response_duration_seconds_count', pb), 2);
});

test('histogram buckets are cumulative and a value on a bound falls in that bucket (le)', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  for (const s of [0.0005, 0.0006, 0.01, 45]) b.connectTimed(s);
  const pb = { pool: 'web', backend: 'web-1' };
  const bucket = (le: string) => value(m, 'sluice_backend_connect_duration_seconds_bucket', { ...pb, le });
  t.is(await bucket('0.0005'), 1);
  t.is(await bucket('0.001'), 2);
  t.is(await bucket('0.0075'), 2);
  t.is(await bucket('0.01'), 3);
  t.is(await bucket('30'), 3);
  t.is(await bucket('+Inf'), 4);
  t.is(await value(m, 'sluice_backend_connect_duration_seconds_count', pb), 4);
});

test('methods outside the standard set count as OTHER: clients cannot grow the series', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  for (let i = 0; i < 100; i++) b.requestFinished(`X${i}`, 200, 0.001, 0, 0);
  b.requestFinished('PROPFIND', 207, 0.001, 0, 0);
  const requests = (await samples(m)).filter((s) => s.name === 'sluice_http_requests_total');
  t.deepEqual(requests.map((s) => [s.labels.method, s.labels.code, s.value]).sort(), [
    ['OTHER', '200', 100],
    ['OTHER', '207', 1],
  ]);
});

test('state: one-hot state series, up for up/slow_start/draining, transitions counted on change only', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  const pb = { pool: 'web', backend: 'web-1' };
  const stateOf = async () =>
    (await samples(m))
      .filter((s) => s.name === 'sluice_backend_state' && s.value === 1)
      .map((s) => s.labels.state);
  t.deepEqual(await stateOf(), ['up']);
  t.is(await value(m, 'sluice_backend_up', pb), 1);
  b.state('down');
  b.state('down');
  t.deepEqual(await stateOf(), ['down']);
  t.is(await value(m, 'sluice_backend_up', pb), 0);
  b.state('slow_start');
  t.is(await value(m, 'sluice_backend_up', pb), 1);
  b.state('draining');
  t.is(await value(m, 'sluice_backend_up', pb), 1);
  b.state('ejected');
  t.is(await value(m, 'sluice_backend_up', pb), 0);
  for (const [to, n] of [
    ['up', 0],
    ['down', 1],
    ['slow_start', 1],
    ['draining', 1],
    ['ejected', 1],
  ] as const) {
    t.is(await value(m, 'sluice_backend_state_transitions_total', { ...pb, to }), n, to);
  }
});

test('a backend registered in another state starts there without a transition', async (t) => {
  const m = fresh();
  m.registerBackend('web', 'web-1', '127.0.0.1:9001', 'down');
  t.is(await value(m, 'sluice_backend_up', { backend: 'web-1' }), 0);
  t.is(await value(m, 'sluice_backend_state_transitions_total', { backend: 'web-1', to: 'down' }), 0);
});

test('health checks, retries, errors, ejections, in-flight', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  b.healthCheck('success', 0.001);
  b.healthCheck('timeout', 1);
  b.retry('refused');
  b.retry('something_new');
  b.error('reset');
  b.ejection('consecutive_failures');
  b.setInFlight(1);
  const pb = { pool: 'web', backend: 'web-1' };
  t.is(await value(m, 'sluice_health_checks_total', { ...pb, result: 'success' }), 1);
  t.is(await value(m, 'sluice_health_checks_total', { ...pb, result: 'timeout' }), 1);
  t.is(await value(m, 'sluice_health_checks_total', { ...pb, result: 'refused' }), 0);
  t.is(await value(m, 'sluice_health_check_duration_seconds_sum', pb), 1.001);
  t.is(await value(m, 'sluice_retries_total', { ...pb, reason: 'refused' }), 1);
  t.is(await value(m, 'sluice_retries_total', { ...pb, reason: 'something_new' }), 1);
  t.is(await value(m, 'sluice_retries_total', { ...pb, reason: 'reset' }), 0);
  t.is(await value(m, 'sluice_backend_errors_total', { ...pb, type: 'reset' }), 1);
  t.is(await value(m, 'sluice_backend_ejections_total', { ...pb, reason: 'consecutive_failures' }), 1);
  t.is(await value(m, 'sluice_http_requests_in_flight', pb), 1);
  t.is(m.findBackend('web', 'web-1'), b, 'one handle per backend');
});

test('pool, cache, connection and rejection metrics', async (t) => {
  const m = fresh();
  m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  t.is(await value(m, 'sluice_pool_panic', { pool: 'web' }), 0);
  m.poolPanic('web', true);
  t.is(await value(m, 'sluice_pool_panic', { pool: 'web' }), 1);
  m.cacheResult('hit');
  m.cacheResult('hit');
  m.cacheResult('miss');
  t.is(await value(m, 'sluice_cache_requests_total', { result: 'hit' }), 2);
  t.is(await value(m, 'sluice_cache_requests_total', { result: 'stale' }), 0);
  m.cacheBytes(4096);
  t.is(await value(m, 'sluice_cache_bytes'), 4096);
  m.setOpenConnections('client', 1);
  m.setOpenConnections('backend', 1);
  t.is(await value(m, 'sluice_open_connections', { side: 'client' }), 1);
  t.is(await value(m, 'sluice_open_connections', { side: 'backend' }), 1);
  m.rejected('no_route');
  t.is(await value(m, 'sluice_requests_rejected_total', { reason: 'no_route' }), 1);
});

test('registering again moves the address; removing a backend drops all its series', async (t) => {
  const m = fresh();
  const first = m.registerBackend('web', 'web-1', '10.0.0.1:80');
  m.registerBackend('web', 'web-2', '10.0.0.2:80');
  t.is(m.registerBackend('web', 'web-1', '10.0.0.9:80'), first);
  const info = (await samples(m)).filter((s) => s.name === 'sluice_backend_info');
  t.deepEqual(info.map((s) => s.labels.address).sort(), ['10.0.0.2:80', '10.0.0.9:80']);
  first.requestFinished('GET', 200, 0.01, 0, 0);
  t.is(m.findBackend('web', 'web-1'), first);
  m.removeBackend('web', 'web-1');
  t.is(m.findBackend('web', 'web-1'), undefined);
  t.false((await samples(m)).some((s) => s.labels.backend === 'web-1'));
  t.true((await samples(m)).some((s) => s.labels.backend === 'web-2'));
  t.is(await value(m, 'sluice_pool_panic', { pool: 'web' }), 0);
  // The last backend of a pool takes the pool's series with it.
  m.removeBackend('web', 'web-2');
  t.false((await samples(m)).some((s) => s.labels.pool === 'web'));
});

test('label values are escaped in the exposition', async (t) => {
  const m = fresh();
  m.registerBackend('web', 'we"ird\\name', 'host:80');
  const { body } = await m.render();
  t.true(body.includes('backend="we\\"ird\\\\name"'));
  t.is(await value(m, 'sluice_backend_up', { backend: 'we"ird\\name' }), 1);
});

test('default metrics are on unless turned off', async (t) => {
  t.true((await new Metrics().render()).body.includes('process_resident_memory_bytes'));
  t.false((await fresh().render()).body.includes('process_resident_memory_bytes'));
});

test('onScrape hooks sample gauges at every render', async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  let inFlight = 3;
  let panic = false;
  m.onScrape(() => {
    b.setInFlight(inFlight);
    m.poolPanic('web', panic);
    m.setOpenConnections('client', inFlight * 2);
  });
  t.is(await value(m, 'sluice_http_requests_in_flight', { backend: 'web-1' }), 3);
  t.is(await value(m, 'sluice_open_connections', { side: 'client' }), 6);
  inFlight = 0;
  panic = true;
  t.is(await value(m, 'sluice_http_requests_in_flight', { backend: 'web-1' }), 0);
  t.is(await value(m, 'sluice_pool_panic', { pool: 'web' }), 1);
});

test("the registry's resetMetrics zeroes every series and handles keep working", async (t) => {
  const m = fresh();
  const b = m.registerBackend('web', 'web-1', '127.0.0.1:9001');
  b.requestFinished('GET', 200, 0.01, 1, 2, 0.005);
  m.registry.resetMetrics();
  t.is(await value(m, 'sluice_http_requests_total', { method: 'GET', code: '200' }), 0);
  t.is(await value(m, 'sluice_backend_response_duration_seconds_count', { backend: 'web-1' }), 0);
  b.requestFinished('GET', 200, 0.01, 1, 2, 0.005);
  t.is(await value(m, 'sluice_http_requests_total', { method: 'GET', code: '200' }), 1);
  t.is(await value(m, 'sluice_backend_response_duration_seconds_count', { backend: 'web-1' }), 1);
});
