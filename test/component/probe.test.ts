// src/cli/probe.ts, the admin-port probe of images without curl, against Sluice in-process:
// the one-shot answer, and the readiness file keepalived tracks turning 1 as soon as a SIGTERM'd
// Sluice drains (while it still serves, during timeouts.shutdownDelay).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { probeAdmin, probeTarget, watchReadiness } from '../../src/cli/probe.ts';
import { closedPort, startNodeBackend } from '../support/node-backend.ts';
import { poolYaml, startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

test('a wildcard admin address is probed on loopback', (t) => {
  t.deepEqual(probeTarget('0.0.0.0:9100'), { host: '127.0.0.1', port: 9100 });
  t.deepEqual(probeTarget('[::]:9100'), { host: '127.0.0.1', port: 9100 });
  t.deepEqual(probeTarget('[::1]:9200'), { host: '::1', port: 9200 });
  t.throws(() => probeTarget('9100'), { message: 'expected host:port, got "9100"' });
});

test('the readiness file is 0 while /readyz answers 200 and 1 once shutdown began', async (t) => {
  const backend = await startNodeBackend((_request, response) => response.end('ok'));
  const sluice = await startProxy(
    poolYaml([backend.port], 'timeouts: { shutdown: 5s, shutdownDelay: 1s }').replace(
      'admin: false',
      'admin: 127.0.0.1:0',
    ),
  );
  const admin = `127.0.0.1:${sluice.adminAddress?.port}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-probe-'));
  const file = path.join(dir, 'state');
  const stop = watchReadiness({
    file,
    address: admin,
    path: '/readyz',
    everyMs: 20,
    timeoutMs: 500,
    streak: 2,
  });
  try {
    t.is(readFileSync(file, 'utf8'), '1\n', 'not ready until probed');
    t.is(await probeAdmin(admin, '/readyz', 1000), 200);
    t.is(await probeAdmin(admin, '/healthz', 1000), 200);
    t.is(await probeAdmin(`127.0.0.1:${await closedPort()}`, '/readyz', 1000), undefined);
    await until(
      'ready in the file',
      2000,
      async () => (readFileSync(file, 'utf8') === '0\n' ? true : undefined),
      10,
    );
    const stopping = sluice.stop();
    const began = Date.now();
    await until(
      'not ready in the file',
      900,
      async () => (readFileSync(file, 'utf8') === '1\n' ? true : undefined),
      10,
    );
    t.true(Date.now() - began < 1000, 'within shutdownDelay, while Sluice still serves');
    t.is(await probeAdmin(admin, '/readyz', 1000), 503);
    await stopping;
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
    await backend.close();
  }
});
