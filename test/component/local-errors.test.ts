// A full machine is not a failing backend (issue 10): EMFILE on a backend connect answers 503
// and is counted as a local error; the backend is neither marked nor ejected, nothing is
// retried elsewhere; accept backs off on EMFILE and serves again a moment later.
import { Socket } from 'node:net';
import test from 'ava';
import { UpstreamConnection } from '../../src/upstream/connection.ts';
import { type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

let one: NodeBackend;
let two: NodeBackend;

test.before(async () => {
  const ok = (name: string) => startNodeBackend((_request, response) => response.end(name));
  one = await ok('one');
  two = await ok('two');
});
test.after.always(async () => {
  await one?.close();
  await two?.close();
});

const emfile = () =>
  Object.assign(new Error('connect EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'connect' });

test('EMFILE on connecting to a backend: 503, a local error, the backends stay up and unmarked', async (t) => {
  const sluice = await startProxy(quietYaml({ web: [one.port, two.port] }));
  t.teardown(() => sluice.stop());
  const backends = sluice.pools.get('web')?.backends ?? [];
  // Every new backend socket fails the way connect() fails when descriptors run out.
  for (const backend of backends) {
    const pool = backend.connections as unknown as { connect: unknown; open: number };
    pool.connect = () => {
      const socket = new Socket();
      const connection = new UpstreamConnection(socket, () => pool.open--);
      pool.open++;
      setImmediate(() => socket.destroy(emfile()));
      return connection;
    };
  }
  for (let i = 0; i < 12; i++) {
    const { text } = await rawExchange(sluice.address.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', {
      idleMs: 100,
    });
    t.deepEqual(statuses(text), [503]);
  }
  const metrics = (await sluice.metrics.render()).body;
  t.regex(metrics, /sluice_local_errors_total\{type="EMFILE"\} 12/);
  t.notRegex(metrics, /sluice_backend_errors_total\{[^}]*\} [1-9]/);
  t.notRegex(metrics, /sluice_retries_total\{[^}]*\} [1-9]/);
  t.notRegex(metrics, /sluice_backend_ejections_total\{[^}]*\} [1-9]/);
  for (const backend of backends) t.is(backend.health.state, 'up');
});

test('EMFILE at accept: new connections are shed for a moment, then served again', async (t) => {
  const sluice = await startProxy(quietYaml({ web: [one.port] }));
  t.teardown(() => sluice.stop());
  const server = (sluice.proxy as unknown as { server: import('node:net').Server }).server;
  server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
  const shed = await rawExchange(sluice.address.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 100 });
  t.is(shed.text, '');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const served = await rawExchange(sluice.address.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 100 });
  t.deepEqual(statuses(served.text), [200]);
  const metrics = (await sluice.metrics.render()).body;
  t.regex(metrics, /sluice_local_errors_total\{type="EMFILE"\} 1/);
  t.regex(metrics, /sluice_requests_rejected_total\{reason="accept_backoff"\} 1/);
});
