// Builds the selector for a pool's balance algorithm. A selector keeps per-backend state by index,
// so a change in the pool's backends builds a new one.

import type { BalanceAlgorithm } from '../config/types.ts';
import { PowerOfTwoChoices } from './p2c.ts';
import { WeightedRandom } from './random.ts';
import { SmoothWeightedRoundRobin } from './round-robin.ts';
import type { Candidate, Selector } from './selector.ts';

export { PowerOfTwoChoices } from './p2c.ts';
export { WeightedRandom } from './random.ts';
export { SmoothWeightedRoundRobin } from './round-robin.ts';
export type { Candidate, Selector } from './selector.ts';

/** `random` (default Math.random) is used by `random` and `p2c`; round robin ignores it. */
export function createSelector<B extends Candidate>(
  algorithm: BalanceAlgorithm,
  backends: readonly B[],
  random: () => number = Math.random,
): Selector<B> {
  switch (algorithm) {
    case 'round-robin':
      return new SmoothWeightedRoundRobin(backends);
    case 'random':
      return new WeightedRandom(backends, random);
    case 'p2c':
      return new PowerOfTwoChoices(backends, random);
    default: {
      const unknown: never = algorithm;
      throw new Error(`unknown balance algorithm: ${String(unknown)}`);
    }
  }
}
