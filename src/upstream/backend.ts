// One backend server of a pool and its live state.
import type { Candidate } from '../balance/selector.ts';
import type { HealthConfig } from '../config/types.ts';
import {
  BackendHealth,
  type BackendHealthOptions,
  type HealthRecord,
  type Transition,
} from '../health/state.ts';
import type { BackendMetrics, Metrics } from '../observe/metrics.ts';
import { ConnectionPool, type ConnectionPoolOptions } from './connection-pool.ts';
import type { ResolvedServer } from './discovery.ts';

/** A coarse clock read on the hot path (the proxy's tick-updated `Clock` is one). */
export interface TimeSource {
  readonly now: number;
}

export interface BackendOptions {
  pool: string;
  /** What identifies this backend across config reloads (see Topology). */
  identity: string;
  server: ResolvedServer;
  connections: ConnectionPoolOptions;
  health: HealthConfig;
  clock: TimeSource;
  /** Where its series are: it takes its handle once, when it is made (see Metrics.registerBackend). */
  metrics: Pick<Metrics, 'registerBackend'>;
  /** How a backend added while running starts: in slow start, so it is not flooded at once. */
  initial?: 'up' | 'slow_start';
  /** The state of the backend it replaces at the same address (a reload changed its weight or checks). */
  predecessor?: HealthRecord;
  onTransition?: (backend: Backend, transition: Transition) => void;
  /** Makes the state machine (a cluster's worker follows its supervisor's; default: its own). */
  createHealth?: HealthFactory;
}

export type HealthFactory = (options: BackendHealthOptions, now: number, backend: Backend) => BackendHealth;

export class Backend implements Candidate {
  readonly name: string;
  readonly pool: string;
  /** The IP (or name) and port Sluice connects to. */
  readonly host: string;
  readonly port: number;
  /** `host:port` (`[host]:port` for IPv6): one string for the backend's life, for logs and metrics. */
  readonly address: string;
  readonly weight: number;
  /** The address as configured (a DNS name stays a name), the default Host of health probes. */
  readonly configuredAddress: string;
  readonly connections: ConnectionPool;
  readonly health: BackendHealth;
  readonly healthConfig: HealthConfig;
  readonly identity: string;
  /** This backend's series (shared with a backend it replaces under the same name). */
  readonly metrics: BackendMetrics;
  inFlight = 0;
  private readonly clock: TimeSource;

  constructor(options: BackendOptions) {
    const { server, clock } = options;
    this.pool = options.pool;
    this.identity = options.identity;
    this.healthConfig = options.health;
    this.name = server.name;
    this.host = server.host;
    this.port = server.port;
    this.address = server.host.includes(':')
      ? `[${server.host}]:${server.port}`
      : `${server.host}:${server.port}`;
    this.weight = server.server.weight;
    this.configuredAddress = server.server.address;
    this.clock = clock;
    this.connections = new ConnectionPool(this, {
      ...options.connections,
      onUnasked: () => this.metrics.error('unasked_bytes'),
    });
    const health = options.health;
    const healthOptions: BackendHealthOptions = {
      rise: health.rise,
      fall: health.fall,
      initial: options.initial ?? 'up',
      slowStartMs: health.slowStart,
      ejectAfter: health.ejectAfter,
      baseEjectionMs: health.ejection,
      maxEjectionMs: health.maxEjection,
      ejectionDecayMs: health.ejectionDecay,
    };
    this.health = options.createHealth
      ? options.createHealth(healthOptions, clock.now, this)
      : new BackendHealth(healthOptions, clock.now);
    if (options.predecessor) this.health.adopt(options.predecessor);
    this.metrics = options.metrics.registerBackend(this.pool, this.name, this.address, this.health.state);
    const onTransition = options.onTransition;
    if (onTransition) this.health.onTransition = (transition) => onTransition(this, transition);
  }

  /** Whether the selector may send new requests here: up or in slow start, not draining. */
  get routable(): boolean {
    return this.health.routable(this.clock.now);
  }

  /** The configured weight, ramped from 10% during slow start. */
  get effectiveWeight(): number {
    return this.weight * this.health.weightFactor(this.clock.now);
  }

  /** A real request's outcome (passive health): connect failures and gateway errors count. */
  reportOutcome(ok: boolean, canEject: () => boolean): void {
    this.health.recordPassive(ok, this.clock.now, canEject);
  }
}
