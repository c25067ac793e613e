// Chaos, issue 3, scenario 5: POST requests (no Idempotency-Key) under load while one of three
// nginx backends is killed. A POST must never reach backends twice: each carries a unique id in
// its path (/post/<uuid>, answered 200 by nginx for any method) and we count the ids in the three
// access logs. The killed container is SIGKILLed but not removed, so `docker logs` still holds
// every line nginx wrote before it died (a request nginx was killed in the middle of is in no log:
// it may have reached nginx or not, which is exactly why Sluice must not send it again).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import test from 'ava';
import type { RunningSluice } from '../../src/sluice.ts';
import { type LoadRecord, startLoad } from '../support/load.ts';
import { type AccessLogEntry, accessLog, defaultServerConf } from '../support/nginx.ts';
import { startProxy } from '../support/sluice.ts';
import {
  backendOf,
  type ChaosBackend,
  chaosYaml,
  describeFailures,
  ms,
  now,
  PAUSE_MS,
  type SeenTransition,
  sleep,
  startChaosBackends,
  stopChaosBackends,
  TIMEOUTS,
  WORKERS,
  waitForState,
  watchTransitions,
} from './helpers.ts';

// `return 444` closes the connection without an answer (and logs the request with status 444).
const extra = `
    location /post/ {
        return 200 "ok\\n";
    }
    location /close/ {
        return 444;
    }
`;

let backends: ChaosBackend[] = [];
let sluice: RunningSluice | undefined;
let transitions: SeenTransition[] = [];

test.before(async () => {
  backends = await startChaosBackends(3, { serverConf: (name) => defaultServerConf(name, extra) });
  const [first] = backends;
  if (!first) throw new Error('no backends');
  // Pool `solo` (Host solo.test): nginx-1 alone.
  sluice = await startProxy(chaosYaml(backends, { solo: [first] }));
  transitions = watchTransitions(sluice);
});

test.after.always(async () => {
  await sluice?.stop();
  await stopChaosBackends(backends);
});

function running(): RunningSluice {
  if (!sluice) throw new Error('sluice did not start');
  return sluice;
}

/** One request through Sluice on a connection of its own. */
function send(method: string, path: string, host: string, body?: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: running().address.port, method, path, agent: false, headers: { host } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Entries of `method` whose path starts with `prefix`, from the container's log (also once it is dead). */
async function entries(backend: ChaosBackend, method: string, prefix: string): Promise<AccessLogEntry[]> {
  const log = await accessLog(backend);
  return log.filter((e) => e.method === method && e.path.startsWith(prefix));
}

test.serial(
  '5. POSTs under a backend kill: none reaches the backends twice, failures are quick 502s',
  async (t) => {
    const victim = backends[1];
    if (!victim) throw new Error('no backends');
    const load = startLoad({
      port: running().address.port,
      workers: WORKERS,
      pauseMs: PAUSE_MS,
      durationMs: 30_000,
      requestTimeoutMs: 10_000,
      request: () => ({ method: 'POST', path: `/post/${randomUUID()}`, body: '{"hello":"world"}' }),
    });
    await sleep(1_500);
    const killAt = now();
    await victim.kill();
    await waitForState(backendOf(running(), victim.name), ['down'], 5_000);
    await sleep(1_000);
    const summary = await load.stop();

    // Give the engine a moment to copy the survivors' last lines, then read all three logs.
    const okBy = new Map<string, LoadRecord[]>();
    for (const r of load.records)
      if (r.ok && r.backend) okBy.set(r.backend, [...(okBy.get(r.backend) ?? []), r]);
    const seen = new Map<string, string[]>();
    const logged = new Map<string, Set<string>>();
    for (const backend of backends) {
      let list = await entries(backend, 'POST', '/post/');
      const expected = okBy.get(backend.name)?.length ?? 0;
      if (backend !== victim) {
        for (let i = 0; i < 40 && list.length < expected; i++) {
          await sleep(50);
          list = await entries(backend, 'POST', '/post/');
        }
      }
      logged.set(backend.name, new Set(list.map((e) => e.path)));
      for (const e of list) seen.set(e.path, [...(seen.get(e.path) ?? []), backend.name]);
    }
    const twice = [...seen].filter(([, where]) => where.length > 1);
    const failed = load.records.filter((r) => !r.ok);
    const failedButLogged = failed.filter((r) => seen.has(r.path));
    const missing = (name: string) =>
      (okBy.get(name) ?? []).filter((r) => !logged.get(name)?.has(r.path)).length;
    const slowest = load.records.reduce((max, r) => Math.max(max, r.end - r.start), 0);
    const verdict = transitions.find((tr) => tr.backend === victim.name && tr.seenAt >= killAt);

    t.log(
      `POSTs ${summary.sent}, ok ${summary.ok}, failed ${summary.failed} ${JSON.stringify(summary.failures)}`,
    );
    t.log(`per backend ${JSON.stringify(summary.perBackend)}; slowest ${ms(slowest)} ms`);
    t.log(
      `verdict on ${victim.name}: ${verdict?.to} (${verdict?.cause}) ${ms((verdict?.seenAt ?? 0) - killAt)} ms after the kill`,
    );
    t.log(
      `ids in the logs: ${seen.size}; in two logs: ${twice.length}; failed POSTs that a backend did log: ${failedButLogged.length}; ` +
        `ok POSTs missing from the log of the backend that answered: ${backends.map((b) => `${b.name} ${missing(b.name)}`).join(', ')}`,
    );

    for (const line of describeFailures(failed, killAt)) t.log(`failed: ${line} (times from the kill)`);
    t.deepEqual(twice, [], 'a POST reached two backends');
    for (const kind of Object.keys(summary.failures)) t.is(kind, '502', `failure ${kind}`);
    t.true(slowest <= TIMEOUTS.connect + 500, `a POST took ${ms(slowest)} ms`);
    for (const backend of backends) {
      if (backend !== victim) t.is(missing(backend.name), 0, `${backend.name} logged every POST it answered`);
    }
    // Every id nginx logged was logged once by that nginx too.
    for (const backend of backends) {
      const list = await entries(backend, 'POST', '/post/');
      t.is(new Set(list.map((e) => e.path)).size, list.length, `${backend.name} logged a POST twice`);
    }
  },
);

// Sluice retries a request on a fresh connection, to the same backend, when a kept-alive
// connection closes before any byte of the answer: src/proxy/exchange.ts `waitingFailed` does so
// before it asks `mayReplay()`, so a POST is sent twice. nginx's `return 444` (close without an
// answer, after the request was read and handled) shows it; an application that crashed after
// acting on the POST would see the same. If that second connect then fails (the backend died),
// `attemptFailed` -> `startRetries` sends the POST to another backend as well, since `mayRetry()`
// does not remember that the bytes already reached a backend.
test.serial(
  '5b. a POST whose kept-alive connection closes without an answer is not sent again',
  async (t) => {
    const id = randomUUID();
    // Leaves one idle kept-alive connection from Sluice to nginx-1 in pool `solo`.
    t.is((await send('GET', '/1k.txt', 'solo.test')).status, 200);
    const reply = await send('POST', `/close/${id}`, 'solo.test', '{"hello":"world"}');
    await sleep(300);
    const [first] = backends;
    if (!first) throw new Error('no backends');
    const lines = (await entries(first, 'POST', `/close/${id}`)).length;
    t.log(`client got ${reply.status}; nginx-1 logged POST /close/${id} ${lines} times`);
    t.is(reply.status, 502);
    t.is(lines, 1, 'the POST reached nginx-1 more than once');
  },
);
