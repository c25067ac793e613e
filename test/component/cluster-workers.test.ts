// Two workers behave as one process does (audit J): a POST in one worker invalidates the copy in
// the other, a SIGUSR1 to a worker opens no debugger, a worker's events say they are events, and
// a second Sluice cannot join the port of a running one.
import { connect } from 'node:net';
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { httpRequest } from '../support/http.ts';
import { freePort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { rawExchange } from '../support/raw-http.ts';

let version = 1;
let backend: NodeBackend;
let sluice: ChildSluice;
let yaml: string;

test.before(async () => {
  backend = await startNodeBackend((request, response) => {
    if (request.method === 'POST') version++;
    request.resume();
    const body = `version ${version}`;
    response.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length });
    response.end(body);
  });
  yaml = `listen: 127.0.0.1:${await freePort()}
admin: 127.0.0.1:0
accessLog: false
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:${backend.port}]
routes:
  - pool: web
    cache: true
`;
  sluice = await startChildSluice(yaml, '2');
});

test.after.always(async () => {
  await sluice?.stop();
  await backend?.close();
});

/** A GET on a new connection (the kernel spreads new connections over both workers). */
const fresh = async (path: string) =>
  (await rawExchange(sluice.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)).text;

const workerPids = async (): Promise<number[]> => {
  const reply = await httpRequest({ port: sluice.adminPort ?? 0, path: '/status', host: '127.0.0.1' });
  return JSON.parse(reply.body.toString()).workers.map((worker: { pid: number }) => worker.pid);
};

test.serial('a POST in one worker invalidates the copy the other worker stored', async (t) => {
  // Both workers store version 1.
  for (let i = 0; i < 20; i++) t.regex(await fresh('/item'), /\r\n\r\nversion 1$/);
  const post = await rawExchange(
    sluice.port,
    'POST /item HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
  );
  t.true(post.text.endsWith('version 2'));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const bodies = new Set<string>();
  for (let i = 0; i < 20; i++) bodies.add((await fresh('/item')).split('\r\n\r\n')[1] ?? '');
  t.deepEqual([...bodies], ['version 2'], 'no worker answers with the copy the POST replaced');
});

test.serial('a SIGUSR1 to a worker process, even one still loading, opens no debugger', async (t) => {
  const status = async () =>
    JSON.parse(
      (
        await httpRequest({ port: sluice.adminPort ?? 0, path: '/status', host: '127.0.0.1' })
      ).body.toString(),
    );
  const before = await status();
  // A worker killed: the spare takes its slot and a new spare boots, loading its modules.
  process.kill(before.workers[0].pid, 'SIGKILL');
  let booting: number | undefined;
  for (let i = 0; i < 300 && booting === undefined; i++) {
    const spare = (await status()).spare;
    if (spare && spare.pid !== before.spare?.pid && !spare.booted) booting = spare.pid;
    else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  t.truthy(booting, 'caught the new spare while it loads');
  const targets = [booting as number, ...(await workerPids())];
  for (const pid of targets) process.kill(pid, 'SIGUSR1');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const inspector = await new Promise<string>((resolve) => {
    const socket = connect(9229, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('listening');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  t.is(inspector, 'ECONNREFUSED');
  t.notRegex(sluice.output(), /Debugger listening/);
  t.regex(await fresh('/item'), /^HTTP\/1\.1 200 /);
});

test.serial("a worker's own log lines are events, as the supervisor's are", async (t) => {
  // A reload makes every worker log its backends' change.
  sluice.process.kill('SIGHUP');
  const deadline = Date.now() + 5000;
  const fromWorkers = () =>
    sluice
      .output()
      .split('\n')
      .filter(
        (line) =>
          line.startsWith('{') && line.includes('"message":"backends changed"') && line.includes('"worker":'),
      )
      .map((line) => JSON.parse(line));
  while (fromWorkers().length < 2 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(fromWorkers().length, 2);
  for (const line of fromWorkers()) t.is(line.type, 'event', JSON.stringify(line));
});

test.serial(
  'a second Sluice on the port of a running one exits with one line, and takes none of its traffic',
  async (t) => {
    const error = await t.throwsAsync(startChildSluice(yaml, '2'));
    const output = error?.message ?? '';
    t.regex(
      output,
      new RegExp(
        `listen: cannot listen on 127\\.0\\.0\\.1:${sluice.port}: address already in use \\(EADDRINUSE\\)`,
      ),
    );
    t.notRegex(output, /\n\s+at /, 'no stack trace');
    for (let i = 0; i < 10; i++) t.regex(await fresh('/item'), /^HTTP\/1\.1 200 /);
  },
);
