// Power of two choices (Mitzenmacher): draw two distinct usable backends uniformly at random and
// send the request to the less loaded one, load being `inFlight / effectiveWeight`. The draw is
// deliberately unweighted: weights already act through the load score (a backend of weight 2 looks
// half as loaded as one of weight 1 with the same requests in flight), as in Envoy's
// least-request balancer. On equal load the first drawn backend wins, so ties stay random.
// With a single usable backend it is returned without drawing.

import type { Candidate, Selector } from './selector.ts';

export class PowerOfTwoChoices<B extends Candidate> implements Selector<B> {
  readonly #backends: readonly B[];
  readonly #random: () => number;

  /** `random` returns a number in [0, 1), like Math.random; inject a seeded one in tests. */
  constructor(backends: readonly B[], random: () => number = Math.random) {
    this.#backends = backends;
    this.#random = random;
  }

  select(usable: (backend: B) => boolean): B | undefined {
    const backends = this.#backends;
    let count = 0;
    let only = -1;
    for (let i = 0; i < backends.length; i++) {
      if (usable(backends[i] as B)) {
        count++;
        only = i;
      }
    }
    if (count === 0) return undefined;
    if (count === 1) return backends[only];

    // The first draw is an index among the usable backends; the second one among the others.
    const first = Math.min(count - 1, Math.floor(this.#random() * count));
    let second = Math.min(count - 2, Math.floor(this.#random() * (count - 1)));
    if (second >= first) second++;

    let a: B | undefined;
    let b: B | undefined;
    let seen = 0;
    for (let i = 0; i < backends.length && (a === undefined || b === undefined); i++) {
      const backend = backends[i] as B;
      if (!usable(backend)) continue;
      if (seen === first) a = backend;
      else if (seen === second) b = backend;
      seen++;
    }
    // Only when `usable` changed its mind between the two passes.
    if (a === undefined || b === undefined) return a ?? b ?? backends[only];
    return load(b) < load(a) ? b : a;
  }
}

function load(backend: Candidate): number {
  const weight = backend.effectiveWeight;
  return backend.inFlight / (weight > 0 ? weight : Number.MIN_VALUE);
}
