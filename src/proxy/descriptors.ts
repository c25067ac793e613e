// How many client connections this process can take. Each client connection may hold a backend
// connection too, and health probes, idle pooled connections, the admin port, log files and DNS
// need descriptors of their own: so the client limit is kept well below the process's open-file
// limit, and running out of descriptors never starves probes (which would mark backends down) or
// the admin port.
import { readFileSync } from 'node:fs';

/** Descriptors kept back for everything but client connections and their backend connections. */
export const baseReserve = 64;

/** The soft open-file limit (RLIMIT_NOFILE), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Descriptors `connections` client connections need: one backend connection each, and the reserve. */
function descriptorsFor(connections: number, backends: number): number {
  return 2 * connections + baseReserve + 2 * backends;
}

/**
 * The effective client connection limit: `configured`, lowered so that every client connection
 * can have one backend connection besides, with `baseReserve` plus two per backend (its probe
 * and an idle pooled connection) kept back.
 */
export function clientConnectionLimit(
  configured: number,
  backends: number,
  fileLimit = openFileLimit(),
): number {
  if (fileLimit === undefined) return configured;
  return Math.max(1, Math.min(configured, Math.floor((fileLimit - descriptorsFor(0, backends)) / 2)));
}

/** Below this many client connections, a lowered limit is logged as an error, not a warning. */
export const tooFewConnections = 16;

/**
 * What to log when the limit was lowered by more than a tenth (nginx warns likewise:
 * "worker_connections exceed open file resource limit"); undefined otherwise. A config that check
 * passes must not serve one client at a time without a word, but the default 10000 lowered by
 * the reserve alone (9965 under 20000 descriptors) is no news: the start line has the number.
 */
export function loweredLimitReport(
  configured: number,
  effective: number,
  backends: number,
  fileLimit = openFileLimit(),
): { level: 'warn' | 'error'; message: string; meta: Record<string, number | string> } | undefined {
  if (effective >= 0.9 * configured || fileLimit === undefined) return undefined;
  const needed = descriptorsFor(configured, backends);
  return {
    level: effective < tooFewConnections ? 'error' : 'warn',
    message: 'limits.maxConnections lowered to fit the open-file limit',
    meta: {
      configured,
      effective,
      nofile: fileLimit,
      backends,
      fix: `raise the open-file limit to ${needed} (ulimit -n, LimitNOFILE= in a systemd unit, --ulimit nofile= for docker) or lower limits.maxConnections`,
    },
  };
}
