// Released backend connections wait here until a whole poll phase of the event loop has gone by
// since their release, and only then go back to their pool. HTTP/1.1 gives an answer nothing
// that names its request: bytes a backend sends past its answer (a second response written
// after the first, a body after a bodiless answer) would otherwise become the answer to the next
// request on that connection, which may be another client's. Bytes already on their way arrive
// during that poll phase, and a connection nobody holds retires on them (UpstreamConnection).
// One queue for the process and one setImmediate per loop turn, not one per release.
import type { UpstreamConnection } from './connection.ts';

/** Where a settled connection goes back: the pool keeps it idle, or closes it. */
export interface SettlingPool {
  settled(connection: UpstreamConnection): void;
}

/** Released since the last check phase. */
let fresh: UpstreamConnection[] = [];
let freshPools: SettlingPool[] = [];
/** Released before the last check phase: a poll phase has gone by once the next one runs. */
let ready: UpstreamConnection[] = [];
let readyPools: SettlingPool[] = [];
let scheduled = false;

export function settle(pool: SettlingPool, connection: UpstreamConnection): void {
  fresh.push(connection);
  freshPools.push(pool);
  if (!scheduled) {
    scheduled = true;
    setImmediate(turn);
  }
}

/** Closes the connections of `pool` that are settling (its idle ones are being closed). */
export function closeSettling(pool: SettlingPool): void {
  for (const [connections, pools] of [
    [fresh, freshPools],
    [ready, readyPools],
  ] as const)
    for (let i = 0; i < connections.length; i++) if (pools[i] === pool) connections[i]?.destroy();
}

// Runs in the check phase, after the poll phase: what `ready` holds has seen a whole poll phase.
function turn(): void {
  scheduled = false;
  for (let i = 0; i < ready.length; i++)
    (readyPools[i] as SettlingPool).settled(ready[i] as UpstreamConnection);
  ready.length = 0;
  readyPools.length = 0;
  const emptyConnections = ready;
  const emptyPools = readyPools;
  ready = fresh;
  readyPools = freshPools;
  fresh = emptyConnections;
  freshPools = emptyPools;
  if (ready.length > 0 && !scheduled) {
    scheduled = true;
    setImmediate(turn);
  }
}
