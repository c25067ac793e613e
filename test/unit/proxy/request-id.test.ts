import test from 'ava';
import { newRequestId } from '../../../src/proxy/request-id.ts';

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are version 4 UUIDs in lower-case hex, distinct across several pool refills', (t) => {
  const ids = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newRequestId();
    if (!uuidV4.test(id)) t.fail(`not a version 4 UUID: ${id}`);
    ids.add(id);
  }
  t.is(ids.size, 5000);
});

test('every hex digit appears in every random position (the ids are not partly constant)', (t) => {
  const seen = Array.from({ length: 36 }, () => new Set<string>());
  for (let i = 0; i < 3000; i++) {
    const id = newRequestId();
    for (let k = 0; k < 36; k++) seen[k]?.add(id[k] as string);
  }
  const fixed = new Map([
    [8, '-'],
    [13, '-'],
    [18, '-'],
    [23, '-'],
    [14, '4'],
  ]);
  for (let k = 0; k < 36; k++) {
    const expected = fixed.has(k) ? 1 : k === 19 ? 4 : 16;
    t.is(seen[k]?.size, expected, `position ${k}`);
  }
});

test('an id returned earlier is not changed by the next ones (each is its own string)', (t) => {
  const first = newRequestId();
  const copy = `${first}`;
  for (let i = 0; i < 600; i++) newRequestId();
  t.is(first, copy);
});
