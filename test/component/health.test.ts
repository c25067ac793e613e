// Health in the data path: active checks take a dead backend out of rotation, the admin port
// drains one, passive checks eject one that keeps failing.
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { closedPort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

const health = `    health: { interval: 200ms, timeout: 100ms, rise: 2, fall: 2 }`;

function yaml(ports: readonly number[]): string {
  return `listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
pools:
  web:
${health}
    servers:
${ports.map((port, index) => `      - address: 127.0.0.1:${port}\n        name: b${index + 1}`).join('\n')}
`;
}

async function named(name: string, failGets = false): Promise<NodeBackend> {
  return startNodeBackend((request, response) => {
    const status = failGets && request.method === 'GET' ? 503 : 200;
    response.writeHead(status, { 'x-backend': name });
    response.end(name);
  });
}

async function whoAnswers(sluice: RunningSluice, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let index = 0; index < count; index++) {
    const result = await rawExchange(
      sluice.address.port,
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    names.push(/x-backend: (\S+)/i.exec(result.text)?.[1] ?? String(statuses(result.text)[0]));
  }
  return names;
}

async function admin(
  sluice: RunningSluice,
  method: string,
  path: string,
): Promise<{ status: number; body: unknown }> {
  const result = await rawExchange(
    sluice.adminAddress?.port ?? 0,
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
  );
  const body = result.text.slice(result.text.indexOf('\r\n\r\n') + 4);
  return {
    status: statuses(result.text)[0] ?? 0,
    body: /application\/json/.test(result.text) ? JSON.parse(body) : body,
  };
}

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return Date.now() - started;
}

test('a backend that stops is marked down by active checks and gets no traffic', async (t) => {
  const one = await named('b1');
  const two = await named('b2');
  const sluice = await startProxy(yaml([one.port, two.port]));
  try {
    const backend = sluice.pools.get('web')?.backends[1];
    await two.close();
    // interval x fall + timeout, plus the fast interval and the clock tick.
    const detected = await until(() => backend?.health.state === 'down', 900);
    t.log(`marked down after ${detected} ms`);
    t.deepEqual(await whoAnswers(sluice, 6), ['b1', 'b1', 'b1', 'b1', 'b1', 'b1']);
    const status = await admin(sluice, 'GET', '/backends/web/b2');
    t.like(status.body, { state: 'down', lastCheck: 'refused', routable: false });
  } finally {
    await sluice.stop();
    await one.close();
  }
});

test('a drained backend gets no new requests and reports when it is drained', async (t) => {
  const one = await named('b1');
  const two = await named('b2');
  const sluice = await startProxy(yaml([one.port, two.port]));
  try {
    t.deepEqual(await whoAnswers(sluice, 4), ['b1', 'b2', 'b1', 'b2']);
    const drained = await admin(sluice, 'POST', '/backends/web/b1/drain');
    t.is(drained.status, 202);
    t.like(drained.body, { state: 'draining', inFlight: 0, drained: true, routable: false });
    t.deepEqual(await whoAnswers(sluice, 4), ['b2', 'b2', 'b2', 'b2']);
    t.is((await admin(sluice, 'POST', '/backends/web/b1/undrain')).status, 202);
    const names = await whoAnswers(sluice, 20);
    t.true(names.includes('b1'), 'b1 takes traffic again (in slow start)');
    t.is((await admin(sluice, 'GET', '/backends/web/nope')).status, 404);
  } finally {
    await sluice.stop();
    await one.close();
    await two.close();
  }
});

test('a drain closes the connections busy at that moment as their exchanges end; an undrain keeps them again', async (t) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slow = await startNodeBackend(async (request, response) => {
    if (request.url === '/slow') await held;
    response.end('b1');
  });
  const sluice = await startProxy(yaml([slow.port]));
  t.teardown(async () => {
    await sluice.stop();
    await slow.close();
  });
  const backend = sluice.pools.get('web')?.backends[0];
  const busy = [0, 1, 2].map(() =>
    rawExchange(sluice.address.port, 'GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
  );
  await until(() => backend?.inFlight === 3, 2000);
  t.is((await admin(sluice, 'POST', '/backends/web/b1/drain')).status, 202);
  release();
  for (const answer of await Promise.all(busy)) t.deepEqual(statuses(answer.text), [200]);
  await until(() => backend?.connections.open === 0, 2000);
  t.like((await admin(sluice, 'GET', '/backends/web/b1')).body, { drained: true, inFlight: 0 });
  t.is((await admin(sluice, 'POST', '/backends/web/b1/undrain')).status, 202);
  await whoAnswers(sluice, 3);
  t.is(backend?.connections.idleCount, 1, 'kept for reuse again');
});

test('five gateway errors in a row eject a backend (passive check)', async (t) => {
  const good = await named('b1');
  const failing = await named('b2', true);
  const sluice = await startProxy(
    yaml([good.port, failing.port]).replace(health, '    health: { interval: 1m, timeout: 1s }'),
  );
  try {
    const backend = sluice.pools.get('web')?.backends[1];
    const seen = await whoAnswers(sluice, 10);
    t.deepEqual(seen, ['b1', 'b2', 'b1', 'b2', 'b1', 'b2', 'b1', 'b2', 'b1', 'b2']);
    t.is(backend?.health.state, 'ejected');
    t.deepEqual(await whoAnswers(sluice, 4), ['b1', 'b1', 'b1', 'b1']);
  } finally {
    await sluice.stop();
    await good.close();
    await failing.close();
  }
});

test('never more than half a pool is ejected: the last good half keeps serving', async (t) => {
  const dead = [await closedPort(), await closedPort()];
  const sluice = await startProxy(yaml(dead).replace(health, '    health: { interval: 1m, timeout: 1s }'));
  try {
    await whoAnswers(sluice, 12);
    const states = sluice.pools.get('web')?.backends.map((backend) => backend.health.state);
    t.deepEqual(states?.filter((state) => state === 'ejected').length, 1);
  } finally {
    await sluice.stop();
  }
});
