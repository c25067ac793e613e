// The active/standby pair of docker-compose.ha.yml under bounded load sent to its VIP from this
// host (4 workers, keep-alive, through the bridge of the stack's network, which the test
// creates): the active Sluice killed, restarted, stopped gracefully (SIGTERM), restarted; and a
// whole active side (keepalived, Sluice, prober) lost, with advert_int 1 s, 0.5 s and 0.3 s. Each
// step logs its figures: how long the VIP gave no answer, and what failed. `npm test` runs it
// alone, after the other suites (ava.alone.config.js): its timings need the machine to itself.
//
// One compose project, `sluice-ha-test`, on the local images (docker-compose.local.yml and
// docker-compose.ha.local.yml) with Sluice as SLUICE_IMAGE below; removed afterwards with its
// volumes. keepalived's config is a copy in a temporary folder, so that a step can change
// advert_int and reload keepalived (SIGHUP).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { pushIntervalMs } from '../../src/cluster/messages.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { composeProject } from '../support/compose.ts';
import { type LoadRun, now, sleep, startLoad } from '../support/load.ts';
import { freePort } from '../support/node-backend.ts';
import { until } from '../support/wait.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const PROJECT = 'sluice-ha-test';
/** The image .ci/run builds from this tree; SLUICE_TEST_IMAGE gives another tag (a machine shared with other work). */
const SLUICE_IMAGE = process.env.SLUICE_TEST_IMAGE || 'sluice-local/sluice:dev';
/** The addresses documented in docker-compose.ha.yml and deploy/keepalived/keepalived.conf. */
const VIP = '10.209.14.10';
const ADDRESS = { a: '10.209.14.11', b: '10.209.14.12' } as const;
type Side = keyof typeof ADDRESS;
const other = (side: Side): Side => (side === 'a' ? 'b' : 'a');
const container = (service: string) => `${PROJECT}_${service}_1`;
/** What both Sluices run with: its admin port and timeouts.shutdownDelay. */
const SLUICE_CONFIG = loadConfigFile(path.join(ROOT, 'deploy/sluice.yaml'));
const SHUTDOWN_DELAY_MS = SLUICE_CONFIG.timeouts.shutdownDelay;
const SHUTDOWN_MS = SLUICE_CONFIG.timeouts.shutdown;
const ADMIN_PORT = SLUICE_CONFIG.admin ? SLUICE_CONFIG.admin.port : 0;
/** The target for a killed Sluice. */
const KILL_TARGET_MS = 2000;

let env: NodeJS.ProcessEnv = {};
let confDir = '';
let confTemplate = '';
let started = false;

const compose = composeProject(
  PROJECT,
  ['docker-compose.yml', 'docker-compose.ha.yml', 'docker-compose.local.yml', 'docker-compose.ha.local.yml'],
  () => env,
);

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** keepalived.conf with another advert_int, written where both keepalived read it, then reloaded. */
async function setAdvertInterval(seconds: number): Promise<void> {
  await writeConf(seconds);
  await Promise.all(['keepalived-a', 'keepalived-b'].map((s) => docker('kill', '-s', 'HUP', container(s))));
}

async function writeConf(advertSeconds: number): Promise<void> {
  const conf = confTemplate.replace(/^\$ADVERT=.*$/m, `$ADVERT=${advertSeconds}`);
  if (conf === confTemplate && !confTemplate.includes(`$ADVERT=${advertSeconds}\n`))
    throw new Error('keepalived.conf has no $ADVERT= line');
  // In place: the file is bind-mounted, so its inode must stay.
  await writeFile(path.join(confDir, 'keepalived.conf'), conf);
}

async function admin(side: Side, what: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://${ADDRESS[side]}:${ADMIN_PORT}${what}`, {
    signal: AbortSignal.timeout(2000),
  });
  return { status: response.status, text: await response.text() };
}

