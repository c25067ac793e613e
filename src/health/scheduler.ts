// Runs the active checks of a set of backends and feeds each result to the backend's state
// machine. Per backend: the first probe at start (spread a little so N backends are not probed
// at the same instant), then one every `interval` +-10% jitter, measured from the previous
// probe's start; while a rise or fall run is under way, every `interval / 4` (at least 250 ms,
// HAProxy's fastinter idea) so a verdict comes quickly. Never more than one probe in flight per
// backend. Timers are unref'd and the clock, timers, randomness and probe are injectable.
import type { HealthConfig } from '../config/types.ts';
import { type ProbeFunction, type ProbeResult, probe as realProbe } from './probe.ts';
import type { BackendHealth } from './state.ts';

export interface HealthTarget {
  /** Stable key for `remove` (e.g. `pool/backend`). */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly health: HealthConfig;
  readonly state: BackendHealth;
  /** Host header when `health.host` is unset; default `host:port` (IPv6 in brackets). */
  readonly hostHeader?: string;
}

export interface SchedulerTimers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface HealthSchedulerOptions<T extends HealthTarget> {
  probe?: ProbeFunction;
  /** Milliseconds; default Date.now. */
  now?: () => number;
  timers?: SchedulerTimers;
  /** In [0, 1); default Math.random. */
  random?: () => number;
  /** After each result is recorded in the target's state (metrics: result, duration). */
  onResult?: (target: T, result: ProbeResult) => void;
  /** A hook or a probe threw; default: a process warning. Checking goes on either way. */
  onError?: (error: unknown, target: T) => void;
}

/** Jitter applied to every interval: +-10%. */
export const intervalJitter = 0.1;
/** Floor of the fast interval used while a backend changes state. */
export const minFastIntervalMs = 250;
/** The first probes of all backends are spread over at most this much. */
export const maxStartSpreadMs = 500;

/** The interval used while a rise or fall run is under way. */
export function fastInterval(interval: number): number {
  return Math.min(interval, Math.max(minFastIntervalMs, interval / 4));
}

/** Window over which first probes are spread: a quarter interval, at most 500 ms. */
function startWindow(interval: number): number {
  return Math.min(interval / 4, maxStartSpreadMs);
}

const defaultTimers: SchedulerTimers = {
  set(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clear(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface Entry<T> {
  readonly target: T;
  active: boolean;
  timer: unknown;
  inFlight: Promise<void> | undefined;
  abort: AbortController | undefined;
}

function defaultHostHeader(target: HealthTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${host}:${target.port}`;
}

export class HealthScheduler<T extends HealthTarget = HealthTarget> {
  private readonly targets = new Map<string, T>();
  private readonly entries = new Map<string, Entry<T>>();
  private readonly draining = new Set<Promise<void>>();
  private running = false;
  private readonly probeFn: ProbeFunction;
  private readonly now: () => number;
  private readonly timers: SchedulerTimers;
  private readonly random: () => number;
  private readonly onResult: ((target: T, result: ProbeResult) => void) | undefined;
  private readonly onError: (error: unknown, target: T) => void;

  constructor(targets: Iterable<T> = [], options: HealthSchedulerOptions<T> = {}) {
    for (const target of targets) this.targets.set(target.id, target);
    this.probeFn = options.probe ?? realProbe;
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? defaultTimers;
    this.random = options.random ?? Math.random;
    this.onResult = options.onResult;
    this.onError =
      options.onError ??
      ((error, target) => process.emitWarning(`health check of ${target.id}: ${String(error)}`));
  }

  get started(): boolean {
    return this.running;
  }

  /** Ids of the targets being checked. */
  ids(): string[] {
    return [...this.targets.keys()];
  }

  /** Starts checking: first probes now, spread over a short window. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const count = this.targets.size;
    let index = 0;
    for (const target of this.targets.values()) {
      const delay = (index / count) * startWindow(target.health.interval);
      this.activate(target, delay);
      index++;
    }
  }

  /** Clears every timer, aborts probes in flight and waits until they have settled. */
  async stop(): Promise<void> {
    this.running = false;
    for (const entry of this.entries.values()) this.deactivate(entry);
    this.entries.clear();
    await Promise.allSettled([...this.draining]);
  }

  /** Adds a target (or replaces the one with the same id); checked at once when started. */
  add(target: T): void {
    this.remove(target.id);
    this.targets.set(target.id, target);
    if (this.running) this.activate(target, this.random() * startWindow(target.health.interval));
  }

  /** Stops checking a target; a probe in flight is aborted and its result dropped. */
  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (entry) {
      this.deactivate(entry);
      this.entries.delete(id);
    }
    return this.targets.delete(id);
  }

  private activate(target: T, delay: number): void {
    const entry: Entry<T> = { target, active: true, timer: undefined, inFlight: undefined, abort: undefined };
    this.entries.set(target.id, entry);
    this.schedule(entry, delay);
  }

  private deactivate(entry: Entry<T>): void {
    entry.active = false;
    if (entry.timer !== undefined) this.timers.clear(entry.timer);
    entry.timer = undefined;
    entry.abort?.abort();
  }

  private schedule(entry: Entry<T>, delay: number): void {
    entry.timer = this.timers.set(
      () => {
        entry.timer = undefined;
        this.run(entry);
      },
      Math.max(0, Math.round(delay)),
    );
  }

  private run(entry: Entry<T>): void {
    if (!entry.active || entry.inFlight !== undefined) return;
    const { target } = entry;
    const { health } = target;
    const startedAt = this.now();
    target.state.advance(startedAt);
    const abort = new AbortController();
    entry.abort = abort;
    let pending: Promise<ProbeResult>;
    try {
      pending = this.probeFn(
        { host: target.host, port: target.port },
        {
          path: health.path,
          hostHeader: health.host ?? target.hostHeader ?? defaultHostHeader(target),
          timeoutMs: health.timeout,
          expectStatus: health.expectStatus,
          signal: abort.signal,
        },
      );
    } catch (error) {
      pending = Promise.reject(error);
    }
    const done = pending.then(
      (result) => this.complete(entry, startedAt, result),
      (error: unknown) => this.complete(entry, startedAt, undefined, error),
    );
    entry.inFlight = done;
    this.draining.add(done);
    void done.finally(() => this.draining.delete(done));
  }

  private complete(
    entry: Entry<T>,
    startedAt: number,
    result: ProbeResult | undefined,
    error?: unknown,
  ): void {
    entry.inFlight = undefined;
    entry.abort = undefined;
    if (!entry.active) return;
    const { target } = entry;
    const now = this.now();
    try {
      if (result === undefined) throw error;
      target.state.recordProbe(result, now);
      this.onResult?.(target, result);
    } catch (hookError) {
      this.report(hookError, target);
    }
    const interval = target.health.interval;
    const base = target.state.changing ? fastInterval(interval) : interval;
    const jittered = base * (1 + (this.random() * 2 - 1) * intervalJitter);
    this.schedule(entry, startedAt + jittered - now);
  }

  private report(error: unknown, target: T): void {
    try {
      this.onError(error, target);
    } catch {
      // An error hook that throws has nowhere left to report to; checking must go on.
    }
  }
}
