// Assembles a running Sluice from a validated config: backends, the proxy listener, the admin port.
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from 'winston';
import { createAdminServer } from './admin/server.ts';
import type { Config } from './config/types.ts';
import { createLogger } from './observe/logger.ts';
import { listenOn, ProxyServer } from './proxy/server.ts';
import { resolveServers } from './upstream/discovery.ts';
import { BackendPool } from './upstream/pool.ts';

export interface RunningSluice {
  readonly config: Config;
  readonly logger: Logger;
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly proxy: ProxyServer;
  readonly address: AddressInfo;
  readonly adminAddress: AddressInfo | undefined;
  /** Graceful stop: in-flight requests finish within the shutdown timeout. */
  stop(): Promise<void>;
}

export async function startSluice(
  config: Config,
  logger = createLogger(config.logLevel),
): Promise<RunningSluice> {
  const pools = new Map<string, BackendPool>();
  for (const poolConfig of config.pools) {
    const servers = await resolveServers(poolConfig.servers);
    pools.set(poolConfig.name, new BackendPool(poolConfig, servers, config.timeouts));
  }
  const proxy = new ProxyServer(config, pools, logger);
  const address = await proxy.listen(config.listen.host, config.listen.port);
  let admin: Server | undefined;
  let adminAddress: AddressInfo | undefined;
  if (config.admin) {
    admin = createAdminServer({ pools, ready: () => !proxy.context.draining });
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
    address,
    adminAddress,
    async stop() {
      logger.info('shutting down', { openConnections: proxy.openConnections });
      await proxy.shutdown(config.timeouts.shutdown);
      admin?.close();
      logger.info('stopped');
    },
  };
}
