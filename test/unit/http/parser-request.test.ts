import type { ExecutionContext } from 'ava';
import test from 'ava';
import { type HeadLimits, HttpError } from '../../../src/http/message.ts';
import { maxRequestFields, parseRequestHead } from '../../../src/http/parser.ts';

function statusOf(t: ExecutionContext, fn: () => unknown): number {
  const err = t.throws(fn, { instanceOf: HttpError });
  return err.status;
}

const b = (s: string) => Buffer.from(s, 'latin1');

// --- well-formed requests: exact head and size -------------------------------------------

interface Good {
  title: string;
  input: string;
  method: string;
  target: string;
  versionMinor: 0 | 1;
  headers: [string, string][];
  size: number;
}

const good: Good[] = [
  {
    title: 'simple GET with Host',
    input: 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [['Host', 'example.com']],
    size: 37,
  },
  {
    title: 'HTTP/1.0 without Host and without fields',
    input: 'GET /x HTTP/1.0\r\n\r\n',
    method: 'GET',
    target: '/x',
    versionMinor: 0,
    headers: [],
    size: 19,
  },
  {
    title: 'leading empty lines are skipped but counted in size',
    input: '\r\n\r\nGET / HTTP/1.0\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 0,
    headers: [],
    size: 22,
  },
  {
    title: 'OWS around the value is trimmed, name case is kept',
    input: 'POST /p HTTP/1.1\r\nHOST:a\r\nX-Thing: \t spaced  out \t\r\n\r\n',
    method: 'POST',
    target: '/p',
    versionMinor: 1,
    headers: [
      ['HOST', 'a'],
      ['X-Thing', 'spaced  out'],
    ],
    size: 54,
  },
  {
    title: 'empty field value',
    input: 'GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [
      ['Host', 'a'],
      ['X-Empty', ''],
      ['X-Blank', ''],
    ],
    size: 50,
  },
  {
    title: 'obs-text and HTAB inside a value',
    input: 'GET / HTTP/1.1\r\nHost: a\r\nX-T: caf\xe9\tok\xa0\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [
      ['Host', 'a'],
      ['X-T', 'caf\xe9\tok\xa0'],
    ],
    size: 42,
  },
  {
    title: 'origin-form with query and odd but legal characters',
    input: "GET /a/b;c?d=e&f=%20'x'!*~ HTTP/1.1\r\nHost: a\r\n\r\n",
    method: 'GET',
    target: "/a/b;c?d=e&f=%20'x'!*~",
    versionMinor: 1,
    headers: [['Host', 'a']],
    size: 48,
  },
  {
    title: 'absolute-form target',
    input: 'GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n',
    method: 'GET',
    target: 'http://example.com/a?b',
    versionMinor: 1,
    headers: [['Host', 'example.com']],
    size: 58,
  },
  {
    title: 'absolute-form with upper-case https scheme and port',
    input: 'GET HTTPS://example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n',
    method: 'GET',
    target: 'HTTPS://example.com:8443',
    versionMinor: 1,
    headers: [['Host', 'example.com:8443']],
    size: 65,
  },
  {
    title: 'authority-form with CONNECT',
    input: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    method: 'CONNECT',
    target: 'example.com:443',
    versionMinor: 1,
    headers: [['Host', 'example.com:443']],
    size: 59,
  },
  {
    title: 'asterisk-form with OPTIONS',
    input: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n',
    method: 'OPTIONS',
    target: '*',
    versionMinor: 1,
    headers: [['Host', 'a']],
    size: 31,
  },
  {
    title: 'Host as IPv6 literal with port',
    input: 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [['Host', '[::1]:8080']],
    size: 36,
  },
  {
    title: 'Host as IPv4 with port',
    input: 'GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [['Host', '10.0.0.1:80']],
    size: 37,
  },
  {
    title: 'extension method that is a token',
    input: "M-SEARCH!#$%&'*+.^_`|~ / HTTP/1.0\r\n\r\n",
    method: "M-SEARCH!#$%&'*+.^_`|~",
    target: '/',
    versionMinor: 0,
    headers: [],
    size: 37,
  },
  {
    title: 'colon inside a value is kept',
    input: 'GET / HTTP/1.1\r\nHost: a\r\nX-Url: http://b:1/c\r\n\r\n',
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [
      ['Host', 'a'],
      ['X-Url', 'http://b:1/c'],
    ],
    size: 48,
  },
];

for (const row of good) {
  test(`request parses: ${row.title}`, (t) => {
    const result = parseRequestHead(b(row.input));
    t.truthy(result);
    if (result === null) return;
    t.is(result.size, row.size);
    t.is(result.size, Buffer.byteLength(row.input, 'latin1'));
    t.is(result.head.method, row.method);
    t.is(result.head.target, row.target);
    t.is(result.head.versionMinor, row.versionMinor);
    t.deepEqual(
      result.head.headers,
      row.headers.map(([name, value]) => ({ name, lower: name.toLowerCase(), value })),
    );
  });
}

