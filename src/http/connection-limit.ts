// What a server does at its connection limit, for the proxy and the admin port alike: close the
// connection that has waited longest for a request to make room (nginx's reusable-connection
// queue), and when none may be closed, tell the newcomer 503.
import type { Socket } from 'node:net';
import { plainResponse } from './responses.ts';

export interface Waiter {
  /** No request in progress: idle between requests, or no byte of the next one yet. */
  readonly waiting: boolean;
}

/**
 * Connections in the order they began waiting for a request, longest first, with the time each
 * began. Kept lazily: one that began a request since stays in place until `takeLongest` passes it
 * by, and joins again at the end when its answer is done.
 */
export class WaitingLine<T extends Waiter> {
  private readonly order = new Map<T, number>();

  /** `item` waits for a request from `now` on: to the end of the line. */
  join(item: T, now: number): void {
    this.order.delete(item);
    this.order.set(item, now);
  }

  leave(item: T): void {
    this.order.delete(item);
  }

  /**
   * Takes out the one that has waited longest, if it began waiting before `before`; undefined
   * when none did. One that began at `before` or later is spared, and so is every one after it.
   */
  takeLongest(before: number): T | undefined {
    for (const [item, since] of this.order) {
      if (since >= before) return undefined;
      this.order.delete(item);
      if (item.waiting) return item;
    }
    return undefined;
  }
}

/**
 * Tells newcomers over a limit 503, a few at a time (`maxAnswering`): each answer holds a
 * descriptor until the client has it. Beyond, they are closed without an answer.
 */
export class Refusals {
  private answering = 0;
  private readonly maxAnswering: number;

  constructor(maxAnswering: number) {
    this.maxAnswering = maxAnswering;
  }

  refuse(socket: Socket): void {
    if (this.answering >= this.maxAnswering) {
      socket.destroy();
      return;
    }
    this.answering++;
    socket.once('close', () => this.answering--);
    // Read and drop what the client sends, so closing does not reset the answer away.
    socket.resume();
    socket.setTimeout(1000, () => socket.destroy());
    socket.end(plainResponse(503, 'too many connections', { close: true }), 'latin1');
  }
}
