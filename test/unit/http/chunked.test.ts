import type { ExecutionContext } from 'ava';
import test from 'ava';
import {
  ChunkedDecoder,
  type ChunkedDecoderOptions,
  encodeChunk,
  lastChunk,
} from '../../../src/http/chunked.ts';
import { HttpError } from '../../../src/http/message.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Feeds `pieces` in order; returns the decoded body, the consumed counts and the decoder. */
function decode(pieces: Buffer[], options?: ChunkedDecoderOptions) {
  const decoder = new ChunkedDecoder(options);
  const data: Buffer[] = [];
  const consumed = pieces.map((piece) => decoder.feed(piece, (d) => data.push(d)));
  return { body: Buffer.concat(data).toString('latin1'), consumed, decoder };
}

function statusOf(t: ExecutionContext, input: string, options?: ChunkedDecoderOptions): number {
  const err = t.throws(() => decode([b(input)], options), { instanceOf: HttpError });
  return err.status;
}

// --- well-formed bodies -------------------------------------------------------------------

const good: [string, string, string][] = [
  ['single chunk', '5\r\nhello\r\n0\r\n\r\n', 'hello'],
  ['several chunks', '3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n', 'abcdef'],
  ['zero-length body', '0\r\n\r\n', ''],
  [
    'upper-case and lower-case hex',
    'A\r\n0123456789\r\nb\r\n0123456789x\r\n0\r\n\r\n',
    '01234567890123456789x',
  ],
  ['leading zeros in size', '0005\r\nhello\r\n000\r\n\r\n', 'hello'],
  // Any number of leading zeros (RFC 9112 7.1): only the significant digits can overflow.
  ['17 hex digits, 16 of them leading zeros', '00000000000000005\r\nhello\r\n0\r\n\r\n', 'hello'],
  ['leading zeros up to the 4 KiB line limit', `${'0'.repeat(4095)}5\r\nhello\r\n0\r\n\r\n`, 'hello'],
  ['a last chunk of many zeros', `5\r\nhello\r\n${'0'.repeat(300)}\r\n\r\n`, 'hello'],
  [
    'data containing CRLF and a fake last chunk',
    'c\r\nab\r\n0\r\n\r\nxyz\r\n0\r\n\r\n',
    'ab\r\n0\r\n\r\nxyz',
  ],
  ['extension without value', '5;foo\r\nhello\r\n0\r\n\r\n', 'hello'],
  ['extension with token value', '5;foo=bar\r\nhello\r\n0;last=yes\r\n\r\n', 'hello'],
  ['extension with quoted value', '5;name="a \\"q\\" ;=b"\r\nhello\r\n0\r\n\r\n', 'hello'],
  ['several extensions with BWS', '5 ; a = 1 ;b\t;c="x"\r\nhello\r\n0\r\n\r\n', 'hello'],
  ['binary data with obs-text', '3\r\n\x00\xff\r\r\n0\r\n\r\n', '\x00\xff\r'],
];

for (const [title, input, body] of good) {
  test(`chunked decodes: ${title}`, (t) => {
    const result = decode([b(input)]);
    t.is(result.body, body);
    t.deepEqual(result.consumed, [input.length]);
    t.true(result.decoder.done);
  });
}

const sample =
  '4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Sum: 9\r\n\r\n';
const sampleBody = 'Wikipedia in \r\n\r\nchunks.';

test('chunked: every two-piece split of a sample body decodes the same', (t) => {
  const input = b(sample);
  for (let i = 0; i <= input.length; i++) {
    const result = decode([input.subarray(0, i), input.subarray(i)]);
    t.is(result.body, sampleBody, `split at ${i}`);
    t.deepEqual(result.consumed, [i, input.length - i], `split at ${i}`);
    t.true(result.decoder.done);
  }
});

test('chunked: every three-piece split of a sample body decodes the same', (t) => {
  const input = b('5;a=b\r\nhello\r\n3\r\n\r\n!\r\n0\r\nT: v\r\n\r\n');
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const result = decode([input.subarray(0, i), input.subarray(i, j), input.subarray(j)]);
      t.is(result.body, 'hello\r\n!');
      t.true(result.decoder.done);
    }
  }
});

test('chunked: fed byte by byte', (t) => {
  const input = b(sample);
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i++) pieces.push(input.subarray(i, i + 1));
  const result = decode(pieces);
  t.is(result.body, sampleBody);
  t.true(result.consumed.every((n) => n === 1));
  t.true(result.decoder.done);
});

