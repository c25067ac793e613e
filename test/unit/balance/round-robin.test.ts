import test from 'ava';
import { createSelector } from '../../../src/balance/index.ts';
import { SmoothWeightedRoundRobin } from '../../../src/balance/round-robin.ts';

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

function picks(rr: SmoothWeightedRoundRobin<B>, n: number, usable: (b: B) => boolean = isUp): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rr.select(usable)?.name ?? '-');
  return out.join(' ');
}

function counts(rr: SmoothWeightedRoundRobin<B>, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = rr.select(isUp)?.name ?? '-';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

test('weights 5,1,1 give nginx sequence a a b a c a a, repeating', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(5, 1, 1));
  t.is(picks(rr, 14), 'a a b a c a a a a b a c a a');
});

test('equal weights rotate strictly', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(1, 1, 1));
  t.is(picks(rr, 7), 'a b c a b c a');
});

test('equal weights other than 1 rotate strictly', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(3, 3, 3, 3));
  t.is(picks(rr, 8), 'a b c d a b c d');
});

test('weights 2,1 give a b a', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(2, 1));
  t.is(picks(rr, 9), 'a b a a b a a b a');
});

test('a down backend is skipped and the other two alternate exactly', (t) => {
  const list = backends(1, 1, 1);
  const rr = new SmoothWeightedRoundRobin(list);
  (list[1] as B).up = false;
  t.is(picks(rr, 6), 'a c a c a c');
});

test('a backend going down mid-rotation and coming back rejoins the rotation', (t) => {
  const list = backends(1, 1, 1);
  const rr = new SmoothWeightedRoundRobin(list);
  t.is(picks(rr, 3), 'a b c');
  (list[1] as B).up = false;
  t.is(picks(rr, 4), 'a c a c');
  (list[1] as B).up = true;
  t.is(picks(rr, 6), 'a b c a b c');
});

test('a weighted backend coming back gets its share again', (t) => {
  const list = backends(5, 1, 1);
  const rr = new SmoothWeightedRoundRobin(list);
  (list[0] as B).up = false;
  t.is(picks(rr, 4), 'b c b c');
  (list[0] as B).up = true;
  t.deepEqual(counts(rr, 700), { a: 500, b: 100, c: 100 });
});

test('nothing usable gives undefined', (t) => {
  const list = backends(1, 2);
  const rr = new SmoothWeightedRoundRobin(list);
  t.is(
    rr.select(() => false),
    undefined,
  );
  t.is(
    new SmoothWeightedRoundRobin<B>([]).select(() => true),
    undefined,
  );
  // And the failed pick did not disturb the state.
  t.is(picks(rr, 3), 'b a b');
});

test('excluding already-tried backends yields each backend once, then undefined', (t) => {
  const list = backends(5, 1, 1);
  const rr = new SmoothWeightedRoundRobin(list);
  for (let round = 0; round < 5; round++) {
    const tried = new Set<B>();
    const usable = (b: B): boolean => b.up && !tried.has(b);
    for (let i = 0; i < 3; i++) {
      const b = rr.select(usable);
      t.truthy(b);
      t.false(tried.has(b as B));
      tried.add(b as B);
    }
    t.is(rr.select(usable), undefined);
    t.is(tried.size, 3);
  }
});

test('excluding tried backends skips down ones too', (t) => {
  const list = backends(1, 1, 1, 1);
  (list[2] as B).up = false;
  const rr = new SmoothWeightedRoundRobin(list);
  const tried = new Set<string>();
  const usable = (b: B): boolean => b.up && !tried.has(b.name);
  const order: string[] = [];
  for (let b = rr.select(usable); b !== undefined; b = rr.select(usable)) {
    tried.add(b.name);
    order.push(b.name);
  }
  t.deepEqual(order, ['a', 'b', 'd']);
});

test('fractional weights 0.1 vs 1: exact counts over 1100 picks', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(0.1, 1));
  t.deepEqual(counts(rr, 1100), { a: 100, b: 1000 });
});

test('fractional weights are spread out: one in every eleven', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(1, 0.1));
  t.is(picks(rr, 11), 'a a a a a b a a a a a');
});

test('slow-start style weights 0.3, 1, 1 keep exact proportions', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(0.3, 1, 1));
  t.deepEqual(counts(rr, 2300), { a: 300, b: 1000, c: 1000 });
});

test('7000 picks with weights 5,1,1 give exactly 5000/1000/1000', (t) => {
  const rr = new SmoothWeightedRoundRobin(backends(5, 1, 1));
  t.deepEqual(counts(rr, 7000), { a: 5000, b: 1000, c: 1000 });
});

test('weights read at every pick: changing a weight changes the share', (t) => {
  const list = backends(1, 1);
  const rr = new SmoothWeightedRoundRobin(list);
  t.deepEqual(counts(rr, 100), { a: 50, b: 50 });
  (list[0] as B).effectiveWeight = 3;
  t.deepEqual(counts(rr, 400), { a: 300, b: 100 });
});

test('createSelector builds round robin', (t) => {
  const sel = createSelector('round-robin', backends(5, 1, 1));
  t.true(sel instanceof SmoothWeightedRoundRobin);
  const out: string[] = [];
  for (let i = 0; i < 7; i++) out.push(sel.select(isUp)?.name ?? '-');
  t.is(out.join(' '), 'a a b a c a a');
});
