// The health probe against real sockets on 127.0.0.1: node:http and raw node:net servers that
// answer, refuse, stall, reset or talk nonsense. Every probe must leave no socket or timer behind.
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import test from 'ava';
import { type ProbeOptions, type ProbeResult, probe } from '../../src/health/probe.ts';
import { closedPort } from '../support/node-backend.ts';

const serverSockets = new Set<Socket>();
const servers: { close(callback: () => void): void }[] = [];
const ports: Record<string, number> = {};
let captured = '';
let baseline: string[] = [];

/** The resources that would keep a process alive: sockets and timers. */
function resources(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((name) => name === 'TCPSocketWrap' || name === 'Timeout' || name === 'TCPServerWrap')
    .sort();
}

function track(server: { on(event: 'connection', listener: (socket: Socket) => void): unknown }): void {
  server.on('connection', (socket) => {
    serverSockets.add(socket);
    socket.on('close', () => serverSockets.delete(socket));
  });
}

async function listen(name: string, server: Server | ReturnType<typeof createHttpServer>): Promise<void> {
  track(server);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ports[name] = (server.address() as AddressInfo).port;
}

/** A raw server that runs `onSocket` for every connection (and drains what it is sent, so it sees the FIN). */
function raw(onSocket: (socket: Socket) => void): Server {
  return createServer((socket) => {
    socket.on('error', () => {});
    socket.resume();
    onSocket(socket);
  });
}

