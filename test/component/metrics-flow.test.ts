// The counters of /metrics move as a scripted scenario runs: a request, a 5xx, a retry,
// requests Sluice refuses itself, a backend going down and coming back.
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { type Exposition, parseExposition } from '../support/design-metrics.ts';
import { closedPort, type NodeBackend, startNodeBackend } from '../support/node-backend.ts';
import { rawExchange, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';

let good: NodeBackend;
let deadPort: number;
let sluice: RunningSluice;

const handler: Parameters<typeof startNodeBackend>[0] = (request, response) => {
  response.statusCode = request.url === '/fail' ? 500 : 200;
  response.end('body of ten');
};

test.before(async () => {
  good = await startNodeBackend(handler);
  deadPort = await closedPort();
  sluice = await startProxy(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
pools:
  web:
    health: { interval: 200ms, timeout: 100ms, rise: 1, fall: 3 }
    servers:
      - address: 127.0.0.1:${good.port}
        name: good
      - address: 127.0.0.1:${deadPort}
        name: dead
routes:
  - host: only.test
    pool: web
`);
});

test.after.always(async () => {
  await sluice?.stop();
  await good?.close();
});

async function scrape(): Promise<Exposition> {
  const result = await rawExchange(
    sluice.adminAddress?.port ?? 0,
    'GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n',
  );
  return parseExposition(result.text.slice(result.text.indexOf('\r\n\r\n') + 4));
}

function value(exposition: Exposition, name: string, labels: Record<string, string>): number | undefined {
  return exposition.samples.find(
    (sample) => sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v),
  )?.value;
}

/** Sends one request on its own connection, which Sluice closes after answering. */
async function send(request: string): Promise<number[]> {
  const closing = request.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n');
  return statuses((await rawExchange(sluice.address.port, closing)).text);
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test.serial('requests, a 5xx, a retry and refusals are counted where they belong', async (t) => {
  // The dead backend is tried once (round robin), refused, and the request retried on the good one.
  t.deepEqual(await send('GET / HTTP/1.1\r\nHost: only.test\r\n\r\n'), [200]);
  t.deepEqual(await send('GET / HTTP/1.1\r\nHost: only.test\r\n\r\n'), [200]);
  t.deepEqual(await send('GET /fail HTTP/1.1\r\nHost: only.test\r\n\r\n'), [500]);
  t.deepEqual(await send('GET / HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n'), [404]);
  t.deepEqual(await send('GET / HTTP/1.1\r\n\r\n'), [400]);
  const metrics = await scrape();
  const good = { pool: 'web', backend: 'good' };
  t.is(value(metrics, 'sluice_http_requests_total', { ...good, method: 'GET', code: '200' }), 2);
  t.is(value(metrics, 'sluice_http_requests_total', { ...good, method: 'GET', code: '500' }), 1);
  t.is(value(metrics, 'sluice_http_request_duration_seconds_count', { ...good, code_class: '2xx' }), 2);
  t.is(value(metrics, 'sluice_http_request_duration_seconds_count', { ...good, code_class: '5xx' }), 1);
  t.is(value(metrics, 'sluice_backend_response_duration_seconds_count', good), 3);
  t.true((value(metrics, 'sluice_backend_connect_duration_seconds_count', good) ?? 0) >= 1);
  t.is(value(metrics, 'sluice_http_request_bytes_total', good), 0);
  t.true((value(metrics, 'sluice_http_response_bytes_total', good) ?? 0) > 3 * 11);
  t.is(value(metrics, 'sluice_retries_total', { pool: 'web', backend: 'dead', reason: 'refused' }), 1);
  t.is(value(metrics, 'sluice_backend_errors_total', { pool: 'web', backend: 'dead', type: 'refused' }), 1);
  t.is(value(metrics, 'sluice_requests_rejected_total', { reason: 'no_route' }), 1);
  t.is(value(metrics, 'sluice_requests_rejected_total', { reason: 'bad_request' }), 1);
  t.true(
    (value(metrics, 'sluice_health_checks_total', { pool: 'web', backend: 'dead', result: 'refused' }) ??
      0) >= 1,
  );
});

test.serial('a backend going down and coming back moves its state gauges and transitions', async (t) => {
  const dead = { pool: 'web', backend: 'dead' };
  await until(async () => value(await scrape(), 'sluice_backend_up', dead) === 0, 2000);
  let metrics = await scrape();
  t.is(value(metrics, 'sluice_backend_state', { ...dead, state: 'down' }), 1);
  t.is(value(metrics, 'sluice_backend_state', { ...dead, state: 'up' }), 0);
  t.is(value(metrics, 'sluice_backend_state_transitions_total', { ...dead, to: 'down' }), 1);

  // The same port again: the backend comes back.
  const revived = await startNodeBackend(handler, deadPort);
  try {
    await until(async () => value(await scrape(), 'sluice_backend_up', dead) === 1, 2000);
    metrics = await scrape();
    t.is(value(metrics, 'sluice_backend_state', { ...dead, state: 'slow_start' }), 1);
    t.is(value(metrics, 'sluice_backend_state_transitions_total', { ...dead, to: 'slow_start' }), 1);
    t.true((value(metrics, 'sluice_health_checks_total', { ...dead, result: 'success' }) ?? 0) >= 1);
  } finally {
    await revived.close();
  }
});