/** Requests the Sluice of one side has answered, by its /metrics. */
async function served(side: Side): Promise<number> {
  const { text } = await admin(side, '/metrics');
  let sum = 0;
  for (const match of text.matchAll(/^sluice_http_requests_total\{[^}]*\} (\d+)$/gm)) sum += Number(match[1]);
  return sum;
}

/** The side that answers on the VIP: the one whose request count grows with requests sent to the VIP. */
async function activeSide(): Promise<Side> {
  return until('one side answers the VIP', 30_000, async () => {
    const before = { a: await served('a').catch(() => 0), b: await served('b').catch(() => 0) };
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`http://${VIP}:8080/`, {
        headers: { connection: 'close' },
        signal: AbortSignal.timeout(2000),
      });
      await response.arrayBuffer();
      if (response.status !== 200) return undefined;
    }
    // The image runs several workers, which push their counts every second.
    await sleep(pushIntervalMs + 500);
    const grew = (side: Side) =>
      served(side).then(
        (n) => n - before[side] >= 5,
        () => false,
      );
    const [a, b] = await Promise.all([grew('a'), grew('b')]);
    return a !== b ? (a ? 'a' : 'b') : undefined;
  });
}

async function bothReady(): Promise<void> {
  await until('both Sluices ready', 60_000, async () => {
    const [a, b] = await Promise.all([admin('a', '/readyz'), admin('b', '/readyz')]);
    return a.status === 200 && b.status === 200 ? true : undefined;
  });
}

/** Load on the VIP: 4 workers, a new connection every request is not forced (keep-alive). */
function loadOnVip(): LoadRun {
  return startLoad({
    port: 8080,
    address: VIP,
    workers: 4,
    pauseMs: 10,
    durationMs: 60_000,
    requestTimeoutMs: 8000,
  });
}

/**
 * A client that opens a new connection for every request and gives up on one after 300 ms (2
 * workers, 50 ms apart): it sees when the VIP answers again. Connections of the keep-alive load
 * that were open or opening to a side that vanished wait for their own TCP retransmissions
 * instead (a SYN is sent again 1 s later, then 1 or 2 s after that, by the client's kernel), which
 * says more about the client than about the failover.
 */
function probeVip(): LoadRun {
  return startLoad({
    port: 8080,
    address: VIP,
    workers: 2,
    pauseMs: 50,
    durationMs: 60_000,
    requestTimeoutMs: 300,
    keepAlive: false,
  });
}

/** The failed requests of a run, as `kind@start→end` in ms from `at`, for the log. */
function failuresFrom(load: LoadRun, at: number): string {
  return load
    .select({ from: at - 1000 })
    .filter((r) => !r.ok)
    .map((r) => `${r.failure}@${Math.round(r.start - at)}→${Math.round(r.end - at)}`)
    .join(' ');
}

interface Figures {
  /** The longest time in which no request completed ok, around the event. */
  silentMs: number;
  failed: number;
  failures: Record<string, number>;
  sent: number;
}

/**
 * What clients saw of an event at `at`, from requests that ended from 1 s before it on: the
 * longest time in which no request completed ok (up to the last request's end, so a VIP that
 * never answered again counts whole), and the failures.
 */
function figures(load: LoadRun, at: number): Figures {
  const records = load.select().filter((r) => r.end >= at - 1000);
  const okEnds = records
    .filter((r) => r.ok)
    .map((r) => r.end)
    .sort((x, y) => x - y);
  okEnds.push(Math.max(...records.map((r) => r.end)));
  let silent = 0;
  for (let i = 1; i < okEnds.length; i++)
    silent = Math.max(silent, (okEnds[i] as number) - (okEnds[i - 1] as number));
  const summary = load.summary({ from: at - 1000 });
  return {
    silentMs: Math.round(silent),
    failed: records.filter((r) => !r.ok).length,
    failures: summary.failures,
    sent: records.length,
  };
}

