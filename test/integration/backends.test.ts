// The nginx backends themselves (test/support/nginx.ts), checked directly without Sluice:
// what every other integration test takes for granted about them.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import {
  accessLog,
  type NginxBackend,
  ssiInertBytes,
  startNginxBackends,
  stopNginxBackends,
} from '../support/nginx.ts';

const web = (path: string) => readFile(new URL(`../../web/${path}`, import.meta.url));

let backends: NginxBackend[] = [];

test.before(async () => {
  backends = await startNginxBackends(3);
});

test.after.always(async () => {
  await stopNginxBackends(backends);
});

const first = (): NginxBackend => {
  const b = backends[0];
  if (!b) throw new Error('no backend started');
  return b;
};

interface RawResponse {
  head: string;
  headers: Map<string, string[]>;
  body: Buffer;
}

/**
 * Sends `request` as is on a new connection and reads until the backend closes it. The request
 * must ask for the close: half-closing our side instead would make nginx abort a long response.
 */
function rawExchange(b: NginxBackend, request: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(b.port, b.host, () => socket.write(request));
    socket.setTimeout(5_000, () => socket.destroy(new Error('raw exchange timed out')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`no end of head in ${JSON.stringify(all.toString())}`));
      const head = all.subarray(0, split).toString('latin1');
      const headers = new Map<string, string[]>();
      for (const line of head.split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
      }
      resolve({ head, headers, body: all.subarray(split + 4) });
    });
  });
}

