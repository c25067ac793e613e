// Chaos with two workers on one port, under bounded load from keep-alive clients whose every
// request is recorded with its connection: a worker killed with SIGKILL (only its own in-flight
// requests may fail, a new worker listens within a second, the other worker's clients see
// nothing), a rolling restart (no request fails), a worker stopped with SIGSTOP (killed and
// replaced after the heartbeat timeout), and SIGTERM (in-flight requests finish).
import http from 'node:http';
import test from 'ava';
import { pushIntervalMs } from '../../src/cluster/messages.ts';
import { heartbeatTimeoutMs } from '../../src/cluster/supervisor.ts';
import { type ChildSluice, startChildSluice } from '../support/child-sluice.ts';
import { httpRequest } from '../support/http.ts';
import { defaultServerConf, HTML_ROOT } from '../support/nginx.ts';
import { connectionOwners } from '../support/sockets.ts';
import { until } from '../support/wait.ts';
import {
  type ChaosBackend,
  HEALTH,
  ms,
  now,
  sleep,
  startChaosBackends,
  stopChaosBackends,
} from './helpers.ts';

/** Clients in parallel, each with one keep-alive connection and one request at a time. */
const CLIENTS = 8;
/** The slow path: nginx sends 1 KiB at 400 bytes/s, so a request stays in flight about 2 s. */
const SLOW_PATH = '/slow/1k.txt';

let backends: ChaosBackend[] = [];
let sluice: ChildSluice;

test.before(async () => {
  backends = await startChaosBackends(2, {
    serverConf: (name) =>
      defaultServerConf(
        name,
        `    location /slow/ {\n        alias ${HTML_ROOT}/;\n        limit_rate 400;\n    }\n`,
      ),
  });
  const servers = backends.map((b) => `      - { address: ${b.address}, name: ${b.name} }`).join('\n');
  sluice = await startChildSluice(
    `listen: 127.0.0.1:0
admin: 127.0.0.1:0
accessLog: false
timeouts: { shutdown: 10s }
pools:
  web:
    servers:
${servers}
    health: { interval: ${HEALTH.interval}ms, timeout: ${HEALTH.timeout}ms, rise: ${HEALTH.rise}, fall: ${HEALTH.fall} }
`,
    '2',
  );
});

test.after.always(async () => {
  await sluice?.stop();
  await stopChaosBackends(backends);
});

interface Sent {
  client: number;
  /** The client side's port of the connection it went on. */
  localPort: number | undefined;
  start: number;
  end: number;
  ok: boolean;
  failure?: string;
}

/** Bounded load: `CLIENTS` loops until stopped (and never past 60 s), 2 ms apart. */
function clientLoad(port: number) {
  const records: Sent[] = [];
  let stopping = false;
  const deadline = now() + 60_000;
  const one = (agent: http.Agent, client: number) =>
    new Promise<Sent>((resolve) => {
      const start = now();
      let localPort: number | undefined;
      const done = (ok: boolean, failure?: string) =>
        resolve({ client, localPort, start, end: now(), ok, ...(failure ? { failure } : {}) });
      const req = http.get(
        { host: '127.0.0.1', port, path: '/1k.txt', agent, headers: { host: 'chaos.test' }, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () =>
            done(res.statusCode === 200, res.statusCode === 200 ? undefined : `${res.statusCode}`),
          );
          res.on('error', (error: NodeJS.ErrnoException) => done(false, error.code ?? error.message));
        },
      );
      req.on('socket', (socket) => {
        localPort = socket.localPort;
        if (localPort === undefined) socket.once('connect', () => (localPort = socket.localPort));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (error: NodeJS.ErrnoException) => done(false, error.code ?? error.message));
    });
  const loops = Array.from({ length: CLIENTS }, async (_, client) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (!stopping && now() < deadline) {
      records.push(await one(agent, client));
      await sleep(2);
    }
    agent.destroy();
  });
  return {
    records,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return records;
    },
  };
}

interface WorkerView {
  worker: number;
  pid: number;
  listening: boolean;
  requests: number | null;
}

async function status(): Promise<{ workers: WorkerView[]; spare: { pid: number; booted: boolean } | null }> {
  const reply = await httpRequest({ port: sluice.adminPort ?? 0, path: '/status' });
  return JSON.parse(reply.body.toString());
}

