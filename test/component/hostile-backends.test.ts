// Hostile backends (issue 10): bytes a backend sends past its response never reach another
// client or the cache; trailers and transfer codings pass only as what they are.
import type { Socket } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import {
  reply,
  type ScriptedBackend,
  type ScriptedRequest,
  startScriptedBackend,
} from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

const EVIL = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 5\r\n\r\nEVIL!';

const hostile: Record<string, string> = {
  '/204': `HTTP/1.1 204 No Content\r\nContent-Length: 89\r\n\r\n${EVIL}`,
  '/head': `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n${EVIL}`,
  '/304': `HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n${EVIL}`,
  '/103': `HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${EVIL}`,
  '/short': `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${EVIL}`,
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/chunked-extra': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n${EVIL}`,
};

const page = 'gzip transfer coding, kept as it is\n'.repeat(20);
const gzipped = gzipSync(page);

function chunks(data: Buffer): Buffer {
  const half = Math.floor(data.length / 2);
  const chunk = (part: Buffer) =>
    Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]);
  return Buffer.concat([chunk(data.subarray(0, half)), chunk(data.subarray(half))]);
}

const specials: Record<string, (socket: Socket) => void> = {
  '/switch-h2c': (socket) =>
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n'),
  '/gzip-chunked': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n');
    socket.write(Buffer.concat([chunks(gzipped), Buffer.from('0\r\n\r\n')]));
  },
  '/gzip-close': (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n');
    socket.end(gzipped);
  },
  '/zero-padded': (socket) =>
    socket.write(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0000\r\n\r\n',
    ),
  '/http10-chunked': (socket) =>
    socket.end('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'),
  '/switch-unasked': (socket) =>
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nraw'),
  '/trailers': (socket) =>
    socket.write(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trace\r\n\r\n2\r\nok\r\n0\r\n' +
        'Set-Cookie: session=evil\r\nContent-Length: 99\r\nLocation: http://evil.example/\r\nCache-Control: max-age=600\r\n' +
        'X_Trace: 1\r\nX-Trace: abc\r\ngrpc-status: 0\r\n\r\n',
    ),
};

/** Per backend connection: answers go out in order, after any late bytes of the one before. */
const queues = new WeakMap<Socket, Promise<void>>();

function script(request: ScriptedRequest, socket: Socket): void {
  const previous = queues.get(socket) ?? Promise.resolve();
  queues.set(
    socket,
    previous.then(() => answer(request, socket)),
  );
}

async function answer(request: ScriptedRequest, socket: Socket): Promise<void> {
  const path = request.line.split(' ')[1] ?? '/';
  const special = specials[path];
  if (special !== undefined) {
    special(socket);
    return;
  }
  const later = path.startsWith('/later');
  const hostileAnswer = hostile[later ? path.slice('/later'.length) : path];
  if (hostileAnswer === undefined) {
    socket.write(reply(`right ${path}`, { 'Cache-Control': 'max-age=600' }));
    return;
  }
  if (!later) {
    socket.write(hostileAnswer);
    return;
  }
  // The extra bytes in a write of their own, a moment after the response (and before the
  // answer to whatever request comes next on this connection).
  const cut = hostileAnswer.indexOf(EVIL);
  socket.write(hostileAnswer.slice(0, cut));
  await new Promise((resolve) => setTimeout(resolve, 5));
  socket.write(hostileAnswer.slice(cut));
}

let backend: ScriptedBackend;
let sluice: RunningSluice;

