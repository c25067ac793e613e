// Weighted random selection: each usable backend is chosen with probability proportional to its
// effective weight. Two passes over the backends (sum, then walk), no allocation per pick.

import type { Candidate, Selector } from './selector.ts';

export class WeightedRandom<B extends Candidate> implements Selector<B> {
  readonly #backends: readonly B[];
  readonly #random: () => number;

  /** `random` returns a number in [0, 1), like Math.random; inject a seeded one in tests. */
  constructor(backends: readonly B[], random: () => number = Math.random) {
    this.#backends = backends;
    this.#random = random;
  }

  select(usable: (backend: B) => boolean): B | undefined {
    const backends = this.#backends;
    let total = 0;
    let last = -1;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as B;
      if (!usable(backend)) continue;
      total += weightOf(backend);
      last = i;
    }
    if (last < 0) return undefined;
    let point = this.#random() * total;
    for (let i = 0; i < last; i++) {
      const backend = backends[i] as B;
      if (!usable(backend)) continue;
      point -= weightOf(backend);
      if (point < 0) return backend;
    }
    // The last usable backend, also where rounding leaves `point` a hair above zero.
    return backends[last];
  }
}

/** The effective weight; anything not a positive finite number counts as a tiny weight. */
function weightOf(backend: Candidate): number {
  const weight = backend.effectiveWeight;
  return weight > 0 && weight < Number.POSITIVE_INFINITY ? weight : Number.MIN_VALUE;
}
