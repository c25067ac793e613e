// Fuzzing (issue 10), bounded in time: random and mutated bytes to the proxy port, the admin port
// and the response parser, against a real Sluice process. Pass: the process is alive; every
// request that reached the backend was one well-framed request that Sluice answered for (none
// smuggled); RSS stays bounded. A failure prints its seed: FUZZ_SEED=<seed> reproduces it.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import test from 'ava';
import { ChunkedDecoder } from '../../src/http/chunked.ts';
import { responseFraming } from '../../src/http/framing.ts';
import { HttpError } from '../../src/http/message.ts';
import { parseResponseHead } from '../../src/http/parser.ts';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { freePort } from '../support/node-backend.ts';
import { rawExchange } from '../support/raw-http.ts';
import { startScriptedBackend } from '../support/scripted-backend.ts';
import { seeded } from '../support/seeded.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const budgetMs = 8000;

const requests = [
  'GET /a HTTP/1.1\r\nHost: f.test\r\n\r\n',
  'GET http://f.test/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n',
  'POST /c HTTP/1.1\r\nHost: f.test\r\nContent-Length: 5\r\n\r\nhello',
  'POST /d HTTP/1.1\r\nHost: f.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n',
  'GET /e HTTP/1.0\r\n\r\n',
  'GET /f HTTP/1.1\r\nHost: f.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  'GET /g/../h/%2e%2e/i HTTP/1.1\r\nHost: f.test\r\nConnection: host, x-a\r\nX_A: 1\r\n\r\n',
  'GET /j HTTP/1.1\r\nHost: f.test\r\n\r\nGET /k HTTP/1.1\r\nHost: f.test\r\n\r\n',
];
const nasty = [
  'Transfer-Encoding: chunked',
  'Content-Length: 5',
  'Content-Length: 0',
  'Content-Length: 5, 6',
  'Transfer-Encoding : chunked',
  'Transfer-Encoding: chunked, identity',
  'Transfer-Encoding:\tchunked',
  ' folded',
  'Host: evil.test',
  'Via: 1.1 sluice-00000000',
  'Expect: 100-continue',
  'X: \u0000',
  'Connection: close',
  'Upgrade: h2c',
];
const alphabet = ['\r', '\n', '\r\n', '\u0000', ' ', '\t', ':', ',', ';', '0', 'f', '%', '/', '.', 'ÿ', '"'];

function mutate(random: () => number, input: string): string {
  let s = input;
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * (s.length + 1));
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
    switch (Math.floor(random() * 6)) {
      case 0:
        s = s.slice(0, at) + pick(alphabet) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(random() * 3));
        break;
      case 2: {
        const line = s.indexOf('\r\n', at);
        if (line !== -1) s = `${s.slice(0, line)}\r\n${pick(nasty)}${s.slice(line)}`;
        break;
      }
      case 3:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(random() * 256)) + s.slice(at + 1);
        break;
      case 4:
        s = s.slice(0, at);
        break;
      default:
        s = s + s.slice(0, Math.floor(random() * s.length));
    }
  }
  return s;
}

function randomBytes(random: () => number): string {
  let s = '';
  const n = Math.floor(random() * 200);
  for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(random() * 256));
  return s;
}

test('the response parser takes random and mutated heads and bodies: an HttpError or a result, nothing else', (t) => {
  const random = seeded(seed);
  const responses = [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n',
    'HTTP/1.0 204 No Content\r\nContent-Length: 3\r\n\r\n',
    'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n',
  ];
  const deadline = Date.now() + budgetMs / 4;
  let cases = 0;
  while (Date.now() < deadline) {
    const text =
      random() < 0.2 ? randomBytes(random) : mutate(random, responses[cases % responses.length] as string);
    const bytes = Buffer.from(text, 'latin1');
    cases++;
    try {
      const parsed = parseResponseHead(bytes);
      if (parsed) {
        const framing = responseFraming(parsed.head, random() < 0.2 ? 'HEAD' : 'GET');
        if (framing.kind === 'chunked')
          new ChunkedDecoder({ errorStatus: 502 }).feed(bytes.subarray(parsed.size));
      }
    } catch (error) {
      if (!(error instanceof HttpError))
        t.fail(`seed ${seed}: ${JSON.stringify(text)} threw ${String(error)}`);
    }
  }
  t.log(`${cases} responses, seed ${seed}`);
  t.pass();
});