// --- pipelining: bytes after the head are never consumed -----------------------------------

test('request size stops at the head: pipelined second request is left alone', (t) => {
  const first = 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n';
  const second = 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n';
  const buf = b(first + second);
  const one = parseRequestHead(buf);
  t.is(one?.size, first.length);
  t.is(one?.head.target, '/1');
  const two = parseRequestHead(buf.subarray(one?.size ?? 0));
  t.is(two?.size, second.length);
  t.is(two?.head.target, '/2');
});

test('request size stops at the head: body bytes that look like a head are not consumed', (t) => {
  const head = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n';
  const result = parseRequestHead(b(`${head}X: y\r\n\r\nGET / HTTP/1.1`));
  t.is(result?.size, head.length);
  t.is(result?.head.headers.length, 2);
});

// --- violations: exact status ------------------------------------------------------------

const bad: [string, string, number][] = [
  // request line
  ['lower-case version', 'GET / http/1.1\r\nHost: a\r\n\r\n', 400],
  ['HTTP/2.0 is 505', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
  ['HTTP/1.2 is 505', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 505],
  ['HTTP/0.9 is 505', 'GET / HTTP/0.9\r\n\r\n', 505],
  ['version without minor', 'GET / HTTP/1\r\nHost: a\r\n\r\n', 400],
  ['two-digit version', 'GET / HTTP/1.10\r\nHost: a\r\n\r\n', 400],
  ['missing version', 'GET /\r\nHost: a\r\n\r\n', 400],
  ['double space after method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['trailing space after version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400],
  ['HTAB as separator', 'GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['leading space before method', ' GET / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['method with a non-token char', 'GE(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['target with DEL', 'GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['target with byte 0x80', 'GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['target with a control char', 'GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['target with a fragment', 'GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['relative target', 'GET a/b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['authority-form without CONNECT', 'GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['CONNECT with origin-form', 'CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['CONNECT without port', 'CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['asterisk-form with GET', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['absolute-form with empty host', 'GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['absolute-form with userinfo', 'GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['absolute-form with another scheme', 'GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  // line endings
  ['bare CR in request line', 'GET /\r HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['bare CR in field value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 400],
  ['bare CR ending a field line', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n', 400],
  ['bare LF after request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 400],
  ['bare LF between fields', 'GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', 400],
  ['bare LF as leading empty line', '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['LF-only head', 'GET / HTTP/1.1\nHost: a\n\n', 400],
  // field lines
  ['space before colon', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n', 400],
  ['HTAB before colon', 'GET / HTTP/1.1\r\nHost: a\r\nX\t: 5\r\n\r\n', 400],
  ['empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n', 400],
  ['field line without colon', 'GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400],
  ['non-token field name', 'GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n', 400],
  ['obs-fold with SP', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', 400],
  ['obs-fold with HTAB', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n', 400],
  ['NUL in value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400],
  ['control char 0x01 in value', 'GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n', 400],
  ['DEL in value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n', 400],
  // Host
  ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nX: a\r\n\r\n', 400],
  ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400],
  ['duplicate Host differing in case', 'GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n', 400],
  ['duplicate Host in HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['empty Host', 'GET / HTTP/1.1\r\nHost:\r\n\r\n', 400],
  ['Host with a space inside', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
  ['Host with a slash', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: u@a\r\n\r\n', 400],
  ['Host with query', 'GET / HTTP/1.1\r\nHost: a?b\r\n\r\n', 400],
  ['Host with fragment', 'GET / HTTP/1.1\r\nHost: a#b\r\n\r\n', 400],
  ['Host with a non-numeric port', 'GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n', 400],
  ['invalid Host in HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a b\r\n\r\n', 400],
  // One name to Sluice's router, a list to a backend reading X-Forwarded-Host's first or last.
  ...[...",;!$&'()*+="].map((c): [string, string, number] => [
    `Host with the sub-delim ${c}`,
    `GET / HTTP/1.1\r\nHost: admin.test${c}x\r\n\r\n`,
    400,
  ]),
  ['absolute-form authority with a comma', 'GET http://admin.test,x/ HTTP/1.1\r\nHost: a\r\n\r\n', 400],
];

for (const [title, input, status] of bad) {
  test(`request rejected with ${status}: ${title}`, (t) => {
    t.is(
      statusOf(t, () => parseRequestHead(b(input))),
      status,
    );
  });
}

// --- limits ------------------------------------------------------------------------------

const small: HeadLimits = { maxRequestLine: 40, maxHead: 200 };
/** A request line of exactly `n` bytes (without CRLF). */
const requestLine = (n: number) => `GET /${'a'.repeat(n - 14)} HTTP/1.1`;

test('limits: request line of exactly maxRequestLine is accepted', (t) => {
  const input = `${requestLine(40)}\r\nHost: a\r\n\r\n`;
  t.is(parseRequestHead(b(input), small)?.size, input.length);
});

test('limits: request line of maxRequestLine + 1 is 414', (t) => {
  t.is(
    statusOf(t, () => parseRequestHead(b(`${requestLine(41)}\r\nHost: a\r\n\r\n`), small)),
    414,
  );
});

test('limits: incomplete request line already longer than maxRequestLine is 414', (t) => {
  t.is(
    statusOf(t, () => parseRequestHead(b(requestLine(41).slice(0, 41)), small)),
    414,
  );
});

test('limits: incomplete request line of exactly maxRequestLine plus its CR is still null', (t) => {
  t.is(parseRequestHead(b(`${requestLine(40)}\r`), small), null);
});

test('limits: whole head of exactly maxHead is accepted', (t) => {
  const prefix = 'GET / HTTP/1.1\r\nHost: a\r\nX: ';
  const input = `${prefix}${'v'.repeat(200 - prefix.length - 4)}\r\n\r\n`;
  t.is(input.length, 200);
  t.is(parseRequestHead(b(input), small)?.size, 200);
});

test('limits: whole head of maxHead + 1 is 431', (t) => {
  const prefix = 'GET / HTTP/1.1\r\nHost: a\r\nX: ';
  const input = `${prefix}${'v'.repeat(201 - prefix.length - 4)}\r\n\r\n`;
  t.is(
    statusOf(t, () => parseRequestHead(b(input), small)),
    431,
  );
});

test('limits: incomplete head reaching maxHead without terminator is 431', (t) => {
  const prefix = 'GET / HTTP/1.1\r\nHost: a\r\nX: ';
  const input = `${prefix}${'v'.repeat(200 - prefix.length)}`;
  t.is(
    statusOf(t, () => parseRequestHead(b(input), small)),
    431,
  );
  t.is(parseRequestHead(b(input.slice(0, 199)), small), null);
});

test('limits: leading empty lines count toward maxHead', (t) => {
  const input = `${'\r\n'.repeat(100)}GET / HTTP/1.1\r\nHost: a\r\n\r\n`;
  t.is(
    statusOf(t, () => parseRequestHead(b(input), small)),
    431,
  );
  t.is(parseRequestHead(b(input))?.size, input.length);
});

test('limits: an endless stream of empty lines is 431', (t) => {
  t.is(
    statusOf(t, () => parseRequestHead(b('\r\n'.repeat(100)), small)),
    431,
  );
});

test(`limits: exactly ${maxRequestFields} fields are accepted`, (t) => {
  let input = 'GET / HTTP/1.1\r\nHost: a\r\n';
  for (let i = 1; i < maxRequestFields; i++) input += `X-${i}: ${i}\r\n`;
  const result = parseRequestHead(b(`${input}\r\n`));
  t.is(result?.head.headers.length, maxRequestFields);
  t.is(result?.head.headers[99]?.value, '99');
});

test(`limits: ${maxRequestFields + 1} fields are 431`, (t) => {
  let input = 'GET / HTTP/1.1\r\nHost: a\r\n';
  for (let i = 1; i <= maxRequestFields; i++) input += `X-${i}: ${i}\r\n`;
  t.is(
    statusOf(t, () => parseRequestHead(b(`${input}\r\n`))),
    431,
  );
});

test('limits: default limits accept an 8 KiB request line', (t) => {
  const input = `${requestLine(8 * 1024)}\r\nHost: a\r\n\r\n`;
  t.is(parseRequestHead(b(input))?.size, input.length);
  t.is(
    statusOf(t, () => parseRequestHead(b(`${requestLine(8 * 1024 + 1)}\r\nHost: a\r\n\r\n`))),
    414,
  );
});

// --- incomplete input -----------------------------------------------------------------------

const samples: [string, string][] = [
  ['GET with fields', 'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-A:  b \r\n\r\n'],
  ['HTTP/1.0 without fields', 'GET / HTTP/1.0\r\n\r\n'],
  ['leading empty lines', '\r\n\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n'],
];

for (const [title, input] of samples) {
  test(`incomplete request returns null at every split point: ${title}`, (t) => {
    const full = b(input);
    const expected = parseRequestHead(full);
    t.is(expected?.size, full.length);
    for (let i = 0; i < full.length; i++) {
      t.is(parseRequestHead(full.subarray(0, i)), null, `prefix of ${i} bytes`);
    }
    // Growing buffer with pipelined bytes: same result as the exact buffer.
    t.deepEqual(parseRequestHead(b(`${input}GET`)), expected);
  });
}

test('incomplete request with a bare LF is rejected before the terminator arrives', (t) => {
  t.is(
    statusOf(t, () => parseRequestHead(b('GET / HTTP/1.1\nHost: a'))),
    400,
  );
  t.is(
    statusOf(t, () => parseRequestHead(b('GET / HTTP/1.1\r\nHost: a\nX: b'))),
    400,
  );
});

test('empty buffer and a lone CR are incomplete', (t) => {
  t.is(parseRequestHead(Buffer.alloc(0)), null);
  t.is(parseRequestHead(b('\r')), null);
  t.is(parseRequestHead(b('\r\n')), null);
});
