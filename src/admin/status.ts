// The JSON views of the admin port: every pool and backend with its health and load.
import type { Backend } from '../upstream/backend.ts';
import type { BackendPool } from '../upstream/pool.ts';

export function backendStatus(backend: Backend, now: number): unknown {
  const health = backend.health.snapshot(now);
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
    inFlight: backend.inFlight,
    /** A draining backend with nothing in flight can be taken away. */
    drained: health.state === 'draining' && backend.inFlight === 0,
    connections: { open: backend.connections.open, idle: backend.connections.idleCount },
  };
}

export function poolsStatus(pools: ReadonlyMap<string, BackendPool>, now: number): unknown[] {
  return [...pools.values()].map((pool) => ({
    name: pool.name,
    balance: pool.config.balance,
    panic: pool.panic,
    backends: pool.backends.map((backend) => backendStatus(backend, now)),
  }));
}
