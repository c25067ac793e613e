// Fakes to drive one Exchange without sockets: a Downstream that records what the client would
// see, and backends whose connections are event emitters the test feeds and closes.
import { EventEmitter } from 'node:events';
import { ProxyCache } from '../../src/cache/proxy-cache.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { RequestHead } from '../../src/http/message.ts';
import { parseRequestHead } from '../../src/http/parser.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { type BackendMetrics, Metrics } from '../../src/observe/metrics.ts';
import { Clock } from '../../src/proxy/clock.ts';
import type { ProxyContext } from '../../src/proxy/context.ts';
import type { DeadlineName, Downstream } from '../../src/proxy/downstream.ts';
import { Exchange } from '../../src/proxy/exchange.ts';
import { TrustedPeers } from '../../src/proxy/forwarding.ts';
import { Router } from '../../src/proxy/router.ts';
import { UpstreamConnection } from '../../src/upstream/connection.ts';
import type { BackendPool } from '../../src/upstream/pool.ts';
import { RetryBudget } from '../../src/upstream/retry-budget.ts';

/** What the client would see. */
export class FakeClient implements Downstream {
  readonly address = '192.0.2.7';
  readonly port = 51000;
  readonly trusted = false;
  readonly localAuthority = '192.0.2.1:8080';
  readonly localPort = 8080;
  gone = false;
  needsDrain = false;
  queued = 0;
  readonly out: string[] = [];
  armed: DeadlineName | undefined;
  paused = false;
  tunnel = false;
  ended = false;
  destroyed = false;
  /** Closed with a reset (an answer delimited by the close, cut short). */
  wasReset = false;
  /** What each done() was called with. */
  readonly dones: boolean[] = [];

  /** What the latest done() was called with; undefined while the first exchange runs. */
  get kept(): boolean | undefined {
    return this.dones.at(-1);
  }

  get text(): string {
    return this.out.join('');
  }

  wantsKeepAlive(request: RequestHead): boolean {
    return request.versionMinor === 1;
  }

  write(data: Buffer | string): boolean {
    this.out.push(typeof data === 'string' ? data : data.toString('latin1'));
    return !this.needsDrain;
  }

  writeAll(head: string, body: readonly Buffer[]): void {
    this.out.push(head + body.map((part) => part.toString('latin1')).join(''));
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  arm(deadline: DeadlineName | undefined): void {
    this.armed = deadline;
  }

  startTunnel(): void {
    this.tunnel = true;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.destroyed = true;
    this.gone = true;
  }

  reset(): void {
    this.wasReset = true;
    this.destroy();
  }

  done(keepAlive: boolean): void {
    this.dones.push(keepAlive);
  }
}

class FakeSocket extends EventEmitter {
  readonly written: Buffer[] = [];
  paused = false;
  destroyed = false;
  ended = false;

  setNoDelay(): void {}

