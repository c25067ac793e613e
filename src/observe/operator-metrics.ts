// The metrics operators coming from HAProxy, Envoy and Prometheus look for, beside the design's
// table (metrics.ts): what is running (build info), how config reloads went, each backend's
// connections, weight and last state change, retries the budget refused, and the cache's
// objects, evictions and bound.
//
// Every value here is something Sluice keeps anyway (a pool's counters, a backend's health, the
// cache store), read when Prometheus scrapes: nothing is added to the request path. prom-client's
// own Gauge and Counter serve, with a `collect` that rebuilds their series from that state, so a
// backend removed by a reload or DNS disappears from them with it.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BuildInfo } from './build-info.ts';
import type { ReloadHistory } from './reload-history.ts';

/** What is read of a backend (upstream/backend.ts; observe sits below upstream, hence a shape). */
export interface BackendView {
  readonly name: string;
  readonly connections: {
    readonly open: number;
    readonly idleCount: number;
    readonly opened: number;
    readonly reused: number;
  };
  readonly effectiveWeight: number;
  readonly health: { readonly since: number };
}

/** What is read of a pool (upstream/pool.ts). */
export interface PoolView {
  readonly name: string;
  readonly backends: readonly BackendView[];
  readonly retryBudget: { readonly refused: number };
}

/** What the metrics read, each time Prometheus scrapes. */
export interface OperatorSources {
  build: BuildInfo;
  reloads: ReloadHistory;
  /** The pools as they are now (a reload replaces them). */
  pools(): ReadonlyMap<string, PoolView>;
  /** The response cache's store. */
  cache(): { readonly count: number; readonly evictions: number; readonly limit: number };
}

type PerBackend = (backend: BackendView) => number;

/** One series per backend, each read from the backend's own state. */
const PER_BACKEND: readonly { kind: 'gauge' | 'counter'; name: string; help: string; read: PerBackend }[] = [
  {
    kind: 'gauge',
    name: 'sluice_backend_open_connections',
    help: 'Connections open to the backend, busy and idle.',
    read: (b) => b.connections.open,
  },
  {
    kind: 'gauge',
    name: 'sluice_backend_idle_connections',
    help: 'Kept-alive connections idle in the backend’s pool.',
    read: (b) => b.connections.idleCount,
  },
  {
    kind: 'counter',
    name: 'sluice_backend_connection_attempts_total',
    help: 'Connections Sluice tried to open to the backend (HAProxy’s connection_attempts).',
    read: (b) => b.connections.opened,
  },
  {
    kind: 'counter',
    name: 'sluice_backend_connection_reuses_total',
    help: 'Requests sent on a kept-alive connection instead of a new one (HAProxy’s reuses).',
    read: (b) => b.connections.reused,
  },
  {
    kind: 'gauge',
    name: 'sluice_backend_effective_weight',
    help: 'The weight the balancer uses now: the configured one, ramped from 10% during slow start.',
    read: (b) => b.effectiveWeight,
  },
  {
    kind: 'gauge',
    name: 'sluice_backend_last_state_change_timestamp_seconds',
    help: 'When the backend last changed state (or was added), in Unix seconds.',
    read: (b) => b.health.since / 1000,
  },
];

export function registerOperatorMetrics(registry: Registry, sources: OperatorSources): void {
  const registers = [registry];
  const build = new Gauge({
    name: 'sluice_build_info',
    help: 'Always 1; the labels say which Sluice runs: version, git revision, Node.js version.',
    labelNames: ['version', 'revision', 'node'],
    registers,
  });
  build.set(
    { version: sources.build.version, revision: sources.build.revision, node: sources.build.node },
    1,
  );

  const { reloads } = sources;
  new Counter({
    name: 'sluice_config_reloads_total',
    help: 'Config reloads (SIGHUP) by result: success, or failure (the running config was kept).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'success' }, reloads.successes);
      this.inc({ result: 'failure' }, reloads.failures);
    },
  });
  new Gauge({
    name: 'sluice_config_last_reload_successful',
    help: '1 if the last config load (the start or a SIGHUP) succeeded, 0 if it failed.',
    registers,
    collect() {
      this.set(reloads.lastSuccessful ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_config_last_reload_success_timestamp_seconds',
    help: 'When the config was last loaded successfully (the start or a SIGHUP), in Unix seconds.',
    registers,
    collect() {
      this.set(reloads.lastSuccessAt / 1000);
    },
  });

  /** Each backend of every pool now, with its labels and the value `read` gives. */
  const eachBackend = (
    read: PerBackend,
    apply: (labels: { pool: string; backend: string }, value: number) => void,
  ) => {
    for (const pool of sources.pools().values()) {
      for (const backend of pool.backends) apply({ pool: pool.name, backend: backend.name }, read(backend));
    }
  };
  for (const { kind, name, help, read } of PER_BACKEND) {
    const options = { name, help, labelNames: ['pool', 'backend'], registers };
    if (kind === 'gauge') {
      new Gauge({
        ...options,
        collect() {
          this.reset();
          eachBackend(read, (labels, value) => this.set(labels, value));
        },
      });
    } else {
      new Counter({
        ...options,
        collect() {
          this.reset();
          eachBackend(read, (labels, value) => this.inc(labels, value));
        },
      });
    }
  }

  new Counter({
    name: 'sluice_retry_budget_exhausted_total',
    help: 'Retries the pool’s retry budget refused (Envoy’s upstream_rq_retry_overflow).',
    labelNames: ['pool'],
    registers,
    collect() {
      this.reset();
      for (const pool of sources.pools().values()) this.inc({ pool: pool.name }, pool.retryBudget.refused);
    },
  });

  new Gauge({
    name: 'sluice_cache_objects',
    help: 'Responses (variants) held by the cache.',
    registers,
    collect() {
      this.set(sources.cache().count);
    },
  });
  new Counter({
    name: 'sluice_cache_evictions_total',
    help: 'Cached responses evicted (least recently used first) to stay under cache.maxBytes.',
    registers,
    collect() {
      this.reset();
      this.inc(sources.cache().evictions);
    },
  });
  new Gauge({
    name: 'sluice_cache_max_bytes',
    help: 'The configured bound of sluice_cache_bytes (cache.maxBytes).',
    registers,
    collect() {
      this.set(sources.cache().limit);
    },
  });
}
