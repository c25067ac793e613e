// What a server does at its connection limit, for the proxy and the admin port alike: close the
// connection that has waited longest for a request to make room (nginx's reusable-connection
// queue), and when none may be closed, tell the newcomer 503 (or let the server answer it itself:
// the admin port's health probes).
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

export type ShedReason = 'idle_evicted' | 'max_connections';

/** How long a newcomer over the limit may hold its descriptor, from accept. */
const overLimitMs = 1000;

/**
 * A server's own answer to a newcomer over the limit, in one of the few places kept for them: it
 * reads the first request (within `overLimitMs`) and resolves true once it has answered it,
 * false if the newcomer is to be told 503 (or was closed, when nothing is written). Never rejects.
 */
export type OverLimitAnswer = (socket: Socket) => Promise<boolean>;

/**
 * The connections a server holds, at most `limit`. At the limit a newcomer takes the place of
 * the connection that has waited longest for a request (`idle_evicted`); if none may be closed,
 * it is told 503 (`max_connections`).
 */
export class ConnectionLimit<T extends Waiter<T> & { readonly socket: Socket }> {
  readonly open = new Set<T>();
  limit: number;
  private readonly line = new WaitingLine<T>();
  private readonly refusals: Refusals;
  private readonly onShed: ((reason: ShedReason) => void) | undefined;

  /**
   * `maxAnswering`: newcomers answered over the limit at once; beyond, they are closed without an
   * answer. `answer`: the server's own answer to them, instead of 503 for all.
   */
  constructor(
    limit: number,
    maxAnswering: number,
    onShed?: (reason: ShedReason) => void,
    answer?: OverLimitAnswer,
  ) {
    this.limit = limit;
    this.refusals = new Refusals(maxAnswering, onShed, answer);
    this.onShed = onShed;
  }

  /**
   * Whether the connection on `socket` may be served: at the limit, only if one that began
   * waiting before `before` could be closed for it. If not, Refusals has it.
   */
  admit(socket: Socket, before: number): boolean {
    if (this.open.size < this.limit || this.evictLongest(before)) return true;
    this.refusals.refuse(socket);
    return false;
  }

  /** Closes the connection that has waited longest, if it began waiting before `before`. */
  evictLongest(before: number): boolean {
    const longest = this.line.takeLongest(before);
    if (!longest) return false;
    this.onShed?.('idle_evicted');
    longest.socket.destroy();
    this.open.delete(longest);
    return true;
  }

  /** An admitted connection, waiting for its first request from `now` on. */
  added(connection: T, now: number): void {
    this.open.add(connection);
    this.line.join(connection, now);
  }

  /** Its answer is done and it waits for the next request, from `now` on. */
  waiting(connection: T, now: number): void {
    this.line.join(connection, now);
  }

  closed(connection: T): void {
    this.open.delete(connection);
    this.line.leave(connection);
  }
}

/**
 * Answers newcomers over a limit, a few at a time (`maxAnswering`): each answer holds a descriptor
 * until the client has it. Beyond, they are closed without an answer. Each is a `max_connections`
 * shed unless the server's own `answer` served it.
 */
class Refusals {
  private answering = 0;
  private readonly maxAnswering: number;
  private readonly onShed: ((reason: ShedReason) => void) | undefined;
  private readonly answer: OverLimitAnswer | undefined;

  constructor(maxAnswering: number, onShed?: (reason: ShedReason) => void, answer?: OverLimitAnswer) {
    this.maxAnswering = maxAnswering;
    this.onShed = onShed;
    this.answer = answer;
  }

  refuse(socket: Socket): void {
    if (this.answering >= this.maxAnswering) {
      this.onShed?.('max_connections');
      socket.destroy();
      return;
    }
    this.answering++;
    // From accept, however the client trickles: a refused connection holds its place briefly.
    const deadline = setTimeout(() => socket.destroy(), overLimitMs);
    socket.once('close', () => {
      clearTimeout(deadline);
      this.answering--;
    });
    if (!this.answer) this.tooMany(socket);
    else
      this.answer(socket).then((served) => {
        if (!served) this.tooMany(socket);
      });
  }

  private tooMany(socket: Socket): void {
    this.onShed?.('max_connections');
    if (socket.destroyed) return;
    // Read and drop what the client sends, so closing does not reset the answer away.
    socket.resume();
    socket.end(plainResponse(503, 'too many connections', { close: true }), 'latin1');
  }
}
