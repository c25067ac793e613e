// The plain lane for response heads (src/http/plain-response.ts) against the full path (the
// parser, responseFraming, connectionTokens and clientResponseHead): for every head, random and
// mutated, the lane either leaves it to the full path or reads the same status, framing and
// Connection token and writes the client's head byte for byte as the full path writes it; and it
// takes every plain head the full path would relay. FUZZ_SEED=<seed> reproduces a failure.
import test from 'ava';
import { ambiguousResponseFraming, responseFraming } from '../../../src/http/framing.ts';
import { connectionTokens } from '../../../src/http/hop-by-hop.ts';
import { HttpError, type ResponseHead } from '../../../src/http/message.ts';
import { parseResponseHead } from '../../../src/http/parser.ts';
import { parsePlainResponse } from '../../../src/http/plain-response.ts';
import { clientResponseHead, responseMode } from '../../../src/http/response-heads.ts';
import { seeded } from '../../support/seeded.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

const nginxHead =
  'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 19:36:44 GMT\r\n' +
  'Content-Type: text/plain\r\nContent-Length: 1024\r\nLast-Modified: Sat, 28 Nov 2026 19:36:40 GMT\r\n' +
  'Connection: keep-alive\r\nETag: "692a01b8-400"\r\nAccept-Ranges: bytes\r\n\r\n';

/** The full path's reading of `buf`: the head and what the relay needs, or why it fails. */
function fullPath(buf: Buffer) {
  let parsed: { head: ResponseHead; size: number } | null;
  try {
    parsed = parseResponseHead(buf);
  } catch (error) {
    if (error instanceof HttpError) return 'rejected';
    throw error;
  }
  if (parsed === null) return 'incomplete';
  const { head, size } = parsed;
  let framing: ReturnType<typeof responseFraming>;
  try {
    framing = responseFraming(head, 'GET');
  } catch (error) {
    if (error instanceof HttpError) return 'rejected';
    throw error;
  }
  const tokens = connectionTokens(head.headers);
  const clientHead = (keepAlive: boolean, clientMinor: 0 | 1) =>
    clientResponseHead({
      head,
      connectionTokens: tokens,
      framing,
      mode: responseMode(framing, clientMinor),
      requestMethod: 'GET',
      keepAlive,
      clientMinor,
    });
  return { head, size, framing, tokens, clientHead };
}

/** Fails unless the lane leaves `text` alone or agrees with the full path on it; true if it took it. */
function agrees(t: import('ava').ExecutionContext, text: string): boolean {
  const buf = Buffer.from(`${text}body bytes`, 'latin1');
  const plain = parsePlainResponse(buf);
  if (plain === undefined) return false;
  const where = `seed ${seed}: ${JSON.stringify(text)}`;
  const full = fullPath(buf);
  if (typeof full === 'string') {
    t.fail(`the lane took a head the full path finds ${full}: ${where}`);
    return true;
  }
  const { head } = plain;
  t.is(plain.size, full.size, where);
  t.is(head.status, full.head.status, where);
  t.deepEqual(head.framing, full.framing, where);
  t.deepEqual(head.tokens, full.tokens, where);
  t.false(ambiguousResponseFraming(full.head, full.framing.kind === 'none'), where);
  for (const keepAlive of [true, false])
    for (const clientMinor of [0, 1] as const)
      t.is(
        head.clientHead(keepAlive, clientMinor).toString('latin1'),
        full.clientHead(keepAlive, clientMinor),
        where,
      );
  // Asked for, its fields are the full parser's.
  t.true(head.untouched);
  t.deepEqual(head.headers, full.head.headers, where);
  t.is(head.reason, full.head.reason, where);
  t.false(head.untouched);
  return true;
}

const statusLines = [
  'HTTP/1.1 200 OK',
  'HTTP/1.1 404 Not Found',
  'HTTP/1.1 502 Bad Gateway',
  'HTTP/1.1 206 Partial Content',
  'HTTP/1.1 599 \tweird é\xff',
  'HTTP/1.1 200 ',
  'HTTP/1.1 200',
  'HTTP/1.0 200 OK',
  'HTTP/1.1 204 No Content',
  'HTTP/1.1 304 Not Modified',
  'HTTP/1.1 100 Continue',
  'HTTP/1.1 101 Switching Protocols',
  'HTTP/1.1 099 Low',
  'HTTP/1.1 2000 OK',
  'http/1.1 200 OK',
  'HTTP/1.2 200 OK',
];
/** Field lines a backend may send; the lane must take the plain ones and leave the rest. */
const fieldLines = [
  'Server: nginx/1.22.1',
  'Date: Sat, 28 Nov 2026 19:36:44 GMT',
  'Content-Type: text/html; charset=utf-8',
  'ETag: "692a01b8-400"',
  'Set-Cookie: a=b; Path=/',
  'X-Cache: HIT',
  'x-odd: é\xff\tquoted "x"',
  'Content-Length: 1024',
  'content-length: 0',
  'CONTENT-LENGTH: 7',
  'Content-Length: 00',
  'Content-Length: 012',
  'Content-Length: 1024, 1024',
  'Content-Length: 1234567890123456',
  'Content-Length: -1',
  'Transfer-Encoding: chunked',
  'Connection: keep-alive',
  'Connection: Close',
  'connection: KEEP-ALIVE',
  'Connection: close, x-hop',
  'Connection: upgrade',
  'X-Hop: named in Connection',
  'Keep-Alive: timeout=5',
  'Via: 1.1 upstream',
  'TE: trailers',
  'Trailer: X-Sum',
  'Upgrade: websocket',
  'Proxy-Connection: keep-alive',
  'Proxy-Authenticate: Basic',
  'Proxy-Authorization: Basic eA==',
  'Close: x',
  'Content-Lengths: 5',
  'Connections: 5',
  'Name:value',
  'Name:  value',
  'Name: value ',
  'Name: value\t',
  'Name:',
  'Name: ',
  'Bad Name: x',
  ' folded',
];
const noise = ['\r', '\n', '\0', '\x7f', ' ', '\t', ':', '\r\n', '\r\n\r\n', 'A', '1'];

