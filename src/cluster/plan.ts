// What a cluster is made of, decided before any process starts: how many workers, and what
// each one's share of a tree-wide bound is. Pure functions.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.ts';

/** `auto`: one worker per core this process may use (the cgroup CPU quota included). */
export function workerCount(workers: Config['workers'], cores: () => number = usableCores): number {
  return workers === 'auto' ? Math.max(1, cores()) : workers;
}

/** Reads a file's text, or undefined when it is not there. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * The cores this process may use: the CPUs it may run on (os.availableParallelism), fewer when
 * a cgroup CPU quota says so, rounded up (`docker run --cpus=1.5`: 2). libuv reads cgroup v2's
 * `cpu.max` only on some versions and v1 not at all, so both are read here.
 */
export function usableCores(read: ReadText = readText, parallelism: number = availableParallelism()): number {
  const quota = cgroupQuota(read);
  return quota === undefined ? parallelism : Math.max(1, Math.min(parallelism, Math.ceil(quota)));
}

/** CPUs' worth of time per period the cgroup allows, or undefined for no limit. */
function cgroupQuota(read: ReadText): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  if (v2) return v2[0] === 'max' ? undefined : ratio(v2[0], v2[1]);
  const quota = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim();
  const period = read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim();
  return quota === undefined || quota === '-1' ? undefined : ratio(quota, period);
}

function ratio(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/**
 * The config one of `count` workers runs: the proxy port the first worker bound, no admin port
 * (the supervisor has it), and shares of the tree-wide bounds. The cache: `cache.maxBytes` is
 * split evenly (an object larger than a share is not cached). The retry budget: its ratio holds
 * in every worker, so it holds for their sum; the floor of retries a quiet pool may always make
 * is split (rounded up).
 */
export function workerConfig(config: Config, count: number, port: number): Config {
  const maxBytes = Math.floor(config.cache.maxBytes / count);
  return {
    ...config,
    listen: { ...config.listen, port },
    admin: null,
    cache: { ...config.cache, maxBytes, maxObjectBytes: Math.min(config.cache.maxObjectBytes, maxBytes) },
    retries: { ...config.retries, budgetMinRetries: Math.ceil(config.retries.budgetMinRetries / count) },
  };
}

/** A worker that lived this long before dying is replaced at once, its slot's backoff forgotten. */
export const stableAfterMs = 10_000;
const firstBackoffMs = 250;
const maxBackoffMs = 30_000;

/**
 * How long to wait before replacing a worker, given how many of its slot's workers in a row
 * died young (this one included): the first at once, then 250 ms doubling up to 30 s.
 */
export function restartDelay(youngDeaths: number): number {
  if (youngDeaths <= 1) return 0;
  return Math.min(maxBackoffMs, firstBackoffMs * 2 ** (youngDeaths - 2));
}
