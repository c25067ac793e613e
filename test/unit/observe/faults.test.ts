// The process-wide policy for bugs that escape (issue 10): one connection pays, not the process.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { contain } from '../../../src/observe/faults.ts';

const faults = fileURLToPath(new URL('../../../src/observe/faults.ts', import.meta.url));

function runScript(body: string): { status: number | null; stdout: string; stderr: string } {
  const script = `import { installProcessPolicy } from ${JSON.stringify(faults)};\n${body}`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('contain: an exception in a handler is reported and closes only that connection', (t) => {
  let closed = 0;
  const handler = contain(
    'test',
    () => closed++,
    (n: number) => {
      if (n === 2) throw new Error('bug');
    },
  );
  t.notThrows(() => handler(1));
  t.is(closed, 0);
  t.notThrows(() => handler(2));
  t.is(closed, 1);
});

test('installProcessPolicy: an uncaught exception and an unhandled rejection are reported, the process goes on', (t) => {
  const { status, stdout, stderr } = runScript(`installProcessPolicy();
setTimeout(() => { throw new Error('escaped from a timer'); }, 1);
setTimeout(() => { Promise.reject(new Error('nobody awaited')); }, 2);
setTimeout(() => console.log('still serving'), 50);`);
  t.is(status, 0, stderr);
  t.is(stdout.trim(), 'still serving');
  t.regex(stderr, /internal error in uncaught_exception: Error: escaped from a timer/);
  t.regex(stderr, /internal error in unhandled_rejection: Error: nobody awaited/);
});

test('installProcessPolicy: a storm of escaped errors ends the process with 70 for a supervisor', (t) => {
  const { status, stderr } = runScript(`installProcessPolicy();
for (let i = 0; i < 150; i++) setTimeout(() => { throw new Error('again'); }, 1);
setTimeout(() => console.log('should not get here'), 500);`);
  t.is(status, 70);
  t.regex(stderr, /internal errors within 10000 ms; exiting/);
});
