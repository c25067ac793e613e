import test from 'ava';
import { restartDelay, usableCores, workerConfig, workerCount } from '../../../src/cluster/plan.ts';
import { parseConfig } from '../../../src/config/load.ts';

const config = parseConfig(`listen: 0.0.0.0:0
admin: 127.0.0.1:9100
cache: { maxBytes: 100MiB, maxObjectBytes: 40MiB }
pools:
  web:
    servers: [127.0.0.1:9001]
`);

test('auto is one worker per core the process may use; a number is itself', (t) => {
  t.is(
    workerCount('auto', () => 6),
    6,
  );
  t.is(
    workerCount('auto', () => 0),
    1,
  );
  t.is(
    workerCount(3, () => 6),
    3,
  );
});

test('usable cores follow a cgroup CPU quota, v2 or v1, rounded up', (t) => {
  const files = (entries: Record<string, string>) => (path: string) => entries[path];
  t.is(usableCores(files({}), 8), 8);
  t.is(usableCores(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }), 8), 8);
  t.is(usableCores(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }), 8), 2);
  t.is(usableCores(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' }), 8), 1);
  t.is(
    usableCores(files({ '/sys/fs/cgroup/cpu.max': '800000 100000\n' }), 4),
    4,
    'never more than the affinity allows',
  );
  const v1 = { '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' };
  t.is(usableCores(files({ ...v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '300000\n' }), 8), 3);
  t.is(usableCores(files({ ...v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n' }), 8), 8);
});

test("a worker's config: the bound port, no admin port, a share of the cache", (t) => {
  const worker = workerConfig(config, 4, 8123);
  t.deepEqual(worker.listen, { host: '0.0.0.0', port: 8123 });
  t.is(worker.admin, null);
  t.is(worker.cache.maxBytes, 25 * 1024 ** 2);
  t.is(worker.cache.maxObjectBytes, 25 * 1024 ** 2, 'no object larger than a share');
  t.is(workerConfig(config, 2, 8123).cache.maxObjectBytes, 40 * 1024 ** 2);
  t.deepEqual(worker.pools, config.pools);
  t.is(config.cache.maxBytes, 100 * 1024 ** 2, 'the original is untouched');
});

test('the retry budget keeps its ratio in every worker and splits its floor', (t) => {
  const worker = workerConfig(config, 4, 8123);
  t.is(worker.retries.budgetRatio, config.retries.budgetRatio);
  t.is(worker.retries.budgetWindow, config.retries.budgetWindow);
  t.is(config.retries.budgetMinRetries, 10);
  t.is(worker.retries.budgetMinRetries, 3);
  t.is(workerConfig(config, 1, 8123).retries.budgetMinRetries, 10);
});

test('a dying slot is refilled at once, then after 250 ms doubling to 30 s', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 8, 9, 20].map(restartDelay), [0, 250, 500, 1000, 2000, 16_000, 30_000, 30_000]);
});
