// Prometheus metrics: one prom-client Registry per Sluice instance (never the global one, so a
// test process can run several), every `sluice_*` metric of the design table, and prom-client's
// default process and Node.js metrics (event-loop lag, memory, GC).
//
// The hot path is built to cost next to nothing. prom-client's own `labels(...).inc()` hashes
// the label set on every call (about 250 ns each, 1.6 µs for the handful of updates a request
// makes), so the `sluice_*` families here are small classes of our own that prom-client's
// Registry renders like its own metrics (they implement the same `get()` contract). A series is
// a plain object (a "cell") created once; the per-request code only adds to numbers in cells it
// already holds (about 40 ns for a whole request):
//
//   const m = metrics.registerBackend('web', 'web-1', '10.0.0.1:80');  // at start: all at 0
//   m.inFlight(1); ... m.connectTimed(s); ... m.requestFinished('GET', 200, s, in, out, ttfb);
//   m.inFlight(-1);
//
// Gauges the program keeps anyway (in-flight counts, open sockets, a pool's panic flag) can
// instead be read at scrape time, in an `onScrape` hook, at no cost per request.
//
// Label values are bounded: methods outside the standard set count as `OTHER`; status codes
// are whatever 3-digit code was sent. Reasons and types are strings chosen by Sluice's code
// (never by a client); the known ones are created at 0 when a backend is registered.
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';
import { type ProbeResultKind, probeResultKinds } from '../health/probe.ts';
import { type BackendState, backendStates } from '../health/state.ts';
import { failureKinds, retryReasons } from '../http/failure-kinds.ts';

/** Upper bounds (seconds) of every latency histogram: dense below 10 ms, up to 30 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

export type { BackendState } from '../health/state.ts';
/** Every backend state (the health state machine's), each a `sluice_backend_state{state}` series. */
export const BACKEND_STATES: readonly BackendState[] = backendStates;
/** States in which `sluice_backend_up` is 1: the backend is healthy (draining is deliberate). */
const UP_STATES: ReadonlySet<BackendState> = new Set<BackendState>(['up', 'slow_start', 'draining']);

export type HealthResult = ProbeResultKind;
/** Every probe result, each a `sluice_health_checks_total{result}` series. */
export const HEALTH_RESULTS: readonly HealthResult[] = probeResultKinds;

export type CacheResult = 'hit' | 'miss' | 'stale' | 'revalidated' | 'bypass';
export const CACHE_RESULTS: readonly CacheResult[] = ['hit', 'miss', 'stale', 'revalidated', 'bypass'];

export type ConnectionSide = 'client' | 'backend';

/**
 * `sluice_backend_ejections_total{reason}` values created at 0: passive checks eject after
 * consecutive connect failures or gateway errors (src/health/state.ts does not tell them apart).
 */
export const KNOWN_EJECTION_REASONS: readonly string[] = ['consecutive_failures'];

/** Methods counted under their own name; any other is `OTHER` (clients choose methods). */
const METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
]);
const OTHER_METHOD = 'OTHER';

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

// ---------------------------------------------------------------------------------------------
// Families: a metric name, its label names, and one cell per label-value combination.

type Labels = Readonly<Record<string, string>>;
type Aggregator = 'sum' | 'max' | 'min' | 'first' | 'average' | 'omit';

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
abstract class Family<C extends { readonly labels: Labels; reset(): void }> {
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

class CounterFamily extends Family<ScalarCell> {
  readonly type = 'counter';
  protected create(labels: Labels): ScalarCell {
    return new ScalarCell(labels);
  }
  protected values(): ExportedValue[] {
    return [...this.cells.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
  }
}

class GaugeFamily extends Family<ScalarCell> {
  readonly type = 'gauge';
  protected create(labels: Labels): ScalarCell {
    return new ScalarCell(labels);
  }
  protected values(): ExportedValue[] {
    return [...this.cells.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
  }
}

class HistogramFamily extends Family<HistogramCell> {
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

// ---------------------------------------------------------------------------------------------
// The metrics of the design table.

class Families {
  readonly requests: CounterFamily;
  readonly requestDuration: HistogramFamily;
  readonly responseDuration: HistogramFamily;
  readonly connectDuration: HistogramFamily;
  readonly inFlight: GaugeFamily;
  readonly requestBytes: CounterFamily;
  readonly responseBytes: CounterFamily;
  readonly up: GaugeFamily;
  readonly state: GaugeFamily;
  readonly info: GaugeFamily;
  readonly healthChecks: CounterFamily;
  readonly healthCheckDuration: HistogramFamily;
  readonly transitions: CounterFamily;
  readonly retries: CounterFamily;
  readonly errors: CounterFamily;
  readonly ejections: CounterFamily;
  readonly rejected: CounterFamily;
  readonly poolPanic: GaugeFamily;
  readonly cacheRequests: CounterFamily;
  readonly cacheBytes: GaugeFamily;
  readonly openConnections: GaugeFamily;