/** Decodes a chunked body strictly; returns the payload and how many data chunks it had. */
function decodeChunked(body: Buffer): { data: Buffer; chunks: number } {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', offset);
    if (eol < 0) throw new Error('chunk size line without CRLF');
    const sizeText = body.subarray(offset, eol).toString('latin1').split(';')[0] ?? '';
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size ${JSON.stringify(sizeText)}`);
    const size = Number.parseInt(sizeText, 16);
    offset = eol + 2;
    if (size === 0) {
      if (body.subarray(offset).toString('latin1') !== '\r\n') throw new Error('bad chunked trailer');
      return { data: Buffer.concat(parts), chunks: parts.length };
    }
    parts.push(body.subarray(offset, offset + size));
    offset += size;
    if (body.subarray(offset, offset + 2).toString('latin1') !== '\r\n')
      throw new Error('chunk without CRLF');
    offset += 2;
  }
}

function get(
  b: NginxBackend,
  path: string,
  options: { agent?: http.Agent; headers?: http.OutgoingHttpHeaders; timeoutMs?: number } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: b.host, port: b.port, path, agent: options.agent ?? false, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 5_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

test('three backends, each serving the demo page with its own X-Backend', async (t) => {
  t.is(backends.length, 3);
  const index = await web('index.html');
  for (const [i, b] of backends.entries()) {
    t.is(b.name, `nginx-${i + 1}`);
    // 127.0.0.1 on a plain host; the bridge gateway when the tests themselves run in a container.
    t.is(net.isIP(b.host), 4, b.host);
    t.is(b.address, `${b.host}:${b.port}`);
    const res = await fetch(b.url('/'));
    t.is(res.status, 200);
    t.is(res.headers.get('x-backend'), b.name);
    t.regex(res.headers.get('content-type') ?? '', /^text\/html/);
    const body = Buffer.from(await res.arrayBuffer());
    t.true(body.equals(index));
    t.regex(body.toString(), /<title>Sluice demo<\/title>/);
  }
  t.is(new Set(backends.map((b) => b.port)).size, 3);
});

test('X-Backend is on error responses too', async (t) => {
  const res = await fetch(first().url('/no/such/page'));
  t.is(res.status, 404);
  t.is(res.headers.get('x-backend'), 'nginx-1');
});

test('PUT to /upload/ stores the bytes and GET returns them identical', async (t) => {
  await Promise.all(
    backends.map(async (b) => {
      const data = randomBytes(1024 * 1024);
      const url = b.url('/upload/x.bin');
      const put = await fetch(url, { method: 'PUT', body: data });
      t.is(put.status, 201, `${b.name} PUT`);
      await put.arrayBuffer();
      const got = await fetch(url);
      t.is(got.status, 200);
      t.is(got.headers.get('content-length'), String(data.length));
      t.true(Buffer.from(await got.arrayBuffer()).equals(data), `${b.name} bytes differ`);

      const replaced = await fetch(url, { method: 'PUT', body: 'second' });
      t.is(replaced.status, 204);
      t.is(await (await fetch(url)).text(), 'second');

      const nested = await fetch(b.url('/upload/a/b/c.txt'), { method: 'PUT', body: 'deep' });
      t.is(nested.status, 201);
      t.is(await (await fetch(b.url('/upload/a/b/c.txt'))).text(), 'deep');

      const del = await fetch(url, { method: 'DELETE' });
      t.is(del.status, 204);
      t.is((await fetch(url)).status, 404);
    }),
  );
});

test('/chunked is really sent with Transfer-Encoding: chunked', async (t) => {
  const expected = await web('1k.txt');
  const b = first();
  const res = await rawExchange(
    b,
    `GET /chunked HTTP/1.1\r\nHost: ${b.address}\r\nConnection: close\r\n\r\n`,
  );
  t.regex(res.head, /^HTTP\/1\.1 200 OK\r\n/);
  t.deepEqual(res.headers.get('transfer-encoding'), ['chunked']);
  t.false(res.headers.has('content-length'));
  t.deepEqual(res.headers.get('content-type'), ['text/plain']);
  const { data, chunks } = decodeChunked(res.body);
  t.true(chunks >= 1);
  t.true(data.equals(expected));

  // Any file of the site, or an uploaded one, can be had chunked too.
  // Bytes as they are, once SSI has nothing to act on (ssiInertBytes); a trailing `<` it drops.
  const big = ssiInertBytes(300 * 1024);
  t.is((await fetch(b.url('/upload/big.bin'), { method: 'PUT', body: big })).status, 201);
  const up = await rawExchange(
    b,
    `GET /chunked/upload/big.bin HTTP/1.1\r\nHost: ${b.address}\r\nConnection: close\r\n\r\n`,
  );
  t.deepEqual(up.headers.get('transfer-encoding'), ['chunked']);
  const decoded = decodeChunked(up.body);
  t.true(decoded.data.equals(big));
  t.true(decoded.chunks > 1, `expected several chunks, got ${decoded.chunks}`);
  const lessThan = Buffer.from('text <');
  t.is((await fetch(b.url('/upload/lt.txt'), { method: 'PUT', body: lessThan })).status, 201);
  const cut = await rawExchange(
    b,
    `GET /chunked/upload/lt.txt HTTP/1.1\r\nHost: ${b.address}\r\nConnection: close\r\n\r\n`,
  );
  t.is(decodeChunked(cut.body).data.toString(), 'text ');

  // An HTTP/1.0 client gets the same bytes without chunking (nginx closes instead).
  const old = await rawExchange(b, 'GET /chunked HTTP/1.0\r\n\r\n');
  t.false(old.headers.has('transfer-encoding'));
  t.true(old.body.equals(expected));
});

test('the PNG, the PDF, the CSS and 1k.txt are served with the right types and bytes', async (t) => {
  const cases = [
    ['images/sluice.png', 'image/png'],
    ['docs/sluice.pdf', 'application/pdf'],
    ['style.css', 'text/css'],
    ['1k.txt', 'text/plain'],
  ] as const;
  for (const b of backends) {
    for (const [path, type] of cases) {
      const res = await fetch(b.url(`/${path}`));
      t.is(res.status, 200, path);
      t.is(res.headers.get('content-type'), type, path);
      t.true(Buffer.from(await res.arrayBuffer()).equals(await web(path)), path);
    }
  }
  const png = await web('images/sluice.png');
  t.is(png.subarray(1, 4).toString('latin1'), 'PNG');
  const pdf = await web('docs/sluice.pdf');
  t.is(pdf.subarray(0, 5).toString('latin1'), '%PDF-');
  t.is((await web('1k.txt')).length, 1024);
});

test('X-Seen-* headers echo what the backend received', async (t) => {
  const b = first();
  const res = await get(b, '/1k.txt?x=1', {
    headers: {
      host: 'www.example.test:8080',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      via: '1.1 sluice',
      'x-request-id': 'abc-123',
    },
  });
  t.is(res.status, 200);
  t.is(res.headers['x-seen-host'], 'www.example.test');
  t.is(res.headers['x-seen-http-host'], 'www.example.test:8080');
  t.is(res.headers['x-seen-method'], 'GET');
  t.is(res.headers['x-seen-uri'], '/1k.txt?x=1');
  t.is(res.headers['x-seen-forwarded-for'], '203.0.113.7');
  t.is(res.headers['x-seen-forwarded-proto'], 'https');
  t.is(res.headers['x-seen-via'], '1.1 sluice');
  t.is(res.headers['x-seen-request-id'], 'abc-123');
  t.false('x-seen-forwarded-host' in res.headers, 'a header that did not arrive is not echoed');
});

test('X-Conn and X-Conn-Requests show keep-alive reuse', async (t) => {
  const b = first();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const one = await get(b, '/', { agent });
    const two = await get(b, '/', { agent });
    t.is(one.headers['x-conn'], two.headers['x-conn']);
    t.is(Number(two.headers['x-conn-requests']), Number(one.headers['x-conn-requests']) + 1);
    const fresh = await get(b, '/');
    t.not(fresh.headers['x-conn'], one.headers['x-conn']);
    t.is(fresh.headers['x-conn-requests'], '1');
  } finally {
    agent.destroy();
  }
});

test('stub_status answers', async (t) => {
  const res = await fetch(backends[1]?.url('/nginx_status') ?? '');
  t.is(res.status, 200);
  t.regex(await res.text(), /^Active connections: \d+/);
});

test('the access log can be read back from docker logs', async (t) => {
  const b = backends[2];
  if (!b) throw new Error('no third backend');
  const marker = `/1k.txt?marker=${Date.now()}`;
  await (await fetch(b.url(marker), { headers: { 'user-agent': 'sluice-test' } })).arrayBuffer();
  const [entry] = await accessLog(b, { where: (e) => e.path === marker, atLeast: 1 });
  t.truthy(entry, 'the request is in the access log');
  t.is(entry?.method, 'GET');
  t.is(entry?.status, 200);
  t.is(entry?.userAgent, 'sluice-test');
  t.is(entry?.bytesSent, 1024);
  t.regex(await b.logs(), /start worker process/);
});

test('pause freezes a backend and unpause brings it back', async (t) => {
  const b = backends[1];
  if (!b) throw new Error('no second backend');
  await b.pause();
  try {
    await t.throwsAsync(get(b, '/', { timeoutMs: 500 }), { message: /timed out/ });
  } finally {
    await b.unpause();
  }
  t.is((await get(b, '/')).status, 200);
});

test('stop is idempotent and the others keep serving', async (t) => {
  const more = await startNginxBackends(1, { namePrefix: 'extra' });
  const [b] = more;
  if (!b) throw new Error('no extra backend');
  t.is(b.name, 'extra-1');
  t.is((await fetch(b.url('/'))).headers.get('x-backend'), 'extra-1');
  await Promise.all([b.stop(), b.stop()]);
  await b.stop();
  await t.throwsAsync(fetch(b.url('/')));
  t.is((await fetch(first().url('/'))).status, 200);
});
