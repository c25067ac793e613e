// A named pool of backends and the selector that spreads requests over them.
import { createSelector } from '../balance/index.ts';
import type { Selector } from '../balance/selector.ts';
import type { PoolConfig } from '../config/types.ts';
import { ejectionAllowed } from '../health/state.ts';
import type { Backend } from './backend.ts';
import type { RetryBudget } from './retry-budget.ts';

export class BackendPool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly backends: Backend[];
  private readonly selector: Selector<Backend>;
  readonly retryBudget: RetryBudget;
  /** Never eject more than half the pool on passive evidence alone. */
  readonly canEject = (): boolean =>
    ejectionAllowed(
      this.backends.filter((backend) => backend.health.state === 'ejected').length,
      this.backends.length,
      this.config.health.maxEjectedPercent,
    );

  /** `retryBudget` is shared with the pool this one replaces on a reload (RetryBudget.carriedTo). */
  constructor(config: PoolConfig, backends: Backend[], retryBudget: RetryBudget) {
    this.name = config.name;
    this.config = config;
    this.backends = backends;
    this.retryBudget = retryBudget;
    this.selector = createSelector(config.balance, this.backends);
  }

  /**
   * No backend is routable and the pool fails open: read when asked (a scrape, /status), so it
   * is true while nothing is routable and false once something is, whether or not requests come.
   */
  get panic(): boolean {
    return this.config.panic === 'open' && !this.backends.some((backend) => backend.routable);
  }

  /**
   * The next backend for a request, skipping those in `tried`. When none is routable, a pool
   * that fails open tries the others anyway (a wrong health verdict must not take the site down).
   */
  pick(tried: ReadonlySet<Backend> | undefined): Backend | undefined {
    const chosen = this.selector.select(routableUntried(tried));
    if (chosen || !this.panic) return chosen;
    return this.selector.select(panicUntried(tried));
  }

  /** Whether `pick(tried)` would find a backend, without moving the balancer. */
  canPick(tried: ReadonlySet<Backend> | undefined): boolean {
    return (
      this.backends.some(routableUntried(tried)) || (this.panic && this.backends.some(panicUntried(tried)))
    );
  }
}

/** A backend `pick` may take: routable, not tried yet. */
const routableUntried = (tried: ReadonlySet<Backend> | undefined) => (backend: Backend) =>
  backend.routable && !tried?.has(backend);

/** One a pool in panic may take: not tried yet, and not draining (the operator's decision, not a health verdict). */
const panicUntried = (tried: ReadonlySet<Backend> | undefined) => (backend: Backend) =>
  !tried?.has(backend) && backend.health.state !== 'draining';
