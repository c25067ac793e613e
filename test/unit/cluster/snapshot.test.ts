// A worker's pushed metrics: the numbers alone while its series stay the same, the whole JSON
// when they change, and the supervisor's copy equal to what the worker has.
import test from 'ava';
import { aggregateMetrics, WorkerCounts } from '../../../src/cluster/metrics.ts';
import { SnapshotReader, SnapshotWriter } from '../../../src/cluster/snapshot.ts';
import { Metrics } from '../../../src/observe/metrics.ts';

function worker() {
  const metrics = new Metrics({ defaultMetrics: false });
  const b1 = metrics.registerBackend('web', 'b1', '10.0.0.1:80');
  return { metrics, b1 };
}

test('the layout goes once, then only the numbers, and the copy matches the worker', async (t) => {
  const { metrics, b1 } = worker();
  const writer = new SnapshotWriter();
  const reader = new SnapshotReader();
  b1.requestFinished('GET', 200, 0.003, 1, 2, 0.001);
  const first = writer.write(await metrics.json());
  t.truthy(first.layout);
  t.deepEqual(reader.read(first), await metrics.json());

  b1.requestFinished('GET', 200, 0.2, 1, 2, 0.001);
  const second = writer.write(await metrics.json());
  t.is(second.layout, undefined, 'the same series: numbers only');
  t.is(second.values.length, first.values.length);
  t.deepEqual(reader.read(second), await metrics.json());

  b1.requestFinished('POST', 503, 0.01, 1, 2);
  metrics.rejected('bad_request');
  const third = writer.write(await metrics.json());
  t.truthy(third.layout, 'new series: the layout again');
  t.deepEqual(reader.read(third), await metrics.json());
});

test('a series replaced by another of the same count sends the layout', async (t) => {
  const { metrics } = worker();
  const writer = new SnapshotWriter();
  writer.write(await metrics.json());
  metrics.removeBackend('web', 'b1');
  metrics.registerBackend('web', 'b2', '10.0.0.2:80');
  t.truthy(writer.write(await metrics.json()).layout);
});

test('pushes are summed until the worker is gone, then its counts stay: a sum never goes down', async (t) => {
  const supervisor = new Metrics({ defaultMetrics: false });
  const a = worker();
  const b = worker();
  const counts = new WorkerCounts();
  const writers = new Map([
    [11, new SnapshotWriter()],
    [12, new SnapshotWriter()],
  ]);
  const push = async (pid: number, m: Metrics) =>
    counts.pushed(pid, writers.get(pid)?.write(await m.json()) ?? { values: new Float64Array() });
  const total = async () => {
    const workers = [...counts.live()].map(([, value]) => ({ value }));
    const text = aggregateMetrics(await supervisor.json(), workers, counts).body;
    const line = text.split('\n').find((l) => l.startsWith('sluice_http_requests_total{'));
    return Number(line?.split(' ').pop());
  };
  a.b1.requestFinished('GET', 200, 0.003, 0, 10);
  b.b1.requestFinished('GET', 200, 0.003, 0, 10);
  await push(11, a.metrics);
  await push(12, b.metrics);
  t.is(await total(), 2);
  a.b1.requestFinished('GET', 200, 0.003, 0, 10);
  await push(11, a.metrics);
  t.is(await total(), 3);
  counts.gone(11);
  t.is(await total(), 3, 'the departed worker is still counted');
  b.b1.requestFinished('GET', 200, 0.003, 0, 10);
  await push(12, b.metrics);
  t.is(await total(), 4);
});