test.before(async () => {
  backend = await startScriptedBackend(script);
  sluice = await startProxy(
    quietYaml({ web: [backend.port] }, { routes: '  - pool: web\n    cache: true' }).replace(
      '    servers:',
      '    maxIdlePerBackend: 1\n    servers:',
    ),
  );
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

async function send(request: string): Promise<string> {
  return (await rawExchange(sluice.address.port, request, { idleMs: 400 })).text;
}

const cases: [string, string][] = [
  ['204 with Content-Length and a whole response after it', 'GET /204'],
  ['HEAD answered with a body', 'HEAD /head'],
  ['304 followed by a response', 'GET /304'],
  ['103 then a 200 whose Content-Length is shorter than the data', 'GET /103'],
  ['Content-Length shorter than the data', 'GET /short'],
  ['Content-Length with Transfer-Encoding', 'GET /cl-te'],
  ['bytes after the last chunk', 'GET /chunked-extra'],
  ['204, the extra response in a write of its own', 'GET /later/204'],
  ['HEAD, the body in a write of its own', 'HEAD /later/head'],
  ['304, the extra response in a write of its own', 'GET /later/304'],
  ['Content-Length, the extra response in a write of its own', 'GET /later/short'],
  ['chunked, the extra response in a write of its own', 'GET /later/chunked-extra'],
  ['103 and a 200, the extra response in a write of its own', 'GET /later/103'],
];
let n = 0;
for (const [what, request] of cases) {
  test.serial(
    `${what}: the connection is not reused, nothing leaks to the next client or the cache`,
    async (t) => {
      const connections = backend.connections;
      const next = `/next-${++n}`;
      // Pipelined: the next request is ready the moment the hostile answer ends.
      const both = await send(
        `${request} HTTP/1.1\r\nHost: h.test\r\n\r\nGET ${next} HTTP/1.1\r\nHost: h.test\r\n\r\n`,
      );
      t.false(both.includes('EVIL'), both);
      t.true(both.endsWith(`right ${next}`), both);
      t.regex(both, /x-cache: MISS/i);
      const third = await send(`GET ${next} HTTP/1.1\r\nHost: h.test\r\n\r\n`);
      t.true(third.endsWith(`right ${next}`), third);
      t.regex(third, /x-cache: HIT/i);
      const last = backend.requests[backend.requests.length - 1] as ScriptedRequest;
      const hostileRequest = backend.requests.findLast((r) => r.line.startsWith(request));
      t.not(last.connection, hostileRequest?.connection, 'a new backend connection after the hostile answer');
      t.true(backend.connections > connections);
    },
  );
}

test.serial(
  'a backend that never sent anything unasked keeps its connection (the fix costs no reuse)',
  async (t) => {
    const wellBehaved = await startScriptedBackend(script);
    t.teardown(() => wellBehaved.close());
    const own = await startProxy(quietYaml({ web: [wellBehaved.port] }));
    t.teardown(() => own.stop());
    const get = async (path: string) =>
      (await rawExchange(own.address.port, `GET ${path} HTTP/1.1\r\nHost: h.test\r\n\r\n`, { idleMs: 100 }))
        .text;
    await get('/warm');
    const connections = wellBehaved.connections;
    for (let i = 0; i < 5; i++) t.regex(await get(`/plain-${i}`), /right \/plain-/);
    t.is(wellBehaved.connections, connections);
  },
);

test.serial('after bytes nobody asked for, that backend gets no connection reuse', async (t) => {
  // Every hostile case above happened on this backend: each request now has a connection of its own.
  const connections = backend.connections;
  for (let i = 0; i < 3; i++)
    t.regex(await send(`GET /after-${i} HTTP/1.1\r\nHost: h.test\r\n\r\n`), /right \/after-/);
  t.is(backend.connections, connections + 3);
});

/** The body of a chunked message (test-side decoder), and its trailer section. */
function dechunk(text: Buffer): { body: Buffer; trailers: string } {
  const parts: Buffer[] = [];
  let at = text.indexOf('\r\n\r\n') + 4;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0)
      return { body: Buffer.concat(parts), trailers: text.subarray(lineEnd + 2).toString('latin1') };
    parts.push(text.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

for (const path of ['/gzip-chunked', '/gzip-close']) {
  test.serial(
    `Transfer-Encoding gzip reaches an HTTP/1.1 client as gzip, never as a corrupt plain body (${path})`,
    async (t) => {
      const { bytes, text } = await rawExchange(
        sluice.address.port,
        `GET ${path} HTTP/1.1\r\nHost: h.test\r\n\r\n`,
        {
          idleMs: 200,
        },
      );
      t.regex(text, /\r\nTransfer-Encoding: gzip, chunked\r\n/);
      t.is(gunzipSync(dechunk(bytes).body).toString(), page);
      t.regex(text, /x-cache: BYPASS/i);
    },
  );
  test.serial(`an HTTP/1.0 client, which cannot be told about gzip, gets 502 (${path})`, async (t) => {
    const { text } = await rawExchange(sluice.address.port, `GET ${path} HTTP/1.0\r\nHost: h.test\r\n\r\n`, {
      idleMs: 200,
    });
    t.deepEqual(statuses(text), [502]);
  });
}

test.serial('response trailers are filtered like fields', async (t) => {
  const { bytes } = await rawExchange(sluice.address.port, 'GET /trailers HTTP/1.1\r\nHost: h.test\r\n\r\n', {
    idleMs: 200,
  });
  const { body, trailers } = dechunk(bytes);
  t.is(body.toString(), 'ok');
  t.is(trailers, 'X-Trace: abc\r\ngrpc-status: 0\r\n\r\n');
});

test.serial(
  'a backend that switches to a protocol nobody offered (h2c for websocket) gets the client a 502',
  async (t) => {
    const text = await send(
      'GET /switch-h2c HTTP/1.1\r\nHost: h.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    t.deepEqual(statuses(text), [502]);
  },
);

test.serial('chunk sizes with leading zeros are relayed as their value, in plain hex', async (t) => {
  const text = await send('GET /zero-padded HTTP/1.1\r\nHost: h.test\r\n\r\n');
  t.deepEqual(statuses(text), [200]);
  t.true(text.endsWith('\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), text);
});

test.serial('an HTTP/1.0 answer with Transfer-Encoding is faulty framing: a 502', async (t) => {
  for (const version of ['1.1', '1.0']) {
    const text = await send(`GET /http10-chunked HTTP/${version}\r\nHost: h.test\r\n\r\n`);
    t.deepEqual(statuses(text), [502], version);
    t.true(text.endsWith('\r\n\r\nbackend sent a malformed response\n'), text);
  }
});

test.serial(
  'a backend that switches protocols for a request without Upgrade gets the client a 502',
  async (t) => {
    const text = await send('GET /switch-unasked HTTP/1.1\r\nHost: h.test\r\n\r\n');
    t.deepEqual(statuses(text), [502]);
    t.true(text.endsWith('\r\n\r\nbackend switched to a protocol nobody asked for\n'), text);
    t.false(text.includes('raw'));
  },
);
