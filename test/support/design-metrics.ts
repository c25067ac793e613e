// The metrics table of the design guide (DESIGN.md, "Metrics"): name, type and labels, as the
// contract that src/observe/metrics.ts, the dashboard and the alert rules are checked against.

export interface DesignMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: readonly string[];
  /** Series exist for every configured backend from the start (pool and backend labels). */
  perBackend: boolean;
}

const pb = ['pool', 'backend'] as const;

export const DESIGN_METRICS: readonly DesignMetric[] = [
  {
    name: 'sluice_http_requests_total',
    type: 'counter',
    labels: [...pb, 'method', 'code'],
    perBackend: true,
  },
  {
    name: 'sluice_http_request_duration_seconds',
    type: 'histogram',
    labels: [...pb, 'code_class'],
    perBackend: true,
  },
  { name: 'sluice_backend_response_duration_seconds', type: 'histogram', labels: pb, perBackend: true },
  { name: 'sluice_backend_connect_duration_seconds', type: 'histogram', labels: pb, perBackend: true },
  { name: 'sluice_http_requests_in_flight', type: 'gauge', labels: pb, perBackend: true },
  { name: 'sluice_http_request_bytes_total', type: 'counter', labels: pb, perBackend: true },
  { name: 'sluice_http_response_bytes_total', type: 'counter', labels: pb, perBackend: true },
  { name: 'sluice_backend_up', type: 'gauge', labels: pb, perBackend: true },
  { name: 'sluice_backend_state', type: 'gauge', labels: [...pb, 'state'], perBackend: true },
  { name: 'sluice_backend_info', type: 'gauge', labels: [...pb, 'address'], perBackend: true },
  { name: 'sluice_health_checks_total', type: 'counter', labels: [...pb, 'result'], perBackend: true },
  { name: 'sluice_health_check_duration_seconds', type: 'histogram', labels: pb, perBackend: true },
  {
    name: 'sluice_backend_state_transitions_total',
    type: 'counter',
    labels: [...pb, 'to'],
    perBackend: true,
  },
  { name: 'sluice_retries_total', type: 'counter', labels: [...pb, 'reason'], perBackend: true },
  { name: 'sluice_backend_errors_total', type: 'counter', labels: [...pb, 'type'], perBackend: true },
  { name: 'sluice_backend_ejections_total', type: 'counter', labels: [...pb, 'reason'], perBackend: true },
  { name: 'sluice_requests_rejected_total', type: 'counter', labels: ['reason'], perBackend: false },
  { name: 'sluice_pool_panic', type: 'gauge', labels: ['pool'], perBackend: false },
  { name: 'sluice_cache_requests_total', type: 'counter', labels: ['result'], perBackend: false },
  { name: 'sluice_cache_bytes', type: 'gauge', labels: [], perBackend: false },
  { name: 'sluice_open_connections', type: 'gauge', labels: ['side'], perBackend: false },
];

/**
 * Beyond the design's table, what operators coming from HAProxy, Envoy and Prometheus look for
 * (src/observe/operator-metrics.ts; README, "Metrics and dashboards").
 */
export const OPERATOR_METRICS: readonly DesignMetric[] = [
  { name: 'sluice_build_info', type: 'gauge', labels: ['version', 'revision', 'node'], perBackend: false },
  { name: 'sluice_config_reloads_total', type: 'counter', labels: ['result'], perBackend: false },
  { name: 'sluice_config_last_reload_successful', type: 'gauge', labels: [], perBackend: false },
  {
    name: 'sluice_config_last_reload_success_timestamp_seconds',
    type: 'gauge',
    labels: [],
    perBackend: false,
  },
  { name: 'sluice_backend_open_connections', type: 'gauge', labels: pb, perBackend: true },
  { name: 'sluice_backend_idle_connections', type: 'gauge', labels: pb, perBackend: true },
  { name: 'sluice_backend_connection_attempts_total', type: 'counter', labels: pb, perBackend: true },
  { name: 'sluice_backend_connection_reuses_total', type: 'counter', labels: pb, perBackend: true },
  { name: 'sluice_backend_effective_weight', type: 'gauge', labels: pb, perBackend: true },
  {
    name: 'sluice_backend_last_state_change_timestamp_seconds',
    type: 'gauge',
    labels: pb,
    perBackend: true,
  },
  { name: 'sluice_retry_budget_exhausted_total', type: 'counter', labels: ['pool'], perBackend: false },
  { name: 'sluice_cache_objects', type: 'gauge', labels: [], perBackend: false },
  { name: 'sluice_cache_evictions_total', type: 'counter', labels: [], perBackend: false },
  { name: 'sluice_cache_max_bytes', type: 'gauge', labels: [], perBackend: false },
];

/** prom-client's default metrics the dashboard and alerts use (DESIGN.md: "Plus prom-client's default ..."). */
export const DEFAULT_METRICS_USED = [
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
  'process_cpu_seconds_total',
  'process_open_fds',
  'process_max_fds',
] as const;

/** The supervisor's per-worker series (src/cluster/metrics.ts), where a merged sum or average would hide one worker. */
export const CLUSTER_METRICS_USED = [
  'sluice_worker_event_loop_lag_p99_seconds',
  'sluice_worker_event_loop_lag_seconds',
  'sluice_worker_resident_memory_bytes',
  'sluice_worker_heap_used_bytes',
  'sluice_worker_open_fds',
  'sluice_worker_max_fds',
] as const;

/** Every metric name a panel or a rule may name: the table's, their histogram series, the defaults. */
export function knownSeriesNames(): Set<string> {
  const names = new Set<string>([...DEFAULT_METRICS_USED, ...CLUSTER_METRICS_USED]);
  for (const m of [...DESIGN_METRICS, ...OPERATOR_METRICS]) {
    names.add(m.name);
    if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

/** A minimal parser of the Prometheus text format: `# TYPE` lines and samples. */
export interface Exposition {
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (name && type) types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      );
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return { types, samples };
}