const workers = async () => (await status()).workers;

async function metric(series: string): Promise<number> {
  const text = (await httpRequest({ port: sluice.adminPort ?? 0, path: '/metrics' })).body.toString();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return Number(line?.split(' ').pop());
}

/** The sum of every series of a metric. */
async function metricSum(name: string): Promise<number> {
  const text = (await httpRequest({ port: sluice.adminPort ?? 0, path: '/metrics' })).body.toString();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/**
 * The sum once every worker has pushed what it counted (every `pushIntervalMs`): the same in two
 * scrapes a push apart, with no traffic in between.
 */
async function settledSum(name: string): Promise<number> {
  let last = await metricSum(name);
  for (let i = 0; i < 10; i++) {
    await sleep(pushIntervalMs + 200);
    const now = await metricSum(name);
    if (now === last) return now;
    last = now;
  }
  return last;
}

function summary(records: readonly Sent[]): string {
  const failures = records.filter((r) => !r.ok).map((r) => `${r.failure} on :${r.localPort}`);
  return `${records.length} requests, ${failures.length} failed ${JSON.stringify(failures.slice(0, 10))}`;
}

test.serial(
  'kill -9 one worker: only its in-flight requests fail, a new one listens within 1 s',
  async (t) => {
    const before = await workers();
    t.is(before.length, 2);
    const [victim, survivor] = before as [WorkerView, WorkerView];
    // A death finds a booted spare, unless it follows another within the spare's boot (then: a cold start).
    await until('a booted spare', 10_000, async () => ((await status()).spare?.booted ? true : undefined));
    const load = clientLoad(sluice.port);
    await sleep(1_000);
    const owners = connectionOwners(sluice.port, [victim.pid, survivor.pid]);
    const victimConnections = [...owners.values()].filter((pid) => pid === victim.pid).length;
    const killedAt = now();
    process.kill(victim.pid, 'SIGKILL');
    const fresh = await until(
      'a new worker',
      3_000,
      async () => {
        const listed = await workers();
        return listed.find((w) => w.listening && w.pid !== victim.pid && w.pid !== survivor.pid);
      },
      10,
    );
    const replacedAfter = now() - killedAt;
    await sleep(1_500);
    const records = await load.stop();
    t.log(
      `${victimConnections} of ${owners.size} connections on the killed worker; new worker after ${ms(replacedAfter)} ms`,
    );
    t.log(summary(records));
    const failed = records.filter((r) => !r.ok);
    t.true(failed.length <= victimConnections, 'more failures than requests in flight on the killed worker');
    for (const failure of failed)
      t.is(
        owners.get(failure.localPort ?? 0),
        victim.pid,
        `a failure not on the killed worker: ${failure.failure}`,
      );
    t.true(replacedAfter <= 1_000, `the new worker listened ${ms(replacedAfter)} ms after the kill`);
    t.regex(
      sluice.output(),
      new RegExp(`"exit":"killed by SIGKILL"[^\\n]*"pid":${victim.pid},"reason":"crashed"`),
    );
    t.is(await metric('sluice_worker_restarts_total{reason="crashed"}'), 1);
    // The new worker takes new connections.
    const fresh2 = new http.Agent({ keepAlive: false });
    for (let i = 0; i < 40; i++) await httpRequest({ port: sluice.port, path: '/1k.txt', agent: fresh2 });
    const after = await workers();
    t.true((after.find((w) => w.pid === fresh.pid)?.requests ?? 0) > 0, 'the new worker took no connection');
  },
);

test.serial('a rolling restart under load: no request fails', async (t) => {
  const before = (await workers()).map((w) => w.pid);
  const countedBefore = await settledSum('sluice_http_requests_total');
  const load = clientLoad(sluice.port);
  await sleep(1_000);
  const reply = await httpRequest({
    port: sluice.adminPort ?? 0,
    path: '/workers/restart',
    method: 'POST',
    host: '127.0.0.1',
  });
  t.is(reply.status, 202);
  const again = await httpRequest({
    port: sluice.adminPort ?? 0,
    path: '/workers/restart',
    method: 'POST',
    host: '127.0.0.1',
  });
  t.is(again.status, 409, 'one rolling restart at a time');
  await until('the rolling restart', 20_000, async () =>
    sluice.output().includes('rolling restart done') ? true : undefined,
  );
  await sleep(1_500);
  const records = await load.stop();
  t.log(summary(records));
  t.is(records.filter((r) => !r.ok).length, 0);
  t.true(records.length > 500, 'the load ran');
  const after = (await workers()).map((w) => w.pid);
  t.is(after.length, 2);
  for (const pid of after) t.false(before.includes(pid), 'an old worker is still listed');
  t.is(await metric('sluice_worker_restarts_total{reason="rolling"}'), 2);
  // The old workers' counts stay in the sum: every request of the run is counted once.
  t.is((await settledSum('sluice_http_requests_total')) - countedBefore, records.length);
});

/** A new connection's GET: its status, or `timeout` when no answer came within `ms`. */
function freshGet(ms: number): Promise<number | 'timeout'> {
  return new Promise((resolve) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port: sluice.port,
        path: '/1k.txt',
        agent: false,
        headers: { host: 'chaos.test' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.setTimeout(ms, () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', () => resolve('timeout'));
  });
}

test.serial(
  'a stopped worker (SIGSTOP) is killed after the heartbeat timeout; new connections reach the others',
  async (t) => {
    const [victim, survivor] = (await workers()) as [WorkerView, WorkerView];
    const stoppedAt = now();
    process.kill(victim.pid, 'SIGSTOP');
    t.teardown(() => {
      try {
        process.kill(victim.pid, 'SIGCONT');
      } catch {}
    });
    // While it is stopped, the kernel still queues about half of the new connections for it.
    const meanwhile = await Promise.all(Array.from({ length: 20 }, () => freshGet(1_000)));
    t.true(meanwhile.includes('timeout'), 'no connection went to the stopped worker');
    const fresh = await until(
      'its replacement',
      heartbeatTimeoutMs + 5_000,
      async () => {
        const listed = await workers();
        return listed.find((w) => w.listening && w.pid !== victim.pid && w.pid !== survivor.pid);
      },
      100,
    );
    const replacedAfter = now() - stoppedAt;
    t.log(`replaced ${ms(replacedAfter)} ms after SIGSTOP`);
    t.true(replacedAfter >= heartbeatTimeoutMs, `replaced after ${ms(replacedAfter)} ms`);
    t.true(replacedAfter < heartbeatTimeoutMs + 3_000, `replaced after ${ms(replacedAfter)} ms`);
    t.regex(
      sluice.output(),
      new RegExp(`"message":"worker not responding: killed"[^\\n]*"pid":${victim.pid}`),
    );
    t.regex(sluice.output(), new RegExp(`"pid":${victim.pid},"reason":"hung"`));
    t.is(await metric('sluice_worker_restarts_total{reason="hung"}'), 1);
    t.deepEqual((await workers()).map((w) => w.pid).sort(), [survivor.pid, fresh.pid].sort());
    const after = await Promise.all(Array.from({ length: 40 }, () => freshGet(3_000)));
    t.deepEqual(after, Array(40).fill(200));
  },
);

test.serial('SIGTERM: in-flight requests finish, then every process exits', async (t) => {
  const pids = (await workers()).map((w) => w.pid);
  const slow = new http.Agent({ keepAlive: false });
  const started = now();
  const inFlight = Array.from({ length: 6 }, () =>
    httpRequest({ port: sluice.port, path: SLOW_PATH, agent: slow }),
  );
  await sleep(500);
  const exited = new Promise<number | null>((resolve) =>
    sluice.process.once('exit', (code) => resolve(code)),
  );
  sluice.process.kill('SIGTERM');
  const replies = await Promise.all(inFlight);
  const code = await exited;
  t.log(`slow requests took ${ms(now() - started)} ms; exit ${code}`);
  for (const reply of replies) {
    t.is(reply.status, 200);
    t.is(reply.body.length, 1024);
  }
  t.true(now() - started > 1_500, 'the slow path was not slow');
  t.is(code, 0);
  for (const pid of pids)
    t.throws(() => process.kill(pid, 0), undefined, `worker ${pid} outlived the supervisor`);
});
