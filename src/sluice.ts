// Assembles a running Sluice from a validated config: backends and their health checks, the
// proxy listener, the admin port.
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'winston';
import { createAdminServer } from './admin/server.ts';
import type { Config } from './config/types.ts';
import { HealthScheduler, type HealthTarget } from './health/scheduler.ts';
import type { Transition } from './health/state.ts';
import { createLogger } from './observe/logger.ts';
import { Clock } from './proxy/clock.ts';
import { listenOn, ProxyServer } from './proxy/server.ts';
import type { Backend } from './upstream/backend.ts';
import { resolveServers } from './upstream/discovery.ts';
import { BackendPool } from './upstream/pool.ts';

export interface RunningSluice {
  readonly config: Config;
  readonly logger: Logger;
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly proxy: ProxyServer;
  readonly health: HealthScheduler<BackendTarget>;
  readonly address: AddressInfo;
  readonly adminAddress: AddressInfo | undefined;
  /** Graceful stop: in-flight requests finish within the shutdown timeout. */
  stop(): Promise<void>;
}

/** What the health scheduler probes: one backend of one pool. */
export interface BackendTarget extends HealthTarget {
  readonly backend: Backend;
}

export async function startSluice(
  config: Config,
  logger = createLogger(config.logLevel),
): Promise<RunningSluice> {
  const clock = new Clock();
  clock.start();
  const onTransition = (backend: Backend, transition: Transition) =>
    logger.info('backend state changed', {
      pool: backend.pool,
      backend: backend.name,
      from: transition.from,
      to: transition.to,
      reason: transition.reason,
      cause: transition.cause,
    });
  const pools = new Map<string, BackendPool>();
  for (const poolConfig of config.pools) {
    const servers = await resolveServers(poolConfig.servers);
    pools.set(
      poolConfig.name,
      new BackendPool(poolConfig, servers, config.timeouts, { clock, onTransition }),
    );
  }
  const health = new HealthScheduler<BackendTarget>(healthTargets(pools), {
    onResult: (target, result) => {
      if (logger.isLevelEnabled('debug'))
        logger.debug('health check', { pool: target.backend.pool, backend: target.backend.name, ...result });
    },
    onError: (error, target) =>
      logger.error('health check failed to run', { backend: target.id, error: (error as Error).message }),
  });
  const proxy = new ProxyServer(config, pools, logger, clock);
  const address = await proxy.listen(config.listen.host, config.listen.port);
  health.start();
  let admin: Server | undefined;
  let adminAddress: AddressInfo | undefined;
  if (config.admin) {
    admin = createAdminServer({ pools, ready: () => !proxy.context.draining, now: () => clock.now });
    adminAddress = await listenOn(admin, config.admin.host, config.admin.port);
  }
  logger.info('sluice started', {
    listen: `${address.address}:${address.port}`,
    admin: adminAddress ? `${adminAddress.address}:${adminAddress.port}` : null,
    pools: [...pools.values()].map((pool) => ({
      name: pool.name,
      backends: pool.backends.map((b) => b.address),
    })),
  });
  return {
    config,
    logger,
    pools,
    proxy,
    health,
    address,
    adminAddress,
    async stop() {
      logger.info('shutting down', { openConnections: proxy.openConnections });
      await Promise.all([proxy.shutdown(config.timeouts.shutdown), health.stop()]);
      admin?.close();
      clock.stop();
      logger.info('stopped');
    },
  };
}

function healthTargets(pools: ReadonlyMap<string, BackendPool>): BackendTarget[] {
  return [...pools.values()].flatMap((pool) =>
    pool.backends.map((backend) => ({
      id: `${pool.name}/${backend.name}`,
      host: backend.host,
      port: backend.port,
      health: pool.config.health,
      state: backend.health,
      hostHeader: pool.config.health.host ?? backend.configuredAddress,
      backend,
    })),
  );
}
