// One /metrics for a cluster: workers' traffic summed, health from the supervisor alone.
import test from 'ava';
import { Registry } from 'prom-client';
import { aggregateMetrics, ClusterMetrics, WorkerCounts } from '../../../src/cluster/metrics.ts';
import { Metrics } from '../../../src/observe/metrics.ts';

function line(text: string, series: string): string | undefined {
  return text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
}

const value = (text: string, series: string) => Number(line(text, series)?.split(' ').pop());

async function cluster() {
  const supervisor = new Metrics({ defaultMetrics: false });
  const workers = [new Metrics({ defaultMetrics: false }), new Metrics({ defaultMetrics: false })];
  for (const m of [supervisor, ...workers]) m.registerBackend('web', 'b1', '10.0.0.1:80');
  // Traffic is counted where it is served.
  workers[0]?.findBackend('web', 'b1')?.requestFinished('GET', 200, 0.003, 0, 10, 0.001);
  workers[0]?.findBackend('web', 'b1')?.requestFinished('GET', 200, 0.02, 0, 10, 0.001);
  workers[1]?.findBackend('web', 'b1')?.requestFinished('GET', 200, 0.003, 5, 10, 0.001);
  workers[1]?.findBackend('web', 'b1')?.requestFinished('GET', 502, 0.5, 0, 0);
  workers[0]?.rejected('bad_request');
  workers[1]?.setOpenConnections('client', 7);
  workers[0]?.setOpenConnections('client', 5);
  // Health only where the checks run; the workers' copies are never updated.
  supervisor.findBackend('web', 'b1')?.healthCheck('refused', 0.001);
  supervisor.findBackend('web', 'b1')?.state('down');
  const text = (
    await aggregateMetrics(
      await supervisor.json(),
      await Promise.all(workers.map(async (m, i) => ({ index: i + 1, value: await m.json() }))),
    )
  ).body;
  return text;
}

test('counters and histograms are summed over the workers', async (t) => {
  const text = await cluster();
  const labels = 'pool="web",backend="b1"';
  t.is(value(text, `sluice_http_requests_total{${labels},method="GET",code="200"}`), 3);
  t.is(value(text, `sluice_http_requests_total{${labels},method="GET",code="502"}`), 1);
  t.is(value(text, `sluice_http_request_duration_seconds_count{${labels},code_class="2xx"}`), 3);
  t.is(value(text, `sluice_http_request_duration_seconds_bucket{${labels},code_class="2xx",le="0.005"}`), 2);
  t.is(value(text, `sluice_http_request_bytes_total{${labels}}`), 5);
  t.is(value(text, 'sluice_requests_rejected_total{reason="bad_request"}'), 1);
  t.is(value(text, 'sluice_open_connections{side="client"}'), 12, 'a gauge that adds up is summed');
});

test("health series are the supervisor's, counted once", async (t) => {
  const text = await cluster();
  const labels = 'pool="web",backend="b1"';
  t.is(value(text, `sluice_backend_up{${labels}}`), 0);
  t.is(value(text, `sluice_backend_state{${labels},state="down"}`), 1);
  t.is(value(text, `sluice_backend_state{${labels},state="up"}`), 0);
  t.is(value(text, `sluice_backend_state_transitions_total{${labels},to="down"}`), 1);
  t.is(value(text, `sluice_health_checks_total{${labels},result="refused"}`), 1);
  t.is(value(text, `sluice_backend_info{${labels},address="10.0.0.1:80"}`), 1);
});

test('per-worker gauges carry a worker label', async (t) => {
  const supervisor = new Metrics({ defaultMetrics: false });
  const worker = new Metrics();
  const text = (await aggregateMetrics(await supervisor.json(), [{ index: 2, value: await worker.json() }]))
    .body;
  t.true(value(text, 'sluice_worker_resident_memory_bytes{worker="2"}') > 10_000_000);
  t.regex(text, /^sluice_worker_event_loop_lag_p99_seconds\{worker="2"\} /m);
  t.regex(text, /^sluice_worker_event_loop_lag_seconds\{worker="2"\} /m);
  t.true(value(text, 'sluice_worker_heap_used_bytes{worker="2"}') > 1_000_000);
  if (process.platform === 'linux') {
    t.true(value(text, 'sluice_worker_open_fds{worker="2"}') > 0);
    t.true(value(text, 'sluice_worker_max_fds{worker="2"}') > 0);
  }
});

test('restarts are counted by reason, listening workers sampled', async (t) => {
  const registry = new Registry();
  const metrics = new ClusterMetrics(registry, () => 3);
  metrics.restarted('crashed');
  metrics.restarted('crashed');
  const text = await registry.metrics();
  t.is(value(text, 'sluice_worker_restarts_total{reason="crashed"}'), 2);
  t.is(value(text, 'sluice_worker_restarts_total{reason="rolling"}'), 0);
  t.is(value(text, 'sluice_workers'), 3);
});

test("one process's metrics come out as prom-client itself writes them", async (t) => {
  const metrics = new Metrics({ defaultMetrics: false });
  const backend = metrics.registerBackend('web', 'a "quoted" \\ name', '10.0.0.1:80');
  backend.requestFinished('GET', 200, 0.003, 1, 2, 0.001);
  backend.healthCheck('success', 0.002);
  const reference = await metrics.render();
  const merged = aggregateMetrics(await metrics.json(), []);
  t.is(merged.contentType, reference.contentType);
  t.true(merged.body.startsWith(reference.body), merged.body.slice(0, 400));
});

test('what a worker counted stays in the sums after it is gone: counters never go down', async (t) => {
  const supervisor = new Metrics({ defaultMetrics: false });
  const old = new Metrics({ defaultMetrics: false });
  const fresh = new Metrics({ defaultMetrics: false });
  for (const m of [supervisor, old, fresh]) m.registerBackend('web', 'b1', '10.0.0.1:80');
  const counts = new WorkerCounts();
  const finished = (m: Metrics, code: number) =>
    m.findBackend('web', 'b1')?.requestFinished('GET', code, 0.003, 0, 10);
  finished(old, 200);
  finished(old, 200);
  old.setOpenConnections('client', 9);
  counts.seen(101, await old.json());
  counts.gone(101);
  counts.gone(999);
  finished(fresh, 200);
  const text = aggregateMetrics(
    await supervisor.json(),
    [{ index: 1, value: await fresh.json() }],
    counts,
  ).body;
  const labels = 'pool="web",backend="b1"';
  t.is(value(text, `sluice_http_requests_total{${labels},method="GET",code="200"}`), 3);
  t.is(value(text, `sluice_http_request_duration_seconds_count{${labels},code_class="2xx"}`), 3);
  t.is(value(text, 'sluice_open_connections{side="client"}'), 0, 'a gone worker holds no connections');
});

test('a backend removed from the config takes the counts gone workers kept for it along', async (t) => {
  const gone = new Metrics({ defaultMetrics: false });
  gone.registerBackend('web', 'b1', '10.0.0.1:80');
  gone.registerBackend('web', 'b2', '10.0.0.2:80');
  for (const name of ['b1', 'b2']) gone.findBackend('web', name)?.requestFinished('GET', 200, 0.003, 0, 10);
  const counts = new WorkerCounts();
  counts.seen(101, await gone.json());
  counts.gone(101);
  counts.forgetBackend('web', 'b1');
  const text = aggregateMetrics(await new Metrics({ defaultMetrics: false }).json(), [], counts).body;
  t.is(value(text, 'sluice_http_requests_total{pool="web",backend="b2",method="GET",code="200"}'), 1);
  t.false(text.includes('backend="b1"'), 'no series of the removed backend');
});
