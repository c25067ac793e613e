// The messages between a supervisor and its workers (over the IPC channel of `fork`, structured
// clone). Health moves one way: the supervisor owns every state machine and sends records of
// them; workers only report what real traffic saw.
import type { Config } from '../config/types.ts';
import type { HealthRecord } from '../health/state.ts';
import type { MetricsJson } from '../observe/metrics.ts';
import type { Snapshot } from './snapshot.ts';

/** One backend's state machine, identified as both sides' Topology identify it. */
export interface StateUpdate {
  pool: string;
  name: string;
  identity: string;
  record: HealthRecord;
}

/** What each DNS name resolved to in the supervisor, so every worker has the same backends. */
export type Resolved = [hostname: string, addresses: string[]][];

export type ToWorker =
  | {
      type: 'start';
      index: number;
      config: Config;
      resolved: Resolved;
      states: StateUpdate[];
    }
  | { type: 'reload'; id: number; config: Config; resolved: Resolved; states: StateUpdate[] }
  | { type: 'health'; states: StateUpdate[] }
  | { type: 'ask'; id: number; question: Question }
  /** Shutdown is coming: answer with Connection: close from now on (timeouts.shutdownDelay). */
  | { type: 'drain' }
  /** Open the access log file again (the supervisor's SIGUSR1, after logrotate moved it). */
  | { type: 'reopen' }
  /** Another worker's unsafe request invalidated these cache keys: drop them here too. */
  | { type: 'invalidate'; keys: readonly string[] }
  | { type: 'stop' };

export type Question = { what: 'status' } | { what: 'purge'; url?: string; prefix?: string; pool?: string };

export type FromWorker =
  | { type: 'hello' }
  | { type: 'ready'; port: number }
  /** A real exchange's outcome: every failure, and the first success after failures. */
  | { type: 'passive'; pool: string; name: string; identity: string; ok: boolean }
  | { type: 'answer'; id: number; value?: unknown; error?: string }
  /** Cache keys an unsafe request invalidated here (the supervisor tells the other workers). */
  | { type: 'invalidated'; keys: readonly string[] }
  /** Its metrics, every `pushIntervalMs` (a scrape reads the latest). */
  | ({ type: 'metrics' } & Snapshot)
  /** A stopping worker's last counts, sent after its last request ended. */
  | { type: 'final'; metrics: MetricsJson };

/** Why a worker was started in place of another: it died, was killed for its silence, or a rolling restart. */
export type RestartReason = 'crashed' | 'hung' | 'rolling';

/** A worker's answer to `status`. */
export interface WorkerStatus {
  pid: number;
  uptimeSeconds: number;
  connections: number;
  requests: number;
  /** [pool, backend, inFlight, open, idle] */
  backends: [string, string, number, number, number][];
  panicPools: string[];
}

/** How often a worker pushes its metrics: how far behind a scrape may be. */
export const pushIntervalMs = 1_000;

export type { MetricsJson };
