// SIGHUP re-reads the config: routes and backends change, open client connections stay.
import { writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import test from 'ava';
import { startChildSluice } from '../support/child-sluice.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, readUntil } from '../support/raw-http.ts';

function yaml(port: number, backendPort: number): string {
  return `listen: 127.0.0.1:${port}
admin: false
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
  const sluice = await startChildSluice(yaml(port, old.port));
  const socket = await openSocket(port);
  const stdout = sluice.process.stdout as Readable;
  const ask = async () => {
    socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const text = await readUntil(socket, (received) => /\r\n\r\n(old|new)$/.test(received));
    return text.slice(-3);
  };
  try {
    t.is(await ask(), 'old');
    writeFileSync(sluice.configPath, yaml(port, fresh.port));
    sluice.process.kill('SIGHUP');
    await readUntil(stdout, (out) => out.includes('config reloaded'));
    t.is(await ask(), 'new');

    writeFileSync(sluice.configPath, 'pools:\n  web:\n    servers: [nowhere]\n');
    sluice.process.kill('SIGHUP');
    await readUntil(stdout, (out) => out.includes('config not reloaded'));
    t.regex(sluice.output(), /pools\.web\.servers\[0\]\.address: expected host:port/);
    t.is(await ask(), 'new');
  } finally {
    socket.destroy();
    await sluice.stop();
    await old.close();
    await fresh.close();
  }
});
