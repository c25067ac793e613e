// `sluice serve` and `sluice check`: load and validate the config, run until a signal.

import {
  applyOverrides,
  ConfigError,
  loadConfigFile,
  type Overrides,
  overridesFromEnv,
} from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { type RunningSluice, startSluice } from '../sluice.ts';

export interface Flags {
  listen: string | undefined;
  admin: string | undefined;
  logLevel: string | undefined;
}

/** Environment variables override the file, flags override both. */
export function withOverrides(config: Config, flags: Flags): Config {
  const fromEnv = applyOverrides(config, overridesFromEnv(process.env), 'env');
  const fromFlags: Overrides = {};
  if (flags.listen !== undefined) fromFlags.listen = flags.listen;
  if (flags.admin !== undefined) fromFlags.admin = flags.admin;
  if (flags.logLevel !== undefined) fromFlags.logLevel = flags.logLevel;
  return applyOverrides(fromEnv, fromFlags, 'flag');
}

export function checkCommand(path: string): number {
  const config = loadConfigFile(path);
  const backends = config.pools.reduce((sum, pool) => sum + pool.servers.length, 0);
  console.log(
    `${path}: ok (${config.pools.length} pools, ${backends} servers, ${config.routes.length} routes)`,
  );
  return 0;
}

export async function serveCommand(path: string, flags: Flags): Promise<number> {
  const sluice = await startSluice(withOverrides(loadConfigFile(path), flags));
  stopOnSignals(sluice);
  reloadOnHangup(sluice, path, flags);
  return 0;
}

/** SIGHUP: read the file again and apply it; a bad file is logged and the running config kept. */
function reloadOnHangup(sluice: RunningSluice, path: string, flags: Flags): void {
  process.on('SIGHUP', () => {
    sluice.logger.info('signal received', { signal: 'SIGHUP', config: path });
    let next: Config;
    try {
      next = withOverrides(loadConfigFile(path), flags);
    } catch (error) {
      const issues = error instanceof ConfigError ? error.issues : [(error as Error).message];
      sluice.logger.error('config not reloaded: the file has errors; keeping the running config', { issues });
      return;
    }
    sluice.reload(next).then(
      () => sluice.logger.info('config reloaded', { config: path }),
      (error: Error) => sluice.logger.error('config not reloaded', { error: error.message }),
    );
  });
}

/** SIGTERM/SIGINT: drain and exit; a second signal exits at once. */
export function stopOnSignals(sluice: RunningSluice, onStopped: () => Promise<void> = async () => {}): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    sluice.logger.info('signal received', { signal });
    sluice
      .stop()
      .then(onStopped)
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
