// nginx's smooth weighted round robin (ngx_http_upstream_get_peer). On every pick each usable
// backend's current weight grows by its effective weight, the largest current weight wins (the
// earlier backend on a tie) and the winner's current weight drops by the sum of the usable
// weights. With weights 5, 1, 1 this yields `a a b a c a a`, spreading the heavy backend out
// instead of sending it five requests in a row. A backend that is not usable for a pick is
// skipped and its current weight left alone, as nginx does with peers that are down.
//
// Weights may be fractional (slow start scales them), so they are turned into integers of
// 1/WEIGHT_SCALE of a weight unit before the arithmetic: integer sums stay exact in doubles, so
// ties resolve the same way every time and the current weights never drift.

import type { Candidate, Selector } from './selector.ts';

/** Resolution of effective weights: one weight unit is this many integer steps. */
export const WEIGHT_SCALE = 1_000_000;

/** A positive effective weight as an integer number of steps, at least 1. */
export function scaledWeight(weight: number): number {
  const scaled = Math.round(weight * WEIGHT_SCALE);
  // `!(x >= 1)` also catches NaN.
  return !(scaled >= 1) ? 1 : scaled;
}

export class SmoothWeightedRoundRobin<B extends Candidate> implements Selector<B> {
  readonly #backends: readonly B[];
  /** Current weight of each backend, by index, in integer steps. */
  readonly #current: Float64Array;

  constructor(backends: readonly B[]) {
    this.#backends = backends;
    this.#current = new Float64Array(backends.length);
  }

  select(usable: (backend: B) => boolean): B | undefined {
    const backends = this.#backends;
    const current = this.#current;
    let total = 0;
    let best = -1;
    let bestWeight = 0;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as B;
      if (!usable(backend)) continue;
      const weight = scaledWeight(backend.effectiveWeight);
      const cw = (current[i] as number) + weight;
      current[i] = cw;
      total += weight;
      if (best < 0 || cw > bestWeight) {
        best = i;
        bestWeight = cw;
      }
    }
    if (best < 0) return undefined;
    current[best] = bestWeight - total;
    return backends[best];
  }
}
