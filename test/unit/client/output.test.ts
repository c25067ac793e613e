import test from 'ava';
import {
  contentDispositionFilename,
  decideOutput,
  isTextType,
  looksBinary,
  numberedName,
  type OutputInputs,
  parseMediaType,
  pickFilename,
  sanitizeFilename,
  textEncoding,
  traceLines,
  urlFilename,
} from '../../../src/client/output.ts';

const url = new URL('http://a.test/images/sluice.png');

function decide(partial: Partial<OutputInputs>) {
  return decideOutput({
    contentType: undefined,
    contentDisposition: undefined,
    url,
    output: undefined,
    remoteName: false,
    stdoutIsTTY: true,
    sample: Buffer.from('hello\n'),
    ...partial,
  });
}

test('parseMediaType', (t) => {
  t.deepEqual(parseMediaType('text/html; charset=UTF-8'), { type: 'text/html', charset: 'utf-8' });
  t.deepEqual(parseMediaType('Text/Plain;Charset="ISO-8859-1"'), {
    type: 'text/plain',
    charset: 'iso-8859-1',
  });
  t.deepEqual(parseMediaType('application/json'), { type: 'application/json', charset: undefined });
  t.deepEqual(parseMediaType('text/plain; format=flowed; charset=utf-16le'), {
    type: 'text/plain',
    charset: 'utf-16le',
  });
  t.deepEqual(parseMediaType(undefined), { type: '', charset: undefined });
});

test('text types: text/*, JSON, XML, JavaScript and their +suffixes', (t) => {
  for (const type of [
    'text/html',
    'text/plain',
    'text/css',
    'text/csv',
    'application/json',
    'application/problem+json',
    'application/ld+json',
    'application/xml',
    'application/atom+xml',
    'image/svg+xml',
    'application/javascript',
    'application/x-ndjson',
  ]) {
    t.true(isTextType(type), type);
  }
  for (const type of [
    'image/png',
    'image/jpeg',
    'application/pdf',
    'application/octet-stream',
    'application/zip',
    'audio/mpeg',
    'video/mp4',
    'application/gzip',
    'font/woff2',
  ]) {
    t.false(isTextType(type), type);
  }
});

test('looksBinary sniffs NUL bytes and control characters', (t) => {
  t.false(looksBinary(Buffer.from('plain text\r\n\twith tabs and \x1b[1mcolour\x1b[0m')));
  t.false(looksBinary(Buffer.from('héllo wörld', 'utf8')));
  t.false(looksBinary(Buffer.alloc(0)));
  t.true(looksBinary(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d])));
  t.true(looksBinary(Buffer.from([1, 2, 3, 4, 5, 6, 0x41])));
});

test('textEncoding: utf-8 by default; latin1 and utf-16 via TextDecoder; unknown is undefined', (t) => {
  t.is(textEncoding(undefined), 'utf-8');
  t.is(textEncoding('utf8'), 'utf-8');
  t.is(textEncoding('us-ascii'), 'utf-8');
  t.is(textEncoding('iso-8859-1'), 'windows-1252');
  t.is(textEncoding('latin1'), 'windows-1252');
  t.is(textEncoding('utf-16le'), 'utf-16le');
  t.is(textEncoding('UTF-16BE'), 'utf-16be');
  t.is(textEncoding('x-klingon'), undefined);
});

test('decideOutput: text is printed, binary saved, -o and -O win', (t) => {
  t.deepEqual(decide({ contentType: 'text/html; charset=utf-8' }), { kind: 'text', encoding: 'utf-8' });
  t.deepEqual(decide({ contentType: 'text/plain; charset=latin1' }), {
    kind: 'text',
    encoding: 'windows-1252',
  });
  t.deepEqual(decide({ contentType: 'application/json' }), { kind: 'text', encoding: 'utf-8' });
  t.deepEqual(decide({ contentType: 'image/png' }), { kind: 'file', name: 'sluice.png', overwrite: false });
  t.deepEqual(
    decide({ contentType: 'application/pdf', contentDisposition: 'attachment; filename="Guide.pdf"' }),
    {
      kind: 'file',
      name: 'Guide.pdf',
      overwrite: false,
    },
  );
  // -o - prints even binary; -o FILE overwrites; -O saves even text under a free name.
  t.deepEqual(decide({ contentType: 'image/png', output: '-' }), { kind: 'stdout' });
  t.deepEqual(decide({ contentType: 'image/png', output: 'x.png' }), {
    kind: 'file',
    name: 'x.png',
    overwrite: true,
  });
  t.deepEqual(decide({ contentType: 'text/html', remoteName: true }), {
    kind: 'file',
    name: 'sluice.png',
    overwrite: false,
  });
  // Compressed text is binary: saved, not printed.
  t.deepEqual(decide({ contentType: 'text/html', contentEncoding: 'gzip' }), {
    kind: 'file',
    name: 'sluice.png',
    overwrite: false,
  });
  t.deepEqual(decide({ contentType: 'text/html', contentEncoding: 'identity' }), {
    kind: 'text',
    encoding: 'utf-8',
  });
  // No Content-Type: sniff the first bytes.
  t.deepEqual(decide({}), { kind: 'text', encoding: 'utf-8' });
  t.deepEqual(decide({ sample: Buffer.from([0x25, 0x50, 0x44, 0x46, 0, 1, 2]) }), {
    kind: 'file',
    name: 'sluice.png',
    overwrite: false,
  });
});

