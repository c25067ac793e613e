import test from 'ava';
import { ambiguousResponseFraming, requestFraming, responseFraming } from '../../../src/http/framing.ts';
import { type BodyFraming, HttpError, type ResponseHead } from '../../../src/http/message.ts';
import { parseRequestHead, parseResponseHead } from '../../../src/http/parser.ts';

/** Parses a request head with the given field lines and frames it. */
function frameRequest(fields: string[], version = '1.1') {
  const raw = `POST /upload HTTP/${version}\r\nHost: a\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
  const parsed = parseRequestHead(Buffer.from(raw, 'latin1'));
  if (parsed === null) throw new Error('test head is incomplete');
  return requestFraming(parsed.head);
}

function frameResponse(statusLine: string, fields: string[], method = 'GET') {
  const raw = `${statusLine}\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`;
  const parsed = parseResponseHead(Buffer.from(raw, 'latin1'));
  if (parsed === null) throw new Error('test head is incomplete');
  return responseFraming(parsed.head, method);
}

const none: BodyFraming = { kind: 'none' };
const chunked: BodyFraming = { kind: 'chunked' };
const close: BodyFraming = { kind: 'close' };
const length = (n: number): BodyFraming => ({ kind: 'length', length: n });

// --- requests: accepted framings ---------------------------------------------------------

const requestGood: [string, string[], BodyFraming, string?][] = [
  ['no body fields', [], none],
  ['Content-Length: 0 is none', ['Content-Length: 0'], none],
  ['Content-Length: 10', ['Content-Length: 10'], length(10)],
  ['Content-Length with leading zeros', ['Content-Length: 007'], length(7)],
  ['Content-Length of 15 digits', ['Content-Length: 999999999999999'], length(999999999999999)],
  ['identical Content-Length list', ['Content-Length: 5, 5,5'], length(5)],
  ['identical Content-Length fields', ['Content-Length: 5', 'content-length: 5'], length(5)],
  ['Transfer-Encoding: chunked', ['Transfer-Encoding: chunked'], chunked],
  ['Transfer-Encoding: CHUNKED is case-insensitive', ['Transfer-Encoding: CHUNKED'], chunked],
  ['Content-Length in HTTP/1.0', ['Content-Length: 3'], length(3), '1.0'],
];

for (const [title, fields, expected, version] of requestGood) {
  test(`request framing: ${title}`, (t) => {
    t.deepEqual(frameRequest(fields, version), expected);
  });
}

test('request framing: chunked value with surrounding OWS', (t) => {
  const framing = requestFraming({
    method: 'POST',
    target: '/',
    versionMinor: 1,
    headers: [{ name: 'Transfer-Encoding', lower: 'transfer-encoding', value: ' \tchunked\t ' }],
  });
  t.deepEqual(framing, chunked);
});

// --- requests: smuggling forms and other violations -----------------------------------------

const requestBad: [string, string[], number, string?][] = [
  ['Transfer-Encoding in HTTP/1.0', ['Transfer-Encoding: chunked'], 400, '1.0'],
  ['Content-Length and Transfer-Encoding', ['Content-Length: 5', 'Transfer-Encoding: chunked'], 400],
  ['Transfer-Encoding and Content-Length', ['Transfer-Encoding: chunked', 'Content-Length: 5'], 400],
  ['chunked twice in one field', ['Transfer-Encoding: chunked, chunked'], 400],
  ['chunked not last', ['Transfer-Encoding: chunked, gzip'], 400],
  ['two Transfer-Encoding fields', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], 400],
  [
    'two Transfer-Encoding fields, gzip then chunked',
    ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
    400,
  ],
  ['empty Transfer-Encoding', ['Transfer-Encoding:'], 400],
  ['empty element in Transfer-Encoding', ['Transfer-Encoding: , chunked'], 400],
  ['quoted chunked', ['Transfer-Encoding: "chunked"'], 400],
  ['chunked with a parameter', ['Transfer-Encoding: chunked;q=1'], 400],
  ['gzip, chunked is 501', ['Transfer-Encoding: gzip, chunked'], 501],
  ['identity is 501', ['Transfer-Encoding: identity'], 501],
  ['gzip alone is 501', ['Transfer-Encoding: gzip'], 501],
  ['differing Content-Length fields', ['Content-Length: 5', 'Content-Length: 6'], 400],
  ['differing Content-Length list', ['Content-Length: 5, 6'], 400],
  ['same length spelled differently', ['Content-Length: 5, 05'], 400],
  ['negative Content-Length', ['Content-Length: -1'], 400],
  ['Content-Length with plus sign', ['Content-Length: +5'], 400],
  ['hex Content-Length', ['Content-Length: 0x10'], 400],
  ['Content-Length with inner space', ['Content-Length: 1 0'], 400],
  ['Content-Length with decimals', ['Content-Length: 1.5'], 400],
  ['Content-Length of 16 digits', ['Content-Length: 1000000000000000'], 400],
  ['empty Content-Length', ['Content-Length:'], 400],
  ['empty element in Content-Length list', ['Content-Length: 5,,5'], 400],
];

for (const [title, fields, status, version] of requestBad) {
  test(`request framing rejected with ${status}: ${title}`, (t) => {
    const err = t.throws(() => frameRequest(fields, version), { instanceOf: HttpError });
    t.is(err.status, status);
  });
}

// --- responses ----------------------------------------------------------------------------

const responseTable: [string, string, string[], string, BodyFraming][] = [
  ['HEAD request ignores Content-Length', 'HTTP/1.1 200 OK', ['Content-Length: 10'], 'HEAD', none],
  ['HEAD request ignores chunked', 'HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], 'HEAD', none],
  ['100 Continue', 'HTTP/1.1 100 Continue', [], 'GET', none],
  ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols', ['Upgrade: websocket'], 'GET', none],
  ['103 Early Hints', 'HTTP/1.1 103 Early Hints', ['Link: </a>'], 'GET', none],
  ['204 with Content-Length', 'HTTP/1.1 204 No Content', ['Content-Length: 10'], 'GET', none],
  ['304 with Content-Length', 'HTTP/1.1 304 Not Modified', ['Content-Length: 10'], 'GET', none],
  ['chunked', 'HTTP/1.1 200 OK', ['Transfer-Encoding: chunked'], 'GET', chunked],
  // Other codings are kept, so the body is passed on as what it is (issue 10).
  [
    'gzip, chunked',
    'HTTP/1.1 200 OK',
    ['Transfer-Encoding: gzip, Chunked'],
    'GET',
    { kind: 'chunked', codings: 'gzip' },
  ],
  [
    'chunked over two fields',
    'HTTP/1.1 200 OK',
    ['Transfer-Encoding: gzip', 'Transfer-Encoding: chunked'],
    'GET',
    { kind: 'chunked', codings: 'gzip' },
  ],
  [
    'chunked wins over Content-Length',
    'HTTP/1.1 200 OK',
    ['Content-Length: 3', 'Transfer-Encoding: chunked'],
    'GET',
    chunked,
  ],
  [
    'TE without final chunked reads until close',
    'HTTP/1.1 200 OK',
    ['Transfer-Encoding: gzip'],
    'GET',
    { kind: 'close', codings: 'gzip' },
  ],
  ['Content-Length', 'HTTP/1.1 200 OK', ['Content-Length: 42'], 'GET', length(42)],
  ['Content-Length on a POST response', 'HTTP/1.1 201 Created', ['Content-Length: 2'], 'POST', length(2)],
  ['Content-Length: 0', 'HTTP/1.1 200 OK', ['Content-Length: 0'], 'GET', none],
  ['identical Content-Length list', 'HTTP/1.1 200 OK', ['Content-Length: 7, 7'], 'GET', length(7)],
  ['no framing fields: close', 'HTTP/1.1 200 OK', [], 'GET', close],
  ['HTTP/1.0 without length: close', 'HTTP/1.0 200 OK', [], 'GET', close],
  ['404 with a body length', 'HTTP/1.1 404 Not Found', ['Content-Length: 9'], 'GET', length(9)],
];

for (const [title, statusLine, fields, method, expected] of responseTable) {
  test(`response framing: ${title}`, (t) => {
    t.deepEqual(frameResponse(statusLine, fields, method), expected);
  });
}

const responseBad: [string, string[]][] = [
  ['differing Content-Length fields', ['Content-Length: 1', 'Content-Length: 2']],
  ['differing Content-Length list', ['Content-Length: 1, 2']],
  ['negative Content-Length', ['Content-Length: -1']],
  ['non-numeric Content-Length', ['Content-Length: abc']],
];

for (const [title, fields] of responseBad) {
  test(`response framing rejected with 502: ${title}`, (t) => {
    const err = t.throws(() => frameResponse('HTTP/1.1 200 OK', fields), { instanceOf: HttpError });
    t.is(err.status, 502);
  });
}

// RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing, even with a length.
const http10WithTe: [string, string[]][] = [
  ['chunked', ['Transfer-Encoding: chunked']],
  ['chunked and Content-Length', ['Transfer-Encoding: chunked', 'Content-Length: 5']],
  ['gzip', ['Transfer-Encoding: gzip']],
];

for (const [title, fields] of http10WithTe) {
  test(`response framing rejected with 502: Transfer-Encoding in HTTP/1.0 (${title})`, (t) => {
    const err = t.throws(() => frameResponse('HTTP/1.0 200 OK', fields), { instanceOf: HttpError });
    t.is(err.status, 502);
    t.is(err.message, 'Transfer-Encoding in an HTTP/1.0 response');
  });
}

test('ambiguous response framing: CL with TE, or a bodiless answer that announces a body', (t) => {
  const head = (text: string) => parseResponseHead(Buffer.from(`${text}\r\n\r\n`))?.head as ResponseHead;
  t.true(
    ambiguousResponseFraming(
      head('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked'),
      false,
    ),
  );
  t.true(ambiguousResponseFraming(head('HTTP/1.1 204 No Content\r\nContent-Length: 89'), true));
  t.true(ambiguousResponseFraming(head('HTTP/1.1 200 OK\r\nContent-Length: 5'), true)); // after HEAD
  t.true(ambiguousResponseFraming(head('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked'), true));
  t.false(ambiguousResponseFraming(head('HTTP/1.1 204 No Content'), true));
  t.false(ambiguousResponseFraming(head('HTTP/1.1 200 OK\r\nContent-Length: 0'), true));
  t.false(ambiguousResponseFraming(head('HTTP/1.1 200 OK\r\nContent-Length: 5'), false));
});
