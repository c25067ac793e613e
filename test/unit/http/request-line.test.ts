// The byte reader of the request line (plainRequestLine) against the regular expression
// (carefulRequestLine): on every line, plain and mutated, the reader either declines or gives
// exactly the parts the careful path gives, and it declines no plain line within the limit.
// FUZZ_SEED=<seed> reproduces a failure.
import test from 'ava';
import { type HeadLimits, HttpError } from '../../../src/http/message.ts';
import { carefulRequestLine, plainRequestLine, type RequestLine } from '../../../src/http/request-line.ts';
import { seeded } from '../../support/seeded.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

/** A head as the parser hands it over: the bytes through CRLFCRLF, and its text before it. */
function headOf(head: string, skipped: number) {
  const buf = Buffer.from(`${'\r\n'.repeat(skipped)}${head}\r\n\r\n`, 'latin1');
  const start = 2 * skipped;
  const end = buf.indexOf('\r\n\r\n', start);
  return { buf, start, text: buf.toString('latin1', start, end) };
}

function plain(head: string, limits: HeadLimits, skipped = 0): RequestLine | undefined {
  const { buf, start, text } = headOf(head, skipped);
  return plainRequestLine(buf, text, start, limits);
}

/** The careful path's parts, or the status it answers with. */
function careful(head: string, limits: HeadLimits, skipped = 0): RequestLine | number {
  const { start, text } = headOf(head, skipped);
  try {
    return carefulRequestLine(text, start, limits);
  } catch (error) {
    if (error instanceof HttpError) return error.status;
    throw error;
  }
}

const methods = ['GET', 'HEAD', 'POST', 'OPTIONS', 'M-SEARCH', "!#$%&'*+-.^_`|~09az"];
const targets = ['/', '/1k.txt', '/a?b=c&d', '/%7E!"$', 'http://h:80/x', 'h:443', '*', `/${'x'.repeat(40)}`];
const fieldBlocks = ['', '\r\nHost: a', '\r\nHost: a\r\nX-B: c d'];
const noise = ['\r', '\n', '\0', '\x7f', ' ', '\t', '#', '\x80', '\xff', '/', 'H', '0', '2', '9', '.', ':'];

function pick<T>(random: () => number, from: readonly T[]): T {
  return from[Math.floor(random() * from.length)] as T;
}

function plainHead(random: () => number): { line: string; head: string } {
  const line = `${pick(random, methods)} ${pick(random, targets)} HTTP/1.${random() < 0.8 ? 1 : 0}`;
  return { line, head: line + pick(random, fieldBlocks) };
}

test('plain lines: read from the bytes exactly as the careful path reads them, up to the limit', (t) => {
  const random = seeded(seed);
  for (let round = 0; round < 5000; round++) {
    const { line, head } = plainHead(random);
    const limits = { maxRequestLine: 10 + Math.floor(random() * 60), maxHead: 16 * 1024 };
    const skipped = random() < 0.2 ? 1 + Math.floor(random() * 2) : 0;
    const why = `seed ${seed}: ${JSON.stringify(head)} within ${limits.maxRequestLine}`;
    const expected = careful(head, limits, skipped);
    if (line.length > limits.maxRequestLine) {
      t.is(expected, 414, why);
      t.is(plain(head, limits, skipped), undefined, why);
    } else {
      t.not(typeof expected, 'number', why);
      t.deepEqual(plain(head, limits, skipped), expected, why);
    }
  }
});

test('mutated lines: the byte reader declines or agrees, and takes nothing the careful path refuses', (t) => {
  const random = seeded(seed + 1);
  const limits = { maxRequestLine: 8 * 1024, maxHead: 16 * 1024 };
  let declined = 0;
  for (let round = 0; round < 20000; round++) {
    let { head } = plainHead(random);
    for (let m = 0; m < 1 + Math.floor(random() * 2); m++) {
      const at = Math.floor(random() * (head.length + 1));
      const piece = pick(random, noise);
      head =
        random() < 0.5
          ? head.slice(0, at) + piece + head.slice(at)
          : head.slice(0, at) + piece + head.slice(at + 1);
    }
    const read = plain(head, limits);
    const expected = careful(head, limits);
    const why = `seed ${seed}: ${JSON.stringify(head)}`;
    if (read === undefined) declined++;
    else t.deepEqual(read, expected, why);
  }
  t.true(declined > 5000, `only ${declined} lines were declined: the mutations did not bite`);
});

test('the careful path words what the byte reader declines', (t) => {
  const limits = { maxRequestLine: 20, maxHead: 16 * 1024 };
  for (const [head, status] of [
    ['GET /a#b HTTP/1.1', 400],
    ['GET /a HTTP/1.2', 505],
    ['GET /a HTTP/2.0', 505],
    [' /a HTTP/1.1', 400],
    ['GET  HTTP/1.1', 400],
    ['GET  /a HTTP/1.1', 400],
    ['GET /a HTTP/1.1 ', 400],
    ['GET /a\nX: y HTTP/1.1', 400],
    ['GET /aaaaaaaaaaaaaaaaaaa HTTP/1.1', 414],
  ] as const) {
    t.is(plain(head, limits), undefined, head);
    t.is(careful(head, limits), status, head);
  }
});

test('a request line alone has no field lines; otherwise they start after its CRLF', (t) => {
  const limits = { maxRequestLine: 100, maxHead: 16 * 1024 };
  t.deepEqual(plain('GET /x HTTP/1.0', limits), {
    method: 'GET',
    target: '/x',
    versionMinor: 0,
    fieldsAt: -1,
  });
  t.deepEqual(plain('GET /x HTTP/1.1\r\nHost: a', limits, 1), {
    method: 'GET',
    target: '/x',
    versionMinor: 1,
    fieldsAt: 2 + 17,
  });
});
