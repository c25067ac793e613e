// runClient in-process against servers whose framing is legal but unusual, or faulty in ways a
// lenient reader would pass as a body: what reaches stdout, what is said, the exit code.
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { runClient } from '../../../src/client/run.ts';
import { lastChunk } from '../../../src/http/chunked.ts';
import { capture, reply, serve } from './harness.ts';

/** Runs the client against a server that answers every request with `answer`; stdout is a pipe. */
async function fetchFrom(answer: string, args: string[] = []) {
  const { port } = await serve((_request, socket) => reply(socket, answer));
  const c = capture({ stdoutIsTTY: false });
  const code = await runClient([...args, `http://127.0.0.1:${port}/`], c.io);
  return { code, stdout: c.stdout().toString('latin1'), stderr: c.stderr() };
}

const chunkedHead = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';

test('chunk sizes with leading zeros are read by their value (RFC 9112 7.1)', async (t) => {
  const got = await fetchFrom(`${chunkedHead}00000000000000005\r\nhello\r\n${'0'.repeat(40)}\r\n\r\n`);
  t.deepEqual(got, { code: 0, stdout: 'hello', stderr: '' });
});

test('a zero-padded chunk size whose value overflows is malformed (8)', async (t) => {
  const got = await fetchFrom(`${chunkedHead}000010000000000000005\r\nhello\r\n0\r\n\r\n`);
  t.deepEqual(got, {
    code: 8,
    stdout: '',
    stderr: 'sluice client: malformed response: chunk size too large\n',
  });
});

// RFC 9112 6.1: a recipient of Transfer-Encoding in an HTTP/1.0 message must treat its framing as
// faulty, even with a Content-Length; reading to the close put the chunk framing in the body.
const http10WithTe: [string, string][] = [
  ['chunked', 'Transfer-Encoding: chunked\r\n'],
  ['chunked and Content-Length', 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n'],
];
for (const [title, fields] of http10WithTe) {
  test(`HTTP/1.0 with Transfer-Encoding is malformed (8): ${title}`, async (t) => {
    const got = await fetchFrom(`HTTP/1.0 200 OK\r\n${fields}\r\n5\r\nhello\r\n0\r\n\r\n`);
    t.deepEqual(got, {
      code: 8,
      stdout: '',
      stderr: 'sluice client: malformed response: Transfer-Encoding in an HTTP/1.0 response\n',
    });
  });
}

test('a 101 nobody asked for is an error (8), not an empty answer', async (t) => {
  const switching = 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n';
  const got = await fetchFrom(`${switching}\x81\x05hello`, ['-i']);
  t.deepEqual(got, {
    code: 8,
    stdout: '',
    stderr:
      'sluice client: malformed response: 101 Switching Protocols, but the request asked for no upgrade\n',
  });
  // Asked for with -H Upgrade, the 101 is the answer: its head is shown, as curl does.
  const asked = await fetchFrom(`${switching}\x81\x05hello`, ['-i', '-H', 'Upgrade: websocket']);
  t.deepEqual(asked, { code: 0, stdout: switching, stderr: '' });
});

// A transfer coding besides chunked: the client decodes none, and the bytes would pass for the
// resource. curl without --tr-encoding refuses them: "Unsolicited Transfer-Encoding", exit 61.
const gzipped = gzipSync('hello');
const coded: [string, string, Buffer][] = [
  ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n', chunked(gzipped)],
  ['gzip over two fields', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', chunked(gzipped)],
  ['gzip, delimited by the close', 'Transfer-Encoding: gzip\r\n', gzipped],
  ['identity then deflate', 'Transfer-Encoding: identity, deflate, chunked\r\n', chunked(gzipped)],
];
for (const [title, fields, body] of coded) {
  test(`a body in a transfer coding the client does not decode exits 61, nothing written: ${title}`, async (t) => {
    const { port } = await serve((_request, socket) =>
      reply(socket, `HTTP/1.1 200 OK\r\n${fields}\r\n`, body),
    );
    const c = capture({ stdoutIsTTY: false });
    t.is(await runClient([`http://127.0.0.1:${port}/`], c.io), 61);
    t.is(c.stdout().length, 0);
    const named = title.startsWith('identity') ? 'deflate' : 'gzip';
    t.is(
      c.stderr(),
      `sluice client: the server sent the body in a transfer coding the client does not decode: ${named}\n`,
    );
  });
}

test('--repeat refuses a transfer-coded body too (61)', async (t) => {
  const { port } = await serve((_request, socket) =>
    reply(socket, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', chunked(gzipped)),
  );
  const c = capture({ stdoutIsTTY: false });
  t.is(await runClient(['--repeat', '2', `http://127.0.0.1:${port}/`], c.io), 61);
  t.is(c.stdout().length, 0);
});

test('identity is no coding: "identity, chunked" is read as chunked', async (t) => {
  const got = await fetchFrom(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  );
  t.deepEqual(got, { code: 0, stdout: 'hello', stderr: '' });
});

function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
}
function chunked(data: Buffer): Buffer {
  return Buffer.concat([chunk(data), lastChunk]);
}
