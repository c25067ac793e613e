// SIGHUP re-reads the config: routes and backends change, open client connections stay; the
// outcome is in the log and in sluice_config_* on /metrics. A backend replaced under its name
// keeps its series, its draining requests counted there.
import { writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import test from 'ava';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { type RunningSluice, startSluice } from '../../src/sluice.ts';
import { startChildSluice } from '../support/child-sluice.ts';
import { parseExposition } from '../support/design-metrics.ts';
import { freePort, startNodeBackend } from '../support/node-backend.ts';
import { openSocket, rawExchange, readUntil, statuses } from '../support/raw-http.ts';
import { startProxy } from '../support/sluice.ts';
import { until } from '../support/wait.ts';

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

    // A valid file whose name does not resolve: rejected with the key that names it.
    writeFileSync(
      sluice.configPath,
      yaml(port, fresh.port).replace(`127.0.0.1:${fresh.port}`, 'nowhere.invalid:80'),
    );
    sluice.process.kill('SIGHUP');
    // (A lookup that fails can take seconds here.)
    await readUntil(stdout, (out) => /nowhere[^\n]*config not reloaded/.test(out), 20_000);
    t.regex(
      sluice.output(),
      /"error":"pools\.web\.servers\[0\]\.address: \\"nowhere\.invalid\\" does not resolve \([A-Z_]+\)"[^\n]*"message":"config not reloaded"/,
    );
    t.is(await ask(), 'new');
    t.deepEqual(await reloadMetrics(), { ...reloaded, failure: 2, lastOk: 0 });
  } finally {
    socket.destroy();
    await sluice.stop();
    await old.close();
    await fresh.close();
  }
});

/** One pool `web` of one server, named `name`, at `port` (checks once at start). */
function named(name: string, port: number): string {
  return `listen: 127.0.0.1:0
admin: false
accessLog: false
pools:
  web:
    health: { interval: 1h, timeout: 1s }
    servers:
      - address: 127.0.0.1:${port}
        name: ${name}
`;
}

/** A backend answering `body`, except `/slow`, held until `release()` and then answered `code`. */
async function holdingBackend(body: string, code: number) {
  let release = () => {};
  let arrived = () => {};
  const held = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const backend = await startNodeBackend((request, response) => {
    if (request.url !== '/slow') return void response.end(body);
    arrived();
    release = () => {
      response.statusCode = code;
      response.end(body);
    };
  });
  return { backend, held, release: () => release() };
}

