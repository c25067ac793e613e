import test from 'ava';
import { ClientError } from '../../../src/client/errors.ts';
import { type ResponseEvent, ResponseParser } from '../../../src/client/response-reader.ts';

interface Collected {
  interim: number[];
  status: number | undefined;
  framing: string | undefined;
  body: string;
  ended: boolean;
  trailers: string[];
  rest: string;
}

function collect(events: ResponseEvent[], into: Collected): void {
  for (const event of events) {
    if (event.type === 'interim') into.interim.push(event.head.status);
    else if (event.type === 'head') {
      into.status = event.head.status;
      into.framing = event.framing.kind;
    } else if (event.type === 'data') into.body += event.chunk.toString('latin1');
    else {
      into.ended = true;
      into.trailers = event.trailers.map((f) => `${f.name}: ${f.value}`);
      into.rest = event.rest.toString('latin1');
    }
  }
}

/** Feeds `wire` in pieces of `step` bytes (then EOF if `eof`). */
function parse(
  wire: string,
  options: { method?: string; step?: number; eof?: boolean; upgradeAsked?: boolean } = {},
): Collected {
  const parser = new ResponseParser(options.method ?? 'GET', { upgradeAsked: options.upgradeAsked });
  const out: Collected = {
    interim: [],
    status: undefined,
    framing: undefined,
    body: '',
    ended: false,
    trailers: [],
    rest: '',
  };
  const bytes = Buffer.from(wire, 'latin1');
  const step = options.step ?? bytes.length;
  for (let i = 0; i < bytes.length && !parser.done; i += step) {
    collect(parser.feed(bytes.subarray(i, i + step)), out);
  }
  if (options.eof) collect(parser.finish(), out);
  return out;
}

/** Every split size from 1 byte to the whole message gives the same result. */
function everySplit(
  t: import('ava').ExecutionContext,
  wire: string,
  expected: Partial<Collected>,
  method?: string,
) {
  for (let step = 1; step <= wire.length; step++) {
    const got = parse(wire, { step, method });
    for (const [key, value] of Object.entries(expected)) {
      t.deepEqual(got[key as keyof Collected], value, `step ${step}: ${key}`);
    }
  }
}

test('Content-Length body, with the next bytes handed back', (t) => {
  everySplit(t, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', {
    status: 200,
    framing: 'length',
    body: 'hello',
    ended: true,
  });
  const got = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n');
  t.is(got.body, 'ok');
  t.is(got.rest, 'HTTP/1.1 204 No Content\r\n\r\n');
});

test('chunked body with extensions and trailers', (t) => {
  everySplit(
    t,
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 9\r\n\r\n',
    { framing: 'chunked', body: 'hello world', ended: true, trailers: ['X-Sum: 9'], rest: '' },
  );
});

test('read-until-close body ends at EOF', (t) => {
  const got = parse('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end', {
    step: 4,
    eof: true,
  });
  t.is(got.framing, 'close');
  t.is(got.body, 'until the end');
  t.true(got.ended);
  const early = parse('HTTP/1.1 200 OK\r\n\r\nabc', { step: 2 });
  t.false(early.ended);
});

test('HTTP/1.0 response, bare LF line endings', (t) => {
  const got = parse('HTTP/1.0 200 OK\nContent-Length: 3\n\nabc');
  t.is(got.status, 200);
  t.is(got.body, 'abc');
});

test('1xx interim responses are skipped (and reported), then the final one is read', (t) => {
  everySplit(
    t,
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    { interim: [100, 103], status: 201, body: 'ok', ended: true },
  );
});

test('HEAD: no body even with Content-Length; 204 and 304 neither', (t) => {
  const head = parse('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n', { method: 'HEAD' });
  t.is(head.framing, 'none');
  t.true(head.ended);
  t.is(head.body, '');
  t.true(parse('HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n').ended);
  t.true(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').ended);
  t.true(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').ended);
});

test('101 Switching Protocols to a request with Upgrade is final: no body read', (t) => {
  const got = parse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', {
    upgradeAsked: true,
  });
  t.is(got.status, 101);
  t.true(got.ended);
  t.is(got.rest, '\x81\x05hello');
});

function fails(wire: string, exitCode: number, message: RegExp, eof = false) {
  return (t: import('ava').ExecutionContext) => {
    const error = t.throws(() => parse(wire, { eof }), { instanceOf: ClientError });
    t.is(error?.exitCode, exitCode);
    t.regex(error?.message ?? '', message);
  };
}

test(
  'not HTTP at all fails at once (exit 8)',
  fails(
    'SSH-2.0-OpenSSH_9.6\r\n',
    8,
    /not an HTTP\/1\.x response \(it starts with "SSH-2\.0-OpenSSH_9\.6\.\."\)/,
  ),
);
test(
  'a 101 to a request without Upgrade (exit 8)',
  fails(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello',
    8,
    /^malformed response: 101 Switching Protocols, but the request asked for no upgrade$/,
  ),
);
test('a malformed status line (exit 8)', fails('HTTP/1.1 2000 OK\r\n\r\n', 8, /malformed status line/));
test('HTTP/2 preface bytes (exit 8)', fails('HTTP/2 200\r\n\r\n', 8, /malformed status line/));
test(
  'conflicting Content-Length (exit 8)',
  fails('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 8, /conflicting Content-Length/),
);
test(
  'a bad chunk size (exit 8)',
  fails('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 8, /invalid chunk size/),
);
test('nothing at all before the close: empty reply (exit 52)', fails('', 52, /empty reply/, true));
test(
  'a head cut short (exit 8)',
  fails('HTTP/1.1 200 OK\r\nContent-', 8, /in the middle of the response head/, true),
);
test(
  'a body cut short (exit 18)',
  fails('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 18, /closed after 3 of 10 body bytes/, true),
);
test(
  'a chunked body cut short (exit 18)',
  fails('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 18, /before the last chunk/, true),
);

test('an oversized head is malformed', (t) => {
  const parser = new ResponseParser('GET', { maxHead: 64 });
  const error = t.throws(() => parser.feed(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(100)}\r\n\r\n`)), {
    instanceOf: ClientError,
  });
  t.is(error?.exitCode, 8);
});
