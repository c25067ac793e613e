import test from 'ava';
import { parseConfig } from '../../../src/config/load.ts';
import { Metrics } from '../../../src/observe/metrics.ts';
import type { Backend } from '../../../src/upstream/backend.ts';
import { Topology } from '../../../src/upstream/topology.ts';

const clock = { now: 1_000_000 };
const metrics = new Metrics({ defaultMetrics: false });

function config(servers: string[], weight = 1) {
  return parseConfig(`pools:
  web:
    servers:
${servers.map((address) => `      - address: ${address}\n        weight: ${weight}`).join('\n')}
`);
}

function names(topology: Topology): string[] {
  return topology.pools.get('web')?.backends.map((backend) => backend.name) ?? [];
}

test('a reload keeps unchanged backends (same objects), adds new ones in slow start, drains removed ones', async (t) => {
  const topology = new Topology({ clock, metrics });
  const first = await topology.apply(config(['127.0.0.1:1', '127.0.0.1:2']));
  t.deepEqual(
    first.added.map((backend) => backend.health.state),
    ['up', 'up'],
  );
  const [one, two] = (topology.pools.get('web')?.backends ?? []) as [Backend, Backend];
  const change = await topology.apply(config(['127.0.0.1:2', '127.0.0.1:3']));
  t.deepEqual(names(topology), ['127.0.0.1:2', '127.0.0.1:3']);
  t.is(topology.pools.get('web')?.backends[0], two);
  t.deepEqual(
    change.added.map((backend) => [backend.name, backend.health.state]),
    [['127.0.0.1:3', 'slow_start']],
  );
  t.deepEqual(change.removed, [one]);
  t.deepEqual(change.gone, [one], 'its name went too');
  t.is(one.health.state, 'draining');
});

test('a changed weight replaces the backend', async (t) => {
  const topology = new Topology({ clock, metrics });
  await topology.apply(config(['127.0.0.1:1']));
  const before = topology.pools.get('web')?.backends[0];
  const change = await topology.apply(config(['127.0.0.1:1'], 5));
  t.is(change.removed[0], before);
  t.deepEqual(change.gone, [], 'replaced under its name');
  t.is(change.added[0]?.weight, 5);
});

test('a backend rebuilt at the same address carries its state on: down stays down, a drain holds', async (t) => {
  const topology = new Topology({ clock, metrics });
  await topology.apply(config(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3']));
  const [down, drained] = topology.pools.get('web')?.backends ?? [];
  for (let i = 0; i < 3; i++) down?.health.recordProbe({ result: 'refused', reason: 'refused' }, clock.now);
  drained?.health.drain(clock.now);
  t.deepEqual([down?.health.state, drained?.health.state], ['down', 'draining']);
  // A weight change rebuilds every backend.
  const change = await topology.apply(config(['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'], 2));
  t.deepEqual(
    change.added.map((backend) => [backend.name, backend.weight, backend.health.state, backend.routable]),
    [
      ['127.0.0.1:1', 2, 'down', false],
      ['127.0.0.1:2', 2, 'draining', false],
      ['127.0.0.1:3', 2, 'up', true],
    ],
  );
  // Another address is another server: it starts slowly.
  const moved = await topology.apply(config(['127.0.0.1:4']));
  t.is(moved.added[0]?.health.state, 'slow_start');
});

test('a pool is in panic exactly while nothing is routable, read when asked, with no request made', async (t) => {
  const topology = new Topology({ clock, metrics });
  await topology.apply(config(['127.0.0.1:1', '127.0.0.1:2']));
  const pool = topology.pools.get('web');
  const probe = (result: 'refused' | 'success') => {
    for (const backend of pool?.backends ?? [])
      backend.health.recordProbe({ result, reason: result }, clock.now);
  };
  t.false(pool?.panic);
  for (let i = 0; i < 3; i++) probe('refused');
  t.true(pool?.panic, 'all down');
  for (let i = 0; i < 2; i++) probe('success');
  t.false(pool?.panic, 'back up');
  const closed = new Topology({ clock, metrics });
  await closed.apply(parseConfig('pools:\n  web:\n    panic: closed\n    servers: [127.0.0.1:1]\n'));
  const only = closed.pools.get('web');
  for (let i = 0; i < 3; i++)
    only?.backends[0]?.health.recordProbe({ result: 'refused', reason: 'refused' }, clock.now);
  t.false(only?.panic, 'a pool that fails closed never panics');
});

test('DNS refresh rebuilds only when an answer changed', async (t) => {
  let answer = ['10.0.0.1', '10.0.0.2'];
  const topology = new Topology({ clock, metrics, resolver: async () => answer });
  const settings = config(['web.internal:80']);
  await topology.apply(settings);
  t.deepEqual(names(topology), ['web.internal:80/10.0.0.1', 'web.internal:80/10.0.0.2']);
  t.is(await topology.refresh(), undefined);
  answer = ['10.0.0.2', '10.0.0.3'];
  const change = await topology.refresh();
  t.deepEqual(
    change?.added.map((backend) => backend.name),
    ['web.internal:80/10.0.0.3'],
  );
  t.deepEqual(
    change?.removed.map((backend) => [backend.name, backend.health.state]),
    [['web.internal:80/10.0.0.1', 'draining']],
  );
  t.deepEqual(names(topology), ['web.internal:80/10.0.0.2', 'web.internal:80/10.0.0.3']);
});

test('a DNS failure on refresh rejects and leaves the backends as they were', async (t) => {
  let fail = false;
  const topology = new Topology({
    clock,
    metrics,
    resolver: async (name) => {
      if (fail) throw new Error(`getaddrinfo EAI_AGAIN ${name}`);
      return ['10.0.0.1'];
    },
  });
  const settings = config(['web.internal:80']);
  await topology.apply(settings);
  fail = true;
  await t.throwsAsync(topology.refresh(), { message: /EAI_AGAIN web\.internal/ });
  t.deepEqual(names(topology), ['web.internal:80/10.0.0.1']);
});

test('two applies close together end on the later one, however long each takes to resolve', async (t) => {
  // The first config's name resolves slowly (a DNS lookup), the second's at once.
  const topology = new Topology({
    clock,
    metrics,
    resolver: async (name) => {
      if (name === 'slow.internal') await new Promise((resolve) => setTimeout(resolve, 50));
      return ['10.0.0.9'];
    },
  });
  await topology.apply(config(['127.0.0.1:1']));
  const first = topology.apply(config(['slow.internal:80']));
  const second = topology.apply(config(['127.0.0.1:2']));
  await Promise.all([first, second]);
  t.deepEqual(names(topology), ['127.0.0.1:2']);
  // A refresh asked meanwhile resolves what was applied last, never an older config.
  const third = topology.apply(config(['slow.internal:80']));
  const refresh = topology.refresh();
  await Promise.all([third, refresh]);
  t.deepEqual(names(topology), ['slow.internal:80/10.0.0.9']);
});
