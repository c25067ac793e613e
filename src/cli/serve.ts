// `sluice serve` and `sluice check`: load and validate the config, run until a signal.

import { workerCount } from '../cluster/plan.ts';
import { formatPath } from '../config/issues.ts';
import {
  applyOverrides,
  ConfigError,
  FlagValueError,
  loadConfigFile,
  loadLocated,
  overridesFromEnv,
} from '../config/load.ts';
import { keepRestartKeys } from '../config/restart-keys.ts';
import type { Config } from '../config/types.ts';
import { configWarnings, logConfigWarnings } from '../config/warnings.ts';
import { unwritable } from '../observe/log-writer.ts';
import { type RunningSluice, startSluice } from '../sluice.ts';
import { unresolvedNames } from '../upstream/discovery.ts';
import { UsageError } from './usage-error.ts';

export interface Flags {
  listen: string | undefined;
  admin: string | undefined;
  logLevel: string | undefined;
  logFormat: string | undefined;
  workers?: string | undefined;
}

/** Environment variables override the file, flags override both. */
export function withOverrides(config: Config, flags: Flags): Config {
  try {
    return applyOverrides(config, flags, overridesFromEnv(process.env));
  } catch (error) {
    // A bad flag value is a mistake on the command line, as an unknown option is: exit 2.
    if (error instanceof FlagValueError) throw new UsageError(error.message, false);
    throw error;
  }
}

/**
 * `sluice check`: the file with the overrides `serve` would apply (SLUICE_* and flags), and with
 * `resolve` every DNS name of a server looked up. Problems go to stderr as
 * `file:line:col: path: message`; exit 1 if there is any. Warnings go to stderr as
 * `file:line:col: warning: path: message`, and the file is still ok.
 */
export async function checkCommand(path: string, flags: Flags, resolve: boolean): Promise<number> {
  try {
    const { config: fromFile, where } = loadLocated(path);
    const config = withOverrides(fromFile, flags);
    const log =
      config.accessLog && config.accessLog.to !== 'stdout' ? unwritable(config.accessLog.to) : undefined;
    if (log !== undefined) {
      console.error(`${where(['accessLog', 'to'])}accessLog.to: cannot open: ${log}`);
      return 1;
    }
    if (resolve) {
      const problems = await unresolvedNames(config);
      for (const problem of problems)
        console.error(`${where(problem.path)}${formatPath(problem.path)}: ${problem.message}`);
      if (problems.length > 0) return 1;
    }
    for (const warning of configWarnings(config))
      console.error(`${where(warning.path)}warning: ${warning.text}`);
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
  const config = withOverrides(loadConfigFile(path), flags);
  const workers = workerCount(config.workers);
  if (workers > 1) return serveCluster(config, workers, path, flags);
  const sluice = await startSluice(config);
  logConfigWarnings(config, sluice.logger);
  stopOnSignals(sluice);
  reloadOnHangup(sluice, path, flags, async (file) => {
    await sluice.reload(keepRestartKeys(sluice.config, file, sluice.logger));
    sluice.logger.info('config reloaded', { config: path });
  });
  reopenOnUsr1(sluice);
  return 0;
}

/** Several workers: the supervisor gets the signals; SIGUSR2 rolls the workers. */
async function serveCluster(config: Config, workers: number, path: string, flags: Flags): Promise<number> {
  const { startCluster } = await import('../cluster/serve.ts');
  const cluster = await startCluster(config, workers);
  const { logger } = cluster;
  logConfigWarnings(config, logger);
  stopOnSignals(cluster);
  reloadOnHangup(cluster, path, flags, (next) => cluster.reload(next));
  process.on('SIGUSR2', () => {
    logger.info('signal received', { signal: 'SIGUSR2' });
    logger.info('rolling restart', { message: cluster.restart().message });
  });
  reopenOnUsr1(cluster);
  return 0;
}

/** SIGUSR1: open the access log file again (nginx's signal for it), after logrotate moved it. */
export function reopenOnUsr1(sluice: Pick<RunningSluice, 'logger' | 'reopenLogs'>): void {
  process.on('SIGUSR1', () => {
    try {
      sluice.reopenLogs();
      sluice.logger.info('access log reopened', { signal: 'SIGUSR1' });
    } catch (error) {
      sluice.logger.error('access log not reopened; still writing to the old file', {
        error: (error as Error).message,
      });
    }
  });
}

/**
 * SIGHUP: read the file again and `apply` it; a bad file is logged and the running config kept,
 * and so is the running one when `apply` fails.
 */
function reloadOnHangup(
  target: Pick<RunningSluice, 'logger' | 'reloads'>,
  path: string,
  flags: Flags,
  apply: (next: Config) => Promise<void>,
): void {
  const { logger } = target;
  process.on('SIGHUP', () => {
    logger.info('signal received', { signal: 'SIGHUP', config: path });
    let next: Config;
    try {
      next = withOverrides(loadConfigFile(path), flags);
    } catch (error) {
      const issues = error instanceof ConfigError ? error.lines : [(error as Error).message];
      target.reloads.record(false);
      logger.error('config not reloaded: the file has errors; keeping the running config', { issues });
      return;
    }
    logConfigWarnings(next, logger);
    apply(next).catch((error: Error) => logger.error('config not reloaded', { error: error.message }));
  });
}

/** SIGTERM/SIGINT: drain and exit; a second signal exits at once. */
export function stopOnSignals(
  sluice: Pick<RunningSluice, 'logger' | 'stop'>,
  onStopped: () => Promise<void> = async () => {},
): void {
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
