// SIGHUP re-reads the config: routes and backends change, open client connections stay; the
// outcome is in the log and in sluice_config_* on /metrics.
import { writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import test from 'ava';
import { startChildSluice } from '../support/child-sluice.ts';
import { parseExposition } from '../support/design-metrics.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil } from '../support/raw-http.ts';

let adminPort = 0;

function yaml(port: number, backendPort: number): string {
  return `listen: 127.0.0.1:${port}
admin: 127.0.0.1:${adminPort}
pools:
  web:
    servers:
      - address: 127.0.0.1:${backendPort}
`;
}

test('SIGHUP swaps the backend while a client keeps its connection; a bad file changes nothing', async (t) => {
  const old = await startNodeBackend((_request, response) => response.end('old'));
  const fresh = await startNodeBackend((_request, response) => response.end('new'));
  const port = await freePort();
  adminPort = await freePort();
  const sluice = await startChildSluice(yaml(port, old.port));
  const reloadMetrics = async () => {
    const { text } = await rawExchange(
      adminPort,
      'GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const samples = parseExposition(text.slice(text.indexOf('\r\n\r\n') + 4)).samples;
    const get = (name: string, result?: string) =>
      samples.find((x) => x.name === name && (result === undefined || x.labels.result === result))?.value;
    return {
      success: get('sluice_config_reloads_total', 'success'),
      failure: get('sluice_config_reloads_total', 'failure'),
      lastOk: get('sluice_config_last_reload_successful'),
      lastOkAt: get('sluice_config_last_reload_success_timestamp_seconds') ?? 0,
    };
  };
  const socket = await openSocket(port);
  const stdout = sluice.process.stdout as Readable;
  const ask = async () => {
    socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const text = await readUntil(socket, (received) => /\r\n\r\n(old|new)$/.test(received));
    return text.slice(-3);
  };
  try {
    t.is(await ask(), 'old');
    const atStart = await reloadMetrics();
    t.like(atStart, { success: 0, failure: 0, lastOk: 1 });
    t.true(Math.abs(atStart.lastOkAt - Date.now() / 1000) < 30, 'the start counts as a successful load');
    writeFileSync(sluice.configPath, yaml(port, fresh.port));
    sluice.process.kill('SIGHUP');
    await readUntil(stdout, (out) => out.includes('config reloaded'));
    t.is(await ask(), 'new');
    const reloaded = await reloadMetrics();
    t.like(reloaded, { success: 1, failure: 0, lastOk: 1 });
    t.true(reloaded.lastOkAt >= atStart.lastOkAt);

    writeFileSync(sluice.configPath, 'pools:\n  web:\n    servers: [nowhere]\n');
    sluice.process.kill('SIGHUP');
    await readUntil(stdout, (out) => out.includes('config not reloaded'));
    // Each problem with where it is in the file.
    t.true(
      sluice.output().includes(`${sluice.configPath}:3:15: pools.web.servers[0].address: expected host:port`),
      sluice.output(),
    );
    t.is(await ask(), 'new');
    t.deepEqual(await reloadMetrics(), { ...reloaded, failure: 1, lastOk: 0 });
  } finally {
    socket.destroy();
    await sluice.stop();
    await old.close();
    await fresh.close();
  }
});
