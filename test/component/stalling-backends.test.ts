// Backends that keep talking without answering (issue 10): interim answers and a head sent a
// byte at a time cannot hold a client past the response-header time.
import type { Socket } from 'node:net';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { openSocket, readUntil, statuses } from '../support/raw-http.ts';
import { reply, type ScriptedBackend, startScriptedBackend } from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

const hint = 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n';

/** Writes `pieces` one every `ms`, until they run out or the socket closes. */
function drip(socket: Socket, pieces: string[], ms: number): void {
  const timer = setInterval(() => {
    const piece = pieces.shift();
    if (piece === undefined || socket.destroyed) clearInterval(timer);
    else socket.write(piece);
  }, ms);
  socket.on('close', () => clearInterval(timer));
}

const scripts: Record<string, (socket: Socket) => void> = {
  '/hints-forever': (socket) =>
    drip(
      socket,
      Array.from({ length: 1000 }, () => hint),
      100,
    ),
  '/head-a-byte-at-a-time': (socket) => drip(socket, [...reply('late')], 50),
  '/two-hints': (socket) => drip(socket, [hint, hint, reply('after two hints')], 100),
  '/in-time': (socket) => {
    setTimeout(() => socket.write(reply('in time')), 340);
  },
};

let backend: ScriptedBackend;
let sluice: RunningSluice;

test.before(async () => {
  backend = await startScriptedBackend((request, socket) => {
    scripts[request.line.split(' ')[1] ?? '']?.(socket);
  });
  sluice = await startProxy(
    quietYaml({ web: [backend.port] }, { extra: 'timeouts: { responseHeaders: 400ms }' }),
  );
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

/** The answer to GET `path` up to its final body, and how long it took. */
async function timed(path: string, body: string): Promise<{ text: string; ms: number }> {
  const started = Date.now();
  const socket = await openSocket(sluice.address.port);
  try {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    const text = await readUntil(socket, (text) => text.endsWith(body), 5000);
    return { text, ms: Date.now() - started };
  } finally {
    socket.destroy();
  }
}

test('interim answers without end: eight are passed on, then 502', async (t) => {
  const { text, ms } = await timed('/hints-forever', 'backend sent too many interim responses\n');
  t.deepEqual(statuses(text), [...Array.from({ length: 8 }, () => 103), 502]);
  // The ninth hint comes at about 900 ms; each one before it started the 400 ms anew.
  t.true(ms < 2500, `${ms} ms`);
});

test('a final head sent a byte at a time: 504 once the head is not whole in time', async (t) => {
  const { text, ms } = await timed('/head-a-byte-at-a-time', 'backend timed out\n');
  t.deepEqual(statuses(text), [504]);
  // 400 ms after its first byte (about 50 ms in); the whole head would have taken about 2 s.
  t.true(ms < 1500, `${ms} ms`);
});

test('a couple of interim answers, then the answer: all passed on', async (t) => {
  const { text } = await timed('/two-hints', 'after two hints');
  t.deepEqual(statuses(text), [103, 103, 200]);
});

test('a backend answering within responseHeaders is never cut: the timeout does not fire early', async (t) => {
  // 340 ms against 400 ms: within the proxy clock's 100 ms tick of the line.
  const answers: number[][] = [];
  for (let i = 0; i < 10; i++) answers.push(statuses((await timed('/in-time', 'in time')).text));
  t.deepEqual(
    answers,
    Array.from({ length: 10 }, () => [200]),
  );
});