test('chunked: trailers are parsed and exposed', (t) => {
  const { decoder } = decode([b(sample)]);
  t.deepEqual(decoder.trailers, [
    { name: 'Expires', lower: 'expires', value: 'never' },
    { name: 'X-Sum', lower: 'x-sum', value: '9' },
  ]);
});

test('chunked: body ending mid-buffer returns the exact consumed count', (t) => {
  const body = '3\r\nabc\r\n0\r\n\r\n';
  const result = decode([b(`${body}GET / HTTP/1.1\r\n`)]);
  t.deepEqual(result.consumed, [body.length]);
  t.is(result.body, 'abc');
});

test('chunked: body ending mid-buffer after trailers returns the exact consumed count', (t) => {
  const body = '1\r\na\r\n0\r\nX: y\r\n\r\n';
  const result = decode([b('1\r\na\r'), b(`\n0\r\nX: y\r\n\r\nnext message`)]);
  t.deepEqual(result.consumed, [5, body.length - 5]);
  t.true(result.decoder.done);
});

test('chunked: feed after done returns 0 and emits nothing', (t) => {
  const decoder = new ChunkedDecoder();
  t.is(decoder.feed(b('0\r\n\r\n')), 5);
  t.true(decoder.done);
  let called = false;
  t.is(
    decoder.feed(b('5\r\nhello\r\n'), () => {
      called = true;
    }),
    0,
  );
  t.false(called);
});

test('chunked: onData gets views of the input, not copies', (t) => {
  const input = b('5\r\nhello\r\n0\r\n\r\n');
  const decoder = new ChunkedDecoder();
  const seen: Buffer[] = [];
  decoder.feed(input, (d) => seen.push(d));
  t.is(seen.length, 1);
  t.is(seen[0]?.buffer, input.buffer);
  t.is(seen[0]?.byteOffset, input.byteOffset + 3);
});

test('chunked: not done while incomplete, feed without onData still tracks', (t) => {
  const decoder = new ChunkedDecoder();
  t.is(decoder.feed(b('5\r\nhel')), 6);
  t.false(decoder.done);
  t.is(decoder.feed(b('lo\r\n0\r\n')), 7);
  t.false(decoder.done);
  t.is(decoder.feed(b('\r\n')), 2);
  t.true(decoder.done);
});

test('chunked: empty feed returns 0', (t) => {
  t.is(new ChunkedDecoder().feed(Buffer.alloc(0)), 0);
});

test('chunked: a large chunk size within the limit is streamed', (t) => {
  const decoder = new ChunkedDecoder();
  let total = 0;
  t.is(
    decoder.feed(b('fffffffffffff\r\nabc'), (d) => {
      total += d.length;
    }),
    18,
  );
  t.is(total, 3);
  t.false(decoder.done);
});

// --- malformed framing ---------------------------------------------------------------------

const bad: [string, string][] = [
  ['negative size -1', '-1\r\nx\r\n0\r\n\r\n'],
  ['0x prefix', '0x10\r\n0123456789abcdef\r\n0\r\n\r\n'],
  ['plus sign', '+5\r\nhello\r\n0\r\n\r\n'],
  ['leading space', ' 5\r\nhello\r\n0\r\n\r\n'],
  ['trailing space without extension', '5 \r\nhello\r\n0\r\n\r\n'],
  ['trailing tab without extension', '5\t\r\nhello\r\n0\r\n\r\n'],
  ['non-hex digit', '5g\r\nhello\r\n0\r\n\r\n'],
  ['non-hex size', 'zz\r\nhello\r\n0\r\n\r\n'],
  ['empty size line', '\r\nhello\r\n0\r\n\r\n'],
  ['bare LF after size', '5\nhello\r\n0\r\n\r\n'],
  ['bare CR inside size line', '5\r;a\r\nhello\r\n0\r\n\r\n'],
  ['bare LF after last chunk', '5\r\nhello\r\n0\n\r\n'],
  ['data followed by LF only', '5\r\nhello\n0\r\n\r\n'],
  ['data followed by CR only', '5\r\nhello\r0\r\n\r\n'],
  ['data longer than the size', '5\r\nhello!\r\n0\r\n\r\n'],
  ['extension without name', '5;\r\nhello\r\n0\r\n\r\n'],
  ['extension with empty value', '5;a=\r\nhello\r\n0\r\n\r\n'],
  ['extension with unterminated quote', '5;a="x\r\nhello\r\n0\r\n\r\n'],
  ['trailer with obs-fold', '0\r\nX: a\r\n b\r\n\r\n'],
  ['trailer without colon', '0\r\nbogus\r\n\r\n'],
  ['trailer with space before colon', '0\r\nX : a\r\n\r\n'],
  ['trailer with bare LF', '0\r\nX: a\n\r\n'],
  ['final line with bare LF', '0\r\n\n'],
];