/** The plain ones among the status lines and field lines above. */
const plainStatus = statusLines.slice(0, 6);
const endToEnd = fieldLines.slice(0, 7);
const plainLengths = ['Content-Length: 1024', 'content-length: 0', 'CONTENT-LENGTH: 7'];

test('random heads: the lane leaves a head to the full path or reads and writes it exactly as that path does', (t) => {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
  let taken = 0;
  for (let round = 0; round < 20_000; round++) {
    // Mostly plain parts, so that a fair share of the heads are plain but for one thing.
    const lines = [random() < 0.7 ? pick(plainStatus) : pick(statusLines)];
    for (let n = Math.floor(random() * 9); n > 0; n--)
      lines.push(random() < 0.8 ? pick(endToEnd) : pick(fieldLines));
    if (random() < 0.8) lines.splice(1 + Math.floor(random() * lines.length), 0, pick(plainLengths));
    let text = `${lines.join('\r\n')}\r\n\r\n`;
    if (random() < 0.3) {
      const at = Math.floor(random() * (text.length + 1));
      const piece = pick(noise);
      text =
        random() < 0.5 ? text.slice(0, at) + piece + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
    }
    if (agrees(t, text)) taken++;
  }
  t.true(taken > 2000, `seed ${seed}: the lane took only ${taken} heads`);
});

test('it takes every plain head: HTTP/1.1, a body, one Content-Length, keep-alive or close, `Name: value` lines', (t) => {
  const random = seeded(seed + 1);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
  for (let round = 0; round < 2000; round++) {
    const lines = [pick(plainStatus)];
    for (let n = Math.floor(random() * 8); n > 0; n--) lines.push(pick(endToEnd));
    const at = 1 + Math.floor(random() * lines.length);
    lines.splice(at, 0, pick(plainLengths));
    if (random() < 0.5)
      lines.splice(
        1 + Math.floor(random() * lines.length),
        0,
        pick(['Connection: keep-alive', 'Connection: Close']),
      );
    if (random() < 0.3) lines.splice(1 + Math.floor(random() * lines.length), 0, 'Keep-Alive: timeout=5');
    const text = `${lines.join('\r\n')}\r\n\r\n`;
    t.true(agrees(t, text), `seed ${seed}: not taken: ${JSON.stringify(text)}`);
  }
});

test('nginx’s head: the client gets the backend’s lines but the hop-by-hop ones, then Via and the length', (t) => {
  const buf = Buffer.from(`${nginxHead}${'x'.repeat(1024)}`, 'latin1');
  const plain = parsePlainResponse(buf);
  if (plain === undefined) return t.fail('nginx’s head was not taken');
  t.is(plain.size, nginxHead.length);
  t.deepEqual(plain.head.framing, { kind: 'length', length: 1024 });
  t.deepEqual(plain.head.tokens, ['keep-alive']);
  t.is(
    plain.head.clientHead(true, 1).toString('latin1'),
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 19:36:44 GMT\r\n' +
      'Content-Type: text/plain\r\nLast-Modified: Sat, 28 Nov 2026 19:36:40 GMT\r\n' +
      'ETag: "692a01b8-400"\r\nAccept-Ranges: bytes\r\nVia: 1.1 sluice\r\nContent-Length: 1024\r\n\r\n',
  );
  t.true(
    plain.head
      .clientHead(false, 1)
      .toString('latin1')
      .endsWith('Content-Length: 1024\r\nConnection: close\r\n\r\n'),
  );
  t.true(agrees(t, nginxHead));
});

test('a head cut anywhere is left to the full path, which waits for the rest', (t) => {
  for (let cut = 0; cut < nginxHead.length; cut++) {
    const buf = Buffer.from(nginxHead.slice(0, cut), 'latin1');
    t.is(parsePlainResponse(buf), undefined, `cut at ${cut}`);
    t.is(parseResponseHead(buf), null, `cut at ${cut}`);
  }
});

test('fields changed after the lane took the head (the cache drops X-Cache) leave it no longer untouched', (t) => {
  const plain = parsePlainResponse(
    Buffer.from(`HTTP/1.1 200 OK\r\nX-Cache: HIT\r\nContent-Length: 0\r\n\r\n`),
  );
  if (plain === undefined) return t.fail('not taken');
  const { head } = plain;
  head.headers = head.headers.filter((field) => field.lower !== 'x-cache');
  t.false(head.untouched);
  t.deepEqual(head.headers, [{ name: 'Content-Length', lower: 'content-length', value: '0' }]);
});
