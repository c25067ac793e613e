// Two worker processes on one port in front of real nginx: the kernel spreads connections over
// both, /metrics and /status add them up, a backend's death is one verdict for the whole tree,
// and SIGHUP changes what every worker does.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import test from 'ava';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { httpRequest } from '../support/http.ts';
import {
  defaultServerConf,
  type NginxBackend,
  startNginxBackends,
  stopNginxBackends,
} from '../support/nginx.ts';
import { connectionOwners } from '../support/sockets.ts';
import { until } from '../support/wait.ts';

let backends: NginxBackend[] = [];
let sluice: ChildSluice;

const yaml = (servers: readonly NginxBackend[]) => `listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 2
accessLog: false
pools:
  web:
    servers:
${servers.map((b) => `      - { address: ${b.address}, name: ${b.name} }`).join('\n')}
    health: { interval: 500ms, timeout: 300ms, rise: 2, fall: 2 }
`;

test.before(async () => {
  // GET /fail: a gateway error from nginx-3 only (its health checks, on /, pass).
  backends = await startNginxBackends(3, {
    serverConf: (name) =>
      defaultServerConf(
        name,
        `    location = /fail {\n        return ${name === 'nginx-3' ? 502 : 200};\n    }\n`,
      ),
  });
  sluice = await startChildSluice(yaml(backends), '2');
});

test.after.always(async () => {
  await sluice?.stop();
  await stopNginxBackends(backends);
});

interface WorkerView {
  worker: number;
  pid: number;
  requests: number;
  connections: number;
}

interface BackendView {
  name: string;
  state: string;
  ejections: number;
}

async function status(): Promise<{ workers: WorkerView[]; pools: { backends: BackendView[] }[] }> {
  const reply = await httpRequest({ port: sluice.adminPort ?? 0, path: '/status' });
  return JSON.parse(reply.body.toString());
}

async function metrics(): Promise<string> {
  return (await httpRequest({ port: sluice.adminPort ?? 0, path: '/metrics' })).body.toString();
}

/** The sum of every series of `name` whose labels contain `match`. */
function sum(text: string, name: string, match = ''): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(match))
    .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Never reuses a connection. */
const fresh = new http.Agent({ keepAlive: false });

/** `count` GETs, each on a connection of its own (so the kernel picks a worker each time); X-Backend counts. */
async function spread(count: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, () =>
      httpRequest({ port: sluice.port, path: '/1k.txt', agent: fresh }),
    );
    for (const reply of await Promise.all(batch)) {
      if (reply.status !== 200) throw new Error(`status ${reply.status}`);
      const backend = String(reply.headers['x-backend']);
      seen.set(backend, (seen.get(backend) ?? 0) + 1);
    }
  }
  return seen;
}

const requestsByWorker = async () => new Map((await status()).workers.map((w) => [w.pid, w.requests]));

test.serial('both workers take traffic, and /metrics and /status add up to the requests sent', async (t) => {
  const before = await requestsByWorker();
  t.is(before.size, 2);
  const seen = await spread(400);
  const after = await requestsByWorker();
  const served = [...after].map(([pid, requests]) => requests - (before.get(pid) ?? 0));
  t.log(`per worker ${served.join(' / ')}; per backend ${JSON.stringify(Object.fromEntries(seen))}`);
  t.is(
    served.reduce((a, b) => a + b, 0),
    400,
  );
  for (const share of served) t.true(share >= 100, `a worker took only ${share} of 400 connections`);
  // Workers push their counts every second: the sum reaches the requests sent within one push.
  const text = await until('the counts of every request', 5_000, async () => {
    const scraped = await metrics();
    return sum(scraped, 'sluice_http_requests_total') >= 400 ? scraped : undefined;
  });
  t.is(sum(text, 'sluice_http_requests_total'), 400);
  for (const backend of backends)
    t.is(sum(text, 'sluice_http_requests_total', `backend="${backend.name}"`), seen.get(backend.name) ?? 0);
  t.regex(text, /^sluice_workers 2$/m);
  t.regex(text, /^sluice_worker_restarts_total\{reason="crashed"\} 0$/m);
});

test.serial('passive failures seen by both workers add up to one ejection', async (t) => {
  const failing = backends[2] as NginxBackend;
  const pids = (await status()).workers.map((w) => w.pid);
  // One keep-alive connection held by each worker, to alternate between them.
  const byWorker = new Map<number, http.Agent>();
  for (let tries = 0; byWorker.size < 2 && tries < 50; tries++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let localPort = 0;
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: sluice.port, path: '/1k.txt', agent }, (res) => {
          localPort = res.socket.localPort ?? 0;
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    const owner = connectionOwners(sluice.port, pids).get(localPort);
    if (owner !== undefined && !byWorker.has(owner)) byWorker.set(owner, agent);
    else agent.destroy();
  }
  t.is(byWorker.size, 2, 'no connection on each worker');
  const agents = [...byWorker];
  const failuresPerWorker = new Map(pids.map((pid) => [pid, 0]));
  let failures = 0;
  let ejections = 0;
  for (let i = 0; i < 60 && failures < 5; i++) {
    const [pid, agent] = agents[i % 2] as [number, http.Agent];
    const reply = await httpRequest({ port: sluice.port, path: '/fail', agent });
    if (reply.headers['x-backend'] !== failing.name) continue;
    failures++;
    failuresPerWorker.set(pid, (failuresPerWorker.get(pid) ?? 0) + 1);
    // The supervisor's verdict after this failure: still up after four, ejected at the fifth
    // (the report reaches it as the answer goes out; on a busy machine it may take a moment).
    // The ejection is read from its count: the next health check, which passes, may end it
    // within milliseconds (a check that passes after an ejection brings the backend back).
    const viewOf = async () => (await status()).pools[0]?.backends.find((b) => b.name === failing.name);
    if (failures < 5) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const view = await viewOf();
      t.is(view?.state, 'up', `ejected after ${failures} failures`);
      t.is(view?.ejections, 0);
    } else
      ejections = await until(
        'the ejection',
        3_000,
        async () => ((await viewOf())?.ejections === 1 ? 1 : undefined),
        20,
      );
  }
  for (const [, agent] of agents) agent.destroy();
  t.log(`failures per worker: ${[...failuresPerWorker.values()].join(' / ')}`);
  t.is(failures, 5);
  t.is(ejections, 1);
  for (const count of failuresPerWorker.values()) t.true(count > 0 && count < 5, 'one worker alone saw five');
  t.is(sum(await metrics(), 'sluice_backend_ejections_total', `backend="${failing.name}"`), 1);
  const ejected = sluice
    .output()
    .split('\n')
    .filter((line) => line.includes(`"backend":"${failing.name}"`) && line.includes('"to":"ejected"'));
  t.is(ejected.length, 1);
});