  constructor(r: Registry) {
    const pb = ['pool', 'backend'];
    this.requests = new CounterFamily(
      r,
      'sluice_http_requests_total',
      'Requests answered, by backend, method and status code.',
      [...pb, 'method', 'code'],
    );
    this.requestDuration = new HistogramFamily(
      r,
      'sluice_http_request_duration_seconds',
      'Time from the request head to the end of the response.',
      [...pb, 'code_class'],
    );
    this.responseDuration = new HistogramFamily(
      r,
      'sluice_backend_response_duration_seconds',
      'Time to first byte: from the request sent to the backend to its response head.',
      pb,
    );
    this.connectDuration = new HistogramFamily(
      r,
      'sluice_backend_connect_duration_seconds',
      'Time to open a TCP connection to a backend.',
      pb,
    );
    this.inFlight = new GaugeFamily(
      r,
      'sluice_http_requests_in_flight',
      'Requests being forwarded to a backend now.',
      pb,
    );
    this.requestBytes = new CounterFamily(
      r,
      'sluice_http_request_bytes_total',
      'Request body bytes received from clients and forwarded.',
      pb,
    );
    this.responseBytes = new CounterFamily(
      r,
      'sluice_http_response_bytes_total',
      'Response body bytes sent to clients.',
      pb,
    );
    this.up = new GaugeFamily(
      r,
      'sluice_backend_up',
      '1 if the backend is healthy (up, slow_start or draining), 0 if down or ejected.',
      pb,
      'max',
    );
    this.state = new GaugeFamily(
      r,
      'sluice_backend_state',
      '1 for the current state of the backend, 0 for the others.',
      [...pb, 'state'],
      'max',
    );
    this.info = new GaugeFamily(
      r,
      'sluice_backend_info',
      'Always 1: the address of each backend.',
      [...pb, 'address'],
      'max',
    );
    this.healthChecks = new CounterFamily(
      r,
      'sluice_health_checks_total',
      'Active health-check probes, by result.',
      [...pb, 'result'],
    );
    this.healthCheckDuration = new HistogramFamily(
      r,
      'sluice_health_check_duration_seconds',
      'Time an active health-check probe took.',
      pb,
    );
    this.transitions = new CounterFamily(
      r,
      'sluice_backend_state_transitions_total',
      'Backend state changes, by new state.',
      [...pb, 'to'],
    );
    this.retries = new CounterFamily(
      r,
      'sluice_retries_total',
      'Requests retried on another backend after failing on this one, by reason.',
      [...pb, 'reason'],
    );
    this.errors = new CounterFamily(
      r,
      'sluice_backend_errors_total',
      'Backend failures (connect, reset, timeout, bad response), by type.',
      [...pb, 'type'],
    );
    this.ejections = new CounterFamily(
      r,
      'sluice_backend_ejections_total',
      'Passive-check ejections, by reason.',
      [...pb, 'reason'],
    );
    this.rejected = new CounterFamily(
      r,
      'sluice_requests_rejected_total',
      'Requests Sluice answered itself without a backend, by reason.',
      ['reason'],
    );
    this.poolPanic = new GaugeFamily(
      r,
      'sluice_pool_panic',
      '1 while no backend of the pool is healthy and the pool fails open.',
      ['pool'],
      'max',
    );
    this.cacheRequests = new CounterFamily(r, 'sluice_cache_requests_total', 'Cache lookups, by result.', [
      'result',
    ]);
    this.cacheBytes = new GaugeFamily(r, 'sluice_cache_bytes', 'Bytes held by the response cache.', []);
    this.openConnections = new GaugeFamily(
      r,
      'sluice_open_connections',
      'Open TCP connections, by side (client or backend).',
      ['side'],
    );
  }
}

/**
 * The per-request series of one `backend` label: a real backend, or a pool's `(cache)` (answered
 * from the cache) and `(none)` (no backend could take it), so traffic panels count every answer.
 */
export class RequestMetrics {
  readonly pool: string;
  readonly backend: string;
  protected readonly f: Families;
  /** method -> status code -> sluice_http_requests_total series. */
  private readonly requests = new Map<string, Map<number, ScalarCell>>();
  /** Index: the first digit of the status code. */
  private readonly durationByClass: (HistogramCell | undefined)[] = new Array(10).fill(undefined);
  private readonly responseDuration: HistogramCell;
  private readonly requestBytes: ScalarCell;
  private readonly responseBytes: ScalarCell;

