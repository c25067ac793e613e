// Request coalescing (collapsed forwarding): concurrent misses for one cache key send one
// request to the backend. The first caller to join a key leads; later callers follow and wait
// for the leader's outcome. No I/O and no timers: a caller that must not wait forever races
// `wait` against its own deadline (and then goes to the backend itself).
//
// API
//   const flights = new Coalescer();
//   const flight = flights.join(key);
//   if (flight.leader) { …fetch…; flight.finish('stored' | 'uncacheable' | 'failed'); }
//   else { const outcome = await flight.wait; … }
//   flights.size                 keys with a flight in progress
//   flights.has(key)             a flight for that key is in progress (join would follow)
//   flights.followers(key)       callers waiting on that key
//
// Outcomes: 'stored' → followers look the key up in the store again (their Vary values may
// still pick no variant: then they go to the backend themselves, without joining again);
// 'uncacheable' (the leader's response may not be stored) or 'failed' (no response) → followers
// go to the backend themselves; 'released' (the leader gave up leading: its client holds the
// backend, see ./leader-stall.ts) → followers look again and join afresh, so the first of them
// leads a new flight and the others follow it. A leader must finish exactly once (use
// try/finally); later calls are ignored. The key's flight ends at finish, so the next miss leads
// a new one.

export type FlightOutcome = 'stored' | 'uncacheable' | 'failed' | 'released';

export type Flight =
  | { leader: true; finish(outcome: FlightOutcome): void }
  | { leader: false; wait: Promise<FlightOutcome> };

interface InFlight {
  waiters: ((outcome: FlightOutcome) => void)[];
}

export class Coalescer {
  private readonly flights = new Map<string, InFlight>();

  get size(): number {
    return this.flights.size;
  }

  has(key: string): boolean {
    return this.flights.has(key);
  }

  followers(key: string): number {
    return this.flights.get(key)?.waiters.length ?? 0;
  }

  join(key: string): Flight {
    const current = this.flights.get(key);
    if (current !== undefined) {
      return { leader: false, wait: new Promise<FlightOutcome>((resolve) => current.waiters.push(resolve)) };
    }
    const flight: InFlight = { waiters: [] };
    this.flights.set(key, flight);
    let done = false;
    return {
      leader: true,
      finish: (outcome: FlightOutcome): void => {
        if (done) return;
        done = true;
        if (this.flights.get(key) === flight) this.flights.delete(key);
        for (const resolve of flight.waiters) resolve(outcome);
        flight.waiters = [];
      },
    };
  }
}