test('a backend replaced under its name keeps its series: the old one drains into them, the new one serves', async (t) => {
  const old = await holdingBackend('old', 200);
  const fresh = await holdingBackend('new', 201);
  const sluice: RunningSluice = await startProxy(named('b1', old.backend.port));
  t.teardown(async () => {
    await sluice.stop();
    await old.backend.close();
    await fresh.backend.close();
  });
  const get = async (path: string) =>
    statuses(
      (await rawExchange(sluice.address.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`))
        .text,
    );
  const scrape = async () => parseExposition((await sluice.metrics.render()).body).samples;
  const series = async (name: string, labels: Record<string, string> = {}) =>
    (await scrape())
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .map((s) => [s.labels, s.value]);
  const b1 = { pool: 'web', backend: 'b1' };
  /** b1's series of `name`, by the value of its label `label`. */
  const byState = async (name: string, label: string) =>
    Object.fromEntries(
      (await series(name, b1)).map(([labels, value]) => [(labels as Record<string, string>)[label], value]),
    );
  const requests = (code: string) => series('sluice_http_requests_total', { ...b1, code });

  t.deepEqual([...(await get('/')), ...(await get('/'))], [200, 200]);
  // A request in flight on the old address when the reload lands.
  const slow = await openSocket(sluice.address.port);
  slow.write('GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await old.held;

  await sluice.reload(parseConfig(named('b1', fresh.backend.port), 'test'));
  t.deepEqual(await requests('200'), [[{ ...b1, method: 'GET', code: '200' }, 2]], 'no reset');
  t.deepEqual(await series('sluice_backend_info'), [
    [{ ...b1, address: `127.0.0.1:${fresh.backend.port}` }, 1],
  ]);
  t.deepEqual(await byState('sluice_backend_state', 'state'), {
    up: 0,
    down: 0,
    ejected: 0,
    draining: 0,
    slow_start: 1,
  });
  t.deepEqual(await series('sluice_backend_up', b1), [[b1, 1]]);
  const bytes = async () => (await series('sluice_http_response_bytes_total', b1))[0]?.[1] as number;
  // Two answers of the same length (heads included) so far.
  const twoAnswers = await bytes();
  // The old one's drain, then the new one's slow start.
  t.deepEqual(await byState('sluice_backend_state_transitions_total', 'to'), {
    up: 0,
    down: 0,
    ejected: 0,
    draining: 1,
    slow_start: 1,
  });

  t.deepEqual([...(await get('/')), ...(await get('/')), ...(await get('/'))], [200, 200, 200]);
  old.release();
  t.deepEqual(statuses(await readUntil(slow, (text) => text.endsWith('old'))), [200]);
  slow.destroy();
  // Two before, three on the new address, one that drained from the old: six, all of one length.
  await until('the drained request counted', 3000, async () =>
    (await requests('200'))[0]?.[1] === 6 ? true : undefined,
  );
  t.deepEqual(await requests('200'), [[{ ...b1, method: 'GET', code: '200' }, 6]]);
  t.is(await bytes(), twoAnswers * 3);
  t.deepEqual(await series('sluice_http_request_duration_seconds_count', b1), [
    [{ ...b1, code_class: '2xx' }, 6],
  ]);

  // Gone by name: its series go, and a request draining from it brings none back.
  const drainingNew = await openSocket(sluice.address.port);
  drainingNew.write('GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await fresh.held;
  await sluice.reload(parseConfig(named('b2', old.backend.port), 'test'));
  fresh.release();
  t.deepEqual(statuses(await readUntil(drainingNew, (text) => text.endsWith('new'))), [201]);
  drainingNew.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const left = await scrape();
  t.deepEqual(
    left.filter((s) => s.labels.backend === 'b1'),
    [],
  );
  t.true(left.some((s) => s.name === 'sluice_backend_info' && s.labels.backend === 'b2'));
});

test('one process: SIGHUP keeps listen, admin and logFormat as they are, and warns that they need a restart', async (t) => {
  const backend = await startNodeBackend((_request, response) => response.end('ok'));
  const [port, admin, moved] = [await freePort(), await freePort(), await freePort()];
  const file = (listen: number, more: string) =>
    `listen: 127.0.0.1:${listen}\n${more}pools:\n  web:\n    servers: [127.0.0.1:${backend.port}]\n`;
  const sluice = await startChildSluice(file(port, `admin: 127.0.0.1:${admin}\n`));
  const ask = async () =>
    statuses((await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).text);
  try {
    // (An answer first: the signal handlers are installed once the start is through.)
    t.deepEqual(await ask(), [200]);
    writeFileSync(sluice.configPath, file(moved, 'admin: false\nlogFormat: text\n'));
    sluice.process.kill('SIGHUP');
    await until('the reload', 10_000, async () => sluice.output().includes('config reloaded') || undefined);
    const warning = sluice
      .output()
      .split('\n')
      .find((line) => line.includes('need a restart'));
    t.like(JSON.parse(warning ?? '{}'), {
      level: 'warn',
      message: 'these settings need a restart; kept as they are',
      keys: ['listen', 'admin', 'logFormat'],
    });
    t.deepEqual(await ask(), [200], 'the old port still serves');
  } finally {
    await sluice.stop();
    await backend.close();
  }
});

test('a reload that changes dnsRefresh resolves the names at the new period', async (t) => {
  const asked: number[] = [];
  const yaml = (refresh: string) =>
    `listen: 127.0.0.1:0\nadmin: false\naccessLog: false\ndnsRefresh: ${refresh}\npools:\n  web:\n    health: { interval: 1h, timeout: 1s }\n    servers: [web.test:9]\n`;
  const sluice = await startSluice(parseConfig(yaml('1h'), 'test'), createLogger('error', true), {
    accessLog: null,
    topology: {
      resolver: async () => {
        asked.push(Date.now());
        return ['127.0.0.1'];
      },
    },
  });
  t.teardown(() => sluice.stop());
  await sluice.reload(parseConfig(yaml('100ms'), 'test'));
  const afterReload = asked.length;
  await new Promise((resolve) => setTimeout(resolve, 650));
  t.true(asked.length - afterReload >= 4, `${asked.length - afterReload} lookups in 650 ms`);
});