test.serial('a drain on the admin port reaches every worker', async (t) => {
  const drained = backends[0] as NginxBackend;
  const admin = (path: string) =>
    httpRequest({ port: sluice.adminPort ?? 0, path, method: 'POST', host: '127.0.0.1' });
  t.is((await admin(`/backends/web/${drained.name}/drain`)).status, 202);
  const before = await requestsByWorker();
  const seen = await spread(60);
  const after = await requestsByWorker();
  t.is(seen.get(drained.name), undefined, `${drained.name} got requests while drained`);
  for (const [pid, requests] of after) t.true(requests - (before.get(pid) ?? 0) > 0, `worker ${pid} idle`);
  t.is((await admin(`/backends/web/${drained.name}/undrain`)).status, 202);
  await until(`${drained.name} back`, 5_000, async () =>
    (await spread(30)).has(drained.name) ? true : undefined,
  );
});

test.serial('SIGHUP changes routing in every worker', async (t) => {
  const removed = backends[2] as NginxBackend;
  writeFileSync(sluice.configPath, yaml(backends.slice(0, 2)));
  const reloads = sluice.output().split('config reloaded').length;
  sluice.process.kill('SIGHUP');
  await until('the reload', 5_000, async () =>
    sluice.output().split('config reloaded').length > reloads ? true : undefined,
  );
  t.regex(sluice.output(), /"message":"config reloaded"[^\n]*"workers":2/);
  const before = await requestsByWorker();
  const seen = await spread(200);
  const after = await requestsByWorker();
  t.is(seen.get(removed.name), undefined, `${removed.name} still got requests`);
  for (const [pid, requests] of after) t.true(requests - (before.get(pid) ?? 0) > 0, `worker ${pid} idle`);
  t.is((await status()).pools[0]?.backends.length, 2);
});

test.serial(
  'two SIGHUPs a moment apart: the supervisor and every worker end on the later file',
  async (t) => {
    const [first, second] = backends as [NginxBackend, NginxBackend];
    const count = (text: string) => sluice.output().split(text).length;
    const reloads = count('"config reloaded"');
    // The older file's server needs a DNS lookup, so it resolves after the later one's.
    writeFileSync(sluice.configPath, yaml([{ ...first, address: `localhost:${first.port}` }]));
    const signals = count('"signal":"SIGHUP"');
    sluice.process.kill('SIGHUP');
    await until('the first file read', 5_000, async () =>
      count('"signal":"SIGHUP"') > signals ? true : undefined,
    );
    writeFileSync(sluice.configPath, yaml([second]));
    sluice.process.kill('SIGHUP');
    await until('both reloads', 10_000, async () =>
      count('"config reloaded"') >= reloads + 2 ? true : undefined,
    );
    const seen = await spread(60);
    t.deepEqual([...seen.keys()], [second.name]);
    t.deepEqual(
      (await status()).pools[0]?.backends.map((backend) => backend.name),
      [second.name],
    );
    // As the later tests expect it.
    writeFileSync(sluice.configPath, yaml(backends.slice(0, 2)));
    sluice.process.kill('SIGHUP');
    await until('restored', 10_000, async () =>
      count('"config reloaded"') >= reloads + 3 ? true : undefined,
    );
  },
);

test.serial('a backend killed is marked down once, for all workers', async (t) => {
  const victim = backends[1] as NginxBackend;
  await victim.stop();
  await until(`${victim.name} down`, 5_000, async () =>
    (await status()).pools[0]?.backends.find((b) => b.name === victim.name)?.state === 'down'
      ? true
      : undefined,
  );
  const downLines = sluice
    .output()
    .split('\n')
    .filter(
      (line) => line.includes('"backend state changed"') && line.includes(`"backend":"${victim.name}"`),
    );
  t.is(downLines.filter((line) => line.includes('"to":"down"')).length, 1, downLines.join('\n'));
  t.is(
    sum(await metrics(), 'sluice_backend_state_transitions_total', `backend="${victim.name}",to="down"`),
    1,
  );
  const before = await requestsByWorker();
  const seen = await spread(100);
  const after = await requestsByWorker();
  t.deepEqual([...seen.keys()], [backends[0]?.name]);
  for (const [pid, requests] of after) t.true(requests - (before.get(pid) ?? 0) > 0, `worker ${pid} idle`);
});
