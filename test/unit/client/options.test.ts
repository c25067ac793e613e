import test from 'ava';
import { ClientError } from '../../../src/client/errors.ts';
import {
  type ClientOptions,
  parseClientArgs,
  parseHeader,
  parseHostPort,
  parseUrl,
  usage,
} from '../../../src/client/options.ts';

function options(args: string[]): ClientOptions {
  const parsed = parseClientArgs(args);
  if (parsed.help) throw new Error('help');
  return parsed.options;
}

function usageError(t: import('ava').ExecutionContext, args: string[], message: RegExp): void {
  const error = t.throws(() => parseClientArgs(args), { instanceOf: ClientError });
  t.is(error?.exitCode, 2);
  t.regex(error?.message ?? '', message);
}

test('defaults', (t) => {
  const o = options(['http://127.0.0.1:8080/']);
  t.is(o.method, 'GET');
  t.is(o.url.href, 'http://127.0.0.1:8080/');
  t.deepEqual(o.headers, []);
  t.is(o.body, undefined);
  t.is(o.output, undefined);
  t.false(o.remoteName || o.include || o.verbose || o.silent || o.followRedirects);
  t.is(o.maxTimeMs, undefined);
  t.is(o.connectTimeoutMs, 10_000);
  t.is(o.maxRedirects, 10);
  t.is(o.repeat, undefined);
  t.is(o.connectTo, undefined);
});

test('every option', (t) => {
  const o = options([
    '-X',
    'PUT',
    '-H',
    'X-A: 1',
    '--data-binary',
    '@file.bin',
    '-o',
    'out.bin',
    '--output-dir',
    'dl',
    '-i',
    '-v',
    '-s',
    '--max-time',
    '1.5',
    '--connect-timeout',
    '0.25',
    '--connect',
    '127.0.0.1:8080',
    '-L',
    '--max-redirs',
    '3',
    'site.test/x',
  ]);
  t.is(o.method, 'PUT');
  t.deepEqual(o.headers, [{ name: 'X-A', value: '1' }]);
  t.deepEqual(o.body, { kind: 'file', path: 'file.bin' });
  t.is(o.output, 'out.bin');
  t.is(o.outputDir, 'dl');
  t.true(o.include && o.verbose && o.silent && o.followRedirects);
  t.is(o.maxTimeMs, 1500);
  t.is(o.connectTimeoutMs, 250);
  t.deepEqual(o.connectTo, { host: '127.0.0.1', port: 8080 });
  t.is(o.maxRedirects, 3);
  t.is(o.url.href, 'http://site.test/x');
});

test('bodies: a string, @file, @- (stdin); a body implies POST', (t) => {
  const s = options(['-d', 'a=1', 'http://a/']);
  t.is(s.method, 'POST');
  t.deepEqual(s.body, { kind: 'bytes', bytes: Buffer.from('a=1') });
  t.deepEqual(options(['-d', '@-', 'http://a/']).body, { kind: 'stdin' });
  t.deepEqual(options(['-d', '@dir/f.json', 'http://a/']).body, { kind: 'file', path: 'dir/f.json' });
  t.is(options(['-X', 'PATCH', '-d', 'x', 'http://a/']).method, 'PATCH');
});

test('-o - means stdout; -O; --repeat; --help', (t) => {
  t.is(options(['-o', '-', 'http://a/']).output, '-');
  t.true(options(['-O', 'http://a/f.png']).remoteName);
  t.is(options(['--repeat', '6', 'http://a/']).repeat, 6);
  t.deepEqual(parseClientArgs(['--help']), { help: true });
  t.deepEqual(parseClientArgs(['-h', 'http://a/']), { help: true });
  t.regex(usage, /Exit codes:\n\s+0 /);
  t.regex(usage, /\n\s+28 {2}timed out/);
});

