// A named pool of backends and the selector that spreads requests over them.
import { createSelector } from '../balance/index.ts';
import type { Selector } from '../balance/selector.ts';
import type { PoolConfig, TimeoutsConfig } from '../config/types.ts';
import { Backend } from './backend.ts';
import type { ResolvedServer } from './discovery.ts';

export class BackendPool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly backends: Backend[];
  private readonly selector: Selector<Backend>;
  /** True while no backend is routable and the pool fails open. */
  panic = false;

  constructor(config: PoolConfig, servers: readonly ResolvedServer[], timeouts: TimeoutsConfig) {
    this.name = config.name;
    this.config = config;
    const options = { maxIdle: config.maxIdlePerBackend, idleTimeout: timeouts.upstreamIdle };
    this.backends = servers.map(
      (resolved) =>
        new Backend(config.name, resolved.name, resolved.host, resolved.port, resolved.server, options),
    );
    this.selector = createSelector(config.balance, this.backends);
  }

  /**
   * The next backend for a request, skipping those in `tried`. When none is routable, a pool
   * that fails open tries the others anyway (a wrong health verdict must not take the site down).
   */
  pick(tried: ReadonlySet<Backend> | undefined): Backend | undefined {
    const chosen = this.selector.select((backend) => backend.routable && !tried?.has(backend));
    if (chosen || this.config.panic === 'closed') {
      this.panic = false;
      return chosen;
    }
    this.panic = !this.backends.some((backend) => backend.routable);
    return this.panic ? this.selector.select((backend) => !tried?.has(backend)) : undefined;
  }
}