  constructor(families: Families, pool: string, backend: string) {
    this.f = families;
    this.pool = pool;
    this.backend = backend;
    this.responseDuration = families.responseDuration.cell(pool, backend);
    this.requestBytes = families.requestBytes.cell(pool, backend);
    this.responseBytes = families.responseBytes.cell(pool, backend);
  }

  /**
   * One request answered through this backend (whatever the status, including Sluice's own 502
   * or 504 for it). `bytesIn`: request body bytes forwarded; `bytesOut`: response body bytes sent
   * to the client; `ttfbSeconds`: from the request sent to the backend's response head, if any.
   */
  requestFinished(
    method: string,
    code: number,
    seconds: number,
    bytesIn: number,
    bytesOut: number,
    ttfbSeconds?: number,
  ): void {
    let byCode = this.requests.get(method);
    if (byCode === undefined) byCode = this.methodCells(method);
    let counter = byCode.get(code);
    if (counter === undefined) {
      counter = this.f.requests.cell(this.pool, this.backend, normalMethod(method), String(code));
      byCode.set(code, counter);
    }
    counter.value++;
    const cls = code >= 100 && code < 1000 ? (code / 100) | 0 : 0;
    let duration = this.durationByClass[cls];
    if (duration === undefined) {
      duration = this.f.requestDuration.cell(this.pool, this.backend, cls === 0 ? 'other' : `${cls}xx`);
      this.durationByClass[cls] = duration;
    }
    duration.observe(seconds);
    this.requestBytes.value += bytesIn;
    this.responseBytes.value += bytesOut;
    if (ttfbSeconds !== undefined) this.responseDuration.observe(ttfbSeconds);
  }

  /** The per-code series of a method; only the standard methods get a key of their own. */
  private methodCells(method: string): Map<number, ScalarCell> {
    const normal = normalMethod(method);
    let byCode = this.requests.get(normal);
    if (byCode === undefined) {
      byCode = new Map();
      this.requests.set(normal, byCode);
    }
    return byCode;
  }
}

/** The metrics of one backend, with every series it updates per request bound once. */
export class BackendMetrics extends RequestMetrics {
  private readonly connectDuration: HistogramCell;
  private readonly inFlightCell: ScalarCell;
  private readonly upCell: ScalarCell;
  private readonly stateCells: ReadonlyMap<BackendState, ScalarCell>;
  private readonly healthResults = new Map<string, ScalarCell>();
  private readonly healthDuration: HistogramCell;
  private readonly retryCells = new Map<string, ScalarCell>();
  private readonly errorCells = new Map<string, ScalarCell>();
  private readonly ejectionCells = new Map<string, ScalarCell>();
  private currentState: BackendState | undefined;

