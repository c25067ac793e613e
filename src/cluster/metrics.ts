// One /metrics for a cluster: the supervisor's series and its workers', merged as prom-client's
// AggregatorRegistry would merge them (each family names its aggregator: counters and histograms
// add up, gauges add up or take the max where they describe one shared thing, prom-client's
// process metrics say their own). Health is counted once, by the supervisor that runs the checks
// and owns the state machines, so those families are taken from it alone; traffic is counted by
// the workers. Per-worker gauges carry a `worker` label.
//
// The merge and the text are done here rather than by AggregatorRegistry.aggregate, which hashes
// every label set through a generic grouper: 6-16 ms for 9 processes on the 2-core machine,
// against about 1 ms for this (bench/cluster-costs.ts).
import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsJson, RenderedMetrics } from '../observe/metrics.ts';

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
    from: 'process_resident_memory_bytes',
    to: 'sluice_worker_resident_memory_bytes',
    help: "Each worker's resident memory.",
  },
];

export interface WorkerMetrics {
  index: number;
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
  departed: DepartedCounts = new DepartedCounts(),
): RenderedMetrics {
  const lists = [
    (own as unknown as Family[]).filter((family) => !workerFamilies.has(family.name)),
    ...workers.map((worker) => fromWorker(worker.value)),
    departed.families,
    labelledByWorker(workers),
  ];
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: render(merge(lists)) };
}

function fromWorker(metrics: MetricsJson): Family[] {
  return (metrics as unknown as Family[]).filter((family) => !supervisorFamilies.has(family.name));
}

/**
 * The counters and histograms of workers that are gone (stopped, replaced, killed), kept in the
 * sums so that they never go down: Prometheus reads a counter that drops as one that restarted
 * from 0. A worker that stops says its last counts; one that is killed leaves those of the last
 * scrape (what Prometheus saw), so what it counted after that is lost.
 */
export class DepartedCounts {
  private readonly last = new Map<number, MetricsJson>();
  private kept: Family[] = [];

  /** The latest counts of the worker with this pid. */
  seen(pid: number, metrics: MetricsJson): void {
    this.last.set(pid, metrics);
  }

  /** The worker with this pid is gone: its latest counters and histograms are kept. */
  gone(pid: number): void {
    const last = this.last.get(pid);
    this.last.delete(pid);
    if (!last) return;
    const counts = fromWorker(last).filter(
      (family) => family.type === 'counter' || family.type === 'histogram',
    );
    this.kept = merge([this.kept, counts]);
  }

  get families(): readonly Family[] {
    return this.kept;
  }
}

const reducers: Record<string, (values: number[]) => number> = {
  sum: (values) => values.reduce((a, b) => a + b, 0),
  max: (values) => Math.max(...values),
  min: (values) => Math.min(...values),
  first: (values) => values[0] ?? 0,
  average: (values) => values.reduce((a, b) => a + b, 0) / values.length,
};

interface Merged {
  family: Family;
  series: Map<string, { sample: Sample; values: number[] }>;
}

function merge(lists: readonly (readonly Family[])[]): Family[] {
  const families = new Map<string, Merged>();
  for (const list of lists)
    for (const family of list) {
      if (family.aggregator === 'omit') continue;
      let merged = families.get(family.name);
      if (!merged) {
        merged = { family, series: new Map() };
        families.set(family.name, merged);
      }
      for (const sample of family.values) {
        let key = sample.metricName ?? '';
        for (const name in sample.labels) key += `\u0000${name}\u0001${sample.labels[name]}`;
        const series = merged.series.get(key);
        if (series) series.values.push(sample.value);
        else merged.series.set(key, { sample, values: [sample.value] });
      }
    }
  return [...families.values()].map(({ family, series }) => {
    const reduce = reducers[family.aggregator ?? 'sum'] ?? reducers.sum;
    const values = [...series.values()].map(({ sample, values }) => ({
      ...sample,
      value: reduce?.(values) ?? 0,
    }));
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
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  const text = entries.map(
    ([name, value]) =>
      `${name}="${String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return `{${text.join(',')}}`;
}

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
      return value === undefined ? [] : [{ value, labels: { worker: String(worker.index) } }];
    });
    return { name: to, help, type: 'gauge', aggregator: 'sum', values };
  });
}

/** The supervisor's own series about its workers. */
export class ClusterMetrics {
  private readonly restarts: Counter<'reason'>;

  constructor(registry: Registry, running: () => number) {
    this.restarts = new Counter({
      name: 'sluice_worker_restarts_total',
      help: 'Workers started in place of another: one that died (crashed) or a rolling restart (rolling).',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.restarts.inc({ reason: 'crashed' }, 0);
    this.restarts.inc({ reason: 'rolling' }, 0);
    new Gauge({
      name: 'sluice_workers',
      help: 'Worker processes listening now.',
      registers: [registry],
      collect() {
        this.set(running());
      },
    });
  }

  restarted(reason: 'crashed' | 'rolling'): void {
    this.restarts.inc({ reason });
  }
}
