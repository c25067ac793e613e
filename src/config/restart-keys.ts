// Settings a running process cannot take on a reload: its listening sockets, its log format and
// its number of workers. A reload keeps them as they are, and says so.
import type { Config } from './types.ts';

const RESTART_KEYS = ['listen', 'admin', 'logFormat', 'workers'] as const;

/**
 * `file` with the restart-only settings of `running`; a warning naming those the file changed
 * (`these settings need a restart; kept as they are`, `keys: ["listen"]`).
 */
export function keepRestartKeys(
  running: Config,
  file: Config,
  logger: { warn(message: string, meta: { keys: string[] }): unknown },
): Config {
  const keys = RESTART_KEYS.filter((key) => JSON.stringify(file[key]) !== JSON.stringify(running[key]));
  if (keys.length > 0) logger.warn('these settings need a restart; kept as they are', { keys });
  const { listen, admin, logFormat, workers } = running;
  return { ...file, listen, admin, logFormat, workers };
}