  write(data: Buffer | string, encoding?: BufferEncoding): boolean {
    this.written.push(typeof data === 'string' ? Buffer.from(data, encoding ?? 'utf8') : data);
    return true;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  isPaused(): boolean {
    return this.paused;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

/** One backend connection the test plays the backend on. */
export class FakeUpstream {
  readonly socket = new FakeSocket();
  readonly connection: UpstreamConnection;
  private readonly onConnect: ((connection: UpstreamConnection) => void) | undefined;

  constructor(onConnect?: (connection: UpstreamConnection) => void) {
    this.onConnect = onConnect;
    this.connection = new UpstreamConnection(this.socket as never, () => {});
  }

  /** What the proxy sent on this connection. */
  get received(): string {
    return Buffer.concat(this.socket.written).toString('latin1');
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  connect(): void {
    this.onConnect?.(this.connection);
  }

  reply(text: string): void {
    this.connection.received(Buffer.from(text, 'latin1'));
  }

  fail(code: string): void {
    this.socket.emit('error', Object.assign(new Error(code), { code }));
  }

  /** The backend closes the connection. */
  close(): void {
    this.socket.emit('end');
  }
}

/** Where the fake backends' series go (a registry no test reads: the exchange's metrics are not its concern). */
const unread = new Metrics({ defaultMetrics: false });

export class FakeBackend {
  readonly name: string;
  readonly pool = 'web';
  inFlight = 0;
  readonly metrics: BackendMetrics;
  /** Every passive health report, in order. */
  readonly outcomes: boolean[] = [];
  /** Connections opened, in order. */
  readonly opened: FakeUpstream[] = [];
  readonly idle: UpstreamConnection[] = [];
  readonly released: UpstreamConnection[] = [];
  readonly connections = {
    acquire: (): UpstreamConnection | undefined => this.idle.pop(),
    connect: (onConnect: (connection: UpstreamConnection) => void): UpstreamConnection => {
      const upstream = new FakeUpstream(onConnect);
      this.opened.push(upstream);
      return upstream.connection;
    },
    release: (connection: UpstreamConnection): void => {
      connection.user = undefined;
      this.released.push(connection);
    },
    sawUnasked: (): void => {
      this.unasked++;
    },
  };
  /** Times the backend was seen sending bytes nobody asked for. */
  unasked = 0;

  constructor(name: string) {
    this.name = name;
    this.metrics = unread.registerBackend(this.pool, name, `${name}:80`);
  }

  reportOutcome(ok: boolean): void {
    this.outcomes.push(ok);
  }

  /** The latest connection opened. */
  get upstream(): FakeUpstream {
    const last = this.opened.at(-1);
    if (last === undefined) throw new Error(`${this.name}: no connection opened`);
    return last;
  }

  /** A kept-alive connection that already carried a request. */
  addIdle(): FakeUpstream {
    const upstream = new FakeUpstream();
    upstream.connection.requests = 1;
    this.idle.push(upstream.connection);
    this.opened.push(upstream);
    return upstream;
  }
}

export interface Harness {
  client: FakeClient;
  backends: FakeBackend[];
  /** The backend at `index`. */
  backend(index: number): FakeBackend;
  context: ProxyContext;
  /** Starts an exchange for a raw request (head and any body bytes). */
  start(raw: string): Exchange;
}

export function harness(options: { backends?: number; yaml?: string; cache?: boolean } = {}): Harness {
  const config = parseConfig(
    `listen: 127.0.0.1:0
admin: false
accessLog: false
${options.yaml ?? ''}
pools:
  web:
    servers:
      - address: 127.0.0.1:1
routes:
  - host: "*"
    pool: web
    cache: ${options.cache === true}
`,
    'test',
  );
  const backends = Array.from({ length: options.backends ?? 2 }, (_, i) => new FakeBackend(`b${i + 1}`));
  const pool = {
    name: 'web',
    retryBudget: new RetryBudget({ ratio: 0.2, minRetries: 10, windowMs: 10_000 }),
    canEject: () => true,
    pick: (tried: ReadonlySet<unknown> | undefined) => backends.find((backend) => !tried?.has(backend)),
    canPick: (tried: ReadonlySet<unknown> | undefined) => backends.some((backend) => !tried?.has(backend)),
  };
  const context: ProxyContext = {
    config,
    router: new Router(config.routes),
    pools: new Map([['web', pool as unknown as BackendPool]]),
    clock: new Clock(),
    logger: createLogger('error', true),
    accessLog: undefined,
    metrics: undefined,
    trustedPeers: new TrustedPeers([]),
    cache: options.cache ? new ProxyCache({ config: config.cache, refreshTimeout: 1000 }) : undefined,
    via: '1.1 sluice-00000000',
    draining: false,
    cutting: false,
  };
  const client = new FakeClient();
  return {
    client,
    backends,
    context,
    backend(index: number): FakeBackend {
      const backend = backends[index];
      if (backend === undefined) throw new Error(`no backend ${index}`);
      return backend;
    },
    start(raw: string): Exchange {
      const bytes = Buffer.from(raw, 'latin1');
      const parsed = parseRequestHead(bytes, config.limits);
      if (parsed === null) throw new Error('incomplete request head');
      const exchange = new Exchange(client, context, parsed.head);
      exchange.start(bytes.subarray(parsed.size));
      return exchange;
    },
  };
}

/** Resolves once `condition` holds; rejects after `ms`. */
export async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
