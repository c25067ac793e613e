// The idle connections of one backend, the most recently used on top: reuse takes the top, so
// surplus connections sink, and the sweep closes them from the bottom once they are too old.
// A list linked through the connections themselves: taking, returning and removing any one (it
// closed while idle) cost the same however many are idle. With an array, each close searched and
// shifted it: 10,000 idle connections closing at once took 10–40 ms of the event loop (under 3 ms
// this way), and that grows with the square of their number.

/** What the list keeps on each connection. */
export interface IdleLinks<T> {
  /** The idle connection returned just after this one. */
  idleNewer: T | undefined;
  /** The idle connection returned just before this one. */
  idleOlder: T | undefined;
  /** In the list now. */
  idleListed: boolean;
}

export class IdleConnections<T extends IdleLinks<T>> {
  private newest: T | undefined;
  private oldestEntry: T | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(connection: T): void {
    if (connection.idleListed) return;
    connection.idleListed = true;
    connection.idleNewer = undefined;
    connection.idleOlder = this.newest;
    if (this.newest) this.newest.idleNewer = connection;
    else this.oldestEntry = connection;
    this.newest = connection;
    this.count++;
  }

  /** Takes the most recently used one. */
  pop(): T | undefined {
    const connection = this.newest;
    if (connection) this.remove(connection);
    return connection;
  }

  /** The least recently used one, left in the list. */
  get oldest(): T | undefined {
    return this.oldestEntry;
  }

  /** Takes `connection` out wherever it is; false if it was not in the list. */
  remove(connection: T): boolean {
    if (!connection.idleListed) return false;
    const { idleNewer: newer, idleOlder: older } = connection;
    if (newer) newer.idleOlder = older;
    else this.newest = older;
    if (older) older.idleNewer = newer;
    else this.oldestEntry = newer;
    connection.idleListed = false;
    connection.idleNewer = undefined;
    connection.idleOlder = undefined;
    this.count--;
    return true;
  }

  /** All of them, newest first. */
  toArray(): T[] {
    const all: T[] = [];
    for (let at = this.newest; at; at = at.idleOlder) all.push(at);
    return all;
  }
}
