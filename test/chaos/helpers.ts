// Shared parts of the chaos tests: nginx backends that can be killed and started again on the
// same host port, the Sluice config they run under, and ways to watch Sluice's view of them.
import http from 'node:http';
import net from 'node:net';
import type { TestFn } from 'ava';
import { GenericContainer, Wait } from 'testcontainers';
import type { BackendState, Transition } from '../../src/health/state.ts';
import type { RunningSluice } from '../../src/sluice.ts';
import type { Backend } from '../../src/upstream/backend.ts';
import { type LoadRecord, now, sleep } from '../support/load.ts';
import {
  backendHandle,
  defaultServerConf,
  dockerContainer,
  NGINX_IMAGE,
  type NginxBackend,
} from '../support/nginx.ts';
import { startProxy } from '../support/sluice.ts';

/** Short health checks keep the suite fast; every bound below is derived from these. */
export const HEALTH = { interval: 500, timeout: 300, rise: 2, fall: 2 } as const;
export const TIMEOUTS = { connect: 1_000, responseHeaders: 3_000 } as const;
/** Sluice's coarse clock ticks every 100 ms: deadlines fire up to one tick late. */
export const TICK_MS = 100;
/** Load used by every scenario. */
export const WORKERS = 8;
export const PAUSE_MS = 2;

export interface ChaosBackend extends NginxBackend {
  /** SIGKILL. The container stays (its logs can still be read) until `stop()`. */
  kill(): Promise<void>;
  /** `docker stop` with nginx's own stop signal (SIGQUIT: graceful), the container kept. */
  shutdown(graceSeconds?: number): Promise<void>;
  /** Starts the stopped container again on the same host port; resolves once `GET /` answers 200. */
  start(): Promise<void>;
}

export interface ChaosBackendOptions {
  /** The whole of default.conf for the backend of this name (default: the shared default server). */
  serverConf?: (name: string) => string;
  namePrefix?: string;
}

/**
 * Starts `count` nginx containers, each with its port 80 bound to a fixed host port (picked free),
 * so that a container stopped and started again comes back at the address Sluice knows.
 */
export async function startChaosBackends(
  count: number,
  options: ChaosBackendOptions = {},
): Promise<ChaosBackend[]> {
  const prefix = options.namePrefix ?? 'nginx';
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
  const settled = await Promise.allSettled(names.map((name) => startChaosBackend(name, options)));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(started.map((b) => b.stop()));
    throw failed.reason;
  }
  return started;
}

const reservedPorts = new Set<number>();

/** A port free on 0.0.0.0 and ::, outside the ephemeral range (32768-60999) that Docker and clients use. */
async function freeFixedPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (reservedPorts.has(port)) continue;
    if ((await canListen(port, '0.0.0.0')) && (await canListen(port, '::'))) {
      reservedPorts.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 20000-29999');
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    // A host without IPv6 cannot listen on `::`, and Docker will not bind there either.
    server.once('error', (error: NodeJS.ErrnoException) =>
      resolve(error.code !== 'EADDRINUSE' && error.code !== 'EACCES'),
    );
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function startChaosBackend(name: string, options: ChaosBackendOptions): Promise<ChaosBackend> {
  const conf = (options.serverConf ?? defaultServerConf)(name);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeFixedPort();
    try {
      const container = await new GenericContainer(NGINX_IMAGE)
        .withExposedPorts({ container: 80, host: port })
        .withLabels({ 'org.sluice.test': 'nginx-backend', 'org.sluice.backend': name })
        .withCopyContentToContainer([
          { content: conf, target: '/etc/nginx/conf.d/default.conf', mode: 0o644 },
        ])
        .withWaitStrategy(Wait.forHttp('/', 80).forStatusCodeMatching((status) => status < 500))
        .withStartupTimeout(30_000)
        .start();
      return chaosBackend(name, port, container);
    } catch (error) {
      // Most likely the port was taken between the check and the bind: try another.
      lastError = error;
    }
  }
  throw lastError;
}

function chaosBackend(
  name: string,
  port: number,
  container: Awaited<ReturnType<GenericContainer['start']>>,
): ChaosBackend {
  const docker = () => dockerContainer(container);
  return {
    ...backendHandle(name, '127.0.0.1', port, container),
    kill: async () => {
      await (await docker()).kill({ signal: 'SIGKILL' });
    },
    shutdown: async (graceSeconds = 5) => {
      await (await docker()).stop({ t: graceSeconds });
    },
    start: async () => {
      await (await docker()).start();
      await waitForHttp(port, 15_000);
    },
  };
}

/** Polls `GET /` on 127.0.0.1:port until it answers 200. */
async function waitForHttp(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 500 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    await sleep(25);
  }
  throw new Error(`127.0.0.1:${port} did not answer GET / within ${timeoutMs} ms`);
}

/** Stops (and removes) every backend, ignoring ones already gone. */
export async function stopChaosBackends(backends: readonly ChaosBackend[]): Promise<void> {
  await Promise.allSettled(backends.map((b) => b.stop()));
}

function serverList(backends: readonly NginxBackend[]): string {
  return backends.map((b) => `      - address: ${b.address}\n        name: ${b.name}`).join('\n');
}

const healthYaml = `    health:
      path: /
      interval: ${HEALTH.interval}ms
      timeout: ${HEALTH.timeout}ms
      rise: ${HEALTH.rise}
      fall: ${HEALTH.fall}`;