const options: ProbeOptions = {
  path: '/',
  hostHeader: 'app.test',
  timeoutMs: 1000,
  expectStatus: [200, 399],
};

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** How many of each resource type are active. */
function tally(list: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = { TCPSocketWrap: 0, Timeout: 0, TCPServerWrap: 0 };
  for (const name of list) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

interface Asserts {
  deepEqual(a: unknown, b: unknown, message?: string): void;
  true(value: boolean, message?: string): void;
}

/** No resource type is more numerous than in `before` once the servers' side has closed. */
async function nothingAdded(t: Asserts, before: readonly string[]): Promise<void> {
  // The probe's own socket and timer are gone when it settles; the server side may need a moment.
  for (let i = 0; i < 100 && serverSockets.size > 0; i++) await settle();
  const was = tally(before);
  const now = tally(resources());
  t.true(
    Object.keys(now).every((name) => (now[name] ?? 0) <= (was[name] ?? 0)),
    `no socket or timer left: before ${JSON.stringify(was)}, after ${JSON.stringify(now)}`,
  );
}

/** Probes `port`, then checks that neither side left a socket or timer behind. */
async function check(t: Asserts, port: number, overrides: Partial<ProbeOptions> = {}): Promise<ProbeResult> {
  const before = resources();
  const result = await probe({ host: '127.0.0.1', port }, { ...options, ...overrides });
  await nothingAdded(t, before);
  return result;
}

test.before(async () => {
  baseline = resources();
  await listen(
    'http',
    createHttpServer((request, response) => {
      const url = request.url ?? '/';
      if (url === '/down') response.statusCode = 503;
      else if (url === '/moved') response.writeHead(302, { location: '/' });
      else if (url === '/hints') response.writeEarlyHints({ link: '</a.css>; rel=preload' });
      response.end();
    }),
  );
  await listen(
    'capture',
    raw((socket) => {
      socket.on('data', (chunk: Buffer) => {
        captured += chunk.toString('latin1');
        if (captured.includes('\r\n\r\n')) socket.end('HTTP/1.1 204 No Content\r\n\r\n');
      });
    }),
  );
  await listen(
    'silent',
    raw(() => {}),
  );
  await listen(
    'reset',
    raw((socket) => socket.resetAndDestroy()),
  );
  await listen(
    'garbage',
    raw((socket) => socket.end('garbage\r\n\r\n')),
  );
  await listen(
    'hangup',
    raw((socket) => socket.end()),
  );
  await listen(
    'cut',
    raw((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-')),
  );
  await listen(
    'huge',
    raw((socket) => socket.end(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)),
  );
});

test.serial('200 is a success, and the request is the raw HEAD', async (t) => {
  const result = await check(t, ports.http as number);
  t.like(result, { result: 'success', status: 200, reason: 'HEAD / answered 200' });
  t.true(result.durationMs > 0 && result.durationMs < 1000);

  captured = '';
  const captureResult = await check(t, ports.capture as number, {
    path: '/healthz?x=1',
    hostHeader: '10.0.0.1:80',
  });
  t.like(captureResult, { result: 'success', status: 204 });
  t.is(
    captured,
    'HEAD /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.1:80\r\nUser-Agent: sluice-health/0.1\r\nConnection: close\r\n\r\n',
  );
});

test.serial('a 3xx passes the default 200-399 range; a narrower range fails it', async (t) => {
  t.like(await check(t, ports.http as number, { path: '/moved' }), { result: 'success', status: 302 });
  t.like(await check(t, ports.http as number, { path: '/moved', expectStatus: [200, 299] }), {
    result: 'bad_status',
    status: 302,
    reason: 'HEAD /moved answered 302',
  });
});

test.serial('503 is bad_status', async (t) => {
  t.like(await check(t, ports.http as number, { path: '/down' }), {
    result: 'bad_status',
    status: 503,
    reason: 'HEAD /down answered 503',
  });
});

test.serial('interim 1xx answers are skipped', async (t) => {
  t.like(await check(t, ports.http as number, { path: '/hints' }), { result: 'success', status: 200 });
});

test.serial('a port nothing listens on is refused', async (t) => {
  const result = await check(t, await closedPort());
  t.like(result, { result: 'refused', reason: 'connect refused' });
  t.is(result.status, undefined);
});

test.serial('a server that accepts and never answers times out within timeoutMs + 100 ms', async (t) => {
  const result = await check(t, ports.silent as number, { timeoutMs: 300 });
  t.like(result, { result: 'timeout', reason: 'no answer within 300 ms' });
  t.true(result.durationMs >= 299 && result.durationMs < 400, `${result.durationMs} ms`);
});

test.serial('an abort ends a probe at once', async (t) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const result = await check(t, ports.silent as number, { timeoutMs: 5000, signal: controller.signal });
  t.like(result, { result: 'timeout', reason: 'probe aborted' });
  t.true(result.durationMs < 1000);
  t.like(await probe({ host: '127.0.0.1', port: 1 }, { ...options, signal: controller.signal }), {
    result: 'timeout',
    reason: 'probe aborted',
  });
});

test.serial('a connection reset is reset', async (t) => {
  t.like(await check(t, ports.reset as number), { result: 'reset', reason: 'connection reset' });
});

test.serial('a close without any answer is reset', async (t) => {
  t.like(await check(t, ports.hangup as number), {
    result: 'reset',
    reason: 'connection closed without an answer',
  });
});

test.serial('garbage is bad_status', async (t) => {
  const result = await check(t, ports.garbage as number);
  t.like(result, { result: 'bad_status', reason: 'malformed answer: malformed status line' });
  t.is(result.status, undefined);
});

test.serial('an answer cut short is bad_status', async (t) => {
  t.like(await check(t, ports.cut as number), {
    result: 'bad_status',
    reason: 'connection closed mid-answer',
  });
});

test.serial('an oversized head is bad_status', async (t) => {
  t.like(await check(t, ports.huge as number), {
    result: 'bad_status',
    reason: 'malformed answer: response head too large',
  });
});

test.serial('a path or Host with control characters or spaces never reaches the wire', async (t) => {
  for (const overrides of [{ path: '/a b' }, { path: '' }, { hostHeader: 'x\r\nX-Evil: 1' }]) {
    t.like(await check(t, ports.silent as number, overrides), { result: 'bad_status', durationMs: 0 });
  }
});

test.serial('many probes in parallel leave nothing behind', async (t) => {
  const before = resources();
  const results = await Promise.all(
    [ports.http, ports.reset, ports.garbage, ports.hangup, ports.silent, ports.http].map((port) =>
      probe({ host: '127.0.0.1', port: port as number }, { ...options, timeoutMs: 200 }),
    ),
  );
  t.deepEqual(
    results.map((r) => r.result),
    ['success', 'reset', 'bad_status', 'reset', 'timeout', 'success'],
  );
  await nothingAdded(t, before);
});

test.serial('after closing the servers nothing is left but what was there before', async (t) => {
  for (const socket of serverSockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  // A closed server's handle is listed until libuv has finished closing it.
  for (let i = 0; i < 100 && resources().length > baseline.length; i++) await settle();
  t.deepEqual(resources(), baseline);
});