for (const [title, input] of bad) {
  test(`chunked rejected with 400: ${title}`, (t) => {
    t.is(statusOf(t, input), 400);
  });
}

// Sizes that do not fit are refused by their value, however they are padded: a reader that kept
// fewer bits (32, 64) would see another size and read other messages in the body.
const overflowing: [string, string][] = [
  ['16 hex digits above MAX_SAFE_INTEGER', 'ffffffffffffffff'],
  ['2^64 (17 significant digits)', '10000000000000000'],
  ['2^53 (MAX_SAFE_INTEGER + 1), zero-padded', '0000000020000000000000'],
  ['2^64 + 5 behind leading zeros', '000010000000000000005'],
];

for (const [title, size] of overflowing) {
  test(`chunked rejected: ${title}`, (t) => {
    const err = t.throws(() => decode([b(`${size}\r\nhello\r\n0\r\n\r\n`)]), { instanceOf: HttpError });
    t.is(err.message, 'chunk size too large');
    t.is(err.status, 400);
  });
}

test('chunked: the largest size that fits, zero-padded, is read as itself', (t) => {
  const decoder = new ChunkedDecoder();
  t.is(decoder.feed(b('00001fffffffffffff\r\nabc')), 23);
  t.false(decoder.done);
});

test('chunked limit: leading zeros count toward the size line limit', (t) => {
  const err = t.throws(() => decode([b(`${'0'.repeat(4096)}5\r\nhello\r\n0\r\n\r\n`)]), {
    instanceOf: HttpError,
  });
  t.is(err.message, 'chunk size line too long');
});

test('chunked limit: an endless run of zeros is refused once past the limit, before any LF', (t) => {
  const decoder = new ChunkedDecoder();
  for (let i = 0; i < 4; i++) decoder.feed(b('0'.repeat(1024)));
  t.is(decoder.pendingLength, 4096);
  const err = t.throws(() => decoder.feed(b('0')), { instanceOf: HttpError });
  t.is(err.message, 'chunk size line too long');
});

test('chunked: errorStatus option makes violations 502 (response bodies)', (t) => {
  t.is(statusOf(t, 'zz\r\n', { errorStatus: 502 }), 502);
});

test('chunked limit: size line of exactly maxChunkLine is accepted, one more is 400', (t) => {
  const ext = (n: number) => `5;x=${'a'.repeat(n - 4)}`;
  t.is(decode([b(`${ext(20)}\r\nhello\r\n0\r\n\r\n`)], { maxChunkLine: 20 }).body, 'hello');
  t.is(statusOf(t, `${ext(21)}\r\nhello\r\n0\r\n\r\n`, { maxChunkLine: 20 }), 400);
});

test('chunked limit: incomplete size line beyond maxChunkLine is 400 before its end arrives', (t) => {
  const decoder = new ChunkedDecoder({ maxChunkLine: 20 });
  t.is(decoder.feed(b(`5;x=${'a'.repeat(16)}`)), 20);
  t.is(decoder.feed(b('\r')), 1);
  const err = t.throws(() => decoder.feed(b('a')), { instanceOf: HttpError });
  t.is(err.status, 400);
});

test('chunked limit: default maxChunkLine is 4096', (t) => {
  t.is(decode([b(`1;x=${'a'.repeat(4092)}\r\nz\r\n0\r\n\r\n`)]).body, 'z');
  t.is(statusOf(t, `1;x=${'a'.repeat(4093)}\r\nz\r\n0\r\n\r\n`), 400);
});

test('chunked limit: trailer section of exactly maxTrailerBytes is accepted, one more is 400', (t) => {
  // Trailer section = "X: <value>\r\n" + "\r\n".
  const trailer = (n: number) => `0\r\nX: ${'v'.repeat(n - 7)}\r\n\r\n`;
  t.true(decode([b(trailer(40))], { maxTrailerBytes: 40 }).decoder.done);
  t.is(statusOf(t, trailer(41), { maxTrailerBytes: 40 }), 400);
});

test('chunked limit: an endless trailer line is 400 before its end arrives', (t) => {
  const decoder = new ChunkedDecoder();
  decoder.feed(b('0\r\nX: '));
  const err = t.throws(() => decoder.feed(b('v'.repeat(16 * 1024))), { instanceOf: HttpError });
  t.is(err.status, 400);
});

// --- encoding -------------------------------------------------------------------------------

