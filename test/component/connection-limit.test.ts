// At limits.maxConnections a new client is served at once: the connection that has waited longest
// for a request (one that never sent a byte, or a kept-alive one between requests) is closed to
// make room, as nginx reuses idle connections. One with a request in progress never is, and a
// flood of idle connections cannot keep other clients out.
import { connect, type Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil } from '../support/raw-http.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

const limit = 20;
/** More than the proxy clock's tick (100 ms): what began waiting before it may be closed. */
const tickPassed = () => new Promise((resolve) => setTimeout(resolve, 150));

let backend: NodeBackend;
let sluice: RunningSluice;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    request.resume();
    const delay = request.url === '/slow' ? 1500 : 0;
    setTimeout(() => response.end('ok'), delay);
  });
  sluice = await startProxy(
    quietYaml({ web: [backend.port] }, { extra: `limits: { maxConnections: ${limit} }` }),
  );
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

const port = () => sluice.address.port;
const request = (path: string, connection: string) =>
  `GET ${path} HTTP/1.1\r\nHost: limit.test\r\nConnection: ${connection}\r\n\r\n`;

/** An open socket, and whether the proxy has closed it yet. */
interface Watched {
  socket: Socket;
  closed: boolean;
}

/** Opens a socket (listed in `all`) and waits until the proxy holds it (`open` connections in all). */
async function watchedSocket(open: number, all: Watched[]): Promise<Watched> {
  const socket = await openSocket(port());
  const watched = { socket, closed: false };
  all.push(watched);
  socket.on('error', () => {});
  socket.on('close', () => {
    watched.closed = true;
  });
  socket.on('end', () => {
    watched.closed = true;
  });
  await until(
    'the proxy holds it',
    2000,
    async () => (sluice.proxy.openConnections === open ? true : undefined),
    5,
  );
  return watched;
}

/** Sends a keep-alive request on `watched` and resolves with the status line of its answer. */
async function keepAliveRequest(watched: Watched): Promise<string> {
  const answer = readUntil(watched.socket, (text) => text.endsWith('\r\n\r\nok'));
  watched.socket.write(request('/', 'keep-alive'));
  return (await answer).split('\r\n', 1)[0] ?? '';
}

const closedOnes = (sockets: readonly Watched[]) =>
  sockets.flatMap((watched, i) => (watched.closed ? [i] : []));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

async function closeAll(sockets: readonly Watched[]): Promise<void> {
  for (const watched of sockets) watched.socket.destroy();
  await until('all closed', 2000, async () => (sluice.proxy.openConnections === 0 ? true : undefined), 10);
}

test.serial(
  'at the limit each new client is served, and the connection that waited longest is closed for it',
  async (t) => {
    // A opens first, then 19 that never send a byte; A's answer comes after them, so A has waited
    // least of the twenty.
    const all: Watched[] = [];
    t.teardown(() => closeAll(all));
    const silent: Watched[] = [];
    const newcomers: Watched[] = [];
    const kept = await watchedSocket(1, all);
    for (let i = 0; i < limit - 1; i++) silent.push(await watchedSocket(i + 2, all));
    t.is(await keepAliveRequest(kept), 'HTTP/1.1 200 OK');
    await tickPassed();
    for (let i = 0; i < limit; i++) {
      const newcomer = await watchedSocket(limit, all);
      newcomers.push(newcomer);
      t.is(await keepAliveRequest(newcomer), 'HTTP/1.1 200 OK', `new client ${i + 1}`);
      const expected = range(0, Math.min(i + 1, limit - 1));
      await until(
        'the oldest silent ones close',
        2000,
        async () => (closedOnes(silent).length === expected.length ? true : undefined),
        5,
      );
      t.deepEqual(
        closedOnes(silent),
        expected,
        `after new client ${i + 1}, the ${i + 1} longest silent are closed`,
      );
      t.is(
        kept.closed,
        i === limit - 1,
        `the kept-alive one is closed only after every silent one (client ${i + 1})`,
      );
    }
    t.deepEqual(closedOnes(newcomers), [], 'no new client was closed for another');
    // Now the first new client has waited longest (once its wait is older than the clock's tick).
    await tickPassed();
    const last = await watchedSocket(limit, all);
    newcomers.push(last);
    t.is(await keepAliveRequest(last), 'HTTP/1.1 200 OK');
    await until(
      'the first new client closes',
      2000,
      async () => (newcomers[0]?.closed ? true : undefined),
      5,
    );
    t.deepEqual(closedOnes(newcomers), [0]);
  },
);

