// One coarse timer for every deadline of the proxy. Connections keep a `deadline` number that
// the hot path sets for free; a tick sweeps them. This avoids arming and clearing a timer per
// request (HAProxy and nginx keep timers in a tree for the same reason).

export interface Expirable {
  /** Clock time in ms at which `expire` is called, or 0 for none. */
  deadline: number;
  expire(): void;
}

export class Clock {
  /** Milliseconds since the epoch, as of the last tick (at most `tickMs` old). */
  now = Date.now();
  private readonly items = new Set<Expirable>();
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

  constructor(tickMs = 100) {
    this.tickMs = tickMs;
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  track(item: Expirable): void {
    this.items.add(item);
  }

  untrack(item: Expirable): void {
    this.items.delete(item);
  }

  /**
   * Expires what is due. A deadline was set from `now` as of a tick, up to a tick old: it is due
   * a tick after it, so no timeout ever fires before its configured time (at most two ticks
   * late).
   */
  private tick(): void {
    const now = Date.now();
    this.now = now;
    const due = now - this.tickMs;
    for (const item of this.items) {
      if (item.deadline !== 0 && item.deadline <= due) {
        item.deadline = 0;
        item.expire();
      }
    }
  }
}
