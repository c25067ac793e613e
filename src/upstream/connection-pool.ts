// Keep-alive connections to one backend: a stack of idle ones (the most recently used is reused
// first, so surplus connections age out) and an idle timeout, within the process's budget.

import { UpstreamConnection } from './connection.ts';
import type { ConnectionBudget } from './connection-budget.ts';
import { IdleConnections } from './idle-connections.ts';
import { closeSettling, type SettlingPool, settle } from './settling.ts';

export interface ConnectionPoolOptions {
  maxIdle: number;
  /** Idle connections older than this (ms) are closed by `sweep`. */
  idleTimeout: number;
  /** Shared by every pool of the process. */
  budget: ConnectionBudget;
  /** The backend sent bytes nobody asked for (counted, see `sawUnasked`). */
  onUnasked?: () => void;
}

interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** How long a backend's connections are not reused after it sent bytes nobody asked for. */
const noReuseAfterUnaskedMs = 60_000;

export class ConnectionPool implements SettlingPool {
  private readonly endpoint: Endpoint;
  private readonly options: ConnectionPoolOptions;
  private readonly idle = new IdleConnections<UpstreamConnection>();
  /** Released a moment ago and not offered again yet (see settling.ts). */
  private settling = 0;
  /** Connections open to this backend, idle or busy. */
  open = 0;
  /** Connections ever opened: HAProxy's connection attempts (reuse means this stays low). */
  opened = 0;
  /** Times an idle kept-alive connection was taken for a request instead of opening one. */
  reused = 0;
  /**
   * The backend takes no new requests (it left the configuration, or is drained): connections
   * close as their exchange ends.
   */
  private retired = false;
  /** Bytes nobody asked for were seen since the last release: `reuseAfter` starts at the next. */
  private unasked = false;
  /** Clock time until which connections are not reused (closed after their exchange). */
  private reuseAfter = 0;

  constructor(endpoint: Endpoint, options: ConnectionPoolOptions) {
    this.endpoint = endpoint;
    this.options = options;
  }

  get idleCount(): number {
    return this.idle.size + this.settling;
  }

  /** An idle connection, or undefined when a new one must be opened. */
  acquire(): UpstreamConnection | undefined {
    const connection = this.idle.pop();
    if (connection) this.reused++;
    return connection;
  }

  /**
   * Opens a new connection. `onConnect` runs once it is established; failures before that are
   * reported to the user set on the returned connection.
   */
  connect(onConnect: (connection: UpstreamConnection) => void): UpstreamConnection {
    const connection = UpstreamConnection.open(this.endpoint, (retired) => this.forget(retired));
    this.open++;
    this.options.budget.open++;
    this.opened++;
    connection.socket.once('connect', () => onConnect(connection));
    return connection;
  }

  /**
   * Returns a healthy connection after a complete exchange. It is offered again once the callback
   * that released it has ended (settling.ts). A backend that has sent bytes nobody asked for gets
   * no reuse for a while: HTTP/1.1 cannot tell its unasked answers from answers, and one taken
   * for the next request shifts every later answer on that connection to the wrong request.
   */
  release(connection: UpstreamConnection, now: number): void {
    if (connection.closed) return;
    if (this.unasked) {
      this.unasked = false;
      this.reuseAfter = now + noReuseAfterUnaskedMs;
      this.closeIdle();
    }
    const { maxIdle, budget } = this.options;
    if (this.retired || now < this.reuseAfter || this.idleCount >= maxIdle || !budget.roomForIdle) {
      connection.destroy();
      return;
    }
    connection.user = undefined;
    connection.idleSince = now;
    this.settling++;
    settle(this, connection);
  }

  settled(connection: UpstreamConnection): void {
    this.settling--;
    if (connection.closed) return;
    if (this.retired) connection.destroy();
    else this.idle.push(connection);
  }

  /**
   * The backend sent bytes nobody asked for: past an answer's framing, after a bodiless answer, or
   * to a connection nobody held. Its connections are not reused for a while (see `release`).
   */
  sawUnasked(): void {
    this.unasked = true;
    this.options.onUnasked?.();
  }

  /** Closes connections idle for longer than the idle timeout. */
  sweep(now: number): void {
    const limit = now - this.options.idleTimeout;
    // The list is ordered by idleSince: the oldest sit at the bottom.
    for (let oldest = this.idle.oldest; oldest && oldest.idleSince <= limit; oldest = this.idle.oldest) {
      this.idle.remove(oldest);
      oldest.destroy();
    }
  }

  closeIdle(): void {
    for (const connection of this.idle.toArray()) connection.destroy();
    closeSettling(this);
  }

  /** Closes idle connections now and every busy one when its exchange ends (until `reopen`). */
  retire(): void {
    this.retired = true;
    this.closeIdle();
  }

  /** Keeps idle connections again: the drain ended. */
  reopen(): void {
    this.retired = false;
  }

  private forget(connection: UpstreamConnection): void {
    if (connection.unasked) this.sawUnasked();
    this.open--;
    this.options.budget.open--;
    this.idle.remove(connection);
  }
}