test.serial(
  'a connection with a request in progress is never closed to make room: the newcomer gets 503',
  async (t) => {
    const sockets: Watched[] = [];
    t.teardown(() => closeAll(sockets));
    // Ten have sent half a head, ten wait for a slow answer.
    for (let i = 0; i < limit / 2; i++) {
      const watched = await watchedSocket(i + 1, sockets);
      watched.socket.write('GET / HTTP/1.1\r\nHost: limit.test\r\n');
    }
    const slowAnswers: Promise<string>[] = [];
    for (let i = limit / 2; i < limit; i++) {
      const watched = await watchedSocket(i + 1, sockets);
      slowAnswers.push(readUntil(watched.socket, (text) => text.endsWith('\r\n\r\nok'), 5000));
      watched.socket.write(request('/slow', 'keep-alive'));
    }
    await tickPassed();
    const refused = await rawExchange(port(), request('/', 'close'));
    t.is(refused.text.split('\r\n', 1)[0], 'HTTP/1.1 503 Service Unavailable');
    t.regex(refused.text, /too many connections/);
    t.deepEqual(closedOnes(sockets), []);
    const answers = await Promise.all(slowAnswers);
    t.true(
      answers.every((text) => text.startsWith('HTTP/1.1 200 OK')),
      'the slow requests are answered',
    );
  },
);

test.serial(
  'a refused newcomer that keeps sending is closed 1 s after it came, not kept by its bytes',
  async (t) => {
    const sockets: Watched[] = [];
    t.teardown(() => closeAll(sockets));
    for (let i = 0; i < limit; i++) {
      const watched = await watchedSocket(i + 1, sockets);
      watched.socket.write('GET / HTTP/1.1\r\nHost: limit.test\r\n');
    }
    await tickPassed();
    // Half-open: it keeps its side after the 503's FIN, as a hostile client does.
    const refused = connect({ port: port(), host: '127.0.0.1', allowHalfOpen: true });
    const came = Date.now();
    const state = { closedAfter: 0, text: '' };
    refused.on('data', (chunk: Buffer) => {
      state.text += chunk.toString('latin1');
    });
    refused.on('error', () => {});
    refused.on('close', () => {
      state.closedAfter = Math.max(1, Date.now() - came);
    });
    // A byte every 100 ms: an idle timeout would never fire.
    const trickle = setInterval(() => refused.destroyed || refused.write('x'), 100);
    t.teardown(() => clearInterval(trickle));
    await until('the refused one closes', 4000, async () => (state.closedAfter > 0 ? true : undefined), 10);
    t.regex(state.text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    t.true(state.closedAfter >= 900 && state.closedAfter < 1600, `closed after ${state.closedAfter} ms`);
  },
);

test.serial(
  'a flood of silent connections, 100 a second for 2 s, does not keep other clients out',
  async (t) => {
    const flood: Socket[] = [];
    t.teardown(async () => {
      for (const socket of flood) socket.destroy();
      await until(
        'all closed',
        2000,
        async () => (sluice.proxy.openConnections === 0 ? true : undefined),
        10,
      );
    });
    let flooding = true;
    const flooder = (async () => {
      while (flooding) {
        const socket = await openSocket(port());
        socket.on('error', () => {});
        flood.push(socket);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const statuses: string[] = [];
    const end = Date.now() + 2000;
    await new Promise((resolve) => setTimeout(resolve, 300));
    while (Date.now() < end) {
      const reply = await rawExchange(port(), request('/', 'close'));
      statuses.push(reply.text.split('\r\n', 1)[0] ?? '');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    flooding = false;
    await flooder;
    t.true(flood.length > 150, `the flood opened ${flood.length} connections`);
    t.true(statuses.length > 20);
    t.deepEqual(
      statuses.filter((status) => status !== 'HTTP/1.1 200 OK'),
      [],
      `every one of ${statuses.length} requests during the flood is served`,
    );
  },
);
