// Settings a config may hold but production rarely wants: periods so short that the work they
// repeat costs real CPU and loads others (audit E: `dnsRefresh: 1` — 1 ms — took 27% of a core;
// a 2 ms health interval 36%, and 40 state changes in 3 s). Warned about, not refused: a test
// rig may want them, and zero is refused already. `sluice check` prints them with where they are
// in the file; serve and a reload log them.
import { DEFAULTS } from './defaults.ts';
import { type ConfigIssue, formatPath } from './issues.ts';
import type { Config } from './types.ts';
import { formatDuration } from './values.ts';

/** Below this (ms), `dnsRefresh` is warned about: names resolved several times a second. */
export const DNS_REFRESH_FLOOR = 1000;
/** Below this (ms), a pool's `health.interval` is warned about: ten probes a second and more. */
export const HEALTH_INTERVAL_FLOOR = 100;

/** The warnings `config` deserves, as `key path: message` lines (empty for the defaults). */
export function configWarnings(config: Config): ConfigIssue[] {
  const warnings: ConfigIssue[] = [];
  const below = (path: PropertyKey[], ms: number, floor: number, cost: string, fallback: number) => {
    if (ms >= floor) return;
    warnings.push({
      path,
      text: `${formatPath(path)}: ${formatDuration(ms)} is below ${formatDuration(floor)}; ${cost} (default ${formatDuration(fallback)})`,
    });
  };
  below(
    ['dnsRefresh'],
    config.dnsRefresh,
    DNS_REFRESH_FLOOR,
    'resolving names that often costs CPU and loads the DNS server',
    DEFAULTS.dnsRefresh,
  );
  for (const pool of config.pools)
    below(
      ['pools', pool.name, 'health', 'interval'],
      pool.health.interval,
      HEALTH_INTERVAL_FLOOR,
      'probing that often costs CPU and loads the backends',
      DEFAULTS.health.interval,
    );
  return warnings;
}

/** Logs the config's warnings, if any, as one line (as a reload's restart-only keys are). */
export function logConfigWarnings(
  config: Config,
  logger: { warn(message: string, meta: { warnings: string[] }): unknown },
): void {
  const warnings = configWarnings(config).map((warning) => warning.text);
  if (warnings.length > 0) logger.warn('the config has warnings', { warnings });
}
