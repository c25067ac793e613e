// `sluice client` against three real nginx containers behind an in-process Sluice: runClient
// in-process with captured streams, and the real command as a child process.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { type ClientIO, runClient } from '../../src/client/run.ts';
import { parseRequestHead } from '../../src/http/parser.ts';
import type { RunningSluice } from '../../src/sluice.ts';
import { type NginxBackend, ssiInertBytes, startNginxBackends, stopNginxBackends } from '../support/nginx.ts';
import { closedPort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { startProxy } from '../support/sluice.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const web = (path: string) => readFile(join(root, 'web', path));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let backends: NginxBackend[] = [];
let echo: NodeBackend | undefined;
let big: NodeBackend | undefined;
let sluice: RunningSluice | undefined;
let port = 0;
let dir = '';
const bigSize = 256 * 1024 * 1024;
const bigBlock = Buffer.alloc(1024 * 1024, 'sluice');

/** Answers `{"sha256": ..., "bytes": ...}` for the request body it received. */
function echoHash(request: import('node:http').IncomingMessage, response: ServerResponse): void {
  const hash = createHash('sha256');
  let bytes = 0;
  request.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json', 'x-backend': 'echo' });
    response.end(JSON.stringify({ sha256: hash.digest('hex'), bytes }));
  });
}

/** Streams `bigSize` bytes of a repeating pattern, with backpressure. */
function bigDownload(_request: import('node:http').IncomingMessage, response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bigSize) });
  let sent = 0;
  const pump = () => {
    while (sent < bigSize) {
      sent += bigBlock.length;
      if (!response.write(bigBlock)) {
        response.once('drain', pump);
        return;
      }
    }
    response.end();
  };
  pump();
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-client-it-'));
  backends = await startNginxBackends(3);
  echo = await startNodeBackend(echoHash);
  big = await startNodeBackend(bigDownload);
  const servers = (list: readonly { address: string; name: string }[]) =>
    list.map((b) => `      - address: ${b.address}\n        name: ${b.name}`).join('\n');
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: false
accessLog: false
pools:
  web:
    servers:
${servers(backends)}
  one:
    servers:
${servers(backends.slice(0, 1))}
  echo:
    servers:
${servers([{ address: `127.0.0.1:${echo.port}`, name: 'echo' }])}
  big:
    servers:
${servers([{ address: `127.0.0.1:${big.port}`, name: 'big' }])}
routes:
  - host: one.test
    pool: one
  - host: echo.test
    pool: echo
  - host: big.test
    pool: big
  - host: "*"
    pool: web
`);
  port = sluice.address.port;
});

test.after.always(async () => {
  await sluice?.stop();
  await echo?.close();
  await big?.close();
  await stopNginxBackends(backends);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** runClient in this process, stdout and stderr captured. */
async function client(args: string[], options: { cwd?: string; stdin?: Buffer } = {}): Promise<Run> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const collector = (into: Buffer[]) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        into.push(Buffer.from(chunk));
        callback();
      },
    });
  const io: ClientIO = {
    stdout: collector(out),
    stderr: collector(err),
    stdin: Readable.from(options.stdin ? [options.stdin] : []),
    isTTY: false,
    // As on a terminal: binary bodies are saved to files (a pipe would get them on stdout).
    stdoutIsTTY: true,
    cwd: options.cwd ?? dir,
  };
  const code = await runClient(args, io);
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
}

const url = (path: string) => `http://127.0.0.1:${port}${path}`;

