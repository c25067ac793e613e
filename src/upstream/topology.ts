// The pools and backends the configuration describes, kept in step with it: at start, on a
// config reload and when DNS answers change. A backend that stays (same pool, name, address,
// weight and health settings) keeps its health state and connections; a new one starts in slow
// start; one that goes is drained and its connections close as their last exchanges end.
import type { Config, PoolConfig, TimeoutsConfig } from '../config/types.ts';
import type { HealthRecord, Transition } from '../health/state.ts';
import { Backend, type BackendOptions, type HealthFactory, type TimeSource } from './backend.ts';
import { ConnectionBudget } from './connection-budget.ts';
import { type ResolvedServer, type Resolver, resolveServers } from './discovery.ts';
import { BackendPool } from './pool.ts';
import { RetryBudget } from './retry-budget.ts';

export interface TopologyOptions {
  clock: TimeSource;
  /** See BackendOptions.metrics. */
  metrics: BackendOptions['metrics'];
  resolver?: Resolver;
  onTransition?: (backend: Backend, transition: Transition) => void;
  /** See BackendOptions.createHealth. */
  createHealth?: HealthFactory;
}

export interface TopologyChange {
  added: Backend[];
  removed: Backend[];
  /** Removed ones whose name is gone too (not replaced under it): their series go with them. */
  gone: Backend[];
}

export class Topology {
  pools = new Map<string, BackendPool>();
  /** The backend connections of every pool; its limit is set with the client connection limit. */
  readonly connectionBudget = new ConnectionBudget();
  private readonly options: TopologyOptions;
  /** What the last resolution returned, to skip rebuilding when DNS says nothing new. */
  private signature = '';
  /** The config applied last: what a refresh resolves again. */
  private applied: Config | undefined;
  /** Applies and refreshes, one at a time in the order asked (each awaits DNS): the last asked wins. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: TopologyOptions) {
    this.options = options;
  }

  /**
   * Resolves every server and rebuilds what changed. Throws if a name does not resolve. Runs after
   * any apply or refresh asked before it has finished, so two reloads close together end on the
   * later file, not on whichever resolved last.
   */
  apply(config: Config): Promise<TopologyChange> {
    return this.serially(() => this.applyNow(config));
  }

  /**
   * Resolves the config applied last again; rebuilds and returns what changed, or undefined when
   * DNS says nothing new. Queued like apply, so it never brings back a config a reload replaced.
   */
  refresh(): Promise<TopologyChange | undefined> {
    return this.serially(async () => {
      const config = this.applied;
      if (config === undefined) return undefined;
      const resolved = await this.resolve(config);
      if (signatureOf(config, resolved) === this.signature) return undefined;
      return this.applyNow(config);
    });
  }

  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  private async applyNow(config: Config): Promise<TopologyChange> {
    const resolved = await this.resolve(config);
    this.signature = signatureOf(config, resolved);
    this.applied = config;
    const previous = new Map<string, Backend>();
    for (const pool of this.pools.values())
      for (const backend of pool.backends) previous.set(backend.identity, backend);
    const wanted = new Set(
      config.pools.flatMap((pool) => (resolved.get(pool.name) ?? []).map((server) => keyFor(pool, server))),
    );
    // Drained before anything new is made: a backend replaced under the same name (new address,
    // weight or checks) shares its series with its successor, which then shows draining, then
    // slow start. One rebuilt at the same address (its weight or checks changed) carries on as
    // it was instead: down stays down, ejected stays ejected, an operator's drain holds.
    const removed = [...previous.values()].filter((backend) => !wanted.has(backend.identity));
    const carried = new Map<string, HealthRecord>();
    for (const backend of removed)
      carried.set(placeOf(backend.pool, backend.name, backend.host, backend.port), backend.health.record());
    for (const backend of removed) {
      backend.health.drain(this.options.clock.now);
      backend.connections.retire();
    }
    const starting = this.pools.size === 0;
    const next = new Map<string, BackendPool>();
    const added: Backend[] = [];
    for (const poolConfig of config.pools) {
      const backends = (resolved.get(poolConfig.name) ?? []).map((server) => {
        const key = keyFor(poolConfig, server);
        const kept = previous.get(key);
        if (kept) {
          previous.delete(key);
          return kept;
        }
        const predecessor = carried.get(placeOf(poolConfig.name, server.name, server.host, server.port));
        const backend = this.create(
          poolConfig,
          server,
          config.timeouts,
          starting ? 'up' : 'slow_start',
          predecessor,
        );
        added.push(backend);
        return backend;
      });
      next.set(
        poolConfig.name,
        new BackendPool(poolConfig, backends, retryBudgetFor(config, this.pools.get(poolConfig.name))),
      );
    }
    this.pools = next;
    const gone = removed.filter(
      (backend) => !next.get(backend.pool)?.backends.some((b) => b.name === backend.name),
    );
    return { added, removed, gone };
  }

  /** Re-resolves DNS names; rebuilds only when an answer changed. */

  private async resolve(config: Config): Promise<Map<string, ResolvedServer[]>> {
    const entries = await Promise.all(
      config.pools.map(
        async (pool) => [pool.name, await resolveServers(pool, this.options.resolver)] as const,
      ),
    );
    return new Map(entries);
  }

  private create(
    pool: PoolConfig,
    server: ResolvedServer,
    timeouts: TimeoutsConfig,
    initial: 'up' | 'slow_start',
    predecessor: HealthRecord | undefined,
  ): Backend {
    const { clock, metrics, onTransition, createHealth } = this.options;
    return new Backend({
      pool: pool.name,
      identity: keyFor(pool, server),
      server,
      connections: {
        maxIdle: pool.maxIdlePerBackend,
        idleTimeout: timeouts.upstreamIdle,
        budget: this.connectionBudget,
      },
      health: pool.health,
      clock,
      metrics,
      initial,
      ...(predecessor ? { predecessor } : {}),
      ...(onTransition ? { onTransition } : {}),
      ...(createHealth ? { createHealth } : {}),
    });
  }
}

/** The configured retry budget, carrying the counts of the pool a reload replaces. */
function retryBudgetFor(config: Config, previous: BackendPool | undefined): RetryBudget {
  const { budgetRatio, budgetMinRetries, budgetWindow } = config.retries;
  const options = { ratio: budgetRatio, minRetries: budgetMinRetries, windowMs: budgetWindow };
  return previous?.retryBudget.carriedTo(options) ?? new RetryBudget(options);
}

/** Where a backend is: a successor here takes over its predecessor's health state. */
function placeOf(pool: string, name: string, host: string, port: number): string {
  return JSON.stringify([pool, name, host, port]);
}

/** What must be equal for a backend to be kept across a rebuild. */
function keyFor(pool: PoolConfig, server: ResolvedServer): string {
  return JSON.stringify([
    pool.name,
    server.name,
    server.host,
    server.port,
    server.server.weight,
    pool.health,
  ]);
}

function signatureOf(config: Config, resolved: ReadonlyMap<string, ResolvedServer[]>): string {
  return JSON.stringify(
    config.pools.map((pool) => [pool, resolved.get(pool.name)?.map((server) => server.host)]),
  );
}
