// What this machine refuses (audit E): a port taken, a log file that cannot be opened or written.
// A start fails with one line naming the key and leaves nothing bound; a reload fails whole and
// changes nothing; a log that cannot be written loses lines, never a client's next answer.
import { createServer, type Server } from 'node:net';
import test from 'ava';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { startSluice } from '../../src/sluice.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil } from '../support/raw-http.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

async function occupy(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

/** Whether `port` on loopback can be bound now (nothing left holding it). */
async function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const yaml = (listen: number, admin: number | false, extra = '') => `listen: 127.0.0.1:${listen}
admin: ${admin === false ? 'false' : `127.0.0.1:${admin}`}
${extra}
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers: [127.0.0.1:9]
`;

for (const key of ['listen', 'admin'] as const)
  test.serial(`the ${key} port taken: one line naming ${key}, and nothing left bound`, async (t) => {
    const [listen, admin] = [await freePort(), await freePort()];
    const taken = await occupy(key === 'listen' ? listen : admin);
    t.teardown(() => taken.close());
    const error = await t.throwsAsync(
      startSluice(parseConfig(yaml(listen, admin), 'test'), createLogger('error', true), { accessLog: null }),
      { instanceOf: ConfigError },
    );
    const port = key === 'listen' ? listen : admin;
    t.is(error?.message, `${key}: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`);
    t.true(await bindable(key === 'listen' ? admin : listen), 'the other port is free');
  });

test.serial('a log file that cannot be opened: the start fails naming accessLog.to', async (t) => {
  const config = parseConfig(yaml(0, false, 'accessLog: { to: /nonexistent/dir/access.log }'), 'test');
  const error = await t.throwsAsync(startSluice(config, createLogger('error', true)), {
    instanceOf: ConfigError,
  });
  t.is(
    error?.message,
    'accessLog.to: cannot open "/nonexistent/dir/access.log": no such file or directory (ENOENT)',
  );
});

test.serial('a reload whose log file cannot be opened changes nothing and counts a failure', async (t) => {
  const old = await startNodeBackend((_request, response) => response.end('old'));
  const fresh = await startNodeBackend((_request, response) => response.end('new'));
  const sluice = await startProxy(quietYaml({ old: [old.port] }));
  t.teardown(async () => {
    await sluice.stop();
    await old.close();
    await fresh.close();
  });
  const next = parseConfig(
    quietYaml({ fresh: [fresh.port] }).replace(
      'accessLog: false',
      'accessLog: { to: /nonexistent/dir/access.log }',
    ),
    'test',
  );
  await t.throwsAsync(sluice.reload(next), { message: /^accessLog\.to: cannot open/ });
  t.deepEqual([...sluice.pools.keys()], ['old']);
  const answer = await rawExchange(
    sluice.address.port,
    'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  t.true(answer.text.endsWith('old'), answer.text);
  t.regex((await sluice.metrics.render()).body, /sluice_config_reloads_total\{result="failure"\} 1\n/);
});

test.serial(
  'an access log that cannot be written loses lines, counted, and every answer still comes',
  async (t) => {
    const backend = await startNodeBackend((_request, response) => response.end('ok'));
    // /dev/full opens, and every write to it fails with ENOSPC (a full disk).
    const config = parseConfig(
      quietYaml({ web: [backend.port] }).replace(
        'accessLog: false',
        'accessLog: { to: /dev/full, buffer: 4KiB }',
      ),
      'test',
    );
    const sluice = await startSluice(config, createLogger('error', true));
    t.teardown(async () => {
      await sluice.stop();
      await backend.close();
    });
    const socket = await openSocket(sluice.address.port);
    t.teardown(() => socket.destroy());
    // A line is about 300 bytes: 60 of them fill the 4 KiB buffer several times over.
    for (let i = 0; i < 60; i++) {
      const answer = readUntil(socket, (text) => text.endsWith('\r\n\r\nok'), 2000);
      socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      t.true((await answer).startsWith('HTTP/1.1 200 OK'), `request ${i + 1} on the same connection`);
    }
    t.regex(
      (await sluice.metrics.render()).body,
      /sluice_local_errors_total\{type="access_log_write"\} [1-9]/,
    );
  },
);