test.serial('an HTML page is printed exactly', async (t) => {
  const run = await client([url('/')]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(run.stdout, await web('index.html'));
  t.is(run.stderr, '');
});

test.serial('the PNG and the PDF are saved byte-identical, never printed, never overwritten', async (t) => {
  const target = await mkdtemp(join(dir, 'save-'));
  for (const [path, name, type] of [
    ['/images/sluice.png', 'sluice.png', 'image/png'],
    ['/docs/sluice.pdf', 'sluice.pdf', 'application/pdf'],
  ] as const) {
    const run = await client([url(path)], { cwd: target });
    t.is(run.code, 0, run.stderr);
    t.is(run.stdout.length, 0);
    t.regex(run.stderr, new RegExp(`saved .* \\(${type}\\) to ${name.replace('.', '\\.')}\\n$`));
    t.deepEqual(await readFile(join(target, name)), await web(path.slice(1)));
    // Again: the first copy stays, the second gets .1.
    const again = await client([url(path)], { cwd: target });
    t.is(again.code, 0);
    t.regex(again.stderr, new RegExp(`to ${name.replace('.', '\\.')}\\.1\\n$`));
    t.deepEqual(await readFile(join(target, `${name}.1`)), await web(path.slice(1)));
  }
  // -o FILE with --output-dir, and -o - for stdout even though it is binary.
  const named = await client(['--output-dir', target, '-o', 'logo.png', url('/images/sluice.png')]);
  t.is(named.code, 0);
  t.deepEqual(await readFile(join(target, 'logo.png')), await web('images/sluice.png'));
  const piped = await client(['-o', '-', url('/docs/sluice.pdf')]);
  t.deepEqual(piped.stdout, await web('docs/sluice.pdf'));
});

test.serial('HEAD prints the status line and headers only', async (t) => {
  const page = await web('index.html');
  const run = await client(['-I', url('/index.html')]);
  t.is(run.code, 0);
  const text = run.stdout.toString('latin1');
  t.regex(text, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(text, new RegExp(`\\r\\nContent-Length: ${page.length}\\r\\n`, 'i'));
  t.regex(text, /\r\nX-Backend: nginx-[123]\r\n/i);
  t.true(text.endsWith('\r\n\r\n'));
  t.false(text.includes('<html'));
});

test.serial('-i prints the head, then the body', async (t) => {
  const run = await client(['-i', url('/1k.txt')]);
  t.is(run.code, 0);
  const text = run.stdout.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  t.regex(text.slice(0, split), /^HTTP\/1\.1 200 OK\r\n[\s\S]*Content-Type: text\/plain/i);
  t.is(text.slice(split + 4), (await web('1k.txt')).toString('latin1'));
});

test.serial('a PUT body arrives intact at nginx and comes back (--connect to a virtual host)', async (t) => {
  const body = ssiInertBytes(3 * 1024 * 1024 + 17);
  const file = join(dir, 'upload.bin');
  await writeFile(file, body);
  const target = await mkdtemp(join(dir, 'put-'));
  const via = ['--connect', `127.0.0.1:${port}`];
  const put = await client([
    ...via,
    '-X',
    'PUT',
    '--data-binary',
    `@${file}`,
    '-i',
    'http://one.test/upload/x.bin',
  ]);
  t.is(put.code, 0, put.stderr);
  t.regex(put.stdout.toString('latin1'), /^HTTP\/1\.1 20[14] /);
  t.regex(put.stdout.toString('latin1'), /\r\nX-Seen-Method: PUT\r\n/i);
  // The route for one.test has nginx-1 only: the GET finds the file there.
  const get = await client([...via, 'http://one.test/upload/x.bin'], { cwd: target });
  t.is(get.code, 0, get.stderr);
  t.is(sha256(await readFile(join(target, 'x.bin'))), sha256(body));
  // Chunked on the way back, reassembled.
  const chunked = await client([...via, '-o', '-', 'http://one.test/chunked/upload/x.bin']);
  t.is(chunked.code, 0);
  t.is(sha256(chunked.stdout), sha256(body));
});

test.serial('a POST body arrives intact at a node backend (its sha256 echoed)', async (t) => {
  const body = randomBytes(5 * 1024 * 1024);
  const file = join(dir, 'post.bin');
  await writeFile(file, body);
  const run = await client([
    '--connect',
    `127.0.0.1:${port}`,
    '--data-binary',
    `@${file}`,
    'http://echo.test/hash',
  ]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout.toString()), { sha256: sha256(body), bytes: body.length });
  const small = await client(['--connect', `127.0.0.1:${port}`, '-d', '@-', 'http://echo.test/hash'], {
    stdin: Buffer.from('from stdin'),
  });
  t.deepEqual(JSON.parse(small.stdout.toString()), { sha256: sha256(Buffer.from('from stdin')), bytes: 10 });
});

test.serial('a chunked response is reassembled', async (t) => {
  const run = await client(['-v', url('/chunked')]);
  t.is(run.code, 0, run.stderr);
  t.deepEqual(run.stdout, await web('1k.txt'));
  t.regex(run.stderr, /\n< Transfer-Encoding: chunked\n/i);
  t.notRegex(run.stderr, /\n< Content-Length:/i);
});

test.serial('-v shows a well-formed request on stderr', async (t) => {
  const run = await client(['-v', '-H', 'X-Debug: yes', url('/index.html?x=1')]);
  t.is(run.code, 0);
  const lines = run.stderr.split('\n');
  const sent = lines.filter((line) => line.startsWith('> ')).map((line) => line.slice(2));
  t.regex(sent[0] ?? '', /^GET \/index\.html\?x=1 HTTP\/1\.1$/);
  for (const field of sent.slice(1, -1)) t.regex(field, /^[!#$%&'*+.^_`|~0-9A-Za-z-]+: \S.*$/);
  t.is(sent.at(-1), '');
  t.deepEqual(sent.slice(1, -1), [
    `Host: 127.0.0.1:${port}`,
    'User-Agent: sluice-client/0.1',
    'Accept: */*',
    'Connection: close',
    'X-Debug: yes',
  ]);
  // What -v shows is what Sluice's own strict parser accepts.
  const parsed = parseRequestHead(Buffer.from(sent.map((line) => `${line}\r\n`).join('')));
  t.is(parsed?.head.target, '/index.html?x=1');
  t.truthy(lines.find((line) => line.startsWith('* connected to 127.0.0.1:')));
  t.truthy(lines.find((line) => /^< HTTP\/1\.1 200 OK$/.test(line)));
});

test.serial('--repeat 6 over one connection shows the three backends rotating', async (t) => {
  const run = await client(['--repeat', '6', url('/')]);
  t.is(run.code, 0, run.stderr);
  const lines = run.stdout.toString().trimEnd().split('\n');
  t.is(lines.length, 7);
  const names = lines.slice(0, 6).map((line) => /X-Backend: (\S+)/.exec(line)?.[1]);
  t.deepEqual([...names].sort(), ['nginx-1', 'nginx-1', 'nginx-2', 'nginx-2', 'nginx-3', 'nginx-3']);
  // Round robin: any three in a row are three different backends.
  for (let i = 0; i + 3 <= names.length; i++) t.is(new Set(names.slice(i, i + 3)).size, 3);
  for (const line of lines.slice(0, 6))
    t.regex(line, /^\[\d\/6\] {2}200 OK {2}X-Backend: nginx-\d {2}\d+ bytes {2}[\d.]+ ms$/);
  t.false(run.stdout.toString().includes('new connection'));
  t.regex(lines[6] ?? '', /^by backend: (nginx-\d=2 ?){3}$/);
});

test.serial('a virtual host through --connect: one.test always reaches nginx-1', async (t) => {
  const run = await client(['--connect', `127.0.0.1:${port}`, '--repeat', '3', 'http://one.test/']);
  t.is(run.code, 0);
  t.is(run.stdout.toString().match(/X-Backend: nginx-1 /g)?.length, 3);
});

test.serial(
  '404 from nginx exits 0 with its body, as curl; with -f it exits 22 and writes nothing',
  async (t) => {
    const run = await client([url('/no/such/page')]);
    t.is(run.code, 0);
    t.regex(run.stdout.toString(), /404 Not Found/);
    const failing = await client(['-f', url('/no/such/page')]);
    t.is(failing.code, 22);
    t.is(failing.stdout.length, 0);
    t.regex(failing.stderr, /the server answered 404 Not Found/);
  },
);

test.serial('a refused connection exits 7 with a clear message', async (t) => {
  const closed = await closedPort();
  const run = await client([`http://127.0.0.1:${closed}/`]);
  t.is(run.code, 7);
  t.is(run.stderr, `sluice client: connection refused by 127.0.0.1:${closed} — is the balancer running?\n`);
});

test.serial('a server that never answers: --max-time 1 exits 28', async (t) => {
  const sockets = new Set<Socket>();
  const silent: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const silentPort = (silent.address() as AddressInfo).port;
  const started = Date.now();
  const run = await client(['--max-time', '1', `http://127.0.0.1:${silentPort}/`]);
  const elapsed = Date.now() - started;
  t.is(run.code, 28);
  t.true(elapsed >= 950 && elapsed < 3000, `took ${elapsed} ms`);
  t.is(
    run.stderr,
    `sluice client: timed out after 1 s (--max-time 1) waiting for the response from 127.0.0.1:${silentPort}\n`,
  );
});

interface ChildRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function sluiceCommand(args: string[], cwd = dir): Promise<ChildRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'src/cli/main.ts'), ...args],
      { cwd, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString('utf8') });
      },
    );
  });
}

