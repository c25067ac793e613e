// A bounded load generator for chaos tests: `workers` concurrent loops, each sending one request
// at a time over a keep-alive connection (or a new one each, `keepAlive: false`; node:http) to
// Sluice on 127.0.0.1, until stopped, until `durationMs` or `maxRequests`, and never past
// HARD_MAX_DURATION_MS. Every request is recorded (start, end, status or error kind, X-Backend)
// so a test can ask afterwards what clients saw and when: failures by kind, per-backend counts
// per time window, latencies.
//
// Times are milliseconds since the epoch with sub-millisecond precision (`now()`), so they can be
// compared with moments a test takes itself with the same `now()`.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** The only host load is ever sent to. */
export const LOAD_HOST = '127.0.0.1';
/** No run outlives this, whatever it was asked. */
export const HARD_MAX_DURATION_MS = 120_000;

/** Epoch milliseconds, monotonic within the process. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export interface LoadRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface LoadOptions {
  /** Sluice's port on 127.0.0.1 (or on `address`). */
  port: number;
  /**
   * Where to send instead of 127.0.0.1: only an address on a Docker network the test itself
   * created (the VIP of the HA pair's chaos test).
   */
  address?: string;
  /** Concurrent workers (default 8), each with at most one request in flight. */
  workers?: number;
  /** Stop after this long (default 30 s; capped at HARD_MAX_DURATION_MS). */
  durationMs?: number;
  /** Stop after this many requests were sent (default: no limit). */
  maxRequests?: number;
  /** Client-side bound on one request, head and body (default 10 s): past it the kind is `timeout`. */
  requestTimeoutMs?: number;
  /** Each worker waits this long between its requests (default 0): keeps the rate bounded. */
  pauseMs?: number;
  /** Keep connections open between requests (default true); false opens one per request. */
  keepAlive?: boolean;
  /** Host header (default `chaos.test`). */
  host?: string;
  /** What to send; default `GET /1k.txt`. `seq` counts the requests of the whole run from 0. */
  request?: (seq: number, worker: number) => LoadRequest;
  /** A request counts as ok when this says so (default: a 2xx or 3xx status). */
  ok?: (status: number) => boolean;
}

export interface LoadRecord {
  seq: number;
  worker: number;
  method: string;
  path: string;
  /** When the request was started and when it ended (response complete, or failed). */
  start: number;
  end: number;
  /** The status, when a response head arrived. */
  status?: number;
  /** The X-Backend header, when the response had one (Sluice's own answers have none). */
  backend?: string;
  ok: boolean;
  /**
   * Why it failed: the status (`'502'`), a socket error code before any response (`ECONNRESET`,
   * `ECONNREFUSED`, `EPIPE`, ...), `truncated` (the connection died within the body) or `timeout`
   * (the client-side timeout ran out). Undefined for an ok request.
   */
  failure?: string;
}

export interface LoadSummary {
  /** Requests started. */
  sent: number;
  /** Requests finished (ok or failed); equals `sent` once the run is over. */
  completed: number;
  ok: number;
  failed: number;
  /** Failed requests by kind (see LoadRecord.failure). */
  failures: Record<string, number>;
  /** Responses by status (including ok ones). */
  statuses: Record<string, number>;
  /** Responses by X-Backend. */
  perBackend: Record<string, number>;
  maxLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** From the first start to the last end. */
  spanMs: number;
}

export interface LoadWindow {
  /** The window is [from, to). */
  from: number;
  to: number;
  total: number;
  ok: number;
  failed: number;
  perBackend: Record<string, number>;
}

export interface RecordFilter {
  /** Only requests started at or after this. */
  from?: number;
  /** Only requests started before this. */
  to?: number;
}

const defaultRequest = (): LoadRequest => ({ path: '/1k.txt' });
const defaultOk = (status: number) => status >= 200 && status < 400;

export class LoadRun {
  readonly records: LoadRecord[] = [];
  readonly startedAt = now();
  /** Resolves with the summary once every worker has finished. */
  readonly done: Promise<LoadSummary>;
  private stopping = false;
  private sent = 0;
  private readonly agent: http.Agent;
  private readonly options: Required<Omit<LoadOptions, 'maxRequests'>> & { maxRequests: number };
  private readonly timer: NodeJS.Timeout;
  private readonly wakeups = new Set<() => void>();

