// The catalogue of Sluice's metrics: every `sluice_*` family of the design table, and the
// handles the hot path holds: per-request series of one backend label (RequestMetrics) and a
// backend's own series (BackendMetrics). Label values are bounded: methods outside the standard
// set count as `OTHER`; reasons and types are strings chosen by Sluice's code (never by a
// client), the known ones created at 0 when a backend is registered.
import { Registry } from 'prom-client';
import { type ProbeResultKind, probeResultKinds } from '../health/probe.ts';
import { type BackendState, backendStates } from '../health/state.ts';
import { failureKinds, retryReasons } from '../http/failure-kinds.ts';
import {
  CounterFamily,
  GaugeFamily,
  type HistogramCell,
  HistogramFamily,
  type ScalarCell,
} from './families.ts';

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

/**
 * The `sluice_requests_rejected_total{reason}` values created at 0 on start, so that rate() and
 * increase() see the first of each: the requests Sluice answers itself before a pool takes them
 * (src/proxy/admission.ts, rejectionReason and the timeouts of src/proxy/client-connection.ts),
 * the connection limit's, and the admin port's refusals. Rarer reasons (`local_emfile` …) are
 * made on first use.
 */
export const REJECT_REASONS: readonly string[] = [
  'bad_request',
  'bad_request_body',
  'bad_path',
  'body_too_large',
  'uri_too_long',
  'header_too_large',
  'not_implemented',
  'version_not_supported',
  'connect',
  'loop',
  'no_route',
  'no_pool',
  'client_timeout',
  'client_body_timeout',
  'client_not_reading',
  'max_connections',
  'idle_evicted',
  'accept_backoff',
  'admin_unauthorized',
  'admin_browser',
  'admin_host',
  'admin_max_connections',
  'admin_idle_evicted',
];

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

export class Families {
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
  readonly internalErrors: CounterFamily;
  readonly localErrors: CounterFamily;

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
      'Response bytes sent to clients, heads included (as the access log bytesOut).',
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
    this.internalErrors = new CounterFamily(
      r,
      'sluice_internal_errors_total',
      'Bugs that escaped (a connection closed, the process went on), by where they were caught.',
      ['where'],
    );
    this.localErrors = new CounterFamily(
      r,
      'sluice_local_errors_total',
      'Failures of this machine (descriptors, memory, local ports), never counted against a backend.',
      ['type'],
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
  protected f: Families;
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

  /**
   * Its series were removed: cells it made already are nobody's, and the ones it would make
   * next (a new code, reason or transition) go to families no registry renders.
   */
  detach(): void {
    this.f = new Families(new Registry());
  }

  /** A TCP connection to this backend was established after `seconds`. */
  connectTimed(seconds: number): void {
    this.connectDuration.observe(seconds);
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

export function counterFor(
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