test.before(async (t) => {
  const begun = Date.now();
  confDir = await mkdtemp(path.join(tmpdir(), 'sluice-ha-'));
  confTemplate = await readFile(path.join(ROOT, 'deploy/keepalived/keepalived.conf'), 'utf8');
  await writeConf(0.5);
  env = {
    ...process.env,
    SLUICE_IMAGE,
    KEEPALIVED_CONF: path.join(confDir, 'keepalived.conf'),
    PROMETHEUS_PORT: String(await freePort()),
    // Unused by the pair (the single `sluice` has no container), but the base file names them.
    SLUICE_PORT: String(await freePort()),
    SLUICE_ADMIN_PORT: String(await freePort()),
    GRAFANA_PORT: String(await freePort()),
  };
  // The stand-ins it builds on (nginx, node, node-build, prometheus) are built by .ci/run before
  // the tests, and so are these two there (then this is a check that they are up to date).
  await run('bash', [path.join(ROOT, 'scripts/build-images.sh'), 'keepalived', 'sluice'], {
    cwd: ROOT,
    env: { ...env, SLUICE_LOCAL_IMAGE: SLUICE_IMAGE },
  });
  const built = Date.now();
  await compose('down', '-v', '--remove-orphans').catch(() => {});
  started = true;
  await compose('up', '-d');
  await bothReady();
  t.log(`images ready in ${built - begun} ms, pair up and ready in ${Date.now() - built} ms`);
});

test.after.always(async (t) => {
  if (started && !process.env.SLUICE_TEST_KEEP_STACK) {
    try {
      await compose('down', '-v', '--remove-orphans', '--timeout', '5');
    } catch (error) {
      t.log(`docker-compose down failed: ${(error as Error).message}`);
    }
  }
  if (confDir) await rm(confDir, { recursive: true, force: true });
});

test.afterEach.always(async (t) => {
  if (t.passed) return;
  try {
    t.log(
      await compose(
        'logs',
        '--no-color',
        '--tail',
        '30',
        'keepalived-a',
        'keepalived-b',
        'sluice-a',
        'sluice-b',
      ),
    );
  } catch {}
});

