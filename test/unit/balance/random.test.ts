import test from 'ava';
import { createSelector } from '../../../src/balance/index.ts';
import { WeightedRandom } from '../../../src/balance/random.ts';
import { seeded } from '../../support/seeded.ts';

interface B {
  name: string;
  effectiveWeight: number;
  inFlight: number;
  up: boolean;
}

function backends(...weights: number[]): B[] {
  return weights.map((w, i) => ({
    name: String.fromCharCode(97 + i),
    effectiveWeight: w,
    inFlight: 0,
    up: true,
  }));
}

const isUp = (b: B): boolean => b.up;

function counts(sel: { select(u: (b: B) => boolean): B | undefined }, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = sel.select(isUp)?.name ?? '-';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

test('distribution follows weights within tolerance over 10000 picks', (t) => {
  for (const seed of [1, 42, 1234567]) {
    const sel = new WeightedRandom(backends(5, 1, 1, 3), seeded(seed));
    const c = counts(sel, 10000);
    t.deepEqual(Object.keys(c).sort(), ['a', 'b', 'c', 'd']);
    // Expected 5000, 1000, 1000, 3000; 4% of 10000 is far beyond 4 standard deviations.
    t.true(Math.abs((c.a ?? 0) - 5000) < 400, `a=${c.a}`);
    t.true(Math.abs((c.b ?? 0) - 1000) < 400, `b=${c.b}`);
    t.true(Math.abs((c.c ?? 0) - 1000) < 400, `c=${c.c}`);
    t.true(Math.abs((c.d ?? 0) - 3000) < 400, `d=${c.d}`);
  }
});

test('never picks an unusable backend', (t) => {
  const list = backends(5, 1, 1, 3);
  (list[0] as B).up = false;
  (list[3] as B).up = false;
  const sel = new WeightedRandom(list, seeded(7));
  const c = counts(sel, 10000);
  t.deepEqual(Object.keys(c).sort(), ['b', 'c']);
  t.true(Math.abs((c.b ?? 0) - 5000) < 400);
});

test('exact picks with an injected random', (t) => {
  // Weights 1, 2, 1: [0, 0.25) -> a, [0.25, 0.75) -> b, [0.75, 1) -> c.
  const values = [0, 0.2499, 0.25, 0.7499, 0.75, 0.9999999];
  let i = 0;
  const sel = new WeightedRandom(backends(1, 2, 1), () => values[i++] as number);
  const out = values.map(() => sel.select(isUp)?.name);
  t.deepEqual(out, ['a', 'a', 'b', 'b', 'c', 'c']);
});

test('unusable backends take no share of the range', (t) => {
  const list = backends(1, 2, 1);
  (list[1] as B).up = false;
  const values = [0, 0.49, 0.5, 0.99];
  let i = 0;
  const sel = new WeightedRandom(list, () => values[i++] as number);
  t.deepEqual(
    values.map(() => sel.select(isUp)?.name),
    ['a', 'a', 'c', 'c'],
  );
});

test('nothing usable gives undefined, one usable is always it', (t) => {
  const list = backends(1, 1);
  const sel = new WeightedRandom(list, seeded(3));
  t.is(
    sel.select(() => false),
    undefined,
  );
  (list[0] as B).up = false;
  t.deepEqual(counts(sel, 100), { b: 100 });
});

test('createSelector builds weighted random with the given random', (t) => {
  const sel = createSelector('random', backends(1, 1), () => 0.75);
  t.true(sel instanceof WeightedRandom);
  t.is(sel.select(isUp)?.name, 'b');
});
