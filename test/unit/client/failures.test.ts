// runClient in-process against hostile servers: what is left behind and said when a transfer
// fails (partial files, -w), and what reaches a terminal.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runClient } from '../../../src/client/run.ts';
import { capture, reply, serve } from './harness.ts';

test('a body cut short or a bad chunk leaves the bytes read in the -o file, as the note says', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-partial-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { port } = await serve((request, socket) => {
    if (request.head.startsWith('GET /short'))
      reply(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', '0123456789');
    else reply(socket, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nzz\r\n');
  });
  const cases: [string, number, string][] = [
    ['short', 18, 'the connection closed after 10 of 100 body bytes'],
    ['chunked', 8, 'malformed response: invalid chunk size'],
  ];
  for (const [name, code, message] of cases) {
    const c = capture({ cwd: dir });
    t.is(await runClient(['-o', `${name}.bin`, `http://127.0.0.1:${port}/${name}`], c.io), code, name);
    t.is(c.stderr(), `sluice client: ${message}\nsluice client: the partial body (10 B) is in ${name}.bin\n`);
    t.is(await readFile(join(dir, `${name}.bin`), 'latin1'), '0123456789', name);
  }
});

test('on a terminal, a text body shows control characters as escapes; a NUL byte refuses it (23)', async (t) => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
  const { port } = await serve((request, socket) => {
    const body = request.head.startsWith('GET /esc')
      ? Buffer.from('A\x1b]52;c;ZXZpbA==\x07\x1b[2J\u009b2J\r\n\tZ')
      : png;
    reply(
      socket,
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
      body,
    );
  });
  const esc = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/esc`], esc.io), 0);
  t.is(esc.stdout().toString('utf8'), 'A\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x9b2J\r\n\tZ');
  const binary = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/png`], binary.io), 23);
  t.is(binary.stdout().length, 0);
  t.is(
    binary.stderr(),
    'sluice client: binary output (a NUL byte) is not shown on a terminal: save it with -o FILE or -O, or print it anyway with -o -\n',
  );
  const raw = capture();
  t.is(await runClient(['-o', '-', `http://127.0.0.1:${port}/png`], raw.io), 0);
  t.deepEqual(raw.stdout(), png);
});

test("the server's controls never reach stderr: the saved note, the file name, -v", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-controls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { port } = await serve((_request, socket) =>
    reply(
      socket,
      'HTTP/1.1 200 OK\r\nContent-Type: image/png\x9b2J\r\nX-Note: \x9d0;T\x9c\r\n' +
        "Content-Disposition: attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe\r\nContent-Length: 4\r\n\r\n",
      'data',
    ),
  );
  const c = capture({ cwd: dir });
  t.is(await runClient(['-v', `http://127.0.0.1:${port}/`], c.io), 0);
  t.deepEqual(await readdir(dir), ['invoicefdp.exe']);
  const lines = c.stderr().split('\n');
  t.true(lines.includes('< Content-Type: image/png\\x9b2J'));
  t.true(lines.includes('< X-Note: \\x9d0;T\\x9c'));
  t.true(lines.includes('sluice client: saved 4 B (image/png\\x9b2J) to invoicefdp.exe'));
  t.notRegex(c.stderr(), /[\x80-\x9f\u202e]/);
});