test('random and mutated bytes to the proxy and admin ports: alive, nothing smuggled, memory bounded', async (t) => {
  const random = seeded(seed + 1);
  // The backend: node's strict parser. Every request it reads is answered with a mark Sluice
  // passes on, so backend requests and marked answers must match one to one.
  let backendRequests = 0;
  let backendErrors = 0;
  const backend = createHttpServer((request, response) => {
    request.resume();
    // Counted once whole: a head whose body never came is not a request that reached it.
    request.on('end', () => {
      if (!request.headers['user-agent']?.startsWith('sluice-health')) backendRequests++;
      response.setHeader('x-from-backend', '1');
      response.end('ok');
    });
  });
  const malformed: string[] = [];
  backend.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => {
    // A client that went away mid-request is no malformed request, and node knows only the
    // registered methods, where HTTP allows any token (Sluice passes `FOO /` on).
    if (['ECONNRESET', 'HPE_INVALID_EOF_STATE', 'HPE_INVALID_METHOD'].includes(error.code ?? ''))
      return socket.destroy();
    backendErrors++;
    malformed.push(`${error.code}: ${JSON.stringify(error.rawPacket?.toString('latin1'))}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  // A second backend answers with mutated responses (the proxy's response path under fuzz).
  const hostile = await startScriptedBackend((_request, socket) => {
    socket.write(mutate(random, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From-Hostile: 1\r\n\r\nhello'));
    if (random() < 0.3) socket.destroy();
  });
  const port = await freePort();
  const adminPort = await freePort();
  const sluice: ChildSluice = await startChildSluice(`listen: 127.0.0.1:${port}
admin: 127.0.0.1:${adminPort}
accessLog: false
timeouts: { clientHeader: 500ms, clientBody: 500ms, responseHeaders: 1s }
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:${(backend.address() as AddressInfo).port}]
  hostile:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:${hostile.port}]
routes:
  - path: /hostile
    pool: hostile
  - pool: web
`);
  t.teardown(async () => {
    await sluice.stop();
    backend.close();
    await hostile.close();
  });
  const baseline = sluice.rss();
  let marked = 0;
  /** Proxy exchanges still open, without a whole answer, when the client stopped waiting. */
  let unanswered = 0;
  let sent = 0;
  const deadline = Date.now() + budgetMs;
  const worker = async () => {
    while (Date.now() < deadline) {
      const toAdmin = random() < 0.2;
      const base = requests[Math.floor(random() * requests.length)] as string;
      const input =
        random() < 0.1
          ? randomBytes(random)
          : mutate(random, random() < 0.15 ? base.replace('/', '/hostile/') : base);
      sent++;
      const result = await rawExchange(toAdmin ? adminPort : port, Buffer.from(input, 'latin1'), {
        idleMs: 60,
        halfClose: random() < 0.5,
      }).catch(() => undefined);
      if (result && !toAdmin) {
        marked += result.text.split('x-from-backend: 1').length - 1;
        // A busy machine can be slower than the client's patience: that answer is not seen.
        if (!result.closed && !/\r\n\r\n/.test(result.text)) unanswered++;
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  t.log(`${sent} inputs, ${backendRequests} reached the backend, seed ${seed}`);
  t.is(sluice.process.exitCode, null, `seed ${seed}: the process ended`);
  t.is(backendErrors, 0, `seed ${seed}: the backend got malformed requests: ${malformed.join('\n')}`);
  // Every request the backend read came from an answer Sluice passed on: nothing was smuggled.
  t.true(
    backendRequests <= marked + unanswered,
    `seed ${seed}: ${backendRequests} backend requests, ${marked} answers, ${unanswered} not waited for`,
  );
  const healthz = await rawExchange(adminPort, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  t.regex(healthz.text, /^HTTP\/1\.1 200 /);
  const served = await rawExchange(port, 'GET /after HTTP/1.1\r\nHost: f.test\r\n\r\n');
  t.regex(served.text, /^HTTP\/1\.1 200 /);
  const grown = sluice.peakRss() - baseline;
  t.log(
    `peak RSS ${(sluice.peakRss() / 2 ** 20).toFixed(0)} MB, ${(grown / 2 ** 20).toFixed(1)} MB over the start`,
  );
  t.true(grown < 100 * 2 ** 20);
  t.notRegex(sluice.output(), /internal error/);
});