  constructor(families: Families, pool: string, backend: string) {
    super(families, pool, backend);
    this.connectDuration = families.connectDuration.cell(pool, backend);
    this.inFlightCell = families.inFlight.cell(pool, backend);
    this.upCell = families.up.cell(pool, backend);
    this.stateCells = new Map(BACKEND_STATES.map((s) => [s, families.state.cell(pool, backend, s)]));
    for (const s of BACKEND_STATES) families.transitions.cell(pool, backend, s);
    for (const r of HEALTH_RESULTS) this.healthResults.set(r, families.healthChecks.cell(pool, backend, r));
    this.healthDuration = families.healthCheckDuration.cell(pool, backend);
    for (const r of retryReasons) this.retryCells.set(r, families.retries.cell(pool, backend, r));
    for (const t of failureKinds) this.errorCells.set(t, families.errors.cell(pool, backend, t));
    for (const r of KNOWN_EJECTION_REASONS)
      this.ejectionCells.set(r, families.ejections.cell(pool, backend, r));
  }

  /** A TCP connection to this backend was established after `seconds`. */
  connectTimed(seconds: number): void {
    this.connectDuration.observe(seconds);
  }

  /** +1 when a request is sent to this backend, -1 when it is done with it. */
  inFlight(delta: number): void {
    this.inFlightCell.value += delta;
  }

  /** Sets the in-flight gauge outright (sampled in an `onScrape` hook instead of counted). */
  setInFlight(requests: number): void {
    this.inFlightCell.value = requests;
  }

  /** A request that failed here is retried on another backend. */
  retry(reason: string): void {
    counterFor(this.retryCells, this.f.retries, this.pool, this.backend, reason).value++;
  }

  /** A failure of this backend (a FailureKind or another kind). */
  error(type: string): void {
    counterFor(this.errorCells, this.f.errors, this.pool, this.backend, type).value++;
  }

  /** Passive checks ejected this backend. Also call `state('ejected')`. */
  ejection(reason: string): void {
    counterFor(this.ejectionCells, this.f.ejections, this.pool, this.backend, reason).value++;
  }

  /** The backend's state now; counts a transition when it changed. Cheap to call with the same state. */
  state(next: BackendState): void {
    if (next === this.currentState) return;
    if (this.currentState !== undefined) this.f.transitions.cell(this.pool, this.backend, next).value++;
    this.currentState = next;
    for (const [s, cell] of this.stateCells) cell.value = s === next ? 1 : 0;
    this.upCell.value = UP_STATES.has(next) ? 1 : 0;
  }

  get currentStateName(): BackendState | undefined {
    return this.currentState;
  }

  /** One active probe: its result and how long it took. */
  healthCheck(result: HealthResult, seconds: number): void {
    counterFor(this.healthResults, this.f.healthChecks, this.pool, this.backend, result).value++;
    this.healthDuration.observe(seconds);
  }
}

function normalMethod(method: string): string {
  return METHODS.has(method) ? method : OTHER_METHOD;
}

function counterFor(
  cache: Map<string, ScalarCell>,
  family: CounterFamily,
  pool: string,
  backend: string,
  value: string,
): ScalarCell {
  let cell = cache.get(value);
  if (cell === undefined) {
    cell = family.cell(pool, backend, value);
    cache.set(value, cell);
  }
  return cell;
}

export class Metrics {
  readonly registry: Registry;
  private readonly f: Families;
  private readonly backends = new Map<string, Map<string, BackendMetrics>>();
  private readonly rejectedCells = new Map<string, ScalarCell>();
  private readonly poolSources = new Map<string, RequestMetrics>();
  private readonly cacheCells: ReadonlyMap<string, ScalarCell>;
  private readonly cacheBytesCell: ScalarCell;
  private readonly clientConnections: ScalarCell;
  private readonly backendConnections: ScalarCell;
  private readonly samplers: (() => void)[] = [];

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry();
    this.f = new Families(this.registry);
    this.cacheCells = new Map(CACHE_RESULTS.map((r) => [r, this.f.cacheRequests.cell(r)]));
    this.cacheBytesCell = this.f.cacheBytes.cell();
    this.clientConnections = this.f.openConnections.cell('client');
    this.backendConnections = this.f.openConnections.cell('backend');
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * A configured backend: creates every series it has at 0 (requests by method and code appear
   * with their first request), `sluice_backend_info` with its address, the pool's panic gauge,
   * and sets its state (default `up`, without counting a transition). Calling it again for the
   * same backend updates the address and returns the same handle.
   */
  registerBackend(
    pool: string,
    backend: string,
    address: string,
    initial: BackendState = 'up',
  ): BackendMetrics {
    this.f.poolPanic.cell(pool);
    this.f.info.removeMatching({ pool, backend });
    this.f.info.cell(pool, backend, address).value = 1;
    return this.handle(pool, backend, initial);
  }