test('-L to another host: -H Host, Authorization, Proxy-Authorization and Cookie stay behind', async (t) => {
  const b = await serve((_request, socket) =>
    reply(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n', 'ok'),
  );
  const a = await serve((_request, socket) =>
    reply(
      socket,
      `HTTP/1.1 302 Found\r\nLocation: http://other.test:${b.port}/next\r\nContent-Length: 0\r\n\r\n`,
    ),
  );
  const c = capture({ stdoutIsTTY: false });
  const headers = ['Host: internal.example', 'Authorization: Bearer A', 'Proxy-Authorization: Basic P'];
  const args = ['-L', '--resolve', `other.test:${b.port}:127.0.0.1`, '-H', 'Cookie: c=1', '-H', 'X-Keep: 1'];
  t.is(
    await runClient([...args, ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${a.port}/`], c.io),
    0,
  );
  t.regex(
    a.requests[0]?.head ?? '',
    /\r\nHost: internal\.example\r\n[\s\S]*\r\nProxy-Authorization: Basic P\r\n/,
  );
  t.is(
    b.requests[0]?.head,
    `GET /next HTTP/1.1\r\nHost: other.test:${b.port}\r\nUser-Agent: ${/User-Agent: (.*)\r\n/.exec(a.requests[0]?.head ?? '')?.[1]}\r\nAccept: */*\r\nConnection: close\r\nX-Keep: 1\r\n\r\n`,
  );
});

test('-w is printed on a failure too, with %{exitcode} and 000 when no answer came', async (t) => {
  const { port, server } = await serve((_request, socket) =>
    reply(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 'short'),
  );
  const w = ['-s', '-o', '/dev/null', '-w', '%{http_code} %{exitcode} %{size_download}'];
  const cut = capture();
  t.is(await runClient([...w, `http://127.0.0.1:${port}/`], cut.io), 18);
  t.is(cut.stdout().toString(), '200 18 5');
  await new Promise((resolve) => server.close(resolve));
  const refused = capture();
  t.is(await runClient([...w, `http://127.0.0.1:${port}/`], refused.io), 7);
  t.is(refused.stdout().toString(), '000 7 0');
});

test('-f stops at the head of a 400 or more: an endless or cut body still exits 22 at once', async (t) => {
  const { port } = await serve((request, socket) => {
    if (request.head.startsWith('GET /endless')) {
      socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000000\r\n\r\n');
      const drip = setInterval(() => (socket.destroyed ? clearInterval(drip) : socket.write('x')), 50);
    } else reply(socket, 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\n', 'cut');
  });
  for (const [path, line] of [
    ['endless', '503 Service Unavailable'],
    ['cut', '500 Internal Server Error'],
  ]) {
    const c = capture();
    const started = performance.now();
    t.is(await runClient(['-f', '-m', '5', `http://127.0.0.1:${port}/${path}`], c.io), 22, path);
    t.true(performance.now() - started < 2000);
    t.is(c.stderr(), `sluice client: the server answered ${line}\n`);
    t.is(c.stdout().length, 0);
  }
});

test('--repeat does not send a POST again when the kept-alive connection turns out closed', async (t) => {
  const { port, requests } = await serve((_request, socket) => {
    if (requests.length === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else socket.end();
  });
  const c = capture();
  t.is(await runClient(['--repeat', '2', '-d', 'x', `http://127.0.0.1:${port}/`], c.io), 52);
  t.is(requests.length, 2);
  t.is(
    c.stderr(),
    'sluice client: empty reply: the server closed the connection without answering (the kept-alive connection was closed; POST is not sent again, as it may not be idempotent)\n',
  );
});

test('--repeat: bytes past a response close the connection, never read as the next response', async (t) => {
  let connections = 0;
  const { port, server } = await serve((request, socket) => {
    const extra = request.head.startsWith('GET') ? 'lo' : '';
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello${extra}`);
  });
  server.on('connection', () => connections++);
  const c = capture();
  t.is(await runClient(['--repeat', '3', `http://127.0.0.1:${port}/`], c.io), 0, c.stderr());
  const lines = c.stdout().toString().trimEnd().split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0] ?? '', /^\[1\/3\] {2}200 OK {2}X-Backend: - {2}5 bytes {2}[\d.]+ ms$/);
  t.regex(
    lines[2] ?? '',
    /^\[3\/3\] {2}200 OK {2}X-Backend: - {2}5 bytes {2}[\d.]+ ms {2}\(new connection\)$/,
  );
  t.is(connections, 3);
});
