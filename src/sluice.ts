// Assembles a running Sluice from a validated config: backends and their health checks, the
// proxy listener, the admin port; reloads the config and follows DNS changes while running.
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'winston';
import { type AdminState, createAdminServer } from './admin/server.ts';
import { ProxyCache } from './cache/proxy-cache.ts';
import { ConfigError } from './config/load.ts';
import type { Config } from './config/types.ts';
import { formatAddress } from './config/values.ts';
import { HealthScheduler, type HealthTarget } from './health/scheduler.ts';
import type { Transition } from './health/state.ts';
import { localErrorCode } from './http/failure-kinds.ts';
import { type AccessLog, openAccessLog } from './observe/access-log.ts';
import { buildInfo } from './observe/build-info.ts';
import { addFaultReporter, reportFault } from './observe/faults.ts';
import { createLogger } from './observe/logger.ts';
import { Metrics } from './observe/metrics.ts';
import { registerOperatorMetrics } from './observe/operator-metrics.ts';
import { ReloadHistory } from './observe/reload-history.ts';
import { ThrottledReport } from './observe/throttled-report.ts';
import { Clock } from './proxy/clock.ts';
import { listenError, listenOn, ProxyServer } from './proxy/server.ts';
import type { Backend } from './upstream/backend.ts';
import type { BackendPool } from './upstream/pool.ts';
import { Topology, type TopologyChange, type TopologyOptions } from './upstream/topology.ts';

export interface RunningSluice {
  readonly config: Config;
  readonly logger: Logger;
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly proxy: ProxyServer;
  readonly health: HealthScheduler<BackendTarget>;
  /** This instance's metrics, served on the admin port's /metrics. */
  readonly metrics: Metrics;
  /** The shared response cache (used by routes with `cache: true`). */
  readonly cache: ProxyCache;
  readonly address: AddressInfo;
  readonly adminAddress: AddressInfo | undefined;
  /** Reload outcomes; `reload` records its own, a caller records a file that did not parse. */
  readonly reloads: ReloadHistory;
  /**
   * Applies a new config without dropping connections: routes, pools and backends change
   * (kept backends keep their state, new ones start slowly, removed ones drain). The listen and
   * admin addresses stay as they are until a restart.
   */
  reload(config: Config): Promise<void>;
  /**
   * Graceful stop: not ready but still serving for `delayMs` (timeouts.shutdownDelay unless
   * given), then in-flight requests finish within the rest of the shutdown timeout;
   * `idleGraceMs` gives idle keep-alive connections that long to send one last request (see
   * ProxyServer.shutdown).
   */
  stop(idleGraceMs?: number, delayMs?: number): Promise<void>;
  /** Opens the access log file again by its name (SIGUSR1, after logrotate moved it). */
  reopenLogs(): void;
}

/**
 * How a process of a cluster (src/cluster/) differs from a lone Sluice; every default is the lone
 * one's.
 */
export interface SluiceOptions {
  /** false: no proxy listener, only health checks, the admin port and reloads (a supervisor). */
  serve?: boolean;
  /** false: no active checks, the states come from elsewhere (a worker). */
  probe?: boolean;
  /** Listen with SO_REUSEPORT, beside other processes on the same port (a worker). */
  reusePort?: boolean;
  /** false: the caller says `sluice started` (a cluster, once its workers listen). */
  announce?: boolean;
  topology?: Pick<TopologyOptions, 'resolver' | 'createHealth'>;
  /** After each backend state change has been logged and counted. */
  onTransition?: (backend: Backend, transition: Transition) => void;
  /** After backends were added or removed (a reload, a DNS change). */
  onChange?: (change: TopologyChange, why: string) => void;
  /** Replaces parts of the admin port (a supervisor sums its workers' metrics, status, purges). */
  admin?: Partial<AdminState>;
  /** null: no access log whatever the config says (tests that silence the process's logs). */
  accessLog?: null;
  /** Other processes write to the same stdout (workers): each access line must be one atomic write. */
  sharedStdout?: boolean;
}

/** What the health scheduler probes: one backend of one pool. */
export interface BackendTarget extends HealthTarget {
  readonly backend: Backend;
}

/**
 * `accessLog: null` keeps the access log off whatever the config says (tests that silence
 * the process's logs); by default it is opened as the config says.
 */
