// The health state machine of one backend: pure, no timers, no I/O. Time is passed in (ms) and
// every time-driven change (an ejection ending, slow start finishing, the ejection multiplier
// decaying) is applied lazily by `advance(now)`, which every other method calls first.
//
// Two inputs drive it:
// - Active checks (`recordProbe`), with HAProxy's rise/fall semantics: a backend that is up goes
//   down after `fall` consecutive failed checks; one that is down comes back after `rise`
//   consecutive passing checks. A pass resets the failure run and a failure resets the pass run.
// - Passive checks (`recordPassive`), after Envoy's outlier detection: `ejectAfter` (5)
//   consecutive connect failures or gateway errors on real traffic eject the backend for
//   `baseEjectionMs` (30 s), doubling with each ejection up to `maxEjectionMs` (300 s). The pool
//   may refuse an ejection (`canEject`, at most half a pool ejected). An ejection ends when its
//   time is up or, earlier, when an active check that started after the ejection passes. The
//   multiplier steps back down once per `ejectionDecayMs` (30 s) spent not ejected.
//
// A backend coming back from down or ejected (or leaving drain) spends `slowStartMs` (10 s) in
// `slow_start`: routable, with a weight factor ramping linearly from 0.1 to 1.0.
//
// Initial state: `up` by default, so traffic flows at once and a dead backend is found by the
// first `fall` checks (the scheduler runs the first one at start). `down` makes a new backend
// wait for `rise` passes; `slow_start` suits a backend added at run time (DNS, reload).
//
// Draining is an administrative overlay: while drained the backend reports `draining` and is not
// routable, but checks keep updating its health underneath; `undrain` reveals that health
// (an up backend resumes in slow start). Transitions are reported in terms of the visible state
// only, so a backend that fails its checks while drained shows `draining -> down` on undrain.
import type { ProbeResultKind } from './probe.ts';

export type BackendState = 'up' | 'down' | 'ejected' | 'draining' | 'slow_start';

/** Every state, e.g. to create the `sluice_backend_state{state}` series at 0. */
export const backendStates: readonly BackendState[] = ['up', 'down', 'ejected', 'draining', 'slow_start'];

/** What caused a transition: an active check, real traffic, the passing of time, or an operator. */
export type TransitionCause = 'active' | 'passive' | 'timer' | 'admin';

export interface Transition {
  from: BackendState;
  to: BackendState;
  /** Human text for the log line, e.g. `3 consecutive failed checks, last: HEAD / answered 503`. */
  reason: string;
  /** When it happened (ms); for lazily applied time-driven changes, the moment they were due. */
  at: number;
  cause: TransitionCause;
}

/** The part of a probe result the state machine reads (a `ProbeResult` fits). */
export interface CheckOutcome {
  result: ProbeResultKind;
  reason: string;
  /** Lets a probe that started before an ejection be told apart from one started after it. */
  durationMs?: number;
}

export interface BackendHealthOptions {
  rise: number;
  fall: number;
  /** State at construction; default `up`. */
  initial?: 'up' | 'down' | 'slow_start';
  /** Length of the weight ramp after coming back; 0 turns slow start off. Default 10 s. */
  slowStartMs?: number;
  /** Consecutive passive failures that eject the backend. Default 5. */
  ejectAfter?: number;
  /** First ejection's length; each further one doubles it. Default 30 s. */
  baseEjectionMs?: number;
  /** Cap on an ejection's length. Default 300 s. */
  maxEjectionMs?: number;
  /** Time not ejected after which the ejection multiplier steps back once. Default 30 s. */
  ejectionDecayMs?: number;
  /** Whether a passing active check ends an ejection early. Default true. */
  probeEndsEjection?: boolean;
  onTransition?: (transition: Transition) => void;
}

export const healthDefaults = {
  slowStartMs: 10_000,
  ejectAfter: 5,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  ejectionDecayMs: 30_000,
  maxEjectionPercent: 50,
  /** Weight factor at the start of slow start. */
  slowStartFactor: 0.1,
} as const;

/**
 * Whether one more backend of a pool may be ejected when `ejected` of `total` already are:
 * never more than `maxPercent` of the pool (so a pool of one never ejects its only backend).
 */
export function ejectionAllowed(
  ejected: number,
  total: number,
  maxPercent: number = healthDefaults.maxEjectionPercent,
): boolean {
  return (ejected + 1) * 100 <= total * maxPercent;
}

