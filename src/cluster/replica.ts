// A worker's side of the shared health view: state machines that follow the supervisor's. The
// selector, slow start and panic read them as they read a lone Sluice's, so routing is the same
// code; what differs is who decides. Real traffic's outcomes go to the supervisor, which owns the
// one machine per backend that probes and passive failures of every worker drive.
import { BackendHealth, type BackendHealthOptions } from '../health/state.ts';
import type { Backend, HealthFactory } from '../upstream/backend.ts';
import type { BackendPool } from '../upstream/pool.ts';
import type { StateUpdate } from './messages.ts';

export type PassiveReport = (backend: Backend, ok: boolean) => void;

/** A machine moved only by `adopt` and time; passive outcomes are reported, not recorded. */
export class ReplicaHealth extends BackendHealth {
  private readonly report: (ok: boolean) => void;
  /** Whether the last reported outcome was a failure: a success after it must be reported too. */
  private failing = false;

  constructor(options: BackendHealthOptions, now: number, report: (ok: boolean) => void) {
    super(options, now);
    this.report = report;
    // What time does to it (an ejection or slow start ending), the supervisor logs and counts.
    this.quiet = true;
  }

  /**
   * Every failure is sent, but a success only when it ends a run of failures: consecutive
   * failures add up across workers, and a healthy backend costs no message per request.
   */
  override recordPassive(ok: boolean): void {
    if (ok) {
      if (!this.failing) return;
      this.failing = false;
    } else this.failing = true;
    this.report(ok);
  }
}

export function replicaHealth(report: PassiveReport): HealthFactory {
  return (options, now, backend) => new ReplicaHealth(options, now, (ok) => report(backend, ok));
}

/** Makes each named backend's machine the supervisor's; a backend drained lets go of its connections as they finish. */
export function adoptStates(pools: ReadonlyMap<string, BackendPool>, states: readonly StateUpdate[]): void {
  for (const update of states) {
    const backend = pools.get(update.pool)?.backends.find((b) => b.name === update.name);
    if (!backend || backend.identity !== update.identity) continue;
    backend.health.adopt(update.record);
    if (update.record.drained) backend.connections.retire();
    else backend.connections.reopen();
  }
}

/** Every backend's machine as an update (what a new worker starts from). */
export function stateUpdates(backends: Iterable<Backend>): StateUpdate[] {
  return [...backends].map((backend) => ({
    pool: backend.pool,
    name: backend.name,
    identity: backend.identity,
    record: backend.health.record(),
  }));
}
