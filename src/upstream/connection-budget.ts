// How many backend connections one process keeps open across all its pools. Idle connections
// are kept for reuse while the total stays within the limit, whatever the concurrency, as
// HAProxy keeps idle server connections with no count per server, within a share of its
// descriptors (`tune.pool-low-fd-ratio`): a fixed per-backend cap below the
// concurrency closes connections as fast as they are opened (at 1024 clients, a cap of 64 cost
// half of Sluice's throughput in connects, port searches and closes).

export class ConnectionBudget {
  /** Backend connections open in every pool, idle or busy. */
  open = 0;
  /**
   * Idle connections are kept only while `open` is within this: the client connection limit,
   * since the descriptor plan gives every client connection one backend connection.
   */
  limit: number;

  constructor(limit = Number.POSITIVE_INFINITY) {
    this.limit = limit;
  }

  get roomForIdle(): boolean {
    return this.open <= this.limit;
  }
}