/** `30 s`, `1.5 s`, `250 ms` */
export function formatDuration(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A plain copy of the state for /status and logs. */
export interface HealthSnapshot {
  state: BackendState;
  since: number;
  routable: boolean;
  weightFactor: number;
  lastResult: ProbeResultKind | undefined;
  lastReason: string | undefined;
  consecutiveFailures: number;
  ejections: number;
  ejectedUntil: number | undefined;
}

type Health = 'up' | 'down' | 'ejected' | 'slow_start';

/**
 * Everything a machine knows, as plain data (structured-clone and JSON safe): how one process
 * that owns the machine (a cluster's supervisor) hands its verdicts to others (its workers).
 */
export interface HealthRecord {
  health: Health;
  drained: boolean;
  changedAt: number;
  clock: number;
  passes: number;
  fails: number;
  passiveFailures: number;
  slowStartAt: number;
  ejectedAt: number;
  ejectionEnd: number;
  ejectionMs: number;
  level: number;
  decayFrom: number;
  ejectionCount: number;
  refusedCount: number;
  result: ProbeResultKind | null;
  reason: string | null;
  last: Transition | null;
}

export class BackendHealth {
  /** Called for every change of the visible state; may be replaced after construction. */
  onTransition: ((transition: Transition) => void) | undefined;
  /** A replica's transitions are its owner's to report (src/cluster/replica.ts). */
  protected quiet = false;

  private readonly rise: number;
  private readonly fall: number;
  private readonly slowStartMs: number;
  private readonly ejectAfter: number;
  private readonly baseEjectionMs: number;
  private readonly maxEjectionMs: number;
  private readonly ejectionDecayMs: number;
  private readonly probeEndsEjection: boolean;

  /** Health as checks see it; the visible state is `draining` over it while drained. */
  private health: Health;
  private drained = false;
  private changedAt: number;
  /** Latest time seen; time never runs backwards here. */
  private clock: number;
  private passes = 0;
  private fails = 0;
  private passiveFailures = 0;
  private slowStartAt = 0;
  private ejectedAt = 0;
  private ejectionEnd = 0;
  private ejectionMs = 0;
  /** Drives the ejection length: base * 2^(level - 1). */
  private level = 0;
  private decayFrom = 0;
  private ejectionCount = 0;
  private refusedCount = 0;
  private result: ProbeResultKind | undefined;
  private reason: string | undefined;
  private last: Transition | undefined;

  constructor(options: BackendHealthOptions, now: number) {
    this.rise = Math.max(1, options.rise);
    this.fall = Math.max(1, options.fall);
    this.slowStartMs = options.slowStartMs ?? healthDefaults.slowStartMs;
    this.ejectAfter = options.ejectAfter ?? healthDefaults.ejectAfter;
    this.baseEjectionMs = options.baseEjectionMs ?? healthDefaults.baseEjectionMs;
    this.maxEjectionMs = options.maxEjectionMs ?? healthDefaults.maxEjectionMs;
    this.ejectionDecayMs = options.ejectionDecayMs ?? healthDefaults.ejectionDecayMs;
    this.probeEndsEjection = options.probeEndsEjection ?? true;
    this.onTransition = options.onTransition;
    const initial = options.initial ?? 'up';
    this.health = initial === 'slow_start' && this.slowStartMs <= 0 ? 'up' : initial;
    this.slowStartAt = now;
    this.changedAt = now;
    this.clock = now;
  }

  /** The visible state as of the last call that passed a time (see `advance`). */
  get state(): BackendState {
    return this.drained ? 'draining' : this.health;
  }

  /** When the visible state last changed. */
  get since(): number {
    return this.changedAt;
  }

  /** Result kind of the last active check, if any ran. */
  get lastResult(): ProbeResultKind | undefined {
    return this.result;
  }

  /** Reason text of the last active check, if any ran. */
  get lastReason(): string | undefined {
    return this.reason;
  }

  get lastTransition(): Transition | undefined {
    return this.last;
  }

  /** How many times passive checks ejected this backend. */
  get ejections(): number {
    return this.ejectionCount;
  }

  /** How many ejections `canEject` refused. */
  get ejectionsRefused(): number {
    return this.refusedCount;
  }

  /** Current run of passive failures. */
  get consecutiveFailures(): number {
    return this.passiveFailures;
  }

  /** When the current ejection ends, or undefined when not ejected. */
  get ejectedUntil(): number | undefined {
    return this.health === 'ejected' ? this.ejectionEnd : undefined;
  }

  /**
   * True while a rise or fall run has started but not completed: the scheduler checks faster
   * then (HAProxy's `fastinter`).
   */
  get changing(): boolean {
    return this.health === 'down' ? this.passes > 0 : this.fails > 0;
  }

  /** Applies the changes that are due by `now`: end of ejection, end of slow start, decay. */
  advance(now: number): void {
    if (now > this.clock) this.clock = now;
    now = this.clock;
    if (this.health === 'ejected' && now >= this.ejectionEnd) {
      const at = this.ejectionEnd;
      this.comeBack(at, `ejection of ${formatDuration(this.ejectionMs)} ended`, 'timer');
    }
    if (this.health === 'slow_start' && now >= this.slowStartAt + this.slowStartMs) {
      this.set(
        'up',
        `slow start of ${formatDuration(this.slowStartMs)} done`,
        this.slowStartAt + this.slowStartMs,
        'timer',
      );
    }
    if (this.health !== 'ejected' && this.level > 0 && this.ejectionDecayMs > 0) {
      const steps = Math.floor((now - this.decayFrom) / this.ejectionDecayMs);
      if (steps > 0) {
        this.level = Math.max(0, this.level - steps);
        this.decayFrom += steps * this.ejectionDecayMs;
      }
    }
  }

  /** Whether the selector may send new requests here. */
  routable(now: number): boolean {
    this.advance(now);
    return !this.drained && (this.health === 'up' || this.health === 'slow_start');
  }

  /**
   * Multiplier for the configured weight: ramps linearly from 0.1 to 1.0 during slow start, 1
   * otherwise (routability is `routable`'s business; a pool in panic still needs weights).
   */
  weightFactor(now: number): number {
    this.advance(now);
    if (this.health !== 'slow_start') return 1;
    const progress = Math.min(1, Math.max(0, (this.clock - this.slowStartAt) / this.slowStartMs));
    // (1 + 9p) / 10 rather than 0.1 + 0.9p: exact at the quarter marks.
    return (1 + 9 * progress) / 10;
  }

  /** Records one active check's outcome. */
  recordProbe(outcome: CheckOutcome, now: number): void {
    // This machine could not make the check: nothing was learnt about the backend.
    if (outcome.result === 'local_error') return;
    this.advance(now);
    now = this.clock;
    this.result = outcome.result;
    this.reason = outcome.reason;
    if (outcome.result === 'success') {
      this.fails = 0;
      if (this.health === 'down') {
        this.passes++;
        if (this.passes >= this.rise) {
          const what = this.rise === 1 ? 'passing check' : `${this.rise} consecutive passing checks`;
          this.comeBack(now, `${what}, last: ${outcome.reason}`, 'active');
        }
      } else if (this.health === 'ejected' && this.probeEndsEjection) {
        const startedAt = now - (outcome.durationMs ?? 0);
        if (startedAt >= this.ejectedAt)
          this.comeBack(now, `check passed while ejected: ${outcome.reason}`, 'active');
      }
      return;
    }
    this.passes = 0;
    if (this.health === 'down') return;
    this.fails++;
    if (this.fails >= this.fall) {
      const what = this.fall === 1 ? 'failed check' : `${this.fall} consecutive failed checks`;
      this.passes = 0;
      this.fails = 0;
      this.passiveFailures = 0;
      if (this.health === 'ejected') this.decayFrom = now;
      this.set('down', `${what}, last: ${outcome.reason}`, now, 'active');
    }
  }

  /**
   * Records the outcome of one real exchange: `ok` false for a connect failure or a gateway
   * error. `canEject` is asked only when an ejection is due; it may refuse (pool limit), and
   * the next failure asks again.
   */
  recordPassive(ok: boolean, now: number, canEject: () => boolean = () => true): void {
    this.advance(now);
    now = this.clock;
    if (ok) {
      this.passiveFailures = 0;
      return;
    }
    // Failures only count against a backend that is taking traffic on its merits (not one
    // used in panic, down or ejected, nor a drained one finishing its work).
    if (this.drained || (this.health !== 'up' && this.health !== 'slow_start')) return;
    this.passiveFailures++;
    if (this.passiveFailures < this.ejectAfter) return;
    if (!canEject()) {
      this.refusedCount++;
      return;
    }
    const failures = this.passiveFailures;
    const full = this.baseEjectionMs * 2 ** this.level;
    if (full < this.maxEjectionMs) this.level++;
    else if (this.level === 0) this.level = 1;
    this.ejectionMs = Math.min(full, this.maxEjectionMs);
    this.ejectionCount++;
    this.passiveFailures = 0;
    this.ejectedAt = now;
    this.ejectionEnd = now + this.ejectionMs;
    this.set(
      'ejected',
      `${failures} consecutive failed requests, ejected for ${formatDuration(this.ejectionMs)}`,
      now,
      'passive',
    );
  }

  /** Takes the backend out of selection (an operator's drain). */
  drain(now: number): void {
    this.advance(now);
    if (this.drained) return;
    const from = this.health;
    this.drained = true;
    this.emit(from, 'draining', 'drained', this.clock, 'admin');
  }

  /** Ends a drain: the backend shows its health again, an up one resuming in slow start. */
  undrain(now: number): void {
    this.advance(now);
    if (!this.drained) return;
    now = this.clock;
    this.drained = false;
    if (this.health === 'up' && this.slowStartMs > 0) {
      this.health = 'slow_start';
      this.slowStartAt = now;
    }
    this.emit('draining', this.health, 'undrained', now, 'admin');
  }

  snapshot(now: number): HealthSnapshot {
    const routable = this.routable(now);
    return {
      state: this.state,
      since: this.changedAt,
      routable,
      weightFactor: this.weightFactor(now),
      lastResult: this.result,
      lastReason: this.reason,
      consecutiveFailures: this.passiveFailures,
      ejections: this.ejectionCount,
      ejectedUntil: this.ejectedUntil,
    };
  }

  /** The whole state, for `adopt` in another process. */
  record(): HealthRecord {
    return {
      health: this.health,
      drained: this.drained,
      changedAt: this.changedAt,
      clock: this.clock,
      passes: this.passes,
      fails: this.fails,
      passiveFailures: this.passiveFailures,
      slowStartAt: this.slowStartAt,
      ejectedAt: this.ejectedAt,
      ejectionEnd: this.ejectionEnd,
      ejectionMs: this.ejectionMs,
      level: this.level,
      decayFrom: this.decayFrom,
      ejectionCount: this.ejectionCount,
      refusedCount: this.refusedCount,
      result: this.result ?? null,
      reason: this.reason ?? null,
      last: this.last ?? null,
    };
  }

  /**
   * Becomes the machine `record` describes, silently (its owner reported the transitions). Time
   * then moves it on exactly as it moves the owner's: an ejection or slow start ends on its own.
   */
  adopt(record: HealthRecord): void {
    this.health = record.health;
    this.drained = record.drained;
    this.changedAt = record.changedAt;
    this.clock = Math.max(this.clock, record.clock);
    this.passes = record.passes;
    this.fails = record.fails;
    this.passiveFailures = record.passiveFailures;
    this.slowStartAt = record.slowStartAt;
    this.ejectedAt = record.ejectedAt;
    this.ejectionEnd = record.ejectionEnd;
    this.ejectionMs = record.ejectionMs;
    this.level = record.level;
    this.decayFrom = record.decayFrom;
    this.ejectionCount = record.ejectionCount;
    this.refusedCount = record.refusedCount;
    this.result = record.result ?? undefined;
    this.reason = record.reason ?? undefined;
    this.last = record.last ?? undefined;
  }

  /** Back to traffic from down or ejected: slow start when configured. */
  private comeBack(at: number, reason: string, cause: TransitionCause): void {
    if (this.health === 'ejected') this.decayFrom = at;
    this.passes = 0;
    this.fails = 0;
    this.passiveFailures = 0;
    if (this.slowStartMs > 0) {
      this.slowStartAt = at;
      this.set('slow_start', reason, at, cause);
    } else {
      this.set('up', reason, at, cause);
    }
  }

  private set(to: Health, reason: string, at: number, cause: TransitionCause): void {
    const from = this.health;
    if (from === to) return;
    this.health = to;
    // While drained the visible state stays `draining`; undrain reports the outcome.
    if (!this.drained) this.emit(from, to, reason, at, cause);
  }

  private emit(
    from: BackendState,
    to: BackendState,
    reason: string,
    at: number,
    cause: TransitionCause,
  ): void {
    const transition: Transition = { from, to, reason, at, cause };
    this.changedAt = at;
    this.last = transition;
    if (!this.quiet) this.onTransition?.(transition);
  }
}
