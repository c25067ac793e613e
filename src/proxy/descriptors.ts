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
  const reserve = baseReserve + 2 * backends;
  return Math.max(1, Math.min(configured, Math.floor((fileLimit - reserve) / 2)));
}
