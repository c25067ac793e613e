// A supervisor's /readyz says 200 only when the proxy port takes traffic (audit O, D1): from the
// moment its admin port answers, while its workers still load, and through a rolling restart.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { httpRequest } from '../support/http.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('with 2 workers, whenever /readyz says 200 the proxy port answers, from start and through a roll', async (t) => {
  const backend = await startNodeBackend((request, response) => {
    request.resume();
    response.end('ok');
  });
  const [port, adminPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
  const config = join(dir, 'sluice.yaml');
  writeFileSync(
    config,
    `listen: 127.0.0.1:${port}
admin: 127.0.0.1:${adminPort}
accessLog: false
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:${backend.port}]
routes: [ { pool: web } ]
`,
  );
  const child = spawn(process.execPath, [main, '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_WORKERS: '2' },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const readyz = () =>
    httpRequest({ port: adminPort, path: '/readyz', host: '127.0.0.1' }).then(
      (reply) => reply.status,
      () => 0,
    );
  /** A request on a new connection: its status, or the connect error's code. */
  const proxied = () =>
    httpRequest({ port, path: '/', headers: { connection: 'close' } }).then(
      (reply) => String(reply.status),
      (error: NodeJS.ErrnoException) => error.code ?? 'error',
    );
  try {
    const answers: string[] = [];
    let ready = 0;
    const deadline = Date.now() + 15_000;
    // From the admin port's first answer (the workers are loading then) to 20 readys in a row.
    while (ready < 20 && Date.now() < deadline) {
      const status = await readyz();
      if (status === 200) {
        ready++;
        answers.push(await proxied());
      } else {
        ready = 0;
        await sleep(5);
      }
    }
    t.is(ready, 20, output);
    t.deepEqual(new Set(answers), new Set(['200']), 'every request sent when /readyz said 200 was answered');
    // A rolling restart replaces both workers: the other one serves meanwhile, so no 503.
    child.kill('SIGUSR2');
    const during: string[] = [];
    while (!output.includes('rolling restart done') && Date.now() < deadline + 15_000) {
      const status = await readyz();
      during.push(status === 200 ? await proxied() : `readyz ${status}`);
    }
    t.regex(output, /rolling restart done/);
    t.true(during.length > 0);
    // Never a 503 or a refused port; a reset is the one thing README allows at a roll (a retiring
    // worker's accept queue is not moved to the others where net.ipv4.tcp_migrate_req is 0).
    t.deepEqual(
      during.filter((answer) => answer !== '200' && answer !== 'ECONNRESET'),
      [],
      'ready and answering all through the roll',
    );
    t.true(during.filter((answer) => answer === '200').length > during.length / 2);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await backend.close();
  }
});
