// Backends that fail part way (audit F): a cut answer never ends as a whole one ends, a backend
// that cuts its answers is ejected, a client that pauses reading is not the backend's fault, a
// failure inside a head goes to another backend, and a tunnel's half-close is passed on.
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { reply, type ScriptedBackend, startScriptedBackend } from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How a connection to Sluice ended, and what came before. */
interface Ending {
  text: string;
  bytes: number;
  how: 'fin' | 'reset';
}

/** Sends `request` on a fresh connection and waits for the connection to end. */
function ending(port: number, request: string): Promise<Ending> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let how: Ending['how'] = 'fin';
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') how = 'reset';
    });
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      resolve({ text: all.toString('latin1'), bytes: all.length, how });
    });
    socket.write(request);
  });
}

const kib = (n: number) => 'x'.repeat(n * 1024);

/** Writes `head`, then `body`, then ends the connection with a FIN or a reset. */
function cut(socket: Socket, head: string, body: string, how: 'fin' | 'reset'): void {
  socket.write(head);
  socket.write(body, () =>
    setTimeout(() => (how === 'fin' ? socket.destroy() : socket.resetAndDestroy()), 20),
  );
}

const cuts: Record<string, (socket: Socket) => void> = {
  '/chunked-fin': (socket) =>
    cut(socket, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', `400\r\n${kib(1)}\r\n`, 'fin'),
  '/chunked-reset': (socket) =>
    cut(
      socket,
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      `400\r\n${kib(1)}\r\n200\r\n`,
      'reset',
    ),
  '/close-reset': (socket) => cut(socket, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', kib(2), 'reset'),
  '/close-whole': (socket) => cut(socket, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', kib(2), 'fin'),
  '/length-reset': (socket) =>
    cut(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n', kib(2), 'reset'),
};

let cutting: ScriptedBackend;
let cutter: RunningSluice;

test.before(async () => {
  cutting = await startScriptedBackend((request, socket) => cuts[request.line.split(' ')[1] ?? '']?.(socket));
  cutter = await startProxy(
    quietYaml({ web: [cutting.port] }).replace(
      'health: { interval: 1h, timeout: 1s }',
      'health: { interval: 1h, timeout: 1s, ejectAfter: 1000 }',
    ),
  );
});

test.after.always(async () => {
  await cutter?.stop();
  await cutting?.close();
});

test('an answer delimited by the close (HTTP/1.0 client) that the backend cuts ends with a reset', async (t) => {
  for (const path of ['/chunked-fin', '/chunked-reset', '/close-reset']) {
    const end = await ending(cutter.address.port, `GET ${path} HTTP/1.0\r\nHost: a\r\n\r\n`);
    t.true(end.text.startsWith('HTTP/1.1 200 OK\r\n'), path);
    t.false(/content-length|transfer-encoding/i.test(end.text.slice(0, end.text.indexOf('\r\n\r\n'))), path);
    t.is(end.how, 'reset', `${path}: a FIN would end it as a whole answer ends`);
  }
  const whole = await ending(cutter.address.port, 'GET /close-whole HTTP/1.0\r\nHost: a\r\n\r\n');
  t.is(whole.how, 'fin', 'a whole one ends with a FIN');
  t.true(whole.text.endsWith(kib(2)));
});

test('an HTTP/1.1 client sees the cut in its framing: no last chunk, a short Content-Length', async (t) => {
  const chunked = await ending(cutter.address.port, 'GET /chunked-fin HTTP/1.1\r\nHost: a\r\n\r\n');
  t.regex(chunked.text, /\r\ntransfer-encoding: chunked\r\n/i);
  t.false(chunked.text.includes('\r\n0\r\n\r\n'), 'no last chunk is made up');
  const length = await ending(cutter.address.port, 'GET /length-reset HTTP/1.1\r\nHost: a\r\n\r\n');
  t.regex(length.text, /\r\nContent-Length: 8192\r\n/i);
  t.true(length.bytes - (length.text.indexOf('\r\n\r\n') + 4) < 8192);
});

/** The GETs a backend received (its health probe sends HEAD). */
const gets = (backend: ScriptedBackend) => backend.requests.filter((r) => r.line.startsWith('GET ')).length;

/** Two backends: `failing` runs `script`, `healthy` answers "from B"; each request is recorded. */
async function pair(script: (socket: Socket, path: string) => void, health: string, extra = '') {
  const failing = await startScriptedBackend((request, socket) =>
    script(socket, request.line.split(' ')[1] ?? ''),
  );
  const healthy = await startScriptedBackend((_request, socket) => socket.write(reply('from B')));
  const sluice = await startProxy(
    quietYaml({ web: [failing.port, healthy.port] }, { extra }).replace(
      'health: { interval: 1h, timeout: 1s }',
      `health: { interval: 1h, timeout: 1s${health} }`,
    ),
  );
  return {
    failing,
    healthy,
    sluice,
    async close() {
      await sluice.stop();
      await failing.close();
      await healthy.close();
    },
  };
}

for (const how of ['reset', 'stall'] as const)
  test.serial(`a backend that cuts every answer part way (${how}) is ejected after ejectAfter`, async (t) => {
    const setup = await pair(
      (socket) => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${kib(40)}`);
        if (how === 'reset') setTimeout(() => socket.resetAndDestroy(), 20);
      },
      ', ejectAfter: 3',
      'timeouts: { responseHeaders: 300ms }',
    );
    t.teardown(() => setup.close());
    for (let i = 0; i < 12; i++)
      await ending(setup.sluice.address.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const failing = setup.sluice.pools.get('web')?.backends[0];
    t.is(failing?.health.state, 'ejected');
    t.is(gets(setup.failing), 3, 'three cut answers, then no more traffic');
    t.is(gets(setup.healthy), 9);
    const metrics = (await setup.sluice.metrics.render()).body;
    const type = how === 'reset' ? 'reset' : 'response_timeout';
    t.regex(metrics, new RegExp(`sluice_backend_errors_total\\{[^}]*type="${type}"\\} 3\\n`));
  });

test.serial(
  'a GET whose backend fails inside its head goes to another backend; a POST does not',
  async (t) => {
    const setup = await pair((socket, path) => {
      socket.write(
        path === '/hint'
          ? 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nCont'
          : 'HTTP/1.1 200 OK\r\nContent-Le',
      );
      setTimeout(() => socket.resetAndDestroy(), 20);
    }, ', ejectAfter: 1000');
    t.teardown(() => setup.close());
    const port = setup.sluice.address.port;
    for (let i = 0; i < 4; i++) {
      const get = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      t.deepEqual(statuses(get.text), [200]);
      t.true(get.text.endsWith('from B'));
    }
    t.true(gets(setup.failing) >= 2, 'round robin sent some of them there first');
    const posts = [];
    for (let i = 0; i < 4; i++)
      posts.push(
        statuses(
          (
            await rawExchange(
              port,
              'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
            )
          ).text,
        )[0],
      );
    const postsThere = setup.failing.requests.filter((r) => r.line.startsWith('POST')).length;
    t.is(posts.filter((status) => status === 502).length, postsThere, 'a POST it cut is not sent again');
    t.is(postsThere + setup.healthy.requests.filter((r) => r.line.startsWith('POST')).length, 4);
    // An interim answer went to the client: another backend's answer must not follow it.
    const hints: number[][] = [];
    for (let i = 0; i < 4; i++)
      hints.push(
        statuses(
          (await rawExchange(port, 'GET /hint HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text,
        ),
      );
    const cutAfterHint = hints.filter((answer) => answer[0] === 103);
    t.true(cutAfterHint.length >= 1, JSON.stringify(hints));
    t.deepEqual(
      cutAfterHint,
      cutAfterHint.map(() => [103, 502]),
    );
    const hintsAtB = setup.healthy.requests.filter((r) => r.line.startsWith('GET /hint')).length;
    t.is(hintsAtB, hints.length - cutAfterHint.length, 'none of those cut after a 103 was sent to B');
  },
);

test.serial(
  'a client that pauses reading longer than responseHeaders gets the whole body; one that stops for clientIdle is closed, not the backend blamed',
  async (t) => {
    const size = 8 * 1024 * 1024;
    const big = await startScriptedBackend((_request, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      socket.write(Buffer.alloc(size, 0x61));
    });
    const sluice = await startProxy(
      quietYaml({ web: [big.port] }, { extra: 'timeouts: { responseHeaders: 300ms, clientIdle: 1500ms }' }),
    );
    t.teardown(async () => {
      await sluice.stop();
      await big.close();
    });
    const read = (pauseMs: number) =>
      new Promise<number>((resolve) => {
        const socket = connect({ port: sluice.address.port, host: '127.0.0.1' });
        let bytes = 0;
        let paused = false;
        socket.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (!paused && bytes > 64 * 1024) {
            paused = true;
            socket.pause();
            setTimeout(() => socket.resume(), pauseMs);
          }
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve(bytes));
        socket.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      });
    const got = await read(900);
    t.true(got > size, `a pause of 900 ms: ${got} bytes`);
    // Stopped for good: closed after clientIdle of not reading.
    const socket = connect({ port: sluice.address.port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    socket.pause();
    await sleep(300);
    const stoppedAt = Date.now();
    await until(
      'the reader that stopped is closed',
      5000,
      async () => (sluice.proxy.openConnections === 0 ? true : undefined),
      20,
    );
    const tookMs = Date.now() - stoppedAt;
    t.true(tookMs > 900 && tookMs < 3000, `closed after ${tookMs} ms`);
    socket.destroy();
    const metrics = (await sluice.metrics.render()).body;
    t.notRegex(metrics, /sluice_backend_errors_total\{[^}]*\} [1-9]/);
    t.is(sluice.pools.get('web')?.backends[0]?.health.state, 'up');
  },
);

test.serial(
  'a tunnel passes the backend half-close on; the client keeps sending until it ends too',
  async (t) => {
    let backendGot = 0;
    let backendSawEnd = false;
    const backend = createServer({ allowHalfOpen: true }, (socket) => {
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        if (!head.includes('\r\n\r\n')) {
          head += chunk.toString('latin1');
          if (head.includes('\r\n\r\n')) {
            socket.write(
              'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nbye',
            );
            socket.end();
          }
          return;
        }
        if (head.startsWith('GET /ws ')) backendGot += chunk.length;
      });
      // (The health probe's connection is not the tunnel.)
      socket.on('end', () => {
        if (head.startsWith('GET /ws ')) backendSawEnd = true;
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const sluice = await startProxy(quietYaml({ web: [(backend.address() as AddressInfo).port] }));
    t.teardown(async () => {
      await sluice.stop();
      backend.close();
    });
    const client = connect({ port: sluice.address.port, host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    const ended = new Promise<void>((resolve) => client.on('end', resolve));
    client.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
    await ended;
    t.true(received.endsWith('\r\n\r\nbye'));
    const after = Buffer.alloc(1024 * 1024, 0x62);
    client.end(after);
    await closed;
    await until('the backend has it all', 3000, async () => (backendSawEnd ? true : undefined), 10);
    t.is(backendGot, after.length, 'every byte sent after the backend half-closed arrived');
  },
);