  /**
   * The handle of a backend, to keep (on the Backend object) and use per request. Made on first
   * use, in state `up`, if `registerBackend` was not called.
   */
  backendHandle(pool: string, backend: string): BackendMetrics {
    return this.handle(pool, backend, 'up');
  }

  /** The handle of a registered backend, without making one (undefined once removed). */
  findBackend(pool: string, backend: string): BackendMetrics | undefined {
    return this.backends.get(pool)?.get(backend);
  }

  private handle(pool: string, backend: string, initial: BackendState): BackendMetrics {
    let byName = this.backends.get(pool);
    if (byName === undefined) {
      byName = new Map();
      this.backends.set(pool, byName);
    }
    let handle = byName.get(backend);
    if (handle === undefined) {
      handle = new BackendMetrics(this.f, pool, backend);
      handle.state(initial);
      byName.set(backend, handle);
    }
    return handle;
  }

  /**
   * A backend that left its pool (reload, DNS change): all its series go, and the pool's panic
   * gauge with its last backend (a pool removed by a reload). Its old handle goes stale.
   */
  removeBackend(pool: string, backend: string): void {
    const byName = this.backends.get(pool);
    byName?.delete(backend);
    const match = { pool, backend };
    for (const family of Object.values(this.f) as Family<ScalarCell | HistogramCell>[]) {
      if (family.labelNames.includes('backend')) family.removeMatching(match);
    }
    if (byName?.size === 0) {
      this.backends.delete(pool);
      this.f.poolPanic.removeMatching({ pool });
    }
  }

  /**
   * The request series of a pool's answers that no backend gave: `(cache)` for answers from the
   * cache, `(none)` when no backend could take the request (503). Made on first use.
   */
  poolRequests(pool: string, source: '(cache)' | '(none)'): RequestMetrics {
    const key = `${pool}\u0000${source}`;
    let handle = this.poolSources.get(key);
    if (handle === undefined) {
      handle = new RequestMetrics(this.f, pool, source);
      this.poolSources.set(key, handle);
    }
    return handle;
  }

  /** A request Sluice answered itself (400, 404, 408, 413, 414, 431, 503 ...), by reason. */
  rejected(reason: string): void {
    let cell = this.rejectedCells.get(reason);
    if (cell === undefined) {
      cell = this.f.rejected.cell(reason);
      this.rejectedCells.set(reason, cell);
    }
    cell.value++;
  }

  poolPanic(pool: string, panic: boolean): void {
    this.f.poolPanic.cell(pool).value = panic ? 1 : 0;
  }

  cacheResult(result: CacheResult): void {
    const cell = this.cacheCells.get(result);
    if (cell) cell.value++;
    else this.f.cacheRequests.cell(result).value++;
  }

  cacheBytes(bytes: number): void {
    this.cacheBytesCell.value = bytes;
  }

  /** +1 when a connection opens, -1 when it closes. */
  openConnections(side: ConnectionSide, delta: number): void {
    (side === 'client' ? this.clientConnections : this.backendConnections).value += delta;
  }

  /** Sets the open-connections gauge outright (sampled in an `onScrape` hook instead of counted). */
  setOpenConnections(side: ConnectionSide, connections: number): void {
    (side === 'client' ? this.clientConnections : this.backendConnections).value = connections;
  }

  /**
   * Runs `sample` at the start of every `render()`: the place to read gauges that the program
   * keeps anyway (a pool's panic flag, a backend's in-flight count, open sockets) instead of
   * reporting every change from the hot path. Use one way or the other for a gauge, not both.
   */
  onScrape(sample: () => void): void {
    this.samplers.push(sample);
  }

  /** The text exposition format, for `GET /metrics`. */
  async render(): Promise<RenderedMetrics> {
    for (const sample of this.samplers) sample();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
