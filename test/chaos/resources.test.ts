// Sluice on a full machine (issue 10), as a real process under `prlimit --nofile=256`:
// thousands of idle connections, pipelined floods from clients that never read, and more
// concurrent requests than it has descriptors for. After each, Sluice serves normally again
// within a second, its admin port answers throughout, and no backend was marked down.
import type { Socket } from 'node:net';
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { httpRequest } from '../support/http.ts';
import { freePort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket } from '../support/raw-http.ts';

const page = Buffer.alloc(60 * 1024, 'p');
let backends: NodeBackend[] = [];
let sluice: ChildSluice;
let port: number;
let adminPort: number;

test.before(async () => {
  const handler = (
    request: import('node:http').IncomingMessage,
    response: import('node:http').ServerResponse,
  ) => {
    request.resume();
    const delay = request.url?.startsWith('/slow') ? 1000 : 0;
    setTimeout(() => response.end(request.url?.startsWith('/page') ? page : 'ok'), delay);
  };
  backends = [await startNodeBackend(handler), await startNodeBackend(handler)];
  port = await freePort();
  adminPort = await freePort();
  sluice = await startChildSluice(
    `listen: 127.0.0.1:${port}
admin: 127.0.0.1:${adminPort}
accessLog: false
logLevel: info
pools:
  web:
    health: { interval: 500ms, timeout: 450ms, rise: 2, fall: 2 }
    servers: [${backends.map((b) => `127.0.0.1:${b.port}`).join(', ')}]
`,
    '1',
    { nofile: 256 },
  );
});

test.after.always(async () => {
  await sluice?.stop();
  for (const backend of backends) await backend.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds until a fresh client gets a 200 (polling every 50 ms), or Infinity after 5 s. */
async function timeToServe(path = '/'): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 5000) {
    try {
      const reply = await httpRequest({ port, path, headers: { connection: 'close' } });
      if (reply.status === 200) return Date.now() - started;
    } catch {}
    await sleep(50);
  }
  return Number.POSITIVE_INFINITY;
}

async function admin(path: string): Promise<string> {
  const reply = await httpRequest({ port: adminPort, path, host: '127.0.0.1' });
  return reply.body.toString();
}

async function noBackendMarked(t: import('ava').ExecutionContext): Promise<void> {
  const metrics = await admin('/metrics');
  t.notRegex(metrics, /sluice_backend_state_transitions_total\{[^}]*to="(down|ejected)"\} [1-9]/);
  t.notRegex(metrics, /sluice_backend_errors_total\{[^}]*\} [1-9]/);
  // What EMFILE looked like before (connect failed: refused); a probe timing out on a machine
  // busy with the flood is not about descriptors, and fall 2 keeps one from marking anything.
  t.notRegex(metrics, /sluice_health_checks_total\{[^}]*result="(refused|reset)"\} [1-9]/);
  const up = [...metrics.matchAll(/sluice_backend_up\{[^}]*\} (\d)/g)].map((m) => m[1]);
  t.deepEqual(up, ['1', '1']);
}

async function openMany(count: number, to = port): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(100, count - i) }, () => openSocket(to)),
    );
    for (const result of batch) {
      if (result.status === 'fulfilled') {
        result.value.on('error', () => {});
        sockets.push(result.value);
      }
    }
  }
  return sockets;
}

test.serial('the descriptor limit gives a client limit with a reserve', async (t) => {
  const started = /"maxConnections":(\d+)/.exec(sluice.output())?.[1];
  // (256 - 64 - 2 × 2 backends) / 2
  t.is(started, '94');
});

test.serial('2000 idle connections: new clients are still served within a second', async (t) => {
  const idle = await openMany(2000);
  t.true(idle.length > 1000);
  const whileOpen = await timeToServe();
  t.regex(await admin('/healthz'), /ok/);
  for (const socket of idle) socket.destroy();
  await sleep(300);
  const afterwards = await timeToServe();
  t.log(
    `${idle.length} opened; a new client served after ${whileOpen} ms, then ${afterwards} ms once they closed`,
  );
  t.true(whileOpen < 1000);
  t.true(afterwards < 1000);
  await noBackendMarked(t);
});

test.serial('1000 idle connections to the admin port take no descriptor the proxy needs', async (t) => {
  const before = sluice.descriptors();
  const idle = await openMany(1000, adminPort);
  t.true(idle.length > 500);
  await sleep(300);
  const grown = sluice.descriptors() - before;
  const served = await timeToServe();
  t.log(
    `${idle.length} opened to the admin port; Sluice holds ${grown} descriptors more; a proxy client served after ${served} ms`,
  );
  // 16 admin connections, up to 4 newcomers being told 503, and the two backends' probes,
  // which may be open at one reading and not the other (measured: 18 to 20; unbounded, 231).
  t.true(grown <= 24, `${grown} more descriptors`);
  t.true(served < 1000);
  t.regex(await admin('/healthz'), /ok/);
  const metrics = await admin('/metrics');
  t.regex(metrics, /sluice_requests_rejected_total\{reason="admin_(idle_evicted|max_connections)"\} \d{3}/);
  t.notRegex(metrics, /sluice_local_errors_total\{[^}]*\} [1-9]/);
  for (const socket of idle) socket.destroy();
  await noBackendMarked(t);
});

test.serial(
  'pipelined floods from clients that never read: others are served, memory stays bounded',
  async (t) => {
    const baseline = sluice.rss();
    const flooders = await Promise.all(Array.from({ length: 5 }, () => openSocket(port)));
    for (const socket of flooders) {
      socket.on('error', () => {});
      socket.pause();
      socket.write('GET /page HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(1200));
    }
    await sleep(1500);
    t.true((await timeToServe('/page')) < 1000);
    const grown = sluice.rss() - baseline;
    t.log(
      `RSS grew ${(grown / 2 ** 20).toFixed(1)} MB with 5 flooders holding 6000 requests (machine shared)`,
    );
    t.true(grown < 60 * 2 ** 20);
    for (const socket of flooders) socket.destroy();
    await sleep(300);
    t.true((await timeToServe()) < 1000);
    await noBackendMarked(t);
  },
);

test.serial(
  'more concurrent requests than descriptors: the excess gets 503, and service returns at once',
  async (t) => {
    const replies = await Promise.allSettled(
      Array.from({ length: 400 }, () =>
        httpRequest({ port, path: '/slow', headers: { connection: 'close' } }),
      ),
    );
    const statuses = replies.map((r) => (r.status === 'fulfilled' ? r.value.status : 0));
    const served = statuses.filter((s) => s === 200).length;
    t.log(
      `${served} of 400 served, ${statuses.filter((s) => s === 503).length} got 503, ${statuses.filter((s) => s === 0).length} were cut`,
    );
    t.true(served >= 50);
    t.true(statuses.filter((s) => s === 503).length > 0);
    t.true((await timeToServe()) < 1000);
    t.regex(await admin('/healthz'), /ok/);
    await noBackendMarked(t);
    t.true(sluice.process.exitCode === null);
  },
);
