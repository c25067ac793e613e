// How long a coalesced flight's leader has kept the backend paused for its own client
// (backpressure: the client's socket is full), summed over every pause. When the sum passes the
// grace period, `onExpire` runs once: the flow then releases its followers (src/cache/flow.ts),
// so no follower waits on a client that does not read. Summed, not per pause, so a client that
// reads a little now and then cannot keep the flight for ever.
//
// API
//   const watch = new StallWatch(graceMs, onExpire);
//   watch.pause()    the backend was paused for the client (a no-op while paused already)
//   watch.resume()   the client drained; the time paused is added up
//   watch.cancel()   the flight ended: no onExpire after this
import { performance } from 'node:perf_hooks';

export class StallWatch {
  private readonly graceMs: number;
  private readonly onExpire: () => void;
  /** Ms paused in earlier pauses. */
  private spent = 0;
  /** When the current pause began (performance.now()), or -1 when not paused. */
  private since = -1;
  private timer: NodeJS.Timeout | undefined;
  private over = false;

  constructor(graceMs: number, onExpire: () => void) {
    this.graceMs = graceMs;
    this.onExpire = onExpire;
  }

  pause(): void {
    if (this.over || this.since >= 0) return;
    this.since = performance.now();
    // One timer at a time, left armed across short pauses: check() re-arms for what is left.
    this.timer ??= this.arm(this.graceMs - this.spent);
  }

  resume(): void {
    if (this.since < 0) return;
    this.spent += performance.now() - this.since;
    this.since = -1;
  }

  cancel(): void {
    this.over = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.check(), Math.max(0, ms));
    timer.unref();
    return timer;
  }

  private check(): void {
    this.timer = undefined;
    if (this.over) return;
    const spent = this.spent + (this.since >= 0 ? performance.now() - this.since : 0);
    if (spent >= this.graceMs) {
      this.cancel();
      this.onExpire();
    } else if (this.since >= 0) this.timer = this.arm(this.graceMs - spent);
  }
}
