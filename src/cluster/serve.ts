// Several workers: this process is the supervisor. It owns the health view (one probe per
// backend per interval, one state machine per backend fed by every worker's passive reports),
// the admin port and one /metrics; its workers own the traffic. The command line (src/cli/serve.ts)
// turns signals into `stop` (SIGTERM/SIGINT), `reload` (SIGHUP) and `restart` (SIGUSR2), and
// tells the workers of SIGUSR1 (reopen the access log).
import type { Logger } from 'winston';
import { keepRestartKeys } from '../config/restart-keys.ts';
import type { Config } from '../config/types.ts';
import { createLogger } from '../observe/logger.ts';
import type { ReloadHistory } from '../observe/reload-history.ts';
import { mustBeFree } from '../proxy/server.ts';
import { startedFields, startSluice } from '../sluice.ts';
import type { Backend } from '../upstream/backend.ts';
import { type Resolver, systemResolver } from '../upstream/discovery.ts';
import { clusterAdmin } from './admin.ts';
import { aggregateMetrics, ClusterMetrics, WorkerCounts } from './metrics.ts';
import { stateUpdates } from './replica.ts';
import { Supervisor } from './supervisor.ts';

export interface RunningCluster {
  readonly logger: Logger;
  /** The supervisor's record of reloads (sluice_config_reloads_total and the like). */
  readonly reloads: ReloadHistory;
  /** Every worker stops gracefully (within timeouts.shutdown), then the supervisor's parts. */
  stop(): Promise<void>;
  /**
   * Applies a config read and validated once: in the supervisor (names resolved there; if that
   * fails, nowhere), then in every worker. `listen`, `admin` and `workers` stay until a restart.
   */
  reload(next: Config): Promise<void>;
  /** A rolling restart, unless one is under way. */
  restart(): { started: boolean; message: string };
  /** Every worker opens its access log file again (they hold it; the supervisor logs no requests). */
  reopenLogs(): void;
}

/** Starts the supervisor and `count` workers; throws (after cleaning up) if they do not start. */
export async function startCluster(config: Config, count: number): Promise<RunningCluster> {
  // Workers listen with SO_REUSEPORT, which would let them join another process's port (a
  // second Sluice started by mistake) and share its traffic: the port must be free first.
  await mustBeFree(config.listen);
  const logger = createLogger(config.logLevel, false, config.logFormat);
  // What names resolved to here is what every worker uses: one set of backends in the tree.
  const resolved = new Map<string, string[]>();
  const resolver: Resolver = async (hostname) => {
    const addresses = await systemResolver(hostname);
    resolved.set(hostname, addresses);
    return addresses;
  };
  let supervisor: Supervisor | undefined;
  let stopping = false;
  const counts = new WorkerCounts();
  // State changes of one turn of the event loop go out together, milliseconds after they happen.
  const changed = new Set<Backend>();
  const flush = () => {
    const states = stateUpdates(changed);
    changed.clear();
    supervisor?.broadcastStates(states);
  };
  const sluice = await startSluice(config, logger, {
    serve: false,
    announce: false,
    topology: { resolver },
    onTransition: (backend) => {
      if (changed.size === 0) setImmediate(flush);
      changed.add(backend);
    },
    onChange: (change, why) => {
      for (const backend of change.gone) counts.forgetBackend(backend.pool, backend.name);
      if (why === 'dns') void supervisor?.reload(sluice.config);
    },
    admin: {
      // As one process, whose admin port opens only after its listener: not before a worker listens.
      ready: () => !stopping && (supervisor?.serving() ?? false),
      metrics: {
        // The workers' latest pushes (at most a second old), merged with this process's own.
        render: async () => {
          const own = await sluice.metrics.json();
          const slots = new Map(supervisor?.list().map((worker) => [worker.pid, worker.index]));
          const workers = [...counts.live()].map(([pid, value]) => ({ index: slots.get(pid), value }));
          return aggregateMetrics(own, workers, counts);
        },
      },
      ...clusterAdmin(() => supervisor),
    },
  });
  const everyBackend = () => [...sluice.pools.values()].flatMap((pool) => pool.backends);
  const clusterMetrics = new ClusterMetrics(
    sluice.metrics.registry,
    () => supervisor?.list().filter((worker) => worker.listening).length ?? 0,
  );
  supervisor = new Supervisor({
    config,
    count,
    logger,
    states: () => stateUpdates(everyBackend()),
    resolved: () => [...resolved],
    onPassive: ({ pool, name, identity, ok }) => {
      const backendPool = sluice.pools.get(pool);
      const backend = backendPool?.backends.find((b) => b.name === name);
      if (backendPool && backend?.identity === identity) backend.reportOutcome(ok, backendPool.canEject);
    },
    onRestart: (reason) => clusterMetrics.restarted(reason),
    onMetrics: (pid, snapshot) => counts.pushed(pid, snapshot),
    onFinal: (pid, metrics) => counts.seen(pid, metrics),
    onGone: (pid) => counts.gone(pid),
  });
  const running = supervisor;
  // However this process ends, no worker outlives it by more than its own graceful stop.
  process.on('exit', () => running.kill());
  let port: number;
  try {
    port = await running.start();
  } catch (error) {
    logger.error('workers did not start', { error: (error as Error).message });
    await running.stop(0);
    await sluice.stop(0, 0);
    throw error;
  }
  logger.info('sluice started', {
    ...startedFields({ ...sluice.address, port }, sluice.adminAddress, sluice.pools),
    workers: running.list().map((worker) => worker.pid),
  });
  let reloading: Promise<unknown> = Promise.resolve();
  return {
    logger,
    reloads: sluice.reloads,
    async stop() {
      stopping = true;
      // Not ready (/readyz 503) while the workers still serve, so that what watches readiness
      // (keepalived, an orchestrator) turns traffic away before their listeners close.
      const { shutdown, shutdownDelay } = sluice.config.timeouts;
      if (shutdownDelay > 0) {
        running.drain();
        logger.info('not ready; serving on for shutdownDelay before closing the listener', { shutdownDelay });
        await new Promise((resolve) => setTimeout(resolve, shutdownDelay));
      }
      await running.stop(shutdown - shutdownDelay);
      await sluice.stop(0, 0);
    },
    reload(file) {
      // One reload at a time, its workers told before the next begins: they apply in the order
      // the supervisor did, with the states of the topology each message carries.
      const run = reloading.then(() => reloadNow(file));
      reloading = run.catch(() => {});
      return run;
    },
    restart: () => running.restart(),
    reopenLogs: () => running.reopenLogs(),
  };

  async function reloadNow(file: Config): Promise<void> {
    const next = keepRestartKeys(config, file, logger);
    await sluice.reload(next);
    const problems = await running.reload(next);
    if (problems.length > 0) logger.error('config reloaded, but not in every worker', { problems });
    else logger.info('config reloaded', { workers: count });
  }
}
