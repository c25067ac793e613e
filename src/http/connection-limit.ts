// What a server does at its connection limit, for the proxy and the admin port alike: close the
// connection that has waited longest for a request to make room (nginx's reusable-connection
// queue), and when none may be closed, tell the newcomer 503.
import type { Socket } from 'node:net';
import { plainResponse } from './responses.ts';

/**
 * A connection's place in a WaitingLine, kept on the connection: joining and leaving the line,
 * once per request, allocate nothing (a Map re-keyed per request made garbage that showed in p99).
 */
export class LinePlace<T> {
  readonly item: T;
  previous: LinePlace<T> | undefined;
  next: LinePlace<T> | undefined;
  /** When it began waiting (the clock of the line's owner). */
  since = 0;
  inLine = false;

  constructor(item: T) {
    this.item = item;
  }
}

export interface Waiter<T> {
  /** No request in progress: idle between requests, or no byte of the next one yet. */
  readonly waiting: boolean;
  readonly place: LinePlace<T>;
}

/**
 * Connections in the order they began waiting for a request, longest first, with the time each
 * began. Kept lazily: one that began a request since stays in place until `takeLongest` passes it
 * by, and joins again at the end when its answer is done.
 */
export class WaitingLine<T extends Waiter<T>> {
  private first: LinePlace<T> | undefined;
  private last: LinePlace<T> | undefined;

  /** `item` waits for a request from `now` on: to the end of the line. */
  join(item: T, now: number): void {
    const place = item.place;
    this.unlink(place);
    place.since = now;
    place.inLine = true;
    place.previous = this.last;
    if (this.last) this.last.next = place;
    else this.first = place;
    this.last = place;
  }

  leave(item: T): void {
    this.unlink(item.place);
  }

  /**
   * Takes out the one that has waited longest, if it began waiting before `before`; undefined
   * when none did. One that began at `before` or later is spared, and so is every one after it.
   */
  takeLongest(before: number): T | undefined {
    for (let place = this.first; place !== undefined; place = this.first) {
      if (place.since >= before) return undefined;
      this.unlink(place);
      if (place.item.waiting) return place.item;
    }
    return undefined;
  }

  private unlink(place: LinePlace<T>): void {
    if (!place.inLine) return;
    if (place.previous) place.previous.next = place.next;
    else this.first = place.next;
    if (place.next) place.next.previous = place.previous;
    else this.last = place.previous;
    place.previous = undefined;
    place.next = undefined;
    place.inLine = false;
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
