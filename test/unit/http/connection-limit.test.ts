// The line of connections waiting for a request: longest first, a rejoin goes to the end, one no
// longer waiting is passed by, and nothing that began waiting at or after `before` is taken.
import test from 'ava';
import { LinePlace, type Waiter, WaitingLine } from '../../../src/http/connection-limit.ts';

class Connection implements Waiter<Connection> {
  readonly name: string;
  readonly place: LinePlace<Connection> = new LinePlace(this);
  waiting = true;

  constructor(name: string) {
    this.name = name;
  }
}

/** Takes every connection it can (before `before`): their names, in order. */
function drain(line: WaitingLine<Connection>, before = Number.POSITIVE_INFINITY): string[] {
  const names: string[] = [];
  for (let next = line.takeLongest(before); next; next = line.takeLongest(before)) names.push(next.name);
  return names;
}

test('longest waiting first; a rejoin moves to the end; one that left is never taken', (t) => {
  const line = new WaitingLine<Connection>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => new Connection(name)) as [
    Connection,
    Connection,
    Connection,
    Connection,
  ];
  line.join(a, 1);
  line.join(b, 2);
  line.join(c, 3);
  line.join(d, 4);
  line.join(a, 5); // answered, waiting again
  line.leave(c); // closed
  t.deepEqual(drain(line), ['b', 'd', 'a']);
  t.is(line.takeLongest(Number.POSITIVE_INFINITY), undefined);
  // Taken ones can join again, first or last alike.
  line.join(d, 6);
  line.join(b, 7);
  t.deepEqual(drain(line), ['d', 'b']);
});

test('one that began a request is passed by and dropped; it comes back when it waits again', (t) => {
  const line = new WaitingLine<Connection>();
  const [a, b] = [new Connection('a'), new Connection('b')];
  line.join(a, 1);
  line.join(b, 2);
  a.waiting = false;
  t.is(line.takeLongest(10)?.name, 'b');
  t.is(line.takeLongest(10), undefined, 'a was dropped from the line');
  a.waiting = true;
  line.join(a, 3);
  t.is(line.takeLongest(10)?.name, 'a');
});

test('nothing that began waiting at or after `before` is taken, nor anything behind it', (t) => {
  const line = new WaitingLine<Connection>();
  for (const [name, since] of [
    ['a', 1],
    ['b', 2],
    ['c', 5],
    ['d', 3],
  ] as const)
    line.join(new Connection(name), since);
  // d began before 5 but stands behind c, which began at 5: the line stops at c.
  t.deepEqual(drain(line, 5), ['a', 'b']);
  t.deepEqual(drain(line, 6), ['c', 'd']);
});

test('a long random run agrees with a plain model of the line', (t) => {
  const line = new WaitingLine<Connection>();
  const connections = Array.from({ length: 12 }, (_, i) => new Connection(`c${i}`));
  let model: { connection: Connection; since: number }[] = [];
  // mulberry32: a fixed seed, so a failure repeats.
  let seed = 7;
  const random = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
  let taken = 0;
  for (let now = 1; now < 20_000; now++) {
    const connection = connections[random(connections.length)] as Connection;
    const action = random(4);
    if (action === 0) {
      line.join(connection, now);
      model = model.filter((entry) => entry.connection !== connection);
      model.push({ connection, since: now });
    } else if (action === 1) {
      line.leave(connection);
      model = model.filter((entry) => entry.connection !== connection);
    } else if (action === 2) connection.waiting = !connection.waiting;
    else {
      const before = now - random(30);
      let expected: Connection | undefined;
      while (model.length > 0 && (model[0]?.since ?? 0) < before) {
        const entry = model.shift() as { connection: Connection };
        if (entry.connection.waiting) {
          expected = entry.connection;
          break;
        }
      }
      const got = line.takeLongest(before);
      if (got?.name !== expected?.name) t.fail(`step ${now}: took ${got?.name}, expected ${expected?.name}`);
      if (got) taken++;
    }
  }
  t.true(taken > 1000, `took ${taken}`);
});
