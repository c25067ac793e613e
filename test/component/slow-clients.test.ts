// Clients that do not read, or send their body slowly (issue 10): memory stays bounded, and a
// client's slowness is never a backend's fault.
import { type AddressInfo, createServer, type Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, statuses } from '../support/raw-http.ts';
import { reply, startScriptedBackend } from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

const waitFor = (check: () => boolean, timeoutMs: number) =>
  until('condition', timeoutMs, async () => (check() ? true : undefined), 20);

const page = Buffer.alloc(60 * 1024, 'x');
const small = Buffer.alloc(100, 'x');
let backend: NodeBackend;
let requests = 0;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    if (request.method === 'GET') requests++;
    request.resume();
    request.on('end', () => {
      const body = request.url === '/page/small' ? small : page;
      response.setHeader('content-length', body.length);
      response.end(body);
    });
  });
});
test.after.always(() => backend?.close());

async function proxy(extra = ''): Promise<RunningSluice> {
  return startProxy(quietYaml({ web: [backend.port] }, { extra, routes: '  - path: /page\n    pool: web' }));
}

/** Counts `marker` in everything `socket` receives from now on (across chunk boundaries). */
function countIn(socket: Socket, marker: string): { count: number } {
  const counter = { count: 0 };
  let tail = '';
  socket.on('data', (chunk: Buffer) => {
    const text = tail + chunk.toString('latin1');
    counter.count += text.split(marker).length - 1;
    // Shorter than the marker: a match is never counted twice.
    tail = text.slice(-(marker.length - 1));
  });
  return counter;
}

/**
 * The most bytes any client socket of `sluice` held in its write queue while sampled for `ms`:
 * what Sluice keeps in memory for clients that do not read.
 */
async function peakBacklog(sluice: RunningSluice, ms: number): Promise<number> {
  const connections = (sluice.proxy as unknown as { clients: { open: Set<{ socket: Socket }> } }).clients
    .open;
  let peak = 0;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(25))
    for (const connection of connections) peak = Math.max(peak, connection.socket.writableLength);
  return peak;
}

/** Pipelines `count` GETs of `path` on a socket that does not read; the backlog peak over `ms`. */
async function floodWithoutReading(
  sluice: RunningSluice,
  path: string,
  count: number,
  ms: number,
): Promise<{ socket: Socket; peak: number }> {
  const socket = await openSocket(sluice.address.port);
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(count));
  const peak = await peakBacklog(sluice, ms);
  console.log(`at most ${peak} bytes waited in Sluice for a client that did not read ${count} answers`);
  return { socket, peak };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial(
  'a client that pipelines 1200 requests and never reads gets no more read than it takes',
  async (t) => {
    const sluice = await proxy();
    t.teardown(() => sluice.stop());
    const before = requests;
    const { socket, peak } = await floodWithoutReading(sluice, '/page', 1200, 1500);
    t.true(peak < 256 * 1024);
    const forwarded = requests - before;
    // Kernel buffers on both sides hold some answers; the rest wait until the client reads.
    t.true(
      forwarded < 400,
      `${forwarded} of 1200 requests reached the backend while the client did not read`,
    );
    t.log(`${forwarded} of 1200 forwarded before the client read`);
    // Once the client reads, every answer arrives, in order.
    const received = countIn(socket, 'HTTP/1.1 200 OK');
    socket.resume();
    await waitFor(() => received.count === 1200, 30_000);
    t.is(requests - before, 1200);
    socket.destroy();
  },
);

