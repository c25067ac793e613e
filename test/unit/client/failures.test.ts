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
