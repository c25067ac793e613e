// `sluice client` as a process: whatever it waits for (a request body on a pipe that stays
// open, a stdout nobody reads), --max-time ends it with exit 28 and one line on stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sluice-client-'));
const servers: Server[] = [];
test.after.always(() => {
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A server that never answers, or (with `endless`) sends a 200 with a body that never ends. */
async function server(endless: boolean): Promise<number> {
  const s = createServer((socket) => {
    socket.on('error', () => {});
    if (!endless) return;
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
      const block = Buffer.alloc(1 << 16, 97);
      const pump = () => {
        while (!socket.destroyed) if (!socket.write(block)) return void socket.once('drain', pump);
      };
      pump();
    });
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as { port: number }).port;
}

interface Ended {
  code: number | null;
  ms: number;
  stderr: string;
}

/** Runs the client; stdin and stdout are pipes this side leaves open and never reads or ends. */
function client(args: string[]): Promise<Ended> {
  const started = Date.now();
  const child = spawn(process.execPath, [main, 'client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout.pause();
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 8000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(guard);
      child.stdin.destroy();
      child.stdout.destroy();
      resolve({ code, ms: Date.now() - started, stderr });
    });
  });
}

test('-m ends a run whose body comes from a stdin that stays open', async (t) => {
  const port = await server(false);
  const run = await client(['-m', '1', '-d', '@-', `http://127.0.0.1:${port}/`]);
  t.is(run.code, 28);
  t.true(run.ms < 7000, `${run.ms} ms`);
  t.is(run.stderr, 'sluice client: timed out after 1 s (--max-time 1) while reading the request body\n');
});

test('-m ends a run whose body is a named pipe nobody writes to', async (t) => {
  const port = await server(false);
  const fifo = join(dir, 'fifo');
  await new Promise<void>((resolve, reject) =>
    spawn('mkfifo', [fifo]).on('close', (code) => (code === 0 ? resolve() : reject(new Error('mkfifo')))),
  );
  const run = await client(['-m', '1', '-d', `@${fifo}`, `http://127.0.0.1:${port}/`]);
  t.is(run.code, 28);
  t.true(run.ms < 7000, `${run.ms} ms`);
  t.is(run.stderr, 'sluice client: timed out after 1 s (--max-time 1) while reading the request body\n');
});

test('-m ends a run whose stdout nobody reads: exit 28, one line, no stack trace', async (t) => {
  const port = await server(true);
  const run = await client(['-m', '1', `http://127.0.0.1:${port}/`]);
  t.is(run.code, 28);
  t.true(run.ms < 7000, `${run.ms} ms`);
  t.regex(
    run.stderr,
    /^sluice client: timed out after 1 s \(--max-time 1\) while receiving the body from 127\.0\.0\.1:\d+ \(\d+ KiB so far\)\n$/,
  );
});
