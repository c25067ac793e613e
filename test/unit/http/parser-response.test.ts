import type { ExecutionContext } from 'ava';
import test from 'ava';
import { HttpError } from '../../../src/http/message.ts';
import { defaultMaxResponseHead, parseResponseHead } from '../../../src/http/parser.ts';

function statusOf(t: ExecutionContext, fn: () => unknown): number {
  const err = t.throws(fn, { instanceOf: HttpError });
  return err.status;
}

const b = (s: string) => Buffer.from(s, 'latin1');

interface Good {
  title: string;
  input: string;
  versionMinor: 0 | 1;
  status: number;
  reason: string;
  headers: [string, string][];
}

const good: Good[] = [
  {
    title: 'plain 200 with fields',
    input: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A:  b \r\n\r\n',
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [
      ['Content-Length', '2'],
      ['X-A', 'b'],
    ],
  },
  {
    title: 'HTTP/1.0 response without fields',
    input: 'HTTP/1.0 404 Not Found\r\n\r\n',
    versionMinor: 0,
    status: 404,
    reason: 'Not Found',
    headers: [],
  },
  {
    title: 'missing reason and the space before it',
    input: 'HTTP/1.1 204\r\nX: y\r\n\r\n',
    versionMinor: 1,
    status: 204,
    reason: '',
    headers: [['X', 'y']],
  },
  {
    title: 'empty reason after the space',
    input: 'HTTP/1.1 500 \r\n\r\n',
    versionMinor: 1,
    status: 500,
    reason: '',
    headers: [],
  },
  {
    title: 'reason with spaces and obs-text',
    input: 'HTTP/1.1 418 I\xe9m a teapot\r\n\r\n',
    versionMinor: 1,
    status: 418,
    reason: 'I\xe9m a teapot',
    headers: [],
  },
  {
    title: 'bare LF line endings',
    input: 'HTTP/1.1 200 OK\nA: 1\nB: 2\n\n',
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [
      ['A', '1'],
      ['B', '2'],
    ],
  },
  {
    title: 'mixed CRLF and bare LF, ending in LF CRLF',
    input: 'HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\n',
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [
      ['A', '1'],
      ['B', '2'],
    ],
  },
  {
    title: 'obs-fold replaced by a single SP',
    input: 'HTTP/1.1 200 OK\r\nX-Long: first\r\n   second\r\n\tthird \r\nY: z\r\n\r\n',
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [
      ['X-Long', 'first second third'],
      ['Y', 'z'],
    ],
  },
  {
    title: 'obs-fold onto an empty value',
    input: 'HTTP/1.1 200 OK\nX:\n  folded\n\n',
    versionMinor: 1,
    status: 200,
    reason: 'OK',
    headers: [['X', 'folded']],
  },
  {
    title: '1xx interim response',
    input: 'HTTP/1.1 100 Continue\r\n\r\n',
    versionMinor: 1,
    status: 100,
    reason: 'Continue',
    headers: [],
  },
];

for (const row of good) {
  test(`response parses: ${row.title}`, (t) => {
    const result = parseResponseHead(b(`${row.input}body bytes\r\n\r\n`));
    t.truthy(result);
    if (result === null) return;
    t.is(result.size, row.input.length);
    t.is(result.head.versionMinor, row.versionMinor);
    t.is(result.head.status, row.status);
    t.is(result.head.reason, row.reason);
    t.deepEqual(
      result.head.headers,
      row.headers.map(([name, value]) => ({ name, lower: name.toLowerCase(), value })),
    );
  });
}

const bad: [string, string][] = [
  ['bare CR in a field value', 'HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n'],
  ['bare CR in the status line', 'HTTP/1.1 200 O\rK\r\n\r\n'],
  ['HTTP/2.0 version', 'HTTP/2.0 200 OK\r\n\r\n'],
  ['lower-case version', 'http/1.1 200 OK\r\n\r\n'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n'],
  ['status below 100', 'HTTP/1.1 099 Odd\r\n\r\n'],
  ['non-numeric status', 'HTTP/1.1 abc OK\r\n\r\n'],
  ['reason without the space', 'HTTP/1.1 200OK\r\n\r\n'],
  ['garbage instead of a status line', 'hello world\r\n\r\n'],
  ['empty status line', '\r\n\r\n'],
  ['obs-fold before any field', 'HTTP/1.1 200 OK\r\n folded\r\n\r\n'],
  ['space before colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n'],
  ['empty field name', 'HTTP/1.1 200 OK\r\n: v\r\n\r\n'],
  ['field line without colon', 'HTTP/1.1 200 OK\r\nnocolon\r\n\r\n'],
  ['NUL in a value', 'HTTP/1.1 200 OK\r\nX: a\x00\r\n\r\n'],
  ['NUL in a folded value', 'HTTP/1.1 200 OK\r\nX: a\r\n b\x00\r\n\r\n'],
];

for (const [title, input] of bad) {
  test(`response rejected with 502: ${title}`, (t) => {
    t.is(
      statusOf(t, () => parseResponseHead(b(input))),
      502,
    );
  });
}

test('response limit: head of exactly maxHead is accepted, maxHead + 1 is 502', (t) => {
  const prefix = 'HTTP/1.1 200 OK\r\nX: ';
  const exact = `${prefix}${'v'.repeat(100 - prefix.length - 4)}\r\n\r\n`;
  t.is(parseResponseHead(b(exact), 100)?.size, 100);
  const over = `${prefix}${'v'.repeat(101 - prefix.length - 4)}\r\n\r\n`;
  t.is(
    statusOf(t, () => parseResponseHead(b(over), 100)),
    502,
  );
});

test('response limit: incomplete head reaching maxHead is 502, one byte less is null', (t) => {
  const input = `HTTP/1.1 200 OK\r\nX: ${'v'.repeat(80)}`;
  t.is(parseResponseHead(b(input.slice(0, 99)), 100), null);
  t.is(
    statusOf(t, () => parseResponseHead(b(input.slice(0, 100)), 100)),
    502,
  );
});

test('response limit: default maxHead is 64 KiB', (t) => {
  t.is(defaultMaxResponseHead, 64 * 1024);
  const big = b(`HTTP/1.1 200 OK\r\nX: ${'v'.repeat(64 * 1024)}`);
  t.is(
    statusOf(t, () => parseResponseHead(big)),
    502,
  );
  t.is(parseResponseHead(big.subarray(0, 60 * 1024)), null);
});

const samples: [string, string][] = [
  ['CRLF response', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n'],
  ['LF response with fold', 'HTTP/1.1 301 Moved\nLocation: /x\nX: a\n b\n\n'],
];

for (const [title, input] of samples) {
  test(`incomplete response returns null at every split point: ${title}`, (t) => {
    const full = b(input);
    const expected = parseResponseHead(full);
    t.is(expected?.size, full.length);
    for (let i = 0; i < full.length; i++) {
      t.is(parseResponseHead(full.subarray(0, i)), null, `prefix of ${i} bytes`);
    }
    t.deepEqual(parseResponseHead(b(`${input}hello`)), expected);
  });
}
