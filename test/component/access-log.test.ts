// The access log as shipped: the real command, lines buffered until SIGUSR1 (reopen, for
// logrotate) or SIGTERM (exit) writes them, each line exact but for times, ids and ports.
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import test from 'ava';
import { startChildSluice } from '../support/child-sluice.ts';
import { httpRequest } from '../support/http.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil } from '../support/raw-http.ts';

type Line = Record<string, unknown>;

function lines(path: string): Line[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

/** The fields that vary from run to run, checked for shape and then left out. */
function stable(t: import('ava').ExecutionContext, line: Line): Line {
  const { timestamp, requestId, clientPort, durationMs, upstreamMs, ...rest } = line;
  t.regex(String(timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.is(typeof requestId, 'string');
  t.true(Number.isInteger(clientPort) && (clientPort as number) > 0);
  if (durationMs !== undefined) t.true(typeof durationMs === 'number' && durationMs >= 0);
  if (upstreamMs !== undefined) t.true(typeof upstreamMs === 'number' && upstreamMs >= 0);
  return rest;
}

test('access and rejected lines to a file: held in the buffer, written on SIGUSR1 and SIGTERM, reopened after a rename', async (t) => {
  const backend = await startNodeBackend((_request, response) => {
    response.setHeader('content-length', '5');
    response.end('hello');
  });
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-access-'));
  const file = join(dir, 'access.log');
  // A flush interval of an hour: only the signals can have written the lines.
  const sluice = await startChildSluice(`listen: 127.0.0.1:${port}
admin: false
accessLog: { to: ${file}, flush: 1h }
pools:
  web:
    servers:
      - address: 127.0.0.1:${backend.port}
        name: b1
routes:
  - host: site.test
    pool: web
`);
  const stdout = sluice.process.stdout as Readable;
  try {
    const ok = await rawExchange(
      port,
      'GET /page?x=1 HTTP/1.1\r\nHost: site.test\r\nUser-Agent: test-agent/1.0\r\n' +
        'Referer: http://site.test/\r\nX-Request-Id: req-42\r\nConnection: close\r\n\r\n',
    );
    t.regex(ok.text, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nhello$/);
    const notFound = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n',
    );
    t.regex(notFound.text, /^HTTP\/1\.1 404 /);
    const bad = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: site.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    );
    t.regex(bad.text, /^HTTP\/1\.1 400 /);
    const unparsable = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: site.test\r\nBad Name: x\r\n\r\n');
    t.regex(unparsable.text, /^HTTP\/1\.1 400 /);
    t.deepEqual(lines(file), [], 'nothing written yet: one buffer, no write per line');

    renameSync(file, `${file}.1`);
    sluice.process.kill('SIGUSR1');
    await readUntil(stdout, (out) => out.includes('access log reopened'));
    const rotated = lines(`${file}.1`);
    t.is(rotated.length, 4);
    const [access, notFoundLine, badFraming, rejected] = rotated as [Line, Line, Line, Line];
    t.is(access.requestId, 'req-42');
    t.deepEqual(stable(t, access), {
      level: 'info',
      message: 'access',
      type: 'access',
      client: '127.0.0.1',
      method: 'GET',
      host: 'site.test',
      path: '/page?x=1',
      protocol: 'HTTP/1.1',
      status: 200,
      pool: 'web',
      backend: 'b1',
      backendAddress: `127.0.0.1:${backend.port}`,
      backendStatus: 200,
      attempts: 1,
      bytesIn: 0,
      bytesOut: ok.bytes.length,
      userAgent: 'test-agent/1.0',
      referer: 'http://site.test/',
    });
    t.deepEqual(stable(t, notFoundLine), {
      level: 'info',
      message: 'access',
      type: 'rejected',
      client: '127.0.0.1',
      method: 'GET',
      host: 'other.test',
      path: '/',
      protocol: 'HTTP/1.1',
      status: 404,
      attempts: 0,
      bytesIn: 0,
      bytesOut: notFound.bytes.length,
      error: 'no_route',
    });
    t.deepEqual(stable(t, badFraming), {
      level: 'info',
      message: 'access',
      type: 'rejected',
      client: '127.0.0.1',
      method: 'GET',
      host: 'site.test',
      path: '/',
      protocol: 'HTTP/1.1',
      status: 400,
      attempts: 0,
      bytesIn: 0,
      bytesOut: bad.bytes.length,
      error: 'bad_request',
    });
    // Refused while parsing: no head to read a method or path from, an id of its own.
    t.deepEqual(stable(t, rejected), {
      level: 'info',
      message: 'access',
      type: 'rejected',
      client: '127.0.0.1',
      status: 400,
      error: 'bad_request',
      detail: 'invalid field name',
    });

    const after = await httpRequest({ port, path: '/after' });
    t.is(after.status, 200);
    t.deepEqual(lines(file), []);
    t.is(await sluice.stop(), 0);
    const reopened = lines(file);
    t.is(reopened.length, 1, 'SIGTERM wrote the buffered line to the reopened file');
    t.is(reopened[0]?.path, '/after');
    t.is(lines(`${file}.1`).length, 4);
    // The process's own lines stay on stdout, as events.
    const events = sluice
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
    t.true(events.length > 0);
    t.true(events.every((e) => e.type === 'event' && e.message !== 'access'));
  } finally {
    if (sluice.process.exitCode === null) await sluice.stop();
    await backend.close();
  }
});

test('by default the access lines go to stdout, next to the events', async (t) => {
  const backend = await startNodeBackend((_request, response) => response.end('hi'));
  const port = await freePort();
  const sluice = await startChildSluice(`listen: 127.0.0.1:${port}
admin: false
pools:
  web:
    servers: [127.0.0.1:${backend.port}]
`);
  try {
    t.is((await httpRequest({ port, path: '/x' })).status, 200);
    // Within one flush interval (1 s) without any signal.
    await readUntil(sluice.process.stdout as Readable, (out) => out.includes('"type":"access"'), 3000);
    const line = sluice
      .output()
      .split('\n')
      .find((l) => l.includes('"type":"access"'));
    t.is((JSON.parse(line ?? '{}') as Line).path, '/x');
  } finally {
    await sluice.stop();
    await backend.close();
  }
});

test('two workers: SIGUSR1 to the supervisor makes every worker write what it holds and reopen', async (t) => {
  const backend = await startNodeBackend((_request, response) => response.end('hi'));
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-access-'));
  const file = join(dir, 'access.log');
  const sluice = await startChildSluice(`listen: 127.0.0.1:${port}
admin: false
workers: 2
accessLog: { to: ${file}, flush: 1h }
pools:
  web:
    servers: [127.0.0.1:${backend.port}]
`);
  const stdout = sluice.process.stdout as Readable;
  const paths = Array.from({ length: 20 }, (_, i) => `/before/${i}`);
  try {
    // A new connection each: the kernel spreads them over both workers' sockets.
    for (const path of paths) {
      const reply = await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      t.regex(reply.text, /^HTTP\/1\.1 200 /);
    }
    t.deepEqual(lines(file), []);
    renameSync(file, `${file}.1`);
    sluice.process.kill('SIGUSR1');
    await readUntil(stdout, (out) => out.includes('access log reopened'));
    // Each worker writes what it holds to the old file, then opens the new one.
    const deadline = Date.now() + 5000;
    while (lines(`${file}.1`).length < paths.length && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(
      lines(`${file}.1`)
        .map((line) => line.path)
        .sort(),
      [...paths].sort(),
    );
    t.is((await httpRequest({ port, path: '/after' })).status, 200);
    t.is(await sluice.stop(), 0);
    t.deepEqual(
      lines(file).map((line) => line.path),
      ['/after'],
    );
  } finally {
    if (sluice.process.exitCode === null) await sluice.stop();
    await backend.close();
  }
});

for (const workers of ['1', '2'])
  test(`${workers} worker(s): a download the shutdown deadline cuts still gets its access line, marked shutdown`, async (t) => {
    // A body that never ends: only the shutdown deadline ends this exchange.
    const backend = await startNodeBackend((request, response) => {
      if (request.url !== '/endless') {
        response.end('ok');
        return;
      }
      response.writeHead(200, { 'content-length': String(1 << 30) });
      const tick = setInterval(() => response.write(Buffer.alloc(1024)), 20);
      response.on('close', () => clearInterval(tick));
    });
    const port = await freePort();
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-access-')), 'access.log');
    const sluice = await startChildSluice(
      `listen: 127.0.0.1:${port}
admin: false
accessLog: { to: ${file}, flush: 1h }
timeouts: { shutdown: 300ms }
pools:
  web:
    servers: [127.0.0.1:${backend.port}]
routes:
  - pool: web
`,
      workers,
    );
    try {
      const socket = await openSocket(port);
      socket.write('GET /endless HTTP/1.1\r\nHost: a\r\n\r\n');
      await readUntil(socket, (received) => received.includes('\r\n\r\n'));
      const ok = await rawExchange(port, 'GET /short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      t.regex(ok.text, /^HTTP\/1\.1 200 /);
      t.is(await sluice.stop(), 0);
      socket.destroy();
      const byPath = new Map(lines(file).map((line) => [line.path, line]));
      t.like(byPath.get('/short'), { status: 200 });
      t.like(byPath.get('/endless'), { status: 200, error: 'shutdown' });
      t.is(byPath.size, 2);
    } finally {
      await sluice.stop();
      await backend.close();
    }
  });
