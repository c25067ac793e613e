// Caps retries at a share of recent requests, so a failing pool is not hit by a retry storm
// (Envoy's retry budgets, Finagle's RetryBudget). A floor lets a quiet pool still retry.

const bucketMs = 1000;

export interface RetryBudgetOptions {
  /** Retries allowed per request over the window. */
  ratio: number;
  /** Retries always allowed within the window, however few the requests. */
  minRetries: number;
  /** Length of the sliding window in ms (a multiple of one second). */
  windowMs: number;
}

export class RetryBudget {
  readonly options: RetryBudgetOptions;
  private readonly requests: number[];
  private readonly retries: number[];
  /** Index of the bucket `now` falls in, in whole seconds since the epoch. */
  private current = 0;
  /** Retries refused since the start (Envoy's upstream_rq_retry_overflow). */
  refused = 0;

  constructor(options: RetryBudgetOptions) {
    this.options = options;
    const buckets = Math.max(1, Math.round(options.windowMs / bucketMs));
    this.requests = new Array(buckets).fill(0);
    this.retries = new Array(buckets).fill(0);
  }

  /** The budget for `options`: this one (with its counts) when they are the same, else a new one. */
  carriedTo(options: RetryBudgetOptions): RetryBudget {
    const same =
      options.ratio === this.options.ratio &&
      options.minRetries === this.options.minRetries &&
      options.windowMs === this.options.windowMs;
    return same ? this : new RetryBudget(options);
  }

  recordRequest(now: number): void {
    const index = this.bucket(now);
    this.requests[index] = (this.requests[index] ?? 0) + 1;
  }

  /** Takes one retry from the budget, or says there is none left. */
  tryAcquire(now: number): boolean {
    const index = this.bucket(now);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.requests.length; i++) {
      requests += this.requests[i] ?? 0;
      retries += this.retries[i] ?? 0;
    }
    if (retries >= Math.max(this.options.minRetries, this.options.ratio * requests)) {
      this.refused++;
      return false;
    }
    this.retries[index] = (this.retries[index] ?? 0) + 1;
    return true;
  }

  /** The bucket of `now`, clearing the buckets that slid out of the window since the last call. */
  private bucket(now: number): number {
    const second = Math.floor(now / bucketMs);
    const size = this.requests.length;
    if (second !== this.current) {
      const stale = Math.min(size, Math.max(0, second - this.current));
      for (let step = 1; step <= stale; step++) {
        const index = (this.current + step) % size;
        this.requests[index] = 0;
        this.retries[index] = 0;
      }
      if (second > this.current) this.current = second;
    }
    return this.current % size;
  }
}
