import test from 'ava';
import { IdleConnections, type IdleLinks } from '../../../src/upstream/idle-connections.ts';
import { seeded } from '../../support/seeded.ts';

class Connection implements IdleLinks<Connection> {
  idleNewer: Connection | undefined;
  idleOlder: Connection | undefined;
  idleListed = false;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

const names = (list: IdleConnections<Connection>) => list.toArray().map((c) => c.name);

test('the most recently returned is taken first; the oldest stays at the bottom', (t) => {
  const list = new IdleConnections<Connection>();
  const [a, b, c] = ['a', 'b', 'c'].map((name) => new Connection(name)) as [
    Connection,
    Connection,
    Connection,
  ];
  for (const connection of [a, b, c]) list.push(connection);
  t.deepEqual(names(list), ['c', 'b', 'a']);
  t.is(list.oldest, a);
  t.is(list.pop(), c);
  t.is(list.pop(), b);
  t.is(list.size, 1);
  t.is(list.pop(), a);
  t.is(list.pop(), undefined);
  t.is(list.oldest, undefined);
  t.is(list.size, 0);
});

test('one that closes leaves from anywhere, and the order of the rest holds', (t) => {
  const list = new IdleConnections<Connection>();
  const all = ['a', 'b', 'c', 'd', 'e'].map((name) => new Connection(name));
  for (const connection of all) list.push(connection);
  const [a, , c, , e] = all as [Connection, Connection, Connection, Connection, Connection];
  t.true(list.remove(c));
  t.false(list.remove(c), 'not in the list any more');
  t.deepEqual(names(list), ['e', 'd', 'b', 'a']);
  t.true(list.remove(a));
  t.is(list.oldest?.name, 'b');
  t.true(list.remove(e));
  t.is(list.pop()?.name, 'd');
  t.deepEqual(names(list), ['b']);
  list.push(c);
  list.push(c);
  t.deepEqual(names(list), ['c', 'b'], 'pushed twice, listed once');
  t.is(list.size, 2);
});

test('random pushes, takes and removals match a plain array', (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = seeded(seed);
    const list = new IdleConnections<Connection>();
    let model: Connection[] = []; // oldest first
    const everyone: Connection[] = [];
    for (let step = 0; step < 5000; step++) {
      const roll = random();
      if (roll < 0.4) {
        // A connection back from an exchange: one seen before (taken or removed), or a new one.
        const away = everyone.filter((c) => !c.idleListed);
        let connection = away[Math.floor(random() * away.length)];
        if (connection === undefined || random() < 0.5) {
          connection = new Connection(`c${everyone.length}`);
          everyone.push(connection);
        }
        list.push(connection);
        model.push(connection);
      } else if (roll < 0.7) {
        t.is(list.pop(), model.pop());
      } else if (model.length > 0) {
        const victim = model[Math.floor(random() * model.length)] as Connection;
        t.true(list.remove(victim));
        model = model.filter((c) => c !== victim);
      }
      if (step % 50 === 0) {
        t.deepEqual(list.toArray(), [...model].reverse(), `seed ${seed}, step ${step}`);
        t.is(list.oldest, model[0]);
        t.is(list.size, model.length);
      }
    }
  }
});