test.serial(
  'a client that pipelines small requests without reading has at most a head and a read of its input kept',
  async (t) => {
    const sluice = await proxy();
    t.teardown(() => sluice.stop());
    const connections = (sluice.proxy as unknown as { clients: { open: Set<{ buffer?: Buffer }> } }).clients
      .open;
    const socket = await openSocket(sluice.address.port);
    t.teardown(() => socket.destroy());
    socket.pause();
    // 100-byte answers: thousands of them fit in the socket buffers before reading stops for
    // them, while the requests behind keep coming (16 MiB of them).
    const requests = Buffer.from('GET /page/small HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(25_000));
    let sent = 0;
    const send = () => {
      while (sent < 16) {
        sent++;
        if (!socket.write(requests)) return;
      }
    };
    socket.on('drain', send);
    send();
    let peak = 0;
    for (const end = Date.now() + 3000; Date.now() < end; await sleep(10))
      for (const connection of connections) peak = Math.max(peak, connection.buffer?.length ?? 0);
    t.log(`at most ${peak} bytes of pipelined input kept for a client that did not read`);
    // maxHead (16 KiB) and one read (64 KiB) at the most; reading on grew it with every answer.
    t.true(peak <= 16 * 1024 + 64 * 1024, `${peak} bytes of input kept`);
  },
);

test.serial(
  '100,000 pipelined requests for 404s are answered as the client reads, not all at once',
  async (t) => {
    const sluice = await proxy();
    t.teardown(() => sluice.stop());
    // More answers than the kernel's socket buffers hold (about 15 MB of them).
    const { socket, peak } = await floodWithoutReading(sluice, '/x', 100_000, 2000);
    t.true(peak < 128 * 1024);
    const received = countIn(socket, 'HTTP/1.1 404 Not Found');
    socket.resume();
    await waitFor(() => received.count === 100_000, 60_000);
    socket.destroy();
  },
);

test.serial('uploads that stop short get 408 and never mark the backend', async (t) => {
  const sluice = await proxy('timeouts: { clientBody: 300ms, responseHeaders: 5s }');
  t.teardown(() => sluice.stop());
  const results = await Promise.all(
    Array.from({ length: 12 }, () =>
      rawExchange(sluice.address.port, 'POST /page HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc', {
        idleMs: 2000,
      }),
    ),
  );
  for (const result of results) t.deepEqual(statuses(result.text), [408]);
  const backendState = sluice.pools.get('web')?.backends[0];
  t.is(backendState?.health.state, 'up');
  const rendered = (await sluice.metrics.render()).body;
  t.notRegex(rendered, /sluice_backend_errors_total\{[^}]*type="response_timeout"\} [1-9]/);
  t.regex(rendered, /sluice_requests_rejected_total\{reason="client_body_timeout"\} 12/);
});

test.serial(
  'Expect: 100-continue and no body, to a backend that waits for the body without a 100: 408, never the backend marked',
  async (t) => {
    // Many servers read the body without saying Continue (RFC 9110 lets a client send it after a
    // wait): a client that never sends it must not get such a backend ejected.
    const waitsForBody = await startScriptedBackend((_request, socket) => socket.write(reply('got it')));
    t.teardown(() => waitsForBody.close());
    const sluice = await startProxy(
      quietYaml(
        { web: [waitsForBody.port] },
        { extra: 'timeouts: { clientBody: 300ms, responseHeaders: 500ms }' },
      ),
    );
    t.teardown(() => sluice.stop());
    const request = 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n';
    const results = await Promise.all(
      Array.from({ length: 12 }, () => rawExchange(sluice.address.port, request, { idleMs: 2000 })),
    );
    for (const result of results) t.deepEqual(statuses(result.text), [408]);
    t.is(sluice.pools.get('web')?.backends[0]?.health.state, 'up');
    const rendered = (await sluice.metrics.render()).body;
    t.notRegex(rendered, /sluice_backend_errors_total\{[^}]*\} [1-9]/);
    t.regex(rendered, /sluice_requests_rejected_total\{reason="client_body_timeout"\} 12/);
    // The same request with its body is answered.
    const whole = await rawExchange(sluice.address.port, `${request}0123456789`, { idleMs: 1000 });
    t.true(whole.text.endsWith('got it'), whole.text);
  },
);

