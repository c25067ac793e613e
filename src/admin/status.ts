// The JSON views of the admin port: every pool and backend with its health and load.
import type { Backend } from '../upstream/backend.ts';
import type { BackendPool } from '../upstream/pool.ts';

/** What traffic a backend carries now. */
export interface BackendLoad {
  inFlight: number;
  open: number;
  idle: number;
}

/** Where load is counted: in this process, or summed over a cluster's workers. */
export interface LoadView {
  backend(backend: Backend): BackendLoad;
  panic(pool: BackendPool): boolean;
}

export const localLoad: LoadView = {
  backend: (backend) => ({
    inFlight: backend.inFlight,
    open: backend.connections.open,
    idle: backend.connections.idleCount,
  }),
  panic: (pool) => pool.panic,
};

export function backendStatus(backend: Backend, now: number, load: LoadView = localLoad): unknown {
  const health = backend.health.snapshot(now);
  const { inFlight, open, idle } = load.backend(backend);
  return {
    name: backend.name,
    address: backend.address,
    weight: backend.weight,
    effectiveWeight: backend.effectiveWeight,
    state: health.state,
    since: new Date(health.since).toISOString(),
    routable: health.routable,
    lastCheck: health.lastResult,
    lastReason: health.lastReason,
    consecutiveFailures: health.consecutiveFailures,
    ejections: health.ejections,
    ejectedUntil: health.ejectedUntil ? new Date(health.ejectedUntil).toISOString() : null,
    inFlight,
    /** A draining backend with nothing in flight can be taken away. */
    drained: health.state === 'draining' && inFlight === 0,
    connections: { open, idle },
  };
}

export function poolsStatus(
  pools: ReadonlyMap<string, BackendPool>,
  now: number,
  load: LoadView = localLoad,
): unknown[] {
  return [...pools.values()].map((pool) => ({
    name: pool.name,
    balance: pool.config.balance,
    panic: load.panic(pool),
    backends: pool.backends.map((backend) => backendStatus(backend, now, load)),
  }));
}
