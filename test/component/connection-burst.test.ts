// A burst of new connections that comes while Sluice is busy waits in the kernel's accept queue
// and is answered as soon as Sluice can. The queue is as long as limits.maxConnections (the
// kernel caps it at net.core.somaxconn), and never shorter than Node's default of 511, however low
// the limit: past the queue, the kernel drops handshakes, and each client dropped waits a second
// or more for a retransmission.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { poolYaml } from '../support/sluice.ts';

const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
/** Twice Node's default backlog, where the kernel allows it. */
const burst = Math.min(1022, somaxconn);

let backend: NodeBackend;
let sluice: ChildSluice;

test.before(async () => {
  backend = await startNodeBackend((_request, response) => response.end('ok'));
  sluice = await startChildSluice(poolYaml([backend.port]));
});

test.after.always(async () => {
  sluice?.process.kill('SIGCONT');
  await sluice?.stop();
  await backend?.close();
});

/** Opens a connection, sends one request, resolves with the answer's status line ('' if none). */
function oneRequest(port: number, sockets: net.Socket[], onConnect: () => void): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(port, '127.0.0.1', () => {
      onConnect();
      socket.write('GET / HTTP/1.1\r\nHost: burst.test\r\nConnection: close\r\n\r\n');
    });
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(text.split('\r\n', 1)[0] ?? ''));
    socket.on('error', () => {});
  });
}

/**
 * Opens `count` connections to `stopped` while it is stopped (SIGSTOP), each sending a request:
 * how many completed their handshake within 700 ms, and every answer's status line once it runs
 * again. The kernel completes handshakes into the accept queue while Sluice sleeps; past the
 * queue it drops the SYN, and that client tries again only after a second.
 */
async function burstWhileStopped(
  stopped: ChildSluice,
  count: number,
  sockets: net.Socket[],
): Promise<{ connectedWhileStopped: number; statuses: string[] }> {
  stopped.process.kill('SIGSTOP');
  let connected = 0;
  const answers = Array.from({ length: count }, () => oneRequest(stopped.port, sockets, () => connected++));
  const start = performance.now();
  while (connected < count && performance.now() - start < 700) await new Promise((r) => setTimeout(r, 20));
  const connectedWhileStopped = connected;
  stopped.process.kill('SIGCONT');
  return { connectedWhileStopped, statuses: await Promise.all(answers) };
}

test.serial(
  `${burst} connections opened while Sluice is stopped are all queued by the kernel, then answered`,
  async (t) => {
    t.true(
      somaxconn > 600,
      `net.core.somaxconn is ${somaxconn}: a burst past Node's 511 cannot be queued here`,
    );
    const sockets: net.Socket[] = [];
    t.teardown(() => {
      for (const socket of sockets) socket.destroy();
    });
    const { connectedWhileStopped, statuses } = await burstWhileStopped(sluice, burst, sockets);
    t.is(connectedWhileStopped, burst, 'handshakes completed while Sluice was stopped');
    t.is(statuses.filter((status) => status === 'HTTP/1.1 200 OK').length, burst);
  },
);

test.serial(
  'with a connection limit of 50, 500 connections are still queued: the queue is never shorter than 511',
  async (t) => {
    const small = await startChildSluice(poolYaml([backend.port], 'limits: { maxConnections: 50 }'));
    const sockets: net.Socket[] = [];
    t.teardown(async () => {
      for (const socket of sockets) socket.destroy();
      small.process.kill('SIGCONT');
      await small.stop();
    });
    const { connectedWhileStopped, statuses } = await burstWhileStopped(small, 500, sockets);
    t.is(connectedWhileStopped, 500, 'handshakes completed while Sluice was stopped');
    // The first 50 hold the connections there are; some of the rest are told 503, the others closed.
    t.true(statuses.filter((status) => status === 'HTTP/1.1 200 OK').length >= 50);
    t.deepEqual(
      statuses.filter(
        (status) => !['HTTP/1.1 200 OK', 'HTTP/1.1 503 Service Unavailable', ''].includes(status),
      ),
      [],
    );
  },
);