export async function startSluice(
  initial: Config,
  logger = createLogger(initial.logLevel, false, initial.logFormat),
  options: SluiceOptions = {},
): Promise<RunningSluice> {
  let config = initial;
  const clock = new Clock();
  clock.start();
  const metrics = new Metrics();
  const reloads = new ReloadHistory();
  const removeFaultReporter = addFaultReporter(logger, metrics);
  const onTransition = (backend: Backend, transition: Transition) => {
    backend.metrics.state(transition.to);
    if (transition.to === 'ejected') backend.metrics.ejection('consecutive_failures');
    logger.info('backend state changed', {
      pool: backend.pool,
      backend: backend.name,
      from: transition.from,
      to: transition.to,
      reason: transition.reason,
      cause: transition.cause,
    });
    options.onTransition?.(backend, transition);
  };
  /** What a start that fails before it binds anything undoes. */
  const undoStart = () => {
    clock.stop();
    removeFaultReporter();
  };
  const topology = new Topology({ ...options.topology, clock, metrics, onTransition });
  // A name that does not resolve is the config's problem: one line naming its key.
  const { added } = await topology.apply(config).catch((error: Error) => {
    undoStart();
    throw new ConfigError([error.message]);
  });
  const health = new HealthScheduler<BackendTarget>(added.map(healthTarget), {
    onResult: (target, result) => {
      if (result.result === 'local_error') {
        metrics.localError(result.reason.slice(result.reason.lastIndexOf(' ') + 1));
        logger.warn('health check not made: local resource error', {
          backend: target.id,
          reason: result.reason,
        });
        return;
      }
      target.backend.metrics.healthCheck(result.result, result.durationMs / 1000);
      if (logger.isLevelEnabled('debug'))
        logger.debug('health check', { pool: target.backend.pool, backend: target.backend.name, ...result });
    },
    onError: (error, target) =>
      logger.error('health check failed to run', { backend: target.id, error: (error as Error).message }),
  });
  const cache = new ProxyCache({
    config: config.cache,
    refreshTimeout: config.timeouts.responseHeaders,
    metrics,
  });
  const proxy = new ProxyServer(config, topology.pools, logger, clock, metrics, cache);
  topology.connectionBudget.limit = proxy.connectionLimit;
  registerOperatorMetrics(metrics.registry, {
    build: buildInfo(),
    reloads,
    pools: () => topology.pools,
    cache: () => cache.store,
  });
  // A supervisor (serve: false) answers no requests: its workers keep the access log, and it
  // only makes sure they can open it.
  const logsOn = options.accessLog !== null && options.serve !== false;
  const logWriteFailures = new ThrottledReport(logger, 'access log lines lost: writing failed', 10_000);
  const onLogError = (error: NodeJS.ErrnoException, droppedBytes: number) => {
    metrics.localError('access_log_write');
    logWriteFailures.report(error, droppedBytes);
  };
  const accessLogFor = (next: Config): AccessLog | undefined => {
    if (!next.accessLog) return undefined;
    const log = openAccessLog(next.accessLog, onLogError, options.sharedStdout);
    if (logsOn) return log;
    log.writer.close();
    return undefined;
  };
  try {
    proxy.context.accessLog = accessLogFor(config);
  } catch (error) {
    undoStart();
    throw error;
  }
  // Gauges Sluice keeps anyway are read when Prometheus scrapes, not updated per request.
  metrics.onScrape(() => {
    let backendConnections = 0;
    for (const pool of topology.pools.values()) {
      metrics.poolPanic(pool.name, pool.panic);
      for (const backend of pool.backends) {
        backend.metrics.setInFlight(backend.inFlight);
        backendConnections += backend.connections.open;
      }
    }
    metrics.setOpenConnections('client', proxy.openConnections);
    metrics.setOpenConnections('backend', backendConnections);
    metrics.cacheBytes(cache.bytes);
  });
  /** Undoes a start that failed half way: nothing stays bound, nothing keeps the process. */
  const abandon = async (error: unknown): Promise<never> => {
    admin?.close();
    await proxy.shutdown(0);
    undoStart();
    proxy.context.accessLog?.writer.close();
    throw error;
  };
  let admin: Server | undefined;
  // A supervisor's workers serve; it reports the configured address.
  const address =
    options.serve === false
      ? configuredAddress(config)
      : await proxy
          .listen(config.listen.host, config.listen.port, options.reusePort)
          .catch((error: Error) => abandon(listenError('listen', config.listen, error)));
  let adminAddress: AddressInfo | undefined;
  if (config.admin) {
    admin = createAdminServer({
      pools: () => topology.pools,
      ready: () => !proxy.context.draining,
      now: () => clock.now,
      metrics,
      cache,
      ...options.admin,
      token: () => config.adminToken,
      onRefused: (reason) => {
        metrics.rejected(reason);
        logger.warn('admin request refused', { reason });
      },
      onShed: (reason) => metrics.rejected(reason),
      onError: (error) => {
        const code = localErrorCode(error);
        if (code === undefined) reportFault('admin', error);
        else metrics.localError(code);
      },
    });
    const at = config.admin;
    adminAddress = await listenOn(admin, at.host, at.port).catch((error: Error) =>
      abandon(listenError('admin', at, error)),
    );
  }
  // Probes start once everything is bound: a start that fails leaves no timer behind.
  if (options.probe !== false) health.start();

  const changed = (change: TopologyChange, why: string) => {
    for (const backend of change.removed) health.remove(targetId(backend));
    // A backend replaced under the same name passed its series on (see Topology.apply).
    for (const backend of change.gone) metrics.removeBackend(backend.pool, backend.name);
    for (const backend of change.added) health.add(healthTarget(backend));
    proxy.update(config, topology.pools);
    topology.connectionBudget.limit = proxy.connectionLimit;
    options.onChange?.(change, why);
    logger.info('backends changed', {
      why,
      added: change.added.map((backend) => `${backend.pool}/${backend.name}`),
      removed: change.removed.map((backend) => `${backend.pool}/${backend.name}`),
    });
  };
  /** DNS names resolved again every `ms` (dnsRefresh; a reload may change it). */
  const refreshEvery = (ms: number) =>
    setInterval(() => {
      topology.refresh().then(
        (change) => change && changed(change, 'dns'),
        (error: Error) =>
          logger.warn('dns refresh failed; keeping the backends as they are', { error: error.message }),
      );
    }, ms).unref();
  let dnsTimer = refreshEvery(config.dnsRefresh);

  if (options.announce !== false)
    logger.info('sluice started', {
      ...startedFields(address, adminAddress, topology.pools),
      maxConnections: proxy.connectionLimit,
    });
  return {
    get config() {
      return config;
    },
    logger,
    get pools() {
      return topology.pools;
    },
    proxy,
    health,
    metrics,
    cache,
    address,
    adminAddress,
    reloads,
    async reload(next) {
      // Whatever can fail comes first, the new access log included: a reload that fails changes
      // nothing (its pools applied and its routes not would send every request to a 503).
      const logChanges = JSON.stringify(next.accessLog) !== JSON.stringify(config.accessLog);
      let change: TopologyChange;
      let log: AccessLog | undefined;
      try {
        log = logChanges ? accessLogFor(next) : proxy.context.accessLog;
        change = await topology.apply(next).catch((error) => {
          if (logChanges) log?.writer.close();
          throw error;
        });
      } catch (error) {
        reloads.record(false);
        throw error;
      }
      reloads.record(true);
      if (logChanges) {
        proxy.context.accessLog?.writer.close();
        proxy.context.accessLog = log;
      }
      if (next.dnsRefresh !== config.dnsRefresh) {
        clearInterval(dnsTimer);
        dnsTimer = refreshEvery(next.dnsRefresh);
      }
      config = next;
      cache.configure(next.cache, next.timeouts.responseHeaders);
      changed(change, 'reload');
      if (next.logLevel !== logger.level) logger.level = next.logLevel;
    },
    reopenLogs() {
      proxy.context.accessLog?.writer.reopen();
    },
    async stop(idleGraceMs = 0, delayMs = config.timeouts.shutdownDelay) {
      if (delayMs > 0) {
        proxy.drain();
        logger.info('not ready; serving on for shutdownDelay before closing the listener', {
          shutdownDelay: delayMs,
          openConnections: proxy.openConnections,
        });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      logger.info('shutting down', { openConnections: proxy.openConnections });
      clearInterval(dnsTimer);
      await Promise.all([
        proxy.shutdown(Math.max(0, config.timeouts.shutdown - delayMs), idleGraceMs),
        health.stop(),
      ]);
      admin?.close();
      clock.stop();
      removeFaultReporter();
      proxy.context.accessLog?.writer.close();
      logger.info('stopped');
    },
  };
}

/** The fields of the `sluice started` line. */
export function startedFields(
  address: AddressInfo,
  adminAddress: AddressInfo | undefined,
  pools: ReadonlyMap<string, BackendPool>,
): Record<string, unknown> {
  return {
    listen: formatAddress({ host: address.address, port: address.port }),
    admin: adminAddress ? formatAddress({ host: adminAddress.address, port: adminAddress.port }) : null,
    pools: [...pools.values()].map((pool) => ({
      name: pool.name,
      backends: pool.backends.map((b) => b.address),
    })),
  };
}

function configuredAddress(config: Config): AddressInfo {
  const { host, port } = config.listen;
  return { address: host, port, family: host.includes(':') ? 'IPv6' : 'IPv4' };
}

function targetId(backend: Backend): string {
  return `${backend.pool}/${backend.name}`;
}

function healthTarget(backend: Backend): BackendTarget {
  const health = backend.healthConfig;
  return {
    id: targetId(backend),
    host: backend.host,
    port: backend.port,
    health,
    state: backend.health,
    hostHeader: health.host ?? backend.configuredAddress,
    backend,
  };
}