/**
 * Sluice on an ephemeral loopback port with pool `web` of `backends` (named as the containers, so
 * X-Backend equals Sluice's backend name) behind `*`, and optionally more pools, each behind the
 * host `<pool>.test`.
 */
export function chaosYaml(
  backends: readonly NginxBackend[],
  more: Record<string, readonly NginxBackend[]> = {},
) {
  const pool = (list: readonly NginxBackend[]) => `    servers:\n${serverList(list)}\n${healthYaml}`;
  const pools = Object.entries({ ...more, web: backends })
    .map(([name, list]) => `  ${name}:\n${pool(list)}`)
    .join('\n');
  const routes = Object.keys(more)
    .map((name) => `  - host: ${name}.test\n    pool: ${name}`)
    .join('\n');
  return `listen: 127.0.0.1:0
admin: false
accessLog: false
timeouts:
  connect: ${TIMEOUTS.connect}ms
  responseHeaders: ${TIMEOUTS.responseHeaders}ms
pools:
${pools}
routes:
${routes}
  - host: "*"
    pool: web
`;
}

/** Sluice's backend of that name in pool `web` (or `pool`). */
export function backendOf(sluice: RunningSluice, name: string, pool = 'web'): Backend {
  const backend = sluice.pools.get(pool)?.backends.find((b) => b.name === name);
  if (!backend) throw new Error(`no backend ${name} in pool ${pool}`);
  return backend;
}

export interface SeenTransition extends Transition {
  backend: string;
  /** `now()` when Sluice reported it (its own `at` may be a coarse clock reading). */
  seenAt: number;
}

/** Records every state change of every backend of every pool, as it is reported. */
export function watchTransitions(sluice: RunningSluice): SeenTransition[] {
  const seen: SeenTransition[] = [];
  for (const pool of sluice.pools.values()) {
    for (const backend of pool.backends) {
      const previous = backend.health.onTransition;
      backend.health.onTransition = (transition) => {
        seen.push({ ...transition, backend: backend.name, seenAt: now() });
        previous?.(transition);
      };
    }
  }
  return seen;
}

/** What most chaos test files run against: three nginx backends behind one Sluice. */
export interface ChaosStack {
  readonly backends: readonly ChaosBackend[];
  readonly sluice: RunningSluice;
  /** Every state change Sluice reported, as it was reported. */
  readonly transitions: readonly SeenTransition[];
}

/** Starts the stack before the file's tests and stops it after them; read it inside tests. */
export function useChaosStack(test: TestFn): ChaosStack {
  let backends: ChaosBackend[] = [];
  let sluice: RunningSluice | undefined;
  let transitions: SeenTransition[] = [];
  test.before(async () => {
    backends = await startChaosBackends(3);
    sluice = await startProxy(chaosYaml(backends));
    transitions = watchTransitions(sluice);
  });
  test.after.always(async () => {
    await sluice?.stop();
    await stopChaosBackends(backends);
  });
  return {
    get backends() {
      return backends;
    },
    get sluice() {
      if (!sluice) throw new Error('sluice did not start');
      return sluice;
    },
    get transitions() {
      return transitions;
    },
  };
}

/** Milliseconds, rounded for the logs. */
export const ms = (value: number): number => Math.round(value);

/** Polls `condition` every 5 ms; resolves with `now()` when it first holds, rejects after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  what = 'condition',
): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (condition()) return now();
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves with `now()` once the backend's visible state is one of `states`. */
export function waitForState(
  backend: Backend,
  states: readonly BackendState[],
  timeoutMs: number,
): Promise<number> {
  return waitUntil(
    // `state` is read as is: transitions to down, ejected and slow_start are applied eagerly, and
    // advancing the state machine with the test's own clock could bring lazy ones forward.
    () => states.includes(backend.health.state),
    timeoutMs,
    `${backend.name} to be ${states.join(' or ')}`,
  );
}

export { now, sleep };

/** One line per failed request (at most `limit`), times relative to `origin`, for t.log. */
export function describeFailures(records: readonly LoadRecord[], origin: number, limit = 10): string[] {
  return records
    .filter((r) => !r.ok && r.end !== 0)
    .slice(0, limit)
    .map(
      (r) =>
        `${r.method} ${r.path} started ${Math.round(r.start - origin)} ms, took ${Math.round(r.end - r.start)} ms: ` +
        `${r.failure} (status ${r.status ?? '-'}, X-Backend ${r.backend ?? '-'})`,
    );
}

/**
 * Whether a failed request is a response cut mid-body because its backend was killed while
 * sending it. nginx writes a static file's head and body in separate system calls (writev, then
 * sendfile), so a SIGKILL can fall between them: 5 of 50 kills under CPU contention when Sluice
 * passed such a head on at once. Sluice now holds the head of a body up to 16 KiB until the
 * body's first bytes and sends an idempotent request to another backend when the backend dies
 * there, so for the demo page this should no longer happen; a larger body, or one cut after its
 * first bytes, still can be cut (a proxy cannot take back a head). Nothing else is excused.
 */
export function cutByKill(
  r: LoadRecord,
  victims: readonly string[],
  killAt: number,
  killedAt: number,
): boolean {
  return (
    r.failure === 'truncated' &&
    r.backend !== undefined &&
    victims.includes(r.backend) &&
    r.start < killedAt &&
    r.end >= killAt
  );
}
