// runClient in-process against hostile servers: what is left behind and said when a transfer
// fails (partial files, -w), and what reaches a terminal.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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
