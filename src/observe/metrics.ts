// Prometheus metrics: one prom-client Registry per Sluice instance (never the global one, so a
// test process can run several), every `sluice_*` metric of the design table (./catalogue.ts,
// on the counter engine of ./families.ts), and prom-client's default process and Node.js
// metrics (event-loop lag, memory, GC). The hot path holds handles made once (a Backend takes
// its own when it is made, src/upstream/backend.ts):
//
//   const m = metrics.registerBackend('web', 'web-1', '10.0.0.1:80');  // at start: all at 0
//   m.connectTimed(s); ... m.requestFinished('GET', 200, s, in, out, ttfb);
//
// Gauges the program keeps anyway (in-flight counts, open sockets, a pool's panic flag) are read
// at scrape time, in an `onScrape` hook, at no cost per request.
import { collectDefaultMetrics, Registry } from 'prom-client';
import {
  BackendMetrics,
  type BackendState,
  CACHE_RESULTS,
  type CacheResult,
  type ConnectionSide,
  Families,
  REJECT_REASONS,
  RequestMetrics,
} from './catalogue.ts';
import type { Family, HistogramCell, ScalarCell } from './families.ts';

export {
  BACKEND_STATES,
  BackendMetrics,
  CACHE_RESULTS,
  type CacheResult,
  HEALTH_RESULTS,
  REJECT_REASONS,
  type RequestMetrics,
} from './catalogue.ts';

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

/** prom-client's JSON form of a registry, what AggregatorRegistry sums. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

export class Metrics {
  readonly registry: Registry;
  private readonly f: Families;
  private readonly backends = new Map<string, Map<string, BackendMetrics>>();
  private readonly rejectedCells = new Map<string, ScalarCell>();
  /** Per pool: the request series of answers from the cache, and of those no backend could take. */
  private readonly cacheSources = new Map<string, RequestMetrics>();
  private readonly noneSources = new Map<string, RequestMetrics>();
  private readonly cacheCells: ReadonlyMap<string, ScalarCell>;
  private readonly cacheBytesCell: ScalarCell;
  private readonly clientConnections: ScalarCell;
  private readonly backendConnections: ScalarCell;
  private readonly samplers: (() => void)[] = [];

  constructor(options: MetricsOptions = {}) {
    this.registry = new Registry();
    this.f = new Families(this.registry);
    this.cacheCells = new Map(CACHE_RESULTS.map((r) => [r, this.f.cacheRequests.cell(r)]));
    for (const reason of REJECT_REASONS) this.rejectedCells.set(reason, this.f.rejected.cell(reason));
    this.cacheBytesCell = this.f.cacheBytes.cell();
    this.clientConnections = this.f.openConnections.cell('client');
    this.backendConnections = this.f.openConnections.cell('backend');
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * A configured backend: creates every series it has at 0 (requests by method and code appear
   * with their first request), `sluice_backend_info` with its address, the pool's panic gauge,
   * and sets its state (default `up`, without counting a transition). Calling it again for the
   * same name (a backend replaced by a reload: new address, weight or checks) returns the same
   * handle, so the series go on through the change (the old one's draining requests count there
   * too); it moves the address and the state (a transition, as the new backend's).
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
      byName.set(backend, handle);
    }
    handle.state(initial);
    return handle;
  }

  /**
   * A backend that left its pool (reload, DNS change): all its series go, and the pool's panic
   * gauge with its last backend (a pool removed by a reload). What its handle still reports (a
   * draining request) is counted nowhere, and brings none of its series back.
   */
  removeBackend(pool: string, backend: string): void {
    const byName = this.backends.get(pool);
    byName?.get(backend)?.detach();
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
    // One map per source, keyed by the pool's name (a config string: its hash is known).
    const sources = source === '(cache)' ? this.cacheSources : this.noneSources;
    let handle = sources.get(pool);
    if (handle === undefined) {
      handle = new RequestMetrics(this.f, pool, source);
      sources.set(pool, handle);
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

  /** An error that escaped the code meant to handle it (see src/observe/faults.ts). */
  internalError(where: string): void {
    this.f.internalErrors.cell(where).value++;
  }

  /** A local resource error (EMFILE, ENFILE, ENOMEM, EADDRNOTAVAIL …), by its code. */
  localError(type: string): void {
    this.f.localErrors.cell(type).value++;
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

  /** Every series as prom-client's JSON, to be summed with other processes' (AggregatorRegistry). */
  async json(): Promise<MetricsJson> {
    for (const sample of this.samplers) sample();
    return this.registry.getMetricsAsJSON();
  }
}
