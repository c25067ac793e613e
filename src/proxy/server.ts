// The client-facing listener: accepts connections, tracks them, and shuts down gracefully.
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'winston';
import type { ProxyCache } from '../cache/proxy-cache.ts';
import { ConfigError } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { formatAddress } from '../config/values.ts';
import { ConnectionLimit } from '../http/connection-limit.ts';
import { localErrorCode, systemErrorText } from '../http/failure-kinds.ts';
import { viaValue } from '../http/response-heads.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { BackendPool } from '../upstream/pool.ts';
import { ClientConnection, type ConnectionEvents } from './client-connection.ts';
import type { Clock } from './clock.ts';
import type { ProxyContext } from './context.ts';
import { clientConnectionLimit, loweredLimitReport, openFileLimit } from './descriptors.ts';
import { TrustedPeers } from './forwarding.ts';
import { Router } from './router.ts';

/** The shortest accept queue (Node's and nginx's default). */
const minBacklog = 511;
/**
 * While draining, a keep-alive connection silent this long is closed (checked every
 * `drainSweepMs`). Well below the half second a VRRP pair takes to move the address away (its
 * prober needs two 503s 250 ms apart), so no idle connection is left open when it moves; and long
 * enough that a busy client gets its `Connection: close` answer instead of racing a close.
 */
export const drainIdleCloseMs = 200;
const drainSweepMs = 50;

export class ProxyServer {
  readonly context: ProxyContext;
  private readonly server: Server;
  /** The client connections, at most limits.maxConnections (lowered to fit descriptors). */
  private readonly clients: ConnectionLimit<ClientConnection>;
  private readonly connectionEvents: ConnectionEvents = {
    waiting: (connection) => this.clients.waiting(connection, this.clock.now),
    closed: (connection) => this.clients.closed(connection),
  };
  private readonly poolSweep: NodeJS.Timeout;
  private drainSweep: NodeJS.Timeout | undefined;
  private readonly clock: Clock;
  /** Accept sheds new connections until then (clock ms), after EMFILE/ENFILE. */
  private backoffUntil = 0;
  private backoffMs = 25;

  constructor(
    config: Config,
    pools: ReadonlyMap<string, BackendPool>,
    logger: Logger,
    clock: Clock,
    metrics?: Metrics,
    cache?: ProxyCache,
  ) {
    this.clock = clock;
    this.context = {
      config,
      router: new Router(config.routes),
      pools,
      clock,
      logger,
      accessLog: undefined,
      metrics,
      trustedPeers: new TrustedPeers(config.trustedProxies),
      cache,
      via: `${viaValue}-${randomBytes(4).toString('hex')}`,
      draining: false,
      cutting: false,
    };
    // Up to 16 newcomers over the limit are told 503 at once.
    this.clients = new ConnectionLimit(this.fittedLimit(config, pools), 16, (reason) =>
      metrics?.rejected(reason),
    );
    // allowHalfOpen: a client that shuts down its sending side still gets its answer.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    // Errors of listen() itself go to whoever called it (listenOn); these are accept()'s.
    this.server.on('error', (error) => {
      if (!this.server.listening) return;
      const code = localErrorCode(error);
      if (code !== undefined) this.outOfDescriptors(code);
      else logger.error('listener error', { error: error.message });
    });
    this.poolSweep = setInterval(() => {
      for (const pool of this.context.pools.values())
        for (const backend of pool.backends) backend.connections.sweep(clock.now);
    }, 1000);
    this.poolSweep.unref();
  }

  /** limits.maxConnections, lowered to fit the descriptors; logged when it is. */
  private fittedLimit(config: Config, pools: ReadonlyMap<string, BackendPool>): number {
    const configured = config.limits.maxConnections;
    const backends = backendCount(pools);
    const fileLimit = openFileLimit();
    const limit = clientConnectionLimit(configured, backends, fileLimit);
    const report = loweredLimitReport(configured, limit, backends, fileLimit);
    if (report) this.context.logger.log(report.level, report.message, report.meta);
    return limit;
  }

  /** The most client connections open at once (limits.maxConnections, lowered to fit descriptors). */
  get connectionLimit(): number {
    return this.clients.limit;
  }

