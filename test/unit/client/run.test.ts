// runClient in-process against small raw node:net servers on 127.0.0.1: the cases nginx does
// not produce on demand (charsets, broken responses, redirects, naming, timeouts).
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { redirectMethod, redirectTarget, runClient } from '../../../src/client/run.ts';
import { capture, reply, serve } from './harness.ts';

test('latin1 and utf-16le text is shown as UTF-8', async (t) => {
  const latin1 = Buffer.from('café £5', 'latin1');
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('naïve ☃', 'utf16le')]);
  const { port } = await serve((request, socket) => {
    const body = request.head.startsWith('GET /latin1') ? latin1 : utf16;
    const type = request.head.startsWith('GET /latin1')
      ? 'text/plain; charset=ISO-8859-1'
      : 'text/plain; charset=utf-16le';
    reply(socket, `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n`, body);
  });
  const a = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/latin1`], a.io), 0);
  t.is(a.stdout().toString('utf8'), 'café £5');
  const b = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/utf16`], b.io), 0);
  t.is(b.stdout().toString('utf8'), 'naïve ☃');
});

test('a UTF-8 page passes byte for byte, BOM and all, through a slow stdout', async (t) => {
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('x'.repeat(300_000))]);
  const { port } = await serve((_request, socket) =>
    reply(
      socket,
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
      body,
    ),
  );
  const c = capture({ highWaterMark: 1024, stdoutIsTTY: false });
  t.is(await runClient([`http://127.0.0.1:${port}/`], c.io), 0);
  t.deepEqual(c.stdout(), body);
});