test('encodeChunk frames data as size-hex CRLF data CRLF', (t) => {
  t.is(encodeChunk(b('hello')).toString('latin1'), '5\r\nhello\r\n');
  t.is(encodeChunk(Buffer.alloc(26, 'x')).toString('latin1'), `1a\r\n${'x'.repeat(26)}\r\n`);
});

test('encodeChunk of empty data is empty (a zero-size chunk would end the body)', (t) => {
  t.is(encodeChunk(Buffer.alloc(0)).length, 0);
});

test('lastChunk is 0 CRLF CRLF', (t) => {
  t.is(lastChunk.toString('latin1'), '0\r\n\r\n');
});

test('encodeChunk and lastChunk round-trip through the decoder', (t) => {
  const parts = ['a', '', 'bc\r\n', 'x'.repeat(300)];
  const wire = Buffer.concat([...parts.map((p) => encodeChunk(b(p))), lastChunk]);
  const result = decode([wire]);
  t.is(result.body, parts.join(''));
  t.deepEqual(result.consumed, [wire.length]);
});

/** The size lines, data and trailer section of chunked bytes, read strictly by the test. */
function chunkedParts(wire: string): { sizes: string[]; body: string; trailers: string } {
  const sizes: string[] = [];
  let body = '';
  let at = 0;
  for (;;) {
    const lineEnd = wire.indexOf('\r\n', at);
    const size = wire.slice(at, lineEnd);
    sizes.push(size);
    const n = Number.parseInt(size, 16);
    if (n === 0) return { sizes, body, trailers: wire.slice(lineEnd + 2) };
    body += wire.slice(lineEnd + 2, lineEnd + 2 + n);
    assertCrlf(wire, lineEnd + 2 + n);
    at = lineEnd + 2 + n + 2;
  }
}
function assertCrlf(wire: string, at: number): void {
  if (wire.slice(at, at + 2) !== '\r\n') throw new Error(`no CRLF after chunk data at ${at}`);
}

test('ChunkedRelay re-frames the data in plain hex sizes, rebuilds the trailers from what keep allows', async (t) => {
  const { ChunkedRelay } = await import('../../../src/http/chunked.ts');
  const keep = (field: { lower: string }) => field.lower !== 'content-length';
  const input = Buffer.from(
    '05;ext="a;b"\r\nhello\r\n000000010\r\n, sixteen bytes!\r\n0;last\r\nContent-Length: 9\r\nX-Sum: 1\r\n\r\nNEXT',
  );
  // Every split point gives the same data, trailers and end, in sizes with no zeros or extensions.
  for (let cut = 0; cut <= input.length; cut++) {
    const relay = new ChunkedRelay({}, keep);
    const parts: Buffer[] = [];
    let used = 0;
    for (const piece of [input.subarray(0, cut), input.subarray(cut)]) {
      if (relay.done) break;
      const result = relay.relay(piece);
      used += result.used;
      parts.push(result.out);
    }
    const { sizes, body, trailers } = chunkedParts(Buffer.concat(parts).toString('latin1'));
    t.is(body, 'hello, sixteen bytes!', `cut at ${cut}`);
    t.is(trailers, 'X-Sum: 1\r\n\r\n');
    for (const size of sizes) t.regex(size, /^(0|[1-9a-f][0-9a-f]*)$/, `cut at ${cut}`);
    t.is(used, input.length - 'NEXT'.length);
  }
});

test('ChunkedRelay: a size line read as 32 bits by a backend cannot hide a request in the body', async (t) => {
  const { ChunkedRelay } = await import('../../../src/http/chunked.ts');
  const relay = new ChunkedRelay({}, () => true);
  // 2^32 + 5: a parser that keeps 32 bits of it would read 5, then a request.
  const data = 'hello\r\nGET /smuggled HTTP/1.1\r\n\r\n';
  const { out } = relay.relay(Buffer.from(`0000000100000005\r\n${data}`));
  // Forwarded as what it is to Sluice: data of the one chunk, sized as it arrived.
  t.is(out.toString('latin1'), `${data.length.toString(16)}\r\n${data}\r\n`);
  t.false(relay.done);
});

test('ChunkedRelay forwards nothing of a size line until it is known to be valid', async (t) => {
  const { ChunkedRelay } = await import('../../../src/http/chunked.ts');
  const relay = new ChunkedRelay({}, () => true);
  t.is(relay.relay(Buffer.from('5\r\nhello\r\nGET /k HTTP/1')).out.toString(), '5\r\nhello\r\n');
  t.throws(() => relay.relay(Buffer.from('.1\r\n')), { message: 'invalid chunk size' });
});