  constructor(options: LoadOptions) {
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 65_535)
      throw new Error(`load: bad port ${options.port}`);
    this.options = {
      port: options.port,
      address: options.address ?? LOAD_HOST,
      workers: Math.max(1, options.workers ?? 8),
      durationMs: Math.min(options.durationMs ?? 30_000, HARD_MAX_DURATION_MS),
      maxRequests: options.maxRequests ?? Number.POSITIVE_INFINITY,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      pauseMs: options.pauseMs ?? 0,
      keepAlive: options.keepAlive ?? true,
      host: options.host ?? 'chaos.test',
      request: options.request ?? defaultRequest,
      ok: options.ok ?? defaultOk,
    };
    this.agent = new http.Agent({ keepAlive: this.options.keepAlive, maxSockets: this.options.workers });
    this.timer = setTimeout(() => this.requestStop(), this.options.durationMs);
    const workers = Array.from({ length: this.options.workers }, (_, worker) => this.work(worker));
    this.done = Promise.all(workers).then(() => {
      clearTimeout(this.timer);
      this.agent.destroy();
      return this.summary();
    });
  }

  /** Requests started so far. */
  get count(): number {
    return this.sent;
  }

  /** Whether the run is stopping or stopped. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Stops sending; resolves once every request in flight has ended (within requestTimeoutMs). */
  stop(): Promise<LoadSummary> {
    this.requestStop();
    return this.done;
  }

  /** Summary of every request, or of those started within `filter`. */
  summary(filter: RecordFilter = {}): LoadSummary {
    const from = filter.from ?? Number.NEGATIVE_INFINITY;
    const to = filter.to ?? Number.POSITIVE_INFINITY;
    const records = this.records.filter((r) => r.start >= from && r.start < to);
    const failures: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    const perBackend: Record<string, number> = {};
    const latencies: number[] = [];
    let ok = 0;
    let completed = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const r of records) {
      first = Math.min(first, r.start);
      if (r.end === 0) continue;
      completed++;
      last = Math.max(last, r.end);
      latencies.push(r.end - r.start);
      if (r.ok) ok++;
      else if (r.failure) failures[r.failure] = (failures[r.failure] ?? 0) + 1;
      if (r.status !== undefined) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.backend !== undefined) perBackend[r.backend] = (perBackend[r.backend] ?? 0) + 1;
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies.length === 0
        ? 0
        : (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
    return {
      sent: records.length,
      completed,
      ok,
      failed: completed - ok,
      failures,
      statuses,
      perBackend,
      maxLatencyMs: round(latencies.at(-1) ?? 0),
      p50LatencyMs: round(pct(0.5)),
      p99LatencyMs: round(pct(0.99)),
      spanMs: round(completed === 0 ? 0 : last - first),
    };
  }

  /**
   * Consecutive windows of `sizeMs` from `from` (default: the run's start) to `to` (default: the
   * last request's start); a request belongs to the window in which it started.
   */
  windows(sizeMs: number, filter: RecordFilter = {}): LoadWindow[] {
    const from = filter.from ?? this.startedAt;
    let last = from;
    for (const r of this.records) last = Math.max(last, r.start);
    const to = filter.to ?? last + 1;
    const windows: LoadWindow[] = [];
    for (let start = from; start < to; start += sizeMs) {
      windows.push({
        from: start,
        to: Math.min(start + sizeMs, to),
        total: 0,
        ok: 0,
        failed: 0,
        perBackend: {},
      });
    }
    for (const r of this.records) {
      if (r.end === 0 || r.start < from || r.start >= to) continue;
      const w = windows[Math.floor((r.start - from) / sizeMs)];
      if (!w) continue;
      w.total++;
      if (r.ok) w.ok++;
      else w.failed++;
      if (r.backend !== undefined) w.perBackend[r.backend] = (w.perBackend[r.backend] ?? 0) + 1;
    }
    return windows;
  }

  /** Records (finished ones only) started within `filter`. */
  select(filter: RecordFilter = {}): LoadRecord[] {
    const from = filter.from ?? Number.NEGATIVE_INFINITY;
    const to = filter.to ?? Number.POSITIVE_INFINITY;
    return this.records.filter((r) => r.end !== 0 && r.start >= from && r.start < to);
  }

  /** Resolves when at least `count` requests have finished after `since` (or the run ended). */
  async waitForRequests(count: number, since = now()): Promise<void> {
    while (!this.stopping && this.records.filter((r) => r.end !== 0 && r.start >= since).length < count) {
      await sleep(20);
    }
  }

  private requestStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.timer);
    for (const wake of this.wakeups) wake();
  }

  private async work(worker: number): Promise<void> {
    const { pauseMs, maxRequests } = this.options;
    while (!this.stopping && this.sent < maxRequests) {
      const seq = this.sent++;
      await this.send(seq, worker);
      if (pauseMs > 0 && !this.stopping) await this.pause(pauseMs);
    }
    if (this.sent >= maxRequests) this.requestStop();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakeups.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeups.add(wake);
    });
  }

  private send(seq: number, worker: number): Promise<void> {
    const { port, address, host, requestTimeoutMs, ok } = this.options;
    const spec = this.options.request(seq, worker);
    const method = spec.method ?? 'GET';
    const record: LoadRecord = { seq, worker, method, path: spec.path, start: now(), end: 0, ok: false };
    this.records.push(record);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (failure: string | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        record.end = now();
        record.ok = failure === undefined;
        if (failure !== undefined) record.failure = failure;
        resolve();
      };
      const body = spec.body;
      const headers: Record<string, string> = { host, ...spec.headers };
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      else if (method !== 'GET' && method !== 'HEAD') headers['content-length'] = '0';
      const req = http.request({
        host: address,
        port,
        method,
        path: spec.path,
        headers,
        agent: this.agent,
      });
      const timer = setTimeout(() => {
        settle('timeout');
        req.destroy();
      }, requestTimeoutMs);
      req.on('response', (res) => {
        record.status = res.statusCode ?? 0;
        const backend = res.headers['x-backend'];
        if (typeof backend === 'string') record.backend = backend;
        res.on('data', () => {});
        res.on('end', () => settle(ok(record.status ?? 0) ? undefined : String(record.status)));
        res.on('error', () => settle('truncated'));
        res.on('aborted', () => settle('truncated'));
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        settle(record.status === undefined ? (error.code ?? error.message) : 'truncated');
      });
      req.end(body);
    });
  }
}

/** Starts a run at once; see LoadOptions. */
export function startLoad(options: LoadOptions): LoadRun {
  return new LoadRun(options);
}

/** The share (0..1) of a window's backend-answered requests that `backend` answered. */
export function share(window: LoadWindow, backend: string): number {
  const answered = Object.values(window.perBackend).reduce((sum, n) => sum + n, 0);
  return answered === 0 ? 0 : (window.perBackend[backend] ?? 0) / answered;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
