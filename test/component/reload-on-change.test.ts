// The reload sidecar of deploy/kubernetes/ (src/cli/reload-on-change.ts) against a real Sluice
// child process: a change of the config file's content reloads it without a restart; rewriting
// the same content sends nothing.
import { writeFileSync } from 'node:fs';
import test from 'ava';
import { findProcesses, watchAndSignal } from '../../src/cli/reload-on-change.ts';
import { startChildSluice } from '../support/child-sluice.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { poolYaml } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

test('a changed config file makes the sidecar SIGHUP Sluice, which applies it without restarting', async (t) => {
  // Echoes the header the route sets on requests, so the config in force shows in the answer.
  const backend = await startNodeBackend((request, response) =>
    response.end(String(request.headers['x-config'])),
  );
  const port = await freePort();
  const config = (version: string) =>
    poolYaml([backend.port])
      .replace('127.0.0.1:0', `127.0.0.1:${port}`)
      .replace('    pool: web\n', `    pool: web\n    headers: { set: { X-Config: "${version}" } }\n`);
  const sluice = await startChildSluice(config('1'));
  const signalled: number[][] = [];
  const stop = watchAndSignal({
    file: sluice.configPath,
    everyMs: 50,
    // The child's command line names its own config file: only it matches.
    match: sluice.configPath,
    log: (message, fields) => {
      if (message.startsWith('config file changed')) signalled.push(fields.pids as number[]);
    },
  });
  try {
    const header = async () => (await fetch(`http://127.0.0.1:${port}/`)).text();
    t.is(await header(), '1');
    t.deepEqual(findProcesses(sluice.configPath), [sluice.process.pid]);

    writeFileSync(sluice.configPath, config('1'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.deepEqual(signalled, [], 'the same content again is no change');

    writeFileSync(sluice.configPath, config('2'));
    t.is(
      await until('the new config applied', 10_000, async () => ((await header()) === '2' ? '2' : undefined)),
      '2',
    );
    t.deepEqual(signalled, [[sluice.process.pid]]);
    t.regex(sluice.output(), /"message":"config reloaded"/);
    t.is(sluice.process.exitCode, null, 'still the same process');
  } finally {
    stop();
    await sluice.stop();
    await backend.close();
  }
});
