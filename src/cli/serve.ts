// `sluice serve` and `sluice check`: load and validate the config, run until a signal.

import { formatPath } from '../config/issues.ts';
import {
  applyOverrides,
  ConfigError,
  loadConfigFile,
  loadLocated,
  type Overrides,
  overridesFromEnv,
} from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { type RunningSluice, startSluice } from '../sluice.ts';
import { unresolvedNames } from '../upstream/discovery.ts';

export interface Flags {
  listen: string | undefined;
  admin: string | undefined;
  logLevel: string | undefined;
  logFormat: string | undefined;
}

/** Environment variables override the file, flags override both. */
export function withOverrides(config: Config, flags: Flags): Config {
  const fromEnv = applyOverrides(config, overridesFromEnv(process.env), 'env');
  const fromFlags: Overrides = {};
  if (flags.listen !== undefined) fromFlags.listen = flags.listen;
  if (flags.admin !== undefined) fromFlags.admin = flags.admin;
  if (flags.logLevel !== undefined) fromFlags.logLevel = flags.logLevel;
  if (flags.logFormat !== undefined) fromFlags.logFormat = flags.logFormat;
  return applyOverrides(fromEnv, fromFlags, 'flag');
}

/**
 * `sluice check`: the file with the overrides `serve` would apply (SLUICE_* and flags), and with
 * `resolve` every DNS name of a server looked up. Problems go to stderr as
 * `file:line:col: path: message`; exit 1 if there is any.
 */
export async function checkCommand(path: string, flags: Flags, resolve: boolean): Promise<number> {
  try {
    const { config: fromFile, where } = loadLocated(path);
    const config = withOverrides(fromFile, flags);
    if (resolve) {
      const problems = await unresolvedNames(config);
      for (const problem of problems)
        console.error(`${where(problem.path)}${formatPath(problem.path)}: ${problem.message}`);
      if (problems.length > 0) return 1;
    }
    const backends = config.pools.reduce((sum, pool) => sum + pool.servers.length, 0);
    console.log(
      `${path}: ok (${config.pools.length} pools, ${backends} servers, ${config.routes.length} routes)`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
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
      const issues = error instanceof ConfigError ? error.lines : [(error as Error).message];
      sluice.reloads.record(false);
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
