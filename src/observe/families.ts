// The counter engine under Sluice's metrics: families (a metric name, its label names, one cell
// per label-value combination) whose cells are plain objects created once, so the per-request
// code only adds to numbers it already holds (about 40 ns for a whole request, where
// prom-client's own `labels(...).inc()` hashes the label set on every call, about 250 ns each).
// prom-client's Registry renders these families like its own metrics: they implement the same
// `get()` contract. The metrics themselves are in ./catalogue.ts.
import type { Metric, Registry } from 'prom-client';

/** Upper bounds (seconds) of every latency histogram: dense below 10 ms, up to 30 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export type Labels = Readonly<Record<string, string>>;
export type Aggregator = 'sum' | 'max' | 'min' | 'first' | 'average' | 'omit';

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export class ScalarCell {
  value = 0;
  readonly labels: Labels;
  constructor(labels: Labels) {
    this.labels = labels;
  }

  reset(): void {
    this.value = 0;
  }
}

export class HistogramCell {
  readonly labels: Labels;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    const n = bounds.length;
    let i = 0;
    while (i < n && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * What prom-client's Registry needs of a metric: `name`, `help`, `type`, `aggregator` (for a
 * future cluster AggregatorRegistry), `get()` and `reset()`.
 */
export abstract class Family<C extends { readonly labels: Labels; reset(): void }> {
  name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: Aggregator;
  readonly labelNames: readonly string[];
  protected readonly cells = new Map<string, C>();

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    aggregator: Aggregator = 'sum',
  ) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.aggregator = aggregator;
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(labels: Labels): C;

  /** The series for these label values (in `labelNames` order), created at 0 if new. */
  cell(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let cell = this.cells.get(key);
    if (cell === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i] as string;
      });
      cell = this.create(Object.freeze(labels));
      this.cells.set(key, cell);
    }
    return cell;
  }

  /** Drops every series whose labels include all of `match`. */
  removeMatching(match: Labels): void {
    for (const [key, cell] of this.cells) {
      if (Object.entries(match).every(([name, value]) => cell.labels[name] === value)) this.cells.delete(key);
    }
  }

  /** Back to 0, every series kept (handles hold their cells: `Registry.resetMetrics()`). */
  reset(): void {
    for (const cell of this.cells.values()) cell.reset();
  }

  protected abstract values(): ExportedValue[];

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: Aggregator;
    values: ExportedValue[];
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.values(),
    };
  }
}

export class CounterFamily extends Family<ScalarCell> {
  readonly type = 'counter';
  protected create(labels: Labels): ScalarCell {
    return new ScalarCell(labels);
  }
  protected values(): ExportedValue[] {
    return [...this.cells.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
  }
}

export class GaugeFamily extends Family<ScalarCell> {
  readonly type = 'gauge';
  protected create(labels: Labels): ScalarCell {
    return new ScalarCell(labels);
  }
  protected values(): ExportedValue[] {
    return [...this.cells.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    super(registry, name, help, labelNames);
    this.buckets = LATENCY_BUCKETS;
  }

  protected create(labels: Labels): HistogramCell {
    return new HistogramCell(labels, LATENCY_BUCKETS);
  }

  /** Cumulative `_bucket` series (with `le`), then `_sum` and `_count`, as prom-client exports them. */
  protected values(): ExportedValue[] {
    const out: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const cell of this.cells.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += cell.counts[i] as number;
        out.push({ value: cumulative, labels: { ...cell.labels, le: bound }, metricName: bucket });
      });
      out.push({ value: cell.count, labels: { ...cell.labels, le: '+Inf' }, metricName: bucket });
      out.push({ value: cell.sum, labels: { ...cell.labels }, metricName: `${this.name}_sum` });
      out.push({ value: cell.count, labels: { ...cell.labels }, metricName: `${this.name}_count` });
    }
    return out;
  }
}