test.serial(
  'a slow upload that a backend gives up on gets a 502 and never ejects that backend',
  async (t) => {
    // Like nginx with a short client_body_timeout: it closes the connection, no answer.
    const impatient = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.once('data', () => setTimeout(() => socket.destroy(), 150));
    });
    await new Promise<void>((resolve) => impatient.listen(0, '127.0.0.1', resolve));
    t.teardown(() => impatient.close());
    const port = (impatient.address() as AddressInfo).port;
    const sluice = await startProxy(
      quietYaml({ web: [port] }, { extra: 'timeouts: { clientBody: 2s, responseHeaders: 2s }' }).replace(
        'timeout: 1s }',
        'timeout: 1s, ejectAfter: 2, maxEjectedPercent: 100 }',
      ),
    );
    t.teardown(() => sluice.stop());
    const results = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const socket = await openSocket(sluice.address.port);
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
        });
        socket.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
        // Well within Sluice's rule (a read every 2 s), slower than the backend allows.
        const trickle = setInterval(() => socket.write('x'.repeat(100)), 100);
        await waitFor(() => socket.destroyed || text.includes('\r\n\r\n'), 5000);
        clearInterval(trickle);
        socket.destroy();
        return text;
      }),
    );
    for (const text of results) t.deepEqual(statuses(text), [502]);
    const state = sluice.pools.get('web')?.backends[0]?.health;
    t.is(state?.state, 'up');
    t.is(state?.ejections, 0);
    t.regex((await sluice.metrics.render()).body, /type="closed_before_response"\} 6/);
  },
);

test.serial('a body trickled one byte at a time, each just inside the timeout, still gets 408', async (t) => {
  const sluice = await proxy('timeouts: { clientBody: 400ms, responseHeaders: 400ms }');
  t.teardown(() => sluice.stop());
  const socket = await openSocket(sluice.address.port);
  socket.write('POST /page HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n');
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
  });
  const started = Date.now();
  const trickle = setInterval(() => socket.write('x'), 250);
  t.teardown(() => clearInterval(trickle));
  await waitFor(() => text.includes('HTTP/1.1'), 5000);
  clearInterval(trickle);
  t.deepEqual(statuses(text), [408]);
  t.true(Date.now() - started < 2000);
  socket.destroy();
});

test.serial(
  'a slow but steady upload is not cut, and the backend gets its response-header time after it',
  async (t) => {
    // Each 2 KiB part comes a third of a clientBody period after the last (room for a busy
    // machine), and the whole upload takes four times the response-header timeout.
    const sluice = await proxy('timeouts: { clientBody: 900ms, responseHeaders: 300ms }');
    t.teardown(() => sluice.stop());
    const socket = await openSocket(sluice.address.port);
    const part = 'y'.repeat(2048);
    socket.write(
      `POST /page HTTP/1.1\r\nHost: a\r\nContent-Length: ${part.length * 4}\r\nConnection: close\r\n\r\n`,
    );
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    for (let i = 0; i < 4; i++) {
      await sleep(300);
      socket.write(part);
    }
    await waitFor(() => text.length >= page.length || /^HTTP\/1\.1 [^2]/.test(text), 5000);
    t.deepEqual(statuses(text), [200]);
    socket.destroy();
  },
);

test.serial(
  'Expect: 100-continue: the backend slow to say continue is not the client being slow',
  async (t) => {
    const slowContinue = await startNodeBackend(() => {});
    slowContinue.server.on('checkContinue', (request, response) => {
      setTimeout(() => {
        response.writeContinue();
        request.resume();
        request.on('end', () => response.end('continued'));
      }, 600);
    });
    t.teardown(() => slowContinue.close());
    const sluice = await startProxy(
      quietYaml(
        { web: [slowContinue.port] },
        { extra: 'timeouts: { clientBody: 300ms, responseHeaders: 5s }' },
      ),
    );
    t.teardown(() => sluice.stop());
    const socket = await openSocket(sluice.address.port);
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('100 Continue') && !text.includes('sent')) {
        text += 'sent';
        socket.write('hello');
      }
    });
    socket.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await waitFor(() => text.endsWith('continued'), 5000);
    t.deepEqual(statuses(text), [100, 200]);
    socket.destroy();
  },
);
