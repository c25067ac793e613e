// One /metrics for a cluster: the supervisor's series and its workers', merged as prom-client's
// AggregatorRegistry would merge them (each family names its aggregator: counters and histograms
// add up, gauges add up or take the max where they describe one shared thing, prom-client's
// process metrics say their own). Health is counted once, by the supervisor that runs the checks
// and owns the state machines, so those families are taken from it alone; traffic is counted by
// the workers. Per-worker gauges carry a `worker` label. Workers push their numbers (./snapshot.ts)
// and a scrape merges the latest of each: it asks no worker anything.
//
// The merge and the text are done here rather than by AggregatorRegistry.aggregate, which hashes
// every label set through a generic grouper: 6-16 ms for 9 processes on the 2-core machine,
// against about 0.5 ms for this (bench/cluster-costs.ts).
import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsJson, RenderedMetrics } from '../observe/metrics.ts';
import type { RestartReason } from './messages.ts';
import { type Snapshot, SnapshotReader, seriesKey } from './snapshot.ts';

/**
 * The families only the supervisor's numbers are true for: the health view it owns (a worker's
 * copies are never updated), what it alone does (reloads), and what describes the tree once.
 */
const supervisorFamilies: ReadonlySet<string> = new Set([
  'sluice_backend_up',
  'sluice_backend_state',
  'sluice_backend_state_transitions_total',
  'sluice_backend_ejections_total',
  'sluice_health_checks_total',
  'sluice_health_check_duration_seconds',
  'sluice_backend_effective_weight',
  'sluice_backend_last_state_change_timestamp_seconds',
  'sluice_config_reloads_total',
  'sluice_config_last_reload_successful',
  'sluice_config_last_reload_success_timestamp_seconds',
  'sluice_build_info',
]);

/** The families only the workers' numbers are true for (the supervisor serves no traffic). */
const workerFamilies: ReadonlySet<string> = new Set(['sluice_cache_max_bytes']);

/** Per-worker gauges taken from each worker's default metrics, where a sum would hide the one in trouble. */
const perWorker: readonly { from: string; to: string; help: string }[] = [
  {
    from: 'nodejs_eventloop_lag_p99_seconds',
    to: 'sluice_worker_event_loop_lag_p99_seconds',
    help: "The 99th percentile of each worker's event-loop lag.",
  },
  {
    from: 'nodejs_eventloop_lag_seconds',
    to: 'sluice_worker_event_loop_lag_seconds',
    help: "Each worker's event-loop lag, sampled with one setImmediate.",
  },
  {
    from: 'process_resident_memory_bytes',
    to: 'sluice_worker_resident_memory_bytes',
    help: "Each worker's resident memory.",
  },
  {
    from: 'nodejs_heap_size_used_bytes',
    to: 'sluice_worker_heap_used_bytes',
    help: "Each worker's V8 heap in use.",
  },
  {
    from: 'process_open_fds',
    to: 'sluice_worker_open_fds',
    help: "Each worker's open file descriptors.",
  },
  {
    from: 'process_max_fds',
    to: 'sluice_worker_max_fds',
    help: "Each worker's file-descriptor limit.",
  },
];

export interface WorkerMetrics {
  /** Its slot; none for a worker that drains beside its replacement (summed, not labelled). */
  index?: number;
  value: MetricsJson;
}

type Labels = Record<string, string | number>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
/** What a family looks like in prom-client's JSON, with the fields read here. */
interface Family {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  values: Sample[];
}

/**
 * Merges the supervisor's metrics, its workers' and what departed workers had counted into one
 * exposition.
 */
export function aggregateMetrics(
  own: MetricsJson,
  workers: readonly WorkerMetrics[],
  counts: WorkerCounts = new WorkerCounts(),
): RenderedMetrics {
  const lists = [
    (own as unknown as Family[]).filter((family) => !workerFamilies.has(family.name)),
    ...workers.map((worker) => fromWorker(worker.value)),
    counts.families,
    labelledByWorker(workers),
  ];
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: render(merge(lists)) };
}

function fromWorker(metrics: MetricsJson): Family[] {
  return (metrics as unknown as Family[]).filter((family) => !supervisorFamilies.has(family.name));
}

/**
 * Every worker's latest counts, as it pushed them (every `pushIntervalMs`, and its last ones as it
 * stops), and those of workers that are gone (stopped, replaced, killed), kept in the sums so
 * that counters never go down: Prometheus reads a counter that drops as one that restarted from
 * 0. A worker that stops says its last counts; one that is killed leaves those of its last push,
 * so what it counted in the last second is lost.
 */
export class WorkerCounts {
  private readonly last = new Map<number, MetricsJson>();
  private readonly readers = new Map<number, SnapshotReader>();
  private kept: Family[] = [];

  /** A push from the worker with this pid. */
  pushed(pid: number, snapshot: Snapshot): void {
    let reader = this.readers.get(pid);
    if (!reader) {
      reader = new SnapshotReader();
      this.readers.set(pid, reader);
    }
    this.last.set(pid, reader.read(snapshot));
  }

