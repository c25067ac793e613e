// A worker process of a cluster (forked by the supervisor): a whole proxy on the shared port
// (SO_REUSEPORT), without an admin port or active checks; its backends' states are the
// supervisor's. It answers the supervisor's questions (metrics, status, cache purges) and stops
// gracefully when told to, when its supervisor goes away, or on SIGTERM/SIGINT.
import v8 from 'node:v8';
import { ConfigError } from '../config/load.ts';
import { installProcessPolicy } from '../observe/faults.ts';
import { createLogger } from '../observe/logger.ts';
import { type RunningSluice, startSluice } from '../sluice.ts';
import {
  type FromWorker,
  pushIntervalMs,
  type Question,
  type Resolved,
  type ToWorker,
  type WorkerStatus,
} from './messages.ts';
import { adoptStates, replicaHealth } from './replica.ts';
import { SnapshotWriter } from './snapshot.ts';

// As in src/cli/main.ts: objects of every request born old otherwise (see there).
v8.setFlagsFromString('--no-allocation-site-pretenuring');
// A bug that escapes is reported, not fatal, as in the single process (observe/faults.ts).
installProcessPolicy();

let sluice: RunningSluice | undefined;
let resolved = new Map<string, string[]>();
let stopping: Promise<void> | undefined;

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

/** DNS is the supervisor's: every worker gets exactly the backends it got. */
async function resolver(hostname: string): Promise<string[]> {
  const addresses = resolved.get(hostname);
  if (!addresses) throw new Error(`${hostname}: not resolved by the supervisor`);
  return addresses;
}

function setResolved(table: Resolved): void {
  resolved = new Map(table);
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'start': {
      setResolved(message.resolved);
      const logger = createLogger(message.config.logLevel, false, message.config.logFormat);
      // Added to the logger's own (`type: "event"`, which tells events from access lines).
      logger.defaultMeta = { ...logger.defaultMeta, worker: message.index, pid: process.pid };
      sluice = await startSluice(message.config, logger, {
        probe: false,
        reusePort: true,
        sharedStdout: true,
        announce: false,
        topology: {
          resolver,
          createHealth: replicaHealth((backend, ok) =>
            send({ type: 'passive', pool: backend.pool, name: backend.name, identity: backend.identity, ok }),
          ),
        },
      });
      adoptStates(sluice.pools, message.states);
      // A POST here must not leave another worker serving the copy it replaced.
      sluice.cache.onInvalidate = (keys) => send({ type: 'invalidated', keys });
      send({ type: 'ready', port: sluice.address.port });
      pushMetrics(sluice);
      return;
    }
    case 'reload': {
      const running = sluice;
      if (!running) return;
      try {
        setResolved(message.resolved);
        await running.reload(message.config);
        adoptStates(running.pools, message.states);
        send({ type: 'answer', id: message.id, value: true });
      } catch (error) {
        send({ type: 'answer', id: message.id, error: (error as Error).message });
      }
      return;
    }
    case 'health':
      if (sluice) adoptStates(sluice.pools, message.states);
      return;
    case 'ask':
      if (!sluice) return;
      try {
        send({ type: 'answer', id: message.id, value: await answer(sluice, message.question) });
      } catch (error) {
        send({ type: 'answer', id: message.id, error: (error as Error).message });
      }
      return;
    case 'drain':
      sluice?.proxy.drain();
      return;
    case 'invalidate':
      sluice?.cache.forget(message.keys);
      return;
    case 'reopen':
      // The supervisor's SIGUSR1: open the access log file again (after logrotate moved it).
      try {
        sluice?.reopenLogs();
      } catch (error) {
        sluice?.logger.error('access log not reopened; still writing to the old file', {
          error: (error as Error).message,
        });
      }
      return;
    case 'stop':
      await stop();
  }
}

async function answer(running: RunningSluice, question: Question): Promise<unknown> {
  switch (question.what) {
    case 'status':
      return status(running);
    case 'purge':
      return question.url !== undefined
        ? running.cache.purgeUrl(question.url, question.pool)
        : running.cache.purgePrefix(question.prefix ?? '', question.pool);
  }
}

/** Sends this worker's metrics now and every `pushIntervalMs` until it stops. */
function pushMetrics(running: RunningSluice): void {
  const writer = new SnapshotWriter();
  // The push is also the supervisor's heartbeat: a failed one must not end the next.
  const push = async () => {
    try {
      const metrics = await running.metrics.json();
      // Once stopping, its `final` counts are the last word.
      if (stopping) return;
      send({ type: 'metrics', ...writer.write(metrics) });
    } catch (error) {
      running.logger.error('metrics not collected', { error: (error as Error).message });
    }
    if (!stopping) setTimeout(push, pushIntervalMs).unref();
  };
  void push();
}

async function status(running: RunningSluice): Promise<WorkerStatus> {
  const backends: WorkerStatus['backends'] = [];
  const panicPools: string[] = [];
  for (const pool of running.pools.values()) {
    if (pool.panic) panicPools.push(pool.name);
    for (const b of pool.backends)
      backends.push([pool.name, b.name, b.inFlight, b.connections.open, b.connections.idleCount]);
  }
  const counted = await running.metrics.registry.getSingleMetric('sluice_http_requests_total')?.get();
  const requests = counted?.values.reduce((sum, value) => sum + value.value, 0) ?? 0;
  return {
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime() * 1000) / 1000,
    connections: running.proxy.openConnections,
    requests,
    backends,
    panicPools,
  };
}

/** How long idle keep-alive connections get to send a last request when a worker stops. */
const idleGraceMs = 1_000;

/**
 * In-flight requests finish (within timeouts.shutdown), then the process exits. Keep-alive
 * clients get their next answer with `Connection: close` and reconnect to another worker.
 */
function stop(): Promise<void> {
  stopping ??= (async () => {
    const running = sluice;
    if (running) {
      // The supervisor has already spent timeouts.shutdownDelay, not ready, before stopping us.
      await running.stop(idleGraceMs, 0);
      // What this worker counted stays in the cluster's sums after it is gone.
      const metrics = await running.metrics.json();
      if (process.connected)
        await new Promise((resolve) => process.send?.({ type: 'final', metrics }, resolve));
    }
    process.exit(0);
  })();
  return stopping;
}

// One message at a time, in order: a state sent after `start` is applied after it.
let queue = Promise.resolve();
process.on('message', (message: ToWorker) => {
  queue = queue
    .then(() => handle(message))
    .catch((error: Error) => {
      // A config this machine cannot serve (a port taken …) is one line naming its key.
      console.error(error instanceof ConfigError ? error.message : error);
      process.exit(1);
    });
});
process.on('disconnect', () => void stop());
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// The supervisor reloads and restarts; a terminal's signals to the whole group are its business.
process.on('SIGHUP', () => {});
process.on('SIGUSR2', () => {});
send({ type: 'hello' });