test.serial('the real command: sluice client prints the page, exit codes reach the shell', async (t) => {
  const ok = await sluiceCommand(['client', url('/')]);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(ok.stdout, await web('index.html'));
  const missing = await sluiceCommand(['client', '-sf', url('/missing')]);
  t.is(missing.code, 22);
  t.is(missing.stderr, '');
  const closed = await closedPort();
  const refused = await sluiceCommand(['client', `http://127.0.0.1:${closed}/`]);
  t.is(refused.code, 7);
  t.regex(refused.stderr, /connection refused by 127\.0\.0\.1:\d+ — is the balancer running\?/);
  const usage = await sluiceCommand(['client', 'https://127.0.0.1/']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /https:\/\/ is not supported/);
  const help = await sluiceCommand(['client', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout.toString(), /^usage: sluice client \[options\] URL/);
});

/** Peak resident memory of a process, polled from /proc while it runs. */
function peakRss(pid: number, samples: number[]): () => void {
  const timer = setInterval(async () => {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      if (kb) samples.push(kb * 1024);
    } catch {}
  }, 20);
  return () => clearInterval(timer);
}

test.serial('a 256 MiB download through Sluice is saved with flat memory (child process)', async (t) => {
  const target = await mkdtemp(join(dir, 'big-'));
  const child = spawn(
    process.execPath,
    // -O: stdout is a pipe here, where the body would otherwise go (as curl's).
    [
      join(root, 'src/cli/main.ts'),
      'client',
      '-O',
      '--connect',
      `127.0.0.1:${port}`,
      'http://big.test/data.bin',
    ],
    { cwd: target, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const samples: number[] = [];
  const stop = peakRss(child.pid as number, samples);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout.resume();
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  stop();
  t.is(code, 0, stderr);
  t.regex(stderr, /saved 256 MiB \(application\/octet-stream\) to data\.bin/);
  const saved = await readFile(join(target, 'data.bin'));
  t.is(saved.length, bigSize);
  const expected = createHash('sha256');
  for (let sent = 0; sent < bigSize; sent += bigBlock.length) expected.update(bigBlock);
  t.is(sha256(saved), expected.digest('hex'));
  const peak = Math.max(...samples);
  t.true(samples.length > 0);
  t.log(`peak RSS of the client: ${(peak / 1024 / 1024).toFixed(0)} MiB over ${samples.length} samples`);
  // Node and the proxy code alone take ~110 MiB; holding the body would add 256 MiB to that.
  t.true(peak < 240 * 1024 * 1024, `peak RSS ${(peak / 1024 / 1024).toFixed(0)} MiB`);
  await rm(join(target, 'data.bin'));
});