test('usage errors (exit 2) say what is wrong', (t) => {
  usageError(t, [], /no URL given/);
  usageError(t, ['http://a/', 'http://b/'], /one URL only/);
  usageError(t, ['--bogus', 'http://a/'], /Unknown option '--bogus'/);
  usageError(t, ['http://a/', '-X'], /argument missing/);
  usageError(t, ['https://example.test/'], /https:\/\/ is not supported/);
  usageError(t, ['ftp://example.test/'], /unsupported scheme "ftp:\/\/"/);
  usageError(t, ['http://'], /invalid URL|no host/);
  usageError(t, ['-X', 'GE T', 'http://a/'], /invalid method/);
  usageError(t, ['-I', '-X', 'GET', 'http://a/'], /disagree/);
  usageError(t, ['-I', '-d', 'x', 'http://a/'], /HEAD request cannot carry a body/);
  usageError(t, ['-d', 'a', '--data-binary', 'b', 'http://a/'], /give the body once/);
  usageError(t, ['-d', '@', 'http://a/'], /needs a file name/);
  usageError(t, ['-o', 'x', '-O', 'http://a/'], /not both/);
  usageError(t, ['--max-time', 'soon', 'http://a/'], /--max-time expects a number of seconds/);
  usageError(t, ['--max-time', '0', 'http://a/'], /--max-time expects/);
  usageError(t, ['--connect-timeout', '-1', 'http://a/'], /--connect-timeout/);
  usageError(t, ['--connect', 'localhost', 'http://a/'], /--connect expects HOST:PORT/);
  usageError(t, ['--connect', '127.0.0.1:70000', 'http://a/'], /--connect expects HOST:PORT/);
  usageError(t, ['--repeat', '0', 'http://a/'], /--repeat expects a whole number/);
  usageError(t, ['--repeat', '2', '-O', 'http://a/'], /cannot go with -O/);
  usageError(t, ['--max-redirs', 'x', 'http://a/'], /--max-redirs/);
  usageError(t, ['-H', 'NoColon', 'http://a/'], /has no colon/);
  usageError(t, ['-H', 'Bad Name: x', 'http://a/'], /invalid header name/);
  usageError(t, ['-H', 'X-A: a\r\nX-Smuggled: 1', 'http://a/'], /contains a control character/);
  usageError(t, ['-H', 'X-A: a\x1b[2J\x0b', 'http://a/'], /contains a control character/);
  usageError(t, ['http://h/a\r\nEvil: 1'], /control character in URL/);
  usageError(t, ['http://h/a\tb'], /control character in URL/);
  usageError(t, ['http://a%zz:b@h/'], /invalid percent-encoding in the user name or password/);
});

test('a timeout beyond the longest Node timer is a usage error, not a timeout at once', (t) => {
  const beyond = (option: string) =>
    new RegExp(
      `^${option} expects a number of seconds above 0 and at most 2147483\\.647 \\(about 24\\.8 days\\), got "`,
    );
  usageError(t, ['-m', '2147484', 'http://a/'], beyond('--max-time'));
  usageError(t, ['--connect-timeout', '1e12', 'http://a/'], beyond('--connect-timeout'));
  t.is(options(['-m', '2147483.647', 'http://a/']).maxTimeMs, 2_147_483_647);
});

test('-H Content-Length or Transfer-Encoding is a usage error: the client frames the body', (t) => {
  for (const header of [
    'Transfer-Encoding: chunked',
    'Content-Length: 2',
    'content-length:',
    'Content-Length;',
  ]) {
    const name = header.split(/[:;]/)[0];
    usageError(
      t,
      ['-H', header, '-d', 'hello', 'http://a/'],
      new RegExp(`^-H ${name}: the client frames the body itself \\(Content-Length of the -d body\\)$`),
    );
  }
});

test('parseHeader', (t) => {
  t.deepEqual(parseHeader('X-A:  spaced value \t'), { name: 'X-A', value: 'spaced value' });
  t.deepEqual(parseHeader('Accept:'), { name: 'Accept', value: undefined });
  t.deepEqual(parseHeader('X-Empty;'), { name: 'X-Empty', value: '' });
  t.deepEqual(parseHeader('X-Url: http://a/b;c'), { name: 'X-Url', value: 'http://a/b;c' });
});

test('parseHostPort', (t) => {
  t.deepEqual(parseHostPort('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  t.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  t.deepEqual(parseHostPort('lb.internal:9'), { host: 'lb.internal', port: 9 });
  t.throws(() => parseHostPort('::1:80'));
  t.throws(() => parseHostPort('a:0'));
});

test('parseUrl: no scheme means http://', (t) => {
  t.is(parseUrl('127.0.0.1:8080/x').href, 'http://127.0.0.1:8080/x');
  t.is(parseUrl('HTTP://A.test').href, 'http://a.test/');
  t.is(parseUrl('localhost').href, 'http://localhost/');
});
