// The access log's writer on a real stdout: a pipe (as under Docker or systemd) and a file (as
// `sluice > access.log`), written with write(2)s of its own; a pipe that fills up (a slow log
// collector) loses nothing and keeps the order.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const writerModule = fileURLToPath(new URL('../../src/observe/log-writer.ts', import.meta.url));

/** A child process that writes `count` numbered lines of `width` bytes through a LogWriter to its stdout. */
function writerChild(count: number, width: number, stdout: 'pipe' | number) {
  const script = `
    import { LogWriter } from ${JSON.stringify(writerModule)};
    const writer = new LogWriter({ destination: { kind: 'stdout' }, bufferBytes: 65536, flushMs: 1000 });
    for (let i = 0; i < ${count}; i++) writer.write(Buffer.from(String(i).padStart(8, '0') + 'x'.repeat(${width - 9}) + '\\n'));
    writer.close();
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', stdout, 'inherit'],
  });
}

const exited = (child: ReturnType<typeof spawn>) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

/** Every line whole, numbered 0 … count-1 in order. */
function assertLines(t: import('ava').ExecutionContext, text: string, count: number, width: number): void {
  const lines = text.split('\n');
  t.is(lines.pop(), '', 'the output ends with a newline');
  t.is(lines.length, count);
  const wrong = lines.findIndex((line, i) => line.length !== width - 1 || Number(line.slice(0, 8)) !== i);
  t.is(wrong, -1, `line ${wrong} is not line ${wrong}, whole`);
}

test('to a pipe that is read slower than it is written: every line, whole, in order', async (t) => {
  const count = 20_000;
  const width = 100; // 2 MB, thirty times what a pipe holds
  const child = writerChild(count, width, 'pipe');
  const stdout = child.stdout;
  if (!stdout) throw new Error('no stdout');
  stdout.pause();
  // The pipe fills while nobody reads: the writer's write(2) meets EAGAIN and queues the rest.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  stdout.resume();
  t.is(await exited(child), 0);
  assertLines(t, Buffer.concat(chunks).toString(), count, width);
});

test('to a file: every line, in order', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'sluice-stdout-')), 'out.log');
  const fd = openSync(path, 'w');
  const count = 5000;
  const width = 300;
  try {
    t.is(await exited(writerChild(count, width, fd)), 0);
  } finally {
    closeSync(fd);
  }
  assertLines(t, readFileSync(path, 'utf8'), count, width);
});
