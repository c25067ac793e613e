// The proxy in-process in front of node:http backends: framing, pipelining, 1xx, Upgrade,
// half-close and the answers Sluice makes itself.
import { createHash } from 'node:crypto';
import test from 'ava';
import { closedPort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil, statuses } from '../support/raw-http.ts';
import { poolYaml, startProxy } from '../support/sluice.ts';

let backend: NodeBackend;
let sluice: Awaited<ReturnType<typeof startProxy>>;
let port: number;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (url.pathname === '/echo') {
      const hash = createHash('sha256');
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      request.on('end', () => {
        response.setHeader('x-size', size);
        response.end(hash.digest('hex'));
      });
      return;
    }
    if (url.pathname === '/headers') {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ url: request.url, headers: request.rawHeaders }));
      return;
    }
    if (url.pathname === '/chunked') {
      response.write('hello ');
      setTimeout(() => response.end('world'), 20);
      return;
    }
    if (url.pathname === '/close-delimited') {
      // HTTP/1.0 answer without a length: the body ends when the backend closes.
      const socket = response.socket;
      socket?.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close');
      socket?.end();
      return;
    }
    if (url.pathname === '/die-mid-body') {
      response.writeHead(200, { 'content-length': '100' });
      response.write('only part');
      setTimeout(() => response.socket?.destroy(), 20);
      return;
    }
    if (url.pathname.startsWith('/head-alone/')) {
      // A head on its own, then (after a pause) the body, nothing, or the connection closing.
      // Written past node:http, so the connection is not kept: node would wait for a response end.
      const [, , length = '5', then = 'body'] = url.pathname.split('/');
      const socket = response.socket;
      socket?.write(`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
      setTimeout(() => {
        if (then === 'body') socket?.end('x'.repeat(Number(length)));
        if (then === 'close') socket?.destroy();
      }, 150);
      return;
    }
    if (url.pathname === '/slow') {
      setTimeout(() => response.end(`slow ${url.search}`), Number(url.searchParams.get('ms') ?? 200));
      return;
    }
    if (url.pathname === '/hang') return;
    response.setHeader('x-path', url.pathname);
    response.end(`path ${url.pathname}`);
  });
  backend.server.on('upgrade', (request, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
    void request;
  });
  sluice = await startProxy(
    poolYaml(
      [backend.port],
      'timeouts: { clientHeader: 400ms, responseHeaders: 600ms }\nlimits: { maxBody: 1MiB }\nupgrades: [websocket, echo]',
    ),
  );
  port = sluice.address.port;
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

test('pipelined requests are answered in order on one connection', async (t) => {
  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;
  const result = await rawExchange(port, request('/slow?ms=150') + request('/one') + request('/two'));
  const bodies = [...result.text.matchAll(/\r\n\r\n([^H]*)/g)].map((match) => match[1]);
  t.deepEqual(statuses(result.text), [200, 200, 200]);
  t.deepEqual(bodies, ['slow ?ms=150', 'path /one', 'path /two']);
  t.false(result.closed);
});

test('a POST body split across writes arrives intact (sha256 at the backend)', async (t) => {
  const body = Buffer.alloc(300_000, 7);
  const socket = await openSocket(port);
  socket.write(`POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`);
  socket.write(body.subarray(0, 1000));
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.write(body.subarray(1000));
  const text = await readUntil(socket, (received) => /\r\n\r\n[0-9a-f]{64}$/.test(received));
  socket.destroy();
  t.true(text.includes('x-size: 300000'));
  t.true(text.endsWith(createHash('sha256').update(body).digest('hex')));
});

test('a chunked request body is passed on and arrives intact', async (t) => {
  const result = await rawExchange(
    port,
    'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  );
  t.deepEqual(statuses(result.text), [200]);
  t.true(result.text.includes('x-size: 11'));
  t.true(result.text.endsWith(createHash('sha256').update('hello world').digest('hex')));
});

test('Expect: 100-continue gets the interim 100 before the body is sent', async (t) => {
  const socket = await openSocket(port);
  socket.write('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
  const interim = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
  t.true(interim.startsWith('HTTP/1.1 100 Continue\r\n'));
  socket.write('ping');
  const final = await readUntil(socket, (text) => /[0-9a-f]{64}$/.test(text));
  socket.destroy();
  t.true(final.startsWith('HTTP/1.1 200 OK'));
  t.true(final.endsWith(createHash('sha256').update('ping').digest('hex')));
});

test('a chunked response reaches an HTTP/1.1 client chunked', async (t) => {
  const result = await rawExchange(port, 'GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n');
  t.regex(result.text, /\r\nTransfer-Encoding: chunked\r\n/i);
  t.true(result.text.endsWith('6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n'));
  t.false(result.closed);
});

test('a chunked response reaches an HTTP/1.0 client unframed, then the connection closes', async (t) => {
  const result = await rawExchange(port, 'GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n');
  t.true(result.text.endsWith('\r\n\r\nhello world'));
  t.false(/transfer-encoding/i.test(result.text));
  t.true(result.closed);
});

test('a close-delimited response is chunked for an HTTP/1.1 client that stays connected', async (t) => {
  const result = await rawExchange(port, 'GET /close-delimited HTTP/1.1\r\nHost: a\r\n\r\n');
  t.true(result.text.startsWith('HTTP/1.1 200 OK\r\n'));
  t.true(result.text.endsWith('Transfer-Encoding: chunked\r\n\r\nb\r\nuntil close\r\n0\r\n\r\n'));
  t.false(result.closed);
});

test('HEAD gets the headers and no body', async (t) => {
  const result = await rawExchange(
    port,
    'HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  t.deepEqual(statuses(result.text), [200, 200]);
  t.false(result.text.includes('path /x'));
  t.true(result.text.endsWith('path /y'));
});

test('an Upgrade is tunnelled both ways after 101', async (t) => {
  const socket = await openSocket(port);
  socket.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  const head = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
  t.true(head.startsWith('HTTP/1.1 101 Switching Protocols\r\n'));
  t.regex(head, /\r\nUpgrade: echo\r\n/);
  socket.write('ping');
  t.is(await readUntil(socket, (text) => text === 'echo:ping'), 'echo:ping');
  socket.write('pong');
  t.is(await readUntil(socket, (text) => text === 'echo:pong'), 'echo:pong');
  socket.destroy();
});

test('a client that half-closes after its request still gets the whole answer', async (t) => {
  const result = await rawExchange(port, 'GET /slow?ms=100 HTTP/1.1\r\nHost: a\r\n\r\n', { halfClose: true });
  t.deepEqual(statuses(result.text), [200]);
  t.true(result.text.endsWith('slow ?ms=100'));
  t.true(result.closed);
});

test('forwarding fields reach the backend and client-sent ones are not trusted', async (t) => {
  const result = await rawExchange(
    port,
    'GET /headers HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: X-Hop\r\nX-Hop: secret\r\n\r\n',
  );
  const body = JSON.parse(result.text.slice(result.text.indexOf('\r\n\r\n') + 4)) as { headers: string[] };
  const seen = new Map<string, string>();
  for (let index = 0; index < body.headers.length; index += 2)
    seen.set(String(body.headers[index]).toLowerCase(), String(body.headers[index + 1]));
  t.is(seen.get('x-forwarded-for'), '127.0.0.1');
  t.is(seen.get('x-forwarded-host'), 'shop.test');
  t.regex(seen.get('via') ?? '', /^1\.1 sluice-[0-9a-f]{8}$/);
  t.is(seen.get('forwarded'), 'for=127.0.0.1;host=shop.test;proto=http');
  t.false(seen.has('x-hop'));
  t.regex(seen.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

const rejected: Array<[string, string, number]> = [
  ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
  [
    'Content-Length with Transfer-Encoding',
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
    400,
  ],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', 400],
  ['a request line over 8 KiB', `GET /${'a'.repeat(8200)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
  ['a head over 16 KiB', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(17000)}\r\n\r\n`, 431],
  ['a bad chunk size', 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
  [
    'a body over the configured limit',
    'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n',
    413,
  ],
];

for (const [title, request, status] of rejected) {
  test(`${title} gets ${status} and the connection closes`, async (t) => {
    const result = await rawExchange(port, request);
    t.deepEqual(statuses(result.text), [status]);
    t.regex(result.text, /\r\nconnection: close\r\n/i);
    t.true(result.closed);
  });
}

test('a slow client that never finishes its head gets 408', async (t) => {
  const started = Date.now();
  const result = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n', { idleMs: 2000 });
  t.deepEqual(statuses(result.text), [408]);
  t.true(result.closed);
  t.true(Date.now() - started < 1500);
});

test('a backend that never answers gives 504 within the response timeout', async (t) => {
  const socket = await openSocket(port);
  const started = Date.now();
  socket.write('GET /hang HTTP/1.1\r\nHost: a\r\n\r\n');
  const text = await readUntil(socket, (received) => received.endsWith('backend timed out\n'));
  socket.destroy();
  t.deepEqual(statuses(text), [504]);
  t.true(Date.now() - started < 1500);
});

test('a backend dying mid-body closes the client connection, never hangs it', async (t) => {
  const started = Date.now();
  const result = await rawExchange(port, 'GET /die-mid-body HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 3000 });
  t.true(result.text.startsWith('HTTP/1.1 200 OK'));
  t.true(result.text.endsWith('only part'));
  t.true(result.closed);
  t.true(Date.now() - started < 1000);
});

test('the head of a small body that comes alone is sent with its body, whole', async (t) => {
  const socket = await openSocket(port);
  socket.write('GET /head-alone/5/body HTTP/1.1\r\nHost: a\r\n\r\n');
  const text = await readUntil(socket, (received) => received.endsWith('xxxxx'));
  socket.destroy();
  t.deepEqual(statuses(text), [200]);
  t.regex(text, /\r\nContent-Length: 5\r\n/);
});

test('a backend that stalls after the head of a small body gives a clean 504, not a cut answer', async (t) => {
  const socket = await openSocket(port);
  const started = Date.now();
  socket.write('GET /head-alone/5/stall HTTP/1.1\r\nHost: a\r\n\r\n');
  const text = await readUntil(socket, (received) => received.endsWith('backend timed out\n'));
  // The connection stays usable: the next request on it is answered.
  socket.write('GET /next HTTP/1.1\r\nHost: a\r\n\r\n');
  const next = await readUntil(socket, (received) => received.endsWith('path /next'));
  socket.destroy();
  t.deepEqual(statuses(text), [504]);
  t.true(Date.now() - started < 1500);
  t.deepEqual(statuses(next), [200]);
});

test('a backend that closes after the head of a small body gives a clean 502', async (t) => {
  const result = await rawExchange(port, 'GET /head-alone/5/close HTTP/1.1\r\nHost: a\r\n\r\n');
  t.deepEqual(statuses(result.text), [502]);
  t.true(result.text.endsWith('backend failed\n'));
});

test('a backend dying between head and body: a GET goes to another backend, a POST is not sent again', async (t) => {
  const seen: string[] = [];
  const dying = await startNodeBackend((request, response) => {
    seen.push(request.method ?? '');
    response.socket?.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    setTimeout(() => response.socket?.destroy(), 20);
  });
  const both = await startProxy(poolYaml([dying.port, backend.port]));
  const alone = await startProxy(poolYaml([dying.port]));
  try {
    const gets = await rawExchange(both.address.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(4));
    t.deepEqual(statuses(gets.text), [200, 200, 200, 200]);
    t.is(gets.text.split('path /x').length - 1, 4);
    t.true(seen.length >= 2, `the dying backend saw ${seen.length} requests`);
    seen.length = 0;
    const post = await rawExchange(
      alone.address.port,
      'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi',
    );
    t.deepEqual(statuses(post.text), [502]);
    t.deepEqual(seen, ['POST']);
  } finally {
    await both.stop();
    await alone.stop();
    await dying.close();
  }
});

test('the head of a large body is not held back: the client has it before the body', async (t) => {
  const socket = await openSocket(port);
  socket.write('GET /head-alone/100000/body HTTP/1.1\r\nHost: a\r\n\r\n');
  // The backend sends the body 150 ms after the head; by then the client has the head alone.
  const head = await readUntil(socket, (received) => received.includes('\r\n\r\n'));
  t.is(head.slice(head.indexOf('\r\n\r\n') + 4), '');
  const whole = await readUntil(socket, (received) => received.length >= 100_000);
  socket.destroy();
  t.deepEqual(statuses(head + whole), [200]);
});

test('CONNECT gets 501 and the connection closes: what follows was meant for a tunnel, not read as requests', async (t) => {
  const result = await rawExchange(
    port,
    'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nGET /tunnelled HTTP/1.1\r\nHost: a\r\n\r\n',
  );
  t.deepEqual(statuses(result.text), [501]);
  t.true(result.text.endsWith('CONNECT is not supported\n'));
  t.regex(result.text, /\r\nConnection: close\r\n/i);
  t.true(result.closed);
});

test('a request no route matches gets 404 and the connection stays open', async (t) => {
  const other = await startProxy(poolYaml([backend.port]).replace('host: "*"', 'host: only.test'));
  try {
    const result = await rawExchange(other.address.port, 'GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n');
    t.deepEqual(statuses(result.text), [404]);
    t.false(result.closed);
  } finally {
    await other.stop();
  }
});

test('a request Sluice answers itself does not stall the pipelined request behind it', async (t) => {
  const other = await startProxy(poolYaml([backend.port]).replace('host: "*"', 'host: only.test'));
  try {
    const result = await rawExchange(
      other.address.port,
      'GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\nGET /after HTTP/1.1\r\nHost: only.test\r\n\r\n',
    );
    t.deepEqual(statuses(result.text), [404, 200]);
    t.true(result.text.endsWith('path /after'));
  } finally {
    await other.stop();
  }
});

test('connections refused everywhere give a quick 502', async (t) => {
  const other = await startProxy(poolYaml([await closedPort(), await closedPort()]));
  try {
    const started = Date.now();
    const result = await rawExchange(other.address.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    t.deepEqual(statuses(result.text), [502]);
    t.true(Date.now() - started < 1000);
  } finally {
    await other.stop();
  }
});

test('a refused backend is skipped: every request succeeds on the other', async (t) => {
  const other = await startProxy(poolYaml([await closedPort(), backend.port]));
  try {
    const request = 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(6);
    const result = await rawExchange(other.address.port, request);
    t.deepEqual(statuses(result.text), [200, 200, 200, 200, 200, 200]);
  } finally {
    await other.stop();
  }
});

test('a kept-alive connection the backend closed is retried on a fresh one', async (t) => {
  const flaky = await startNodeBackend((_request, response) => response.end('fresh'));
  // The backend drops idle connections at once, racing the proxy's reuse.
  flaky.server.keepAliveTimeout = 1;
  const other = await startProxy(poolYaml([flaky.port]));
  try {
    const codes: number[] = [];
    for (let index = 0; index < 20; index++) {
      const result = await rawExchange(
        other.address.port,
        'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      );
      codes.push(...statuses(result.text));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    t.deepEqual(codes, Array(20).fill(200));
  } finally {
    await other.stop();
    await flaky.close();
  }
});

test('shutdownDelay: /readyz turns 503 at once, new connections are still answered with Connection: close, then refused', async (t) => {
  const yaml = poolYaml([backend.port], 'timeouts: { shutdown: 5s, shutdownDelay: 500ms }').replace(
    'admin: false',
    'admin: 127.0.0.1:0',
  );
  const other = await startProxy(yaml);
  const port = other.address.port;
  const adminPort = other.adminAddress?.port ?? 0;
  const began = Date.now();
  const stopped = other.stop();
  const readyz = await rawExchange(adminPort, 'GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.deepEqual(statuses(readyz.text), [503]);
  // A keep-alive request: answered, and the connection closed after it.
  const during = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 2000 });
  t.deepEqual(statuses(during.text), [200]);
  t.regex(during.text, /\r\nConnection: close\r\n/);
  t.true(Date.now() - began < 400, 'answered within the delay');
  await stopped;
  t.true(Date.now() - began >= 500, 'the listener stayed open for shutdownDelay');
  await t.throwsAsync(rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), { code: 'ECONNREFUSED' });
});

test('shutdownDelay: an idle keep-alive connection is closed at once, one in use gets its answer with Connection: close', async (t) => {
  const other = await startProxy(
    poolYaml([backend.port], 'timeouts: { shutdown: 5s, shutdownDelay: 1500ms }'),
  );
  const port = other.address.port;
  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;
  const answered = (text: string) => /\r\n\r\n(path \/\S+|slow \?ms=\d+)$/.test(text);
  const closed = (socket: Awaited<ReturnType<typeof openSocket>>) =>
    new Promise<number>((resolve) => socket.once('end', () => resolve(Date.now())));
  // Idle: one answered request, then silence since before the drain.
  const idle = await openSocket(port);
  idle.write(request('/idle'));
  t.notRegex(await readUntil(idle, answered), /Connection: close/);
  const idleClosed = closed(idle);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // In flight when the drain begins.
  const inFlight = await openSocket(port);
  const slowAnswer = readUntil(inFlight, answered);
  const inFlightClosed = closed(inFlight);
  inFlight.write(request('/slow?ms=400'));
  // Busy: answered just before the drain, asks again just after it began.
  const busy = await openSocket(port);
  busy.write(request('/busy-1'));
  t.notRegex(await readUntil(busy, answered), /Connection: close/);
  const began = Date.now();
  const stopped = other.stop();
  try {
    await new Promise((resolve) => setTimeout(resolve, 20));
    busy.write(request('/busy-2'));
    const busyText = await readUntil(busy, answered);
    t.deepEqual(statuses(busyText), [200]);
    t.regex(busyText, /\r\nConnection: close\r\n/);
    t.true((await idleClosed) - began < 600, 'the idle connection closed long before the delay ended');
    const slowText = await slowAnswer;
    t.deepEqual(statuses(slowText), [200]);
    t.regex(slowText, /\r\nConnection: close\r\n/);
    t.true(slowText.endsWith('slow ?ms=400'));
    await inFlightClosed;
    t.true(Date.now() - began < 1500, 'all closed within shutdownDelay');
  } finally {
    await stopped;
    for (const socket of [idle, inFlight, busy]) socket.destroy();
  }
});

test('shutdown finishes the request in flight, then refuses new connections', async (t) => {
  const other = await startProxy(poolYaml([backend.port]));
  const otherPort = other.address.port;
  const inFlight = rawExchange(otherPort, 'GET /slow?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 2000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const stopped = other.stop();
  const result = await inFlight;
  await stopped;
  t.deepEqual(statuses(result.text), [200]);
  t.regex(result.text, /\r\nConnection: close\r\n/);
  t.true(result.text.endsWith('slow ?ms=300'));
  await t.throwsAsync(rawExchange(otherPort, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'), { code: 'ECONNREFUSED' });
});