  /** The latest counts of the worker with this pid, whole. */
  seen(pid: number, metrics: MetricsJson): void {
    this.last.set(pid, metrics);
  }

  /** The latest counts of every worker not gone yet (a draining one's too), by pid. */
  live(): ReadonlyMap<number, MetricsJson> {
    return this.last;
  }

  /** The worker with this pid is gone: its latest counters and histograms are kept. */
  gone(pid: number): void {
    const last = this.last.get(pid);
    this.last.delete(pid);
    this.readers.delete(pid);
    if (!last) return;
    const counts = fromWorker(last).filter(
      (family) => family.type === 'counter' || family.type === 'histogram',
    );
    this.kept = merge([this.kept, counts]);
  }

  /** A backend left the config: what gone workers counted for it goes, as its series do. */
  forgetBackend(pool: string, backend: string): void {
    this.kept = this.kept.map((family) => ({
      ...family,
      values: family.values.filter(
        (sample) => sample.labels.pool !== pool || sample.labels.backend !== backend,
      ),
    }));
  }

  get families(): readonly Family[] {
    return this.kept;
  }
}

/** How two processes' values of one series combine, by the family's aggregator (`average`: summed, then divided). */
const combiners: Record<string, (merged: number, value: number) => number> = {
  sum: (merged, value) => merged + value,
  average: (merged, value) => merged + value,
  max: (merged, value) => Math.max(merged, value),
  min: (merged, value) => Math.min(merged, value),
  first: (merged) => merged,
};

interface Merged {
  family: Family;
  combine: (merged: number, value: number) => number;
  series: Map<string, { sample: Sample; value: number; count: number }>;
}

// Runs on every scrape over every process's series (about 3,500 at 8 workers): one pass, each
// series combined as it comes, no array of values per series.
function merge(lists: readonly (readonly Family[])[]): Family[] {
  const families = new Map<string, Merged>();
  for (const list of lists)
    for (const family of list) {
      if (family.aggregator === 'omit') continue;
      let merged = families.get(family.name);
      if (!merged) {
        const combine = combiners[family.aggregator ?? 'sum'] ?? combiners.sum;
        merged = { family, combine: combine as Merged['combine'], series: new Map() };
        families.set(family.name, merged);
      }
      const { combine, series } = merged;
      for (const sample of family.values) {
        const key = seriesKey(sample);
        const found = series.get(key);
        if (found) {
          found.value = combine(found.value, sample.value);
          found.count++;
        } else series.set(key, { sample, value: sample.value, count: 1 });
      }
    }
  return [...families.values()].map(({ family, series }) => {
    const average = family.aggregator === 'average';
    const values: Sample[] = [];
    for (const { sample, value, count } of series.values())
      values.push({ ...sample, value: average ? value / count : value });
    return { ...family, values };
  });
}

/** The text exposition format, as prom-client writes it. */
function render(families: readonly Family[]): string {
  const blocks = families.map((family) => {
    let out = `# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
    out += `# TYPE ${family.name} ${family.type}\n`;
    for (const sample of family.values)
      out += `${sample.metricName ?? family.name}${labelText(sample.labels)} ${number(sample.value)}\n`;
    return out;
  });
  return blocks.join('\n');
}

function labelText(labels: Labels): string {
  let text = '';
  for (const name in labels) {
    const value = String(labels[name]);
    const escaped = needsEscape.test(value)
      ? value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
      : value;
    text += `${text === '' ? '{' : ','}${name}="${escaped}"`;
  }
  return text === '' ? '' : `${text}}`;
}

const needsEscape = /[\\\n"]/;

function number(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function labelledByWorker(workers: readonly WorkerMetrics[]): Family[] {
  return perWorker.map(({ from, to, help }) => {
    const values = workers.flatMap((worker) => {
      const family = (worker.value as unknown as Family[]).find((candidate) => candidate.name === from);
      const value = family?.values[0]?.value;
      return value === undefined || worker.index === undefined
        ? []
        : [{ value, labels: { worker: String(worker.index) } }];
    });
    return { name: to, help, type: 'gauge', aggregator: 'sum', values };
  });
}

const restartReasons: readonly RestartReason[] = ['crashed', 'hung', 'rolling'];

/** The supervisor's own series about its workers. */
export class ClusterMetrics {
  private readonly restarts: Counter<'reason'>;

  constructor(registry: Registry, running: () => number) {
    this.restarts = new Counter({
      name: 'sluice_worker_restarts_total',
      help: 'Workers started in place of another: one that died (crashed), one killed for not answering (hung), or a rolling restart (rolling).',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const reason of restartReasons) this.restarts.inc({ reason }, 0);
    new Gauge({
      name: 'sluice_workers',
      help: 'Worker processes listening now.',
      registers: [registry],
      collect() {
        this.set(running());
      },
    });
  }

  restarted(reason: RestartReason): void {
    this.restarts.inc({ reason });
  }
}
