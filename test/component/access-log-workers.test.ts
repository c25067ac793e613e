// Workers share one stdout. On a pipe, a write of up to PIPE_BUF (4096) bytes is atomic, so a
// worker's access line must fit one: a longer one is cut in its client-shaped fields and marked
// `"truncated":true`, and stays one valid JSON line. One process alone keeps its long lines whole.
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { freePort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { rawExchange } from '../support/raw-http.ts';

let backend: NodeBackend;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    request.resume();
    response.end('ok');
  });
});

test.after.always(async () => {
  await backend?.close();
});

const config = async () => `listen: 127.0.0.1:${await freePort()}
admin: 127.0.0.1:0
accessLog: { to: stdout, flush: 20ms }
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:${backend.port}]
routes:
  - pool: web
`;

const longPath = `/${'p'.repeat(5000)}`;
const longAgent = `agent/${'"'.repeat(100)}${'a'.repeat(2000)}`;

/** Sends a long request and a short one on new connections; returns their access lines. */
async function accessLines(sluice: ChildSluice): Promise<Record<string, unknown>[]> {
  for (const path of [longPath, '/short'])
    await rawExchange(
      sluice.port,
      `GET ${path} HTTP/1.1\r\nHost: a\r\nUser-Agent: ${longAgent}\r\nConnection: close\r\n\r\n`,
    );
  const lines = () =>
    sluice
      .output()
      .split('\n')
      .filter((line) => line.includes('"type":"access"'));
  for (let i = 0; i < 100 && lines().length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return lines().map((line) => ({ bytes: Buffer.byteLength(line) + 1, ...JSON.parse(line) }));
}

test('with workers, a line over 4096 bytes is cut to fit one atomic write, marked truncated', async (t) => {
  const sluice = await startChildSluice(await config(), '2');
  try {
    const [long, short] = await accessLines(sluice);
    t.is(long?.bytes, 4096, 'the longest line that is one atomic write: nothing cut needlessly');
    t.is(long?.truncated, true);
    t.is(long?.status, 200);
    t.true(longPath.startsWith(long?.path as string), 'the path is cut, not changed');
    t.true(String(long?.path).length > 1000, 'cut by the excess, not emptied');
    t.is(
      long?.userAgent,
      longAgent,
      'the longest field gives way first; the user agent, shorter, stays whole',
    );
    t.is(short?.path, '/short');
    t.is(short?.truncated, undefined);
  } finally {
    await sluice.stop();
  }
});

test('one process keeps a long line whole', async (t) => {
  const sluice = await startChildSluice(await config(), '1');
  try {
    const [long] = await accessLines(sluice);
    t.is(long?.path, longPath);
    t.is(long?.userAgent, longAgent);
    t.is(long?.truncated, undefined);
  } finally {
    await sluice.stop();
  }
});