test('Content-Disposition forms', (t) => {
  t.is(contentDispositionFilename('attachment; filename="report.pdf"'), 'report.pdf');
  t.is(contentDispositionFilename('attachment; filename=report.pdf'), 'report.pdf');
  t.is(contentDispositionFilename('attachment;filename="a \\"quoted\\" name.txt"'), 'a "quoted" name.txt');
  t.is(contentDispositionFilename('attachment; filename="semi;colon.txt"; size=3'), 'semi;colon.txt');
  t.is(contentDispositionFilename('inline; FILENAME="Up.txt"'), 'Up.txt');
  // filename* (RFC 8187) wins over filename, wherever it stands.
  t.is(
    contentDispositionFilename(
      `attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf; filename="EUR rates.pdf"`,
    ),
    '€ rates.pdf',
  );
  t.is(
    contentDispositionFilename(`attachment; filename="fallback.txt"; filename*=utf-8''na%C3%AFve.txt`),
    'naïve.txt',
  );
  t.is(contentDispositionFilename(`attachment; filename*=iso-8859-1'en'%A3%20rates.txt`), '£ rates.txt');
  // A broken filename* falls back to filename.
  t.is(contentDispositionFilename(`attachment; filename*=bogus; filename="ok.txt"`), 'ok.txt');
  t.is(contentDispositionFilename('attachment'), undefined);
  t.is(contentDispositionFilename(undefined), undefined);
});

test('file names are sanitized: no directories, no hidden files, no control characters', (t) => {
  t.is(sanitizeFilename('../../etc/passwd'), 'passwd');
  t.is(sanitizeFilename('C:\\Windows\\evil.exe'), 'evil.exe');
  t.is(sanitizeFilename('.bashrc'), 'bashrc');
  t.is(sanitizeFilename('a\x00b\x1b[2Jc.txt'), 'ab[2Jc.txt');
  t.is(sanitizeFilename('..'), undefined);
  t.is(sanitizeFilename('dir/'), undefined);
  t.is(sanitizeFilename('x'.repeat(300)), undefined);
});

test('pickFilename: Content-Disposition, else the URL, else index.bin', (t) => {
  t.is(pickFilename('attachment; filename="../secret.txt"', url), 'secret.txt');
  t.is(pickFilename(`attachment; filename*=UTF-8''caf%C3%A9.pdf`, url), 'café.pdf');
  t.is(pickFilename(undefined, url), 'sluice.png');
  t.is(pickFilename('attachment; filename=".."', url), 'sluice.png');
  t.is(pickFilename(undefined, new URL('http://a.test/docs/my%20file.pdf?download=1')), 'my file.pdf');
  t.is(pickFilename(undefined, new URL('http://a.test/')), 'index.bin');
  t.is(pickFilename(undefined, new URL('http://a.test/dir/')), 'index.bin');
  t.is(urlFilename(new URL('http://a.test/%E0%A4%A')), '%E0%A4%A');
});

test('numberedName', (t) => {
  t.deepEqual(
    [0, 1, 2].map((n) => numberedName('sluice.png', n)),
    ['sluice.png', 'sluice.png.1', 'sluice.png.2'],
  );
});

test('traceLines: every line prefixed, the empty line as "> "', (t) => {
  t.is(
    traceLines(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), '> ', 'utf8'),
    '> GET / HTTP/1.1\n> Host: a\n> \n',
  );
  t.is(traceLines(Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'), '< '), '< HTTP/1.1 100 Continue\n< \n');
  t.is(traceLines(Buffer.from('HTTP/1.0 200 OK\nA: b\n\n'), '< '), '< HTTP/1.0 200 OK\n< A: b\n< \n');
});