test('-v shows 1xx interim heads; -i prints the final head only', async (t) => {
  const { port } = await serve((_request, socket) =>
    reply(
      socket,
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n',
      'ok',
    ),
  );
  const c = capture();
  t.is(await runClient(['-v', '-i', `http://127.0.0.1:${port}/`], c.io), 0);
  t.is(c.stdout().toString(), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
  t.regex(c.stderr(), /\n< HTTP\/1\.1 100 Continue\n< \n< HTTP\/1\.1 200 OK\n/);
});

test('broken answers: not HTTP (8), cut short (18), nothing (52)', async (t) => {
  const { port } = await serve((request, socket) => {
    if (request.head.startsWith('GET /garbage')) socket.end('SSH-2.0-OpenSSH_9.6\r\n');
    else if (request.head.startsWith('GET /short'))
      reply(
        socket,
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n',
        'only this',
      );
    else socket.end();
  });
  const cases: [string, number, RegExp][] = [
    ['/garbage', 8, /malformed response: not an HTTP\/1\.x response/],
    ['/short', 18, /closed after 9 of 100 body bytes/],
    ['/nothing', 52, /empty reply/],
  ];
  for (const [path, code, message] of cases) {
    const c = capture();
    t.is(await runClient([`http://127.0.0.1:${port}${path}`], c.io), code, path);
    t.regex(c.stderr(), message);
  }
});

test('4xx and 5xx: the body is shown and the exit code is 0, as curl', async (t) => {
  const { port } = await serve((request, socket) => {
    const status = request.head.startsWith('GET /missing') ? '404 Not Found' : '503 Service Unavailable';
    reply(socket, `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n`, 'sorry');
  });
  const a = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/missing`], a.io), 0);
  t.is(a.stdout().toString(), 'sorry');
  t.is(a.stderr(), '');
  const b = capture();
  t.is(await runClient([`http://127.0.0.1:${port}/down`], b.io), 0);
  t.is(b.stdout().toString(), 'sorry');
});

test('-f: 400 and above exit 22 with no body written; -s hides the message, -sS shows it', async (t) => {
  const { port } = await serve((request, socket) => {
    const status = request.head.startsWith('GET /missing') ? '404 Not Found' : '200 OK';
    reply(socket, `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n`, 'sorry');
  });
  const a = capture();
  t.is(await runClient(['-f', '-i', `http://127.0.0.1:${port}/missing`], a.io), 22);
  t.is(a.stdout().length, 0);
  t.is(a.stderr(), 'sluice client: the server answered 404 Not Found\n');
  const b = capture();
  t.is(await runClient(['-sf', `http://127.0.0.1:${port}/missing`], b.io), 22);
  t.is(b.stderr(), '');
  const c = capture();
  t.is(await runClient(['-sSf', `http://127.0.0.1:${port}/missing`], c.io), 22);
  t.is(c.stderr(), 'sluice client: the server answered 404 Not Found\n');
  const ok = capture();
  t.is(await runClient(['-f', `http://127.0.0.1:${port}/`], ok.io), 0);
  t.is(ok.stdout().toString(), 'sorry');
});

test('-s hides error messages, -sS shows them (a refused connection still exits 7)', async (t) => {
  const { port, server } = await serve(() => {});
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const quiet = capture();
  t.is(await runClient(['-s', `http://127.0.0.1:${port}/`], quiet.io), 7);
  t.is(quiet.stderr(), '');
  const shown = capture();
  t.is(await runClient(['-sS', `http://127.0.0.1:${port}/`], shown.io), 7);
  t.regex(shown.stderr(), /^sluice client: connection refused by 127\.0\.0\.1:\d+/);
});

test('stdout a pipe or a file: a binary body goes there as it is, no file is saved', async (t) => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]);
  const { port } = await serve((_request, socket) => {
    reply(socket, `HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`, png);
  });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-client-pipe-'));
  try {
    const piped = capture({ cwd: dir, stdoutIsTTY: false });
    t.is(await runClient([`http://127.0.0.1:${port}/images/sluice.png`], piped.io), 0);
    t.deepEqual(piped.stdout(), png);
    t.deepEqual(await readdir(dir), []);
    // -O still saves, whatever stdout is.
    const saved = capture({ cwd: dir, stdoutIsTTY: false });
    t.is(await runClient(['-O', `http://127.0.0.1:${port}/images/sluice.png`], saved.io), 0);
    t.deepEqual(await readFile(join(dir, 'sluice.png')), png);
    t.is(saved.stdout().length, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('-w prints facts about the transfer after the body', async (t) => {
  const { port } = await serve((_request, socket) => {
    reply(
      socket,
      'HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Backend: b1\r\nContent-Length: 2\r\n\r\n',
      'ok',
    );
  });
  const c = capture();
  const format =
    '\\n%{http_code} %{size_download} %{size_upload} %{remote_ip}:%{remote_port} %header{x-backend} %{content_type} %{num_redirects} 100%% %{method}\\n';
  t.is(await runClient(['-w', format, '-d', 'abc', `http://127.0.0.1:${port}/x`], c.io), 0);
  t.is(c.stdout().toString(), `ok\n201 2 3 127.0.0.1:${port} b1 text/plain 0 100% POST\n`);
  const timed = capture();
  t.is(
    await runClient(
      ['-w', '%{time_connect} %{time_starttransfer} %{time_total}', `http://127.0.0.1:${port}/`],
      timed.io,
    ),
    0,
  );
  const [connect, first, total] = timed.stdout().toString().slice(2).split(' ').map(Number);
  t.true(
    (connect ?? -1) > 0 && (connect ?? 0) <= (first ?? 0) && (first ?? 0) <= (total ?? 0),
    timed.stdout().toString(),
  );
  const unknown = capture();
  t.is(await runClient(['-w', '%{nope}', `http://127.0.0.1:${port}/`], unknown.io), 2);
  t.regex(unknown.stderr(), /-w: unknown variable %\{nope\}/);
});

test('--resolve connects to the given address for that host and port; Host stays the name', async (t) => {
  const { port, requests } = await serve((_request, socket) => {
    reply(socket, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n', 'ok');
  });
  const c = capture();
  t.is(
    await runClient(['--resolve', `site.invalid:${port}:127.0.0.1`, `http://site.invalid:${port}/`], c.io),
    0,
  );
  t.is(c.stdout().toString(), 'ok');
  t.regex(requests[0]?.head ?? '', new RegExp(`\r\nHost: site\\.invalid:${port}\r\n`, 'i'));
  const bad = capture();
  t.is(await runClient(['--resolve', 'site.invalid:80:not-an-ip', 'http://site.invalid/'], bad.io), 2);
  t.regex(bad.stderr(), /--resolve expects HOST:PORT:ADDRESS/);
});

test('-L follows redirects: 303 after POST goes on as GET, 307 keeps the method and body', async (t) => {
  const { port, requests } = await serve((request, socket) => {
    const line = request.head.slice(0, request.head.indexOf('\r\n'));
    if (line === 'POST /form HTTP/1.1')
      reply(socket, 'HTTP/1.1 303 See Other\r\nLocation: /done\r\nContent-Length: 3\r\n\r\n', 'bye');
    else if (line === 'PUT /old HTTP/1.1')
      reply(socket, 'HTTP/1.1 307 Temporary Redirect\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n');
    else
      reply(
        socket,
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${line.length}\r\n\r\n`,
        line,
      );
  });
  const a = capture();
  t.is(await runClient(['-L', '-d', 'x=1', `http://127.0.0.1:${port}/form`], a.io), 0);
  t.is(a.stdout().toString(), 'GET /done HTTP/1.1');
  t.false(/content-length/i.test(requests.at(-1)?.head ?? ''));
  const b = capture();
  t.is(await runClient(['-L', '-X', 'PUT', '-d', 'payload', `http://127.0.0.1:${port}/old`], b.io), 0);
  t.is(b.stdout().toString(), 'PUT /new HTTP/1.1');
  t.is(requests.at(-1)?.body.toString(), 'payload');
  // Without -L the redirect itself is the answer (exit 0), its body shown.
  const c = capture();
  t.is(await runClient(['-d', 'x', `http://127.0.0.1:${port}/form`], c.io), 0);
  t.is(c.stdout().toString(), 'bye');
});

test('-L stops after --max-redirs (47); a redirect to https:// is not followed (1)', async (t) => {
  const { port } = await serve((request, socket) => {
    const to = request.head.startsWith('GET /tls') ? 'https://127.0.0.1/' : '/loop';
    reply(socket, `HTTP/1.1 302 Found\r\nLocation: ${to}\r\nContent-Length: 0\r\n\r\n`);
  });
  const a = capture();
  t.is(await runClient(['-L', '--max-redirs', '3', `http://127.0.0.1:${port}/loop`], a.io), 47);
  t.regex(a.stderr(), /too many redirects: stopped after 3/);
  const b = capture();
  t.is(await runClient(['-L', `http://127.0.0.1:${port}/tls`], b.io), 1);
  t.regex(b.stderr(), /redirected to https:\/\/127\.0\.0\.1\/, which sluice client cannot follow/);
});

test('redirectMethod and redirectTarget', (t) => {
  t.is(redirectMethod(303, 'PUT'), 'GET');
  t.is(redirectMethod(303, 'HEAD'), 'HEAD');
  t.is(redirectMethod(302, 'POST'), 'GET');
  t.is(redirectMethod(301, 'PUT'), 'PUT');
  t.is(redirectMethod(307, 'POST'), 'POST');
  t.is(redirectMethod(308, 'POST'), 'POST');
  t.is(redirectTarget(new URL('http://a.test/x/y'), '../z?q').href, 'http://a.test/z?q');
  t.is(redirectTarget(new URL('http://a.test/'), '//b.test:81/').href, 'http://b.test:81/');
});

test('binary bodies are saved: Content-Disposition names, numbered when taken, -o overwrites', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-client-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
  const { port } = await serve((request, socket) => {
    const disposition = request.head.startsWith('GET /named')
      ? `Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf; filename="resume.pdf"\r\n`
      : '';
    // /raw has no Content-Type at all: sniffed as binary.
    const type = request.head.startsWith('GET /raw') ? '' : 'Content-Type: image/png\r\n';
    reply(socket, `HTTP/1.1 200 OK\r\n${type}${disposition}Content-Length: ${png.length}\r\n\r\n`, png);
  });
  await writeFile(join(dir, 'pic.png'), 'keep me');
  for (let i = 0; i < 2; i++) {
    const c = capture({ cwd: dir });
    t.is(await runClient([`http://127.0.0.1:${port}/img/pic.png`], c.io), 0);
    t.is(c.stdout().length, 0);
    t.regex(c.stderr(), new RegExp(`saved 12 B \\(image/png\\) to pic\\.png\\.${i + 1}\\n`));
  }
  t.is(await readFile(join(dir, 'pic.png'), 'utf8'), 'keep me');
  t.deepEqual(await readFile(join(dir, 'pic.png.2')), png);

  t.is(await runClient([`http://127.0.0.1:${port}/named/x`], capture({ cwd: dir }).io), 0);
  t.deepEqual(await readFile(join(dir, 'résumé.pdf')), png);
  t.is(await runClient([`http://127.0.0.1:${port}/raw/`], capture({ cwd: dir }).io), 0);
  t.deepEqual(await readFile(join(dir, 'index.bin')), png);

  t.is(
    await runClient(['-o', 'pic.png', `http://127.0.0.1:${port}/img/pic.png`], capture({ cwd: dir }).io),
    0,
  );
  t.deepEqual(await readFile(join(dir, 'pic.png')), png);
  t.is(
    await runClient(
      ['--output-dir', 'sub', `http://127.0.0.1:${port}/img/pic.png`],
      capture({ cwd: dir }).io,
    ),
    23,
  );
  t.deepEqual((await readdir(dir)).sort(), ['index.bin', 'pic.png', 'pic.png.1', 'pic.png.2', 'résumé.pdf']);

  // -o - writes binary to stdout.
  const c = capture({ cwd: dir });
  t.is(await runClient(['-o', '-', `http://127.0.0.1:${port}/img/pic.png`], c.io), 0);
  t.deepEqual(c.stdout(), png);
});

test('a body from stdin and a missing body file (26)', async (t) => {
  const { port, requests } = await serve((request, socket) =>
    reply(
      socket,
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${request.body.length}\r\n\r\n`,
      request.body,
    ),
  );
  const body = Buffer.from('from stdin\n\0binary too');
  const c = capture({ stdin: body, stdoutIsTTY: false });
  t.is(await runClient(['--data-binary', '@-', `http://127.0.0.1:${port}/echo`], c.io), 0);
  t.deepEqual(requests.at(-1)?.body, body);
  t.regex(requests.at(-1)?.head ?? '', /^POST \/echo HTTP\/1\.1\r\n/);
  const d = capture();
  t.is(await runClient(['-d', '@/nonexistent/body.json', `http://127.0.0.1:${port}/`], d.io), 26);
  t.regex(d.stderr(), /cannot read the request body from "\/nonexistent\/body\.json": no such file/);
});

test('could not resolve (6) and a connect timeout (28), with DNS replaced', async (t) => {
  const notFound: LookupFunction = (hostname, _options, callback) =>
    process.nextTick(() =>
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 4),
    );
  const a = capture();
  a.io.lookup = notFound;
  t.is(await runClient(['http://no-such-host.test/'], a.io), 6);
  t.is(a.stderr(), 'sluice client: could not resolve host "no-such-host.test"\n');
  const b = capture();
  b.io.lookup = () => {}; // never answers
  const started = Date.now();
  t.is(await runClient(['--connect-timeout', '0.2', 'http://slow.test/'], b.io), 28);
  t.true(Date.now() - started < 2000);
  t.regex(b.stderr(), /could not connect to slow\.test:80 within 0\.2 s/);
  // --max-time covers the connect too.
  const m = capture();
  m.io.lookup = () => {};
  t.is(await runClient(['--max-time', '0.2', 'http://slow.test/'], m.io), 28);
  t.is(
    m.stderr(),
    'sluice client: timed out after 0.2 s (--max-time 0.2) while connecting to slow.test:80\n',
  );
});

test('--repeat reconnects when the server closes the connection', async (t) => {
  let served = 0;
  const { port } = await serve((_request, socket) => {
    served++;
    const close = served % 2 === 0 ? 'Connection: close\r\n' : '';
    const bytes = Buffer.from(
      `HTTP/1.1 200 OK\r\nX-Backend: b${served}\r\n${close}Content-Length: 2\r\n\r\nok`,
    );
    if (close) socket.end(bytes);
    else socket.write(bytes);
  });
  const c = capture();
  t.is(await runClient(['--repeat', '4', `http://127.0.0.1:${port}/`], c.io), 0);
  const lines = c.stdout().toString().trimEnd().split('\n');
  t.is(lines.length, 5);
  t.regex(lines[0] ?? '', /^\[1\/4\] {2}200 OK {2}X-Backend: b1 {2}2 bytes {2}[\d.]+ ms$/);
  t.regex(lines[2] ?? '', /X-Backend: b3 .*\(new connection\)$/);
  t.is(lines[4], 'by backend: b1=1 b2=1 b3=1 b4=1');
});

test('a slow binary download on a terminal draws the progress bar on stderr', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-client-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { port } = await serve((_request, socket) => {
    socket.write(
      'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 10240\r\n\r\n',
    );
    let sent = 0;
    const timer = setInterval(() => {
      socket.write(Buffer.alloc(1024, 1));
      if (++sent === 10) {
        clearInterval(timer);
        socket.end();
      }
    }, 90);
  });
  const c = capture({ cwd: dir });
  c.io.isTTY = true;
  c.io.columns = 72;
  t.is(await runClient([`http://127.0.0.1:${port}/slow.bin`], c.io), 0);
  // The bar ends each redraw with ESC [K (erase to the end of the line): shown as <EL> here.
  const stderr = c.stderr().replaceAll('\x1b[K', '<EL>');
  t.regex(
    stderr,
    /\r {1,2}\d{1,2}% \[#* *\] [\d.]+ KiB \/ 10\.0 KiB {2}[\d.]+ (B|KiB)\/s {2}ETA \d+:\d\d<EL>/,
  );
  t.regex(stderr, /\r100% \[#+\] 10\.0 KiB \/ 10\.0 KiB .* in \d+:\d\d<EL>\n/);
  t.regex(stderr, /\nsluice client: saved 10\.0 KiB \(application\/octet-stream\) to slow\.bin\n$/);
  for (const line of stderr.split(/[\r\n]/)) t.true(line.replace('<EL>', '').length <= 71, line);
  // -s: no bar.
  const quiet = capture({ cwd: dir });
  quiet.io.isTTY = true;
  t.is(await runClient(['-s', `http://127.0.0.1:${port}/slow.bin`], quiet.io), 0);
  t.is(quiet.stderr(), '');
});
