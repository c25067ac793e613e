import test from 'ava';
import { createSelector } from '../../../src/balance/index.ts';
import { PowerOfTwoChoices } from '../../../src/balance/p2c.ts';

interface B {
  name: string;
  effectiveWeight: number;
  inFlight: number;
  up: boolean;
}

function backends(...inFlight: number[]): B[] {
  return inFlight.map((n, i) => ({
    name: String.fromCharCode(97 + i),
    effectiveWeight: 1,
    inFlight: n,
    up: true,
  }));
}

const isUp = (b: B): boolean => b.up;

/** A random that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => {
    const v = values[i++];
    if (v === undefined) throw new Error('random called too often');
    return v;
  };
}

test('prefers the less loaded of the two drawn', (t) => {
  // 4 usable: first draw 0.0 -> index 0 (a); second draw over the 3 others 0.5 -> 1 -> index 2 (c).
  const list = backends(5, 0, 2, 0);
  t.is(new PowerOfTwoChoices(list, sequence(0, 0.5)).select(isUp)?.name, 'c');
  // Same draw, reversed load.
  (list[0] as B).inFlight = 1;
  t.is(new PowerOfTwoChoices(list, sequence(0, 0.5)).select(isUp)?.name, 'a');
});

test('second draw skips the first: the two are always distinct', (t) => {
  // First draw 0.99 -> index 2 (c); second 0.99 over 2 others -> 1 -> index 1 (b).
  const list = backends(3, 2, 9);
  t.is(new PowerOfTwoChoices(list, sequence(0.99, 0.99)).select(isUp)?.name, 'b');
  // First 0.5 -> index 1 (b); second 0.5 -> 1 -> shifted past b to index 2 (c).
  const list2 = backends(3, 9, 2);
  t.is(new PowerOfTwoChoices(list2, sequence(0.5, 0.5)).select(isUp)?.name, 'c');
  // The least loaded (a) is not drawn: p2c picks among the drawn only.
  const list3 = backends(0, 9, 2);
  t.is(new PowerOfTwoChoices(list3, sequence(0.5, 0.5)).select(isUp)?.name, 'c');
});

test('load is in-flight divided by effective weight', (t) => {
  const list = backends(4, 3);
  (list[0] as B).effectiveWeight = 2; // load 2
  (list[1] as B).effectiveWeight = 1; // load 3
  t.is(new PowerOfTwoChoices(list, sequence(0, 0)).select(isUp)?.name, 'a');
  (list[0] as B).effectiveWeight = 1; // load 4
  t.is(new PowerOfTwoChoices(list, sequence(0, 0)).select(isUp)?.name, 'b');
});

test('on equal load the first drawn wins', (t) => {
  const list = backends(1, 1, 1);
  t.is(new PowerOfTwoChoices(list, sequence(0.9, 0)).select(isUp)?.name, 'c');
  t.is(new PowerOfTwoChoices(list, sequence(0, 0.9)).select(isUp)?.name, 'a');
});

test('draws only among usable backends', (t) => {
  const list = backends(0, 5, 0, 7);
  (list[0] as B).up = false;
  (list[2] as B).up = false;
  // Usable: b, d. First 0 -> b, second -> d; b less loaded.
  t.is(new PowerOfTwoChoices(list, sequence(0, 0)).select(isUp)?.name, 'b');
});

test('one usable backend is returned without drawing, none gives undefined', (t) => {
  const list = backends(9, 0, 9);
  (list[1] as B).up = false;
  (list[2] as B).up = false;
  const sel = new PowerOfTwoChoices(list, sequence());
  t.is(sel.select(isUp)?.name, 'a');
  t.is(
    sel.select(() => false),
    undefined,
  );
});

test('never returns an unusable backend with a real random', (t) => {
  const list = backends(0, 0, 0, 0, 0);
  (list[1] as B).up = false;
  (list[4] as B).up = false;
  const sel = new PowerOfTwoChoices(list);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(sel.select(isUp)?.name ?? '-');
  t.deepEqual([...seen].sort(), ['a', 'c', 'd']);
});

test('createSelector builds p2c with the given random', (t) => {
  const sel = createSelector('p2c', backends(3, 1), sequence(0, 0));
  t.true(sel instanceof PowerOfTwoChoices);
  t.is(sel.select(isUp)?.name, 'b');
});
