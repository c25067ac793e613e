// Sluice's own small HTTP server (the admin port) at its connection limit: the connection that has
// waited longest for a request makes room for a newcomer, one with a request in progress never
// does (the newcomer gets 503, or the handler's answer to a health probe on an exempt path), and a
// request that trickles in gets 408 instead of holding a connection.
import type { AddressInfo, Server, Socket } from 'node:net';
import test from 'ava';
import { createEndpointServer, type EndpointHandler, type EndpointOptions } from '../../src/http/endpoint.ts';
import { openSocket, rawExchange, readUntil, tricklingRequests, untilClosed } from '../support/raw-http.ts';
import { until } from '../support/wait.ts';

const limit = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function endpoint(
  t: import('ava').ExecutionContext,
  options: EndpointOptions = {},
  handler: EndpointHandler = () => ({ status: 200, body: 'ok\n' }),
): Promise<{ port: number; shed: string[] }> {
  const shed: string[] = [];
  const server: Server = createEndpointServer(handler, {
    maxConnections: limit,
    onShed: (reason) => shed.push(reason),
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, shed };
}

/** Sockets a test opens, destroyed when it ends. */
function socketsOf(t: import('ava').ExecutionContext): Socket[] {
  const all: Socket[] = [];
  t.teardown(() => {
    for (const socket of all) socket.destroy();
  });
  return all;
}

/** A socket, and whether the server has closed it. */
interface Watched {
  socket: Socket;
  closed: boolean;
}

async function watched(port: number, all: Socket[]): Promise<Watched> {
  const socket = await openSocket(port);
  all.push(socket);
  const state = { socket, closed: false };
  socket.on('error', () => {});
  socket.on('end', () => {
    state.closed = true;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  return state;
}

const get = 'GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n';
const statusLine = (text: string) => text.split('\r\n', 1)[0];

/** A kept-alive request on `state`'s connection: the status line of its answer. */
async function keptRequest(state: Watched): Promise<string | undefined> {
  const answer = readUntil(state.socket, (text) => text.endsWith('ok\n'));
  state.socket.write('GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n');
  return statusLine(await answer);
}

/** A newcomer that keeps its connection after its answer (so it holds its place). */
async function keptNewcomer(port: number, all: Socket[]): Promise<string | undefined> {
  return keptRequest(await watched(port, all));
}

test('at the limit, the connection silent longest is closed for a newcomer, who is served', async (t) => {
  const { port, shed } = await endpoint(t);
  const all = socketsOf(t);
  const silent: Watched[] = [];
  for (let i = 0; i < limit; i++) {
    silent.push(await watched(port, all));
    await sleep(20);
  }
  // Older than the grace a new connection gets (its request may not have been read yet).
  await sleep(150);
  for (let i = 0; i < 2; i++) t.is(await keptNewcomer(port, all), 'HTTP/1.1 200 OK', `newcomer ${i + 1}`);
  await until(
    'two are closed',
    2000,
    async () => (silent.filter((s) => s.closed).length === 2 ? true : undefined),
    10,
  );
  t.deepEqual(
    silent.map((s) => s.closed),
    [true, true, false, false],
    'the two longest silent are the ones closed',
  );
  t.deepEqual(shed, ['idle_evicted', 'idle_evicted']);
});

test('a kept-alive connection that was just answered goes after those silent longer', async (t) => {
  const { port } = await endpoint(t);
  const all = socketsOf(t);
  const kept = await watched(port, all);
  const silent: Watched[] = [];
  for (let i = 0; i < limit - 1; i++) silent.push(await watched(port, all));
  t.is(await keptRequest(kept), 'HTTP/1.1 200 OK');
  await sleep(150);
  for (let i = 0; i < limit - 1; i++) t.is(await keptNewcomer(port, all), 'HTTP/1.1 200 OK');
  await until(
    'the silent ones close',
    2000,
    async () => (silent.every((s) => s.closed) ? true : undefined),
    10,
  );
  t.false(kept.closed, 'the kept-alive one is still open');
  t.is(await keptNewcomer(port, all), 'HTTP/1.1 200 OK');
  await until('the kept-alive one closes', 2000, async () => (kept.closed ? true : undefined), 10);
});

test('connections with a request in progress are never closed: the newcomer gets 503', async (t) => {
  const { port, shed } = await endpoint(t);
  const all = socketsOf(t);
  const halfway: Watched[] = [];
  for (let i = 0; i < limit; i++) {
    const state = await watched(port, all);
    state.socket.write('GET /healthz HTTP/1.1\r\nHost: ad');
    halfway.push(state);
  }
  await sleep(150);
  const refused = await rawExchange(port, get);
  t.is(statusLine(refused.text), 'HTTP/1.1 503 Service Unavailable');
  t.regex(refused.text, /too many connections/);
  t.deepEqual(
    halfway.map((s) => s.closed),
    [false, false, false, false],
  );
  t.deepEqual(shed, ['max_connections']);
  // Each finishes its request and is answered.
  const answers = halfway.map((s) => readUntil(s.socket, (text) => text.endsWith('ok\n')));
  for (const s of halfway) s.socket.write('min\r\n\r\n');
  t.deepEqual((await Promise.all(answers)).map(statusLine), Array(limit).fill('HTTP/1.1 200 OK'));
});

test('a request that trickles in gets 408 within the request timeout; a silent kept connection does not', async (t) => {
  const { port } = await endpoint(t, { requestTimeoutMs: 300 });
  const all = socketsOf(t);
  const trickle = await watched(port, all);
  const silent = await watched(port, all);
  const received = readUntil(trickle.socket, (text) => text.includes('\r\n\r\n'), 3000);
  const started = Date.now();
  const bytes = 'GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Slow: ';
  let sent = 0;
  const timer = setInterval(() => {
    if (!trickle.closed) trickle.socket.write(bytes[sent++ % bytes.length] ?? 'a');
  }, 50);
  t.teardown(() => clearInterval(timer));
  const text = await received;
  const tookMs = Date.now() - started;
  t.is(statusLine(text), 'HTTP/1.1 408 Request Timeout');
  t.true(tookMs >= 250 && tookMs < 1500, `408 after ${tookMs} ms`);
  await until('the trickle is closed', 2000, async () => (trickle.closed ? true : undefined), 10);
  // Silent the whole time, then a whole request: answered.
  t.is(await keptRequest(silent), 'HTTP/1.1 200 OK');
});

test('pipelined requests on a connection that does not read: answered only as it reads, never holding the loop', async (t) => {
  let answered = 0;
  const page = 'x'.repeat(20_000);
  const server: Server = createEndpointServer(async (request) => {
    if (request.path === '/metrics') answered++;
    return { status: 200, body: page };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const all = socketsOf(t);
  const greedy = await openSocket(port);
  all.push(greedy);
  greedy.pause();
  greedy.write('GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(3000));
  // The event loop stays free for others meanwhile: a second connection is answered at once.
  await sleep(50);
  const started = Date.now();
  const { text } = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const ms = Date.now() - started;
  t.true(text.startsWith('HTTP/1.1 200'), text.slice(0, 40));
  t.true(ms < 200, `another connection waited ${ms} ms`);
  await sleep(300);
  // 60 MB of answers in all: only what the socket buffers hold was made.
  t.log(`${answered} of 3000 answered while the client did not read`);
  t.true(answered < 600, `${answered} answered`);
  // Once it reads, every answer is made.
  greedy.resume();
  await until('every answer', 20_000, async () => (answered === 3000 ? true : undefined), 50);
  t.is(answered, 3000);
});

const exempt = (path: string) => path === '/healthz' || path === '/readyz';

/** Answers as the admin port's probes do: `/readyz` says what `state.ready` says. */
function probes(state: { ready: boolean }): EndpointHandler {
  return (request) => {
    if (request.path !== '/readyz') return { status: 200, body: 'ok\n' };
    return state.ready ? { status: 200, body: 'ready\n' } : { status: 503, body: 'shutting down\n' };
  };
}

/** The limit full of connections that each have a request in progress, ended with the test. */
async function fullOfTrickles(t: import('ava').ExecutionContext, port: number) {
  const full = await tricklingRequests(port, limit);
  t.teardown(() => {
    full.stop();
    for (const socket of full.sockets) socket.destroy();
  });
  await sleep(150);
  return full;
}

const tooMany =
  'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\nconnection: close\r\n\r\ntoo many connections\n';

test('over the limit, a GET or HEAD of an exempt path gets its real answer and is closed; anything else gets 503', async (t) => {
  const { port, shed } = await endpoint(t, { exempt }, probes({ ready: true }));
  const full = await fullOfTrickles(t, port);
  for (let i = 0; i < 10; i++) {
    const healthz = await untilClosed(port, 'GET /healthz?from=docker HTTP/1.1\r\nHost: a\r\n\r\n');
    t.is(
      healthz.text,
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n',
    );
    const readyz = await untilClosed(port, 'HEAD /readyz HTTP/1.1\r\nHost: a\r\n\r\n');
    t.is(
      readyz.text,
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 6\r\nconnection: close\r\n\r\n',
    );
  }
  t.deepEqual(shed, [], 'a probe answered over the limit is not shed');
  const others = [
    'GET /status HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /healthz/x HTTP/1.1\r\nHost: a\r\n\r\n',
    'POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n',
    'GET /readyz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi',
  ];
  for (const request of others) t.is((await untilClosed(port, request)).text, tooMany, request);
  t.deepEqual(shed, Array(others.length).fill('max_connections'));
  // None of the requests in progress was closed: each is answered once whole.
  const answers = full.sockets.map((socket) => readUntil(socket, (text) => text.endsWith('ok\n')));
  full.finish();
  t.deepEqual((await Promise.all(answers)).map(statusLine), Array(limit).fill('HTTP/1.1 200 OK'));
});

test('over the limit, /readyz says what the handler says: its own 503, not the limit’s', async (t) => {
  const state = { ready: false };
  const { port, shed } = await endpoint(t, { exempt }, probes(state));
  await fullOfTrickles(t, port);
  t.is(
    (await untilClosed(port, 'GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n')).text,
    'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 14\r\nconnection: close\r\n\r\nshutting down\n',
  );
  state.ready = true;
  t.regex(
    (await untilClosed(port, 'GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n')).text,
    /^HTTP\/1\.1 200 OK\r\n/,
  );
  t.deepEqual(shed, []);
});

test('a newcomer over the limit that is silent, sends half a head or trickles one is closed unanswered within a second', async (t) => {
  const { port, shed } = await endpoint(t, { exempt }, probes({ ready: true }));
  await fullOfTrickles(t, port);
  const trickle = (async () => {
    const socket = await openSocket(port);
    const started = performance.now();
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    const head = 'GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: abcdefghijklmnopqrstuvwxyz';
    let sent = 0;
    const timer = setInterval(() => socket.write(head[sent++ % head.length] ?? ''), 100);
    await new Promise((resolve) => socket.once('close', resolve));
    clearInterval(timer);
    return { text, ms: performance.now() - started };
  })();
  const results = await Promise.all([
    untilClosed(port, ''),
    untilClosed(port, 'GET /healthz HTTP/1.1\r\nHo'),
    trickle,
  ]);
  for (const [i, { text, ms }] of results.entries()) {
    t.is(text, '', `newcomer ${i}`);
    t.true(ms > 800 && ms < 1500, `newcomer ${i} closed after ${Math.round(ms)} ms`);
  }
  // Each is counted once the server has closed it.
  await until('three are shed', 1000, async () => (shed.length === 3 ? true : undefined), 10);
  t.deepEqual(shed, Array(3).fill('max_connections'));
});

test('a newcomer over the limit sending a huge head is closed at once, unanswered', async (t) => {
  const { port } = await endpoint(t, { exempt }, probes({ ready: true }));
  await fullOfTrickles(t, port);
  const huge = await untilClosed(
    port,
    `GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\n\r\n`,
  );
  t.is(huge.text, '');
  t.true(huge.ms < 300, `closed after ${Math.round(huge.ms)} ms`);
  // Its place is free again at once.
  t.regex(
    (await untilClosed(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')).text,
    /^HTTP\/1\.1 200 OK\r\n/,
  );
});

test('at most four newcomers over the limit at a time: a fifth, probe or not, is closed unanswered', async (t) => {
  const { port, shed } = await endpoint(t, { exempt }, probes({ ready: true }));
  await fullOfTrickles(t, port);
  const all = socketsOf(t);
  const silent: Watched[] = [];
  for (let i = 0; i < 4; i++) silent.push(await watched(port, all));
  await sleep(50);
  const fifth = await untilClosed(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n');
  t.is(fifth.text, '');
  t.true(fifth.ms < 300, `closed after ${Math.round(fifth.ms)} ms`);
  await until(
    'the four are closed',
    2000,
    async () => (silent.every((s) => s.closed) ? true : undefined),
    10,
  );
  t.regex(
    (await untilClosed(port, 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')).text,
    /^HTTP\/1\.1 200 OK\r\n/,
  );
  await until('five are shed', 1000, async () => (shed.length === 5 ? true : undefined), 10);
  t.deepEqual(shed, Array(5).fill('max_connections'));
});
