// A released backend connection waits here until the callback that released it has ended, and
// only then goes back to its pool. HTTP/1.1 gives an answer nothing that names its request: bytes
// a backend sends past its answer (a second response written right after the first, a body after
// a bodiless answer) would become the answer to a request pipelined behind it and started in the
// same callback. Once it is idle, a connection retires on any byte it receives (UpstreamConnection),
// and its pool stops reusing that backend's connections for a while (ConnectionPool.release).
// Waiting longer for every connection (a millisecond and a poll phase) cost Sluice 10-25% more CPU
// a request in an A/B bench: the next request no longer took the connection just released, so
// more connections took turns, colder in every cache.
import type { UpstreamConnection } from './connection.ts';

/** Where a settled connection goes back: the pool keeps it idle, or closes it. */
export interface SettlingPool {
  settled(connection: UpstreamConnection): void;
}

/** Connections and their pools, in two arrays (a pair object per release would be garbage). */
class Waiting {
  connections: UpstreamConnection[] = [];
  pools: SettlingPool[] = [];

  add(pool: SettlingPool, connection: UpstreamConnection): void {
    this.connections.push(connection);
    this.pools.push(pool);
  }

  giveBack(): void {
    const { connections, pools } = this;
    for (let i = 0; i < connections.length; i++)
      (pools[i] as SettlingPool).settled(connections[i] as UpstreamConnection);
    connections.length = 0;
    pools.length = 0;
  }

  close(pool: SettlingPool): void {
    for (let i = 0; i < this.connections.length; i++)
      if (this.pools[i] === pool) this.connections[i]?.destroy();
  }
}

/** Released in the running callback. */
let thisCallback = new Waiting();
let spareCallback = new Waiting();
let scheduled = false;

export function settle(pool: SettlingPool, connection: UpstreamConnection): void {
  thisCallback.add(pool, connection);
  if (!scheduled) {
    scheduled = true;
    process.nextTick(endOfCallback);
  }
}

/** Closes the connections of `pool` that are settling (its idle ones are being closed). */
export function closeSettling(pool: SettlingPool): void {
  thisCallback.close(pool);
}

function endOfCallback(): void {
  scheduled = false;
  const done = thisCallback;
  thisCallback = spareCallback;
  spareCallback = done;
  done.giveBack();
}
