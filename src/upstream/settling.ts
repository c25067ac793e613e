// Released backend connections wait here until a millisecond and then a whole poll phase of the
// event loop have gone by since their release, and only then go back to their pool. HTTP/1.1 gives an answer nothing
// that names its request: bytes a backend sends past its answer (a second response written
// after the first, a body after a bodiless answer) would otherwise become the answer to the next
// request on that connection, which may be another client's. Bytes already on their way arrive
// during that poll phase, and a connection nobody holds retires on them (UpstreamConnection).
import type { UpstreamConnection } from './connection.ts';

/** Where a settled connection goes back: the pool keeps it idle, or closes it. */
export interface SettlingPool {
  settled(connection: UpstreamConnection): void;
}

/** Released since the last tick. */
let fresh: UpstreamConnection[] = [];
let freshPools: SettlingPool[] = [];
/** Released before the last tick: back to their pools after the poll phase that follows it. */
let ready: UpstreamConnection[] = [];
let readyPools: SettlingPool[] = [];
let ticking = false;

// Settling costs a timer a millisecond and one check phase after it, not a setImmediate per
// loop turn: pending immediates make every poll phase return at once instead of waiting for
// events, and under load that took Sluice 15–20% more CPU a request (more, emptier turns).
const settleMs = 1;

export function settle(pool: SettlingPool, connection: UpstreamConnection): void {
  fresh.push(connection);
  freshPools.push(pool);
  if (!ticking) {
    ticking = true;
    setTimeout(tick, settleMs).unref();
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

// Timers phase: what was released so far (in earlier turns) waits out the poll phase next.
function tick(): void {
  const emptyConnections = ready;
  const emptyPools = readyPools;
  ready = fresh;
  readyPools = freshPools;
  fresh = emptyConnections;
  freshPools = emptyPools;
  setImmediate(giveBack);
}

// Check phase, after that poll phase: bytes already on their way were read, and retired theirs.
function giveBack(): void {
  for (let i = 0; i < ready.length; i++)
    (readyPools[i] as SettlingPool).settled(ready[i] as UpstreamConnection);
  ready.length = 0;
  readyPools.length = 0;
  if (fresh.length > 0) setTimeout(tick, settleMs).unref();
  else ticking = false;
}
