import test from 'ava';
import { parseClientArgs } from '../../../src/client/options.ts';
import { buildRequestHead, type RequestSpec, requestTarget } from '../../../src/client/request.ts';

/** The request head that `sluice client ARGS` sends first. */
function headFor(args: string[], bodyLength?: number, keepAlive = false): string {
  const parsed = parseClientArgs(args);
  if (parsed.help) throw new Error('help');
  const { options } = parsed;
  const spec: RequestSpec = {
    method: options.method,
    url: options.url,
    headers: options.headers,
    bodyLength: bodyLength ?? (options.body?.kind === 'bytes' ? options.body.bytes.length : undefined),
    keepAlive,
  };
  return buildRequestHead(spec).toString('utf8');
}

test('GET: request line, Host, User-Agent, Accept, Connection: close', (t) => {
  t.is(
    headFor(['http://127.0.0.1:8080/a/b?x=1&y=2#frag']),
    'GET /a/b?x=1&y=2 HTTP/1.1\r\n' +
      'Host: 127.0.0.1:8080\r\n' +
      'User-Agent: sluice-client/0.1\r\n' +
      'Accept: */*\r\n' +
      'Connection: close\r\n\r\n',
  );
});

test('Host leaves out port 80; an empty path is /', (t) => {
  t.is(
    headFor(['http://example.test:80']),
    'GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: sluice-client/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  );
  t.regex(headFor(['example.test:8081/x']), /^GET \/x HTTP\/1\.1\r\nHost: example\.test:8081\r\n/);
  t.regex(headFor(['http://[::1]:9000/']), /\r\nHost: \[::1\]:9000\r\n/);
});

test('the target keeps percent-encoding and encodes spaces', (t) => {
  t.regex(
    headFor(['http://a.test/dir/a%2Fb c.txt?q=a b']),
    /^GET \/dir\/a%2Fb%20c\.txt\?q=a%20b HTTP\/1\.1\r\n/,
  );
});

test('HEAD', (t) => {
  t.is(
    headFor(['-I', 'http://a.test/']),
    'HEAD / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: sluice-client/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  );
  t.true(headFor(['-X', 'HEAD', 'http://a.test/']).startsWith('HEAD / HTTP/1.1\r\n'));
});

test('POST with -d: POST implied, Content-Type and Content-Length of the body', (t) => {
  t.is(
    headFor(['-d', 'name=sluice&x=é', 'http://a.test/form']),
    'POST /form HTTP/1.1\r\n' +
      'Host: a.test\r\n' +
      'User-Agent: sluice-client/0.1\r\n' +
      'Accept: */*\r\n' +
      'Content-Type: application/x-www-form-urlencoded\r\n' +
      'Content-Length: 16\r\n' +
      'Connection: close\r\n\r\n',
  );
});

test('POST or PUT without a body sends Content-Length: 0; GET does not', (t) => {
  t.true(headFor(['-X', 'POST', 'http://a.test/']).includes('\r\nContent-Length: 0\r\n'));
  t.true(headFor(['-X', 'PUT', 'http://a.test/']).includes('\r\nContent-Length: 0\r\n'));
  t.false(headFor(['-X', 'DELETE', 'http://a.test/']).includes('Content-Length'));
});

test('PUT of a file: the length comes from the file', (t) => {
  t.is(
    headFor(['-X', 'PUT', '--data-binary', '@x.bin', 'http://a.test/upload/x'], 1234),
    'PUT /upload/x HTTP/1.1\r\n' +
      'Host: a.test\r\n' +
      'User-Agent: sluice-client/0.1\r\n' +
      'Accept: */*\r\n' +
      'Content-Type: application/x-www-form-urlencoded\r\n' +
      'Content-Length: 1234\r\n' +
      'Connection: close\r\n\r\n',
  );
});

test('-H replaces a default in place, removes one with "Name:", adds new ones at the end', (t) => {
  t.is(
    headFor([
      '-H',
      'user-agent: probe/2',
      '-H',
      'Accept:',
      '-H',
      'X-Trace: 1',
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      'X-Empty;',
      '-d',
      'abc',
      'http://a.test/',
    ]),
    'POST / HTTP/1.1\r\n' +
      'Host: a.test\r\n' +
      'user-agent: probe/2\r\n' +
      'Content-Type: application/octet-stream\r\n' +
      'Content-Length: 3\r\n' +
      'Connection: close\r\n' +
      'X-Trace: 1\r\n' +
      'X-Empty: \r\n\r\n',
  );
});

test('-H Host overrides the Host from the URL', (t) => {
  t.is(
    headFor(['-H', 'Host: api.example.test', 'http://127.0.0.1:8080/v1/users']),
    'GET /v1/users HTTP/1.1\r\nHost: api.example.test\r\nUser-Agent: sluice-client/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n',
  );
});

test('--connect does not change the bytes: Host and target still come from the URL', (t) => {
  const plain = headFor(['http://api.example.test/v1/users']);
  t.is(headFor(['--connect', '127.0.0.1:8080', 'http://api.example.test/v1/users']), plain);
  t.true(plain.startsWith('GET /v1/users HTTP/1.1\r\nHost: api.example.test\r\n'));
});

test('keep-alive for --repeat', (t) => {
  t.true(
    headFor(['--repeat', '3', 'http://a.test/'], undefined, true).endsWith(
      '\r\nConnection: keep-alive\r\n\r\n',
    ),
  );
});

test('user info in the URL becomes Basic credentials', (t) => {
  t.regex(headFor(['http://al%20ice:s3cret@a.test/']), /\r\nAuthorization: Basic YWwgaWNlOnMzY3JldA==\r\n/);
});

test('requestTarget', (t) => {
  t.is(requestTarget(new URL('http://a/')), '/');
  t.is(requestTarget(new URL('http://a/?')), '/');
  t.is(requestTarget(new URL('http://a/p?q')), '/p?q');
});
