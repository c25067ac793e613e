// The client-facing listener: accepts connections, tracks them, and shuts down gracefully.
import { type AddressInfo, createServer, type Server } from 'node:net';
import type { Logger } from 'winston';
import type { ProxyCache } from '../cache/proxy-cache.ts';
import type { Config } from '../config/types.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { ClientConnection } from './client-connection.ts';
import type { Clock } from './clock.ts';
import type { ProxyContext } from './context.ts';
import { TrustedPeers } from './forwarding.ts';
import { Router } from './router.ts';

export class ProxyServer {
  readonly context: ProxyContext;
  private readonly server: Server;
  private readonly connections = new Set<ClientConnection>();
  private readonly poolSweep: NodeJS.Timeout;

  constructor(
    config: Config,
    pools: ReadonlyMap<string, BackendPool>,
    logger: Logger,
    clock: Clock,
    metrics?: Metrics,
    cache?: ProxyCache,
  ) {
    this.context = {
      config,
      router: new Router(config.routes),
      pools,
      clock,
      logger,
      metrics,
      trustedPeers: new TrustedPeers(config.trustedProxies),
      cache,
      draining: false,
    };
    // allowHalfOpen: a client that shuts down its sending side still gets its answer.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      const connection = new ClientConnection(socket, this.context, (closed) =>
        this.connections.delete(closed),
      );
      this.connections.add(connection);
    });
    this.server.on('error', (error) => logger.error('listener error', { error: error.message }));
    this.poolSweep = setInterval(() => {
      for (const pool of this.context.pools.values())
        for (const backend of pool.backends) backend.connections.sweep(clock.now);
    }, 1000);
    this.poolSweep.unref();
  }

  /** Takes a reloaded config: new connections and requests use it, running ones finish as they are. */
  update(config: Config, pools: ReadonlyMap<string, BackendPool>): void {
    const context = this.context;
    context.config = config;
    context.router = new Router(config.routes);
    context.pools = pools;
    context.trustedPeers = new TrustedPeers(config.trustedProxies);
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** `reusePort`: other processes may listen on the same port, the kernel spreads connections. */
  listen(host: string, port: number, reusePort = false): Promise<AddressInfo> {
    return listenOn(this.server, host, port, reusePort);
  }

  /**
   * Stops accepting, lets in-flight exchanges finish, closes idle keep-alive connections, and
   * destroys whatever is left when `deadlineMs` has passed. With `idleGraceMs`, idle keep-alive
   * connections first get that long to send one more request (answered with `Connection: close`):
   * a busy client then never races a close on a connection it is about to reuse.
   */
  async shutdown(deadlineMs: number, idleGraceMs = 0): Promise<void> {
    this.context.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const deadline = Date.now() + deadlineMs;
    const graceEnd = Date.now() + Math.min(idleGraceMs, deadlineMs);
    while (this.connections.size > 0 && Date.now() < graceEnd)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const connection of this.connections) connection.closeWhenIdle();
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const connection of this.connections) connection.closeWhenIdle();
    }
    for (const connection of this.connections) connection.socket.destroy();
    for (const pool of this.context.pools.values())
      for (const backend of pool.backends) backend.connections.closeIdle();
    clearInterval(this.poolSweep);
    await closed;
  }
}

/** Listens and resolves with the bound address (port 0 picks a free one). */
export function listenOn(
  server: Server,
  host: string,
  port: number,
  reusePort = false,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ...(reusePort ? { reusePort } : {}) }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
