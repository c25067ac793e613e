// sluice_retries_total counts the retries that happened: one per further backend tried, none
// when no other backend was left (audit O: it counted one retry too many per failed request).
import { createServer, type Server } from 'node:net';
import test from 'ava';
import { parseExposition } from '../support/design-metrics.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

test('a failed request counts attempts - 1 retries: none on a pool of one, one on a pool of two', async (t) => {
  // Backends that take each connection and close it unanswered: ports this test holds, so no
  // other test's server can answer on them (as on a port closed and then taken by another).
  const servers: Server[] = [];
  const failing = async (): Promise<number> => {
    const server = createServer((socket) => socket.destroy());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  };
  t.teardown(() => {
    for (const server of servers) server.close();
  });
  const [solo, first, second] = [await failing(), await failing(), await failing()];
  const sluice = await startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
pools:
  one:
    health: { interval: 1h, timeout: 1s }
    servers: [{ address: 127.0.0.1:${solo}, name: solo }]
  two:
    health: { interval: 1h, timeout: 1s }
    servers: [{ address: 127.0.0.1:${first}, name: a }, { address: 127.0.0.1:${second}, name: b }]
routes:
  - host: one.test
    pool: one
  - host: two.test
    pool: two
`);
  t.teardown(() => sluice.stop());
  for (const host of ['one.test', 'two.test']) {
    const answer = await rawExchange(
      sluice.address.port,
      `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    t.deepEqual(statuses(answer.text), [502]);
  }
  const scraped = await rawExchange(
    sluice.adminAddress?.port ?? 0,
    'GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n',
  );
  const samples = parseExposition(scraped.text.slice(scraped.text.indexOf('\r\n\r\n') + 4)).samples;
  const sum = (name: string, pool: string) =>
    samples.filter((s) => s.name === name && s.labels.pool === pool).reduce((total, s) => total + s.value, 0);
  t.is(sum('sluice_backend_errors_total', 'one'), 1);
  t.is(sum('sluice_retries_total', 'one'), 0);
  t.is(sum('sluice_backend_errors_total', 'two'), 2);
  t.is(sum('sluice_retries_total', 'two'), 1);
});
