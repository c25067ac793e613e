// Kept-alive backend connections at high concurrency: Sluice keeps as many idle as it needed at
// once, so steady traffic opens no new connections (a fixed per-backend cap below the concurrency
// closed and reopened connections on every wave), and all pools together keep no more than the
// client connection limit, which the descriptor plan has room for.
import http, { type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { httpRequest } from '../support/http.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

interface CountingBackend extends NodeBackend {
  /**
   * Answers wait until this many requests are waiting, then all go at once, so a wave needs that
   * many connections at the same moment however slow the machine is (1: each answered at once).
   */
  gather: number;
  /** The connections that carried a GET. */
  requestConnections: Set<Socket>;
  openNow(): number;
}

async function countingBackend(gather: number): Promise<CountingBackend> {
  const requestConnections = new Set<Socket>();
  const open = new Set<Socket>();
  const waiting: ServerResponse[] = [];
  let giveUp: NodeJS.Timeout | undefined;
  const answerAll = () => {
    clearTimeout(giveUp);
    giveUp = undefined;
    for (const response of waiting.splice(0)) response.end('ok');
  };
  const started = await startNodeBackend((request, response) => {
    // Health probes (HEAD) are answered at once and not counted.
    if (request.method !== 'GET') {
      response.end();
      return;
    }
    requestConnections.add(request.socket);
    waiting.push(response);
    if (waiting.length >= backend.gather) answerAll();
    // Never a hang: a wave that cannot gather fails on its counts instead.
    else giveUp ??= setTimeout(answerAll, 3000);
  });
  started.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  const backend: CountingBackend = Object.assign(started, {
    gather,
    requestConnections,
    openNow: () => open.size,
  });
  return backend;
}

/** `clients` requests at once, each on a kept-alive client connection of its own; all must get 200. */
async function wave(port: number, path: string, clients: number, agent: http.Agent): Promise<void> {
  const replies = await Promise.all(
    Array.from({ length: clients }, () => httpRequest({ port, path, agent })),
  );
  for (const reply of replies) if (reply.status !== 200) throw new Error(`got ${reply.status}`);
}

let sluice: RunningSluice | undefined;
const backends: CountingBackend[] = [];
test.afterEach.always(async () => {
  await sluice?.stop();
  sluice = undefined;
  await Promise.all(backends.splice(0).map((backend) => backend.close()));
});

for (const [clients, pool] of [
  [150, 1],
  [300, 3],
] as const) {
  test.serial(
    `${clients} requests at once to ${pool} backend(s), five times over: every wave reuses the first one's connections`,
    async (t) => {
      const started = await Promise.all(Array.from({ length: pool }, () => countingBackend(clients / pool)));
      backends.push(...started);
      sluice = await startProxy(quietYaml({ web: started.map((backend) => backend.port) }));
      const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
      for (let round = 0; round < 5; round++) await wave(sluice.address.port, '/', clients, agent);
      agent.destroy();
      const opened = started.reduce((sum, backend) => sum + backend.requestConnections.size, 0);
      // Round robin gives each backend an equal share of every wave: the first wave opens them all.
      t.is(opened, clients);
      for (const backend of started) t.is(backend.requestConnections.size, clients / pool);
    },
  );
}

test.serial(
  'all pools together keep no more backend connections than the client connection limit',
  async (t) => {
    const [a, b] = await Promise.all([countingBackend(40), countingBackend(40)]);
    if (!a || !b) throw new Error('backends did not start');
    backends.push(a, b);
    sluice = await startProxy(
      quietYaml(
        { a: [a.port], b: [b.port] },
        {
          extra: 'limits: { maxConnections: 40 }',
          routes: '  - path: /a\n    pool: a\n  - path: /b\n    pool: b',
        },
      ),
    );
    t.is(sluice.proxy.connectionLimit, 40);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 40 });
    await wave(sluice.address.port, '/a', 40, agent);
    t.is(a.openNow(), 40, 'the 40 connections to a are kept');
    // 40 more to b, while a's 40 are idle: 80 open at once, then what is over the limit closes.
    await wave(sluice.address.port, '/b', 40, agent);
    const total = await until(
      'closes reach the backends',
      2000,
      async () => {
        const open = a.openNow() + b.openNow();
        return open <= 40 ? open : undefined;
      },
      20,
    );
    t.is(total, 40);
    await wave(sluice.address.port, '/a', 40, agent);
    t.is(a.requestConnections.size, 40, 'a reused its kept connections');
    agent.destroy();
  },
);

test.serial(
  'after a burst, steady traffic reuses the most recent connection and the rest close after upstreamIdle',
  async (t) => {
    const backend = await countingBackend(60);
    backends.push(backend);
    sluice = await startProxy(
      quietYaml({ web: [backend.port] }, { extra: 'timeouts: { upstreamIdle: 600ms }' }),
    );
    const burst = new http.Agent({ keepAlive: true, maxSockets: 60 });
    await wave(sluice.address.port, '/', 60, burst);
    burst.destroy();
    t.is(backend.openNow(), 60);
    backend.gather = 1;
    // One client, one request at a time, for two seconds: more than the idle timeout plus the sweep's second.
    const steady = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const before = new Set(backend.requestConnections);
    const used = new Set<Socket>();
    const seen = (request: http.IncomingMessage) => used.add(request.socket);
    backend.server.on('request', seen);
    for (const started = Date.now(); Date.now() - started < 2000; )
      await wave(sluice.address.port, '/', 1, steady);
    backend.server.off('request', seen);
    steady.destroy();
    t.is(used.size, 1, 'every steady request went over one connection');
    t.true(
      [...used].every((socket) => before.has(socket)),
      'a connection of the burst, not a new one',
    );
    // The sweep runs every second: by now one has run at least 600 ms after the burst.
    const open = await until(
      'the surplus closes',
      1500,
      async () => (backend.openNow() === 1 ? 1 : undefined),
      20,
    );
    t.is(open, 1, 'the 59 the steady traffic did not need were closed');
  },
);