  private accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.clock.now < this.backoffUntil) {
      // Descriptors ran out a moment ago: shed new connections until some are free again.
      this.context.metrics?.rejected('accept_backoff');
      socket.destroy();
      return;
    }
    // At the limit, the connection that has waited longest for a request is closed for this one,
    // as nginx reuses idle connections, however young it is, except one that began waiting in the
    // clock's current tick (at most 100 ms), and every one after it: Node accepts a whole burst
    // before it reads from any of them, so their requests may be waiting unread. A longer grace
    // would let a flood that opens the limit's worth of connections within it keep clients out.
    if (!this.clients.admit(socket, this.clock.now)) return;
    this.clients.added(new ClientConnection(socket, this.context, this.connectionEvents), this.clock.now);
  }

  /** accept() failed with EMFILE/ENFILE: back off, and free what can be freed. */
  private outOfDescriptors(code: string): void {
    const now = this.clock.now;
    this.context.metrics?.localError(code);
    if (now < this.backoffUntil) return;
    this.backoffMs = now - this.backoffUntil > 5000 ? 50 : Math.min(1000, this.backoffMs * 2);
    this.backoffUntil = now + this.backoffMs;
    this.context.logger.warn('out of file descriptors: accept backs off', {
      error: code,
      backoffMs: this.backoffMs,
      openConnections: this.clients.open.size,
      limit: this.clients.limit,
    });
    for (const pool of this.context.pools.values())
      for (const backend of pool.backends) backend.connections.closeIdle();
    for (let freed = 0; freed < 16 && this.clients.evictLongest(this.clock.now); freed++);
  }

  /** Takes a reloaded config: new connections and requests use it, running ones finish as they are. */
  update(config: Config, pools: ReadonlyMap<string, BackendPool>): void {
    this.clients.limit = this.fittedLimit(config, pools);
    const context = this.context;
    context.config = config;
    context.router = new Router(config.routes);
    context.pools = pools;
    context.trustedPeers = new TrustedPeers(config.trustedProxies);
  }

  get openConnections(): number {
    return this.clients.open.size;
  }

  /**
   * `reusePort`: other processes may listen on the same port, the kernel spreads connections.
   * The accept queue holds as many connections as may be open (as HAProxy's backlog follows
   * maxconn), and never fewer than Node's default of 511: a burst that comes while the event loop
   * is busy waits there, where past the queue the kernel would drop handshakes and make each
   * client retransmit (1 s). A queued connection takes no descriptor, so a limit lowered to fit
   * the descriptors does not shorten it.
   */
  listen(host: string, port: number, reusePort = false): Promise<AddressInfo> {
    return listenOn(this.server, host, port, reusePort, Math.max(this.clients.limit, minBacklog));
  }

  /**
   * Not ready any more (/readyz 503), still accepting: every response from now on closes its
   * connection, so clients come back through whatever moved traffic elsewhere. An idle kept-alive
   * connection is closed once it has been silent for `drainIdleCloseMs`: a client that is not
   * using it now will not miss it, and it must not outlive the drain (behind a VRRP pair, its next
   * request would reach the other balancer, which knows nothing of it and resets it). One in use
   * gets `Connection: close` on its next answer instead, which no client can race.
   */
  drain(): void {
    this.context.draining = true;
    if (this.drainSweep) return;
    this.closeSilentConnections();
    this.drainSweep = setInterval(() => this.closeSilentConnections(), drainSweepMs);
    this.drainSweep.unref();
  }

  private closeSilentConnections(): void {
    const now = this.clock.now;
    for (const connection of this.clients.open)
      if (connection.silentFor(now, drainIdleCloseMs)) connection.closeWhenIdle();
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
    while (this.clients.open.size > 0 && Date.now() < graceEnd)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const connection of this.clients.open) connection.closeWhenIdle();
    while (this.clients.open.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (const connection of this.clients.open) connection.closeWhenIdle();
    }
    this.context.cutting = true;
    for (const connection of this.clients.open) connection.socket.destroy();
    // Their close events record the exchanges the deadline cut (an access line, the counts):
    // wait for them, or the log and a worker's last metrics would close first (audit N).
    const cutBy = Date.now() + 1000;
    while (this.clients.open.size > 0 && Date.now() < cutBy)
      await new Promise((resolve) => setTimeout(resolve, 5));
    for (const pool of this.context.pools.values())
      for (const backend of pool.backends) backend.connections.closeIdle();
    clearInterval(this.poolSweep);
    clearInterval(this.drainSweep);
    await closed;
  }
}

/**
 * Listens and resolves with the bound address (port 0 picks a free one). `backlog`: how many
 * connections the kernel may hold until they are accepted (it caps that at net.core.somaxconn);
 * Node's default is 511.
 */
export function listenOn(
  server: Server,
  host: string,
  port: number,
  reusePort = false,
  backlog?: number,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const extra = { ...(backlog === undefined ? {} : { backlog }), ...(reusePort ? { reusePort } : {}) };
    server.listen({ host, port, ...extra }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Resolves once `at` could be bound by this process alone (then lets it go); else rejects with
 * listenError('listen', …). Port 0 is always free.
 */
export async function mustBeFree(at: { host: string; port: number }): Promise<void> {
  if (at.port === 0) return;
  const probe = createServer();
  await listenOn(probe, at.host, at.port).catch((error: Error) => {
    throw listenError('listen', at, error);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * Why `key` (listen, admin) could not be bound, as a config problem: `listen: cannot listen on
 * 127.0.0.1:8080: address already in use (EADDRINUSE)`.
 */
export function listenError(key: string, at: { host: string; port: number }, error: Error): ConfigError {
  return new ConfigError([`${key}: cannot listen on ${formatAddress(at)}: ${systemErrorText(error)}`]);
}

function backendCount(pools: ReadonlyMap<string, BackendPool>): number {
  let count = 0;
  for (const pool of pools.values()) count += pool.backends.length;
  return count;
}