test.serial(
  'the VIP answers through one Sluice; Prometheus scrapes both and sees which one carries the traffic',
  async (t) => {
    const active = await activeSide();
    t.log(`active: sluice-${active} (${ADDRESS[active]})`);
    const response = await fetch(`http://${VIP}:8080/`);
    t.is(response.status, 200);
    t.regex(response.headers.get('x-backend') ?? '', /^web-[123]$/);
    t.regex(await response.text(), /<html/i);
    // The dashboard's "Traffic by instance" query: only the active instance has a rate.
    const prometheus = `http://127.0.0.1:${env.PROMETHEUS_PORT}`;
    type Vector = { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    const targets = await until('both instances scraped', 30_000, async () => {
      const r = (await (await fetch(`${prometheus}/api/v1/targets`)).json()) as {
        data: { activeTargets: { labels: Record<string, string>; health: string }[] };
      };
      const up = r.data.activeTargets.filter((x) => x.labels.job === 'sluice' && x.health === 'up');
      return up.length === 2 ? up.map((x) => x.labels.instance).sort() : undefined;
    });
    t.deepEqual(targets, [`${ADDRESS.a}:${ADMIN_PORT}`, `${ADDRESS.b}:${ADMIN_PORT}`]);
    const load = loadOnVip();
    try {
      const expr = 'sum by (instance) (rate(sluice_http_requests_total[20s]))';
      const rates = await until('a rate for the active instance', 30_000, async () => {
        const r = (await (
          await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`)
        ).json()) as Vector;
        const byInstance = Object.fromEntries(
          r.data.result.map((x) => [x.metric.instance, Number(x.value[1])]),
        );
        return (byInstance[`${ADDRESS[active]}:${ADMIN_PORT}`] ?? 0) > 1 ? byInstance : undefined;
      });
      t.log(`requests/s by instance: ${JSON.stringify(rates)}`);
      t.is(rates[`${ADDRESS[other(active)]}:${ADMIN_PORT}`] ?? 0, 0);
    } finally {
      await load.stop();
    }
  },
);

/**
 * Load on the VIP around one event: 1.5 s of it first, then `event` (the figures count from the
 * moment it began), then `afterMs` more.
 */
async function aroundEvent<T>(
  event: () => Promise<T>,
  afterMs: number,
): Promise<{ load: LoadRun; at: number; result: T; figures: Figures }> {
  const load = loadOnVip();
  try {
    await sleep(1500);
    const at = now();
    const result = await event();
    await sleep(afterMs);
    await load.stop();
    return { load, at, result, figures: figures(load, at) };
  } finally {
    await load.stop();
  }
}

const describe = (f: Figures) =>
  `no answer for ${f.silentMs} ms; ${f.failed} of ${f.sent} requests failed ${JSON.stringify(f.failures)}`;

test.serial(
  `killing the active Sluice: the other one answers on the VIP within ${KILL_TARGET_MS} ms`,
  async (t) => {
    const active = await activeSide();
    const { load, figures: f } = await aroundEvent(() => docker('kill', container(`sluice-${active}`)), 5000);
    t.log(`kill sluice-${active}: ${describe(f)}`);
    t.true(f.silentMs <= KILL_TARGET_MS, `no answer for ${f.silentMs} ms`);
    // Once the other side answers, nothing fails any more.
    const lastSeconds = load.summary({ from: now() - 2000 });
    t.is(lastSeconds.failed, 0);
    t.true(lastSeconds.ok > 0);
    t.is(await activeSide(), other(active));
  },
);

test.serial(
  'restarting the killed Sluice: it comes back as standby, the VIP stays, nothing fails',
  async (t) => {
    const active = await activeSide();
    const stopped = other(active);
    const {
      load,
      at,
      figures: f,
    } = await aroundEvent(async () => {
      await docker('start', container(`sluice-${stopped}`));
      await until('the restarted Sluice ready', 30_000, async () =>
        (await admin(stopped, '/readyz')).status === 200 ? true : undefined,
      );
      // Its prober needs two passes before the side takes part again: time to (not) preempt.
    }, 4000);
    t.log(`restart sluice-${stopped}: ${describe(f)}`);
    t.is(f.failed, 0, failuresFrom(load, at));
    t.is(await activeSide(), active);
  },
);

test.serial(
  'SIGTERM to the active Sluice: /readyz 503, the VIP moves, requests in flight finish, none fails',
  async (t) => {
    const active = await activeSide();
    const signalled = new Date();
    const {
      load,
      at,
      result,
      figures: f,
    } = await aroundEvent(async () => {
      const began = now();
      const stopping = docker('stop', '--time', '15', container(`sluice-${active}`));
      const readyz = await until(
        '/readyz 503 on the draining side',
        5000,
        async () => {
          const r = await admin(active, '/readyz');
          return r.status === 503 ? r : undefined;
        },
        50,
      );
      await stopping;
      return { readyz: readyz.text.trim(), stoppedAfter: now() - began };
    }, 1500);
    try {
      const open = await openWhenClosing(active, signalled);
      t.log(
        `SIGTERM sluice-${active}: exited after ${Math.round(result.stoppedAfter)} ms; ${describe(f)}; ` +
          `client connections still open when its workers closed their listeners: ${JSON.stringify(open)}`,
      );
      t.is(result.readyz, 'shutting down');
      t.is(f.failed, 0, failuresFrom(load, at));
      t.true(result.stoppedAfter >= SHUTDOWN_DELAY_MS, 'served on for shutdownDelay');
      t.true(result.stoppedAfter < SHUTDOWN_MS, 'exited within timeouts.shutdown');
      // Nothing was left on the old side when the VIP had moved: busy connections were closed by
      // their answers, idle ones by the drain (one left there would be reset by the other side).
      t.true(open.length > 0 && open.every((n) => n === 0), JSON.stringify(open));
      t.is(await docker('inspect', '-f', '{{.State.ExitCode}}', container(`sluice-${active}`)), '0');
      t.true(load.summary({ from: now() - 1500 }).ok > 0);
      t.is(await activeSide(), other(active));
    } finally {
      await docker('start', container(`sluice-${active}`));
      await bothReady();
    }
  },
);

/**
 * The client connections each worker of one side's Sluice still had when it closed its listener
 * (after timeouts.shutdownDelay), from its `shutting down` log lines since `since`.
 */
async function openWhenClosing(side: Side, since: Date): Promise<number[]> {
  const { stdout, stderr } = await run(
    'docker',
    ['logs', '--since', since.toISOString(), container(`sluice-${side}`)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const counts: number[] = [];
  for (const line of `${stdout}\n${stderr}`.split('\n')) {
    if (!line.includes('"shutting down"') || !line.includes('"worker"')) continue;
    const entry = JSON.parse(line) as { openConnections?: number };
    if (typeof entry.openConnections === 'number') counts.push(entry.openConnections);
  }
  return counts;
}

/**
 * Every container of one side killed, as if its machine died: only the adverts stop. The figures
 * of a client with a new connection per request (`vip`), and of the keep-alive load (`load`).
 */
async function loseSide(
  t: import('ava').ExecutionContext,
  advertSeconds: number,
): Promise<{ vip: Figures; load: Figures }> {
  await setAdvertInterval(advertSeconds);
  await sleep(2000);
  const active = await activeSide();
  const prober = probeVip();
  let event: Awaited<ReturnType<typeof aroundEvent>>;
  try {
    event = await aroundEvent(
      () => docker('kill', ...['keepalived', 'sluice', 'probe'].map((s) => container(`${s}-${active}`))),
      3 * advertSeconds * 1000 + 4000,
    );
  } finally {
    await prober.stop();
  }
  const vip = figures(prober, event.at);
  t.log(
    `advert_int ${advertSeconds} s, side ${active} lost: the VIP gave no answer for ${vip.silentMs} ms; ` +
      `keep-alive load: ${describe(event.figures)}`,
  );
  t.is(await activeSide(), other(active));
  // The lost side back: keepalived first (it holds the network namespace), then the two that
  // join it (Docker may be restarting them already).
  await docker('start', container(`keepalived-${active}`));
  for (const service of [`sluice-${active}`, `probe-${active}`])
    await until(
      `${service} restarted`,
      30_000,
      () => docker('restart', '--time', '1', container(service)).then(() => true),
      1000,
    );
  await bothReady();
  return { vip, load: event.figures };
}

test.serial(
  'losing a whole side (keepalived too): the VIP answers again after about 3 × advert_int (1 s, 0.5 s, 0.3 s)',
  async (t) => {
    const silent: Record<number, number> = {};
    for (const advertSeconds of [1, 0.5, 0.3]) {
      const { vip } = await loseSide(t, advertSeconds);
      silent[advertSeconds] = vip.silentMs;
      // The backup takes over when adverts are missing for 3 × advert_int plus a skew below one
      // advert_int, counted from the last advert, which came up to one advert_int before the loss.
      const advertMs = advertSeconds * 1000;
      t.true(vip.silentMs > 2 * advertMs, `advert_int ${advertSeconds}: ${vip.silentMs} ms`);
      t.true(vip.silentMs < 4 * advertMs + 1500, `advert_int ${advertSeconds}: ${vip.silentMs} ms`);
    }
    t.true((silent[0.5] ?? 0) < (silent[1] ?? 0), JSON.stringify(silent));
    t.true((silent[0.3] ?? 0) < (silent[1] ?? 0), JSON.stringify(silent));
  },
);
